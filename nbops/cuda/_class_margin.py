"""CUDA kernels of ``nbops.multi_margin_loss`` and ``nbops.multilabel_margin_loss``
(nbops/_ops/class_margin_losses.py): one thread per row (sample), grid-stride,
sums the row's hinge terms in float64 in class order (each hinge computed in the
input's dtype, as on the CPU), divides by the number of classes and, for the
backward and ``_with_grad``, writes the row's gradient; 'mean'/'sum' over the
rows are the deterministic block sums of nbops/cuda/_kernels.py.

A class index out of range sets ``err[0]`` (the row is not read at that index;
its loss is NaN), and the launcher raises ``ValueError`` after the kernel.
``multilabel_margin_loss`` marks its target classes in a device array of one
int8 flag per element (each row's thread clears and sets its own row).
"""

import math

import numpy as np
from numba import cuda, float64

from . import _kernels as K
from ._core import TPB

_kernels = {}


def _mm_kernel():
    if "mm" not in _kernels:
        @cuda.jit
        def rows(x, t, w, weighted, squared, margin, g, g_rows, c, n_cls, err, row_loss,
                 grad, want_grad):
            for r in range(cuda.grid(1), row_loss.size, cuda.gridsize(1)):
                base = r * n_cls
                y = t[r]
                gr = c * g[r if g_rows > 1 else 0] / n_cls
                if y < 0 or y >= n_cls:
                    err[0] = 1
                    row_loss[r] = math.nan
                    if want_grad:
                        for k in range(n_cls):
                            grad[base + k] = math.nan
                    continue
                xy = x[base + y]
                wy = w[y] if weighted else w[0]
                s = float64(0.0)
                gy = float64(0.0)
                for k in range(n_cls):
                    if k == y:
                        continue
                    z = margin - xy + x[base + k]
                    if z > 0:
                        h = z * z if squared else z
                        s += h * wy
                        if want_grad:
                            d = (gr * (z + z) if squared else gr) * wy
                            grad[base + k] = d
                            gy -= d
                    elif want_grad:
                        grad[base + k] = 0
                if want_grad:
                    grad[base + y] = gy
                row_loss[r] = s / n_cls

        _kernels["mm"] = rows
    return _kernels["mm"]


def _mlm_kernel():
    if "mlm" not in _kernels:
        @cuda.jit
        def rows(x, t, one, g, g_rows, c, n_cls, flags, err, row_loss, grad, want_grad):
            for r in range(cuda.grid(1), row_loss.size, cuda.gridsize(1)):
                base = r * n_cls
                for k in range(n_cls):
                    flags[base + k] = 0
                    if want_grad:
                        grad[base + k] = 0
                n_t = n_cls
                bad = False
                for j in range(n_cls):  # every entry in [-1, C); the list ends at the first -1
                    y = t[base + j]
                    if y < -1 or y >= n_cls:
                        bad = True
                    elif y == -1:
                        if n_t == n_cls:
                            n_t = j
                    elif n_t == n_cls:
                        flags[base + y] = 1
                if bad:
                    err[0] = 1
                    row_loss[r] = math.nan
                    continue
                s = float64(0.0)
                for j in range(n_t):
                    y = t[base + j]
                    b = one - x[base + y]
                    count = 0
                    for k in range(n_cls):
                        if flags[base + k] == 0:
                            z = b + x[base + k]
                            if z > 0:
                                s += z
                                if want_grad:
                                    grad[base + k] += 1
                                    count += 1
                    if want_grad:
                        grad[base + y] -= count
                row_loss[r] = s / n_cls
                if want_grad:
                    f = c * g[r if g_rows > 1 else 0] / n_cls
                    for k in range(n_cls):
                        grad[base + k] *= f

        _kernels["mlm"] = rows
    return _kernels["mlm"]


def _flat(a, name, dtype=None):
    d = a if hasattr(a, "copy_to_host") else cuda.as_cuda_array(a)
    if not d.is_c_contiguous():
        raise ValueError(f"{name} on the device must be C-contiguous")
    if dtype is not None and np.dtype(d.dtype) != dtype:
        raise ValueError(f"on the device {name} must have the input's dtype {dtype}")
    return d.reshape(d.size)


def _frames(shape):
    if not (len(shape) == 0 or len(shape) in (1, 2) and shape[-1] != 0):
        raise ValueError("Expected non-empty vector or matrix with optional 0-dim batch size, "
                         f"but got: {shape}")
    if len(shape) <= 1:
        return 1, (shape[0] if shape else 1)
    return shape


