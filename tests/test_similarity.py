"""cosine_similarity, normalize, pdist, cdist and their backwards (nbops/_ops/similarity.py):
float64 NumPy references written here, PyTorch (forward and autograd), central finite
differences, bad input; nn.CosineSimilarity against torch.nn.CosineSimilarity."""

import numpy as np
import pytest

import nbops
from nbops._ops import similarity as S

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {np.float64: dict(rtol=1e-10, atol=1e-12), np.float32: dict(rtol=2e-5, atol=2e-6)}
PS = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, np.inf]


def T(x):
    return torch.tensor(np.asarray(x), requires_grad=True)


def rand(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------- float64 references
def ref_cosine(x1, x2, axis, eps):
    a, b = np.broadcast_arrays(np.float64(x1), np.float64(x2))
    n1 = np.maximum(np.sqrt((a * a).sum(axis)), eps)
    n2 = np.maximum(np.sqrt((b * b).sum(axis)), eps)
    return (a * b).sum(axis) / (n1 * n2)


def ref_pnorm(d, p, axis=-1):
    d = np.abs(np.float64(d))
    if p == 0:
        return (d != 0).sum(axis).astype(np.float64)
    if np.isinf(p):
        return d.max(axis) if d.shape[axis] else np.zeros(np.delete(d.shape, axis))
    return (d ** p).sum(axis) ** (1 / p)


def ref_normalize(x, p, axis, eps):
    return x / np.maximum(np.expand_dims(ref_pnorm(x, p, axis), axis), eps)


def ref_cdist(x1, x2, p):
    return ref_pnorm(np.float64(x1)[..., :, None, :] - np.float64(x2)[..., None, :, :], p)


def ref_pdist(x, p):
    i, j = np.triu_indices(len(x), 1)
    return ref_pnorm(np.float64(x)[i] - np.float64(x)[j], p)


def finite_diff(f, x, g, h=1e-6):
    """Central differences of sum(g * f(x)) with respect to x (float64)."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        grad[idx] = ((g * f(xp)).sum() - (g * f(xm)).sum()) / (2 * h)
    return grad


# ----------------------------------------------------------------- cosine_similarity
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("axis, s1, s2", [(1, (6, 9), (6, 9)), (0, (5, 3), (5, 1)),
                                          (-1, (2, 3, 4), (4,)), (1, (2, 3, 4), (1, 3, 1))])
def test_cosine_similarity_vs_reference_and_torch(dtype, axis, s1, s2):
    x1, x2 = rand(s1, 1, dtype), rand(s2, 2, dtype)
    y = nbops.cosine_similarity(x1, x2, axis)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, ref_cosine(x1, x2, axis, 1e-8), **TOL[dtype])
    t1, t2 = T(x1), T(x2)
    yt = F.cosine_similarity(t1, t2, dim=axis)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    g = rand(y.shape, 3, dtype)
    yt.backward(torch.tensor(g))
    g1, g2 = nbops.cosine_similarity_backward(g, x1, x2, axis)
    assert g1.shape == x1.shape and g2.shape == x2.shape and g1.dtype == dtype
    np.testing.assert_allclose(g1, t1.grad.numpy(), **TOL[dtype])
    np.testing.assert_allclose(g2, t2.grad.numpy(), **TOL[dtype])


def test_cosine_similarity_eps_clamps_each_norm_as_torch():
    # PyTorch 2.x clamps each norm to eps (1.x clamped their product's square)
    x1 = np.array([[1e-5, 0.0], [1e-9, 2e-9], [0.0, 0.0]])
    x2 = np.array([[1e-5, 0.0], [3.0, 1.0], [1.0, 2.0]])
    y = nbops.cosine_similarity(x1, x2)
    np.testing.assert_allclose(y[0], 1.0, rtol=1e-12)  # not 0.01
    t1, t2 = T(x1), T(x2)
    yt = F.cosine_similarity(t1, t2)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    g = np.array([0.5, -1.0, 2.0])
    yt.backward(torch.tensor(g))
    g1, g2 = nbops.cosine_similarity_backward(g, x1, x2)
    np.testing.assert_allclose(g1, t1.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(g2, t2.grad.numpy(), rtol=1e-10, atol=1e-15)


def test_cosine_similarity_backward_finite_differences_and_noncontiguous():
    x1 = rand((4, 10), 4)[:, ::2]
    x2 = rand((5, 4), 5).T
    g = rand((5,), 6)
    g1, g2 = nbops.cosine_similarity_backward(g, x1, x2, 0, 1e-8)
    np.testing.assert_allclose(g1, finite_diff(lambda v: ref_cosine(v, x2, 0, 1e-8), x1, g),
                               rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g2, finite_diff(lambda v: ref_cosine(x1, v, 0, 1e-8), x2, g),
                               rtol=1e-6, atol=1e-8)


def test_cosine_similarity_out_and_bad_input():
    x1, x2 = rand((3, 4), 1), rand((3, 4), 2)
    out = np.empty(3)
    assert nbops.cosine_similarity(x1, x2, out=out) is out
    np.testing.assert_allclose(out, ref_cosine(x1, x2, 1, 1e-8), rtol=1e-12)
    with pytest.raises(ValueError, match="broadcast"):
        nbops.cosine_similarity(x1, rand((2, 4)))
    with pytest.raises(IndexError, match="axis 2"):
        nbops.cosine_similarity(x1, x2, 2)
    with pytest.raises(TypeError, match="x2"):
        nbops.cosine_similarity(x1, x2.astype(complex))
    with pytest.raises(ValueError, match="grad_output"):
        nbops.cosine_similarity_backward(np.ones(4), x1, x2)
    with pytest.raises(TypeError, match="out"):
        nbops.cosine_similarity_backward(np.ones(3), x1, x2, out=np.empty((3, 4)))


def test_nn_cosine_similarity_vs_torch():
    x1, x2 = rand((3, 5, 2), 1), rand((3, 5, 2), 2)
    m, t = nbops.nn.CosineSimilarity(dim=-2, eps=1e-6), torch.nn.CosineSimilarity(-2, 1e-6)
    assert repr(m) == "CosineSimilarity()"
    t1, t2 = T(x1), T(x2)
    y, yt = m(x1, x2), t(t1, t2)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    g = rand(y.shape, 3)
    yt.backward(torch.tensor(g))
    g1, g2 = m.backward(g)
    np.testing.assert_allclose(g1, t1.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g2, t2.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert m._saved == []


# ------------------------------------------------------------------------- normalize
@pytest.mark.parametrize("p", PS)
def test_normalize_vs_reference_and_torch(p):
    x = rand((4, 5, 3), 7)
    x[1, :, 2] = 0  # a zero row (clamped norm)
    for axis in (1, -1):
        y = nbops.normalize(x, p, axis)
        with np.errstate(invalid="ignore", divide="ignore"):
            np.testing.assert_allclose(y, ref_normalize(x, p, axis, 1e-12), rtol=1e-12)
        t = T(x)
        yt = F.normalize(t, p, axis)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
        g = rand(x.shape, 8)
        yt.backward(torch.tensor(g))
        np.testing.assert_allclose(nbops.normalize_backward(g, x, p, axis), t.grad.numpy(),
                                   rtol=1e-10, atol=1e-12)


def test_normalize_float32_finite_differences_and_bad_input():
    x = rand((6, 33), 1, np.float32)[:, ::3]
    y = nbops.normalize(x, axis=0, eps=1e-3)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    t = T(x)
    yt = F.normalize(t, dim=0, eps=1e-3)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[np.float32])
    g = rand(x.shape, 2, np.float32)
    yt.backward(torch.tensor(g))
    gi = nbops.normalize_backward(g, x, axis=0, eps=1e-3)
    assert gi.dtype == np.float32
    np.testing.assert_allclose(gi, t.grad.numpy(), **TOL[np.float32])
    x64 = rand((3, 4), 3)
    g64 = rand((3, 4), 4)
    for p in (1.5, 3.0):
        np.testing.assert_allclose(
            nbops.normalize_backward(g64, x64, p), rtol=1e-6, atol=1e-8,
            desired=finite_diff(lambda v, p=p: ref_normalize(v, p, 1, 1e-12), x64, g64))
    out = np.empty((3, 4))
    assert nbops.normalize(x64, out=out) is out
    with pytest.raises(ValueError, match="p must be"):
        nbops.normalize(x64, -1.0)
    with pytest.raises(IndexError):
        nbops.normalize(np.ones(3))
    with pytest.raises(ValueError, match="grad_output"):
        nbops.normalize_backward(np.ones(3), x64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normalize_long_rows_vs_reference_and_torch(dtype):
    """Rows longer than the kernels' blocks of lanes (p = 2 sums in lanes, then
    the tail in order), a zero row and a row below eps, in several tasks of
    rows; the same bits on 1 and 2 threads."""
    import numba
    x = rand((300, 203), 5, dtype)
    x[3] = 0
    x[7] *= 1e-14
    g = rand(x.shape, 6, dtype)
    y = nbops.normalize(x)
    gi = nbops.normalize_backward(g, x)
    assert y.dtype == gi.dtype == dtype
    np.testing.assert_allclose(y, ref_normalize(x.astype(np.float64), 2.0, 1, 1e-12),
                               **TOL[dtype])
    t = T(x)
    F.normalize(t).backward(torch.tensor(g))
    np.testing.assert_allclose(gi, t.grad.numpy(), **TOL[dtype])
    if dtype == np.float64:
        np.testing.assert_allclose(
            nbops.normalize_backward(g[:3], x[:3]), rtol=1e-6, atol=1e-8,
            desired=finite_diff(lambda v: ref_normalize(v, 2.0, 1, 1e-12), x[:3], g[:3]))
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        y1, g1 = nbops.normalize(x), nbops.normalize_backward(g, x)
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(y1, y)
    np.testing.assert_array_equal(g1, gi)


# ----------------------------------------------------------------------------- pdist
@pytest.mark.parametrize("p", PS)
def test_pdist_vs_reference_and_torch(p):
    x = rand((7, 5), 3)
    x[4] = x[1]  # a zero distance
    x[5, 2] = x[0, 2] + 2.0  # ties of the max
    y = nbops.pdist(x, p)
    np.testing.assert_allclose(y, ref_pdist(x, p), rtol=1e-12)
    t = T(x)
    yt = F.pdist(t, p)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12)
    g = rand(y.shape, 4)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(nbops.pdist_backward(g, x, p), t.grad.numpy(), rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(nbops.pdist_backward(g, x, p, output=y), t.grad.numpy(),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pdist_product_form_on_many_rows(dtype):
    x = rand((40, 6), 8, dtype)
    x[30] = x[3]
    y = nbops.pdist(x)
    ref = ref_pdist(x, 2)
    np.testing.assert_allclose(y, ref, rtol=1e-13 if dtype == np.float64 else 3e-7)
    k = 3 * 40 - 3 * 4 // 2 + 30 - 3 - 1
    assert y[k] == 0
    t = T(x)
    yt = F.pdist(t)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    g = rand(y.shape, 9, dtype)
    yt.backward(torch.tensor(g))
    gi = nbops.pdist_backward(g, x)
    assert gi.dtype == dtype
    np.testing.assert_allclose(gi, t.grad.numpy(), rtol=1e-9 if dtype == np.float64 else 1e-4,
                               atol=1e-10 if dtype == np.float64 else 1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(26, 1), (64, 10), (45, 24), (40, 30), (70, 33)])
def test_pdist_p2_kernel(dtype, shape):
    """pdist at p = 2 on more than 25 rows (S._pdist_l2: direct float64 sums with few
    features, else the product form of the upper triangle): the float64 distances
    (within 2 float32 ulps, or 1e-13) as accurate as PyTorch's float32 pdist at
    least, exact zeros for equal rows, NaN/inf as PyTorch, the same bits from the
    serial and the parallel kernel and into ``out=``."""
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    x[5] = x[3]  # equal rows: exactly 0
    x[7] = x[3] * dtype(1 + 1e-5)  # close rows: recomputed directly in the product form
    x[9] = x[8] * dtype(100)  # a long row
    n = shape[0]
    i, j = np.triu_indices(n, 1)
    x64 = x.astype(np.float64)
    ref = np.sqrt(((x64[i] - x64[j]) ** 2).sum(axis=1))
    got = nbops.pdist(x)
    assert got.dtype == dtype
    assert got[(i == 3) & (j == 5)][0] == 0
    want = F.pdist(torch.from_numpy(x)).numpy()
    if dtype == np.float32:
        err = np.abs(got - ref) / ref.clip(1e-30)
        err_torch = np.abs(want - ref) / ref.clip(1e-30)
        assert err.max() <= max(err_torch.max(), 2.0 ** -23)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    few = True if shape[1] <= nbops._ops.linear.FEW_INPUTS[np.dtype(dtype).char] else None
    product = True if few is None else None
    serial, parallel = np.empty_like(got), np.empty_like(got)
    S._pdist_l2_serial(x, few, product, serial)
    S._pdist_l2_parallel(x, few, product, parallel)
    assert serial.tobytes() == parallel.tobytes() == got.tobytes()
    out = np.full_like(got, np.nan)
    assert nbops.pdist(x, out=out) is out
    assert out.tobytes() == got.tobytes()
    x[2, 0] = np.nan
    x[11, 0] = np.inf
    x[12, 0] = np.inf
    got = nbops.pdist(x)
    want = F.pdist(torch.from_numpy(x)).numpy()
    nans = (i == 2) | (j == 2) | ((i == 11) & (j == 12))
    infs = ~nans & ((i == 11) | (j == 11) | (i == 12) | (j == 12))
    for v in (got, want):
        assert np.isnan(v[nans]).all() and np.isposinf(v[infs]).all()
        assert np.isfinite(v[~nans & ~infs]).all()


def test_pdist_float32_finite_differences_edges_and_bad_input():
    x = rand((9, 6), 5, np.float32)[::2]
    y = nbops.pdist(x)
    assert y.dtype == np.float32 and y.shape == (10,)
    np.testing.assert_allclose(y, ref_pdist(x, 2), **TOL[np.float32])
    x64 = rand((4, 3), 6)
    g = rand((6,), 7)
    for p in (1.5, 2.0, 3.0):
        np.testing.assert_allclose(nbops.pdist_backward(g, x64, p), rtol=1e-6, atol=1e-8,
                                   desired=finite_diff(lambda v, p=p: ref_pdist(v, p), x64, g))
    assert nbops.pdist(np.ones((1, 3))).shape == (0,)
    np.testing.assert_array_equal(nbops.pdist(np.ones((3, 0))), np.zeros(3))
    with pytest.raises(ValueError, match="2-D"):
        nbops.pdist(np.ones(3))
    with pytest.raises(ValueError, match="p must be"):
        nbops.pdist(x64, -1)
    with pytest.raises(ValueError, match="grad_output"):
        nbops.pdist_backward(np.ones(5), x64)
    with pytest.raises(ValueError, match="output"):
        nbops.pdist_backward(g, x64, output=np.ones(5))


# ----------------------------------------------------------------------------- cdist
@pytest.mark.parametrize("p", PS)
def test_cdist_vs_reference_and_torch(p):
    x1, x2 = rand((2, 30, 4), 1), rand((1, 27, 4), 2)
    x2[0, 3] = x1[1, 5]  # a zero distance
    g = rand((2, 30, 27), 3)
    for mode in S.COMPUTE_MODES:
        y = nbops.cdist(x1, x2, p, mode)
        np.testing.assert_allclose(y, ref_cdist(x1, x2, p), rtol=1e-12, atol=1e-14)
        t1, t2 = T(x1), T(x2)
        yt = torch.cdist(t1, t2, p, mode)
        np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-7)
        yt.backward(torch.tensor(g))
        g1, g2 = nbops.cdist_backward(g, x1, x2, p, mode)
        assert g1.shape == x1.shape and g2.shape == x2.shape
        tol = dict(rtol=1e-9, atol=1e-10)
        if p == 2 and mode != S.COMPUTE_MODES[2]:
            # the product forms: torch's distance of the equal rows is ~1e-8, not 0 (a
            # ratio g / dist of ~1e8 there), and x1 * rowsum(r) - r x2 cancels
            tol = dict(rtol=1e-9, atol=1e-7)
            g1d, g2d = nbops.cdist_backward(g, x1, x2, p, S.COMPUTE_MODES[2])
            np.testing.assert_allclose(g1, g1d, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(g2, g2d, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(g1, t1.grad.numpy(), **tol)
        np.testing.assert_allclose(g2, t2.grad.numpy(), **tol)


def test_cdist_float32_product_mode_is_exact_at_equal_rows():
    x1 = rand((40, 16), 4, np.float32) * 100
    x2 = x1[::-1].copy()
    y = nbops.cdist(x1, x2)
    assert y.dtype == np.float32
    ref = ref_cdist(x1, x2, 2)
    np.testing.assert_allclose(y, ref, rtol=4e-7)
    assert (y[np.arange(40), 39 - np.arange(40)] == 0).all()
    direct = nbops.cdist(x1, x2, compute_mode=S.COMPUTE_MODES[2])
    np.testing.assert_allclose(y, direct, rtol=2.5e-7)  # within 2 ulps of the direct sums
    np.testing.assert_array_equal(direct, ref.astype(np.float32))  # float64 rounded once
    yt = torch.cdist(torch.tensor(x1), torch.tensor(x2)).numpy()
    equal = (np.arange(40), 39 - np.arange(40))
    # torch's product form: close elsewhere, but distances of order sqrt(eps32) * |x| (not 0)
    # at equal rows
    apart = np.ones((40, 40), bool)
    apart[equal] = False
    np.testing.assert_allclose(y[apart], yt[apart], rtol=1e-4)
    assert (yt[equal] > 0).any() and yt[equal].max() < 1e-3 * np.abs(x1).max() * 4
    g = rand((40, 40), 5, np.float32)
    t1, t2 = T(x1), T(x2)
    torch.cdist(t1, t2, compute_mode=S.COMPUTE_MODES[2]).backward(torch.tensor(g))
    g1, g2 = nbops.cdist_backward(g, x1, x2, output=y)
    assert g1.dtype == np.float32
    np.testing.assert_allclose(g1, t1.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(g2, t2.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_cdist_finite_differences_and_bad_input():
    x1, x2 = rand((3, 4), 6)[:, ::-1], rand((5, 4), 7)
    g = rand((3, 5), 8)
    for p in (0.5, 2.0, 3.0):
        g1, g2 = nbops.cdist_backward(g, x1, x2, p, S.COMPUTE_MODES[1])
        np.testing.assert_allclose(g1, finite_diff(lambda v, p=p: ref_cdist(v, x2, p), x1,
                                                   g),
                                   rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(g2, finite_diff(lambda v, p=p: ref_cdist(x1, v, p), x2,
                                                   g),
                                   rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(nbops.cdist(np.ones((2, 0)), np.ones((3, 0))),
                                  np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at least 2"):
        nbops.cdist(np.ones(3), np.ones((2, 3)))
    with pytest.raises(ValueError, match="last axis"):
        nbops.cdist(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="compute_mode"):
        nbops.cdist(x1, x2, compute_mode="mm")
    with pytest.raises(ValueError, match="p must be"):
        nbops.cdist(x1, x2, -2.0)
    with pytest.raises(ValueError, match="batch"):
        nbops.cdist(np.ones((2, 2, 3)), np.ones((3, 2, 3)))
    with pytest.raises(ValueError, match="grad_output"):
        nbops.cdist_backward(np.ones((5, 3)), x1, x2)


def test_parallel_and_serial_kernels_agree_bit_for_bit():
    x = rand((50, 8), 3)
    for kernel in (S._pdist_forward_parallel, S._pdist_backward_parallel):
        out_p = np.empty(50 * 49 // 2 if kernel is S._pdist_forward_parallel else 50 * 8)
        out_s = np.empty_like(out_p)
        if kernel is S._pdist_forward_parallel:
            kernel(x.reshape(-1), 50, 8, 2.0, 0, out_p)
            S._pdist_forward_serial(x.reshape(-1), 50, 8, 2.0, 0, out_s)
            np.testing.assert_allclose(out_s, ref_pdist(x, 2), rtol=1e-14)
        else:
            dist, g = ref_pdist(x, 2), rand((50 * 49 // 2,), 4)
            kernel(x.reshape(-1), 50, 8, 2.0, 0, dist, g, out_p)
            S._pdist_backward_serial(x.reshape(-1), 50, 8, 2.0, 0, dist, g, out_s)
        np.testing.assert_array_equal(out_p, out_s)
    x1, x2 = rand((300, 20), 1, np.float32), rand((200, 20), 2, np.float32)
    res = []
    for kernel in (S._cdist_direct_serial, S._cdist_direct_parallel):
        out = np.empty(300 * 200, np.float32)
        kernel(x1.reshape(-1), x2.reshape(-1), 1, 300, 200, 20, 3.0, 5, out)
        res.append(out)
    np.testing.assert_array_equal(*res)


# ------------------------------------------------------------------------ in @njit
@pytest.fixture(scope="module")
def njit_calls():
    from numba import njit

    @njit
    def forward(x1, x2, x, p):
        return (nbops.cosine_similarity(x1, x2, 0), nbops.normalize(x, p, -1),
                nbops.pdist(x, p), nbops.cdist(x1, x2, p))

    @njit
    def backward(g1, g2, g3, g4, x1, x2, x, p):
        return (nbops.cosine_similarity_backward(g1, x1, x2, 0),
                nbops.normalize_backward(g2, x, p, -1), nbops.pdist_backward(g3, x, p),
                nbops.cdist_backward(g4, x1, x2, p))

    return forward, backward


@pytest.mark.parametrize("p", [1.5, 2.0])
def test_njit_forms_match_the_python_path(njit_calls, p):
    forward, backward = njit_calls
    x1, x2, x = rand((2, 5, 3), 1)[:, ::2], rand((2, 1, 3), 2), rand((4, 3), 3)
    got = forward(x1, x2, x, p)
    want = (nbops.cosine_similarity(x1, x2, 0), nbops.normalize(x, p, -1), nbops.pdist(x, p),
            nbops.cdist(x1, x2, p, S.COMPUTE_MODES[2]))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    gs = [rand(w.shape, 10 + k) for k, w in enumerate(want)]
    got = backward(*gs, x1, x2, x, p)
    want = (nbops.cosine_similarity_backward(gs[0], x1, x2, 0),
            nbops.normalize_backward(gs[1], x, p, -1), nbops.pdist_backward(gs[2], x, p),
            nbops.cdist_backward(gs[3], x1, x2, p, S.COMPUTE_MODES[2]))
    for a, b in zip(got, want, strict=True):
        for u, v in zip(a if isinstance(a, tuple) else (a,), b if isinstance(b, tuple) else (b,),
                        strict=True):
            assert u.shape == v.shape
            np.testing.assert_allclose(u, v, rtol=1e-12, atol=1e-14)
