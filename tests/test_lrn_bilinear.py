"""Tests of ``nbops.local_response_norm``, ``nbops.bilinear``, their backwards and
their nn modules.

Expected values come from the float64 NumPy formulas below (``ref_*``), from
central finite differences in float64, or from PyTorch (parity tests only),
never from nbops itself.
"""

import numpy as np
import pytest
from _threads import assert_same_bits_on_any_thread_count

import nbops
from nbops import _config

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6),
       np.dtype(np.float64): dict(rtol=1e-11, atol=1e-12)}


def data(shape, dtype, seed=0, loc=0.0, scale=1.5):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale + loc).astype(dtype)


def tt(a, grad=False):
    return None if a is None else torch.tensor(a, requires_grad=grad)


def numeric_grad(f, arrays, g, h=1e-6):
    """Central finite differences of ``sum(f(*arrays) * g)`` in float64, one array
    of ``arrays`` after the other."""
    grads = []
    for a in arrays:
        grad = np.zeros_like(a)
        flat, gflat = a.reshape(-1), grad.reshape(-1)
        for i in range(flat.size):
            v = flat[i]
            flat[i] = v + h
            up = np.sum(f(*arrays) * g)
            flat[i] = v - h
            down = np.sum(f(*arrays) * g)
            flat[i] = v
            gflat[i] = (up - down) / (2 * h)
        grads.append(grad)
    return grads


# =========================================================================== #
# local_response_norm
# =========================================================================== #


