"""softmax, log_softmax, softmin: float64 NumPy reference formulas, PyTorch parity,
layouts, dtypes, inf/NaN rows, errors and calls inside @njit.

Compile time is the cost here: the tests use float32 and float64 only (one
serial kernel each, shared by every shape, axis and op), small arrays, and one
set of @njit functions per dtype.
"""

import _reference as R
import numba
import numpy as np
import pytest

import nbops
from nbops._ops import table

# the row ops of the op table (softmax, log_softmax, softmin); their float64
# references are in tests/_reference.py
OPS = tuple(e.name for e in table.row_op_entries())
DTYPES = (np.float32, np.float64)
INF, NAN = np.inf, np.nan


# ------------------------------------------------------------ the reference
def ref(op, x, axis=-1):
    """PyTorch's definitions in float64 (tests/_reference.py): z = x - max(x),
    e = exp(z); softmax = e / sum(e), log_softmax = z - log(sum(e)),
    softmin(x) = softmax(-x). NaN, an all -inf row and a row holding +inf make
    the whole row NaN, as the arithmetic itself gives (inf - inf, -inf - -inf)."""
    return R.reference(op)(np.asarray(x, dtype=np.float64), axis)


def tol(dtype):
    # float32: the exp is within 2 ulp and sums are accumulated in float32 blocks
    return dict(rtol=2e-6, atol=2e-7) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)


def check(got, op, x, axis=-1, dtype=None):
    dtype = dtype or np.asarray(x).dtype
    assert got.dtype == dtype
    with np.errstate(over="ignore"):
        exp = ref(op, x, axis).astype(dtype)
    np.testing.assert_allclose(got, exp, equal_nan=True, **tol(dtype),
                               err_msg=f"{op} axis={axis}")


def data(shape, dtype, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


# ------------------------------------------------------------ values
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_every_axis_matches_reference(op, dtype):
    fn = getattr(nbops, op)
    for shape in [(7,), (5, 9), (3, 4, 5), (2, 3, 300)]:  # 300 > one block of columns
        x = data(shape, dtype)
        for axis in range(-len(shape), len(shape)):
            check(fn(x, axis), op, x, axis)
    x = data((4, 6), dtype)
    check(fn(x), op, x, -1)  # default axis -1
    check(fn(x, dim=0), op, x, 0)  # PyTorch's name


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_rows_and_wide_range(dtype):
    # rows longer than a summation block, values from -80 to 0: a broken exp
    # (e.g. a range reduction undone by fast-math) would show here
    x = np.tile(np.linspace(-80.0, 0.0, 3001), (2, 1)).astype(dtype)
    x[1] += 1e4  # large values: (x - max) must be taken first
    for op in OPS:
        check(getattr(nbops, op)(x), op, x)
        check(getattr(nbops, op)(x.T.copy(), 0), op, x.T, 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_softmax_keeps_precision_for_large_inputs(dtype):
    # (x - max) - log(sum) in that order (pytorch/pytorch#11752)
    x = np.array([[1e6, 1e6 + 1.0, 1e6 + 2.0]], dtype=dtype)
    exp = ref("log_softmax", np.array([[0.0, 1.0, 2.0]]))
    np.testing.assert_allclose(nbops.log_softmax(x), exp, **tol(dtype))


SPECIAL_ROWS = [
    [-INF, -INF, -INF, -INF],  # all -inf: NaN
    [INF, 1.0, 2.0, 3.0],  # +inf: NaN
    [INF, INF, 1.0, 2.0],
    [NAN, 1.0, 2.0, 3.0],  # NaN: NaN
    [1.0, NAN, -INF, INF],
    [-INF, 1.0, 2.0, -INF],  # -inf next to finite values: probability 0
    [0.0, -0.0, 0.0, -0.0],
    [1e38, -1e38, 0.0, 3e38],  # no overflow in x - max
]


@pytest.mark.parametrize("dtype", DTYPES)
def test_inf_and_nan_rows(dtype):
    x = np.array(SPECIAL_ROWS, dtype=dtype)
    for op in OPS:
        fn = getattr(nbops, op)
        check(fn(x), op, x)
        check(fn(x.T.copy(), 0), op, x.T, 0)  # columns path
    assert np.isnan(nbops.softmax(x)[:5]).all()
    assert (nbops.softmax(x)[5, [0, 3]] == 0).all()
    assert (nbops.log_softmax(x)[5, [0, 3]] == -np.inf).all()


def test_small_example():
    got = nbops.softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -np.inf]]))
    np.testing.assert_allclose(got, [[0.09003057317038046, 0.24472847105479764,
                                      0.6652409557748218], [0.5, 0.5, 0.0]], rtol=1e-14)


