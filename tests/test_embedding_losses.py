"""The embedding losses of issue 17: ``cosine_embedding_loss``, ``triplet_margin_loss``
and ``triplet_margin_with_distance_loss``, their backward and ``_with_grad``: against
float64 formulas written here, against ``torch`` and ``torch.autograd`` for every
option and reduction, against central finite differences, inside ``@njit``, their
``nbops.nn`` modules, and their argument handling. Arrays are small; each kernel
compiles once per dtype and the backward and ``_with_grad`` share it."""

import functools
import warnings

import numpy as np
import pytest
from numba import njit

import nbops

DTYPES = [np.float32, np.float64]
REDUCTIONS = ("mean", "sum", "none")
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _strided(a):
    """``a`` as a non-contiguous view (every other column of a wider array)."""
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    big[..., ::2] = a
    return big[..., ::2]


def _grad_output(reduction, shape, dtype, seed=1):
    if reduction == "none":
        return np.random.default_rng(seed).uniform(-2, 2, shape).astype(dtype)
    return 0.75


def _torch_grad(torch, g, like):
    return torch.from_numpy(np.asarray(g)) if np.ndim(g) else torch.tensor(g, dtype=like.dtype)


# ================================================================ cosine_embedding_loss
def ref_cosine(x1, x2, t, margin=0.0):
    x1, x2, t = (np.asarray(a, np.float64) for a in (x1, x2, t))
    s = (x1 * x2).sum(-1)
    cos = s / np.sqrt(((x1 * x1).sum(-1) + 1e-12) * ((x2 * x2).sum(-1) + 1e-12))
    return np.where(t == 1, 1 - cos, 0.0) + np.where(t == -1, np.maximum(cos - margin, 0), 0.0)


def _cos_data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal(shape)
    x2 = rng.standard_normal(shape) + 0.3 * x1
    if len(shape) == 2:
        t = np.where(rng.uniform(size=shape[0]) < 0.5, -1.0, 1.0)
        t[-1] = 0.0  # neither 1 nor -1: a zero loss, as PyTorch
        x2[1] = -2.0 * x1[1]  # cos = -1: below every margin
    else:
        t = np.array(-1.0)
    return x1.astype(dtype), x2.astype(dtype), t.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("margin", [0.0, 0.3])
@pytest.mark.parametrize("shape", [(7, 5), (5,)], ids=["ND", "D"])
def test_cosine_against_reference_and_torch_autograd(shape, margin, dtype):
    torch = pytest.importorskip("torch")
    x1, x2, t = _cos_data(shape, dtype)
    loss = ref_cosine(x1, x2, t, margin)
    tol = TOL[dtype]
    for reduction in REDUCTIONS:
        got = nbops.cosine_embedding_loss(x1, x2, t, margin, reduction=reduction)
        want = {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
        assert got.dtype == dtype and np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, **tol)
        t1, t2 = (torch.from_numpy(a.copy()).requires_grad_() for a in (x1, x2))
        out = torch.nn.functional.cosine_embedding_loss(t1, t2, torch.from_numpy(t), margin,
                                                        reduction=reduction)
        g = _grad_output(reduction, loss.shape, dtype)
        out.backward(_torch_grad(torch, g, t1))
        np.testing.assert_allclose(got, out.detach().numpy(), **tol)
        for a1 in (x1, _strided(x1)):
            g1, g2 = nbops.cosine_embedding_loss_backward(g, a1, x2, t, margin,
                                                          reduction=reduction)
            assert g1.shape == x1.shape and g2.shape == x2.shape and g1.dtype == dtype
            np.testing.assert_allclose(g1, t1.grad.numpy(), **tol)
            np.testing.assert_allclose(g2, t2.grad.numpy(), **tol)
        value, (h1, h2) = nbops.cosine_embedding_loss_with_grad(x1, x2, t, margin,
                                                                reduction=reduction)
        np.testing.assert_array_equal(value, got)
        ones = np.ones(loss.shape, dtype) if reduction == "none" else 1.0
        k1, k2 = nbops.cosine_embedding_loss_backward(ones, x1, x2, t, margin,
                                                      reduction=reduction)
        np.testing.assert_array_equal(h1, k1)
        np.testing.assert_array_equal(h2, k2)


