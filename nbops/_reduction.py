"""Loss reductions: argument parsing and deterministic, accurate sums.

Determinism: an array is cut into fixed chunks of ``CHUNK`` elements; each
chunk is summed in float64 by one thread, and the chunk sums are added in a
fixed order. The chunk boundaries do not depend on the thread count, so the
result is bit-identical on 1 or 64 threads, and float64 accumulation keeps
float32 sums of 1e8 elements accurate. Fused kernels (a loss computed and
summed in one pass) follow the same chunking: see :func:`chunk_count`.
"""

import warnings

import numpy as np
from numba import prange

from . import _config
from ._launch import launch

#: Elements per chunk of a deterministic sum (fixed: results depend on it).
CHUNK = 16384

_REDUCTIONS = ("none", "mean", "sum")


def legacy_reduction(size_average, reduce):
    """PyTorch's mapping of the deprecated ``size_average``/``reduce`` flags."""
    warnings.warn("size_average and reduce args will be deprecated, please use "
                  "reduction='{}' instead.".format(_legacy(size_average, reduce)),
                  DeprecationWarning, stacklevel=3)
    return _legacy(size_average, reduce)


def _legacy(size_average, reduce):
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    if reduce:
        return "sum"
    return "none"


def parse_reduction(reduction, size_average=None, reduce=None, allowed=_REDUCTIONS):
    """Validate ``reduction`` (after the legacy flags, which win as in PyTorch)."""
    if size_average is not None or reduce is not None:
        reduction = legacy_reduction(size_average, reduce)
    if reduction not in allowed:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, allowed))}, "
                         f"got {reduction!r}")
    return reduction


def chunk_count(n):
    return (n + CHUNK - 1) // CHUNK


@_config.parallel_kernel
def _chunk_sums_parallel(x, partials):
    n = x.size
    for c in prange(partials.size):
        partials[c] = _sum_range(x, c * CHUNK, min(n, (c + 1) * CHUNK))


@_config.serial_kernel
def _chunk_sums_serial(x, partials):
    n = x.size
    for c in range(partials.size):
        partials[c] = _sum_range(x, c * CHUNK, min(n, (c + 1) * CHUNK))


@_config.core
def _sum_range(x, start, stop):
    """float64 sum of x[start:stop] with four interleaved accumulators.

    A fixed order (no fastmath), with four independent add chains for speed.
    Fused loss kernels use the same pattern on computed values.
    """
    xs = x[start:stop]  # index from 0: no wraparound checks, so LLVM vectorizes
    m = xs.size
    s0 = s1 = s2 = s3 = 0.0
    i = 0
    while i + 4 <= m:
        s0 += xs[i]
        s1 += xs[i + 1]
        s2 += xs[i + 2]
        s3 += xs[i + 3]
        i += 4
    while i < m:
        s0 += xs[i]
        i += 1
    return (s0 + s1) + (s2 + s3)


def det_sum(x):
    """Sum of a 1-D contiguous float array, in float64, bit-identical on any thread count."""
    partials = np.empty(chunk_count(x.size), np.float64)
    if partials.size:
        launch(_chunk_sums_serial, _chunk_sums_parallel, ("sum", x.dtype.char), x.size,
               x, partials)
    return sum_partials(partials)


def sum_partials(partials):
    """Add chunk sums in a fixed order (NumPy's pairwise sum of a float64 array)."""
    return float(np.sum(partials)) if partials.size else 0.0
