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

The float64 functions are written for SIMD throughput: their polynomials use
fused multiply-adds (:func:`_fma`, where the CPU has them), they convert
between float64 and int64 only through bit patterns (AVX2 has no vector
conversion, and LLVM made such loops scalar there), and each divides once.
Their timings are in docs/guides/performance.rst ("float64 math"). The float32
functions keep separate multiplies and adds: their results do not change.
"""

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload, register_jitable

__all__ = ["as_float", "const", "select", "log", "log1p", "exp", "expm1", "log1p_unit", "tanh",
           "ndtr", "ndtr_pdf", "x_ndtr", "x_ndtr_grad"]

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


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c``, fused into one FMA instruction where the CPU has one.

    LLVM's ``llvm.fmuladd``: one rounding instead of two where the target has a
    fast fused multiply-add, else the plain multiply and add (never a slow
    software ``fma`` call). Either way within the accuracy the float64
    polynomials here are tested to (tests/test_math.py). The float32 functions
    do not use it: their results stay those of the separate multiply and add.
    """
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic("llvm.fmuladd", [ty], ir.FunctionType(ty, [ty] * 3))
        return builder.call(fn, args)

    return a(a, b, c), codegen


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
_SHIFTER_D = 6755399441055744.0  # 1.5 * 2**52
_SHIFTER_BITS_D = 0x4338000000000000  # its bits
_EXP_LO_D, _EXP_HI_D = -746.0, 710.0
# exp(r) = 1 + r + r**2 q(r) on |r| <= ln(2) / 2: q of degree 10, highest first, the
# Chebyshev fit of mpmath.chebyfit((exp(r) - 1 - r) / r**2, [-h, h], 11) with
# h = 1.0005 ln(2) / 2 (its error: 1.4e-18, below 0.01 ulp)
_EXP_P_D = (2.0914717341716378e-09, 2.5105259538448494e-08, 2.755727357010214e-07,
            2.7557255297969643e-06, 2.4801587325605324e-05, 0.0001984126987490126,
            0.001388888888888373, 0.008333333333326112, 0.04166666666666667,
            0.1666666666666667, 0.5)


@register_jitable(**_JIT)
def _exp_f32(x):
    # clamp to where the result is 0 or inf after rounding; a NaN x passes
    # through (Python's max/min keep their first argument when it is NaN) and
    # makes p, hence the result, NaN. No branches: they vectorize, and inline
    # cleanly into user code.
    # (multiply-adds fused where the CPU has FMA: fewer instructions, and each
    # step rounds once)
    xc = min(max(x, _EXP_LO_F), _EXP_HI_F)
    ki = np.int32(np.int32(_fma(xc, _LOG2E_F, _ROUND_OFFSET_F)) - 256)  # round(x / ln 2)
    k = _F(ki)
    r = _fma(k, -_LN2_LO_F, _fma(k, -_LN2_HI_F, xc))  # |r| <= ln(2) / 2
    c0, c1, c2, c3, c4, c5 = _EXP_P_F
    p = _fma(_fma(_fma(_fma(_fma(c0, r, c1), r, c2), r, c3), r, c4), r, c5)
    p = _fma(p, r * r, r) + _F(1.0)
    # ki in [-150, 128]: 2**ki as two normal factors
    k1 = ki >> 1
    k2 = ki - k1
    # (Numba computes int32 arithmetic in int64: cast back before the bit cast.)
    s1 = _int_bits_as_float(np.int32((k1 + 127) << 23))
    s2 = _int_bits_as_float(np.int32((k2 + 127) << 23))
    return p * s1 * s2


@register_jitable(**_JIT)
def _exp_reduced_f64(r):
    """``exp(r)`` for ``|r| <= ln(2) / 2``: the polynomial of :func:`_exp_f64`
    (its argument reduced), shared with :func:`_ndtr_parts_f64`."""
    c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2 = _EXP_P_D
    p = _fma(c12, r, c11)
    p = _fma(p, r, c10)
    p = _fma(p, r, c9)
    p = _fma(p, r, c8)
    p = _fma(p, r, c7)
    p = _fma(p, r, c6)
    p = _fma(p, r, c5)
    p = _fma(p, r, c4)
    p = _fma(p, r, c3)
    p = _fma(p, r, c2)
    return _fma(p, r * r, r) + 1.0


