"""Tests of ``nbops.linear_backward``: against float64 NumPy formulas written
here, central finite differences of the forward's float64 reference, and
``torch.autograd`` where installed; inside ``@njit``; argument checks."""

import numpy as np
import pytest
from numba import njit

import nbops
from nbops import _config

FLOATS = (np.float32, np.float64)
TOL = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-4),
       np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12)}


def data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def ref_backward(g, x, w, bias_shape):
    """float64: dx = g W, dW = g^T x, db = sum of g over rows (to the bias's shape),
    by explicit sums over broadcast products."""
    g, x, w = (np.asarray(a, np.float64) for a in (g, x, w))
    rows = int(np.prod(x.shape[:-1]))
    g2 = g.reshape(rows, w.shape[0])
    x2 = x.reshape(rows, w.shape[1])
    dx = (g2[:, :, None] * w[None, :, :]).sum(axis=1).reshape(x.shape)
    dw = (g2[:, :, None] * x2[:, None, :]).sum(axis=0)
    db = None
    if bias_shape is not None:
        db = g2.sum(axis=0)
        if int(np.prod(bias_shape)) == 1:
            db = np.full(bias_shape, db.sum())
        db = db.reshape(bias_shape)
    return dx, dw, db


def check(got, exp, dtype, what=""):
    for name, a, e in zip(("grad_input", "grad_weight", "grad_bias"), got, exp, strict=True):
        if e is None:
            assert a is None, f"{what}: {name} should be None"
            continue
        assert a.dtype == np.dtype(dtype), f"{what}: {name} dtype {a.dtype}"
        assert a.shape == e.shape, f"{what}: {name} shape {a.shape}, expected {e.shape}"
        np.testing.assert_allclose(a, e, err_msg=f"{what}: {name}", **TOL[np.dtype(dtype)])


CASES = [((5,), None), ((7, 5), (3,)), ((2, 3, 5), (3,)), ((9, 5), (1,)), ((4, 5), ())]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,bias_shape", CASES)
def test_matches_reference(shape, bias_shape, dtype):
    x = data(shape, dtype)
    w = data((3, 5), dtype, 1)
    g = data(shape[:-1] + (3,), dtype, 2)
    b = None if bias_shape is None else data(bias_shape, dtype, 3)
    check(nbops.linear_backward(g, x, w, b), ref_backward(g, x, w, bias_shape), dtype,
          str((shape, bias_shape)))


@pytest.mark.parametrize("dtype", FLOATS)
def test_every_tile_shape_serial_and_parallel_give_the_same_bits(dtype, monkeypatch):
    """Rows, inputs and outputs not multiples of 4, more than one output chunk
    (OUT_CHUNK) in both products; a non-contiguous input and grad_output."""
    from nbops._ops.linear import OUT_CHUNK

    n_out, n_in, rows = OUT_CHUNK + 5, OUT_CHUNK + 3, 2 * OUT_CHUNK + 1
    x = data((n_in, rows), dtype).T  # non-contiguous
    w = data((n_out, n_in), dtype, 1)
    g = data((n_out, rows), dtype, 2).T
    exp = ref_backward(g, x, w, (n_out,))
    runs = []
    for threshold in (1 << 62, 1):  # serial, then parallel
        monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", threshold)
        runs.append(nbops.linear_backward(g, x, w, np.zeros(n_out, dtype)))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)
    check(runs[0], exp, dtype, "tiles")


def test_finite_differences():
    """Central differences of sum(G * linear(x, w, b)) in float64, for every
    entry of x, w and b (independent of the product formulas)."""
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((2, 4)), rng.standard_normal(2)
    G = rng.standard_normal((3, 2))

    def f(x, w, b):
        return float((G * (x @ w.T + b)).sum())

    got = nbops.linear_backward(G, x, w, b)
    h = 1e-6
    for k, arr in enumerate((x, w, b)):
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            args = [x.copy(), w.copy(), b.copy()]
            args[k][idx] += h
            up = f(*args)
            args[k][idx] -= 2 * h
            num[idx] = (up - f(*args)) / (2 * h)
        np.testing.assert_allclose(got[k], num, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype", FLOATS)
def test_vs_torch_autograd(dtype):
    torch = pytest.importorskip("torch")
    x = data((6, 2, 7), dtype)
    w = data((5, 7), dtype, 1)
    b = data(5, dtype, 2)
    g = data((6, 2, 5), dtype, 3)
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    torch.nn.functional.linear(tx, tw, tb).backward(torch.from_numpy(g))
    exp = (tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy())
    check(nbops.linear_backward(g, x, w, b), exp, dtype, "torch")


@pytest.mark.parametrize("rows,n_in,n_out", [(0, 5, 3), (4, 0, 3), (4, 5, 0)])
def test_empty_inputs(rows, n_in, n_out):
    """No rows, no input features or no outputs: zeros and empty gradients of the
    right shapes; with no input features the bias still gets the row sums."""
    x = data((rows, n_in), np.float32)
    w = data((n_out, n_in), np.float32, 1)
    g = data((rows, n_out), np.float32, 2)
    check(nbops.linear_backward(g, x, w, np.ones(n_out, np.float32)),
          ref_backward(g, x, w, (n_out,)), np.float32, "empty")


def test_nan_and_inf_propagate():
    x = np.array([[1.0, np.nan], [2.0, 3.0]])
    w = np.array([[1.0, 2.0]])
    g = np.array([[np.inf], [1.0]])
    gi, gw, gb = nbops.linear_backward(g, x, w, np.zeros(1))
    np.testing.assert_array_equal(gi, [[np.inf, np.inf], [1.0, 2.0]])
    assert np.isnan(gw[0, 1]) and gw[0, 0] == np.inf and gb[0] == np.inf


def test_inside_njit():
    @njit
    def run(g, x, w, b):
        return nbops.linear_backward(g, x, w, b), nbops.linear_backward(g, x, w)

    x, w, g = data((2, 3, 5), np.float32), data((4, 5), np.float32, 1), data((2, 3, 4),
                                                                          np.float32, 2)
    b = data(4, np.float32, 3)
    with_bias, without = run(g, x, w, b)
    check(with_bias, ref_backward(g, x, w, (4,)), np.float32, "njit")
    check(without, ref_backward(g, x, w, None), np.float32, "njit, no bias")
    with pytest.raises(ValueError, match="grad_output"):
        run(g[:, :2], x, w, b)


def test_bad_arguments():
    x, w, g = np.ones((3, 5)), np.ones((4, 5)), np.ones((3, 4))
    for args, exc, match in [
            ((g[:, :3], x, w), ValueError, "grad_output"),
            ((g, x[:, :4], w), ValueError, "input"),
            ((g, x, w[0]), ValueError, "weight"),
            ((g, x, w, np.ones(3)), ValueError, "bias"),
            ((g.astype(complex), x, w), TypeError, "grad_output"),
            ((g, x, w.astype(object)), TypeError, "weight")]:
        with pytest.raises(exc, match=match):
            nbops.linear_backward(*args)
