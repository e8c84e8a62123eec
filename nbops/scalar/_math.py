"""Vectorizable float32/float64 math for the scalar cores.

``math.exp``, ``math.log1p`` and ``math.tanh`` compile to scalar libm calls on
the CPU (no SVML), so loops over them never vectorize. The functions here are
plain arithmetic (range reduction + polynomial + a bit-level ``2**k``), which
LLVM vectorizes when inlined into a loop. Accuracy: within 2 ulp of the
correctly rounded result over the whole float range (see tests/test_math.py),
with IEEE behaviour at the edges: overflow to inf, gradual underflow to
subnormals and 0, NaN in gives NaN out.

Each function is a Python function (usable as is) with a Numba ``@overload``
that picks the implementation by the argument's type (float32 or float64
polynomials; integers compute in float64). The implementations are compiled once per
type as small functions (not IR-inlined at every call site, which made Numba
type a polynomial once per use); LLVM inlines them into the caller's loop,
which it then vectorizes as IR inlining did (the measurements are in
docs/guides/architecture.rst, "Numba facts the design relies on").
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload, register_jitable

__all__ = ["as_float", "const", "select", "log", "log1p", "exp", "expm1", "log1p_unit", "tanh"]

# Compiled as functions of their own (not inlined into the caller at Numba's
# level), so they carry their own options: IEEE division (no zero check).
_JIT = {"error_model": "numpy"}


# ---------------------------------------------------------------- helpers
def const(x, value):
    """``value`` converted to the float type of ``x`` (float64 for non-floats).

    Inside Numba this keeps float32 cores in float32: a bare ``1.0`` literal
    would promote ``x + 1.0`` to float64.
    """
    if isinstance(x, np.floating):
        return type(x)(value)
    return float(value)


@overload(const, jit_options=_JIT)
def _const_ol(x, value):
    ty = x if isinstance(x, types.Float) else types.float64

    def impl(x, value):
        return ty(value)

    return impl


def as_float(x):
    """``x`` unchanged if it is a float, else as float64 (NumPy's rule for ints)."""
    return x if isinstance(x, (float, np.floating)) else float(x)


@overload(as_float, jit_options=_JIT)
def _as_float_ol(x):
    if isinstance(x, types.Float):
        return lambda x: x
    return lambda x: np.float64(x)


@intrinsic
def _int_bits_as_float(typingctx, bits):
    """Reinterpret the bits of an int32 (int64) as a float32 (float64)."""
    if bits == types.int32:
        sig, llty = types.float32(types.int32), ir.FloatType()
    elif bits == types.int64:
        sig, llty = types.float64(types.int64), ir.DoubleType()
    else:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], llty)

    return sig, codegen


# ---------------------------------------------------------------- exp
_F = np.float32
_LOG2E_F = _F(1.44269504088896341)
_LN2_HI_F, _LN2_LO_F = _F(0.693359375), _F(-2.12194440e-4)
# round(t) for t in [-150, 128] as trunc(t + 256.5) - 256: no (t + C) - C pattern,
# which a kernel compiled with fastmath 'reassoc' could fold away
_ROUND_OFFSET_F = _F(256.5)
_EXP_LO_F, _EXP_HI_F = _F(-104.0), _F(89.0)  # exp is 0 below, inf above (after rounding)
_EXP_P_F = tuple(_F(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3,
                                  4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1))

_LOG2E_D = 1.4426950408889634
_LN2_HI_D, _LN2_LO_D = 6.93145751953125e-1, 1.42860682030941723212e-6
_ROUND_OFFSET_D = 1100.5
_EXP_LO_D, _EXP_HI_D = -746.0, 710.0
_EXP_P_D = tuple(1.0 / math.factorial(k) for k in range(13, 1, -1))  # 1/13! ... 1/2!


