"""CUDA kernels of ``nbops.gaussian_nll_loss`` (nbops/_ops/nll_losses.py).

The variance, clamped and broadcast as PyTorch allows (the input's shape, or
one axis of size 1, which the homoscedastic ``(N, ..., 1)`` is), is read at
``(i // inner) % m`` by one thread per element: the losses (their sum by the
deterministic block sums of nbops/cuda/_kernels.py), the input's gradient and
the variance's per-element gradient, which a second kernel sums over the
broadcast axis (one thread per variance element, in axis order). The math is
the scalar cores of :mod:`nbops.scalar.losses`.
"""

import numpy as np
from numba import cuda, float64

from ..scalar import losses as S
from . import _kernels as K
from ._core import TPB, device

_kernels = {}


def _elements(full):
    key = ("elements", full)
    if key not in _kernels:
        loss = device(S.gaussian_nll_loss_full if full else S.gaussian_nll_loss)
        dx = device(S.gaussian_nll_loss_backward)
        dv = device(S.gaussian_nll_loss_var_backward)

        @cuda.jit
        def elements(x, t, v, vm, vinner, eps, g, g_full, c, out, gx, gv, want_grad):
            for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
                vi = v[(i // vinner) % vm]
                vc = vi if vi != vi or vi >= eps else eps
                out[i] = loss(x[i], t[i], vc)
                if want_grad:
                    gi = c * (g[i] if g_full else g[0])
                    gx[i] = dx(gi, x[i], t[i], vc)
                    gv[i] = dv(gi, x[i], t[i], vc)

        _kernels[key] = elements
    return _kernels[key]


@cuda.jit
def _sum_axis(gv, length, inner, out):
    """out[o * inner + j] = sum over l of gv[(o * length + l) * inner + j] (float64)."""
    for k in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        o = k // inner
        j = k - o * inner
        s = float64(0.0)
        for idx in range(length):
            s += gv[(o * length + idx) * inner + j]
        out[k] = s


def _flat(a, name, dtype):
    d = a if hasattr(a, "copy_to_host") else cuda.as_cuda_array(a)
    if not d.is_c_contiguous():
        raise ValueError(f"gaussian_nll_loss: {name} on the device must be C-contiguous")
    if np.dtype(d.dtype) != dtype:
        raise ValueError(f"gaussian_nll_loss: on the device {name} must have the input's "
                         f"dtype {dtype}")
    return d.reshape(d.size)


def run(input, target, var, var_shape, full, eps, mode, g, c, want_grad):
    """(loss, grad_input, grad_var): ``var`` a device array of ``var_shape`` (already
    checked, unsqueezed to the input's number of dimensions) or a float (then
    ``var_shape`` is None and so is ``grad_var``)."""
    shape = tuple(input.shape)
    dtype = np.dtype(input.dtype)
    if dtype.kind != "f" or tuple(target.shape) != shape:
        raise ValueError("gaussian_nll_loss: on the device input and target must be float "
                         "arrays of one shape")
    n = int(np.prod(shape))
    x, t = _flat(input, "input", dtype), _flat(target, "target", dtype)
    axis = None
    if var_shape is None:
        v = cuda.to_device(np.full(1, var, dtype))
    else:
        v = _flat(var, "var", dtype)
        axis = next((k for k, (a, b) in enumerate(zip(shape, var_shape, strict=True))
                     if a != b), None)
    gd = cuda.to_device(np.ones(1, dtype)) if g is None else _flat(g, "grad_output", dtype)
    if g is not None and gd.size != n:
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected the shape of the "
                         f"unreduced loss {shape} (reduction='none')")
    out = cuda.device_array(n, dtype)
    gx = cuda.device_array(n if want_grad else 1, dtype)
    gv = cuda.device_array(n if want_grad else 1, dtype)
    length = shape[axis] if axis is not None else 1
    inner = int(np.prod(shape[axis + 1:])) if axis is not None else 1
    if n:
        args = (x, t, v, eps_as(dtype, eps), gd, g is not None, dtype.type(c), out, gx, gv,
                want_grad)
        if axis is None:  # one variance per element, or one for all
            _elements(full)[K.grid(n), TPB](args[0], args[1], args[2], v.size, 1, *args[3:])
        else:
            _elements_axis(full)[K.grid(n), TPB](args[0], args[1], args[2], length, inner,
                                                 *args[3:])
    loss = out.reshape(shape) if mode == "none" else K.finish(
        K.partial_sums(out), dtype, denom=n if mode == "mean" else 1.0)
    if not want_grad:
        return loss, None, None
    grad_v = None
    if var_shape is not None:
        if axis is None:
            grad_v = gv.reshape(var_shape)
        else:
            res = cuda.device_array(v.size, dtype)
            if v.size:
                _sum_axis[K.grid(v.size), TPB](gv, length, inner, res)
            grad_v = res.reshape(var_shape)
    return loss, gx.reshape(shape), grad_v


def eps_as(dtype, eps):
    return dtype.type(eps)


def _elements_axis(full):
    """The element kernel when the variance is broadcast along one axis (of ``length``,
    ``inner`` elements after it): input element i reads variance element
    ``(i // (length * inner)) * inner + i % inner``."""
    key = ("axis", full)
    if key not in _kernels:
        loss = device(S.gaussian_nll_loss_full if full else S.gaussian_nll_loss)
        dx = device(S.gaussian_nll_loss_backward)
        dv = device(S.gaussian_nll_loss_var_backward)

        @cuda.jit
        def elements(x, t, v, length, inner, eps, g, g_full, c, out, gx, gv, want_grad):
            for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
                vi = v[(i // (length * inner)) * inner + i % inner]
                vc = vi if vi != vi or vi >= eps else eps
                out[i] = loss(x[i], t[i], vc)
                if want_grad:
                    gi = c * (g[i] if g_full else g[0])
                    gx[i] = dx(gi, x[i], t[i], vc)
                    gv[i] = dv(gi, x[i], t[i], vc)

        _kernels[key] = elements
    return _kernels[key]
