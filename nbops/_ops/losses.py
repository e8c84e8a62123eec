"""Elementwise losses: ``nbops.l1_loss``, ``nbops.mse_loss``, ``nbops.smooth_l1_loss``,
``nbops.huber_loss``, ``nbops.soft_margin_loss``, ``nbops.hinge_embedding_loss``,
``nbops.kl_div``, ``nbops.binary_cross_entropy``, ``nbops.binary_cross_entropy_with_logits``.

Signatures, defaults and semantics are those of ``torch.nn.functional`` 2.13
(including the deprecated ``size_average``/``reduce`` flags, mapped as PyTorch
maps them, with a ``DeprecationWarning``). The per-element math lives in the
scalar cores of :mod:`nbops.scalar.losses`.

How a call runs
---------------
* Arguments are validated in Python first (shapes, ``reduction``, weights,
  ``beta``, the [0, 1] range of ``binary_cross_entropy``'s probabilities):
  every error is a Python exception naming the argument, and nothing the
  caller passed is ever written to.
* The common case (input and target of one shape and memory order, no
  weight) runs one fused kernel: the loss is computed and summed in the same
  pass over ``input`` and ``target``, with no temporary array.
* With ``weight``/``pos_weight``, a second kernel indexes a weight that
  broadcasts along a contiguous block of axes (``(C,)`` against ``(N, C)``,
  ``(N, 1)``, ``(C, 1, 1)`` against ``(N, C, H, W)``, ...) in place; other
  broadcasts (and mismatched input/target shapes) are materialized first.
* Reductions are deterministic: fixed chunks of :data:`nbops._reduction.CHUNK`
  elements, each summed in float64, combined in a fixed order, so results are
  bit-identical for any thread count and accurate for float32 sums of 1e8
  elements.

Dtypes: the computation dtype is NumPy's promotion of all the array
arguments (``np.result_type``), mapped as for the activations (integers and
bools compute in float64, float16 computes in float32 and rounds at the end).
``reduction='none'`` returns an array of the broadcast shape; ``'mean'`` and
``'sum'`` return a NumPy scalar of the result dtype (``np.float32`` for
float32 arguments). The mean of no elements is NaN and their sum 0, as in
PyTorch.
"""

import math
import warnings

import numpy as np
from numba import njit, prange, types
from numba.core import errors
from numba.extending import overload, register_jitable
from numba.np.numpy_support import as_dtype, from_dtype

from .. import _config, _memory
from .._launch import launch
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    is_dask_array,
    is_device_array,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar import losses as S
from ..scalar._math import const
from ..scalar.rows import ROW_FASTMATH
from . import njit_args as NJ
from . import table
from .elementwise import Op, OpType
from .plan import reduction_plan
from .reduction import CHUNK, chunk_count, sum_partials
from .table import Check, Module, Param

#: the hand-written losses (the pointwise losses of the op table are added at the end)
__all__ = ["kl_div", "binary_cross_entropy", "binary_cross_entropy_with_logits"]

KL_DIV = Op("loss.kl_div", S.kl_div, 0)
KL_DIV_LOG = Op("loss.kl_div_log_target", S.kl_div_log_target, 0)
BCE = Op("loss.binary_cross_entropy", S.binary_cross_entropy, 0)
BCE_LOGITS = Op("loss.bce_with_logits", S.binary_cross_entropy_with_logits, 0)
BCE_LOGITS_PW = Op("loss.bce_with_logits_pos_weight",
                   S.binary_cross_entropy_with_logits_pos_weight, 0)

# their derivative cores (the backward and <loss>_with_grad kernels below)
KL_DIV_GRAD = Op("loss.kl_div_backward", S.kl_div_backward, 0)
KL_DIV_LOG_GRAD = Op("loss.kl_div_log_target_backward", S.kl_div_log_target_backward, 0)
BCE_GRAD = Op("loss.binary_cross_entropy_backward", S.binary_cross_entropy_backward, 0)
BCE_LOGITS_GRAD = Op("loss.bce_with_logits_backward",
                     S.binary_cross_entropy_with_logits_backward, 0)
BCE_LOGITS_PW_GRAD = Op("loss.bce_with_logits_pos_weight_backward",
                        S.binary_cross_entropy_with_logits_pos_weight_backward, 0)

#: Ops whose core takes a third per-element operand (``pos_weight``).
#: (a set: nbops/_ops/nll_losses.py adds gaussian_nll_loss's, whose third operand is
#: the variance)
_AUX_OPS = {BCE_LOGITS_PW.name, BCE_LOGITS_PW_GRAD.name}
#: Ops whose core takes a third per-element operand and one hyperparameter,
#: ``core(x, t, a, p)`` (nbops/_ops/margin_losses.py: margin_ranking_loss of
#: ``input1``, ``target``, ``input2`` and the margin).
_AUX_PARAM_OPS = set()


def apply_loss(op, x, t, a, params):
    """``op.core(x, t[, a], *params)``: ``a`` only for the ops in ``_AUX_OPS`` and
    ``_AUX_PARAM_OPS``."""
    if op.name in _AUX_OPS:
        return op.core(x, t, a)
    if op.name in _AUX_PARAM_OPS:
        return op.core(x, t, a, const(x, params[0]))
    return op.core(x, t, *(const(x, p) for p in params))


@overload(apply_loss, inline="always")
def _apply_loss_ol(op, x, t, a, params):
    if not isinstance(op, OpType):
        return None
    core = Op.registry[op.op_name].core
    if op.op_name in _AUX_OPS:
        return lambda op, x, t, a, params: core(x, t, a)
    if op.op_name in _AUX_PARAM_OPS:
        return lambda op, x, t, a, params: core(x, t, a, const(x, params[0]))
    if len(params) == 0:
        return lambda op, x, t, a, params: core(x, t)
    if len(params) == 1:
        return lambda op, x, t, a, params: core(x, t, const(x, params[0]))
    return None


def apply_grad(op, g, x, t, a, params):
    """``op.core(g, x, t[, a], *params)`` of a derivative core (``a``: ``_AUX_OPS`` only)."""
    if op.name in _AUX_OPS:
        return op.core(g, x, t, a)
    return op.core(g, x, t, *(const(x, p) for p in params))


@overload(apply_grad, inline="always")
def _apply_grad_ol(op, g, x, t, a, params):
    if not isinstance(op, OpType):
        return None
    core = Op.registry[op.op_name].core
    if op.op_name in _AUX_OPS:
        return lambda op, g, x, t, a, params: core(g, x, t, a)
    if len(params) == 0:
        return lambda op, g, x, t, a, params: core(g, x, t)
    if len(params) == 1:
        return lambda op, g, x, t, a, params: core(g, x, t, const(x, params[0]))
    return None


# ------------------------------------------------------------------ CPU kernels
# Kernel pair 1, the fused fast path: x and t contiguous 1-D of one size and
# dtype. ``out.size`` selects the mode: write every loss into ``out``
# (reduction='none'), or, with an empty ``out``, the float64 sum of each
# CHUNK into ``partials``. One specialization per (op, dtype) serves both.
# The loops index slices from 0: with an index that starts at a computed
# value, Numba's negative-index wraparound check stopped LLVM from
# vectorizing (docs/guides/architecture.rst, "Vectorization").
#
# The order of every loss sum (the forward kernels' and ``_with_grad``'s, so
# that their values share their bits): a chunk's losses are taken in blocks of
# BLOCK elements from the chunk's start; each block's losses are summed in
# float64 by ``_block_sum`` and the block sums are added in block order.
BLOCK = 1024


def _block_sum_impl(buf, m):
    """The float64 sum of ``buf[:m]``.

    Compiled with ``ROW_FASTMATH`` (``reassoc``: LLVM may split the sum into
    vector lanes, which it never does for a float sum in program order; no
    flag that touches NaN or inf), as a function of its own: every kernel calls
    this one compiled sum, whose order is fixed by the compiled code and ``m``,
    so the result does not depend on the kernel, the caller or the thread count.
    The loss cores themselves are compiled without fast-math flags.
    """
    s = 0.0
    for k in range(m):
        s += buf[k]
    return s


_block_sum = njit(fastmath=set(ROW_FASTMATH), **_config._COMMON)(_block_sum_impl)


#: Blocks per parallel task of the fused kernel: tasks finer than a chunk, so that
#: the few chunks of a medium size spread evenly over the threads (each block's sum
#: is stored; a chunk adds its blocks' sums in order, as every loss sum does).
TASK_BLOCKS = 4


