"""Tests of ``nbops.ctc_loss``, ``nbops.ctc_loss_backward`` and ``nbops.ctc_loss_with_grad``.

Expected values come from a brute-force float64 sum over every alignment (tiny
cases), from central finite differences in float64, or from PyTorch (parity
at realistic sizes), never from nbops itself.
"""

import itertools

import numpy as np
import pytest

import nbops

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = {np.dtype(np.float32): dict(rtol=1e-4, atol=2e-5),
       np.dtype(np.float64): dict(rtol=1e-10, atol=1e-12)}


# --------------------------------------------------------------------------- #
# references
# --------------------------------------------------------------------------- #


def brute_force_nll(lp, target, blank=0):
    """-log of the sum over every path (a class per time step) that collapses
    (repeats merged, then blanks removed) to ``target``: float64, (T, C) ``lp``."""
    lp = np.asarray(lp, np.float64)
    n_t, n_c = lp.shape
    total = 0.0
    for path in itertools.product(range(n_c), repeat=n_t):
        merged = [c for i, c in enumerate(path) if i == 0 or c != path[i - 1]]
        if [c for c in merged if c != blank] == list(target):
            total += np.exp(sum(lp[t, c] for t, c in enumerate(path)))
    return -np.log(total) if total > 0 else np.inf


