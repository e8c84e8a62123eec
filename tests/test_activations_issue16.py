"""What is specific to issue 16's elementwise activations (gelu, mish, hardsigmoid,
selu, celu, hardshrink, tanhshrink); the table-driven tests (test_activations.py,
test_backward.py, test_activations_njit.py, test_nn.py, tests/cuda/) cover the rest.
Expected values are written here or come from PyTorch, never from nbops."""

import math

import numpy as np
import pytest
from numba import njit

import nbops
from nbops import scalar

NAN, INF = np.nan, np.inf


def test_gelu_approximate_choices():
    x = np.array([-1.0, 0.0, 2.0])
    exact = 0.5 * x * np.array([math.erfc(-v / math.sqrt(2.0)) for v in x])
    np.testing.assert_allclose(nbops.gelu(x), exact, rtol=1e-15)
    np.testing.assert_allclose(nbops.gelu(x, "none"), exact, rtol=1e-15)
    u = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
    np.testing.assert_allclose(nbops.gelu(x, approximate="tanh"), 0.5 * x * (1 + np.tanh(u)),
                               rtol=1e-14)
    out = np.full(3, 7.0)
    for bad in ("Tanh", "erf", None, 1):
        with pytest.raises(ValueError, match="approximate"):
            nbops.gelu(x, bad, out=out)
        with pytest.raises(ValueError, match="approximate"):
            nbops.gelu_backward(x, x, approximate=bad)
    np.testing.assert_array_equal(out, 7.0)  # checked before any kernel


def test_gelu_choice_inside_njit():
    @njit
    def both(x, approximate):
        return nbops.gelu(x, approximate), nbops.gelu_backward(x, x, approximate)

    x = np.linspace(-3, 3, 7, dtype=np.float32)
    for choice in ("none", "tanh"):
        y, g = both(x, choice)
        assert y.dtype == g.dtype == np.float32
        np.testing.assert_array_equal(y, nbops.gelu(x, choice))
        np.testing.assert_array_equal(g, nbops.gelu_backward(x, x, choice))
    with pytest.raises(ValueError, match="approximate"):
        both(x, "erf")


def test_gelu_accurate_for_negative_inputs():
    """erfc / sigmoid forms: relative accuracy where 1 + erf (1 + tanh) cancels (in
    float32 PyTorch's gelu(-8) is -0.0). The float32 rounding of x / sqrt(2) alone
    moves erfc by up to 2 z**2 2**-24 (relative): 7e-6 at x = -12."""
    x = np.array([-5.0, -8.0, -12.0], np.float32)
    want = [0.5 * float(v) * math.erfc(-float(v) / math.sqrt(2.0)) for v in x]
    np.testing.assert_allclose(nbops.gelu(x), np.array(want, np.float32), rtol=1e-5)
    u = [math.sqrt(2 / math.pi) * (float(v) + 0.044715 * float(v) ** 3) for v in x]
    want = [float(v) / (1 + math.exp(-2 * w)) for v, w in zip(x, u, strict=True)]
    np.testing.assert_allclose(nbops.gelu(x, "tanh"), np.array(want, np.float32), rtol=1e-5)


def test_special_values():
    x = np.array([-INF, INF, NAN, -0.0])
    np.testing.assert_array_equal(nbops.gelu(x), [NAN, INF, NAN, -0.0])
    np.testing.assert_array_equal(nbops.gelu(x, "tanh"), [NAN, INF, NAN, -0.0])
    np.testing.assert_array_equal(nbops.mish(x), [NAN, INF, NAN, -0.0])
    np.testing.assert_array_equal(nbops.hardsigmoid(x), [0.0, 1.0, NAN, 0.5])
    selu_min = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    np.testing.assert_allclose(nbops.selu(x), [selu_min, INF, NAN, -0.0], rtol=1e-15)
    np.testing.assert_array_equal(nbops.celu(x, 2.0), [-2.0, INF, NAN, -0.0])
    np.testing.assert_array_equal(nbops.tanhshrink(x), [-INF, INF, NAN, 0.0])
    # hardshrink's zero is +0.0 (PyTorch's), the interval closed
    y = nbops.hardshrink(np.array([-0.0, 0.5, -0.5, 0.50001, NAN, -INF]))
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.0, 0.50001, NAN, -INF])
    assert not np.signbit(y[0])


def test_hardshrink_any_lambd():
    """As PyTorch: no check on lambd; a negative (or NaN) one is the identity."""
    x = np.array([-1.0, -0.0, 0.25, 3.0])
    for lam in (-1.0, NAN):
        y = nbops.hardshrink(x, lam)
        np.testing.assert_array_equal(y, x)
        assert np.signbit(y[1])
    np.testing.assert_array_equal(nbops.hardshrink(x, 0), [-1.0, 0.0, 0.25, 3.0])


def test_celu_alpha_zero():
    x = np.array([-1.0, 2.0])
    out = np.full(2, 7.0)
    with pytest.raises(ValueError, match="alpha cannot be 0 for CELU"):
        nbops.celu(x, 0.0, out=out)
    with pytest.raises(ValueError, match="alpha cannot be 0"):
        nbops.celu(x, alpha=0, inplace=True)
    with pytest.raises(ValueError, match="alpha cannot be 0"):
        nbops.celu_backward(x, x, 0.0)
    with pytest.raises(ValueError, match="alpha cannot be 0"):
        nbops.nn.CELU(0.0)(x)
    np.testing.assert_array_equal(out, 7.0)
    np.testing.assert_array_equal(x, [-1.0, 2.0])

    @njit
    def f(x, a):
        return nbops.celu(x, a)

    with pytest.raises(ValueError, match="alpha cannot be 0"):
        f(x, 0.0)
    # a negative alpha is accepted (PyTorch's formula)
    np.testing.assert_allclose(nbops.celu(np.array([-1.0]), -2.0), [-2.0 * math.expm1(0.5)])


