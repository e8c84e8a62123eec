"""The losses of issue 17 (part): ``soft_margin_loss`` and ``hinge_embedding_loss``,
their backward and ``_with_grad``: against float64 formulas written here, against
``torch`` and ``torch.autograd`` for every option and reduction, against central
finite differences, inside ``@njit``, and their argument handling. (The op-table
tests of tests/test_losses.py, tests/test_nn.py and tests/test_nn_backward.py also
cover them, as every pointwise loss of the table.) Arrays are small; each (loss,
dtype) kernel compiles once and the backward and with_grad share it."""

import warnings

import numpy as np
import pytest
from numba import njit

import nbops

DTYPES = [np.float32, np.float64]
SHAPE = (4, 6)
REDUCTIONS = ("mean", "sum", "none")

#: (loss, options)
CASES = [("soft_margin_loss", {}),
         ("hinge_embedding_loss", {}), ("hinge_embedding_loss", {"margin": 0.5}),
         ("hinge_embedding_loss", {"margin": -0.25})]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in CASES]


# ------------------------------------------------------------ float64 references
def ref_loss(name, x, t, margin=1.0):
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    if name == "soft_margin_loss":
        with np.errstate(over="ignore"):
            return np.log1p(np.exp(-t * x))
    return np.where(t != 1, np.maximum(margin - x, 0.0), 0.0) + np.where(t != -1, x, 0.0)


