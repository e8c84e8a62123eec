"""multi_margin_loss and multilabel_margin_loss (issue 17), their backward and
``_with_grad``: against float64 formulas written here, against ``torch`` and
``torch.autograd`` for every option and reduction, against central finite
differences, inside ``@njit``, as ``nbops.nn`` modules, and their argument
handling (class indices out of range rejected before any kernel). Arrays are
small; each (loss, dtype) kernel compiles once and the backward and with_grad
share it."""

import numpy as np
import pytest
from numba import njit

import nbops
from nbops._ops import class_margin_losses as CM

DTYPES = [np.float32, np.float64]
REDUCTIONS = ("mean", "sum", "none")
N, C = 5, 6


# ------------------------------------------------------------ float64 references
def ref_multi_margin(x, y, p=1, margin=1.0, weight=None):
    """Per-sample losses of (N, C) scores and (N,) class indices."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    y = np.atleast_1d(y)
    n, c = x.shape
    w = np.ones(c) if weight is None else np.asarray(weight, np.float64)
    loss = np.zeros(n)
    for i in range(n):
        for k in range(c):
            z = margin - x[i, y[i]] + x[i, k]
            if k != y[i] and z > 0:
                loss[i] += z ** p * w[y[i]]
    return loss / c


def ref_multilabel_margin(x, t):
    """Per-sample losses of (N, C) scores and (N, C) class-index lists."""
    x = np.atleast_2d(np.asarray(x, np.float64))
    t = np.atleast_2d(t)
    n, c = x.shape
    loss = np.zeros(n)
    for i in range(n):
        ends = np.flatnonzero(t[i] == -1)
        labels = t[i, :ends[0] if ends.size else c]
        for j in labels:
            for k in range(c):
                z = 1 - x[i, j] + x[i, k]
                if k not in labels and z > 0:
                    loss[i] += z
    return loss / c


def _reduce(loss, reduction):
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


def _mm_data(dtype, margin=1.0, seed=0, n=N):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, (n, C))
    y = rng.integers(0, C, n)
    x[0, (y[0] + 1) % C] = x[0, y[0]] - margin  # a hinge at exactly 0 (inactive)
    return x.astype(dtype), y


def _mlm_data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, (N, C))
    t = np.full((N, C), -1)
    t[0, :3] = (2, 0, 5)
    t[1, :2] = (4, 4)  # a class listed twice counts twice
    t[1, 3:] = (1, 0, 3)  # entries after the first -1 are ignored (but checked)
    t[2] = (0, 1, 2, 3, 4, 5)  # every class a target: no terms, no -1
    # t[3]: -1 first, no targets
    t[4, :1] = 3
    x[4, 1] = x[4, 3] - 1.0  # a hinge at exactly 0 (inactive)
    return x.astype(dtype), t


def _tol(dtype):
    return dict(rtol=3e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)


def _strided(a):
    big = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    big[:, ::2] = a
    return big[:, ::2]


def _grad_output(reduction, shape, dtype, seed=1):
    if reduction == "none":
        return np.random.default_rng(seed).uniform(-2, 2, shape).astype(dtype)
    return 0.75


def _torch_run(fn, x, args, kw, reduction, g):
    """torch's loss and input gradient (autograd) at grad_output ``g``."""
    import torch
    tx = torch.from_numpy(np.array(x)).requires_grad_()
    out = fn(tx, *args, reduction=reduction, **kw)
    out.backward(torch.from_numpy(np.asarray(g, x.dtype)) if reduction == "none"
                 else torch.tensor(g, dtype=tx.dtype))
    return out.detach().numpy(), tx.grad.numpy()


MM_CASES = [{}, {"p": 2}, {"margin": 0.5, "weight": True},
            {"p": 2, "margin": -0.25, "weight": True}]
MM_IDS = ["default", "p2", "margin-weight", "p2-negmargin-weight"]


