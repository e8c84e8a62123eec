"""layer_norm and rms_norm (forward and backward) on device arrays.

One block per row (a grid-stride loop over the rows): the row's float64 sums
(shifted by the row's first value for layer_norm, as the CPU's
:func:`nbops.scalar._norms.finite_shift`) are reduced in the block's fixed tree
order (:func:`nbops.cuda._kernels.block_sum`), then the block writes the row.
``grad_weight``/``grad_bias`` are float64 column sums: one thread per (column,
chunk of rows) sums the chunk's rows in order, then a grid-stride loop over the
columns adds the chunks in order. No atomics: the results do not depend on the launch.
"""

import math

import numpy as np
from numba import cuda, float64

from ..scalar import _norms as NM
from ._core import SIMULATOR, TPB, device
from ._kernels import block_sum, grid
from ._ops import cflat, check_out, dev, empty, float_dtype

#: Blocks of the row kernels at most (each loops over its share of the rows).
MAX_ROW_BLOCKS = 8 if SIMULATOR else 4096

_finite_shift = device(NM.finite_shift)


@cuda.jit
def _norm_rows(x, length, centered, w, has_w, b, has_b, eps, mean, rstd, out):
    """Block-per-row forward; ``mean``/``rstd``: the statistics in ``x``'s dtype."""
    sh = cuda.shared.array(TPB, float64)
    t = cuda.threadIdx.x
    n_rows = mean.size
    for row in range(cuda.blockIdx.x, n_rows, cuda.gridDim.x):
        base = row * length
        shift = _finite_shift(x[base]) if centered else float64(0.0)
        s = float64(0.0)
        q = float64(0.0)
        for j in range(t, length, TPB):
            d = float64(x[base + j]) - shift
            s += d
            q += d * d
        s = block_sum(sh, s)
        q = block_sum(sh, q)
        if centered:
            mean_d = s / length
            var = q / length - mean_d * mean_d
            if var < 0.0:
                var = float64(0.0)
            m = shift + mean_d if var == var else var  # NaN statistics, as the CPU's
        else:
            m = float64(0.0)
            var = q / length
        r = 1.0 / math.sqrt(var + eps)
        if t == 0:
            mean[row] = m
            rstd[row] = r
        for j in range(t, length, TPB):
            v = (float64(x[base + j]) - m) * r
            if has_w:
                v *= float64(w[j])
            if has_b:
                v += float64(b[j])
            out[base + j] = v


@cuda.jit
def _norm_grad_rows(g, x, length, centered, w, has_w, mean, rstd, out):
    """Block-per-row grad_input (the CPU's formula, in float64)."""
    sh = cuda.shared.array(TPB, float64)
    t = cuda.threadIdx.x
    n_rows = rstd.size
    for row in range(cuda.blockIdx.x, n_rows, cuda.gridDim.x):
        base = row * length
        m = float64(mean[row]) if centered else float64(0.0)
        r = float64(rstd[row])
        a = float64(0.0)
        c = float64(0.0)
        for j in range(t, length, TPB):
            gw = float64(g[base + j]) * (float64(w[j]) if has_w else float64(1.0))
            a += gw
            c += gw * (float64(x[base + j]) - m)
        a = block_sum(sh, a)
        c = block_sum(sh, c)
        ka = a / length if centered else float64(0.0)
        kc = c / length * r * r
        for j in range(t, length, TPB):
            gw = float64(g[base + j]) * (float64(w[j]) if has_w else float64(1.0))
            out[base + j] = ((gw - ka) - (float64(x[base + j]) - m) * kc) * r


@cuda.jit
def _norm_grad_col_parts(g, x, length, centered, mean, rstd, per, part_w, part_b):
    """Thread (column j, chunk c): sum(g * x_hat) and sum(g) over the chunk's rows
    ``[c * per, (c + 1) * per)``, in order (consecutive threads read consecutive
    columns of a row)."""
    j = cuda.blockIdx.x * TPB + cuda.threadIdx.x
    c = cuda.blockIdx.y
    if j >= length:
        return
    sw = float64(0.0)
    sb = float64(0.0)
    for row in range(c * per, min(rstd.size, (c + 1) * per)):
        i = row * length + j
        gi = float64(g[i])
        m = float64(mean[row]) if centered else float64(0.0)
        sw += gi * ((float64(x[i]) - m) * float64(rstd[row]))
        sb += gi
    part_w[c, j] = sw
    part_b[c, j] = sb


@cuda.jit
def _norm_grad_col_finish(part_w, part_b, grad_w, grad_b):
    """Per column (a grid-stride loop): the chunks' partial sums, in chunk order."""
    for j in range(cuda.grid(1), grad_w.size, cuda.gridsize(1)):
        sw = float64(0.0)
        sb = float64(0.0)
        for c in range(part_w.shape[0]):
            sw += part_w[c, j]
            sb += part_b[c, j]
        grad_w[j] = sw
        grad_b[j] = sb


#: Row chunks of the weight/bias gradient sums at most.
MAX_ROW_CHUNKS = 2 if SIMULATOR else 64


def _blocks(n_rows):
    return max(1, min(n_rows, MAX_ROW_BLOCKS))


# ------------------------------------------------------------------ arguments
def _affine(v, name, shape, dt):
    if v is None:
        return None
    a = dev(v, name)
    if np.dtype(a.dtype) != dt:
        raise TypeError(f"{name}: expected dtype {dt} (the input's), got {a.dtype}")
    if tuple(a.shape) != shape:
        raise ValueError(f"{name} must have shape {shape} (normalized_shape), got "
                         f"{tuple(a.shape)}")
    return cflat(a, name)