def _data(name, kw, dtype, seed=0):
    """Input and +-1 targets (and a few other targets), with the kinks of the hinge."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, SHAPE)
    t = np.where(rng.uniform(size=SHAPE) < 0.5, -1.0, 1.0)
    t[3, :2] = (0.0, 0.5)  # PyTorch's formulas take any target
    if name == "hinge_embedding_loss":
        m = kw.get("margin", 1.0)
        x[0, :3] = (m, m + 0.25, m - 0.25)  # at the margin, just above and below
        t[0, :3] = -1.0
    return x.astype(dtype), t.astype(dtype)


def _grad_output(reduction, dtype, seed=1):
    if reduction == "none":
        return np.random.default_rng(seed).uniform(-2, 2, SHAPE).astype(dtype)
    return 0.75


def _strided(a):
    big = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    big[:, ::2] = a
    return big[:, ::2]


# ------------------------------------------------------------------ forward
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_forward_against_reference_and_torch(name, kw, dtype):
    torch = pytest.importorskip("torch")
    x, t = _data(name, kw, dtype)
    loss = ref_loss(name, x, t, **kw)
    tol = dict(rtol=2e-6, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-14)
    for r in REDUCTIONS:
        got = getattr(nbops, name)(x, t, reduction=r, **kw)
        want = {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[r]
        assert (got.dtype if r == "none" else type(got)) == np.dtype(dtype).type or \
            got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)
        tt = getattr(torch.nn.functional, name)(torch.from_numpy(x), torch.from_numpy(t),
                                                reduction=r, **kw)
        np.testing.assert_allclose(got, tt.numpy(), **tol)


def test_positional_order_and_legacy_flags():
    """``margin`` comes right after ``target`` (PyTorch's order); the legacy flags."""
    x, t = _data("hinge_embedding_loss", {}, np.float64)
    assert nbops.hinge_embedding_loss(x, t, 0.5) == nbops.hinge_embedding_loss(x, t, margin=0.5)
    with pytest.warns(DeprecationWarning):
        s = nbops.hinge_embedding_loss(x, t, 0.5, None, False)
    np.testing.assert_array_equal(s, nbops.hinge_embedding_loss(x, t, 0.5, reduction="none"))
    with pytest.warns(DeprecationWarning):
        s = nbops.soft_margin_loss(x, t, False)
    assert s == nbops.soft_margin_loss(x, t, reduction="sum")


def test_overflow_and_nan_as_torch():
    torch = pytest.importorskip("torch")
    x = np.array([-100.0, 100.0, np.nan, 0.0], np.float32)
    t = np.array([1.0, -1.0, 1.0, np.nan], np.float32)
    tx, tt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(t)
    out = torch.nn.functional.soft_margin_loss(tx, tt, reduction="none")
    out.sum().backward()
    np.testing.assert_array_equal(nbops.soft_margin_loss(x, t, reduction="none"),
                                  out.detach().numpy())  # inf, inf, nan, nan
    np.testing.assert_array_equal(nbops.soft_margin_loss_backward(np.ones(4, np.float32), x, t,
                                                                  reduction="none"),
                                  tx.grad.numpy())
    tx.grad = None
    out = torch.nn.functional.hinge_embedding_loss(tx, tt, reduction="none")
    out.sum().backward()
    np.testing.assert_array_equal(nbops.hinge_embedding_loss(x, t, reduction="none"),
                                  out.detach().numpy())
    np.testing.assert_array_equal(
        nbops.hinge_embedding_loss_backward(np.ones(4, np.float32), x, t, reduction="none"),
        tx.grad.numpy())


# ------------------------------------------------------------------ backward
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_backward_against_torch_autograd(name, kw, dtype):
    torch = pytest.importorskip("torch")
    backward = getattr(nbops, f"{name}_backward")
    x, t = _data(name, kw, dtype)
    tol = {np.float32: 2e-6, np.float64: 1e-13}[dtype]
    for reduction in REDUCTIONS:
        g = _grad_output(reduction, dtype)
        xt = torch.from_numpy(x.copy()).requires_grad_()
        out = getattr(torch.nn.functional, name)(xt, torch.from_numpy(t), reduction=reduction,
                                                 **kw)
        out.backward(torch.from_numpy(g) if reduction == "none"
                     else torch.tensor(g, dtype=xt.dtype))
        want = xt.grad.numpy()
        for xs in (x, _strided(x)):
            got = backward(g, xs, t, reduction=reduction, **kw)
            assert got.dtype == dtype and got.shape == x.shape
            np.testing.assert_allclose(got, want, rtol=4 * tol, atol=tol * np.abs(want).max(),
                                       err_msg=f"{name} {kw} {reduction}")
        out = np.empty_like(x)
        assert backward(g, x, t, reduction=reduction, out=out, **kw) is out
        np.testing.assert_allclose(out, want, rtol=4 * tol, atol=tol * np.abs(want).max())


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_backward_against_finite_differences(name, kw):
    """Central differences of the float64 formula above, away from the hinge's kink."""
    x, t = _data(name, kw, np.float64, seed=3)
    x[0, :3] += 0.1  # off the kink
    g = _grad_output("none", np.float64)
    h = 1e-6
    fd = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        fd[i] = ((ref_loss(name, xp, t, **kw) - ref_loss(name, xm, t, **kw)) * g).sum() / (2 * h)
    got = getattr(nbops, f"{name}_backward")(g, x, t, reduction="none", **kw)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)
    got = getattr(nbops, f"{name}_backward")(1.0, x, t, reduction="mean", **kw)
    np.testing.assert_allclose(got, fd / g / x.size, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_with_grad_is_forward_and_backward(name, kw):
    forward = getattr(nbops, name)
    backward = getattr(nbops, f"{name}_backward")
    with_grad = getattr(nbops, f"{name}_with_grad")
    for dtype in DTYPES:
        x, t = _data(name, kw, dtype)
        for reduction in REDUCTIONS:
            loss, grad = with_grad(x, t, reduction=reduction, **kw)
            want = forward(x, t, reduction=reduction, **kw)
            assert type(loss) is type(want)
            np.testing.assert_array_equal(loss, want)
            g = np.ones(SHAPE, dtype) if reduction == "none" else 1.0
            np.testing.assert_array_equal(grad, backward(g, x, t, reduction=reduction, **kw))


# ------------------------------------------------------------------ @njit
@njit
def _njit_calls(x, t, g):
    return (nbops.soft_margin_loss(x, t), nbops.soft_margin_loss(x, t, reduction="none"),
            nbops.soft_margin_loss_backward(0.5, x, t, reduction="sum"),
            nbops.soft_margin_loss_with_grad(x, t),
            nbops.hinge_embedding_loss(x, t, 0.5, reduction="sum"),
            nbops.hinge_embedding_loss_backward(g, x, t, margin=0.5, reduction="none"),
            nbops.hinge_embedding_loss_with_grad(x, t, reduction="mean"))


def test_njit_same_as_python():
    x, t = _data("hinge_embedding_loss", {"margin": 0.5}, np.float64)
    g = _grad_output("none", np.float64)
    got = _njit_calls(x, t, g)
    want = (nbops.soft_margin_loss(x, t), nbops.soft_margin_loss(x, t, reduction="none"),
            nbops.soft_margin_loss_backward(0.5, x, t, reduction="sum"),
            nbops.soft_margin_loss_with_grad(x, t),
            nbops.hinge_embedding_loss(x, t, 0.5, reduction="sum"),
            nbops.hinge_embedding_loss_backward(g, x, t, margin=0.5, reduction="none"),
            nbops.hinge_embedding_loss_with_grad(x, t, reduction="mean"))
    flat = lambda v: [np.asarray(a) for a in (v if isinstance(v, tuple) else (v,))]  # noqa: E731
    for a, b in zip(got, want, strict=True):
        for p, q in zip(flat(a), flat(b), strict=True):
            np.testing.assert_allclose(p, q, rtol=1e-14)
    with pytest.raises(ValueError, match="grad_output"):
        _njit_calls(x, t, g[:, :3].copy())


# ------------------------------------------------------------------ bad inputs
@pytest.mark.parametrize("name", ["soft_margin_loss", "hinge_embedding_loss"])
def test_bad_inputs(name):
    x, t = _data(name, {}, np.float64)
    with pytest.raises(ValueError, match="reduction"):
        getattr(nbops, name)(x, t, reduction="avg")
    with pytest.raises(ValueError), pytest.warns(UserWarning, match="target size"):
        getattr(nbops, name)(x, t[:, :4])
    with pytest.raises(ValueError, match="grad_output"):
        getattr(nbops, f"{name}_backward")(np.ones((4, 5)), x, t, reduction="none")
    with pytest.raises(ValueError, match="grad_output"):
        getattr(nbops, f"{name}_backward")(np.ones(SHAPE), x, t, reduction="sum")


def test_soft_margin_target_shape():
    """PyTorch writes soft_margin_loss into an output of the input's shape: a target
    that broadcasts to it is taken, one that would grow it is rejected (before any
    kernel, on every path); hinge_embedding_loss broadcasts both ways, as PyTorch."""
    torch = pytest.importorskip("torch")
    x = np.arange(12.0).reshape(4, 3) / 6 - 1
    y = np.array([1.0, -1.0, 1.0])
    for r in REDUCTIONS:
        with pytest.warns(UserWarning, match="target size"):
            got = nbops.soft_margin_loss(x, y, reduction=r)
        want = torch.nn.functional.soft_margin_loss(torch.from_numpy(x), torch.from_numpy(y),
                                                    reduction=r)
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-13)
    for a, b in ((x[:, :1], y), (y, x), (y, x[:, :1])):
        with pytest.raises(RuntimeError):
            torch.nn.functional.soft_margin_loss(torch.from_numpy(a), torch.from_numpy(b))
        for fn in (nbops.soft_margin_loss, nbops.soft_margin_loss_with_grad):
            with pytest.raises(ValueError, match="must broadcast to the input's shape"):
                fn(a, b, reduction="none")
        with pytest.raises(ValueError, match="must broadcast to the input's shape"):
            nbops.soft_margin_loss_backward(1.0, a, b, reduction="sum")
        with pytest.raises(ValueError, match="must broadcast to the input's shape"):
            _njit_soft_margin(a, b)
        with pytest.warns(UserWarning, match="target size"):
            got = nbops.hinge_embedding_loss(a, b, reduction="none")
        want = torch.nn.functional.hinge_embedding_loss(torch.from_numpy(a), torch.from_numpy(b),
                                                        reduction="none")
        np.testing.assert_allclose(got, want.numpy(), rtol=1e-13)