def test_cosine_finite_differences():
    x1, x2, t = _cos_data((6, 4), np.float64, seed=3)
    t[:] = (1, -1, 1, -1, -1, 1)
    x2[1] = x1[1]  # cos = 1: above the margin
    g = _grad_output("none", (6,), np.float64)
    h = 1e-6
    for k, arr in enumerate((x1, x2)):
        fd = np.empty_like(arr)
        for i in np.ndindex(arr.shape):
            p, m = arr.copy(), arr.copy()
            p[i] += h
            m[i] -= h
            lp = ref_cosine(p, x2, t, 0.2) if k == 0 else ref_cosine(x1, p, t, 0.2)
            lm = ref_cosine(m, x2, t, 0.2) if k == 0 else ref_cosine(x1, m, t, 0.2)
            fd[i] = ((lp - lm) * g).sum() / (2 * h)
        got = nbops.cosine_embedding_loss_backward(g, x1, x2, t, 0.2, reduction="none")[k]
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


def test_cosine_broadcast_empty_and_checks():
    torch = pytest.importorskip("torch")
    x1, x2, t = _cos_data((5, 3), np.float64)
    # input2 of one row broadcast against input1's rows: its gradient is summed
    t1, t2 = (torch.from_numpy(a.copy()).requires_grad_() for a in (x1, x2[:1]))
    out = torch.nn.functional.cosine_embedding_loss(t1, t2, torch.from_numpy(t), 0.1)
    out.backward()
    loss, (g1, g2) = nbops.cosine_embedding_loss_with_grad(x1, x2[:1], t, 0.1)
    np.testing.assert_allclose(loss, out.item(), rtol=1e-13)
    np.testing.assert_allclose(g1, t1.grad.numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g2, t2.grad.numpy(), rtol=1e-12, atol=1e-14)
    # no rows: PyTorch's nan mean, zero sum, empty gradients
    e = np.zeros((0, 3))
    assert np.isnan(nbops.cosine_embedding_loss(e, e, np.zeros(0)))
    assert nbops.cosine_embedding_loss(e, e, np.zeros(0), reduction="sum") == 0
    assert [g.shape for g in nbops.cosine_embedding_loss_backward(1.0, e, e, np.zeros(0))] \
        == [(0, 3), (0, 3)]
    # integer targets, as PyTorch takes them
    assert nbops.cosine_embedding_loss(x1, x2, t.astype(np.int64)) == \
        nbops.cosine_embedding_loss(x1, x2, t)
    with pytest.raises(ValueError, match="0D or 1D target tensor expected"):
        nbops.cosine_embedding_loss(x1, x2, np.ones((5, 1)))
    with pytest.raises(ValueError, match="1D target tensor expects 2D input tensors"):
        nbops.cosine_embedding_loss(x1[0], x2[0], t)
    with pytest.raises(ValueError, match="0D target tensor expects 1D input tensors"):
        nbops.cosine_embedding_loss(x1, x2, np.array(1.0))
    with pytest.raises(ValueError, match="broadcast"):
        nbops.cosine_embedding_loss(x1, x2[:4], t)
    with pytest.raises(ValueError, match="reduction"):
        nbops.cosine_embedding_loss(x1, x2, t, reduction="avg")
    with pytest.raises(ValueError, match="grad_output"):
        nbops.cosine_embedding_loss_backward(np.ones(4), x1, x2, t, reduction="none")
    with pytest.raises(TypeError, match="input1"):
        nbops.cosine_embedding_loss(x1.astype(complex), x2, t)
    with pytest.warns(DeprecationWarning):
        s = nbops.cosine_embedding_loss(x1, x2, t, 0.1, False)
    assert s == nbops.cosine_embedding_loss(x1, x2, t, 0.1, reduction="sum")


# ================================================================== triplet_margin_loss
def _pnorm(d, p):
    d = np.asarray(d, np.float64)
    return np.linalg.norm(d, ord=p, axis=-1)


def ref_triplet(a, pos, neg, margin=1.0, p=2, eps=1e-6, swap=False):
    dp, dn = _pnorm(a - pos + eps, p), _pnorm(a - neg + eps, p)
    if swap:
        dn = np.minimum(dn, _pnorm(pos - neg + eps, p))
    return np.maximum(margin + dp - dn, 0.0)


