"""gelu's float64 normal CDF (``nbops.scalar._math.ndtr`` and ``x_ndtr`` /
``x_ndtr_grad`` for float64): a dense sweep of the float64 range against a
long-double reference written here, the tails (subnormal results), the special
values, gelu / gelu_backward against PyTorch, and the same bits on any thread count.

The reference: ``Phi(-|x|) = exp(-x**2 / 2) erfcx(|x| / sqrt 2) / 2`` in
``np.longdouble`` (x87 80-bit on x86: 11 bits more than float64), with ``x**2``
split exactly into two doubles (the rounding of ``x**2`` alone would move the
result by up to ``x**2 / 2`` ulp), ``erfcx`` from its positive-term series
(``a < 1.5``) or its continued fraction. ``test_reference_against_mpmath`` checks
it to a few hundredths of an ulp where mpmath is installed; the tests skip where
``np.longdouble`` is no wider than float64.
"""

import re

import numpy as np
import pytest
from _threads import assert_same_bits_on_any_thread_count
from numba import njit

import nbops
from nbops.scalar import _math as M

LD = np.longdouble
TINY = float(np.finfo(np.float64).smallest_subnormal)

pytestmark = pytest.mark.skipif(np.finfo(LD).nmant <= 52,
                                reason="np.longdouble is no wider than float64 here")


# ---------------------------------------------------------------- the reference
def _split(x):
    """``x * x == hi + lo`` exactly (Dekker's product, in float64)."""
    c = 134217729.0 * x  # 2**27 + 1
    xh = c - (c - x)
    xl = x - xh
    hi = x * x
    lo = ((xh * xh - hi) + 2.0 * xh * xl) + xl * xl
    return hi, lo


def _erfcx(a):
    """``exp(a**2) erfc(a)`` for long-double ``a >= 0``."""
    out = np.empty_like(a)
    small = a < 1.5
    s = a[small]
    term = s.copy()
    total = s.copy()
    two_s2 = 2 * s * s
    for n in range(1, 60):  # erf(a) = 2/sqrt(pi) exp(-a**2) sum (2a**2)**n a / (2n+1)!!
        term = term * two_s2 / (2 * n + 1)
        total = total + term
    out[small] = np.exp(s * s) - LD("1.128379167095512573896158903121545172") * total
    b = a[~small]
    frac = np.zeros_like(b)  # 1 / (a + (1/2) / (a + 1 / (a + (3/2) / (a + ...))))
    for n in range(400, 0, -1):
        frac = (n / LD(2)) / (b + frac)
    out[~small] = LD("0.5641895835477562869480794515607725858") / (b + frac)
    return out


def _reference(x):
    """Long-double ``(Phi(x), x Phi(x), Phi(x) + x phi(x), |Phi(x)| + |x phi(x)|)`` for
    finite float64 ``x`` with ``|x| < 40``."""
    ax = np.abs(x)
    hi, lo = _split(ax)
    e = np.exp(-hi.astype(LD) / 2) * (1 - lo.astype(LD) / 2)  # exp(-x**2 / 2)
    a = ax.astype(LD) * LD("0.7071067811865475244008443621048490393")
    half_erfc = e * _erfcx(a) / 2
    phi = np.where(x <= 0, half_erfc, 1 - half_erfc)
    pdf = e * LD("0.3989422804014326779399460599343818685")
    xl = x.astype(LD)
    return phi, xl * phi, phi + xl * pdf, phi + np.abs(xl) * pdf


def _ulps(got, exact, scale=None):
    """|got - exact| in ulps of the float64 nearest ``scale`` (default ``exact``; the
    subnormal spacing below the smallest normal)."""
    scale = exact if scale is None else scale
    spacing = np.maximum(np.spacing(np.abs(scale.astype(np.float64))), TINY).astype(LD)
    return np.asarray((np.abs(got.astype(LD) - exact) / spacing).astype(np.float64))


