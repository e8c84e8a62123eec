"""Backwards of batch_norm, dropout / dropout2d / dropout3d and pairwise_distance:
against ``torch.autograd`` (float32 and float64, non-contiguous inputs, random
non-uniform grad_output), against central finite differences in float64
computed here, bit-identical on both sides of the parallel threshold, inside
``@njit``, and their argument errors. Arrays are small: each kernel compiles
for few (dtype, layout) pairs."""

import sys

import numpy as np
import pytest
from numba import njit

import nbops
from nbops import _config

torch = pytest.importorskip("torch")
F = torch.nn.functional

DTYPES = [np.float32, np.float64]
TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def _grad(t, like):
    """A tensor's gradient as an array (zeros where autograd gave none)."""
    return np.zeros_like(like) if t.grad is None else t.grad.numpy()


@pytest.fixture
def serial_and_parallel(monkeypatch):
    """Run a function with the serial kernels, then with the parallel ones."""
    def run(fn):
        monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", sys.maxsize)
        serial = fn()
        monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1)
        parallel = fn()
        return serial, parallel
    return run


# ===================================================================== batch_norm
BN_SHAPES = [(7, 3), (4, 3, 5), (3, 4, 5, 6), (2, 3, 2, 3, 4), (3, 2, 80)]


def _bn_data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    g = rng.uniform(-2, 2, shape).astype(dtype)  # random, non-uniform
    w = rng.uniform(0.5, 2, c).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    rm = rng.standard_normal(c).astype(dtype)
    rv = rng.uniform(0.5, 2, c).astype(dtype)
    return x, g, w, b, rm, rv