def _triplet_data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    pos = a + 0.5 * rng.standard_normal(shape)
    neg = a + 1.5 * rng.standard_normal(shape)
    if len(shape) == 2:
        pos[0] = a[0]  # d(a, n) == d(p, n): the swap's minimum at a tie
        neg[1] = a[1] + 10.0  # far: a zero loss (the hinge closed)
    return a.astype(dtype), pos.astype(dtype), neg.astype(dtype)


TRIPLET_OPTIONS = [{}, {"swap": True}, {"p": 1}, {"p": 3, "swap": True, "margin": 0.5},
                   {"p": np.inf, "eps": 0.0}]
TRIPLET_IDS = ["-".join(f"{k}={v}" for k, v in kw.items()) or "default"
               for kw in TRIPLET_OPTIONS]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", TRIPLET_OPTIONS, ids=TRIPLET_IDS)
def test_triplet_against_reference_and_torch_autograd(kw, dtype):
    torch = pytest.importorskip("torch")
    arrays = _triplet_data((6, 5), dtype)
    loss = ref_triplet(*arrays, **kw)
    tol = TOL[dtype]
    for reduction in REDUCTIONS:
        got = nbops.triplet_margin_loss(*arrays, reduction=reduction, **kw)
        want = {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)
        ts = [torch.from_numpy(a.copy()).requires_grad_() for a in arrays]
        out = torch.nn.functional.triplet_margin_loss(*ts, reduction=reduction, **kw)
        g = _grad_output(reduction, loss.shape, dtype)
        out.backward(_torch_grad(torch, g, ts[0]))
        np.testing.assert_allclose(got, out.detach().numpy(), **tol)
        for first in (arrays[0], _strided(arrays[0])):
            grads = nbops.triplet_margin_loss_backward(g, first, *arrays[1:],
                                                       reduction=reduction, **kw)
            for mine, theirs in zip(grads, ts, strict=True):
                assert mine.shape == theirs.shape and mine.dtype == dtype
                np.testing.assert_allclose(mine, theirs.grad.numpy(), **tol)
        value, grads = nbops.triplet_margin_loss_with_grad(*arrays, reduction=reduction, **kw)
        np.testing.assert_array_equal(value, got)
        ones = np.ones(loss.shape, dtype) if reduction == "none" else 1.0
        for mine, other in zip(grads, nbops.triplet_margin_loss_backward(
                ones, *arrays, reduction=reduction, **kw), strict=True):
            np.testing.assert_array_equal(mine, other)


@pytest.mark.parametrize("kw", [{}, {"p": 3, "swap": True, "margin": 2.0}])
def test_triplet_finite_differences(kw):
    arrays = list(_triplet_data((5, 4), np.float64, seed=4))
    arrays[1][0] += 0.01  # off the swap's tie
    g = _grad_output("none", (5,), np.float64)
    h = 1e-6
    for k in range(3):
        fd = np.empty_like(arrays[k])
        for i in np.ndindex(arrays[k].shape):
            plus, minus = list(arrays), list(arrays)
            plus[k], minus[k] = arrays[k].copy(), arrays[k].copy()
            plus[k][i] += h
            minus[k][i] -= h
            fd[i] = ((ref_triplet(*plus, **kw) - ref_triplet(*minus, **kw)) * g).sum() / (2 * h)
        got = nbops.triplet_margin_loss_backward(g, *arrays, reduction="none", **kw)[k]
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


