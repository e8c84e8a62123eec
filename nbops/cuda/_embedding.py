"""CUDA paths of the embedding losses (nbops/_ops/embedding_losses.py).

cosine_embedding_loss: one thread per row (grid-stride) sums the row's dot
product and squared magnitudes in float64 in index order, as the CPU kernel,
and, for the backward and ``_with_grad``, writes both rows' gradients.

triplet_margin_loss: the row distances are :func:`nbops.pairwise_distance`'s
CUDA kernel (nbops/cuda/_kernels.py ``run_pdist``), one thread per row then
forms the hinge, the swap's minimum and the distances' gradients (the CPU's
rules: clamp_min passes at 0, a tie of the minimum splits in halves), and the
inputs' gradients are ``run_pdist_grad`` of each pair added on the device.

'mean'/'sum' over the rows are the deterministic block sums of
nbops/cuda/_kernels.py. Device arrays here are C-contiguous, of one float dtype
and of one shape (no broadcasting on the device).
"""

import math

import numpy as np
from numba import cuda, float64

from .._ops.plan import reduction_plan
from .._ops.plan_norm import pairwise_distance_plan
from . import _grad_ops as GO
from . import _kernels as K
from ._core import TPB


@cuda.jit
def _cosine_kernel(a, b, t, t_rows, dim, margin, g, g_rows, c, loss, g1, g2, want_grad):
    for r in range(cuda.grid(1), loss.size, cuda.gridsize(1)):
        base = r * dim
        s = float64(0.0)
        q1 = float64(0.0)
        q2 = float64(0.0)
        for i in range(dim):
            u = float64(a[base + i])
            v = float64(b[base + i])
            s += u * v
            q1 += u * u
            q2 += v * v
        q1 += 1e-12  # EPSILON, as the CPU kernel
        q2 += 1e-12
        denom = math.sqrt(q1 * q2)
        cos = s / denom
        tr = float64(t[r if t_rows > 1 else 0])
        gc = float64(0.0)
        value = float64(0.0)
        if tr == 1.0:
            value = 1.0 - cos
            gc = -1.0
        elif tr == -1.0:
            value = cos - margin
            if value >= 0.0:
                gc = 1.0
            elif value < 0.0:
                value = 0.0
        loss[r] = value
        if want_grad:
            gr = c * float64(g[r if g_rows > 1 else 0]) * gc
            k = gr / denom
            k1 = gr * cos / q1
            k2 = gr * cos / q2
            for i in range(dim):
                u = float64(a[base + i])
                v = float64(b[base + i])
                g1[base + i] = k * v - k1 * u
                g2[base + i] = k * u - k2 * v


@cuda.jit
def _hinge_kernel(dp, dn, ds, swap, margin, g, g_rows, c, loss, cp, cn, cs, want_grad):
    for r in range(cuda.grid(1), loss.size, cuda.gridsize(1)):
        neg = dn[r]
        if swap and (ds[r] < neg or ds[r] != ds[r]):
            neg = ds[r]
        v = (margin + dp[r]) - neg
        loss[r] = v if (v > 0 or v != v) else 0.0
        if want_grad:
            gr = c * g[r if g_rows > 1 else 0] if v >= 0 else 0.0 * c
            cp[r] = gr
            if not swap:
                cn[r] = -gr
            elif dn[r] == ds[r]:
                cn[r] = -gr / 2
                cs[r] = -gr / 2
            elif dn[r] < ds[r]:
                cn[r] = -gr
                cs[r] = 0.0
            elif dn[r] > ds[r]:
                cn[r] = 0.0
                cs[r] = -gr
            else:  # a NaN: both, as torch.autograd's minimum
                cn[r] = -gr
                cs[r] = -gr


def _dev(x, name):
    d = x if hasattr(x, "copy_to_host") else cuda.as_cuda_array(x)
    if d.size and not d.is_c_contiguous():
        raise ValueError(f"{name}: on the device this loss needs C-contiguous arrays")
    return d


def _float(dt, name):
    dt = np.dtype(dt)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{name}: CUDA arrays must be float32 or float64 (got dtype {dt})")
    return dt


def _scalar(grad_output):
    """A reduced loss's ``grad_output`` (a number or a 0-d/1-element array) as a float."""
    if hasattr(grad_output, "copy_to_host"):
        return float(np.asarray(grad_output.copy_to_host()).reshape(-1)[0])
    if hasattr(grad_output, "__cuda_array_interface__"):
        return float(cuda.as_cuda_array(grad_output).copy_to_host().reshape(-1)[0])
    if isinstance(grad_output, (bool, np.bool_)):
        raise TypeError("grad_output: expected a real number, got a bool")
    g = np.asarray(grad_output)
    if g.shape != ():
        raise ValueError(f"grad_output has shape {g.shape}, expected a scalar (shape ())")
    return float(g)


def _row_grads(grad_output, mode, out_shape, dt):
    """(device array of the per-row gradients, its length (1: shared), the factor);
    ``grad_output`` None: those of the loss itself (the forward ignores them)."""
    rows = math.prod(out_shape)
    if grad_output is None:
        c = (1.0 / rows if rows else math.nan) if mode == "mean" else 1.0
        return cuda.to_device(np.ones(1, dt)), 1, c
    if mode == "none":
        g = _dev(grad_output, "grad_output")
        if tuple(g.shape) != tuple(out_shape):
            raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected the shape of "
                             f"the unreduced loss {tuple(out_shape)} (reduction='none')")
        if np.dtype(g.dtype) != dt:
            raise TypeError(f"grad_output: dtype {g.dtype} differs from the inputs' {dt}")
        return g.reshape(g.size), g.size, 1.0
    c = _scalar(grad_output)
    if mode == "mean":
        c = c / rows if rows else math.nan
    return cuda.to_device(np.ones(1, dt)), 1, c


