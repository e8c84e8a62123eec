"""The backwards of the softmax family (``nbops.softmax_backward``,
``log_softmax_backward``, ``softmin_backward``) and of ``nbops.prelu_backward``:
against ``torch.autograd`` (float32 and float64, several axes and layouts, a random
non-uniform grad_output), against central finite differences of the float64
references in ``tests/_reference.py``, inside ``@njit``, ``out=``, determinism of
prelu's weight gradient and the argument errors.

Arrays are small: each (core, dtype, rows or columns) compiles one serial kernel.
"""

import _reference as R
import numpy as np
import pytest
from numba import njit

import nbops
from nbops._ops import activation, table

ROW_OPS = [e.name for e in table.row_op_entries()]
DTYPES = [np.float32, np.float64]


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


def _layouts(rng, dtype):
    """(x, g, axis) cases: last axis, a middle axis, axis 0, a non-contiguous
    input, an F-order input along axis 0 and a 1-D row."""
    base = rng.normal(0, 2, (4, 5, 6)).astype(dtype)
    gbase = rng.uniform(-2, 2, (4, 5, 6)).astype(dtype)
    return [(base, gbase, -1), (base, gbase, 1), (base, gbase, 0),
            (base[:, ::2, 1:], gbase[:, ::2, 1:], 1),            # strided, columns
            (np.asfortranarray(base[0]), np.asfortranarray(gbase[0]), 0),  # F-order rows
            (base[0, 0], gbase[0, 0], 0)]


def _torch_grad(name, x, g, axis):
    torch = pytest.importorskip("torch")
    xt = torch.from_numpy(np.array(x)).requires_grad_()
    yt = getattr(torch.nn.functional, name)(xt, dim=axis)
    yt.backward(torch.from_numpy(np.array(g)))
    return yt.detach().numpy(), xt.grad.numpy()


# ------------------------------------------------------------ the softmax family
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ROW_OPS)
def test_row_backward_against_torch_autograd(name, dtype, rng):
    backward = getattr(nbops, f"{name}_backward")
    for x, g, axis in _layouts(rng, dtype):
        y, want = _torch_grad(name, x, g, axis)
        got = backward(g, y, axis)
        assert got.dtype == dtype and got.shape == x.shape
        np.testing.assert_allclose(got, want, **_tol(dtype), err_msg=f"{name} axis={axis}")
        # the forward's own output, and dim= as the alias of axis
        got = backward(g, getattr(nbops, name)(x, dim=axis), dim=axis)
        np.testing.assert_allclose(got, want, **_tol(dtype), err_msg=f"{name} dim={axis}")


def test_row_backward_torch_aten_kernels(rng):
    """The same values as PyTorch's backward kernels, called directly."""
    torch = pytest.importorskip("torch")
    x = rng.normal(0, 3, (8, 33)).astype(np.float32)
    g = rng.uniform(-1, 1, x.shape).astype(np.float32)
    gt = torch.from_numpy(g)
    y = nbops.softmax(x)
    want = torch.ops.aten._softmax_backward_data(gt, torch.from_numpy(y), 1, torch.float32)
    np.testing.assert_allclose(nbops.softmax_backward(g, y), want.numpy(), **_tol(np.float32))
    y = nbops.log_softmax(x)
    want = torch.ops.aten._log_softmax_backward_data(gt, torch.from_numpy(y), 1, torch.float32)
    np.testing.assert_allclose(nbops.log_softmax_backward(g, y), want.numpy(),
                               **_tol(np.float32))


@pytest.mark.parametrize("name", ROW_OPS)
def test_row_backward_against_finite_differences(name, rng):
    """J^T g by central differences of sum(g * op(x)), op the float64 reference."""
    f = R.reference(name)
    x = rng.normal(0, 1.5, (3, 4, 5))
    g = rng.uniform(-2, 2, x.shape)
    h = 1e-6
    for axis in (1, -1):
        fd = np.empty_like(x)
        for i in np.ndindex(x.shape):
            xp, xm = x.copy(), x.copy()
            xp[i] += h
            xm[i] -= h
            fd[i] = (np.sum(g * f(xp, axis)) - np.sum(g * f(xm, axis))) / (2 * h)
        got = getattr(nbops, f"{name}_backward")(g, f(x, axis), axis=axis)
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8, err_msg=f"{name} {axis}")