def test_triplet_shapes_empty_and_checks():
    torch = pytest.importorskip("torch")
    a, pos, neg = _triplet_data((4, 3), np.float64)
    # 1-D inputs: a 0-d loss; a broadcast negative row: its gradient is summed
    for args in ((a[2], pos[2], neg[2]), (a, pos, neg[:1])):
        ts = [torch.from_numpy(x.copy()).requires_grad_() for x in args]
        out = torch.nn.functional.triplet_margin_loss(*ts, swap=True, reduction="sum")
        out.backward()
        loss, grads = nbops.triplet_margin_loss_with_grad(*args, swap=True, reduction="sum")
        np.testing.assert_allclose(loss, out.item(), rtol=1e-13)
        for mine, theirs in zip(grads, ts, strict=True):
            assert mine.shape == theirs.shape
            np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert nbops.triplet_margin_loss(a[0], pos[0], neg[0], reduction="none").shape == ()
    e = np.zeros((0, 3))
    assert np.isnan(nbops.triplet_margin_loss(e, e, e))
    assert nbops.triplet_margin_loss(e, e, e, reduction="none").shape == (0,)
    assert [g.shape for g in nbops.triplet_margin_loss_backward(1.0, e, e, e)] == [(0, 3)] * 3
    with pytest.raises(ValueError, match="margin must be greater than 0, got 0.0"):
        nbops.triplet_margin_loss(a, pos, neg, margin=0.0)
    with pytest.raises(ValueError, match="same number of dimensions"):
        nbops.triplet_margin_loss(a, pos, neg[0])
    with pytest.raises(ValueError, match="broadcast"):
        nbops.triplet_margin_loss(a, pos, neg[:3])
    with pytest.raises(ValueError, match="reduction"):
        nbops.triplet_margin_loss(a, pos, neg, reduction="avg")
    with pytest.raises(ValueError, match="grad_output"):
        nbops.triplet_margin_loss_backward(np.ones(3), a, pos, neg, reduction="none")
    with pytest.raises(ValueError, match="p must not be NaN"):
        nbops.triplet_margin_loss(a, pos, neg, p=np.nan)
    with pytest.warns(DeprecationWarning):
        s = nbops.triplet_margin_loss(a, pos, neg, 1.0, 2, 1e-6, False, False)
    assert s == nbops.triplet_margin_loss(a, pos, neg, reduction="sum")


# ===================================================== triplet_margin_with_distance_loss
def test_with_distance_known_distances_are_the_triplet_loss():
    torch = pytest.importorskip("torch")
    a, pos, neg = _triplet_data((6, 5), np.float64)
    known = [(None, {}), (nbops.pairwise_distance, {}),
             (functools.partial(nbops.pairwise_distance, p=3, eps=1e-4), {"p": 3, "eps": 1e-4}),
             (nbops.nn.PairwiseDistance(p=1), {"p": 1})]
    for fn, kw in known:
        for swap in (False, True):
            opts = dict(distance_function=fn, margin=0.5, swap=swap, reduction="none")
            loss, grads = nbops.triplet_margin_with_distance_loss_with_grad(a, pos, neg, **opts)
            want, want_grads = nbops.triplet_margin_loss_with_grad(a, pos, neg, margin=0.5,
                                                                   swap=swap,
                                                                   reduction="none", **kw)
            np.testing.assert_array_equal(loss, want)
            np.testing.assert_array_equal(
                nbops.triplet_margin_with_distance_loss(a, pos, neg, **opts), want)
            g = _grad_output("none", (6,), np.float64)
            for x, y, z in zip(grads, want_grads,
                               nbops.triplet_margin_with_distance_loss_backward(
                                   np.ones(6), a, pos, neg, **opts), strict=True):
                np.testing.assert_array_equal(x, y)
                np.testing.assert_array_equal(x, z)
            assert len(nbops.triplet_margin_with_distance_loss_backward(g, a, pos, neg,
                                                                       **opts)) == 3
    ts = [torch.from_numpy(x.copy()).requires_grad_() for x in (a, pos, neg)]
    out = torch.nn.functional.triplet_margin_with_distance_loss(*ts, swap=True)
    out.backward()
    loss, grads = nbops.triplet_margin_with_distance_loss_with_grad(a, pos, neg, swap=True)
    np.testing.assert_allclose(loss, out.item(), rtol=1e-13)
    for mine, theirs in zip(grads, ts, strict=True):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_with_distance_user_callable_and_checks():
    torch = pytest.importorskip("torch")
    a, pos, neg = _triplet_data((6, 5), np.float64)

    def cosine_distance(x, y):
        return 1.0 - nbops.cosine_similarity(x, y)

    ts = [torch.from_numpy(x) for x in (a, pos, neg)]
    for swap in (False, True):
        for reduction in REDUCTIONS:
            got = nbops.triplet_margin_with_distance_loss(
                a, pos, neg, distance_function=cosine_distance, margin=0.3, swap=swap,
                reduction=reduction)
            want = torch.nn.functional.triplet_margin_with_distance_loss(
                *ts, distance_function=lambda x, y: 1.0 - torch.nn.functional.cosine_similarity(
                    x, y), margin=0.3, swap=swap, reduction=reduction)
            np.testing.assert_allclose(got, want.numpy(), rtol=1e-12, atol=1e-14)
    with pytest.raises(TypeError, match="no gradient is available for the distance_function"):
        nbops.triplet_margin_with_distance_loss_backward(1.0, a, pos, neg,
                                                         distance_function=cosine_distance)
    with pytest.raises(TypeError, match="no gradient is available"):
        nbops.triplet_margin_with_distance_loss_with_grad(a, pos, neg,
                                                          distance_function=cosine_distance)
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        nbops.triplet_margin_with_distance_loss(a, pos, neg, reduction="avg")
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        nbops.triplet_margin_with_distance_loss(a, pos, neg, margin=-1.0)
    with pytest.raises(ValueError, match="same number of dimensions"):
        nbops.triplet_margin_with_distance_loss(a, pos[0], neg, distance_function=cosine_distance)
    with pytest.raises(TypeError):  # keyword-only, as PyTorch
        nbops.triplet_margin_with_distance_loss(a, pos, neg, None)


