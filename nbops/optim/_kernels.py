"""The optimizers' updates: one element function each, one fused kernel per parameter.

Each update is written once as a function of one element's values (parameter,
gradient, state) and the step's scalar coefficients, returning the new values:
:func:`sgd_update` and :func:`adam_update`. The CPU kernels here run it over a
parameter's flat view in chunks (``prange``: a serial and a ``parallel=True``
twin from :func:`nbops._config.kernels`, picked by size in
:func:`nbops._launch.launch`); the CUDA kernels (:mod:`nbops.optim._cuda`) run
the same function, one thread per element. Each kernel reads the parameter,
its gradient and its state once and writes the parameter and state once.

The operations and their order are those of PyTorch's single-tensor path
(``torch/optim/sgd.py`` and ``adam.py``, ``foreach=False``), each PyTorch
kernel's arithmetic reproduced with its rounding: ``add(x, alpha=a)`` and
``addcmul`` are fused multiply-adds in ATen's vectorized CPU kernels, ``lerp``
is ``fma(w, end - start, start)`` for ``|w| < 0.5`` and
``fma(w - 1, end - start, end)`` otherwise, ``addcdiv`` is
``(value * t1) / t2 + self``. The scalar coefficients are computed by the
launcher in Python float64 (as PyTorch does) and rounded once to the
parameter's dtype, so no operation here mixes dtypes.
"""

import math

import numpy as np
from numba import prange

from .. import _config
from .._launch import launch
from ..scalar._math import _fma

#: Elements per parallel task of the CPU kernels.
CHUNK = 1 << 15

fma = _fma  # the CUDA and simulator versions rebind this name (nbops/optim/_cuda.py)
sqrt = math.sqrt


def sgd_update(p, g, buf, first, maximize, decay, weight_decay, use_momentum, momentum,
               one_minus_dampening, nesterov, neg_lr):
    """One element of PyTorch's SGD step: returns the new (parameter, momentum buffer).

    ``decay`` / ``use_momentum``: whether weight decay / momentum apply (non-zero
    options); ``first``: the momentum buffer does not exist yet (it becomes the
    gradient, as PyTorch's ``grad.clone()``).
    """
    if maximize:
        g = -g
    if decay:
        g = fma(p, weight_decay, g)  # grad.add(param, alpha=weight_decay)
    if use_momentum:
        if first:
            buf = g
        else:
            buf = fma(g, one_minus_dampening, buf * momentum)
        if nesterov:
            g = fma(buf, momentum, g)  # grad.add(buf, alpha=momentum)
        else:
            g = buf
    return fma(g, neg_lr, p), buf  # param.add_(grad, alpha=-lr)


def adam_update(p, g, m, v, vmax, maximize, coupled, weight_decay, decoupled, decay_factor,
                lerp_small, weight1, weight1_minus_one, beta2, one_minus_beta2, amsgrad,
                bias_correction2_sqrt, eps, neg_step_size):
    """One element of PyTorch's Adam/AdamW step: returns the new
    (parameter, exp_avg, exp_avg_sq, max_exp_avg_sq)."""
    if maximize:
        g = -g
    if coupled:
        g = fma(p, weight_decay, g)  # Adam: grad.add(param, alpha=weight_decay)
    if decoupled:
        p = p * decay_factor  # AdamW: param.mul_(1 - lr * weight_decay)
    # exp_avg.lerp_(grad, 1 - beta1)
    if lerp_small:
        m = fma(weight1, g - m, m)
    else:
        m = fma(weight1_minus_one, g - m, g)
    # exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    v = fma(one_minus_beta2 * g, g, v * beta2)
    s = v
    if amsgrad:  # torch.maximum (NaN-propagating)
        if not (vmax > v or vmax != vmax):
            vmax = v
        s = vmax
    denom = sqrt(s) / bias_correction2_sqrt + eps
    # param.addcdiv_(exp_avg, denom, value=-step_size)
    return (neg_step_size * m) / denom + p, m, v, vmax


