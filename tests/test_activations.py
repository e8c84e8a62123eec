"""Tests of the 13 elementwise activations of nbops (functional API, NumPy arrays).

Every expected value comes from the independent float64 formulas in
``_reference.py`` or from PyTorch (``torch.nn.functional``), never from nbops.
"""

import inspect
import warnings

import _reference as R
import numpy as np
import pytest

import nbops
from nbops._ops import table

ENTRIES = {e.name: e for e in table.elementwise_entries()}
OPS = tuple(ENTRIES)
INPLACE_OPS = tuple(n for n, e in ENTRIES.items() if e.inplace)
# the non-default parameter set of each op (prelu's weight is handled separately)
NONDEFAULT = {n: ({} if n == "prelu" else e.example_params()) for n, e in ENTRIES.items()}
# the values of required arguments (threshold's) when a test uses the defaults
REQUIRED = {n: {p.name: p.example for p in e.params if p.required}
            for n, e in ENTRIES.items() if n != "prelu"}
HYPER_OPS = tuple(n for n in OPS if NONDEFAULT[n] or n == "prelu")
FLOATS = (np.float32, np.float64)

# The sets the tests used before they were read from the table: unchanged.
PREVIOUS_NONDEFAULT = {
    "elu": {"alpha": 1.5},
    "leaky_relu": {"negative_slope": 0.125},
    "threshold": {"threshold": 0.5, "value": -2.0},
    "hardtanh": {"min_val": -0.5, "max_val": 2.0},
    "softplus": {"beta": 2.0, "threshold": 10.0},
    "softshrink": {"lambd": 1.25},
}


def test_table_parameter_sets():
    for name, params in PREVIOUS_NONDEFAULT.items():
        assert NONDEFAULT[name] == params, name
    assert REQUIRED["threshold"] == {"threshold": 0.5, "value": -2.0}
    for name, kw in NONDEFAULT.items():  # exactly representable in float32
        assert all(np.float32(v) == v for v in kw.values() if not isinstance(v, str)), (name, kw)


@pytest.mark.parametrize("name", OPS)
def test_every_op_has_a_reference(name):
    assert callable(R.reference(name))


# --------------------------------------------------------------------------- #
# helpers
# --------------------------------------------------------------------------- #


def _weight(dtype, values=(R.PRELU_WEIGHT,)):
    return np.asarray(values, dtype=dtype)


def call(name, x, hyper=None, weight=None, **extra):
    """Call nbops.<name>(x, ...) with ``hyper`` as keywords (threshold's required
    arguments and prelu's weight filled in when not given)."""
    f = getattr(nbops, name)
    hyper = dict(hyper or {})
    if name == "prelu":
        if weight is None:
            dt = np.asarray(x).dtype
            rd = R.result_dtype(dt) if dt.kind in "biuf" else np.dtype(np.float64)
            weight = _weight(rd)
        return f(x, weight, **extra)
    if not hyper:
        hyper = dict(REQUIRED[name])
    return f(x, **hyper, **extra)


def expect(name, x, hyper=None, weight=None, out_dtype=None):
    kw = dict(hyper or REQUIRED.get(name, {}))
    if weight is not None:
        kw["weight"] = weight
    return R.expected(name, x, out_dtype=out_dtype, **kw)


def check(name, got, x, hyper=None, weight=None, out_dtype=None, what=""):
    """Compare ``got`` with the reference for input ``x`` (the original values)."""
    exp = expect(name, x, hyper, weight, out_dtype)
    assert isinstance(got, np.ndarray), f"{name}: returned {type(got)}, expected ndarray"
    R.assert_matches(got, exp, what=f"{name} {what}", **R.tolerances(name, exp.dtype))


def call_no_warnings(name, x, **kw):
    """Call the op with RuntimeWarning (overflow / invalid / divide) turned into errors."""
    with warnings.catch_warnings():
        # NumPy's floating-point RuntimeWarnings (overflow, invalid value, divide by
        # zero, underflow) become errors; unrelated warnings are left alone.
        warnings.filterwarnings(
            "error", category=RuntimeWarning,
            message=r".*(overflow|invalid value|divide by zero|underflow).*")
        with np.errstate(all="warn"):
            return call(name, x, **kw)


def mixed_data(dtype, n=257, seed=0):
    """Random values of every sign and magnitude, plus all special values."""
    return np.concatenate([R.random_data(n, dtype, seed=seed), R.special_values(dtype)])


# --------------------------------------------------------------------------- #
# signatures
# --------------------------------------------------------------------------- #

SIGNATURES = {
    "relu": [("input", None), ("inplace", False)],
    "relu6": [("input", None), ("inplace", False)],
    "elu": [("input", None), ("alpha", 1.0), ("inplace", False)],
    "prelu": [("input", None), ("weight", None)],
    "leaky_relu": [("input", None), ("negative_slope", 0.01), ("inplace", False)],
    "threshold": [("input", None), ("threshold", None), ("value", None), ("inplace", False)],
    "hardtanh": [("input", None), ("min_val", -1.0), ("max_val", 1.0), ("inplace", False)],
    "sigmoid": [("input", None)],
    "tanh": [("input", None)],
    "logsigmoid": [("input", None)],
    "softplus": [("input", None), ("beta", 1.0), ("threshold", 20.0)],
    "softshrink": [("input", None), ("lambd", 0.5)],
    "softsign": [("input", None)],
}


def _table_signature(name):
    """The signature the table declares: [(name, default or None if required)]."""
    e = ENTRIES[name]
    sig = [("input", None)] + [(p.name, None if p.required else p.default) for p in e.params]
    return sig + ([("inplace", False)] if e.inplace else [])


def _torch_signature(name):
    """torch.nn.functional.<name>'s, where it is a Python function (else None)."""
    torch = pytest.importorskip("torch")
    try:
        sig = inspect.signature(getattr(torch.nn.functional, name))
    except (TypeError, ValueError):  # a builtin (softplus, softshrink, logsigmoid)
        return None
    return [(p.name, None if p.default is p.empty else p.default)
            for p in sig.parameters.values()]