@register_jitable(**_JIT)
def _exp_f64(x):
    # as _exp_f32, with multiply-adds fused where the CPU has FMA
    xc = min(max(x, _EXP_LO_D), _EXP_HI_D)
    # k = round(x / ln 2): adding 1.5 * 2**52 rounds to an integer (to nearest),
    # which the low bits of the sum then hold; no float-int conversions (which
    # AVX2 lacks for int64). This function's own code has no fastmath flags, so
    # (t - C) stays exact wherever it is inlined.
    t = _fma(xc, _LOG2E_D, _SHIFTER_D)
    k = t - _SHIFTER_D
    ki = _float_bits_as_int(t) - _SHIFTER_BITS_D  # the same k as an int64
    r = _fma(k, -_LN2_LO_D, _fma(k, -_LN2_HI_D, xc))  # |r| <= ln(2) / 2
    p = _exp_reduced_f64(r)
    # ki in [-1077, 1025]: 2**ki as two normal factors
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
    p = _fma(_fma(_fma(_fma(_fma(_fma(c8, x, c7), x, c6), x, c5), x, c4), x, c3), x, c2)
    small = _fma(p, x * x, x)
    large = _exp_f32(x) - _F(1.0)
    small = small if x != 0 else x  # keep the sign of zero
    return small if abs(x) < _EXPM1_SMALL_F else large


_EXPM1_P_D = tuple(1.0 / math.factorial(k) for k in range(14, 1, -1))  # 1/14! ... 1/2!


@register_jitable(**_JIT)
def _expm1_f64(x):
    # as _expm1_f32, with the series to x**14 (truncation < 0.3 ulp at |x| = 0.5)
    c14, c13, c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2 = _EXPM1_P_D
    p = _fma(c14, x, c13)
    p = _fma(p, x, c12)
    p = _fma(p, x, c11)
    p = _fma(p, x, c10)
    p = _fma(p, x, c9)
    p = _fma(p, x, c8)
    p = _fma(p, x, c7)
    p = _fma(p, x, c6)
    p = _fma(p, x, c5)
    p = _fma(p, x, c4)
    p = _fma(p, x, c3)
    p = _fma(p, x, c2)
    small = _fma(p, x * x, x)
    large = _exp_f64(x) - 1.0
    small = select(x != 0, small, x)  # keep the sign of zero
    return select(abs(x) < 0.5, small, large)


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
    p = _fma(_fma(_fma(_fma(_fma(c13, z, c11), z, c9), z, c7), z, c5), z, c3)
    return _F(2.0) * s + _F(2.0) * s * (p * z)


@register_jitable(**_JIT)
def _log1p_unit_f64(t):
    # fdlibm's s_log1p.c for t in [0, 1], branch-free: log(1 + t) = k ln 2 + log(1 + f),
    # with 1 + f in [sqrt(1/2), sqrt(2)) and the series of _log_f64.
    # 1 + t <= sqrt(2): f = t exactly (k = 0). Else k = 1, f = (1 + t) / 2 - 1 and the
    # rounding error c of u = 1 + t (exact: t <= 1) enters as log(u + c) - log(u) = c / u.
    # There |f| < 0.3 and 1 / u = (1 - f + f**2) / 2 to 3%: c / u is below 2 ulp
    # of the result, so its error stays below 0.1 ulp (no second division).
    u = 1.0 + t
    big = u > _SQRT2_D
    c = t - (u - 1.0)
    f = select(big, u * 0.5 - 1.0, t)
    cu = select(big, c * (0.5 * _fma(f, f, 1.0 - f)), 0.0)
    dk = select(big, 1.0, 0.0)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG_D
    t1 = w * _fma(_fma(lg6, w, lg4), w, lg2)
    t2 = z * _fma(_fma(_fma(lg7, w, lg5), w, lg3), w, lg1)
    hfsq = 0.5 * f * f
    return _fma(dk, _LOG_LN2_HI_D,
                -((hfsq - _fma(s, hfsq + (t1 + t2), _fma(dk, _LOG_LN2_LO_D, cu))) - f))