def _saved(v, name, x_shape, k, dt):
    a = dev(v, name)
    if np.dtype(a.dtype) != dt:
        raise TypeError(f"{name}: expected dtype {dt} (the input's), got {a.dtype}")
    lead = tuple(x_shape[:len(x_shape) - k])
    if tuple(a.shape) not in (lead + (1,) * k, lead):
        raise ValueError(f"{name} must have shape {lead + (1,) * k} (the input's leading "
                         f"dimensions, then ones: as the forward's return_stats), got "
                         f"{tuple(a.shape)}")
    return cflat(a, name)


def _forward(input, normalized_shape, weight, bias, eps, out, centered):
    from .._ops.layer_norm import _rows_plan, _stats_shape

    x = dev(input)
    dt = float_dtype(x)
    shape, n_rows, length = _rows_plan(tuple(x.shape), normalized_shape)
    w = _affine(weight, "weight", shape, dt)
    b = _affine(bias, "bias", shape, dt)
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    stats_shape = _stats_shape(tuple(x.shape), len(shape))
    mean = cuda.device_array(n_rows, dt)
    rstd = cuda.device_array(n_rows, dt)
    if n_rows and length:
        dummy = mean
        _norm_rows[_blocks(n_rows), TPB](cflat(x), np.int64(length), centered,
                                         dummy if w is None else w, w is not None,
                                         dummy if b is None else b, b is not None,
                                         float64(eps), mean, rstd, cflat(dest, "out"))
    return dest, mean.reshape(stats_shape), rstd.reshape(stats_shape)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, out=None,
               return_stats=False):
    """:func:`nbops.layer_norm` on device arrays (C-contiguous)."""
    y, mean, rstd = _forward(input, normalized_shape, weight, bias, eps, out, True)
    return (y, mean, rstd) if return_stats else y


def rms_norm(input, normalized_shape, weight=None, eps=None, out=None, return_stats=False):
    """:func:`nbops.rms_norm` on device arrays (C-contiguous)."""
    x = dev(input)
    if eps is None:
        eps = float(np.finfo(float_dtype(x)).eps)
    y, _, rstd = _forward(x, normalized_shape, weight, None, eps, out, False)
    return (y, rstd) if return_stats else y


def _backward(grad_output, input, normalized_shape, mean, rstd, weight, grads, out):
    from .._ops.layer_norm import _rows_plan

    g = dev(grad_output, "grad_output")
    x = dev(input)
    dt = float_dtype(g, "grad_output")
    if np.dtype(x.dtype) != dt:
        raise TypeError(f"input: expected dtype {dt} (grad_output's), got {x.dtype}")
    if tuple(g.shape) != tuple(x.shape):
        raise ValueError(f"grad_output has shape {tuple(g.shape)} but input has shape "
                         f"{tuple(x.shape)}: they must be the same (the forward's output "
                         "shape)")
    shape, n_rows, length = _rows_plan(tuple(x.shape), normalized_shape)
    k = len(shape)
    r = _saved(rstd, "rstd", tuple(x.shape), k, dt)
    m = r if mean is None else _saved(mean, "mean", tuple(x.shape), k, dt)
    w = _affine(weight, "weight", shape, dt)
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    grad_w = cuda.device_array(shape, dt)
    grad_b = cuda.device_array(shape, dt)
    centered = mean is not None
    if n_rows and length:
        gf, xf = cflat(g, "grad_output"), cflat(x)
        _norm_grad_rows[_blocks(n_rows), TPB](gf, xf, np.int64(length), centered,
                                              r if w is None else w, w is not None, m, r,
                                              cflat(dest, "out"))
        if grads:  # a chunk cut fixed by the shape: the same sums on any launch
            chunks = max(1, min(n_rows, MAX_ROW_CHUNKS))
            per = (n_rows + chunks - 1) // chunks
            chunks = (n_rows + per - 1) // per
            part_w = cuda.device_array((chunks, length), np.float64)
            part_b = cuda.device_array((chunks, length), np.float64)
            _norm_grad_col_parts[((length + TPB - 1) // TPB, chunks), TPB](
                gf, xf, np.int64(length), centered, m, r, np.int64(per), part_w, part_b)
            _norm_grad_col_finish[grid(length), TPB](part_w, part_b, grad_w.reshape(length),
                                                     grad_b.reshape(length))
    elif grads and length:
        from ._kernels import run_fill

        run_fill(grad_w.reshape(length), dt.type(0))
        run_fill(grad_b.reshape(length), dt.type(0))
    return dest, grad_w, grad_b


def layer_norm_backward(grad_output, input, normalized_shape, mean, rstd, weight=None,
                        has_bias=None, out=None):
    """:func:`nbops.layer_norm_backward` on device arrays (C-contiguous)."""
    has_bias = weight is not None if has_bias is None else bool(has_bias)
    if mean is None:
        raise TypeError("mean must be an array (the forward's return_stats), got None")
    gi, gw, gb = _backward(grad_output, input, normalized_shape, mean, rstd, weight,
                           weight is not None or has_bias, out)
    return gi, gw if weight is not None else None, gb if has_bias else None


def rms_norm_backward(grad_output, input, normalized_shape, rstd, weight=None, out=None):
    """:func:`nbops.rms_norm_backward` on device arrays (C-contiguous)."""
    gi, gw, _ = _backward(grad_output, input, normalized_shape, None, rstd, weight,
                          weight is not None, out)
    return gi, gw if weight is not None else None