@pytest.mark.parametrize("name", OPS)
def test_signature(name):
    f = getattr(nbops, name)
    assert callable(f)
    sig = inspect.signature(f)
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    expected = SIGNATURES.get(name, _table_signature(name))
    assert _table_signature(name) == expected
    assert [p.name for p in positional] == [n for n, _ in expected]
    for p, (pname, default) in zip(positional, expected, strict=True):
        if default is None:
            assert p.default is p.empty, f"{pname} should be required"
        else:
            assert p.default == default, f"{pname} default {p.default!r} != {default!r}"
    assert "out" in sig.parameters
    out = sig.parameters["out"]
    assert out.kind == out.KEYWORD_ONLY and out.default is None


@pytest.mark.parametrize("name", OPS)
def test_signature_is_torchs(name):
    torch_sig = _torch_signature(name)
    if torch_sig is not None:
        assert _table_signature(name) == torch_sig


# --------------------------------------------------------------------------- #
# values vs the float64 reference
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", OPS)
def test_values_default(name, dtype):
    x = mixed_data(dtype)
    x0 = x.copy()
    got = call_no_warnings(name, x)
    np.testing.assert_array_equal(x, x0, err_msg="input was modified")
    assert got.dtype == dtype
    assert not np.shares_memory(got, x), "result must be a new array"
    check(name, got, x0)


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", HYPER_OPS)
def test_values_hyper_keywords(name, dtype):
    x = mixed_data(dtype, seed=1)
    x0 = x.copy()
    if name == "prelu":
        w = _weight(dtype, (-1.5,))
        got = nbops.prelu(x, weight=w)
        check(name, got, x0, weight=w)
        return
    hyper = NONDEFAULT[name]
    got = call_no_warnings(name, x, hyper=hyper)
    np.testing.assert_array_equal(x, x0)
    assert got.dtype == dtype
    check(name, got, x0, hyper=hyper)


# the non-default parameters passed by position
POSITIONAL = {n: tuple(kw.values()) for n, kw in NONDEFAULT.items() if kw}


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", sorted(POSITIONAL))
def test_values_hyper_positional(name, dtype):
    x = mixed_data(dtype, seed=2)
    got = getattr(nbops, name)(x, *POSITIONAL[name])
    assert got.dtype == dtype
    check(name, got, x, hyper=NONDEFAULT[name])


# Python ints (and NumPy float64 scalars) as hyperparameters keep float32 float32.
INT_HYPER = [
    ("elu", (2,), {"alpha": 2.0}),
    ("leaky_relu", (2,), {"negative_slope": 2.0}),
    ("leaky_relu", (0,), {"negative_slope": 0.0}),
    ("threshold", (0, -1), {"threshold": 0.0, "value": -1.0}),
    ("threshold", (1, 7), {"threshold": 1.0, "value": 7.0}),
    ("hardtanh", (-2, 3), {"min_val": -2.0, "max_val": 3.0}),
    ("softplus", (2, 10), {"beta": 2.0, "threshold": 10.0}),
    ("softplus", (1, 5), {"beta": 1.0, "threshold": 5.0}),
    ("softshrink", (1,), {"lambd": 1.0}),
    ("softshrink", (0,), {"lambd": 0.0}),
    ("elu", (np.float64(1.5),), {"alpha": 1.5}),
    ("hardtanh", (np.float64(-0.5), np.float64(2.0)), {"min_val": -0.5, "max_val": 2.0}),
]


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name,args,hyper", INT_HYPER, ids=lambda v: str(v))
def test_hyper_python_ints(name, args, hyper, dtype):
    x = mixed_data(dtype, seed=3)
    got = getattr(nbops, name)(x, *args)
    assert got.dtype == dtype, f"{name}{args} on {np.dtype(dtype)} gave {got.dtype}"
    check(name, got, x, hyper=hyper)
    # same thing by keyword
    kw = dict(zip(list(hyper), args, strict=True))
    got_kw = getattr(nbops, name)(input=x, **kw)
    assert got_kw.dtype == dtype
    check(name, got_kw, x, hyper=hyper)


def test_elu_int_alpha_stays_float32():
    x = np.array([-1.0, 0.5, -3.0], dtype=np.float32)
    y = nbops.elu(x, 2)
    assert y.dtype == np.float32
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(y, 2 * np.expm1(np.minimum(x64, 0)) + np.maximum(x64, 0), rtol=4e-6)


@pytest.mark.parametrize("name", OPS)
def test_input_keyword(name):
    x = R.random_data(20, np.float64, seed=4)
    f = getattr(nbops, name)
    if name == "prelu":
        got = f(input=x, weight=_weight(np.float64))
    elif name == "threshold":
        got = f(input=x, threshold=0.5, value=-2.0)
    else:
        got = f(input=x)
    check(name, got, x)


