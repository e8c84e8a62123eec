"""Batch normalization: ``nbops.batch_norm``.

The argument checks are :func:`nbops._ops.plan_norm.batch_norm_plan` and the
per-channel math (shift, statistics, running-statistics update, scale and
offset with PyTorch's NaN rule) the cores of :mod:`nbops.scalar._norms`, both
shared with the CUDA backend.

Statistics
----------
Per channel (axis 1) over the batch and spatial axes, summed in float64 around
a shift (the channel's first value, or 0 if that is not finite), so float32
inputs with a large mean and a small spread keep their variance.

The work is cut into tasks of about ``_TASK`` elements: a block of batch rows
times a tile of channels (several small channels per tile, or one channel).
Inside a task, each position of the tile (up to ``_WIDTH`` positions; longer
channel runs wrap around) has its own float64 accumulator, so the inner loop
is a plain vectorizable elementwise update; the task then sums its positions
in order, and the per-task partials of a channel are added in block order.
The cut depends only on the input's shape, never on the thread count, so the
statistics are bit-identical on any number of threads, and the task grid keeps
both threads busy even when there are only one or two channels.

Normalization
-------------
``y = (x - mean_hi) * scale + (shift - mean_lo * scale)`` in the input's
dtype, where ``mean_hi + mean_lo`` is the float64 mean split into two values
of the input dtype and the offset ``shift - mean_lo * scale`` is computed in
float64: a float32 input with mean 1e4 and spread 1 loses nothing to the
rounding of the mean. (A channel whose scale is not finite keeps the two-step
``((x - mean_hi) - mean_lo) * scale + shift``.)
"""

import math

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable

