"""Connectionist temporal classification: ``nbops.ctc_loss``, its backward and ``_with_grad``.

A sample ``b`` has ``T_b = input_lengths[b]`` time steps of log-probabilities
``lp[t, c]`` over ``C`` classes and a target ``l`` of ``S_b = target_lengths[b]``
labels. Its extended target ``l'`` puts a blank before, between and after the
labels (``2 S_b + 1`` states ``s``). Graves et al.'s recursions, in log space
with float64 accumulation (float32 inputs included), as PyTorch's CPU kernel
computes them:

    ``alpha[0, 0] = lp[0, blank]``, ``alpha[0, 1] = lp[0, l'[1]]``,
    ``alpha[t, s] = logsumexp(alpha[t-1, s], alpha[t-1, s-1], alpha[t-1, s-2]) + lp[t, l'[s]]``

(the ``s-2`` term only where ``l'[s] != l'[s-2]``, i.e. between two different
labels), the loss ``nll = -logsumexp(alpha[T_b-1, 2 S_b], alpha[T_b-1, 2 S_b - 1])``
(``-alpha[T_b-1, 0]`` for an empty target; ``-0`` or ``inf`` for ``T_b = 0``);
``beta`` runs the same recursion backwards from the last two states, and the
gradient of ``nll`` with respect to ``lp`` is PyTorch's

    ``grad[t, c] = exp(lp[t, c]) - exp(log(sum over s with l'[s] = c of
    exp(alpha[t, s] + beta[t, s])) + nll - lp[t, c])``

for ``t < T_b`` (0 after), which assumes that ``lp`` is a ``log_softmax`` output
(the ``exp(lp)`` term vanishes through the log_softmax's backward). An
impossible alignment (``T_b`` too short for the target and its repeats) has
``nll = inf`` and a NaN gradient, as PyTorch; ``zero_infinity`` makes both 0.

The kernels hold each ``exp(alpha)``, ``exp(beta)`` as a float64 mantissa and
an int64 base-2 exponent (the range of log space, the sums of linear space:
no ``exp``/``log`` per state), and the gradient's per-class sums as shares of
``sum over s of exp(alpha + beta - lp)``, which equals the likelihood at every
``t``. Samples are independent tasks (one thread each): results are
bit-identical on any thread count.
"""

import math
import operator

import numpy as np
from numba import prange, types
from numba.extending import overload, register_jitable

from .. import _config
from .._launch import launch, task_address
from .._numba_internals import make_task_call
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    is_dask_array,
    is_device_array,
    result_dtype,
)
from ..cuda import ops as _cuda
from . import njit_args as NJ

_REDUCTIONS = ("none", "mean", "sum")


# --------------------------------------------------------------------------- #
# kernels
# --------------------------------------------------------------------------- #


