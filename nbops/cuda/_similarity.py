"""cosine_similarity, normalize, pdist, cdist and their backwards on device arrays.

One thread per output row or element (grid-stride loops), each summing its row
in float64 in index order, as the CPU kernels (nbops/_ops/similarity.py): the
results do not depend on the launch. Device arguments of one call share their
shape where the CPU path broadcasts (no broadcasting on CUDA yet), and cdist at
p = 2 always sums directly here (the float64 distance rounded once: the CPU's
direct mode). The p-norm arithmetic is the CPU's (nbops.scalar._norms compiled
for the GPU).
"""

import math

from numba import cuda, float64

from .._ops import similarity as S
from ..scalar import _norms as NM
from ._core import TPB, device
from ._kernels import grid
from ._ops import _same_float, cflat, check_out, dev, float_dtype

_pnorm_start = device(NM.pnorm_start)
_pnorm_add = device(NM.pnorm_add)
_pnorm_finish = device(NM.pnorm_finish)
_pnorm_backward = device(NM.pnorm_backward)
_sgn = device(NM.sgn)


@cuda.jit(device=True)
def _dist_backward(d, dist, g, p, kind):
    """The CPU's ``_distance_backward`` (PyTorch's pdist/cdist conventions)."""
    if kind == NM.PNORM_0:
        return 0.0
    if kind == NM.PNORM_1:
        return g * _sgn(d)
    if kind == NM.PNORM_2:
        return 0.0 if dist == 0 else g * d / dist
    if kind == NM.PNORM_MAX:
        return g * _sgn(d) if abs(d) == dist else 0.0
    if p < 2:
        if dist == 0 or (d == 0 and p < 1):
            return 0.0
        return _sgn(d) * abs(d) ** (p - 1.0) * g / dist ** (p - 1.0)
    if dist == 0:
        return 0.0
    return d * abs(d) ** (p - 2.0) * g / dist ** (p - 1.0)


# ------------------------------------------------------------------ rows along an axis
@cuda.jit
def _cos_kernel(a, b, before, length, after, eps, g, out, out1, out2, backward):
    """Row r = (p, q) of the (before, length, after) layout: the similarity into
    ``out[r]``, or (``backward``) the gradients into ``out1``/``out2``."""
    for r in range(cuda.grid(1), before * after, cuda.gridsize(1)):
        p = r // after
        q = r - p * after
        base = p * length * after + q
        w1 = float64(0.0)
        w2 = float64(0.0)
        w12 = float64(0.0)
        for i in range(length):
            x = float64(a[base + i * after])
            y = float64(b[base + i * after])
            w1 += x * x
            w2 += y * y
            w12 += x * y
        r1 = math.sqrt(w1)
        r2 = math.sqrt(w2)
        n1 = eps if r1 < eps else r1
        n2 = eps if r2 < eps else r2
        cos = w12 / (n1 * n2)
        if not backward:
            out[r] = cos
        else:
            gr = float64(g[r])
            c12 = gr / (n1 * n2)
            k1 = 0.0 if r1 == 0 else gr * cos / (n1 * r1)
            k2 = 0.0 if r2 == 0 else gr * cos / (n2 * r2)
            for i in range(length):
                x = float64(a[base + i * after])
                y = float64(b[base + i * after])
                out1[base + i * after] = c12 * y - k1 * x
                out2[base + i * after] = c12 * x - k2 * y


@cuda.jit
def _normalize_kernel(x, before, length, after, pp, kind, eps, g, out, backward):
    for r in range(cuda.grid(1), before * after, cuda.gridsize(1)):
        p = r // after
        q = r - p * after
        base = p * length * after + q
        acc = _pnorm_start(float64(0.0), kind)
        for i in range(length):
            acc = _pnorm_add(acc, float64(x[base + i * after]), pp, kind)
        n = _pnorm_finish(acc, pp, kind)
        c = eps if n < eps else n
        if not backward:
            for i in range(length):
                out[base + i * after] = float64(x[base + i * after]) / c
        else:
            gx = float64(0.0)
            count = float64(1.0)
            if kind == NM.PNORM_MAX:
                count = 0.0
            for i in range(length):
                v = float64(x[base + i * after])
                gx += float64(g[base + i * after]) * v
                if kind == NM.PNORM_MAX and (abs(v) == n or v != v):
                    count += 1.0
            gn = -gx / (c * c) if n >= eps else 0.0
            for i in range(length):
                v = float64(x[base + i * after])
                extra = _pnorm_backward(v, n, gn, pp, kind, count) if gn != 0 else 0.0
                out[base + i * after] = float64(g[base + i * after]) / c + extra