@njit
def _njit_soft_margin(x, t):
    return nbops.soft_margin_loss(x, t, reduction="sum")


# ------------------------------------------------------------------ nn modules
@pytest.mark.parametrize(("cls", "kw"), [("SoftMarginLoss", {}),
                                         ("HingeEmbeddingLoss", {"margin": 0.5}),
                                         ("HingeEmbeddingLoss", {"reduction": "none"})])
def test_nn_modules_against_torch_autograd(cls, kw):
    torch = pytest.importorskip("torch")
    name = "soft_margin_loss" if cls == "SoftMarginLoss" else "hinge_embedding_loss"
    x, t = _data(name, kw, np.float64)
    m, tm = getattr(nbops.nn, cls)(**kw), getattr(torch.nn, cls)(**kw)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    y, yt = m(x, t), tm(xt, torch.from_numpy(t))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-13)
    g = _grad_output(kw.get("reduction", "mean"), np.float64)
    gx = m.backward(g)
    yt.backward(torch.from_numpy(g) if np.ndim(g) else torch.tensor(g, dtype=xt.dtype))
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-13, atol=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert getattr(nbops.nn, cls)(size_average=False).reduction == "sum"
    if cls == "HingeEmbeddingLoss":
        assert nbops.nn.HingeEmbeddingLoss(0.25).margin == 0.25  # PyTorch's positional order


# ===================================================================== poisson_nll_loss
POISSON = [{}, {"full": True}, {"log_input": False}, {"log_input": False, "full": True},
           {"log_input": False, "eps": 0.25}]
PIDS = ["-".join(f"{k}={v}" for k, v in kw.items()) or "default" for kw in POISSON]


def ref_poisson(x, t, log_input=True, full=False, eps=1e-8):
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    loss = np.exp(x) - t * x if log_input else x - t * np.log(x + eps)
    if full:
        with np.errstate(all="ignore"):
            st = t * np.log(t) - t + 0.5 * np.log(2 * np.pi * t)
        loss = loss + np.where(t <= 1, 0.0, st)
    return loss


def _poisson_data(kw, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, SHAPE) if kw.get("log_input", True) else rng.uniform(0.1, 3, SHAPE)
    t = rng.poisson(2.0, SHAPE).astype(np.float64)
    t[0, :4] = (0.0, 1.0, 1.5, 0.5)  # Stirling's term: masked at and below 1
    return x.astype(dtype), t.astype(dtype)


def _tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", POISSON, ids=PIDS)
def test_poisson_forward_against_reference_and_torch(kw, dtype):
    torch = pytest.importorskip("torch")
    x, t = _poisson_data(kw, dtype)
    loss = ref_poisson(x, t, **kw)
    for r in REDUCTIONS:
        got = nbops.poisson_nll_loss(x, t, reduction=r, **kw)
        want = {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[r]
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **_tol(dtype))
        tt = torch.nn.functional.poisson_nll_loss(torch.from_numpy(x), torch.from_numpy(t),
                                                  reduction=r, **kw)
        np.testing.assert_allclose(got, tt.numpy(), **_tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", POISSON, ids=PIDS)
def test_poisson_backward_against_torch_autograd(kw, dtype):
    torch = pytest.importorskip("torch")
    x, t = _poisson_data(kw, dtype)
    tol = {np.float32: 2e-6, np.float64: 1e-13}[dtype]
    for reduction in REDUCTIONS:
        g = _grad_output(reduction, dtype)
        xt = torch.from_numpy(x.copy()).requires_grad_()
        out = torch.nn.functional.poisson_nll_loss(xt, torch.from_numpy(t), reduction=reduction,
                                                   **kw)
        out.backward(torch.from_numpy(g) if reduction == "none"
                     else torch.tensor(g, dtype=xt.dtype))
        want = xt.grad.numpy()
        for xs in (x, _strided(x)):
            got = nbops.poisson_nll_loss_backward(g, xs, t, reduction=reduction, **kw)
            assert got.dtype == dtype and got.shape == x.shape
            np.testing.assert_allclose(got, want, rtol=4 * tol, atol=tol * np.abs(want).max(),
                                       err_msg=f"{kw} {reduction}")
        out = np.empty_like(x)
        assert nbops.poisson_nll_loss_backward(g, x, t, reduction=reduction, out=out,
                                               **kw) is out
        loss, grad = nbops.poisson_nll_loss_with_grad(x, t, reduction=reduction, **kw)
        np.testing.assert_array_equal(loss, nbops.poisson_nll_loss(x, t, reduction=reduction,
                                                                   **kw))
        ones = np.ones(SHAPE, dtype) if reduction == "none" else 1.0
        np.testing.assert_array_equal(
            grad, nbops.poisson_nll_loss_backward(ones, x, t, reduction=reduction, **kw))


@pytest.mark.parametrize("kw", POISSON, ids=PIDS)
def test_poisson_backward_against_finite_differences(kw):
    x, t = _poisson_data(kw, np.float64, seed=3)
    g = _grad_output("none", np.float64)
    h = 1e-6
    fd = np.empty_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += h
        xm[i] -= h
        fd[i] = ((ref_poisson(xp, t, **kw) - ref_poisson(xm, t, **kw)) * g).sum() / (2 * h)
    got = nbops.poisson_nll_loss_backward(g, x, t, reduction="none", **kw)
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)


