"""Loss reductions: deterministic, accurate sums (the ``reduction`` argument itself
is validated by :func:`nbops._ops.plan.reduction_plan`).

Determinism: an array is cut into fixed chunks of ``CHUNK`` elements; each
chunk is summed in float64 by one thread, and the chunk sums are added in a
fixed order. The chunk boundaries do not depend on the thread count, so the
result is bit-identical on 1 or 64 threads, and float64 accumulation keeps
float32 sums of 1e8 elements accurate. The fused loss kernels (a loss computed
and summed in one pass, nbops/_ops/losses.py) use this chunking: see
:func:`chunk_count` and :func:`sum_partials`.
"""

import numpy as np

#: Elements per chunk of a deterministic sum (fixed: results depend on it).
CHUNK = 16384


def chunk_count(n):
    return (n + CHUNK - 1) // CHUNK


def sum_partials(partials):
    """Add chunk sums in a fixed order (NumPy's pairwise sum of a float64 array)."""
    if partials.size == 1:  # (NumPy's sum of one element is that element)
        return float(partials[0])
    # np.add.reduce is what np.sum runs (the same pairwise sum), without its
    # Python-level wrapper
    return float(np.add.reduce(partials)) if partials.size else 0.0
