"""Tests of ``nbops.layer_norm``, ``nbops.rms_norm``, their backwards and their nn modules.

Expected values come from the float64 NumPy formulas below (``ref_*``), from
central finite differences in float64, or from PyTorch (parity tests only),
never from nbops itself.
"""

import numpy as np
import pytest
from _threads import assert_same_bits_on_any_thread_count

import nbops

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-5),
       np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12)}
# (input shape, normalized_shape): one and two trailing dims, a row longer than
# the accumulator lanes with a tail (37), a row shorter than them (5)
CASES = [((6, 37), 37), ((3, 4, 5), (4, 5)), ((2, 3, 16), (16,)), ((7, 5), (5,))]


# --------------------------------------------------------------------------- #
# references
# --------------------------------------------------------------------------- #


def _axes(x, normalized_shape):
    k = 1 if np.ndim(normalized_shape) == 0 else len(normalized_shape)
    return tuple(range(x.ndim - k, x.ndim))


def ref_layer_norm(x, normalized_shape, w=None, b=None, eps=1e-5):
    """float64 reference: (output, mean, rstd) with keepdims statistics."""
    x = np.asarray(x, np.float64)
    axes = _axes(x, normalized_shape)
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    y = (x - mean) * rstd
    if w is not None:
        y = y * np.asarray(w, np.float64)
    if b is not None:
        y = y + np.asarray(b, np.float64)
    return y, mean, rstd


def ref_rms_norm(x, normalized_shape, w=None, eps=None):
    """float64 reference: (output, rstd) with keepdims statistics."""
    if eps is None:
        eps = float(np.finfo(np.asarray(x).dtype).eps)
    x = np.asarray(x, np.float64)
    rstd = 1.0 / np.sqrt((x * x).mean(axis=_axes(x, normalized_shape), keepdims=True) + eps)
    y = x * rstd
    if w is not None:
        y = y * np.asarray(w, np.float64)
    return y, rstd


def data(shape, dtype, seed=0, loc=0.5, scale=2.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale + loc).astype(dtype)


def trailing(shape, normalized_shape):
    k = 1 if np.ndim(normalized_shape) == 0 else len(normalized_shape)
    return shape[len(shape) - k:]


def affine(shape, normalized_shape, dtype, seed=3):
    ns = trailing(shape, normalized_shape)
    return data(ns, dtype, seed, 1.0, 0.5), data(ns, dtype, seed + 1, 0.0, 0.5)


def tt(a, grad=False):
    return None if a is None else torch.tensor(a, requires_grad=grad)


def as_list(normalized_shape):
    return [normalized_shape] if np.ndim(normalized_shape) == 0 else list(normalized_shape)