def test_specific_semantics():
    """Hand-checked values of the subtle cases."""
    nan, inf = np.nan, np.inf
    # threshold is strict: x == threshold -> value
    x = np.array([0.5, 0.5000001, 0.4999999, -inf, inf, nan])
    y = nbops.threshold(x, 0.5, -2.0)
    np.testing.assert_array_equal(y, [-2.0, 0.5000001, -2.0, -2.0, inf, nan])
    # softshrink boundaries
    x = np.array([0.5, -0.5, 0.75, -0.75, 0.0, 0.25, nan, inf, -inf])
    y = nbops.softshrink(x)
    np.testing.assert_array_equal(y, [0.0, 0.0, 0.25, -0.25, 0.0, 0.0, nan, inf, -inf])
    # hardtanh / relu6 / relu propagate NaN
    assert np.isnan(nbops.hardtanh(np.array([nan]))[0])
    assert np.isnan(nbops.relu6(np.array([nan]))[0])
    assert np.isnan(nbops.relu(np.array([nan]))[0])
    for name in ("elu", "leaky_relu", "prelu", "sigmoid", "tanh", "logsigmoid", "softplus",
                 "softsign"):
        assert np.isnan(call(name, np.array([nan]))[0]), name
    # softplus reverts to the identity above threshold (beta * x > threshold)
    x = np.array([20.5, 30.0, 1e4, inf])
    np.testing.assert_array_equal(nbops.softplus(x), x)
    np.testing.assert_array_equal(nbops.softplus(np.array([10.5]), 2.0, 20.0), [10.5])
    # softplus with beta: log1p(exp(beta x)) / beta below threshold
    np.testing.assert_allclose(nbops.softplus(np.array([1.0]), 2.0), [np.log1p(np.exp(2.0)) / 2.0],
                               rtol=1e-14)
    # logsigmoid / sigmoid exact points
    np.testing.assert_allclose(nbops.logsigmoid(np.array([0.0])), [-np.log(2.0)], rtol=1e-15)
    np.testing.assert_array_equal(nbops.sigmoid(np.array([0.0, inf, -inf])), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(nbops.logsigmoid(np.array([inf, -inf])), [0.0, -inf])
    # relu6 / hardtanh clip
    np.testing.assert_array_equal(nbops.relu6(np.array([-1.0, 3.0, 7.0, inf, -inf])),
                                  [0.0, 3.0, 6.0, 6.0, 0.0])
    np.testing.assert_array_equal(nbops.hardtanh(np.array([-2.0, 0.3, 2.0])), [-1.0, 0.3, 1.0])
    # elu(-inf) = -alpha; softsign(+-inf) is NaN as in PyTorch (inf / inf)
    np.testing.assert_array_equal(nbops.elu(np.array([-inf]), 2.0), [-2.0])
    assert np.isnan(nbops.softsign(np.array([inf, -inf]))).all()


def test_hardtanh_equal_bounds():
    x = np.array([-3.0, 0.0, 0.5, 3.0, np.nan])
    y = nbops.hardtanh(x, 0.5, 0.5)
    np.testing.assert_array_equal(y, [0.5, 0.5, 0.5, 0.5, np.nan])


# --------------------------------------------------------------------------- #
# shapes and layouts
# --------------------------------------------------------------------------- #


def _shape_cases(dtype):
    base3 = R.random_data((4, 6, 5), dtype, seed=7)
    base2 = R.random_data((6, 9), dtype, seed=8)
    return {
        "0d": np.asarray(R.random_data((), dtype, seed=5)).reshape(()),
        "empty": np.zeros((0,), dtype=dtype),
        "empty3d": np.zeros((3, 0, 2), dtype=dtype),
        "1d": R.random_data((11,), dtype, seed=9),
        "2d": R.random_data((3, 4), dtype, seed=10),
        "3d": R.random_data((2, 3, 4), dtype, seed=11),
        "4d": R.random_data((2, 3, 2, 3), dtype, seed=12),
        "5d": R.random_data((2, 2, 3, 2, 2), dtype, seed=13),
        "fortran3d": np.asfortranarray(base3),
        "strided1d": R.random_data((23,), dtype, seed=14)[::2],
        "negstride1d": R.random_data((13,), dtype, seed=15)[::-1],
        "transposed2d": base2.T,
        "sliced3d": base3[:, ::2, ::-1],
        "negstride2d": base2[::-2, 1::3],
    }


SHAPE_IDS = list(_shape_cases(np.float32))


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("case", SHAPE_IDS)
@pytest.mark.parametrize("name", OPS)
def test_shapes_and_layouts(name, case, dtype):
    x = _shape_cases(dtype)[case]
    x0 = x.copy()
    got = call(name, x)
    assert isinstance(got, np.ndarray)
    assert got.shape == x.shape
    assert got.dtype == dtype
    np.testing.assert_array_equal(x, x0, err_msg="input was modified")
    if x.size:
        assert not np.shares_memory(got, x)
    check(name, got, x0, what=case)


@pytest.mark.parametrize("name", OPS)
def test_python_scalar_and_0d(name):
    for v in (-1.5, 0.75, 3, -2, 0):
        got = call(name, v)
        assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == np.float64, (v, got)
        check(name, got, np.float64(v))
    got = call(name, np.float32(-1.5))
    assert isinstance(got, np.ndarray) and got.shape == () and got.dtype == np.float32
    check(name, got, np.array(-1.5, dtype=np.float32))
    x = np.array(0.625, dtype=np.float32)
    got = call(name, x)
    assert got.shape == () and got.dtype == np.float32
    check(name, got, x)


@pytest.mark.parametrize("name", OPS)
def test_list_input(name):
    lst = [-3.0, -0.25, 0.0, 0.75, 8.0]
    got = call(name, lst)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == (5,)
    check(name, got, np.array(lst))


# --------------------------------------------------------------------------- #
# extremes
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", OPS)
def test_extremes(name, dtype):
    x = R.special_values(dtype)
    got = call_no_warnings(name, x)
    assert got.dtype == dtype
    check(name, got, x, what="extremes")
    # 2-d, reversed layout of the same values
    x2 = np.concatenate([x, x[::-1]]).reshape(2, -1).T
    got2 = call_no_warnings(name, x2)
    check(name, got2, x2, what="extremes 2d view")


@pytest.mark.parametrize("name", HYPER_OPS)
def test_extremes_hyper(name):
    x = R.special_values(np.float32)
    if name == "prelu":
        w = _weight(np.float32, (3.0,))  # -fmax * 3 overflows to -inf in float32
        got = nbops.prelu(x, w)
        assert got.dtype == np.float32
        check(name, got, x, weight=w)
        return
    hyper = NONDEFAULT[name]
    got = call_no_warnings(name, x, hyper=hyper)
    assert got.dtype == np.float32
    check(name, got, x, hyper=hyper)


STABLE_POINTS = {
    np.float32: [1e4, -1e4, 88.0, -88.0, 89.0, -89.0, 100.0, -100.0, 104.0, -104.0, 3e38, -3e38],
    np.float64: [1000.0, -1000.0, 709.0, -709.0, 710.0, -710.0, 745.0, -745.0, 800.0, -800.0,
                 1e300, -1e300],
}


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", ["logsigmoid", "softplus", "sigmoid", "tanh", "elu", "softsign"])
def test_stable_at_large_magnitude(name, dtype):
    x = np.array(STABLE_POINTS[dtype], dtype=dtype)
    got = call_no_warnings(name, x)
    assert got.dtype == dtype
    assert np.all(np.isfinite(got)), f"{name} overflowed: {got}"
    check(name, got, x, what="large |x|")
    if name == "logsigmoid":
        # logsigmoid(x) ~ x for x -> -inf, ~ 0 for x -> +inf
        neg = x < 0
        np.testing.assert_allclose(got[neg], x[neg], rtol=1e-6)
        assert np.all(got[~neg] <= 0) and np.all(got[~neg] > -1e-30)
    if name == "softplus":
        pos = x > 0
        np.testing.assert_array_equal(got[pos], x[pos])
        assert np.all(got[~pos] >= 0) and np.all(got[~pos] < 1e-30)


@pytest.mark.parametrize("name", OPS)
def test_subnormals_and_signed_zero(name):
    for dtype in FLOATS:
        sub = np.nextafter(dtype(0), dtype(1))
        x = np.array([sub, -sub, 4 * sub, -4 * sub, 0.0, -0.0, np.finfo(dtype).tiny], dtype=dtype)
        got = call_no_warnings(name, x)
        assert got.dtype == dtype
        check(name, got, x, what="subnormal")
    # the exact ops keep subnormals exactly where the result is the input
    if name in ("relu", "relu6", "hardtanh", "leaky_relu", "elu", "prelu"):
        x = np.array([np.nextafter(np.float32(0), np.float32(1)) * 3], dtype=np.float32)
        np.testing.assert_array_equal(call(name, x), x)


# --------------------------------------------------------------------------- #
# large arrays (parallel path)
# --------------------------------------------------------------------------- #

LARGE_N = 300_000


def _large(dtype, seed=21):
    x = R.random_data(LARGE_N, dtype, seed=seed)
    sp = R.special_values(dtype)
    x[:: LARGE_N // len(sp)][: len(sp)] = sp  # specials spread through the array
    x[-len(sp):] = sp
    return x


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", OPS)
def test_large_array(name, dtype):
    x = _large(dtype)
    x0 = x.copy()
    got = call_no_warnings(name, x)
    assert got.dtype == dtype and got.shape == x.shape
    np.testing.assert_array_equal(x, x0)
    check(name, got, x0, what="large")


@pytest.mark.parametrize("name", OPS)
def test_large_array_strided_2d(name):
    base = _large(np.float32, seed=22).reshape(600, 500)
    x = base.T[::-1]  # (500, 600), non-contiguous, negative stride
    got = call(name, x)
    assert got.shape == x.shape and got.dtype == np.float32
    check(name, got, x, what="large strided")


@pytest.mark.parametrize("name", OPS)
def test_large_out(name):
    x = _large(np.float64, seed=23)
    out = np.full_like(x, 12345.0)
    res = call(name, x, out=out)
    assert res is out
    check(name, out, x, what="large out=")


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", INPLACE_OPS)
def test_large_inplace(name, dtype):
    x = _large(dtype, seed=24)
    x0 = x.copy()
    res = call(name, x, inplace=True)
    assert res is x
    check(name, x, x0, what="large inplace")


# --------------------------------------------------------------------------- #
# out=
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", OPS)
def test_out(name, dtype):
    x = R.random_data((3, 5), dtype, seed=30)
    x0 = x.copy()
    out = np.full((3, 5), 99.0, dtype=dtype)
    res = call(name, x, out=out)
    assert res is out
    np.testing.assert_array_equal(x, x0)
    check(name, out, x0, what="out=")


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", OPS)
def test_out_aliases_input(name, dtype):
    x = mixed_data(dtype, n=64, seed=31)
    x0 = x.copy()
    res = call(name, x, out=x)
    assert res is x
    check(name, x, x0, what="out=x")


@pytest.mark.parametrize("name", OPS)
def test_out_noncontiguous(name):
    x = R.random_data((4, 6), np.float64, seed=32)
    buf = np.full((4, 12), 7.0)
    out = buf[:, ::2]
    res = call(name, x, out=out)
    assert res is out
    check(name, out, x, what="strided out")
    np.testing.assert_array_equal(buf[:, 1::2], 7.0, err_msg="wrote outside out")
    # out in Fortran order, input transposed view
    out_f = np.empty((6, 4), order="F")
    res = call(name, x.T, out=out_f)
    assert res is out_f
    check(name, out_f, x.T, what="fortran out")


@pytest.mark.parametrize("name", OPS)
def test_out_other_memory_order(name):
    x = R.random_data((5, 7), np.float32, seed=37)  # C order
    out = np.empty((5, 7), dtype=np.float32, order="F")
    assert call(name, x, out=out) is out
    check(name, out, x, what="C input, F out")
    out2 = np.empty((7, 5), dtype=np.float32)  # C out, F-ordered (transposed) input
    assert call(name, x.T, out=out2) is out2
    check(name, out2, x.T, what="F input, C out")


@pytest.mark.parametrize("name", OPS)
def test_out_aliases_input_views(name):
    # out=x for a Fortran-ordered and for a strided input
    f = np.asfortranarray(R.random_data((4, 6), np.float64, seed=38))
    f0 = f.copy()
    assert call(name, f, out=f) is f
    check(name, f, f0, what="out=x fortran")
    buf = R.random_data((20,), np.float32, seed=39)
    b0 = buf.copy()
    v = buf[::-2]
    assert call(name, v, out=v) is v
    check(name, buf[::-2], b0[::-2], what="out=x strided")
    np.testing.assert_array_equal(buf[-2::-2], b0[-2::-2], err_msg="wrote outside out")


@pytest.mark.parametrize("shift", [1, -1, "reversed"])
@pytest.mark.parametrize("name", OPS)
def test_out_partially_overlaps_input(name, shift):
    """out overlapping the input at an offset: the result is that of the original
    input values (as NumPy ufuncs guarantee)."""
    buf = R.random_data((41,), np.float64, seed=40)
    if shift == 1:
        x, out = buf[:-1], buf[1:]
    elif shift == -1:
        x, out = buf[1:], buf[:-1]
    else:
        x, out = buf, buf[::-1]
    x0 = x.copy()
    assert call(name, x, out=out) is out
    check(name, out, x0, what=f"overlap {shift}")


@pytest.mark.parametrize("name", OPS)
def test_broadcast_view_input(name):
    x = np.broadcast_to(np.array([-1.5, 0.25, 3.0]), (4, 3))  # zero strides, read-only
    got = call(name, x)
    assert got.shape == (4, 3) and got.dtype == np.float64
    check(name, got, np.ascontiguousarray(x))


@pytest.mark.parametrize("name", OPS)
def test_byteswapped_input(name):
    x = mixed_data(np.float64, n=20, seed=41)
    xs = x.astype(">f8") if x.dtype.byteorder in "=<" else x.astype("<f8")
    got = call(name, xs)
    assert got.dtype == np.float64
    check(name, got, x, what="non-native byte order")


@pytest.mark.parametrize("name", OPS)
def test_out_0d(name):
    x = np.array(-0.75)
    out = np.array(5.0)
    res = call(name, x, out=out)
    assert res is out
    check(name, out, x)


@pytest.mark.parametrize("name", OPS)
def test_out_promoted_dtype(name):
    x = np.arange(-4, 5, dtype=np.int32)
    out = np.empty(9, dtype=np.float64)
    res = call(name, x, out=out)
    assert res is out
    check(name, out, x, out_dtype=np.float64)
    with pytest.raises(TypeError, match="out"):
        call(name, x, out=np.empty(9, dtype=np.float32))


@pytest.mark.parametrize("name", OPS)
def test_out_wrong_shape(name):
    x = R.random_data((4,), np.float64, seed=33)
    x0 = x.copy()
    for shape in [(5,), (1, 4), (4, 1), (), (2, 2)]:
        out = np.full(shape, 3.0)
        with pytest.raises(ValueError, match="out"):
            call(name, x, out=out)
        np.testing.assert_array_equal(out, 3.0)
    np.testing.assert_array_equal(x, x0)
    # 0-d input needs a 0-d out: a 1-element 1-d out is the wrong shape
    with pytest.raises(ValueError, match="out"):
        call(name, np.array(1.0), out=np.empty(1))


@pytest.mark.parametrize("name", OPS)
def test_out_wrong_dtype(name):
    x64 = R.random_data((4,), np.float64, seed=34)
    x32 = x64.astype(np.float32)
    for x, bad in [(x64, np.float32), (x32, np.float64), (x64, np.int64), (x32, np.float16),
                   (x64, np.complex128)]:
        out = np.zeros(4, dtype=bad)
        with pytest.raises(TypeError, match="out"):
            call(name, x, out=out)
        np.testing.assert_array_equal(out, 0)


@pytest.mark.parametrize("name", OPS)
def test_out_readonly(name):
    x = R.random_data((5,), np.float64, seed=35)
    out = np.zeros(5)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="out"):
        call(name, x, out=out)
    np.testing.assert_array_equal(out, 0.0)


@pytest.mark.parametrize("name", OPS)
def test_readonly_input_ok_without_inplace(name):
    x = R.random_data((6,), np.float32, seed=36)
    x.setflags(write=False)
    got = call(name, x)
    check(name, got, x)
    # read-only input and a separate out are fine too
    out = np.empty(6, dtype=np.float32)
    assert call(name, x, out=out) is out
    check(name, out, x)


# --------------------------------------------------------------------------- #
# inplace=
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", INPLACE_OPS)
def test_inplace(name, dtype):
    x = mixed_data(dtype, n=50, seed=40)
    x0 = x.copy()
    res = call(name, x, inplace=True)
    assert res is x
    check(name, x, x0, what="inplace")
    # with non-default hyperparameters, passed positionally before inplace
    y = x0.copy()
    args = POSITIONAL.get(name, ())
    res = getattr(nbops, name)(y, *args, True)
    assert res is y
    check(name, y, x0, hyper=NONDEFAULT[name], what="inplace positional")


@pytest.mark.parametrize("name", INPLACE_OPS)
def test_inplace_false_does_not_modify(name):
    x = mixed_data(np.float32, n=20, seed=41)
    x0 = x.copy()
    res = call(name, x, inplace=False)
    assert res is not x
    np.testing.assert_array_equal(x, x0)
    check(name, res, x0)


@pytest.mark.parametrize("name", INPLACE_OPS)
def test_inplace_views(name):
    base = R.random_data((6, 8), np.float64, seed=42)
    b0 = base.copy()
    view = base[::-2, 1::3]  # negative stride, non-contiguous
    v0 = view.copy()
    res = call(name, view, inplace=True)
    assert res is view
    check(name, base[::-2, 1::3], v0, what="inplace view")
    mask = np.ones(base.shape, bool)
    mask[::-2, 1::3] = False
    np.testing.assert_array_equal(base[mask], b0[mask], err_msg="wrote outside the view")
    # Fortran-ordered and transposed
    f = np.asfortranarray(R.random_data((3, 4, 5), np.float32, seed=43))
    f0 = f.copy()
    assert call(name, f, inplace=True) is f
    check(name, f, f0, what="inplace fortran")
    t = R.random_data((4, 5), np.float32, seed=44).T
    t0 = t.copy()
    assert call(name, t, inplace=True) is t
    check(name, t, t0, what="inplace transposed")
    # 0-d
    z = np.array(-3.5)
    assert call(name, z, inplace=True) is z
    check(name, z, np.array(-3.5))


@pytest.mark.parametrize("name", INPLACE_OPS)
def test_inplace_readonly(name):
    x = R.random_data((7,), np.float64, seed=45)
    x0 = x.copy()
    x.setflags(write=False)
    with pytest.raises(ValueError, match="input"):
        call(name, x, inplace=True)
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("name", INPLACE_OPS)
def test_inplace_wrong_dtype(name):
    for dt in (np.int32, np.int64, np.int16, np.bool_):
        x = np.array([-2, 0, 1, 3], dtype=dt)
        x0 = x.copy()
        with pytest.raises(TypeError):
            call(name, x, inplace=True)
        np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("name", INPLACE_OPS)
def test_inplace_float16(name):
    x = np.array([-3.0, -0.5, 0.0, 0.25, 2.0, 9.0], dtype=np.float16)
    x0 = x.copy()
    res = call(name, x, inplace=True)
    assert res is x and x.dtype == np.float16
    check(name, x, x0)


# --------------------------------------------------------------------------- #
# dtypes
# --------------------------------------------------------------------------- #

PROMOTIONS = [
    (np.int32, np.float64),
    (np.int64, np.float64),
    (np.uint32, np.float64),
    (np.uint64, np.float64),
    (np.int16, np.float32),
    (np.uint16, np.float32),
    (np.int8, np.float16),
    (np.uint8, np.float16),
    (np.bool_, np.float16),
    (np.float16, np.float16),
]


def _int_data(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.array([True, False, True, True, False])
    if dtype.kind == "u":
        return np.array([0, 1, 2, 3, 7, 10], dtype=dtype)
    if dtype.kind == "f":
        return np.array([-9.0, -3.0, -1.25, -0.5, 0.0, 0.375, 1.5, 4.0, 7.0, 30.0, np.inf, -np.inf,
                         np.nan], dtype=dtype)
    return np.array([-9, -3, -1, 0, 1, 2, 4, 7, 30], dtype=dtype)


def test_promotion_rule_matches_np_exp():
    for src, dst in PROMOTIONS:
        assert R.result_dtype(src) == dst, src


@pytest.mark.parametrize("src,dst", PROMOTIONS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", OPS)
def test_dtype_promotion(name, src, dst):
    x = _int_data(src)
    x0 = x.copy()
    got = call(name, x)
    assert got.dtype == dst, f"{name}: {np.dtype(src)} -> {got.dtype}, expected {np.dtype(dst)}"
    np.testing.assert_array_equal(x, x0)
    check(name, got, x0, out_dtype=dst)


_F32_PATHS = [(n, p) for n in OPS
              for p in ("plain", "out", "inplace", "strided", "fortran", "0d", "large", "int_hyper")
              if not (p == "inplace" and n not in INPLACE_OPS)
              and not (p == "int_hyper" and (n not in POSITIONAL  # numbers among them
                                             or all(isinstance(v, str) for v in POSITIONAL[n])))]


@pytest.mark.parametrize("name,path", _F32_PATHS)
def test_float32_stays_float32(name, path):
    x = R.random_data((4, 5), np.float32, seed=50)
    if path == "plain":
        got = call(name, x)
    elif path == "out":
        got = call(name, x, out=np.empty_like(x))
    elif path == "inplace":
        got = call(name, x, inplace=True)
    elif path == "strided":
        got = call(name, x[:, ::-2])
    elif path == "fortran":
        got = call(name, np.asfortranarray(x))
    elif path == "0d":
        got = call(name, np.float32(0.5))
    elif path == "large":
        got = call(name, _large(np.float32))
    else:
        ints = {"elu": (2,), "leaky_relu": (1,), "threshold": (0, 1), "hardtanh": (-2, 2),
                "softplus": (2, 10), "softshrink": (1,), "celu": (2,), "hardshrink": (1,)}
        got = getattr(nbops, name)(x, *ints[name])
    assert got.dtype == np.float32


@pytest.mark.parametrize("name", OPS)
def test_complex_raises(name):
    for x in (np.array([1 + 1j, -2j]), np.array([1 + 0j], dtype=np.complex64), 1 + 2j):
        with pytest.raises(TypeError):
            call(name, x)


@pytest.mark.parametrize("name", OPS)
def test_non_numeric_raises(name):
    for x in (np.array(["a", "b"]), np.array([1.0, None], dtype=object), "abc",
              np.array([b"x"]), np.array([object()], dtype=object)):
        with pytest.raises(TypeError, match="input"):
            call(name, x)


# --------------------------------------------------------------------------- #
# bad hyperparameters
# --------------------------------------------------------------------------- #


def test_hardtanh_min_gt_max():
    x = R.random_data((5,), np.float64, seed=60)
    x0 = x.copy()
    with pytest.raises(ValueError, match="min_val"):
        nbops.hardtanh(x, 1.0, -1.0)
    with pytest.raises(ValueError, match="min_val"):
        nbops.hardtanh(x, min_val=2, max_val=1)
    with pytest.raises(ValueError, match="min_val"):
        nbops.hardtanh(x, 1.0, -1.0, inplace=True)
    out = np.full(5, 4.0)
    with pytest.raises(ValueError, match="min_val"):
        nbops.hardtanh(x, 1.0, -1.0, out=out)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(out, 4.0)


def test_softshrink_negative_lambd():
    x = R.random_data((5,), np.float32, seed=61)
    x0 = x.copy()
    for lam in (-0.5, -1, -1e-30):
        with pytest.raises(ValueError, match="lambd"):
            nbops.softshrink(x, lam)
    with pytest.raises(ValueError, match="lambd"):
        nbops.softshrink(x, lambd=-2.0)
    out = np.full(5, 4.0, dtype=np.float32)
    with pytest.raises(ValueError, match="lambd"):
        nbops.softshrink(x, -1.0, out=out)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(out, 4.0)


def test_softshrink_nan_lambd():
    x = R.random_data((5,), np.float64, seed=63)
    with pytest.raises(ValueError, match="lambd"):
        nbops.softshrink(x, float("nan"))


@pytest.mark.parametrize("name,kw", [
    ("elu", {"alpha": "a"}),
    ("leaky_relu", {"negative_slope": "x"}),
    ("threshold", {"threshold": "t", "value": 0.0}),
    ("threshold", {"threshold": 0.0, "value": "v"}),
    ("hardtanh", {"min_val": "lo"}),
    ("hardtanh", {"max_val": "hi"}),
    ("softplus", {"beta": "b"}),
    ("softplus", {"threshold": "t"}),
    ("softshrink", {"lambd": "l"}),
], ids=lambda v: str(v))
def test_non_numeric_hyperparameter(name, kw):
    x = R.random_data((5,), np.float64, seed=64)
    x0 = x.copy()
    bad = next(k for k, v in kw.items() if isinstance(v, str))
    with pytest.raises((TypeError, ValueError), match=bad):
        getattr(nbops, name)(x, **kw)
    np.testing.assert_array_equal(x, x0)


def test_softshrink_zero_lambd_is_identity():
    x = mixed_data(np.float64, n=30, seed=62)
    got = nbops.softshrink(x, 0.0)
    np.testing.assert_array_equal(got, x)


# --------------------------------------------------------------------------- #
# prelu
# --------------------------------------------------------------------------- #

PRELU_SHAPES = [(5, 3), (2, 3, 7), (2, 3, 4, 5), (2, 3, 2, 3, 4)]


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("shape", PRELU_SHAPES, ids=str)
def test_prelu_channels(shape, dtype):
    x = R.random_data(shape, dtype, seed=70)
    w = np.array([0.25, -1.5, 3.0], dtype=dtype)
    x0, w0 = x.copy(), w.copy()
    got = nbops.prelu(x, w)
    assert got.dtype == dtype and got.shape == shape
    check("prelu", got, x0, weight=w0)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)
    # single weight on the same input
    w1 = np.array([-0.5], dtype=dtype)
    check("prelu", nbops.prelu(x, w1), x0, weight=w1)


@pytest.mark.parametrize("layout", ["fortran", "transposed", "negstride"])
def test_prelu_channels_layouts(layout):
    base = R.random_data((4, 3, 5, 6), np.float64, seed=71)
    if layout == "fortran":
        x = np.asfortranarray(base)
    elif layout == "transposed":
        x = R.random_data((6, 5, 3, 4), np.float64, seed=71).T  # (4, 3, 5, 6)
    else:
        x = base[::-1, ::-1, :, ::-2]
    w = np.array([0.25, -1.5, 3.0])
    got = nbops.prelu(x, w)
    assert got.shape == x.shape
    check("prelu", got, x, weight=w)
    # weight itself a non-contiguous view
    wb = np.array([0.25, 9.0, -1.5, 9.0, 3.0])
    check("prelu", nbops.prelu(x, wb[::2]), x, weight=w)
    # weight as a list
    check("prelu", nbops.prelu(x, [0.25, -1.5, 3.0]), x, weight=w)


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_prelu_channels_large(dtype):
    x = R.random_data((160, 160, 3, 4), dtype, seed=72).T  # (4, 3, 160, 160) transposed view
    w = np.array([0.25, -1.5, 3.0], dtype=dtype)
    got = nbops.prelu(x, w)
    check("prelu", got, x, weight=w, what="large channels transposed")
    xc = np.ascontiguousarray(x)
    check("prelu", nbops.prelu(xc, w), xc, weight=w, what="large channels C")


@pytest.mark.parametrize("shape", [(300, 70), (40, 9, 5), (6, 7, 63), (6, 7, 64), (3, 5, 2, 50)],
                         ids=str)
def test_prelu_channel_runs(shape):
    """The kernel's two row loops (a batch row with the weights repeated per
    position for channel runs under 64, one channel run otherwise), on the
    parallel kernels where the size allows, against the float64 reference and
    PyTorch."""
    x = R.random_data(shape, np.float32, seed=76)
    x.reshape(-1)[::7] = -0.0
    w = np.linspace(-2.0, 3.0, shape[1]).astype(np.float32)
    got = nbops.prelu(x, w)
    assert got.dtype == np.float32
    check("prelu", got, x, weight=w)
    torch = pytest.importorskip("torch")
    expected = torch.nn.functional.prelu(torch.from_numpy(x), torch.from_numpy(w)).numpy()
    np.testing.assert_array_equal(got, expected)


def test_prelu_low_ndim():
    w = np.array([0.5])
    for x in (np.array(-3.0), np.array([-2.0, 1.0, -0.25]), -4.0):
        got = nbops.prelu(x, w)
        check("prelu", got, np.asarray(x, dtype=np.float64), weight=w)
    # weight of 1 element on a 2-d input with C = 1
    x = R.random_data((4, 1), np.float64, seed=73)
    check("prelu", nbops.prelu(x, w), x, weight=w)


def test_prelu_weight_dtype_does_not_upcast():
    x = R.random_data((2, 3, 4), np.float32, seed=74)
    w = np.array([0.25, -1.5, 3.0], dtype=np.float64)
    got = nbops.prelu(x, w)
    assert got.dtype == np.float32, "float32 input must give float32 whatever the weight dtype"
    check("prelu", got, x, weight=w.astype(np.float32))


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_prelu_out_and_alias(dtype):
    x = R.random_data((2, 3, 4), dtype, seed=75)
    x0 = x.copy()
    w = np.array([0.25, -1.5, 3.0], dtype=dtype)
    out = np.empty_like(x)
    assert nbops.prelu(x, w, out=out) is out
    check("prelu", out, x0, weight=w)
    assert nbops.prelu(x, w, out=x) is x
    check("prelu", x, x0, weight=w)


@pytest.mark.parametrize("src,dst", [(np.int32, np.float64), (np.int16, np.float32),
                                     (np.float16, np.float16), (np.uint8, np.float16)],
                         ids=lambda d: np.dtype(d).name)
def test_prelu_channels_promotion(src, dst):
    x = np.arange(-12, 12).reshape(2, 3, 4).astype(src)
    w = np.array([0.25, -1.5, 3.0])
    got = nbops.prelu(x, w)
    assert got.dtype == dst and got.shape == x.shape
    check("prelu", got, x, weight=w, out_dtype=dst)
    out = np.empty(x.shape, dtype=dst)
    assert nbops.prelu(x, w, out=out) is out
    check("prelu", out, x, weight=w, out_dtype=dst)


def test_prelu_bad_weight_type():
    x = R.random_data((2, 3, 4), np.float64, seed=77)
    with pytest.raises(TypeError):
        nbops.prelu(x, np.array([0.1 + 1j, 0.2, 0.3]))
    with pytest.raises(TypeError, match="weight"):
        nbops.prelu(x, np.array(["a", "b", "c"]))


def test_prelu_wrong_weight_size():
    x = R.random_data((2, 3, 4, 5), np.float64, seed=76)
    x0 = x.copy()
    for w in (np.array([0.1, 0.2]), np.array([0.1, 0.2, 0.3, 0.4]), np.zeros(0), np.ones(4)):
        with pytest.raises(ValueError, match="weight"):
            nbops.prelu(x, w)
    out = np.full_like(x, 8.0)
    with pytest.raises(ValueError, match="weight"):
        nbops.prelu(x, np.ones(2), out=out)
    np.testing.assert_array_equal(out, 8.0)
    np.testing.assert_array_equal(x, x0)
    # ndim < 2: no channel dimension, weight must have exactly one element
    with pytest.raises(ValueError, match="weight"):
        nbops.prelu(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="weight"):
        nbops.prelu(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="weight"):
        nbops.prelu(np.array(1.0), np.ones(2))


# --------------------------------------------------------------------------- #
# nbops.scalar cores, called from Python
# --------------------------------------------------------------------------- #

SCALAR_ARGS = {**{n: tuple(kw.values()) for n, kw in NONDEFAULT.items()}, "prelu": (-0.75,)}


def _scalar_ref(name, v):
    args = SCALAR_ARGS[name]
    if name == "prelu":
        return float(R.prelu(np.array([v]), np.array([args[0]]))[0])
    if args:
        return float(R.ref(name, np.array([v]), **NONDEFAULT[name])[0])
    return float(R.ref(name, np.array([v]))[0])


def _scalar_core(name, args):
    """The public scalar core of op ``name`` for its (non-default) arguments, and the
    arguments it takes: a ``choice`` parameter (gelu's ``approximate``) picks the core."""
    import nbops.scalar as S

    entry = ENTRIES[name]
    if entry.choice_ops is None:
        return getattr(S, name), args
    names = [p.name for p in entry.params]
    choice = args[names.index(entry.choice_param().name)]
    core = entry.choice_ops[choice].core
    assert core is getattr(S, core.__name__)  # public
    return core, tuple(a for n, a in zip(names, args, strict=True)
                       if n != entry.choice_param().name)


@pytest.mark.parametrize("name", OPS)
def test_scalar_cores_python(name):
    f, args = _scalar_core(name, SCALAR_ARGS[name])
    for v in list(R.special_values(np.float64)) + [0.3, -0.7, 1.7, -4.2, 12.0]:
        got = f(float(v), *args)
        exp = _scalar_ref(name, float(v))
        assert np.isscalar(got) or np.ndim(got) == 0
        got = float(got)
        if np.isnan(exp):
            assert np.isnan(got), (name, v, got)
        elif np.isinf(exp):
            assert got == exp, (name, v, got)
        else:
            tol = R.tolerances(name, np.float64)
            assert abs(got - exp) <= tol["atol"] + tol["rtol"] * abs(exp), (name, v, got, exp)


# --------------------------------------------------------------------------- #
# PyTorch parity
# --------------------------------------------------------------------------- #

TORCH_TOL = {np.float32: dict(rtol=1.3e-6, atol=1e-5), np.float64: dict(rtol=1e-7, atol=1e-7)}


def _torch_call(F, torch, name, t, hyper):
    if name == "prelu":
        return F.prelu(t, torch.from_numpy(hyper["weight"]))
    if name == "threshold":
        return F.threshold(t, hyper.get("threshold", 0.5), hyper.get("value", -2.0))
    if name in ("sigmoid", "tanh"):
        return getattr(torch, name)(t)
    return getattr(F, name)(t, **hyper)


def _torch_check(name, x, hyper, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    exp = _torch_call(F, torch, name, torch.from_numpy(x.copy()), hyper).numpy()
    assert exp.dtype == dtype
    if name == "prelu":
        got = nbops.prelu(x, hyper["weight"])
    else:
        h = dict(hyper or REQUIRED[name])
        got = getattr(nbops, name)(x, **h)
    quirk = _torch_quirks(name, x, hyper, dtype)
    if quirk.any():  # there the float64 reference decides (see _torch_quirks)
        check(name, got[quirk], x[quirk], hyper=hyper or None, what="where torch is off")
        got, exp = got[~quirk], exp[~quirk]
    R.assert_matches(got, exp, what=f"torch parity {name}", **TORCH_TOL[dtype])


def _torch_quirks(name, x, hyper, dtype):
    """Where PyTorch's CPU kernel is known to be off (nbops is compared with the float64
    reference there): float32 ``gelu`` (``approximate='none'``) gives NaN at +inf and
    inf at the largest floats (its vectorized ``erf``; its float64 kernel gives inf
    and the input itself, as nbops)."""
    if name == "gelu" and dtype == np.float32 and hyper.get("approximate", "none") == "none":
        return np.asarray(x) > 1e38
    return np.zeros(np.shape(x), bool)


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", OPS)
def test_torch_parity_default(name, dtype):
    x = mixed_data(dtype, n=300, seed=80)
    hyper = {"weight": _weight(dtype)} if name == "prelu" else {}
    _torch_check(name, x, hyper, dtype)


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", HYPER_OPS)
def test_torch_parity_hyper(name, dtype):
    x = mixed_data(dtype, n=300, seed=81).reshape(-1, 1)[::-1]
    if name == "prelu":
        hyper = {"weight": _weight(dtype, (-1.5,))}
    else:
        hyper = dict(NONDEFAULT[name])
    _torch_check(name, x, hyper, dtype)


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
def test_torch_parity_prelu_nchw(dtype):
    x = R.random_data((3, 4, 5, 6), dtype, seed=82)
    x[0, :, 0, :4] = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=dtype)
    _torch_check("prelu", x, {"weight": np.array([0.25, -1.5, 3.0, 0.0], dtype=dtype)}, dtype)
    _torch_check("prelu", x, {"weight": np.array([0.3], dtype=dtype)}, dtype)
    _torch_check("prelu", np.asfortranarray(x),
                 {"weight": np.array([0.25, -1.5, 3.0, 0.0], dtype=dtype)}, dtype)


@pytest.mark.parametrize("dtype", FLOATS, ids=["f32", "f64"])
@pytest.mark.parametrize("name", OPS)
def test_torch_parity_large(name, dtype):
    x = _large(dtype, seed=83)
    hyper = {"weight": _weight(dtype)} if name == "prelu" else {}
    _torch_check(name, x, hyper, dtype)