def log1p_unit(t):
    """``log(1 + t)`` for ``t`` in [0, 1] (as in softplus and log-sigmoid)."""
    return math.log1p(t)


@overload(log1p_unit, jit_options=_JIT)
def _log1p_unit_ol(t):
    if t == types.float32:
        return _log1p_unit_f32
    if t == types.float64:
        return _log1p_unit_f64
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
    p = _fma(_fma(_fma(_fma(c9, z, c7), z, c5), z, c3), z, c1)
    small = _fma(p * z, x, x)
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
    # both branches as base + num / den, selected before one division:
    # |x| < 0.625: x + (x z P(z)) / Q(z); else sign(x) + (-2 sign(x)) / (exp(2|x|) + 1)
    z = x * x
    p0, p1, p2 = _TANH_P_D
    q0, q1, q2 = _TANH_Q_D
    p = _fma(_fma(p0, z, p1), z, p2)
    q = _fma(_fma(z + q0, z, q1), z, q2)
    a = abs(x)
    small = a < 0.625
    sign = select(x >= 0, 1.0, -1.0)
    base = select(small, x, sign)
    num = select(small, x * z * p, -2.0 * sign)
    den = select(small, q, _exp_f64(a + a) + 1.0)
    return select(x != 0, base + num / den, x)  # keep the sign of zero


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
    p = _fma(_fma(_fma(_fma(c8, f, c7), f, c6), f, c5), f, c4)
    p = _fma(_fma(_fma(_fma(p, f, c3), f, c2), f, c1), f, c0)
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
    # float(e) through the bits of 1.5 * 2**52 + e (no int64-float conversion, which AVX2 lacks)
    dk = (_int_bits_as_float(np.int64(e + _SHIFTER_BITS_D)) - _SHIFTER_D) + select(big, 1.0, 0.0)
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG_D
    t1 = w * _fma(_fma(lg6, w, lg4), w, lg2)
    t2 = z * _fma(_fma(_fma(lg7, w, lg5), w, lg3), w, lg1)
    hfsq = 0.5 * f * f
    r = _fma(dk, _LOG_LN2_HI_D, -((hfsq - _fma(s, hfsq + (t1 + t2), dk * _LOG_LN2_LO_D)) - f))
    r = select(x == 0, -np.inf, r)
    r = select(x < 0, np.nan, r)
    return select(x < np.inf, r, x)  # inf stays inf, NaN stays NaN