@register_jitable(**_JIT)
def _exp_f32(x):
    # clamp to where the result is 0 or inf after rounding; a NaN x passes
    # through (Python's max/min keep their first argument when it is NaN) and
    # makes p, hence the result, NaN. No branches: they vectorize, and inline
    # cleanly into user code.
    xc = min(max(x, _EXP_LO_F), _EXP_HI_F)
    ki = np.int32(np.int32(xc * _LOG2E_F + _ROUND_OFFSET_F) - 256)  # round(x / ln 2)
    k = _F(ki)
    r = (xc - k * _LN2_HI_F) - k * _LN2_LO_F  # |r| <= ln(2) / 2
    c0, c1, c2, c3, c4, c5 = _EXP_P_F
    p = (((((c0 * r + c1) * r + c2) * r + c3) * r + c4) * r + c5) * (r * r) + r + _F(1.0)
    # ki in [-150, 128]: 2**ki as two normal factors
    k1 = ki >> 1
    k2 = ki - k1
    # (Numba computes int32 arithmetic in int64: cast back before the bit cast.)
    s1 = _int_bits_as_float(np.int32((k1 + 127) << 23))
    s2 = _int_bits_as_float(np.int32((k2 + 127) << 23))
    return p * s1 * s2


@register_jitable(**_JIT)
def _exp_f64(x):
    xc = min(max(x, _EXP_LO_D), _EXP_HI_D)
    ki = np.int64(np.int64(xc * _LOG2E_D + _ROUND_OFFSET_D) - 1100)
    k = np.float64(ki)
    r = (xc - k * _LN2_HI_D) - k * _LN2_LO_D
    # Taylor series to r**13 (|r| <= 0.347): truncation below 1 ulp
    c13, c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2 = _EXP_P_D
    p = ((((((((((c13 * r + c12) * r + c11) * r + c10) * r + c9) * r + c8) * r + c7) * r
             + c6) * r + c5) * r + c4) * r + c3) * r + c2
    p = p * (r * r) + r + 1.0
    # ki in [-1077, 1025]
    k1 = ki >> 1
    k2 = ki - k1
    s1 = _int_bits_as_float(np.int64((k1 + 1023) << 52))
    s2 = _int_bits_as_float(np.int64((k2 + 1023) << 52))
    return p * s1 * s2


def exp(x):
    """``e**x``, vectorizable inside Numba loops."""
    return math.exp(x)


@overload(exp, jit_options=_JIT)
def _exp_ol(x):
    if x == types.float32:
        return _exp_f32
    if x == types.float64:
        return _exp_f64
    if isinstance(x, (types.Integer, types.Boolean)):
        return lambda x: _exp_f64(np.float64(x))
    return None


# ---------------------------------------------------------------- expm1
_EXPM1_SMALL_F = _F(0.5)
_EXPM1_P_F = tuple(_F(1.0 / math.factorial(k)) for k in range(8, 1, -1))  # 1/8! ... 1/2!


@register_jitable(**_JIT)
def _expm1_f32(x):
    # |x| < 0.5: Taylor series (no cancellation); else exp(x) - 1 (error < 1 ulp)
    c8, c7, c6, c5, c4, c3, c2 = _EXPM1_P_F
    p = (((((c8 * x + c7) * x + c6) * x + c5) * x + c4) * x + c3) * x + c2
    small = p * (x * x) + x
    large = _exp_f32(x) - _F(1.0)
    small = small if x != 0 else x  # keep the sign of zero
    return small if abs(x) < _EXPM1_SMALL_F else large


_EXPM1_P_D = tuple(1.0 / math.factorial(k) for k in range(14, 1, -1))  # 1/14! ... 1/2!


@register_jitable(**_JIT)
def _expm1_f64(x):
    # as _expm1_f32, with the series to x**14 (truncation < 0.3 ulp at |x| = 0.5)
    c14, c13, c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2 = _EXPM1_P_D
    p = (((((((((((c14 * x + c13) * x + c12) * x + c11) * x + c10) * x + c9) * x + c8) * x
              + c7) * x + c6) * x + c5) * x + c4) * x + c3) * x + c2
    small = p * (x * x) + x
    large = _exp_f64(x) - 1.0
    small = small if x != 0 else x  # keep the sign of zero
    return small if abs(x) < 0.5 else large


