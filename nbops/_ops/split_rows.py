"""Kernels of the dask paths (``nbops/_dask.py``) for rows split across chunks.

When the last axis (layer_norm's and rms_norm's trailing axes, normalize's or
cosine_similarity's axis when it is the last one; the softmax family's axis;
group_norm's positions) is
split across chunks, every chunk holds a *piece* of each row. The dask path
then runs two passes, both blockwise with the kernels below on the block seen
as ``rows`` pieces of ``n`` values in a flat C-contiguous array, piece ``r`` at
``r * stride`` (``_flat_rows`` in ``nbops/_dask.py``: a column slice of a C
array is read in place, other layouts copied), so that the row loops are the
in-memory kernels' loops over contiguous rows, which vectorize (a strided 2-D
array's do not):

1. per piece, float64 partials of each row (:func:`row_moments`: count, mean
   and M2 for layer_norm, the sum of squares for rms_norm;
   :func:`row_pnorm`: the p-norm accumulator; :func:`row_dot3`: the squared
   norms and dot product of cosine_similarity), merged over a row's pieces by
   ``nbops/_dask.py`` (Chan et al.'s formula for mean and M2);
2. the finish, one pass writing the result from the merged statistics
   (:func:`rows_finish` for layer_norm and rms_norm, with the in-memory
   kernel's arithmetic; :func:`rows_divide` for normalize).

The softmax family (and cross_entropy's log-sum-exp) takes
:func:`row_max_sumexp` (each piece's max and sum of ``exp(x - max)``, merged in
``nbops/_dask.py``), then :func:`rows_softmax_write`; group_norm and
instance_norm take :func:`row_moments` per (sample, channel), then
:func:`rows_group_finish`.

Sums run over ``_LANES`` float64 accumulators (lane ``k`` takes the values
``k, k + _LANES, ...`` of the piece; :func:`row_moments`: the 16 lanes of
layer_norm's row sums, ``nbops/_ops/row_tasks.py``), then the lanes in order
and the tail: a fixed order, so the results depend on the chunking only, never
on the number of threads or workers. The kernels are serial: dask runs the chunks in
parallel. Every kernel is cached on disk (dask.distributed workers load them).
"""

import math

import numpy as np

from .. import _config
from .._launch import entry_point
from ..scalar._math import const, exp
from ..scalar._norms import finite_shift
from ..scalar.rows import ROW_FASTMATH, row_max, row_sumexp, row_view, sub_exact
from .row_tasks import _LANES as _ROW_LANES
from .row_tasks import _shifted_sums

#: float64 accumulators per row sum.
_LANES = 8


def _type_key(a):
    """What fixes the Numba type of an argument: an array's dtype, ndim, layout and
    alignment (as ``numba.typeof``), a scalar's Python type."""
    if isinstance(a, np.ndarray):
        f = a.flags
        layout = "C" if f.c_contiguous else "F" if f.f_contiguous else "A"
        return a.dtype.char, a.ndim, layout, f.aligned
    return type(a)


def run(kernel, *args):
    """``kernel(*args)`` through nbops/_launch.py's entry points: no per-call type
    dispatch, and read-only arrays (dask.distributed's deserialized blocks) run the
    code compiled (and cached on disk) for writable ones."""
    entry_point(kernel, tuple(_type_key(a) for a in args), args)(*args)


@_config.serial_kernel
def row_moments(x, stride, rows, n, centered, out):
    """Row statistics of the row pieces ``x[r * stride : r * stride + n]`` of the
    flat C-contiguous ``x`` (a block seen whole: nbops/_dask.py's ``_flat_rows``)
    into ``out`` (rows, 3), float64.

    ``centered``: ``(count, mean, M2)`` of each row (the sums taken around the
    row's first value, or 0 if it is not finite, by layer_norm's row sums
    :func:`nbops._ops.row_tasks._shifted_sums`: a piece holding a whole row gets
    the in-memory kernel's sums);
    otherwise ``(count, 0, sum of squares)``. An empty row gives ``(0, 0, 0)``.
    """
    full = n - n % _ROW_LANES
    acc_s = np.zeros(_ROW_LANES)
    acc_q = np.zeros(_ROW_LANES)
    for r in range(rows):
        out[r, 0] = n
        out[r, 1] = 0.0
        out[r, 2] = 0.0
        if n == 0:
            continue
        xs = row_view(x, r * stride, n)
        shift = finite_shift(xs[0]) if centered else 0.0
        s, q = _shifted_sums(xs, shift, full, n, acc_s, acc_q)
        if centered:
            mean_d = s / n
            m2 = q - s * mean_d
            if m2 < 0.0:  # rounding; NaN stays NaN
                m2 = 0.0
            out[r, 1] = shift + mean_d
            out[r, 2] = m2
        else:
            out[r, 2] = q