# ------------------------------------------------------------ dtypes
def test_dtypes():
    x32 = data((3, 5), np.float32)
    assert nbops.softmax(x32).dtype == np.float32
    check(nbops.softmax(x32, dtype=np.float64), "softmax", x32, dtype=np.float64)
    check(nbops.log_softmax(x32, 0, np.float64), "log_softmax", x32, 0, dtype=np.float64)
    xi = np.arange(12).reshape(3, 4)
    check(nbops.softmin(xi), "softmin", xi, dtype=np.float64)  # ints: float64 (np.exp's rule)
    x16 = x32.astype(np.float16)
    got = nbops.log_softmax(x16)
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, ref("log_softmax", x16), rtol=2e-3, atol=2e-3)
    with pytest.raises(TypeError, match="dtype"):
        nbops.softmax(x32, dtype=np.int32)
    with pytest.raises(TypeError, match="complex"):
        nbops.softmax(x32.astype(np.complex64))


# ------------------------------------------------------------ layouts, out=
@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(dtype):
    base = data((6, 8, 5), dtype)
    views = [base[::2, ::-1], base[:, 1:7:2, :], base.transpose(2, 0, 1),
             np.asfortranarray(base), base[:, 3, :], base[..., 0]]
    for v in views:
        for axis in range(v.ndim):
            for op in OPS:
                check(getattr(nbops, op)(v, axis), op, v, axis)
    v = np.asfortranarray(base[:, :, 0])
    res = nbops.softmax(v, 0)
    assert res.flags.f_contiguous  # axis 0 of a 2-D F-order array: rows, layout kept
    check(res, "softmax", v, 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out(dtype):
    x = data((4, 7), dtype)
    for axis in (0, 1):
        out = np.full_like(x, 7.0)
        assert nbops.log_softmax(x, axis, out=out) is out
        check(out, "log_softmax", x, axis)
        fout = np.asfortranarray(np.zeros_like(x))  # non C-contiguous out
        assert nbops.softmax(x, axis, out=fout) is fout
        check(fout, "softmax", x, axis)
    y = x.copy()
    nbops.softmin(y, out=y)  # in place
    check(y, "softmin", x)
    y = x.copy()
    nbops.softmax(y[:, ::-1], out=y)  # overlapping differently: still right
    check(y, "softmax", x[:, ::-1])
    big = np.zeros((4, 7), np.float64)
    nbops.softmax(x, out=big, dtype=np.float64)
    check(big, "softmax", x, dtype=np.float64)
    with pytest.raises(ValueError, match="shape"):
        nbops.softmax(x, out=np.empty((7, 4), dtype))
    with pytest.raises(TypeError, match="dtype"):
        nbops.softmax(x, out=np.empty((4, 7), np.float16))
    ro = np.empty_like(x)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        nbops.softmax(x, out=ro)


def test_read_only_input():
    x = data((3, 4), np.float64)
    x.flags.writeable = False
    check(nbops.softmax(x), "softmax", x)


def test_empty_and_0d():
    for shape in [(0,), (0, 5), (5, 0), (2, 0, 3)]:
        for axis in range(len(shape)):
            x = np.empty(shape, np.float32)
            got = nbops.log_softmax(x, axis)
            assert got.shape == shape and got.dtype == np.float32
    assert nbops.softmax(np.float32(3.0)).shape == ()
    assert nbops.softmax(np.array(3.0)) == 1.0
    assert nbops.log_softmax(np.array(3.0), 0) == 0.0
    assert np.isnan(nbops.softmax(np.array(np.inf)))
    assert nbops.softmin(2.5, dim=-1) == 1.0


def test_bad_arguments():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match="axis 2 is out of range"):
        nbops.softmax(x, 2)
    with pytest.raises(ValueError, match="out of range"):
        nbops.softmax(x, dim=-3)
    with pytest.raises(TypeError, match="axis must be an integer"):
        nbops.softmax(x, 1.0)
    with pytest.raises(TypeError, match="not both"):
        nbops.softmax(x, 0, dim=1)
    with pytest.raises(TypeError):
        nbops.softmax(np.array(["a", "b"]))


