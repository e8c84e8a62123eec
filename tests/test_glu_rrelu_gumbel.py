"""glu, rrelu, gumbel_softmax and their backwards (issue 16, item 1): float64 references
written here, PyTorch parity (forward and autograd backward), float64 finite
differences, the generator's guarantees (same seed, same values, any thread count;
the backward regenerates them), @njit forms and bad inputs.

Few dtypes and layouts per test, small arrays: compile time is CI's main cost."""

import numpy as np
import pytest
from numba import njit

import nbops
import nbops.nn as nn
from nbops._launch import task_address
from nbops._ops import glu as G
from nbops._ops import gumbel as GS
from nbops._ops import rrelu as RR

torch = pytest.importorskip("torch")

TOL = {np.float64: dict(rtol=1e-12, atol=1e-13), np.float32: dict(rtol=2e-6, atol=2e-7)}
DTYPES = [np.float32, np.float64]


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _rng(seed=0):
    return np.random.default_rng(seed)


def _fd(f, x, g, h=1e-6):
    """Central finite differences of sum(g * f(x)) with respect to x (float64)."""
    grad = np.empty_like(x)
    flat = x.reshape(-1)
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = np.sum(g * f(x))
        flat[i] = old - h
        down = np.sum(g * f(x))
        flat[i] = old
        gflat[i] = (up - down) / (2 * h)
    return grad


# =========================================================================== glu
def _glu_ref(x, axis):
    x = np.asarray(x, np.float64)
    a, b = np.split(x, 2, axis=axis)
    return a / (1.0 + np.exp(-b))