def test_poisson_argument_order_and_flags():
    """PyTorch's order: log_input, full, size_average, eps, reduce, reduction."""
    x, t = _poisson_data({"log_input": False}, np.float64)
    want = nbops.poisson_nll_loss(x, t, log_input=False, full=True, eps=0.5, reduction="none")
    with pytest.warns(DeprecationWarning):
        got = nbops.poisson_nll_loss(x, t, False, True, None, 0.5, False)
    np.testing.assert_array_equal(got, want)
    with pytest.warns(DeprecationWarning):
        got = nbops.poisson_nll_loss(x, t, True, False, False)
    assert got == nbops.poisson_nll_loss(x, t, reduction="sum")
    t2 = np.array([np.nan, 2.0, 0.0])  # a NaN target is NaN with full (not masked)
    got = nbops.poisson_nll_loss(np.zeros(3), t2, full=True, reduction="none")
    assert np.isnan(got[0]) and np.isfinite(got[1:]).all()


def test_poisson_bad_inputs():
    x, t = _poisson_data({}, np.float64)
    with pytest.raises(ValueError, match="reduction"):
        nbops.poisson_nll_loss(x, t, reduction="avg")
    with pytest.raises(ValueError), pytest.warns(UserWarning, match="target size"):
        nbops.poisson_nll_loss(x, t[:, :4])
    with pytest.raises(ValueError, match="grad_output"):
        nbops.poisson_nll_loss_backward(np.ones((4, 5)), x, t, reduction="none")
    with pytest.raises(ValueError, match="grad_output"):
        nbops.poisson_nll_loss_backward(np.ones(SHAPE), x, t, reduction="sum")


@njit
def _njit_poisson(x, t, g):
    return (nbops.poisson_nll_loss(x, t), nbops.poisson_nll_loss(x, t, False, True, eps=0.25,
                                                                 reduction="none"),
            nbops.poisson_nll_loss_backward(g, x, t, log_input=False, reduction="none"),
            nbops.poisson_nll_loss_with_grad(x, t, full=True, reduction="sum"))


def test_poisson_njit_same_as_python():
    x, t = _poisson_data({"log_input": False}, np.float64)
    g = _grad_output("none", np.float64)
    got = _njit_poisson(x, t, g)
    want = (nbops.poisson_nll_loss(x, t),
            nbops.poisson_nll_loss(x, t, False, True, eps=0.25, reduction="none"),
            nbops.poisson_nll_loss_backward(g, x, t, log_input=False, reduction="none"),
            nbops.poisson_nll_loss_with_grad(x, t, full=True, reduction="sum"))
    for a, b in zip(got[:3], want[:3], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    np.testing.assert_allclose(got[3][0], want[3][0], rtol=1e-14)
    np.testing.assert_allclose(got[3][1], want[3][1], rtol=1e-14)
    with pytest.raises(ValueError, match="grad_output"):
        _njit_poisson(x, t, g[:, :3].copy())


@pytest.mark.parametrize("kw", [{}, {"log_input": False, "full": True, "eps": 0.25},
                                {"reduction": "none"}])
def test_poisson_nn_module_against_torch_autograd(kw):
    torch = pytest.importorskip("torch")
    x, t = _poisson_data(kw, np.float64)
    m, tm = nbops.nn.PoissonNLLLoss(**kw), torch.nn.PoissonNLLLoss(**kw)
    xt = torch.from_numpy(x.copy()).requires_grad_()
    y, yt = m(x, t), tm(xt, torch.from_numpy(t))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-13)
    g = _grad_output(kw.get("reduction", "mean"), np.float64)
    gx = m.backward(g)
    yt.backward(torch.from_numpy(g) if np.ndim(g) else torch.tensor(g, dtype=xt.dtype))
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-13, atol=1e-15)
    assert nbops.nn.PoissonNLLLoss(False, True).full is True  # PyTorch's positional order


# ==================================================================== gaussian_nll_loss
#: var shapes: heteroscedastic, one per row (input's shape without its last axis),
#: (rows, 1), (1, columns), a float
GAUSS_VARS = ["full", "rows", "rows1", "cols1", "float"]


def _gauss_data(var_kind, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, SHAPE)
    t = rng.uniform(-2, 2, SHAPE)
    shape = {"full": SHAPE, "rows": SHAPE[:1], "rows1": (SHAPE[0], 1),
             "cols1": (1, SHAPE[1])}.get(var_kind)
    if shape is None:
        return x.astype(dtype), t.astype(dtype), 0.7
    v = rng.uniform(0.2, 2, shape)
    v.flat[0] = 1e-9  # below eps: clamped (the gradient still passes, as PyTorch's)
    return x.astype(dtype), t.astype(dtype), v.astype(dtype)


def ref_gauss(x, t, v, full=False, eps=1e-6):
    x, t = np.asarray(x, np.float64), np.asarray(t, np.float64)
    v = np.asarray(v, np.float64)
    if v.ndim and v.shape == x.shape[:-1] and v.shape != x.shape:
        v = v[..., None]
    v = np.maximum(v, eps)
    loss = 0.5 * (np.log(v) + (x - t) ** 2 / v)
    return loss + 0.5 * np.log(2 * np.pi) if full else loss


def _torch_gauss(x, t, v, kw, reduction, g):
    torch = pytest.importorskip("torch")
    tx = torch.from_numpy(x.copy()).requires_grad_()
    tv = torch.from_numpy(v.copy()).requires_grad_() if isinstance(v, np.ndarray) else v
    out = torch.nn.functional.gaussian_nll_loss(tx, torch.from_numpy(t), tv,
                                                reduction=reduction, **kw)
    out.backward(torch.from_numpy(g) if reduction == "none" else torch.tensor(g, dtype=tx.dtype))
    return (out.detach().numpy(), tx.grad.numpy(),
            tv.grad.numpy() if isinstance(v, np.ndarray) else None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [{}, {"full": True, "eps": 0.25}], ids=["default", "full-eps"])