# ------------------------------------------------------------ PyTorch parity
@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_parity(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(3)
    arrays = [data((5, 9), dtype, 1), data((3, 4, 300), dtype, 2),
              np.array(SPECIAL_ROWS, dtype), (rng.standard_normal((2, 3, 4, 5)) * 20).astype(dtype)]
    for x in arrays:
        t = torch.from_numpy(x)
        for axis in range(x.ndim):
            for op in OPS:
                exp = getattr(F, op)(t, axis).numpy()
                got = getattr(nbops, op)(x, axis)
                np.testing.assert_allclose(got, exp, equal_nan=True, rtol=tol(dtype)["rtol"] * 4,
                                           atol=tol(dtype)["atol"] * 4, err_msg=f"{op} {axis}")
    x = data((4, 5), np.float32)
    exp = F.log_softmax(torch.from_numpy(x), 1, dtype=torch.float64).numpy()
    np.testing.assert_allclose(nbops.log_softmax(x, 1, dtype=np.float64), exp, rtol=1e-12)
    exp = F.softmin(torch.from_numpy(x), 0, dtype=torch.float64).numpy()
    np.testing.assert_allclose(nbops.softmin(x, dim=0, dtype="float64"), exp, rtol=1e-12)
    for v in (0.5, np.inf, -np.inf, np.nan):
        t = torch.tensor(v, dtype=torch.float64)
        for op in OPS:
            np.testing.assert_array_equal(getattr(nbops, op)(np.array(v)),
                                          getattr(F, op)(t, 0).numpy())


# ------------------------------------------------------------ inside @njit
@numba.njit
def _jit_all(x):
    return (nbops.softmax(x), nbops.log_softmax(x, 0), nbops.softmin(x, dim=1),
            nbops.softmax(x, -1, np.float64), nbops.log_softmax(x[:, ::-1], 1))


@numba.njit
def _jit_out(x, out):
    nbops.softmax(x, 0, out=out)
    return out


@numba.njit
def _jit_scalar(v):
    return nbops.softmax(v), nbops.log_softmax(v)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inside_njit(dtype):
    x = np.array(SPECIAL_ROWS[:2] + [[0.5, -1.0, 2.0, 3.0]], dtype)
    a, b, c, d, e = _jit_all(x)
    check(a, "softmax", x)
    check(b, "log_softmax", x, 0)
    check(c, "softmin", x, 1)
    check(d, "softmax", x, dtype=np.float64)
    check(e, "log_softmax", x[:, ::-1])
    out = np.zeros_like(x)
    check(_jit_out(x, out), "softmax", x, 0)
    check(out, "softmax", x, 0)
    s, ls = _jit_scalar(dtype(2.0))
    assert s == 1.0 and ls == 0.0


def test_inside_njit_int_input():
    xi = np.arange(8).reshape(2, 4)
    a, b, c, d, e = _jit_all(xi)
    check(a, "softmax", xi, dtype=np.float64)
    check(c, "softmin", xi, 1, dtype=np.float64)
