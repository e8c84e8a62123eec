"""Loss reductions: argument parsing and deterministic, accurate sums.

Determinism: an array is cut into fixed chunks of ``CHUNK`` elements; each
chunk is summed in float64 by one thread, and the chunk sums are added in a
fixed order. The chunk boundaries do not depend on the thread count, so the
result is bit-identical on 1 or 64 threads, and float64 accumulation keeps
float32 sums of 1e8 elements accurate. The fused loss kernels (a loss computed
and summed in one pass, nbops/_ops/losses.py) use this chunking: see
:func:`chunk_count` and :func:`sum_partials`.
"""

import warnings

import numpy as np

#: Elements per chunk of a deterministic sum (fixed: results depend on it).
CHUNK = 16384

_REDUCTIONS = ("none", "mean", "sum")


def legacy_reduction(size_average, reduce):
    """PyTorch's mapping of the deprecated ``size_average``/``reduce`` flags."""
    warnings.warn("size_average and reduce args will be deprecated, please use "
                  f"reduction='{_legacy(size_average, reduce)}' instead.",
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


def sum_partials(partials):
    """Add chunk sums in a fixed order (NumPy's pairwise sum of a float64 array)."""
    return float(np.sum(partials)) if partials.size else 0.0
