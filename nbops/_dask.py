"""nbops on ``dask.array.Array`` inputs: lazy graphs whose results do not depend on the chunking.

The public functions dispatch here (through :func:`nbops._validate.dask_ops`)
when their first array argument is a dask array; ``import nbops`` never imports
dask, this module does. Every function validates its arguments before it builds
a graph and returns a lazy dask array (a 0-d one for a reduced loss); nothing is
computed until the caller computes.

How the ops are split over chunks (docs/guides/dask.rst):

* elementwise ops, and every op whose axis of work lies in one chunk, call the
  in-memory nbops function on each block (``map_blocks``);
* the softmax family (and cross_entropy) along an axis split across chunks:
  per-chunk ``(max, sum of exp(x - max))`` partials in float64, merged into the
  row's log-sum-exp, then a blockwise write;
* loss values: per-chunk float64 partial sums (and weight sums) combined by
  dask's tree reduction, then one division in float64, rounded to the result
  dtype;
* batch_norm statistics: per-chunk (count, mean, M2) merged exactly (Chan et
  al.'s formula) in float64; the same for the rows of layer_norm and the
  (sample, group) statistics of group_norm and instance_norm (rms_norm: float64
  sums of squares), then a blockwise finish;
* normalize and cosine_similarity along a split axis: per-chunk float64 partial
  sums (p-norm accumulators, squared norms and dot products), then a blockwise
  finish; cdist and pdist: blocked over row blocks of x1 and x2 (the feature
  axis in one chunk), pdist writing the condensed order;
* ctc_loss: blockwise over the batch (the time and class axes in one chunk);
* cosine_embedding, triplet_margin (+ with_distance), multi_margin and
  multilabel_margin losses: every array as (rows, features), the feature/class
  axis in one chunk, the in-memory 'none' on every row block, then float64 sums;
* dropout (and dropout1d/2d/3d, alpha_dropout, feature_alpha_dropout): each block
  draws the in-memory mask's elements (a feature dropout's channels) at their
  global flat indices (nbops/_ops/dropout.py's kernels take the index of their
  first element), so the mask is the same for every chunking; rrelu in training
  draws its slopes the same way (nbops/_ops/rrelu.py's kernel takes the first
  index too).
* bilinear: row blocks (the feature axes in one chunk), the in-memory forward
  (backward) on each; grad_weight and grad_bias summed over the blocks in float64.
* gumbel_softmax: the softmax axis in one chunk (rechunked when split); each
  block draws the in-memory noise at its elements' global flat indices (as
  dropout), then the in-memory softmax; the backward regenerates y_soft so.
* local_response_norm: the channel axis in one chunk (rechunked when split),
  then the in-memory kernel (and backward) blockwise.
* glu: the glu axis in one chunk (rechunked when split: each block needs both
  halves of its elements), then the in-memory glu (and glu_backward) blockwise.
* backwards (and the losses' ``_with_grad``): the in-memory backward on each
  block where a block holds all it needs; where the gradient needs a reduction
  (a row sum of the softmax family, prelu's and batch_norm's channel sums, a
  loss's 'mean' divisor), float64 partial sums reduced by dask first, then a
  blockwise finish.

Block functions are module-level functions taking plain arguments (names, not
kernel objects), so that the graphs pickle to ``dask.distributed`` workers.
"""

import functools
import math
import uuid
import warnings

import dask.array as da
import numpy as np

import nbops

from ._ops import plan as P
from ._validate import as_array, is_dask_array, result_dtype

__all__ = ["dispatch", "is_dask_array"]

_F64 = np.dtype(np.float64)


def _meta(ndim, dtype):
    return np.empty((0,) * ndim, dtype)


def _known_shape(x, name="input"):
    """The shape of a dask array, or a ValueError if some chunk sizes are unknown."""
    if any(math.isnan(s) for s in x.shape):
        raise ValueError(f"{name}: a dask array with unknown chunk sizes (shape {x.shape}); "
                         f"call {name}.compute_chunk_sizes() first")
    return x.shape


def _no_out(out, inplace=False):
    if out is not None:
        raise TypeError("out: not supported for this op on dask arrays (dask arrays are "
                        "immutable; use the returned array, or da.store)")
    if inplace:
        raise TypeError("inplace=True: not supported for dask arrays (dask arrays are "
                        "immutable; use the returned array)")


class _Target:
    """The caller's ``out=`` inside a graph, named by a fresh token: dask then
    never hashes (tokenizes) the array's data to name the tasks."""

    def __init__(self, array):
        self.array = array
        self.token = uuid.uuid4().hex

    def __dask_tokenize__(self):
        return self.token


def _out_target(out, shape, dtype):
    """``out=`` of an op on a dask input, checked before any graph is built: None,
    a NumPy array (local schedulers only: the tasks must run in this process) or
    an array-like with ``shape``, ``dtype`` and ``__setitem__`` (a zarr array)."""
    if out is None:
        return None
    if isinstance(out, np.ndarray):
        from dask import local, threaded
        from dask.base import get_scheduler

        from ._validate import check_out

        check_out(out, tuple(shape), dtype)
        if get_scheduler() not in (None, threaded.get, local.get_sync):
            raise TypeError("out: a NumPy array needs one of dask's local schedulers "
                            "('threads', 'synchronous'), whose tasks run in this process; "
                            "with dask.distributed or 'processes' pass an array the workers "
                            "can write (a zarr array), or use da.store")
        return out
    if not all(hasattr(out, a) for a in ("shape", "dtype", "__setitem__")):
        raise TypeError(f"out must be a numpy.ndarray or an array-like with shape, dtype and "
                        f"__setitem__ (a zarr array), got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {tuple(shape)}")
    if np.dtype(out.dtype) != dtype:
        raise TypeError(f"out has dtype {out.dtype}, expected {dtype}")
    return out


def _into_block(*blocks, fn, target, args, block_info=None):
    """``fn(*blocks, *args)`` written into the block's region of ``target.array``:
    straight from the kernel (``out=`` the region) for a NumPy array, assigned
    for another array-like. Returns a one-element placeholder."""
    region = tuple(slice(a, b) for a, b in block_info[0]["array-location"])
    dst = target.array
    if isinstance(dst, np.ndarray):
        fn(*blocks, *args, out=dst[region])
    else:
        dst[region] = fn(*blocks, *args)
    return np.zeros((1,) * blocks[0].ndim, np.int8)


def _write_into(out, fn, arrays, args):
    """Compute ``fn(*blocks, *args)`` on the aligned blocks of ``arrays`` now (with
    dask's current scheduler), each block's result written into its region of
    ``out`` (checked by :func:`_out_target`), and return ``out``: no result array
    per chunk and no concatenation where ``fn`` writes into ``out=`` directly."""
    x = arrays[0]
    if x.ndim == 0:
        out[...] = fn(*(a.compute() for a in arrays), *args)
        return out
    done = da.map_blocks(_into_block, *arrays, fn=fn, target=_Target(out), args=args,
                         chunks=tuple((1,) * len(c) for c in x.chunks), dtype=np.int8,
                         meta=_meta(x.ndim, np.int8))
    done.compute()
    return out


def _aligned(arr, name, chunks, shape):
    """``arr`` (a dask array or array_like) as a dask array with exactly ``chunks``."""
    if is_dask_array(arr):
        if _known_shape(arr, name) != tuple(shape):
            raise ValueError(f"{name} of shape {arr.shape} must have shape {tuple(shape)}")
        if arr.chunks != tuple(chunks):
            raise ValueError(f"{name}: its chunks {arr.chunks} do not match the input's "
                             f"{tuple(chunks)}; rechunk it, e.g. {name}.rechunk({tuple(chunks)})")
        return arr
    a = np.asarray(arr)
    if a.shape != tuple(shape):
        raise ValueError(f"{name} of shape {a.shape} must have shape {tuple(shape)}")
    return da.from_array(a, chunks=chunks)


def _host(arr, name):
    """A small parameter array (weight, bias, running stats) as an ndarray."""
    if arr is None:
        return None
    if is_dask_array(arr):
        raise TypeError(f"{name}: pass a NumPy array (small parameters are not dask arrays; "
                        f"use {name}.compute())")
    return as_array(arr, name)


def _rows2d(block, k=1):
    """``block`` as a 2-D (rows, piece) array, its last ``k`` axes flattened (a
    view where the layout allows: a column slice of a C array stays in place)."""
    nd = block.ndim
    return block.reshape(math.prod(block.shape[:nd - k]), math.prod(block.shape[nd - k:]))


def _kernel_input(block, compute=None):
    """A block the kernels of nbops/_ops/split_rows.py read: float32 and float64
    as they are, other dtypes converted (to ``compute``, else float64)."""
    if block.dtype in (np.float32, np.float64) and (compute is None or compute == block.dtype):
        return block  # (not `compute in (None, ...)`: np.dtype(None) is float64)
    return block.astype(compute or np.float64)


def _kernel_output(dtype):
    """The dtype a kernel writes for a ``dtype`` result (float16: float64, rounded once)."""
    return dtype if dtype in (np.float32, np.float64) else _F64


# ------------------------------------------------------------------ elementwise
def _unary_block(block, op_name, params, out=None):
    from ._ops.elementwise import Op, unary

    return unary(Op.registry[op_name], block, params, out=out)


def unary(op, input, params=(), inplace=False, out=None):
    """An elementwise op (``nbops.relu`` ...): the same op on every block. With
    ``out=``, computed now, every block's kernel writing into its region of
    ``out`` (see :func:`_write_into`)."""
    _no_out(None, inplace)
    _, result = result_dtype(input.dtype)
    params = tuple(float(p) for p in params)
    if out is not None:
        target = _out_target(out, _known_shape(input), result)
        return _write_into(target, _unary_block, (input,), (op.name, params))
    return input.map_blocks(_unary_block, op.name, params, dtype=result,
                            meta=_meta(input.ndim, result))


def _binary_backward_block(g, r, op_name, residual_name, params):
    from ._ops.elementwise import Op, binary

    return binary(Op.registry[op_name], g, r, residual_name, params)


def elementwise_backward(op, grad_output, residual, residual_name, params=(), out=None):
    """An elementwise backward (``nbops.relu_backward`` ...) on aligned blocks of
    ``grad_output`` and the residual (either may be a NumPy array: it is split
    into the other's chunks)."""
    _no_out(out)
    if is_dask_array(grad_output):
        g = grad_output
        r = _aligned(residual, residual_name, g.chunks, _known_shape(g, "grad_output"))
    else:
        r = residual
        g = _aligned(grad_output, "grad_output", r.chunks, _known_shape(r, residual_name))
    for arr, name in ((g, "grad_output"), (r, residual_name)):
        if np.dtype(arr.dtype).kind != "f":
            raise TypeError(f"{name}: expected a float array, got dtype {arr.dtype}")
    _, result = result_dtype(np.result_type(g.dtype, r.dtype))
    params = tuple(float(p) for p in params)
    return da.map_blocks(_binary_backward_block, g, r, op.name, residual_name, params,
                         dtype=result, meta=_meta(g.ndim, result))


def _prelu_block(block, weight, block_info=None):
    if weight.size > 1 and block.ndim >= 2:  # this block's channels' weights
        c0, c1 = block_info[0]["array-location"][1]
        weight = weight[c0:c1]
    return nbops.prelu(block, weight)


def prelu(input, weight, out=None):
    """``nbops.prelu``: the block's slice of the channel weights on each block."""
    _no_out(out)
    w = _host(weight, "weight")
    _, result = result_dtype(input.dtype)
    result_dtype(w.dtype, "weight")
    channels = input.shape[1] if input.ndim >= 2 else 1
    if input.ndim >= 2:
        _known_shape(input)
    if w.ndim > 1 or w.size not in (1, channels):
        raise ValueError(f"weight must be 1-D with 1 or {channels} (the number of channels, "
                         f"input.shape[1]) elements, got shape {w.shape}")
    return input.map_blocks(_prelu_block, w.reshape(-1), dtype=result,
                            meta=_meta(input.ndim, result))


# ------------------------------------------------------------------ softmax family
_SIGN = {"softmax": (1.0, False), "log_softmax": (1.0, True), "softmin": (-1.0, False)}


def _softmax_block(block, name, axis, dtype, out=None):
    return getattr(nbops, name)(block, axis=axis, dtype=dtype, out=out)


def _axis_last_2d(a, axis):
    """``a`` with ``axis`` moved last, as a 2-D (rows, piece) array (a view where
    the layout allows, else a copy), and the moved shape."""
    moved = np.moveaxis(a, axis, -1)
    return moved.reshape(math.prod(moved.shape[:-1]), moved.shape[-1]), moved.shape


def _flat_rows(a2, copy=True):
    """``(flat, stride)``: a flat C-contiguous view of the 2-D ``a2`` whose rows are
    contiguous (a row slice, or a column slice of a C array: ``a2[r]`` is
    ``flat[r * stride : r * stride + n]``), so that the kernels of
    nbops/_ops/split_rows.py read rows as the in-memory kernels do (vectorized;
    strided 2-D arrays are not). Other layouts: a C copy (``copy``), else None."""
    rows, n = a2.shape
    item = a2.itemsize
    s0 = a2.strides[0] if rows > 1 else n * item
    if rows and n and (n == 1 or a2.strides[1] == item) and s0 > 0 and s0 % item == 0:
        span = (rows - 1) * (s0 // item) + n
        flat = np.lib.stride_tricks.as_strided(a2, shape=(span,), strides=(item,),
                                               writeable=a2.flags.writeable)
        return flat, s0 // item
    if not copy:
        return None
    return np.ascontiguousarray(a2).reshape(-1), n


def _lse_partial(block, axis, sgn, compute):
    """A block's float64 ``(max, sum of exp(x - max))`` of its pieces of the rows
    along ``axis`` (kept, of size 1) on a new last axis of 2: the kernel of
    nbops/_ops/split_rows.py in the ``compute`` dtype."""
    from ._ops.split_rows import row_max_sumexp, run

    x2, moved = _axis_last_2d(_kernel_input(block, compute), axis)
    rows, n = x2.shape
    parts = np.empty((rows, 2))
    parts[:, 0], parts[:, 1] = -np.inf, 0.0
    if x2.size:
        flat, stride = _flat_rows(x2)
        run(row_max_sumexp, flat, stride, rows, n, float(sgn), parts)
    return np.expand_dims(parts.reshape(moved[:-1] + (2,)), axis)


def _lse_merge(parts, axis):
    """A row's ``(max, sum of exp(x - max))`` from its pieces' partials (along
    ``axis``, kept): the max of the maxima, the pieces' sums rescaled to it."""
    m, s = parts[..., 0], parts[..., 1]
    with np.errstate(invalid="ignore", over="ignore"):
        top = np.max(m, axis=axis, keepdims=True)
        total = np.sum(s * np.exp(m - top), axis=axis, keepdims=True)
    return np.stack([top, total], axis=-1)


def _lse_stats(x, axis, sgn, compute):
    """Lazy float64 ``(max, sum of exp(x - max))`` of ``sgn * x`` along ``axis``
    (kept, of size 1) on a new last axis of 2: nbops/_ops/split_rows.py's kernel
    on every block, then the pieces merged."""
    nd = x.ndim
    chunks = tuple((1,) * len(c) if i == axis else c for i, c in enumerate(x.chunks))
    parts = x.map_blocks(_lse_partial, axis, sgn, compute, chunks=chunks + ((2,),),
                         new_axis=nd, dtype=_F64, meta=_meta(nd + 1, _F64))
    merged = tuple((1,) if i == axis else c for i, c in enumerate(x.chunks))
    return parts.rechunk({axis: -1}).map_blocks(_lse_merge, axis, chunks=merged + ((2,),),
                                                dtype=_F64, meta=_meta(nd + 1, _F64))


def logsumexp(x, axis, sgn=1.0):
    """Lazy float64 log-sum-exp of ``sgn * x`` along ``axis`` (kept, of size 1)."""
    stats = _lse_stats(x, axis, sgn, result_dtype(x.dtype)[0])
    with np.errstate(divide="ignore"):
        return stats[..., 0] + da.log(stats[..., 1])


def _softmax_write(block, top, total, axis, sgn, log, compute, result, out=None):
    """The softmax family's finish of a block from its rows' merged ``top`` and
    ``total`` (the block's shape, ``axis`` of size 1): nbops/_ops/split_rows.py's
    kernel in the ``compute`` dtype, into ``out`` directly where it is of
    ``compute``'s dtype with contiguous rows along ``axis``."""
    from ._ops.split_rows import rows_softmax_write, run

    x2, moved = _axis_last_2d(_kernel_input(block, compute), axis)
    rows, n = x2.shape
    if x2.size == 0:
        return out if out is not None else np.empty(block.shape, result)
    stats = np.empty((rows, 2))
    stats[:, 0] = np.moveaxis(top, axis, -1).reshape(-1)
    stats[:, 1] = np.moveaxis(total, axis, -1).reshape(-1)
    flat, stride = _flat_rows(x2)
    target = None
    if out is not None and out.dtype == compute:
        dst = np.moveaxis(out, axis, -1).view()
        try:
            dst.shape = x2.shape  # a view, never a copy
            target = _flat_rows(dst, copy=False)
        except AttributeError:
            target = None
    if target is not None:
        run(rows_softmax_write, flat, stride, target[0], target[1], rows, n, stats,
            float(sgn), bool(log))
        return out
    res = np.empty(moved, compute)
    run(rows_softmax_write, flat, stride, res.reshape(-1), n, rows, n, stats, float(sgn),
        bool(log))
    res = np.moveaxis(res, -1, axis)
    if out is not None:
        out[...] = res
        return out
    return res.astype(result, copy=False)


def softmax_family(name, input, axis=-1, dtype=None, dim=None, out=None):
    """``nbops.softmax`` / ``log_softmax`` / ``softmin`` of a dask array along
    ``axis``. With ``out=``, computed now into ``out`` (see :func:`_write_into`)."""
    from ._ops.softmax import _dtypes

    compute, result = _dtypes(np.empty(0, input.dtype), dtype)
    ax = P.normalize_axis(axis, dim, input.ndim)
    target = _out_target(out, _known_shape(input), result) if out is not None else None
    if input.ndim == 0 or len(input.chunks[ax]) == 1:  # the axis in one chunk: blockwise
        if target is not None:
            return _write_into(target, _softmax_block, (input,), (name, ax, dtype))
        return input.map_blocks(_softmax_block, name, ax, dtype, dtype=result,
                                meta=_meta(input.ndim, result))
    sgn, log = _SIGN[name]
    stats = _lse_stats(input, ax, sgn, compute)
    top, total = stats[..., 0], stats[..., 1]
    args = (ax, sgn, log, compute, result)
    if target is not None:
        return _write_into(target, _softmax_write, (input, top, total), args)
    return da.map_blocks(_softmax_write, input, top, total, *args, dtype=result,
                         meta=_meta(input.ndim, result))


def softmax(input, axis=-1, dtype=None, *, dim=None, out=None):
    return softmax_family("softmax", input, axis, dtype, dim, out)


def log_softmax(input, axis=-1, dtype=None, *, dim=None, out=None):
    return softmax_family("log_softmax", input, axis, dtype, dim, out)


def softmin(input, axis=-1, dtype=None, *, dim=None, out=None):
    return softmax_family("softmin", input, axis, dtype, dim, out)


# ------------------------------------------------------------------ loss reductions
def _finish_block(total, mode, result):
    with np.errstate(invalid="ignore", divide="ignore"):
        value = total[0] if mode == "sum" else total[0] / total[1]
    return np.asarray(value, _F64).astype(result)


def _reduce(losses, mode, result, divisor=None):
    """'sum' or 'mean' of lazy per-element losses: a lazy 0-d array of ``result``.

    Each chunk's losses are summed in float64 (dask's tree reduction of the
    chunk sums); ``divisor`` is a number or a lazy 0-d float64 sum.
    """
    total = losses.sum(dtype=_F64)
    if divisor is None:
        divisor = 1.0
    pair = da.stack([total, da.asarray(divisor, dtype=_F64).astype(_F64)])
    return pair.map_blocks(_finish_block, mode, result, drop_axis=0, dtype=result,
                           meta=np.empty((), result))


def _pointwise_block(x, t, w, op_name, params, weight_sum):
    from ._ops.elementwise import Op
    from ._ops.losses import _regression

    return _regression(Op.registry[op_name], params, x, t, None, None, "none", w, weight_sum)


def _loss_dtypes(x, t, others=()):
    dts = [x.dtype, t.dtype]
    for name, o in others:
        result_dtype(o.dtype, name)
        dts.append(o.dtype)
    result_dtype(x.dtype, "input")
    result_dtype(t.dtype, "target")
    return result_dtype(np.result_type(*dts))[1]


def _same_shape_target(input, target, loss, broadcast=None):
    """``target`` as a dask array chunked as ``input``. ``broadcast``: None (shapes must
    be equal), 'silent' or 'warn' (a target that broadcasts to the input's shape is
    broadcast, with PyTorch's size warning for 'warn', as in memory)."""
    shape = _known_shape(input)
    tshape = _known_shape(target, "target") if is_dask_array(target) else np.shape(target)
    if tshape != shape:
        try:
            ok = broadcast is not None and np.broadcast_shapes(tshape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"target of shape {tshape} must have the input's shape {shape}"
                             + ("" if broadcast is None else " or broadcast to it")
                             + f" ({loss} of a dask input)")
        if broadcast == "warn":
            from ._ops.losses import _warn_size

            _warn_size(input, np.empty(tshape))
        if not is_dask_array(target):
            target = as_array(target, "target")
        target = da.broadcast_to(target, shape).rechunk(input.chunks)
    return _aligned(target, "target", input.chunks, shape)


def _full_weight_array(w, name, input):
    """An elementwise weight broadcast to the input's shape, chunked as the input."""
    if w is None:
        return None
    if is_dask_array(w):
        return _aligned(w, name, input.chunks, input.shape)
    P_ = np.asarray(w)
    try:
        ok = np.broadcast_shapes(P_.shape, input.shape) == input.shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {P_.shape} does not broadcast to the input's "
                         f"shape {input.shape}")
    return da.broadcast_to(da.from_array(P_), input.shape).rechunk(input.chunks)


