"""Per-channel and per-row math of ``batch_norm`` and ``pairwise_distance``, written once.

Each function is a scalar core (``njit(inline='always')``): the CPU kernels of
:mod:`nbops._ops.normalization` and :mod:`nbops._ops.distance` inline them, and
:func:`nbops.cuda._core.device` compiles the same Python functions for the GPU
(``cuda.jit(device=True)``), so both backends share every rule below. They use
only arithmetic, comparisons and ``math`` functions that both targets support
(and, under the CUDA simulator, that plain Python runs without raising).

batch_norm
----------
Statistics are float64 sums of ``d = x - shift`` and ``d * d`` per channel,
with ``shift`` the channel's first value, or 0 where that is not finite
(:func:`finite_shift`): float32 inputs with a large common offset keep their
variance, and an inf first value gives an inf mean (not NaN), as PyTorch.
:func:`channel_stats` turns the sums into the mean and biased variance,
:func:`running_update` is PyTorch's momentum update (unbiased variance), and
:func:`channel_affine` gives ``y = (x - mean) * scale + offset``; the offset is
NaN where PyTorch's ``bias - mean * scale`` is NaN (``0 * inf``, ``inf - inf``),
which makes that whole channel NaN, as PyTorch's CPU kernel. (Few, larger
functions: each inlined call costs Numba compile time.)

pairwise_distance
-----------------
``||x1 - x2 + eps||_p`` of a row: :func:`pnorm_kind` classifies ``p``, a row's
accumulator starts at :func:`pnorm_start`, takes each difference
``d = x1 - x2 + eps`` (PyTorch adds ``eps`` to the difference) with
:func:`pnorm_add`, partial accumulators combine with :func:`pnorm_merge`, and
:func:`pnorm_finish` gives the norm. (The CPU's p = 2 and p = 1 rows unroll
their sums by hand with these same terms, ``d * d`` and ``|d|``:
:mod:`nbops._ops.distance`.) ``p = 0``
counts the non-zero differences (NaN counts), ``p = +-inf`` is the NaN-sticky
max/min of ``|d|``.
"""

import math

from .._config import core
from ._math import const, exp, log, select

# ------------------------------------------------------------------ batch_norm


@core
def finite_shift(first):
    """The shift of a channel's sums: its first value (as float64), or 0 if not finite."""
    v = float(first)
    return v if math.isfinite(v) else 0.0


@core
def channel_stats(s, q, count, shift):
    """(mean, biased variance) of a channel from ``s = sum(d)``, ``q = sum(d * d)``
    over its ``count`` values, ``d = x - shift``. A variance that rounding made
    negative is 0; NaN stays NaN."""
    mean_d = s / count
    v = q / count - mean_d * mean_d
    if v < 0.0:
        v = 0.0
    return shift + mean_d, v


@core
def running_update(running_mean, running_var, mean, var, count, momentum):
    """PyTorch's momentum update of a channel's running statistics:
    ``(1 - momentum) * running + momentum * batch``, with the unbiased batch
    variance for ``running_var`` (``var`` is the biased one over ``count`` values).
    Returns (new running mean, new running variance)."""
    return (momentum * mean + (1.0 - momentum) * running_mean,
            momentum * (var * (count / (count - 1))) + (1.0 - momentum) * running_var)


@core
def channel_affine(mean, var, eps, weight, bias):
    """(scale, offset) of ``y = (x - mean) * scale + offset`` for one channel.

    ``scale = weight / sqrt(var + eps)`` (NaN where ``var + eps`` is negative
    or NaN); ``offset`` is ``bias``, or NaN where PyTorch's
    ``bias - mean * scale`` is NaN (its whole channel is then NaN).
    """
    v = var + eps
    inv = 1.0 / math.sqrt(v) if v >= 0.0 else math.nan
    scale = inv * weight
    offset = math.nan if math.isnan(bias - mean * scale) else bias
    return scale, offset


# ------------------------------------------------------------------ p-norms
#: :func:`pnorm_kind` values.
PNORM_2, PNORM_1, PNORM_0, PNORM_MAX, PNORM_MIN, PNORM_P = 0, 1, 2, 3, 4, 5


@core
def nanmax(a, b):
    """The larger of ``a`` and ``b``; a NaN ``b`` wins (NaN is sticky), as PyTorch's max."""
    return b if (b > a or b != b) else a