# ------------------------------------------------------------------ multi_margin_loss
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", MM_CASES, ids=MM_IDS)
def test_multi_margin_against_reference_and_torch_autograd(kw, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    margin = kw.get("margin", 1.0)
    x, y = _mm_data(dtype, margin)
    w = np.random.default_rng(2).uniform(0.5, 2, C).astype(dtype) if kw.get("weight") else None
    opts = {**kw, "weight": w}
    topts = {**kw, "weight": None if w is None else torch.from_numpy(w)}
    loss = ref_multi_margin(x, y, kw.get("p", 1), margin, w)
    tol = _tol(dtype)
    for reduction in REDUCTIONS:
        got = nbops.multi_margin_loss(x, y, reduction=reduction, **opts)
        assert np.asarray(got).dtype == dtype
        np.testing.assert_allclose(got, _reduce(loss, reduction), **tol)
        g = _grad_output(reduction, (N,), dtype)
        tout, tgrad = _torch_run(F.multi_margin_loss, x, (torch.from_numpy(y),), topts,
                                 reduction, g)
        assert np.shape(got) == tout.shape
        np.testing.assert_allclose(got, tout, **tol)
        gx = nbops.multi_margin_loss_backward(g, _strided(x), y, reduction=reduction, **opts)
        assert gx.dtype == dtype and gx.shape == x.shape
        np.testing.assert_allclose(gx, tgrad, **tol)
        value, grad = nbops.multi_margin_loss_with_grad(x, y, reduction=reduction, **opts)
        assert type(value) is type(got)
        np.testing.assert_array_equal(value, got)
        ones = np.ones(N, dtype) if reduction == "none" else 1.0
        np.testing.assert_array_equal(
            grad, nbops.multi_margin_loss_backward(ones, x, y, reduction=reduction, **opts))


@pytest.mark.parametrize("target", [np.int64(2), np.array([2])], ids=["0d", "1d"])
def test_multi_margin_one_sample_and_zero_d_as_torch(target):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.array([0.3, -0.2, 0.9, 0.5])
    for reduction in REDUCTIONS:
        got = nbops.multi_margin_loss(x, target, p=2, reduction=reduction)
        g = np.full(np.shape(target), 0.5) if reduction == "none" else 0.75
        tout, tgrad = _torch_run(F.multi_margin_loss, x, (torch.as_tensor(target),),
                                 {"p": 2}, reduction, g)
        assert np.shape(got) == tout.shape
        np.testing.assert_allclose(got, tout, rtol=1e-14)
        np.testing.assert_allclose(
            nbops.multi_margin_loss_backward(g, x, target, p=2, reduction=reduction), tgrad,
            rtol=1e-14)
    # a 0-d input: one class, which is the target: no terms
    tout, tgrad = _torch_run(F.multi_margin_loss, np.array(0.5), (torch.tensor(0),), {},
                             "none", np.array(1.0))
    np.testing.assert_array_equal(nbops.multi_margin_loss(np.array(0.5), 0, reduction="none"),
                                  tout)
    np.testing.assert_array_equal(nbops.multi_margin_loss_backward(1.0, np.array(0.5), 0),
                                  tgrad)


def test_multi_margin_finite_differences():
    x, y = _mm_data(np.float64, 0.5, seed=3)
    x[0, (y[0] + 1) % C] += 0.01  # away from the exact kink for the differences
    w = np.random.default_rng(4).uniform(0.5, 2, C)
    g = np.random.default_rng(5).uniform(-2, 2, N)
    for p in (1, 2):
        h = 1e-6
        fd = np.empty_like(x)
        for i in np.ndindex(x.shape):
            a, b = x.copy(), x.copy()
            a[i] += h
            b[i] -= h
            fd[i] = ((ref_multi_margin(a, y, p, 0.5, w) - ref_multi_margin(b, y, p, 0.5, w))
                     * g).sum() / (2 * h)
        got = nbops.multi_margin_loss_backward(g, x, y, p, 0.5, w, reduction="none")
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------ multilabel_margin_loss
@pytest.mark.parametrize("dtype", DTYPES)
def test_multilabel_margin_against_reference_and_torch_autograd(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, t = _mlm_data(dtype)
    loss = ref_multilabel_margin(x, t)
    tol = _tol(dtype)
    for reduction in REDUCTIONS:
        got = nbops.multilabel_margin_loss(x, t, reduction=reduction)
        assert np.asarray(got).dtype == dtype
        np.testing.assert_allclose(got, _reduce(loss, reduction), **tol)
        g = _grad_output(reduction, (N,), dtype)
        tout, tgrad = _torch_run(F.multilabel_margin_loss, x, (torch.from_numpy(t),), {},
                                 reduction, g)
        assert np.shape(got) == tout.shape
        np.testing.assert_allclose(got, tout, **tol)
        gx = nbops.multilabel_margin_loss_backward(g, _strided(x), _strided(t),
                                                   reduction=reduction)
        assert gx.dtype == dtype and gx.shape == x.shape
        np.testing.assert_allclose(gx, tgrad, **tol)
        value, grad = nbops.multilabel_margin_loss_with_grad(x, t, reduction=reduction)
        assert type(value) is type(got)
        np.testing.assert_array_equal(value, got)
        ones = np.ones(N, dtype) if reduction == "none" else 1.0
        np.testing.assert_array_equal(
            grad, nbops.multilabel_margin_loss_backward(ones, x, t, reduction=reduction))


def test_multilabel_margin_one_sample_as_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.array([0.3, -0.2, 0.9, 0.5])
    t = np.array([2, 0, -1, 3])
    for reduction in REDUCTIONS:
        got = nbops.multilabel_margin_loss(x, t, reduction=reduction)
        g = np.array(0.5) if reduction == "none" else 0.75
        tout, tgrad = _torch_run(F.multilabel_margin_loss, x, (torch.from_numpy(t),), {},
                                 reduction, g)
        assert np.shape(got) == tout.shape == ()
        np.testing.assert_allclose(got, tout, rtol=1e-14)
        np.testing.assert_allclose(
            nbops.multilabel_margin_loss_backward(g, x, t, reduction=reduction), tgrad,
            rtol=1e-14)


def test_multilabel_margin_finite_differences():
    x, t = _mlm_data(np.float64, seed=6)
    x[4, 1] += 0.01  # away from the exact kink
    g = np.random.default_rng(7).uniform(-2, 2, N)
    h = 1e-6
    fd = np.empty_like(x)
    for i in np.ndindex(x.shape):
        a, b = x.copy(), x.copy()
        a[i] += h
        b[i] -= h
        fd[i] = ((ref_multilabel_margin(a, t) - ref_multilabel_margin(b, t)) * g).sum() / (2 * h)
    got = nbops.multilabel_margin_loss_backward(g, x, t, reduction="none")
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


# ------------------------------------------------------------------ both
def test_empty_batches_as_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.zeros((0, C))
    y, t = np.zeros(0, np.int64), np.zeros((0, C), np.int64)
    for fn, tfn, target in ((nbops.multi_margin_loss, F.multi_margin_loss, y),
                            (nbops.multilabel_margin_loss, F.multilabel_margin_loss, t)):
        got = fn(x, target, reduction="none")
        assert got.shape == (0,)
        assert fn(x, target, reduction="sum") == 0
        assert np.isnan(fn(x, target))
        assert tfn(torch.from_numpy(x), torch.from_numpy(target), reduction="none").shape == (0,)
        name = fn.__name__
        for reduction in REDUCTIONS:
            g = np.zeros(0) if reduction == "none" else 1.0
            gx = getattr(nbops, name + "_backward")(g, x, target, reduction=reduction)
            assert gx.shape == (0, C)
            loss, gx = getattr(nbops, name + "_with_grad")(x, target, reduction=reduction)
            assert gx.shape == (0, C)


def test_nan_terms_as_torch():
    """A NaN hinge is not > 0: it adds nothing, as aten's kernels."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.array([[0.2, np.nan, 0.1, 0.4], [np.nan, 0.3, 0.1, 0.2]])
    y = np.array([0, 0])
    t = np.array([[0, -1, 0, 0], [0, 2, -1, -1]])
    for fn, tfn, target in ((nbops.multi_margin_loss, F.multi_margin_loss, y),
                            (nbops.multilabel_margin_loss, F.multilabel_margin_loss, t)):
        name = fn.__name__
        tout, tgrad = _torch_run(tfn, x, (torch.from_numpy(target),), {}, "none",
                                 np.ones(2))
        np.testing.assert_array_equal(fn(x, target, reduction="none"), tout)
        np.testing.assert_array_equal(
            getattr(nbops, name + "_backward")(np.ones(2), x, target, reduction="none"), tgrad)


def test_bad_inputs():
    x, y = _mm_data(np.float64)
    _, t = _mlm_data(np.float64)
    out = np.full_like(x, 7.0)
    for bad in (np.array([0, 1, 6, 2, 3]), np.array([0, -1, 2, 2, 3])):
        with pytest.raises(ValueError, match=f"class index {bad[2] if bad[2] == 6 else -1} is "
                                             "out of range"):
            nbops.multi_margin_loss(x, bad)
        with pytest.raises(ValueError, match="out of range"):
            nbops.multi_margin_loss_backward(1.0, x, bad, out=out)
        with pytest.raises(ValueError, match="out of range"):
            nbops.multi_margin_loss_with_grad(x, bad)
    np.testing.assert_array_equal(out, 7.0)  # nothing ran
    for value in (6, -2):
        bad = t.copy()
        bad[1, 5] = value  # after the first -1: checked too, as aten
        with pytest.raises(ValueError, match=f"class index {value} is out of range"):
            nbops.multilabel_margin_loss(x, bad)
        with pytest.raises(ValueError, match="out of range"):
            nbops.multilabel_margin_loss_backward(1.0, x, bad, out=out)
        with pytest.raises(ValueError, match="out of range"):
            nbops.multilabel_margin_loss_with_grad(x, bad)
    np.testing.assert_array_equal(out, 7.0)
    with pytest.raises(TypeError, match="integer class indices"):
        nbops.multi_margin_loss(x, y.astype(np.float64))
    with pytest.raises(TypeError, match="integer class indices"):
        nbops.multilabel_margin_loss(x, t.astype(np.float64))
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        nbops.multi_margin_loss(x, y, p=3)
    with pytest.raises(ValueError, match="weight must be one-dimensional"):
        nbops.multi_margin_loss(x, y, weight=np.ones((1, C)))
    with pytest.raises(ValueError, match="inconsistent weight size, expected 6"):
        nbops.multi_margin_loss(x, y, weight=np.ones(C - 1))
    with pytest.raises(ValueError, match="inconsistent target size, expected 5"):
        nbops.multi_margin_loss(x, y[:4])
    with pytest.raises(ValueError, match="inconsistent target size"):
        nbops.multilabel_margin_loss(x, t[:4])
    for fn, target in ((nbops.multi_margin_loss, np.zeros(2, np.int64)),
                       (nbops.multilabel_margin_loss, np.zeros((2, 0), np.int64))):
        with pytest.raises(ValueError, match="Expected non-empty vector or matrix"):
            fn(np.zeros((2, 0)), target)
        with pytest.raises(ValueError, match="Expected non-empty vector or matrix"):
            fn(np.zeros((2, 2, 2)), target)
    with pytest.raises(ValueError, match="avg is not valid"):
        nbops.multi_margin_loss(x, y, reduction="avg")
    with pytest.raises(ValueError, match="avg is not valid"):
        nbops.multilabel_margin_loss(x, t, reduction="avg")
    with pytest.raises(ValueError, match="grad_output"):
        nbops.multi_margin_loss_backward(np.ones(4), x, y, reduction="none")
    with pytest.raises(ValueError, match="grad_output"):
        nbops.multilabel_margin_loss_backward(np.ones((N, C)), x, t, reduction="none")


def test_legacy_flags_int32_targets_and_out():
    x, y = _mm_data(np.float32)
    _, t = _mlm_data(np.float32)
    with pytest.warns(DeprecationWarning):
        s = nbops.multi_margin_loss(x, y, 1, 1.0, None, False)
    assert s == nbops.multi_margin_loss(x, y, reduction="sum")
    with pytest.warns(DeprecationWarning):
        s = nbops.multilabel_margin_loss(x, t, None, False)
    np.testing.assert_array_equal(s, nbops.multilabel_margin_loss(x, t, reduction="none"))
    assert nbops.multi_margin_loss(x, y.astype(np.int32)) == nbops.multi_margin_loss(x, y)
    assert nbops.multilabel_margin_loss(x, t.astype(np.int32)) == \
        nbops.multilabel_margin_loss(x, t)
    for name, target in (("multi_margin_loss", y), ("multilabel_margin_loss", t)):
        backward = getattr(nbops, name + "_backward")
        want = backward(0.5, x, target)
        for out in (np.empty_like(x), np.empty((C, N), np.float32).T):
            assert backward(0.5, x, target, out=out) is out
            np.testing.assert_array_equal(out, want)
        with pytest.raises(TypeError, match="out has dtype"):
            backward(0.5, x, target, out=np.empty(x.shape, np.float64))


def test_bit_identical_on_any_thread_count():
    """The row kernels' serial and parallel twins give the same bits."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((300, 7)).astype(np.float32)
    y = rng.integers(0, 7, 300)
    t = np.where(rng.uniform(size=(300, 7)) < 0.4, rng.integers(0, 7, (300, 7)), -1)
    g = rng.standard_normal(300).astype(np.float32)
    res = []
    for mm, mlm in ((CM._mm_serial, CM._mlm_serial), (CM._mm_parallel, CM._mlm_parallel)):
        out = []
        for want_grad in (True,):
            rows, grad = np.empty(300), np.empty((300, 7), np.float32)
            mm(x, y, np.ones(7, np.float32), True, True, np.float32(0.5), g, np.float32(0.5),
               rows, grad, want_grad)
            out += [rows, grad]
            rows, grad = np.empty(300), np.empty((300, 7), np.float32)
            mlm(x, t, g, np.float32(0.5), rows, grad, want_grad)
            out += [rows, grad]
        res.append(out)
    for a, b in zip(*res, strict=True):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------ @njit
@njit
def _njit_multi_margin(x, y, w, g):
    return (nbops.multi_margin_loss(x, y),
            nbops.multi_margin_loss(x, y, 2, 0.5, w, reduction="none"),
            nbops.multi_margin_loss_backward(g, x, y, 2, 0.5, w, reduction="none"),
            nbops.multi_margin_loss_backward(0.5, x, y),
            nbops.multi_margin_loss_with_grad(x, y, 1, 0.25, w, reduction="sum"))


@njit
def _njit_multilabel_margin(x, t, g):
    return (nbops.multilabel_margin_loss(x, t),
            nbops.multilabel_margin_loss(x, t, reduction="none"),
            nbops.multilabel_margin_loss_backward(g, x, t, reduction="none"),
            nbops.multilabel_margin_loss_backward(0.5, x, t),
            nbops.multilabel_margin_loss_with_grad(x, t, reduction="sum"))


def test_njit_same_as_python():
    x, y = _mm_data(np.float64)
    _, t = _mlm_data(np.float64)
    w = np.random.default_rng(2).uniform(0.5, 2, C)
    g = np.random.default_rng(1).uniform(-2, 2, N)
    got = _njit_multi_margin(x, y, w, g)
    want = (nbops.multi_margin_loss(x, y),
            nbops.multi_margin_loss(x, y, 2, 0.5, w, reduction="none"),
            nbops.multi_margin_loss_backward(g, x, y, 2, 0.5, w, reduction="none"),
            nbops.multi_margin_loss_backward(0.5, x, y),
            nbops.multi_margin_loss_with_grad(x, y, 1, 0.25, w, reduction="sum"))
    for a, b in zip(got[:4], want[:4], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    np.testing.assert_allclose(got[4][0], want[4][0], rtol=1e-14)
    np.testing.assert_array_equal(got[4][1], want[4][1])
    got = _njit_multilabel_margin(x, t, g)
    want = (nbops.multilabel_margin_loss(x, t),
            nbops.multilabel_margin_loss(x, t, reduction="none"),
            nbops.multilabel_margin_loss_backward(g, x, t, reduction="none"),
            nbops.multilabel_margin_loss_backward(0.5, x, t),
            nbops.multilabel_margin_loss_with_grad(x, t, reduction="sum"))
    for a, b in zip(got[:4], want[:4], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    np.testing.assert_allclose(got[4][0], want[4][0], rtol=1e-14)
    np.testing.assert_array_equal(got[4][1], want[4][1])
    bad_y, bad_t = y.copy(), t.copy()
    bad_y[1], bad_t[1, 5] = C, -2
    with pytest.raises(ValueError, match="out of range"):
        _njit_multi_margin(x, bad_y, w, g)
    with pytest.raises(ValueError, match="out of range"):
        _njit_multilabel_margin(x, bad_t, g)
    with pytest.raises(ValueError, match="multi_margin_loss_backward: grad_output"):
        _njit_multi_margin(x, y, w, g[:3].copy())
    with pytest.raises(ValueError, match="multilabel_margin_loss_backward: grad_output"):
        _njit_multilabel_margin(x, t, g[:3].copy())


# ------------------------------------------------------------------ nn modules
@pytest.mark.parametrize("kw", [{}, {"p": 2, "margin": 0.5, "weight": True},
                                {"reduction": "none"}], ids=["default", "p2-weight", "none"])
def test_multi_margin_nn_module_against_torch_autograd(kw):
    torch = pytest.importorskip("torch")
    x, y = _mm_data(np.float64, kw.get("margin", 1.0))
    w = np.random.default_rng(2).uniform(0.5, 2, C)
    opts = {**kw, "weight": w} if "weight" in kw else kw
    topts = {**kw, "weight": torch.from_numpy(w)} if "weight" in kw else kw
    m, tm = nbops.nn.MultiMarginLoss(**opts), torch.nn.MultiMarginLoss(**topts)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    out, tout = m(x, y), tm(tx, torch.from_numpy(y))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-13)
    g = _grad_output(kw.get("reduction", "mean"), (N,), np.float64)
    gx = m.backward(g)
    tout.backward(torch.from_numpy(g) if np.ndim(g) else torch.tensor(g, dtype=tx.dtype))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-13, atol=1e-16)
    with pytest.raises(ValueError, match="only p == 1 and p == 2 supported"):
        nbops.nn.MultiMarginLoss(p=3)


@pytest.mark.parametrize("kw", [{}, {"reduction": "sum"}, {"reduction": "none"}])
def test_multilabel_margin_nn_module_against_torch_autograd(kw):
    torch = pytest.importorskip("torch")
    x, t = _mlm_data(np.float64)
    m, tm = nbops.nn.MultiLabelMarginLoss(**kw), torch.nn.MultiLabelMarginLoss(**kw)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    out, tout = m(x, t), tm(tx, torch.from_numpy(t))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-13)
    g = _grad_output(kw.get("reduction", "mean"), (N,), np.float64)
    gx = m.backward(g)
    tout.backward(torch.from_numpy(g) if np.ndim(g) else torch.tensor(g, dtype=tx.dtype))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-13, atol=1e-16)