def pointwise(op, params, input, target, size_average, reduce, reduction, weight,
              weight_sum=True):
    """The pointwise losses of the op table (l1, mse, smooth_l1, huber)."""
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=4).mode
    t = _same_shape_target(input, target, op.name, "warn")
    w = _full_weight_array(weight, "weight", input)
    result = _loss_dtypes(input, t, () if w is None else (("weight", w),))
    none = da.map_blocks(_pointwise_block, input, t, w, op.name, tuple(params), weight_sum,
                         dtype=result, meta=_meta(input.ndim, result))
    if mode == "none":
        return none
    if mode == "sum":
        return _reduce(none, "sum", result)
    if w is not None and weight_sum:
        return _reduce(none, "mean", result, w.sum(dtype=_F64))
    return _reduce(none, "mean", result, math.prod(input.shape))


def _binary_block(x, t, w, pw, name):
    kwargs = {} if pw is None else {"pos_weight": pw}
    return getattr(nbops, name)(x, t, weight=w, reduction="none", **kwargs)


def binary(name, input, target, weight=None, size_average=None, reduce=None,
           reduction="mean", pos_weight=None):
    """binary_cross_entropy (the [0, 1] check runs on each block when computed) and
    binary_cross_entropy_with_logits."""
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=4).mode
    t = _same_shape_target(input, target, name)
    w = _full_weight_array(weight, "weight", input)
    pw = _full_weight_array(pos_weight, "pos_weight", input)
    others = tuple((n, v) for n, v in (("weight", w), ("pos_weight", pw)) if v is not None)
    result = _loss_dtypes(input, t, others)
    none = da.map_blocks(_binary_block, input, t, w, pw, name, dtype=result,
                         meta=_meta(input.ndim, result))
    if mode == "none":
        return none
    return _reduce(none, mode, result, math.prod(input.shape))


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    return binary("binary_cross_entropy", input, target, weight, size_average, reduce,
                  reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    return binary("binary_cross_entropy_with_logits", input, target, weight, size_average,
                  reduce, reduction, pos_weight)


def _kl_block(x, t, log_target):
    return nbops.kl_div(x, t, reduction="none", log_target=log_target)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    plan = P.reduction_plan(reduction, size_average, reduce, batchmean=True, stacklevel=3)
    t = _same_shape_target(input, target, "kl_div", "silent")
    result = _loss_dtypes(input, t)
    none = da.map_blocks(_kl_block, input, t, bool(log_target), dtype=result,
                         meta=_meta(input.ndim, result))
    batch = plan.batch_divisor(input.shape)
    if plan.mode == "none":
        return none if batch == 1 else (none / np.asarray(batch, result)).astype(result)
    n = batch if plan.mode == "sum" else batch * math.prod(input.shape)
    return _reduce(none, "mean", result, n)


# ------------------------------------------------------------------ cross_entropy, nll_loss
def _class_block(x, t, w, name, ignore_index, label_smoothing, indices):
    if indices:  # class indices, given with a class axis of size 1 to align the chunks
        t = t[:, 0]
    kwargs = {} if name == "nll_loss" else {"label_smoothing": label_smoothing}
    return getattr(nbops, name)(x, t, weight=w, ignore_index=ignore_index, reduction="none",
                                **kwargs)


def _class_partial_block(x, t, w, name, ignore_index, label_smoothing):
    """A chunk's float64 (sum of losses, sum of target weights) from nbops' fused kernel,
    shaped (1, 2, 1, ...)."""
    from ._ops.classification import _planned, index_partials

    logits = name == "cross_entropy"
    x, t, w, plan, compute, _ = _planned(x, t[:, 0], w, None, ignore_index, None, "sum",
                                         label_smoothing if logits else 0.0, logits)
    _, partials = index_partials(x, t, w, plan, logits, compute)
    return partials[:, -1].reshape((1, 2) + (1,) * (x.ndim - 2))


def _check_range(t, classes, ignore_index):
    bad = (t != ignore_index) & ((t < 0) | (t >= classes))
    if bad.any():
        raise ValueError(P.target_range_message(classes, ignore_index))


def _split_class_block(x, t, lse, w, classes, ignore_index, eps, block_info=None):
    """A class chunk's share of each sample's loss (float64; summed over the chunks)."""
    c0, c1 = block_info[0]["array-location"][1]
    if c0 == 0:
        _check_range(t, classes, ignore_index)
    logp = x.astype(np.float64)
    if lse is not None:
        logp = logp - lse
    wb = np.ones(c1 - c0) if w is None else w[c0:c1].astype(np.float64)
    wshape = (1, c1 - c0) + (1,) * (x.ndim - 2)
    tt = t.astype(np.int64)
    inside = (tt >= c0) & (tt < c1) & (tt != ignore_index)
    local = np.where(inside, tt - c0, 0)
    picked = np.take_along_axis(logp, local, axis=1)  # t has a class axis of size 1
    wt = wb[local.reshape(-1)].reshape(local.shape)
    loss = np.where(inside, -(1.0 - eps) * wt * picked, 0.0)
    if eps:
        smooth = -(eps / classes) * np.sum(wb.reshape(wshape) * logp, axis=1, keepdims=True)
        loss = loss + np.where(tt != ignore_index, smooth, 0.0)
    return loss


def _target_weights(t, w, classes, ignore_index):
    _check_range(t, classes, ignore_index)
    keep = t != ignore_index
    if w is None:
        return keep.astype(np.float64)
    idx = np.where(keep, t, 0).astype(np.int64)
    return np.where(keep, w.astype(np.float64)[idx], 0.0)


def class_loss(name, input, target, weight=None, size_average=None, ignore_index=-100,
               reduce=None, reduction="mean", label_smoothing=0.0):
    """cross_entropy / nll_loss of a dask input ``(C,)``, ``(N, C)`` or ``(N, C, d...)``."""
    logits = name == "cross_entropy"
    shape = _known_shape(input)
    w = _host(weight, "weight")
    tshape = tuple(target.shape) if is_dask_array(target) else np.shape(target)
    tdtype = target.dtype if is_dask_array(target) else np.asarray(target).dtype
    plan = P.class_loss_plan(shape, tshape, tdtype, None if w is None else w.shape,
                             ignore_index, label_smoothing, reduction, size_average, reduce,
                             logits, stacklevel=4)
    result = result_dtype(input.dtype)[1]
    if w is not None:
        result_dtype(w.dtype, "weight")
    mode = plan.reduction.mode
    if input.ndim == 1:  # one sample (C,): a batch of one
        t1 = target[None] if is_dask_array(target) else np.asarray(target)[None]
        loss = class_loss(name, input[None], t1, w, None, ignore_index, None, mode,
                          label_smoothing)
        return loss[0] if mode == "none" else loss
    if plan.probabilities:
        t = _aligned(target, "target", input.chunks, shape)
        if len(input.chunks[1]) > 1:  # class probabilities: the class axis in one chunk
            input, t = input.rechunk({1: -1}), t.rechunk({1: -1})
        none = da.map_blocks(_class_block, input, t, w, name, ignore_index, label_smoothing,
                             False, drop_axis=1, dtype=result, meta=_meta(input.ndim - 1, result))
        if mode == "none":
            return none
        return _reduce(none, mode, result, shape[0] * math.prod(shape[2:]))
    loss_chunks = input.chunks[:1] + input.chunks[2:]
    t = _aligned(target, "target", loss_chunks, plan.loss_shape)
    if len(input.chunks[1]) == 1 and mode != "none":  # nbops' fused sums of each chunk
        chunks = [(1,) * len(c) for c in input.chunks]
        chunks[1] = (2,)
        parts = da.map_blocks(_class_partial_block, input, t[:, None], w, name, ignore_index,
                              label_smoothing, chunks=tuple(chunks), dtype=_F64,
                              meta=_meta(input.ndim, _F64))
        total = parts.sum(axis=tuple(i for i in range(input.ndim) if i != 1))
        return total.map_blocks(_finish_block, mode, result, drop_axis=0, dtype=result,
                                meta=np.empty((), result))
    if len(input.chunks[1]) == 1:  # the class axis in one chunk: nbops on each block
        none = da.map_blocks(_class_block, input, t[:, None], w, name, ignore_index,
                             label_smoothing, True, drop_axis=1, dtype=result,
                             meta=_meta(input.ndim - 1, result))
    else:  # the class axis split: log-sum-exp partials, then each chunk's share
        lse = logsumexp(input, 1) if logits else None
        chunks = list(input.chunks)
        chunks[1] = (1,) * len(input.chunks[1])
        eps = plan.label_smoothing if logits else 0.0
        shares = da.map_blocks(_split_class_block, input, t[:, None], lse, w, plan.classes,
                               ignore_index, eps, chunks=tuple(chunks), dtype=_F64,
                               meta=_meta(input.ndim, _F64))
        none = shares.sum(axis=1).astype(result)
    if mode == "none":
        return none
    if mode == "sum":
        return _reduce(none, "sum", result)
    weights = t.map_blocks(_target_weights, w, plan.classes, ignore_index, dtype=_F64,
                           meta=_meta(t.ndim, _F64))
    return _reduce(none, "mean", result, weights.sum())


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    return class_loss("cross_entropy", input, target, weight, size_average, ignore_index,
                      reduce, reduction, label_smoothing)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    return class_loss("nll_loss", input, target, weight, size_average, ignore_index, reduce,
                      reduction)


# ------------------------------------------------------------------ linear
def _linear_block(x, weight, bias):
    return nbops.linear(x, weight, bias)


def linear(input, weight, bias=None, out=None):
    """``x @ weight.T + bias``: nbops.linear on each block when the feature axis is one
    chunk, else dask's blocked matrix product (chunked along the input's features)."""
    _no_out(out)
    w = _host(weight, "weight")
    b = _host(bias, "bias")
    result_dtype(input.dtype, "input")
    result_dtype(w.dtype, "weight")
    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if input.ndim < 1 or input.shape[-1] != w.shape[1]:
        raise ValueError(f"input's last axis must have in_features={w.shape[1]} elements "
                         f"(weight shape {w.shape}), got input shape {input.shape}")
    dt = np.result_type(input.dtype, w.dtype)
    n_out = w.shape[0]
    if b is not None:
        result_dtype(b.dtype, "bias")
        if b.ndim > 1 or b.size not in (1, n_out):
            raise ValueError(f"bias must have shape ({n_out},) (out_features, "
                             f"weight.shape[0]), got {b.shape}")
        dt = np.result_type(dt, b.dtype)
    compute, result = result_dtype(dt)
    nd = input.ndim
    if len(input.chunks[-1]) == 1:
        chunks = input.chunks[:-1] + ((n_out,),)
        return input.map_blocks(_linear_block, w, b, chunks=chunks, dtype=result,
                                meta=_meta(nd, result))
    wt = da.from_array(np.ascontiguousarray(w.T, dtype=compute),
                       chunks=(input.chunks[-1], (n_out,)))
    y = da.matmul(input.astype(compute), wt)
    if b is not None:
        y = y + b.astype(compute).reshape(-1)
    return y.astype(result)


def linear_backward(grad_output, input, weight, bias=None):
    """(grad_input, grad_weight, grad_bias), lazily: ``g @ W`` blockwise (dask's
    blocked product when the output features span several chunks), ``g^T x`` and
    the bias's sums as dask's tree reductions over the rows."""
    w = _host(weight, "weight")
    for arr, name in ((grad_output, "grad_output"), (input, "input"), (w, "weight")):
        result_dtype(np.dtype(arr.dtype), name)
    if not (is_dask_array(grad_output) and is_dask_array(input)):
        raise TypeError("grad_output and input: pass both as dask arrays (or both as NumPy "
                        "arrays)")
    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {w.shape}")
    n_out, n_in = w.shape
    shape = _known_shape(input)
    if input.ndim < 1 or shape[-1] != n_in:
        raise ValueError(f"input's last axis must have in_features={n_in} elements "
                         f"(weight shape {w.shape}), got input shape {shape}")
    if _known_shape(grad_output, "grad_output") != shape[:-1] + (n_out,):
        raise ValueError(f"grad_output must have the forward output's shape "
                         f"{shape[:-1] + (n_out,)}, got {grad_output.shape}")
    dts = [grad_output.dtype, input.dtype, w.dtype]
    b = _host(bias, "bias")
    if b is not None:
        if b.ndim > 1 or b.size not in (1, n_out):
            raise ValueError(f"bias must have shape ({n_out},) (out_features, "
                             f"weight.shape[0]), got {b.shape}")
        dts.append(b.dtype)
    compute, result = result_dtype(np.result_type(*dts))
    rows = math.prod(shape[:-1])
    g2 = grad_output.astype(compute).reshape(rows, n_out)
    x2 = input.astype(compute).reshape(rows, n_in)
    grad_input = (g2 @ w.astype(compute)).reshape(shape).astype(result)
    grad_weight = (g2.T @ x2).astype(result)
    grad_bias = None
    if b is not None:
        grad_bias = g2.sum(axis=0, dtype=np.float64)
        if b.size != n_out:
            grad_bias = grad_bias.sum()
        grad_bias = grad_bias.reshape(b.shape).astype(result)
    return grad_input, grad_weight, grad_bias


# ------------------------------------------------------------------ pairwise_distance
def _pdist_block(a, b, p, eps, keepdim):
    return nbops.pairwise_distance(a, b, p, eps, keepdim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False, *, out=None):
    """Blockwise when the feature (last) axis is one chunk; otherwise float64 partial
    p-sums of each feature chunk, summed by dask, then the p-th root."""
    from ._ops.plan_norm import pairwise_distance_plan

    _no_out(out)
    shape = _known_shape(x1, "x1")
    if x1.ndim == 0:
        raise ValueError("x1: a 0-d dask array; pass a NumPy array")
    x2 = x2 if is_dask_array(x2) else as_array(x2, "x2")
    plan = pairwise_distance_plan(shape, _known_shape(x2, "x2"), p, eps, keepdim)
    if not is_dask_array(x2) and x2.shape != shape and plan.shape == shape:
        x2 = np.broadcast_to(x2, shape)  # a NumPy row (say) against every row of x1
    x2 = _aligned(x2, "x2", x1.chunks, shape)
    result_dtype(x1.dtype, "x1")
    result_dtype(x2.dtype, "x2")
    compute, result = result_dtype(np.result_type(x1.dtype, x2.dtype), "x1")
    if len(x1.chunks[-1]) == 1:
        kw = {} if keepdim else {"drop_axis": x1.ndim - 1}
        if keepdim:
            kw["chunks"] = x1.chunks[:-1] + ((1,),)
        return da.map_blocks(_pdist_block, x1, x2, plan.p, plan.eps, bool(keepdim),
                             dtype=result, meta=_meta(len(plan.out_shape), result), **kw)
    d = abs(x1.astype(compute) - x2.astype(compute) + compute.type(plan.eps)).astype(_F64)
    axis = x1.ndim - 1
    if plan.p == math.inf:
        norm = d.max(axis=axis, keepdims=keepdim)
    elif plan.p == -math.inf:
        norm = d.min(axis=axis, keepdims=keepdim)
    elif plan.p == 0:
        norm = (d != 0).sum(axis=axis, keepdims=keepdim, dtype=_F64)
    else:
        norm = (d ** plan.p).sum(axis=axis, keepdims=keepdim) ** (1.0 / plan.p)
    return norm.astype(result)


# ------------------------------------------------------------------ dropout
def _runs(shape, location):
    """(starts, length): a block's elements as runs of consecutive global C-order
    flat indices of an array of ``shape`` (``location``: the block's (start, stop)
    per axis), in the block's C order."""
    nd = len(shape)
    if nd == 0:
        return np.zeros(1, np.int64), 1
    k = nd - 1  # the axes after k are whole: a run covers axes k, k+1, ...
    while k > 0 and location[k] == (0, shape[k]):
        k -= 1
    strides = [math.prod(shape[i + 1:]) for i in range(nd)]
    starts = np.array([location[k][0] * strides[k]], np.int64)
    for i in range(k - 1, -1, -1):
        idx = np.arange(location[i][0], location[i][1], dtype=np.int64) * strides[i]
        starts = (idx[:, None] + starts[None, :]).reshape(-1)
    length = (location[k][1] - location[k][0]) * strides[k]
    return starts, length


def _dropout_constants(p, compute, mode):
    """(scale, zero, shifts) of nbops/_ops/dropout.py's _dropout for ``mode``
    ("dropout", "alpha" or "alpha_grad"); shifts: alpha dropout's (kept, dropped)."""
    from ._ops.plan import alpha_dropout_constants, dropout_scale

    if mode == "dropout":
        return dropout_scale(p, compute), compute.type(0), None
    scale, kept_shift, dropped_shift = alpha_dropout_constants(p, compute)
    shifts = (kept_shift, dropped_shift) if mode == "alpha" else None
    return scale, compute.type(0), shifts


def _dropout_block(x, shape, axes, key, t, p, compute, result, mode="dropout",
                   block_info=None):
    from ._ops.dropout import _run_drop, _run_mask

    location = block_info[0]["array-location"]
    scale, zero, shifts = _dropout_constants(p, compute, mode)
    src = np.ascontiguousarray(x, dtype=compute)
    if axes is None:  # one decision per element: its global flat index
        if shifts is not None:  # alpha dropout's (multiplier, shift) pairs
            scale, zero = (scale, shifts[0]), (zero, shifts[1])
        starts, length = _runs(shape, location)
        dest = np.empty(src.shape, compute)
        xf, df = src.reshape(-1), dest.reshape(-1)
        for r, start in enumerate(starts.tolist()):
            _run_drop(xf[r * length:(r + 1) * length], df[r * length:(r + 1) * length],
                      start, key, t, scale, zero)
    else:  # one decision per channel: its flat index over the channel axes
        starts, length = _runs(shape[:axes], location[:axes])
        mult = np.empty(src.shape[:axes], compute)
        mf = mult.reshape(-1)
        for r, start in enumerate(starts.tolist()):
            _run_mask(mf[r * length:(r + 1) * length], start, key, t, scale, zero)
        expand = (1,) * (src.ndim - axes)
        dest = src * mult.reshape(mult.shape + expand)
        if shifts is not None:  # the same decisions (the same key): the shifts
            shift = np.empty(src.shape[:axes], compute)
            sf = shift.reshape(-1)
            for r, start in enumerate(starts.tolist()):
                _run_mask(sf[r * length:(r + 1) * length], start, key, t, *shifts)
            dest += shift.reshape(shift.shape + expand)
    return dest if result == compute else dest.astype(result)


def dropout(input, p=0.5, training=True, inplace=False, *, rng=None, out=None, feature=None,
            mode="dropout"):
    """dropout (``feature=None``), dropout1d, dropout2d, dropout3d and (``mode``
    "alpha", or "alpha_grad" for their gradient) alpha_dropout,
    feature_alpha_dropout: each block draws the in-memory mask's elements at
    their global indices."""
    _no_out(out, inplace)
    p = P.check_p(p)
    if feature == "dropout1d":
        P.check_dropout1d_rank(input.ndim)
    elif feature in ("dropout2d", "dropout3d"):
        P.warn_feature_rank(feature, input.ndim, stacklevel=3)
    compute, result = result_dtype(input.dtype)
    shape = _known_shape(input)
    plan = P.dropout_plan(shape, p, training, False, False, feature)
    if plan.action == "identity":
        return input if input.dtype == result else input.astype(result)
    if plan.action == "zero":  # input * 0, as PyTorch: NaN and inf give NaN
        return (input * result.type(0)).astype(result)
    # inner == 1: one decision per element, as nbops/_ops/dropout.py's _dropout
    axes = None if feature is None or plan.inner == 1 else P.channel_axes(feature, len(shape))
    key = P.dropout_key(rng)
    t = P.dropout_threshold(p)
    return input.map_blocks(_dropout_block, shape, axes, key, t, p, compute, result, mode,
                            dtype=result, meta=_meta(input.ndim, result))


def dropout1d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    return dropout(input, p, training, inplace, rng=rng, out=out, feature="dropout1d")


def alpha_dropout(input, p=0.5, training=False, inplace=False, *, rng=None, out=None):
    return dropout(input, p, training, inplace, rng=rng, out=out, mode="alpha")


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False, *, rng=None, out=None):
    return dropout(input, p, training, inplace, rng=rng, out=out,
                   feature="feature_alpha_dropout", mode="alpha")


def dropout2d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    return dropout(input, p, training, inplace, rng=rng, out=out, feature="dropout2d")


def dropout3d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    return dropout(input, p, training, inplace, rng=rng, out=out, feature="dropout3d")


# ------------------------------------------------------------------ rrelu (training)
def _rrelu_block(x, g, shape, key, lower, upper, compute, result, block_info=None):
    """rrelu (``g`` None) or its gradient on one block: element i's slope is drawn at
    its global flat index (nbops/_ops/rrelu.py's kernel takes the first one)."""
    from ._ops.rrelu import _run

    starts, length = _runs(shape, block_info[0]["array-location"])
    src = np.ascontiguousarray(x, dtype=compute)
    dest = np.empty(src.shape, compute)
    xf, df = src.reshape(-1), dest.reshape(-1)
    gf = None if g is None else np.ascontiguousarray(g, dtype=compute).reshape(-1)
    for r, start in enumerate(starts.tolist()):
        piece = slice(r * length, (r + 1) * length)
        _run(xf[piece], None if gf is None else gf[piece], df[piece], key, lower, upper,
             start)
    return dest if result == compute else dest.astype(result)


def _rrelu_grad_block(g, x, shape, key, lower, upper, compute, result, block_info=None):
    return _rrelu_block(x, g, shape, key, lower, upper, compute, result,
                        block_info=block_info)


def rrelu_train(input, lower, upper, inplace=False, rng=None, out=None):
    """rrelu in training (checked bounds): each block draws the in-memory slopes at its
    elements' global flat indices, so the result is the same for every chunking."""
    _no_out(out, inplace)
    compute, result = result_dtype(input.dtype)
    shape = _known_shape(input)
    if 0 in shape:  # nothing to draw (rng is not consumed)
        return input.astype(result)
    key = P.dropout_key(rng)
    return input.map_blocks(_rrelu_block, None, shape, key, lower, upper, compute, result,
                            dtype=result, meta=_meta(input.ndim, result))