# ------------------------------------------------------------------ pairs of rows
@cuda.jit
def _cdist_kernel(a, b, nb, rp, rr, m, pp, kind, out):
    """out (nb, rp, rr): one thread per distance, float64 differences and sums."""
    for e in range(cuda.grid(1), nb * rp * rr, cuda.gridsize(1)):
        t = e // rr
        j = e - t * rr
        batch = t // rp
        xs = t * m
        ys = (batch * rr + j) * m
        acc = _pnorm_start(float64(0.0), kind)
        for k in range(m):
            acc = _pnorm_add(acc, float64(a[xs + k]) - float64(b[ys + k]), pp, kind)
        out[e] = _pnorm_finish(acc, pp, kind)


@cuda.jit
def _cdist_grad_kernel(a, b, nb, rp, rr, m, pp, kind, dist, g, out, of_x2):
    """One thread per gradient entry: x1's (row t of a, column c), summed over b's
    rows; ``of_x2``: x2's (``a``, ``b`` swapped, ``dist``/``g`` read transposed)."""
    for e in range(cuda.grid(1), nb * rp * m, cuda.gridsize(1)):
        t = e // m
        c = e - t * m
        batch = t // rp
        i = t - batch * rp
        acc = float64(0.0)
        for j in range(rr):
            if of_x2:
                k = (batch * rr + j) * rp + i
            else:
                k = t * rr + j
            d = float64(a[t * m + c]) - float64(b[(batch * rr + j) * m + c])
            acc += _dist_backward(d, float64(dist[k]), float64(g[k]), pp, kind)
        out[e] = acc


@cuda.jit
def _pdist_kernel(x, n, m, pp, kind, out):
    for e in range(cuda.grid(1), n * n, cuda.gridsize(1)):
        i = e // n
        j = e - i * n
        if i < j:
            acc = _pnorm_start(float64(0.0), kind)
            for k in range(m):
                acc = _pnorm_add(acc, float64(x[i * m + k]) - float64(x[j * m + k]), pp, kind)
            out[i * n - i * (i + 1) // 2 + j - i - 1] = _pnorm_finish(acc, pp, kind)


@cuda.jit
def _pdist_grad_kernel(x, n, m, pp, kind, dist, g, out):
    for e in range(cuda.grid(1), n * m, cuda.gridsize(1)):
        i = e // m
        c = e - i * m
        acc = float64(0.0)
        for j in range(n):
            if j != i:
                lo = min(i, j)
                hi = max(i, j)
                k = lo * n - lo * (lo + 1) // 2 + hi - lo - 1
                d = float64(x[i * m + c]) - float64(x[j * m + c])
                acc += _dist_backward(d, float64(dist[k]), float64(g[k]), pp, kind)
        out[e] = acc


# ------------------------------------------------------------------ launchers
def _empty(shape, dt, out, like):
    return cuda.device_array(shape, dt) if out is None else check_out(out, shape, dt, like)


def _pair(out):
    if out is not None and not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError("out must be None or a pair (out_x1, out_x2) of arrays or None")
    return (None, None) if out is None else tuple(out)


def _same_shape(a, b):
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"x1 of shape {a.shape} and x2 of shape {b.shape}: CUDA arrays "
                         "must have the same shape (no broadcasting on CUDA yet)")


