"""Stochastic gradient descent, PyTorch's ``torch.optim.SGD``."""

import numpy as np

from .._validate import is_device_array
from . import _kernels
from .optimizer import Optimizer, _cuda

__all__ = ["SGD"]


def _flat(a):
    """The flat C-order view of host array ``a`` (a contiguous copy if it is not)."""
    return np.ascontiguousarray(a).reshape(-1)


class SGD(Optimizer):
    r"""Stochastic gradient descent with momentum, PyTorch's ``torch.optim.SGD``.

    For each parameter :math:`p` with gradient :math:`g` (skipped when its
    gradient is None), one fused kernel computes::

        g = -g                               if maximize
        g = g + weight_decay * p             if weight_decay != 0
        if momentum != 0:
            b = g                            on the first step, else
            b = momentum * b + (1 - dampening) * g
            g = g + momentum * b             if nesterov, else g = b
        p = p - lr * g

    with PyTorch's single-tensor operations and roundings (``foreach=False``):
    the same parameters and ``momentum_buffer`` bit for bit in float32 on a
    CPU with fused multiply-add, as ``torch.optim.SGD``.

    Parameters
    ----------
    params : iterable of arrays or of dicts
        ``model.parameters()``, or parameter groups (dicts with ``"params"``
        and any of the options below).
    lr : float, default 1e-3
        Learning rate.
    momentum : float, default 0
        Momentum factor.
    dampening : float, default 0
        Dampening of the momentum.
    weight_decay : float, default 0
        L2 penalty added to the gradient.
    nesterov : bool, default False
        Nesterov momentum (needs ``momentum > 0`` and ``dampening == 0``).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    foreach, differentiable, fused
        PyTorch's implementation switches, kept in the parameter groups so a
        ``state_dict`` converts both ways; they change nothing here.

    Raises
    ------
    ValueError
        ``lr``, ``momentum`` or ``weight_decay`` negative; ``nesterov``
        without momentum or with dampening.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> w = np.array([1.0, 2.0])
    >>> opt = nbops.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> nbops.nn.set_grad(w, np.array([0.5, -1.0]))
    >>> opt.step()
    >>> w
    array([0.95, 2.1 ])
    >>> opt.state[w]["momentum_buffer"]
    array([ 0.5, -1. ])
    """

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable, "fused": fused}
        super().__init__(params, defaults)

    def _update(self, param, grad, group):
        use_momentum = group["momentum"] != 0
        buf = None
        if use_momentum:
            state = self.state[param]
            buf = state.get("momentum_buffer")
        first = buf is None
        device = is_device_array(param)
        if use_momentum and first:
            buf = _cuda().empty_like(param) if device else np.empty_like(param)
        coefficients = _kernels.sgd_coefficients(param.dtype, group, first)
        if device:
            _cuda().sgd_step(param, grad, buf if use_momentum else param, coefficients)
        else:
            flat = param.reshape(-1)
            _kernels.sgd_step(flat, _flat(grad), buf.reshape(-1) if use_momentum else flat,
                              coefficients)
        if use_momentum:
            state["momentum_buffer"] = buf