def rrelu_backward_train(grad_output, input, lower, upper, rng, out=None):
    """rrelu's gradient in training (checked bounds and seed): the forward's slopes,
    regenerated on aligned blocks of ``grad_output`` and ``input``."""
    _no_out(out)
    if is_dask_array(grad_output):
        g = grad_output
        x = _aligned(input, "input", g.chunks, _known_shape(g, "grad_output"))
    else:
        x = input
        g = _aligned(grad_output, "grad_output", x.chunks, _known_shape(x, "input"))
    result_dtype(x.dtype)  # the in-memory checks: a real input, a float grad_output
    if np.dtype(g.dtype).kind != "f":
        raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
    compute, result = result_dtype(np.result_type(g.dtype, x.dtype))
    key = P.dropout_key(rng)
    return da.map_blocks(_rrelu_grad_block, g, x, x.shape, key, lower, upper, compute,
                         result, dtype=result, meta=_meta(g.ndim, result))


# ------------------------------------------------------------------ glu
def _glu_block(x, axis):
    from ._ops.glu import glu as glu_op

    return glu_op(x, axis)


def _glu_grad_block(g, x, axis):
    from ._ops.glu import glu_backward as glu_backward_op

    return glu_backward_op(g, x, axis)


def _glu_input(input, axis, dim):
    """(input with the glu axis in one chunk, that axis, the output's chunks): each
    block then holds both halves of its elements (a documented choice: one rechunk
    of that axis rather than two half slices)."""
    from ._ops.glu import glu_plan

    ax, _, _, _, _ = glu_plan(_known_shape(input), axis, dim)
    x = input if len(input.chunks[ax]) == 1 else input.rechunk({ax: -1})
    half = tuple(c // 2 for c in x.chunks[ax])
    return x, ax, x.chunks[:ax] + (half,) + x.chunks[ax + 1:]


def glu(input, axis=-1, *, dim=None, out=None):
    """glu: the glu axis in one chunk (rechunked if split), then the in-memory glu
    on every block: bit-identical to the in-memory result."""
    _no_out(out)
    _, result = result_dtype(input.dtype)
    x, ax, chunks = _glu_input(input, axis, dim)
    return x.map_blocks(_glu_block, ax, chunks=chunks, dtype=result,
                        meta=_meta(x.ndim, result))


def glu_backward(grad_output, input, axis=-1, *, dim=None, out=None):
    """glu's gradient: the in-memory backward on blocks holding whole glu rows of
    ``input`` (rechunked as the forward's) and the matching blocks of ``grad_output``."""
    _no_out(out)
    if not is_dask_array(input):
        input = da.from_array(as_array(input, "input"), chunks=-1)
    result_dtype(input.dtype)
    x, ax, chunks = _glu_input(input, axis, dim)
    out_shape = tuple(sum(c) for c in chunks)
    if is_dask_array(grad_output):
        if _known_shape(grad_output, "grad_output") != out_shape:
            raise ValueError(f"grad_output has shape {grad_output.shape} but the forward's "
                             f"output has shape {out_shape} (input {x.shape} halved along "
                             f"axis {ax})")
        g = grad_output.rechunk(chunks)
    else:
        g = _aligned(grad_output, "grad_output", chunks, out_shape)
    if np.dtype(g.dtype).kind != "f":
        raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
    _, result = result_dtype(np.result_type(g.dtype, x.dtype))
    return da.map_blocks(_glu_grad_block, g, x, ax, chunks=x.chunks, dtype=result,
                         meta=_meta(x.ndim, result))


# ------------------------------------------------------------------ local_response_norm
def _lrn_block(x, size, alpha, beta, k):
    return nbops.local_response_norm(x, size, alpha, beta, k)


def _lrn_grad_block(g, x, size, alpha, beta, k):
    return nbops.local_response_norm_backward(g, x, size, alpha, beta, k)


def _lrn_setup(input, size, alpha, beta, k):
    from ._ops.local_response_norm import _check_ndim, _params

    _check_ndim(_known_shape(input))
    return _params(size, alpha, beta, k)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0, *, out=None):
    """The channel axis (1) in one chunk (rechunked if split), then the in-memory
    kernel on every block (each position's window lies in its block): bit-identical."""
    _no_out(out)
    _, result = result_dtype(input.dtype)
    params = _lrn_setup(input, size, alpha, beta, k)
    x = input if len(input.chunks[1]) == 1 else input.rechunk({1: -1})
    return x.map_blocks(_lrn_block, *params, dtype=result, meta=_meta(x.ndim, result))


def local_response_norm_backward(grad_output, input, size, alpha=1e-4, beta=0.75, k=1.0, *,
                                 out=None):
    """The in-memory backward on aligned blocks of ``grad_output`` and ``input``, the
    channel axis in one chunk (the gradient has those chunks)."""
    _no_out(out)
    if not is_dask_array(input):
        input = da.from_array(as_array(input, "input"), chunks=-1)
    params = _lrn_setup(input, size, alpha, beta, k)
    x = input if len(input.chunks[1]) == 1 else input.rechunk({1: -1})
    if is_dask_array(grad_output):
        if _known_shape(grad_output, "grad_output") != x.shape:
            raise ValueError(f"grad_output has shape {grad_output.shape} but input has shape "
                             f"{x.shape}: they must be the same (the forward's output shape)")
        g = grad_output.rechunk(x.chunks)
    else:
        g = _aligned(grad_output, "grad_output", x.chunks, x.shape)
    if np.dtype(g.dtype).kind != "f":
        raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
    _, result = result_dtype(np.result_type(g.dtype, result_dtype(x.dtype)[1]))
    return da.map_blocks(_lrn_grad_block, g, x, *params, dtype=result,
                         meta=_meta(x.ndim, result))


# ------------------------------------------------------------------ gumbel_softmax
def _gumbel_soft_block(x, shape, ax, key, tau, compute, block_info=None):
    """y_soft of a block holding whole rows along ``ax``: the noise of each element
    at its global flat index (nbops/_ops/gumbel.py's kernel takes the first one),
    then the in-memory softmax along ``ax``."""
    from ._ops.gumbel import _run_noisy

    starts, length = _runs(shape, block_info[0]["array-location"])
    src = np.ascontiguousarray(x, dtype=compute)
    z = np.empty(src.shape, compute)
    sf, zf = src.reshape(-1), z.reshape(-1)
    for r, start in enumerate(starts.tolist()):
        piece = slice(r * length, (r + 1) * length)
        _run_noisy(sf[piece], zf[piece], key, tau, start)
    return nbops.softmax(z, ax)


def _gumbel_block(x, shape, ax, key, tau, hard, compute, result, block_info=None):
    from ._ops.gumbel import _harden

    y = _gumbel_soft_block(x, shape, ax, key, tau, compute, block_info=block_info)
    if hard:
        y = _harden(y, ax)
    return y if result == compute else y.astype(result)


def _gumbel_grad_block(g, x, ys, shape, ax, key, tau, compute, result, block_info=None):
    from ._ops.softmax import softmax_backward

    if ys is None:
        ys = _gumbel_soft_block(x, shape, ax, key, tau, compute, block_info=block_info)
    res = softmax_backward(np.ascontiguousarray(g, dtype=compute),
                           np.ascontiguousarray(ys, dtype=compute), ax)
    res /= compute.type(tau)
    return res if result == compute else res.astype(result)


def _gumbel_logits(logits, axis, dim):
    """(logits with the softmax axis in one chunk, that axis, the shape)."""
    shape = _known_shape(logits, "logits")
    result_dtype(logits.dtype, "logits")
    if len(shape) == 0:
        raise ValueError("logits must have at least one dimension")
    ax = P.axis_plan(shape, axis, dim).axis
    x = logits if len(logits.chunks[ax]) == 1 else logits.rechunk({ax: -1})
    return x, ax, shape


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, axis=-1, *, dim=None, rng=None,
                   out=None):
    """The softmax axis in one chunk (rechunked if split); each block draws the
    in-memory noise at its elements' global flat indices: bit-identical for every
    chunking."""
    from ._ops.gumbel import _check_args

    _no_out(out)
    tau = _check_args(tau, eps, 3)
    x, ax, shape = _gumbel_logits(logits, axis, dim)
    compute, result = result_dtype(x.dtype, "logits")
    key = P.dropout_key(rng) if 0 not in shape else (np.uint32(0), np.uint32(0))
    return x.map_blocks(_gumbel_block, shape, ax, key, tau, bool(hard), compute, result,
                        dtype=result, meta=_meta(x.ndim, result))


def gumbel_softmax_backward(grad_output, logits, tau=1.0, hard=False, eps=1e-10, axis=-1, *,
                            dim=None, rng=None, y_soft=None, out=None):
    """y_soft regenerated per block (or the given one's blocks), then the in-memory
    ``softmax_backward / tau`` on aligned blocks with the softmax axis in one chunk."""
    from ._ops.dropout import _check_seed
    from ._ops.gumbel import _check_args

    _no_out(out)
    tau = _check_args(tau, eps, 3)
    if y_soft is None:
        _check_seed(rng)
    if not is_dask_array(logits):
        logits = da.from_array(as_array(logits, "logits"), chunks=-1)
    x, ax, shape = _gumbel_logits(logits, axis, dim)
    arrays = []
    for a, name in ((grad_output, "grad_output"), (y_soft, "y_soft")):
        if a is None:
            arrays.append(None)
            continue
        if tuple(_lazy_shape(a, name)) != shape:
            what = "logits" if name == "y_soft" else "logits"
            raise ValueError(f"{name} has shape {tuple(_lazy_shape(a, name))} but {what} has "
                             f"shape {shape}: they must be the same")
        if _lazy_dtype(a, name).kind != "f":
            raise TypeError(f"{name}: expected a float array, got dtype {_lazy_dtype(a, name)}")
        arrays.append(a.rechunk(x.chunks) if is_dask_array(a) else
                      da.from_array(as_array(a, name), chunks=x.chunks))
    g, ys = arrays
    dtypes = [g.dtype, x.dtype] + ([] if ys is None else [ys.dtype])
    compute, result = result_dtype(np.result_type(*dtypes))
    key = P.dropout_key(rng) if ys is None and 0 not in shape else (np.uint32(0), np.uint32(0))
    return da.map_blocks(_gumbel_grad_block, g, x, ys, shape, ax, key, tau, compute, result,
                         dtype=result, meta=_meta(x.ndim, result))


# ------------------------------------------------------------------ batch_norm
def _bn_partial(x):
    """(count, mean, M2) per channel of one block, float64, shaped (1, c, 1, ..., 3)."""
    xs = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1]).astype(np.float64)
    n = xs.shape[0]
    mean = xs.mean(axis=0) if n else np.zeros(x.shape[1])
    m2 = ((xs - mean) ** 2).sum(axis=0)
    res = np.stack([np.full(x.shape[1], float(n)), mean, m2], axis=-1)
    return res.reshape((1, x.shape[1]) + (1,) * (x.ndim - 2) + (3,))


def _bn_merge(parts):
    """Chan et al.'s exact merge of (count, mean, M2) partials: (1, c, 1.., 2) of
    (mean, biased variance)."""
    nd = parts.ndim - 1
    axes = tuple(i for i in range(nd) if i != 1)
    n, mean, m2 = parts[..., 0], parts[..., 1], parts[..., 2]
    total = n.sum(axis=axes, keepdims=True)
    mu = (n * mean).sum(axis=axes, keepdims=True) / total
    m2 = m2.sum(axis=axes, keepdims=True) + (n * (mean - mu) ** 2).sum(axis=axes,
                                                                         keepdims=True)
    return np.stack([mu, m2 / total], axis=-1)


def _bn_stats(x):
    """Lazy float64 per-channel (mean, biased variance), shaped (1, C, 1, ..., 1)."""
    nd = x.ndim
    chunks = [(1,) * len(c) for c in x.chunks]
    chunks[1] = x.chunks[1]
    parts = x.map_blocks(_bn_partial, chunks=tuple(chunks) + ((3,),), new_axis=nd,
                         dtype=_F64, meta=_meta(nd + 1, _F64))
    merged = parts.rechunk({i: -1 for i in range(nd) if i != 1}).map_blocks(
        _bn_merge, chunks=((1,), x.chunks[1]) + ((1,),) * (nd - 2) + ((2,),), dtype=_F64,
        meta=_meta(nd + 1, _F64))
    return merged[..., 0], merged[..., 1]


def _bn_update(mean, var, running_mean, running_var, momentum, count, block_info=None):
    """Write this channel chunk's running statistics (PyTorch's rule, unbiased
    variance); pass the batch statistics through."""
    c0, c1 = block_info[0]["array-location"][1]
    m, v = mean.reshape(-1), var.reshape(-1)
    unbiased = v * (count / (count - 1))
    rm, rv = running_mean[c0:c1], running_var[c0:c1]
    rm[...] = (1.0 - momentum) * rm.astype(np.float64) + momentum * m
    rv[...] = (1.0 - momentum) * rv.astype(np.float64) + momentum * unbiased
    return np.stack([mean, var], axis=-1)


def _bn_block(x, mean, var, w, b, eps, block_info=None):
    c0, c1 = block_info[0]["array-location"][1]
    return nbops.batch_norm(x, mean.reshape(-1), var.reshape(-1),
                            None if w is None else w[c0:c1], None if b is None else b[c0:c1],
                            training=False, eps=eps)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, out=None, return_stats=False):
    """Training: exact per-channel float64 statistics (Chan's merge of per-chunk count,
    mean and M2), then nbops' normalize on each block; evaluation: each block with the
    running statistics. In training, the running statistics are updated in place when
    the result is computed (once per computation) on the local schedulers.
    ``return_stats``: also the lazy (mean, invstd) the output was normalized with."""
    from ._ops.plan_norm import batch_norm_plan

    _no_out(out)
    shape = _known_shape(input)
    _, result = result_dtype(input.dtype)
    rm, rv = _host(running_mean, "running_mean"), _host(running_var, "running_var")
    w, b = _host(weight, "weight"), _host(bias, "bias")
    plan = batch_norm_plan(shape, rm, rv, w, b, training, momentum, eps)
    if input.ndim < 2:
        raise ValueError(f"input must have at least 2 dimensions (N, C, ...), got shape {shape}")
    for name, r in (("running_mean", running_mean), ("running_var", running_var)):
        if r is not None and plan.training and not (
                isinstance(r, np.ndarray) and r.flags.writeable):
            raise TypeError(f"{name} must be a writable NumPy array when training")
    w = None if w is None else w.reshape(-1).astype(np.float64)
    b = None if b is None else b.reshape(-1).astype(np.float64)
    nd = input.ndim
    stat_chunks = ((1,), input.chunks[1]) + ((1,),) * (nd - 2)
    if plan.training:
        mean, var = _bn_stats(input)
        if plan.update_running:
            both = da.map_blocks(_bn_update, mean, var, running_mean, running_var,
                                 plan.momentum, plan.count, new_axis=nd,
                                 chunks=stat_chunks + ((2,),), dtype=_F64,
                                 meta=_meta(nd + 1, _F64))
            mean, var = both[..., 0], both[..., 1]
    else:
        cshape = (1, plan.channels) + (1,) * (nd - 2)
        mean = da.from_array(rm.astype(np.float64).reshape(cshape), chunks=stat_chunks)
        var = da.from_array(rv.astype(np.float64).reshape(cshape), chunks=stat_chunks)
    res = da.map_blocks(_bn_block, input, mean, var, w, b, plan.eps, dtype=result,
                        meta=_meta(nd, result))
    if not return_stats:
        return res
    invstd = 1.0 / da.sqrt(var + plan.eps)
    channels = plan.channels
    return (res, mean.reshape(channels).astype(result),
            invstd.reshape(channels).astype(result))


# ------------------------------------------------------------------ backwards
# Every backward validates its arguments, then builds a lazy graph: the in-memory
# backward on each block where a block holds all it needs, and float64 partial
# sums reduced by dask's tree reduction where the gradient needs a reduction
# (a row sum, a channel sum, a loss's 'mean' divisor), then a blockwise finish.
def _pair(a, a_name, b, b_name):
    """Two same-shape arrays (one at least a dask array) as dask arrays with the same
    chunks: a NumPy one is split into the other's chunks."""
    if is_dask_array(a):
        b = _aligned(b, b_name, a.chunks, _known_shape(a, a_name))
    else:
        a = _aligned(a, a_name, b.chunks, _known_shape(b, b_name))
    for arr, name in ((a, a_name), (b, b_name)):
        if np.dtype(arr.dtype).kind != "f":
            raise TypeError(f"{name}: expected a float array, got dtype {arr.dtype}")
    return a, b


def _softmax_grad_block(g, y, name, axis):
    return getattr(nbops, f"{name}_backward")(g, y, axis=axis)


def _row_sum_partial(g, y, axis, log):
    """A block's float64 sum along ``axis`` of ``g`` (log_softmax) or ``g * y``."""
    s = g.astype(np.float64)
    if not log:
        s = s * y
    return s.sum(axis=axis, keepdims=True)


def _softmax_grad_write(g, y, s, sgn, log, dtype):
    g64, y64 = g.astype(np.float64), y.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        res = g64 - np.exp(y64) * s if log else sgn * y64 * (g64 - s)
    return res.astype(dtype, copy=False)


def softmax_family_backward(name, grad_output, output, axis=-1, dim=None, out=None):
    """``nbops.softmax_backward`` / ``log_softmax_backward`` / ``softmin_backward``:
    blockwise when the axis is one chunk; otherwise each chunk's float64 row sum of
    ``g * y`` (of ``g`` for log_softmax), summed by dask, then a blockwise finish."""
    _no_out(out)
    g, y = _pair(grad_output, "grad_output", output, "output")
    _, result = result_dtype(np.result_type(g.dtype, y.dtype))
    ax = P.normalize_axis(axis, dim, g.ndim)
    if g.ndim == 0 or len(g.chunks[ax]) == 1:
        return da.map_blocks(_softmax_grad_block, g, y, name, ax, dtype=result,
                             meta=_meta(g.ndim, result))
    sgn, log = _SIGN[name]
    chunks = list(g.chunks)
    chunks[ax] = (1,) * len(g.chunks[ax])
    partials = da.map_blocks(_row_sum_partial, g, y, ax, log, chunks=tuple(chunks), dtype=_F64,
                             meta=_meta(g.ndim, _F64))
    s = partials.sum(axis=ax, keepdims=True)
    return da.map_blocks(_softmax_grad_write, g, y, s, sgn, log, result, dtype=result,
                         meta=_meta(g.ndim, result))


def _prelu_grad_block(g, x, weight, block_info=None):
    if weight.size > 1 and x.ndim >= 2:  # this block's channels' weights
        c0, c1 = block_info[1]["array-location"][1]
        weight = weight[c0:c1]
    return nbops.prelu_backward(g, x, weight)[0]


def _prelu_weight_terms(g, x):
    """The float64 terms of prelu's weight gradient: ``x g`` where ``x <= 0`` (and
    NaN), else 0."""
    x64 = x.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.where(x64 > 0, 0.0, x64 * g)


def prelu_backward(grad_output, input, weight, out=None):
    """(grad_input, grad_weight): grad_input blockwise; grad_weight dask's tree
    reduction of each block's float64 sums over every axis but the channel."""
    _no_out(out)
    g, x = _pair(grad_output, "grad_output", input, "input")
    w = _host(weight, "weight")
    if w.dtype.kind not in "fiub":
        raise TypeError(f"weight: expected a real array, got dtype {w.dtype}")
    shape = _known_shape(x, "input")
    channels = shape[1] if x.ndim >= 2 else 1
    if w.ndim > 1 or w.size not in (1, channels):
        raise ValueError(f"weight must be 1-D with 1 or {channels} (the number of channels, "
                         f"input.shape[1]) elements, got shape {w.shape}")
    _, result = result_dtype(np.result_type(g.dtype, x.dtype))
    grad_input = da.map_blocks(_prelu_grad_block, g, x, w.reshape(-1), dtype=result,
                               meta=_meta(x.ndim, result))
    terms = da.map_blocks(_prelu_weight_terms, g, x, dtype=_F64, meta=_meta(x.ndim, _F64))
    if w.size > 1 and x.ndim >= 2:
        sums = terms.sum(axis=tuple(i for i in range(x.ndim) if i != 1))
    else:
        sums = terms.sum()
    return grad_input, sums.reshape(w.shape).astype(result)


def dropout_backward(grad_output, p, training, rng, feature=None, out=None, mode="dropout"):
    """The dropouts' backward: the forward's dask path on ``grad_output`` with the
    same seed (the mask of each element depends only on its global index);
    ``mode="alpha_grad"``: alpha dropout's gradient (``g * a`` where kept)."""
    _no_out(out)
    if np.dtype(grad_output.dtype).kind != "f":
        raise TypeError(f"grad_output: expected a float array, got dtype {grad_output.dtype}")
    if feature == "dropout1d":
        P.check_dropout1d_rank(grad_output.ndim)
    if not training or p == 0.0:
        return grad_output
    return dropout(grad_output, p, training, rng=rng, feature=feature, mode=mode)


def _pdist_grad_block(g, a, b, p, eps, compute):
    a, b = a.astype(compute, copy=False), b.astype(compute, copy=False)
    return nbops.pairwise_distance_backward(g.astype(compute, copy=False), a, b, p, eps,
                                            True)[0]