def log_softmax(x, axis=-1):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def _random_case(rng, n_t, n, n_c, s, dtype, impossible=False):
    """log_probs (T, N, C), padded targets (N, s), input and target lengths."""
    lp = log_softmax(rng.standard_normal((n_t, n, n_c)) * 2).astype(dtype)
    tl = rng.integers(0, s + 1, n)
    tl[0] = s
    il = rng.integers(max(2 * s + 1, n_t // 2), n_t + 1, n)
    il[0] = n_t
    targets = rng.integers(1, n_c, (n, s))
    targets[0, 1] = targets[0, 0]  # a repeated label
    if impossible:  # a sample whose input cannot hold its target
        il[-1], tl[-1] = 2, min(s, 3)
    return lp, targets, il, tl


def _concatenated(targets, tl):
    return np.concatenate([targets[b, :tl[b]] for b in range(len(tl))])


def _torch(lp, targets, il, tl, grad_output=None, **kw):
    """PyTorch's loss and (with ``grad_output``) the gradient of log_probs, in
    float64 (nbops accumulates float32 inputs in float64: PyTorch's float32
    recursion is the less accurate of the two)."""
    x = torch.tensor(lp, dtype=torch.float64, requires_grad=True)
    loss = F.ctc_loss(x, torch.tensor(targets), tuple(int(v) for v in il),
                      tuple(int(v) for v in tl), **kw)
    if grad_output is None:
        return loss.detach().numpy()
    loss.backward(torch.tensor(grad_output, dtype=x.dtype))
    return loss.detach().numpy(), x.grad.numpy()


# --------------------------------------------------------------------------- #
# forward
# --------------------------------------------------------------------------- #

TINY = [  # (T, C, target): repeats, an empty target, the shortest possible inputs
    (4, 3, [1, 2]), (4, 3, [1, 1]), (3, 3, [1, 1]), (5, 3, [2]), (3, 2, []),
    (5, 3, [1, 2, 1]), (2, 3, [1, 1])]  # the last: impossible (needs 3 steps)


@pytest.mark.parametrize("n_t,n_c,target", TINY)
@pytest.mark.parametrize("last_blank", [False, True])
def test_brute_force(n_t, n_c, target, last_blank):
    rng = np.random.default_rng(n_t * 10 + n_c)
    blank = n_c - 1 if last_blank else 0
    target = [c if c != blank else 0 for c in target]  # no blank inside the target
    lp = log_softmax(rng.standard_normal((n_t, n_c)))
    expected = brute_force_nll(lp, target, blank)
    got = nbops.ctc_loss(lp[:, None], np.array([target], dtype=np.int64).reshape(1, -1),
                         [n_t], [len(target)], blank=blank, reduction="none")
    assert got.shape == (1,) and got.dtype == np.float64
    np.testing.assert_allclose(got[0], expected, rtol=1e-12)
    # unbatched, concatenated target
    got = nbops.ctc_loss(lp, np.array(target, dtype=np.int64), n_t, len(target), blank=blank,
                         reduction="none")
    assert np.ndim(got) == 0
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("zero_infinity", [False, True])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
def test_torch_parity(dtype, reduction, zero_infinity, layout):
    rng = np.random.default_rng(1)
    lp, targets, il, tl = _random_case(rng, 60, 6, 20, 12, dtype, impossible=True)
    t = targets if layout == "padded" else _concatenated(targets, tl)
    kw = dict(reduction=reduction, zero_infinity=zero_infinity)
    g = rng.standard_normal(6) if reduction == "none" else np.array(0.7)
    expected, expected_grad = _torch(lp, t, il, tl, g, **kw)
    got = nbops.ctc_loss(lp, t, il, tl, **kw)
    assert np.asarray(got).dtype == dtype and np.shape(got) == expected.shape
    x32 = torch.tensor(lp)  # PyTorch in the input's dtype, for the dtype rule
    assert F.ctc_loss(x32, torch.tensor(t), tuple(il), tuple(tl), **kw).dtype == x32.dtype
    np.testing.assert_allclose(got, expected, **TOL[np.dtype(dtype)])
    grad = nbops.ctc_loss_backward(g.astype(dtype), lp, t, il, tl, **kw)
    assert grad.dtype == dtype and grad.shape == lp.shape
    np.testing.assert_allclose(grad, expected_grad, equal_nan=True, **TOL[np.dtype(dtype)])
    assert np.isnan(grad[:2, -1]).all() != zero_infinity  # the impossible sample
    loss, grad = nbops.ctc_loss_with_grad(lp, t, il, tl, **kw)
    np.testing.assert_allclose(loss, expected, **TOL[np.dtype(dtype)])
    ones = np.ones(6) if reduction == "none" else np.array(1.0)
    np.testing.assert_allclose(grad, _torch(lp, t, il, tl, ones, **kw)[1], equal_nan=True,
                               **TOL[np.dtype(dtype)])


def test_blank_not_zero_and_unbatched_torch():
    rng = np.random.default_rng(2)
    lp, targets, il, tl = _random_case(rng, 30, 3, 8, 6, np.float64)
    targets[targets == 5] = 0  # blank=5: no label 5, a label 0
    kw = dict(blank=5, reduction="none")
    np.testing.assert_allclose(nbops.ctc_loss(lp, targets, il, tl, **kw),
                               _torch(lp, targets, il, tl, **kw), rtol=1e-12)
    x, t = lp[:, 0], targets[0, :tl[0]]
    g = np.array(1.3)
    expected, expected_grad = _torch(x, t, [il[0]], [tl[0]], g, **kw)
    np.testing.assert_allclose(nbops.ctc_loss(x, t, il[0], tl[0], **kw), expected, rtol=1e-12)
    np.testing.assert_allclose(nbops.ctc_loss_backward(g, x, t, (il[0],), (tl[0],), **kw),
                               expected_grad, rtol=1e-10, atol=1e-12)


def test_zero_lengths_and_non_contiguous():
    rng = np.random.default_rng(3)
    lp, targets, il, tl = _random_case(rng, 20, 4, 7, 5, np.float64)
    il[1], tl[1] = 0, 0  # empty input, empty target: loss -0
    il[2], tl[2] = 0, 2  # empty input, non-empty target: inf
    il[3], tl[3] = 9, 0  # empty target
    wide = np.zeros((20, 4, 14))
    wide[:, :, ::2] = lp
    view = wide[:, :, ::2]  # non-contiguous
    g = rng.standard_normal(4)
    expected, expected_grad = _torch(lp, targets, il, tl, g, reduction="none")
    got = nbops.ctc_loss(view, targets, il, tl, reduction="none")
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert got[2] == np.inf and got[1] == 0
    grad = nbops.ctc_loss_backward(g, view, targets, il, tl, reduction="none")
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-10, atol=1e-12, equal_nan=True)
    assert (grad[:, 1] == 0).all() and (grad[9:, 3] == 0).all()


@pytest.mark.parametrize("scale,n_t", [(30.0, 80), (0.1, 400)])
def test_wide_range(scale, n_t):
    """Peaked inputs (states whose probabilities differ by far more than float64's
    range at one time step) and likelihoods below float64's smallest value
    (``nll`` above 745): PyTorch's log-space results."""
    rng = np.random.default_rng(6)
    lp = log_softmax(rng.standard_normal((n_t, 3, 40)) * scale)
    targets, il, tl = rng.integers(1, 40, (3, 30)), [n_t, n_t - 5, 70], [30, 25, 30]
    g = rng.standard_normal(3)
    expected, expected_grad = _torch(lp, targets, il, tl, g, reduction="none")
    got = nbops.ctc_loss(lp, targets, il, tl, reduction="none")
    assert np.isfinite(got).all() and got.max() > 745
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    np.testing.assert_allclose(
        nbops.ctc_loss_backward(g, lp, targets, il, tl, reduction="none"), expected_grad,
        rtol=1e-9, atol=1e-12)


def test_finite_differences_through_log_softmax():
    """The gradient of ctc_loss(log_softmax(x)) with respect to x: the backward's
    gradient sent through log_softmax's backward (``g - softmax(x) * sum(g)``)."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 2, 4))
    targets, il, tl = np.array([[1, 1, 3], [2, 3, 0]]), [7, 6], [3, 2]

    def loss(v):
        return float(nbops.ctc_loss(log_softmax(v), targets, il, tl, reduction="mean"))

    g = nbops.ctc_loss_backward(1.0, log_softmax(x), targets, il, tl, reduction="mean")
    grad_x = g - np.exp(log_softmax(x)) * g.sum(axis=-1, keepdims=True)
    fd = np.zeros_like(x)
    h = 1e-6
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        fd[i] = (loss(x + e) - loss(x - e)) / (2 * h)
    np.testing.assert_allclose(grad_x, fd, rtol=1e-6, atol=1e-8)


def test_out_and_with_grad_agree():
    rng = np.random.default_rng(5)
    lp, targets, il, tl = _random_case(rng, 25, 3, 6, 4, np.float32)
    out = np.empty_like(lp)
    loss, grad = nbops.ctc_loss_with_grad(lp, targets, il, tl, reduction="sum", out=out)
    assert grad is out
    assert loss == nbops.ctc_loss(lp, targets, il, tl, reduction="sum")
    np.testing.assert_array_equal(
        grad, nbops.ctc_loss_backward(np.float32(1), lp, targets, il, tl, reduction="sum"))


def test_same_bits_on_any_thread_count(monkeypatch):
    """The serial kernels and the parallel ones on 1 or 2 threads give the same
    bits: per-sample losses, the 'mean' over samples and the gradient."""
    import numba

    from nbops import _config

    rng = np.random.default_rng(11)
    lp, targets, il, tl = _random_case(rng, 40, 6, 7, 5, np.float32, impossible=True)
    g = rng.standard_normal(6).astype(np.float32)

    def run():
        return [nbops.ctc_loss(lp, targets, il, tl, reduction="none"),
                nbops.ctc_loss(lp, targets, il, tl, zero_infinity=True),
                *nbops.ctc_loss_with_grad(lp, targets, il, tl, zero_infinity=True),
                nbops.ctc_loss_backward(g, lp, targets, il, tl, reduction="none")]

    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 62)  # the serial kernels
    serial = run()
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1)  # the parallel kernels
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            for a, b in zip(run(), serial, strict=True):
                np.testing.assert_array_equal(a, b)
    finally:
        numba.set_num_threads(threads)


# --------------------------------------------------------------------------- #
# bad inputs
# --------------------------------------------------------------------------- #

LP = np.log(np.full((5, 2, 4), 0.25))
T2 = np.array([[1, 2, 3], [1, 2, 3]])


@pytest.mark.parametrize("args,kwargs,error,match", [
    ((LP, T2, (6, 2), (3, 3)), {}, ValueError, "input_lengths must be at most T=5"),
    ((LP, T2, (-1, 2), (3, 3)), {}, ValueError, "input_lengths must be at least 0"),
    ((LP, T2, (5, 2), (-1, 3)), {}, ValueError, "target_lengths must be at least 0"),
    ((LP, T2, (5,), (3, 3)), {}, ValueError, "input_lengths must be of size batch_size"),
    ((LP, T2, (5, 2), (3,)), {}, ValueError, "target_lengths must be of size batch_size"),
    ((LP, T2, (5, 2), (4, 3)), {}, ValueError, "at least max.target_lengths. = 4"),
    ((LP, np.array([1, 2, 3]), (5, 2), (1, 1)), {}, ValueError, "sum.target_lengths. = 2"),
    ((LP, np.array([[0, 1, 2], [1, 2, 3]]), (5, 2), (3, 3)), {}, ValueError,
     "must not contain the blank"),
    ((LP, np.array([[1, 4, 2], [1, 2, 3]]), (5, 2), (3, 3)), {}, ValueError, r"in \[0, 4\)"),
    ((LP, T2, (5, 2), (3, 3)), {"blank": 4}, ValueError, "blank must be in label range"),
    ((LP, T2, (5, 2), (3, 3)), {"blank": -1}, ValueError, "blank must be in label range"),
    ((LP, T2, (5, 2), (3, 3)), {"reduction": "avg"}, ValueError, "reduction must be one of"),
    ((LP, T2, (5, 2), (3, 3)), {"zero_infinity": 1}, TypeError, "zero_infinity"),
    ((LP, T2.astype(float), (5, 2), (3, 3)), {}, TypeError, "targets must hold integers"),
    ((LP, T2, (5.0, 2.0), (3, 3)), {}, TypeError, "input_lengths must hold integers"),
    ((LP.astype(int), T2, (5, 2), (3, 3)), {}, TypeError, "log_probs must be a float"),
    ((LP[0, 0], T2, (5, 2), (3, 3)), {}, ValueError, r"\(T, N, C\)"),
    ((LP, T2[None], (5, 2), (3, 3)), {}, ValueError, "targets must be"),
])
def test_bad_inputs(args, kwargs, error, match):
    for call in (lambda: nbops.ctc_loss(*args, **kwargs),
                 lambda: nbops.ctc_loss_with_grad(*args, **kwargs),
                 lambda: nbops.ctc_loss_backward(1.0, *args, **kwargs)):
        with pytest.raises(error, match=match):
            call()


def test_bad_grad_output_and_out():
    with pytest.raises(ValueError, match="grad_output must have the loss's shape"):
        nbops.ctc_loss_backward(np.ones(3), LP, T2, (5, 5), (3, 3), reduction="none")
    with pytest.raises(ValueError, match="grad_output must be a scalar"):
        nbops.ctc_loss_backward(np.ones(2), LP, T2, (5, 5), (3, 3))
    with pytest.raises(TypeError, match="out has dtype"):
        nbops.ctc_loss_backward(1.0, LP, T2, (5, 5), (3, 3), out=np.empty(LP.shape, np.float32))


def test_docstring_examples():
    import doctest

    from nbops._ops import ctc

    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    n = 0
    for test in doctest.DocTestFinder().find(ctc, "ctc", globs={"np": np, "nbops": nbops}):
        runner.run(test)
        n += len(test.examples)
    assert runner.failures == 0 and n >= 6


# --------------------------------------------------------------------------- #
# nbops.nn.CTCLoss
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_module_against_torch_autograd(reduction, dtype):
    """Forward and backward of nbops.nn.CTCLoss and of torch.nn.CTCLoss (float64
    autograd) on the same log_probs, with a random grad_output."""
    rng = np.random.default_rng(7)
    lp, targets, il, tl = _random_case(rng, 40, 5, 9, 8, dtype, impossible=True)
    kw = dict(blank=0, reduction=reduction, zero_infinity=True)
    m, t = nbops.nn.CTCLoss(**kw), torch.nn.CTCLoss(**kw)
    x = torch.tensor(lp, dtype=torch.float64, requires_grad=True)
    yt = t(x, torch.tensor(targets), torch.tensor(il), torch.tensor(tl))
    y = m(lp, targets, il, tl)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL[np.dtype(dtype)])
    g = rng.standard_normal(yt.shape)
    yt.backward(torch.tensor(g))
    gx = m.backward(g if reduction == "none" else float(g))
    assert gx.dtype == dtype and gx.shape == lp.shape
    np.testing.assert_allclose(gx, x.grad.numpy(), **TOL[np.dtype(dtype)])
    assert m._saved == []  # consumed
    with nbops.no_grad():
        m(lp, targets, il, tl)
    assert m._saved == []


# --------------------------------------------------------------------------- #
# inside @njit
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def njit_ctc():
    from numba import njit

    @njit
    def forward(lp, t, il, tl, zero_infinity):
        return (nbops.ctc_loss(lp, t, il, tl, 0, "none", zero_infinity),
                nbops.ctc_loss(lp, t, il, tl, 0, "mean", zero_infinity),
                nbops.ctc_loss(lp, t, il, tl, reduction="sum", zero_infinity=zero_infinity))

    @njit
    def gradients(g, lp, t, il, tl, out):
        return (nbops.ctc_loss_backward(g, lp, t, il, tl, reduction="none", zero_infinity=True),
                nbops.ctc_loss_with_grad(lp, t, il, tl, zero_infinity=True, out=out))

    return forward, gradients


@pytest.mark.parametrize("dtype,layout", [(np.float32, "padded"),
                                          (np.float64, "concatenated")])
def test_njit(njit_ctc, dtype, layout):
    forward, gradients = njit_ctc
    rng = np.random.default_rng(8)
    lp, targets, il, tl = _random_case(rng, 30, 4, 7, 6, dtype, impossible=True)
    t = targets if layout == "padded" else _concatenated(targets, tl)
    for zero_infinity in (False, True):
        none, mean, total = forward(lp, t, il, tl, zero_infinity)
        kw = dict(zero_infinity=zero_infinity)
        np.testing.assert_array_equal(none, nbops.ctc_loss(lp, t, il, tl, reduction="none",
                                                           **kw))
        assert none.dtype == dtype  # (Numba boxes the scalars as Python floats)
        np.testing.assert_allclose(mean, _torch(lp, t, il, tl, **kw), **TOL[np.dtype(dtype)])
        assert total == nbops.ctc_loss(lp, t, il, tl, reduction="sum", **kw)
    g = rng.standard_normal(4).astype(dtype)
    out = np.empty_like(lp)
    grad, (loss, grad2) = gradients(g, lp, t, il, tl, out)
    np.testing.assert_array_equal(grad, nbops.ctc_loss_backward(
        g, lp, t, il, tl, reduction="none", zero_infinity=True))
    assert grad2 is out or np.shares_memory(grad2, out)
    np.testing.assert_array_equal(out, nbops.ctc_loss_with_grad(lp, t, il, tl,
                                                                zero_infinity=True)[1])
    assert loss == nbops.ctc_loss(lp, t, il, tl, zero_infinity=True)


def test_njit_unbatched_and_errors():
    from numba import njit

    @njit
    def unbatched(lp, t, il, tl):
        return (nbops.ctc_loss(lp, t, il, tl, reduction="none"),
                nbops.ctc_loss_backward(2.0, lp, t, (il,), (tl,), reduction="sum"))

    @njit
    def bad_reduction(lp, t, il, tl):
        return nbops.ctc_loss(lp, t, il, tl, reduction="avg")

    rng = np.random.default_rng(9)
    lp, targets, il, tl = _random_case(rng, 12, 1, 5, 3, np.float64)
    x, t = lp[:, 0], targets[0, :tl[0]]
    loss, grad = unbatched(x, t, il[0], tl[0])
    assert loss == nbops.ctc_loss(x, t, il[0], tl[0], reduction="none")
    np.testing.assert_array_equal(grad, nbops.ctc_loss_backward(2.0, x, t, il[0], tl[0],
                                                                reduction="sum"))
    with pytest.raises(ValueError, match="input_lengths must be in"):
        unbatched(x, t, 13, tl[0])
    with pytest.raises(ValueError, match="never the blank"):
        unbatched(x, t * 0, il[0], tl[0])
    with pytest.raises(ValueError, match="reduction must be one of"):
        bad_reduction(x, t, il[0], tl[0])
