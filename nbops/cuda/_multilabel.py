"""CUDA kernels of ``nbops.multilabel_soft_margin_loss`` (nbops/_ops/multilabel_losses.py):
one thread per row (sample; a grid-stride loop over the rows) sums its weighted
class terms in float64 in class order, divides by the number of classes and, for
the backward and ``_with_grad``, writes the row's gradient; 'mean'/'sum' over the
rows are the deterministic block sums of nbops/cuda/_kernels.py. The class terms
are the scalar cores :func:`nbops.scalar.losses.multilabel_soft_margin_term` and
its derivative.
"""

import numpy as np
from numba import cuda, float64

from ..scalar import losses as S
from . import _kernels as K
from ._core import TPB, device

_kernel = []


def _rows_kernel():
    if not _kernel:
        term = device(S.multilabel_soft_margin_term)
        dterm = device(S.multilabel_soft_margin_term_backward)

        @cuda.jit
        def rows(x, t, w, w_rows, g, g_rows, c, row_loss, grad, want_grad, n_cls):
            for r in range(cuda.grid(1), row_loss.size, cuda.gridsize(1)):
                base = r * n_cls
                wbase = base if w_rows > 1 else 0
                gr = c * g[r if g_rows > 1 else 0]
                s = float64(0.0)
                for k in range(n_cls):
                    wk = w[wbase + k]
                    s += term(x[base + k], t[base + k]) * wk
                    if want_grad:
                        grad[base + k] = dterm(gr * wk, x[base + k], t[base + k]) / n_cls
                row_loss[r] = s / n_cls

        _kernel.append(rows)
    return _kernel[0]


def _flat(a, name, dtype):
    d = a if hasattr(a, "copy_to_host") else cuda.as_cuda_array(a)
    if not d.is_c_contiguous():
        raise ValueError(f"multilabel_soft_margin_loss: {name} on the device must be "
                         "C-contiguous")
    if np.dtype(d.dtype) != dtype:
        raise ValueError(f"multilabel_soft_margin_loss: on the device {name} must have the "
                         f"input's dtype {dtype}")
    return d.reshape(d.size)


def run(input, target, weight, mode, g, c, want_grad):
    """(loss, grad or None): the loss as the forward returns it for ``mode`` (a 0-d
    device array for 'mean'/'sum'), the gradient of the input's shape."""
    shape = tuple(input.shape)
    if not shape:
        raise ValueError("multilabel_soft_margin_loss: input must have a class axis")
    dtype = np.dtype(input.dtype)
    if dtype.kind != "f":
        raise ValueError("multilabel_soft_margin_loss: CUDA inputs must be float arrays")
    if tuple(target.shape) != shape:
        raise ValueError("multilabel_soft_margin_loss: on the device the target must have "
                         "the input's shape")
    n_cls = shape[-1]
    rows = int(np.prod(shape[:-1]))
    x, t = _flat(input, "input", dtype), _flat(target, "target", dtype)
    if weight is None:
        w = cuda.to_device(np.ones(n_cls, dtype))
    else:
        w = _flat(weight, "weight", dtype)
        if w.size not in (n_cls, rows * n_cls):
            raise ValueError("multilabel_soft_margin_loss: on the device the weight must have "
                             "shape (C,) or the input's")
    gd = cuda.to_device(np.ones(1, dtype)) if g is None else _flat(g, "grad_output", dtype)
    if g is not None and gd.size != rows:
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected the shape of the "
                         f"per-sample losses {shape[:-1]} (reduction='none')")
    row_loss = cuda.device_array(rows, dtype)
    grad = cuda.device_array(rows * n_cls if want_grad else 1, dtype)
    if rows:
        _rows_kernel()[K.grid(rows), TPB](x, t, w, w.size // n_cls if n_cls else 1, gd,
                                           gd.size, dtype.type(c), row_loss, grad, want_grad,
                                           n_cls)
    grad = grad.reshape(shape) if want_grad else None
    if mode == "none":
        return row_loss.reshape(shape[:-1]), grad
    denom = rows if mode == "mean" else 1.0
    return K.finish(K.partial_sums(row_loss), dtype, denom=denom), grad
