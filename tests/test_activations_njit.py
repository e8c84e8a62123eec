"""The activations called from inside a user's @numba.njit function.

Compilation is the cost here (~0.5 s per signature), so a few jitted functions
call many ops at once; each is compiled once per input type and the results are
cached for the per-op test items.  Expected values come from ``_reference.py``.
The matrix at the end iterates over the op table's elementwise entries, so a new
op is tested inside ``@njit`` without editing this file.
"""

import functools

import _reference as R
import numba
import numpy as np
import pytest

import nbops
import nbops.scalar  # noqa: F401  (nbops.scalar.<core> is used inside njit code)
from nbops._ops import table

ENTRIES = {e.name: e for e in table.elementwise_entries()}
# the ops of the hand-written jitted functions below
OPS = ("relu", "relu6", "elu", "prelu", "leaky_relu", "threshold", "hardtanh", "sigmoid",
       "tanh", "logsigmoid", "softplus", "softshrink", "softsign")
# the values of required arguments (threshold's) where a test uses the defaults
REQUIRED = {n: {p.name: p.example for p in e.params if p.required}
            for n, e in ENTRIES.items() if n != "prelu"}
W = R.PRELU_WEIGHT


def _signature_of(fn, *args):
    """The compiled signature of dispatcher ``fn`` for these arguments."""
    types = tuple(numba.typeof(a) for a in args)
    for sig in fn.nopython_signatures:
        if tuple(sig.args) == types:
            return sig
    raise AssertionError(f"no compiled signature for {types}: {fn.nopython_signatures}")


def _check(name, got, x, hyper=None, weight=None, what=""):
    kw = dict(hyper or REQUIRED.get(name, {}))
    if weight is not None:
        kw["weight"] = weight
    exp = R.expected(name, x, **kw)
    R.assert_matches(np.asarray(got), exp, what=f"njit {name} {what}",
                     **R.tolerances(name, exp.dtype))


def _check_scalar(name, got, x, dtype, hyper=None, weight=None):
    kw = dict(hyper or REQUIRED.get(name, {}))
    if weight is not None:
        kw["weight"] = weight
    exp = R.expected(name, np.array([x], dtype=dtype), **kw)
    got = np.array([got], dtype=dtype)
    R.assert_matches(got, exp, what=f"njit scalar {name}", **R.tolerances(name, dtype))


# --------------------------------------------------------------------------- #
# all 13 ops on arrays, defaults omitted
# --------------------------------------------------------------------------- #


@numba.njit
def _all_ops(x, w):
    return (
        nbops.relu(x),
        nbops.relu6(x),
        nbops.elu(x),
        nbops.prelu(x, w),
        nbops.leaky_relu(x),
        nbops.threshold(x, 0.5, -2.0),
        nbops.hardtanh(x),
        nbops.sigmoid(x),
        nbops.tanh(x),
        nbops.logsigmoid(x),
        nbops.softplus(x),
        nbops.softshrink(x),
        nbops.softsign(x),
    )


def _mixed(dtype, n=101, seed=0):
    return np.concatenate([R.random_data(n, dtype, seed=seed), R.special_values(dtype)])


def _mixed_shape(dtype, shape, seed=0):
    """Random data of ``shape`` whose first elements (C order) are the special values."""
    x = R.random_data(shape, dtype, seed=seed)
    sp = R.special_values(dtype)
    flat = x.reshape(-1)
    flat[: len(sp)] = sp
    return flat.reshape(shape)


# few signatures: each compile of _all_ops costs several seconds
ARRAY_CASES = {
    "f64_1d": lambda: _mixed(np.float64),
    "f32_3d_strided": lambda: _mixed_shape(np.float32, (4, 12, 10), seed=2)[:, ::2, ::-1],
}


@functools.cache
def _run_all_ops(case):
    x = ARRAY_CASES[case]()
    x0 = x.copy()
    w = np.array([W], dtype=x.dtype)
    res = _all_ops(x, w)
    sig = _signature_of(_all_ops, x, w)
    return x, x0, res, sig


