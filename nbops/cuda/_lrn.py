"""local_response_norm and its backward on device arrays.

One thread per position ``(n, s)`` of the ``(N, C, S)`` view (a grid-stride
loop), each running the CPU's float64 window sums over the channels in channel
order (nbops/_ops/local_response_norm.py: a non-finite running sum is summed
anew over its window): the results do not depend on the launch. The backward
keeps ``d**-beta`` and ``g x d**(-beta - 1)`` of every value in float64 scratch
arrays between its two passes.
"""

import math

import numpy as np
from numba import cuda, float64

from ._core import TPB
from ._kernels import grid
from ._ops import cflat, check_out, dev, empty, float_dtype


@cuda.jit(device=True)
def _window_sum(v, base, stride, c0, c1, n_ch, square):
    """float64 sum of ``v[base + c * stride]`` (squared if ``square``) over the
    channels ``c0 .. c1`` clipped to ``0 .. n_ch - 1``."""
    a = float64(0.0)
    for c in range(max(c0, 0), min(c1, n_ch - 1) + 1):
        t = float64(v[base + c * stride])
        a += t * t if square else t
    return a


@cuda.jit(device=True)
def _slide(v, base, stride, a, add, rem, n_ch, c0, c1, square):
    """The CPU's ``_slide``: the running window sum moved one channel."""
    if add < n_ch:
        t = float64(v[base + add * stride])
        a += t * t if square else t
    if rem >= 0:
        t = float64(v[base + rem * stride])
        a -= t * t if square else t
    if not math.isfinite(a):
        a = _window_sum(v, base, stride, c0, c1, n_ch, square)
    return a


@cuda.jit(device=True)
def _power(a, scale, k, beta):
    """``(a * scale + k) ** -beta`` as the CPU's ``_powers`` computes it."""
    if beta == 0.75:
        r = math.sqrt(a * scale + k)
        return 1.0 / (r * math.sqrt(r))
    return (a * scale + k) ** -beta


@cuda.jit
def _lrn_forward(x, n_batch, n_ch, n_pos, size, alpha, beta, k, out):
    before = size // 2
    after = (size - 1) // 2
    scale = alpha / size
    for i in range(cuda.grid(1), n_batch * n_pos, cuda.gridsize(1)):
        n = i // n_pos
        base = n * n_ch * n_pos + (i - n * n_pos)
        a = _window_sum(x, base, n_pos, 0, after - 1, n_ch, True)
        for c in range(n_ch):
            a = _slide(x, base, n_pos, a, c + after, c - before - 1, n_ch, c - before,
                       c + after, True)
            if a < 0.0:
                a = float64(0.0)
            out[base + c * n_pos] = float64(x[base + c * n_pos]) * _power(a, scale, k, beta)


@cuda.jit
def _lrn_backward_terms(g, x, n_batch, n_ch, n_pos, size, alpha, beta, k, p, q):
    """p = d**-beta and q = g x d**(-beta - 1) of every value (float64)."""
    before = size // 2
    after = (size - 1) // 2
    scale = alpha / size
    for i in range(cuda.grid(1), n_batch * n_pos, cuda.gridsize(1)):
        n = i // n_pos
        base = n * n_ch * n_pos + (i - n * n_pos)
        a = _window_sum(x, base, n_pos, 0, after - 1, n_ch, True)
        for c in range(n_ch):
            a = _slide(x, base, n_pos, a, c + after, c - before - 1, n_ch, c - before,
                       c + after, True)
            if a < 0.0:
                a = float64(0.0)
            pw = _power(a, scale, k, beta)
            j = base + c * n_pos
            p[j] = pw
            q[j] = float64(g[j]) * float64(x[j]) * pw / (a * scale + k)


@cuda.jit
def _lrn_backward(g, x, p, q, n_batch, n_ch, n_pos, size, coef, out):
    """grad_input = g p - coef x (sum of q over the mirrored window)."""
    before = size // 2
    after = (size - 1) // 2
    for i in range(cuda.grid(1), n_batch * n_pos, cuda.gridsize(1)):
        n = i // n_pos
        base = n * n_ch * n_pos + (i - n * n_pos)
        a = _window_sum(q, base, n_pos, 0, before - 1, n_ch, False)
        for c in range(n_ch):
            a = _slide(q, base, n_pos, a, c + before, c - after - 1, n_ch, c - after,
                       c + before, False)
            j = base + c * n_pos
            out[j] = float64(g[j]) * p[j] - coef * float64(x[j]) * a


def _shape3(shape):
    from .._ops.local_response_norm import _check_ndim

    return _check_ndim(tuple(shape))


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0, out=None):
    """:func:`nbops.local_response_norm` on device arrays (C-contiguous)."""
    from .._ops.local_response_norm import _params

    x = dev(input)
    dt = float_dtype(x)
    n_batch, n_ch, n_pos = _shape3(x.shape)
    size, alpha, beta, k = _params(size, alpha, beta, k)
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    if x.size:
        _lrn_forward[grid(n_batch * n_pos), TPB](
            cflat(x), np.int64(n_batch), np.int64(n_ch), np.int64(n_pos), np.int64(size),
            float64(alpha), float64(beta), float64(k), cflat(dest, "out"))
    return dest


def local_response_norm_backward(grad_output, input, size, alpha=1e-4, beta=0.75, k=1.0,
                                 out=None):
    """:func:`nbops.local_response_norm_backward` on device arrays (C-contiguous)."""
    from .._ops.local_response_norm import _params

    g = dev(grad_output, "grad_output")
    x = dev(input)
    dt = float_dtype(g, "grad_output")
    if np.dtype(x.dtype) != dt:
        raise TypeError(f"input: expected dtype {dt} (grad_output's), got {x.dtype}")
    n_batch, n_ch, n_pos = _shape3(x.shape)
    if tuple(g.shape) != tuple(x.shape):
        raise ValueError(f"grad_output has shape {tuple(g.shape)} but input has shape "
                         f"{tuple(x.shape)}: they must be the same (the forward's output "
                         "shape)")
    size, alpha, beta, k = _params(size, alpha, beta, k)
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    if x.size:
        gf, xf = cflat(g, "grad_output"), cflat(x)
        p = cuda.device_array(x.size, np.float64)
        q = cuda.device_array(x.size, np.float64)
        dims = (np.int64(n_batch), np.int64(n_ch), np.int64(n_pos), np.int64(size))
        blocks = grid(n_batch * n_pos)
        _lrn_backward_terms[blocks, TPB](gf, xf, *dims, float64(alpha), float64(beta),
                                         float64(k), p, q)
        _lrn_backward[blocks, TPB](gf, xf, p, q, *dims, float64(2.0 * (alpha / size) * beta),
                                   cflat(dest, "out"))
    return dest