@pytest.mark.parametrize("var_kind", GAUSS_VARS)
def test_gaussian_against_reference_and_torch_autograd(var_kind, kw, dtype):
    x, t, v = _gauss_data(var_kind, dtype)
    loss = ref_gauss(x, t, v, **kw)
    tol = {np.float32: 2e-6, np.float64: 1e-13}[dtype]
    for reduction in REDUCTIONS:
        got = nbops.gaussian_nll_loss(x, t, v, reduction=reduction, **kw)
        want = {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=10 * tol, atol=tol)
        g = _grad_output(reduction, dtype)
        t_out, t_gx, t_gv = _torch_gauss(x, t, v, kw, reduction, g)
        np.testing.assert_allclose(got, t_out, rtol=10 * tol, atol=tol)
        for xs in (x, _strided(x)):
            gx, gv = nbops.gaussian_nll_loss_backward(g, xs, t, v, reduction=reduction, **kw)
            assert gx.dtype == dtype and gx.shape == x.shape
            np.testing.assert_allclose(gx, t_gx, rtol=4 * tol, atol=tol * np.abs(t_gx).max())
            if t_gv is None:
                assert gv is None
            else:
                assert gv.dtype == dtype and gv.shape == v.shape
                # (the clamped element's gradient is huge: relative to each element)
                np.testing.assert_allclose(gv, t_gv, rtol=50 * tol, atol=tol)
        loss_wg, (gx_wg, gv_wg) = nbops.gaussian_nll_loss_with_grad(x, t, v,
                                                                    reduction=reduction, **kw)
        assert type(loss_wg) is type(got)
        np.testing.assert_array_equal(loss_wg, got)
        ones = np.ones(SHAPE, dtype) if reduction == "none" else 1.0
        gx1, gv1 = nbops.gaussian_nll_loss_backward(ones, x, t, v, reduction=reduction, **kw)
        np.testing.assert_array_equal(gx_wg, gx1)
        if gv1 is not None:
            np.testing.assert_array_equal(gv_wg, gv1)


@pytest.mark.parametrize("var_kind", ["full", "rows"])
def test_gaussian_backward_against_finite_differences(var_kind):
    x, t, v = _gauss_data(var_kind, np.float64, seed=4)
    v = v + 0.5  # away from the clamp
    g = _grad_output("none", np.float64)
    h = 1e-6

    def fd(arr, f):
        out = np.empty_like(arr)
        for i in np.ndindex(arr.shape):
            p, m = arr.copy(), arr.copy()
            p[i] += h
            m[i] -= h
            out[i] = ((f(p) - f(m)) * g).sum() / (2 * h)
        return out

    gx, gv = nbops.gaussian_nll_loss_backward(g, x, t, v, reduction="none")
    np.testing.assert_allclose(gx, fd(x, lambda a: ref_gauss(a, t, v)), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gv, fd(v, lambda a: ref_gauss(x, t, a)), rtol=1e-6, atol=1e-8)


def test_gaussian_checks_as_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, t, v = _gauss_data("full", np.float64)
    bad = [(np.full(SHAPE, -1.0), "var has negative entry/entries"),
           (-0.5, "var has negative entry/entries"),
           (np.ones((SHAPE[0], 2)), "var is of incorrect size"),
           (np.ones((2, 1)), "var is of incorrect size"),
           (np.ones((1, 1)), "var is of incorrect size"),
           (np.ones(SHAPE[1]), "var is of incorrect size")]
    for var, msg in bad:
        tv = torch.from_numpy(var) if isinstance(var, np.ndarray) else var
        with pytest.raises(ValueError, match=msg):
            F.gaussian_nll_loss(torch.from_numpy(x), torch.from_numpy(t), tv)
        for fn in (nbops.gaussian_nll_loss, nbops.gaussian_nll_loss_with_grad):
            with pytest.raises(ValueError, match=msg):
                fn(x, t, var)
        with pytest.raises(ValueError, match=msg):
            nbops.gaussian_nll_loss_backward(1.0, x, t, var)
    with pytest.raises(ValueError, match="avg is not valid"):
        nbops.gaussian_nll_loss(x, t, v, reduction="avg")
    with pytest.raises(ValueError, match="grad_output"):
        nbops.gaussian_nll_loss_backward(np.ones((4, 5)), x, t, v, reduction="none")
    with pytest.raises(ValueError, match="grad_output"):
        nbops.gaussian_nll_loss_backward(np.ones(SHAPE), x, t, v, reduction="sum")
    # NaN variances are not negative: NaN losses, as PyTorch
    v2 = v.copy()
    v2[0, 0] = np.nan
    assert np.isnan(nbops.gaussian_nll_loss(x, t, v2, reduction="none")[0, 0])


@pytest.mark.parametrize("kw", [{}, {"full": True, "eps": 0.5}, {"reduction": "none"}])
def test_gaussian_nn_module_against_torch_autograd(kw):
    torch = pytest.importorskip("torch")
    x, t, v = _gauss_data("rows", np.float64)
    m, tm = nbops.nn.GaussianNLLLoss(**kw), torch.nn.GaussianNLLLoss(**kw)
    tx, tv = torch.from_numpy(x.copy()).requires_grad_(), torch.from_numpy(v.copy())
    tv.requires_grad_()
    y, yt = m(x, t, v), tm(tx, torch.from_numpy(t), tv)
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-13)
    g = _grad_output(kw.get("reduction", "mean"), np.float64)
    gx, gv = m.backward(g)
    yt.backward(torch.from_numpy(g) if np.ndim(g) else torch.tensor(g, dtype=tx.dtype))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gv, tv.grad.numpy(), rtol=1e-11)
    with pytest.raises(TypeError):
        nbops.nn.GaussianNLLLoss(True)  # keyword-only, as PyTorch's