def _layout(shape, axis, op):
    axis = S._axis(axis, len(shape), op)
    return axis, math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def cosine_similarity(x1, x2, axis=1, eps=1e-8, out=None, grad_output=None):
    a, b = dev(x1, "x1"), dev(x2, "x2")
    dt = float_dtype(a, "x1")
    _same_float(b, dt, "x2")
    _same_shape(a, b)
    shape = tuple(a.shape)
    axis, before, length, after = _layout(shape, axis, "cosine_similarity")
    eps = S._float_param(eps, "eps", "cosine_similarity")
    out_shape = shape[:axis] + shape[axis + 1:]
    dummy = cuda.device_array(1, dt)
    if grad_output is None:
        dest = _empty(out_shape, dt, out, a)
        if dest.size:
            _cos_kernel[grid(before * after), TPB](cflat(a, "x1"), cflat(b, "x2"), before,
                                                   length, after, eps, dummy,
                                                   cflat(dest, "out"), dummy, dummy, False)
        return dest
    g = dev(grad_output, "grad_output")
    _same_float(g, dt, "grad_output")
    if tuple(g.shape) != out_shape:
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected {out_shape} (the "
                         "forward's output shape)")
    o1, o2 = (_empty(shape, dt, o, a) for o in _pair(out))
    if a.size:
        _cos_kernel[grid(before * after), TPB](cflat(a, "x1"), cflat(b, "x2"), before, length,
                                               after, eps, cflat(g, "grad_output"), dummy,
                                               cflat(o1, "out"), cflat(o2, "out"), True)
    return o1, o2


def cosine_similarity_backward(grad_output, x1, x2, axis=1, eps=1e-8, out=None):
    return cosine_similarity(x1, x2, axis, eps, out=out, grad_output=grad_output)


def normalize(input, p=2.0, axis=1, eps=1e-12, out=None, grad_output=None):
    op = "normalize" if grad_output is None else "normalize_backward"
    x = dev(input, "input")
    dt = float_dtype(x, "input")
    shape = tuple(x.shape)
    axis, before, length, after = _layout(shape, axis, op)
    p = S._float_param(p, "p", op)
    eps = S._float_param(eps, "eps", op)
    if p < 0:
        raise ValueError(f"{op}: p must be >= 0 (or inf), got {p}")
    dest = _empty(shape, dt, out, x)
    if grad_output is None:
        g = cuda.device_array(1, dt)
    else:
        g = dev(grad_output, "grad_output")
        _same_float(g, dt, "grad_output")
        if tuple(g.shape) != shape:
            raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected {shape}")
        g = cflat(g, "grad_output")
    if x.size:
        _normalize_kernel[grid(before * after), TPB](
            cflat(x, "input"), before, length, after, float64(p), NM.pnorm_kind.py_func(p),
            eps, g, cflat(dest, "out"), grad_output is not None)
    return dest


def normalize_backward(grad_output, input, p=2.0, axis=1, eps=1e-12, out=None):
    return normalize(input, p, axis, eps, out=out, grad_output=grad_output)