@_config.serial_kernel
def rows_finish(x, x_stride, out, out_stride, rows, n, mean, rstd, w, b, centered):
    """``out = ((x - mean_hi) - mean_lo) * rstd * w + b`` row by row (rms_norm:
    ``x * rstd * w``) for the row pieces of the flat C-contiguous ``x`` and
    ``out`` (one dtype, rows at multiples of their strides, as
    :func:`row_moments`), in that dtype: layer_norm's kernel arithmetic, with the
    float64 ``mean``/``rstd`` of each row. ``w``, ``b``: the piece's weight and
    bias (ones and zeros where the op has none)."""
    if n == 0:
        return
    cast = row_view(out, 0, 1).copy()  # a value of out's dtype
    for r in range(rows):
        xs = row_view(x, r * x_stride, n)
        os = row_view(out, r * out_stride, n)
        cast[0] = rstd[r]
        rr = cast[0]
        if centered:
            m = mean[r]
            cast[0] = m
            mh = cast[0]
            lo = m - np.float64(mh) if math.isfinite(np.float64(mh)) else 0.0
            cast[0] = lo
            ml = cast[0]
            for j in range(n):
                os[j] = ((xs[j] - mh) - ml) * rr * w[j] + b[j]
        else:
            for j in range(n):
                os[j] = xs[j] * rr * w[j]


@_config.serial_kernel
def row_pnorm(x, stride, rows, n, p, out):
    """normalize's float64 p-norm accumulator of each row piece of the flat
    C-contiguous ``x`` (as :func:`row_moments`) into ``out`` (rows,): the max of
    ``|x|`` (p = inf), the count of nonzeros (p = 0), else the sum of ``|x| **
    p`` (p = 1 and 2 without a power)."""
    full = n - n % _LANES
    acc = np.zeros(_LANES)
    for r in range(rows):
        for k in range(_LANES):
            acc[k] = 0.0
        xs = row_view(x, r * stride, max(n, 1))
        if p == 2.0:
            for j0 in range(0, full, _LANES):
                for k in range(_LANES):
                    v = np.float64(xs[j0 + k])
                    acc[k] += v * v
        elif p == 1.0:
            for j0 in range(0, full, _LANES):
                for k in range(_LANES):
                    acc[k] += abs(np.float64(xs[j0 + k]))
        elif p == 0.0:
            for j0 in range(0, full, _LANES):
                for k in range(_LANES):
                    acc[k] += 1.0 if xs[j0 + k] != 0 else 0.0
        elif p == np.inf:
            for j0 in range(0, full, _LANES):
                for k in range(_LANES):
                    v = abs(np.float64(xs[j0 + k]))
                    acc[k] = v if (v > acc[k] or v != v) else acc[k]
        else:
            for j0 in range(0, full, _LANES):
                for k in range(_LANES):
                    acc[k] += abs(np.float64(xs[j0 + k])) ** p
        s = 0.0
        for k in range(_LANES):
            if p == np.inf:
                s = acc[k] if (acc[k] > s or acc[k] != acc[k]) else s
            else:
                s += acc[k]
        for j in range(full, n):
            v = abs(np.float64(xs[j]))
            if p == 2.0:
                s += v * v
            elif p == 1.0:
                s += v
            elif p == 0.0:
                s += 1.0 if v != 0 else 0.0
            elif p == np.inf:
                s = v if (v > s or v != v) else s
            else:
                s += v ** p
        out[r] = s


@_config.serial_kernel
def rows_divide(x, x_stride, out, out_stride, rows, n, den):
    """``out = x / den`` row by row in float64, rounded to ``out``'s dtype (row
    pieces of the flat C-contiguous ``x`` and ``out``, as :func:`rows_finish`)."""
    if n == 0:
        return
    for r in range(rows):
        xs = row_view(x, r * x_stride, n)
        os = row_view(out, r * out_stride, n)
        d = den[r]
        for j in range(n):
            os[j] = np.float64(xs[j]) / d