def expm1(x):
    """``e**x - 1``, accurate near 0; vectorizable."""
    return math.expm1(x)


@overload(expm1, jit_options=_JIT)
def _expm1_ol(x):
    if x == types.float32:
        return _expm1_f32
    if x == types.float64:
        return _expm1_f64
    if isinstance(x, (types.Float, types.Integer, types.Boolean)):
        return lambda x: _expm1_f64(np.float64(x))
    return None


# ---------------------------------------------------------------- log1p on [0, 1]
_LOG1P_P_F = tuple(_F(1.0 / k) for k in (13, 11, 9, 7, 5, 3))


@register_jitable(**_JIT)
def _log1p_unit_f32(t):
    # log1p(t) = 2 atanh(s) with s = t / (2 + t) in [0, 1/3]: odd series in s
    s = t / (_F(2.0) + t)
    z = s * s
    c13, c11, c9, c7, c5, c3 = _LOG1P_P_F
    p = ((((c13 * z + c11) * z + c9) * z + c7) * z + c5) * z + c3
    return _F(2.0) * s + _F(2.0) * s * (p * z)


def log1p_unit(t):
    """``log(1 + t)`` for ``t`` in [0, 1] (as in softplus and log-sigmoid)."""
    return math.log1p(t)


@overload(log1p_unit, jit_options=_JIT)
def _log1p_unit_ol(t):
    if t == types.float32:
        return _log1p_unit_f32
    if t == types.float64:
        return lambda t: _log1p_f64(t)
    if isinstance(t, (types.Float, types.Integer, types.Boolean)):
        return lambda t: _log1p_f64(np.float64(t))
    return None


# ---------------------------------------------------------------- tanh
_TANH_SMALL_F = _F(0.625)
_TANH_P_F = tuple(_F(c) for c in (-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2,
                                   1.33314422036e-1, -3.33332819422e-1))


@register_jitable(**_JIT)
def _tanh_f32(x):
    # |x| < 0.625: odd minimax polynomial (Cephes tanhf); else 1 - 2 / (exp(2|x|) + 1)
    z = x * x
    c9, c7, c5, c3, c1 = _TANH_P_F
    p = (((c9 * z + c7) * z + c5) * z + c3) * z + c1
    small = p * z * x + x
    small = small if x != 0 else x  # keep the sign of zero
    a = abs(x)
    big = _F(1.0) - _F(2.0) / (_exp_f32(a + a) + _F(1.0))
    big = big if x >= 0 else -big
    return small if a < _TANH_SMALL_F else big


# Cephes tanh: x + x z P(z) / Q(z), z = x**2, for |x| < 0.625 (Q's leading 1 implicit)
_TANH_P_D = (-9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3)
_TANH_Q_D = (1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3)


@register_jitable(**_JIT)
def _tanh_f64(x):
    z = x * x
    p0, p1, p2 = _TANH_P_D
    q0, q1, q2 = _TANH_Q_D
    p = (p0 * z + p1) * z + p2
    q = ((z + q0) * z + q1) * z + q2
    small = x + x * (z * p / q)
    small = small if x != 0 else x  # keep the sign of zero
    a = abs(x)
    big = 1.0 - 2.0 / (_exp_f64(a + a) + 1.0)
    big = big if x >= 0 else -big
    return small if a < 0.625 else big


def tanh(x):
    """Hyperbolic tangent; vectorizable."""
    return math.tanh(x)


@overload(tanh, jit_options=_JIT)
def _tanh_ol(x):
    if x == types.float32:
        return _tanh_f32
    if x == types.float64:
        return _tanh_f64
    if isinstance(x, (types.Float, types.Integer, types.Boolean)):
        return lambda x: _tanh_f64(np.float64(x))
    return None


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