GLU_CASES = [((3, 8), -1), ((4, 6, 5), 1), ((4, 3), 0), ((2, 3, 4, 2), -1)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", GLU_CASES)
def test_glu_forward_and_backward_vs_torch(shape, axis, dtype):
    x = (_rng(1).standard_normal(shape) * 3).astype(dtype)
    y = nbops.glu(x, axis)
    assert y.dtype == dtype
    np.testing.assert_allclose(y, _glu_ref(x, axis), rtol=1e-6 if dtype == np.float32
                               else 1e-14, atol=1e-7 if dtype == np.float32 else 1e-15)
    xt = T(x).requires_grad_()
    yt = torch.nn.functional.glu(xt, axis)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    g = _rng(2).standard_normal(y.shape).astype(dtype)
    yt.backward(T(g))
    gx = nbops.glu_backward(g, x, axis)
    assert gx.dtype == dtype and gx.shape == x.shape
    np.testing.assert_allclose(gx, xt.grad.numpy(), **TOL[dtype])
    # dim= alias (PyTorch's name)
    np.testing.assert_array_equal(nbops.glu(x, dim=axis), y)
    np.testing.assert_array_equal(nbops.glu_backward(g, x, dim=axis), gx)


def test_glu_backward_finite_differences():
    x = _rng(3).standard_normal((3, 4, 6))
    g = _rng(4).standard_normal((3, 2, 6))
    np.testing.assert_allclose(nbops.glu_backward(g, x, 1), _fd(lambda v: _glu_ref(v, 1), x, g),
                               rtol=1e-7, atol=1e-8)


def test_glu_layouts_out_empty_and_integers():
    x = _rng(5).standard_normal((6, 10))
    strided = x[::2, ::-1]  # non-contiguous
    np.testing.assert_array_equal(nbops.glu(strided), nbops.glu(strided.copy()))
    ft = np.asfortranarray(x)
    np.testing.assert_array_equal(nbops.glu(ft, 0), nbops.glu(x, 0))
    g = _rng(6).standard_normal((3, 5))
    np.testing.assert_array_equal(nbops.glu_backward(g, strided),
                                  nbops.glu_backward(g, strided.copy()))
    np.testing.assert_array_equal(nbops.glu_backward(g[:, ::-1], x[::2]),
                                  nbops.glu_backward(g[:, ::-1].copy(), x[::2]))
    out = np.empty((6, 5))
    assert nbops.glu(x, out=out) is out
    np.testing.assert_array_equal(out, nbops.glu(x))
    gout = np.empty_like(x)
    g2 = _rng(7).standard_normal((6, 5))
    assert nbops.glu_backward(g2, x, out=gout) is gout
    np.testing.assert_array_equal(gout, nbops.glu_backward(g2, x))
    # empty (PyTorch accepts it)
    e = np.zeros((0, 4), np.float32)
    assert nbops.glu(e).shape == (0, 2) and nbops.glu(e).dtype == np.float32
    assert nbops.glu_backward(np.zeros((0, 2), np.float32), e).shape == (0, 4)
    assert torch.nn.functional.glu(T(e)).shape == (0, 2)
    # integers promote as np.exp (float64)
    xi = np.arange(8).reshape(2, 4)
    np.testing.assert_allclose(nbops.glu(xi), _glu_ref(xi, -1), rtol=1e-14)


def test_glu_bad_inputs():
    with pytest.raises(ValueError, match="Halving dimension must be even, but dimension 1 "
                                         "is size 5"):
        nbops.glu(np.ones((2, 5)))
    with pytest.raises(RuntimeError, match="Halving dimension must be even"):
        torch.nn.functional.glu(torch.ones(2, 5))
    with pytest.raises(ValueError, match="scalars"):
        nbops.glu(np.float64(1.0))
    with pytest.raises(ValueError, match="out of range"):
        nbops.glu(np.ones((2, 4)), 2)
    with pytest.raises(TypeError, match="axis or dim"):
        nbops.glu(np.ones((2, 4)), 0, dim=1)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.glu_backward(np.ones((2, 4)), np.ones((2, 4)))
    with pytest.raises(TypeError, match="grad_output"):
        nbops.glu_backward(np.ones((2, 2), np.int64), np.ones((2, 4)))
    with pytest.raises(TypeError, match="complex"):
        nbops.glu(np.ones((2, 4), np.complex128))


def test_glu_parallel_and_serial_kernels_agree():
    x = _rng(8).standard_normal((3, 2 * 40000)).astype(np.float32)
    src = x.reshape(-1)
    a = np.empty(3 * 40000, np.float32)
    b = np.empty_like(a)
    G._glu_serial(src, a, 3, 40000)
    G._glu_parallel(src, b, 3, 40000)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(nbops.glu(x), a.reshape(3, 40000))


@pytest.mark.parametrize("half", [7, 1000, 20000])
def test_glu_kernels_short_and_long_runs(half):
    """Tasks of several short runs (37 rows: a partial last task) or tiles of a long
    run: serial and parallel kernels agree bit for bit, forward and backward, and
    match the float64 reference and PyTorch."""
    O = 37
    x = _rng(11).standard_normal((O, 2 * half)).astype(np.float32)
    g = _rng(12).standard_normal((O, half)).astype(np.float32)
    src, gs = x.reshape(-1), g.reshape(-1)
    a, b = np.empty(O * half, np.float32), np.empty(O * half, np.float32)
    G._glu_serial(src, a, O, half)
    G._glu_parallel(src, b, O, half)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.reshape(O, half), _glu_ref(x, -1), **TOL[np.float32])
    ga, gb = np.empty(x.size, np.float32), np.empty(x.size, np.float32)
    G._grad_serial(gs, src, ga, O, half)
    G._grad_parallel(gs, src, gb, O, half)
    np.testing.assert_array_equal(ga, gb)
    expected = torch.ops.aten.glu_backward(T(g), T(x), -1).numpy()
    np.testing.assert_allclose(ga.reshape(x.shape), expected, **TOL[np.float32])


def test_glu_njit():
    @njit
    def fwd(x, ax):
        return nbops.glu(x, ax)

    @njit
    def bwd(g, x):
        return nbops.glu_backward(g, x, dim=0)

    x = _rng(9).standard_normal((4, 6))
    np.testing.assert_array_equal(fwd(x, 1), nbops.glu(x, 1))
    np.testing.assert_array_equal(fwd(x[:, ::-1], -1), nbops.glu(x[:, ::-1]))
    g = _rng(10).standard_normal((2, 6))
    np.testing.assert_array_equal(bwd(g, x), nbops.glu_backward(g, x, 0))
    with pytest.raises(ValueError, match="Halving dimension"):
        fwd(np.ones((3, 3)), 0)
    with pytest.raises(ValueError, match="grad_output"):
        bwd(np.ones((4, 6)), x)


