"""The vectorizable math helpers (nbops.scalar._math) against long-double NumPy.

Within 2 ulp of the correctly rounded result over the whole float range, with
IEEE edges: overflow to inf, gradual underflow, NaN in -> NaN out, signed zeros.

The reference is NumPy's ``np.longdouble`` (x87 80-bit on x86: 64-bit
significand, 11 bits more than float64), whose exp, log, ... are within about
1 ulp of *its* precision, i.e. within a few thousandths of a float64 ulp:
``test_long_double_reference_against_mpmath`` checks that where mpmath is
installed, and the tests below skip where ``np.longdouble`` is no wider than
float64 (the errors would then be measured against a reference as inexact as
the functions). The float64 functions also have a test that LLVM vectorizes a
loop over them.
"""

import math
import re
import warnings

import numpy as np
import pytest
from numba import njit

from nbops.scalar import _math as M


@njit(error_model="numpy")
def _apply_all(x, out):
    for i in range(x.size):
        out[0, i] = M.exp(x[i])
        out[1, i] = M.expm1(x[i])
        out[2, i] = M.tanh(x[i])
        out[3, i] = M.log1p_unit(min(abs(x[i]), 1))
        out[4, i] = M.log(x[i])
        out[5, i] = M.log1p(x[i])


def _ulp_error(got, x, fn, dtype):
    with np.errstate(all="ignore"):
        ref_ld = fn(x.astype(np.longdouble))
        ref = ref_ld.astype(dtype)
    assert np.array_equal(np.isnan(got), np.isnan(ref))
    inf = np.isinf(ref)
    assert np.array_equal(got[inf], ref[inf])
    fin = np.isfinite(ref)
    spacing = np.spacing(np.abs(ref[fin])).astype(np.longdouble)
    # below the smallest normal, ulps are the subnormal spacing
    err = np.abs(got[fin].astype(np.longdouble) - ref_ld[fin]) / spacing
    return float(err.max()) if err.size else 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_accuracy_over_the_range(dtype):
    info = np.finfo(dtype)
    lim = 89.0 if dtype == np.float32 else 710.0
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.uniform(-lim - 20, lim, 200_000), np.linspace(-lim - 20, lim + 5, 20_001),
        rng.uniform(-1, 1, 20_000) * 1e-3, np.geomspace(info.tiny, 1, 2000),
        -np.geomspace(info.tiny, 1, 2000),
        [np.inf, -np.inf, np.nan, 0.0, -0.0, info.max, -info.max, info.smallest_subnormal],
        [88.72283, 88.7229, -87.33, -103.97, -103.28, 709.78, 709.79, -745.13, -708.4],
    ]).astype(dtype)
    out = np.empty((6, x.size), dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FP warnings from the helpers
        _apply_all(x, out)
    assert out.dtype == dtype
    assert _ulp_error(out[0], x, np.exp, dtype) <= 1.0
    assert _ulp_error(out[1], x, np.expm1, dtype) <= 2.0
    assert _ulp_error(out[2], x, np.tanh, dtype) <= 2.0
    t = np.minimum(np.abs(x), 1).astype(dtype)
    assert _ulp_error(out[3], t, np.log1p, dtype) <= 2.0
    assert _ulp_error(out[4], x, np.log, dtype) <= 1.0  # NaN below 0, -inf at 0
    assert _ulp_error(out[5], x, np.log1p, dtype) <= 2.0  # NaN below -1, -inf at -1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_log_near_one_and_over_the_whole_range(dtype):
    info = np.finfo(dtype)
    rng = np.random.default_rng(1)
    x = np.concatenate([
        1 + rng.uniform(-0.3, 0.5, 100_000),  # and 2**k * [1, 2) over every exponent:
        np.ldexp(rng.uniform(1, 2, 50_000), rng.integers(info.minexp - info.nmant,
                                                         info.maxexp, 50_000)),
        rng.uniform(-1, 1, 50_000) * 1e-6, -1 + np.geomspace(info.eps / 4, 0.5, 5000),
        [1.0, -1.0, info.smallest_subnormal, info.tiny, info.max, -0.0, 0.0],
    ]).astype(dtype)
    out = np.empty((6, x.size), dtype)
    _apply_all(x, out)
    assert _ulp_error(out[4], x, np.log, dtype) <= 1.0
    assert _ulp_error(out[5], x, np.log1p, dtype) <= 2.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_signed_zeros(dtype):
    x = np.array([0.0, -0.0], dtype)
    out = np.empty((6, 2), dtype)
    _apply_all(x, out)
    assert np.array_equal(np.signbit(out[1]), [False, True])  # expm1
    assert np.array_equal(np.signbit(out[2]), [False, True])  # tanh
    assert np.array_equal(out[0], [1.0, 1.0])
    assert np.array_equal(np.signbit(out[5]), [False, True])  # log1p
    assert np.array_equal(out[4], [-np.inf, -np.inf])  # log


@njit(error_model="numpy", fastmath={"reassoc", "contract"})
def _exp_reassoc(x, out):
    for i in range(x.size):
        out[i] = M.exp(x[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_survives_reassociation(dtype):
    # kernels that sum with fastmath 'reassoc' inline exp: its rounding step
    # must not be an (a + C) - C pattern that reassociation folds away
    lo, hi = (-110, 95) if dtype == np.float32 else (-760, 715)
    x = np.linspace(lo, hi, 100_001).astype(dtype)
    out = np.empty_like(x)
    _exp_reassoc(x, out)
    assert _ulp_error(out, x, np.exp, dtype) <= 1.0


_LONG_DOUBLE_WIDER = np.finfo(np.longdouble).nmant >= 63
needs_long_double = pytest.mark.skipif(
    not _LONG_DOUBLE_WIDER, reason="np.longdouble is no wider than float64 here")

_NAMES = ["exp", "expm1", "tanh", "log1p_unit", "log", "log1p"]
_REFS = [np.exp, np.expm1, np.tanh, np.log1p, np.log, np.log1p]
#: bound of each function's error in ulp (the rows of _apply_all)
_MAX_ULP = [1.0, 2.0, 2.0, 2.0, 1.0, 2.0]


def _random_bit_patterns(dtype, n, rng):
    """``n`` floats of ``dtype`` from uniform random bit patterns: every finite
    value's exponent (subnormals included) is as likely as any other, both signs."""
    ity = np.uint32 if dtype == np.float32 else np.uint64
    bits = rng.integers(0, np.iinfo(ity).max, n, dtype=ity, endpoint=True)
    x = bits.view(dtype)
    return x[np.isfinite(x)]


def _check_all(x, dtype):
    out = np.empty((6, x.size), dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no FP warnings from the helpers
        _apply_all(x, out)
    errors = {}
    for row, (name, ref) in enumerate(zip(_NAMES, _REFS, strict=True)):
        xi = np.minimum(np.abs(x), 1).astype(dtype) if name == "log1p_unit" else x
        errors[name] = _ulp_error(out[row], xi, ref, dtype)
    for name, bound in zip(_NAMES, _MAX_ULP, strict=True):
        assert errors[name] <= bound, (name, errors[name])
    return out


@needs_long_double
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_bit_patterns_over_all_finite_floats(dtype):
    rng = np.random.default_rng(2)
    _check_all(_random_bit_patterns(dtype, 400_000, rng), dtype)


@needs_long_double
def test_float64_dense_samples_of_each_region():
    rng = np.random.default_rng(3)
    n = 100_000
    # the cut-over points of the implementations (x +- a few thousand ulp)
    cuts = [709.782712893384, -708.3964185322641, -745.1332191019411, 0.625, -0.625, 0.5,
            -0.5, np.sqrt(2) - 1, np.sqrt(0.5) - 1, np.log(2) / 2, -np.log(2) / 2, 1.0, 2.0,
            np.sqrt(2), np.sqrt(0.5), 19.0, 355.0]
    steps = np.arange(-2000, 2001)
    x = np.concatenate([
        *(c + steps * np.spacing(c) for c in cuts),
        rng.uniform(-750, 712, n),  # exp's, expm1's and tanh's whole finite range
        rng.uniform(-2, 2, n),
        np.ldexp(rng.uniform(-1, 1, n), rng.integers(-1074, 0, n)),  # tiny |x|, subnormals
        1 + rng.uniform(-1, 1, n) * np.ldexp(1.0, rng.integers(-53, 0, n)),  # near 1 (log)
        -1 + np.ldexp(rng.uniform(0, 1, n), rng.integers(-60, 1, n)),  # near -1 (log1p)
        rng.uniform(0, 1, n),  # log1p_unit's domain
        np.ldexp(rng.uniform(1, 2, n), rng.integers(-1074, 1024, n)),  # large and small x > 0
        -np.ldexp(rng.uniform(1, 2, n), rng.integers(-1074, 1024, n)),
    ])
    _check_all(x.astype(np.float64), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_exactly(dtype):
    info = np.finfo(dtype)
    inf, nan = np.inf, np.nan
    x = np.array([inf, -inf, nan, 0.0, -0.0, info.max, -info.max, 1.0, -1.0, 2.0, -2.0,
                  info.smallest_subnormal, -info.smallest_subnormal, 1000.0, -1000.0], dtype)
    out = np.empty((6, x.size), dtype)
    _apply_all(x, out)
    exp, expm1, tanh, log1p_unit, log, log1p = out
    ln2 = dtype(np.log(2.0))
    np.testing.assert_array_equal(exp[:5], [inf, 0, nan, 1, 1])
    np.testing.assert_array_equal(exp[5:7], [inf, 0])
    np.testing.assert_array_equal(exp[11:], [1, 1, inf, 0])
    np.testing.assert_array_equal(expm1[:7], [inf, -1, nan, 0, -0.0, inf, -1])
    np.testing.assert_array_equal(expm1[11:13], x[11:13])  # expm1(x) = x for tiny x
    np.testing.assert_array_equal(expm1[13:], [inf, -1])
    np.testing.assert_array_equal(tanh[:7], [1, -1, nan, 0, -0.0, 1, -1])
    np.testing.assert_array_equal(tanh[11:], [x[11], x[12], 1, -1])
    np.testing.assert_array_equal(log[:5], [inf, nan, nan, -inf, -inf])
    assert np.isnan(log[[6, 8, 10, 12, 14]]).all()  # x < 0
    np.testing.assert_array_equal(log[[7, 9]], [0, ln2])
    assert log[11] == dtype(np.log(np.float64(info.smallest_subnormal)))
    np.testing.assert_array_equal(log1p[:5], [inf, nan, nan, 0, -0.0])
    np.testing.assert_array_equal(log1p[[7, 8, 10]], [ln2, -inf, nan])
    np.testing.assert_array_equal(log1p[11:13], x[11:13])  # log1p(x) = x for tiny x
    np.testing.assert_array_equal(log1p_unit[[3, 4, 7, 11]], [0, 0, ln2, x[11]])
    assert np.signbit(expm1[4]) and np.signbit(tanh[4]) and np.signbit(log1p[4])


@pytest.mark.skipif(not _LONG_DOUBLE_WIDER, reason="np.longdouble is no wider than float64 here")
def test_long_double_reference_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.prec = 120
    rng = np.random.default_rng(4)
    x = np.concatenate([rng.uniform(-700, 700, 300), rng.uniform(-1, 1, 300) * 1e-5,
                        np.ldexp(rng.uniform(1, 2, 300), rng.integers(-1070, 1020, 300))])
    xe = x[:600]  # where exp is finite
    funcs = [(np.exp, mpmath.exp, xe), (np.expm1, mpmath.expm1, xe), (np.tanh, mpmath.tanh, xe),
             (np.log, mpmath.log, np.abs(x)), (np.log1p, mpmath.log1p, np.abs(x))]
    for np_fn, mp_fn, xs in funcs:
        ref = np_fn(xs.astype(np.longdouble))
        exact = [mp_fn(mpmath.mpf(float(v))) for v in xs]
        err = [abs(mpmath.mpf(str(r)) - e) / mpmath.mpf(float(np.spacing(np.float64(abs(e)))))
               for r, e in zip(ref, exact, strict=True)]
        assert float(max(err)) < 0.01, np_fn  # the reference's own error, in float64 ulp


def _make_loop(fn):
    @njit(error_model="numpy")
    def loop(x, out):
        for i in range(x.size):
            out[i] = fn(x[i])
    return loop


@pytest.mark.parametrize("name", _NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loops_over_the_helpers_vectorize(name, dtype):
    loop = _make_loop(getattr(M, name))
    x = np.full(64, 0.5, dtype)
    loop(x, np.empty_like(x))
    ir = loop.inspect_llvm(loop.signatures[0])
    lane = "double" if dtype == np.float64 else "float"
    # arithmetic on vectors of the dtype (fmul, fadd, fdiv or a vector multiply-add)
    vector_math = re.compile(rf"= (fmul|fadd|fsub|fdiv|call)\b[^\n]*<\d+ x {lane}>")
    assert vector_math.search(ir), f"{name} {dtype.__name__}: the loop did not vectorize"


# ---------------------------------------------------------------- ndtr (gelu's Phi)
def test_ndtr_float32_against_mpmath():
    """float32: within 8 ulp of the exact normal CDF, from the left tail (subnormal
    results) to 1; the special values exactly."""
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 30
    loop = _make_loop(M.ndtr)
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.standard_normal(3000) * 5, np.linspace(-14.5, 9.0, 2001),
                        np.float32(-np.logspace(-30, 1, 300)),
                        [-0.018486412, -0.011702455, -11.247006]]).astype(np.float32)
    got = np.empty_like(x)
    loop(x, got)
    for xi, yi in zip(x, got, strict=True):
        exact = mpmath.ncdf(mpmath.mpf(float(xi)))
        ulp = float(np.spacing(np.float32(float(exact))))
        assert abs(float(yi) - float(exact)) <= 8 * ulp, (xi, yi, exact)
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 3e38, -3e38, -20.0], np.float32)
    out = np.empty_like(special)
    loop(special, out)
    np.testing.assert_array_equal(out, [1.0, 0.0, np.nan, 0.5, 0.5, 1.0, 0.0, 0.0])


def test_ndtr_float64_near_erfc():
    """(tests/test_gelu_erf64.py measures the float64 core's ulps)"""
    loop = _make_loop(M.ndtr)
    x = np.array([-40.0, -8.0, -1.0, 0.0, 0.5, 3.0, np.inf, -np.inf, np.nan])
    got = np.empty_like(x)
    loop(x, got)
    want = [0.5 * math.erfc(-v / math.sqrt(2.0)) if not np.isnan(v) else np.nan for v in x]
    # (the argument's rounding moves erfc by up to 2 z**2 ulp: 1e-14 at x = -8)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


def test_ndtr_float32_loop_vectorizes():
    loop = _make_loop(M.ndtr)
    x = np.full(64, 0.5, np.float32)
    loop(x, np.empty_like(x))
    ir = loop.inspect_llvm(loop.signatures[0])
    assert re.search(r"= (fmul|fadd|fsub|fdiv|call)\b[^\n]*<\d+ x float>", ir)