# ================================================================== margin_ranking_loss
#: (input1 shape, input2 shape, target shape)
RANK_SHAPES = [(SHAPE, SHAPE, SHAPE), (SHAPE, (SHAPE[0], 1), SHAPE), (SHAPE, SHAPE, (1, SHAPE[1]))]


def _rank_data(shapes, dtype, seed=0, margin=0.0):
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(-2, 2, shapes[0])
    x2 = rng.uniform(-2, 2, shapes[1])
    y = np.where(rng.uniform(size=shapes[2]) < 0.5, -1.0, 1.0)
    if shapes[0] == shapes[1] == shapes[2]:
        x1[0, :2] = x2[0, :2] + y[0, :2] * margin  # exactly at the hinge
    return x1.astype(dtype), x2.astype(dtype), y.astype(dtype)


def ref_rank(x1, x2, y, margin=0.0):
    x1, x2, y = (np.asarray(a, np.float64) for a in (x1, x2, y))
    return np.maximum(-y * (x1 - x2) + margin, 0.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("margin", [0.0, 0.5])
@pytest.mark.parametrize("shapes", RANK_SHAPES, ids=["same", "x2-rows", "y-cols"])
def test_margin_ranking_against_reference_and_torch_autograd(shapes, margin, dtype):
    torch = pytest.importorskip("torch")
    x1, x2, y = _rank_data(shapes, dtype, margin=margin)
    loss = ref_rank(x1, x2, y, margin)
    tol = {np.float32: 2e-6, np.float64: 1e-13}[dtype]
    for reduction in REDUCTIONS:
        got = nbops.margin_ranking_loss(x1, x2, y, margin, reduction=reduction)
        want = {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, rtol=10 * tol, atol=tol)
        g = (np.random.default_rng(1).uniform(-2, 2, loss.shape).astype(dtype)
             if reduction == "none" else 0.75)
        t1, t2 = (torch.from_numpy(a.copy()).requires_grad_() for a in (x1, x2))
        out = torch.nn.functional.margin_ranking_loss(t1, t2, torch.from_numpy(y), margin,
                                                      reduction=reduction)
        out.backward(torch.from_numpy(g) if reduction == "none"
                     else torch.tensor(g, dtype=t1.dtype))
        np.testing.assert_allclose(got, out.detach().numpy(), rtol=10 * tol, atol=tol)
        for a1 in (x1, _strided(x1)):
            g1, g2 = nbops.margin_ranking_loss_backward(g, a1, x2, y, margin,
                                                        reduction=reduction)
            assert g1.shape == x1.shape and g2.shape == x2.shape and g1.dtype == dtype
            np.testing.assert_allclose(g1, t1.grad.numpy(), rtol=4 * tol, atol=tol)
            np.testing.assert_allclose(g2, t2.grad.numpy(), rtol=4 * tol, atol=tol)
        value, (h1, h2) = nbops.margin_ranking_loss_with_grad(x1, x2, y, margin,
                                                              reduction=reduction)
        np.testing.assert_array_equal(value, got)
        ones = np.ones(loss.shape, dtype) if reduction == "none" else 1.0
        k1, k2 = nbops.margin_ranking_loss_backward(ones, x1, x2, y, margin, reduction=reduction)
        np.testing.assert_array_equal(h1, k1)
        np.testing.assert_array_equal(h2, k2)


def test_margin_ranking_finite_differences_checks_and_flags():
    x1, x2, y = _rank_data(RANK_SHAPES[0], np.float64, seed=5)
    x1 = x1 + 0.01  # off the hinge
    g = _grad_output("none", np.float64)
    h = 1e-6
    for k, arr in enumerate((x1, x2)):
        fd = np.empty_like(arr)
        for i in np.ndindex(arr.shape):
            p, m = arr.copy(), arr.copy()
            p[i] += h
            m[i] -= h
            args_p = (p, x2) if k == 0 else (x1, p)
            args_m = (m, x2) if k == 0 else (x1, m)
            fd[i] = ((ref_rank(*args_p, y, 0.5) - ref_rank(*args_m, y, 0.5)) * g).sum() / (2 * h)
        got = nbops.margin_ranking_loss_backward(g, x1, x2, y, 0.5, reduction="none")[k]
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)
    with pytest.raises(ValueError, match="All input tensors should have same dimension"):
        nbops.margin_ranking_loss(x1, x2, y[0])
    with pytest.raises(ValueError, match="reduction"):
        nbops.margin_ranking_loss(x1, x2, y, reduction="avg")
    with pytest.raises(ValueError, match="grad_output"):
        nbops.margin_ranking_loss_backward(np.ones((4, 5)), x1, x2, y, reduction="none")
    with pytest.warns(DeprecationWarning):
        s = nbops.margin_ranking_loss(x1, x2, y, 0.5, False)
    assert s == nbops.margin_ranking_loss(x1, x2, y, 0.5, reduction="sum")


@pytest.mark.parametrize("kw", [{}, {"margin": 0.5}, {"reduction": "none"}])
def test_margin_ranking_nn_module_against_torch_autograd(kw):
    torch = pytest.importorskip("torch")
    x1, x2, y = _rank_data(RANK_SHAPES[0], np.float64, margin=kw.get("margin", 0.0))
    m, tm = nbops.nn.MarginRankingLoss(**kw), torch.nn.MarginRankingLoss(**kw)
    t1, t2 = (torch.from_numpy(a.copy()).requires_grad_() for a in (x1, x2))
    out, tout = m(x1, x2, y), tm(t1, t2, torch.from_numpy(y))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-13)
    g = _grad_output(kw.get("reduction", "mean"), np.float64)
    g1, g2 = m.backward(g)
    tout.backward(torch.from_numpy(g) if np.ndim(g) else torch.tensor(g, dtype=t1.dtype))
    np.testing.assert_allclose(g1, t1.grad.numpy(), rtol=1e-13)
    np.testing.assert_allclose(g2, t2.grad.numpy(), rtol=1e-13)
    assert nbops.nn.MarginRankingLoss(0.25).margin == 0.25


