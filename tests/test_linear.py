"""Tests of ``nbops.linear``.

Expected values come from the float64 NumPy formula ``ref_linear`` or from
PyTorch (parity tests only), never from nbops itself.
"""

import numpy as np
import pytest

import nbops

FLOATS = (np.float32, np.float64)
TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-5),
       np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12)}


def ref_linear(x, w, b=None):
    """float64 reference: sum_k x[..., k] * w[o, k] + b[o], by explicit broadcasting."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    y = (x[..., None, :] * w).sum(axis=-1)
    if b is not None:
        y = y + np.asarray(b, np.float64)
    return y


def data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def close(got, exp, dtype, what=""):
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, expected {dtype}"
    assert got.shape == exp.shape, f"{what}: shape {got.shape}, expected {exp.shape}"
    np.testing.assert_allclose(got, exp, err_msg=what, **TOL[np.dtype(dtype)])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("shape", [(5,), (4, 5), (2, 3, 5), (2, 1, 3, 5), (0, 5), (3, 0, 5)])
def test_matches_reference(shape, with_bias, dtype):
    x = data(shape, dtype)
    w = data((3, 5), dtype, seed=1)
    b = data((3,), dtype, seed=2) if with_bias else None
    close(nbops.linear(x, w, b), ref_linear(x, w, b), dtype, str(shape))


@pytest.mark.parametrize("dtype", FLOATS)
def test_every_tile_shape_serial_and_parallel(dtype, monkeypatch):
    """The product runs in blocks of 4 rows x 4 outputs, tasks of OUT_CHUNK outputs:
    rows and outputs that are not multiples of 4, several output chunks, NaN and
    inf, read-only inputs; the serial and the parallel kernel give the same bits."""
    from nbops import _config
    from nbops._ops.linear import OUT_CHUNK

    w = data((2 * OUT_CHUNK + 3, 37), dtype, seed=1)
    b = data(w.shape[0], dtype, seed=2)
    for n in (1, 3, 4, 9):
        x = data((n, 37), dtype)
        x[0, 3] = np.inf if n > 1 else np.nan
        x.flags.writeable = False
        for bias in (None, b):
            exp = ref_linear(x, w, bias)
            runs = []
            for threshold in (1 << 62, 1):  # the serial kernel, then the parallel one
                monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", threshold)
                runs.append(nbops.linear(x, w, bias))
            got = runs[0]
            np.testing.assert_array_equal(runs[1], got)
            assert got.dtype == np.dtype(dtype) and got.shape == exp.shape
            np.testing.assert_array_equal(np.isnan(got), np.isnan(exp))
            fin = np.isfinite(exp)
            np.testing.assert_array_equal(got[~fin], exp[~fin])
            np.testing.assert_allclose(got[fin], exp[fin], rtol=1e-4 if dtype == np.float32
                                       else 1e-12, atol=1e-3 if dtype == np.float32 else 1e-11)


def test_out_aliasing_an_input_is_safe():
    """``out=`` that is the input itself (square weight) gets the product, not a
    mix of old and new values."""
    x = data((6, 8), np.float64)
    w = data((8, 8), np.float64, seed=1)
    exp = ref_linear(x, w)
    nbops.linear(x, w, out=x)
    close(x, exp, np.float64, "out is input")


def test_large_output():
    """An output of 262144 float32 values (the parallel product, bias on a big array)."""
    x, w, b = data((512, 64), np.float32), data((512, 64), np.float32, 1), data(512, np.float32)
    close(nbops.linear(x, w, b), ref_linear(x, w, b), np.float32)


def test_zero_in_features_gives_the_bias():
    y = nbops.linear(np.ones((4, 0)), np.ones((3, 0)), np.arange(3.0))
    np.testing.assert_array_equal(y, np.broadcast_to(np.arange(3.0), (4, 3)))


@pytest.mark.parametrize("kind", ["fortran", "strided", "reversed", "weight_t", "lists"])
def test_noncontiguous_inputs(kind):
    x = data((6, 10), np.float64)
    w = data((4, 5), np.float64, 1)
    b = data(8, np.float64, 2)[::2]  # a strided bias in every case
    if kind == "fortran":
        x, w = np.asfortranarray(x[:, :5]), np.asfortranarray(w)
    elif kind == "strided":
        x = x[::2, ::2]
    elif kind == "reversed":
        x = x[::-1, 5:][:, ::-1]
        w = w[::-1]
    elif kind == "weight_t":
        x = x[:, :5]
        w = np.ascontiguousarray(w.T).T
    else:
        x, w, b = x[:, :5].tolist(), w.tolist(), b.tolist()
    close(nbops.linear(x, w, b), ref_linear(x, w, b), np.float64, kind)


def test_3d_noncontiguous_input():
    x = data((3, 4, 5), np.float32).transpose(1, 0, 2)
    w, b = data((2, 5), np.float32, 1), data(2, np.float32, 2)
    close(nbops.linear(x, w, b), ref_linear(x, w, b), np.float32)


@pytest.mark.parametrize("order", ["C", "F"])
def test_out(order):
    x, w, b = data((4, 5), np.float32), data((3, 5), np.float32, 1), data(3, np.float32, 2)
    out = np.zeros((4, 3), np.float32, order=order)
    got = nbops.linear(x, w, b, out=out)
    assert got is out
    close(out, ref_linear(x, w, b), np.float32)


def test_dtype_rules():
    w = data((3, 5), np.float64)
    close(nbops.linear(np.arange(10).reshape(2, 5), w), ref_linear(np.arange(10).reshape(2, 5), w),
          np.float64, "int input")
    x32 = data((2, 5), np.float32)
    close(nbops.linear(x32, w), ref_linear(x32, w), np.float64, "mixed: NumPy's promotion")
    y16 = nbops.linear(x32.astype(np.float16), w.astype(np.float16))
    assert y16.dtype == np.float16
    np.testing.assert_allclose(y16, ref_linear(x32.astype(np.float16), w.astype(np.float16)),
                               rtol=2e-3, atol=2e-3)


def test_bias_broadcasts_like_torch():
    x, w = data((4, 5), np.float64), data((3, 5), np.float64, 1)
    for b in (np.float64(2.0), np.array([2.0])):
        close(nbops.linear(x, w, b), ref_linear(x, w) + 2.0, np.float64, str(np.shape(b)))


def test_nan_and_inf_propagate():
    x = np.array([[np.nan, 1.0], [np.inf, 0.0], [1.0, 2.0]])
    w = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, -np.inf]])
    y = nbops.linear(x, w)
    with np.errstate(all="ignore"):
        exp = ref_linear(x, w)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(exp))
    np.testing.assert_allclose(y, exp, equal_nan=True)


@pytest.mark.parametrize("args, exc, match", [
    ((np.ones((2, 5)), np.ones(5)), ValueError, r"weight must be 2-D.*\(5,\)"),
    ((np.ones((2, 5)), np.ones((3, 5, 1))), ValueError, "weight"),
    ((np.ones((2, 4)), np.ones((3, 5))), ValueError, r"input.*in_features=5.*\(2, 4\)"),
    ((np.float64(1.0), np.ones((3, 1))), ValueError, "input"),
    ((np.ones((2, 5)), np.ones((3, 5)), np.ones(2)), ValueError, r"bias.*\(3,\).*\(2,\)"),
    ((np.ones((2, 5)), np.ones((3, 5)), np.ones((1, 3))), ValueError, "bias"),
    ((np.ones((2, 5), complex), np.ones((3, 5))), TypeError, "input"),
    ((np.ones((2, 5)), np.ones((3, 5), complex)), TypeError, "weight"),
    ((np.ones((2, 5)), np.ones((3, 5)), np.array(["a", "b", "c"])), TypeError, "bias"),
])
def test_bad_input(args, exc, match):
    with pytest.raises(exc, match=match):
        nbops.linear(*args)


def test_bad_out_is_not_written():
    x, w = np.ones((2, 5)), np.ones((3, 5))
    for out, exc in [(np.zeros((3, 2)), ValueError), (np.zeros((2, 3), np.float32), TypeError)]:
        with pytest.raises(exc, match="out"):
            nbops.linear(x, w, out=out)
        assert not out.any()
    ro = np.zeros((2, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        nbops.linear(x, w, out=ro)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(7,), (6, 9), (2, 3, 9)])
def test_torch_parity(shape, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = data(shape, dtype, 5)
    w, b = data((4, shape[-1]), dtype, 6), data(4, dtype, 7)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for bias in (None, b):
        exp = F.linear(torch.from_numpy(x), torch.from_numpy(w),
                       None if bias is None else torch.from_numpy(bias)).numpy()
        got = nbops.linear(x, w, bias)
        assert got.dtype == exp.dtype and got.shape == exp.shape
        np.testing.assert_allclose(got, exp, **tol)


def test_torch_parity_nan_inf_and_scalar_bias():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.array([[np.nan, 1.0], [np.inf, 0.0], [np.inf, -np.inf], [1.0, 2.0]])
    w = np.array([[1.0, 1.0], [0.0, 1.0], [1.0, -np.inf]])
    for b in (None, np.array(0.5), np.array([1.0, 2.0, np.inf])):
        tb = None if b is None else torch.from_numpy(b)
        exp = F.linear(torch.from_numpy(x), torch.from_numpy(w), tb).numpy()
        with np.errstate(all="ignore"):
            got = nbops.linear(x, w, b)
        np.testing.assert_allclose(got, exp, equal_nan=True)


def test_inside_njit():
    numba = pytest.importorskip("numba")

    @numba.njit
    def run(x, w, b):
        return nbops.linear(x, w), nbops.linear(x, w, b)

    x, w, b = data((4, 5), np.float32), data((3, 5), np.float32, 1), data(3, np.float32, 2)
    y1, y2 = run(x, w, b)
    close(y1, ref_linear(x, w), np.float32, "no bias")
    close(y2, ref_linear(x, w, b), np.float32, "bias")
    with pytest.raises(ValueError, match="bias"):
        run(x, w, np.ones(2, np.float32))
    with pytest.raises(ValueError, match="input"):
        run(np.ones((4, 2), np.float32), w, b)


def test_inside_njit_converts_and_broadcasts():
    """Inside @njit: a 3-D input, an integer input promoted as NumPy does, a
    one-element bias broadcast; the serial product kernel of the Python path."""
    numba = pytest.importorskip("numba")

    @numba.njit
    def run(x, w, b):
        return nbops.linear(x, w, b)

    x = data((2, 3, 5), np.float64)
    w = data((7, 5), np.float64, 1)
    close(run(x, w, np.array([0.5])), ref_linear(x, w) + 0.5, np.float64, "3-D, (1,) bias")
    xi = np.arange(10).reshape(2, 5)
    wf = w.astype(np.float32)
    got = run(xi, wf, data(7, np.float32, 2))
    assert got.dtype == np.float64
    close(got, ref_linear(xi, wf, data(7, np.float32, 2)), np.float64, "int input")