@pytest.mark.parametrize("case", list(ARRAY_CASES))
@pytest.mark.parametrize("name", OPS)
def test_njit_array_defaults(name, case):
    x, x0, res, sig = _run_all_ops(case)
    np.testing.assert_array_equal(x, x0, err_msg="input modified inside njit")
    i = OPS.index(name)
    got = res[i]
    assert isinstance(got, np.ndarray)
    assert got.shape == x.shape
    assert got.dtype == x.dtype
    rt = sig.return_type[i]
    assert rt.dtype == numba.from_dtype(x.dtype) and rt.ndim == x.ndim, rt
    assert not np.shares_memory(got, x)
    _check(name, got, x0, what=case)


# --------------------------------------------------------------------------- #
# a few ops on other ndims / layouts (0-d, 5-d negative stride) and prelu channels
# --------------------------------------------------------------------------- #


@numba.njit
def _some_ops(x, wc):
    return (
        nbops.relu(x),
        nbops.elu(x, alpha=1.5),
        nbops.prelu(x, wc),
        nbops.softplus(x, 2.0),
    )


SOME = [
    ("relu", {}),
    ("elu", {"alpha": 1.5}),
    ("prelu", None),
    ("softplus", {"beta": 2.0}),
]

SOME_CASES = {
    "f64_0d": (lambda: np.array(-1.75), 1),
    "f64_2d_fortran": (lambda: np.asfortranarray(_mixed_shape(np.float64, (14, 10), seed=1)), 10),
    "f64_5d_negstride": (
        lambda: R.random_data((3, 3, 4, 2, 6), np.float64, seed=3)[::-1, :, :, :, ::-2], 3),
    "f32_4d_channels": (lambda: R.random_data((2, 3, 4, 5), np.float32, seed=4), 3),
}


@functools.cache
def _run_some(case):
    make, c = SOME_CASES[case]
    x = make()
    wc = np.linspace(-1.5, 3.0, c).astype(x.dtype) if c > 1 else np.array([0.25], dtype=x.dtype)
    res = _some_ops(x, wc)
    return x, wc, res


@pytest.mark.parametrize("case", list(SOME_CASES))
@pytest.mark.parametrize("k", range(len(SOME)), ids=[n for n, _ in SOME])
def test_njit_array_layouts(k, case):
    x, wc, res = _run_some(case)
    name, hyper = SOME[k]
    got = res[k]
    assert isinstance(got, np.ndarray)
    assert got.shape == x.shape and got.dtype == x.dtype
    if name == "prelu":
        _check(name, got, x, weight=wc, what=case)
    else:
        _check(name, got, x, hyper=hyper, what=case)


# --------------------------------------------------------------------------- #
# keywords and Python ints as hyperparameters (float32 stays float32)
# --------------------------------------------------------------------------- #


@numba.njit
def _kw_ints(x, w):
    return (
        nbops.elu(x, 2),
        nbops.elu(x, alpha=2),
        nbops.leaky_relu(x, negative_slope=2),
        nbops.threshold(x, threshold=0, value=-1),
        nbops.threshold(x, 1, 7),
        nbops.hardtanh(x, min_val=-2, max_val=3),
        nbops.hardtanh(x, -2, 3),
        nbops.softplus(x, 2, 10),
        nbops.softplus(x, beta=2, threshold=10),
        nbops.softshrink(x, lambd=1),
        nbops.softshrink(x, 1),
        nbops.prelu(x, weight=w),
        nbops.leaky_relu(x, 0.125),
        nbops.softplus(x, beta=0.5),
    )


KW_INTS = [
    ("elu", {"alpha": 2.0}),
    ("elu", {"alpha": 2.0}),
    ("leaky_relu", {"negative_slope": 2.0}),
    ("threshold", {"threshold": 0.0, "value": -1.0}),
    ("threshold", {"threshold": 1.0, "value": 7.0}),
    ("hardtanh", {"min_val": -2.0, "max_val": 3.0}),
    ("hardtanh", {"min_val": -2.0, "max_val": 3.0}),
    ("softplus", {"beta": 2.0, "threshold": 10.0}),
    ("softplus", {"beta": 2.0, "threshold": 10.0}),
    ("softshrink", {"lambd": 1.0}),
    ("softshrink", {"lambd": 1.0}),
    ("prelu", None),
    ("leaky_relu", {"negative_slope": 0.125}),
    ("softplus", {"beta": 0.5}),
]