@register_jitable(**_JIT)
def _log1p_f64(x):
    # fdlibm's s_log1p.c, branch-free: u = 1 + x = 2**k (1 + f), 1 + f in [sqrt(1/2), sqrt(2)),
    # log1p(x) = k ln 2 + log(1 + f) + c / u with c the rounding error of u (Fast2Sum,
    # exact). c / u is at most about 3 ulp of the result; 2**-k (1 - f + f**2 - f**3)
    # gives 1 / u to 3%, so no second division (u is never subnormal: u = 0 or u >= 2**-53).
    u = 1.0 + x
    c = select(x > 1.0, 1.0 - (u - x), x - (u - 1.0))
    bits = _float_bits_as_int(u)
    e = ((bits >> 52) & 0x7FF) - 1023
    m = _int_bits_as_float(np.int64((bits & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000))
    big = m > _SQRT2_D
    m = select(big, m * 0.5, m)
    e = e + select(big, 1, 0)
    f = m - 1.0  # exact
    dk = _int_bits_as_float(np.int64(e + _SHIFTER_BITS_D)) - _SHIFTER_D
    # 2**-k, with k capped where c / u no longer matters
    inv_scale = _int_bits_as_float(np.int64((1023 - min(e, 100)) << 52))
    cu = c * inv_scale * _fma(f, _fma(f, 1.0 - f, -1.0), 1.0)  # ~ c / u
    s = f / (2.0 + f)
    z = s * s
    w = z * z
    lg1, lg2, lg3, lg4, lg5, lg6, lg7 = _LG_D
    t1 = w * _fma(_fma(lg6, w, lg4), w, lg2)
    t2 = z * _fma(_fma(_fma(lg7, w, lg5), w, lg3), w, lg1)
    hfsq = 0.5 * f * f
    r = _fma(dk, _LOG_LN2_HI_D,
             -((hfsq - _fma(s, hfsq + (t1 + t2), _fma(dk, _LOG_LN2_LO_D, cu))) - f))
    r = select(u == 1.0, x, r)  # tiny x (keeps the sign of zero)
    r = select(u == 0, -np.inf, r)
    r = select(u < 0, np.nan, r)
    return select(x < np.inf, r, x)  # inf stays inf, NaN stays NaN


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


# ---------------------------------------------------------------- ndtr (the normal CDF)
# float32, vectorizable: for a = |x| / sqrt 2, erfc(a) = exp(-a**2) H(y) / (1 + 2 a) with
# y = (a - 2) / (a + 2) (a Weideman-style variable: H is smooth, H(-1) = 1), written as
# H = 1 + (1 + y) G(y) so that Phi(0) is exactly 1/2. G of degree 8, highest first: a
# near-minimax fit of (H - 1) / (1 + y) for the relative error of H on y in [-1, 0.674]
# (x up to 14.5, where Phi(-x) is below the smallest float32): 1.4e-8 (2.1e-8 with the
# coefficients rounded to float32). Fitted by iteratively reweighted least squares on
# mpmath's erfc; its coefficients are stored scaled by 2**-65 (exactly), see below.
# exp(-x**2 / 2) from x**2 = hi + lo (lo by a fused multiply-add; the rounding of x**2
# would cost up to x**2 / 2 ulp in the far tail) as 2**k exp(r), computed scaled by 2**64
# so that it stays a normal float32 for every x (k down to -153): the one rounding into
# subnormal results is the last product. Phi(x) = erfc(a) / 2 for x <= 0, 1 - erfc(a) / 2
# otherwise; within 6 ulp of the exact value (tests/test_math.py, tests/test_gelu_erf32.py),
# no branch, no integer arithmetic wider than 32 bits (16 float32 lanes per AVX-512 vector).
_NDTR_G_F = tuple(_F(c * 2.0 ** -65) for c in (
    -0.00039944534575313273, -0.0008279320361169878, 0.0021418373362358193,
    0.006487778335287291, -0.014548366190502112, -0.03965539316082786, 0.2037109108384056,
    -0.369742383678321, 0.27697839417176945))
_NDTR_K_F = _F(2.0)
_SQRT2_F = _F(1.4142135623730951)
_SQRT1_2_F = _F(0.7071067811865476)
_TWO_M65_F = _F(2.0 ** -65)
_INV_SQRT_2PI_M64_F = _F(0.3989422804014327 * 2.0 ** -64)  # the density at 0, by 2**-64
_NDTR_XMAX_F = _F(14.5)  # Phi(-14.5) is 0 in float32
# t = v log2(e) + (1.5 * 2**23 + 64) rounded to float32 holds round(v log2(e)) + 64 in its
# low mantissa bits (v in [-106, 0])
_EXP_SHIFT_F = _F(1.5 * 2.0 ** 23 + 64.0)
_SQRT1_2_D = 0.7071067811865476


@intrinsic
def _exp2_split_f32(typingctx, t):
    """``(k, 2**(k + 64))`` as float32 from ``t = v log2(e) + 1.5 * 2**23 + 64`` (a
    float32 whose low mantissa bits hold ``k + 64``, ``k`` an integer in [-190, 63]).

    By 32-bit integer operations on ``t``'s bits: no float ``(t - C)``, which a
    kernel compiled with fast-math ``reassoc`` could fold into ``v log2(e)``.
    """
    if t != types.float32:
        return None
    sig = types.UniTuple(types.float32, 2)(types.float32)

    def codegen(context, builder, signature, args):
        i32, f32 = ir.IntType(32), ir.FloatType()
        shift_bits = int(np.array(1.5 * 2.0 ** 23, np.float32).view(np.int32))
        j = builder.sub(builder.bitcast(args[0], i32), ir.Constant(i32, shift_bits))  # k + 64
        k = builder.sitofp(builder.sub(j, ir.Constant(i32, 64)), f32)
        bits = builder.shl(builder.add(j, ir.Constant(i32, 127)), ir.Constant(i32, 23))
        return context.make_tuple(builder, signature.return_type,
                                  [k, builder.bitcast(bits, f32)])

    return sig, codegen


@register_jitable(**_JIT)
def _ndtr_pdf_f32(x):
    """``(Phi(x), phi(x))`` for a float32 ``x``: one ``exp`` for both."""
    xc = min(abs(x), _NDTR_XMAX_F)  # NaN stays NaN
    hi = xc * xc
    lo = _fma(xc, xc, -hi)  # x**2 = hi + lo
    v = _F(-0.5) * hi
    k, scale = _exp2_split_f32(_fma(v, _LOG2E_F, _EXP_SHIFT_F))
    # r = -x**2 / 2 - k ln 2, |r| <= ln(2) / 2 (lo / 2 is far below ulp(v))
    r = _fma(lo, _F(-0.5), _fma(k, -_LN2_LO_F, _fma(k, -_LN2_HI_F, v)))
    c0, c1, c2, c3, c4, c5 = _EXP_P_F
    p = _fma(_fma(_fma(_fma(_fma(c0, r, c1), r, c2), r, c3), r, c4), r, c5)
    p = _fma(p, r * r, r) + _F(1.0)
    e = p * scale  # exp(-x**2 / 2) * 2**64
    b = _fma(xc, _SQRT2_F, _F(1.0))  # 1 + 2a
    apk = _fma(xc, _SQRT1_2_F, _NDTR_K_F)  # a + 2
    r2 = _F(1.0) / (apk * b)  # the one division: 1 + y and 1 / (1 + 2a) from it
    s = (xc * _SQRT2_F) * (b * r2)  # 1 + y = 2a / (a + 2)
    y = s - _F(1.0)
    g8, g7, g6, g5, g4, g3, g2, g1, g0 = _NDTR_G_F
    g = _fma(_fma(_fma(_fma(g8, y, g7), y, g6), y, g5), y, g4)
    g = _fma(_fma(_fma(_fma(g, y, g3), y, g2), y, g1), y, g0)
    h = _fma(s, g, _TWO_M65_F)  # H(y) / 2**65
    half_erfc = e * h * (apk * r2)
    phi = select(x <= _F(0.0), half_erfc, _F(1.0) - half_erfc)
    return phi, e * _INV_SQRT_2PI_M64_F


@register_jitable(**_JIT)
def _ndtr_f32(x):
    return _ndtr_pdf_f32(x)[0]


# float64, vectorizable: the float32 scheme above, in float64. For a = |x| / sqrt 2,
# erfc(a) = exp(-a**2) H(y) / (1 + 2a), y = (a - 4) / (a + 4), H = 1 + (1 + y) G(y) with
# G of degree 21 (highest first): mpmath.chebyfit of (H - 1) / (1 + y) on y in
# [-1, 0.7467] (|x| up to 39), 50 digits; the relative error of H with the coefficients
# rounded to float64 is 7.8e-17 (0.35 ulp). H is within [1, 2 / sqrt(pi)], so the
# rounding errors of G's Horner steps enter damped (by (1 + y) G / H <= 0.12).
# exp(-x**2 / 2) is computed from x**2 = hi + lo (lo by an FMA) as 2**k exp(r), scaled
# by 2**80 so that it stays a normal float64 for every |x| <= 39 (k down to -1098); H's
# coefficients carry the 2**-81 (exactly). The one rounding into subnormal results is
# the last product. |x| >= 39 (and NaN) gives exp 0: Phi(-39), 39 Phi(-39) and
# 39 phi(39) are all below half the smallest subnormal. Within 3.5 ulp of the exact
# Phi, 4 of x Phi(x) and of Phi(x) + x phi(x) (in ulps of its larger term around its
# zero) over the whole float64 range, subnormal results included (measured: 3.0, 3.4,
# 3.4; tests/test_gelu_erf64.py); no branch, no int64-float conversion.
_NDTR_G_D = tuple(c * 2.0 ** -81 for c in (
    -2.7509319088466916e-09, -1.3775388324231079e-08, 5.794942527114014e-09,
    1.1664162703699179e-07, -4.9028890591918766e-08, -7.932032263266177e-07,
    1.0870818263491096e-06, 4.6342977326312645e-06, -1.5853617789295983e-05,
    -8.550319429157739e-06, 0.00015917024495151457, -0.00035842577756064136,
    -0.00039934696481252465, 0.005431316771896346, -0.021629050924901305,
    0.0587965664764585, -0.1251269322795076, 0.2188597672772986, -0.319898833314043,
    0.38799588756874287, -0.372616235466115, 0.23299511862555247))
_NDTR_K_D = 4.0
_NDTR_XMAX_D = 39.0  # exp(-x**2 / 2) is taken as 0 from here on
_TWO_M81_D = 2.0 ** -81
_SQRT2_LO_D = -9.667293313452913e-17  # sqrt(2) - _SQRT2_D
_INV_SQRT_2PI_M80_D = 0.3989422804014327 * 2.0 ** -80  # the density at 0, by 2**-80


@register_jitable(**_JIT)
def _ndtr_parts_f64(x):
    """``(e, m)`` with ``e = exp(-x**2 / 2) 2**80`` and ``m = erfcx(|x| / sqrt 2) 2**-81``:
    ``e * m`` is ``Phi(-|x|)``, ``e * 2**-80 / sqrt(2 pi)`` the density."""
    xc = min(abs(x), _NDTR_XMAX_D)  # NaN stays NaN
    hi = xc * xc
    lo = _fma(xc, xc, -hi)  # x**2 = hi + lo
    v = -0.5 * hi
    # as _exp_f64: k = round(v / ln 2) from the bits of v log2(e) + 1.5 * 2**52
    t = _fma(v, _LOG2E_D, _SHIFTER_D)
    k = t - _SHIFTER_D
    ki = _float_bits_as_int(t) - _SHIFTER_BITS_D
    r = _fma(k, -_LN2_LO_D, _fma(k, -_LN2_HI_D, v))
    r = _fma(lo, -0.5, r)  # -x**2 / 2 - k ln 2, |r| <= ln(2) / 2
    p = _exp_reduced_f64(r)
    e = p * _int_bits_as_float(np.int64((ki + (80 + 1023)) << 52))
    e = select(xc < _NDTR_XMAX_D, e, 0.0)
    b = _fma(xc, _SQRT2_D, 1.0)  # 1 + 2a
    apk = _fma(xc, _SQRT1_2_D, _NDTR_K_D)  # a + 4
    r2 = 1.0 / (apk * b)  # the one division: 1 + y and 1 / (1 + 2a) from it
    s = (xc * _SQRT2_D) * (b * r2)  # 1 + y = 2a / (a + 4)
    y = s - 1.0
    (g21, g20, g19, g18, g17, g16, g15, g14, g13, g12, g11,
     g10, g9, g8, g7, g6, g5, g4, g3, g2, g1, g0) = _NDTR_G_D
    g = _fma(g21, y, g20)
    g = _fma(g, y, g19)
    g = _fma(g, y, g18)
    g = _fma(g, y, g17)
    g = _fma(g, y, g16)
    g = _fma(g, y, g15)
    g = _fma(g, y, g14)
    g = _fma(g, y, g13)
    g = _fma(g, y, g12)
    g = _fma(g, y, g11)
    g = _fma(g, y, g10)
    g = _fma(g, y, g9)
    g = _fma(g, y, g8)
    g = _fma(g, y, g7)
    g = _fma(g, y, g6)
    g = _fma(g, y, g5)
    g = _fma(g, y, g4)
    g = _fma(g, y, g3)
    g = _fma(g, y, g2)
    g = _fma(g, y, g1)
    g = _fma(g, y, g0)
    # q = 1 / (1 + 2a) to about half an ulp: one Newton step from apk * r2 (within a
    # few ulp) on b + b_lo = 1 + 2a (1 - b is exact; the low part of sqrt 2 included)
    b_lo = _fma(xc, _SQRT2_LO_D, _fma(xc, _SQRT2_D, 1.0 - b))
    q = apk * r2
    q = _fma(q, _fma(-b_lo, q, _fma(-b, q, 1.0)), q)
    # H(y) q / 2**81 = (1 + (1 + y) G(y)) q / 2**81, rounded once (q / 2**81 is exact)
    return e, _fma(s * q, g, q * _TWO_M81_D)


@register_jitable(**_JIT)
def _ndtr_f64(x):
    e, m = _ndtr_parts_f64(x)
    half_erfc = e * m
    return select(x <= 0.0, half_erfc, 1.0 - half_erfc)


@register_jitable(**_JIT)
def _ndtr_pdf_f64(x):
    e, m = _ndtr_parts_f64(x)
    half_erfc = e * m
    return select(x <= 0.0, half_erfc, 1.0 - half_erfc), e * _INV_SQRT_2PI_M80_D


@register_jitable(**_JIT)
def _x_ndtr_f64(x):
    # x <= -1: (x m) e, so that a subnormal result is rounded once
    e, m = _ndtr_parts_f64(x)
    half_erfc = e * m
    neg = select(x > -1.0, x * half_erfc, (x * m) * e)
    return select(x <= 0.0, neg, x * (1.0 - half_erfc))


@register_jitable(**_JIT)
def _x_ndtr_grad_f64(x):
    # Phi(x) + x phi(x) = e (m + x c) for x <= 0, 1 + e (x c - m) otherwise
    e, m = _ndtr_parts_f64(x)
    neg = x <= 0.0
    t = _fma(x, _INV_SQRT_2PI_M80_D, select(neg, m, -m))
    return _fma(e, t, select(neg, 0.0, 1.0))


@register_jitable(**_JIT)
def _x_ndtr_f32(x):
    return x * _ndtr_pdf_f32(x)[0]


@register_jitable(**_JIT)
def _x_ndtr_grad_f32(x):
    cdf, pdf = _ndtr_pdf_f32(x)
    return cdf + x * pdf


def ndtr(x):
    """The standard normal CDF :math:`\\Phi(x) = \\mathrm{erfc}(-x / \\sqrt 2) / 2`.

    Vectorizable inside Numba loops: float32 within 6 ulp, float64 within 3.5 ulp
    of the exact value (the polynomial cores above; the CUDA kernels compile the
    same ones). As plain Python: the C library's ``erfc``.
    """
    return 0.5 * math.erfc(-x * _SQRT1_2_D)


@overload(ndtr, jit_options=_JIT)
def _ndtr_ol(x):
    if x == types.float32:
        return _ndtr_f32
    if x == types.float64:
        return _ndtr_f64
    if isinstance(x, (types.Float, types.Integer, types.Boolean)):
        return lambda x: _ndtr_f64(np.float64(x))
    return None


def ndtr_pdf(x):
    """``(ndtr(x), pdf(x))``: the normal CDF and density, of ``x``'s type (for a
    float32 ``x`` from one vectorizable ``exp``; see :func:`ndtr`)."""
    return ndtr(x), math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


@overload(ndtr_pdf, jit_options=_JIT)
def _ndtr_pdf_ol(x):
    if x == types.float32:
        return _ndtr_pdf_f32
    if x == types.float64:
        return _ndtr_pdf_f64
    return None


def x_ndtr(x):
    """``x * ndtr(x)`` (gelu), of ``x``'s type. float64: from the parts of
    :func:`ndtr` so that a subnormal result is rounded once (within 4 ulp of the
    exact value); float32: ``x`` times the float32 :func:`ndtr`."""
    return x * ndtr(x)


def x_ndtr_grad(x):
    """``ndtr(x) + x * pdf(x)``, the derivative of :func:`x_ndtr` (gelu's), of
    ``x``'s type. float64: one ``exp`` and no cancellation but the derivative's
    own (at its zero, ``x = -0.75...``); float32: as :func:`ndtr_pdf` gives them."""
    cdf, pdf = ndtr_pdf(x)
    return cdf + x * pdf


@overload(x_ndtr, jit_options=_JIT)
def _x_ndtr_ol(x):
    if x == types.float32:
        return _x_ndtr_f32
    if x == types.float64:
        return _x_ndtr_f64
    if isinstance(x, (types.Integer, types.Boolean)):
        return lambda x: _x_ndtr_f64(np.float64(x))
    return None


@overload(x_ndtr_grad, jit_options=_JIT)
def _x_ndtr_grad_ol(x):
    if x == types.float32:
        return _x_ndtr_grad_f32
    if x == types.float64:
        return _x_ndtr_grad_f64
    if isinstance(x, (types.Integer, types.Boolean)):
        return lambda x: _x_ndtr_grad_f64(np.float64(x))
    return None