def test_row_backward_formulas():
    """PyTorch's formulas, written out (independent of torch)."""
    y = np.array([[0.2, 0.3, 0.5]])
    g = np.array([[1.0, -2.0, 0.5]])
    s = np.sum(g * y)
    np.testing.assert_allclose(nbops.softmax_backward(g, y), y * (g - s), rtol=1e-15)
    np.testing.assert_allclose(nbops.softmin_backward(g, y), -y * (g - s), rtol=1e-15)
    ly = np.log(y)
    np.testing.assert_allclose(nbops.log_softmax_backward(g, ly), g - y * g.sum(), rtol=1e-14)
    # a one-element axis: the softmax is 1 whatever x, so the gradient is 0
    assert nbops.softmax_backward(np.array(3.0), np.array(1.0)) == 0.0


def test_row_backward_dtypes_and_long_rows(rng):
    y = nbops.softmax(rng.normal(size=(2, 3000)).astype(np.float32))
    g = rng.uniform(-1, 1, y.shape).astype(np.float32)
    got = nbops.softmax_backward(g, y)
    assert got.dtype == np.float32
    y64, g64 = y.astype(np.float64), g.astype(np.float64)
    want = y64 * (g64 - np.sum(g64 * y64, axis=-1, keepdims=True))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)
    # mixed float dtypes: the common one (as the elementwise backwards)
    assert nbops.softmax_backward(g, y64).dtype == np.float64


def test_row_backward_out(rng):
    x = rng.normal(size=(3, 4, 5))
    g = rng.uniform(-1, 1, x.shape)
    y = nbops.log_softmax(x, axis=1)
    want = nbops.log_softmax_backward(g, y, axis=1)
    out = np.empty_like(x)
    assert nbops.log_softmax_backward(g, y, axis=1, out=out) is out
    np.testing.assert_array_equal(out, want)
    # into grad_output itself, into output itself, into a strided array
    g2 = g.copy()
    assert nbops.log_softmax_backward(g2, y, axis=1, out=g2) is g2
    np.testing.assert_array_equal(g2, want)
    y2 = y.copy()
    nbops.log_softmax_backward(g, y2, axis=1, out=y2)
    np.testing.assert_array_equal(y2, want)
    big = np.zeros((3, 8, 5))
    nbops.log_softmax_backward(g, y, axis=1, out=big[:, ::2])
    np.testing.assert_array_equal(big[:, ::2], want)
    # a float32 result into a float64 out is refused (exact dtype, as the forwards)
    with pytest.raises(TypeError, match="out"):
        nbops.log_softmax_backward(g, y, axis=1, out=np.empty(x.shape, np.float32))
    with pytest.raises(ValueError, match="out"):
        nbops.log_softmax_backward(g, y, axis=1, out=np.empty((3, 5, 4)))


def test_row_backward_bad_arguments():
    g = np.ones((3, 4))
    with pytest.raises(ValueError, match="grad_output.*output"):
        nbops.softmax_backward(g, np.ones((4, 3)))
    with pytest.raises(ValueError, match="grad_output.*output"):
        nbops.softmax_backward(g, np.ones((1, 4)))  # no broadcasting
    with pytest.raises(TypeError, match="grad_output"):
        nbops.softmax_backward(g.astype(np.int64), g)
    with pytest.raises(TypeError, match="output"):
        nbops.log_softmax_backward(g, np.ones((3, 4), np.int32))
    with pytest.raises(ValueError, match="axis"):
        nbops.softmin_backward(g, g, axis=2)
    with pytest.raises(TypeError, match="axis"):
        nbops.softmin_backward(g, g, axis=1.5)
    with pytest.raises(TypeError, match="axis or dim"):
        nbops.softmax_backward(g, g, axis=0, dim=1)


def test_row_backward_entries():
    for e in table.row_op_entries():
        fn = getattr(nbops, f"{e.name}_backward")
        assert e.backward_function is fn and f"{e.name}_backward" in nbops.__all__
        assert fn.__module__ == "nbops._ops.softmax"
        for section in ("Parameters\n----------\ngrad_output", "Returns\n-------",
                        "Notes\n-----", "Examples\n--------"):
            assert section in fn.__doc__


# ---------------------------------------------------------------- inside @njit
@njit
def _softmax_bwd(g, y, axis):
    return nbops.softmax_backward(g, y, axis)


@njit
def _log_softmax_bwd_dim(g, y, axis, out):
    return nbops.log_softmax_backward(g, y, dim=axis, out=out)


@njit
def _softmin_bwd(g, y):
    return nbops.softmin_backward(g, y)