@functools.cache
def _run_kw_ints(dt):
    x = _mixed(np.dtype(dt).type, n=60, seed=5)
    w = np.array([W], dtype=x.dtype)
    return x, w, _kw_ints(x, w), _signature_of(_kw_ints, x, w)


@pytest.mark.parametrize("dt", ["float32"])
@pytest.mark.parametrize("k", range(len(KW_INTS)),
                         ids=[f"{i}-{n}" for i, (n, _) in enumerate(KW_INTS)])
def test_njit_keywords_and_int_hyper(k, dt):
    x, w, res, sig = _run_kw_ints(dt)
    name, hyper = KW_INTS[k]
    got = res[k]
    assert got.dtype == x.dtype, f"{name} gave {got.dtype} for {x.dtype} input"
    assert sig.return_type[k].dtype == numba.from_dtype(x.dtype)
    if name == "prelu":
        _check(name, got, x, weight=w)
    else:
        _check(name, got, x, hyper=hyper)


# --------------------------------------------------------------------------- #
# scalars
# --------------------------------------------------------------------------- #


@numba.njit
def _all_ops_scalar(s):
    return (
        nbops.relu(s),
        nbops.relu6(s),
        nbops.elu(s),
        nbops.leaky_relu(s),
        nbops.threshold(s, 0.5, -2.0),
        nbops.hardtanh(s),
        nbops.sigmoid(s),
        nbops.tanh(s),
        nbops.logsigmoid(s),
        nbops.softplus(s),
        nbops.softshrink(s),
        nbops.softsign(s),
        nbops.softplus(s, 2, 10),
        nbops.elu(s, alpha=2),
    )


SCALAR_OPS = [(n, None) for n in OPS if n != "prelu"] + [
    ("softplus", {"beta": 2.0, "threshold": 10.0}),
    ("elu", {"alpha": 2.0}),
]

SCALAR_VALUES = [-3.25, -0.5, 0.0, 0.375, 0.75, 7.5, 25.0, -100.0, np.inf, -np.inf, np.nan]


@functools.cache
def _run_scalars(dt):
    t = np.dtype(dt).type
    out = []
    for v in SCALAR_VALUES:
        s = t(v)
        out.append(_all_ops_scalar(s))
    return out, _signature_of(_all_ops_scalar, t(0.5))


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("k", range(len(SCALAR_OPS)),
                         ids=[f"{i}-{n}" for i, (n, _) in enumerate(SCALAR_OPS)])
def test_njit_scalars(k, dt):
    results, sig = _run_scalars(dt)
    name, hyper = SCALAR_OPS[k]
    rt = sig.return_type[k]
    # a scalar in, a scalar of the same float type out
    assert rt == numba.from_dtype(np.dtype(dt)), f"{name} on {dt} scalar returned {rt}"
    for v, res in zip(SCALAR_VALUES, results, strict=True):
        got = res[k]
        assert np.ndim(got) == 0
        if hyper is None and name == "threshold":
            hyper_ = {"threshold": 0.5, "value": -2.0}
        else:
            hyper_ = hyper
        _check_scalar(name, got, v, np.dtype(dt), hyper=hyper_)


@numba.njit
def _prelu_scalar(s, w):
    return nbops.prelu(s, w)


@pytest.mark.parametrize("dt", ["float32", "float64"])
def test_njit_prelu_scalar(dt):
    t = np.dtype(dt).type
    w = np.array([W], dtype=dt)
    for v in (-2.0, 3.0, np.nan, -np.inf):
        got = _prelu_scalar(t(v), w)
        assert np.ndim(got) == 0
        _check_scalar("prelu", got, v, np.dtype(dt), weight=w)
    rt = _signature_of(_prelu_scalar, t(1.0), w).return_type
    assert rt == numba.from_dtype(np.dtype(dt)), rt


# --------------------------------------------------------------------------- #
# inplace=True inside njit
# --------------------------------------------------------------------------- #


@numba.njit
def _inplace_all(a, b, c, d, e, f):
    ra = nbops.relu(a, inplace=True)
    rb = nbops.relu6(b, inplace=True)
    rc = nbops.elu(c, 1.5, inplace=True)
    rd = nbops.leaky_relu(d, negative_slope=0.125, inplace=True)
    re = nbops.threshold(e, 0.5, -2.0, inplace=True)
    rf = nbops.hardtanh(f, -0.5, 2.0, True)
    return ra, rb, rc, rd, re, rf