@_config.serial_kernel
def row_dot3(a, a_stride, b, b_stride, rows, n, out):
    """``(sum a*a, sum b*b, sum a*b)`` of each row piece of the flat C-contiguous
    ``a`` and ``b`` (one dtype, rows at multiples of their strides, as
    :func:`row_moments`) into ``out`` (rows, 3), float64."""
    full = n - n % _LANES
    aa = np.zeros(_LANES)
    bb = np.zeros(_LANES)
    ab = np.zeros(_LANES)
    for r in range(rows):
        for k in range(_LANES):
            aa[k] = 0.0
            bb[k] = 0.0
            ab[k] = 0.0
        xa = row_view(a, r * a_stride, max(n, 1))
        xb = row_view(b, r * b_stride, max(n, 1))
        for j0 in range(0, full, _LANES):
            for k in range(_LANES):
                u = np.float64(xa[j0 + k])
                v = np.float64(xb[j0 + k])
                aa[k] += u * u
                bb[k] += v * v
                ab[k] += u * v
        s1 = 0.0
        s2 = 0.0
        s12 = 0.0
        for k in range(_LANES):
            s1 += aa[k]
            s2 += bb[k]
            s12 += ab[k]
        for j in range(full, n):
            u = np.float64(xa[j])
            v = np.float64(xb[j])
            s1 += u * u
            s2 += v * v
            s12 += u * v
        out[r, 0] = s1
        out[r, 1] = s2
        out[r, 2] = s12


@_config.serial_kernel(fastmath=ROW_FASTMATH)
def row_max_sumexp(x, stride, rows, n, sgn, out):
    """The softmax family's partials of row pieces into ``out`` (rows, 2), float64:
    ``m``, the max of ``sgn * v``, and ``sum(exp(sgn * v - m))`` of each piece
    ``v = x[r * stride : r * stride + n]`` of the flat C-contiguous ``x`` (a block
    whose rows are contiguous, seen whole: nbops/_dask.py's ``_flat_rows``), with
    the in-memory kernels' arithmetic (``nbops/scalar/rows.py``: ``exp`` in
    ``x``'s dtype, sums over blocks of ``SUM_BLOCK`` values in ``x``'s dtype
    added in float64). A piece that is empty or all -inf gives ``(-inf, 0)`` (it
    adds nothing to its row). ``sgn``: +1.0, or -1.0 for softmin."""
    for r in range(rows):
        out[r, 0] = -np.inf
        out[r, 1] = 0.0
        if n == 0:
            continue
        row = row_view(x, r * stride, n)
        s = const(row[0], sgn)
        m = row_max(row, s)
        out[r, 0] = m
        if m != -np.inf:
            out[r, 1] = row_sumexp(row, None, s, m)


@_config.serial_kernel(fastmath=ROW_FASTMATH)
def rows_softmax_write(x, x_stride, out, out_stride, rows, n, stats, sgn, log):
    """The softmax family's finish of row pieces (flat C-contiguous ``x`` and
    ``out`` of one dtype, rows at multiples of their strides, as
    :func:`row_max_sumexp`) from each row's merged float64 ``stats`` (rows, 2):
    ``m`` (the row's max of ``sgn * x``) and ``s`` (its sum of
    ``exp(sgn * x - m)``). softmax: ``exp(sgn * x - m) * (1 / s)``; ``log``:
    ``(sgn * x - m) - log(s)``, in that order: the in-memory kernels'
    arithmetic in ``x``'s dtype (``nbops/scalar/rows.py``)."""
    if n == 0:
        return
    for r in range(rows):
        row = row_view(x, r * x_stride, n)
        dst = row_view(out, r * out_stride, n)
        sg = const(row[0], sgn)
        m = const(row[0], stats[r, 0])
        total = stats[r, 1]
        if log:
            k = const(m, -np.inf if total == 0.0 else math.log(total))
            for j in range(n):
                dst[j] = sub_exact(sub_exact(sg * row[j], m), k)
        else:
            k = const(m, np.inf if total == 0.0 else 1.0 / total)
            for j in range(n):
                dst[j] = exp(sg * row[j] - m) * k


@_config.serial_kernel
def rows_group_finish(x, x_stride, out, out_stride, rows, n, mean, rstd, w, b):
    """group_norm's (instance_norm's) finish of row pieces (flat C-contiguous ``x``
    and ``out`` of one dtype, rows at multiples of their strides, as
    :func:`row_max_sumexp`; a row is one (sample, channel)'s positions):
    ``out = ((x - mean_hi) - mean_lo) * (rstd * w) + b`` with the row's float64
    ``mean`` and ``rstd`` and its channel's ``w`` and ``b`` (``x``'s dtype, one
    per row): the in-memory kernel's arithmetic (``nbops/_ops/group_norm.py``)."""
    if n == 0:
        return
    cast = row_view(out, 0, 1).copy()  # a value of out's dtype
    for r in range(rows):
        xs = row_view(x, r * x_stride, n)
        os = row_view(out, r * out_stride, n)
        m = mean[r]
        cast[0] = m
        mh = cast[0]
        lo = m - np.float64(mh) if math.isfinite(np.float64(mh)) else 0.0
        cast[0] = lo
        ml = cast[0]
        cast[0] = rstd[r] * np.float64(w[r])
        sc = cast[0]
        bc = b[r]
        for j in range(n):
            os[j] = ((xs[j] - mh) - ml) * sc + bc
