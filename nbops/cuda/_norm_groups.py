"""group_norm and instance_norm (forward and backward) on device arrays.

One block per (sample, group), a grid-stride loop over them: the group's
float64 sums (shifted by its first value, as the CPU's
:func:`nbops.scalar._norms.finite_shift`) are reduced in the block's fixed tree
order (:func:`nbops.cuda._kernels.block_sum`), then the block writes the group
with its channels' weight and bias. ``grad_weight``/``grad_bias``: one thread
per (sample, channel) sums its positions in order, then one thread per channel
adds the samples in order; the instances' running statistics: one thread per
channel, samples in order. No atomics: the results do not depend on the launch.
"""

import math

import numpy as np
from numba import cuda, float64

from ..scalar import _norms as NM
from ._core import TPB, device
from ._kernels import block_sum, grid
from ._norm_rows import _blocks
from ._ops import cflat, check_out, dev, empty, float_dtype

_finite_shift = device(NM.finite_shift)


@cuda.jit
def _group_rows(x, groups, cpg, inner, w, has_w, b, has_b, eps, mean, rstd, out):
    """Block-per-group forward; ``mean``/``rstd``: the statistics in ``x``'s dtype."""
    sh = cuda.shared.array(TPB, float64)
    t = cuda.threadIdx.x
    length = cpg * inner
    for row in range(cuda.blockIdx.x, mean.size, cuda.gridDim.x):
        base = row * length
        shift = _finite_shift(x[base])
        s = float64(0.0)
        q = float64(0.0)
        for j in range(t, length, TPB):
            d = float64(x[base + j]) - shift
            s += d
            q += d * d
        s = block_sum(sh, s)
        q = block_sum(sh, q)
        mean_d = s / length
        var = q / length - mean_d * mean_d
        if var < 0.0:
            var = float64(0.0)
        m = shift + mean_d if var == var else var  # NaN statistics, as the CPU's
        r = 1.0 / math.sqrt(var + eps)
        if t == 0:
            mean[row] = m
            rstd[row] = r
        c0 = (row % groups) * cpg
        for j in range(t, length, TPB):
            c = c0 + j // inner
            v = (float64(x[base + j]) - m) * r
            if has_w:
                v *= float64(w[c])
            if has_b:
                v += float64(b[c])
            out[base + j] = v