INPLACE = [
    ("relu", {}),
    ("relu6", {}),
    ("elu", {"alpha": 1.5}),
    ("leaky_relu", {"negative_slope": 0.125}),
    ("threshold", {"threshold": 0.5, "value": -2.0}),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}),
]


@functools.cache
def _run_inplace(case):
    if case == "f64_1d":
        arrs = [_mixed(np.float64, n=40, seed=10 + i) for i in range(6)]
    else:  # float32 2-d views into bigger buffers
        bases = [R.random_data((6, 8), np.float32, seed=20 + i) for i in range(6)]
        arrs = [b[::2, ::-1] for b in bases]
    originals = [a.copy() for a in arrs]
    res = _inplace_all(*arrs)
    return arrs, originals, res


@pytest.mark.parametrize("case", ["f64_1d", "f32_2d_view"])
@pytest.mark.parametrize("k", range(len(INPLACE)), ids=[n for n, _ in INPLACE])
def test_njit_inplace(k, case):
    arrs, originals, res = _run_inplace(case)
    name, hyper = INPLACE[k]
    a, a0, r = arrs[k], originals[k], res[k]
    assert np.shares_memory(r, a), "inplace=True must return the input array"
    assert r.shape == a.shape and r.dtype == a.dtype
    _check(name, a, a0, hyper=hyper, what=f"inplace {case}")
    np.testing.assert_array_equal(r, a)


# --------------------------------------------------------------------------- #
# from a parallel=True user function, and scalar cores in a user loop
# --------------------------------------------------------------------------- #


@numba.njit(parallel=True)
def _parallel_user(x, w):
    n, m = x.shape
    rows = np.empty_like(x)
    elem = np.empty_like(x)
    for i in numba.prange(n):
        rows[i] = nbops.softplus(x[i], 2.0)
        for j in range(m):
            elem[i, j] = nbops.scalar.logsigmoid(x[i, j]) + nbops.tanh(x[i, j])
    whole = nbops.sigmoid(x)
    pr = nbops.prelu(x, w)
    return rows, elem, whole, pr


def test_njit_parallel_user_function():
    # float32 (the delicate dtype) and large enough for nbops' own parallel path
    x = R.random_data((400, 400), np.float32, seed=30)
    x[0, :6] = [np.nan, np.inf, -np.inf, 1e4, -1e4, -0.0]
    x0 = x.copy()
    w = np.array([W], dtype=np.float32)
    rows, elem, whole, pr = _parallel_user(x, w)
    np.testing.assert_array_equal(x, x0, err_msg="input modified")
    for a in (rows, elem, whole, pr):
        assert a.dtype == np.float32 and a.shape == x.shape
    _check("softplus", rows, x0, hyper={"beta": 2.0})
    exp = (R.logsigmoid(x0) + R.tanh(x0)).astype(np.float32)
    R.assert_matches(elem, exp, rtol=4e-6, atol=1e-6, what="scalar cores in prange")
    _check("sigmoid", whole, x0)
    _check("prelu", pr, x0, weight=w)


@numba.njit
def _scalar_cores(x):
    out = np.empty((13, x.size), dtype=x.dtype)
    for i in range(x.size):
        v = x[i]
        out[0, i] = nbops.scalar.relu(v)
        out[1, i] = nbops.scalar.relu6(v)
        out[2, i] = nbops.scalar.elu(v, 1.5)
        out[3, i] = nbops.scalar.prelu(v, -0.75)
        out[4, i] = nbops.scalar.leaky_relu(v, 0.125)
        out[5, i] = nbops.scalar.threshold(v, 0.5, -2.0)
        out[6, i] = nbops.scalar.hardtanh(v, -0.5, 2.0)
        out[7, i] = nbops.scalar.sigmoid(v)
        out[8, i] = nbops.scalar.tanh(v)
        out[9, i] = nbops.scalar.logsigmoid(v)
        out[10, i] = nbops.scalar.softplus(v, 2.0, 10.0)
        out[11, i] = nbops.scalar.softshrink(v, 1.25)
        out[12, i] = nbops.scalar.softsign(v)
    return out