def test_row_backward_njit(rng):
    x = rng.normal(size=(3, 4, 5))
    g = rng.uniform(-1, 1, x.shape)
    for axis in (1, -1):
        y = nbops.softmax(x, axis)
        np.testing.assert_array_equal(_softmax_bwd(g, y, axis),
                                      nbops.softmax_backward(g, y, axis))
        y = nbops.log_softmax(x, axis)
        out = np.empty_like(x)
        assert _log_softmax_bwd_dim(g, y, axis, out) is out
        np.testing.assert_array_equal(out, nbops.log_softmax_backward(g, y, axis))
    y2 = nbops.softmin(x[:, 1])  # non-contiguous, last axis
    np.testing.assert_array_equal(_softmin_bwd(g[:, 1], y2),
                                  nbops.softmin_backward(g[:, 1], y2))
    with pytest.raises(ValueError, match="axis"):
        _softmax_bwd(g, x, 5)
    with pytest.raises(ValueError, match="shape"):
        _softmax_bwd(g, x[:, :2].copy(), 0)
    with pytest.raises(ValueError, match="output"):
        _softmax_bwd(g, y2, 0)  # another number of dimensions


# ---------------------------------------------------------------------- prelu
def _prelu_cases(rng, dtype):
    """(x, weight) with zeros in x: (N, C), (N, C, H, W), (N, C, L) with one
    weight, a 1-D input, a non-contiguous input."""
    x4 = rng.normal(size=(3, 4, 5, 2)).astype(dtype)
    x4.flat[::7] = 0.0
    x2 = rng.normal(size=(6, 5)).astype(dtype)
    x2[0] = 0.0
    return [(x2, rng.uniform(0.1, 0.5, 5).astype(dtype)),
            (x4, rng.uniform(0.1, 0.5, 4).astype(dtype)),
            (x4[:, :, 1], np.array([0.25], dtype)),
            (x2[:, 1].copy(), np.array([0.25], dtype)),
            (x4[:, ::2, ::2], rng.uniform(0.1, 0.5, 2).astype(dtype))]


@pytest.mark.parametrize("dtype", DTYPES)
def test_prelu_backward_against_torch_autograd(dtype, rng):
    torch = pytest.importorskip("torch")
    for x, w in _prelu_cases(rng, dtype):
        g = rng.uniform(-2, 2, x.shape).astype(dtype)
        xt = torch.from_numpy(x.copy()).requires_grad_()
        wt = torch.from_numpy(w.copy()).requires_grad_()
        torch.nn.functional.prelu(xt, wt).backward(torch.from_numpy(g))
        gi, gw = nbops.prelu_backward(g, x, w)
        assert gi.dtype == gw.dtype == dtype and gi.shape == x.shape and gw.shape == w.shape
        # the input gradient is one product per element: exactly PyTorch's
        np.testing.assert_array_equal(gi, xt.grad.numpy(), err_msg=str(x.shape))
        np.testing.assert_allclose(gw, wt.grad.numpy(), **_tol(dtype), err_msg=str(x.shape))


def test_prelu_backward_conventions():
    """At x == 0: the input gradient is w * g and the weight gets 0 (PyTorch's
    ``x > 0`` test); NaN x: w * g and NaN."""
    g = np.array([[2.0, 2.0, 2.0, 2.0]])
    x = np.array([[0.0, -0.0, 1.0, -3.0]])
    gi, gw = nbops.prelu_backward(g.T, x.T, np.array([0.25]))
    np.testing.assert_array_equal(gi.ravel(), [0.5, 0.5, 2.0, 0.5])
    assert gw[0] == -6.0
    gi, gw = nbops.prelu_backward(np.array([1.0]), np.array([np.nan]), np.array([0.25]))
    assert gi[0] == 0.25 and np.isnan(gw[0])


def test_prelu_backward_against_finite_differences(rng):
    x = rng.normal(size=(3, 4, 5))
    x[np.abs(x) < 1e-3] = 0.5  # away from the kink
    w = rng.uniform(0.1, 0.5, 4)
    g = rng.uniform(-2, 2, x.shape)
    h = 1e-6

    def loss(x, w):
        return np.sum(g * R.prelu(x, w))

    fd_x = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        fd_x[i] = (loss(xp, w) - loss(xm, w)) / (2 * h)
    fd_w = np.array([(loss(x, w + h * e) - loss(x, w - h * e)) / (2 * h) for e in np.eye(4)])
    gi, gw = nbops.prelu_backward(g, x, w)
    np.testing.assert_allclose(gi, fd_x, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gw, fd_w, rtol=1e-6, atol=1e-8)