def _sgd_chunks(param, grad, buf, first, maximize, decay, weight_decay, use_momentum, momentum,
                one_minus_dampening, nesterov, neg_lr):
    # Each task loops over its chunk's views from index 0 (no negative-index
    # wrap-around to check), one loop per value of use_momentum (no memory access
    # under a condition): both compile to vector code.
    n = param.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        p, g = param[lo:hi], grad[lo:hi]
        if use_momentum:
            b = buf[lo:hi]
            for i in range(hi - lo):
                new_p, new_b = _sgd_update(p[i], g[i], b[i], first, maximize, decay,
                                           weight_decay, True, momentum, one_minus_dampening,
                                           nesterov, neg_lr)
                p[i] = new_p
                b[i] = new_b
        else:
            for i in range(hi - lo):
                new_p, _ = _sgd_update(p[i], g[i], p[i], first, maximize, decay, weight_decay,
                                       False, momentum, one_minus_dampening, nesterov, neg_lr)
                p[i] = new_p


def _adam_chunks(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, maximize, coupled,
                 weight_decay, decoupled, decay_factor, lerp_small, weight1, weight1_minus_one,
                 beta2, one_minus_beta2, amsgrad, bias_correction2_sqrt, eps, neg_step_size):
    # As _sgd_chunks: chunk views, one loop per value of amsgrad.
    n = param.size
    for c in prange((n + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(n, lo + CHUNK)
        p, g, m, v = param[lo:hi], grad[lo:hi], exp_avg[lo:hi], exp_avg_sq[lo:hi]
        if amsgrad:
            vmax = max_exp_avg_sq[lo:hi]
            for i in range(hi - lo):
                new_p, new_m, new_v, new_vmax = _adam_update(
                    p[i], g[i], m[i], v[i], vmax[i], maximize, coupled, weight_decay,
                    decoupled, decay_factor, lerp_small, weight1, weight1_minus_one, beta2,
                    one_minus_beta2, True, bias_correction2_sqrt, eps, neg_step_size)
                p[i] = new_p
                m[i] = new_m
                v[i] = new_v
                vmax[i] = new_vmax
        else:
            for i in range(hi - lo):
                new_p, new_m, new_v, _ = _adam_update(
                    p[i], g[i], m[i], v[i], v[i], maximize, coupled, weight_decay, decoupled,
                    decay_factor, lerp_small, weight1, weight1_minus_one, beta2,
                    one_minus_beta2, False, bias_correction2_sqrt, eps, neg_step_size)
                p[i] = new_p
                m[i] = new_m
                v[i] = new_v


_sgd_update = _config.core(sgd_update)
_adam_update = _config.core(adam_update)
_sgd_serial, _sgd_parallel = _config.kernels(_sgd_chunks)
_adam_serial, _adam_parallel = _config.kernels(_adam_chunks)


def sgd_coefficients(dtype, group, first):
    """The scalar arguments of :func:`sgd_update` for one parameter group, rounded
    once to ``dtype`` (PyTorch rounds each Python scalar to the tensor's dtype)."""
    f = np.dtype(dtype).type
    wd, momentum = group["weight_decay"], group["momentum"]
    return (bool(first), bool(group["maximize"]), wd != 0, f(wd), momentum != 0, f(momentum),
            f(1 - group["dampening"]), bool(group["nesterov"]), f(-group["lr"]))


def adam_coefficients(dtype, group, step):
    """The scalar arguments of :func:`adam_update` for one parameter group at
    ``step`` (the already incremented step count), as PyTorch's single-tensor
    path computes them: bias corrections in Python float64, then each rounded
    once to ``dtype``."""
    f = np.dtype(dtype).type
    lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
    beta1, beta2 = group["betas"]
    decoupled = bool(group.get("decoupled_weight_decay", False))
    bias_correction1 = 1 - beta1 ** step
    bias_correction2 = 1 - beta2 ** step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2 ** 0.5
    weight1 = f(1 - beta1)
    return (bool(group["maximize"]), wd != 0 and not decoupled, f(wd), wd != 0 and decoupled,
            f(1 - lr * wd), bool(abs(weight1) < 0.5), weight1, weight1 - f(1), f(beta2),
            f(1 - beta2), bool(group["amsgrad"]), f(bias_correction2_sqrt), f(eps),
            f(-step_size))


def sgd_step(param, grad, buf, coefficients):
    """Run the SGD update on flat C-contiguous host arrays (``buf`` may be a
    1-element dummy when there is no momentum)."""
    launch(_sgd_serial, _sgd_parallel, ("sgd", param.dtype), param.size, param, grad, buf,
           *coefficients)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, coefficients):
    """Run the Adam update on flat C-contiguous host arrays (``max_exp_avg_sq``
    may be a 1-element dummy without amsgrad)."""
    launch(_adam_serial, _adam_parallel, ("adam", param.dtype), param.size, param, grad,
           exp_avg, exp_avg_sq, max_exp_avg_sq, *coefficients)