@_config.core
def _loss_blocks(op, x, t, out, params, start, stop, sums):
    """Losses of x[start:stop] into out (if not empty), else the float64 sum of each
    block of BLOCK (``start`` a multiple of BLOCK) by :func:`_block_sum` into
    ``sums[block index]``.

    The losses of a block are computed by one flat loop (which LLVM
    vectorizes), into ``out`` or into a block buffer that is then summed while
    it is in cache. The loss core appears once: Numba's IR inlining of a core
    costs compile time per copy.
    """
    write = out.size != 0
    buf = np.empty(0 if write else BLOCK, out.dtype)
    for b in range(start, stop, BLOCK):
        e = min(b + BLOCK, stop)
        m = e - b
        xs = x[b:e]
        ts = t[b:e]
        dst = out[b:e] if write else buf
        for i in range(m):
            dst[i] = apply_loss(op, xs[i], ts[i], xs[i], params)
        if not write:
            sums[b // BLOCK] = _block_sum(dst, m)


def _loss(op, x, t, out, partials, params):
    n = x.size
    span = TASK_BLOCKS * BLOCK
    write = out.size != 0
    sums = np.empty(0 if write else (n + BLOCK - 1) // BLOCK)
    for k in prange((n + span - 1) // span):
        _loss_blocks(op, x, t, out, params, k * span, min(n, (k + 1) * span), sums)
    if not write:  # each chunk's block sums, added in order
        per = CHUNK // BLOCK
        for c in range(partials.size):
            s = 0.0
            for b in range(c * per, min(sums.size, (c + 1) * per)):
                s += sums[b]
            partials[c] = s


_loss_serial, _loss_parallel = _config.kernels(_loss)


# Kernel pair 2, weighted: loss(x[i], t[i], a[ja]) * w[jw], where an operand
# broadcast along a block of axes is read at j = (i // inner) % m. Per block
# of BLOCK elements, ``_gather`` reads the weights (a view of an operand of the
# loss's full size, else a scalar loop with counters, no division per element,
# into small buffers); then one flat loop (vectorized) computes the
# weighted losses into ``out`` or into a buffer that is summed in the order of
# every loss sum (see kernel pair 1).


@_config.core
def _weighted_range(op, x, t, a, am, ainner, w, wm, winner, params, out, start, stop):
    write = out.size != 0
    abuf = np.empty(BLOCK, a.dtype)
    wbuf = np.empty(BLOCK, w.dtype)
    lbuf = np.empty(BLOCK, x.dtype)
    s = 0.0
    for b in range(start, stop, BLOCK):
        e = min(b + BLOCK, stop)
        m = e - b
        ab = _gather(a, am, ainner, b, m, abuf)
        wb = _gather(w, wm, winner, b, m, wbuf)
        xs = x[b:e]
        ts = t[b:e]
        dst = out[b:e] if write else lbuf
        for k in range(m):
            dst[k] = apply_loss(op, xs[k], ts[k], ab[k], params) * wb[k]
        if not write:
            s += _block_sum(dst, m)
    return s


def _weighted(op, x, t, a, am, ainner, w, wm, winner, out, partials, params):
    n = x.size
    for c in prange(partials.size):
        partials[c] = _weighted_range(op, x, t, a, am, ainner, w, wm, winner, params, out,
                                      c * CHUNK, min(n, (c + 1) * CHUNK))


_weighted_serial, _weighted_parallel = _config.kernels(_weighted)


# Probability check for binary_cross_entropy: per chunk, the number of
# elements outside [0, 1] (NaN included). Runs before the loss kernel.
@_config.core
def _count_outside_unit(x, start, stop):
    xs = x[start:stop]
    bad = 0
    for i in range(xs.size):
        v = xs[i]
        bad += 0 if (v >= 0 and v <= 1) else 1
    return bad


def _outside_unit(x, counts):
    n = x.size
    for c in prange(counts.size):
        counts[c] = _count_outside_unit(x, c * CHUNK, min(n, (c + 1) * CHUNK))


_outside_unit_serial, _outside_unit_parallel = _config.kernels(_outside_unit)


# ------------------------------------------------------------ the Python driver
_EMPTY = {}


def _empty(dtype):
    """A shared, never-written 0-size array: the 'no output' / 'no partials' flag."""
    e = _EMPTY.get(dtype)
    if e is None:
        e = _EMPTY[dtype] = np.empty(0, dtype)
    return e


_ONE = {}


def _one(dtype):
    """A shared, read-only one-element array holding 1 (the weight of no weight)."""
    e = _ONE.get(dtype)
    if e is None:
        e = _ONE[dtype] = np.ones(1, dtype)
        e.flags.writeable = False
    return e


#: (input dtype, target dtype, the other arrays' dtypes) -> (compute dtype, result
#: dtype), once checked
_PAIR_DTYPES = {}


def _arrays(input, target, others=()):
    """input, target (and weights) as ndarrays, with the compute and result dtypes."""
    x = input if type(input) is np.ndarray else as_array(input, "input")
    t = target if type(target) is np.ndarray else as_array(target, "target")
    key = (x.dtype, t.dtype) + tuple(o.dtype for _, o in others)
    pair = _PAIR_DTYPES.get(key)
    if pair is not None:
        return x, t, *pair
    result_dtype(x.dtype, "input")
    result_dtype(t.dtype, "target")
    for name, o in others:
        result_dtype(o.dtype, name)
    compute, result = result_dtype(np.result_type(*key))
    _PAIR_DTYPES[key] = (compute, result)
    return x, t, compute, result


def _optional(arr, name):
    if arr is None:
        return None
    return arr if type(arr) is np.ndarray else as_array(arr, name)


def _broadcast_shape(x, t):
    try:
        return np.broadcast_shapes(x.shape, t.shape)
    except ValueError:
        raise ValueError(f"input of shape {x.shape} and target of shape {t.shape} do not "
                         "broadcast together") from None


def _warn_size(x, t):
    warnings.warn(f"Using a target size ({t.shape}) that is different to the input size "
                  f"({x.shape}). This will likely lead to incorrect results due to "
                  "broadcasting. Please ensure they have the same size.",
                  UserWarning, stacklevel=4)


def target_grows_input(input, target):
    """Whether broadcasting ``target`` against ``input`` gives a shape other than
    ``input``'s (PyTorch's ``soft_margin_loss`` writes into an output of the
    input's shape and rejects that). Shapes that do not broadcast at all give
    False: the loss's driver reports them."""
    xs, ts = np.shape(input), np.shape(target)
    if len(ts) > len(xs):
        return True
    return any(xd == 1 and td != 1 for xd, td in zip(xs[::-1], ts[::-1], strict=False))


@overload(target_grows_input)
def _target_grows_input_ol(input, target):
    xa, ta = isinstance(input, types.Array), isinstance(target, types.Array)
    if not ta:
        return lambda input, target: False
    if not xa:
        return lambda input, target: target.ndim > 0

    def impl(input, target):
        xs, ts = input.shape, target.shape
        if len(ts) > len(xs):
            return True
        for i in range(1, len(ts) + 1):
            if xs[len(xs) - i] == 1 and ts[len(ts) - i] != 1:
                return True
        return False

    return impl


def _check_broadcasts_to(arr, name, shape):
    try:
        ok = np.broadcast_shapes(arr.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"{name} of shape {arr.shape} does not broadcast to the input's "
                         f"shape {shape}")


def _index_map(arr, shape, n, compute):
    """(values, m, inner): arr broadcast to ``shape`` reads values[(i // inner) % m]."""
    if arr.shape == shape and arr.dtype == compute and arr.flags.c_contiguous:
        return arr.reshape(-1), n, 1  # the operand itself (the common call)
    nd = len(shape)
    s = (1,) * (nd - arr.ndim) + arr.shape
    dims = [d for d in range(nd) if s[d] != 1 and shape[d] != 1]
    if not dims:
        return np.ascontiguousarray(arr, dtype=compute).reshape(-1)[:1], 1, 1
    d0, d1 = dims[0], dims[-1] + 1
    if all(s[d] == shape[d] for d in range(d0, d1)):
        return (np.ascontiguousarray(arr, dtype=compute).reshape(-1),
                math.prod(shape[d0:d1]), math.prod(shape[d1:]))
    full = np.ascontiguousarray(np.broadcast_to(arr, shape), dtype=compute)
    return full.reshape(-1), n, 1


def _flat_pair(x, t, shape, compute):
    """x, t as contiguous 1-D arrays of ``compute`` in one memory order, and the order."""
    n = math.prod(shape)
    if x.shape != shape:  # a reshape keeps the array writable: one kernel specialization
        x = x.reshape(shape) if x.size == n else np.broadcast_to(x, shape)
    if t.shape != shape:
        t = t.reshape(shape) if t.size == n else np.broadcast_to(t, shape)
    if x.dtype != compute:
        x = x.astype(compute)
    if t.dtype != compute:
        t = t.astype(compute)
    if x.flags.c_contiguous and t.flags.c_contiguous:
        order = "C"
    elif x.flags.f_contiguous and t.flags.f_contiguous:
        order = "F"
    else:
        order = "C"
        x = np.ascontiguousarray(x)
        t = np.ascontiguousarray(t)
    return x.ravel(order=order), t.ravel(order=order), order


def _flat_c(x, shape, compute):
    """x broadcast to ``shape`` as a C-contiguous 1-D array of ``compute`` (a view if it can)."""
    if x.shape != shape:
        x = x.reshape(shape) if x.size == math.prod(shape) else np.broadcast_to(x, shape)
    return np.ascontiguousarray(x, dtype=compute).reshape(-1)


def _check_unit(flat, name):
    counts = np.empty(chunk_count(flat.size), np.int64)
    launch(_outside_unit_serial, _outside_unit_parallel,
           ("unit", flat.dtype.char, flat.flags.writeable), flat.size, flat, counts)
    bad = int(counts[0]) if counts.size == 1 else int(counts.sum())
    if bad:
        raise ValueError(f"{name}: all elements of {name} should be probabilities between 0 "
                         f"and 1 ({bad} of {flat.size} are outside [0, 1] or NaN)")


def _div(a, b):
    """a / b in float64 with IEEE results for b == 0 (nan for 0 / 0)."""
    if b != 0:
        return a / b
    if a != a or a == 0:
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _run(op, params, x, t, shape, compute, result, reduction, weight=None, aux=None,
         check_unit=False):
    """Compute the loss of x against t (broadcast to ``shape``); see the module doc.

    Returns the 'none' array, or the float64 sum for 'mean'/'sum' (the caller divides).
    """
    n = math.prod(shape)
    if params:
        params = tuple(compute.type(p) for p in params)
    if weight is None and aux is None:
        xf, tf, order = _flat_pair(x, t, shape, compute)
        if check_unit and n:
            _check_unit(xf, "input")
            _check_unit(tf, "target")
        key = (op.name, compute.char, xf.flags.writeable, tf.flags.writeable)
        partials = np.empty(chunk_count(n), np.float64)
        if reduction == "none":
            res = _memory.empty(shape, compute, order=order)
            if n:
                launch(_loss_serial, _loss_parallel, key, n,
                       op, xf, tf, res.ravel(order=order), partials, params)
            return res if result == compute else res.astype(result)
        if n:
            launch(_loss_serial, _loss_parallel, key, n,
                   op, xf, tf, _empty(compute), partials, params)
        return sum_partials(partials)

    # weighted: everything in C order (other layouts are copied)
    xf, tf = _flat_c(x, shape, compute), _flat_c(t, shape, compute)
    if check_unit and n:
        _check_unit(xf, "input")
        _check_unit(tf, "target")
    if weight is None:
        w, wm, winner = _one(compute), 1, 1
    else:
        w, wm, winner = _index_map(weight, shape, n, compute)
    if aux is None:
        a, am, ainner = w, 1, 1
    else:
        a, am, ainner = _index_map(aux, shape, n, compute)
    partials = np.empty(chunk_count(n), np.float64)
    out = _memory.empty(shape, compute) if reduction == "none" else None
    if n:
        key = ("weighted", op.name, compute.char, xf.flags.writeable, tf.flags.writeable,
               a.flags.writeable, w.flags.writeable)
        launch(_weighted_serial, _weighted_parallel, key, n,
               op, xf, tf, a, am, ainner, w, wm, winner,
               _empty(compute) if out is None else out.reshape(-1), partials, params)
    if out is not None:
        return out if result == compute else out.astype(result)
    return sum_partials(partials)


def _reduce(total, n, reduction, result):
    """The loss value of a float64 sum: a NumPy scalar of the result dtype."""
    return result.type(total if reduction == "sum" else _div(total, n))


# --------------------------------------------------------------- public losses
def _regression(op, params, input, target, size_average, reduce, reduction, weight,
                weight_sum=True):
    """The pointwise losses of the op table (PyTorch's Python-level semantics); with
    ``weight_sum``, a weighted 'mean' divides by ``weight.sum()``, else by the count."""
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().pointwise(op, params, input, target, size_average, reduce,
                                    reduction, weight, weight_sum)
    w = _optional(weight, "weight")
    x, t, compute, result = _arrays(input, target, () if w is None else (("weight", w),))
    if x.shape != t.shape:
        _warn_size(x, t)
    reduction = reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    shape = x.shape if x.shape == t.shape else _broadcast_shape(x, t)
    if w is not None and w.shape != x.shape:
        raise ValueError(f"weight of shape {w.shape} must have the input's shape {x.shape} "
                         "(Weights and input must have the same size)")
    res = _run(op, params, x, t, shape, compute, result, reduction, weight=w)
    if reduction == "none":
        return res
    n = math.prod(shape)
    if w is not None and reduction == "mean" and weight_sum:
        # PyTorch: sum(weighted losses) / sum(weight), weight as given
        return result.type(_div(res, float(np.sum(w, dtype=np.float64))))
    return _reduce(res, n, reduction, result)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target=False):
    r"""Pointwise Kullback-Leibler divergence for a log-probability ``input``.

    .. math::
        \ell_i = y_i (\log y_i - x_i) \quad\text{or, with log\_target,}\quad
        \ell_i = e^{y_i} (y_i - x_i)

    A zero target contributes :math:`0` (:math:`0 \log 0 = 0`, PyTorch's
    ``xlogy``); a negative target gives NaN.

    Parameters
    ----------
    input, target : array_like
        Shapes that broadcast together (no warning, as PyTorch).
    reduction : {'mean', 'batchmean', 'sum', 'none'}
        ``'batchmean'``: the sum divided by ``input.shape[0]`` (the true KL
        divergence per sample; for a 0-d input, the sum). ``'mean'`` divides
        by the number of elements (PyTorch warns that this is not the KL
        divergence; nbops does not warn).
    log_target : bool, default False
        ``target`` holds log-probabilities.
    size_average, reduce : bool, optional
        Deprecated, as :func:`l1_loss`.

    Returns
    -------
    ndarray or NumPy scalar
        ``reduction='none'``: the elementwise losses (the broadcast shape);
        otherwise a NumPy scalar of the computation dtype (float32 stays
        float32).

    Notes
    -----
    Same as ``torch.nn.functional.kl_div``, without PyTorch's warning for
    ``reduction='mean'`` (see the semantics guide).

    Examples
    --------
    >>> x = np.log(np.array([[0.25, 0.75]]))
    >>> nbops.kl_div(x, np.array([[0.5, 0.5]]), reduction="batchmean")
    np.float64(0.14384103622589045)
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().kl_div(input, target=target, size_average=size_average, reduce=reduce,
                              reduction=reduction, log_target=log_target)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().kl_div(input, target, size_average, reduce, reduction, log_target)
    x, t, compute, result = _arrays(input, target)
    plan = reduction_plan(reduction, size_average, reduce, batchmean=True, stacklevel=2)
    base = plan.mode
    batch = plan.batch_divisor(x.shape)
    shape = x.shape if x.shape == t.shape else _broadcast_shape(x, t)
    op = KL_DIV_LOG if log_target else KL_DIV
    res = _run(op, (), x, t, shape, compute, result, base)
    if base == "none":
        if batch != 1:
            res = (res / np.asarray(batch, res.dtype)).astype(res.dtype, copy=False)
        return res
    value = res if base == "sum" else _div(res, math.prod(shape))
    if batch != 1:
        value = _div(value, batch)
    return result.type(value)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    r"""Binary cross-entropy of probabilities,
    :math:`\ell_i = -w_i\,[y_i \log x_i + (1 - y_i) \log(1 - x_i)]`.

    Each logarithm is clamped at :math:`-100` (as PyTorch), so ``x = 0`` or
    ``1`` gives a finite loss.

    Parameters
    ----------
    input, target : array_like
        Probabilities of the same shape. Any element outside [0, 1] (or NaN)
        raises ``ValueError`` naming the argument, before the loss is computed.
    weight : array_like, optional
        Rescaling weights broadcastable to ``input``'s shape.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        As :func:`l1_loss` (``'mean'`` divides by the number of elements).
    size_average, reduce : bool, optional
        Deprecated, as :func:`l1_loss`.

    Returns
    -------
    ndarray or NumPy scalar
        ``reduction='none'``: the elementwise losses (the broadcast shape);
        otherwise a NumPy scalar of the computation dtype (float32 stays
        float32).

    Notes
    -----
    Same as ``torch.nn.functional.binary_cross_entropy``; nbops raises
    ``ValueError`` (PyTorch: ``RuntimeError``) for probabilities outside [0, 1].

    Examples
    --------
    >>> nbops.binary_cross_entropy(np.array([0.9, 0.2]), np.array([1.0, 0.0]))
    np.float64(0.16425203348601802)
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().binary_cross_entropy(input, target=target, weight=weight,
                                            size_average=size_average, reduce=reduce,
                                            reduction=reduction)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().binary_cross_entropy(input, target, weight, size_average, reduce,
                                               reduction)
    w = _optional(weight, "weight")
    x, t, compute, result = _arrays(input, target, () if w is None else (("weight", w),))
    reduction = reduction_plan(reduction, size_average, reduce, stacklevel=2).mode
    if x.shape != t.shape:
        raise ValueError(f"target of shape {t.shape} must have the input's shape {x.shape} "
                         "(binary_cross_entropy does not broadcast them)")
    if w is not None:
        _check_broadcasts_to(w, "weight", x.shape)
    res = _run(BCE, (), x, t, x.shape, compute, result, reduction, weight=w,
               check_unit=True)
    return res if reduction == "none" else _reduce(res, x.size, reduction, result)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    r"""Binary cross-entropy of logits, computed stably.

    The loss of element :math:`i` is

    .. math::
        \ell_i = w_i\,[(1 - y_i)\,x_i - (1 + (p_i - 1)\,y_i)\log\sigma(x_i)]

    with :math:`\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})` (never
    overflows) and :math:`p` the ``pos_weight`` (1 when not given). As in
    PyTorch, a logit of ``+inf`` with target 1 or ``-inf`` with target 0 gives
    NaN (``0 * inf``), ``+inf`` with target 0 gives ``inf``.

    Parameters
    ----------
    input, target : array_like
        Logits and targets of the same shape.
    weight : array_like, optional
        Rescaling weights broadcastable to ``input``'s shape.
    pos_weight : array_like, optional
        Weight of the positive class, broadcast against ``input`` as NumPy
        and PyTorch do: shape ``(C,)`` weighs the classes along the last axis;
        it must broadcast to ``input``'s shape.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        As :func:`binary_cross_entropy`.
    size_average, reduce : bool, optional
        Deprecated, as :func:`l1_loss`.

    Returns
    -------
    ndarray or NumPy scalar
        ``reduction='none'``: the elementwise losses (the broadcast shape);
        otherwise a NumPy scalar of the computation dtype (float32 stays
        float32).

    Notes
    -----
    Same as ``torch.nn.functional.binary_cross_entropy_with_logits``,
    including its values at infinite logits.

    Examples
    --------
    >>> nbops.binary_cross_entropy_with_logits(np.array([2.0, -1.0]), np.array([1.0, 0.0]))
    np.float64(0.22009484928059764)
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().binary_cross_entropy_with_logits(input, target=target, weight=weight,
                                                        size_average=size_average, reduce=reduce,
                                                        reduction=reduction, pos_weight=pos_weight)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().binary_cross_entropy_with_logits(
            input, target, weight, size_average, reduce, reduction, pos_weight)
    w = _optional(weight, "weight")
    pw = _optional(pos_weight, "pos_weight")
    others = tuple((name, v) for name, v in (("weight", w), ("pos_weight", pw))
                   if v is not None)
    x, t, compute, result = _arrays(input, target, others)
    reduction = reduction_plan(reduction, size_average, reduce, stacklevel=2).mode
    if x.shape != t.shape:
        raise ValueError(f"target of shape {t.shape} must have the input's shape {x.shape}")
    if w is not None:
        _check_broadcasts_to(w, "weight", x.shape)
    if pw is not None:
        _check_broadcasts_to(pw, "pos_weight", x.shape)
    op = BCE_LOGITS if pw is None else BCE_LOGITS_PW
    res = _run(op, (), x, t, x.shape, compute, result, reduction, weight=w, aux=pw)
    return res if reduction == "none" else _reduce(res, x.size, reduction, result)


# ------------------------------------------------- the same names inside @njit
# Plain serial loops (never the parallel kernels: see docs/guides/architecture.rst,
# "Cache, fork and thread rules"). ``reduction``
# (and the deprecated flags) must be compile-time constants: with
# ``prefer_literal=True`` a literal string arrives as ``types.StringLiteral``,
# so 'none' can return an array and 'mean' a scalar from one overload.
# ``log_target`` may be a constant or a runtime bool. The reduction is planned by
# nbops/_ops/plan.py as on the CPU path (nbops/_ops/njit_args.py: an invalid
# one raises its ValueError when called; the legacy flags warn when compiling).
# Sums are sequential float64.
def _nj_reduction(size_average, reduce, reduction):
    """The reduction mode of literal arguments, planned as on the CPU path."""
    return NJ.reduction_plan(size_average, reduce, reduction).mode


def _nj_dtype(*args):
    """Compute dtype (a Numba type) of the array/scalar argument types."""
    dts = []
    for a in args:
        if NJ.is_none(a):
            continue
        if isinstance(a, types.Array):
            dts.append(as_dtype(a.dtype))
        elif isinstance(a, (types.Number, types.Boolean)):
            dts.append(as_dtype(a))
        else:
            raise errors.TypingError(f"nbops: expected an array or a number, got {a}")
    return from_dtype(result_dtype(np.result_type(*dts))[0])


def _nj_ndim(a):
    return a.ndim if isinstance(a, types.Array) else 0


def _stub(*args):
    raise NotImplementedError("only callable inside numba-compiled code")


def _nj_flat(a, shape, n):
    return _stub()


@overload(_nj_flat)
def _nj_flat_ol(a, shape, n):
    """``a`` broadcast to ``shape`` as a C-contiguous 1-D array (a view when it can)."""
    if NJ.is_none(a):
        return lambda a, shape, n: None
    if isinstance(a, types.Array) and a.layout == "C" and a.ndim == len(shape):
        def impl_view(a, shape, n):
            if a.shape == shape:
                return a.reshape(n)
            return np.ascontiguousarray(np.broadcast_to(a, shape)).reshape(n)

        return impl_view
    return lambda a, shape, n: np.ascontiguousarray(
        np.broadcast_to(np.asarray(a), shape)).reshape(n)


def _nj_prepare(x, t, w, a):
    return _stub()


@overload(_nj_prepare)
def _nj_prepare_ol(x, t, w, a):
    def impl(x, t, w, a):
        xa = np.asarray(x)
        ta = np.asarray(t)
        shape = np.broadcast_shapes(xa.shape, ta.shape)
        n = 1
        for s in shape:
            n *= s
        return (shape, n, _nj_flat(xa, shape, n), _nj_flat(ta, shape, n),
                _nj_flat(w, shape, n), _nj_flat(a, shape, n))

    return impl


def _nj_aux(af, i, xv):
    return _stub()


@overload(_nj_aux, inline="always")
def _nj_aux_ol(af, i, xv):
    if NJ.is_none(af):
        return lambda af, i, xv: xv
    return lambda af, i, xv: const(xv, af[i])


def _nj_weigh(v, wf, i):
    return _stub()


@overload(_nj_weigh, inline="always")
def _nj_weigh_ol(v, wf, i):
    if NJ.is_none(wf):
        return lambda v, wf, i: v
    return lambda v, wf, i: v * const(v, wf[i])


def _nj_map(op, x, t, w, a, params):
    return _stub()


@overload(_nj_map)
def _nj_map_ol(op, x, t, w, a, params):
    """The array of losses ('none'), of the broadcast shape."""
    dt = _nj_dtype(x, t, w, a)

    def impl(op, x, t, w, a, params):
        shape, n, xf, tf, wf, af = _nj_prepare(x, t, w, a)
        out = np.empty(shape, dt)
        of = out.reshape(n)
        for i in range(n):
            xv = dt(xf[i])
            v = apply_loss(op, xv, dt(tf[i]), _nj_aux(af, i, xv), params)
            of[i] = _nj_weigh(v, wf, i)
        return out

    return impl


def _nj_sum(op, x, t, w, a, params):
    return _stub()


@overload(_nj_sum)
def _nj_sum_ol(op, x, t, w, a, params):
    """(float64 sum of the losses, number of elements)."""
    dt = _nj_dtype(x, t, w, a)

    def impl(op, x, t, w, a, params):
        shape, n, xf, tf, wf, af = _nj_prepare(x, t, w, a)
        s = 0.0
        for i in range(n):
            xv = dt(xf[i])
            v = apply_loss(op, xv, dt(tf[i]), _nj_aux(af, i, xv), params)
            s += _nj_weigh(v, wf, i)
        return s, n

    return impl


@register_jitable
def _nj_div(a, b):
    """a / b with IEEE results for b == 0, whatever the caller's error model."""
    if b != 0:
        return a / b
    if a != a or a == 0:
        return np.nan
    return math.copysign(np.inf, a) * math.copysign(1.0, b)


def _nj_finish(s, n, mean, dt):
    return _stub()


def _nj_check_same_shape(x, t, what):
    return _stub()


@overload(_nj_check_same_shape)
def _nj_check_same_shape_ol(x, t, what):
    msg = f"nbops: {NJ.literal(what, 'what')}"
    if _nj_ndim(x) != _nj_ndim(t):
        def impl_never(x, t, what):
            raise ValueError(msg)

        return impl_never

    def impl(x, t, what):
        if np.asarray(x).shape != np.asarray(t).shape:
            raise ValueError(msg)

    return impl


def _nj_check_unit(x, what):
    return _stub()


@overload(_nj_check_unit)
def _nj_check_unit_ol(x, what):
    msg = f"nbops: {NJ.literal(what, 'what')}"

    def impl(x, what):
        for v in np.asarray(x).flat:
            if not (v >= 0 and v <= 1):
                raise ValueError(msg)

    return impl


def _nj_loss(op, input, target, size_average, reduce, reduction, weight, weight_sum=True):
    """The body of a pointwise loss's ``@overload`` (nbops/_ops/table.py generates
    the overload): ``body(input, target, weight, params)`` for these argument types."""
    red = _nj_reduction(size_average, reduce, reduction)
    dt = _nj_dtype(input, target, weight)
    weighted = not NJ.is_none(weight)
    by_weight = weighted and weight_sum
    mean = red == "mean"

    def check(input, weight):
        if weighted:
            _nj_check_same_shape(input, weight, "weight must have the input's shape")

    check = register_jitable(check)
    if red == "none":
        @register_jitable
        def body_none(input, target, weight, params):
            check(input, weight)
            return _nj_map(op, input, target, weight, None, params)

        return body_none

    @register_jitable
    def body(input, target, weight, params):
        check(input, weight)
        s, n = _nj_sum(op, input, target, weight, None, params)
        if mean:
            s = _nj_div(s, np.sum(np.asarray(weight), dtype=np.float64) if by_weight else n)
        return dt(s)

    return body


@overload(kl_div, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _kl_div_njit(input, target, size_average=None, reduce=None, reduction="mean",
                 log_target=False):
    plan = NJ.reduction_plan(size_average, reduce, reduction, batchmean=True)
    red = plan.mode
    batch = plan.batch and _nj_ndim(input) != 0
    dt = _nj_dtype(input, target)
    mean = red == "mean"
    if isinstance(log_target, (bool, types.BooleanLiteral, types.Omitted)):
        static_op = KL_DIV_LOG if NJ.literal(log_target, "log_target") else KL_DIV
    else:
        static_op = None

    @register_jitable
    def op_map(input, target, log_target):
        if static_op is not None:
            return _nj_map(static_op, input, target, None, None, ())
        if log_target:
            return _nj_map(KL_DIV_LOG, input, target, None, None, ())
        return _nj_map(KL_DIV, input, target, None, None, ())

    @register_jitable
    def op_sum(input, target, log_target):
        if static_op is not None:
            return _nj_sum(static_op, input, target, None, None, ())
        if log_target:
            return _nj_sum(KL_DIV_LOG, input, target, None, None, ())
        return _nj_sum(KL_DIV, input, target, None, None, ())

    if red == "none":
        def impl_none(input, target, size_average=None, reduce=None, reduction="mean",
                      log_target=False):
            out = op_map(input, target, log_target)
            if batch:  # PyTorch divides by the batch size even then
                of = out.reshape(out.size)
                b = dt(np.asarray(input).shape[0])
                for i in range(of.size):
                    of[i] = of[i] / b
            return out

        return impl_none

    def impl(input, target, size_average=None, reduce=None, reduction="mean",
             log_target=False):
        s, n = op_sum(input, target, log_target)
        if mean:
            s = _nj_div(s, n)
        if batch:
            s = _nj_div(s, np.asarray(input).shape[0])
        return dt(s)

    return impl


@overload(binary_cross_entropy, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _bce_njit(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    red = _nj_reduction(size_average, reduce, reduction)
    dt = _nj_dtype(input, target, weight)
    mean = red == "mean"

    @register_jitable
    def check(input, target):
        _nj_check_same_shape(input, target, "binary_cross_entropy: target must have the "
                                            "input's shape")
        _nj_check_unit(input, "binary_cross_entropy: all elements of input should be "
                              "between 0 and 1")
        _nj_check_unit(target, "binary_cross_entropy: all elements of target should be "
                               "between 0 and 1")

    if red == "none":
        def impl_none(input, target, weight=None, size_average=None, reduce=None,
                      reduction="mean"):
            check(input, target)
            return _nj_map(BCE, input, target, weight, None, ())

        return impl_none

    def impl(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
        check(input, target)
        s, n = _nj_sum(BCE, input, target, weight, None, ())
        return dt(_nj_div(s, n) if mean else s)

    return impl


@overload(binary_cross_entropy_with_logits, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _bce_logits_njit(input, target, weight=None, size_average=None, reduce=None,
                     reduction="mean", pos_weight=None):
    red = _nj_reduction(size_average, reduce, reduction)
    dt = _nj_dtype(input, target, weight, pos_weight)
    mean = red == "mean"
    op = BCE_LOGITS if NJ.is_none(pos_weight) else BCE_LOGITS_PW

    @register_jitable
    def check(input, target):
        _nj_check_same_shape(input, target, "binary_cross_entropy_with_logits: target "
                                            "must have the input's shape")

    if red == "none":
        def impl_none(input, target, weight=None, size_average=None, reduce=None,
                      reduction="mean", pos_weight=None):
            check(input, target)
            return _nj_map(op, input, target, weight, pos_weight, ())

        return impl_none

    def impl(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
             pos_weight=None):
        check(input, target)
        s, n = _nj_sum(op, input, target, weight, pos_weight, ())
        return dt(_nj_div(s, n) if mean else s)

    return impl


# ------------------------------------------------------------------ backward
# ``<loss>_backward`` (the gradient of the input) and ``<loss>_with_grad`` (the
# loss and that gradient from one pass): one kernel pair, over the derivative
# cores of nbops/scalar/losses.py. Per chunk of CHUNK elements (the forward's
# chunks), block by block: gather the broadcast weight / pos_weight (as the
# weighted forward kernel), write the gradient (``g`` per element, or the
# scalar ``c`` that holds the reduction's factor), and with ``want`` (None or True: a
# backward's kernel compiles no loss loop, Numba prunes ``want is not None``) also the
# losses into a block buffer summed exactly as the forward kernels sum them (the
# same blocks, each by ``_block_sum``, in the same order, so ``<loss>_with_grad``'s
# value is bit-identical to the forward's for the same layout). The block is still in
# cache when the loss loop reads it.
def _gather(arr, m, inner, start, count, buf):
    return _stub()


@overload(_gather)
def _gather_ol(arr, m, inner, start, count, buf):
    """The broadcast ``arr`` at ``start .. start + count``: a view of ``arr`` where it
    is the operand itself, else gathered into ``buf[:count]``; None for no array."""
    if NJ.is_none(arr):
        return lambda arr, m, inner, start, count, buf: None

    def impl(arr, m, inner, start, count, buf):
        if inner == 1 and m == arr.size and start + count <= m:  # j = i: the operand
            return arr[start:start + count]
        if m == 1:  # one value (vectorized fill)
            v = arr[0]
            for k in range(count):
                buf[k] = v
            return buf
        q = start // inner
        r = start - q * inner
        j = q % m
        for k in range(count):
            buf[k] = arr[j]
            r += 1
            if r == inner:
                r = 0
                j += 1
                if j == m:
                    j = 0
        return buf

    return impl


@_config.core
def _grad_chunk(lop, gop, gop2, x, t, a, am, ainner, w, wm, winner, g, c, params, out, out2,
                want, start, stop):
    """Gradients of x[start:stop] into out (and, with ``gop2`` not None, the second
    derivative core's into out2); with ``want`` (True, not None), the float64 sum of
    the losses."""
    abuf = np.empty(BLOCK, x.dtype)
    wbuf = np.empty(BLOCK, x.dtype)
    lbuf = np.empty(BLOCK, x.dtype)
    full = g.size != 0
    cbuf = np.empty(0 if full else BLOCK, x.dtype)  # the scalar gradient, as a block
    cbuf[:] = c  # (one loop over the derivative core, not two: it compiles once)
    s = 0.0
    for b in range(start, stop, BLOCK):
        e = min(b + BLOCK, stop)
        m = e - b
        ab = _gather(a, am, ainner, b, m, abuf)
        wb = _gather(w, wm, winner, b, m, wbuf)
        xs = x[b:e]
        ts = t[b:e]
        os = out[b:e]
        gs = g[b:e] if full else cbuf
        for k in range(m):
            os[k] = _nj_weigh(apply_grad(gop, gs[k], xs[k], ts[k], _nj_aux(ab, k, xs[k]),
                                         params), wb, k)
        if gop2 is not None:
            o2 = out2[b:e]
            for k in range(m):
                o2[k] = _nj_weigh(apply_grad(gop2, gs[k], xs[k], ts[k], _nj_aux(ab, k, xs[k]),
                                             params), wb, k)
        if want is not None:
            for k in range(m):
                lbuf[k] = _nj_weigh(apply_loss(lop, xs[k], ts[k], _nj_aux(ab, k, xs[k]),
                                               params), wb, k)
            s += _block_sum(lbuf, m)
    return s


def _grad(lop, gop, gop2, x, t, a, am, ainner, w, wm, winner, g, c, params, out, out2,
          partials, want):
    n = x.size
    for ch in prange(partials.size):
        partials[ch] = _grad_chunk(lop, gop, gop2, x, t, a, am, ainner, w, wm, winner, g, c,
                                   params, out, out2, want, ch * CHUNK,
                                   min(n, (ch + 1) * CHUNK))


_grad_serial, _grad_parallel = _config.kernels(_grad)


def _grad_output(grad_output, mode, shape):
    """``grad_output`` checked against the forward's output: a float array of the
    loss's ``shape`` for ``'none'`` (returned), else a real scalar (a float)."""
    if mode == "none":
        g = grad_output if type(grad_output) is np.ndarray else as_array(grad_output,
                                                                          "grad_output")
        if g.dtype.kind != "f":
            raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
        if g.shape != shape:
            raise ValueError(f"grad_output has shape {g.shape}, expected the shape of the "
                             f"unreduced loss {shape} (reduction='none')")
        return g
    if isinstance(grad_output, (bool, np.bool_)):
        raise TypeError("grad_output: expected a real number, got a bool")
    if isinstance(grad_output, (int, float, np.floating, np.integer)):
        return float(grad_output)
    g = as_array(grad_output, "grad_output")
    if g.shape != ():
        raise ValueError(f"grad_output has shape {g.shape}, expected a scalar (shape ()) for "
                         f"reduction='{mode}'")
    if g.dtype.kind not in "fiu":
        raise TypeError(f"grad_output: expected a real number, got dtype {g.dtype}")
    return float(g)


def _sum_to(grad, shape):
    """``grad`` summed over the axes along which an input of ``shape`` was broadcast
    (float64 sums, NumPy's fixed order)."""
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + d for d, s in enumerate(shape)
                                      if s == 1 and grad.shape[lead + d] != 1)
    return grad.sum(axis=axes, dtype=np.float64).reshape(shape).astype(grad.dtype)


def _grad_pass(lop, gop, params, x, t, shape, compute, result, g, c, weight=None, aux=None,
               want=False, out=None, gop2=None):
    """The gradient of ``x`` (the loss of x against t broadcast to ``shape``) and, with
    ``want``, the float64 sum of the losses (else 0.0); ``g`` the per-element gradient
    of the losses (an array of ``shape``), or None and the scalar ``c``. Writes into
    ``out`` (checked) when given. With ``gop2`` (a second derivative core, e.g. of the
    variance), ``(grad, total, grad2)``: ``grad2`` its gradients, of ``shape`` and the
    ``compute`` dtype, from the same pass."""
    n = math.prod(shape)
    if params:
        params = tuple(compute.type(p) for p in params)
    arrays = (x, t) if g is None else (x, t, g)
    if weight is None and aux is None and all(a.flags.f_contiguous for a in arrays) \
            and not all(a.flags.c_contiguous for a in arrays):
        order = "F"  # all Fortran-ordered: no copy (the forward's fast path sums so too)
    else:
        order = "C"
    xf, tf = _flat_order(x, shape, compute, order), _flat_order(t, shape, compute, order)
    gf = _empty(compute) if g is None else _flat_order(g, shape, compute, order)
    w = a = None
    wm = winner = am = ainner = 1
    if weight is not None:
        w, wm, winner = _index_map(weight, shape, n, compute)
    if aux is not None:
        a, am, ainner = _index_map(aux, shape, n, compute)
    direct = (out is not None and x.shape == shape and out.dtype == compute
              and (out.flags.c_contiguous if order == "C" else out.flags.f_contiguous)
              and not any(np.may_share_memory(out, v)
                          for v in (x, t, g, weight, aux) if v is not None))
    res = out if direct else _memory.empty(shape, compute, order=order)
    res2 = None if gop2 is None else _memory.empty(shape, compute, order=order)
    partials = np.empty(chunk_count(n), np.float64)
    if n:
        # (gop2 as a tuple: not one of the cost label's names)
        key = ("grad", lop.name, gop.name, compute.char, w is None, a is None, bool(want),
               tuple(v.flags.writeable for v in (xf, tf, gf, w, a) if v is not None),
               None if gop2 is None else (gop2.name,))
        launch(_grad_serial, _grad_parallel, key, n, lop, gop, gop2, xf, tf, a, am, ainner,
               w, wm, winner, gf, compute.type(c), params, res.ravel(order=order),
               None if gop2 is None else res2.ravel(order=order), partials,
               True if want else None)
    total = sum_partials(partials) if want else 0.0
    if gop2 is not None:
        return _grad_result(res, x, shape, result, out, direct), total, res2
    return _grad_result(res, x, shape, result, out, direct), total


def _grad_result(res, x, shape, result, out, direct):
    """The gradient of ``x`` from ``res`` (of ``shape``): summed over the broadcast axes,
    in the ``result`` dtype, in ``out`` when given."""
    if direct:
        return out
    if x.shape != shape:
        res = _sum_to(res, x.shape)
    if result != res.dtype:
        res = res.astype(result)
    if out is not None:
        np.copyto(out, res, casting="unsafe")
        return out
    return res


def _flat_order(a, shape, compute, order):
    """``a`` broadcast to ``shape`` as a 1-D array of ``compute`` in ``order`` (a view if
    it can)."""
    if a.shape != shape:
        a = a.reshape(shape) if a.size == math.prod(shape) else np.broadcast_to(a, shape)
    if a.dtype != compute:
        a = a.astype(compute)
    return a.ravel(order=order)


def _scale(g, divisor):
    """The per-element factor of a reduced loss's gradient: ``g / divisor``."""
    return g if divisor == 1 else _div(g, divisor)


def _backward_arrays(grad_output, input, target, mode, shape_of, others):
    """Checked arrays: (g or None, c, x, t, shape, compute, result)."""
    x = input if type(input) is np.ndarray else as_array(input, "input")
    t = target if type(target) is np.ndarray else as_array(target, "target")
    shape = shape_of(x, t)
    g = _grad_output(grad_output, mode, shape)
    c = 1.0
    if mode != "none":
        c, g = g, None
    named = [(n, v) for n, v in others if v is not None]
    if g is not None:
        named.append(("grad_output", g))
    x, t, compute, result = _arrays(x, t, tuple(named))
    return g, c, x, t, shape, compute, result


def _regression_shape(x, t):
    return x.shape if x.shape == t.shape else _broadcast_shape(x, t)


def _check_weight_shape(w, x):
    if w is not None and w.shape != x.shape:
        raise ValueError(f"weight of shape {w.shape} must have the input's shape {x.shape} "
                         "(Weights and input must have the same size)")


def _regression_divisor(mode, w, n, weight_sum):
    if mode != "mean":
        return 1
    if w is not None and weight_sum:
        return float(np.sum(w, dtype=np.float64))
    return n


def _regression_backward(op, gop, params, grad_output, input, target, size_average, reduce,
                         reduction, weight, weight_sum=True, out=None):
    """The backward of a pointwise loss of the op table (generated functions call it)."""
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().pointwise_backward(op, gop, params, grad_output, input, target,
                                             size_average, reduce, reduction, weight,
                                             weight_sum, out)
    w = _optional(weight, "weight")
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    g, c, x, t, shape, compute, result = _backward_arrays(
        grad_output, input, target, mode, _regression_shape, (("weight", w),))
    _check_weight_shape(w, x)
    if out is not None:
        check_out(out, x.shape, result)
    c = _scale(c, _regression_divisor(mode, w, math.prod(shape), weight_sum))
    return _grad_pass(op, gop, params, x, t, shape, compute, result, g, c, weight=w,
                      out=out)[0]


def _regression_with_grad(op, gop, params, input, target, size_average, reduce, reduction,
                          weight, weight_sum=True):
    """``(loss, grad_input)`` of a pointwise loss of the op table, from one pass."""
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().pointwise_with_grad(op, gop, params, input, target, size_average,
                                              reduce, reduction, weight, weight_sum)
    w = _optional(weight, "weight")
    x, t, compute, result = _arrays(
        input if type(input) is np.ndarray else as_array(input, "input"),
        target if type(target) is np.ndarray else as_array(target, "target"),
        () if w is None else (("weight", w),))
    if x.shape != t.shape:
        _warn_size(x, t)
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    shape = _regression_shape(x, t)
    _check_weight_shape(w, x)
    if mode == "none":
        loss = _run(op, params, x, t, shape, compute, result, "none", weight=w)
        grad = _grad_pass(op, gop, params, x, t, shape, compute, result, None, 1.0,
                          weight=w)[0]
        return loss, grad
    n = math.prod(shape)
    divisor = _regression_divisor(mode, w, n, weight_sum)
    grad, total = _grad_pass(op, gop, params, x, t, shape, compute, result, None,
                             _scale(1.0, divisor), weight=w, want=True)
    if mode == "mean" and w is not None and weight_sum:
        return result.type(_div(total, divisor)), grad
    return _reduce(total, n, mode, result), grad


_KL_DOC_SHARED = """input, target : array_like
    As in :func:`kl_div` (shapes that broadcast together).
size_average, reduce : bool, optional
    Deprecated, as :func:`kl_div`.
reduction : {'mean', 'batchmean', 'sum', 'none'}
    The forward's reduction.
log_target : bool, default False
    ``target`` holds log-probabilities."""


def kl_div_backward(grad_output, input, target, size_average=None, reduce=None,
                    reduction="mean", log_target=False, *, out=None):
    r"""Backward of :func:`kl_div`: the gradient of its input.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for the reduced
        losses, a float array of the broadcast shape for ``reduction='none'``.
    input, target : array_like
        As in :func:`kl_div` (shapes that broadcast together).
    size_average, reduce : bool, optional
        Deprecated, as :func:`kl_div`.
    reduction : {'mean', 'batchmean', 'sum', 'none'}
        The forward's reduction.
    log_target : bool, default False
        ``target`` holds log-probabilities.
    out : ndarray, optional
        Array of ``input``'s shape and the result dtype to write into.

    Returns
    -------
    ndarray
        The gradient of ``input``: its shape (summed over the axes along which
        it was broadcast), the common float dtype of the arguments.

    Notes
    -----
    Element by element :math:`-g\,y_i`, or :math:`-g\,e^{y_i}` with
    ``log_target`` (:func:`nbops.scalar.kl_div_backward`), with ``g`` the
    gradient of the loss divided by the element count (``'mean'``) or by
    ``input.shape[0]`` (``'batchmean'``). Same as ``torch.autograd`` for
    ``torch.nn.functional.kl_div``.

    Examples
    --------
    >>> x = np.log(np.array([[0.25, 0.75]]))
    >>> nbops.kl_div_backward(1.0, x, np.array([[0.5, 0.5]]), reduction="batchmean")
    array([[-0.5, -0.5]])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().kl_div_backward(grad_output, input, target, size_average, reduce,
                                       reduction, log_target, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().kl_div_backward(grad_output, input, target, size_average, reduce,
                                          reduction, log_target, out=out)
    plan = reduction_plan(reduction, size_average, reduce, batchmean=True, stacklevel=2)
    mode = plan.mode
    g, c, x, t, shape, compute, result = _backward_arrays(
        grad_output, input, target, mode, _regression_shape, ())
    if out is not None:
        check_out(out, x.shape, result)
    batch = plan.batch_divisor(x.shape)
    op, gop = (KL_DIV_LOG, KL_DIV_LOG_GRAD) if log_target else (KL_DIV, KL_DIV_GRAD)
    if g is not None and batch != 1:  # 'batchmean' under the legacy flags, as the forward
        g = (g / np.asarray(batch, g.dtype)).astype(g.dtype, copy=False)
    c = _scale(c, (math.prod(shape) if mode == "mean" else 1) * batch)
    return _grad_pass(op, gop, (), x, t, shape, compute, result, g, c, out=out)[0]


def kl_div_with_grad(input, target, size_average=None, reduce=None, reduction="mean",
                     log_target=False):
    r"""The value of :func:`kl_div` and the gradient of its input, from one pass.

    Parameters
    ----------
    input, target : array_like
        As in :func:`kl_div` (shapes that broadcast together).
    size_average, reduce : bool, optional
        Deprecated, as :func:`kl_div`.
    reduction : {'mean', 'batchmean', 'sum', 'none'}
        As in :func:`kl_div`.
    log_target : bool, default False
        ``target`` holds log-probabilities.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly ``kl_div(input, target, ...)``.
    grad_input : ndarray
        ``kl_div_backward(1.0, input, target, ...)``; for ``reduction='none'``
        the gradient of the sum of the losses (``grad_output`` all ones).

    Notes
    -----
    One pass over ``input`` and ``target`` computes the losses (summed as the
    forward sums them) and writes the gradient (see :func:`kl_div_backward`).

    Examples
    --------
    >>> x = np.log(np.array([[0.25, 0.75]]))
    >>> loss, grad = nbops.kl_div_with_grad(x, np.array([[0.5, 0.5]]), reduction="sum")
    >>> grad
    array([[-0.5, -0.5]])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().kl_div_with_grad(input, target, size_average, reduce, reduction,
                                        log_target)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().kl_div_with_grad(input, target, size_average, reduce, reduction,
                                           log_target)
    plan = reduction_plan(reduction, size_average, reduce, batchmean=True, stacklevel=2)
    if plan.mode == "none":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # warned above
            loss = kl_div(input, target, size_average, reduce, reduction, log_target)
            return loss, kl_div_backward(np.ones(loss.shape, loss.dtype), input, target,
                                         size_average, reduce, reduction, log_target)
    x, t, compute, result = _arrays(
        input if type(input) is np.ndarray else as_array(input, "input"),
        target if type(target) is np.ndarray else as_array(target, "target"))
    shape = _regression_shape(x, t)
    n = math.prod(shape)
    batch = plan.batch_divisor(x.shape)
    op, gop = (KL_DIV_LOG, KL_DIV_LOG_GRAD) if log_target else (KL_DIV, KL_DIV_GRAD)
    c = _scale(1.0, (n if plan.mode == "mean" else 1) * batch)
    grad, total = _grad_pass(op, gop, (), x, t, shape, compute, result, None, c, want=True)
    value = total if plan.mode == "sum" else _div(total, n)
    if batch != 1:
        value = _div(value, batch)
    return result.type(value), grad


def _bce_arrays(grad_output, input, target, weight, mode, pos_weight=None, name="target"):
    w = _optional(weight, "weight")
    pw = _optional(pos_weight, "pos_weight")

    def same_shape(x, t):
        if x.shape != t.shape:
            raise ValueError(f"target of shape {t.shape} must have the input's shape "
                             f"{x.shape}")
        return x.shape

    g, c, x, t, shape, compute, result = _backward_arrays(
        grad_output, input, target, mode, same_shape, (("weight", w), ("pos_weight", pw)))
    if w is not None:
        _check_broadcasts_to(w, "weight", x.shape)
    if pw is not None:
        _check_broadcasts_to(pw, "pos_weight", x.shape)
    return g, c, x, t, w, pw, compute, result


def binary_cross_entropy_backward(grad_output, input, target, weight=None, size_average=None,
                                  reduce=None, reduction="mean", *, out=None):
    r"""Backward of :func:`binary_cross_entropy`: the gradient of its input.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for the reduced
        losses, a float array of ``input``'s shape for ``reduction='none'``.
    input, target : array_like
        As in :func:`binary_cross_entropy` (the same shape). Not checked to
        be in [0, 1] (as PyTorch's backward).
    weight : array_like, optional
        Rescaling weights broadcastable to ``input``'s shape.
    size_average, reduce : bool, optional
        Deprecated, as :func:`l1_loss`.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        The forward's reduction.
    out : ndarray, optional
        Array of ``input``'s shape and the result dtype to write into.

    Returns
    -------
    ndarray
        The gradient of ``input``: its shape, the common float dtype of the
        arguments.

    Notes
    -----
    Element by element :math:`w_i\,g\,(x_i - y_i) / \max((1 - x_i)\,x_i, 10^{-12})`
    (:func:`nbops.scalar.binary_cross_entropy_backward`), with ``g`` the
    gradient of the loss divided by the element count for ``'mean'``. Same as
    PyTorch's ``binary_cross_entropy_backward``, its clamp included.

    Examples
    --------
    >>> nbops.binary_cross_entropy_backward(1.0, np.array([0.5, 0.8]), np.array([1.0, 0.0]))
    array([-1. ,  2.5])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().binary_cross_entropy_backward(grad_output, input, target, weight,
                                                     size_average, reduce, reduction,
                                                     out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().binary_backward("binary_cross_entropy", grad_output, input, target,
                                          weight, size_average, reduce, reduction, out=out)
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=2).mode
    g, c, x, t, w, _, compute, result = _bce_arrays(grad_output, input, target, weight, mode)
    if out is not None:
        check_out(out, x.shape, result)
    c = _scale(c, x.size if mode == "mean" else 1)
    return _grad_pass(BCE, BCE_GRAD, (), x, t, x.shape, compute, result, g, c, weight=w,
                      out=out)[0]


def binary_cross_entropy_with_grad(input, target, weight=None, size_average=None, reduce=None,
                                   reduction="mean"):
    r"""The value of :func:`binary_cross_entropy` and the gradient of its input, from
    one pass.

    Parameters
    ----------
    input, target : array_like
        Probabilities of the same shape (checked to be in [0, 1], as the forward).
    weight : array_like, optional
        Rescaling weights broadcastable to ``input``'s shape.
    size_average, reduce : bool, optional
        Deprecated, as :func:`l1_loss`.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        As in :func:`binary_cross_entropy`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly ``binary_cross_entropy(input, target, ...)``.
    grad_input : ndarray
        ``binary_cross_entropy_backward(1.0, input, target, ...)``; for
        ``reduction='none'`` the gradient of the sum of the losses.

    Notes
    -----
    One pass over ``input`` and ``target`` (after the forward's [0, 1] check)
    computes the losses and writes the gradient (see
    :func:`binary_cross_entropy_backward`).

    Examples
    --------
    >>> loss, grad = nbops.binary_cross_entropy_with_grad(np.array([0.5, 0.8]),
    ...                                                   np.array([1.0, 0.0]))
    >>> grad
    array([-1. ,  2.5])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().binary_cross_entropy_with_grad(input, target, weight, size_average,
                                                      reduce, reduction)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().binary_with_grad("binary_cross_entropy", input, target, weight,
                                           size_average, reduce, reduction)
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=2).mode
    if mode == "none":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # warned above
            loss = binary_cross_entropy(input, target, weight, size_average, reduce,
                                        reduction)
            return loss, binary_cross_entropy_backward(np.ones(loss.shape, loss.dtype), input,
                                                       target, weight, size_average, reduce,
                                                       reduction)
    _, c, x, t, w, _, compute, result = _bce_arrays(1.0, input, target, weight, mode)
    if x.size:
        _check_unit(_flat_c(x, x.shape, compute), "input")
        _check_unit(_flat_c(t, x.shape, compute), "target")
    grad, total = _grad_pass(BCE, BCE_GRAD, (), x, t, x.shape, compute, result, None,
                             _scale(1.0, x.size if mode == "mean" else 1), weight=w,
                             want=True)
    return _reduce(total, x.size, mode, result), grad


def binary_cross_entropy_with_logits_backward(grad_output, input, target, weight=None,
                                              size_average=None, reduce=None, reduction="mean",
                                              pos_weight=None, *, out=None):
    r"""Backward of :func:`binary_cross_entropy_with_logits`: the gradient of its input.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for the reduced
        losses, a float array of ``input``'s shape for ``reduction='none'``.
    input, target : array_like
        Logits and targets of the same shape.
    weight : array_like, optional
        Rescaling weights broadcastable to ``input``'s shape.
    size_average, reduce : bool, optional
        Deprecated, as :func:`l1_loss`.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        The forward's reduction.
    pos_weight : array_like, optional
        Weight of the positive class, broadcastable to ``input``'s shape.
    out : ndarray, optional
        Array of ``input``'s shape and the result dtype to write into.

    Returns
    -------
    ndarray
        The gradient of ``input``: its shape, the common float dtype of the
        arguments.

    Notes
    -----
    Element by element :math:`w_i\,g\,((p_i y_i + 1 - y_i)\,\sigma(x_i) - p_i y_i)`
    (:math:`w_i\,g\,(\sigma(x_i) - y_i)` without ``pos_weight``;
    :func:`nbops.scalar.binary_cross_entropy_with_logits_backward`), with ``g``
    the gradient of the loss divided by the element count for ``'mean'``. Same
    as PyTorch's ``binary_cross_entropy_with_logits_backward``.

    Examples
    --------
    >>> nbops.binary_cross_entropy_with_logits_backward(
    ...     1.0, np.array([0.0, 0.0]), np.array([1.0, 0.0]), reduction="sum")
    array([-0.5,  0.5])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().binary_cross_entropy_with_logits_backward(
            grad_output, input, target, weight, size_average, reduce, reduction, pos_weight,
            out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().binary_backward("binary_cross_entropy_with_logits", grad_output,
                                          input, target, weight, size_average, reduce,
                                          reduction, pos_weight, out=out)
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=2).mode
    g, c, x, t, w, pw, compute, result = _bce_arrays(grad_output, input, target, weight, mode,
                                                     pos_weight)
    if out is not None:
        check_out(out, x.shape, result)
    op, gop = (BCE_LOGITS, BCE_LOGITS_GRAD) if pw is None else (BCE_LOGITS_PW,
                                                                 BCE_LOGITS_PW_GRAD)
    c = _scale(c, x.size if mode == "mean" else 1)
    return _grad_pass(op, gop, (), x, t, x.shape, compute, result, g, c, weight=w, aux=pw,
                      out=out)[0]


def binary_cross_entropy_with_logits_with_grad(input, target, weight=None, size_average=None,
                                               reduce=None, reduction="mean",
                                               pos_weight=None):
    r"""The value of :func:`binary_cross_entropy_with_logits` and the gradient of its
    input, from one pass.

    Parameters
    ----------
    input, target : array_like
        Logits and targets of the same shape.
    weight : array_like, optional
        Rescaling weights broadcastable to ``input``'s shape.
    size_average, reduce : bool, optional
        Deprecated, as :func:`l1_loss`.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        As in :func:`binary_cross_entropy_with_logits`.
    pos_weight : array_like, optional
        Weight of the positive class, broadcastable to ``input``'s shape.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly ``binary_cross_entropy_with_logits(input, target, ...)``.
    grad_input : ndarray
        ``binary_cross_entropy_with_logits_backward(1.0, input, target, ...)``;
        for ``reduction='none'`` the gradient of the sum of the losses.

    Notes
    -----
    One pass over ``input`` and ``target`` computes the losses and writes the
    gradient (see :func:`binary_cross_entropy_with_logits_backward`).

    Examples
    --------
    >>> loss, grad = nbops.binary_cross_entropy_with_logits_with_grad(
    ...     np.array([0.0, 0.0]), np.array([1.0, 0.0]))
    >>> grad
    array([-0.25,  0.25])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().binary_cross_entropy_with_logits_with_grad(
            input, target, weight, size_average, reduce, reduction, pos_weight)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().binary_with_grad("binary_cross_entropy_with_logits", input, target,
                                           weight, size_average, reduce, reduction, pos_weight)
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=2).mode
    if mode == "none":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # warned above
            loss = binary_cross_entropy_with_logits(input, target, weight, size_average,
                                                    reduce, reduction, pos_weight)
            return loss, binary_cross_entropy_with_logits_backward(
                np.ones(loss.shape, loss.dtype), input, target, weight, size_average, reduce,
                reduction, pos_weight)
    _, c, x, t, w, pw, compute, result = _bce_arrays(1.0, input, target, weight, mode,
                                                     pos_weight)
    op, gop = (BCE_LOGITS, BCE_LOGITS_GRAD) if pw is None else (BCE_LOGITS_PW,
                                                                 BCE_LOGITS_PW_GRAD)
    grad, total = _grad_pass(op, gop, (), x, t, x.shape, compute, result, None,
                             _scale(1.0, x.size if mode == "mean" else 1), weight=w, aux=pw,
                             want=True)
    return _reduce(total, x.size, mode, result), grad


__all__ += ["kl_div_backward", "kl_div_with_grad", "binary_cross_entropy_backward",
            "binary_cross_entropy_with_grad", "binary_cross_entropy_with_logits_backward",
            "binary_cross_entropy_with_logits_with_grad"]

# ------------------------------------------------- the backwards inside @njit
# Serial loops over the broadcast shape (as the forwards' overloads above); the
# gradient of an input that was broadcast is summed back to its shape.
def _nj_gval(gf, i, c):
    return _stub()


@overload(_nj_gval, inline="always")
def _nj_gval_ol(gf, i, c):
    if NJ.is_none(gf):
        return lambda gf, i, c: c
    return lambda gf, i, c: gf[i]


def _nj_check_grad(g, shape):
    return _stub()


@overload(_nj_check_grad)
def _nj_check_grad_ol(g, shape):
    if NJ.is_none(g):
        return lambda g, shape: None
    if not (isinstance(g, types.Array) and isinstance(g.dtype, types.Float)):
        raise errors.TypingError("nbops: grad_output must be a float array for "
                                 "reduction='none'")
    msg = "nbops: grad_output must have the shape of the unreduced loss"
    if g.ndim != len(shape):
        def impl_never(g, shape):
            raise ValueError(msg)

        return impl_never

    def impl(g, shape):
        if g.shape != shape:
            raise ValueError(msg)

    return impl


def _nj_scalar_grad(g):
    return _stub()


@overload(_nj_scalar_grad)
def _nj_scalar_grad_ol(g):
    if isinstance(g, (types.Float, types.Integer)):
        return lambda g: float(g)
    if isinstance(g, types.Array) and g.ndim == 0 and isinstance(g.dtype, types.Float):
        return lambda g: float(g[()])
    raise errors.TypingError("nbops: grad_output must be a real scalar (or a 0-d float "
                             f"array) for a reduced loss, got {g}")


@register_jitable
def _nj_sum_broadcast(res, x):
    """``res`` summed over the axes along which the array ``x`` was broadcast to its shape."""
    n = res.size
    index = np.ascontiguousarray(np.broadcast_to(np.arange(x.size).reshape(x.shape),
                                                 res.shape)).reshape(n)
    acc = np.zeros(x.size, np.float64)
    rf = res.reshape(n)
    for i in range(n):
        acc[index[i]] += rf[i]
    return acc.astype(res.dtype).reshape(x.shape)


def _nj_sum_to(res, x):
    return _stub()


@overload(_nj_sum_to)
def _nj_sum_to_ol(res, x):
    """``res`` (of the broadcast shape) summed back to the shape of the input ``x``."""
    if not isinstance(x, types.Array):  # a number: the gradient is 0-d
        return lambda res, x: res

    if x.ndim != res.ndim:
        return lambda res, x: _nj_sum_broadcast(res, x)

    def impl(res, x):
        if x.shape == res.shape:
            return res
        return _nj_sum_broadcast(res, x)

    return impl


def _nj_out(res, out):
    return _stub()


@overload(_nj_out)
def _nj_out_ol(res, out):
    if NJ.is_none(out):
        return lambda res, out: res

    def impl(res, out):
        if out.shape != res.shape:
            raise ValueError("nbops: out must have the input's shape")
        for i, v in np.ndenumerate(res):
            out[i] = v
        return out

    return impl


def _nj_grad(lop, gop, g, c, x, t, w, a, params, want):
    return _stub()


@overload(_nj_grad)
def _nj_grad_ol(lop, gop, g, c, x, t, w, a, params, want):
    """(gradient of x, float64 sum of the losses if ``want`` (True, or None: no loss
    loop compiled), element count)."""
    dt = _nj_dtype(x, t, w, a, g)

    def impl(lop, gop, g, c, x, t, w, a, params, want):
        shape, n, xf, tf, wf, af = _nj_prepare(x, t, w, a)
        _nj_check_grad(g, shape)
        gf = _nj_flat(g, shape, n)
        cv = dt(c)
        res = np.empty(shape, dt)
        rf = res.reshape(n)
        s = 0.0
        for i in range(n):
            xv = dt(xf[i])
            tv = dt(tf[i])
            av = _nj_aux(af, i, xv)
            rf[i] = _nj_weigh(apply_grad(gop, dt(_nj_gval(gf, i, cv)), xv, tv, av, params),
                              wf, i)
            if want is not None:
                s += _nj_weigh(apply_loss(lop, xv, tv, av, params), wf, i)
        return _nj_sum_to(res, x), s, n

    return impl


@register_jitable
def _nj_count(x, t):
    n = 1
    for s in np.broadcast_shapes(np.asarray(x).shape, np.asarray(t).shape):
        n *= s
    return n


def _nj_grad_bodies(op, gop, red, divide, check, dt, none_divide=None):
    """``(backward(grad_output, input, target, weight, aux, params, out),
    with_grad(input, target, weight, aux, params))`` for reduction mode ``red``;
    ``divide(v, input, target, weight)``: ``v`` over the reduction's divisor."""
    if none_divide is None:
        none_divide = register_jitable(lambda res, input: res)
    if red == "none":
        @register_jitable
        def backward_none(grad_output, input, target, weight, aux, params, out):
            check(input, target, weight)
            res = _nj_grad(op, gop, grad_output, 1.0, input, target, weight, aux, params,
                           None)[0]
            return _nj_out(none_divide(res, input), out)

        @register_jitable
        def with_grad_none(input, target, weight, aux, params):
            check(input, target, weight)
            res = _nj_grad(op, gop, None, 1.0, input, target, weight, aux, params, None)[0]
            return (none_divide(_nj_map(op, input, target, weight, aux, params), input),
                    none_divide(res, input))

        return backward_none, with_grad_none

    @register_jitable
    def backward(grad_output, input, target, weight, aux, params, out):
        check(input, target, weight)
        c = divide(_nj_scalar_grad(grad_output), input, target, weight)
        res = _nj_grad(op, gop, None, c, input, target, weight, aux, params, None)[0]
        return _nj_out(res, out)

    @register_jitable
    def with_grad(input, target, weight, aux, params):
        check(input, target, weight)
        c = divide(1.0, input, target, weight)
        res, s, n = _nj_grad(op, gop, None, c, input, target, weight, aux, params, True)
        return dt(divide(s, input, target, weight)), res

    return backward, with_grad


def _nj_regression_grad(op, gop, input, target, size_average, reduce, reduction, weight,
                        weight_sum=True):
    """The bodies of a pointwise loss's backward and with_grad overloads
    (nbops/_ops/table.py generates the overloads): see :func:`_nj_grad_bodies`."""
    red = _nj_reduction(size_average, reduce, reduction)
    dt = _nj_dtype(input, target, weight)
    weighted = not NJ.is_none(weight)
    by_weight = weighted and weight_sum
    mean = red == "mean"

    @register_jitable
    def check(input, target, weight):
        if weighted:
            _nj_check_same_shape(input, weight, "weight must have the input's shape")

    @register_jitable
    def divide(v, input, target, weight):
        if not mean:
            return v
        if by_weight:
            return _nj_div(v, np.sum(np.asarray(weight), dtype=np.float64))
        return _nj_div(v, _nj_count(input, target))

    return _nj_grad_bodies(op, gop, red, divide, check, dt)


def _nj_kl_bodies(input, target, size_average, reduce, reduction, log_target):
    plan = NJ.reduction_plan(size_average, reduce, reduction, batchmean=True)
    red = plan.mode
    batch = plan.batch and _nj_ndim(input) != 0
    dt = _nj_dtype(input, target)
    mean = red == "mean"
    if not isinstance(log_target, (bool, types.BooleanLiteral, types.Omitted)):
        raise errors.TypingError("nbops: kl_div_backward / kl_div_with_grad need a constant "
                                 "log_target inside @njit")
    log = NJ.literal(log_target, "log_target")
    op, gop = (KL_DIV_LOG, KL_DIV_LOG_GRAD) if log else (KL_DIV, KL_DIV_GRAD)

    @register_jitable
    def check(input, target, weight):
        pass

    @register_jitable
    def divide(v, input, target, weight):
        if mean:
            v = _nj_div(v, _nj_count(input, target))
        if batch:
            v = _nj_div(v, np.asarray(input).shape[0])
        return v

    @register_jitable
    def none_divide(res, input):
        if batch:  # the legacy flags with 'batchmean', as the forward
            rf = res.reshape(res.size)
            b = res.dtype.type(np.asarray(input).shape[0])
            for i in range(rf.size):
                rf[i] = rf[i] / b
        return res

    return _nj_grad_bodies(op, gop, red, divide, check, dt, none_divide)


@overload(kl_div_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _kl_div_backward_njit(grad_output, input, target, size_average=None, reduce=None,
                          reduction="mean", log_target=False, out=None):
    body = _nj_kl_bodies(input, target, size_average, reduce, reduction, log_target)[0]

    def impl(grad_output, input, target, size_average=None, reduce=None, reduction="mean",
             log_target=False, out=None):
        return body(grad_output, input, target, None, None, (), out)

    return impl


@overload(kl_div_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _kl_div_with_grad_njit(input, target, size_average=None, reduce=None, reduction="mean",
                           log_target=False):
    body = _nj_kl_bodies(input, target, size_average, reduce, reduction, log_target)[1]

    def impl(input, target, size_average=None, reduce=None, reduction="mean",
             log_target=False):
        return body(input, target, None, None, ())

    return impl


def _nj_bce_bodies(op, gop, input, target, weight, size_average, reduce, reduction, name,
                   unit, *aux):
    red = _nj_reduction(size_average, reduce, reduction)
    dt = _nj_dtype(input, target, weight, *aux)
    mean = red == "mean"

    shape_msg = f"{name}: target must have the input's shape"
    input_msg = f"{name}: all elements of input should be between 0 and 1"
    target_msg = f"{name}: all elements of target should be between 0 and 1"

    @register_jitable
    def check(input, target, weight):
        _nj_check_same_shape(input, target, shape_msg)
        if unit:
            _nj_check_unit(input, input_msg)
            _nj_check_unit(target, target_msg)

    @register_jitable
    def divide(v, input, target, weight):
        return _nj_div(v, np.asarray(input).size) if mean else v

    return _nj_grad_bodies(op, gop, red, divide, check, dt)


@overload(binary_cross_entropy_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _bce_backward_njit(grad_output, input, target, weight=None, size_average=None, reduce=None,
                       reduction="mean", out=None):
    body = _nj_bce_bodies(BCE, BCE_GRAD, input, target, weight, size_average, reduce,
                          reduction, "binary_cross_entropy_backward", False)[0]

    def impl(grad_output, input, target, weight=None, size_average=None, reduce=None,
             reduction="mean", out=None):
        return body(grad_output, input, target, weight, None, (), out)

    return impl


@overload(binary_cross_entropy_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _bce_with_grad_njit(input, target, weight=None, size_average=None, reduce=None,
                        reduction="mean"):
    body = _nj_bce_bodies(BCE, BCE_GRAD, input, target, weight, size_average, reduce,
                          reduction, "binary_cross_entropy_with_grad", True)[1]

    def impl(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
        return body(input, target, weight, None, ())

    return impl


def _bce_logits_ops(pos_weight):
    if NJ.is_none(pos_weight):
        return BCE_LOGITS, BCE_LOGITS_GRAD
    return BCE_LOGITS_PW, BCE_LOGITS_PW_GRAD


@overload(binary_cross_entropy_with_logits_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _bce_logits_backward_njit(grad_output, input, target, weight=None, size_average=None,
                              reduce=None, reduction="mean", pos_weight=None, out=None):
    body = _nj_bce_bodies(*_bce_logits_ops(pos_weight), input, target, weight, size_average,
                          reduce, reduction, "binary_cross_entropy_with_logits_backward",
                          False, pos_weight)[0]

    def impl(grad_output, input, target, weight=None, size_average=None, reduce=None,
             reduction="mean", pos_weight=None, out=None):
        return body(grad_output, input, target, weight, pos_weight, (), out)

    return impl


@overload(binary_cross_entropy_with_logits_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _bce_logits_with_grad_njit(input, target, weight=None, size_average=None, reduce=None,
                               reduction="mean", pos_weight=None):
    body = _nj_bce_bodies(*_bce_logits_ops(pos_weight), input, target, weight, size_average,
                          reduce, reduction, "binary_cross_entropy_with_logits_with_grad",
                          False, pos_weight)[1]

    def impl(input, target, weight=None, size_average=None, reduce=None, reduction="mean",
             pos_weight=None):
        return body(input, target, weight, pos_weight, ())

    return impl


# ------------------------------------------- the pointwise losses of the op table
# Declared once (nbops/_ops/table.py generates the public function, its @njit
# overload, its docstring and its nbops.nn class; the CUDA path is
# nbops/cuda/_ops.py's pointwise_loss). Their float64 references are in
# tests/_reference.py.
L1 = table.pointwise_loss(
    "l1_loss", S.l1_loss, weight=True, backward=S.l1_loss_backward,
    module=Module("L1Loss", "Mean absolute error", example="""
        >>> loss = nbops.nn.L1Loss()
        >>> loss(np.array([1.0, 2.0, 4.0], np.float32), np.array([1.5, 2.0, 2.0], np.float32))
        np.float32(0.8333333)
        """),
    summary=r"Mean absolute error, :math:`\ell_i = w_i\,|x_i - y_i|`.",
    notes="Same as ``torch.nn.functional.l1_loss``; NaN and inf propagate.",
    example="""
        >>> import numpy as np, nbops
        >>> x = np.array([1.0, 2.0, 4.0], dtype=np.float32)
        >>> y = np.array([1.5, 2.0, 2.0], dtype=np.float32)
        >>> nbops.l1_loss(x, y)
        np.float32(0.8333333)
        >>> nbops.l1_loss(x, y, reduction="none")
        array([0.5, 0. , 2. ], dtype=float32)
        """).op
MSE = table.pointwise_loss(
    "mse_loss", S.mse_loss, weight=True, backward=S.mse_loss_backward,
    module=Module("MSELoss", "Mean squared error", example="""
        >>> nbops.nn.MSELoss(reduction="sum")(np.array([1.0, 3.0]), np.zeros(2))
        np.float64(10.0)
        """),
    summary=r"Mean squared error, :math:`\ell_i = w_i\,(x_i - y_i)^2`.",
    notes="Same as ``torch.nn.functional.mse_loss``; NaN and inf propagate.",
    example="""
        >>> nbops.mse_loss(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 2.0]))
        np.float64(1.4166666666666667)
        >>> nbops.mse_loss(np.array([1.0, 3.0]), np.zeros(2), weight=np.array([3.0, 1.0]))
        np.float64(3.0)
        """).op
SMOOTH_L1 = table.pointwise_loss(
    "smooth_l1_loss", S.smooth_l1_loss,
    (Param("beta", 1.0, "Where the loss switches from quadratic to linear; ``>= 0``.",
           example=0.5),),
    backward=S.smooth_l1_loss_backward,
    checks=(Check("beta < 0", "beta must be >= 0 (smooth_l1_loss does not support negative "
                  "values for beta), got {beta!r}",
                  "nbops: smooth_l1_loss: beta must be >= 0"),),
    module=Module("SmoothL1Loss", "Smooth L1 loss, quadratic below ``beta``", example="""
        >>> nbops.nn.SmoothL1Loss(reduction="none")(np.array([0.0, 0.5, 3.0]), np.zeros(3))
        array([0.   , 0.125, 2.5  ])
        """),
    summary=r"""
        Smooth L1 (Huber-like) loss.

        With :math:`d_i = |x_i - y_i|`:

        .. math::
            \ell_i = \begin{cases} 0.5\,d_i^2 / \beta & d_i < \beta \\
                                   d_i - 0.5\,\beta & \text{otherwise} \end{cases}

        ``beta=0`` is exactly the L1 loss; a negative ``beta`` raises ``ValueError``.
        """,
    notes="""
        Same as ``torch.nn.functional.smooth_l1_loss``, including ``beta=0``
        (exactly the L1 loss) and the ``ValueError`` for negative ``beta``.
        """,
    example="""
        >>> nbops.smooth_l1_loss(np.array([0.0, 0.5, 3.0]), np.zeros(3), reduction="none")
        array([0.   , 0.125, 2.5  ])
        """).op
HUBER = table.pointwise_loss(
    "huber_loss", S.huber_loss,
    (Param("delta", 1.0, "Where the loss switches from quadratic to linear; ``> 0``.",
           example=0.5),),
    legacy=False, weight=True, mean_divisor="count", backward=S.huber_loss_backward,
    checks=(Check("not delta > 0", "delta must be > 0 (huber_loss does not support "
                  "non-positive values for delta), got {delta!r}",
                  "nbops: huber_loss: delta must be > 0"),),
    module=Module("HuberLoss", "Huber loss, quadratic below ``delta``", example="""
        >>> nbops.nn.HuberLoss(reduction="none", delta=0.5)(np.array([0.0, 0.5, 3.0]),
        ...                                                 np.zeros(3))
        array([0.   , 0.125, 1.375])
        """),
    summary=r"""
        Huber loss.

        With :math:`d_i = |x_i - y_i|`:

        .. math::
            \ell_i = w_i \begin{cases} 0.5\,d_i^2 & d_i < \delta \\
                                       \delta\,(d_i - 0.5\,\delta) & \text{otherwise}
                      \end{cases}

        A ``delta`` that is not positive raises ``ValueError``.
        """,
    notes="""
        Same as ``torch.nn.functional.huber_loss`` (which has no deprecated
        ``size_average``/``reduce`` flags): with ``weight``, ``'mean'`` divides the
        sum of the weighted losses by the number of elements. ``huber_loss`` with
        ``delta`` is ``delta`` times ``smooth_l1_loss`` with ``beta=delta``.
        """,
    example="""
        >>> nbops.huber_loss(np.array([0.0, 0.5, 3.0]), np.zeros(3), reduction="none")
        array([0.   , 0.125, 2.5  ])
        >>> nbops.huber_loss(np.array([0.0, 0.5, 3.0]), np.zeros(3), delta=0.5)
        np.float64(0.5)
        """).op
SOFT_MARGIN = table.pointwise_loss(
    "soft_margin_loss", S.soft_margin_loss, backward=S.soft_margin_loss_backward,
    checks=(Check("_target_grows_input(input, target)",
                  "soft_margin_loss: the target of shape {_np_shape(target)} must broadcast to "
                  "the input's shape {_np_shape(input)} (the output has the input's shape)",
                  "nbops: soft_margin_loss: the target must broadcast to the input's shape"),),
    module=Module("SoftMarginLoss", "Two-class logistic loss", example="""
        >>> nbops.nn.SoftMarginLoss(reduction="sum")(np.array([0.0, 0.0]), np.array([1.0, -1.0]))
        np.float64(1.3862943611198906)
        """),
    summary=r"""
        Soft margin (two-class logistic) loss,
        :math:`\ell_i = \log(1 + e^{-y_i x_i})`, with targets :math:`y_i` of 1 or -1.
        """,
    notes="""
        Same as ``torch.nn.functional.soft_margin_loss``, with its formula
        ``log1p(exp(-x * y))`` (inf where the exponential overflows; the gradient
        is NaN there, as PyTorch's).
        """,
    example="""
        >>> nbops.soft_margin_loss(np.array([2.0, 2.0]), np.array([1.0, -1.0]), reduction="none")
        array([0.12692801, 2.12692801])
        """).op
HINGE_EMBEDDING = table.pointwise_loss(
    "hinge_embedding_loss", S.hinge_embedding_loss,
    (Param("margin", 1.0, "The margin :math:`\\Delta` of the ``y = -1`` terms.", example=0.5),),
    params_first=True, backward=S.hinge_embedding_loss_backward,
    module=Module("HingeEmbeddingLoss", "Hinge embedding loss", example="""
        >>> nbops.nn.HingeEmbeddingLoss(margin=1.0, reduction="none")(
        ...     np.array([0.25, 0.25, 2.0]), np.array([1.0, -1.0, -1.0]))
        array([0.25, 0.75, 0.  ])
        """),
    summary=r"""
        Hinge embedding loss (distances of similar and dissimilar pairs).

        .. math::
            \ell_i = \begin{cases} x_i & y_i = 1 \\
                                   \max(0, \Delta - x_i) & y_i = -1 \end{cases}

        Any other target adds both terms, as PyTorch's formula does.
        """,
    notes=r"""
        Same as ``torch.nn.functional.hinge_embedding_loss`` (``margin`` comes right
        after ``target``, as there); the gradient of :math:`\max(0, \Delta - x)` is -1
        at :math:`x = \Delta`, as ``torch.autograd`` gives.
        """,
    example="""
        >>> nbops.hinge_embedding_loss(np.array([0.25, 0.25, 2.0]), np.array([1.0, -1.0, -1.0]),
        ...                            reduction="none")
        array([0.25, 0.75, 0.  ])
        """).op

globals().update({e.name: e.function for e in table.pointwise_loss_entries()})
__all__ = [e.name for e in table.pointwise_loss_entries()] + __all__