@core
def nanmin(a, b):
    """The smaller of ``a`` and ``b``; a NaN ``b`` wins (NaN is sticky)."""
    return b if (b < a or b != b) else a


@core
def pnorm_kind(p):
    """Which p-norm ``p`` asks for: PNORM_2, _1, _0, _MAX (+inf), _MIN (-inf) or _P."""
    if p == 2:
        return PNORM_2
    if p == 1:
        return PNORM_1
    if p == 0:
        return PNORM_0
    if math.isinf(p):
        return PNORM_MAX if p > 0 else PNORM_MIN
    return PNORM_P


@core
def pnorm_start(like, kind):
    """The empty row's accumulator, of ``like``'s float type: +inf for the min, else 0."""
    return const(like, math.inf) if kind == PNORM_MIN else const(like, 0.0)


@core
def pnorm_add(acc, d, p, kind):
    """The accumulator ``acc`` with the difference ``d`` folded in."""
    if kind == PNORM_2:
        return acc + d * d
    if kind == PNORM_1:
        return acc + abs(d)
    if kind == PNORM_0:
        return acc + const(acc, 1.0) if d != 0 else acc  # NaN counts, as PyTorch
    if kind == PNORM_MAX:
        return nanmax(acc, abs(d))
    if kind == PNORM_MIN:
        return nanmin(acc, abs(d))
    return acc + abs(d) ** p


@core
def pnorm_merge(a, b, kind):
    """Two partial accumulators of one row as one."""
    if kind == PNORM_MAX:
        return nanmax(a, b)
    if kind == PNORM_MIN:
        return nanmin(a, b)
    return a + b


@core
def pnorm_finish(acc, p, kind):
    """The norm from a row's accumulator."""
    if kind == PNORM_2:
        return math.sqrt(acc)
    if kind == PNORM_P:
        return acc ** (const(acc, 1.0) / p)
    return acc


@core
def sgn(d):
    """PyTorch's ``sgn`` of a real value: 1, -1 or 0 (0 for 0 and NaN)."""
    one = const(d, 1.0)
    return select(d > 0, one, select(d < 0, -one, const(d, 0.0)))  # branch-free


@core
def pnorm_is_extreme(d, norm):
    """Whether ``d`` is one of the values a p = +-inf norm picked: ``|d| == norm``
    or NaN (PyTorch's mask in the gradient of ``max(|d|)`` / ``min(|d|)``)."""
    a = abs(d)
    return a == norm or a != a


@core
def pnorm_backward(d, norm, g, p, kind, count):
    """The gradient, with respect to the difference ``d``, of a row's p-norm
    ``norm`` times ``g`` (the gradient of the norm), as PyTorch's ``norm_backward``.

    p = 2: ``g * d / norm`` (0 where the norm is 0); p = 1: ``sgn(d) * g``;
    p = 0: 0; p = +-inf: ``sgn(d) * g / count`` at the ``count`` extreme
    values of the row (:func:`pnorm_is_extreme`), else 0; p < 1:
    ``sgn(d) |d|^(p-1) g norm^(1-p)`` (0 where ``d`` is 0); 1 < p < 2:
    ``sgn(d) |d|^(p-1) g / norm^(p-1)`` and p > 2: ``d |d|^(p-2) g / norm^(p-1)``
    (0 where the norm is 0).
    """
    zero = const(d, 0.0)
    if kind == PNORM_2:
        return zero if norm == 0 else d / norm * g
    if kind == PNORM_1:
        return sgn(d) * g
    if kind == PNORM_0:
        return zero
    if kind == PNORM_MAX or kind == PNORM_MIN:
        return sgn(d) * (g / count) if pnorm_is_extreme(d, norm) else sgn(d) * (g / count * zero)
    one = const(d, 1.0)
    if p < 1:
        scaled = zero if d == 0 else sgn(d) * _pow(abs(d), p - one)
        return scaled * g * norm ** (one - p)
    scale = zero if norm == 0 else g / norm ** (p - one)
    if p < 2:
        return sgn(d) * _pow(abs(d), p - one) * scale
    return d * _pow(abs(d), p - const(d, 2.0)) * scale


@core
def _pow(a, y):
    """``a ** y`` for ``a >= 0`` (or NaN) as ``exp(y log a)`` with the vectorizable
    ``exp`` and ``log`` (``**`` calls libm's ``pow`` once per element): within a
    few ulp, exact where ``y == 1``; 0 and inf as ``**`` gives them."""
    return a if y == 1 else exp(y * log(a))