def test_glu_module():
    m = nn.GLU(dim=1)
    assert repr(m) == repr(torch.nn.GLU(dim=1)) == "GLU(dim=1)"
    x = _rng(11).standard_normal((3, 4, 5))
    xt = T(x).requires_grad_()
    yt = torch.nn.GLU(dim=1)(xt)
    y = m(x)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[np.float64])
    g = _rng(12).standard_normal(y.shape)
    yt.backward(T(g))
    np.testing.assert_allclose(m.backward(g), xt.grad.numpy(), **TOL[np.float64])


# =========================================================================== rrelu
LOWER, UPPER = 0.125, 1.0 / 3


@pytest.mark.parametrize("dtype", DTYPES)
def test_rrelu_eval_is_torchs_exactly(dtype):
    x = (_rng(20).standard_normal((5, 7)) * 3).astype(dtype)
    x[0, :3] = [0.0, -0.0, np.nan]
    for lo, up in ((LOWER, UPPER), (0.1, 0.3), (-0.5, 0.25)):
        xt = T(x).requires_grad_()
        yt = torch.nn.functional.rrelu(xt, lo, up, training=False)
        y = nbops.rrelu(x, lo, up)
        np.testing.assert_array_equal(y, yt.detach().numpy())
        assert y.dtype == dtype
        g = _rng(21).standard_normal(x.shape).astype(dtype)
        yt.backward(T(g))
        np.testing.assert_array_equal(nbops.rrelu_backward(g, x, lo, up), xt.grad.numpy())


def _slopes_of(y, x):
    """The slopes the forward used where x < 0 (derived from the output)."""
    neg = x < 0
    return (y[neg] / x[neg]).astype(np.float64), neg


@pytest.mark.parametrize("dtype", DTYPES)
def test_rrelu_training_distribution_and_semantics(dtype):
    x = -np.abs(_rng(22).standard_normal(20000)).astype(dtype) - 0.5
    y = nbops.rrelu(x, LOWER, UPPER, training=True, rng=3)
    r, _ = _slopes_of(y, x)
    assert r.min() >= LOWER * (1 - 1e-6) and r.max() <= UPPER * (1 + 1e-6)
    # U(lower, upper): mean and variance within 5 standard errors
    mean, var = (LOWER + UPPER) / 2, (UPPER - LOWER) ** 2 / 12
    assert abs(r.mean() - mean) < 5 * np.sqrt(var / r.size)
    assert abs(r.var() - var) < 5 * var * np.sqrt(0.8 / r.size)
    # x > 0 and NaN pass; 0 gets a slope (0 * r = 0); the same seed, the same slopes
    z = np.array([2.0, np.nan, 0.0, -0.0, -1.0], dtype)
    yz = nbops.rrelu(z, training=True, rng=4)
    assert yz[0] == 2.0 and np.isnan(yz[1]) and yz[2] == 0.0
    assert np.signbit(yz[3]) == np.signbit(torch.rrelu(T(z), training=True)[3].item())
    np.testing.assert_array_equal(nbops.rrelu(x, training=True, rng=3), y)
    assert not np.array_equal(nbops.rrelu(x, training=True, rng=5), y)