def _torch_bn(x, g, w, b, rm, rv, training):
    tx = torch.tensor(x, requires_grad=True)
    tw = None if w is None else torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    y = F.batch_norm(tx, None if rm is None else torch.tensor(rm),
                     None if rv is None else torch.tensor(rv), tw, tb, training=training)
    y.backward(torch.tensor(g))
    return (tx.grad.numpy(), None if w is None else tw.grad.numpy(),
            None if b is None else tb.grad.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_return_stats(shape, dtype):
    x, _, w, b, rm, rv = _bn_data(shape, dtype)
    tx = torch.tensor(x)
    _, t_mean, t_invstd = torch.ops.aten.native_batch_norm(tx, None, None, None, None, True,
                                                           0.1, 1e-5)
    y, mean, invstd = nbops.batch_norm(x, None, None, w, b, training=True, return_stats=True)
    assert mean.dtype == invstd.dtype == dtype and mean.shape == (shape[1],)
    np.testing.assert_array_equal(y, nbops.batch_norm(x, None, None, w, b, training=True))
    np.testing.assert_allclose(mean, t_mean.numpy(), **TOL[dtype])
    np.testing.assert_allclose(invstd, t_invstd.numpy(), **TOL[dtype])
    y, mean, invstd = nbops.batch_norm(x, rm, rv, w, b, eps=1e-3, return_stats=True)
    np.testing.assert_array_equal(mean, rm)
    np.testing.assert_allclose(invstd, 1 / np.sqrt(rv.astype(np.float64) + 1e-3),
                               **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_against_torch(shape, dtype, training):
    x, g, w, b, rm, rv = _bn_data(shape, dtype)
    for weight, bias in ((w, b), (None, None)):
        _, mean, invstd = nbops.batch_norm(x, rm.copy(), rv.copy(), weight, bias,
                                           training=training, return_stats=True)
        gi, gw, gb = nbops.batch_norm_backward(g, x, mean, invstd, weight, training=training)
        ti, tw, tb = _torch_bn(x, g, weight, bias, rm, rv, training)
        assert gi.dtype == dtype and gi.shape == shape
        np.testing.assert_allclose(gi, ti, **TOL[dtype])
        if weight is None:
            assert gw is None and gb is None
        else:
            assert gw.dtype == gb.dtype == dtype
            np.testing.assert_allclose(gw, tw, rtol=TOL[dtype]["rtol"], atol=1e-3 if
                                       dtype == np.float32 else 1e-10)
            np.testing.assert_allclose(gb, tb, rtol=TOL[dtype]["rtol"], atol=1e-4 if
                                       dtype == np.float32 else 1e-11)


def test_batch_norm_backward_non_contiguous_and_out():
    x, g, w, b, _, _ = _bn_data((6, 3, 8, 10), np.float64)
    xs, gs = x[::2, :, ::2], g[1::2, :, 1::2]  # strided views
    _, mean, invstd = nbops.batch_norm(xs, None, None, w, b, training=True, return_stats=True)
    gi, gw, gb = nbops.batch_norm_backward(gs, xs, mean, invstd, w, training=True)
    ti, tw, tb = _torch_bn(np.ascontiguousarray(xs), np.ascontiguousarray(gs), w, b, None,
                           None, True)
    np.testing.assert_allclose(gi, ti, **TOL[np.float64])
    np.testing.assert_allclose(gw, tw, **TOL[np.float64])
    np.testing.assert_allclose(gb, tb, **TOL[np.float64])
    out = np.empty(xs.shape)
    res = nbops.batch_norm_backward(gs, xs, mean, invstd, w, training=True, out=out)
    assert res[0] is out
    np.testing.assert_array_equal(out, gi)
    fortran = np.empty(xs.shape, order="F")  # written through a copy
    assert nbops.batch_norm_backward(gs, xs, mean, invstd, w, training=True,
                                     out=fortran)[0] is fortran
    np.testing.assert_array_equal(fortran, gi)


def test_batch_norm_backward_empty_input():
    x = np.zeros((0, 3, 4), np.float32)
    y, mean, invstd = nbops.batch_norm(x, None, None, training=True, return_stats=True)
    assert y.shape == x.shape and mean.shape == invstd.shape == (3,)
    gi, gw, gb = nbops.batch_norm_backward(x, x, mean, invstd, np.ones(3, np.float32),
                                           training=True)
    assert gi.shape == x.shape and gi.dtype == np.float32
    np.testing.assert_array_equal(gw, np.zeros(3))
    np.testing.assert_array_equal(gb, np.zeros(3))


def test_batch_norm_backward_has_bias():
    x, g, w, _, _, _ = _bn_data((5, 3), np.float64)
    _, mean, invstd = nbops.batch_norm(x, None, None, w, None, training=True,
                                       return_stats=True)
    _, gw, gb = nbops.batch_norm_backward(g, x, mean, invstd, w, training=True, has_bias=False)
    assert gw is not None and gb is None
    _, gw, gb = nbops.batch_norm_backward(g, x, mean, invstd, None, training=True,
                                          has_bias=True)
    assert gw is None
    np.testing.assert_allclose(gb, g.sum(axis=0))


def _fd(f, a, h=1e-6):
    """Central finite differences of the scalar function ``f`` at each entry of ``a``."""
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        keep = a[i]
        a[i] = keep + h
        up = f()
        a[i] = keep - h
        down = f()
        a[i] = keep
        grad[i] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_finite_differences(training):
    x, g, w, b, rm, rv = _bn_data((4, 2, 3), np.float64, seed=3)

    def loss():
        return float(np.sum(g * nbops.batch_norm(x, rm.copy(), rv.copy(), w, b,
                                                 training=training)))

    _, mean, invstd = nbops.batch_norm(x, rm.copy(), rv.copy(), w, b, training=training,
                                       return_stats=True)
    gi, gw, gb = nbops.batch_norm_backward(g, x, mean, invstd, w, training=training)
    np.testing.assert_allclose(gi, _fd(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gw, _fd(loss, w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gb, _fd(loss, b), rtol=1e-6, atol=1e-7)


def test_batch_norm_backward_threads_bit_identical(serial_and_parallel):
    x, g, w, _, _, _ = _bn_data((16, 3, 70, 40), np.float32, seed=5)
    _, mean, invstd = nbops.batch_norm(x, None, None, w, None, training=True,
                                       return_stats=True)
    serial, parallel = serial_and_parallel(
        lambda: nbops.batch_norm_backward(g, x, mean, invstd, w, training=True))
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)


def test_batch_norm_backward_bad_inputs():
    x, g, w, _, _, _ = _bn_data((4, 3, 2), np.float64)
    mean, invstd = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="grad_output"):
        nbops.batch_norm_backward(g[:2], x, mean, invstd, w)
    with pytest.raises(TypeError, match="grad_output"):
        nbops.batch_norm_backward(g.astype(int), x, mean, invstd, w)
    with pytest.raises(ValueError, match="mean"):
        nbops.batch_norm_backward(g, x, np.zeros(2), invstd, w)
    with pytest.raises(ValueError, match="invstd"):
        nbops.batch_norm_backward(g, x, mean, np.ones((3, 1)), w)
    with pytest.raises(ValueError, match="weight"):
        nbops.batch_norm_backward(g, x, mean, invstd, np.ones(4))
    with pytest.raises(ValueError, match="input"):
        nbops.batch_norm_backward(g[0, 0], x[0, 0], mean[:2], invstd[:2])
    with pytest.raises(ValueError, match="more than 1 value"):
        nbops.batch_norm_backward(g[:1, :, :1], x[:1, :, :1], mean, invstd, training=True)
    with pytest.raises(ValueError, match="out"):
        nbops.batch_norm_backward(g, x, mean, invstd, out=np.empty(3))


# ===================================================================== dropout
DROPOUTS = [("dropout", (5, 7, 3)), ("dropout2d", (4, 6, 3, 5)), ("dropout3d", (3, 4, 2, 3, 2))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name, shape", DROPOUTS)
def test_dropout_backward_regenerates_the_mask(name, shape, dtype):
    forward, backward = getattr(nbops, name), getattr(nbops, f"{name}_backward")
    g = np.random.default_rng(0).uniform(-2, 2, shape).astype(dtype)
    mask = forward(np.ones(shape, dtype), 0.3, rng=1234)
    gx = backward(g, 0.3, rng=1234)
    assert gx.dtype == dtype
    np.testing.assert_array_equal(gx, g * mask)  # bit for bit
    # against torch's kernel with the same mask
    keep = torch.tensor(mask != 0)
    np.testing.assert_array_equal(
        gx, torch.ops.aten.native_dropout_backward(torch.tensor(g), keep, 1 / 0.7).numpy())
    # strided grad_output: the mask of the C-order index
    gs = np.asfortranarray(g)
    np.testing.assert_array_equal(backward(gs, 0.3, rng=1234), gx)
    out = np.empty(shape, dtype)
    assert backward(g, 0.3, rng=1234, out=out) is out
    np.testing.assert_array_equal(out, gx)


@pytest.mark.parametrize("name, shape", DROPOUTS)
def test_dropout_backward_edges(name, shape):
    backward = getattr(nbops, f"{name}_backward")
    g = np.random.default_rng(1).standard_normal(shape)
    g.flat[0] = np.nan
    for kwargs in (dict(p=0.0), dict(p=0.4, training=False)):
        res = backward(g, rng=0, **kwargs)
        assert res is not g
        np.testing.assert_array_equal(res, g)
    res = backward(g, 1.0, rng=0)
    assert np.isnan(res.flat[0]) and not res.flat[1:].any()  # g * 0, as the forward


def test_dropout_backward_finite_differences():
    x = np.random.default_rng(2).standard_normal((3, 4, 2, 2))
    g = np.random.default_rng(3).uniform(-1, 1, x.shape)
    for name in ("dropout", "dropout2d"):
        forward, backward = getattr(nbops, name), getattr(nbops, f"{name}_backward")
        fd = _fd(lambda f=forward: float(np.sum(g * f(x, 0.5, rng=99))), x)
        np.testing.assert_allclose(backward(g, 0.5, rng=99), fd, rtol=1e-6, atol=1e-8)


def test_dropout_backward_threads_bit_identical(serial_and_parallel):
    g = np.random.default_rng(4).standard_normal(300_001).astype(np.float32)
    serial, parallel = serial_and_parallel(lambda: nbops.dropout_backward(g, 0.2, rng=5))
    np.testing.assert_array_equal(serial, parallel)
    np.testing.assert_array_equal(serial, nbops.dropout(g, 0.2, rng=5))


def test_dropout_backward_bad_inputs():
    g = np.ones((2, 3, 4))
    for rng in (None, np.random.default_rng(0), 1.5, True):
        with pytest.raises(TypeError, match="rng"):
            nbops.dropout_backward(g, 0.5, rng=rng)
    with pytest.raises(TypeError, match="rng"):
        nbops.dropout2d_backward(g, 0.5)  # rng is required
    with pytest.raises(ValueError, match="rng"):
        nbops.dropout_backward(g, 0.5, rng=-1)
    with pytest.raises(ValueError, match="p"):
        nbops.dropout3d_backward(g, 1.5, rng=0)
    with pytest.raises(TypeError, match="grad_output"):
        nbops.dropout_backward(np.ones(3, int), 0.5, rng=0)
    with pytest.raises(ValueError, match="out"):
        nbops.dropout_backward(g, 0.5, rng=0, out=np.empty(3))


# ===================================================================== pairwise_distance
P_VALUES = [2.0, 1.0, 0.0, 3.0, 1.5, 0.5, -0.7, np.inf, -np.inf]
PD_SHAPES = [((5, 7), (5, 7)), ((7,), (4, 7)), ((3, 1, 6), (4, 6)), ((6,), (6,)), ((), ())]


def _torch_pd(x1, x2, g, p, eps, keepdim):
    t1 = torch.tensor(x1, requires_grad=True)
    t2 = torch.tensor(x2, requires_grad=True)
    F.pairwise_distance(t1, t2, p=p, eps=eps, keepdim=keepdim).backward(torch.tensor(g))
    return _grad(t1, x1), _grad(t2, x2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", P_VALUES)
def test_pairwise_distance_backward_against_torch(p, dtype):
    rng = np.random.default_rng(0)
    for (s1, s2), keepdim in zip(PD_SHAPES * 2, [False] * 5 + [True] * 5, strict=True):
        x1 = rng.standard_normal(s1).astype(dtype)
        x2 = rng.standard_normal(s2).astype(dtype)
        if s1 == s2 and s1:
            x2.flat[0] = x1.flat[0]  # a zero difference (but for eps)
        out_shape = nbops.pairwise_distance(x1, x2, p=p, keepdim=keepdim).shape
        g = rng.uniform(-2, 2, out_shape).astype(dtype)
        g1, g2 = nbops.pairwise_distance_backward(g, x1, x2, p=p, keepdim=keepdim)
        t1, t2 = _torch_pd(x1, x2, g, p, 1e-6, keepdim)
        assert g1.shape == x1.shape and g2.shape == x2.shape
        assert g1.dtype == g2.dtype == dtype
        np.testing.assert_allclose(g1, t1, **TOL[dtype])
        np.testing.assert_allclose(g2, t2, **TOL[dtype])


def test_pairwise_distance_backward_conventions():
    """Zero differences (eps=0), NaN, the eps shift of identical rows, ties of the max."""
    x1 = np.array([[1.0, 2.0, 3.0], [1.0, np.nan, 3.0], [1.0, -2.0, 2.0], [0.0, 0.0, 0.0]])
    x2 = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    g = np.array([0.5, -1.5, 2.0, 1.0])
    for p in P_VALUES:
        for eps in (0.0, 1e-6):
            g1, g2 = nbops.pairwise_distance_backward(g, x1, x2, p=p, eps=eps)
            t1, t2 = _torch_pd(x1, x2, g, p, eps, False)
            np.testing.assert_allclose(g1, t1, rtol=1e-12, atol=0, equal_nan=True)
            np.testing.assert_allclose(g2, t2, rtol=1e-12, atol=0, equal_nan=True)
    # identical rows with the eps shift: not 0 for p = 2 (g / sqrt(D))
    g1, _ = nbops.pairwise_distance_backward(np.ones(1), x1[:1], x1[:1])
    np.testing.assert_allclose(g1, np.full((1, 3), 1 / np.sqrt(3)))


def test_pairwise_distance_backward_non_contiguous_and_out():
    rng = np.random.default_rng(1)
    x1 = rng.standard_normal((8, 10))[::2, ::2]
    x2 = rng.standard_normal((10, 4)).T[:, ::2][:4]
    g = rng.standard_normal(8)[::2]
    g1, g2 = nbops.pairwise_distance_backward(g, x1, x2, p=3.0)
    t1, t2 = _torch_pd(np.ascontiguousarray(x1), np.ascontiguousarray(x2),
                       np.ascontiguousarray(g), 3.0, 1e-6, False)
    np.testing.assert_allclose(g1, t1, **TOL[np.float64])
    np.testing.assert_allclose(g2, t2, **TOL[np.float64])
    o1 = np.empty(x1.shape)
    r1, r2 = nbops.pairwise_distance_backward(g, x1, x2, p=3.0, out=(o1, None))
    assert r1 is o1
    np.testing.assert_array_equal(o1, g1)
    np.testing.assert_array_equal(r2, g2)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 1.5, 0.5, np.inf])
def test_pairwise_distance_backward_finite_differences(p):
    rng = np.random.default_rng(7)
    x1, x2 = rng.standard_normal((3, 4)), rng.standard_normal((1, 4))
    g = rng.uniform(-1, 1, 3)

    def loss():
        return float(np.sum(g * nbops.pairwise_distance(x1, x2, p=p)))

    g1, g2 = nbops.pairwise_distance_backward(g, x1, x2, p=p)
    np.testing.assert_allclose(g1, _fd(loss, x1), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(g2, _fd(loss, x2), rtol=1e-6, atol=1e-7)


def test_pairwise_distance_backward_threads_bit_identical(serial_and_parallel):
    rng = np.random.default_rng(8)
    x1 = rng.standard_normal((3000, 64)).astype(np.float32)
    x2 = rng.standard_normal((3000, 64)).astype(np.float32)
    g = rng.standard_normal(3000).astype(np.float32)
    serial, parallel = serial_and_parallel(
        lambda: nbops.pairwise_distance_backward(g, x1, x2, p=np.inf))
    for a, b in zip(serial, parallel, strict=True):
        np.testing.assert_array_equal(a, b)


def test_pairwise_distance_backward_bad_inputs():
    x1, x2 = np.ones((3, 4)), np.zeros((3, 4))
    with pytest.raises(ValueError, match="grad_output"):
        nbops.pairwise_distance_backward(np.ones(4), x1, x2)
    with pytest.raises(ValueError, match="grad_output"):
        nbops.pairwise_distance_backward(np.ones(3), x1, x2, keepdim=True)
    with pytest.raises(TypeError, match="grad_output"):
        nbops.pairwise_distance_backward(np.ones(3, int), x1, x2)
    with pytest.raises(ValueError, match="broadcast"):
        nbops.pairwise_distance_backward(np.ones(3), x1, np.ones((2, 4)))
    with pytest.raises(TypeError, match="x2"):
        nbops.pairwise_distance_backward(np.ones(3), x1, x2.astype(complex))
    with pytest.raises(ValueError, match=r"out\[1\]"):
        nbops.pairwise_distance_backward(np.ones(3), x1, x2, out=(None, np.empty(3)))
    with pytest.raises(TypeError, match="out"):
        nbops.pairwise_distance_backward(np.ones(3), x1, x2, out=np.empty((3, 4)))


# ===================================================================== inside @njit
@njit
def _bn_njit(x, g, w, rm, rv, training):
    _, mean, invstd = nbops.batch_norm(x, rm, rv, w, None, training, 0.1, 1e-5,
                                       return_stats=True)
    return mean, invstd, nbops.batch_norm_backward(g, x, mean, invstd, w, training)


@njit
def _bn_njit_no_weight(x, g, mean, invstd):
    return nbops.batch_norm_backward(g, x, mean, invstd, None, True, has_bias=True)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_inside_njit(training):
    x, g, w, _, rm, rv = _bn_data((4, 3, 5, 2), np.float32, seed=9)
    mean, invstd, (gi, gw, gb) = _bn_njit(x, g, w, rm.copy(), rv.copy(), training)
    _, m, i = nbops.batch_norm(x, rm.copy(), rv.copy(), w, None, training=training,
                               return_stats=True)
    np.testing.assert_array_equal(mean, m)
    np.testing.assert_array_equal(invstd, i)
    for a, b in zip((gi, gw, gb), nbops.batch_norm_backward(g, x, m, i, w, training=training),
                    strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)  # the same bits as outside @njit
    gi, gw, gb = _bn_njit_no_weight(x, g, m, i)
    assert gw is None
    np.testing.assert_array_equal(gi, nbops.batch_norm_backward(g, x, m, i, training=True)[0])
    np.testing.assert_array_equal(gb, nbops.batch_norm_backward(g, x, m, i, training=True,
                                                                has_bias=True)[2])
    with pytest.raises(ValueError, match="mean"):
        _bn_njit_no_weight(x, g, m[:2], i)


@njit
def _dropouts_njit(g, seed):
    return (nbops.dropout_backward(g, 0.3, True, rng=seed),
            nbops.dropout2d_backward(g, 0.3, rng=seed),
            nbops.dropout3d_backward(g, 0.3, rng=seed))


def test_dropout_backward_inside_njit():
    g = np.random.default_rng(0).standard_normal((3, 4, 2, 3, 2)).astype(np.float32)
    for name, res in zip(("dropout", "dropout2d", "dropout3d"), _dropouts_njit(g, 77),
                         strict=True):
        np.testing.assert_array_equal(res, getattr(nbops, f"{name}_backward")(g, 0.3, rng=77))

    @njit
    def no_seed(g):
        return nbops.dropout_backward(g, 0.3)

    with pytest.raises(Exception, match="dropout_backward"):
        no_seed(g)


@njit
def _pd_njit(g, x1, x2, p):
    return nbops.pairwise_distance_backward(g, x1, x2, p)


def test_pairwise_distance_backward_inside_njit():
    rng = np.random.default_rng(3)
    x1, x2 = rng.standard_normal((5, 7)), rng.standard_normal((5, 7))
    g = rng.standard_normal(5)
    for p in (2.0, np.inf):
        for a, b in zip(_pd_njit(g, x1, x2, p),
                        nbops.pairwise_distance_backward(g, x1, x2, p=p), strict=True):
            np.testing.assert_array_equal(a, b)
    x2 = x2[:1]  # broadcast: summed in index order inside @njit
    for a, b in zip(_pd_njit(g, x1, x2, 1.5),
                    nbops.pairwise_distance_backward(g, x1, x2, p=1.5), strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-13)