def pairwise_distance_backward(grad_output, x1, x2, p=2.0, eps=1e-6, keepdim=False, out=None):
    """(grad_x1, grad_x2): the in-memory backward on each block when the feature (last)
    axis is one chunk; otherwise the inputs are rechunked to whole rows first and the
    gradients back to x1's chunks (the gradient of a row needs the whole row's norm)."""
    from ._ops.plan_norm import pairwise_distance_plan

    _no_out(out)
    shape = _known_shape(x1, "x1")
    if x1.ndim == 0:
        raise ValueError("x1: a 0-d dask array; pass a NumPy array")
    x2_in = x2 if is_dask_array(x2) else as_array(x2, "x2")
    x2_shape = _known_shape(x2_in, "x2") if is_dask_array(x2_in) else x2_in.shape
    plan = pairwise_distance_plan(shape, x2_shape, p, eps, keepdim)
    if plan.shape != shape:
        raise ValueError(f"x2 of shape {x2_shape} broadcasts x1 of shape {shape} to "
                         f"{plan.shape}; on dask arrays x1 must have the broadcast shape")
    b = x2_in if is_dask_array(x2_in) else np.broadcast_to(x2_in, shape)
    b = _aligned(b, "x2", x1.chunks, shape)
    r1 = result_dtype(x1.dtype, "x1")[1]
    r2 = result_dtype(b.dtype, "x2")[1]
    g = grad_output if is_dask_array(grad_output) else as_array(grad_output, "grad_output")
    if np.dtype(g.dtype).kind != "f":
        raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
    if tuple(g.shape) != tuple(plan.out_shape):
        raise ValueError(f"grad_output has shape {g.shape}, expected {plan.out_shape} (the "
                         "forward's output shape)")
    compute = result_dtype(np.result_type(g.dtype, r1, r2), "grad_output")[0]
    a = x1
    if len(a.chunks[-1]) > 1:  # whole rows in each block
        a, b = a.rechunk({a.ndim - 1: -1}), b.rechunk({a.ndim - 1: -1})
    if not keepdim:
        g = g.reshape(g.shape + (1,)) if is_dask_array(g) else g[..., None]
    g = _aligned(g, "grad_output", a.chunks[:-1] + ((1,),), shape[:-1] + (1,))
    grad = da.map_blocks(_pdist_grad_block, g, a, b, plan.p, plan.eps, compute,
                         chunks=a.chunks, dtype=compute, meta=_meta(a.ndim, compute))
    if grad.chunks != x1.chunks:
        grad = grad.rechunk(x1.chunks)
    grad1 = grad.astype(r1)
    grad2 = -grad
    if not is_dask_array(x2_in) and x2_in.shape != shape:  # summed back to x2's shape
        lead = len(shape) - x2_in.ndim
        axes = tuple(range(lead)) + tuple(
            lead + i for i, n in enumerate(x2_in.shape) if n == 1 and shape[lead + i] != 1)
        grad2 = grad2.sum(axis=axes, dtype=_F64, keepdims=True).reshape(x2_in.shape)
    return grad1, grad2.astype(r2)


def _bn_grad_partial(g, x, mean):
    """A block's float64 per-channel (sum of g, sum of g (x - mean)), shaped
    (1, c, 1, ..., 2)."""
    c = x.shape[1]
    g64 = np.moveaxis(g, 1, -1).reshape(-1, c).astype(np.float64)
    d = np.moveaxis(x, 1, -1).reshape(-1, c).astype(np.float64) - mean.reshape(-1)
    res = np.stack([g64.sum(axis=0), (g64 * d).sum(axis=0)], axis=-1)
    return res.reshape((1, c) + (1,) * (x.ndim - 2) + (2,))


def _bn_grad_block(g, x, mean, invstd, w, sum_g, sum_gd, count, training, dtype):
    g64, x64 = g.astype(np.float64), x.astype(np.float64)
    scale = invstd if w is None else w * invstd
    with np.errstate(invalid="ignore", over="ignore"):
        if training:
            mean_g = sum_g / count
            k = sum_gd / count * invstd * invstd
            res = scale * (g64 - mean_g - (x64 - mean) * k)
        else:
            res = g64 * scale
    return res.astype(dtype, copy=False)


def _channel_stat(v, name, channels, chunks, nd):
    """``mean``/``invstd``/``weight`` (NumPy or dask, shape (C,)) as a lazy float64
    (1, C, 1, ...) array chunked along the channels as the input."""
    if is_dask_array(v):
        if _known_shape(v, name) != (channels,):
            raise ValueError(f"{name} must have shape ({channels},) (the number of channels, "
                             f"input.shape[1]), got {v.shape}")
        if np.dtype(v.dtype).kind not in "fiu":
            raise TypeError(f"{name}: expected a float array, got dtype {v.dtype}")
        v = v.astype(np.float64).rechunk((chunks,))
    else:
        from ._ops.normalization import _saved_vector

        v = da.from_array(_saved_vector(v, name, channels), chunks=(chunks,))
    return v.reshape((1, channels) + (1,) * (nd - 2))


def batch_norm_backward(grad_output, input, mean, invstd, weight=None, training=False,
                        has_bias=None, out=None):
    """(grad_input, grad_weight, grad_bias): each block's float64 per-channel sums of
    ``g`` and ``g (x - mean)`` tree-reduced by dask, then a blockwise finish (the
    training formula, or ``g w invstd`` in evaluation). ``mean``/``invstd`` may be
    the lazy statistics of ``batch_norm(..., return_stats=True)``."""
    _no_out(out)
    g, x = _pair(grad_output, "grad_output", input, "input")
    shape = _known_shape(x, "input")
    _, result = result_dtype(np.result_type(g.dtype, result_dtype(x.dtype)[1]))
    training = bool(training)
    if x.ndim < 2:
        raise ValueError(f"input must have at least 2 dimensions (N, C, ...), got shape "
                         f"{shape}")
    channels = shape[1]
    count = math.prod(shape) // max(channels, 1)
    if training and count == 1:
        raise ValueError("Expected more than 1 value per channel when training, "
                         f"got input size {shape}")
    nd, cchunks = x.ndim, x.chunks[1]
    m = _channel_stat(mean, "mean", channels, cchunks, nd)
    s = _channel_stat(invstd, "invstd", channels, cchunks, nd)
    w = None if weight is None else _host(weight, "weight")
    if w is not None:
        from ._ops.normalization import _saved_vector

        w = _saved_vector(w, "weight", channels)
    has_bias = weight is not None if has_bias is None else bool(has_bias)
    sums = None
    if training or w is not None or has_bias:
        chunks = [(1,) * len(c) for c in x.chunks]
        chunks[1] = cchunks
        parts = da.map_blocks(_bn_grad_partial, g, x, m, new_axis=nd,
                              chunks=tuple(chunks) + ((2,),), dtype=_F64,
                              meta=_meta(nd + 1, _F64))
        sums = parts.sum(axis=tuple(i for i in range(nd) if i != 1), keepdims=True)
    sum_g, sum_gd = (None, None) if sums is None else (sums[..., 0], sums[..., 1])
    wd = None if w is None else da.from_array(
        w.reshape((1, channels) + (1,) * (nd - 2)), chunks=m.chunks)
    grad_input = da.map_blocks(_bn_grad_block, g, x, m, s, wd,
                               sum_g if training else None, sum_gd if training else None,
                               count, training, result, dtype=result, meta=_meta(nd, result))
    if math.prod(shape) == 0:  # no values: zero gradients
        s = da.zeros_like(s)
    grad_weight = grad_bias = None
    if w is not None:
        grad_weight = (sum_gd * s).reshape(channels).astype(result)
    if has_bias:
        grad_bias = sum_g.reshape(channels).astype(result)
    return grad_input, grad_weight, grad_bias


# ------------------------------------------------------------------ loss backwards
# 'sum' and 'mean': each block runs the in-memory backward with reduction='sum' and
# the per-element factor grad_output / divisor (the 'mean' divisor computed lazily
# first: the count, dask's float64 sum of the weights, or of the target weights of
# the samples not ignored); 'none': each block with its block of grad_output.
# ``_with_grad`` is the lazy loss and the lazy backward of grad_output = 1 (ones).
def _div_block(c, divisor):
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.float64(c) / np.float64(divisor), _F64)


def _grad_factor(grad_output, mode, divisor=1):
    """The per-element factor ``grad_output / divisor`` of a reduced loss's gradient:
    a float, or a lazy 0-d float64 array if either is lazy."""
    if is_dask_array(grad_output):
        if _known_shape(grad_output, "grad_output") != ():
            raise ValueError(f"grad_output has shape {grad_output.shape}, expected a scalar "
                             f"(shape ()) for reduction='{mode}'")
        if np.dtype(grad_output.dtype).kind not in "fiu":
            raise TypeError(f"grad_output: expected a real number, got dtype "
                            f"{grad_output.dtype}")
        c = grad_output.astype(_F64)
    else:
        from ._ops.losses import _grad_output

        c = _grad_output(grad_output, mode, ())
    if not (is_dask_array(c) or is_dask_array(divisor)):
        from ._ops.losses import _scale

        return _scale(c, divisor)
    return da.map_blocks(_div_block, da.asarray(c, dtype=_F64), da.asarray(divisor, dtype=_F64),
                         dtype=_F64, meta=np.empty((), _F64))


def _grad_none(grad_output, chunks, shape):
    """``grad_output`` of reduction='none': a float array of the loss's shape, chunked
    as the loss."""
    g = grad_output if is_dask_array(grad_output) else as_array(grad_output, "grad_output")
    if np.dtype(g.dtype).kind != "f":
        raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
    return _aligned(g, "grad_output", chunks, shape)


def _factor(g):
    """A block's grad_output: its array ('none'), or the float factor of a reduced loss
    (a 0-d block of a lazy factor)."""
    return float(g) if isinstance(g, (float, np.ndarray)) and np.ndim(g) == 0 else g


def _with_grad(loss, none, backward):
    """(lazy loss, lazy gradient): ``backward(grad_output)`` with 1.0, or for
    reduction='none' (``none``) ones of the loss's shape and chunks."""
    ones = da.ones(loss.shape, dtype=loss.dtype, chunks=loss.chunks) if none else 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the forward warned
        return loss, backward(ones)


def _pointwise_grad_block(g, x, t, w, op_name, gop_name, params, weight_sum):
    from ._ops.elementwise import Op
    from ._ops.losses import _regression_backward

    g = _factor(g)
    return _regression_backward(Op.registry[op_name], Op.registry[gop_name], params, g, x, t,
                                None, None, "sum" if isinstance(g, float) else "none", w,
                                weight_sum)


def pointwise_backward(op, gop, params, grad_output, input, target, size_average, reduce,
                       reduction, weight, weight_sum=True, out=None):
    """The backward of the pointwise losses of the op table."""
    _no_out(out)
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=4).mode
    t = _same_shape_target(input, target, op.name, "silent")
    w = _full_weight_array(weight, "weight", input)
    result = _loss_dtypes(input, t, () if w is None else (("weight", w),))
    if mode == "none":
        g = _grad_none(grad_output, input.chunks, input.shape)
        result = np.result_type(result, g.dtype)
    else:
        divisor = 1
        if mode == "mean":
            divisor = w.sum(dtype=_F64) if w is not None and weight_sum else math.prod(
                input.shape)
        g = _grad_factor(grad_output, mode, divisor)
    return da.map_blocks(_pointwise_grad_block, g, input, t, w, op.name, gop.name,
                         tuple(params), weight_sum, chunks=input.chunks, dtype=result,
                         meta=_meta(input.ndim, result))


def pointwise_with_grad(op, gop, params, input, target, size_average, reduce, reduction,
                        weight, weight_sum=True):
    """(lazy loss, lazy gradient) of a pointwise loss of the op table."""
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=4).mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # warned above
        loss = pointwise(op, params, input, target, size_average, reduce, reduction, weight,
                         weight_sum)
        return _with_grad(loss, mode == "none", lambda g: pointwise_backward(
            op, gop, params, g, input, target, size_average, reduce, reduction, weight,
            weight_sum))


def _kl_grad_block(g, x, t, log_target):
    g = _factor(g)
    return nbops.kl_div_backward(g, x, t, reduction="sum" if isinstance(g, float) else "none",
                                 log_target=log_target)


def kl_div_backward(grad_output, input, target, size_average=None, reduce=None,
                    reduction="mean", log_target=False, out=None):
    """kl_div's backward ('batchmean' divides by ``input.shape[0]``)."""
    _no_out(out)
    plan = P.reduction_plan(reduction, size_average, reduce, batchmean=True, stacklevel=3)
    t = _same_shape_target(input, target, "kl_div", "silent")
    result = _loss_dtypes(input, t)
    batch = plan.batch_divisor(input.shape)
    if plan.mode == "none":
        g = _grad_none(grad_output, input.chunks, input.shape)
        if batch != 1:  # 'batchmean' under the legacy flags, as the forward
            g = (g / np.asarray(batch, g.dtype)).astype(g.dtype)
        result = np.result_type(result, g.dtype)
    else:
        n = math.prod(input.shape) if plan.mode == "mean" else 1
        g = _grad_factor(grad_output, plan.mode, n * batch)
    return da.map_blocks(_kl_grad_block, g, input, t, bool(log_target), chunks=input.chunks,
                         dtype=result, meta=_meta(input.ndim, result))


def kl_div_with_grad(input, target, size_average=None, reduce=None, reduction="mean",
                     log_target=False):
    """(lazy loss, lazy gradient) of kl_div."""
    plan = P.reduction_plan(reduction, size_average, reduce, batchmean=True, stacklevel=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # warned above
        loss = kl_div(input, target, size_average, reduce, reduction, log_target)
        return _with_grad(loss, plan.mode == "none", lambda g: kl_div_backward(
            g, input, target, size_average, reduce, reduction, log_target))


def _binary_grad_block(g, x, t, w, pw, name):
    g = _factor(g)
    kwargs = {} if pw is None else {"pos_weight": pw}
    return getattr(nbops, f"{name}_backward")(
        g, x, t, weight=w, reduction="sum" if isinstance(g, float) else "none", **kwargs)


def binary_backward(name, grad_output, input, target, weight=None, size_average=None,
                    reduce=None, reduction="mean", pos_weight=None, out=None):
    """binary_cross_entropy_backward and binary_cross_entropy_with_logits_backward."""
    _no_out(out)
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=4).mode
    t = _same_shape_target(input, target, name)
    w = _full_weight_array(weight, "weight", input)
    pw = _full_weight_array(pos_weight, "pos_weight", input)
    others = tuple((n, v) for n, v in (("weight", w), ("pos_weight", pw)) if v is not None)
    result = _loss_dtypes(input, t, others)
    if mode == "none":
        g = _grad_none(grad_output, input.chunks, input.shape)
        result = np.result_type(result, g.dtype)
    else:
        g = _grad_factor(grad_output, mode, math.prod(input.shape) if mode == "mean" else 1)
    return da.map_blocks(_binary_grad_block, g, input, t, w, pw, name, chunks=input.chunks,
                         dtype=result, meta=_meta(input.ndim, result))


def binary_with_grad(name, input, target, weight=None, size_average=None, reduce=None,
                     reduction="mean", pos_weight=None):
    """(lazy loss, lazy gradient) of the two binary cross-entropies (the [0, 1] check
    of binary_cross_entropy runs on the loss's blocks, when the loss is computed)."""
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=4).mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # warned above
        loss = binary(name, input, target, weight, size_average, reduce, reduction,
                      pos_weight)
        return _with_grad(loss, mode == "none", lambda g: binary_backward(
            name, g, input, target, weight, size_average, reduce, reduction, pos_weight))


def _class_grad_block(g, x, t, w, name, ignore_index, label_smoothing, indices):
    if indices:  # class indices, given with a class axis of size 1 to align the chunks
        t = t[:, 0]
    g = _factor(g)
    if not isinstance(g, float):
        g = g[:, 0]  # the per-sample grad_output, given with a class axis of size 1
    kwargs = {} if name == "nll_loss" else {"label_smoothing": label_smoothing}
    return getattr(nbops, f"{name}_backward")(
        g, x, t, weight=w, ignore_index=ignore_index,
        reduction="sum" if isinstance(g, float) else "none", **kwargs)


def _split_class_grad_block(x, t, lse, g, w, classes, ignore_index, eps, dtype,
                            block_info=None):
    """A class chunk of the gradient of cross_entropy (``lse`` given) or nll_loss with
    class-index targets: the in-memory formula in float64 from the row's log-sum-exp."""
    c0, c1 = block_info[0]["array-location"][1]
    if c0 == 0:
        _check_range(t, classes, ignore_index)
    tt = t.astype(np.int64)  # a class axis of size 1
    keep = tt != ignore_index
    wshape = (1, c1 - c0) + (1,) * (x.ndim - 2)
    w64 = None if w is None else w.astype(np.float64)
    wy = keep.astype(np.float64) if w64 is None else np.where(keep, w64[np.where(keep, tt, 0)],
                                                                0.0)
    onehot = tt == np.arange(c0, c1).reshape(wshape)
    s = _factor(g)
    if not isinstance(s, float):
        s = s.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if lse is None:  # nll_loss: the input's values are not read
            grad = -s * wy * onehot
        else:
            a, b = 1.0 - eps, eps / classes
            total_w = float(classes) if w64 is None else float(w64.sum())
            wb = np.ones(wshape) if w64 is None else w64[c0:c1].reshape(wshape)
            p = np.exp(x.astype(np.float64) - lse)
            grad = s * ((a * wy + b * total_w) * p - b * wb - a * wy * onehot)
        grad = np.where(keep, grad, 0.0)
    return grad.astype(dtype, copy=False)


def class_backward(name, grad_output, input, target, weight=None, size_average=None,
                   ignore_index=-100, reduce=None, reduction="mean", label_smoothing=0.0,
                   out=None):
    """cross_entropy_backward / nll_loss_backward of a dask input: the in-memory
    backward on each block when the class axis is one chunk. Split class axis: class
    indices take each row's log-sum-exp (float64 partials, as the forward) and write
    each class chunk; class probabilities are rechunked into whole rows (their
    gradient also needs the row sum of the smoothed, weighted targets) and the
    gradient back to the input's chunks."""
    _no_out(out)
    shape = _known_shape(input)
    w = _host(weight, "weight")
    tshape = tuple(target.shape) if is_dask_array(target) else np.shape(target)
    tdtype = target.dtype if is_dask_array(target) else np.asarray(target).dtype
    plan = P.class_loss_plan(shape, tshape, tdtype, None if w is None else w.shape,
                             ignore_index, label_smoothing, reduction, size_average, reduce,
                             name == "cross_entropy", stacklevel=4)
    result = result_dtype(input.dtype)[1]
    if w is not None:
        result_dtype(w.dtype, "weight")
    mode = plan.reduction.mode
    if input.ndim == 1:  # one sample (C,): a batch of one
        t1 = target[None] if is_dask_array(target) else np.asarray(target)[None]
        g1 = grad_output
        if mode == "none":
            g1 = grad_output[None] if is_dask_array(grad_output) else np.asarray(
                grad_output)[None]
        return class_backward(name, g1, input[None], t1, w, None, ignore_index, None, mode,
                              label_smoothing)[0]
    split = len(input.chunks[1]) > 1
    x = input.rechunk({1: -1}) if split and plan.probabilities else input
    loss_chunks = x.chunks[:1] + x.chunks[2:]
    if plan.probabilities:
        t = _aligned(target, "target", input.chunks, shape).rechunk(x.chunks)
        divisor = shape[0] * math.prod(shape[2:])
    else:
        t = _aligned(target, "target", loss_chunks, plan.loss_shape)
        divisor = t.map_blocks(_target_weights, w, plan.classes, ignore_index, dtype=_F64,
                               meta=_meta(t.ndim, _F64)).sum()
        t = t[:, None]
    if mode == "none":
        g = _grad_none(grad_output, loss_chunks, plan.loss_shape)[:, None]
    else:
        g = _grad_factor(grad_output, mode, divisor if mode == "mean" else 1)
    if split and not plan.probabilities:  # the class axis split: the row's log-sum-exp
        lse = logsumexp(input, 1) if name == "cross_entropy" else None
        eps = plan.label_smoothing if name == "cross_entropy" else 0.0
        return da.map_blocks(_split_class_grad_block, x, t, lse, g, w, plan.classes,
                             ignore_index, eps, result, chunks=x.chunks, dtype=result,
                             meta=_meta(x.ndim, result))
    grad = da.map_blocks(_class_grad_block, g, x, t, w, name, ignore_index, label_smoothing,
                         not plan.probabilities, chunks=x.chunks, dtype=result,
                         meta=_meta(x.ndim, result))
    return grad.rechunk(input.chunks) if grad.chunks != input.chunks else grad


def class_with_grad(name, input, target, weight=None, size_average=None, ignore_index=-100,
                    reduce=None, reduction="mean", label_smoothing=0.0, out=None):
    """(lazy loss, lazy gradient) of cross_entropy / nll_loss."""
    _no_out(out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mode = P.reduction_plan(reduction, size_average, reduce).mode
    loss = class_loss(name, input, target, weight, size_average, ignore_index, reduce,
                      reduction, label_smoothing)
    return _with_grad(loss, mode == "none", lambda g: class_backward(
        name, g, input, target, weight, size_average, ignore_index, reduce, reduction,
        label_smoothing))


# ------------------------------------------------------------------ more losses
# gaussian_nll_loss, margin_ranking_loss (elementwise: every array broadcast to the
# loss's shape and chunked as the first input), multilabel_soft_margin_loss (a mean
# over the class axis: each class chunk's share, summed) and ctc_loss (blockwise over
# the batch). 'mean'/'sum': float64 sums of the blocks' losses, one division.
def _loss_operand(a, name, chunks, shape):
    """``a`` (a dask array, array_like or None) broadcast to ``shape`` and chunked as
    ``chunks``: a dask array of the loss's shape must have those chunks."""
    if a is None:
        return None
    if is_dask_array(a):
        if _known_shape(a, name) == tuple(shape):
            return _aligned(a, name, chunks, shape)
        return da.broadcast_to(a, shape).rechunk(chunks)
    arr = as_array(a, name)
    if arr.shape != tuple(shape):
        arr = np.broadcast_to(arr, shape)
    return da.from_array(arr, chunks=chunks)


def _lazy_shape(a, name):
    return _known_shape(a, name) if is_dask_array(a) else np.shape(a)


def _lazy_dtype(a, name):
    return np.dtype(a.dtype) if is_dask_array(a) else as_array(a, name).dtype


def _sum_back(grad, shape, result):
    """A lazy gradient of the broadcast shape summed (float64) back to ``shape``."""
    shape = tuple(shape)
    if tuple(grad.shape) == shape:
        return grad.astype(result)
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + i for i, n in enumerate(shape)
                                      if n == 1 and grad.shape[lead + i] != 1)
    return grad.sum(axis=axes, dtype=_F64).reshape(shape).astype(result)


def _loss_none_block(name, kw, *blocks):
    return getattr(nbops, name)(*blocks, reduction="none", **dict(kw))


