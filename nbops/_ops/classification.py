"""Classification losses: ``nbops.cross_entropy`` and ``nbops.nll_loss``.

Both are fused: one kernel reads each sample's row of logits (log-softmax
statistics, the target's entry, the label-smoothing sum), writes the
per-sample loss and adds losses and target weights per fixed chunk of samples.
No ``(N, C)`` temporary is made; the chunk sums are added in a fixed order, so
'mean' and 'sum' are bit-identical on any number of threads.

Shapes follow PyTorch: ``input`` is ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``
(classes on axis 1, or axis 0 for a 1-D input), viewed as a flat C-order
``(N, C, inner)`` array. Targets are class indices of shape ``(N, d1, ..., dk)``
(``()`` for a 1-D input), of any integer dtype, or, for
:func:`cross_entropy`, class probabilities of the input's shape. The row
cores (the formulas) are in :mod:`nbops.scalar.rows`.
"""

import math

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable
from numba.np.numpy_support import as_dtype

from .. import _config, _memory
from .._launch import entry_point, launch
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    deliver,
    is_dask_array,
    is_device_array,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar._class_grad import (
    ce_grad_cols,
    ce_grad_rows,
    prob_grad_cols,
    prob_grad_rows,
    weight_sum,
)
from ..scalar.rows import COLS_BLOCK, ROW_FASTMATH, ce_cols, ce_rows, nll_rows, prob_cols, prob_rows
from . import njit_args as NJ
from . import plan as P
from .plan import class_loss_plan, target_range_message

__all__ = ["cross_entropy", "nll_loss", "cross_entropy_backward", "nll_loss_backward",
           "cross_entropy_with_grad", "nll_loss_with_grad"]

#: Logits per chunk of rows whose losses are summed by one thread (a fixed
#: chunking: the float64 chunk sums, added in order, do not depend on threads).
UNIT_ELEMS = 16384


# ------------------------------------------------------------------ CPU kernels
# x: flat (O, C, I) logits; t: flat int64 targets (O * I); w: (C,) weights;
# loss: (O * I,) per-sample losses; partials: (2, units + 1) float64 chunk sums
# of losses and of target weights, and in the last column their totals (added
# in chunk order after the loop: the same on any thread count). Rows (I is
# None: the class axis is the last one) come in chunks of R rows; otherwise
# (R is None) a chunk is one block of COLS_BLOCK positions of one sample row.
# lse is None: nll_loss (x holds log-probabilities), else cross_entropy, which
# passes unit_w as None; b is None: no label smoothing (else a float, may be 0).
# Numba removes a branch before typing it only when its condition compares an
# argument that is None with None (a branch on `arg is None` for a non-None
# argument is compiled, and dropped only by LLVM): so each path is guarded by
# an `is not None` test of an argument that is None where the path is not
# wanted, and each specialization compiles (and calls) only its own chunk
# function.
def _index(x, t, w, O, C, I, ignore, a, b, wsum, lse, unit_w, loss, partials, R):
    if R is not None:
        for u in prange(partials.shape[1] - 1):
            r0 = u * R
            r1 = min(O, r0 + R)
            sl = sw = 0.0
            if unit_w is not None:
                sl, sw = nll_rows(x, t, w, C, r0, r1, ignore, unit_w, loss)
            if lse is not None:
                sl, sw = ce_rows(x, t, w, C, r0, r1, ignore, a, b, wsum, loss)
            partials[0, u] = sl
            partials[1, u] = sw
    if I is not None:
        nb = (I + COLS_BLOCK - 1) // COLS_BLOCK
        for u in prange(O * nb):
            sl, sw = ce_cols(x, t, w, u // nb, C, I, (u % nb) * COLS_BLOCK, ignore, a, b,
                             wsum, lse, loss)
            partials[0, u] = sl
            partials[1, u] = sw
    _totals(partials)


_index_serial, _index_parallel = _config.kernels(_index, fastmath=ROW_FASTMATH)


# p: flat class probabilities (x's layout); pa, pb: label smoothing of p.
def _prob(x, p, w, O, C, I, pa, pb, loss, partials, R):
    if R is not None:
        for u in prange(partials.shape[1] - 1):
            r0 = u * R
            partials[0, u] = prob_rows(x, p, w, C, r0, min(O, r0 + R), pa, pb, loss)
    if I is not None:
        nb = (I + COLS_BLOCK - 1) // COLS_BLOCK
        for u in prange(O * nb):
            partials[0, u] = prob_cols(x, p, w, u // nb, C, I, (u % nb) * COLS_BLOCK,
                                       pa, pb, loss)
    _totals(partials)


_prob_serial, _prob_parallel = _config.kernels(_prob, fastmath=ROW_FASTMATH)


# The lean nll_loss call (:func:`_fast`): (N, C) C-contiguous log-probabilities,
# N <= UNIT_ELEMS (one chunk of rows), int64 targets, unit weights, no
# ignore_index among the targets. The targets are checked first: where one is
# outside [0, C) the kernel reads no logit and returns ok = False (the general
# path then raises its error). The losses and their sum are those of _index's
# chunk (the same row function on the same chunk, the total added as _totals
# adds it), from three arguments instead of sixteen.
def _nll_lean(x, t):
    O, C = x.shape
    bad = 0  # (a count without an early exit: the check vectorizes)
    for k in range(O):
        bad += (t[k] < 0) | (t[k] >= C)
    if bad:
        return 0.0, False
    xf = x.reshape(O * C)
    loss = np.empty(O, x.dtype)
    sl, sw = nll_rows(xf, t, xf, C, 0, O, -100, True, loss)
    total = 0.0
    total += sl
    return total, True


_nll_lean_serial = _config.serial_kernel(_nll_lean, fastmath=ROW_FASTMATH)


@register_jitable
def _totals(partials):
    """Last column = the sums of the chunk columns before it, added in order."""
    n = partials.shape[1] - 1
    for k in range(partials.shape[0]):
        acc = 0.0
        for u in range(n):
            acc += partials[k, u]
        partials[k, n] = acc