def _reduce(loss, mode, out_shape, dt):
    if mode == "none":
        return loss.reshape(out_shape)
    return K.finish(K.partial_sums(loss), dt, denom=loss.size if mode == "mean" else 1.0)


def cosine(input1, input2, target, margin, size_average, reduce, reduction, grad_output,
           want_grad):
    """(loss, (grad_input1, grad_input2) or None) of device arrays; ``grad_output``
    None: the gradients of the loss itself (``_with_grad``)."""
    from .._ops.embedding_losses import _cosine_check_dims

    _cosine_check_dims(len(target.shape), tuple(input1.shape), tuple(input2.shape))
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=4).mode
    a, b, t = _dev(input1, "input1"), _dev(input2, "input2"), _dev(target, "target")
    dt = _float(a.dtype, "input1")
    if np.dtype(b.dtype) != dt or tuple(a.shape) != tuple(b.shape):
        raise ValueError("cosine_embedding_loss: on CUDA device arrays input1 and input2 must "
                         "have one shape and dtype")
    shape = tuple(a.shape)
    out_shape = shape[:-1]
    rows, dim = math.prod(out_shape), shape[-1]
    if t.size not in (1, rows):
        raise ValueError(f"cosine_embedding_loss: the target of shape {tuple(t.shape)} must "
                         f"have one value per row ({rows})")
    if np.dtype(t.dtype).kind not in "biuf":
        raise TypeError(f"target: expected real numbers, got dtype {t.dtype}")
    g, g_rows, c = _row_grads(grad_output, mode, out_shape, dt)
    loss = cuda.device_array(rows, dt)
    size = rows * dim if want_grad else 1
    g1, g2 = cuda.device_array(size, dt), cuda.device_array(size, dt)
    if rows:
        _cosine_kernel[K.grid(rows), TPB](a.reshape(a.size), b.reshape(b.size),
                                          t.reshape(t.size), t.size, dim, float(margin), g,
                                          g_rows, c, loss, g1, g2, want_grad)
    grads = (g1.reshape(a.shape), g2.reshape(b.shape)) if want_grad else None
    if want_grad and grad_output is not None:  # the backward: the gradients only
        return None, grads
    return _reduce(loss, mode, out_shape, dt), grads


def triplet(anchor, positive, negative, margin, p, eps, swap, mode, grad_output, want_grad):
    """(loss, (grad_anchor, grad_positive, grad_negative) or None) of device arrays;
    ``grad_output`` None: the gradients of the loss itself (``_with_grad``)."""
    from .._ops.embedding_losses import _triplet_check
    from .._validate import as_param

    names = ("anchor", "positive", "negative")
    arrays = [_dev(x, n) for x, n in zip((anchor, positive, negative), names, strict=True)]
    margin = as_param(margin, "margin")
    _triplet_check([len(x.shape) for x in arrays], margin)
    dt = _float(arrays[0].dtype, "anchor")
    for x, n in zip(arrays, names, strict=True):
        if np.dtype(x.dtype) != dt or tuple(x.shape) != tuple(arrays[0].shape):
            raise ValueError(f"triplet_margin_loss: on CUDA device arrays anchor, positive "
                             f"and negative must have one shape and dtype ({n} differs)")
    shape = tuple(arrays[0].shape)
    plan = pairwise_distance_plan(shape, shape, p, eps, False)
    rows, dim = plan.rows, plan.dim
    fa, fp, fn = (x.reshape(x.size) for x in arrays)
    dp, dn = cuda.device_array(rows, dt), cuda.device_array(rows, dt)
    ds = cuda.device_array(rows if swap else 1, dt)
    if rows:
        K.run_pdist(fa, fp, rows, dim, plan.p, plan.eps, dp)
        K.run_pdist(fa, fn, rows, dim, plan.p, plan.eps, dn)
        if swap:
            K.run_pdist(fp, fn, rows, dim, plan.p, plan.eps, ds)
    g, g_rows, c = _row_grads(grad_output, mode, plan.out_shape, dt)
    loss = cuda.device_array(rows, dt)
    coefficients = [cuda.device_array(max(rows, 1), dt) for _ in range(3)]
    if rows:
        _hinge_kernel[K.grid(rows), TPB](dp, dn, ds if swap else dn, bool(swap),
                                         dt.type(margin), g, g_rows, dt.type(c), loss,
                                         *coefficients, want_grad)
    grads = None
    if want_grad:
        grads = [cuda.device_array(shape, dt) for _ in range(3)]
        flat = [x.reshape(x.size) for x in grads]
        if rows and dim:
            cp, cn, cs = coefficients
            K.run_pdist_grad(fa, fp, rows, dim, plan.p, plan.eps, dp, cp, flat[0], flat[1])
            o1, o2 = cuda.device_array(rows * dim, dt), cuda.device_array(rows * dim, dt)
            K.run_pdist_grad(fa, fn, rows, dim, plan.p, plan.eps, dn, cn, o1, flat[2])
            GO.add_into(flat[0], o1)
            if swap:
                K.run_pdist_grad(fp, fn, rows, dim, plan.p, plan.eps, ds, cs, o1, o2)
                GO.add_into(flat[1], o1)
                GO.add_into(flat[2], o2)
        else:
            for x in flat:
                if x.size:
                    K.run_fill(x, dt.type(0))
        grads = tuple(grads)
    if want_grad and grad_output is not None:
        return None, grads
    return _reduce(loss, mode, plan.out_shape, dt), grads
