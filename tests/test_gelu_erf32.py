"""gelu's float32 normal CDF (``nbops.scalar._math.ndtr`` for float32): a dense sweep of
float32 values against float64 ``math.erfc``, the tails, the special values, and
gelu / gelu_backward built on it (CPU kernel and ``@njit`` give the same bits)."""

import math

import numpy as np
import pytest
from numba import njit

import nbops
from nbops import scalar
from nbops.scalar import _math as M

TINY_STEP = float(np.finfo(np.float32).smallest_subnormal)


@njit(error_model="numpy")
def _phi_pdf(x, phi, pdf):
    for i in range(x.size):
        phi[i], pdf[i] = M.ndtr_pdf(x[i])


@njit(error_model="numpy")
def _gelu_njit(x):
    return nbops.gelu(x)


def _sweep():
    """Every 499th float32 from the smallest subnormal to 14.5 (where Phi(-x) is 0 in
    float32), both signs, and every 7th float32 in [0.5, 4): about 8 million values."""
    top = int(np.float32(14.5).view(np.int32))
    pos = np.arange(1, top, 499, dtype=np.int32).view(np.float32)
    lo, hi = (int(np.float32(v).view(np.int32)) for v in (0.5, 4.0))
    mid = np.arange(lo, hi, 7, dtype=np.int32).view(np.float32)
    return np.concatenate([pos, -pos, mid, -mid])


def _exact_phi(x):
    erfc = np.frompyfunc(math.erfc, 1, 1)
    return (0.5 * erfc(x.astype(np.float64) * -math.sqrt(0.5))).astype(np.float64)


def _ulps(got, exact):
    """|got - exact| in ulps of the float32 nearest ``exact`` (the subnormal spacing
    below the smallest normal)."""
    spacing = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    spacing = np.maximum(spacing, TINY_STEP)
    return np.abs(got.astype(np.float64) - exact) / spacing


@pytest.fixture(scope="module")
def sweep():
    x = _sweep()
    phi, pdf = np.empty_like(x), np.empty_like(x)
    _phi_pdf(x, phi, pdf)
    return x, phi, pdf, _exact_phi(x)


def test_phi_within_6_ulp_over_the_float32_range(sweep):
    x, phi, _, exact = sweep
    err = _ulps(phi, exact)
    worst = int(np.argmax(err))
    assert err[worst] <= 6.0, (x[worst], phi[worst], exact[worst], err[worst])
    assert np.all((phi >= 0) & (phi <= 1))


def test_phi_tails():
    x = np.float32([-14.5, -14.0, -13.5, -13.0, -12.0, -10.0, -9.0, -5.0, 5.0, 9.0, 20.0,
                    1e30, -1e30, 3e38, -3e38])
    phi, pdf = np.empty_like(x), np.empty_like(x)
    _phi_pdf(x, phi, pdf)
    exact = _exact_phi(x)
    assert np.all(_ulps(phi, exact) <= 6.0), (phi, exact)
    assert phi[0] == 0.0 and phi[-1] == 0.0 and phi[-2] == 1.0 and phi[-3] == 0.0


def test_pdf_within_3_ulp(sweep):
    x, _, pdf, _ = sweep
    exact = np.exp(-0.5 * x.astype(np.float64) ** 2) / math.sqrt(2 * math.pi)
    err = _ulps(pdf, exact)
    worst = int(np.argmax(err))
    assert err[worst] <= 3.0, (x[worst], pdf[worst], exact[worst])


def test_special_values():
    x = np.float32([0.0, -0.0, np.inf, -np.inf, np.nan])
    phi, pdf = np.empty_like(x), np.empty_like(x)
    _phi_pdf(x, phi, pdf)
    np.testing.assert_array_equal(phi, [0.5, 0.5, 1.0, 0.0, np.nan])
    np.testing.assert_array_equal(pdf, np.float32([0.3989422804014327] * 2 + [0, 0, np.nan]))
    g = nbops.gelu(x)
    np.testing.assert_array_equal(g, [0.0, -0.0, np.inf, np.nan, np.nan])
    assert np.signbit(g[1]) and not np.signbit(g[0])
    assert g.dtype == np.float32


def test_gelu_float32_against_float64(sweep):
    """x Phi(x): one rounding more than Phi; where Phi is subnormal (x below about
    -13.2) its absolute error, times |x|, is the bound."""
    x = sweep[0]
    got = nbops.gelu(x)
    exact = x.astype(np.float64) * _exact_phi(x)
    bound = 6.0 * np.maximum(np.spacing(np.abs(exact).astype(np.float32)), TINY_STEP)
    bound = bound + 4.0 * np.abs(x.astype(np.float64)) * TINY_STEP
    bad = np.abs(got.astype(np.float64) - exact) > bound
    assert not bad.any(), (x[bad][:5], got[bad][:5], exact[bad][:5])


def test_gelu_njit_and_scalar_same_bits_as_the_kernel():
    x = np.float32(np.linspace(-15, 10, 4001))
    got = nbops.gelu(x)
    np.testing.assert_array_equal(_gelu_njit(x), got)
    assert all(scalar.gelu(np.float32(v)) == g for v, g in zip(x[::400], got[::400],
                                                                  strict=True))


def test_gelu_backward_float32_against_float64():
    """g (Phi(x) + x phi(x)) from the same core; non-uniform grad_output."""
    rng = np.random.default_rng(3)
    x = np.float32(np.concatenate([np.linspace(-13, 10, 200_001), rng.standard_normal(10_000)]))
    g = np.float32(rng.uniform(0.5, 2.0, x.size))
    got = nbops.gelu_backward(g, x)
    x64 = x.astype(np.float64)
    exact = g * (_exact_phi(x) + x64 * np.exp(-0.5 * x64 ** 2) / math.sqrt(2 * math.pi))
    scale = np.abs(g) * (_exact_phi(x) + np.abs(x64) * np.exp(-0.5 * x64 ** 2) / 2.5)
    bound = 8.0 * np.maximum(np.spacing(scale.astype(np.float32)), TINY_STEP)
    bad = np.abs(got.astype(np.float64) - exact) > bound
    assert not bad.any(), (x[bad][:5], got[bad][:5], exact[bad][:5])
