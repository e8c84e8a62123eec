"""The optimizers' CUDA kernels: the element functions of :mod:`nbops.optim._kernels`
compiled for the GPU, one thread per element (grid-stride loops).

Imported only when an optimizer meets a device array (this imports
``numba.cuda``). The element functions are compiled from the same Python
functions as the CPU kernels, with ``fma`` bound to CUDA's fused multiply-add
(the CPU kernels use LLVM's, where the CPU has one) and ``sqrt`` to the
correctly rounded square root. Under the simulator (``NUMBA_ENABLE_CUDASIM=1``)
they run as Python on NumPy scalars, with an exactly rounded ``fma``.
"""

import math
import types as _pytypes
from fractions import Fraction

import numpy as np
from numba import config, cuda

from ..cuda._core import TPB
from . import _kernels as K

SIMULATOR = bool(config.ENABLE_CUDASIM)
_MAX_BLOCKS = 4096


def _round_to(exact, kind):
    """``exact`` (a Fraction) rounded to nearest, ties to even, in ``kind``."""
    d = float(exact)  # correctly rounded to float64
    if kind is np.float64:
        return np.float64(d)
    r = np.float32(d)  # may be off by double rounding: check the neighbours
    best, best_err = r, abs(Fraction(float(r)) - exact)
    for cand in (np.nextafter(r, np.float32(-np.inf)), np.nextafter(r, np.float32(np.inf))):
        if not np.isfinite(cand):
            continue
        err = abs(Fraction(float(cand)) - exact)
        if err < best_err or (err == best_err and int(cand.view(np.int32)) % 2 == 0):
            best, best_err = cand, err
    return best


def _py_fma(a, b, c):
    """``a * b + c`` with one rounding, on NumPy scalars (the simulator's fma)."""
    kind = type(a)
    if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
        return kind(a * b + c)
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    if exact == 0:
        return kind(a * b + c)  # the sign of zero as the plain expression
    try:
        return _round_to(exact, kind)
    except OverflowError:
        return kind(a * b + c)


def _py_sqrt(x):
    return type(x)(math.sqrt(x))  # via float64: correctly rounded for float32 too


def _device_function(fn):
    if SIMULATOR:
        names = {"fma": _py_fma, "sqrt": _py_sqrt}
    else:
        names = {"fma": _cuda_fma, "sqrt": math.sqrt}
    g = dict(fn.__globals__)
    g.update(names)
    rebound = _pytypes.FunctionType(fn.__code__, g, fn.__name__, fn.__defaults__,
                                    fn.__closure__)
    return cuda.jit(device=True)(rebound)


if not SIMULATOR:
    @cuda.jit(device=True)
    def _cuda_fma(a, b, c):
        return cuda.fma(a, b, c)

_sgd_update = _device_function(K.sgd_update)
_adam_update = _device_function(K.adam_update)


@cuda.jit
def _sgd_kernel(param, grad, buf, first, maximize, decay, weight_decay, use_momentum, momentum,
                one_minus_dampening, nesterov, neg_lr):
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        b = buf[i] if use_momentum else param[i]
        p, b = _sgd_update(param[i], grad[i], b, first, maximize, decay, weight_decay,
                           use_momentum, momentum, one_minus_dampening, nesterov, neg_lr)
        param[i] = p
        if use_momentum:
            buf[i] = b


@cuda.jit
def _adam_kernel(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, maximize, coupled,
                 weight_decay, decoupled, decay_factor, lerp_small, weight1, weight1_minus_one,
                 beta2, one_minus_beta2, amsgrad, bias_correction2_sqrt, eps, neg_step_size):
    for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
        vmax = max_exp_avg_sq[i] if amsgrad else exp_avg_sq[i]
        p, m, v, vmax = _adam_update(
            param[i], grad[i], exp_avg[i], exp_avg_sq[i], vmax, maximize, coupled,
            weight_decay, decoupled, decay_factor, lerp_small, weight1, weight1_minus_one,
            beta2, one_minus_beta2, amsgrad, bias_correction2_sqrt, eps, neg_step_size)
        param[i] = p
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            max_exp_avg_sq[i] = vmax


@cuda.jit
def _zero_kernel(out):
    for i in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        out[i] = 0


def _blocks(n):
    return max(1, min((n + TPB - 1) // TPB, _MAX_BLOCKS))


def _flat(a, name):
    if not a.is_c_contiguous():
        raise ValueError(f"{name}: the optimizers need C-contiguous device arrays")
    return a.reshape(a.size)


def fill_zero(a):
    """Set device array ``a`` to zeros in place."""
    if a.size:
        _zero_kernel[_blocks(a.size), TPB](_flat(a, "grad"))


def empty_like(a):
    return cuda.device_array(a.shape, dtype=a.dtype)


def zeros_like(a):
    out = empty_like(a)
    fill_zero(out)
    return out


def to_device(host):
    return cuda.to_device(np.ascontiguousarray(host))


def sgd_step(param, grad, buf, coefficients):
    """The SGD update of a device parameter (``buf``: the momentum buffer, or
    ``param`` itself when there is no momentum)."""
    n = param.size
    if n:
        _sgd_kernel[_blocks(n), TPB](_flat(param, "param"), _flat(grad, "grad"),
                                     _flat(buf, "momentum_buffer"), *coefficients)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, coefficients):
    """The Adam update of a device parameter (``max_exp_avg_sq`` is ``exp_avg_sq``
    without amsgrad)."""
    n = param.size
    if n:
        _adam_kernel[_blocks(n), TPB](
            _flat(param, "param"), _flat(grad, "grad"), _flat(exp_avg, "exp_avg"),
            _flat(exp_avg_sq, "exp_avg_sq"), _flat(max_exp_avg_sq, "max_exp_avg_sq"),
            *coefficients)