# --------------------------------------------------------------------------- #
# forward
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,ns", CASES)
@pytest.mark.parametrize("affine_kind", ["none", "weight", "both"])
def test_layer_norm_against_reference_and_torch(shape, ns, dtype, affine_kind):
    x = data(shape, dtype)
    w, b = affine(shape, ns, dtype)
    w = None if affine_kind == "none" else w
    b = b if affine_kind == "both" else None
    y = nbops.layer_norm(x, ns, w, b)
    assert y.dtype == dtype and y.shape == shape
    np.testing.assert_allclose(y, ref_layer_norm(x, ns, w, b)[0], **TOL[y.dtype])
    ty = F.layer_norm(tt(x), as_list(ns), tt(w), tt(b)).numpy()
    np.testing.assert_allclose(y, ty, **TOL[y.dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,ns", CASES)
@pytest.mark.parametrize("with_weight", [False, True])
def test_rms_norm_against_reference_and_torch(shape, ns, dtype, with_weight):
    x = data(shape, dtype)
    w = affine(shape, ns, dtype)[0] if with_weight else None
    for eps in (None, 1e-3):
        y = nbops.rms_norm(x, ns, w, eps)
        assert y.dtype == dtype and y.shape == shape
        np.testing.assert_allclose(y, ref_rms_norm(x, ns, w, eps)[0], **TOL[y.dtype])
        ty = F.rms_norm(tt(x), as_list(ns), tt(w), eps).numpy()
        np.testing.assert_allclose(y, ty, **TOL[y.dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_return_stats_match_torch(dtype):
    x = data((3, 4, 5), dtype)
    w, b = affine(x.shape, (4, 5), dtype)
    y, mean, rstd = nbops.layer_norm(x, (4, 5), w, b, eps=1e-3, return_stats=True)
    np.testing.assert_array_equal(y, nbops.layer_norm(x, (4, 5), w, b, eps=1e-3))
    ty, tmean, trstd = torch.ops.aten.native_layer_norm(tt(x), [4, 5], tt(w), tt(b), 1e-3)
    assert mean.shape == tuple(tmean.shape) == (3, 1, 1) and mean.dtype == dtype
    assert rstd.shape == tuple(trstd.shape) and rstd.dtype == dtype
    np.testing.assert_allclose(mean, tmean.numpy(), **TOL[np.dtype(dtype)])
    np.testing.assert_allclose(rstd, trstd.numpy(), **TOL[np.dtype(dtype)])
    y2, r2 = nbops.rms_norm(x, 5, return_stats=True)
    np.testing.assert_array_equal(y2, nbops.rms_norm(x, 5))
    assert r2.shape == (3, 4, 1) and r2.dtype == dtype
    np.testing.assert_allclose(r2, ref_rms_norm(x, 5)[1], **TOL[np.dtype(dtype)])


def test_non_contiguous_input_out_and_int_input():
    base = data((5, 12, 9), np.float32)
    x = base[:, ::2, 1:8].transpose(1, 0, 2)  # (6, 5, 7), no unit strides
    w, b = affine(x.shape, (5, 7), np.float32)
    expect = ref_layer_norm(x, (5, 7), w, b)[0]
    y = nbops.layer_norm(x, (5, 7), w, b)
    np.testing.assert_allclose(y, expect, **TOL[np.dtype(np.float32)])
    out = np.empty(x.shape, np.float32)
    assert nbops.layer_norm(x, (5, 7), w, b, out=out) is out
    np.testing.assert_array_equal(out, y)
    out_nc = np.empty((6, 5, 14), np.float32)[:, :, ::2]
    assert nbops.rms_norm(x, 7, out=out_nc) is out_nc
    np.testing.assert_array_equal(out_nc, nbops.rms_norm(x, 7))
    xi = np.arange(12).reshape(3, 4)  # an int input: a float64 result
    np.testing.assert_allclose(nbops.layer_norm(xi, 4), ref_layer_norm(xi, 4)[0], rtol=1e-12)
    np.testing.assert_allclose(nbops.rms_norm(xi, 4), ref_rms_norm(xi.astype(float), 4)[0],
                               rtol=1e-12)


def test_large_rows_float32_with_an_offset_mean():
    """float64 statistics around the row's first value: a float32 row of 2**18
    values with mean 1e4 and spread 1 keeps its variance."""
    rng = np.random.default_rng(7)
    x = (1e4 + rng.standard_normal((3, 1 << 18))).astype(np.float32)
    y, mean, rstd = nbops.layer_norm(x, x.shape[1], return_stats=True)
    ref, rmean, rrstd = ref_layer_norm(x, x.shape[1])
    np.testing.assert_allclose(y, ref, rtol=0, atol=2e-5)
    np.testing.assert_allclose(mean, rmean, rtol=1e-7)
    np.testing.assert_allclose(rstd, rrstd, rtol=1e-6)
    r = nbops.rms_norm(x, x.shape[1])
    np.testing.assert_allclose(r, ref_rms_norm(x, x.shape[1])[0], rtol=1e-6)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_and_inf_rows_as_torch():
    x = np.array([[1.0, np.nan, 2.0], [np.inf, 1.0, 2.0], [1.0, 2.0, np.inf],
                  [-np.inf, np.inf, 0.0], [3.0, 3.0, 3.0], [1.0, 2.0, 4.0]], np.float32)
    y, mean, rstd = nbops.layer_norm(x, 3, return_stats=True)
    ty, tmean, trstd = torch.ops.aten.native_layer_norm(tt(x), [3], None, None, 1e-5)
    for a, e in ((y, ty), (mean, tmean), (rstd, trstd)):
        np.testing.assert_allclose(a, e.numpy(), rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(nbops.rms_norm(x, 3), F.rms_norm(tt(x), [3]).numpy(), rtol=1e-6,
                               equal_nan=True)


def test_float32_rows_whose_squares_overflow_float32():
    """float64 statistics: rows of 1e30 normalize (documented in the semantics guide)."""
    x = np.array([[1e30, 1e30, -1e30], [3e30, -1e30, 2e30]], np.float32)
    np.testing.assert_allclose(nbops.layer_norm(x, 3), ref_layer_norm(x, 3)[0], rtol=1e-6)
    np.testing.assert_allclose(nbops.rms_norm(x, 3), ref_rms_norm(x, 3)[0], rtol=1e-6)


def test_empty_inputs():
    x = np.zeros((0, 4), np.float32)
    y, mean, rstd = nbops.layer_norm(x, 4, return_stats=True)
    assert y.shape == (0, 4) and mean.shape == (0, 1) and y.dtype == np.float32
    gi, gw, gb = nbops.layer_norm_backward(x, x, 4, mean, rstd, np.ones(4, np.float32))
    assert gi.shape == (0, 4)
    np.testing.assert_array_equal(gw, np.zeros(4, np.float32))
    np.testing.assert_array_equal(gb, np.zeros(4, np.float32))


# --------------------------------------------------------------------------- #
# backward
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,ns", CASES)
@pytest.mark.parametrize("affine_kind", ["none", "weight", "both"])
def test_layer_norm_backward_against_torch(shape, ns, dtype, affine_kind):
    x = data(shape, dtype)
    g = data(shape, dtype, seed=9, loc=0.1)
    w, b = affine(shape, ns, dtype)
    w = None if affine_kind == "none" else w
    b = b if affine_kind == "both" else None
    _, mean, rstd = nbops.layer_norm(x, ns, w, b, return_stats=True)
    gi, gw, gb = nbops.layer_norm_backward(g, x, ns, mean, rstd, w, has_bias=b is not None)
    tx, tw, tb = tt(x, True), tt(w, w is not None), tt(b, b is not None)
    F.layer_norm(tx, as_list(ns), tw, tb).backward(torch.tensor(g))
    tol = TOL[np.dtype(dtype)]
    assert gi.dtype == dtype and gi.shape == shape
    np.testing.assert_allclose(gi, tx.grad.numpy(), **tol)
    if w is None:
        assert gw is None
    else:
        assert gw.dtype == dtype and gw.shape == w.shape
        np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=tol["rtol"], atol=tol["atol"] * 10)
    if b is None:
        assert gb is None
    else:
        np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=tol["rtol"], atol=tol["atol"] * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,ns", CASES)
@pytest.mark.parametrize("with_weight", [False, True])
def test_rms_norm_backward_against_torch(shape, ns, dtype, with_weight):
    x = data(shape, dtype)
    g = data(shape, dtype, seed=9, loc=0.1)
    w = affine(shape, ns, dtype)[0] if with_weight else None
    _, rstd = nbops.rms_norm(x, ns, w, return_stats=True)
    gi, gw = nbops.rms_norm_backward(g, x, ns, rstd, w)
    tx, tw = tt(x, True), tt(w, with_weight)
    F.rms_norm(tx, as_list(ns), tw).backward(torch.tensor(g))
    tol = TOL[np.dtype(dtype)]
    assert gi.dtype == dtype and gi.shape == shape
    np.testing.assert_allclose(gi, tx.grad.numpy(), **tol)
    if w is None:
        assert gw is None
    else:
        assert gw.dtype == dtype and gw.shape == w.shape
        np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=tol["rtol"], atol=tol["atol"] * 10)


def _finite_difference(f, arrays, index, h=1e-6):
    """d f(*arrays) / d arrays[index], central differences (float64)."""
    a = arrays[index]
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + h
        up = f(*arrays)
        a[i] = old - h
        down = f(*arrays)
        a[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


def test_backwards_against_finite_differences():
    x = data((3, 2, 4), np.float64)
    g = data(x.shape, np.float64, seed=9)
    w, b = affine(x.shape, (2, 4), np.float64)

    def ln_loss(x, w, b):
        return float(np.sum(g * ref_layer_norm(x, (2, 4), w, b, eps=1e-3)[0]))

    _, mean, rstd = nbops.layer_norm(x, (2, 4), w, b, eps=1e-3, return_stats=True)
    gi, gw, gb = nbops.layer_norm_backward(g, x, (2, 4), mean, rstd, w)
    for got, index in ((gi, 0), (gw, 1), (gb, 2)):
        np.testing.assert_allclose(got, _finite_difference(ln_loss, [x, w, b], index),
                                   rtol=1e-6, atol=1e-7)

    def rms_loss(x, w):
        return float(np.sum(g * ref_rms_norm(x, 4, w, eps=1e-3)[0]))

    w4 = w[0].copy()
    _, rstd = nbops.rms_norm(x, 4, w4, eps=1e-3, return_stats=True)
    gi, gw = nbops.rms_norm_backward(g, x, 4, rstd, w4)
    for got, index in ((gi, 0), (gw, 1)):
        np.testing.assert_allclose(got, _finite_difference(rms_loss, [x, w4], index),
                                   rtol=1e-6, atol=1e-7)


def test_backward_non_contiguous_out_and_flat_stats():
    base = data((5, 12, 9), np.float32)
    x = base[:, ::2, 1:8].transpose(1, 0, 2)  # (6, 5, 7)
    g = data((6, 5, 14), np.float32, seed=4)[:, :, ::2]
    w, b = affine(x.shape, 7, np.float32)
    _, mean, rstd = nbops.layer_norm(x, 7, w, b, return_stats=True)
    gi, gw, gb = nbops.layer_norm_backward(g, x, 7, mean, rstd, w)
    tx, tw, tb = tt(x, True), tt(w, True), tt(b, True)
    F.layer_norm(tx, [7], tw, tb).backward(torch.tensor(g))
    np.testing.assert_allclose(gi, tx.grad.numpy(), rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=2e-5, atol=2e-4)
    out = np.empty(x.shape, np.float32)
    res = nbops.layer_norm_backward(g, x, 7, mean[..., 0], rstd[..., 0], w, out=out)
    assert res[0] is out
    np.testing.assert_array_equal(out, gi)
    np.testing.assert_array_equal(res[1], gw)
    assert nbops.layer_norm_backward(g, x, 7, mean, rstd, w, has_bias=False)[2] is None
    assert nbops.layer_norm_backward(g, x, 7, mean, rstd, None, has_bias=True)[1] is None


# --------------------------------------------------------------------------- #
# bad inputs
# --------------------------------------------------------------------------- #


def test_bad_inputs_are_rejected_before_any_kernel():
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"normalized_shape=\[5\]"):
        nbops.layer_norm(x, 5)
    with pytest.raises(ValueError, match=r"normalized_shape=\[3, 4, 1\]"):
        nbops.rms_norm(x, (3, 4, 1))
    with pytest.raises(ValueError, match="at least one element"):
        nbops.layer_norm(x, ())
    with pytest.raises(TypeError, match="normalized_shape must be an int"):
        nbops.layer_norm(x, 4.0)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        nbops.layer_norm(x, 4, np.ones(3))
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        nbops.layer_norm(x, 4, np.ones(4), np.ones((1, 4)))
    with pytest.raises(ValueError, match=r"weight must have shape \(3, 4\)"):
        nbops.rms_norm(x, (3, 4), np.ones(4))
    with pytest.raises(ValueError, match="out has shape"):
        nbops.layer_norm(x, 4, out=np.empty((4, 3), np.float32))
    _, mean, rstd = nbops.layer_norm(x, 4, return_stats=True)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.layer_norm_backward(np.ones((3, 5), np.float32), x, 4, mean, rstd)
    with pytest.raises(TypeError, match="grad_output: expected a float array"):
        nbops.layer_norm_backward(np.ones((3, 4), np.int64), x, 4, mean, rstd)
    with pytest.raises(ValueError, match=r"mean must have shape \(3, 1\)"):
        nbops.layer_norm_backward(x, x, 4, mean[:2], rstd)
    with pytest.raises(ValueError, match=r"rstd must have shape \(3, 1\)"):
        nbops.rms_norm_backward(x, x, 4, np.ones((1, 3)))
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        nbops.rms_norm_backward(x, x, 4, rstd, np.ones(5))
    with pytest.raises(ValueError, match=r"normalized_shape=\[2\]"):
        nbops.layer_norm_backward(x, x, 2, mean, rstd)


# --------------------------------------------------------------------------- #
# thread counts
# --------------------------------------------------------------------------- #


def test_same_bits_serial_and_parallel_on_any_thread_count(monkeypatch):
    """The task cut depends on the shape alone: the serial kernel and the parallel
    one on 1 or 2 threads give the same bits (forward, statistics, backward)."""
    x = data((300, 200), np.float32, loc=30.0)
    g = data(x.shape, np.float32, seed=2)
    w, b = affine(x.shape, 200, np.float32)

    def run():
        y, mean, rstd = nbops.layer_norm(x, 200, w, b, return_stats=True)
        grads = nbops.layer_norm_backward(g, x, 200, mean, rstd, w)
        r, rr = nbops.rms_norm(x, 200, w, return_stats=True)
        rgrads = nbops.rms_norm_backward(g, x, 200, rr, w)
        return [y, mean, rstd, *grads, r, rr, *rgrads]

    assert_same_bits_on_any_thread_count(monkeypatch, run)


# --------------------------------------------------------------------------- #
# nn modules
# --------------------------------------------------------------------------- #


def test_nn_layer_norm_and_rms_norm_match_torch():
    for args, kwargs in [((8,), {}), (((2, 3),), dict(bias=False, eps=1e-3)),
                         (((4,),), dict(elementwise_affine=False))]:
        ours, theirs = nbops.nn.LayerNorm(*args, **kwargs), torch.nn.LayerNorm(*args, **kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for k, v in theirs.state_dict().items():
            np.testing.assert_array_equal(ours.state_dict()[k], v.numpy())
            assert ours.state_dict()[k].dtype == np.float32
    for args, kwargs in [((8,), {}), ([(2, 3)], dict(eps=1e-3)),
                         ((4,), dict(elementwise_affine=False))]:
        ours, theirs = nbops.nn.RMSNorm(*args, **kwargs), torch.nn.RMSNorm(*args, **kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict())
    theirs = torch.nn.LayerNorm((3, 4))
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
    ours = nbops.nn.LayerNorm((3, 4), dtype=np.float64)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = data((2, 3, 4), np.float32)
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-5)
    rms = nbops.nn.RMSNorm(4)
    np.testing.assert_allclose(rms(x), torch.nn.RMSNorm(4)(torch.tensor(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- #
# inside @njit
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def njit_fns():
    from numba import njit

    @njit
    def ln(x, w, b, g):
        y, mean, rstd = nbops.layer_norm(x, (x.shape[1], x.shape[2]), w, b, 1e-3,
                                         return_stats=True)
        y1, m1, r1 = nbops.layer_norm(x, x.shape[2], return_stats=True)
        return (y, mean, rstd, y1,
                nbops.layer_norm_backward(g, x, (x.shape[1], x.shape[2]), mean, rstd, w),
                nbops.layer_norm_backward(g, x, x.shape[2], m1, r1, None, has_bias=True))

    @njit
    def rms(x, w, g):
        y, rstd = nbops.rms_norm(x, x.shape[2], w, return_stats=True)
        return (y, rstd, nbops.rms_norm(x, x.shape[2], None, 1e-3),
                nbops.rms_norm_backward(g, x, x.shape[2], rstd, w),
                nbops.rms_norm_backward(g, x, x.shape[2], rstd))

    return ln, rms


def test_inside_njit_same_bits_as_outside(njit_fns):
    ln, rms = njit_fns
    x = data((3, 4, 5), np.float32)
    g = data(x.shape, np.float32, seed=8)
    w, b = affine(x.shape, (4, 5), np.float32)
    y, mean, rstd, y1, grads, grads_nw = ln(x, w, b, g)
    ey, emean, erstd = nbops.layer_norm(x, (4, 5), w, b, 1e-3, return_stats=True)
    for a, e in zip([y, mean, rstd, y1, *grads],
                    [ey, emean, erstd, nbops.layer_norm(x, 5),
                     *nbops.layer_norm_backward(g, x, (4, 5), emean, erstd, w)], strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_array_equal(a, e)
    _, m1, r1 = nbops.layer_norm(x, 5, return_stats=True)
    expect = nbops.layer_norm_backward(g, x, 5, m1, r1, None, has_bias=True)
    assert grads_nw[1] is None and expect[1] is None
    np.testing.assert_array_equal(grads_nw[0], expect[0])
    np.testing.assert_array_equal(grads_nw[2], expect[2])
    w5 = w[0].copy()
    y, r, y2, (gi, gw), (gi2, gw2) = rms(x, w5, g)
    ey, er = nbops.rms_norm(x, 5, w5, return_stats=True)
    np.testing.assert_array_equal(y, ey)
    np.testing.assert_array_equal(r, er)
    np.testing.assert_array_equal(y2, nbops.rms_norm(x, 5, None, 1e-3))
    egi, egw = nbops.rms_norm_backward(g, x, 5, er, w5)
    np.testing.assert_array_equal(gi, egi)
    np.testing.assert_array_equal(gw, egw)
    np.testing.assert_array_equal(gi2, nbops.rms_norm_backward(g, x, 5, er)[0])
    assert gw2 is None


def test_inside_njit_bad_shapes(njit_fns):
    ln, rms = njit_fns
    x = data((3, 4, 5), np.float32)
    with pytest.raises(ValueError, match="weight must have shape normalized_shape"):
        ln(x, np.ones((4, 6), np.float32), np.ones((4, 5), np.float32), x)
    with pytest.raises(ValueError, match="grad_output must have the input's shape"):
        rms(x, np.ones(5, np.float32), x[:2])