from .. import _config, _memory
from .._launch import launch
from .._validate import (
    as_array,
    check_out,
    check_out_apart,
    dask_ops,
    deliver,
    is_dask_array,
    is_device_array,
    lean_destination,
    may_share_memory,
    overlaps,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar._norms import channel_affine, channel_stats, finite_shift, running_update
from ..scalar.rows import row_view
from .elementwise import _float_array
from .plan_norm import batch_norm_plan

#: Positions (float64 accumulator pairs) per statistics task tile.
_WIDTH = 1024
#: Target number of input elements per statistics task.
_TASK = 65536
#: Target number of elements per normalization task.
_NORM_TASK = 16384
#: Channel runs (``prod(shape[2:])``) shorter than this are normalized a whole
#: batch row at a time, with the per-channel parameters repeated per position.
_PER_POSITION = 64
#: The ``scratch`` argument of the statistics kernels (read, never written).
_SCRATCH = np.zeros(_WIDTH)


@register_jitable
def _stats_plan(n_outer, channels, inner):
    """(channels per tile, batch rows per block, number of blocks, number of tiles)."""
    if inner <= _WIDTH:
        tile_c = max(1, min(channels, _WIDTH // max(inner, 1)))
    else:
        tile_c = 1
    tile_elems = max(1, tile_c * inner)
    rows = max(1, (_TASK + tile_elems - 1) // tile_elems)
    n_blocks = (n_outer + rows - 1) // rows
    n_tiles = (channels + tile_c - 1) // tile_c
    return tile_c, rows, n_blocks, n_tiles


def _stats(x, n_outer, inner, tile_c, rows, n_tiles, ps, pq, scratch, shift, mean, var, update,
           momentum, run_mean, run_var):
    """mean, var (float64, per channel) of the flat (n_outer, C, inner) ``x``.

    (tile_c, rows, n_tiles) is :func:`_stats_plan`'s cut; ps, pq: (n_blocks, C)
    float64 scratch for the block partials; ``shift`` (C,) float64 scratch;
    ``scratch``: at least ``_WIDTH`` float64 values (contents unused, see below).
    ``update``: also apply the momentum update to the float64 running
    statistics ``run_mean``, ``run_var`` (else they are not touched).

    Task t gives the shifted float64 sums (of d and d*d) of one (row block,
    channel tile): ``ps[block, c]`` and ``pq[block, c]`` for the tile's
    channels. In each batch row the tile is one contiguous run of
    ``(c1 - c0) * inner`` values: several whole channels (``inner <= _WIDTH``)
    or one long channel cut in pieces of ``_WIDTH``. Position k of a piece has
    its own accumulators (a run of one piece is read four batch rows at a
    time, each accumulator adding the four rows' values in row order: the same
    sums, with a quarter of the accumulators' loads and stores) and shift (that
    of channel ``c0 + k // inner``), in
    arrays that are copies of the start of ``scratch``: a copy allocates
    without ``np.empty``, whose Numba implementation is compiled as a function
    of its own at its first use in a process (so are ``min`` and ``max``:
    hence ``np.minimum``). With one position per channel (``inner == 1``, an
    (N, C) input) a task sums into its own cells of ``ps``/``pq`` and reads the
    shifts in place: the same sums, about three times faster than on the
    copies (its own loops: sharing the general path's arrays slowed that path
    down). The task is written out here rather than as an inlined core: Numba
    copies an inlined function's IR block by block, at a cost that grows with
    its size (the same for the per-channel sums below).
    """
    channels = shift.size
    ps_flat = ps.reshape(-1)
    pq_flat = pq.reshape(-1)
    for c in range(channels):
        shift[c] = finite_shift(x[c * inner])
    for t in prange(ps.shape[0] * n_tiles):
        blk = t // n_tiles
        c0 = (t % n_tiles) * tile_c
        c1 = np.minimum(channels, c0 + tile_c)
        n0 = blk * rows
        n1 = np.minimum(n_outer, n0 + rows)
        run = (c1 - c0) * inner
        if inner == 1:  # (N, C): one position per channel, summed into ps/pq in place
            cs = row_view(ps_flat, blk * channels + c0, run)
            cq = row_view(pq_flat, blk * channels + c0, run)
            csh = row_view(shift, c0, run)
            for k in range(run):
                cs[k] = 0.0
                cq[k] = 0.0
            n4 = n0 + (n1 - n0) // 4 * 4
            for n in range(n0, n4, 4):
                x0 = row_view(x, n * channels + c0, run)
                x1 = row_view(x, (n + 1) * channels + c0, run)
                x2 = row_view(x, (n + 2) * channels + c0, run)
                x3 = row_view(x, (n + 3) * channels + c0, run)
                for k in range(run):
                    sh = csh[k]
                    d0 = np.float64(x0[k]) - sh
                    d1 = np.float64(x1[k]) - sh
                    d2 = np.float64(x2[k]) - sh
                    d3 = np.float64(x3[k]) - sh
                    cs[k] = cs[k] + d0 + d1 + d2 + d3
                    cq[k] = cq[k] + d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3
            for n in range(n4, n1):
                xs = row_view(x, n * channels + c0, run)
                for k in range(run):
                    d = np.float64(xs[k]) - csh[k]
                    cs[k] += d
                    cq[k] += d * d
        else:
            width = np.minimum(run, _WIDTH)
            acc_s = row_view(scratch, 0, width).copy()
            acc_q = row_view(scratch, 0, width).copy()
            shv = row_view(scratch, 0, width).copy()
            for k in range(width):
                acc_s[k] = 0.0
                acc_q[k] = 0.0
                shv[k] = shift[c0 + k // inner]
            n4 = n0  # the rows done four at a time
            if run <= _WIDTH:  # one piece per row: position k gets one value per row
                n4 = n0 + (n1 - n0) // 4 * 4
                stride = channels * inner
                for n in range(n0, n4, 4):
                    base = (n * channels + c0) * inner
                    x0 = row_view(x, base, run)
                    x1 = row_view(x, base + stride, run)
                    x2 = row_view(x, base + 2 * stride, run)
                    x3 = row_view(x, base + 3 * stride, run)
                    for k in range(run):  # (a + d0) + d1 ...: row order, as one row at a time
                        sh = shv[k]
                        d0 = np.float64(x0[k]) - sh
                        d1 = np.float64(x1[k]) - sh
                        d2 = np.float64(x2[k]) - sh
                        d3 = np.float64(x3[k]) - sh
                        acc_s[k] = acc_s[k] + d0 + d1 + d2 + d3
                        acc_q[k] = acc_q[k] + d0 * d0 + d1 * d1 + d2 * d2 + d3 * d3
            for n in range(n4, n1):
                base = (n * channels + c0) * inner
                for j0 in range(0, run, _WIDTH):
                    m = np.minimum(_WIDTH, run - j0)
                    xs = row_view(x, base + j0, m)  # a plain 0..m loop: LLVM vectorizes it
                    for k in range(m):
                        d = np.float64(xs[k]) - shv[k]
                        acc_s[k] += d
                        acc_q[k] += d * d
            for ch in range(c0, c1):
                s = 0.0
                q = 0.0
                k0 = (ch - c0) * inner
                for k in range(k0, np.minimum(width, k0 + inner)):
                    s += acc_s[k]
                    q += acc_q[k]
                ps[blk, ch] = s
                pq[blk, ch] = q
    count = n_outer * inner
    for c in range(channels):  # each channel's block partials, in block order
        sum_d = 0.0
        sum_dd = 0.0
        for i in range(ps.shape[0]):
            sum_d += ps[i, c]
            sum_dd += pq[i, c]
        mean[c], var[c] = channel_stats(sum_d, sum_dd, count, shift[c])
    if update:
        for c in range(channels):
            run_mean[c], run_var[c] = running_update(run_mean[c], run_var[c], mean[c], var[c],
                                                     count, momentum)


#: ``contract``: ``acc + d * d`` as one fused multiply-add (no NaN/inf flag; the
#: same code in both kernels, so the same bits on any thread count): about 15 to
#: 25 % less time for an (N, C) input's sums.
_stats_serial, _stats_parallel = _config.kernels(_stats, fastmath=frozenset({"contract"}))


def _normalize(x, channels, inner, per_position, mean, var, w, b, eps, params, out):
    """out = (x - mean) * scale + offset of the flat (N, C, inner) ``x``, the
    per-channel parameters from the float64 ``mean``, ``var``, ``w``, ``b``.

    ``params``: (4, C * inner or C) scratch of ``x``'s dtype for the
    parameters: ``out = ((x - mean_hi) - mean_lo) * scale + shift``, with
    ``mean_lo`` folded into ``shift`` (0) wherever the scale is finite.
    ``per_position`` True (short channel runs): a row is one batch row
    (C * inner values) and the parameters are repeated per position in it;
    None: a row is one (n, c) run of ``inner`` values and the parameters have
    one value per channel. (None or not is known when Numba compiles: each
    specialization compiles one of the two row loops. The row loops are
    written out here rather than as an inlined core, as in :func:`_stats`.)
    """
    repeat = 1 if per_position is None else inner
    mean_hi, mean_lo, scale, shift = params[0], params[1], params[2], params[3]
    # Each channel's value ``repeat`` times; mean_hi + mean_lo is the float64 mean
    # (lo = 0 where hi is not finite, so an infinite mean gives what x - mean gives).
    # A finite scale folds lo into the shift, in float64 (``(d - lo) * scale +
    # shift`` as ``d * scale + (shift - lo * scale)``; one parameter row less to
    # read per value), and the loop below skips ``- mean_lo`` when every lo is 0
    # then (always for float64 inputs).
    any_lo = False
    for c in range(channels):
        k0 = c * repeat
        mean_hi[k0] = mean[c]
        hi = float(mean_hi[k0])
        lo = mean[c] - hi if math.isfinite(hi) else 0.0
        sc, off = channel_affine(mean[c], var[c], eps, w[c], b[c])
        scale[k0] = sc
        if lo != 0.0 and math.isfinite(float(scale[k0])) and math.isfinite(lo * sc):
            off = off - lo * sc
            lo = 0.0
        for k in range(k0, k0 + repeat):
            mean_hi[k] = mean[c]
            mean_lo[k] = lo
            scale[k] = sc
            shift[k] = off
        if lo != 0.0:
            any_lo = True
    length = repeat * channels if per_position is not None else inner
    n_rows = x.size // length
    per = np.maximum(1, _NORM_TASK // length)  # (not max(): see _stats)
    for t in prange((n_rows + per - 1) // per):
        r0 = t * per
        r1 = np.minimum(n_rows, r0 + per)
        # views: plain 0..length loops that LLVM vectorizes (indexing with
        # base + j did not vectorize: docs/guides/architecture.rst, "Vectorization")
        if per_position is not None:
            for row in range(r0, r1):
                xs = row_view(x, row * length, length)
                os = row_view(out, row * length, length)
                if any_lo:
                    for j in range(length):
                        os[j] = ((xs[j] - mean_hi[j]) - mean_lo[j]) * scale[j] + shift[j]
                else:
                    for j in range(length):
                        os[j] = (xs[j] - mean_hi[j]) * scale[j] + shift[j]
        else:
            for row in range(r0, r1):
                ch = row % channels
                mh = mean_hi[ch]
                ml = mean_lo[ch]
                sc_ch = scale[ch]
                off_ch = shift[ch]
                xs = row_view(x, row * length, length)
                os = row_view(out, row * length, length)
                for j in range(length):
                    os[j] = ((xs[j] - mh) - ml) * sc_ch + off_ch


_normalize_serial, _normalize_parallel = _config.kernels(_normalize)


# --------------------------------------------------------------------------- #
# public function
# --------------------------------------------------------------------------- #


def _channel_vector(v, name):
    """weight or bias as a float64 array (its shape is checked by the plan)."""
    if v is None:
        return None
    a = as_array(v, name)
    result_dtype(a.dtype, name)
    return a


def _check_running(r, name, training):
    if not isinstance(r, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (it is updated in place), "
                        f"got {type(r).__name__}")
    if r.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array, got dtype {r.dtype}")
    if training and not r.flags.writeable:
        raise ValueError(f"{name} is read-only; training=True updates it in place")


_FILLED = {}  # (fill, channels) -> a read-only float64 vector (weight/bias defaults)


def _float64_or(v, fill, channels):
    """``v`` as float64, or ``channels`` copies of ``fill`` when it is None (one
    read-only vector per size, made once: the kernels only read it)."""
    if v is not None:
        return _read_float64(v)
    vec = _FILLED.get((fill, channels))
    if vec is None:
        vec = np.full(channels, fill)
        vec.flags.writeable = False
        if len(_FILLED) < 64:
            _FILLED[(fill, channels)] = vec
    return vec


_FLOAT64 = np.dtype(np.float64)


def _read_float64(v):
    """A (C,) vector the kernels only read, as a contiguous float64 array: ``v``
    itself when it is one (no copy), else a float64 copy."""
    if v.dtype is _FLOAT64 and v.flags.c_contiguous:
        return v
    return v.astype(np.float64)


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _is_channel_vector(v, channels):
    """``v`` a (channels,) float ndarray (the common weight, bias, running statistic)."""
    return type(v) is np.ndarray and v.dtype.kind == "f" and v.shape == (channels,)


def _fast_eval(x, running_mean, running_var, weight, bias, eps, out):
    """Evaluation's common call: a C-contiguous non-empty float32/float64 ``(N, C, *)``
    ndarray, float (C,) ndarrays (weight, bias: or None), a float ``eps >= 0``,
    no ``out=`` or a C-contiguous writable one of the input's shape and dtype.
    The general path's kernel call with fewer Python steps; None for any other
    call (the general path checks it)."""
    dt = x.dtype
    if not (dt in _FLOATS and x.ndim >= 2 and x.flags.c_contiguous and x.size
            and type(eps) is float and eps >= 0.0):
        return None
    shape = x.shape
    channels = shape[1]
    if not (_is_channel_vector(running_mean, channels)
            and _is_channel_vector(running_var, channels)
            and (weight is None or _is_channel_vector(weight, channels))
            and (bias is None or _is_channel_vector(bias, channels))):
        return None
    # (out= the input itself is written element by element in place; a partial
    # overlap goes to the general path)
    res = lean_destination(out, shape, dt, None if out is x else x, running_mean,
                           running_var, weight, bias)
    if res is None:
        return None
    inner = x.size // (shape[0] * channels)
    flat = x.reshape(-1)
    per_position = inner < _PER_POSITION
    key = ("bn_normalize", dt.char, flat.flags.writeable, per_position)
    params = np.empty((4, channels * inner if per_position else channels), dt)
    launch(_normalize_serial, _normalize_parallel, key, x.size, flat, channels, inner,
           True if per_position else None, _read_float64(running_mean),
           _read_float64(running_var), _float64_or(weight, 1.0, channels),
           _float64_or(bias, 0.0, channels), eps, params, res.reshape(-1))
    return res


_STATS_PLANS = {}  # (n_outer, channels, inner) -> _stats_plan's cut (small shapes' calls)


def _fast_train(x, running_mean, running_var, weight, bias, momentum, eps, out):
    """Training's common call: a C-contiguous float32/float64 ``(N, C, *)`` ndarray
    with more than one value per channel, writable float (C,) ndarrays as running
    statistics (or both None), float (C,) ndarrays or None as weight and bias,
    float ``momentum`` and ``eps > 0``, no ``out=`` or a C-contiguous writable one
    of the input's shape and dtype (the input itself too). The general path's
    kernel calls with fewer Python steps (same results, bit for bit); None for
    any other call (the general path checks it)."""
    dt = x.dtype
    if not (dt in _FLOATS and x.ndim >= 2 and x.flags.c_contiguous and x.size
            and type(eps) is float and eps > 0.0 and type(momentum) is float):
        return None
    shape = x.shape
    channels = shape[1]
    update = running_mean is not None
    if update:
        if not (_is_channel_vector(running_mean, channels)
                and _is_channel_vector(running_var, channels)
                and running_mean.flags.writeable and running_var.flags.writeable):
            return None
    elif running_var is not None:
        return None
    if not ((weight is None or _is_channel_vector(weight, channels))
            and (bias is None or _is_channel_vector(bias, channels))):
        return None
    n_outer = shape[0]
    inner = x.size // (n_outer * channels)
    if n_outer * inner == 1:
        return None
    # (out= the input itself is written in place after the statistics are read; a
    # partial overlap goes to the general path)
    res = lean_destination(out, shape, dt, None if out is x else x, running_mean,
                           running_var, weight, bias)
    if res is None:
        return None
    key = (n_outer, channels, inner)
    cut = _STATS_PLANS.get(key)
    if cut is None:
        cut = _stats_plan(n_outer, channels, inner)
        if len(_STATS_PLANS) < 256:
            _STATS_PLANS[key] = cut
    tile_c, rows, n_blocks, n_tiles = cut
    flat = x.reshape(-1)
    mean = np.empty(channels, np.float64)
    var = np.empty(channels, np.float64)
    run_mean = running_mean.astype(np.float64) if update else mean
    run_var = running_var.astype(np.float64) if update else var
    launch(_stats_serial, _stats_parallel, ("bn_stats", dt.char, flat.flags.writeable), x.size,
           flat, n_outer, inner, tile_c, rows, n_tiles, np.empty((n_blocks, channels)),
           np.empty((n_blocks, channels)), _SCRATCH, np.empty(channels), mean, var, update,
           momentum, run_mean, run_var)
    per_position = inner < _PER_POSITION
    params = np.empty((4, channels * inner if per_position else channels), dt)
    launch(_normalize_serial, _normalize_parallel,
           ("bn_normalize", dt.char, flat.flags.writeable, per_position), x.size, flat,
           channels, inner, True if per_position else None, mean, var,
           _float64_or(weight, 1.0, channels), _float64_or(bias, 0.0, channels), eps, params,
           res.reshape(-1))
    if update:
        running_mean[...] = run_mean
        running_var[...] = run_var
    return res


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, out=None, *, return_stats=False):
    r"""Batch normalization over axis 1 (the channels) of an ``(N, C, *)`` input.

    .. math:: y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot w + b

    In training, ``E[x]`` and ``Var[x]`` (biased) are the batch statistics per
    channel, and ``running_mean``/``running_var`` (if given) are updated in place:
    ``r = (1 - momentum) * r + momentum * s`` with the *unbiased* batch variance
    for ``running_var``, as PyTorch. In evaluation the running statistics are used.

    Parameters
    ----------
    input : array_like
        ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``
        (any ``(N, C, *)``); also an empty 1-D ``(0,)`` array (no channels:
        an empty result, as PyTorch).
    running_mean, running_var : ndarray of shape (C,) or None
        Required when ``training=False``; updated in place when training (both
        or neither, as PyTorch). Any float dtype.
    weight, bias : array_like of shape (C,), optional
    training : bool
    momentum : float
    eps : float
    out : ndarray, optional
        Written with the result (same shape and dtype as the result).
    return_stats : bool, default False, keyword-only
        Also return the statistics the normalization used, for
        :func:`nbops.batch_norm_backward`.

    Returns
    -------
    ndarray of the input's shape and dtype (float32 stays float32); with
    ``return_stats=True`` the tuple ``(output, mean, invstd)``: per channel, in
    the result's dtype, the mean and ``1 / sqrt(var + eps)`` that normalized
    the input (training: the batch mean and biased batch variance, as
    ``torch.ops.aten.native_batch_norm`` returns them; evaluation: the running
    mean and ``1 / sqrt(running_var + eps)``).

    Notes
    -----
    Statistics are accumulated in float64 (see the module notes) and are
    bit-identical for any thread count. As PyTorch, training raises
    ``ValueError`` when a channel has exactly one value, and an empty input in
    training returns an empty result without touching the running statistics;
    ``eps`` must be positive in training and non-negative otherwise. NaN and
    inf follow PyTorch's CPU kernel (a channel whose offset
    ``bias - mean * scale`` is NaN is all NaN). Nothing is modified when an
    argument is rejected.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> rm, rv = np.zeros(2), np.ones(2)
    >>> nbops.batch_norm(x, rm, rv, training=True)
    array([[-0.999995  , -0.99999995],
           [ 0.999995  ,  0.99999995]])
    >>> rm, rv
    (array([0.2, 2. ]), array([ 1.1, 20.9]))
    """
    if not return_stats and type(input) is np.ndarray:
        if training is False:
            res = _fast_eval(input, running_mean, running_var, weight, bias, eps, out)
        elif training is True:
            res = _fast_train(input, running_mean, running_var, weight, bias, momentum, eps,
                              out)
        else:
            res = None
        if res is not None:
            return res
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().batch_norm(input, running_mean=running_mean, running_var=running_var,
                                  weight=weight, bias=bias, training=training, momentum=momentum,
                                  eps=eps, out=out, return_stats=return_stats)
    if type(input) is not np.ndarray and type(input).__module__.startswith("dask."):
        from .._dask import batch_norm as on_dask  # nbops/_dask.py: a lazy graph
        return on_dask(input, running_mean, running_var, weight, bias, training, momentum,
                       eps, out=out, return_stats=return_stats)
    x = input if type(input) is np.ndarray else as_array(input)
    compute, result = result_dtype(x.dtype)
    training = bool(training)
    w = _channel_vector(weight, "weight")
    b = _channel_vector(bias, "bias")
    if running_mean is not None:
        _check_running(running_mean, "running_mean", training)
    if running_var is not None:
        _check_running(running_var, "running_var", training)
    plan = batch_norm_plan(x.shape, running_mean, running_var, w, b, training, momentum, eps)
    if out is not None:
        check_out(out, x.shape, result)
        check_out_apart(out, running_mean, running_var, plan.update_running)

    src = np.ascontiguousarray(x, dtype=compute)
    flat = src.reshape(-1)
    direct = (out is not None and result == compute and out.flags.c_contiguous
              and (out is src or not may_share_memory(out, src))
              and not overlaps(out, w, b, running_mean, running_var))
    res = out if direct else _memory.empty(x.shape, compute)
    if x.size == 0:  # PyTorch: empty result, running statistics untouched
        if out is not None:
            res = out
        elif result != compute:
            res = res.astype(result)
        if return_stats:
            return res, *_empty_stats(plan, running_mean, running_var, result)
        return res

    channels, inner = plan.channels, plan.inner
    if plan.training:
        mean = np.empty(channels, np.float64)
        var = np.empty(channels, np.float64)
        update = plan.update_running
        run_mean = running_mean.astype(np.float64) if update else mean
        run_var = running_var.astype(np.float64) if update else var
        tile_c, rows, n_blocks, n_tiles = _stats_plan(plan.n_outer, channels, inner)
        ps = np.empty((n_blocks, channels), np.float64)
        pq = np.empty((n_blocks, channels), np.float64)
        shift = np.empty(channels, np.float64)
        key = ("bn_stats", compute.char, flat.flags.writeable)
        launch(_stats_serial, _stats_parallel, key, x.size, flat, plan.n_outer, inner,
               tile_c, rows, n_tiles, ps, pq, _SCRATCH, shift, mean, var, update,
               plan.momentum, run_mean, run_var)
    else:  # the running statistics (read only)
        mean = _read_float64(running_mean)
        var = _read_float64(running_var)
    per_position = inner < _PER_POSITION
    key = ("bn_normalize", compute.char, flat.flags.writeable, per_position)
    params = np.empty((4, channels * inner if per_position else channels), compute)
    launch(_normalize_serial, _normalize_parallel, key, x.size, flat, channels, inner,
           True if per_position else None, mean, var, _float64_or(w, 1.0, channels),
           _float64_or(b, 0.0, channels), plan.eps, params, res.reshape(-1))

    if plan.update_running:  # the kernels cannot fail: nothing was touched before
        running_mean[...] = run_mean
        running_var[...] = run_var

    res = deliver(res, out, direct, compute, result)
    if return_stats:
        return res, mean.astype(result), _invstd(var, plan.eps).astype(result)
    return res


def _invstd(var, eps):
    """``1 / sqrt(var + eps)`` of float64 variances (NaN where ``var + eps < 0``)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 / np.sqrt(np.asarray(var, np.float64) + eps)


def _empty_stats(plan, running_mean, running_var, dtype):
    """The statistics of an empty input: PyTorch's NaN batch statistics in training,
    the running ones in evaluation."""
    if plan.training:
        nan = np.full(plan.channels, np.nan, dtype)
        return nan, nan.copy()
    return (np.asarray(running_mean, np.float64).astype(dtype),
            _invstd(running_var, plan.eps).astype(dtype))


__all__ = ["batch_norm", "batch_norm_backward"]


# --------------------------------------------------------------------------- #
# backward
# --------------------------------------------------------------------------- #


def _grad_sums(g, x, n_outer, inner, tile_c, rows, n_tiles, ps, pq, scratch, mean, sum_g,
               sum_gd):
    """Per channel of the flat (n_outer, C, inner) ``g`` and ``x``: the float64
    sums ``sum_g = sum(g)`` and ``sum_gd = sum(g * (x - mean))`` (``mean``: (C,)
    float64).

    The task cut, the per-position float64 accumulators and the fixed order of
    the partial sums are :func:`_stats`'s (``ps``/``pq``: (n_blocks, C) scratch,
    ``scratch``: at least ``_WIDTH`` float64 values whose contents are unused),
    so the sums are bit-identical on any thread count.
    """
    channels = mean.size
    ps_flat = ps.reshape(-1)
    pq_flat = pq.reshape(-1)
    for t in prange(ps.shape[0] * n_tiles):
        blk = t // n_tiles
        c0 = (t % n_tiles) * tile_c
        c1 = np.minimum(channels, c0 + tile_c)
        n0 = blk * rows
        n1 = np.minimum(n_outer, n0 + rows)
        run = (c1 - c0) * inner
        if inner == 1:  # (N, C): one position per channel, summed into ps/pq in place
            cs = row_view(ps_flat, blk * channels + c0, run)
            cq = row_view(pq_flat, blk * channels + c0, run)
            cm = row_view(mean, c0, run)
            for k in range(run):
                cs[k] = 0.0
                cq[k] = 0.0
            for n in range(n0, n1):
                gs = row_view(g, n * channels + c0, run)
                xs = row_view(x, n * channels + c0, run)
                for k in range(run):
                    gk = np.float64(gs[k])
                    cs[k] += gk
                    cq[k] += gk * (np.float64(xs[k]) - cm[k])
        else:
            width = np.minimum(run, _WIDTH)
            acc_s = row_view(scratch, 0, width).copy()
            acc_q = row_view(scratch, 0, width).copy()
            shv = row_view(scratch, 0, width).copy()
            for k in range(width):
                acc_s[k] = 0.0
                acc_q[k] = 0.0
                shv[k] = mean[c0 + k // inner]
            for n in range(n0, n1):
                base = (n * channels + c0) * inner
                for j0 in range(0, run, _WIDTH):
                    m = np.minimum(_WIDTH, run - j0)
                    gs = row_view(g, base + j0, m)
                    xs = row_view(x, base + j0, m)
                    for k in range(m):
                        gk = np.float64(gs[k])
                        acc_s[k] += gk
                        acc_q[k] += gk * (np.float64(xs[k]) - shv[k])
            for ch in range(c0, c1):
                s = 0.0
                q = 0.0
                k0 = (ch - c0) * inner
                for k in range(k0, np.minimum(width, k0 + inner)):
                    s += acc_s[k]
                    q += acc_q[k]
                ps[blk, ch] = s
                pq[blk, ch] = q
    for c in range(channels):  # each channel's block partials, in block order
        s = 0.0
        q = 0.0
        for i in range(ps.shape[0]):
            s += ps[i, c]
            q += pq[i, c]
        sum_g[c] = s
        sum_gd[c] = q


_grad_sums_serial, _grad_sums_parallel = _config.kernels(_grad_sums)


def _grad_input(g, x, channels, inner, per_position, training, params, out):
    """grad_input of the flat (N, C, inner) ``g``, ``x`` from the per-channel
    coefficients ``params`` (4, C * inner or C) of ``g``'s dtype (rows: mean,
    k, mean of g, scale):

    training: ``out = ((g - mean_g) - (x - mean) * k) * scale``;
    evaluation (``training`` None): ``out = g * scale``.

    ``per_position``: as in :func:`_normalize` (True: a row is one batch row,
    the coefficients repeated per position; None: a row is one (n, c) run).
    """
    repeat = 1 if per_position is None else inner
    length = repeat * channels if per_position is not None else inner
    n_rows = g.size // length
    mean, k, mean_g, scale = params[0], params[1], params[2], params[3]
    per = np.maximum(1, _NORM_TASK // length)
    for t in prange((n_rows + per - 1) // per):
        r0 = t * per
        r1 = np.minimum(n_rows, r0 + per)
        if per_position is not None:
            for row in range(r0, r1):
                gs = row_view(g, row * length, length)
                os = row_view(out, row * length, length)
                if training is None:
                    for j in range(length):
                        os[j] = gs[j] * scale[j]
                else:
                    xs = row_view(x, row * length, length)
                    for j in range(length):
                        os[j] = ((gs[j] - mean_g[j]) - (xs[j] - mean[j]) * k[j]) * scale[j]
        else:
            for row in range(r0, r1):
                ch = row % channels
                sc = scale[ch]
                gs = row_view(g, row * length, length)
                os = row_view(out, row * length, length)
                if training is None:
                    for j in range(length):
                        os[j] = gs[j] * sc
                else:
                    mu = mean[ch]
                    kc = k[ch]
                    mg = mean_g[ch]
                    xs = row_view(x, row * length, length)
                    for j in range(length):
                        os[j] = ((gs[j] - mg) - (xs[j] - mu) * kc) * sc


_grad_input_serial, _grad_input_parallel = _config.kernels(_grad_input)


def _grad_params(sum_g, sum_gd, mean, invstd, w, count, training, repeat, dtype):
    """The (4, C * repeat) coefficients of :func:`_grad_input` (in ``dtype``) from
    the float64 per-channel sums, statistics and weight (None: ones)."""
    scale = invstd if w is None else w * invstd
    if training:
        k = sum_gd / count * invstd * invstd
        mean_g = sum_g / count
    else:
        k = mean_g = np.zeros_like(mean)
    with np.errstate(invalid="ignore", over="ignore"):
        params = np.stack([mean, k, mean_g, scale]).astype(dtype)
    return np.repeat(params, repeat, axis=1) if repeat > 1 else params


def _saved_vector(v, name, channels):
    """``mean``/``invstd``/``weight`` of the backward as a float64 (C,) array."""
    a = as_array(v, name)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a float array, got dtype {a.dtype}")
    if a.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) (the number of channels, "
                         f"input.shape[1]), got {a.shape}")
    return a.astype(np.float64)


def _backward_plan(g, x, training):
    """(n_outer, channels, inner) of a batch_norm_backward call (shapes checked)."""
    if g.shape != x.shape:
        raise ValueError(f"grad_output has shape {g.shape} but input has shape {x.shape}: "
                         "they must be the same (the forward's output shape)")
    if x.ndim < 2:
        raise ValueError(f"input must have at least 2 dimensions (N, C, ...), got shape "
                         f"{x.shape}")
    inner = 1
    for d in x.shape[2:]:
        inner *= d
    if training and x.shape[0] * inner == 1:
        raise ValueError("Expected more than 1 value per channel when training, "
                         f"got input size {x.shape}")
    return x.shape[0], x.shape[1], inner


def batch_norm_backward(grad_output, input, mean, invstd, weight=None, training=False, *,
                        has_bias=None, out=None):
    r"""Gradients of :func:`batch_norm`: ``(grad_input, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to ``batch_norm``'s output
        (the input's shape; a float array).
    input : array_like
        The forward's input ``(N, C, *)``.
    mean, invstd : array_like of shape (C,)
        The statistics the forward normalized with, as
        ``batch_norm(..., return_stats=True)`` returns them: in training the
        batch mean and ``1 / sqrt(biased batch var + eps)``; in evaluation the
        running mean and ``1 / sqrt(running_var + eps)``.
    weight : array_like of shape (C,), optional
        The forward's weight (None: no affine weight, ``w = 1``).
    training : bool, default False
        The forward's ``training``: the batch statistics depend on the input
        (their gradient is included) or not (the running statistics get no
        gradient).
    has_bias : bool, optional, keyword-only
        Whether the forward had a bias (it does not enter the computation;
        only whether ``grad_bias`` is returned). Default: ``weight is not
        None`` (a layer is affine with both or neither).
    out : ndarray, optional, keyword-only
        Written with ``grad_input`` (the input's shape and result dtype).

    Returns
    -------
    tuple
        ``(grad_input, grad_weight, grad_bias)``: ``grad_input`` of the
        input's shape, ``grad_weight``/``grad_bias`` of shape (C,), all in the
        result dtype of ``grad_output`` and ``input`` (float32 stays float32);
        ``grad_weight`` is None when ``weight`` is None, ``grad_bias`` when the
        forward had no bias.

    Notes
    -----
    With :math:`\hat{x} = (x - \mu)\,\sigma^{-1}` per channel (:math:`\mu`:
    ``mean``, :math:`\sigma^{-1}`: ``invstd``) and the means :math:`\langle\cdot\rangle`
    over the channel's ``N * prod(shape[2:])`` values, as PyTorch's
    ``native_batch_norm_backward``:

    .. math::

        \text{training:}\quad \frac{\partial L}{\partial x} = w\,\sigma^{-1}
        \left(g - \langle g\rangle - \hat{x}\,\langle g\,\hat{x}\rangle\right),
        \qquad \text{evaluation:}\quad \frac{\partial L}{\partial x} = g\,w\,\sigma^{-1},

    ``grad_weight = sum(g * x_hat)`` and ``grad_bias = sum(g)`` per channel. The
    per-channel sums are accumulated in float64 with a cut that depends only on
    the shape: bit-identical on any thread count.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0], [5.0, 20.0]])
    >>> w, b = np.ones(2), np.zeros(2)
    >>> y, mean, invstd = nbops.batch_norm(x, None, None, w, b, training=True,
    ...                                    return_stats=True)
    >>> g = np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 2.0]])
    >>> gi, gw, gb = nbops.batch_norm_backward(g, x, mean, invstd, w, training=True)
    >>> gb
    array([1., 2.])
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().batch_norm_backward(grad_output, input, mean, invstd, weight, training,
                                           has_bias=has_bias, out=out)
    if (type(grad_output) is not np.ndarray or type(input) is not np.ndarray) and (
            is_dask_array(grad_output) or is_dask_array(input)):
        return dask_ops().batch_norm_backward(grad_output, input, mean, invstd, weight,
                                              training, has_bias, out)
    g = _float_array(grad_output, "grad_output")
    x = as_array(input, "input")
    compute, result = result_dtype(np.result_type(g.dtype, result_dtype(x.dtype)[1]))
    training = bool(training)
    n_outer, channels, inner = _backward_plan(g, x, training)
    mean64 = _saved_vector(mean, "mean", channels)
    invstd64 = _saved_vector(invstd, "invstd", channels)
    w64 = None if weight is None else _saved_vector(weight, "weight", channels)
    has_bias = weight is not None if has_bias is None else bool(has_bias)
    if out is not None:
        check_out(out, x.shape, result)

    gs = np.ascontiguousarray(g, dtype=compute).reshape(-1)
    xs = np.ascontiguousarray(x, dtype=compute).reshape(-1)
    direct = out is not None and out.dtype == compute and out.flags.c_contiguous \
        and not np.may_share_memory(out, gs) and not np.may_share_memory(out, xs)
    res = out if direct else _memory.empty(x.shape, compute)
    sum_g = np.zeros(channels, np.float64)
    sum_gd = np.zeros(channels, np.float64)
    if x.size and (training or w64 is not None or has_bias):
        tile_c, rows, n_blocks, n_tiles = _stats_plan(n_outer, channels, inner)
        ps = np.empty((n_blocks, channels), np.float64)
        pq = np.empty((n_blocks, channels), np.float64)
        launch(_grad_sums_serial, _grad_sums_parallel, ("bn_grad_sums", compute.char),
               x.size, gs, xs, n_outer, inner, tile_c, rows, n_tiles, ps, pq, _SCRATCH,
               mean64, sum_g, sum_gd)
    if x.size:
        per_position = inner < _PER_POSITION
        repeat = inner if per_position else 1
        params = _grad_params(sum_g, sum_gd, mean64, invstd64, w64, n_outer * inner,
                              training, repeat, compute)
        launch(_grad_input_serial, _grad_input_parallel,
               ("bn_grad_input", compute.char, per_position, training), x.size, gs, xs,
               channels, inner, True if per_position else None, True if training else None,
               params, res.reshape(-1))
    grad_input = deliver(res, out, direct, compute, result)
    if x.size == 0:  # no values: zero gradients (not 0 * the NaN invstd of no values)
        invstd64 = np.zeros(channels)
    grad_weight = None if w64 is None else (sum_gd * invstd64).astype(result)
    grad_bias = sum_g.astype(result) if has_bias else None
    return grad_input, grad_weight, grad_bias


@_config.serial_kernel
def _bn_flat(x, n_outer, inner, training, mean, var, w, b, eps, momentum, run_mean, run_var,
             update, res):
    """Serial batch norm of a flat contiguous input, for the @njit overload.

    In training ``mean``/``var`` receive the batch statistics (and the float64
    ``run_mean``/``run_var`` the momentum update when ``update``); otherwise
    they hold the running ones. ``w``/``b`` are float64 (ones/zeros when
    absent). One cached kernel for every call form keeps the user's compile short.
    """
    channels = mean.size
    if training:
        tile_c, rows, n_blocks, n_tiles = _stats_plan(n_outer, channels, inner)
        ps = np.empty((n_blocks, channels), np.float64)
        pq = np.empty((n_blocks, channels), np.float64)
        shift = np.empty(channels, np.float64)
        scratch = np.empty(_WIDTH, np.float64)
        _stats_serial(x, n_outer, inner, tile_c, rows, n_tiles, ps, pq, scratch, shift, mean,
                      var, update, momentum, run_mean, run_var)
    if inner < _PER_POSITION:
        params = np.empty((4, channels * inner), res.dtype)
        _normalize_serial(x, channels, inner, True, mean, var, w, b, eps, params, res)
    else:
        params = np.empty((4, channels), res.dtype)
        _normalize_serial(x, channels, inner, None, mean, var, w, b, eps, params, res)


# --------------------------------------------------------------------------- #
# inside a user's @njit function
# --------------------------------------------------------------------------- #


def _is_none(t):
    return t is None or isinstance(t, (types.NoneType, types.Omitted))


@register_jitable
def _dims_nd(shape):
    """(n_outer, channels, inner) of an (N, C, *) shape."""
    inner = 1
    for k in range(2, len(shape)):
        inner *= shape[k]
    return shape[0], shape[1], inner


@register_jitable
def _dims_1d(shape):
    """A 1-D input: empty (no channels, as PyTorch) or an error."""
    if shape[0] != 0:
        raise ValueError("input must have at least 2 dimensions (N, C, ...)")
    return 0, 0, 1


@overload(batch_norm)
def _batch_norm_njit(input, running_mean, running_var, weight=None, bias=None,
                     training=False, momentum=0.1, eps=1e-5, out=None, return_stats=False):
    """Validates as :func:`nbops._ops.plan_norm.batch_norm_plan`, then calls the cached
    serial kernel ``_bn_flat`` (same task cut, so the same statistics as outside
    @njit; never a parallel kernel: see docs/guides/architecture.rst, "Cache, fork
    and thread rules")."""
    if not isinstance(input, types.Array) or not _is_none(out):
        return None
    if input.ndim < 1:
        raise errors.TypingError("nbops.batch_norm: input must have at least 2 dimensions "
                                 "(N, C, ...)")
    dims = _dims_1d if input.ndim == 1 else _dims_nd
    no_rm, no_rv = _is_none(running_mean), _is_none(running_var)
    if no_rm != no_rv:
        raise errors.TypingError("nbops.batch_norm: running_mean and running_var must "
                                 "either both be None or neither be None")
    has_running = not no_rm
    has_w, has_b = not _is_none(weight), not _is_none(bias)
    dtype = input.dtype if isinstance(input.dtype, types.Float) else types.float64
    finish = _with_stats if _constant_flag(return_stats, "return_stats", False) else _output

    def impl(input, running_mean, running_var, weight=None, bias=None, training=False,
             momentum=0.1, eps=1e-5, out=None, return_stats=False):
        n_outer, channels, inner = dims(input.shape)
        count = n_outer * inner
        if has_running:
            if running_mean.shape[0] != channels or running_var.shape[0] != channels:
                raise ValueError("running_mean and running_var must have input.shape[1] "
                                 "elements")
        elif not training:
            raise ValueError("running_mean and running_var must be given in evaluation mode")
        if has_w:
            if weight.shape[0] != channels:
                raise ValueError("weight must have input.shape[1] elements")
        if has_b:
            if bias.shape[0] != channels:
                raise ValueError("bias must have input.shape[1] elements")
        if training and count == 1:
            raise ValueError("Expected more than 1 value per channel when training")
        if training and eps <= 0.0:
            raise ValueError("batch_norm eps must be positive during training")
        if eps < 0.0:
            raise ValueError("batch_norm eps must be non-negative")
        x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
        res = np.empty(x.size, dtype)
        mean = np.full(channels, np.nan)  # an empty input's statistics in training
        var = np.full(channels, np.nan)
        wv = np.ones(channels, np.float64)
        bv = np.zeros(channels, np.float64)
        if has_w:
            for c in range(channels):
                wv[c] = weight[c]
        if has_b:
            for c in range(channels):
                bv[c] = bias[c]
        run_mean = np.empty(channels, np.float64)
        run_var = np.empty(channels, np.float64)
        if has_running:
            for c in range(channels):
                run_mean[c] = running_mean[c]
                run_var[c] = running_var[c]
            if not training:
                mean[:] = run_mean
                var[:] = run_var
        update = has_running and training and x.size != 0
        if x.size != 0:  # (an empty input: empty result, running statistics untouched)
            _bn_flat(x, n_outer, inner, training, mean, var, wv, bv, np.float64(eps),
                     np.float64(momentum), run_mean, run_var, update, res)
        if has_running:  # a compile-time constant: no None-typed write on any Numba
            if update:
                for c in range(channels):
                    running_mean[c] = run_mean[c]
                    running_var[c] = run_var[c]
        return finish(res.reshape(input.shape), mean, var, np.float64(eps))

    return impl


def _constant_flag(flag, name, default):
    """The value of a bool option that decides a return type inside @njit: a
    constant (a non-literal bool raises, and Numba retries with the literal)."""
    if _is_none(flag):
        return default
    if isinstance(flag, types.BooleanLiteral):
        return flag.literal_value
    if isinstance(flag, bool):
        return flag
    raise errors.TypingError(f"nbops: {name} must be a constant True or False inside @njit")


@register_jitable
def _output(y, mean, var, eps):
    return y


@register_jitable
def _with_stats(y, mean, var, eps):
    """(output, mean, invstd) in the output's dtype."""
    invstd = 1.0 / np.sqrt(var + eps)
    return y, mean.astype(y.dtype), invstd.astype(y.dtype)


# ------------------------------------------------------ batch_norm_backward in @njit
@_config.serial_kernel
def _bn_backward_flat(g, x, n_outer, inner, training, sums, mean, invstd, w, res, sum_g,
                      sum_gd):
    """Serial batch_norm_backward of flat contiguous ``g``, ``x`` into ``res``, for the
    @njit overload: the per-channel sums of :func:`_grad_sums` (when ``sums``)
    and the coefficients and formula of :func:`_grad_params` / :func:`_grad_input`
    (the same bits as outside @njit); ``w``: float64 (ones when absent)."""
    channels = mean.size
    if sums:
        tile_c, rows, n_blocks, n_tiles = _stats_plan(n_outer, channels, inner)
        ps = np.empty((n_blocks, channels), np.float64)
        pq = np.empty((n_blocks, channels), np.float64)
        scratch = np.empty(_WIDTH, np.float64)
        _grad_sums_serial(g, x, n_outer, inner, tile_c, rows, n_tiles, ps, pq, scratch, mean,
                          sum_g, sum_gd)
    count = n_outer * inner
    params = np.empty((4, channels), res.dtype)
    for c in range(channels):
        params[0, c] = mean[c]
        params[1, c] = sum_gd[c] / count * invstd[c] * invstd[c] if training else 0.0
        params[2, c] = sum_g[c] / count if training else 0.0
        params[3, c] = w[c] * invstd[c]
    for row in range(n_outer * channels):
        c = row % channels
        mu, k, mg, sc = params[0, c], params[1, c], params[2, c], params[3, c]
        for i in range(row * inner, (row + 1) * inner):
            if training:
                res[i] = ((g[i] - mg) - (x[i] - mu) * k) * sc
            else:
                res[i] = g[i] * sc


@register_jitable
def _grads_wb(gi, sum_g, sum_gd, invstd):
    return gi, (sum_gd * invstd).astype(gi.dtype), sum_g.astype(gi.dtype)


@register_jitable
def _grads_w(gi, sum_g, sum_gd, invstd):
    return gi, (sum_gd * invstd).astype(gi.dtype), None


@register_jitable
def _grads_b(gi, sum_g, sum_gd, invstd):
    return gi, None, sum_g.astype(gi.dtype)


@register_jitable
def _grads_none(gi, sum_g, sum_gd, invstd):
    return gi, None, None


@register_jitable
def _channel_values(v, channels, message):
    if v.ndim != 1 or v.shape[0] != channels:
        raise ValueError(message)
    res = np.empty(channels, np.float64)
    for c in range(channels):
        res[c] = v[c]
    return res


@overload(batch_norm_backward)
def _batch_norm_backward_njit(grad_output, input, mean, invstd, weight=None, training=False,
                              has_bias=None, out=None):
    """Inside @njit: the cached serial kernel ``_bn_backward_flat``; ``has_bias``
    must be a constant (it decides the result's type); no ``out=``."""
    if not (isinstance(grad_output, types.Array) and isinstance(input, types.Array)):
        return None
    if not _is_none(out):
        raise errors.TypingError("nbops.batch_norm_backward: out= is not supported inside "
                                 "@njit")
    if not isinstance(grad_output.dtype, types.Float):
        raise errors.TypingError("nbops.batch_norm_backward: grad_output must be a float "
                                 "array")
    if grad_output.ndim != input.ndim or input.ndim < 2:
        raise errors.TypingError("nbops.batch_norm_backward: grad_output and input must "
                                 "have the same ndim >= 2 (N, C, ...)")
    has_w = not _is_none(weight)
    has_b = _constant_flag(has_bias, "has_bias", has_w)
    finish = {(True, True): _grads_wb, (True, False): _grads_w, (False, True): _grads_b,
              (False, False): _grads_none}[(has_w, has_b)]
    in_dtype = input.dtype if isinstance(input.dtype, types.Float) else types.float64
    dtype = types.float64 if types.float64 in (in_dtype, grad_output.dtype) else types.float32

    def impl(grad_output, input, mean, invstd, weight=None, training=False, has_bias=None,
             out=None):
        if grad_output.shape != input.shape:
            raise ValueError("grad_output must have the input's shape (the forward's output "
                             "shape)")
        n_outer, channels, inner = _dims_nd(input.shape)
        if training and n_outer * inner == 1:
            raise ValueError("Expected more than 1 value per channel when training")
        mean64 = _channel_values(mean, channels, "mean must have shape (C,) (input.shape[1])")
        invstd64 = _channel_values(invstd, channels,
                                   "invstd must have shape (C,) (input.shape[1])")
        w64 = np.ones(channels, np.float64)
        if has_w:
            w64 = _channel_values(weight, channels,
                                  "weight must have shape (C,) (input.shape[1])")
        g = np.ascontiguousarray(grad_output).astype(dtype).reshape(-1)
        x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
        res = np.empty(x.size, dtype)
        sum_g = np.zeros(channels, np.float64)
        sum_gd = np.zeros(channels, np.float64)
        if x.size != 0:
            _bn_backward_flat(g, x, n_outer, inner, bool(training),
                              bool(training) or has_w or has_b, mean64, invstd64, w64, res,
                              sum_g, sum_gd)
        else:  # no values: zero gradients
            invstd64[:] = 0.0
        return finish(res.reshape(input.shape), sum_g, sum_gd, invstd64)

    return impl
