"""Adam and AdamW, PyTorch's ``torch.optim.Adam`` and ``torch.optim.AdamW``."""

import numpy as np

from .._validate import is_device_array
from . import _kernels
from .optimizer import Optimizer, _cuda
from .sgd import _flat

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    r"""Adam, PyTorch's ``torch.optim.Adam`` (AdamW with ``decoupled_weight_decay=True``).

    For each parameter :math:`p` with gradient :math:`g` (skipped when its
    gradient is None) at step :math:`t` (counted per parameter), one fused
    kernel computes::

        g = -g                                   if maximize
        g = g + weight_decay * p                 if weight_decay != 0 (Adam)
        p = p * (1 - lr * weight_decay)          if weight_decay != 0 (AdamW)
        m = m + (1 - beta1) * (g - m)            (PyTorch's lerp)
        v = beta2 * v + (1 - beta2) * g * g
        vmax = maximum(vmax, v); v_hat = vmax    if amsgrad, else v_hat = v
        denom = sqrt(v_hat) / sqrt(1 - beta2**t) + eps
        p = p - lr / (1 - beta1**t) * m / denom

    with PyTorch's single-tensor operations and roundings (``foreach=False``):
    the bias corrections in float64, each scalar then rounded to the
    parameter's dtype, ``eps`` added after the square root. The parameters and
    the state are those of ``torch.optim.Adam`` bit for bit in float32 on a
    CPU with fused multiply-add.

    The state of a parameter (``opt.state[p]``), with PyTorch's names:
    ``step`` (a 0-d float32 array: PyTorch keeps a float32 tensor),
    ``exp_avg``, ``exp_avg_sq`` and, with amsgrad, ``max_exp_avg_sq`` (arrays
    of the parameter's shape, dtype and side).

    Parameters
    ----------
    params : iterable of arrays or of dicts
        ``model.parameters()``, or parameter groups (dicts with ``"params"``
        and any of the options below).
    lr : float, default 1e-3
        Learning rate.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the running averages of the gradient and its square.
    eps : float, default 1e-8
        Added to the denominator (after the square root).
    weight_decay : float, default 0
        L2 penalty (added to the gradient; decoupled in AdamW).
    amsgrad : bool, default False
        Normalize by the running maximum of the second moment (AMSGrad).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    decoupled_weight_decay : bool, default False
        AdamW's decay ``p *= 1 - lr * weight_decay`` instead of the L2 term.
    foreach, capturable, differentiable, fused
        PyTorch's implementation switches, kept in the parameter groups so a
        ``state_dict`` converts both ways; they change nothing here.

    Raises
    ------
    ValueError
        ``lr``, ``eps`` or ``weight_decay`` negative, a beta outside [0, 1).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> w = np.array([1.0, -1.0])
    >>> opt = nbops.optim.Adam([w], lr=0.1)
    >>> nbops.nn.set_grad(w, np.array([0.5, -2.0]))
    >>> opt.step()
    >>> w  # the first step moves each weight by about lr
    array([ 0.9, -0.9])
    >>> sorted(opt.state[w])
    ['exp_avg', 'exp_avg_sq', 'step']
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if eps < 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        if not 0.0 <= betas[0] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
        if not 0.0 <= betas[1] < 1.0:
            raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable,
                    "fused": fused, "decoupled_weight_decay": decoupled_weight_decay}
        super().__init__(params, defaults)
        self._coefficients = {}

    def _update(self, param, grad, group):
        state = self.state[param]
        device = is_device_array(param)
        zeros = _cuda().zeros_like if device else np.zeros_like
        if len(state) == 0:
            state["step"] = np.zeros((), dtype=np.float32)
            state["exp_avg"] = zeros(param)
            state["exp_avg_sq"] = zeros(param)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = zeros(param)
        amsgrad = bool(group["amsgrad"])
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = zeros(param)
        state["step"] += 1
        step = float(state["step"])
        # the step's scalars are the same for every parameter of a group (of one dtype)
        key = (param.dtype, step, group["lr"], tuple(group["betas"]), group["eps"],
               group["weight_decay"], amsgrad, group["maximize"],
               group.get("decoupled_weight_decay", False))
        coefficients = self._coefficients.get(key)
        if coefficients is None:
            if len(self._coefficients) > 64:
                self._coefficients.clear()
            coefficients = self._coefficients[key] = _kernels.adam_coefficients(
                param.dtype, group, step)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        if device:
            vmax = state["max_exp_avg_sq"] if amsgrad else exp_avg_sq
            _cuda().adam_step(param, grad, exp_avg, exp_avg_sq, vmax, coefficients)
        else:
            v = exp_avg_sq.reshape(-1)
            vmax = state["max_exp_avg_sq"].reshape(-1) if amsgrad else v
            _kernels.adam_step(param.reshape(-1), _flat(grad), exp_avg.reshape(-1), v, vmax,
                               coefficients)


class AdamW(Adam):
    r"""AdamW, PyTorch's ``torch.optim.AdamW``: Adam with decoupled weight decay.

    The update of :class:`Adam` with ``decoupled_weight_decay=True``: before
    the moments, ``p *= 1 - lr * weight_decay`` (instead of adding
    ``weight_decay * p`` to the gradient).

    Parameters
    ----------
    params : iterable of arrays or of dicts
        ``model.parameters()``, or parameter groups.
    lr : float, default 1e-3
        Learning rate.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the running averages of the gradient and its square.
    eps : float, default 1e-8
        Added to the denominator (after the square root).
    weight_decay : float, default 1e-2
        Decoupled weight decay.
    amsgrad : bool, default False
        Normalize by the running maximum of the second moment (AMSGrad).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    foreach, capturable, differentiable, fused
        PyTorch's implementation switches, kept in the parameter groups; they
        change nothing here.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> w = np.array([1.0, -1.0])
    >>> opt = nbops.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> nbops.nn.set_grad(w, np.array([0.5, -2.0]))
    >>> opt.step()
    >>> w  # decayed by 1 - 0.1 * 0.5 = 0.95, then moved by about lr
    array([ 0.85, -0.85])
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)