def _pdist_args(input, p, op):
    x = dev(input, "input")
    dt = float_dtype(x, "input")
    if len(x.shape) != 2:
        raise ValueError(f"{op}: input must be 2-D (N, M), got shape {tuple(x.shape)}")
    p = S._float_param(p, "p", op)
    if not p >= 0:
        raise ValueError(f"{op}: p must be >= 0, got {p}")
    n = x.shape[0]
    return x, dt, p, n, x.shape[1], (n * (n - 1) // 2,)


def _run_pdist(x, n, m, p, dest):
    _pdist_kernel[grid(n * n), TPB](cflat(x, "input"), n, m, float64(p),
                                    NM.pnorm_kind.py_func(p), dest)


def pdist(input, p=2.0, out=None):
    x, dt, p, n, m, out_shape = _pdist_args(input, p, "pdist")
    dest = _empty(out_shape, dt, out, x)
    if dest.size:
        if m:
            _run_pdist(x, n, m, p, dest)
        else:
            dest[:] = 0
    return dest


def pdist_backward(grad_output, input, p=2.0, output=None, out=None):
    x, dt, p, n, m, out_shape = _pdist_args(input, p, "pdist_backward")
    g = dev(grad_output, "grad_output")
    _same_float(g, dt, "grad_output")
    if tuple(g.shape) != out_shape:
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected {out_shape}")
    dest = _empty((n, m), dt, out, x)
    if dest.size:
        if output is None:
            dist = cuda.device_array(out_shape, dt)
            if g.size:
                _run_pdist(x, n, m, p, dist)
        else:
            dist = dev(output, "output")
            _same_float(dist, dt, "output")
            if tuple(dist.shape) != out_shape:
                raise ValueError(f"output has shape {tuple(dist.shape)}, expected {out_shape}")
        _pdist_grad_kernel[grid(n * m), TPB](cflat(x, "input"), n, m, float64(p),
                                             NM.pnorm_kind.py_func(p), dist,
                                             cflat(g, "grad_output"), cflat(dest, "out"))
    return dest


def _cdist_args(x1, x2, p, compute_mode, op):
    a, b = dev(x1, "x1"), dev(x2, "x2")
    dt = float_dtype(a, "x1")
    _same_float(b, dt, "x2")
    s1, s2 = tuple(a.shape), tuple(b.shape)
    if len(s1) < 2 or len(s2) < 2 or s1[-1] != s2[-1]:
        raise ValueError(f"{op}: x1 and x2 must have at least 2 dimensions and the same last "
                         f"axis, got shapes {s1} and {s2}")
    if s1[:-2] != s2[:-2]:
        raise ValueError(f"{op}: CUDA arrays must have the same batch axes (no broadcasting "
                         f"on CUDA yet), got {s1} and {s2}")
    p = S._float_param(p, "p", op)
    if not p >= 0:
        raise ValueError(f"{op}: p must be >= 0, got {p}")
    if compute_mode not in S.COMPUTE_MODES:
        raise ValueError(f"{op}: compute_mode must be one of {S.COMPUTE_MODES}, got "
                         f"{compute_mode!r}")
    nb = math.prod(s1[:-2])
    return a, b, dt, p, nb, s1[-2], s2[-2], s1[-1], s1[:-2] + (s1[-2], s2[-2])


def _run_cdist(a, b, nb, rp, rr, m, p, dest):
    _cdist_kernel[grid(nb * rp * rr), TPB](cflat(a, "x1"), cflat(b, "x2"), nb, rp, rr, m,
                                           float64(p), NM.pnorm_kind.py_func(p), dest)


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary", out=None):
    a, b, dt, p, nb, rp, rr, m, out_shape = _cdist_args(x1, x2, p, compute_mode, "cdist")
    dest = _empty(out_shape, dt, out, a)
    if dest.size:
        if m:
            _run_cdist(a, b, nb, rp, rr, m, p, cflat(dest, "out"))
        else:
            cflat(dest, "out")[:] = 0
    return dest


def cdist_backward(grad_output, x1, x2, p=2.0,
                   compute_mode="use_mm_for_euclid_dist_if_necessary", output=None, out=None):
    a, b, dt, p, nb, rp, rr, m, out_shape = _cdist_args(x1, x2, p, compute_mode,
                                                        "cdist_backward")
    g = dev(grad_output, "grad_output")
    _same_float(g, dt, "grad_output")
    if tuple(g.shape) != out_shape:
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected {out_shape}")
    o1, o2 = (_empty(s, dt, o, a) for s, o in zip((a.shape, b.shape), _pair(out),
                                                   strict=True))
    if a.size or b.size:
        if output is None:
            dist = cuda.device_array(nb * rp * rr, dt)
            if dist.size:
                _run_cdist(a, b, nb, rp, rr, m, p, dist)
        else:
            dist = dev(output, "output")
            _same_float(dist, dt, "output")
            if tuple(dist.shape) != out_shape:
                raise ValueError(f"output has shape {tuple(dist.shape)}, expected {out_shape}")
            dist = cflat(dist, "output")
        kind = NM.pnorm_kind.py_func(p)
        af, bf, gf = cflat(a, "x1"), cflat(b, "x2"), cflat(g, "grad_output")
        if a.size:
            _cdist_grad_kernel[grid(a.size), TPB](af, bf, nb, rp, rr, m, float64(p), kind,
                                                  dist, gf, cflat(o1, "out"), False)
        if b.size:
            _cdist_grad_kernel[grid(b.size), TPB](bf, af, nb, rr, rp, m, float64(p), kind,
                                                  dist, gf, cflat(o2, "out"), True)
    return o1, o2


__all__ = ["cosine_similarity", "cosine_similarity_backward", "normalize", "normalize_backward",
           "pdist", "pdist_backward", "cdist", "cdist_backward"]