@register_jitable(**_JIT)
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


@register_jitable(**_JIT)
def _log1p_f32(x):
    # log(u) corrected for the rounding of u = 1 + x (Goldberg): within 2 ulp for x > -1
    u = _F(1.0) + x
    safe_u = select(u != 0, u, _F(1.0))  # log(0) is -inf already; no 0 / 0 (any error_model)
    r = _log_f32(u) - ((u - _F(1.0)) - x) / safe_u
    r = select(u == _F(1.0), x, r)  # tiny x (keeps the sign of zero)
    return select(x < _INF_F, r, x)


_TINY_D = 2.2250738585072014e-308  # smallest normal float64
_TWO54_D = 18014398509481984.0
_SQRT2_D = 1.4142135623730951
_LOG_LN2_HI_D, _LOG_LN2_LO_D = 6.93147180369123816490e-01, 1.90821492927058770002e-10
# fdlibm's e_log.c: log(1 + f) = f - (f**2/2 - s (f**2/2 + R(s))), s = f / (2 + f)
_LG_D = (6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01,
         2.222219843214978396e-01, 1.818357216161805012e-01, 1.531383769920937332e-01,
         1.479819860511658591e-01)


@register_jitable(**_JIT)
def _log_f64(x):
    # as _log_f32 (x = 2**e * m, m in [sqrt(1/2), sqrt(2))), with fdlibm's series in s
    tiny = x < _TINY_D
    xs = select(tiny, x * _TWO54_D, x)  # subnormals: scale into the normal range
    bits = _float_bits_as_int(xs)
    e = select(tiny, -1077, -1023) + ((bits >> 52) & 0x7FF)
    m = _int_bits_as_float(np.int64((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000))
    big = m > _SQRT2_D
    m = select(big, m * 0.5, m)
    f = m - 1.0  # exact
    dk = np.float64(e) + select(big, 1.0, 0.0)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG_D
    t1 = w * (lg2 + w * (lg4 + w * lg6))
    t2 = z * (lg1 + w * (lg3 + w * (lg5 + w * lg7)))
    hfsq = 0.5 * f * f
    r = dk * _LOG_LN2_HI_D - ((hfsq - (s * (hfsq + (t1 + t2)) + dk * _LOG_LN2_LO_D)) - f)
    r = select(x == 0, -np.inf, r)
    r = select(x < 0, np.nan, r)
    return select(x < np.inf, r, x)  # inf stays inf, NaN stays NaN


@register_jitable(**_JIT)
def _log1p_f64(x):
    # as _log1p_f32
    u = 1.0 + x
    safe_u = select(u != 0, u, 1.0)
    r = _log_f64(u) - ((u - 1.0) - x) / safe_u
    r = select(u == 1.0, x, r)
    return select(x < np.inf, r, x)


def log(x):
    """Natural logarithm; vectorizable."""
    return math.log(x) if x > 0 else (-math.inf if x == 0 else math.nan)


def log1p(x):
    """``log(1 + x)``, accurate near 0; vectorizable."""
    return math.log1p(x) if x > -1 else (-math.inf if x == -1 else math.nan)


@overload(log, jit_options=_JIT)
def _log_ol(x):
    if x == types.float32:
        return _log_f32
    if x == types.float64:
        return _log_f64
    if isinstance(x, (types.Float, types.Integer, types.Boolean)):
        return lambda x: _log_f64(np.float64(x))
    return None


@overload(log1p, jit_options=_JIT)
def _log1p_ol(x):
    if x == types.float32:
        return _log1p_f32
    if x == types.float64:
        return _log1p_f64
    if isinstance(x, (types.Float, types.Integer, types.Boolean)):
        return lambda x: _log1p_f64(np.float64(x))
    return None