@register_jitable
def _extended(targets, offset, length, blank, labels, skip):
    """Fill ``labels`` with the extended target (blanks around and between the
    labels) and ``skip`` with whether state ``s`` may come from ``s - 2``."""
    for s in range(2 * length + 1):
        if s % 2 == 0:
            labels[s] = blank
            skip[s] = False
        else:
            labels[s] = targets[offset + s // 2]
            skip[s] = s > 1 and targets[offset + s // 2] != targets[offset + s // 2 - 1]


#: Base-2 exponent of a zero value (far below any other: its terms align to 0).
_ZERO_E = -(1 << 40)
#: 2**-k for k = 0 .. 1100 (0 from 2**-1075 on): the alignment of two exponents.
_POW2 = np.ldexp(1.0, -np.arange(1101)).astype(np.float64)
_LN2 = math.log(2.0)
_LOG2E = 1.0 / math.log(2.0)
_HIGH = 2.0 ** 200
_LOW = 2.0 ** -200
_SHIFT_UP = 2.0 ** 400
_SHIFT_DOWN = 2.0 ** -400


@register_jitable
def _split_exp(x):
    """``exp(x)`` as ``(mantissa in [1, 2), base-2 exponent)``; ``(0, _ZERO_E)`` for
    ``-inf``, the mantissa NaN or inf (exponent 0) for NaN or ``+inf``."""
    if x == -np.inf:
        return 0.0, _ZERO_E
    if not math.isfinite(x):
        return math.exp(x), 0
    k = math.floor(x * _LOG2E)
    return math.exp(x - k * _LN2), np.int64(k)


@register_jitable
def _normalized(v, e):
    """``v * 2**e`` with its mantissa brought back into [2**-200, 2**200]."""
    if v == 0.0:
        return 0.0, _ZERO_E
    if v < _LOW:
        return v * _SHIFT_UP, e - 400
    if v > _HIGH:
        return v * _SHIFT_DOWN, e + 400
    return v, e


@register_jitable
def _align(e_max, e):
    """The factor ``2**(e - e_max)`` (``e <= e_max``) of a term's mantissa."""
    return _POW2[min(e_max - e, 1100)]


@register_jitable
def _emissions(lp, t, b, ym, ye):
    """``exp(lp[t, b, c])`` of every class as mantissas ``ym`` and exponents ``ye``."""
    for c in range(ym.size):
        ym[c], ye[c] = _split_exp(float(lp[t, b, c]))


@register_jitable
def _alphas(lp, b, n_t, labels, skip, am, ae, ym, ye):
    """The forward variables of sample ``b``: ``alpha[t, s] = am[r, s] * 2**ae[r, s]``
    with ``r = t % len(am)`` (all ``n_t`` rows, or two rows used in turn); returns
    the sample's negative log-likelihood.

    A value is a float64 mantissa in [2**-200, 2**200] and an int64 base-2
    exponent (a float64 without its exponent range limit): terms are aligned to
    the largest exponent, so the sums are those of log space without its
    ``exp``/``log`` per state."""
    n_s = labels.size
    rows = am.shape[0]
    _emissions(lp, 0, b, ym, ye)
    for s in range(n_s):
        am[0, s] = 0.0
        ae[0, s] = _ZERO_E
    for s in range(min(n_s, 2)):
        am[0, s], ae[0, s] = _normalized(ym[labels[s]], ye[labels[s]])
    for t in range(1, n_t):
        _emissions(lp, t, b, ym, ye)
        pm, pe = am[(t - 1) % rows], ae[(t - 1) % rows]
        cm, ce = am[t % rows], ae[t % rows]
        for s in range(n_s):
            e1 = pe[s]
            e2 = pe[s - 1] if s > 0 else _ZERO_E
            e3 = pe[s - 2] if skip[s] else _ZERO_E
            em = max(e1, e2, e3)
            v = pm[s] * _align(em, e1)
            if s > 0:
                v += pm[s - 1] * _align(em, e2)
            if skip[s]:
                v += pm[s - 2] * _align(em, e3)
            c = labels[s]
            cm[s], ce[s] = _normalized(v * ym[c], em + ye[c])
    r = (n_t - 1) % rows
    if n_s == 1:
        v, e = am[r, 0], ae[r, 0]
    else:
        e = max(ae[r, n_s - 1], ae[r, n_s - 2])
        v = am[r, n_s - 1] * _align(e, ae[r, n_s - 1]) + am[r, n_s - 2] * _align(e, ae[r, n_s - 2])
    if v == 0.0:
        return np.inf
    return -(math.log(v) + e * _LN2)


def _ctc_nll(lp, targets, offsets, input_lengths, target_lengths, blank, nll):
    """The negative log-likelihood of each sample into ``nll`` (float64, (N,)).

    ``lp``: (T, N, C) C-contiguous; ``targets``: the labels of sample ``b`` are
    ``targets[offsets[b]:offsets[b] + target_lengths[b]]``.
    """
    n_c = lp.shape[2]
    for b in prange(nll.size):
        n_t = input_lengths[b]
        n_s = 2 * target_lengths[b] + 1
        if n_t == 0:
            nll[b] = -0.0 if n_s == 1 else np.inf
            continue
        labels = np.empty(n_s, np.int64)
        skip = np.empty(n_s, np.bool_)
        _extended(targets, offsets[b], target_lengths[b], blank, labels, skip)
        am = np.empty((2, n_s), np.float64)  # two rows, used in turn
        ae = np.empty((2, n_s), np.int64)
        ym = np.empty(n_c, np.float64)
        ye = np.empty(n_c, np.int64)
        nll[b] = _alphas(lp, b, n_t, labels, skip, am, ae, ym, ye)


@_config.task_function
def _grad_task(lp, targets, offsets, input_lengths, target_lengths, blank, scale,
               zero_infinity, nll, grad, b):
    """Sample ``b`` of :func:`_ctc_grad` (its task)."""
    n_c = lp.shape[2]
    n_t = input_lengths[b]
    n_s = 2 * target_lengths[b] + 1
    g = scale[b]
    for t in range(n_t, lp.shape[0]):
        for c in range(n_c):
            grad[t, b, c] = 0.0
    if n_t == 0:
        nll[b] = -0.0 if n_s == 1 else np.inf
        return
    labels = np.empty(n_s, np.int64)
    skip = np.empty(n_s, np.bool_)
    _extended(targets, offsets[b], target_lengths[b], blank, labels, skip)
    am = np.empty((n_t, n_s), np.float64)
    ae = np.empty((n_t, n_s), np.int64)
    ym = np.empty(n_c, np.float64)
    ye = np.empty(n_c, np.int64)
    loss = _alphas(lp, b, n_t, labels, skip, am, ae, ym, ye)
    nll[b] = loss
    if loss == np.inf:
        fill = 0.0 if zero_infinity else np.nan
        for t in range(n_t):
            for c in range(n_c):
                grad[t, b, c] = fill
        return
    bm = np.empty((2, n_s), np.float64)  # beta, two rows used in turn
    be = np.empty((2, n_s), np.int64)
    qm = np.empty(n_s, np.float64)  # beta before the emission factor
    qe = np.empty(n_s, np.int64)
    wm = np.empty(n_s, np.float64)
    we = np.empty(n_s, np.int64)
    acc = np.empty(n_c, np.float64)
    for t in range(n_t - 1, -1, -1):
        _emissions(lp, t, b, ym, ye)
        cm, ce = bm[t % 2], be[t % 2]
        if t == n_t - 1:
            for s in range(n_s):
                qm[s] = 1.0 if s >= n_s - 2 else 0.0
                qe[s] = 0 if s >= n_s - 2 else _ZERO_E
        else:
            nm, ne = bm[(t + 1) % 2], be[(t + 1) % 2]
            for s in range(n_s):
                e1 = ne[s]
                e2 = ne[s + 1] if s < n_s - 1 else _ZERO_E
                e3 = ne[s + 2] if s < n_s - 2 and skip[s + 2] else _ZERO_E
                em = max(e1, e2, e3)
                v = nm[s] * _align(em, e1)
                if s < n_s - 1:
                    v += nm[s + 1] * _align(em, e2)
                if s < n_s - 2 and skip[s + 2]:
                    v += nm[s + 2] * _align(em, e3)
                qm[s], qe[s] = _normalized(v, em)
        e_max = _ZERO_E
        for s in range(n_s):
            c = labels[s]
            cm[s], ce[s] = _normalized(qm[s] * ym[c], qe[s] + ye[c])
            wm[s], we[s] = _normalized(am[t, s] * qm[s], ae[t, s] + qe[s])
            e_max = max(e_max, we[s])
        for c in range(n_c):
            acc[c] = 0.0
        total = 0.0
        for s in range(n_s):
            w = wm[s] * _align(e_max, we[s])
            acc[labels[s]] += w
            total += w
        for c in range(n_c):
            grad[t, b, c] = (math.exp(lp[t, b, c]) - acc[c] / total) * g


call_task = make_task_call()


def _ctc_grad(lp, targets, offsets, input_lengths, target_lengths, blank, scale,
              zero_infinity, nll, grad, task_fn):
    """``nll`` as :func:`_ctc_nll`, and ``grad`` (T, N, C): ``scale[b]`` times the
    gradient of sample ``b``'s ``nll`` with respect to ``lp`` (zeros for an
    infinite ``nll`` under ``zero_infinity``, NaN without).

    At each step ``t``, ``w[s] = alpha[t, s] * beta[t, s] / exp(lp[t, l'[s]])``
    (``beta`` before its emission factor), and ``exp(alpha + beta + nll - lp)``
    summed over the states of class ``c`` is the share of ``w`` of those states
    in ``sum(w)`` (which is the likelihood at every ``t``).

    Each sample is a call of :func:`_grad_task` at ``task_fn`` (its address:
    see :func:`nbops._ops.linear._product`): compiled once, not again in each
    of the parallel kernel's libraries."""
    for b in prange(nll.size):
        call_task(_grad_task, task_fn, (lp, targets, offsets, input_lengths, target_lengths,
                                        blank, scale, zero_infinity, nll, grad, np.int64(b)))


@_config.core
def _grad_linked(lp, targets, offsets, input_lengths, target_lengths, blank, scale,
                 zero_infinity, nll, grad):
    """:func:`_ctc_grad`'s samples in order, calling :func:`_grad_task` linked: for
    the ``@njit`` overloads, which have no task addresses."""
    for b in range(nll.size):
        _grad_task(lp, targets, offsets, input_lengths, target_lengths, blank, scale,
                   zero_infinity, nll, grad, np.int64(b))


_nll_serial, _nll_parallel = _config.kernels(_ctc_nll)
_grad_serial, _grad_parallel = _config.kernels(_ctc_grad)


# --------------------------------------------------------------------------- #
# argument checks (all before any kernel)
# --------------------------------------------------------------------------- #


def _int_array(v, name):
    a = as_array(v, name)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64, copy=False)


def _lengths(v, name, n, batched):
    """Per-sample lengths as int64 (n,): a sequence of n ints (batched), or one
    int (or a sequence of one) for an unbatched ``log_probs``."""
    a = _int_array(v, name)
    if (batched and a.ndim != 1) or (not batched and a.ndim > 1) or a.size != n:
        raise ValueError(f"{name} must be of size batch_size ({n}), got shape {a.shape}")
    return np.ascontiguousarray(a.reshape(n))


def _plan(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity):
    """Check everything; return (lp (T, N, C) contiguous, flat int64 targets,
    offsets, input lengths, target lengths, blank, batched, compute, result)."""
    lp = log_probs if type(log_probs) is np.ndarray else as_array(log_probs, "log_probs")
    compute, result, batched, shape3 = _check_log_probs(lp.shape, lp.dtype)
    flat, offsets, il, tl, blank = _checked(shape3, batched, targets, input_lengths,
                                            target_lengths, blank, reduction, zero_infinity)
    lp = np.ascontiguousarray(lp.reshape(shape3), dtype=compute)
    return lp, flat, offsets, il, tl, blank, batched, compute, result


def _check_log_probs(shape, dtype):
    """(compute dtype, result dtype, batched, (T, N, C)) of a log_probs' shape and dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "f":
        raise TypeError(f"log_probs must be a float array, got dtype {dtype}")
    compute, result = result_dtype(dtype, "log_probs")
    shape = tuple(shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"log_probs must be (T, N, C) or unbatched (T, C), got shape {shape}")
    batched = len(shape) == 3
    return compute, result, batched, shape if batched else (shape[0], 1, shape[1])


def _checked(shape3, batched, targets, input_lengths, target_lengths, blank, reduction,
             zero_infinity):
    """The checks of everything but log_probs' values (host ``targets``); returns
    (flat int64 targets, offsets, input lengths, target lengths, blank)."""
    n_t, n, n_c = shape3
    if isinstance(blank, (bool, np.bool_)) or not isinstance(blank, (int, np.integer)):
        raise TypeError(f"blank must be an integer, got {blank!r}")
    blank = operator.index(blank)
    if not 0 <= blank < n_c:
        raise ValueError(f"blank must be in label range [0, {n_c}), got {blank}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not isinstance(zero_infinity, (bool, np.bool_)):
        raise TypeError(f"zero_infinity must be a bool, got {zero_infinity!r}")
    il = _lengths(input_lengths, "input_lengths", n, batched)
    tl = _lengths(target_lengths, "target_lengths", n, batched)
    if n and il.min() < 0:
        raise ValueError(f"input_lengths must be at least 0, got {il.min()}")
    if n and il.max() > n_t:
        raise ValueError(f"input_lengths must be at most T={n_t}, got {il.max()}")
    if n and tl.min() < 0:
        raise ValueError(f"target_lengths must be at least 0, got {tl.min()}")
    t = _int_array(targets, "targets")
    if t.ndim == 1:  # concatenated: exactly sum(target_lengths) labels
        if t.size != tl.sum():
            raise ValueError(f"targets: concatenated targets must hold sum(target_lengths) = "
                             f"{tl.sum()} labels, got {t.size}")
        flat = np.ascontiguousarray(t)
        offsets = np.concatenate(([0], np.cumsum(tl)[:-1])).astype(np.int64) if n else tl.copy()
        used = flat
    elif t.ndim == 2:  # padded (N, S)
        if t.shape[0] != n or (n and t.shape[1] < tl.max()):
            raise ValueError(f"targets: padded targets must be (N={n}, S) with S at least "
                             f"max(target_lengths) = {tl.max() if n else 0}, got {t.shape}")
        flat = np.ascontiguousarray(t).reshape(-1)
        offsets = np.arange(n, dtype=np.int64) * t.shape[1]
        used = t[np.arange(t.shape[1]) < tl[:, None]]
    else:
        raise ValueError(f"targets must be (N, S) padded or 1-D concatenated, got shape {t.shape}")
    if used.size:
        if used.min() < 0 or used.max() >= n_c:
            bad = used[(used < 0) | (used >= n_c)][0]
            raise ValueError(f"targets must be class indices in [0, {n_c}), got {bad}")
        if (used == blank).any():
            raise ValueError(f"targets must not contain the blank label ({blank})")
    return flat, offsets, il, tl, blank


def _key(lp):
    return ("ctc_loss", lp.dtype.char, lp.flags.writeable)


def _work(lp, tl):
    """Elements of work of a launch: time steps times extended-target states."""
    return lp.shape[0] * int((2 * tl + 1).sum())


def _losses(lp, flat, offsets, il, tl, blank):
    nll = np.empty(len(il), np.float64)
    if len(il):
        launch(_nll_serial, _nll_parallel, _key(lp), _work(lp, tl), lp, flat, offsets, il, tl,
               blank, nll)
    return nll


def _reduced(nll, tl, reduction, zero_infinity, batched, result):
    """The loss the forward returns from the per-sample float64 ``nll``."""
    if zero_infinity:
        nll = np.where(nll == np.inf, 0.0, nll)
    if reduction == "none":
        return nll.astype(result) if batched else result.type(nll[0])
    if reduction == "sum":
        return result.type(nll.sum())
    with np.errstate(invalid="ignore"):
        return result.type((nll / np.maximum(tl, 1)).mean() if nll.size else np.nan)


def _scales(grad_output, n, tl, reduction, batched, result):
    """The gradient of the loss with respect to each sample's nll, float64 (n,)."""
    g = as_array(grad_output, "grad_output")
    if g.dtype.kind not in "fiub":
        raise TypeError(f"grad_output must be real, got dtype {g.dtype}")
    if reduction == "none":
        shape = (n,) if batched else ()
        if g.shape != shape:
            raise ValueError(f"grad_output must have the loss's shape {shape} for "
                             f"reduction='none', got {g.shape}")
        return np.ascontiguousarray(g, np.float64).reshape(n)
    if g.size != 1 or g.ndim > 1:
        raise ValueError(f"grad_output must be a scalar for reduction={reduction!r}, "
                         f"got shape {g.shape}")
    v = float(g.reshape(()))
    if reduction == "sum":
        return np.full(n, v)
    return v / np.maximum(tl, 1).astype(np.float64) / max(n, 1)


def _gradient(lp, flat, offsets, il, tl, blank, scale, zero_infinity, batched, shape,
              compute, result, out):
    """(per-sample nll, gradient of log_probs' shape), written into ``out`` if given."""
    if out is not None:
        check_out(out, shape, result)
    grad = np.empty(lp.shape, compute)
    nll = np.empty(len(il), np.float64)
    if len(il):
        key = _key(lp)
        args = (lp, flat, offsets, il, tl, blank, scale, zero_infinity, nll, grad)
        launch(_grad_serial, _grad_parallel, key, _work(lp, tl), *args,
               task_address(_grad_task, key, args))
    grad = grad.reshape(shape)
    if out is not None:
        out[...] = grad
        return nll, out
    return nll, grad.astype(result, copy=False)


# --------------------------------------------------------------------------- #
# public functions
# --------------------------------------------------------------------------- #


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    r"""Connectionist temporal classification loss, as ``torch.nn.functional.ctc_loss``.

    The negative log-likelihood of each target sequence summed over all its
    alignments with the input (Graves et al., 2006).

    Parameters
    ----------
    log_probs : array_like
        ``(T, N, C)`` log-probabilities over ``C`` classes (a ``log_softmax``
        output) for ``T`` time steps of ``N`` samples, or ``(T, C)`` unbatched.
        float32 or float64.
    targets : array_like of int
        Padded ``(N, S)`` targets (row ``b`` holds its ``target_lengths[b]``
        labels first; the rest is ignored) or 1-D concatenated targets of
        ``sum(target_lengths)`` labels. Labels are in ``[0, C)`` and never
        ``blank``.
    input_lengths : sequence of int
        Time steps of each sample, at most ``T`` (one int unbatched).
    target_lengths : sequence of int
        Labels of each sample's target (one int unbatched).
    blank : int, default 0
        The blank class.
    reduction : {'none', 'mean', 'sum'}, default 'mean'
        'none': the loss of each sample; 'sum': their sum; 'mean': the mean
        over samples of each loss divided by its target length (at least 1).
    zero_infinity : bool, default False
        Replace infinite losses (impossible alignments) and their gradients by 0.

    Returns
    -------
    NumPy scalar or ndarray
        ``(N,)`` losses for 'none' (0-d unbatched), else a scalar; float32 stays
        float32.

    Raises
    ------
    ValueError, TypeError
        For a bad shape, length, label, blank or option, before any computation.

    Notes
    -----
    Log-space forward recursion over the extended target (blanks around and
    between the labels), accumulated in float64 (float32 inputs too); samples
    run in parallel. An input too short for its target (its labels plus one
    blank between each repeated pair) gives ``inf``, as PyTorch (0 with
    ``zero_infinity``). Unlike PyTorch's CPU kernel, a blank or an
    out-of-range label inside a target is an error.

    CUDA device arrays: ``log_probs`` and ``targets`` on the device (lengths
    as host sequences or device arrays), one block per sample; the argument
    checks read the targets and lengths on the host (a copy of those small
    integer arrays), and the result stays on the device (a 0-d array for
    'mean' and 'sum').

    Examples
    --------
    >>> logp = np.log(np.full((3, 1, 2), 0.5))
    >>> round(float(nbops.ctc_loss(logp, np.array([[1]]), [3], [1], reduction="sum")), 12)
    0.287682072452
    """
    if type(log_probs) is not np.ndarray and is_dask_array(log_probs):  # nbops/_dask.py
        return dask_ops().ctc_loss(log_probs, targets, input_lengths, target_lengths, blank,
                                   reduction, zero_infinity)
    if type(log_probs) is not np.ndarray and is_device_array(log_probs):
        return _cuda().ctc_loss(log_probs, targets, input_lengths, target_lengths, blank,
                                reduction, zero_infinity)
    lp, flat, offsets, il, tl, blank, batched, compute, result = _plan(
        log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    nll = _losses(lp, flat, offsets, il, tl, blank)
    return _reduced(nll, tl, reduction, zero_infinity, batched, result)


def ctc_loss_backward(grad_output, log_probs, targets, input_lengths, target_lengths, blank=0,
                      reduction="mean", zero_infinity=False, *, out=None):
    r"""The gradient of :func:`nbops.ctc_loss` with respect to ``log_probs``.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss: a scalar for 'mean' and 'sum', the loss's
        shape for 'none'.
    log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity
        As :func:`nbops.ctc_loss`.
    out : ndarray, optional
        Array of ``log_probs``' shape and dtype to write the gradient into.

    Returns
    -------
    ndarray
        Same shape and dtype as ``log_probs`` (zeros past each input length).

    Raises
    ------
    ValueError, TypeError
        As :func:`nbops.ctc_loss`, or for a ``grad_output`` of the wrong shape.

    Notes
    -----
    PyTorch's ``ctc_loss_backward``: from the forward and backward variables
    ``alpha``, ``beta`` of each sample (float64),

    .. math:: \frac{\partial L}{\partial lp_{t,c}} = g \left(e^{lp_{t,c}} -
              e^{-lp_{t,c}} \sum_{s: l'_s = c} e^{\alpha_{t,s} + \beta_{t,s} + nll}\right)

    with ``g`` the sample's share of ``grad_output`` (divided by its target
    length and ``N`` for 'mean'). The ``exp(lp)`` term assumes that
    ``log_probs`` is a ``log_softmax`` output (it vanishes through that
    op's backward), as in PyTorch. An impossible alignment gets NaN (zeros
    with ``zero_infinity``).

    Examples
    --------
    >>> logp = np.log(np.full((2, 1, 2), 0.5))
    >>> nbops.ctc_loss_backward(1.0, logp, np.array([[1]]), [2], [1], reduction="sum")[:, 0]
    array([[ 0.16666667, -0.16666667],
           [ 0.16666667, -0.16666667]])
    """
    if type(log_probs) is not np.ndarray and is_dask_array(log_probs):  # nbops/_dask.py
        return dask_ops().ctc_loss_backward(grad_output, log_probs, targets, input_lengths,
                                            target_lengths, blank, reduction, zero_infinity,
                                            out=out)
    if type(log_probs) is not np.ndarray and is_device_array(log_probs):
        return _cuda().ctc_loss_backward(grad_output, log_probs, targets, input_lengths,
                                         target_lengths, blank, reduction, zero_infinity,
                                         out=out)
    lp, flat, offsets, il, tl, blank, batched, compute, result = _plan(
        log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    scale = _scales(grad_output, len(il), tl, reduction, batched, result)
    shape = lp.shape if batched else (lp.shape[0], lp.shape[2])
    return _gradient(lp, flat, offsets, il, tl, blank, scale, zero_infinity, batched, shape,
                     compute, result, out)[1]


def ctc_loss_with_grad(log_probs, targets, input_lengths, target_lengths, blank=0,
                       reduction="mean", zero_infinity=False, *, out=None):
    r""":func:`nbops.ctc_loss` and its gradient with respect to ``log_probs``, in one pass.

    Parameters
    ----------
    log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity
        As :func:`nbops.ctc_loss`.
    out : ndarray, optional
        Array of ``log_probs``' shape and dtype to write the gradient into.

    Returns
    -------
    loss : NumPy scalar or ndarray
        What :func:`nbops.ctc_loss` returns.
    grad_log_probs : ndarray
        The gradient of the loss (of the sum of the losses for 'none'), as
        :func:`nbops.ctc_loss_backward` with ``grad_output = 1``.

    Raises
    ------
    ValueError, TypeError
        As :func:`nbops.ctc_loss`, before any computation.

    Examples
    --------
    >>> logp = np.log(np.full((2, 1, 2), 0.5))
    >>> loss, grad = nbops.ctc_loss_with_grad(logp, np.array([[1]]), [2], [1])
    >>> round(float(loss), 12)  # -log(3/4), divided by the target length 1
    0.287682072452
    """
    if type(log_probs) is not np.ndarray and is_dask_array(log_probs):  # nbops/_dask.py
        return dask_ops().ctc_loss_with_grad(log_probs, targets, input_lengths, target_lengths,
                                             blank, reduction, zero_infinity, out=out)
    if type(log_probs) is not np.ndarray and is_device_array(log_probs):
        return _cuda().ctc_loss_with_grad(log_probs, targets, input_lengths, target_lengths,
                                          blank, reduction, zero_infinity, out=out)
    lp, flat, offsets, il, tl, blank, batched, compute, result = _plan(
        log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    n = len(il)
    scale = (np.ones(n) if reduction != "mean"
             else 1.0 / np.maximum(tl, 1).astype(np.float64) / max(n, 1))
    shape = lp.shape if batched else (lp.shape[0], lp.shape[2])
    nll, grad = _gradient(lp, flat, offsets, il, tl, blank, scale, zero_infinity, batched,
                          shape, compute, result, out)
    return _reduced(nll, tl, reduction, zero_infinity, batched, result), grad


# --------------------------------------------------------------------------- #
# the same names inside @njit
# --------------------------------------------------------------------------- #
# reduction must be a literal (it decides the result's type), as for the other
# losses (nbops/_ops/njit_args.py); the other checks run at run time, before the
# serial kernels above, with the CPU path's exception types (fixed messages).

_SIZE_MESSAGE = "lengths must be of size batch_size (one int unbatched)"
_INPUT_LENGTH_MESSAGE = "input_lengths must be in [0, T]"
_TARGET_LENGTH_MESSAGE = "target_lengths must be at least 0"
_TARGETS_SIZE_MESSAGE = ("targets: padded targets must be (N, S) with S at least "
                         "max(target_lengths); concatenated ones hold sum(target_lengths) labels")
_LABEL_MESSAGE = "targets must be class indices in [0, C), never the blank label"
_BLANK_MESSAGE = "blank must be in label range [0, C)"
_GRAD_OUTPUT_MESSAGE = ("grad_output must have the loss's shape for reduction='none', "
                        "be a scalar for 'mean' and 'sum'")


def _lengths_reader(ty, name, batched):
    """A jitable ``read(v, n)``: lengths of Numba type ``ty`` as int64 (n,)."""
    if isinstance(ty, types.Integer) and not batched:
        def read(v, n):
            a = np.empty(1, np.int64)
            a[0] = v
            return a
    elif isinstance(ty, types.Array) and isinstance(ty.dtype, types.Integer):
        if ty.ndim > 1 or (batched and ty.ndim != 1):
            raise NJ.DeferredError(ValueError(f"{name} must be of size batch_size"))

        def read(v, n):
            if v.size != n:
                raise ValueError(_SIZE_MESSAGE)
            return np.ravel(v).astype(np.int64)
    elif isinstance(ty, (types.UniTuple, types.List)) and isinstance(ty.dtype, types.Integer):
        def read(v, n):
            if len(v) != n:
                raise ValueError(_SIZE_MESSAGE)
            a = np.empty(n, np.int64)
            for i in range(n):
                a[i] = v[i]
            return a
    else:
        raise NJ.DeferredError(TypeError(f"{name} must hold integers, got {ty}"))
    return register_jitable(read)


@register_jitable
def _njit_targets(targets, il, tl, blank, n_t, n_c, padded):
    """Check lengths, labels and blank; (flat int64 targets, offsets)."""
    n = il.size
    if blank < 0 or blank >= n_c:
        raise ValueError(_BLANK_MESSAGE)
    total = 0
    longest = 0
    for b in range(n):
        if il[b] < 0 or il[b] > n_t:
            raise ValueError(_INPUT_LENGTH_MESSAGE)
        if tl[b] < 0:
            raise ValueError(_TARGET_LENGTH_MESSAGE)
        total += tl[b]
        longest = max(longest, tl[b])
    offsets = np.empty(n, np.int64)
    t2 = np.ascontiguousarray(targets)
    flat = t2.ravel().astype(np.int64)
    if padded:
        if t2.shape[0] != n or t2.shape[-1] < longest:
            raise ValueError(_TARGETS_SIZE_MESSAGE)
        for b in range(n):
            offsets[b] = b * t2.shape[-1]
    else:
        if flat.size != total:
            raise ValueError(_TARGETS_SIZE_MESSAGE)
        pos = 0
        for b in range(n):
            offsets[b] = pos
            pos += tl[b]
    for b in range(n):
        for i in range(tl[b]):
            v = flat[offsets[b] + i]
            if v < 0 or v >= n_c or v == blank:
                raise ValueError(_LABEL_MESSAGE)
    return flat, offsets


def _njit_setup(log_probs, targets, input_lengths, target_lengths, reduction):
    """Typing-time checks; (reduction, batched, dtype, to3, read_il, read_tl, padded)."""
    red = NJ.literal(reduction, "reduction")
    if red not in _REDUCTIONS:
        raise NJ.DeferredError(ValueError(f"reduction must be one of {_REDUCTIONS}, "
                                          f"got {red!r}"))
    if not (isinstance(log_probs, types.Array) and isinstance(log_probs.dtype, types.Float)):
        raise NJ.DeferredError(TypeError(f"log_probs must be a float array, got {log_probs}"))
    if log_probs.ndim not in (2, 3):
        raise NJ.DeferredError(ValueError("log_probs must be (T, N, C) or unbatched (T, C)"))
    if not (isinstance(targets, types.Array) and isinstance(targets.dtype, types.Integer)):
        raise NJ.DeferredError(TypeError(f"targets must hold integers, got {targets}"))
    if targets.ndim not in (1, 2):
        raise NJ.DeferredError(ValueError("targets must be (N, S) padded or 1-D concatenated"))
    batched = log_probs.ndim == 3
    if batched:
        def to3(x):
            return np.ascontiguousarray(x)
    else:
        def to3(x):
            return np.ascontiguousarray(x).reshape((x.shape[0], 1, x.shape[1]))
    return (red, batched, log_probs.dtype, register_jitable(to3),
            _lengths_reader(input_lengths, "input_lengths", batched),
            _lengths_reader(target_lengths, "target_lengths", batched), targets.ndim == 2)


def _njit_finish(red, batched, ty):
    """A jitable ``finish(nll, tl, zero_infinity)``: the forward's reduced result."""
    if red == "none" and batched:
        def finish(nll, tl, zero_infinity):
            out = np.empty(nll.size, ty)
            for i in range(nll.size):
                v = nll[i]
                out[i] = 0.0 if zero_infinity and v == np.inf else v
            return out
    elif red == "none":
        def finish(nll, tl, zero_infinity):
            v = nll[0]
            return ty(0.0 if zero_infinity and v == np.inf else v)
    else:
        mean = red == "mean"

        def finish(nll, tl, zero_infinity):
            total = 0.0
            for i in range(nll.size):
                v = nll[i]
                if zero_infinity and v == np.inf:
                    v = 0.0
                total += v / max(tl[i], 1) if mean else v
            if mean:
                return ty(total / nll.size if nll.size else np.nan)
            return ty(total)
    return register_jitable(finish)


def _scale_reader(grad_output, red, batched):
    """A jitable ``scale(g, tl)``: the gradient of the loss with respect to each nll."""
    mean = red == "mean"
    if red == "none" and batched:
        if not (isinstance(grad_output, types.Array) and grad_output.ndim == 1):
            raise NJ.DeferredError(ValueError(_GRAD_OUTPUT_MESSAGE))

        def scale(g, tl):
            if g.size != tl.size:
                raise ValueError(_GRAD_OUTPUT_MESSAGE)
            s = np.empty(tl.size, np.float64)
            for i in range(tl.size):
                s[i] = g[i]
            return s
    elif isinstance(grad_output, (types.Number, types.Boolean)):
        def scale(g, tl):
            s = np.empty(tl.size, np.float64)
            for i in range(tl.size):
                s[i] = g / max(tl[i], 1) / tl.size if mean else g
            return s
    elif isinstance(grad_output, types.Array) and grad_output.ndim == 0:
        def scale(g, tl):
            s = np.empty(tl.size, np.float64)
            v = g[()]
            for i in range(tl.size):
                s[i] = v / max(tl[i], 1) / tl.size if mean else v
            return s
    else:
        raise NJ.DeferredError(ValueError(_GRAD_OUTPUT_MESSAGE))
    return register_jitable(scale)


def _grad_writer(out, batched, ty):
    """A jitable ``write(grad, out)``: the (T, N, C) gradient as the result (into ``out``)."""
    if NJ.is_none(out):
        if batched:
            def write(grad, out):
                return grad
        else:
            def write(grad, out):
                return grad.reshape((grad.shape[0], grad.shape[2]))
    else:
        if not isinstance(out, types.Array) or out.dtype != ty:
            raise NJ.DeferredError(TypeError("out must be an array of log_probs' dtype"))

        def write(grad, out):
            g = grad.reshape(out.shape) if out.size == grad.size else grad
            if out.shape != g.shape:
                raise ValueError("out must have log_probs' shape")
            out[...] = g
            return out
    return register_jitable(write)


@overload(ctc_loss, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _ctc_loss_njit(log_probs, targets, input_lengths, target_lengths, blank=0,
                   reduction="mean", zero_infinity=False):
    red, batched, ty, to3, read_il, read_tl, padded = _njit_setup(
        log_probs, targets, input_lengths, target_lengths, reduction)
    finish = _njit_finish(red, batched, ty)

    def impl(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
        lp = to3(log_probs)
        n = lp.shape[1]
        il = read_il(input_lengths, n)
        tl = read_tl(target_lengths, n)
        flat, offsets = _njit_targets(targets, il, tl, blank, lp.shape[0], lp.shape[2], padded)
        nll = np.empty(n, np.float64)
        _nll_serial(lp, flat, offsets, il, tl, np.int64(blank), nll)
        return finish(nll, tl, zero_infinity)

    return impl


def _njit_gradient(to3, read_il, read_tl, padded, write):
    def run(scale_of, g, log_probs, targets, input_lengths, target_lengths, blank,
            zero_infinity, out):
        lp = to3(log_probs)
        n = lp.shape[1]
        il = read_il(input_lengths, n)
        tl = read_tl(target_lengths, n)
        flat, offsets = _njit_targets(targets, il, tl, blank, lp.shape[0], lp.shape[2], padded)
        scale = scale_of(g, tl)
        nll = np.empty(n, np.float64)
        grad = np.empty(lp.shape, lp.dtype)
        _grad_linked(lp, flat, offsets, il, tl, np.int64(blank), scale, bool(zero_infinity),
                     nll, grad)
        return nll, tl, write(grad, out)

    return register_jitable(run)


@overload(ctc_loss_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _ctc_loss_backward_njit(grad_output, log_probs, targets, input_lengths, target_lengths,
                            blank=0, reduction="mean", zero_infinity=False, out=None):
    red, batched, ty, to3, read_il, read_tl, padded = _njit_setup(
        log_probs, targets, input_lengths, target_lengths, reduction)
    scale_of = _scale_reader(grad_output, red, batched)
    run = _njit_gradient(to3, read_il, read_tl, padded, _grad_writer(out, batched, ty))

    def impl(grad_output, log_probs, targets, input_lengths, target_lengths, blank=0,
             reduction="mean", zero_infinity=False, out=None):
        return run(scale_of, grad_output, log_probs, targets, input_lengths, target_lengths,
                   blank, zero_infinity, out)[2]

    return impl


@overload(ctc_loss_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _ctc_loss_with_grad_njit(log_probs, targets, input_lengths, target_lengths, blank=0,
                             reduction="mean", zero_infinity=False, out=None):
    red, batched, ty, to3, read_il, read_tl, padded = _njit_setup(
        log_probs, targets, input_lengths, target_lengths, reduction)
    scale_of = _scale_reader(types.float64, "sum" if red == "none" else red, batched)
    run = _njit_gradient(to3, read_il, read_tl, padded, _grad_writer(out, batched, ty))
    finish = _njit_finish(red, batched, ty)

    def impl(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False, out=None):
        nll, tl, grad = run(scale_of, 1.0, log_probs, targets, input_lengths, target_lengths,
                            blank, zero_infinity, out)
        return finish(nll, tl, zero_infinity), grad

    return impl
