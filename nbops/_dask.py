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
  al.'s formula) in float64;
* dropout: each block draws the in-memory mask's elements at their global flat
  indices (nbops/_ops/dropout.py's kernels take the index of their first
  element), so the mask is the same for every chunking.
* backwards (and the losses' ``_with_grad``): the in-memory backward on each
  block where a block holds all it needs; where the gradient needs a reduction
  (a row sum of the softmax family, prelu's and batch_norm's channel sums, a
  loss's 'mean' divisor), float64 partial sums reduced by dask first, then a
  blockwise finish.

Block functions are module-level functions taking plain arguments (names, not
kernel objects), so that the graphs pickle to ``dask.distributed`` workers.
"""

import math
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
        raise TypeError("out: not supported for dask arrays (dask arrays are immutable; "
                        "use the returned array, or da.store)")
    if inplace:
        raise TypeError("inplace=True: not supported for dask arrays (dask arrays are "
                        "immutable; use the returned array)")


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


# ------------------------------------------------------------------ elementwise
def _unary_block(block, op_name, params):
    from ._ops.elementwise import Op, unary

    return unary(Op.registry[op_name], block, params)


def unary(op, input, params=(), inplace=False, out=None):
    """An elementwise op (``nbops.relu`` ...): the same op on every block."""
    _no_out(out, inplace)
    _, result = result_dtype(input.dtype)
    params = tuple(float(p) for p in params)
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


def _softmax_block(block, name, axis, dtype):
    return getattr(nbops, name)(block, axis=axis, dtype=dtype)


def _lse_partial(block, axis, sgn):
    """(max, sum of exp(x - max)) along ``axis`` of one block, stacked on that axis."""
    x = block.astype(np.float64)
    if sgn < 0:
        x = -x
    if block.shape[axis] == 0:
        shape = list(block.shape)
        shape[axis] = 1
        return np.concatenate([np.full(shape, -np.inf), np.zeros(shape)], axis=axis)
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.sum(np.exp(x - m), axis=axis, keepdims=True)
    s = np.where(m == -np.inf, 0.0, s)  # an all -inf piece adds nothing
    return np.concatenate([m, s], axis=axis)


def _lse_merge(partials, axis):
    """The log-sum-exp of a row from its pieces' (max, sum) partials."""
    n = partials.shape[axis]
    m = np.take(partials, np.arange(0, n, 2), axis=axis)
    s = np.take(partials, np.arange(1, n, 2), axis=axis)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        top = np.max(m, axis=axis, keepdims=True)
        total = np.sum(s * np.exp(m - top), axis=axis, keepdims=True)
        return top + np.log(total)


def logsumexp(x, axis, sgn=1.0):
    """Lazy float64 log-sum-exp of ``sgn * x`` along ``axis`` (kept, of size 1)."""
    chunks = list(x.chunks)
    chunks[axis] = (2,) * len(x.chunks[axis])
    partials = x.map_blocks(_lse_partial, axis, sgn, chunks=tuple(chunks), dtype=_F64,
                            meta=_meta(x.ndim, _F64))
    chunks[axis] = (1,)
    return partials.rechunk({axis: -1}).map_blocks(_lse_merge, axis, chunks=tuple(chunks),
                                                   dtype=_F64, meta=_meta(x.ndim, _F64))


def _softmax_write(block, lse, sgn, log, dtype):
    x = block.astype(np.float64)
    if sgn < 0:
        x = -x
    with np.errstate(invalid="ignore"):
        z = x - lse
        return (z if log else np.exp(z)).astype(dtype, copy=False)


def softmax_family(name, input, axis=-1, dtype=None, dim=None, out=None):
    """``nbops.softmax`` / ``log_softmax`` / ``softmin`` of a dask array along ``axis``."""
    from ._ops.softmax import _dtypes

    _no_out(out)
    _, result = _dtypes(np.empty(0, input.dtype), dtype)
    ax = P.normalize_axis(axis, dim, input.ndim)
    if input.ndim == 0 or len(input.chunks[ax]) == 1:  # the axis in one chunk: blockwise
        return input.map_blocks(_softmax_block, name, ax, dtype, dtype=result,
                                meta=_meta(input.ndim, result))
    sgn, log = _SIGN[name]
    lse = logsumexp(input, ax, sgn)
    return da.map_blocks(_softmax_write, input, lse, sgn, log, result, dtype=result,
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


def _dropout_block(x, shape, axes, key, t, p, compute, result, block_info=None):
    from ._ops.dropout import _run_drop, _run_mask
    from ._ops.plan import dropout_scale

    location = block_info[0]["array-location"]
    scale, zero = dropout_scale(p, compute), compute.type(0)
    src = np.ascontiguousarray(x, dtype=compute)
    if axes is None:  # one decision per element: its global flat index
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
        dest = src * mult.reshape(mult.shape + (1,) * (src.ndim - axes))
    return dest if result == compute else dest.astype(result)


def dropout(input, p=0.5, training=True, inplace=False, *, rng=None, out=None, feature=None):
    """dropout (``feature=None``), dropout2d, dropout3d: each block draws the
    in-memory mask's elements at their global indices."""
    _no_out(out, inplace)
    p = P.check_p(p)
    if feature is not None:
        P.warn_feature_rank(feature, input.ndim, stacklevel=3)
    compute, result = result_dtype(input.dtype)
    shape = _known_shape(input)
    plan = P.dropout_plan(shape, p, training, False, False, feature)
    if plan.action == "identity":
        return input if input.dtype == result else input.astype(result)
    if plan.action == "zero":  # input * 0, as PyTorch: NaN and inf give NaN
        return (input * result.type(0)).astype(result)
    axes = None if feature is None else P.channel_axes(feature, len(shape))
    key = P.dropout_key(rng)
    t = P.dropout_threshold(p)
    return input.map_blocks(_dropout_block, shape, axes, key, t, p, compute, result,
                            dtype=result, meta=_meta(input.ndim, result))


def dropout2d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    return dropout(input, p, training, inplace, rng=rng, out=out, feature="dropout2d")


def dropout3d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    return dropout(input, p, training, inplace, rng=rng, out=out, feature="dropout3d")


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


def dropout_backward(grad_output, p, training, rng, feature=None, out=None):
    """The dropouts' backward: the forward's dask path on ``grad_output`` with the
    same seed (the mask of each element depends only on its global index)."""
    _no_out(out)
    if np.dtype(grad_output.dtype).kind != "f":
        raise TypeError(f"grad_output: expected a float array, got dtype {grad_output.dtype}")
    if not training or p == 0.0:
        return grad_output
    return dropout(grad_output, p, training, rng=rng, feature=feature)


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


# ------------------------------------------------------------------ the dispatch hook
_OPS = {
    "softmax": softmax, "log_softmax": log_softmax, "softmin": softmin,
    "cross_entropy": cross_entropy, "nll_loss": nll_loss, "kl_div": kl_div,
    "binary_cross_entropy": binary_cross_entropy,
    "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
    "prelu": prelu, "linear": linear, "pairwise_distance": pairwise_distance,
    "dropout": dropout, "dropout2d": dropout2d, "dropout3d": dropout3d,
    "batch_norm": batch_norm,
}


def dispatch(name, args, kwargs):
    """Run the dask version of public op ``name`` on ``args`` and ``kwargs``."""
    return _OPS[name](*args, **kwargs)