def test_reference_against_mpmath():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(-39, 9, 300), rng.standard_normal(100), [-1.4999, -1.5001,
                        -2.1213203435596424, 1e-300, -1e-300, -38.9, -37.5, 0.0]])
    phi, xphi, grad, _ = _reference(x)
    for i, v in enumerate(x):
        xm = mpmath.mpf(float(v))
        p, d = mpmath.ncdf(xm), mpmath.npdf(xm)
        # (the derivative in ulps of its larger term: it cancels around its zero)
        for got, want, scale in ((phi[i], p, p), (xphi[i], xm * p, xm * p),
                                 (grad[i], p + xm * d, max(p, abs(xm * d)))):
            m, e = np.frexp(got)  # the long double exactly
            err = abs(mpmath.ldexp(int(np.ldexp(m, 64)), int(e) - 64) - want)
            sp = max(float(np.spacing(abs(float(scale)))), TINY)
            assert err <= mpmath.mpf(sp) / 50, (v, got, want)


# ---------------------------------------------------------------- the cores
@njit(error_model="numpy")
def _cores(x, out):
    for i in range(x.size):
        out[0, i] = M.ndtr(x[i])
        out[1, i] = M.x_ndtr(x[i])
        out[2, i] = M.x_ndtr_grad(x[i])
        cdf, pdf = M.ndtr_pdf(x[i])
        out[3, i] = cdf
        out[4, i] = pdf


def _run_cores(x):
    out = np.empty((5, x.size))
    _cores(x, out)
    return out


def _sweep():
    """512 doubles per binade (every 2**43-th bit pattern) from the smallest
    subnormal to 39, both signs, and 300,000 uniform on [-10, 10]: 1.35 million."""
    top = int(np.float64(39.0).view(np.int64))
    pos = np.arange(1, top, 1 << 43, dtype=np.int64).view(np.float64)
    mid = np.random.default_rng(5).uniform(-10, 10, 300_000)
    return np.concatenate([pos, -pos, mid, [39.0, -39.0, 38.99999999999999]])


@pytest.fixture(scope="module")
def sweep():
    x = _sweep()
    return x, _run_cores(x), _reference(x)


def test_phi_within_3_5_ulp_over_the_float64_range(sweep):
    """(measured: 3.01 ulp at most, 2.1 at the 99.99th percentile)"""
    x, got, (phi, _, _, _) = sweep
    err = _ulps(got[0], phi)
    worst = int(np.argmax(err))
    assert err[worst] <= 3.5, (x[worst], got[0, worst], phi[worst], err[worst])
    np.testing.assert_array_equal(got[3], got[0])  # ndtr_pdf's cdf is ndtr's
    assert np.all((got[0] >= 0) & (got[0] <= 1))


def test_x_phi_within_4_ulp_subnormal_results_included(sweep):
    x, got, (_, xphi, _, _) = sweep
    err = _ulps(got[1], xphi)
    worst = int(np.argmax(err))
    assert err[worst] <= 4.0, (x[worst], got[1, worst], xphi[worst], err[worst])


def test_derivative_within_4_ulp_of_its_terms(sweep):
    """Phi(x) + x phi(x) cancels around its zero (x = -0.7518...): the error is
    measured in ulps of |Phi(x)| + |x phi(x)| there, of the result elsewhere."""
    x, got, (_, _, grad, terms) = sweep
    err = np.minimum(_ulps(got[2], grad), _ulps(got[2], grad, terms) * 2.0)
    worst = int(np.argmax(err))
    assert err[worst] <= 4.0, (x[worst], got[2, worst], grad[worst], err[worst])


def test_pdf_within_2_ulp(sweep):
    x, got, _ = sweep
    hi, lo = _split(np.abs(x))
    exact = (np.exp(-hi.astype(LD) / 2) * (1 - lo.astype(LD) / 2)
             * LD("0.3989422804014326779399460599343818685"))
    err = _ulps(got[4], exact)
    worst = int(np.argmax(err))
    assert err[worst] <= 2.5, (x[worst], got[4, worst], exact[worst])