def ref_lrn(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """float64 reference: the window of torch's zero padding, averaged over size."""
    x = np.asarray(x, np.float64)
    c = x.shape[1]
    sq = x * x
    pad = [(0, 0)] * x.ndim
    pad[1] = (size // 2, (size - 1) // 2)
    sq = np.pad(sq, pad)
    win = sum(sq[:, j:j + c] for j in range(size))
    return x / (win / size * alpha + k) ** beta


# (shape, size): 3-d (torch's avg_pool2d branch) and 4-d, 5-d (avg_pool3d); odd
# and even windows, a window of one channel and windows wider than the channels
LRN_CASES = [((2, 7, 5), 3), ((2, 7, 5), 4), ((3, 6, 2, 3), 2), ((2, 5, 2, 1, 3), 5),
             ((2, 4, 3), 1), ((1, 3, 4), 8)]
LRN_PARAMS = [{}, dict(alpha=0.5, beta=0.6, k=2.0), dict(alpha=2.0, beta=1.5, k=0.5)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,size", LRN_CASES)
def test_lrn_against_reference_and_torch(shape, size, dtype):
    x = data(shape, dtype)
    for params in LRN_PARAMS:
        y = nbops.local_response_norm(x, size, **params)
        assert y.dtype == dtype and y.shape == shape
        np.testing.assert_allclose(y, ref_lrn(x, size, **params), **TOL[y.dtype])
        ty = F.local_response_norm(tt(x), size, **params).numpy()
        np.testing.assert_allclose(y, ty, **TOL[y.dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,size", LRN_CASES)
def test_lrn_backward_against_torch_autograd(shape, size, dtype):
    x = data(shape, dtype)
    g = data(shape, dtype, seed=1)
    for params in LRN_PARAMS:
        gi = nbops.local_response_norm_backward(g, x, size, **params)
        assert gi.dtype == dtype and gi.shape == shape
        xt = tt(x, True)
        F.local_response_norm(xt, size, **params).backward(tt(g))
        tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else TOL[np.dtype(dtype)]
        np.testing.assert_allclose(gi, xt.grad.numpy(), **tol)


@pytest.mark.parametrize("shape,size", [((2, 5, 3), 3), ((1, 6, 2, 2), 4), ((1, 3, 2), 6)])
def test_lrn_backward_finite_differences(shape, size):
    x = data(shape, np.float64, seed=3)
    g = data(shape, np.float64, seed=4)
    params = dict(alpha=0.7, beta=0.8, k=1.5)
    gi = nbops.local_response_norm_backward(g, x, size, **params)
    (num,) = numeric_grad(lambda a: ref_lrn(a, size, **params), [x.copy()], g)
    np.testing.assert_allclose(gi, num, rtol=1e-6, atol=1e-8)


def test_lrn_non_contiguous_out_int_and_mixed_dtypes():
    base = data((4, 12, 9), np.float32)
    x = base[:, ::2, 1:8].transpose(1, 0, 2)  # (6, 4, 7), no unit strides
    expect = ref_lrn(x, 3, alpha=0.5)
    y = nbops.local_response_norm(x, 3, alpha=0.5)
    np.testing.assert_allclose(y, expect, **TOL[np.dtype(np.float32)])
    out = np.empty(x.shape, np.float32)
    assert nbops.local_response_norm(x, 3, alpha=0.5, out=out) is out
    np.testing.assert_array_equal(out, y)
    out_nc = np.empty((6, 4, 14), np.float32)[:, :, ::2]
    assert nbops.local_response_norm(x, 3, alpha=0.5, out=out_nc) is out_nc
    np.testing.assert_array_equal(out_nc, y)
    g = data(x.shape, np.float32, seed=2)[::-1]  # negative strides
    xt = tt(np.ascontiguousarray(x), True)
    F.local_response_norm(xt, 3, alpha=0.5).backward(tt(np.ascontiguousarray(g)))
    gi = nbops.local_response_norm_backward(g, x, 3, alpha=0.5)
    np.testing.assert_allclose(gi, xt.grad.numpy(), rtol=1e-4, atol=1e-5)
    out = np.empty(x.shape, np.float32)
    assert nbops.local_response_norm_backward(g, x, 3, alpha=0.5, out=out) is out
    np.testing.assert_array_equal(out, gi)
    xi = np.arange(24).reshape(2, 3, 4)  # an int input: a float64 result
    yi = nbops.local_response_norm(xi, 2, alpha=0.1)
    assert yi.dtype == np.float64
    np.testing.assert_allclose(yi, ref_lrn(xi, 2, alpha=0.1), rtol=1e-12)
    gm = nbops.local_response_norm_backward(np.ones((2, 3, 4), np.float32), xi, 2)
    assert gm.dtype == np.float64  # float32 with an int input's float64


def test_lrn_empty_inputs():
    for shape in [(0, 3, 4), (2, 0, 4), (2, 3, 0), (0, 3, 2, 2)]:
        x = np.zeros(shape, np.float32)
        y = nbops.local_response_norm(x, 3)
        assert y.shape == shape and y.dtype == np.float32
        assert tuple(F.local_response_norm(tt(x), 3).shape) == shape
        gi = nbops.local_response_norm_backward(x, x, 3)
        assert gi.shape == shape and gi.dtype == np.float32


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_lrn_nan_and_inf_leave_later_windows_as_torch():
    """A non-finite running window sum is summed anew: the channels whose window no
    longer holds the inf/NaN get finite values again, as PyTorch."""
    x = data((1, 9, 3), np.float64, seed=5)
    x[0, 2, 0] = np.inf
    x[0, 4, 1] = np.nan
    x[0, 6, 2] = -np.inf
    for size in (2, 3):
        y = nbops.local_response_norm(x, size, alpha=0.5)
        ty = F.local_response_norm(tt(x), size, alpha=0.5).numpy()
        np.testing.assert_allclose(y, ty, rtol=1e-12, atol=1e-15, equal_nan=True)
        assert np.isfinite(y[0, 6:, 0]).all()
        g = np.ones_like(x)
        gi = nbops.local_response_norm_backward(g, x, size, alpha=0.5)
        xt = tt(x, True)
        F.local_response_norm(xt, size, alpha=0.5).backward(tt(g))
        np.testing.assert_allclose(gi, xt.grad.numpy(), rtol=1e-12, atol=1e-15,
                                   equal_nan=True)


def test_lrn_float32_accuracy_on_many_channels():
    """float64 running sums: float32 results within a few ulp of the float64
    reference over 512 channels of large values."""
    x = data((2, 512, 3), np.float32, seed=6, loc=100.0, scale=50.0)
    for size in (5, 64):
        y = nbops.local_response_norm(x, size, alpha=1.0, beta=0.75, k=1.0)
        np.testing.assert_allclose(y, ref_lrn(x, size, alpha=1.0), rtol=1e-6)


def test_lrn_bad_inputs_before_any_kernel():
    x = data((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"Expected 3D or higher dimensionality input \(got 2"):
        nbops.local_response_norm(x[0], 2)
    with pytest.raises(ValueError, match="Expected 3D or higher"):
        nbops.local_response_norm_backward(x[0], x[0], 2)
    with pytest.raises(ValueError, match="size must be at least 1"):
        nbops.local_response_norm(x, 0)
    with pytest.raises(TypeError, match="size must be an int"):
        nbops.local_response_norm(x, 2.5)
    with pytest.raises(TypeError, match="size must be an int"):
        nbops.local_response_norm(x, True)
    with pytest.raises(TypeError, match="alpha must be a real number"):
        nbops.local_response_norm(x, 2, alpha="a")
    with pytest.raises(TypeError, match="complex"):
        nbops.local_response_norm(x.astype(np.complex64), 2)
    with pytest.raises(ValueError, match="out has shape"):
        nbops.local_response_norm(x, 2, out=np.empty((2, 3, 5), np.float32))
    with pytest.raises(TypeError, match="out has dtype"):
        nbops.local_response_norm(x, 2, out=np.empty((2, 3, 4), np.float64))
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.local_response_norm_backward(x[:, :2], x, 2)
    with pytest.raises(TypeError, match="grad_output: expected a float array"):
        nbops.local_response_norm_backward(np.ones((2, 3, 4), np.int64), x, 2)
    with pytest.raises(ValueError, match="size must be at least 1"):
        nbops.local_response_norm_backward(x, x, -1)


def test_lrn_same_bits_serial_and_parallel_on_any_thread_count(monkeypatch):
    x = data((4, 40, 300), np.float32, seed=7)
    g = data(x.shape, np.float32, seed=8)

    def run():
        return [nbops.local_response_norm(x, 5, alpha=0.5),
                nbops.local_response_norm_backward(g, x, 5, alpha=0.5)]

    assert_same_bits_on_any_thread_count(monkeypatch, run)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_lrn_one_position_same_bits_as_several(monkeypatch):
    """Inputs of one position per channel ((N, C, 1): blocks of batch rows as the
    positions) give the bits of the general kernel (the same input with its
    position repeated), inf and NaN included, serial and parallel on any
    thread count; and PyTorch's values."""
    import numba

    for dtype in (np.float32, np.float64):
        x = data((37, 50, 1), dtype, seed=4)
        x[3, 7, 0] = np.inf
        x[20, 30, 0] = np.nan
        for size in (1, 4, 5):
            y = nbops.local_response_norm(x, size, alpha=0.5)
            general = nbops.local_response_norm(np.repeat(x, 2, axis=2), size, alpha=0.5)
            np.testing.assert_array_equal(y, general[:, :, :1])
            ty = F.local_response_norm(tt(x), size, alpha=0.5).numpy()
            np.testing.assert_allclose(y, ty, equal_nan=True, **TOL[y.dtype])
    x = data((40, 300, 1), np.float32, seed=7)
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 62)  # the serial kernels
    serial = nbops.local_response_norm(x, 5)
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1)  # the parallel kernels
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            np.testing.assert_array_equal(nbops.local_response_norm(x, 5), serial)
    finally:
        numba.set_num_threads(threads)


def test_nn_local_response_norm_matches_torch():
    for args, kwargs in [((2,), {}), ((3,), dict(alpha=0.5, beta=0.6, k=2.0))]:
        ours = nbops.nn.LocalResponseNorm(*args, **kwargs)
        theirs = torch.nn.LocalResponseNorm(*args, **kwargs)
        assert repr(ours) == repr(theirs)
        assert list(ours.state_dict()) == list(theirs.state_dict()) == []
        x = data((2, 5, 3, 2), np.float64)
        xt = tt(x, True)
        y, yt = ours(x), theirs(xt)
        np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[np.dtype(np.float64)])
        g = data(y.shape, np.float64, seed=9)
        gx = ours.backward(g)
        yt.backward(tt(g))
        np.testing.assert_allclose(gx, xt.grad.numpy(), **TOL[np.dtype(np.float64)])
        assert ours._saved == []
    m = nbops.nn.LocalResponseNorm(2)
    with nbops.no_grad():
        m(data((1, 3, 2), np.float32))
    assert m._saved == []


# ------------------------------------------------------------------- inside @njit
@pytest.fixture(scope="module")
def lrn_njit():
    from numba import njit

    @njit
    def forward(x, size, alpha, beta, k):
        return nbops.local_response_norm(x, size, alpha, beta, k)

    @njit
    def backward(g, x, size, alpha, beta, k):
        return nbops.local_response_norm_backward(g, x, size, alpha, beta, k)

    return forward, backward


def test_lrn_inside_njit_same_bits_as_outside(lrn_njit):
    forward, backward = lrn_njit
    for dtype in (np.float32, np.float64):
        x = data((2, 6, 2, 3), dtype)
        g = data(x.shape, dtype, seed=1)
        y = forward(x, 3, 0.5, 0.75, 1.0)
        assert y.dtype == dtype and y.shape == x.shape
        np.testing.assert_array_equal(y, nbops.local_response_norm(x, 3, 0.5, 0.75, 1.0))
        gi = backward(g, x, 4, 0.5, 0.75, 1.0)
        np.testing.assert_array_equal(
            gi, nbops.local_response_norm_backward(g, x, 4, 0.5, 0.75, 1.0))
    xt = data((3, 4, 5), np.float64).transpose(1, 0, 2)  # non-contiguous
    np.testing.assert_array_equal(forward(xt, 2, 1e-4, 0.75, 1.0),
                                  nbops.local_response_norm(xt, 2))
    with pytest.raises(ValueError, match="size must be at least 1"):
        forward(xt, 0, 1e-4, 0.75, 1.0)
    with pytest.raises(ValueError, match="grad_output must have the input's shape"):
        backward(xt[:, :2], xt, 2, 1e-4, 0.75, 1.0)


def test_lrn_inside_njit_rejects_fewer_than_3_dims():
    from numba import njit
    from numba.core import errors

    @njit
    def two_d(x):
        return nbops.local_response_norm(x, 2)

    with pytest.raises(errors.TypingError, match="Expected 3D or higher"):
        two_d(np.ones((2, 3)))


# =========================================================================== #
# bilinear
# =========================================================================== #


def ref_bilinear(x1, x2, w, b=None):
    """float64 reference: einsum over the features."""
    y = np.einsum("...i,oij,...j->...o", np.asarray(x1, np.float64), np.asarray(w, np.float64),
                  np.asarray(x2, np.float64))
    return y if b is None else y + np.asarray(b, np.float64)


def bilinear_args(lead, n1, n2, n_out, dtype, seed=0):
    return (data(lead + (n1,), dtype, seed), data(lead + (n2,), dtype, seed + 1),
            data((n_out, n1, n2), dtype, seed + 2, scale=0.5), data((n_out,), dtype, seed + 3))


# (leading shape, in1, in2, out): one row (1-D inputs), few inputs (linear's row-update
# product), many (its 4 x 4 tiles) with rows not a multiple of 4, several leading dims
BILINEAR_CASES = [((), 3, 4, 5), ((7,), 5, 3, 4), ((9,), 30, 20, 6), ((2, 3), 4, 6, 33)]
BTOL = {np.dtype(np.float32): dict(rtol=1e-4, atol=1e-4),
        np.dtype(np.float64): dict(rtol=1e-11, atol=1e-11)}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lead,n1,n2,n_out", BILINEAR_CASES)
def test_bilinear_against_reference_and_torch(lead, n1, n2, n_out, dtype):
    x1, x2, w, b = bilinear_args(lead, n1, n2, n_out, dtype)
    for bias in (None, b):
        y = nbops.bilinear(x1, x2, w, bias)
        assert y.dtype == dtype and y.shape == lead + (n_out,)
        np.testing.assert_allclose(y, ref_bilinear(x1, x2, w, bias), **BTOL[y.dtype])
        ty = F.bilinear(tt(x1), tt(x2), tt(w), tt(bias)).numpy()
        np.testing.assert_allclose(y, ty, **BTOL[y.dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lead,n1,n2,n_out", BILINEAR_CASES)
def test_bilinear_backward_against_torch_autograd(lead, n1, n2, n_out, dtype):
    x1, x2, w, b = bilinear_args(lead, n1, n2, n_out, dtype)
    g = data(lead + (n_out,), dtype, seed=9)
    for bias in (None, b):
        grads = nbops.bilinear_backward(g, x1, x2, w, bias)
        leaves = [tt(a, True) for a in (x1, x2, w)] + [tt(bias, True)]
        F.bilinear(*leaves).backward(tt(g))
        for got, leaf, like in zip(grads, leaves, (x1, x2, w, bias), strict=True):
            if like is None:
                assert got is None
                continue
            assert got.dtype == dtype and got.shape == like.shape
            np.testing.assert_allclose(got, leaf.grad.numpy(), **BTOL[np.dtype(dtype)])


def test_bilinear_backward_finite_differences():
    x1, x2, w, b = bilinear_args((2, 3), 4, 3, 5, np.float64, seed=4)
    g = data((2, 3, 5), np.float64, seed=5)
    grads = nbops.bilinear_backward(g, x1, x2, w, b)
    nums = numeric_grad(ref_bilinear, [x1.copy(), x2.copy(), w.copy(), b.copy()], g)
    for got, num in zip(grads, nums, strict=True):
        np.testing.assert_allclose(got, num, rtol=1e-7, atol=1e-8)


def test_bilinear_row_blocks(monkeypatch):
    """Rows in blocks (the intermediates' bound): the same results as one block."""
    from nbops._ops import bilinear as B

    x1, x2, w, b = bilinear_args((50,), 6, 5, 7, np.float64)
    g = data((50, 7), np.float64, seed=3)
    whole = [nbops.bilinear(x1, x2, w, b), *nbops.bilinear_backward(g, x1, x2, w, b)]
    monkeypatch.setattr(B, "_BLOCK_VALUES", 8 * 35)  # blocks of 8 rows
    blocks = [nbops.bilinear(x1, x2, w, b), *nbops.bilinear_backward(g, x1, x2, w, b)]
    for a, e in zip(blocks, whole, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-13, atol=1e-13)


def test_bilinear_non_contiguous_out_mixed_and_int():
    x1, x2, w, b = bilinear_args((6,), 5, 4, 3, np.float32)
    x1n = np.asfortranarray(np.repeat(x1, 2, axis=1))[:, ::2]  # no unit stride
    wn = np.ascontiguousarray(w.transpose(0, 2, 1)).transpose(0, 2, 1)  # F-ordered features
    y = nbops.bilinear(x1n, x2[::-1], wn, b)
    np.testing.assert_allclose(y, ref_bilinear(x1, x2[::-1], w, b), **BTOL[np.dtype(np.float32)])
    out = np.empty((6, 3), np.float32)
    assert nbops.bilinear(x1, x2, w, b, out=out) is out
    np.testing.assert_array_equal(out, nbops.bilinear(x1, x2, w, b))
    g = data((6, 3), np.float32, seed=4)[::-1]
    gi1, gi2, gw, gb = nbops.bilinear_backward(g, x1n, x2[::-1], wn, b)
    leaves = [tt(np.ascontiguousarray(a), True) for a in (x1n, x2[::-1], wn, b)]
    F.bilinear(*leaves).backward(tt(np.ascontiguousarray(g)))
    for got, leaf in zip((gi1, gi2, gw, gb), leaves, strict=True):
        np.testing.assert_allclose(got, leaf.grad.numpy(), **BTOL[np.dtype(np.float32)])
    y64 = nbops.bilinear(x1, x2.astype(np.float64), w, b)  # mixed: promoted
    assert y64.dtype == np.float64
    yi = nbops.bilinear(np.arange(6).reshape(2, 3), np.ones((2, 2), np.int64),
                        np.ones((4, 3, 2), np.int64))
    assert yi.dtype == np.float64
    np.testing.assert_array_equal(yi, [[6.0] * 4, [24.0] * 4])


def test_bilinear_empty_inputs():
    for lead, n1, n2, n_out in [((0,), 3, 4, 5), ((2, 0), 3, 4, 5)]:
        x1, x2, w, b = bilinear_args(lead, n1, n2, n_out, np.float32)
        y = nbops.bilinear(x1, x2, w, b)
        ty = F.bilinear(tt(x1), tt(x2), tt(w), tt(b))
        assert y.shape == tuple(ty.shape) and y.dtype == np.float32
        np.testing.assert_allclose(y, ty.numpy(), **BTOL[np.dtype(np.float32)])
        g = np.ones(y.shape, np.float32)
        grads = nbops.bilinear_backward(g, x1, x2, w, b)
        leaves = [tt(a, True) for a in (x1, x2, w, b)]
        F.bilinear(*leaves).backward(tt(g))
        for got, leaf in zip(grads, leaves, strict=True):
            assert got.shape == tuple(leaf.grad.shape)
            np.testing.assert_allclose(got, leaf.grad.numpy(), **BTOL[np.dtype(np.float32)])
    # no outputs or no features (PyTorch cannot reshape its empty intermediates
    # there): the empty sums' results
    for n1, n2, n_out in [(3, 4, 0), (0, 4, 2), (2, 0, 2)]:
        x1, x2, w, b = bilinear_args((3,), n1, n2, n_out, np.float32)
        np.testing.assert_array_equal(nbops.bilinear(x1, x2, w, b), np.tile(b, (3, 1)))
        g = data((3, n_out), np.float32, seed=2)
        g1, g2, gw, gb = nbops.bilinear_backward(g, x1, x2, w, b)
        np.testing.assert_array_equal(g1, np.zeros((3, n1), np.float32))
        np.testing.assert_array_equal(g2, np.zeros((3, n2), np.float32))
        np.testing.assert_array_equal(gw, np.zeros((n_out, n1, n2), np.float32))
        np.testing.assert_allclose(gb, g.sum(axis=0), rtol=1e-6)


def test_bilinear_bad_inputs_as_torch():
    x1, x2, w, b = bilinear_args((4,), 3, 2, 5, np.float32)
    cases = [((x1[None], x2, w), "input dimensions do not match"),
             ((x1, x2[:3], w), "input batch dimensions do not match at dim 0: got 4 and 3"),
             ((x1[:, :2], x2, w), "input1 size does not match weight size: got 2 but "
                                  "expected 3"),
             ((x1, x2[:, :1], w), "input2 size does not match weight size: got 1 but "
                                  "expected 2"),
             ((x1, x2, w, b[:4]), "bias size does not match weight size: got 4 but "
                                  "expected 5")]
    for args, match in cases:
        with pytest.raises((ValueError, RuntimeError), match=match):
            F.bilinear(*(tt(a) for a in args))
        with pytest.raises(ValueError, match=match):
            nbops.bilinear(*args)
        with pytest.raises(ValueError, match=match):
            nbops.bilinear_backward(np.ones((4, 5), np.float32), *args)
    with pytest.raises(ValueError, match="weight must be 3-D"):
        nbops.bilinear(x1, x2, w[0])
    with pytest.raises(TypeError, match="input2: complex"):
        nbops.bilinear(x1, x2.astype(np.complex64), w)
    with pytest.raises(ValueError, match="grad_output must have the forward output's shape"):
        nbops.bilinear_backward(np.ones((4, 4), np.float32), x1, x2, w)
    with pytest.raises(ValueError, match="out has shape"):
        nbops.bilinear(x1, x2, w, out=np.empty((4, 4), np.float32))


def test_bilinear_same_bits_serial_and_parallel_on_any_thread_count(monkeypatch):
    x1, x2, w, b = bilinear_args((301,), 33, 18, 20, np.float32)
    g = data((301, 20), np.float32, seed=8)

    def run():
        return [nbops.bilinear(x1, x2, w, b), *nbops.bilinear_backward(g, x1, x2, w, b)]

    assert_same_bits_on_any_thread_count(monkeypatch, run)


def test_nn_bilinear_matches_torch_and_trains():
    ours = nbops.nn.Bilinear(4, 3, 5, rng=0)
    theirs = torch.nn.Bilinear(4, 3, 5)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight", "bias"]
    assert ours.weight.shape == (5, 4, 3) and ours.weight.dtype == np.float32
    bound = 1 / np.sqrt(4)
    for p in (ours.weight, ours.bias):
        assert np.abs(p).max() <= bound and np.abs(p).max() > bound / 2
    assert repr(nbops.nn.Bilinear(2, 2, 2, bias=False)) == repr(torch.nn.Bilinear(2, 2, 2, False))
    assert nbops.nn.Bilinear(2, 2, 2, bias=False).bias is None
    with pytest.raises(ValueError, match="in1_features must be > 0"):
        nbops.nn.Bilinear(0, 2, 2)
    # the same parameters: forward, backward (both inputs), parameter gradients
    ours = nbops.nn.Bilinear(4, 3, 5, dtype=np.float64)
    theirs = torch.nn.Bilinear(4, 3, 5).double()
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x1, x2, _, _ = bilinear_args((6,), 4, 3, 5, np.float64)
    t1, t2 = tt(x1, True), tt(x2, True)
    y, yt = ours(x1, x2), theirs(t1, t2)
    np.testing.assert_allclose(y, yt.detach().numpy(), **BTOL[np.dtype(np.float64)])
    g = data(y.shape, np.float64, seed=7)
    g1, g2 = ours.backward(g)
    yt.backward(tt(g))
    np.testing.assert_allclose(g1, t1.grad.numpy(), **BTOL[np.dtype(np.float64)])
    np.testing.assert_allclose(g2, t2.grad.numpy(), **BTOL[np.dtype(np.float64)])
    for name, grad in ours.named_grads():
        np.testing.assert_allclose(grad, getattr(theirs, name).grad.numpy(),
                                   **BTOL[np.dtype(np.float64)])
    assert ours._saved == []
    # it trains with nbops.optim: SGD steps as torch.optim.SGD's
    opt = nbops.optim.SGD(ours.parameters(), lr=0.1)
    topt = torch.optim.SGD(theirs.parameters(), lr=0.1)
    for _ in range(3):
        ours.zero_grad()
        topt.zero_grad()
        y = ours(x1, x2)
        ours.backward(2 * y / y.size)  # grad of mean(y**2)
        opt.step()
        theirs(t1, t2).pow(2).mean().backward()
        topt.step()
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k], v.numpy(), rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------- inside @njit
@pytest.fixture(scope="module")
def bilinear_njit():
    from numba import njit

    @njit
    def forward(x1, x2, w, b):
        return nbops.bilinear(x1, x2, w, b)

    @njit
    def backward(g, x1, x2, w, b):
        return nbops.bilinear_backward(g, x1, x2, w, b)

    return forward, backward


def test_bilinear_inside_njit_same_bits_as_outside(bilinear_njit):
    forward, backward = bilinear_njit
    for dtype, (lead, n1, n2, n_out) in [(np.float32, ((7,), 30, 20, 6)),
                                         (np.float64, ((7,), 5, 3, 4))]:
        x1, x2, w, b = bilinear_args(lead, n1, n2, n_out, dtype)
        g = data(lead + (n_out,), dtype, seed=6)
        np.testing.assert_array_equal(forward(x1, x2, w, b), nbops.bilinear(x1, x2, w, b))
        for a, e in zip(backward(g, x1, x2, w, b), nbops.bilinear_backward(g, x1, x2, w, b),
                        strict=True):
            np.testing.assert_array_equal(a, e)
    # empty features, outputs or rows: the Python path's results (the bias, zeros)
    for lead, n1, n2, n_out in [((3,), 0, 4, 2), ((3,), 2, 0, 2), ((3,), 3, 4, 0),
                                ((2, 0), 3, 4, 5)]:
        x1, x2, w, b = bilinear_args(lead, n1, n2, n_out, np.float64)
        g = data(lead + (n_out,), np.float64, seed=2)
        np.testing.assert_array_equal(forward(x1, x2, w, b), nbops.bilinear(x1, x2, w, b))
        for a, e in zip(backward(g, x1, x2, w, b), nbops.bilinear_backward(g, x1, x2, w, b),
                        strict=True):
            assert a.shape == e.shape
            np.testing.assert_array_equal(a, e)
    x1, x2, w, b = bilinear_args((7,), 5, 3, 4, np.float64)
    with pytest.raises(ValueError, match="input1 size does not match weight size"):
        forward(x1[:, :4], x2, w, b)
    with pytest.raises(ValueError, match="bias size does not match weight size"):
        forward(x1, x2, w, b[:3])
