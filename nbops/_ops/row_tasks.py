"""Row helpers shared by the row-normalizing kernels: the cut of rows into tasks and
the float64 lane sums of a row.

Used by ``nbops/_ops/layer_norm.py`` (layer_norm, rms_norm), ``group_norm.py``
(group_norm, instance_norm), ``similarity.py`` (the task cut) and
``split_rows.py`` (the dask path's per-piece row statistics).

* :func:`_rows_per_task`: tasks of whole rows, about ``_TASK`` input elements
  each, fixed by the shape alone (so the results never depend on the thread
  count).
* :func:`_shifted_sums`: a row's float64 sum and sum of squares around a shift,
  in ``_LANES`` float64 accumulators (lane ``k`` adds the values ``k, k + _LANES,
  ...``), then the lanes in order, then the tail: a fixed order, written as a
  plain loop over the lanes that LLVM vectorizes without reassociating. The row
  may have any layout (a dask block's row is often a strided view): C-contiguous
  rows are read through reference-free views, others through slices, with the
  same order of additions.
* :func:`_plain_shifted_sums`: the same two sums as one plain loop compiled
  with ``reassoc`` (vectorized by LLVM in an order of its own; group_norm).
* :func:`_sum_parts`: the per-task partial sums of a backward's weight and bias
  gradients, added in task order.
"""

import numpy as np
from numba import types
from numba.extending import overload, register_jitable

from .. import _config
from .._numba_internals import make_stack_block
from ..scalar.rows import row_view

#: Values per block of a row's sums (one float64 accumulator each).
_LANES = 16
#: Target number of input elements per task (a block of whole rows).
_TASK = 32768
#: The ``scratch`` argument of the row kernels (read, never written): a copy of
#: its start allocates ``_LANES`` accumulators without ``np.empty``.
_SCRATCH = np.zeros(_LANES)
#: ``_lane_block(0.0)``: ``_LANES`` float64 accumulators on the stack of the
#: compiled caller (contents undefined; no reference count). Heap copies of
#: ``_SCRATCH`` passed to :func:`_shifted_sums` (a function of its own, not
#: inlined) cost an atomic increment and decrement of each copy's reference
#: count per call, that is per row: about half of a 10-value row's time.
_lane_block = make_stack_block(_LANES)


@register_jitable
def _rows_per_task(n_rows, length):
    """(rows per task, number of tasks): a cut fixed by the shape alone."""
    per = np.maximum(1, _TASK // np.maximum(length, 1))
    return per, (n_rows + per - 1) // per


def _block(xs, start, n):
    """``xs[start:start + n]`` of a 1-D array (see the overload below)."""
    return xs[start:start + n]


@overload(_block, jit_options=_config._COMMON)
def _block_impl(xs, start, n):
    """A C-contiguous row: :func:`nbops.scalar.rows.row_view` (no reference
    counting); any other layout: the slice."""
    if isinstance(xs, types.Array) and xs.layout == "C":
        return lambda xs, start, n: row_view(xs, start, n)
    return lambda xs, start, n: xs[start:start + n]


@register_jitable(inline="always")
def _shifted_sums(xs, shift, full, length, acc_s, acc_q):
    """(sum, sum of squares) of ``xs[:length] - shift`` in float64 (``xs``: a 1-D
    row of any layout; ``acc_s``, ``acc_q``: at least ``_LANES`` float64 values of
    scratch): ``_LANES`` accumulators over the first ``full`` values (``length -
    length % _LANES``), then the lanes in order, then the rest in order; the
    same bits on any thread count.

    Four blocks at a time: lane k adds the four values it gets from them in
    block order (``a + d0 + d1`` is ``(a + d0) + d1``), the same sums as one
    block at a time with a quarter of the accumulators' loads and stores."""
    for k in range(_LANES):
        acc_s[k] = 0.0
        acc_q[k] = 0.0
    full4 = full - full % (4 * _LANES)
    for j0 in range(0, full4, 4 * _LANES):
        xb = _block(xs, j0, 4 * _LANES)
        for k in range(_LANES):
            d0 = np.float64(xb[k]) - shift
            d1 = np.float64(xb[k + _LANES]) - shift
            d2 = np.float64(xb[k + 2 * _LANES]) - shift
            d3 = np.float64(xb[k + 3 * _LANES]) - shift
            acc_s[k] = acc_s[k] + d0 + d1 + d2 + d3
            acc_q[k] = acc_q[k] + d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3
    for j0 in range(full4, full, _LANES):
        xb = _block(xs, j0, _LANES)
        for k in range(_LANES):
            d = np.float64(xb[k]) - shift
            acc_s[k] += d
            acc_q[k] += d * d
    s = 0.0
    q = 0.0
    for k in range(_LANES):
        s += acc_s[k]
        q += acc_q[k]
    for j in range(full, length):
        d = np.float64(xs[j]) - shift
        s += d
        q += d * d
    return s, q


@_config.serial_kernel
def _sum_parts(part_w, part_b, grad_w, grad_b):
    """Add the tasks' partial sums in task order (float64)."""
    for j in range(grad_w.size):
        grad_w[j] = 0.0
        grad_b[j] = 0.0
    for t in range(part_w.shape[0]):
        for j in range(grad_w.size):
            grad_w[j] += part_w[t, j]
            grad_b[j] += part_b[t, j]


@_config.serial_kernel(fastmath={"reassoc"})
def _plain_shifted_sums(xs, shift, length):
    """(sum, sum of squares) of ``xs[:length] - shift`` in float64, one plain loop
    compiled on its own with ``reassoc`` (no flag that touches NaN or inf), which
    lets LLVM split the two sums into vector lanes (without it the loop stays one
    chain of scalar additions; see docs/guides/performance.rst, "normalize, and
    float64 sums that vectorize"). The order of the additions is fixed by the
    compiled code and ``length``: the same bits on any thread count, not those
    of :func:`_shifted_sums`."""
    s = 0.0
    q = 0.0
    for j in range(length):
        d = np.float64(xs[j]) - shift
        s += d
        q += d * d
    return s, q