def test_tails_and_special_values():
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -39.0, -1e300, 1e300, 8.0, 9.0,
                  5e-324, -5e-324, 1e-200, -1e-200, -38.5, -37.0])
    got = _run_cores(x)
    phi, xphi, grad = got[0], got[1], got[2]
    np.testing.assert_array_equal(phi[:8], [0.5, 0.5, 1.0, 0.0, np.nan, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(xphi[:8], [0.0, -0.0, np.inf, np.nan, np.nan, -0.0, -0.0,
                                             1e300])
    assert np.signbit(xphi[1]) and not np.signbit(xphi[0])
    # PyTorch's gelu_backward is NaN at +-inf (inf * exp(-inf)); 0.5 at 0
    np.testing.assert_array_equal(grad[:5], [0.5, 0.5, np.nan, np.nan, np.nan])
    assert 1.0 - 8e-16 < phi[8] < 1.0 and phi[9] == 1.0  # Phi(8) = 1 - 6.2e-16
    np.testing.assert_array_equal(phi[10:14], [0.5] * 4)
    np.testing.assert_array_equal(xphi[12:14], [5e-201, -5e-201])
    assert np.all(_ulps(xphi[10:14], _reference(x[10:14])[1]) <= 1.0)  # x / 2, rounded
    # subnormal results: Phi(-38.5) is 1.3e-324 (0), 38.5 Phi(-38.5) 5.4e-323
    ref = _reference(x[14:])
    assert np.all(_ulps(xphi[14:], ref[1]) <= 4.0) and xphi[14] < 0.0
    assert np.all(_ulps(phi[14:], ref[0]) <= 3.5)


def test_gelu_minus_huge_is_nan_as_pytorch():
    np.testing.assert_array_equal(nbops.gelu(np.array([-1e300, -np.inf, -40.0])),
                                  [-0.0, np.nan, -0.0])


def _make_loop(fn):
    @njit(error_model="numpy")
    def loop(x, out):
        for i in range(x.size):
            out[i] = fn(x[i])
    return loop


def test_loop_over_the_float64_cores_vectorizes():
    for fn in (M.ndtr, M.x_ndtr, M.x_ndtr_grad):
        loop = _make_loop(fn)
        x = np.full(64, 0.5)
        loop(x, np.empty_like(x))
        ir = loop.inspect_llvm(loop.signatures[0])
        assert re.search(r"= (fmul|fadd|fsub|fdiv|call)\b[^\n]*<\d+ x double>", ir), fn


# ---------------------------------------------------------------- the ops
def _op_inputs():
    rng = np.random.default_rng(9)
    x = np.concatenate([np.linspace(-39.5, 10, 100_001), rng.standard_normal(50_000) * 2,
                        [0.0, -0.0, 1e-310, -1e-310]])
    g = rng.uniform(0.5, 2.0, x.size)
    return x, g


def test_gelu_and_backward_float64_against_the_reference():
    x, g = _op_inputs()
    _, xphi, grad, terms = _reference(x)
    y = nbops.gelu(x)
    assert y.dtype == np.float64
    assert np.max(_ulps(y, xphi)) <= 4.0
    dx = nbops.gelu_backward(g, x)
    exact = g.astype(LD) * grad
    err = np.minimum(_ulps(dx, exact), _ulps(dx, exact, g * terms) * 2.0)
    assert np.max(err) <= 5.0  # one rounding more: the product by g


def test_gelu_float64_against_torch():
    """PyTorch computes 0.5 x (1 + erf(x / sqrt 2)): its absolute error is about
    |x| eps / 2 where 1 + erf cancels (x < 0); ours is a few ulp of the result."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, g = _op_inputs()
    x = x[np.abs(x) < 38.0]
    g = g[: x.size]
    want = F.gelu(torch.from_numpy(x)).numpy()
    got = nbops.gelu(x)
    bound = 4 * np.spacing(np.abs(want)) + 2.0 * np.abs(x) * np.finfo(np.float64).eps
    assert np.all(np.abs(got - want) <= bound)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    F.gelu(xt).backward(torch.from_numpy(g))
    want = xt.grad.numpy()
    got = nbops.gelu_backward(g, x)
    bound = g * (8 * np.spacing(1.0) + 4.0 * np.abs(x) * np.spacing(1.0)
                 * np.exp(-0.5 * x * x))
    assert np.all(np.abs(got - want) <= bound + 4 * np.spacing(np.abs(want)))
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 1e300, -1e300])
    np.testing.assert_array_equal(nbops.gelu(special), F.gelu(torch.from_numpy(special)))
    st = torch.from_numpy(special.copy()).requires_grad_(True)
    F.gelu(st).backward(torch.ones(special.size, dtype=torch.float64))
    np.testing.assert_array_equal(nbops.gelu_backward(np.ones_like(special), special),
                                  st.grad.numpy())


def test_same_bits_on_1_and_2_threads(monkeypatch):
    x, g = _op_inputs()
    x, g = x[:60_000], g[:60_000]
    assert_same_bits_on_any_thread_count(
        monkeypatch, lambda: [nbops.gelu(x), nbops.gelu_backward(g, x)])