# ======================================================================== nn modules
def _check_three(m, tm, arrays, reduction="mean", n_grads=3):
    torch = pytest.importorskip("torch")
    ts = [torch.from_numpy(x.copy()).requires_grad_() for x in arrays[:n_grads]]
    out = m(*arrays)
    tout = tm(*ts, *(torch.from_numpy(x) for x in arrays[n_grads:]))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12)
    g = _grad_output(reduction, np.shape(out), np.float64)
    grads = m.backward(g)
    tout.backward(_torch_grad(torch, g, ts[0]))
    assert len(grads) == n_grads
    for mine, theirs in zip(grads, ts, strict=True):
        np.testing.assert_allclose(mine, theirs.grad.numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nn_modules_against_torch_autograd(reduction):
    torch = pytest.importorskip("torch")
    x1, x2, t = _cos_data((7, 5), np.float64)
    _check_three(nbops.nn.CosineEmbeddingLoss(0.2, reduction=reduction),
                 torch.nn.CosineEmbeddingLoss(0.2, reduction=reduction), (x1, x2, t),
                 reduction=reduction, n_grads=2)
    arrays = _triplet_data((6, 5), np.float64)
    _check_three(nbops.nn.TripletMarginLoss(0.5, p=3, swap=True, reduction=reduction),
                 torch.nn.TripletMarginLoss(0.5, p=3, swap=True, reduction=reduction), arrays,
                 reduction=reduction)
    _check_three(nbops.nn.TripletMarginWithDistanceLoss(swap=True, reduction=reduction),
                 torch.nn.TripletMarginWithDistanceLoss(swap=True, reduction=reduction),
                 arrays, reduction=reduction)


def test_nn_module_constructors_and_user_distance():
    with pytest.raises(ValueError, match="TripletMarginLoss: expected margin to be greater"):
        nbops.nn.TripletMarginLoss(margin=0)
    with pytest.raises(ValueError, match="TripletMarginWithDistanceLoss: expected margin"):
        nbops.nn.TripletMarginWithDistanceLoss(margin=-1)
    m = nbops.nn.TripletMarginLoss(0.5, 1.0, 1e-3, True)
    assert (m.margin, m.p, m.eps, m.swap, m.reduction) == (0.5, 1.0, 1e-3, True, "mean")
    assert nbops.nn.CosineEmbeddingLoss(0.25).margin == 0.25
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert nbops.nn.CosineEmbeddingLoss(size_average=False).reduction == "sum"
    assert isinstance(nbops.nn.TripletMarginWithDistanceLoss().distance_function,
                      nbops.nn.PairwiseDistance)
    a, pos, neg = _triplet_data((4, 3), np.float64)
    m = nbops.nn.TripletMarginWithDistanceLoss(
        distance_function=lambda x, y: np.abs(x - y).sum(-1))
    value = m(a, pos, neg)
    np.testing.assert_allclose(value, ref_triplet(a, pos, neg, p=1, eps=0.0).mean(),
                               rtol=1e-13)
    with pytest.raises(TypeError, match="no gradient is available"):
        m.backward()


# ============================================================================== njit
@njit
def _njit_cosine(x1, x2, t, g):
    return (nbops.cosine_embedding_loss(x1, x2, t, 0.2),
            nbops.cosine_embedding_loss(x1, x2, t, reduction="none"),
            nbops.cosine_embedding_loss_backward(g, x1, x2, t, 0.2, reduction="none"),
            nbops.cosine_embedding_loss_with_grad(x1, x2, t, 0.1, reduction="sum"))


@njit
def _njit_triplet(a, pos, neg, g):
    return (nbops.triplet_margin_loss(a, pos, neg, 0.5, 3.0, 1e-6, True),
            nbops.triplet_margin_loss_backward(g, a, pos, neg, reduction="none"),
            nbops.triplet_margin_loss_with_grad(a, pos, neg, swap=True, reduction="sum"),
            nbops.triplet_margin_with_distance_loss(a, pos, neg, swap=True),
            nbops.triplet_margin_with_distance_loss_with_grad(a, pos, neg, margin=0.5))


def test_njit_same_as_python():
    x1, x2, t = _cos_data((7, 5), np.float64)
    g = _grad_output("none", (7,), np.float64)
    got = _njit_cosine(x1, x2, t, g)
    want = (nbops.cosine_embedding_loss(x1, x2, t, 0.2),
            nbops.cosine_embedding_loss(x1, x2, t, reduction="none"),
            nbops.cosine_embedding_loss_backward(g, x1, x2, t, 0.2, reduction="none"),
            nbops.cosine_embedding_loss_with_grad(x1, x2, t, 0.1, reduction="sum"))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
    np.testing.assert_array_equal(got[1], want[1])
    for x, y in zip(got[2], want[2], strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(got[3][0], want[3][0], rtol=1e-14)
    for x, y in zip(got[3][1], want[3][1], strict=True):
        np.testing.assert_array_equal(x, y)

    a, pos, neg = _triplet_data((6, 5), np.float64)
    g = _grad_output("none", (6,), np.float64)
    got = _njit_triplet(a, pos, neg, g)
    want = (nbops.triplet_margin_loss(a, pos, neg, 0.5, 3.0, 1e-6, True),
            nbops.triplet_margin_loss_backward(g, a, pos, neg, reduction="none"),
            nbops.triplet_margin_loss_with_grad(a, pos, neg, swap=True, reduction="sum"),
            nbops.triplet_margin_with_distance_loss(a, pos, neg, swap=True),
            nbops.triplet_margin_with_distance_loss_with_grad(a, pos, neg, margin=0.5))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
    for x, y in zip(got[1], want[1], strict=True):
        np.testing.assert_array_equal(x, y)
    for k in (2, 4):
        np.testing.assert_allclose(got[k][0], want[k][0], rtol=1e-14)
        for x, y in zip(got[k][1], want[k][1], strict=True):
            np.testing.assert_array_equal(x, y)
    np.testing.assert_allclose(got[3], want[3], rtol=1e-14)
    with pytest.raises(ValueError, match="grad_output"):
        _njit_triplet(a, pos, neg, g[:3].copy())


def test_docstring_examples():
    import doctest

    from nbops._ops import embedding_losses

    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    n = 0
    for test in doctest.DocTestFinder().find(embedding_losses, "embedding_losses",
                                             globs={"np": np, "nbops": nbops}):
        runner.run(test)
        n += len(test.examples)
    assert runner.failures == 0 and n >= 20


def test_parallel_and_serial_kernels_give_the_same_bits(monkeypatch):
    from nbops import _config

    x1, x2, t = _cos_data((64, 16), np.float32, seed=2)
    arrays = _triplet_data((64, 16), np.float32, seed=2)
    calls = [lambda: nbops.cosine_embedding_loss_with_grad(x1, x2, t, 0.1),
             lambda: nbops.triplet_margin_loss_with_grad(*arrays, swap=True)]
    results = []
    for threshold in (1 << 62, 1):  # the serial kernels, then the parallel ones
        monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", threshold)
        results.append([call() for call in calls])
    for (loss_s, grads_s), (loss_p, grads_p) in zip(*results, strict=True):
        np.testing.assert_array_equal(loss_s, loss_p)
        for a, b in zip(grads_s, grads_p, strict=True):
            np.testing.assert_array_equal(a, b)