@pytest.mark.parametrize("name,kw", [("celu", {"alpha": "a"}), ("hardshrink", {"lambd": "l"})])
def test_non_numeric_hyperparameter(name, kw):
    with pytest.raises((TypeError, ValueError), match=next(iter(kw))):
        getattr(nbops, name)(np.ones(3), **kw)


def test_conventions_at_the_kinks():
    """PyTorch autograd's conventions, written out (independent of torch)."""
    g = np.array([2.0])

    def at(name, x, *params):
        return getattr(nbops, f"{name}_backward")(g, np.array([x]), *params)[0]

    assert at("hardsigmoid", -3.0) == at("hardsigmoid", 3.0) == 0.0
    assert at("hardsigmoid", 0.0) == 2.0 * 0.1666666716337204  # PyTorch's float32 1/6
    assert at("hardsigmoid", NAN) == 0.0
    assert at("hardshrink", 0.5) == at("hardshrink", -0.5) == 0.0
    assert at("hardshrink", 0.5000001) == 2.0 and at("hardshrink", NAN) == 2.0
    selu_slope = 1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
    assert at("selu", 0.0) == pytest.approx(2.0 * selu_slope, rel=1e-15)
    assert at("selu", NAN) == pytest.approx(2.0 * 1.0507009873554804934193349852946)
    assert at("celu", 0.0, 0.5) == 2.0 and at("celu", NAN, 0.5) == 2.0
    assert at("celu", -INF, 0.5) == 0.0
    assert at("gelu", 0.0) == at("gelu", 0.0, "tanh") == 1.0
    assert at("mish", 0.0) == pytest.approx(1.2, rel=1e-15)
    assert at("tanhshrink", 0.0) == 0.0 and at("tanhshrink", INF) == 2.0
    for name, params in (("gelu", ()), ("gelu", ("tanh",)), ("mish", ())):
        assert np.isnan(at(name, INF, *params)) and np.isnan(at(name, -INF, *params))
    assert np.isnan(at("tanhshrink", NAN))
    # large finite inputs: the limits (no overflow inside)
    assert at("mish", 1e30) == 2.0 and at("mish", -1e30) == 0.0
    assert at("gelu", 1e30, "tanh") == 2.0 and at("gelu", -1e30, "tanh") == 0.0


def test_backward_float32_large_inputs():
    x = np.array([-1e30, -100.0, -30.0, 30.0, 100.0, 1e30], np.float32)
    g = np.ones_like(x)
    for name, params in (("gelu", ()), ("gelu", ("tanh",)), ("mish", ()), ("selu", ()),
                         ("celu", (1.0,)), ("tanhshrink", ())):
        got = getattr(nbops, f"{name}_backward")(g, x, *params)
        assert got.dtype == np.float32 and np.all(np.isfinite(got)), (name, params, got)
        np.testing.assert_allclose(got[x > 0][-2:], [1.0 if name != "selu" else
                                                     1.0507009873554804934193349852946] * 2,
                                   rtol=1e-6, err_msg=name)


def test_scalar_cores():
    assert scalar.gelu(1.0) == pytest.approx(0.5 * math.erfc(-1 / math.sqrt(2)), rel=1e-15)
    assert scalar.mish(1.0) == pytest.approx(math.tanh(math.log1p(math.e)), rel=1e-15)
    assert scalar.hardsigmoid(1.5) == 0.75
    assert scalar.celu(-1.0, 0.5) == pytest.approx(0.5 * math.expm1(-2.0), rel=1e-15)
    assert scalar.hardshrink(-0.25, 0.5) == 0.0 and scalar.tanhshrink(0.0) == 0.0
    for name in ("gelu", "gelu_tanh", "mish", "hardsigmoid", "selu", "celu", "hardshrink",
                 "tanhshrink"):
        assert name in scalar.__all__ and f"{name}_backward" in scalar.__all__


def test_modules():
    nn = nbops.nn
    assert repr(nn.GELU()) == "GELU(approximate='none')"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Mish(inplace=True)) == "Mish(inplace=True)" and repr(nn.Mish()) == "Mish()"
    assert repr(nn.Hardsigmoid(True)) == "Hardsigmoid()"
    assert repr(nn.SELU(True)) == "SELU(inplace=True)"
    assert repr(nn.CELU(2.0, True)) == "CELU(alpha=2.0, inplace=True)"
    assert repr(nn.Hardshrink(0.25)) == "Hardshrink(0.25)" and repr(nn.Tanhshrink()) == \
        "Tanhshrink()"
    x = np.array([-1.0, 0.5], np.float32)
    y = nn.CELU(0.5, inplace=True)(x)
    assert y is x and y.dtype == np.float32
    np.testing.assert_allclose(y, [0.5 * math.expm1(-2.0), 0.5], rtol=1e-6)


def test_torch_hardsigmoid_backward_bits():
    """float64: PyTorch's 1/6 rounded to float32, bit for bit."""
    torch = pytest.importorskip("torch")
    x = np.linspace(-2.9, 2.9, 11)
    g = np.linspace(-1, 1, 11)
    want = torch.ops.aten.hardsigmoid_backward(torch.from_numpy(g), torch.from_numpy(x))
    np.testing.assert_array_equal(nbops.hardsigmoid_backward(g, x), want.numpy())