# ========================================================== multilabel_soft_margin_loss
def ref_mlsm(x, y, w=None):
    """Per-sample losses: the mean over the last axis of the weighted logistic losses."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ls = lambda v: np.minimum(v, 0) - np.log1p(np.exp(-np.abs(v)))  # noqa: E731
    loss = -(y * ls(x) + (1 - y) * ls(-x))
    if w is not None:
        loss = loss * np.asarray(w, np.float64)
    return loss.sum(-1) / x.shape[-1]


def _mlsm_data(shape, weight, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) * 3
    y = (rng.uniform(size=shape) < 0.5).astype(np.float64)
    w = {None: None, "C": rng.uniform(0.5, 2, shape[-1]), "full": rng.uniform(0.5, 2, shape)}
    w = w[weight]
    return x.astype(dtype), y.astype(dtype), None if w is None else w.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight", [None, "C", "full"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 2, 4), (4,), (1, 4)], ids=["NC", "NdC", "C", "1C"])
def test_multilabel_soft_margin_against_reference_and_torch_autograd(shape, weight, dtype):
    torch = pytest.importorskip("torch")
    x, y, w = _mlsm_data(shape, weight, dtype)
    loss = ref_mlsm(x, y, w)
    tol = {np.float32: 2e-6, np.float64: 1e-13}[dtype]
    for reduction in REDUCTIONS:
        got = nbops.multilabel_soft_margin_loss(x, y, w, reduction=reduction)
        want = {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]
        assert np.asarray(got).dtype == dtype and np.shape(got) == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=10 * tol, atol=tol)
        g = (np.random.default_rng(1).uniform(-2, 2, shape[:-1]).astype(dtype)
             if reduction == "none" else 0.75)
        tx = torch.from_numpy(x.copy()).requires_grad_()
        out = torch.nn.functional.multilabel_soft_margin_loss(
            tx, torch.from_numpy(y), None if w is None else torch.from_numpy(w),
            reduction=reduction)
        out.backward(torch.from_numpy(g) if reduction == "none"
                     else torch.tensor(g, dtype=tx.dtype))
        np.testing.assert_allclose(got, out.detach().numpy(), rtol=10 * tol, atol=tol)
        xs = _strided(x) if x.ndim == 2 else x
        gx = nbops.multilabel_soft_margin_loss_backward(g, xs, y, w, reduction=reduction)
        assert gx.dtype == dtype and gx.shape == x.shape
        np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=4 * tol, atol=tol)
        value, grad = nbops.multilabel_soft_margin_loss_with_grad(x, y, w, reduction=reduction)
        assert type(value) is type(got)
        np.testing.assert_array_equal(value, got)
        ones = np.ones(shape[:-1], dtype) if reduction == "none" else 1.0
        np.testing.assert_array_equal(
            grad, nbops.multilabel_soft_margin_loss_backward(ones, x, y, w, reduction=reduction))


def test_multilabel_soft_margin_finite_differences_and_checks():
    x, y, w = _mlsm_data((4, 5), "C", np.float64, seed=2)
    g = np.random.default_rng(3).uniform(-2, 2, 4)
    h = 1e-6
    fd = np.empty_like(x)
    for i in np.ndindex(x.shape):
        p, m = x.copy(), x.copy()
        p[i] += h
        m[i] -= h
        fd[i] = ((ref_mlsm(p, y, w) - ref_mlsm(m, y, w)) * g).sum() / (2 * h)
    got = nbops.multilabel_soft_margin_loss_backward(g, x, y, w, reduction="none")
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-8)
    out = np.empty_like(x)
    assert nbops.multilabel_soft_margin_loss_backward(g, x, y, w, reduction="none",
                                                      out=out) is out
    np.testing.assert_array_equal(out, got)
    with pytest.raises(ValueError, match="avg is not valid"):
        nbops.multilabel_soft_margin_loss(x, y, reduction="avg")
    with pytest.raises(ValueError, match="weight"):
        nbops.multilabel_soft_margin_loss(x, y, np.ones(3))
    with pytest.raises(ValueError, match="grad_output"):
        nbops.multilabel_soft_margin_loss_backward(np.ones((4, 5)), x, y, reduction="none")
    with pytest.warns(DeprecationWarning):
        s = nbops.multilabel_soft_margin_loss(x, y, w, False)
    assert s == nbops.multilabel_soft_margin_loss(x, y, w, reduction="sum")


def test_multilabel_soft_margin_bit_identical_on_any_thread_count():
    """The row kernel's serial and parallel twins give the same bits."""
    from nbops._ops import multilabel_losses as ML
    x, y, w = _mlsm_data((64, 7), "C", np.float32, seed=4)
    plan = ML._plan(x, y, w, None, None, "none")
    args = (plan[0], plan[1], np.broadcast_to(plan[2], plan[0].shape),
            np.broadcast_to(np.ones(1, np.float32), (64,)), np.float32(0.5))
    res = []
    for kernel in (ML._rows_serial, ML._rows_parallel):
        rows, grad = np.empty(64, np.float32), np.empty((64, 7), np.float32)
        kernel(*args, rows, grad, True)
        res.append((rows, grad))
    np.testing.assert_array_equal(res[0][0], res[1][0])
    np.testing.assert_array_equal(res[0][1], res[1][1])