def _input(input):
    dtype = np.dtype(input.dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError("CUDA inputs must be float32 or float64 arrays")
    return dtype


def _targets(target):
    if np.dtype(target.dtype) != np.int64:
        raise ValueError("on the device the target must be an int64 array")
    return _flat(target, "target")


def _grads(g, rows, loss_shape, dtype):
    if g is None:
        return cuda.to_device(np.ones(1, dtype))
    gd = _flat(g, "grad_output", dtype)
    if tuple(g.shape) != loss_shape:
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected the shape of the "
                         f"per-sample losses {loss_shape} (reduction='none')")
    return gd


def _finish(row_loss, mode, loss_shape, dtype):
    rows = row_loss.size
    if mode == "none":
        return row_loss.reshape(loss_shape) if loss_shape else K.as_0d(row_loss)
    if rows == 0:
        z = cuda.to_device(np.zeros(1))
        return K.finish(z, dtype, denom=0.0 if mode == "mean" else 1.0)
    return K.finish(K.partial_sums(row_loss), dtype, denom=rows if mode == "mean" else 1.0)


def multi_margin(input, target, p, margin, weight, mode, g, c, want_grad):
    """(loss, grad or None) of ``multi_margin_loss`` on device arrays."""
    shape = tuple(input.shape)
    dtype = _input(input)
    if weight is not None and len(weight.shape) != 1:
        raise ValueError("weight must be one-dimensional")
    n, n_cls = _frames(shape)
    if len(target.shape) > 1 or target.size != n:
        raise ValueError(f"inconsistent target size, expected {n} but got "
                         f"{tuple(target.shape)}")
    if weight is not None and weight.size != n_cls:
        raise ValueError(f"inconsistent weight size, expected {n_cls} but got "
                         f"{tuple(weight.shape)}")
    loss_shape = (n,) if len(target.shape) else ()
    x, t = _flat(input, "input", dtype), _targets(target)
    w = cuda.to_device(np.ones(1, dtype)) if weight is None else _flat(weight, "weight", dtype)
    gd = _grads(g, n, loss_shape, dtype)
    row_loss = cuda.device_array(n, dtype)
    grad = cuda.device_array(n * n_cls if want_grad else 1, dtype)
    err = cuda.to_device(np.zeros(1, np.int32))
    if n:
        _mm_kernel()[K.grid(n), TPB](x, t, w, weight is not None, p == 2,
                                     dtype.type(margin), gd, gd.size, dtype.type(c), n_cls,
                                     err, row_loss, grad, want_grad)
        if err.copy_to_host()[0]:
            raise ValueError("target: a class index is out of range: expected 0 <= index "
                             f"< {n_cls} (the number of classes)")
    return _finish(row_loss, mode, loss_shape, dtype), \
        grad.reshape(shape) if want_grad else None


def multilabel_margin(input, target, mode, g, c, want_grad):
    """(loss, grad or None) of ``multilabel_margin_loss`` on device arrays."""
    shape = tuple(input.shape)
    dtype = _input(input)
    n, n_cls = _frames(shape)
    tshape = tuple(target.shape)
    if (len(tshape) > 1 or target.size != n_cls) if len(shape) <= 1 else tshape != shape:
        raise ValueError(f"inconsistent target size: {tshape} for input of size: {shape}")
    loss_shape = (n,) if len(tshape) == 2 else ()
    x, t = _flat(input, "input", dtype), _targets(target)
    gd = _grads(g, n, loss_shape, dtype)
    row_loss = cuda.device_array(n, dtype)
    grad = cuda.device_array(n * n_cls if want_grad else 1, dtype)
    flags = cuda.device_array(max(n * n_cls, 1), np.int8)
    err = cuda.to_device(np.zeros(1, np.int32))
    if n:
        _mlm_kernel()[K.grid(n), TPB](x, t, dtype.type(1.0), gd, gd.size, dtype.type(c),
                                      n_cls, flags, err, row_loss, grad, want_grad)
        if err.copy_to_host()[0]:
            raise ValueError("target: a class index is out of range: expected -1 <= index "
                             f"< {n_cls} (the number of classes)")
    return _finish(row_loss, mode, loss_shape, dtype), \
        grad.reshape(shape) if want_grad else None