def _loss_grad_block(name, kw, nout, g, *blocks):
    g = _factor(g)
    res = getattr(nbops, f"{name}_backward")(
        g, *blocks, reduction="sum" if isinstance(g, float) else "none", **dict(kw))
    if nout == 1:
        return res[0] if isinstance(res, tuple) else res
    return np.stack(res[:nout])


def _elementwise_loss(name, arrays, kw, mode, result, divisor):
    """The lazy loss of the in-memory ``name`` on aligned blocks of ``arrays``."""
    lead = arrays[0]
    none = da.map_blocks(_loss_none_block, name, kw, *arrays, dtype=result,
                         meta=_meta(lead.ndim, result))
    return none if mode == "none" else _reduce(none, mode, result, divisor)


def _elementwise_loss_backward(name, grad_output, arrays, kw, mode, result, divisor, nout):
    """The lazy gradients (``nout`` of them, of the loss's shape) of the in-memory
    ``name``'s backward on aligned blocks."""
    lead = arrays[0]
    if mode == "none":
        g = _grad_none(grad_output, lead.chunks, lead.shape)
        result = np.result_type(result, g.dtype)
    else:
        g = _grad_factor(grad_output, mode, divisor if mode == "mean" else 1)
    if nout == 1:
        return (da.map_blocks(_loss_grad_block, name, kw, 1, g, *arrays, chunks=lead.chunks,
                              dtype=result, meta=_meta(lead.ndim, result)),)
    both = da.map_blocks(_loss_grad_block, name, kw, nout, g, *arrays, new_axis=0,
                         chunks=((nout,),) + lead.chunks, dtype=result,
                         meta=_meta(lead.ndim + 1, result))
    return tuple(both[i] for i in range(nout))


def _gaussian_setup(input, target, var, full, eps, reduction):
    """PyTorch's checks of gaussian_nll_loss in its order; (arrays, kw, var shape or
    None, the shape var is broadcast from, loss shape, result dtype)."""
    xs = _known_shape(input)
    number = isinstance(var, (float, int)) and not isinstance(var, bool)
    if number:
        if var < 0:
            raise ValueError("var has negative entry/entries")
        var_shape = v_shape = None
    else:
        var_shape = v_shape = tuple(_lazy_shape(var, "var"))
        if not is_dask_array(var) and np.any(as_array(var, "var") < 0):
            raise ValueError("var has negative entry/entries")
        if v_shape != xs:
            if xs[:-1] == v_shape:  # homoscedastic: one variance per row
                v_shape = v_shape + (1,)
            elif not (len(xs) == len(v_shape)
                      and sum(b for a, b in zip(xs, v_shape, strict=True) if a != b) == 1):
                raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not valid")
    ts = tuple(_lazy_shape(target, "target"))
    others = [("target", _lazy_dtype(target, "target"))]
    if not number:
        others.append(("var", _lazy_dtype(var, "var")))
    for name, dt in [("input", np.dtype(input.dtype))] + others:
        result_dtype(dt, name)
    result = result_dtype(np.result_type(*[dt for _, dt in [("input", input.dtype)] + others]))[1]
    try:
        shape = np.broadcast_shapes(xs, ts, v_shape or ())
    except ValueError:
        raise ValueError(f"input of shape {xs}, target of shape {ts} and var of shape "
                         f"{v_shape} do not broadcast together") from None
    x = input if shape == xs else da.broadcast_to(input, shape)
    arrays = [x, _loss_operand(target, "target", x.chunks, shape)]
    kw = (("full", bool(full)), ("eps", float(eps)))
    if number:
        kw += (("var", float(var)),)
    else:
        v = var.reshape(v_shape) if is_dask_array(var) else as_array(var, "var").reshape(v_shape)
        arrays.append(_loss_operand(v, "var", x.chunks, shape))
    return arrays, kw, var_shape, v_shape, shape, result


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    arrays, kw, _, _, shape, result = _gaussian_setup(input, target, var, full, eps,
                                                      reduction)
    return _elementwise_loss("gaussian_nll_loss", arrays, kw, reduction, result,
                             math.prod(shape))


def gaussian_nll_loss_backward(grad_output, input, target, var, full=False, eps=1e-6,
                               reduction="mean"):
    """(grad_input, grad_var): the in-memory backward on aligned blocks; a broadcast
    ``var``'s gradient summed back (float64) to its shape."""
    arrays, kw, var_shape, v_shape, shape, result = _gaussian_setup(input, target, var, full,
                                                                    eps, reduction)
    grads = _elementwise_loss_backward("gaussian_nll_loss", grad_output, arrays, kw,
                                       reduction, result, math.prod(shape),
                                       1 if var_shape is None else 2)
    gx = _sum_back(grads[0], _known_shape(input), grads[0].dtype)
    if var_shape is None:
        return gx, None
    return gx, _sum_back(grads[1], v_shape, grads[1].dtype).reshape(var_shape)


def gaussian_nll_loss_with_grad(input, target, var, full=False, eps=1e-6, reduction="mean"):
    loss = gaussian_nll_loss(input, target, var, full, eps, reduction)
    return _with_grad(loss, reduction == "none", lambda g: gaussian_nll_loss_backward(
        g, input, target, var, full, eps, reduction))


def _margin_setup(input1, input2, target, margin, size_average, reduce, reduction):
    s1 = _known_shape(input1, "input1")
    s2 = tuple(_lazy_shape(input2, "input2"))
    st = tuple(_lazy_shape(target, "target"))
    if not len(s1) == len(s2) == len(st):
        raise ValueError("margin_ranking_loss : All input tensors should have same dimension "
                         f"but got sizes: input1: {s1}, input2: {s2}, target: {st}")
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=5).mode
    dts = [np.dtype(input1.dtype), _lazy_dtype(input2, "input2"), _lazy_dtype(target, "target")]
    for dt, name in zip(dts, ("input1", "input2", "target"), strict=True):
        result_dtype(dt, name)
    result = result_dtype(np.result_type(*dts))[1]
    try:
        shape = np.broadcast_shapes(s1, s2, st)
    except ValueError:
        raise ValueError(f"input1 of shape {s1}, input2 of shape {s2} and target of shape "
                         f"{st} do not broadcast together") from None
    x1 = input1 if shape == s1 else da.broadcast_to(input1, shape)
    arrays = [x1, _loss_operand(input2, "input2", x1.chunks, shape),
              _loss_operand(target, "target", x1.chunks, shape)]
    return arrays, (("margin", float(margin)),), mode, shape, s1, s2, result


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    arrays, kw, mode, shape, _, _, result = _margin_setup(input1, input2, target, margin,
                                                          size_average, reduce, reduction)
    return _elementwise_loss("margin_ranking_loss", arrays, kw, mode, result,
                             math.prod(shape))


def margin_ranking_loss_backward(grad_output, input1, input2, target, margin=0.0,
                                 size_average=None, reduce=None, reduction="mean"):
    arrays, kw, mode, shape, s1, s2, result = _margin_setup(input1, input2, target, margin,
                                                            size_average, reduce, reduction)
    g1, g2 = _elementwise_loss_backward("margin_ranking_loss", grad_output, arrays, kw, mode,
                                        result, math.prod(shape), 2)
    return _sum_back(g1, s1, g1.dtype), _sum_back(g2, s2, g2.dtype)


def margin_ranking_loss_with_grad(input1, input2, target, margin=0.0, size_average=None,
                                  reduce=None, reduction="mean"):
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # warned above
        loss = margin_ranking_loss(input1, input2, target, margin, size_average, reduce,
                                   reduction)
        return _with_grad(loss, mode == "none", lambda g: margin_ranking_loss_backward(
            g, input1, input2, target, margin, size_average, reduce, reduction))


def _multilabel_setup(input, target, weight, size_average, reduce, reduction):
    shape = _known_shape(input)
    if size_average is not None or reduce is not None:
        mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=5).mode
    elif reduction in ("none", "mean", "sum"):
        mode = reduction
    else:
        raise ValueError(f"{reduction} is not valid")
    if input.ndim == 0:
        raise ValueError("multilabel_soft_margin_loss: input must have a class axis (its "
                         "last), got a 0-d input")
    dts = [np.dtype(input.dtype), _lazy_dtype(target, "target")]
    names = ["input", "target"]
    if weight is not None:
        dts.append(_lazy_dtype(weight, "weight"))
        names.append("weight")
    for dt, name in zip(dts, names, strict=True):
        result_dtype(dt, name)
    result = result_dtype(np.result_type(*dts))[1]
    ops = []
    for a, name in ((target, "target"), (weight, "weight")):
        if a is not None and tuple(_lazy_shape(a, name)) != shape:
            try:
                ok = np.broadcast_shapes(tuple(_lazy_shape(a, name)), shape) == shape
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{name} of shape {tuple(_lazy_shape(a, name))} does not "
                                 f"broadcast to the input's shape {shape}")
        ops.append(_loss_operand(a, name, input.chunks, shape))
    return ops[0], ops[1], mode, shape, result


def _row_weight(x, w):
    """A block's elementwise weight; a single row's as a class vector (the in-memory
    loss reads a weight of the classes' size as one)."""
    return w.reshape(-1) if w is not None and w.size == x.shape[-1] else w


def _multilabel_block(x, t, w):
    return nbops.multilabel_soft_margin_loss(x, t, _row_weight(x, w), reduction="none")


def _multilabel_share(x, t, w, classes, result):
    """A class chunk's share of each row's loss, float64, with a class axis of 1."""
    loss = nbops.multilabel_soft_margin_loss(x, t, _row_weight(x, w), reduction="none")
    return (loss.astype(np.float64) * (x.shape[-1] / classes))[..., None]


def _multilabel_rows(input, t, w, result):
    """The lazy per-row losses (the input's shape without its class axis)."""
    nd, classes = input.ndim, input.shape[-1]
    if len(input.chunks[-1]) == 1:  # the class axis in one chunk: nbops on each block
        return da.map_blocks(_multilabel_block, input, t, w,
                             drop_axis=nd - 1, dtype=result, meta=_meta(nd - 1, result))
    shares = da.map_blocks(_multilabel_share, input, t, w, classes, result,
                           chunks=input.chunks[:-1] + ((1,) * len(input.chunks[-1]),),
                           dtype=_F64, meta=_meta(nd, _F64))
    return shares.sum(axis=-1).astype(result)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    """Class axis in one chunk: the in-memory loss on every block; split: each class
    chunk's mean scaled by its share of the classes, summed per row."""
    t, w, mode, shape, result = _multilabel_setup(input, target, weight, size_average, reduce,
                                                  reduction)
    rows = _multilabel_rows(input, t, w, result)
    return rows if mode == "none" else _reduce(rows, mode, result, math.prod(shape[:-1]))


def _multilabel_grad_block(g, x, t, w, classes):
    share = x.shape[-1] / classes
    g, w = _factor(g), _row_weight(x, w)
    if isinstance(g, float):
        return nbops.multilabel_soft_margin_loss_backward(g * share, x, t, w, reduction="sum")
    return nbops.multilabel_soft_margin_loss_backward(g[..., 0] * share, x, t, w,
                                                      reduction="none")


def multilabel_soft_margin_loss_backward(grad_output, input, target, weight=None,
                                         size_average=None, reduce=None, reduction="mean", *,
                                         out=None):
    _no_out(out)
    t, w, mode, shape, result = _multilabel_setup(input, target, weight, size_average, reduce,
                                                  reduction)
    if mode == "none":
        g = _grad_none(grad_output, input.chunks[:-1], shape[:-1])[..., None]
        result = np.result_type(result, g.dtype)
    else:
        g = _grad_factor(grad_output, mode, math.prod(shape[:-1]) if mode == "mean" else 1)
    return da.map_blocks(_multilabel_grad_block, g, input, t, w, shape[-1], chunks=input.chunks,
                         dtype=result, meta=_meta(input.ndim, result))