def test_rrelu_slopes_follow_the_documented_scheme_and_thread_count():
    """Element i's slope: lower + (upper - lower) * w / 2**32, w = Philox word i of
    the key of the seed (dropout's scheme); serial and parallel kernels agree."""
    from nbops.scalar.random import philox4x32_10_int, splitmix64_int

    n = 9
    x = -np.ones(n)
    seed = 123
    k = splitmix64_int(seed)
    key = (k & 0xFFFFFFFF, k >> 32)
    words = [philox4x32_10_int((j, 0, 0, 0), key)[i] for j in range(3) for i in range(4)]
    want = -(LOWER + (UPPER - LOWER) * np.array(words[:n], np.float64) * 2.0 ** -32)
    np.testing.assert_array_equal(nbops.rrelu(x, training=True, rng=seed), want)
    big = -np.abs(_rng(23).standard_normal(50001))
    a, b = np.empty_like(big), np.empty_like(big)
    kk = nbops._ops.plan.dropout_key(seed)
    RR._rrelu_serial(big, None, a, 0, kk[0], kk[1], LOWER, UPPER - LOWER)
    RR._rrelu_parallel(big, None, b, 0, kk[0], kk[1], LOWER, UPPER - LOWER)
    np.testing.assert_array_equal(a, b)
    for start in (1, 5, 8190, 8195):  # a piece of the array (nbops/_dask.py's blocks)
        c = np.empty(big.size - start)
        RR._rrelu_parallel(big[start:], None, c, start, kk[0], kk[1], LOWER, UPPER - LOWER)
        np.testing.assert_array_equal(c, a[start:])
    np.testing.assert_array_equal(nbops.rrelu(big, training=True, rng=seed), a)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rrelu_training_backward_vs_torch_given_the_slopes(dtype):
    x = (_rng(24).standard_normal((6, 5)) * 2).astype(dtype)
    x[0, 0] = 0.0
    y = nbops.rrelu(x, LOWER, UPPER, training=True, rng=7)
    noise = np.ones_like(x)
    r, neg = _slopes_of(y, x)
    noise[neg] = r
    noise[x == 0] = nbops.rrelu(-np.ones_like(x), LOWER, UPPER, training=True,
                                rng=7)[x == 0] * -1
    g = _rng(25).standard_normal(x.shape).astype(dtype)
    want = torch.ops.aten.rrelu_with_noise_backward(T(g), T(x), T(noise), LOWER, UPPER, True,
                                                    False)
    gx = nbops.rrelu_backward(g, x, LOWER, UPPER, True, rng=7)
    assert gx.dtype == dtype
    np.testing.assert_allclose(gx, want.numpy(), **TOL[dtype])
    # autograd through x * noise (torch's forward with the same slopes)
    xt = T(x).requires_grad_()
    yt = torch.where(xt <= 0, xt * T(noise), xt)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    yt.backward(T(g))
    np.testing.assert_allclose(gx, xt.grad.numpy(), **TOL[dtype])


def test_rrelu_backward_finite_differences():
    x = _rng(26).standard_normal((4, 5))
    x[np.abs(x) < 0.1] = 0.5  # away from the kink
    g = _rng(27).standard_normal(x.shape)
    fd = _fd(lambda v: nbops.rrelu(v, training=True, rng=11), x, g)
    np.testing.assert_allclose(nbops.rrelu_backward(g, x, training=True, rng=11), fd,
                               rtol=1e-7, atol=1e-8)
    fd = _fd(lambda v: nbops.rrelu(v, 0.2, 0.4), x, g)
    np.testing.assert_allclose(nbops.rrelu_backward(g, x, 0.2, 0.4), fd, rtol=1e-7, atol=1e-8)


def test_rrelu_inplace_out_layouts_and_generators():
    x = -np.abs(_rng(28).standard_normal((4, 6)))
    want = nbops.rrelu(x, training=True, rng=9)
    xc = x.copy()
    assert nbops.rrelu(xc, training=True, inplace=True, rng=9) is xc
    np.testing.assert_array_equal(xc, want)
    out = np.empty_like(x)
    assert nbops.rrelu(x, training=True, rng=9, out=out) is out
    np.testing.assert_array_equal(out, want)
    # a non-contiguous input: the C-order index of its elements picks the slopes
    strided = x[:, ::-1]
    np.testing.assert_array_equal(nbops.rrelu(strided, training=True, rng=9),
                                  nbops.rrelu(strided.copy(), training=True, rng=9))
    gen = np.random.default_rng(0)
    seed = int(np.random.default_rng(0).integers(2**64, dtype=np.uint64))
    np.testing.assert_array_equal(nbops.rrelu(x, training=True, rng=gen),
                                  nbops.rrelu(x, training=True, rng=seed))
    # eval in place: leaky_relu's
    xe = x.astype(np.float32)
    assert nbops.rrelu(xe, inplace=True) is xe
    e = np.zeros((0, 3))
    assert nbops.rrelu(e, training=True, rng=0).shape == (0, 3)
    assert nbops.rrelu_backward(e, e, training=True, rng=0).shape == (0, 3)