def test_prelu_backward_deterministic(rng):
    """The weight gradient is the same, bit for bit, from the serial and the
    parallel kernel (the partials are fixed chunks, added in order)."""
    for shape, C in (((40, 3, 700), 3), ((3000, 24), 24), ((50000,), 1)):
        x = rng.normal(size=shape).astype(np.float32)
        g = rng.uniform(-1, 1, shape).astype(np.float32)
        w = np.full(C, 0.25, np.float32)
        inner, per, chunks = activation.prelu_grad_plan(shape, C)
        assert chunks > 1
        results = []
        for kernel in (activation._prelu_grad_serial, activation._prelu_grad_parallel):
            gi = np.empty(x.size, np.float32)
            partial = np.empty(chunks * C)
            kernel(g.ravel(), x.ravel(), w, gi, partial,
                   None if inner == 1 and C > 1 else inner, per)
            results.append((gi, partial))
        np.testing.assert_array_equal(results[0][0], results[1][0])
        np.testing.assert_array_equal(results[0][1], results[1][1])
        _, gw = nbops.prelu_backward(g, x, w)
        want = results[0][1].reshape(chunks, C).sum(axis=0).astype(np.float32)
        np.testing.assert_array_equal(gw, want)


def test_prelu_backward_out(rng):
    x = rng.normal(size=(4, 3, 5))
    g = rng.uniform(-1, 1, x.shape)
    w = np.array([0.1, 0.2, 0.3])
    want_i, want_w = nbops.prelu_backward(g, x, w)
    oi, ow = np.empty_like(x), np.empty(3)
    gi, gw = nbops.prelu_backward(g, x, w, out=(oi, ow))
    assert gi is oi and gw is ow
    np.testing.assert_array_equal(oi, want_i)
    np.testing.assert_array_equal(ow, want_w)
    gi, gw = nbops.prelu_backward(g, x, w, out=(None, ow))
    np.testing.assert_array_equal(gi, want_i)
    g2 = g.copy()
    assert nbops.prelu_backward(g2, x, w, out=(g2, None))[0] is g2  # into grad_output
    np.testing.assert_array_equal(g2, want_i)
    with pytest.raises(TypeError, match="out"):
        nbops.prelu_backward(g, x, w, out=oi)
    with pytest.raises(ValueError, match="out"):
        nbops.prelu_backward(g, x, w, out=(oi, np.empty(4)))
    # the two gradients into overlapping memory: rejected before anything is written
    buf = np.full(x.size + 2, 7.0)  # one element in common
    with pytest.raises(ValueError, match="grad_input and grad_weight share memory"):
        nbops.prelu_backward(g, x, w, out=(buf[2:].reshape(x.shape), buf[:3]))
    with pytest.raises(ValueError, match="share memory"):
        nbops.prelu_backward(g, x, w, out=(buf[:-2].reshape(x.shape), buf[-3:]))
    assert (buf == 7.0).all()


def test_prelu_backward_bad_arguments():
    x = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="grad_output.*input"):
        nbops.prelu_backward(np.ones((2, 3)), x, np.ones(3))
    with pytest.raises(TypeError, match="grad_output"):
        nbops.prelu_backward(x.astype(int), x, np.ones(3))
    with pytest.raises(TypeError, match="input"):
        nbops.prelu_backward(x, x.astype(np.int32), np.ones(3))
    with pytest.raises(ValueError, match="weight"):
        nbops.prelu_backward(x, x, np.ones(2))
    with pytest.raises(ValueError, match="weight"):
        nbops.prelu_backward(x[0, 0], x[0, 0], np.ones(3))  # 1-D input: one weight


@njit
def _prelu_bwd(g, x, w):
    return nbops.prelu_backward(g, x, w)


def test_prelu_backward_njit(rng):
    for x, w in _prelu_cases(rng, np.float64)[:4]:
        g = rng.uniform(-2, 2, x.shape)
        gi, gw = _prelu_bwd(g, x, w)
        want_i, want_w = nbops.prelu_backward(g, x, w)
        np.testing.assert_array_equal(gi, want_i)
        np.testing.assert_array_equal(gw, want_w)
    with pytest.raises(ValueError, match="weight"):
        _prelu_bwd(g, x, np.ones(3))