def multilabel_soft_margin_loss_with_grad(input, target, weight=None, size_average=None,
                                          reduce=None, reduction="mean"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        mode = _multilabel_setup(input, target, weight, size_average, reduce, reduction)[2]
        loss = multilabel_soft_margin_loss(input, target, weight, size_average, reduce,
                                           reduction)
        return _with_grad(loss, mode == "none", lambda g: multilabel_soft_margin_loss_backward(
            g, input, target, weight, size_average, reduce, reduction))


# ------------------------------------------------------------------ ctc_loss
def _ctc_setup(log_probs, targets, input_lengths, target_lengths, blank, reduction,
               zero_infinity):
    """Every check of the in-memory ctc_loss but the values of log_probs; (log_probs as
    (T, N, C), per-sample targets as a tuple of int64 arrays, input lengths, target
    lengths, blank, batched, result dtype)."""
    from ._ops import ctc

    shape = _known_shape(log_probs, "log_probs")
    _, result, batched, shape3 = ctc._check_log_probs(shape, log_probs.dtype)
    if is_dask_array(targets):
        raise TypeError("targets: pass a NumPy array (the targets and lengths of a dask "
                        "log_probs are small host arrays; use targets.compute())")
    flat, offsets, il, tl, blank = ctc._checked(shape3, batched, targets, input_lengths,
                                                target_lengths, blank, reduction,
                                                zero_infinity)
    lp = log_probs if batched else log_probs[:, None, :]
    for axis, what in ((0, "time"), (2, "class")):
        if len(lp.chunks[axis]) != 1:
            raise ValueError(f"log_probs: its {what} axis ({axis}) must be one chunk for "
                             f"ctc_loss on dask arrays (the recursion runs along time over "
                             f"all classes); rechunk it, e.g. log_probs.rechunk({{{axis}: -1}})")
    samples = tuple(flat[o:o + n] for o, n in zip(offsets.tolist(), tl.tolist(), strict=True))
    return lp, samples, il, tl, blank, batched, result


def _ctc_padded(samples, n0, n1, tl):
    """The padded (n, S) targets of samples n0:n1."""
    width = max(1, int(tl[n0:n1].max()) if n1 > n0 else 1)
    t = np.ones((n1 - n0, width), np.int64)
    for i in range(n0, n1):
        t[i - n0, :tl[i]] = samples[i]
    return t


def _ctc_block_args(samples, il, tl, location):
    n0, n1 = location[1]
    return _ctc_padded(samples, n0, n1, tl), il[n0:n1], tl[n0:n1]


def _ctc_nll_block(lp, samples, il, tl, blank, reduction, zero_infinity, block_info=None):
    """A batch chunk's float64 (the sum of its per-sample losses: divided by the
    target lengths for 'mean'), or its per-sample losses for 'none', shaped (n,)."""
    from ._ops import ctc

    t, il_b, tl_b = _ctc_block_args(samples, il, tl, block_info[0]["array-location"])
    lp3, flat, offsets, il_b, tl_b, blank, _, _, _ = ctc._plan(lp, t, il_b, tl_b, blank,
                                                               "none", zero_infinity)
    nll = ctc._losses(lp3, flat, offsets, il_b, tl_b, blank)
    if zero_infinity:
        nll = np.where(nll == np.inf, 0.0, nll)
    if reduction == "mean":
        with np.errstate(invalid="ignore"):
            nll = nll / np.maximum(tl_b, 1)
    return nll


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """Blockwise over the batch (the time and class axes must be one chunk each):
    each chunk's float64 per-sample losses, then 'mean'/'sum' as float64 sums."""
    lp, samples, il, tl, blank, batched, result = _ctc_setup(
        log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    nll = da.map_blocks(_ctc_nll_block, lp, samples, il, tl, blank, reduction,
                        bool(zero_infinity), drop_axis=(0, 2), chunks=(lp.chunks[1],),
                        dtype=_F64, meta=_meta(1, _F64))
    if reduction == "none":
        nll = nll.astype(result)
        return nll if batched else nll[0]
    return _reduce(nll, reduction, result, len(il))


def _ctc_grad_block(g, lp, samples, il, tl, blank, reduction, n, zero_infinity,
                    block_info=None):
    t, il_b, tl_b = _ctc_block_args(samples, il, tl, block_info[1]["array-location"])
    s = _factor(g)
    if isinstance(s, float):
        scale = np.full(len(il_b), s)
        if reduction == "mean":
            scale = s / np.maximum(tl_b, 1).astype(np.float64) / max(n, 1)
    else:
        scale = s.reshape(-1).astype(np.float64)
    return nbops.ctc_loss_backward(scale, lp, t, il_b, tl_b, blank, "none", zero_infinity)


def ctc_loss_backward(grad_output, log_probs, targets, input_lengths, target_lengths, blank=0,
                      reduction="mean", zero_infinity=False, *, out=None):
    """The in-memory backward on each batch chunk with each sample's factor of
    ``grad_output`` (reduction='none' with the per-sample scales)."""
    _no_out(out)
    lp, samples, il, tl, blank, batched, result = _ctc_setup(
        log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    if reduction == "none":
        g = grad_output
        if not batched:
            g = g.reshape((1,)) if is_dask_array(g) else np.reshape(as_array(g, "grad_output"),
                                                                     (1,))
        g = _grad_none(g, (lp.chunks[1],), (lp.shape[1],))[None, :, None]
    else:
        g = _grad_factor(grad_output, reduction)
    grad = da.map_blocks(_ctc_grad_block, g, lp, samples, il, tl, blank, reduction, len(il),
                         bool(zero_infinity), chunks=lp.chunks, dtype=result,
                         meta=_meta(3, result))
    return grad if batched else grad[:, 0, :]


def ctc_loss_with_grad(log_probs, targets, input_lengths, target_lengths, blank=0,
                       reduction="mean", zero_infinity=False, *, out=None):
    _no_out(out)
    loss = ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                    zero_infinity)
    if reduction == "none":
        ones = da.ones(loss.shape, dtype=loss.dtype, chunks=loss.chunks)
        return loss, ctc_loss_backward(ones, log_probs, targets, input_lengths, target_lengths,
                                       blank, reduction, zero_infinity)
    return loss, ctc_loss_backward(1.0, log_probs, targets, input_lengths, target_lengths,
                                   blank, reduction, zero_infinity)


# ------------------------------------------------------------------ layer_norm, rms_norm,
# group_norm, instance_norm: the in-memory op on every block when each block holds
# whole rows (groups); otherwise each block's float64 (count, mean, M2) per row
# merged exactly (Chan et al.'s formula; rms_norm: float64 sums of squares), then a
# blockwise float64 finish. Backwards: the in-memory backward on whole rows, else
# each block's float64 row sums of ``g w`` and ``g w (x - mean)``, summed by dask,
# then a blockwise finish; grad_weight and grad_bias are dask's float64 sums over
# the rows.
def _moments_merge(parts, axes):
    """Chan et al.'s exact merge of (count, mean, M2) partials over ``axes`` (kept)."""
    n, mean, m2 = parts[..., 0], parts[..., 1], parts[..., 2]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        total = n.sum(axis=axes, keepdims=True)
        mu = (n * mean).sum(axis=axes, keepdims=True) / total
        dev = np.where(n > 0, n * (mean - mu) ** 2, 0.0)
        m2 = m2.sum(axis=axes, keepdims=True) + dev.sum(axis=axes, keepdims=True)
    return np.stack([total, mu, m2], axis=-1)


def _trailing_slice(block_info, k):
    """The block's slice of the trailing ``k`` axes (where weight and bias lie)."""
    loc = block_info[0]["array-location"]
    return tuple(slice(a, b) for a, b in loc[len(loc) - k:])


def _affine64(v, sl, compute):
    """A weight/bias (rounded to the compute dtype, as in memory) sliced, as float64."""
    return None if v is None else v[sl].astype(compute).astype(np.float64)


def _ln_block(x, ns, w, b, eps, rms):
    if rms:
        return nbops.rms_norm(x, ns, w, eps)
    return nbops.layer_norm(x, ns, w, b, eps)


def _ln_stat_block(x, ns, w, b, eps, rms, index):
    if rms:
        return nbops.rms_norm(x, ns, w, eps, return_stats=True)[index]
    return nbops.layer_norm(x, ns, w, b, eps, return_stats=True)[index]


def _row_stats_partial(x, k, centered):
    """A block's float64 (count, mean, M2) (``centered``; else (count, 0, sum of
    squares)) of its pieces of the rows (the last ``k`` axes), on a new last axis."""
    from ._ops.split_rows import row_moments, run

    x2 = _rows2d(_kernel_input(x), k)
    rows, n = x2.shape
    parts = np.zeros((rows, 3))
    if x2.size:
        flat, stride = _flat_rows(x2)
        run(row_moments, flat, stride, rows, n, bool(centered), parts)
    return parts.reshape(x.shape[:x.ndim - k] + (1,) * k + (3,))


def _sum_merge(parts, axes):
    """Merge (count, 0, sum of squares) partials over ``axes`` (kept): sums."""
    return parts.sum(axis=axes, keepdims=True)


def _row_stats(x, k, centered):
    """Lazy float64 (count, mean, M2) (``centered``; else (count, 0, sum of squares))
    of the rows of ``x`` (its last ``k`` axes, kept as size 1) on a new last axis of
    3: nbops/_ops/split_rows.py's kernel on every block, then the pieces merged."""
    nd = x.ndim
    axes = tuple(range(nd - k, nd))
    chunks = tuple((1,) * len(c) if i in axes else c for i, c in enumerate(x.chunks))
    parts = x.map_blocks(_row_stats_partial, k, centered, chunks=chunks + ((3,),),
                         new_axis=nd, dtype=_F64, meta=_meta(nd + 1, _F64))
    merged = tuple((1,) if i in axes else c for i, c in enumerate(x.chunks))
    return parts.rechunk({a: -1 for a in axes}).map_blocks(
        _moments_merge if centered else _sum_merge, axes, chunks=merged + ((3,),),
        dtype=_F64, meta=_meta(nd + 1, _F64))


def _ln_finish(x, mean, rstd, w, b, k, compute, result, centered, block_info=None):
    """layer_norm's (rms_norm's) finish of a block with the rows' float64 statistics:
    nbops/_ops/split_rows.py's kernel, the in-memory kernel's arithmetic."""
    from ._ops.split_rows import rows_finish, run

    if x.size == 0:
        return np.empty(x.shape, result)
    sl = _trailing_slice(block_info, k)
    x2 = _rows2d(_kernel_input(x, compute), k)
    piece = x2.shape[1]
    wv = (np.ones(piece, compute) if w is None
          else np.ascontiguousarray(w[sl], dtype=compute).reshape(-1))
    bv = (np.zeros(piece, compute) if b is None
          else np.ascontiguousarray(b[sl], dtype=compute).reshape(-1))
    flat, stride = _flat_rows(x2)
    out = np.empty(x2.shape, compute)
    run(rows_finish, flat, stride, out.reshape(-1), piece, x2.shape[0], piece,
        np.ascontiguousarray(mean, np.float64).reshape(-1),
        np.ascontiguousarray(rstd, np.float64).reshape(-1), wv, bv, bool(centered))
    return out.reshape(x.shape).astype(result, copy=False)


def _ln_param(v, name, ns):
    if v is None:
        return None
    a = _host(v, name)
    result_dtype(a.dtype, name)
    if a.shape != tuple(ns):
        raise ValueError(f"{name} must have shape {tuple(ns)} (normalized_shape), got {a.shape}")
    return a


def _rows_forward(name, input, normalized_shape, weight, bias, eps, return_stats):
    from ._ops.layer_norm import _rows_plan

    rms = name == "rms_norm"
    shape = _known_shape(input)
    compute, result = result_dtype(input.dtype)
    ns, _, length = _rows_plan(shape, normalized_shape)
    w = _ln_param(weight, "weight", ns)
    b = None if rms else _ln_param(bias, "bias", ns)
    k, nd = len(ns), input.ndim
    axes = tuple(range(nd - k, nd))
    stat_chunks = input.chunks[:nd - k] + ((1,),) * k
    if all(len(input.chunks[a]) == 1 for a in axes):  # whole rows: nbops on each block
        y = input.map_blocks(_ln_block, ns, w, b, eps, rms, dtype=result,
                             meta=_meta(nd, result))
        if not return_stats:
            return y
        stats = tuple(input.map_blocks(_ln_stat_block, ns, w, b, eps, rms, i,
                                       chunks=stat_chunks, dtype=result, meta=_meta(nd, result))
                      for i in ((1,) if rms else (1, 2)))
        return (y,) + stats
    m = _row_stats(input, k, not rms)
    if rms:
        mean = None
        rstd = 1.0 / da.sqrt(m[..., 2] / length + eps)
    else:
        mean = m[..., 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            rstd = 1.0 / da.sqrt(m[..., 2] / m[..., 0] + eps)
    y = da.map_blocks(_ln_finish, input, rstd if rms else mean, rstd, w, b, k, compute, result,
                      not rms, dtype=result, meta=_meta(nd, result))
    if not return_stats:
        return y
    if rms:
        return y, rstd.astype(result)
    return y, mean.astype(result), rstd.astype(result)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, *, out=None,
               return_stats=False):
    _no_out(out)
    return _rows_forward("layer_norm", input, normalized_shape, weight, bias, float(eps),
                         return_stats)


def rms_norm(input, normalized_shape, weight=None, eps=None, *, out=None, return_stats=False):
    from ._ops.layer_norm import _rms_eps

    _no_out(out)
    return _rows_forward("rms_norm", input, normalized_shape, weight, None,
                         _rms_eps(np.dtype(input.dtype), eps), return_stats)


def _saved_stat(v, name, lead, k, chunks):
    """A saved per-row statistic (NumPy or dask; ``lead + (1,) * k`` or ``lead``) as a
    lazy float64 array of shape ``lead + (1,) * k`` chunked as ``chunks``."""
    full = tuple(lead) + (1,) * k
    shape = tuple(_lazy_shape(v, name))
    dt = _lazy_dtype(v, name)
    if dt.kind not in "fiu":
        raise TypeError(f"{name}: expected a float array, got dtype {dt}")
    if shape not in (full, tuple(lead)):
        raise ValueError(f"{name} must have shape {full} (the input's leading dimensions, "
                         f"then ones: as the forward's return_stats), got {shape}")
    if is_dask_array(v):
        return v.astype(_F64).reshape(full).rechunk(chunks)
    return da.from_array(as_array(v, name).astype(np.float64).reshape(full), chunks=chunks)


def _ln_grad_block(g, x, mean, rstd, ns, w, rms):
    if rms:
        return nbops.rms_norm_backward(g, x, ns, rstd, w)[0]
    return nbops.layer_norm_backward(g, x, ns, mean, rstd, w)[0]


def _ln_grad_partial(g, x, mean, w, k, compute, block_info=None):
    """A block's float64 row sums of ``g w`` and ``g w (x - mean)``, on a new last axis."""
    axes = tuple(range(x.ndim - k, x.ndim))
    gw = g.astype(np.float64)
    if w is not None:
        gw = gw * _affine64(w, _trailing_slice(block_info, k), compute)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.stack([gw.sum(axis=axes, keepdims=True),
                         (gw * (x.astype(np.float64) - mean)).sum(axis=axes, keepdims=True)],
                        axis=-1)


def _ln_grad_finish(g, x, mean, rstd, a, c, w, k, length, compute, result, block_info=None):
    gw = g.astype(np.float64)
    if w is not None:
        gw = gw * _affine64(w, _trailing_slice(block_info, k), compute)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        res = rstd * (gw - a / length - (x.astype(np.float64) - mean) * rstd * rstd * c / length)
    return res.astype(result)


def _rows_backward(name, grad_output, input, normalized_shape, mean, rstd, weight, has_bias):
    from ._ops.layer_norm import _rows_plan

    rms = name == "rms_norm"
    g, x = _pair(grad_output, "grad_output", input, "input")
    shape = _known_shape(x, "input")
    compute, result = result_dtype(np.result_type(g.dtype, result_dtype(x.dtype)[1]))
    ns, _, length = _rows_plan(shape, normalized_shape)
    k, nd = len(ns), x.ndim
    lead = shape[:nd - k]
    axes = tuple(range(nd - k, nd))
    stat_chunks = x.chunks[:nd - k] + ((1,),) * k
    m = da.zeros(lead + (1,) * k, chunks=stat_chunks) if rms else _saved_stat(
        mean, "mean", lead, k, stat_chunks)
    r = _saved_stat(rstd, "rstd", lead, k, stat_chunks)
    w = _ln_param(weight, "weight", ns)
    if all(len(x.chunks[i]) == 1 for i in axes):  # whole rows: nbops on each block
        gi = da.map_blocks(_ln_grad_block, g, x, m, r, ns, w, rms, dtype=result,
                           meta=_meta(nd, result))
    else:
        sums = da.map_blocks(_ln_grad_partial, g, x, m, w, k, compute,
                             chunks=tuple((1,) * len(c) if i in axes else c
                                          for i, c in enumerate(x.chunks)) + ((2,),),
                             new_axis=nd, dtype=_F64, meta=_meta(nd + 1, _F64))
        sums = sums.sum(axis=axes, keepdims=True)
        a = da.zeros_like(sums[..., 0]) if rms else sums[..., 0]
        gi = da.map_blocks(_ln_grad_finish, g, x, m, r, a, sums[..., 1], w, k, length, compute,
                           result, dtype=result, meta=_meta(nd, result))
    lead_axes = tuple(range(nd - k))
    grad_w = grad_b = None
    if w is not None:
        with np.errstate(invalid="ignore"):
            grad_w = (g.astype(_F64) * (x.astype(compute).astype(_F64) - m) * r).sum(
                axis=lead_axes).astype(result)
    if has_bias:
        grad_b = g.astype(_F64).sum(axis=lead_axes).astype(result)
    return gi, grad_w, grad_b


def layer_norm_backward(grad_output, input, normalized_shape, mean, rstd, weight=None, *,
                        has_bias=None, out=None):
    _no_out(out)
    if mean is None:
        raise TypeError("mean must be an array (the forward's return_stats), got None")
    has_bias = weight is not None if has_bias is None else bool(has_bias)
    return _rows_backward("layer_norm", grad_output, input, normalized_shape, mean, rstd,
                          weight, has_bias)


def rms_norm_backward(grad_output, input, normalized_shape, rstd, weight=None, *, out=None):
    _no_out(out)
    gi, gw, _ = _rows_backward("rms_norm", grad_output, input, normalized_shape, None, rstd,
                               weight, False)
    return gi, gw


# group_norm / instance_norm: statistics per (sample, group): each block's
# per-(sample, channel) moments over its positions, merged over the positions, then
# over a group's channels (a small (N, C) array), spread back to the channels.
def _gn_param(v, name, channels):
    if v is None:
        return None
    a = _host(v, name)
    result_dtype(a.dtype, name)
    if a.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) (the input's channels), got "
                         f"{a.shape}")
    return a


def _group_merge(parts, groups):
    """Per-(sample, channel) (count, mean, M2) of a block of samples (all channels)
    merged over each group's channels: (mean, var) of the group on every channel."""
    n, c = parts.shape[0], parts.shape[1]
    p = parts.reshape(n, groups, c // groups, 3)
    merged = _moments_merge(p, (2,))[:, :, 0, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        mv = np.stack([merged[..., 1], merged[..., 2] / merged[..., 0]], axis=-1)
    return np.repeat(mv, c // groups, axis=1).reshape(parts.shape[:-1] + (2,))


def _group_stats(x, groups):
    """Lazy float64 (mean, var) of each (sample, group), on each channel: two arrays
    of shape (N, C, 1, ...) chunked as ``x`` along N and C. Each block's
    (count, mean, M2) per (sample, channel) comes from nbops/_ops/split_rows.py's
    ``row_moments`` (as layer_norm's split rows), merged exactly over the
    positions, then over each group's channels."""
    nd = x.ndim
    m = _row_stats(x, nd - 2, True)  # per (sample, channel), over the positions
    chunks = (x.chunks[0], (x.shape[1],)) + ((1,),) * (nd - 2) + ((2,),)
    mv = m.rechunk({1: -1}).map_blocks(_group_merge, groups, chunks=chunks, dtype=_F64,
                                       meta=_meta(nd + 1, _F64))
    mv = mv.rechunk({1: x.chunks[1]})
    return mv[..., 0], mv[..., 1]


def _gn_block(x, groups, w, b, eps):
    return nbops.group_norm(x, groups, w, b, eps)


def _gn_stat_block(x, groups, w, b, eps, index):
    return nbops.group_norm(x, groups, w, b, eps, return_stats=True)[index]


def _channel_slice(block_info):
    c0, c1 = block_info[0]["array-location"][1]
    return slice(c0, c1)


def _channel64(v, sl, nd, compute):
    if v is None:
        return None
    return v[sl].astype(compute).astype(np.float64).reshape((1, -1) + (1,) * (nd - 2))


def _gn_finish(x, mean, var, w, b, eps, compute, result, block_info=None):
    """group_norm's finish of a block from its (sample, channel)s' float64 ``mean``
    and ``var`` (shape (n, c, 1, ...)): nbops/_ops/split_rows.py's kernel, the
    in-memory kernel's arithmetic in the ``compute`` dtype."""
    from ._ops.split_rows import rows_group_finish, run

    if x.size == 0:
        return np.empty(x.shape, result)
    sl = _channel_slice(block_info)
    n, c = x.shape[:2]
    x2 = _rows2d(_kernel_input(x, compute), x.ndim - 2)
    flat, stride = _flat_rows(x2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rstd = 1.0 / np.sqrt(np.asarray(var, np.float64).reshape(-1) + eps)
    wv = np.tile(np.ones(c, compute) if w is None else w[sl].astype(compute), n)
    bv = np.tile(np.zeros(c, compute) if b is None else b[sl].astype(compute), n)
    res = np.empty(x2.shape, compute)
    run(rows_group_finish, flat, stride, res.reshape(-1), x2.shape[1], x2.shape[0],
        x2.shape[1], np.ascontiguousarray(mean, np.float64).reshape(-1), rstd, wv, bv)
    return res.reshape(x.shape).astype(result, copy=False)


def _per_group(v, groups):
    """(N, C, 1, ...) per-channel copies of a group statistic -> lazy (N, groups)."""
    c = v.shape[1]
    first = v[:, ::c // groups] if c else v
    return first.reshape(v.shape[:1] + (groups,))


def _groups_forward(input, groups, w, b, eps, return_stats, update=None):
    nd = input.ndim
    compute, result = result_dtype(input.dtype)
    whole = len(input.chunks[1]) == 1 and all(len(c) == 1 for c in input.chunks[2:])
    if whole and update is None:  # whole groups: nbops on each block
        y = input.map_blocks(_gn_block, groups, w, b, eps, dtype=result, meta=_meta(nd, result))
        if not return_stats:
            return y
        stats = tuple(input.map_blocks(_gn_stat_block, groups, w, b, eps, i, drop_axis=tuple(
            range(2, nd)), chunks=(input.chunks[0], (groups,)), dtype=result,
            meta=_meta(2, result)) for i in (1, 2))
        return (y,) + stats
    mean, var = _group_stats(input, groups)
    if update is not None:
        mean, var = update(mean, var)
    y = da.map_blocks(_gn_finish, input, mean, var, w, b, eps, compute, result, dtype=result,
                      meta=_meta(nd, result))
    if not return_stats:
        return y
    with np.errstate(invalid="ignore", divide="ignore"):
        rstd = 1.0 / da.sqrt(var + eps)
    return (y, _per_group(mean, groups).astype(result),
            _per_group(rstd, groups).astype(result))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, *, out=None,
               return_stats=False):
    from ._ops.group_norm import _groups_plan

    _no_out(out)
    shape = _known_shape(input)
    result_dtype(input.dtype)
    _, c, _, groups = _groups_plan(shape, num_groups)
    w, b = _gn_param(weight, "weight", c), _gn_param(bias, "bias", c)
    return _groups_forward(input, groups, w, b, float(eps), return_stats)


def _in_update(mean, var, running_mean, running_var, eps, n, inner, momentum):
    """Write the running statistics (the in-memory rule, from all samples' statistics
    of these channels); pass the statistics through."""
    from ._ops.group_norm import _update_running

    c = mean.shape[1]
    m = np.ascontiguousarray(mean.reshape(n, c)).reshape(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (1.0 / np.sqrt(var.reshape(n, c) + eps)).reshape(-1)
    rm = np.zeros(c) if running_mean is None else running_mean.astype(np.float64)
    rv = np.ones(c) if running_var is None else running_var.astype(np.float64)
    _update_running(m, r, eps, n, inner, momentum, rm, rv)
    if running_mean is not None:
        running_mean[...] = rm
    if running_var is not None:
        running_var[...] = rv
    return np.stack([mean, var], axis=-1)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5, *, out=None,
                  return_stats=False):
    """group_norm with a group per channel; the running statistics are updated in
    place when the result is computed (the local schedulers), as batch_norm's."""
    _no_out(out)
    shape = _known_shape(input)
    if input.ndim < 2:
        raise ValueError(f"Expected at least 2 dimensions for input tensor but received "
                         f"{input.ndim}")
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("Expected running_mean and running_var to be defined when "
                             "use_input_stats is false")
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps,
                          return_stats=return_stats)
    n, c = shape[0], shape[1]
    inner = math.prod(shape[2:])
    if inner <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input "
                         f"size {list(shape)}")
    for r, name in ((running_mean, "running_mean"), (running_var, "running_var")):
        if r is not None:
            if not isinstance(r, np.ndarray) or r.shape != (c,) or r.dtype.kind != "f":
                raise ValueError(f"{name} must be a float ndarray of shape ({c},) (updated "
                                 "in place), got "
                                 f"{getattr(r, 'shape', type(r).__name__)}")
            if not r.flags.writeable:
                raise ValueError(f"{name} must be writeable (it is updated in place)")
    result_dtype(input.dtype)
    w, b = _gn_param(weight, "weight", c), _gn_param(bias, "bias", c)
    update = None
    if n and (running_mean is not None or running_var is not None):
        def update(mean, var):
            chunks = mean.chunks
            both = da.map_blocks(
                _in_update, mean.rechunk({0: -1, 1: -1}), var.rechunk({0: -1, 1: -1}),
                running_mean, running_var, float(eps), n, inner, float(momentum),
                new_axis=mean.ndim, chunks=((n,), (c,)) + mean.chunks[2:] + ((2,),),
                dtype=_F64, meta=_meta(mean.ndim + 1, _F64))
            return both[..., 0].rechunk(chunks), both[..., 1].rechunk(chunks)
    return _groups_forward(input, c, w, b, float(eps), return_stats, update)


def _gn_grad_block(g, x, mean, rstd, groups, w):
    return nbops.group_norm_backward(g, x, groups, _per_group_np(mean, groups),
                                     _per_group_np(rstd, groups), w)[0]


def _per_group_np(v, groups):
    c = v.shape[1]
    return (v[:, ::c // groups] if c else v).reshape(v.shape[0], groups)


def _gn_grad_partial(g, x, mean, w, compute, block_info=None):
    """A block's float64 per-(sample, channel) sums of ``g w`` and ``g w (x - mean)``."""
    axes = tuple(range(2, x.ndim))
    gw = g.astype(np.float64)
    if w is not None:
        gw = gw * _channel64(w, _channel_slice(block_info), x.ndim, compute)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.stack([gw.sum(axis=axes, keepdims=True),
                         (gw * (x.astype(np.float64) - mean)).sum(axis=axes, keepdims=True)],
                        axis=-1)


def _group_sum(parts, groups):
    """Per-(sample, channel) sums added over each group's channels, on every channel."""
    n, c = parts.shape[0], parts.shape[1]
    s = parts.reshape(n, groups, c // groups, -1).sum(axis=2, keepdims=True)
    return np.repeat(s, c // groups, axis=2).reshape(parts.shape)


def _gn_grad_finish(g, x, mean, rstd, a, k, w, length, compute, result, block_info=None):
    gw = g.astype(np.float64)
    if w is not None:
        gw = gw * _channel64(w, _channel_slice(block_info), x.ndim, compute)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        res = rstd * (gw - a / length - (x.astype(np.float64) - mean) * rstd * rstd * k / length)
    return res.astype(result)


def _group_stat_arg(v, name, n, groups, c, x):
    """A saved (N, groups) statistic (NumPy or dask) as lazy float64 (N, C, 1, ...)
    per-channel copies chunked as ``x``."""
    shape = tuple(_lazy_shape(v, name))
    dt = _lazy_dtype(v, name)
    if dt.kind not in "fiu":
        raise TypeError(f"{name}: expected a float array, got dtype {dt}")
    if shape != (n, groups):
        raise ValueError(f"{name} must have shape {(n, groups)} (samples, groups: as the "
                         f"forward's return_stats), got {shape}")
    v = v.astype(_F64) if is_dask_array(v) else da.from_array(as_array(v, name).astype(
        np.float64))
    per = c // groups if groups else 0
    full = da.repeat(v.rechunk({1: -1}), per, axis=1) if per else v
    full = full.reshape((n, c) + (1,) * (x.ndim - 2))
    return full.rechunk((x.chunks[0], x.chunks[1]) + ((1,),) * (x.ndim - 2))


def group_norm_backward(grad_output, input, num_groups, mean, rstd, weight=None, *,
                        has_bias=None, out=None):
    from ._ops.group_norm import _groups_plan

    _no_out(out)
    has_bias = weight is not None if has_bias is None else bool(has_bias)
    if mean is None:
        raise TypeError("mean must be an array (the forward's return_stats), got None")
    g, x = _pair(grad_output, "grad_output", input, "input")
    shape = _known_shape(x, "input")
    compute, result = result_dtype(np.result_type(g.dtype, result_dtype(x.dtype)[1]))
    n, c, inner, groups = _groups_plan(shape, num_groups)
    m = _group_stat_arg(mean, "mean", n, groups, c, x)
    r = _group_stat_arg(rstd, "rstd", n, groups, c, x)
    w = _gn_param(weight, "weight", c)
    nd = x.ndim
    if len(x.chunks[1]) == 1 and all(len(ch) == 1 for ch in x.chunks[2:]):
        gi = da.map_blocks(_gn_grad_block, g, x, m, r, groups, w, dtype=result,
                           meta=_meta(nd, result))
    else:
        chunks = (x.chunks[0], x.chunks[1]) + tuple((1,) * len(ch) for ch in x.chunks[2:])
        parts = da.map_blocks(_gn_grad_partial, g, x, m, w, compute, new_axis=nd,
                              chunks=chunks + ((2,),), dtype=_F64, meta=_meta(nd + 1, _F64))
        parts = parts.sum(axis=tuple(range(2, nd)), keepdims=True)
        sums = parts.rechunk({1: -1}).map_blocks(_group_sum, groups, dtype=_F64,
                                                 meta=_meta(nd + 1, _F64))
        sums = sums.rechunk({1: x.chunks[1]})
        gi = da.map_blocks(_gn_grad_finish, g, x, m, r, sums[..., 0], sums[..., 1], w,
                           c // groups * inner, compute, result, dtype=result,
                           meta=_meta(nd, result))
    axes = (0,) + tuple(range(2, nd))
    grad_w = grad_b = None
    if w is not None:
        with np.errstate(invalid="ignore"):
            grad_w = (g.astype(_F64) * (x.astype(compute).astype(_F64) - m) * r).sum(
                axis=axes).astype(result)
    if has_bias:
        grad_b = g.astype(_F64).sum(axis=axes).astype(result)
    return gi, grad_w, grad_b


def instance_norm_backward(grad_output, input, mean, rstd, weight=None, use_input_stats=True,
                           *, has_bias=None, out=None):
    _no_out(out)
    x = input
    if not use_input_stats:
        return batch_norm_backward(grad_output, x, mean, rstd, weight, False,
                                   has_bias=has_bias)
    if x.ndim < 2:
        raise ValueError(f"Expected at least 2 dimensions for input tensor but received "
                         f"{x.ndim}")
    return group_norm_backward(grad_output, x, x.shape[1], mean, rstd, weight,
                               has_bias=has_bias)


# ------------------------------------------------------------------ normalize,
# cosine_similarity: the in-memory op on every block when the axis is one chunk;
# otherwise each chunk's float64 partial sums along the axis (p-norm accumulators;
# squared norms and the dot product), summed by dask, then a blockwise finish.
def _sgn(v):
    return np.where(v > 0, 1.0, np.where(v < 0, -1.0, 0.0))


def _pnorm_partial(x, axis, p):
    """A block's float64 p-norm accumulator along ``axis`` (kept)."""
    if axis == x.ndim - 1:  # the last axis: nbops/_ops/split_rows.py's kernel
        from ._ops.split_rows import row_pnorm, run

        x2 = _rows2d(_kernel_input(x))
        rows, n = x2.shape
        acc = np.zeros(rows)
        if x2.size:
            flat, stride = _flat_rows(x2)
            run(row_pnorm, flat, stride, rows, n, float(p), acc)
        return acc.reshape(x.shape[:-1] + (1,))
    a = np.abs(x.astype(np.float64))
    with np.errstate(invalid="ignore", over="ignore"):
        if p == math.inf:
            if x.shape[axis] == 0:
                return np.zeros(tuple(1 if i == axis else s for i, s in enumerate(x.shape)))
            return np.max(a, axis=axis, keepdims=True)
        if p == 0:
            return np.sum(a != 0, axis=axis, keepdims=True).astype(np.float64)
        if p == 1:
            return np.sum(a, axis=axis, keepdims=True)
        if p == 2:
            return np.sum(a * a, axis=axis, keepdims=True)
        return np.sum(a ** p, axis=axis, keepdims=True)


def _pnorm(x, axis, p):
    """Lazy float64 p-norm of ``x`` along ``axis`` (kept, of size 1)."""
    chunks = list(x.chunks)
    chunks[axis] = (1,) * len(x.chunks[axis])
    parts = x.map_blocks(_pnorm_partial, axis, p, chunks=tuple(chunks), dtype=_F64,
                         meta=_meta(x.ndim, _F64))
    if p == math.inf:
        return parts.max(axis=axis, keepdims=True)
    acc = parts.sum(axis=axis, keepdims=True)
    if p == 2:
        return da.sqrt(acc)
    if p in (0, 1):
        return acc
    return acc ** (1.0 / p)


def _normalize_block(x, p, axis, eps):
    return nbops.normalize(x, p, axis, eps)


def _normalize_finish(x, norm, eps, result, axis):
    if axis == x.ndim - 1 and x.size:  # nbops/_ops/split_rows.py's kernel
        from ._ops.split_rows import rows_divide, run

        out = np.empty(x.shape, _kernel_output(result))
        den = np.ascontiguousarray(np.where(norm < eps, eps, norm), np.float64).reshape(-1)
        x2 = _rows2d(_kernel_input(x))
        flat, stride = _flat_rows(x2)
        rows, n = x2.shape
        run(rows_divide, flat, stride, out.reshape(-1), n, rows, n, den)
        return out.astype(result, copy=False)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return (x.astype(np.float64) / np.where(norm < eps, eps, norm)).astype(result)


def _sim_axis(axis, ndim, op):
    from ._ops.similarity import _axis

    return _axis(axis, ndim, op)


def _normalize_setup(input, p, axis, eps, op):
    from ._ops.similarity import _float_param

    _known_shape(input)
    compute, result = result_dtype(input.dtype, "input")
    axis = _sim_axis(axis, input.ndim, op)
    p = _float_param(p, "p", op)
    eps = _float_param(eps, "eps", op)
    if p < 0 or p == -math.inf:
        raise ValueError(f"{op}: p must be >= 0 (or inf), got {p}")
    return compute, result, axis, p, eps


def normalize(input, p=2.0, axis=1, eps=1e-12, *, out=None):
    _no_out(out)
    _, result, axis, p, eps = _normalize_setup(input, p, axis, eps, "normalize")
    if len(input.chunks[axis]) == 1:
        return input.map_blocks(_normalize_block, p, axis, eps, dtype=result,
                                meta=_meta(input.ndim, result))
    return da.map_blocks(_normalize_finish, input, _pnorm(input, axis, p), eps, result, axis,
                         dtype=result, meta=_meta(input.ndim, result))


def _normalize_grad_block(g, x, p, axis, eps):
    return nbops.normalize_backward(g, x, p, axis, eps)


def _gx_partial(g, x, axis):
    with np.errstate(invalid="ignore", over="ignore"):
        return np.sum(g.astype(np.float64) * x.astype(np.float64), axis=axis, keepdims=True)


def _extreme_partial(x, norm, axis):
    a = np.abs(x.astype(np.float64))
    return np.sum((a == norm) | (a != a), axis=axis, keepdims=True).astype(np.float64)


def _pnorm_grad(v, n, gn, p, count):
    """numpy's form of nbops.scalar._norms.pnorm_backward (float64)."""
    s = _sgn(v)
    a = np.abs(v)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if p == 2:
            return np.where(n == 0, 0.0, v / n * gn)
        if p == 1:
            return s * gn
        if p == 0:
            return np.zeros_like(v)
        if p == math.inf:
            return np.where((a == n) | (a != a), s * (gn / count), s * (gn / count * 0.0))
        if p < 1:
            scaled = np.where(v == 0, 0.0, s * a ** (p - 1.0))
            return scaled * gn * n ** (1.0 - p)
        scale = np.where(n == 0, 0.0, gn / n ** (p - 1.0))
        if p < 2:
            return s * a ** (p - 1.0) * scale
        return v * a ** (p - 2.0) * scale


def _normalize_grad_finish(g, x, norm, gx, count, p, eps, result):
    v = x.astype(np.float64)
    g64 = g.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        c = np.where(norm < eps, eps, norm)
        gn = np.where(norm >= eps, -gx / (c * c), 0.0)
        extra = np.where(gn != 0, _pnorm_grad(v, norm, gn, p, count), 0.0)
        return (g64 / c + extra).astype(result)


def normalize_backward(grad_output, input, p=2.0, axis=1, eps=1e-12, *, out=None):
    _no_out(out)
    g, x = _pair(grad_output, "grad_output", input, "input")
    compute, result, axis, p, eps = _normalize_setup(x, p, axis, eps, "normalize_backward")
    result_dtype(np.result_type(g.dtype, compute), "grad_output")
    if len(x.chunks[axis]) == 1:
        return da.map_blocks(_normalize_grad_block, g, x, p, axis, eps, dtype=result,
                             meta=_meta(x.ndim, result))
    norm = _pnorm(x, axis, p)
    chunks = list(x.chunks)
    chunks[axis] = (1,) * len(x.chunks[axis])
    gx = da.map_blocks(_gx_partial, g, x, axis, chunks=tuple(chunks), dtype=_F64,
                       meta=_meta(x.ndim, _F64)).sum(axis=axis, keepdims=True)
    count = 1.0
    if p == math.inf:
        count = da.map_blocks(_extreme_partial, x, norm, axis, chunks=tuple(chunks),
                              dtype=_F64, meta=_meta(x.ndim, _F64)).sum(axis=axis,
                                                                       keepdims=True)
    return da.map_blocks(_normalize_grad_finish, g, x, norm, gx, count, p, eps, result,
                         dtype=result, meta=_meta(x.ndim, result))


def _cos_setup(x1, x2, axis, eps, op):
    """(x1, x2 as aligned dask arrays of the broadcast shape, x2's own shape, axis,
    eps, result dtypes)."""
    from ._ops.similarity import _float_param

    s1 = _known_shape(x1, "x1")
    s2 = tuple(_lazy_shape(x2, "x2"))
    r1 = result_dtype(np.dtype(x1.dtype), "x1")[1]
    r2 = result_dtype(_lazy_dtype(x2, "x2"), "x2")[1]
    try:
        shape = np.broadcast_shapes(s1, s2)
    except ValueError:
        raise ValueError(f"{op}: x1 of shape {s1} and x2 of shape {s2} do not "
                         "broadcast") from None
    axis = _sim_axis(axis, len(shape), op)
    eps = _float_param(eps, "eps", op)
    if shape != s1:
        raise ValueError(f"{op}: x2 of shape {s2} broadcasts x1 of shape {s1} to {shape}; on "
                         "dask arrays x1 must have the broadcast shape")
    b = _loss_operand(x2, "x2", x1.chunks, shape)
    return x1, b, s2, axis, eps, r1, r2


def _cos_block(a, b, axis, eps):
    return nbops.cosine_similarity(a, b, axis, eps)


def _dot3_partial(a, b, axis):
    if axis == a.ndim - 1:  # the last axis: nbops/_ops/split_rows.py's kernel
        from ._ops.split_rows import row_dot3, run

        a2, b2 = _rows2d(_kernel_input(a)), _rows2d(_kernel_input(b))
        if a2.dtype != b2.dtype:
            a2, b2 = a2.astype(_F64), b2.astype(_F64)
        rows, n = a2.shape
        parts = np.zeros((rows, 3))
        if a2.size:
            (fa, sa), (fb, sb) = _flat_rows(a2), _flat_rows(b2)
            run(row_dot3, fa, sa, fb, sb, rows, n, parts)
        return parts.reshape(a.shape[:-1] + (1, 3))
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.stack([np.sum(a64 * a64, axis=axis, keepdims=True),
                         np.sum(b64 * b64, axis=axis, keepdims=True),
                         np.sum(a64 * b64, axis=axis, keepdims=True)], axis=-1)


def _dot3(a, b, axis):
    """Lazy float64 (|a|^2, |b|^2, a.b) along ``axis`` (kept) on a new last axis."""
    chunks = list(a.chunks)
    chunks[axis] = (1,) * len(a.chunks[axis])
    parts = da.map_blocks(_dot3_partial, a, b, axis, new_axis=a.ndim,
                          chunks=tuple(chunks) + ((3,),), dtype=_F64,
                          meta=_meta(a.ndim + 1, _F64))
    return parts.sum(axis=axis, keepdims=True)


def _cos_terms(w, eps):
    w1, w2, w12 = w[..., 0], w[..., 1], w[..., 2]
    r1, r2 = np.sqrt(w1), np.sqrt(w2)
    return r1, r2, np.where(r1 < eps, eps, r1), np.where(r2 < eps, eps, r2), w12


def _cos_finish(w, eps, axis, result):
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        _, _, n1, n2, w12 = _cos_terms(w, eps)
        return np.squeeze(w12 / (n1 * n2), axis).astype(result)


def cosine_similarity(x1, x2, axis=1, eps=1e-8, *, out=None):
    _no_out(out)
    a, b, _, axis, eps, r1, r2 = _cos_setup(x1, x2, axis, eps, "cosine_similarity")
    result = result_dtype(np.result_type(r1, r2), "x1")[1]
    if len(a.chunks[axis]) == 1:
        return da.map_blocks(_cos_block, a, b, axis, eps, drop_axis=axis, dtype=result,
                             meta=_meta(a.ndim - 1, result))
    w = _dot3(a, b, axis)
    return w.map_blocks(_cos_finish, eps, axis, result, drop_axis=(axis, a.ndim), dtype=result,
                        meta=_meta(a.ndim - 1, result))


def _cos_grad_block(g, a, b, axis, eps, which):
    g = np.squeeze(g, axis)
    return nbops.cosine_similarity_backward(g, a, b, axis, eps)[which]


def _cos_grad_finish(g, a, b, w1, w2, w12, eps, which, result):
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        r1, r2, n1, n2, w12 = _cos_terms(np.stack([w1, w2, w12], axis=-1), eps)
        gr = g.astype(np.float64)
        cos = w12 / (n1 * n2)
        c12 = gr / (n1 * n2)
        if which == 0:
            k1 = np.where(r1 == 0, 0.0, gr * cos / (n1 * r1))
            res = c12 * b.astype(np.float64) - k1 * a.astype(np.float64)
        else:
            k2 = np.where(r2 == 0, 0.0, gr * cos / (n2 * r2))
            res = c12 * a.astype(np.float64) - k2 * b.astype(np.float64)
    return res.astype(result)


def cosine_similarity_backward(grad_output, x1, x2, axis=1, eps=1e-8, *, out=None):
    _no_out(out)
    if not is_dask_array(x1):  # a dask grad_output with a NumPy x1
        x1 = da.from_array(as_array(x1, "x1"))
    a, b, s2, axis, eps, r1, r2 = _cos_setup(x1, x2, axis, eps, "cosine_similarity_backward")
    shape = a.shape
    out_shape = shape[:axis] + shape[axis + 1:]
    g = grad_output if is_dask_array(grad_output) else as_array(grad_output, "grad_output")
    if np.dtype(g.dtype).kind != "f":
        raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
    if tuple(g.shape) != out_shape:
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected {out_shape} (the "
                         "forward's output shape)")
    g = g.reshape(shape[:axis] + (1,) + shape[axis + 1:]) if is_dask_array(g) else \
        np.expand_dims(g, axis)
    gchunks = a.chunks[:axis] + ((1,),) + a.chunks[axis + 1:]
    g = g.rechunk(gchunks) if is_dask_array(g) else da.from_array(g, chunks=gchunks)
    result_dtype(np.result_type(g.dtype, r1, r2), "grad_output")
    grads = []
    w = None if len(a.chunks[axis]) == 1 else _dot3(a, b, axis)
    for which, dt in ((0, r1), (1, r2)):
        if w is None:  # the axis in one chunk: the in-memory backward on every block
            grads.append(da.map_blocks(_cos_grad_block, g, a, b, axis, eps, which,
                                       chunks=a.chunks, dtype=dt, meta=_meta(a.ndim, dt)))
        else:
            grads.append(da.map_blocks(_cos_grad_finish, g, a, b, w[..., 0], w[..., 1],
                                       w[..., 2], eps, which, dt, chunks=a.chunks, dtype=dt,
                                       meta=_meta(a.ndim, dt)))
    return grads[0], _sum_back(grads[1], s2, r2)


# ------------------------------------------------------------------ cdist, pdist
# Blocked over row blocks of x1 and x2 (the feature axis is rechunked into one chunk
# if it is split: each distance needs its whole pair of rows): cdist of every pair
# of row blocks; pdist from the row blocks J >= I of each row block I, the upper
# triangle written in the condensed order (row after row); the backwards sum each
# block pair's in-memory gradients in float64.
def _cdist_block(a, b, p, mode):
    return nbops.cdist(a, b, p, mode)


def _cdist_mode(p, compute_mode, rp, rr):
    from ._ops.similarity import COMPUTE_MODES

    use_mm = p == 2 and (compute_mode == COMPUTE_MODES[1]
                         or (compute_mode == COMPUTE_MODES[0] and (rp > 25 or rr > 25)))
    return COMPUTE_MODES[1] if use_mm else COMPUTE_MODES[2]


def _cdist_setup(x1, x2, p, compute_mode, op):
    from ._ops.similarity import COMPUTE_MODES, _float_param

    if not is_dask_array(x1):  # a dask grad_output with a NumPy x1
        x1 = da.from_array(as_array(x1, "x1"))
    if not is_dask_array(x2):
        x2 = da.from_array(as_array(x2, "x2"))
    s1, s2 = _known_shape(x1, "x1"), _known_shape(x2, "x2")
    r1 = result_dtype(np.dtype(x1.dtype), "x1")[1]
    r2 = result_dtype(np.dtype(x2.dtype), "x2")[1]
    if len(s1) < 2 or len(s2) < 2:
        raise ValueError(f"{op}: x1 and x2 must have at least 2 dimensions, got shapes "
                         f"{s1} and {s2}")
    if s1[-1] != s2[-1]:
        raise ValueError(f"{op}: x1 and x2 must have the same last axis, got {s1[-1]} "
                         f"and {s2[-1]}")
    p = _float_param(p, "p", op)
    if not p >= 0:
        raise ValueError(f"{op}: p must be >= 0, got {p}")
    if compute_mode not in COMPUTE_MODES:
        raise ValueError(f"{op}: compute_mode must be one of {COMPUTE_MODES}, got "
                         f"{compute_mode!r}")
    if len(s1) != 2 or len(s2) != 2:
        raise ValueError(f"{op}: on dask arrays x1 and x2 must be 2-D (P, M) and (R, M) "
                         f"(no batch axes), got {s1} and {s2}")
    a, b = x1.rechunk({1: -1}), x2.rechunk({1: -1})
    return a, b, p, _cdist_mode(p, compute_mode, s1[0], s2[0]), r1, r2


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary", *, out=None):
    _no_out(out)
    a, b, p, mode, r1, r2 = _cdist_setup(x1, x2, p, compute_mode, "cdist")
    result = result_dtype(np.result_type(r1, r2), "x1")[1]
    return da.blockwise(_cdist_block, "pr", a, "pm", b, "rm", p, None, mode, None,
                        concatenate=True, dtype=result, meta=_meta(2, result))


def _cdist_grad_block(g, a, b, p, mode, which):
    g64 = nbops.cdist_backward(g, a, b, p, mode)[which]
    return g64.astype(np.float64)[:, None, :]


def cdist_backward(grad_output, x1, x2, p=2.0,
                   compute_mode="use_mm_for_euclid_dist_if_necessary", *, output=None,
                   out=None):
    """(grad_x1, grad_x2): the in-memory backward on every pair of row blocks, each
    row block's gradients summed over the other's blocks in float64."""
    _no_out(out)
    a, b, p, mode, r1, r2 = _cdist_setup(x1, x2, p, compute_mode, "cdist_backward")
    out_shape = (a.shape[0], b.shape[0])
    g = grad_output if is_dask_array(grad_output) else as_array(grad_output, "grad_output")
    if np.dtype(g.dtype).kind != "f":
        raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
    if tuple(g.shape) != out_shape:
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected {out_shape} (the "
                         "forward's output shape)")
    chunks = (a.chunks[0], b.chunks[0])
    g = g.rechunk(chunks) if is_dask_array(g) else da.from_array(g, chunks=chunks)
    if output is not None:
        saved = output if is_dask_array(output) else as_array(output, "output")
        if tuple(saved.shape) != out_shape:
            raise ValueError(f"output has shape {tuple(saved.shape)}, expected {out_shape}")
    result_dtype(np.result_type(g.dtype, r1, r2), "grad_output")
    g1 = da.blockwise(_cdist_grad_block, "pjm", g, "pj", a, "pm", b, "jm", p, None, mode, None,
                      0, None, adjust_chunks={"j": 1}, concatenate=True, dtype=_F64,
                      meta=_meta(3, _F64))
    g2 = da.blockwise(_cdist_grad_block, "rim", g.T, "ri", b, "rm", a, "im", p, None, mode,
                      None, 0, None, adjust_chunks={"i": 1}, concatenate=True, dtype=_F64,
                      meta=_meta(3, _F64))
    # (g2: x2's gradient is x1's of the swapped pair: cdist(b, a) = cdist(a, b).T)
    return g1.sum(axis=1).astype(r1), g2.sum(axis=1).astype(r2)


def _tri_strip(d, r0, n):
    """Rows r0.. of a strip of distances to rows r0..n-1: the condensed upper
    triangle, row after row."""
    rows = d.shape[0]
    return np.concatenate([d[i, i + 1:] for i in range(rows)]) if rows else d.reshape(0)


def _pdist_setup(input, p, op):
    from ._ops.similarity import _float_param

    shape = _known_shape(input)
    compute, result = result_dtype(input.dtype, "input")
    if input.ndim != 2:
        raise ValueError(f"{op}: input must be 2-D (N, M), got shape {shape}")
    p = _float_param(p, "p", op)
    if not p >= 0:
        raise ValueError(f"{op}: p must be >= 0, got {p}")
    x = input.rechunk({1: -1})
    n = shape[0]
    return x, p, _cdist_mode(p, "use_mm_for_euclid_dist_if_necessary", n, n), result


def _row_starts(x):
    starts = np.concatenate(([0], np.cumsum(x.chunks[0]))).astype(int)
    return starts[:-1].tolist(), starts[1:].tolist()


def pdist(input, p=2.0, *, out=None):
    _no_out(out)
    x, p, mode, result = _pdist_setup(input, p, "pdist")
    n = x.shape[0]
    blocks = [x.blocks[i] for i in range(len(x.chunks[0]))]
    pieces = []
    for i, (r0, r1) in enumerate(zip(*_row_starts(x), strict=True)):
        strip = da.concatenate([da.blockwise(_cdist_block, "pr", blocks[i], "pm", blocks[j],
                                             "rm", p, None, mode, None, concatenate=True,
                                             dtype=result, meta=_meta(2, result))
                                for j in range(i, len(blocks))], axis=1)
        size = sum(n - 1 - r for r in range(r0, r1))
        pieces.append(strip.rechunk({1: -1}).map_blocks(
            _tri_strip, r0, n, drop_axis=1, chunks=((size,),), dtype=result,
            meta=_meta(1, result)))
    if not pieces:
        return da.zeros((0,), dtype=result)
    return da.concatenate(pieces)


def _strip_grad(gseg, r0, r1, n, dtype):
    """A row block's condensed grad_output as its (rows, n - r0) strip (zeros on and
    below the diagonal)."""
    strip = np.zeros((r1 - r0, n - r0), dtype)
    k = 0
    for i in range(r1 - r0):
        width = n - (r0 + i) - 1
        strip[i, i + 1:] = gseg[k:k + width]
        k += width
    return strip


def pdist_backward(grad_output, input, p=2.0, *, output=None, out=None):
    """Each pair of row blocks J >= I: the in-memory cdist_backward of that block of
    grad_output (from the condensed order), its gradients summed in float64 into
    both row blocks."""
    _no_out(out)
    if not is_dask_array(input):  # a dask grad_output with a NumPy input
        input = da.from_array(as_array(input, "input"))
    x, p, mode, result = _pdist_setup(input, p, "pdist_backward")
    n = x.shape[0]
    k = n * (n - 1) // 2
    g = grad_output if is_dask_array(grad_output) else as_array(grad_output, "grad_output")
    if np.dtype(g.dtype).kind != "f":
        raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
    if tuple(g.shape) != (k,):
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected {(k,)} (the "
                         "forward's output shape)")
    if not is_dask_array(g):
        g = da.from_array(g)
    result = result_dtype(np.result_type(g.dtype, result), "grad_output")[1]
    starts, stops = _row_starts(x)
    blocks = [x.blocks[i] for i in range(len(starts))]
    sums = [[] for _ in blocks]
    offset = 0
    for i, (r0, r1) in enumerate(zip(starts, stops, strict=True)):
        size = sum(n - 1 - r for r in range(r0, r1))
        seg = g[offset:offset + size].rechunk(-1)
        offset += size
        strip = seg.map_blocks(_strip_grad, r0, r1, n, g.dtype, new_axis=1,
                               chunks=((r1 - r0,), (n - r0,)), dtype=g.dtype,
                               meta=_meta(2, g.dtype))
        strip = strip.rechunk({1: tuple(stops[j] - starts[j] for j in range(i, len(starts)))})
        for j in range(i, len(starts)):
            gij = strip.blocks[0, j - i]
            for which, target in ((0, i), (1, j)):
                sums[target].append(da.blockwise(
                    _cdist_grad_block, "pjm", gij, "pj", blocks[i], "pm", blocks[j], "jm",
                    p, None, mode, None, which, None, adjust_chunks={"j": 1},
                    concatenate=True, dtype=_F64, meta=_meta(3, _F64)).sum(axis=1)
                    if which == 0 else da.blockwise(
                    _cdist_grad_block, "jpm", gij.T, "jp", blocks[j], "jm", blocks[i], "pm",
                    p, None, mode, None, 0, None, adjust_chunks={"p": 1},
                    concatenate=True, dtype=_F64, meta=_meta(3, _F64)).sum(axis=1))
    grads = [functools.reduce(lambda u, v: u + v, parts) for parts in sums]
    if not grads:
        return da.zeros(x.shape, dtype=result)
    return da.concatenate(grads).astype(result).rechunk(input.chunks)


# ------------------------------------------------------------------ row losses (stop 18)
# cosine_embedding, triplet_margin (and with the default distance), multi_margin and
# multilabel_margin: every array as (rows, features) with the feature/class axis in
# one chunk and the rows chunked alike; each block runs the in-memory 'none' (or
# backward), then float64 sums and one division (_reduce, _grad_factor).
def _row_chunks(arrays, full):
    """The rows' chunks: the first dask array's, (rows, features) reshaped."""
    rows = math.prod(full[:-1])
    for a in arrays:
        if is_dask_array(a) and a.ndim == len(full) and len(full) > 1:
            b = da.broadcast_to(a, full).rechunk({len(full) - 1: -1})
            return b.reshape(rows, full[-1]).chunks[0]
    return (rows,)


def _as_rows(a, name, full, rows, features=True):
    """``a`` broadcast to ``full`` as a (rows, features) dask array (features, the last
    axis, in one chunk, the rows chunked as ``rows``); ``features=False``: a per-row
    array, flat (rows,)."""
    if not is_dask_array(a):
        a = da.from_array(np.asarray(as_array(a, name)), chunks=-1)
    a = da.broadcast_to(a, full)
    if features:
        n = math.prod(full[:-1])
        a = a.rechunk({len(full) - 1: -1}).reshape(n, full[-1])
        return a.rechunk((rows, (full[-1],)))
    return a.reshape(math.prod(full)).rechunk((rows,))


def _rows_none_block(name, kw, *blocks):
    return getattr(nbops, name)(*blocks, reduction="none", **dict(kw))


def _rows_grad_block(name, kw, nout, g, *blocks):
    g = _factor(g)
    res = getattr(nbops, f"{name}_backward")(
        g, *blocks, reduction="sum" if isinstance(g, float) else "none", **dict(kw))
    return np.stack(res[:nout]) if nout > 1 else res


def _index(a):
    return "rf" if a.ndim == 2 else "r"


def _rows_loss(name, arrays, kw, mode, result, loss_shape):
    """The lazy loss: the in-memory 'none' on row blocks, reshaped to ``loss_shape``."""
    pairs = [x for a in arrays for x in (a, _index(a))]
    none = da.blockwise(_rows_none_block, "r", name, None, kw, None, *pairs,
                        concatenate=True, dtype=result, meta=_meta(1, result))
    if mode == "none":
        return none.reshape(loss_shape)
    return _reduce(none, mode, result, none.shape[0])


def _rows_grads(name, grad_output, arrays, kw, mode, result, loss_shape, nout):
    """The lazy gradients (``nout`` of them, (rows, features)) of the in-memory backward."""
    lead = arrays[0]
    if mode == "none":
        g = grad_output if is_dask_array(grad_output) else da.from_array(
            as_array(grad_output, "grad_output"), chunks=-1)
        if _known_shape(g, "grad_output") != tuple(loss_shape):
            raise ValueError(f"grad_output has shape {g.shape}, expected the per-sample "
                             f"losses' shape {tuple(loss_shape)}")
        if np.dtype(g.dtype).kind != "f":
            raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
        g, g_index = g.reshape(lead.shape[0]).rechunk((lead.chunks[0],)), "r"
    else:
        g = _grad_factor(grad_output, mode, lead.shape[0] if mode == "mean" else 1)
        g_index = "" if is_dask_array(g) else None
    pairs = [x for a in arrays for x in (a, _index(a))]
    if nout == 1:
        return (da.blockwise(_rows_grad_block, "rf", name, None, kw, None, 1, None, g, g_index,
                             *pairs, concatenate=True, dtype=result, meta=_meta(2, result)),)
    both = da.blockwise(_rows_grad_block, "krf", name, None, kw, None, nout, None, g, g_index,
                        *pairs, new_axes={"k": nout}, concatenate=True, dtype=result,
                        meta=_meta(3, result))
    return tuple(both[i] for i in range(nout))


def _rows_operands(arrays, names, full):
    rows = _row_chunks(arrays, full)
    return [_as_rows(a, n, full, rows) for a, n in zip(arrays, names, strict=True)]


def _cosine_setup(input1, input2, target, margin, size_average, reduce, reduction):
    from ._ops.embedding_losses import _cosine_check_dims

    s1, s2 = tuple(_lazy_shape(input1, "input1")), tuple(_lazy_shape(input2, "input2"))
    st = tuple(_lazy_shape(target, "target"))
    _cosine_check_dims(len(st), s1, s2)
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=5).mode
    d1, d2 = _lazy_dtype(input1, "input1"), _lazy_dtype(input2, "input2")
    result_dtype(d1, "input1")
    result_dtype(d2, "input2")
    if _lazy_dtype(target, "target").kind not in "biuf":
        raise TypeError(f"target: expected real numbers, got dtype {_lazy_dtype(target, 'target')}")
    result = result_dtype(np.result_type(d1, d2), "input1")[1]
    try:
        shape = np.broadcast_shapes(s1, s2)
        out_shape = np.broadcast_shapes(shape[:-1], st)
    except ValueError:
        raise ValueError(f"input1 of shape {s1}, input2 of shape {s2} and target of shape "
                         f"{st} do not broadcast together") from None
    full = out_shape + shape[-1:]
    x1, x2 = _rows_operands([input1, input2], ["input1", "input2"], full)
    t = _as_rows(target, "target", out_shape, x1.chunks[0], features=False)
    return [x1, x2, t], (("margin", float(margin)),), mode, result, out_shape, full, (s1, s2)


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    arrays, kw, mode, result, loss_shape, _, _ = _cosine_setup(
        input1, input2, target, margin, size_average, reduce, reduction)
    return _rows_loss("cosine_embedding_loss", arrays, kw, mode, result, loss_shape)


def cosine_embedding_loss_backward(grad_output, input1, input2, target, margin=0.0,
                                   size_average=None, reduce=None, reduction="mean"):
    arrays, kw, mode, result, loss_shape, full, shapes = _cosine_setup(
        input1, input2, target, margin, size_average, reduce, reduction)
    grads = _rows_grads("cosine_embedding_loss", grad_output, arrays, kw, mode, result,
                        loss_shape, 2)
    return tuple(_sum_back(g.reshape(full), s, result) for g, s in zip(grads, shapes,
                                                                       strict=True))


def cosine_embedding_loss_with_grad(input1, input2, target, margin=0.0, size_average=None,
                                    reduce=None, reduction="mean"):
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # warned above
        loss = cosine_embedding_loss(input1, input2, target, margin, size_average, reduce,
                                     reduction)
        return _with_grad(loss, mode == "none", lambda g: cosine_embedding_loss_backward(
            g, input1, input2, target, margin, size_average, reduce, reduction))


_TRIPLET = ("anchor", "positive", "negative")


def _triplet_setup(anchor, positive, negative, margin, p, eps, mode):
    from ._ops.embedding_losses import _triplet_check
    from ._ops.plan_norm import pairwise_distance_plan
    from ._validate import as_param

    arrays = (anchor, positive, negative)
    shapes = [tuple(_lazy_shape(a, n)) for a, n in zip(arrays, _TRIPLET, strict=True)]
    margin = as_param(margin, "margin")
    _triplet_check([len(s) for s in shapes], margin)
    dts = [_lazy_dtype(a, n) for a, n in zip(arrays, _TRIPLET, strict=True)]
    for dt, n in zip(dts, _TRIPLET, strict=True):
        result_dtype(dt, n)
    result = result_dtype(np.result_type(*dts), "anchor")[1]
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError("anchor of shape {}, positive of shape {} and negative of shape {} "
                         "do not broadcast together".format(*shapes)) from None
    plan = pairwise_distance_plan(shape, shape, p, eps, False)
    if len(shape) == 0:
        raise ValueError("anchor: triplet_margin_loss on dask arrays needs a feature axis")
    return _rows_operands(list(arrays), list(_TRIPLET), shape), result, plan.out_shape, \
        shape, shapes


def _triplet_loss(name, anchor, positive, negative, kw, margin, p, eps, mode):
    arrays, result, loss_shape, _, _ = _triplet_setup(anchor, positive, negative, margin, p,
                                                      eps, mode)
    return _rows_loss(name, arrays, kw, mode, result, loss_shape)


def _triplet_backward(name, grad_output, anchor, positive, negative, kw, margin, p, eps, mode):
    arrays, result, loss_shape, full, shapes = _triplet_setup(anchor, positive, negative,
                                                              margin, p, eps, mode)
    grads = _rows_grads(name, grad_output, arrays, kw, mode, result, loss_shape, 3)
    return tuple(_sum_back(g.reshape(full), s, result) for g, s in zip(grads, shapes,
                                                                       strict=True))


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    kw = (("margin", margin), ("p", p), ("eps", eps), ("swap", bool(swap)))
    return _triplet_loss("triplet_margin_loss", anchor, positive, negative, kw, margin, p,
                         eps, mode)


def triplet_margin_loss_backward(grad_output, anchor, positive, negative, margin=1.0, p=2,
                                 eps=1e-6, swap=False, size_average=None, reduce=None,
                                 reduction="mean"):
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    kw = (("margin", margin), ("p", p), ("eps", eps), ("swap", bool(swap)))
    return _triplet_backward("triplet_margin_loss", grad_output, anchor, positive, negative,
                             kw, margin, p, eps, mode)


def triplet_margin_loss_with_grad(anchor, positive, negative, margin=1.0, p=2, eps=1e-6,
                                  swap=False, size_average=None, reduce=None,
                                  reduction="mean"):
    mode = P.reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    loss = triplet_margin_loss(anchor, positive, negative, margin, p, eps, swap,
                               reduction=mode)
    return _with_grad(loss, mode == "none", lambda g: triplet_margin_loss_backward(
        g, anchor, positive, negative, margin, p, eps, swap, reduction=mode))


def _distance_kw(distance_function, margin, swap):
    """(kw, p, eps) of a distance nbops has the gradient of (None: pairwise_distance)."""
    from ._ops.embedding_losses import _known_distance

    known = _known_distance(distance_function)
    if known is None:
        raise TypeError("triplet_margin_with_distance_loss: on dask arrays the "
                        "distance_function must be None, nbops.pairwise_distance (or a "
                        "functools.partial of it) or nbops.nn.PairwiseDistance")
    kw = (("margin", margin), ("swap", bool(swap)), ("distance_function", distance_function))
    return kw, known[0], known[1]


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean"):
    """A distance nbops knows: as triplet_margin_loss, the in-memory loss per row block."""
    from ._ops.embedding_losses import _distance_mode

    mode = _distance_mode(reduction, margin)
    kw, p, eps = _distance_kw(distance_function, margin, swap)
    return _triplet_loss("triplet_margin_with_distance_loss", anchor, positive, negative, kw,
                         margin, p, eps, mode)


def triplet_margin_with_distance_loss_backward(grad_output, anchor, positive, negative, *,
                                               distance_function=None, margin=1.0,
                                               swap=False, reduction="mean"):
    from ._ops.embedding_losses import _distance_mode

    mode = _distance_mode(reduction, margin)
    kw, p, eps = _distance_kw(distance_function, margin, swap)
    return _triplet_backward("triplet_margin_with_distance_loss", grad_output, anchor,
                             positive, negative, kw, margin, p, eps, mode)


def triplet_margin_with_distance_loss_with_grad(anchor, positive, negative, *,
                                                distance_function=None, margin=1.0,
                                                swap=False, reduction="mean"):
    loss = triplet_margin_with_distance_loss(anchor, positive, negative,
                                             distance_function=distance_function,
                                             margin=margin, swap=swap, reduction=reduction)
    return _with_grad(loss, reduction == "none",
                      lambda g: triplet_margin_with_distance_loss_backward(
                          g, anchor, positive, negative, distance_function=distance_function,
                          margin=margin, swap=swap, reduction=reduction))


def _class_margin_setup(name, input, target, weight, size_average, reduce, reduction):
    """multi_margin (``weight`` a tuple, possibly (None,)) or multilabel_margin:
    PyTorch's checks; (arrays, mode, result, loss shape)."""
    from ._ops import class_margin_losses as CM

    mode = CM._mode(size_average, reduce, reduction)
    xs, ts = _known_shape(input), tuple(_lazy_shape(target, "target"))
    n, c = CM._frames(xs)
    if name == "multi_margin_loss":
        w = None if weight is None else _host(weight, "weight")
        if w is not None and w.ndim != 1:
            raise ValueError("weight must be one-dimensional")
        if len(ts) > 1 or math.prod(ts) != n:
            raise ValueError(f"inconsistent target size, expected {n} but got {ts}")
        if w is not None and w.size != c:
            raise ValueError(f"inconsistent weight size, expected {c} but got {w.shape}")
        loss_shape, t_full = ((n,) if len(ts) else ()), (n,)
    else:
        w = None
        if (len(ts) > 1 or math.prod(ts) != c) if len(xs) <= 1 else ts != xs:
            raise ValueError(f"inconsistent target size: {ts} for input of size: {xs}")
        loss_shape, t_full = ((n,) if len(ts) == 2 else ()), (n, c)
    if _lazy_dtype(target, "target").kind not in "iu":
        raise TypeError(f"target: expected integer class indices, got dtype "
                        f"{_lazy_dtype(target, 'target')}")
    compute, result = result_dtype(input.dtype, "input")
    if w is not None:
        result_dtype(w.dtype, "weight")
        result = result_dtype(np.result_type(input.dtype, w.dtype))[1]
    x = _as_rows(input.reshape(n, c), "input", (n, c), _row_chunks([input.reshape(n, c)],
                                                                  (n, c)))
    t = _as_rows(target.reshape(t_full) if is_dask_array(target) else
                 as_array(target, "target").reshape(t_full), "target", t_full, x.chunks[0],
                 features=len(t_full) == 2)
    return [x, t], w, mode, result, loss_shape


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    from ._ops.class_margin_losses import _check_p

    arrays, w, mode, result, loss_shape = _class_margin_setup(
        "multi_margin_loss", input, target, weight, size_average, reduce, reduction)
    kw = (("p", _check_p(p)), ("margin", float(margin)), ("weight", w))
    return _rows_loss("multi_margin_loss", arrays, kw, mode, result, loss_shape)


def multi_margin_loss_backward(grad_output, input, target, p=1, margin=1.0, weight=None,
                               size_average=None, reduce=None, reduction="mean", *, out=None):
    from ._ops.class_margin_losses import _check_p

    _no_out(out)
    arrays, w, mode, result, loss_shape = _class_margin_setup(
        "multi_margin_loss", input, target, weight, size_average, reduce, reduction)
    kw = (("p", _check_p(p)), ("margin", float(margin)), ("weight", w))
    grad, = _rows_grads("multi_margin_loss", grad_output, arrays, kw, mode, result,
                        loss_shape, 1)
    return grad.reshape(input.shape)


def multi_margin_loss_with_grad(input, target, p=1, margin=1.0, weight=None,
                                size_average=None, reduce=None, reduction="mean"):
    from ._ops.class_margin_losses import _mode

    mode = _mode(size_average, reduce, reduction)
    loss = multi_margin_loss(input, target, p, margin, weight, reduction=mode)
    return _with_grad(loss, mode == "none", lambda g: multi_margin_loss_backward(
        g, input, target, p, margin, weight, reduction=mode))


def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    arrays, _, mode, result, loss_shape = _class_margin_setup(
        "multilabel_margin_loss", input, target, None, size_average, reduce, reduction)
    return _rows_loss("multilabel_margin_loss", arrays, (), mode, result, loss_shape)


def multilabel_margin_loss_backward(grad_output, input, target, size_average=None, reduce=None,
                                    reduction="mean", *, out=None):
    _no_out(out)
    arrays, _, mode, result, loss_shape = _class_margin_setup(
        "multilabel_margin_loss", input, target, None, size_average, reduce, reduction)
    grad, = _rows_grads("multilabel_margin_loss", grad_output, arrays, (), mode, result,
                        loss_shape, 1)
    return grad.reshape(input.shape)


def multilabel_margin_loss_with_grad(input, target, size_average=None, reduce=None,
                                     reduction="mean"):
    from ._ops.class_margin_losses import _mode

    mode = _mode(size_average, reduce, reduction)
    loss = multilabel_margin_loss(input, target, reduction=mode)
    return _with_grad(loss, mode == "none", lambda g: multilabel_margin_loss_backward(
        g, input, target, reduction=mode))


# ------------------------------------------------------------------ bilinear
def _bilinear_block(x1, x2, w, b):
    return nbops.bilinear(x1, x2, w, b)


def _bilinear_setup(input1, input2, weight, bias, extra=()):
    """(x1, x2 as (rows, features) with the same row chunks, w, b, lead shape, result)."""
    from ._ops.bilinear import _check

    s1, s2 = tuple(_lazy_shape(input1, "input1")), tuple(_lazy_shape(input2, "input2"))
    w, b = _host(weight, "weight"), _host(bias, "bias")
    dts = [_lazy_dtype(input1, "input1"), _lazy_dtype(input2, "input2"), w.dtype]
    for dt, name in zip(dts, ("input1", "input2", "weight"), strict=True):
        result_dtype(dt, name)
    if b is not None:
        result_dtype(b.dtype, "bias")
        dts.append(b.dtype)
    dts += [dt for dt, _ in extra]
    _check(s1, s2, w.shape, None if b is None else b.shape)
    result = result_dtype(np.result_type(*dts))[1]
    lead = input1 if is_dask_array(input1) else input2
    rows = _row_chunks([lead], lead.shape)
    x1 = _as_rows(input1, "input1", s1, rows)
    x2 = _as_rows(input2, "input2", s2, rows)
    return x1, x2, w, b, s1[:-1], result


def bilinear(input1, input2, weight, bias=None, *, out=None):
    """Rows blockwise (the feature axes in one chunk): the in-memory bilinear on every
    row block (host ``weight`` and ``bias``)."""
    _no_out(out)
    x1, x2, w, b, lead, result = _bilinear_setup(input1, input2, weight, bias)
    y = da.blockwise(_bilinear_block, "ro", x1, "ri", x2, "rj", w, None, b, None,
                     new_axes={"o": w.shape[0]}, concatenate=True, dtype=result,
                     meta=_meta(2, result))
    return y.reshape(lead + (w.shape[0],))


def _bilinear_grads(g, x1, x2, w, b):
    """The in-memory backward of a row block, grad_weight and grad_bias in float64."""
    g1, g2, gw, gb = nbops.bilinear_backward(g, x1, x2, w, b)
    return g1, g2, gw.astype(_F64), None if gb is None else gb.astype(_F64)


def bilinear_backward(grad_output, input1, input2, weight, bias=None):
    """The in-memory backward on every row block (one call per block): grad_input1
    and grad_input2 blockwise, grad_weight and grad_bias summed over the blocks in
    float64."""
    import dask

    g_dtype = _lazy_dtype(grad_output, "grad_output")
    x1, x2, w, b, lead, result = _bilinear_setup(input1, input2, weight, bias,
                                                 ((g_dtype, "grad_output"),))
    n_out = w.shape[0]
    if tuple(_lazy_shape(grad_output, "grad_output")) != lead + (n_out,):
        raise ValueError(f"grad_output must have the forward output's shape "
                         f"{lead + (n_out,)}, got {tuple(_lazy_shape(grad_output, 'grad_output'))}")
    g = _as_rows(grad_output, "grad_output", lead + (n_out,), x1.chunks[0])
    pieces = []
    for i, (gb_, b1, b2) in enumerate(zip(g.to_delayed()[:, 0], x1.to_delayed()[:, 0],
                                          x2.to_delayed()[:, 0], strict=True)):
        n = x1.chunks[0][i]
        parts = dask.delayed(_bilinear_grads, nout=4, pure=True)(gb_, b1, b2, w, b)
        pieces.append((da.from_delayed(parts[0], (n, x1.shape[1]), dtype=result),
                       da.from_delayed(parts[1], (n, x2.shape[1]), dtype=result),
                       da.from_delayed(parts[2], w.shape, dtype=_F64),
                       None if b is None else da.from_delayed(parts[3], b.shape, dtype=_F64)))
    g1 = da.concatenate([p[0] for p in pieces]).reshape(lead + (x1.shape[1],))
    g2 = da.concatenate([p[1] for p in pieces]).reshape(lead + (x2.shape[1],))
    gw = da.stack([p[2] for p in pieces]).sum(axis=0).astype(result)
    gb = None if b is None else da.stack([p[3] for p in pieces]).sum(axis=0).astype(result)
    return g1, g2, gw, gb


# ------------------------------------------------------------------ the dispatch hook
_OPS = {
    "softmax": softmax, "log_softmax": log_softmax, "softmin": softmin,
    "cross_entropy": cross_entropy, "nll_loss": nll_loss, "kl_div": kl_div,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "prelu": prelu, "linear": linear, "pairwise_distance": pairwise_distance,
    "dropout": dropout, "dropout2d": dropout2d, "dropout3d": dropout3d,
    "dropout1d": dropout1d, "alpha_dropout": alpha_dropout,
    "feature_alpha_dropout": feature_alpha_dropout,
    "batch_norm": batch_norm,
}


def dispatch(name, args, kwargs):
    """Run the dask version of public op ``name`` on ``args`` and ``kwargs``."""
    return _OPS[name](*args, **kwargs)