def test_rrelu_bad_inputs():
    with pytest.raises(ValueError, match="Lower bound should be less than or equal"):
        nbops.rrelu(np.ones(3), 0.5, 0.1)
    with pytest.raises(TypeError, match="rng"):
        nbops.rrelu_backward(np.ones(3), np.ones(3), training=True)
    with pytest.raises(TypeError, match="rng"):
        nbops.rrelu_backward(np.ones(3), np.ones(3), training=True,
                             rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.rrelu_backward(np.ones(3), np.ones(4), training=True, rng=0)
    with pytest.raises(TypeError, match="inplace"):
        nbops.rrelu(np.arange(3), training=True, inplace=True, rng=0)
    with pytest.raises(TypeError, match="lower"):
        nbops.rrelu(np.ones(3), "0.1")


def test_rrelu_njit():
    @njit
    def fwd(x, training, seed):
        return nbops.rrelu(x, 0.1, 0.3, training, rng=seed)

    @njit
    def bwd(g, x, training, seed):
        return nbops.rrelu_backward(g, x, 0.1, 0.3, training, rng=seed)

    x = _rng(29).standard_normal((3, 7))
    g = _rng(30).standard_normal((3, 7))
    for training in (False, True):
        np.testing.assert_array_equal(fwd(x, training, 17),
                                      nbops.rrelu(x, 0.1, 0.3, training, rng=17))
        np.testing.assert_array_equal(bwd(g, x, training, 17),
                                      nbops.rrelu_backward(g, x, 0.1, 0.3, training, rng=17))
    np.testing.assert_array_equal(fwd(x[:, ::2], True, 17),
                                  nbops.rrelu(x[:, ::2], 0.1, 0.3, True, rng=17))


def test_rrelu_module():
    m = nn.RReLU(0.1, 0.3, rng=0)
    assert repr(m) == repr(torch.nn.RReLU(0.1, 0.3)) == "RReLU(lower=0.1, upper=0.3)"
    assert repr(nn.RReLU(inplace=True)) == repr(torch.nn.RReLU(inplace=True))
    x = _rng(31).standard_normal((4, 5))
    g = _rng(32).standard_normal((4, 5))
    y = m(x)  # training: the slopes from the module's generator, kept as a seed
    noise = np.where(x <= 0, y / np.where(x == 0, 1, x), 1.0)
    np.testing.assert_allclose(m.backward(g), g * noise, rtol=1e-12)
    assert not np.array_equal(m(x), y)  # the next call draws new slopes
    m.backward(g)
    m.eval()
    xt = T(x).requires_grad_()
    yt = torch.nn.RReLU(0.1, 0.3).eval()(xt)
    np.testing.assert_array_equal(m(x), yt.detach().numpy())
    yt.backward(T(g))
    np.testing.assert_array_equal(m.backward(g), xt.grad.numpy())
    # in place, training: the input is overwritten, the backward uses a copy of it
    mi = nn.RReLU(0.1, 0.3, inplace=True, rng=1)
    xi = x.copy()
    yi = mi(xi)
    assert yi is xi
    np.testing.assert_allclose(mi.backward(g),
                               g * np.where(x <= 0, yi / np.where(x == 0, 1, x), 1), rtol=1e-12)


# =========================================================================== gumbel_softmax
def _softmax_ref(z, axis):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _torch_gumbel(logits_t, gumbels, tau, hard, dim):
    """torch.nn.functional.gumbel_softmax's code with its noise replaced by ``gumbels``."""
    y_soft = ((logits_t + T(gumbels)) / tau).softmax(dim)
    if not hard:
        return y_soft
    index = y_soft.max(dim, keepdim=True)[1]
    y_hard = torch.zeros_like(logits_t).scatter_(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


GUMBEL_CASES = [((4, 5), -1, 1.0), ((3, 4, 2), 1, 0.5), ((6,), 0, 2.0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis,tau", GUMBEL_CASES)
@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_vs_torch_given_the_noise(shape, axis, tau, hard, dtype):
    x = _rng(40).standard_normal(shape).astype(dtype)
    noise = GS.gumbel_noise(shape, 13, dtype)
    y = nbops.gumbel_softmax(x, tau, hard, axis=axis, rng=13)
    assert y.dtype == dtype and y.shape == x.shape
    soft = _softmax_ref((x.astype(np.float64) + noise) / tau, axis)
    if hard:
        onehot = np.zeros_like(soft)
        np.put_along_axis(onehot, np.expand_dims(soft.argmax(axis), axis), 1.0, axis)
        np.testing.assert_allclose(y, onehot, atol=1e-6)
    else:
        np.testing.assert_allclose(y, soft, rtol=1e-5 if dtype == np.float32 else 1e-13,
                                   atol=1e-7 if dtype == np.float32 else 1e-15)
    xt = T(x).requires_grad_()
    yt = _torch_gumbel(xt, noise, tau, hard, axis)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[dtype])
    g = _rng(41).standard_normal(shape).astype(dtype)
    yt.backward(T(g))
    gx = nbops.gumbel_softmax_backward(g, x, tau, hard, axis=axis, rng=13)
    assert gx.dtype == dtype
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=TOL[dtype]["rtol"] * 10,
                               atol=TOL[dtype]["atol"] * 10)


def test_gumbel_noise_is_the_documented_scheme():
    from nbops.scalar.random import philox4x32_10_int, splitmix64_int

    k = splitmix64_int(21)
    words = [philox4x32_10_int((0, 0, 0, 0), (k & 0xFFFFFFFF, k >> 32))[i] for i in range(3)]
    u = (np.array(words, np.float64) + 0.5) * 2.0 ** -32
    np.testing.assert_allclose(GS.gumbel_noise(3, 21), -np.log(-np.log(u)), rtol=1e-13, atol=1e-14)
    big = _rng(42).standard_normal(40001)
    a, b = np.empty_like(big), np.empty_like(big)
    kk = nbops._ops.plan.dropout_key(21)
    task = task_address(GS._noisy_task, ("gumbel", "d"), (big, a, 0, kk[0], kk[1], 0.5))
    GS._noisy_serial(big, a, 0, kk[0], kk[1], 0.5, task)
    GS._noisy_parallel(big, b, 0, kk[0], kk[1], 0.5, task)
    np.testing.assert_array_equal(a, b)
    c = np.empty_like(big)
    GS._noisy_linked(big, c, 0, kk[0], kk[1], 0.5)  # the @njit overloads' form
    np.testing.assert_array_equal(c, a)
    for start in (1, 6, 8191, 8197):  # a piece of the array (nbops/_dask.py's blocks)
        c = np.empty(big.size - start)
        GS._noisy_parallel(big[start:], c, start, kk[0], kk[1], 0.5, task)
        np.testing.assert_array_equal(c, a[start:])


def test_gumbel_softmax_backward_finite_differences():
    x = _rng(43).standard_normal((3, 4))
    g = _rng(44).standard_normal((3, 4))
    for hard in (False, True):  # straight through: the soft sample's gradient either way
        fd = _fd(lambda v: nbops.gumbel_softmax(v, 0.7, rng=5), x, g)
        np.testing.assert_allclose(nbops.gumbel_softmax_backward(g, x, 0.7, hard, rng=5), fd,
                                   rtol=1e-7, atol=1e-9)


def test_gumbel_softmax_argmax_frequencies_match_the_probabilities():
    logits = np.array([0.5, -1.0, 1.5, 0.0])
    n = 20000
    y = nbops.gumbel_softmax(np.tile(logits, (n, 1)), hard=True, rng=99)
    counts = y.sum(axis=0)
    p = _softmax_ref(logits, 0)
    assert np.all(np.abs(counts - n * p) < 5 * np.sqrt(n * p * (1 - p)))
    # the soft sample's mean is not softmax(logits), but each row sums to 1
    soft = nbops.gumbel_softmax(np.tile(logits, (10, 1)), tau=0.3, rng=1)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-12)


def test_gumbel_softmax_options_and_bad_inputs():
    x = _rng(45).standard_normal((3, 4)).astype(np.float32)
    y = nbops.gumbel_softmax(x, rng=2)
    np.testing.assert_array_equal(nbops.gumbel_softmax(x, rng=2, dim=-1), y)
    np.testing.assert_array_equal(nbops.gumbel_softmax(x[:, ::-1], rng=2),
                                  nbops.gumbel_softmax(x[:, ::-1].copy(), rng=2))
    out = np.empty_like(x)
    assert nbops.gumbel_softmax(x, rng=2, out=out) is out
    np.testing.assert_array_equal(out, y)
    gen = np.random.default_rng(3)
    seed = int(np.random.default_rng(3).integers(2**64, dtype=np.uint64))
    np.testing.assert_array_equal(nbops.gumbel_softmax(x, rng=gen),
                                  nbops.gumbel_softmax(x, rng=seed))
    assert nbops.gumbel_softmax(np.zeros((0, 3)), rng=0).shape == (0, 3)
    assert nbops.gumbel_softmax_backward(np.zeros((0, 3)), np.zeros((0, 3)), rng=0).shape == \
        (0, 3)
    with pytest.warns(UserWarning, match="eps"):
        nbops.gumbel_softmax(x, eps=1e-3, rng=0)
    with pytest.raises(TypeError, match="rng"):
        nbops.gumbel_softmax_backward(x, x)
    with pytest.raises(TypeError, match="rng"):
        nbops.gumbel_softmax_backward(x, x, rng=None)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.gumbel_softmax_backward(x[:2], x, rng=0)
    with pytest.raises(ValueError, match="out of range"):
        nbops.gumbel_softmax(x, axis=2, rng=0)
    with pytest.raises(ValueError, match="at least one dimension"):
        nbops.gumbel_softmax(np.float64(1.0), rng=0)


def test_gumbel_softmax_njit():
    @njit
    def fwd(x, hard, seed):
        return nbops.gumbel_softmax(x, 0.5, hard, axis=0, rng=seed)

    @njit
    def bwd(g, x, seed):
        return nbops.gumbel_softmax_backward(g, x, 0.5, axis=0, rng=seed)

    x = _rng(46).standard_normal((5, 3))
    g = _rng(47).standard_normal((5, 3))
    for hard in (False, True):
        np.testing.assert_allclose(fwd(x, hard, 8),
                                   nbops.gumbel_softmax(x, 0.5, hard, axis=0, rng=8),
                                   rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(bwd(g, x, 8),
                               nbops.gumbel_softmax_backward(g, x, 0.5, axis=0, rng=8),
                               rtol=1e-13, atol=1e-15)


def test_gumbel_softmax_backward_from_the_soft_sample():
    """y_soft= (the forward's output for hard=False): no regeneration, the same gradient."""
    x = _rng(48).standard_normal((4, 6)).astype(np.float32)
    g = _rng(49).standard_normal((4, 6)).astype(np.float32)
    y = nbops.gumbel_softmax(x, 0.5, axis=0, rng=4)
    np.testing.assert_array_equal(nbops.gumbel_softmax_backward(g, x, 0.5, axis=0, y_soft=y),
                                  nbops.gumbel_softmax_backward(g, x, 0.5, axis=0, rng=4))
    with pytest.raises(ValueError, match="y_soft has shape"):
        nbops.gumbel_softmax_backward(g, x, y_soft=y[:2])

    @njit
    def bwd(g, x, y):
        return nbops.gumbel_softmax_backward(g, x, 0.5, axis=0, y_soft=y)

    np.testing.assert_allclose(bwd(g, x, y), nbops.gumbel_softmax_backward(g, x, 0.5, axis=0,
                                                                           y_soft=y),
                               rtol=1e-6, atol=1e-7)