@register_jitable
def _units(O, C, I, lse):
    """(rows per chunk, number of chunks) of the fixed chunking.

    A chunk holds about UNIT_ELEMS logits (UNIT_ELEMS samples for nll_loss,
    which reads one value per sample).
    """
    if I == 1:
        R = max(1, UNIT_ELEMS // max(C, 1)) if lse else UNIT_ELEMS
        return R, (O + R - 1) // R
    return 1, O * ((I + COLS_BLOCK - 1) // COLS_BLOCK)


# ------------------------------------------------------------ the Python driver
def _layout(x, compute, plan, transposed_ok=True):
    """(flat logits, O, C, I): a view where possible, else a C-order copy (the
    ``(O, C, I)`` view of the input is the plan's)."""
    O, C, I = plan.outer, plan.classes, plan.inner
    if x.dtype == compute:
        if x.flags.c_contiguous:
            return x.reshape(-1), O, C, I
        if transposed_ok and x.ndim == 2 and x.flags.f_contiguous:  # x.T: C-order (C, N)
            return x.T.reshape(-1), 1, C, O
    return np.ascontiguousarray(x, dtype=compute).reshape(-1), O, C, I


_ONES = {}


def _weights(weight, C, compute):
    """The class weights (shape checked by the plan) as a C-contiguous ``compute`` array."""
    if weight is None:  # unit weights, kept between calls (the kernels only read them)
        w = _ONES.get((C, compute.char))
        if w is None:
            if len(_ONES) > 64:
                _ONES.clear()
            w = _ONES[(C, compute.char)] = np.ones(C, compute)
        return w
    result_dtype(weight.dtype, "weight")
    return np.ascontiguousarray(weight, dtype=compute)


_UNSIGNED = {}


def _as_unsigned(t):
    """A signed integer array viewed as the unsigned type of the same size."""
    u = _UNSIGNED.get(t.dtype)
    if u is None:
        u = _UNSIGNED[t.dtype] = np.dtype(t.dtype.str.replace("i", "u"))
    return t.view(u)


def _check_targets(t, C, ignore):
    """Class indices must be in [0, C) or equal ignore_index (vectorized checks)."""
    if t.size == 0:
        return
    # one pass: seen as unsigned, negative indices are huge, so max < C means 0 <= t < C
    u = _as_unsigned(t) if t.dtype.kind == "i" else t
    if np.maximum.reduce(u, axis=None) < C:
        return
    valid = t[t != ignore]
    if valid.size == 0:
        return
    lo, hi = valid.min(), valid.max()
    if lo < 0 or hi >= C:
        raise ValueError(target_range_message(C, ignore, lo if lo < 0 else hi))


def _reduce(red, loss, partials, shape, result, count=None):
    if red == "none":
        out = loss.reshape(shape)
        return out if out.dtype == result else out.astype(result)
    total = float(partials[0, -1])
    if red == "sum":
        return result.type(total)
    denom = float(count) if count is not None else float(partials[1, -1])
    if denom == 0:  # IEEE division, as PyTorch (all targets ignored: 0 / 0 = NaN)
        return result.type(math.nan if total == 0 or total != total
                           else math.copysign(math.inf, total))
    return result.type(total / denom)


def _index_loss(x, t, weight, plan, lse, compute, result):
    """Class-index targets (the plan checked their dtype and shape)."""
    loss, partials = index_partials(x, t, weight, plan, lse, compute)
    return _reduce(plan.reduction.mode, loss, partials, plan.loss_shape, result)


def index_partials(x, t, weight, plan, lse, compute):
    """(per-sample losses, float64 partials) of class-index targets: ``partials[0, -1]``
    is the sum of the losses, ``partials[1, -1]`` that of the targets' weights (the
    count without ``weight``), ignored targets left out (nbops/_dask.py's chunk sums)."""
    ignore, eps = plan.ignore_index, plan.label_smoothing
    xf, O, C, I = _layout(x, compute, plan)
    w = _weights(weight, C, compute)
    _check_targets(t, C, ignore)
    tf = t.reshape(-1)
    if tf.dtype != np.int64 or not tf.flags.c_contiguous:
        tf = np.ascontiguousarray(tf, dtype=np.int64)
    R, units = _units(O, C, I, lse)
    loss = _memory.empty(O * I, compute)
    partials = np.empty((2, units + 1), np.float64)  # the kernel writes every entry
    if C == 0 or loss.size == 0:  # C == 0: every target is ignore_index (checked above)
        loss[:] = 0.0
        partials[:] = 0.0
    else:
        a = 1.0 - eps
        b = eps / C
        wsum = float(np.sum(w, dtype=np.float64)) if eps else 0.0
        key = ("ce", compute.char, xf.flags.writeable, I == 1, lse, eps == 0)
        launch(_index_serial, _index_parallel, key, xf.size if lse else tf.size,
               xf, tf, w, O, C, None if I == 1 else I, ignore, a, b if eps else None, wsum,
               True if lse else None, None if lse else weight is None, loss, partials,
               R if I == 1 else None)
    return loss, partials


def _prob_loss(x, p, weight, plan, compute, result):
    """Class-probability targets (the plan checked their dtype)."""
    eps, red = plan.label_smoothing, plan.reduction.mode
    xf, O, C, I = _layout(x, compute, plan, transposed_ok=False)  # p must match its layout
    w = _weights(weight, C, compute)
    pf = np.ascontiguousarray(p, dtype=compute).reshape(-1)
    R, units = _units(O, C, I, True)
    loss = _memory.empty(O * I, compute)
    partials = np.zeros((2, units + 1), np.float64)
    if loss.size:
        if C == 0:
            loss[:] = 0.0
        else:
            key = ("ce_prob", compute.char, xf.flags.writeable, pf.flags.writeable, I == 1)
            launch(_prob_serial, _prob_parallel, key, xf.size, xf, pf, w, O, C,
                   None if I == 1 else I, 1.0 - eps, eps / C, loss, partials,
                   R if I == 1 else None)
    return _reduce(red, loss, partials, plan.loss_shape, result, count=O * I)


_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_INT64 = np.dtype(np.int64)
#: dtype -> the entry point of _nll_lean_serial for it (the lean call's lookup)
_nll_lean_fn = {}


def _fast(input, target, weight, ignore_index, reduction, label_smoothing, lse):
    """The common call, (N, C) float logits, (N,) int64 targets, no weight, no
    label smoothing, default ignore_index, 'mean' or 'sum', with fewer Python
    steps (a few microseconds matter at (4096, 1000)); None if not that call.
    Same checks and kernel as the general path. (The dtypes are compared by
    identity: NumPy's native dtype singletons; an equal dtype that is not one of
    them, byte-swapped say, takes the general path.)"""
    if not (type(input) is np.ndarray and type(target) is np.ndarray and weight is None):
        return None
    dt = input.dtype
    if not ((dt is _FAST_DTYPES[0] or dt is _FAST_DTYPES[1]) and target.dtype is _INT64
            and label_smoothing == 0 and ignore_index == -100
            and (reduction == "mean" or reduction == "sum")
            and input.ndim == 2 and target.ndim == 1 and input.flags.c_contiguous
            and target.flags.c_contiguous and target.shape[0] == input.shape[0]):
        return None
    O, C = input.shape
    if O == 0 or C == 0:
        return None
    if not lse and O <= UNIT_ELEMS:  # one chunk of rows: the lean kernel
        fn = _nll_lean_fn.get(dt)
        if fn is None:
            fn = _nll_lean_fn[dt] = entry_point(_nll_lean_serial, ("nll_lean", dt.char),
                                                (input, target))
        total, ok = fn(input, target)
        if not ok:
            return None  # a target out of range: the general path raises
        return dt.type(total if reduction == "sum" else total / O)
    if np.maximum.reduce(target.view(np.uint64), axis=None) >= C:
        return None  # out of range or ignored targets: the general path sorts it out
    R, units = _units(O, C, 1, lse)
    loss = _memory.empty(O, dt)
    partials = np.empty((2, units + 1), np.float64)
    launch(_index_serial, _index_parallel, ("ce", dt.char, input.flags.writeable, True, lse, True),
           input.size if lse else O, input.reshape(-1), target, _weights(None, C, dt), O, C,
           None, -100, 1.0, None, 0.0, True if lse else None, None if lse else True, loss,
           partials, R)
    total = float(partials[0, -1])
    return dt.type(total if reduction == "sum" else total / O)


def _planned(input, target, weight, size_average, ignore_index, reduce, reduction,
             label_smoothing, logits):
    """The arrays, the :class:`~nbops._ops.plan.ClassLossPlan` and the dtypes of a call."""
    x = input if type(input) is np.ndarray else as_array(input)
    compute, result = result_dtype(x.dtype)
    t = target if type(target) is np.ndarray else as_array(target, "target")
    w = None if weight is None else as_array(weight, "weight")
    plan = class_loss_plan(x.shape, t.shape, t.dtype, None if w is None else w.shape,
                           ignore_index, label_smoothing, reduction, size_average, reduce,
                           logits, stacklevel=3)
    return x, t, w, plan, compute, result


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    r"""Cross-entropy between logits and targets (log-softmax + negative log-likelihood, fused).

    For class-index targets :math:`y_n` and logits :math:`x_n` (one row of
    ``C`` classes per sample), with :math:`\log p_{n,c} = (x_{n,c} - m_n) -
    \log \sum_k e^{x_{n,k} - m_n}`, :math:`m_n = \max_k x_{n,k}`, and
    :math:`\varepsilon` = ``label_smoothing``:

    .. math::

        \ell_n = -(1 - \varepsilon)\, w_{y_n} \log p_{n,y_n}
                 - \frac{\varepsilon}{C} \sum_c w_c \log p_{n,c},

    0 where :math:`y_n` = ``ignore_index``. ``'mean'`` is
    :math:`\sum_n \ell_n / \sum_n w_{y_n}` over non-ignored samples (NaN if
    all are ignored); ``'sum'`` is :math:`\sum_n \ell_n`. For class-probability
    targets :math:`P` (a float target of the input's shape):
    :math:`\ell_n = -\sum_c w_c q_{n,c} \log p_{n,c}` with
    :math:`q = (1 - \varepsilon) P + \varepsilon / C`, and ``'mean'`` divides
    by the number of samples. Exactly PyTorch's definitions.

    Parameters
    ----------
    input : array_like
        Logits, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``.
    target : array_like
        Class indices of any integer dtype, shape ``()``, ``(N,)`` or
        ``(N, d1, ..., dk)``; or class probabilities of the input's shape.
    weight : array_like, optional
        Shape ``(C,)``: a weight per class.
    size_average, reduce : bool, optional
        Deprecated (as in PyTorch); they override ``reduction``.
    ignore_index : int, default -100
        Class-index targets equal to it contribute nothing (not allowed,
        unless negative, with probability targets, as in PyTorch).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    label_smoothing : float in [0, 1], default 0

    Returns
    -------
    ndarray or NumPy scalar
        'none': the per-sample losses, of the target's shape (class-index
        targets) or the input's shape without the class axis; otherwise a
        NumPy scalar of the computation dtype (``np.float32`` for float32 input).

    Raises
    ------
    ValueError
        Shapes that do not match, a class index out of range, a weight of the
        wrong length, bad ``reduction`` or ``label_smoothing``, checked before
        any computation.
    TypeError
        Float class-index targets (or integer probability targets).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[0.2, 0.3, 0.5], [0.5, 0.2, 0.3]])
    >>> nbops.cross_entropy(x, np.array([2, 1]), weight=np.array([2.0, 4.0, 6.0]),
    ...                     reduction="none")
    array([5.63898637, 4.95932424])
    >>> float(nbops.cross_entropy(x, np.array([2, 1]), label_smoothing=0.1))
    1.0914977275111...
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().cross_entropy(input, target=target, weight=weight,
                                     size_average=size_average, ignore_index=ignore_index,
                                     reduce=reduce, reduction=reduction,
                                     label_smoothing=label_smoothing)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().cross_entropy(input, target, weight, size_average, ignore_index,
                                        reduce, reduction, label_smoothing)
    if size_average is None and reduce is None:
        res = _fast(input, target, weight, ignore_index, reduction, label_smoothing, True)
        if res is not None:
            return res
    x, t, w, plan, compute, result = _planned(input, target, weight, size_average,
                                              ignore_index, reduce, reduction,
                                              label_smoothing, True)
    if plan.probabilities:
        return _prob_loss(x, t, w, plan, compute, result)
    return _index_loss(x, t, w, plan, True, compute, result)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100,
             reduce=None, reduction="mean"):
    r"""Negative log-likelihood loss: :math:`\ell_n = -w_{y_n} x_{n, y_n}`.

    ``input`` holds log-probabilities (e.g. from :func:`log_softmax`), shape
    ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``; ``target`` class indices
    of any integer dtype. ``'mean'`` is :math:`\sum_n \ell_n / \sum_n w_{y_n}`
    over samples whose target is not ``ignore_index`` (NaN if there are none).
    Arguments, returns and errors as :func:`cross_entropy`.

    Parameters
    ----------
    input : array_like
        Log-probabilities, shape ``(C,)``, ``(N, C)`` or ``(N, C, d1, ..., dk)``.
    target : array_like
        Class indices of any integer dtype, shape ``()``, ``(N,)`` or
        ``(N, d1, ..., dk)``.
    weight : array_like, optional
        Shape ``(C,)``: a weight per class.
    ignore_index : int, default -100
    reduction : {'mean', 'sum', 'none'}, default 'mean'
    size_average, reduce : bool, optional
        Deprecated, as in PyTorch.

    Returns
    -------
    ndarray or NumPy scalar
        As :func:`cross_entropy`.

    Notes
    -----
    Same as ``torch.nn.functional.nll_loss``, including the weighted-mean
    denominator (see the semantics guide). Class indices out of range raise
    ``ValueError`` before any computation (never an out-of-bounds read).

    Examples
    --------
    >>> logp = np.log(np.array([[0.2, 0.3, 0.5], [0.5, 0.2, 0.3]]))
    >>> nbops.nll_loss(logp, np.array([2, 1]), reduction="none")
    array([0.69314718, 1.60943791])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().nll_loss(input, target=target, weight=weight, size_average=size_average,
                                ignore_index=ignore_index, reduce=reduce, reduction=reduction)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().nll_loss(input, target, weight, size_average, ignore_index, reduce,
                                   reduction)
    if size_average is None and reduce is None:
        res = _fast(input, target, weight, ignore_index, reduction, 0.0, False)
        if res is not None:
            return res
    x, t, w, plan, compute, result = _planned(input, target, weight, size_average,
                                              ignore_index, reduce, reduction, 0.0, False)
    return _index_loss(x, t, w, plan, False, compute, result)


# ------------------------------------------------- the same names inside @njit
# One serial implementation (the serial kernels above) for every call; the
# reduction (and the legacy flags) must be literals, so that 'none' can return
# an array and 'mean' / 'sum' a scalar: planned as on the CPU path
# (nbops/_ops/njit_args.py). Typing-time choices are made by the small overloads
# below; everything else is checked at run time, before the kernel, with the
# CPU path's exception types and messages (nbops/_ops/plan.py).
def _is_none(ty):
    return ty is None or isinstance(ty, (types.NoneType, types.Omitted))


@register_jitable
def _dims(shape):
    """(O, C, I) of an input shape (C,) or (N, C, d1, ..., dk)."""
    if len(shape) == 1:
        return 1, shape[0], 1
    inner = 1
    for k in range(2, len(shape)):
        inner *= shape[k]
    return shape[0], shape[1], inner


@register_jitable
def _finish_none(loss, partials, shape, count):
    return loss.reshape(shape)


@register_jitable
def _finish_sum(loss, partials, shape, count):
    return loss.dtype.type(partials[0, -1])


@register_jitable
def _finish_mean(loss, partials, shape, count):
    total = partials[0, -1]
    denom = partials[1, -1] if count < 0 else np.float64(count)
    if denom == 0:  # IEEE division whatever the caller's error model
        if total == 0 or total != total:
            res = np.nan
        else:
            res = np.inf if total > 0 else -np.inf
    else:
        res = total / denom
    return loss.dtype.type(res)


_FINISH = {"none": _finish_none, "sum": _finish_sum, "mean": _finish_mean}


def _as_flat(x, like):
    """``x`` as a flat C-order array of ``like``'s float type (no copy if possible)."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_as_flat)
def _as_flat_ol(x, like):
    if x.dtype == like:
        return lambda x, like: np.ascontiguousarray(x).reshape(-1)

    def cast(x, like):
        src = np.ascontiguousarray(x).reshape(-1)
        res = np.full(src.size, like)
        for i in range(src.size):
            res[i] = src[i]
        return res

    return cast


def _weights_of(weight, C, like):
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_weights_of)
def _weights_of_ol(weight, C, like):
    if _is_none(weight):
        return lambda weight, C, like: np.full(C, like)
    if not (isinstance(weight, types.Array) and weight.ndim == 1):
        raise errors.TypingError("nbops: weight must be a 1-D array or None")

    def impl(weight, C, like):
        if weight.size != C:
            raise ValueError("weight must have shape (C,) (one weight per class, the "
                             "input's class axis)")
        w = np.full(C, like)
        for c in range(C):
            w[c] = weight[c]
        return w

    return impl


def _targets_of(target, input):
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_targets_of)
def _targets_of_ol(target, input):
    """Flat int64 class indices, after checking the target's shape."""
    if isinstance(target, types.Integer):
        def scalar(target, input):
            t = np.empty(1, np.int64)
            t[0] = target
            return t

        return scalar

    def impl(target, input):
        ts = target.shape
        xs = input.shape
        if len(xs) > 1:
            if ts[0] != xs[0]:
                raise ValueError(_TARGET_SHAPE_MESSAGE)
            for k in range(1, len(ts)):
                if ts[k] != xs[k + 1]:
                    raise ValueError(_TARGET_SHAPE_MESSAGE)
        src = np.ascontiguousarray(target).reshape(-1)
        t = np.empty(src.size, np.int64)
        for i in range(src.size):
            t[i] = src[i]
        return t

    return impl


# Constant messages (formatting values inside @njit would add to every compilation).
_TARGET_SHAPE_MESSAGE = f"target does not have the expected shape ({P.TARGET_SHAPES})"
_RANGE_MESSAGE = ("target: a class index is out of range: expected 0 <= index < C (the "
                  "number of classes) or ignore_index")


def _check_index_target(input, target, lse):
    """Typing-time checks of class-index targets (the plan's exception types)."""
    dtype = target.dtype if isinstance(target, types.Array) else target
    if not isinstance(dtype, types.Integer):
        raise NJ.DeferredError(TypeError(P.index_dtype_message(dtype, None, lse)))
    ndim = target.ndim if isinstance(target, types.Array) else 0
    if ndim != max(input.ndim - 1, 0):
        raise NJ.DeferredError(ValueError(
            f"target has {ndim} dimensions, expected {input.ndim - 1} for input of "
            f"{input.ndim} dimensions ({P.TARGET_SHAPES})"))


def _check_ignore_index_type(ignore_index):
    """Typing-time check: ``ignore_index`` must be an integer (TypeError when called)."""
    value = ignore_index.value if isinstance(ignore_index, types.Omitted) else ignore_index
    if not isinstance(value, (int, types.Integer, types.Boolean)):
        raise NJ.DeferredError(TypeError(f"ignore_index must be an integer, got a value "
                                         f"of type {value}"))


def _loss_njit(input, target, weight, ignore_index, reduction, size_average, reduce, lse):
    red = NJ.reduction_plan(size_average, reduce, reduction).mode
    _check_ignore_index_type(ignore_index)
    if not (isinstance(input, types.Array)
            and isinstance(input.dtype, (types.Float, types.Integer))):
        return None
    if input.ndim == 0:
        raise NJ.DeferredError(ValueError(f"{P.INPUT_SHAPES_MESSAGE}, got a 0-d array"))
    ty = input.dtype if isinstance(input.dtype, types.Float) else types.float64
    finish = _FINISH[red]
    smoothing_message = P.LABEL_SMOOTHING_MESSAGE
    if isinstance(target, types.Array):
        float_index_message = P.index_dtype_message(target.dtype, None, lse)
    prob = (lse and isinstance(target, types.Array) and isinstance(target.dtype, types.Float)
            and target.ndim == input.ndim)
    if prob:
        batch_axes = input.ndim > 1

        def run_prob(input, target, weight, ignore_index, label_smoothing):
            if not 0.0 <= label_smoothing <= 1.0:
                raise ValueError(smoothing_message)
            if target.shape != input.shape:  # class indices, as on the CPU path
                raise TypeError(float_index_message)
            if ignore_index >= 0:
                raise ValueError(P.PROBABILITY_IGNORE_MESSAGE)
            like = ty(1.0)
            O, C, I = _dims(input.shape)
            x = _as_flat(input, like)
            w = _weights_of(weight, C, like)
            p = _as_flat(target, like)
            R, units = _units(O, C, I, True)
            loss = np.zeros(O * I, ty)
            partials = np.zeros((2, units + 1), np.float64)
            if O * I > 0 and C > 0:
                pa, pb = 1.0 - label_smoothing, label_smoothing / C
                if I == 1:
                    _prob_serial(x, p, w, O, C, None, pa, pb, loss, partials, R)
                else:
                    _prob_serial(x, p, w, O, C, I, pa, pb, loss, partials, None)
            if batch_axes:
                return finish(loss, partials, input.shape[:1] + input.shape[2:], O * I)
            return finish(loss, partials, (), O * I)

        return run_prob
    _check_index_target(input, target, lse)
    shaped = isinstance(target, types.Array)
    flag = True if lse else None  # the kernels' lse argument
    unit_flag = None if lse else False  # their unit_w argument

    def run(input, target, weight, ignore_index, label_smoothing):
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(smoothing_message)
        like = ty(1.0)
        O, C, I = _dims(input.shape)
        x = _as_flat(input, like)
        w = _weights_of(weight, C, like)
        t = _targets_of(target, input)
        ignore = np.int64(ignore_index)
        for i in range(t.size):
            ti = t[i]
            if ti != ignore and (ti < 0 or ti >= C):
                raise ValueError(_RANGE_MESSAGE)
        R, units = _units(O, C, I, lse)
        loss = np.zeros(O * I, ty)
        partials = np.zeros((2, units + 1), np.float64)
        if O * I > 0 and C > 0:
            wsum = 0.0
            if label_smoothing != 0:
                for c in range(C):
                    wsum += w[c]
            a, b = 1.0 - label_smoothing, label_smoothing / max(C, 1)
            if I == 1:
                _index_serial(x, t, w, O, C, None, ignore, a, b, wsum, flag, unit_flag, loss,
                              partials, R)
            else:
                _index_serial(x, t, w, O, C, I, ignore, a, b, wsum, flag, unit_flag, loss,
                              partials, None)
        if shaped:
            return finish(loss, partials, np.shape(target), -1)
        return finish(loss, partials, (), -1)

    return run


@overload(cross_entropy, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _cross_entropy_njit(input, target, weight=None, size_average=None, ignore_index=-100,
                        reduce=None, reduction="mean", label_smoothing=0.0):
    run = _loss_njit(input, target, weight, ignore_index, reduction, size_average, reduce,
                     True)
    if run is None:
        return None
    run = register_jitable(run)

    def impl(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean", label_smoothing=0.0):
        return run(input, target, weight, ignore_index, label_smoothing)

    return impl


@overload(nll_loss, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _nll_loss_njit(input, target, weight=None, size_average=None, ignore_index=-100,
                   reduce=None, reduction="mean"):
    run = _loss_njit(input, target, weight, ignore_index, reduction, size_average, reduce,
                     False)
    if run is None:
        return None
    run = register_jitable(run)

    def impl(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
        return run(input, target, weight, ignore_index, 0.0)

    return impl


# ================================================================== gradients
# cross_entropy_backward / nll_loss_backward and the fused *_with_grad: one
# kernel per target kind writes grad_input (and the per-sample losses) from
# one read of each sample's row, with the row cores of
# nbops/scalar/_class_grad.py. g: per-sample grad_output (gstride 1, 'none') or
# one value (gstride 0). 'mean' (mean true): the kernel first adds the target
# weights per chunk (the forward's chunking; it reads only the targets), so the
# divisor is known before any row is read. partials as in the forward kernels.
def _index_grad(x, t, w, g, gstride, mean, O, C, I, ignore, a, b, wsum, lse, loss, partials,
                grad, zeroed, need_loss, R):
    units = partials.shape[1] - 1
    div = 1.0
    if R is not None:
        if mean:
            for u in prange(units):
                r0 = u * R
                partials[1, u] = weight_sum(t, w, r0, min(O, r0 + R) - r0, ignore)
            div = 0.0
            for u in range(units):
                div += partials[1, u]
        for u in prange(units):
            r0 = u * R
            sl, sw = ce_grad_rows(x, t, w, g, gstride, div, C, r0, min(O, r0 + R), ignore,
                                  a, b, wsum, lse, loss, grad, zeroed, need_loss)
            partials[0, u] = sl
            partials[1, u] = sw
    if I is not None:
        nb = (I + COLS_BLOCK - 1) // COLS_BLOCK
        if mean:
            for u in prange(units):
                j0 = (u % nb) * COLS_BLOCK
                partials[1, u] = weight_sum(t, w, (u // nb) * I + j0, min(COLS_BLOCK, I - j0),
                                            ignore)
            div = 0.0
            for u in range(units):
                div += partials[1, u]
        for u in prange(units):
            sl, sw = ce_grad_cols(x, t, w, g, gstride, div, u // nb, C, I, (u % nb) * COLS_BLOCK,
                                  ignore, a, b, wsum, lse, loss, grad, zeroed)
            partials[0, u] = sl
            partials[1, u] = sw
    _totals(partials)


_index_grad_serial, _index_grad_parallel = _config.kernels(_index_grad, fastmath=ROW_FASTMATH)


# div: O * I for 'mean' (the number of samples), else 1.0.
def _prob_grad(x, p, w, g, gstride, div, O, C, I, pa, pb, loss, partials, grad, R):
    if R is not None:
        for u in prange(partials.shape[1] - 1):
            r0 = u * R
            partials[0, u] = prob_grad_rows(x, p, w, g, gstride, div, C, r0, min(O, r0 + R),
                                            pa, pb, loss, grad)
    if I is not None:
        nb = (I + COLS_BLOCK - 1) // COLS_BLOCK
        for u in prange(O * nb):
            partials[0, u] = prob_grad_cols(x, p, w, g, gstride, div, u // nb, C, I,
                                            (u % nb) * COLS_BLOCK, pa, pb, loss, grad)
    _totals(partials)


_prob_grad_serial, _prob_grad_parallel = _config.kernels(_prob_grad, fastmath=ROW_FASTMATH)


def _grad_output(grad_output, plan, compute):
    """``grad_output`` as a flat C-contiguous ``compute`` array: the per-sample
    gradients for reduction='none', else one value (a scalar or a 0-d array)."""
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        raise TypeError("grad_output: got a CUDA device array while input is a host (NumPy) "
                        "array; pass all arrays on the same side")
    g = as_array(grad_output, "grad_output")
    if g.dtype.kind != "f" and not (g.ndim == 0 and g.dtype.kind in "iu"
                                    and not isinstance(grad_output, np.ndarray)):
        raise TypeError(f"grad_output: expected a float array, got dtype {g.dtype}")
    expected = plan.loss_shape if plan.reduction.mode == "none" else ()
    if g.shape != expected:
        raise ValueError(f"grad_output has shape {g.shape}, expected {expected} (the shape "
                         f"of the forward's output with reduction={plan.reduction.mode!r})")
    return np.ascontiguousarray(g, dtype=compute).reshape(-1)


_ONE = {}


def _grad_dest(out, shape, compute, result, zeros, *inputs):
    """(the array the kernel writes, whether it is ``out``); ``zeros``: a new array
    is made zero (np.zeros: pages the kernel never writes are never touched)."""
    if out is None:
        return (np.zeros if zeros else _memory.empty)(shape, compute), False
    check_out(out, shape, result)
    direct = (out.dtype == compute and out.flags.c_contiguous
              and not any(np.may_share_memory(out, a) for a in inputs))
    if direct:
        return out, True
    return (np.zeros if zeros else np.empty)(shape, compute), False


def _class_grad(x, t, w, plan, lse, compute, result, grad_output, out):
    """(loss, grad_input) of a planned call; ``grad_output`` None: the gradient of the
    loss itself (of the sum of the losses for reduction='none')."""
    red = plan.reduction.mode
    if grad_output is None:
        g = _ONE.get(compute.char)
        if g is None:
            g = _ONE[compute.char] = np.ones(1, compute)
        gstride = 0
    else:
        g = _grad_output(grad_output, plan, compute)
        gstride = 1 if red == "none" else 0
    xf, O, C, I = _layout(x, compute, plan, transposed_ok=False)
    wc = _weights(w, C, compute)
    if not plan.probabilities:
        _check_targets(t, C, plan.ignore_index)  # before any kernel
    # nll_loss into a new array below the size of reused blocks: np.zeros, and the
    # kernel writes the target entries only; otherwise it writes every entry
    zeros = not lse and out is None and x.nbytes < _memory.MIN_BYTES
    grad, direct = _grad_dest(out, x.shape, compute, result, zeros, x, t, g)
    gf = grad.reshape(-1)
    n = O * I
    R, units = _units(O, C, I, lse)
    loss = np.zeros(n, compute)
    partials = np.zeros((2, units + 1), np.float64)
    if plan.probabilities:
        pf = np.ascontiguousarray(t, dtype=compute).reshape(-1)
        if n and C:
            eps = plan.label_smoothing
            key = ("ce_prob_grad", compute.char, I == 1)
            launch(_prob_grad_serial, _prob_grad_parallel, key, xf.size, xf, pf, wc, g,
                   gstride, float(n) if red == "mean" else 1.0, O, C, None if I == 1 else I,
                   1.0 - eps, eps / C, loss, partials, gf, R if I == 1 else None)
        value = _reduce(red, loss, partials, plan.loss_shape, result, count=n)
    else:
        tf = t.reshape(-1)
        if tf.dtype != np.int64 or not tf.flags.c_contiguous:
            tf = np.ascontiguousarray(tf, dtype=np.int64)
        if n and C:
            eps = plan.label_smoothing
            wsum = float(np.sum(wc, dtype=np.float64)) if eps else 0.0
            key = ("ce_grad", compute.char, I == 1, lse, eps == 0)
            launch(_index_grad_serial, _index_grad_parallel, key, n if zeros else xf.size, xf,
                   tf, wc, g, gstride, red == "mean", O, C, None if I == 1 else I,
                   plan.ignore_index, 1.0 - eps, eps / C if eps else None, wsum,
                   True if lse else None, loss, partials, gf, zeros, grad_output is None,
                   R if I == 1 else None)
        value = _reduce(red, loss, partials, plan.loss_shape, result)
    return value, deliver(grad, out, direct, compute, result)


def _device_grad(name, input, target, **kwargs):
    return getattr(_cuda(), name)(input, target, **kwargs)


_GRAD_NOTES = r"""
    With :math:`p = \operatorname{softmax}(x_n)` (recomputed from the logits:
    the saved tensor is the input), :math:`a = 1 - \varepsilon`, :math:`b =
    \varepsilon / C` and :math:`s_n` the sample's share of ``grad_output``
    (``grad_output / D`` for 'mean', ``grad_output`` for 'sum', the sample's
    entry for 'none'), a class-index target :math:`y_n` gives

    .. math::

        \frac{\partial L}{\partial x_{n,c}} = s_n \big((a w_{y_n} + b W) p_c
            - b w_c - a w_{y_n} [c = y_n]\big), \qquad W = \sum_c w_c,

    0 for a sample whose target is ``ignore_index`` (even where its logits hold
    inf or NaN, which autograd turns into NaN: it multiplies the row's softmax
    by 0; the loss does not depend on an ignored row); 'mean' divides by
    :math:`D = \sum_n w_{y_n}` over the samples not ignored (the forward's
    denominator, PyTorch's for the smoothing term too). Class-probability
    targets: :math:`s_n (Q_n p_c - q_{n,c})`, :math:`q = w (a P + b)`,
    :math:`Q_n = \sum_c q_{n,c}`, 'mean' dividing by the number of samples.
    Same as ``torch.autograd`` through ``torch.nn.functional.cross_entropy``."""


def cross_entropy_backward(grad_output, input, target, weight=None, size_average=None,
                           ignore_index=-100, reduce=None, reduction="mean",
                           label_smoothing=0.0, *, out=None):
    r"""Backward of :func:`nbops.cross_entropy`: the gradient of its input (the logits).

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a scalar (a 0-d array or a
        number) for 'mean' and 'sum', an array of the per-sample losses' shape
        for 'none'.
    input : array_like
        The forward's input (logits), shape ``(C,)``, ``(N, C)`` or
        ``(N, C, d1, ..., dk)``.
    target : array_like
        The forward's target: class indices or class probabilities.
    weight, size_average, ignore_index, reduce, reduction, label_smoothing
        The forward's options (see :func:`nbops.cross_entropy`).
    out : ndarray, optional
        Array of the input's shape and result dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        The gradient of ``input``: its shape, its float dtype (float32 stays float32).

    Raises
    ------
    ValueError, TypeError
        As the forward (checked before any computation), and a ``grad_output``
        of the wrong shape or a non-float dtype.

    Notes
    -----
    @GRAD_NOTES@

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    >>> nbops.cross_entropy_backward(1.0, x, np.array([2, 0]))
    array([[ 0.04501529,  0.12236424, -0.16737952],
           [-0.33333333,  0.16666667,  0.16666667]])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _device_grad("cross_entropy_backward", input, target, grad_output=grad_output,
                            weight=weight, size_average=size_average,
                            ignore_index=ignore_index, reduce=reduce, reduction=reduction,
                            label_smoothing=label_smoothing, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().class_backward("cross_entropy", grad_output, input, target,
                                         weight, size_average, ignore_index, reduce,
                                         reduction, label_smoothing, out=out)
    x, t, w, plan, compute, result = _planned(input, target, weight, size_average,
                                              ignore_index, reduce, reduction,
                                              label_smoothing, True)
    return _class_grad(x, t, w, plan, True, compute, result, grad_output, out)[1]


def cross_entropy_with_grad(input, target, weight=None, size_average=None, ignore_index=-100,
                            reduce=None, reduction="mean", label_smoothing=0.0, *, out=None):
    r""":func:`nbops.cross_entropy` and its input gradient, from one read of the logits.

    Per sample row: its maximum, its sum of exponentials (each ``exp`` stored
    in the gradient), then the gradient written in place while the row is in
    cache; the 'mean' divisor is added from the targets and weights first. No
    other ``(N, C)`` array is made. The loss is the forward's, bit for bit on
    any number of threads.

    Parameters
    ----------
    input, target, weight, size_average, ignore_index, reduce, reduction, label_smoothing
        As :func:`nbops.cross_entropy`.
    out : ndarray, optional
        Array of the input's shape and result dtype to write the gradient into.

    Returns
    -------
    loss : NumPy scalar or ndarray
        What :func:`nbops.cross_entropy` returns.
    grad_input : ndarray
        The gradient of the loss with respect to ``input`` (for
        ``reduction='none'``, of the sum of the per-sample losses: a
        ``grad_output`` of ones).

    Raises
    ------
    ValueError, TypeError
        As :func:`nbops.cross_entropy`, before any computation.

    Notes
    -----
    @GRAD_NOTES@

    Examples
    --------
    >>> x = np.array([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])
    >>> loss, grad = nbops.cross_entropy_with_grad(x, np.array([2, 0]))
    >>> float(loss)
    0.7531091...
    >>> grad[1]
    array([-0.33333333,  0.16666667,  0.16666667])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _device_grad("cross_entropy_with_grad", input, target, weight=weight,
                            size_average=size_average, ignore_index=ignore_index,
                            reduce=reduce, reduction=reduction,
                            label_smoothing=label_smoothing, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().class_with_grad("cross_entropy", input, target, weight,
                                          size_average, ignore_index, reduce, reduction,
                                          label_smoothing, out=out)
    x, t, w, plan, compute, result = _planned(input, target, weight, size_average,
                                              ignore_index, reduce, reduction,
                                              label_smoothing, True)
    return _class_grad(x, t, w, plan, True, compute, result, None, out)


_NLL_GRAD_NOTES = r"""
    :math:`\partial L / \partial x_{n,c} = -s_n w_{y_n} [c = y_n]`, 0 for a
    sample whose target is ``ignore_index`` (:math:`s_n`: the sample's share of
    ``grad_output``; 'mean' divides by the sum of the weights of the targets not
    ignored). The input's values are not read for the gradient. Same as
    ``torch.autograd`` through ``torch.nn.functional.nll_loss``."""


def nll_loss_backward(grad_output, input, target, weight=None, size_average=None,
                      ignore_index=-100, reduce=None, reduction="mean", *, out=None):
    r"""Backward of :func:`nbops.nll_loss`: the gradient of its input.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a scalar for 'mean' and 'sum',
        an array of the per-sample losses' shape for 'none'.
    input : array_like
        The forward's input (log-probabilities).
    target : array_like
        The forward's class indices.
    weight, size_average, ignore_index, reduce, reduction
        The forward's options (see :func:`nbops.nll_loss`).
    out : ndarray, optional
        Array of the input's shape and result dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        The gradient of ``input``: its shape and float dtype.

    Raises
    ------
    ValueError, TypeError
        As the forward, and a ``grad_output`` of the wrong shape or dtype.

    Notes
    -----
    @NLL_GRAD_NOTES@

    Examples
    --------
    >>> logp = np.log(np.array([[0.2, 0.3, 0.5], [0.5, 0.2, 0.3]]))
    >>> nbops.nll_loss_backward(1.0, logp, np.array([2, 1]))
    array([[ 0. ,  0. , -0.5],
           [ 0. , -0.5,  0. ]])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _device_grad("nll_loss_backward", input, target, grad_output=grad_output,
                            weight=weight, size_average=size_average,
                            ignore_index=ignore_index, reduce=reduce, reduction=reduction,
                            out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().class_backward("nll_loss", grad_output, input, target, weight,
                                         size_average, ignore_index, reduce, reduction, 0.0,
                                         out=out)
    x, t, w, plan, compute, result = _planned(input, target, weight, size_average,
                                              ignore_index, reduce, reduction, 0.0, False)
    return _class_grad(x, t, w, plan, False, compute, result, grad_output, out)[1]


def nll_loss_with_grad(input, target, weight=None, size_average=None, ignore_index=-100,
                       reduce=None, reduction="mean", *, out=None):
    r""":func:`nbops.nll_loss` and its input gradient, in one pass.

    Parameters
    ----------
    input, target, weight, size_average, ignore_index, reduce, reduction
        As :func:`nbops.nll_loss`.
    out : ndarray, optional
        Array of the input's shape and result dtype to write the gradient into.

    Returns
    -------
    loss : NumPy scalar or ndarray
        What :func:`nbops.nll_loss` returns.
    grad_input : ndarray
        The gradient of the loss (of the sum of the losses for 'none').

    Raises
    ------
    ValueError, TypeError
        As :func:`nbops.nll_loss`, before any computation.

    Notes
    -----
    @NLL_GRAD_NOTES@

    Examples
    --------
    >>> logp = np.log(np.array([[0.2, 0.3, 0.5], [0.5, 0.2, 0.3]]))
    >>> loss, grad = nbops.nll_loss_with_grad(logp, np.array([2, 1]), reduction="sum")
    >>> grad
    array([[ 0.,  0., -1.],
           [ 0., -1.,  0.]])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _device_grad("nll_loss_with_grad", input, target, weight=weight,
                            size_average=size_average, ignore_index=ignore_index,
                            reduce=reduce, reduction=reduction, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().class_with_grad("nll_loss", input, target, weight, size_average,
                                          ignore_index, reduce, reduction, 0.0, out=out)
    x, t, w, plan, compute, result = _planned(input, target, weight, size_average,
                                              ignore_index, reduce, reduction, 0.0, False)
    return _class_grad(x, t, w, plan, False, compute, result, None, out)


for _fn, _notes in ((cross_entropy_backward, _GRAD_NOTES), (cross_entropy_with_grad, _GRAD_NOTES),
                    (nll_loss_backward, _NLL_GRAD_NOTES), (nll_loss_with_grad, _NLL_GRAD_NOTES)):
    _fn.__doc__ = _fn.__doc__.replace("    @GRAD_NOTES@\n", _notes.lstrip("\n") + "\n")
    _fn.__doc__ = _fn.__doc__.replace("    @NLL_GRAD_NOTES@\n", _notes.lstrip("\n") + "\n")


# ----------------------------------------- the gradients inside @njit
# The serial kernels above, planned as the forward's overloads (literal
# reduction and legacy flags; run-time checks with the CPU path's messages).
_GRAD_OUTPUT_SHAPE_MESSAGE = ("grad_output does not have the shape of the forward's output "
                              "(the per-sample losses for reduction='none', else a scalar)")
_OUT_SHAPE_MESSAGE = "out does not have the input's shape"


def _grad_values(grad_output, like):
    """``grad_output`` as a flat array of ``like``'s float type (None: one 1)."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_grad_values)
def _grad_values_ol(grad_output, like):
    if _is_none(grad_output):
        return lambda grad_output, like: np.full(1, like)
    if isinstance(grad_output, (types.Float, types.Integer)):
        def scalar(grad_output, like):
            g = np.full(1, like)
            g[0] = grad_output
            return g

        return scalar
    return lambda grad_output, like: _as_flat(grad_output, like)


def _grad_buffer(out, n, like):
    """The flat gradient array the kernel writes: ``out``'s memory, or a new one."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_grad_buffer)
def _grad_buffer_ol(out, n, like):
    if _is_none(out):
        dtype = as_dtype(like).type
        return lambda out, n, like: np.empty(n, dtype)
    if not (isinstance(out, types.Array) and out.layout == "C" and out.mutable):
        raise errors.TypingError("nbops: out must be a writable C-contiguous array")
    if out.dtype != like:
        raise errors.TypingError(f"nbops: out must have dtype {like}, got {out.dtype}")
    return lambda out, n, like: out.reshape(-1)


def _grad_result(buffer, out, shape):
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_grad_result)
def _grad_result_ol(buffer, out, shape):
    if _is_none(out):
        return lambda buffer, out, shape: buffer.reshape(shape)
    return lambda buffer, out, shape: out


@register_jitable
def _batch_loss_shape(shape):
    return shape[:1] + shape[2:]


@register_jitable
def _no_loss_shape(shape):
    return shape[:0]


def _grad_njit(input, target, weight, ignore_index, reduction, size_average, reduce, lse,
               grad_output, out, fused):
    """The implementation of a backward (``fused`` false: returns grad_input) or of a
    ``*_with_grad`` (returns (loss, grad_input)) inside @njit, or None."""
    red = NJ.reduction_plan(size_average, reduce, reduction).mode
    _check_ignore_index_type(ignore_index)
    if not (isinstance(input, types.Array)
            and isinstance(input.dtype, (types.Float, types.Integer))):
        return None
    if input.ndim == 0:
        raise NJ.DeferredError(ValueError(f"{P.INPUT_SHAPES_MESSAGE}, got a 0-d array"))
    ty = input.dtype if isinstance(input.dtype, types.Float) else types.float64
    if not fused:
        gdim = grad_output.ndim if isinstance(grad_output, types.Array) else 0
        gty = grad_output.dtype if isinstance(grad_output, types.Array) else grad_output
        if not isinstance(gty, types.Float) and not (isinstance(gty, types.Integer)
                                                     and gdim == 0):
            raise NJ.DeferredError(TypeError(f"grad_output: expected a float array, got {gty}"))
        if gdim != (max(input.ndim - 1, 0) if red == "none" else 0):
            raise NJ.DeferredError(ValueError(_GRAD_OUTPUT_SHAPE_MESSAGE))
    finish = _FINISH[red]
    gstride = 1 if red == "none" and not fused else 0
    mean = red == "mean"
    smoothing_message = P.LABEL_SMOOTHING_MESSAGE
    prob = (lse and isinstance(target, types.Array) and isinstance(target.dtype, types.Float)
            and target.ndim == input.ndim)
    if prob:
        float_index_message = P.index_dtype_message(target.dtype, None, lse)
    else:
        _check_index_target(input, target, lse)
    flag = True if lse else None  # the kernels' lse argument
    shape_of = _batch_loss_shape if input.ndim > 1 else _no_loss_shape

    @register_jitable
    def start(input, weight, label_smoothing, grad_output, out):
        """(like, O, C, I, flat input, weights, grad_output, gradient, losses)."""
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(smoothing_message)
        like = ty(1.0)
        O, C, I = _dims(input.shape)
        g = _grad_values(grad_output, like)
        if gstride and g.size != O * I:
            raise ValueError(_GRAD_OUTPUT_SHAPE_MESSAGE)
        if out is not None and out.shape != input.shape:
            raise ValueError(_OUT_SHAPE_MESSAGE)
        return (like, O, C, I, _as_flat(input, like), _weights_of(weight, C, like), g,
                _grad_buffer(out, O * C * I, like), np.zeros(O * I, ty))

    if prob:
        def run_prob(input, target, weight, ignore_index, label_smoothing, grad_output, out):
            like, O, C, I, x, w, g, grad, loss = start(input, weight, label_smoothing,
                                                       grad_output, out)
            if target.shape != input.shape:  # class indices, as on the CPU path
                raise TypeError(float_index_message)
            if ignore_index >= 0:
                raise ValueError(P.PROBABILITY_IGNORE_MESSAGE)
            p = _as_flat(target, like)
            R, units = _units(O, C, I, True)
            partials = np.zeros((2, units + 1), np.float64)
            if O * I > 0 and C > 0:
                pa, pb = 1.0 - label_smoothing, label_smoothing / C
                div = np.float64(O * I) if mean else 1.0
                if I == 1:
                    _prob_grad_serial(x, p, w, g, gstride, div, O, C, None, pa, pb, loss,
                                      partials, grad, R)
                else:
                    _prob_grad_serial(x, p, w, g, gstride, div, O, C, I, pa, pb, loss,
                                      partials, grad, None)
            return (finish(loss, partials, shape_of(input.shape), O * I),
                    _grad_result(grad, out, input.shape))

        return run_prob

    def run(input, target, weight, ignore_index, label_smoothing, grad_output, out):
        like, O, C, I, x, w, g, grad, loss = start(input, weight, label_smoothing,
                                                   grad_output, out)
        t = _targets_of(target, input)
        ignore = np.int64(ignore_index)
        for i in range(t.size):
            ti = t[i]
            if ti != ignore and (ti < 0 or ti >= C):
                raise ValueError(_RANGE_MESSAGE)
        R, units = _units(O, C, I, lse)
        partials = np.zeros((2, units + 1), np.float64)
        if O * I > 0 and C > 0:
            wsum = 0.0
            if label_smoothing != 0:
                for c in range(C):
                    wsum += w[c]
            a, b = 1.0 - label_smoothing, label_smoothing / max(C, 1)
            if I == 1:
                _index_grad_serial(x, t, w, g, gstride, mean, O, C, None, ignore, a, b,
                                   wsum, flag, loss, partials, grad, False, True, R)
            else:
                _index_grad_serial(x, t, w, g, gstride, mean, O, C, I, ignore, a, b,
                                   wsum, flag, loss, partials, grad, False, True, None)
        return (finish(loss, partials, shape_of(input.shape), -1),
                _grad_result(grad, out, input.shape))

    return run


@overload(cross_entropy_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _cross_entropy_backward_njit(grad_output, input, target, weight=None, size_average=None,
                                 ignore_index=-100, reduce=None, reduction="mean",
                                 label_smoothing=0.0, out=None):
    run = _grad_njit(input, target, weight, ignore_index, reduction, size_average, reduce,
                     True, grad_output, out, False)
    if run is None:
        return None
    run = register_jitable(run)

    def impl(grad_output, input, target, weight=None, size_average=None, ignore_index=-100,
             reduce=None, reduction="mean", label_smoothing=0.0, out=None):
        return run(input, target, weight, ignore_index, label_smoothing, grad_output, out)[1]

    return impl


@overload(cross_entropy_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _cross_entropy_with_grad_njit(input, target, weight=None, size_average=None,
                                  ignore_index=-100, reduce=None, reduction="mean",
                                  label_smoothing=0.0, out=None):
    run = _grad_njit(input, target, weight, ignore_index, reduction, size_average, reduce,
                     True, None, out, True)
    if run is None:
        return None
    run = register_jitable(run)

    def impl(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean", label_smoothing=0.0, out=None):
        return run(input, target, weight, ignore_index, label_smoothing, None, out)

    return impl


@overload(nll_loss_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _nll_loss_backward_njit(grad_output, input, target, weight=None, size_average=None,
                            ignore_index=-100, reduce=None, reduction="mean", out=None):
    run = _grad_njit(input, target, weight, ignore_index, reduction, size_average, reduce,
                     False, grad_output, out, False)
    if run is None:
        return None
    run = register_jitable(run)

    def impl(grad_output, input, target, weight=None, size_average=None, ignore_index=-100,
             reduce=None, reduction="mean", out=None):
        return run(input, target, weight, ignore_index, 0.0, grad_output, out)[1]

    return impl


@overload(nll_loss_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _nll_loss_with_grad_njit(input, target, weight=None, size_average=None, ignore_index=-100,
                             reduce=None, reduction="mean", out=None):
    run = _grad_njit(input, target, weight, ignore_index, reduction, size_average, reduce,
                     False, None, out, True)
    if run is None:
        return None
    run = register_jitable(run)

    def impl(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean", out=None):
        return run(input, target, weight, ignore_index, 0.0, None, out)

    return impl