@pytest.mark.parametrize("kw", [{}, {"weight": "C"}, {"reduction": "none"}])
def test_multilabel_soft_margin_nn_module_against_torch_autograd(kw):
    torch = pytest.importorskip("torch")
    x, y, w = _mlsm_data((5, 4), kw.get("weight"), np.float64)
    opts = {**kw, "weight": w} if "weight" in kw else kw
    topts = {**kw, "weight": torch.from_numpy(w)} if "weight" in kw else kw
    m, tm = nbops.nn.MultiLabelSoftMarginLoss(**opts), torch.nn.MultiLabelSoftMarginLoss(**topts)
    tx = torch.from_numpy(x.copy()).requires_grad_()
    out, tout = m(x, y), tm(tx, torch.from_numpy(y))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-13)
    g = (np.random.default_rng(1).uniform(-2, 2, 5) if kw.get("reduction") == "none"
         else 0.75)
    gx = m.backward(g)
    tout.backward(torch.from_numpy(g) if np.ndim(g) else torch.tensor(g, dtype=tx.dtype))
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-13, atol=1e-16)


@njit
def _njit_margin_ranking(x1, x2, y, g):
    return (nbops.margin_ranking_loss(x1, x2, y, 0.5),
            nbops.margin_ranking_loss(x1, x2, y, reduction="none"),
            nbops.margin_ranking_loss_backward(g, x1, x2, y, 0.5, reduction="none"),
            nbops.margin_ranking_loss_with_grad(x1, x2, y, 0.25, reduction="sum"))


def test_margin_ranking_njit_same_as_python():
    x1, x2, y = _rank_data(RANK_SHAPES[0], np.float64, margin=0.5)
    g = _grad_output("none", np.float64)
    got = _njit_margin_ranking(x1, x2, y, g)
    want = (nbops.margin_ranking_loss(x1, x2, y, 0.5),
            nbops.margin_ranking_loss(x1, x2, y, reduction="none"),
            nbops.margin_ranking_loss_backward(g, x1, x2, y, 0.5, reduction="none"),
            nbops.margin_ranking_loss_with_grad(x1, x2, y, 0.25, reduction="sum"))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
    np.testing.assert_array_equal(got[1], want[1])
    for a, b in zip(got[2], want[2], strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(got[3][0], want[3][0], rtol=1e-14)
    for a, b in zip(got[3][1], want[3][1], strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="grad_output"):
        _njit_margin_ranking(x1, x2, y, g[:, :3].copy())


@njit
def _njit_multilabel(x, y, w, g):
    return (nbops.multilabel_soft_margin_loss(x, y),
            nbops.multilabel_soft_margin_loss(x, y, w, reduction="none"),
            nbops.multilabel_soft_margin_loss_backward(g, x, y, w, reduction="none"),
            nbops.multilabel_soft_margin_loss_backward(0.5, x, y),
            nbops.multilabel_soft_margin_loss_with_grad(x, y, w, reduction="sum"))


def test_multilabel_soft_margin_njit_same_as_python():
    x, y, w = _mlsm_data((5, 4), "C", np.float64)
    g = np.random.default_rng(1).uniform(-2, 2, 5)
    got = _njit_multilabel(x, y, w, g)
    want = (nbops.multilabel_soft_margin_loss(x, y),
            nbops.multilabel_soft_margin_loss(x, y, w, reduction="none"),
            nbops.multilabel_soft_margin_loss_backward(g, x, y, w, reduction="none"),
            nbops.multilabel_soft_margin_loss_backward(0.5, x, y),
            nbops.multilabel_soft_margin_loss_with_grad(x, y, w, reduction="sum"))
    for a, b in zip(got[:4], want[:4], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    np.testing.assert_allclose(got[4][0], want[4][0], rtol=1e-14)
    np.testing.assert_array_equal(got[4][1], want[4][1])
    with pytest.raises(ValueError, match="grad_output"):
        _njit_multilabel(x, y, w, g[:3].copy())


@njit
def _njit_gaussian(x, y, v, g):
    return (nbops.gaussian_nll_loss(x, y, v),
            nbops.gaussian_nll_loss(x, y, v, full=True, reduction="none"),
            nbops.gaussian_nll_loss_backward(g, x, y, v, reduction="none"),
            nbops.gaussian_nll_loss_with_grad(x, y, v, reduction="sum"))


@njit
def _njit_gaussian_float_var(x, y, g):
    return (nbops.gaussian_nll_loss(x, y, 0.7),
            nbops.gaussian_nll_loss_backward(g, x, y, 0.7, reduction="none"))


@pytest.mark.parametrize("var_kind", ["full", "rows", "cols1"])
def test_gaussian_njit_same_as_python(var_kind):
    x, t, v = _gauss_data(var_kind, np.float64)
    g = _grad_output("none", np.float64)
    got = _njit_gaussian(x, t, v, g)
    want = (nbops.gaussian_nll_loss(x, t, v),
            nbops.gaussian_nll_loss(x, t, v, full=True, reduction="none"),
            nbops.gaussian_nll_loss_backward(g, x, t, v, reduction="none"),
            nbops.gaussian_nll_loss_with_grad(x, t, v, reduction="sum"))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-14)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-14)
    for a, b in ((got[2][0], want[2][0]), (got[3][1][0], want[3][1][0])):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    for a, b in ((got[2][1], want[2][1]), (got[3][1][1], want[3][1][1])):
        assert a.shape == v.shape
        np.testing.assert_allclose(a, b, rtol=1e-12)  # (summed in another order)
    np.testing.assert_allclose(got[3][0], want[3][0], rtol=1e-14)
    loss, (gx, gv) = _njit_gaussian_float_var(x, t, g)
    np.testing.assert_allclose(loss, nbops.gaussian_nll_loss(x, t, 0.7), rtol=1e-14)
    assert gv is None
    with pytest.raises(ValueError, match="var has negative entry"):
        _njit_gaussian(x, t, -np.ones(SHAPE), g)
    with pytest.raises(ValueError, match="var is of incorrect size"):
        _njit_gaussian(x, t, np.ones((SHAPE[0], 2)), g)
