"""Scalar cores of the elementwise losses: the single source of their math.

Each core maps one (input, target) pair of elements to its unreduced loss,
exactly as ``torch.nn.functional.<loss>(..., reduction='none')`` computes it
on the CPU (same formula, same order of operations, same NaN/inf behaviour).
nbops' loss kernels inline them and add the ``weight`` factor and the
reduction; call them in your own Numba loops to fuse a loss with other work::

    from numba import njit
    from nbops import scalar

    @njit
    def my_loss(x, y):
        s = 0.0
        for i in range(x.size):
            s += scalar.smooth_l1_loss(x[i], y[i], 0.5)
        return s / x.size

All arguments of one call should have the same float type (a float64 value
next to a float32 element computes in float64).

``log`` and ``log1p`` below are vectorizable float32 implementations (Cephes'
``logf`` polynomial, within 2 ulp), used by the cores that need a logarithm
(``kl_div``, ``binary_cross_entropy``); float64 uses libm.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload, register_jitable

from .._config import core
from ._math import _int_bits_as_float, const, exp, log1p_unit

__all__ = ["l1_loss", "mse_loss", "smooth_l1_loss", "kl_div", "kl_div_log_target",
           "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "binary_cross_entropy_with_logits_pos_weight", "log", "log1p", "select"]


# ---------------------------------------------------------------- log, log1p
@intrinsic
def _float_bits_as_int(typingctx, x):
    """Reinterpret the bits of a float32 (float64) as an int32 (int64)."""
    if x == types.float32:
        sig, llty = types.int32(types.float32), ir.IntType(32)
    elif x == types.float64:
        sig, llty = types.int64(types.float64), ir.IntType(64)
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llty)

    return sig, codegen


_F = np.float32
_TINY_F = _F(1.17549435e-38)  # smallest normal float32
_TWO23_F = _F(8388608.0)
_SQRT2_F = _F(1.41421356237309505)
_LN2_HI_F, _LN2_LO_F = _F(0.693359375), _F(-2.12194440e-4)
_LOG_P_F = tuple(_F(c) for c in (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1,
                                  -1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
                                  2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1))
_INF_F = _F(np.inf)
_NINF_F = _F(-np.inf)
_NAN_F = _F(np.nan)


@intrinsic
def select(typingctx, cond, a, b):
    """``a if cond else b`` as one branch-free LLVM ``select`` (both sides are evaluated).

    Cores written with it have no control flow, so loops over them vectorize,
    and Numba inlines them without building phi nodes (cheaper to compile).
    """
    if not isinstance(cond, types.Boolean) or a != b:
        return None

    def codegen(context, builder, signature, args):
        c, x, y = args
        return builder.select(c, x, y)

    return a(cond, a, b), codegen


@register_jitable(inline="always")
def _log_f32(x):
    # x = 2**e * m with m in [sqrt(1/2), sqrt(2)); log(m) = f - f**2/2 + f**3 P(f), f = m - 1
    tiny = x < _TINY_F
    xs = select(tiny, x * _TWO23_F, x)  # subnormals: scale into the normal range
    bits = _float_bits_as_int(xs)
    e = select(tiny, -150, -127) + ((bits >> 23) & 0xFF)
    m = _int_bits_as_float(np.int32((bits & 0x7FFFFF) | 0x3F800000))  # in [1, 2)
    big = m > _SQRT2_F
    m = select(big, m * _F(0.5), m)
    f = m - _F(1.0)  # exact
    z = f * f
    c8, c7, c6, c5, c4, c3, c2, c1, c0 = _LOG_P_F
    p = (((((((c8 * f + c7) * f + c6) * f + c5) * f + c4) * f + c3) * f + c2) * f + c1) * f + c0
    fe = _F(e) + select(big, _F(1.0), _F(0.0))
    y = f * z * p + fe * _LN2_LO_F - _F(0.5) * z
    r = (f + y) + fe * _LN2_HI_F
    r = select(x == 0, _NINF_F, r)
    r = select(x < 0, _NAN_F, r)
    return select(x < _INF_F, r, x)  # inf stays inf, NaN stays NaN


@register_jitable(inline="always")
def _log1p_f32(x):
    # log(u) corrected for the rounding of u = 1 + x (Goldberg): within 2 ulp for x > -1
    u = _F(1.0) + x
    safe_u = select(u != 0, u, _F(1.0))  # log(0) is -inf already; no 0 / 0 (any error_model)
    r = _log_f32(u) - ((u - _F(1.0)) - x) / safe_u
    r = select(u == _F(1.0), x, r)  # tiny x (keeps the sign of zero)
    return select(x < _INF_F, r, x)


def log(x):
    """Natural logarithm; vectorizable for float32 (libm for float64)."""
    return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)


def log1p(x):
    """``log(1 + x)``, accurate near 0; vectorizable for float32 (libm for float64)."""
    return math.log1p(x) if x > -1 else (-math.inf if x == -1 else math.nan)


@overload(log, inline="always")
def _log_ol(x):
    if x == types.float32:
        return _log_f32
    if isinstance(x, (types.Float, types.Integer, types.Boolean)):
        return lambda x: np.log(x)
    return None


@overload(log1p, inline="always")
def _log1p_ol(x):
    if x == types.float32:
        return _log1p_f32
    if isinstance(x, (types.Float, types.Integer, types.Boolean)):
        return lambda x: np.log1p(x)
    return None


# ---------------------------------------------------------------- the loss cores
# Branch-free (``select``): every side is computed, then one is picked.
@core
def l1_loss(x, t):
    r"""Scalar core of :func:`nbops.l1_loss`: :math:`|x - t|` (unreduced).

    Parameters
    ----------
    x, t : float32 or float64
        Input and target elements.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.l1_loss(1.0, 3.5)
    2.5
    """
    return abs(x - t)


@core
def mse_loss(x, t):
    r"""Scalar core of :func:`nbops.mse_loss`: :math:`(x - t)^2` (unreduced).

    Parameters
    ----------
    x, t : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.mse_loss(1.0, 3.5)
    6.25
    """
    d = x - t
    return d * d


@core
def smooth_l1_loss(x, t, beta):
    r"""Scalar core of :func:`nbops.smooth_l1_loss`: :math:`0.5 d^2 / \beta` if :math:`d < \beta`, else :math:`d - 0.5 \beta`, with :math:`d = |x - t|`.

    Needs ``beta > 0`` (the array op handles ``beta == 0`` as ``l1_loss``).

    Parameters
    ----------
    x, t, beta : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.smooth_l1_loss(0.0, 0.5, 1.0), scalar.smooth_l1_loss(0.0, 3.0, 1.0)
    (0.125, 2.5)
    """
    d = abs(x - t)
    half = const(x, 0.5)
    return select(d < beta, half * d * d / beta, d - half * beta)


@core
def kl_div(x, t):
    r"""Scalar core of :func:`nbops.kl_div`: :math:`t \log t - t x`, for a log-probability ``x``.

    A zero target contributes ``-0 * x`` (0 unless ``x`` is infinite or NaN, as
    PyTorch's ``xlogy``); a negative target gives NaN.

    Parameters
    ----------
    x, t : float32 or float64
        Log-probability input and probability target.

    Examples
    --------
    >>> import math
    >>> from nbops import scalar
    >>> round(scalar.kl_div(math.log(0.25), 0.5), 8)
    0.34657359
    """
    return select(t == 0, const(x, 0.0), t * log(t)) - t * x


@core
def kl_div_log_target(x, t):
    r"""Scalar core of :func:`nbops.kl_div` with ``log_target=True``: :math:`e^{t} (t - x)`.

    Parameters
    ----------
    x, t : float32 or float64
        Log-probability input and log-probability target.

    Examples
    --------
    >>> import math
    >>> from nbops import scalar
    >>> round(scalar.kl_div_log_target(math.log(0.25), math.log(0.5)), 8)
    0.34657359
    """
    return exp(t) * (t - x)


@core
def binary_cross_entropy(x, t):
    r"""Scalar core of :func:`nbops.binary_cross_entropy`: :math:`-(t \log x + (1 - t) \log(1 - x))`.

    Each log is clamped at :math:`-100` (as PyTorch). ``x`` is a probability in
    [0, 1] (not checked here; nbops' ``binary_cross_entropy`` checks it
    before running).

    Parameters
    ----------
    x, t : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.binary_cross_entropy(0.9, 1.0), 8), scalar.binary_cross_entropy(0.0, 1.0)
    (0.10536052, 100.0)
    """
    lo = const(x, -100.0)
    a = log1p(-x)
    b = log(x)
    a = select(a < lo, lo, a)  # std::max(a, -100): NaN stays NaN
    b = select(b < lo, lo, b)
    return (t - const(x, 1.0)) * a - t * b


@core
def _log_sigmoid(x):
    """min(x, 0) - log1p(exp(-|x|)) (as the activation, written branch-free)."""
    return select(x < 0, x, const(x, 0.0)) - log1p_unit(exp(-abs(x)))


@core
def binary_cross_entropy_with_logits(x, t):
    r"""Scalar core of :func:`nbops.binary_cross_entropy_with_logits`: :math:`(1 - t)\,x - \log\sigma(x)`.

    With the stable :math:`\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`.

    Parameters
    ----------
    x, t : float32 or float64
        Logit and target.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.binary_cross_entropy_with_logits(2.0, 1.0), 8)
    0.12692801
    """
    return (const(x, 1.0) - t) * x - _log_sigmoid(x)


@core
def binary_cross_entropy_with_logits_pos_weight(x, t, pos_weight):
    r"""Scalar core of :func:`nbops.binary_cross_entropy_with_logits` with ``pos_weight`` :math:`p`: :math:`(1 - t)\,x - (1 + (p - 1)\,t) \log\sigma(x)`.

    Parameters
    ----------
    x, t, pos_weight : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.binary_cross_entropy_with_logits_pos_weight(2.0, 1.0, 3.0), 8)
    0.38078403
    """
    one = const(x, 1.0)
    return (one - t) * x - ((pos_weight - one) * t + one) * _log_sigmoid(x)