CORE_HYPER = [
    ("relu", {}),
    ("relu6", {}),
    ("elu", {"alpha": 1.5}),
    ("prelu", {"weight": np.array([-0.75])}),
    ("leaky_relu", {"negative_slope": 0.125}),
    ("threshold", {"threshold": 0.5, "value": -2.0}),
    ("hardtanh", {"min_val": -0.5, "max_val": 2.0}),
    ("sigmoid", {}),
    ("tanh", {}),
    ("logsigmoid", {}),
    ("softplus", {"beta": 2.0, "threshold": 10.0}),
    ("softshrink", {"lambd": 1.25}),
    ("softsign", {}),
]


@functools.cache
def _run_cores(dt):
    x = _mixed(np.dtype(dt).type, n=80, seed=40)
    return x, _scalar_cores(x)


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("k", range(13), ids=[n for n, _ in CORE_HYPER])
def test_njit_scalar_cores_in_loop(k, dt):
    x, out = _run_cores(dt)
    name, hyper = CORE_HYPER[k]
    kw = dict(hyper)
    if name == "prelu":
        exp = R.expected("prelu", x, weight=kw["weight"])
    else:
        exp = R.expected(name, x, **kw)
    R.assert_matches(out[k], exp, what=f"scalar core {name}", **R.tolerances(name, x.dtype))


# --------------------------------------------------------------------------- #
# every op of the table: defaults, non-default parameters (by position and by
# keyword), a scalar, out= and inplace= inside one jitted function per op
# --------------------------------------------------------------------------- #

TABLE_OPS = [n for n in ENTRIES if n != "prelu"]  # prelu: its weight, tested above


def _args(entry, params):
    return ", ".join(repr(params[p.name]) for p in entry.params)


@functools.cache
def _table_function(name):
    """A jitted function calling nbops.<name> in every way (compiled from source)."""
    e = ENTRIES[name]
    example = e.example_params()
    required = ", ".join(repr(p.example) for p in e.params if p.required)
    default = f"x, {required}" if required else "x"
    positional = f"x, {_args(e, example)}" if e.params else "x"
    keywords = ", ".join(f"{k}={v!r}" for k, v in example.items())
    keywords = f"input=x, {keywords}" if keywords else "input=x"
    inplace = f"nbops.{name}(y, {_args(e, example)}{', ' if e.params else ''}True)" \
        if e.inplace else "y"
    source = f"""
def call_{name}(x, s, out, y):
    return (nbops.{name}({default}), nbops.{name}({positional}), nbops.{name}({keywords}),
            nbops.{name}(s{", " + required if required else ""}),
            nbops.{name}({default}, out=out), {inplace})
"""
    ns = {"nbops": nbops}
    exec(source, ns)
    return numba.njit(ns[f"call_{name}"])


@pytest.mark.parametrize("dt", ["float32", "float64"])
@pytest.mark.parametrize("name", TABLE_OPS)
def test_njit_table_matrix(name, dt):
    e = ENTRIES[name]
    example = e.example_params()
    required = {p.name: p.example for p in e.params if p.required}
    x = _mixed(np.dtype(dt).type, n=40, seed=60)
    x0 = x.copy()
    out = np.full_like(x, 7.0)
    y = x.copy()
    fn = _table_function(name)
    s = x.dtype.type(-0.625)
    default, positional, keywords, scalar, res_out, res_inplace = fn(x, s, out, y)
    sig = _signature_of(fn, x, s, out, y)
    np.testing.assert_array_equal(x, x0, err_msg="input modified inside njit")
    for k, got in enumerate((default, positional, keywords)):
        assert got.dtype == x.dtype and sig.return_type[k].dtype == numba.from_dtype(x.dtype)
        assert not np.shares_memory(got, x)
    _check(name, default, x0, hyper=required, what="defaults")
    _check(name, positional, x0, hyper=example, what="positional")
    _check(name, keywords, x0, hyper=example, what="keywords")
    assert sig.return_type[3] == numba.from_dtype(x.dtype), sig.return_type[3]
    _check_scalar(name, scalar, float(s), x.dtype, hyper=required)
    assert res_out is out or np.shares_memory(res_out, out)
    _check(name, out, x0, hyper=required, what="out=")
    if e.inplace:
        assert np.shares_memory(res_inplace, y)
        _check(name, y, x0, hyper=example, what="inplace")