@cuda.jit
def _group_grad_rows(g, x, groups, cpg, inner, w, has_w, mean, rstd, out):
    """Block-per-group grad_input (the CPU's formula, in float64)."""
    sh = cuda.shared.array(TPB, float64)
    t = cuda.threadIdx.x
    length = cpg * inner
    for row in range(cuda.blockIdx.x, rstd.size, cuda.gridDim.x):
        base = row * length
        c0 = (row % groups) * cpg
        m = float64(mean[row])
        r = float64(rstd[row])
        a = float64(0.0)
        k = float64(0.0)
        for j in range(t, length, TPB):
            gw = float64(g[base + j]) * (float64(w[c0 + j // inner]) if has_w
                                         else float64(1.0))
            a += gw
            k += gw * (float64(x[base + j]) - m)
        a = block_sum(sh, a)
        k = block_sum(sh, k)
        ka = a / length
        kc = k / length * r * r
        for j in range(t, length, TPB):
            gw = float64(g[base + j]) * (float64(w[c0 + j // inner]) if has_w
                                         else float64(1.0))
            out[base + j] = ((gw - ka) - (float64(x[base + j]) - m) * kc) * r


@cuda.jit
def _channel_parts(g, x, groups, cpg, inner, mean, rstd, part_w, part_b):
    """Per (sample n, channel c), a grid-stride loop: sum(g * x_hat) and sum(g) over
    its positions, in order."""
    channels = groups * cpg
    for i in range(cuda.grid(1), part_w.size, cuda.gridsize(1)):
        n = i // channels
        c = i % channels
        row = n * groups + c // cpg
        m = float64(mean[row])
        r = float64(rstd[row])
        sw = float64(0.0)
        sb = float64(0.0)
        base = i * inner
        for j in range(inner):
            gj = float64(g[base + j])
            sw += gj * ((float64(x[base + j]) - m) * r)
            sb += gj
        part_w[i] = sw
        part_b[i] = sb


@cuda.jit
def _channel_finish(part_w, part_b, n, grad_w, grad_b):
    """Per channel (a grid-stride loop): the samples' partial sums, in sample order."""
    channels = grad_w.size
    for c in range(cuda.grid(1), channels, cuda.gridsize(1)):
        sw = float64(0.0)
        sb = float64(0.0)
        for i in range(n):
            sw += part_w[i * channels + c]
            sb += part_b[i * channels + c]
        grad_w[c] = sw
        grad_b[c] = sb


@cuda.jit
def _update_running(mean, rstd, eps, n, inner, momentum, run_mean, has_mean, run_var,
                    has_var):
    """Per channel (a grid-stride loop): the CPU's running-statistics update (float64, in
    sample order; see nbops/_ops/group_norm.py's ``_update_running``)."""
    channels = run_mean.size if has_mean else run_var.size
    unbias = inner / (inner - 1.0)
    for c in range(cuda.grid(1), channels, cuda.gridsize(1)):
        sm = float64(0.0)
        sv = float64(0.0)
        for i in range(n):
            r = float64(rstd[i * channels + c])
            sm += float64(mean[i * channels + c])
            sv += (1.0 / (r * r) - eps) * unbias
        if has_mean:
            run_mean[c] = (1.0 - momentum) * float64(run_mean[c]) + momentum * (sm / n)
        if has_var:
            run_var[c] = (1.0 - momentum) * float64(run_var[c]) + momentum * (sv / n)


# ------------------------------------------------------------------ arguments
def _channel_vector(v, name, channels, dt):
    if v is None:
        return None
    a = dev(v, name)
    if np.dtype(a.dtype) != dt:
        raise TypeError(f"{name}: expected dtype {dt} (the input's), got {a.dtype}")
    if tuple(a.shape) != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) (the input's channels), got "
                         f"{tuple(a.shape)}")
    return cflat(a, name)


def _saved(v, name, n, groups, dt):
    a = dev(v, name)
    if np.dtype(a.dtype) != dt:
        raise TypeError(f"{name}: expected dtype {dt} (the input's), got {a.dtype}")
    if tuple(a.shape) != (n, groups):
        raise ValueError(f"{name} must have shape {(n, groups)} (samples, groups: as the "
                         f"forward's return_stats), got {tuple(a.shape)}")
    return cflat(a, name)


def _forward(x, num_groups, weight, bias, eps, out):
    """(output, flat mean, flat rstd, (N, C, inner, groups)) of a device input."""
    from .._ops.group_norm import _groups_plan

    dt = float_dtype(x)
    n, c, inner, groups = _groups_plan(tuple(x.shape), num_groups)
    w = _channel_vector(weight, "weight", c, dt)
    b = _channel_vector(bias, "bias", c, dt)
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    mean = cuda.device_array(n * groups, dt)
    rstd = cuda.device_array(n * groups, dt)
    if n * groups and c // groups * inner:
        dummy = mean
        _group_rows[_blocks(n * groups), TPB](
            cflat(x), np.int64(groups), np.int64(c // groups), np.int64(inner),
            dummy if w is None else w, w is not None, dummy if b is None else b,
            b is not None, float64(eps), mean, rstd, cflat(dest, "out"))
    elif n * groups:
        from ._kernels import run_fill

        run_fill(mean, dt.type(np.nan))
        run_fill(rstd, dt.type(np.nan))
    return dest, mean, rstd, (n, c, inner, groups)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, out=None,
               return_stats=False):
    """:func:`nbops.group_norm` on device arrays (C-contiguous)."""
    y, mean, rstd, (n, _, _, groups) = _forward(dev(input), num_groups, weight, bias, eps,
                                                out)
    if return_stats:
        return y, mean.reshape((n, groups)), rstd.reshape((n, groups))
    return y


def group_norm_backward(grad_output, input, num_groups, mean, rstd, weight=None,
                        has_bias=None, out=None):
    """:func:`nbops.group_norm_backward` on device arrays (C-contiguous)."""
    from .._ops.group_norm import _groups_plan

    has_bias = weight is not None if has_bias is None else bool(has_bias)
    grads = weight is not None or has_bias
    g = dev(grad_output, "grad_output")
    x = dev(input)
    dt = float_dtype(g, "grad_output")
    if np.dtype(x.dtype) != dt:
        raise TypeError(f"input: expected dtype {dt} (grad_output's), got {x.dtype}")
    if tuple(g.shape) != tuple(x.shape):
        raise ValueError(f"grad_output has shape {tuple(g.shape)} but input has shape "
                         f"{tuple(x.shape)}: they must be the same (the forward's output "
                         "shape)")
    n, c, inner, groups = _groups_plan(tuple(x.shape), num_groups)
    if mean is None:
        raise TypeError("mean must be an array (the forward's return_stats), got None")
    m = _saved(mean, "mean", n, groups, dt)
    r = _saved(rstd, "rstd", n, groups, dt)
    w = _channel_vector(weight, "weight", c, dt)
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    grad_w = cuda.device_array(c, dt)
    grad_b = cuda.device_array(c, dt)
    gf, xf = cflat(g, "grad_output"), cflat(x)
    if n * c * inner:
        _group_grad_rows[_blocks(n * groups), TPB](
            gf, xf, np.int64(groups), np.int64(c // groups), np.int64(inner),
            r if w is None else w, w is not None, m, r, cflat(dest, "out"))
    if grads and c:
        if n * inner:
            part_w = cuda.device_array(n * c, np.float64)
            part_b = cuda.device_array(n * c, np.float64)
            _channel_parts[grid(n * c), TPB](gf, xf, np.int64(groups), np.int64(c // groups),
                                             np.int64(inner), m, r, part_w, part_b)
            _channel_finish[grid(c), TPB](part_w, part_b, np.int64(n), grad_w, grad_b)
        else:
            from ._kernels import run_fill

            run_fill(grad_w, dt.type(0))
            run_fill(grad_b, dt.type(0))
    return (dest, grad_w if weight is not None else None, grad_b if has_bias else None)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5, out=None, return_stats=False):
    """:func:`nbops.instance_norm` with the input's statistics on device arrays
    (C-contiguous); running statistics, when given, are device arrays updated in
    place."""
    x = dev(input)
    if x.ndim < 2:
        raise ValueError(f"Expected at least 2 dimensions for input tensor but received "
                         f"{x.ndim}")
    n, c = x.shape[0], x.shape[1]
    inner = math.prod(x.shape[2:])
    if inner <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input "
                         f"size {list(x.shape)}")
    run = []
    for v, name in ((running_mean, "running_mean"), (running_var, "running_var")):
        if v is not None:
            a = dev(v, name)
            if tuple(a.shape) != (c,) or np.dtype(a.dtype).kind != "f":
                raise ValueError(f"{name} must be a float device array of shape ({c},) "
                                 f"(updated in place), got {tuple(a.shape)}")
            run.append(a)
        else:
            run.append(None)
    y, mean, rstd, _ = _forward(x, c, weight, bias, eps, out)
    if n and (run[0] is not None or run[1] is not None):
        some = run[0] if run[0] is not None else run[1]
        _update_running[grid(c), TPB](mean, rstd, float64(eps), np.int64(n), np.int64(inner),
                                      float64(momentum), some if run[0] is None else run[0],
                                      run[0] is not None,
                                      some if run[1] is None else run[1], run[1] is not None)
    if return_stats:
        return y, mean.reshape((n, c)), rstd.reshape((n, c))
    return y
