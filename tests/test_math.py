"""The vectorizable math helpers (nbops.scalar._math) against long-double NumPy.

Within 2 ulp of the correctly rounded result over the whole float range, with
IEEE edges: overflow to inf, gradual underflow, NaN in -> NaN out, signed zeros.
"""

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


def test_exp_survives_reassociation():
    # kernels that sum with fastmath 'reassoc' inline exp: its rounding step
    # must not be an (a + C) - C pattern that reassociation folds away
    x = np.linspace(-110, 95, 100_001).astype(np.float32)
    out = np.empty_like(x)
    _exp_reassoc(x, out)
    assert _ulp_error(out, x, np.exp, np.float32) <= 1.0
