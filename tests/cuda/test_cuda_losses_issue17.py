"""soft_margin_loss, hinge_embedding_loss, poisson_nll_loss, gaussian_nll_loss,
margin_ranking_loss and multilabel_soft_margin_loss (issue 17) on CUDA arrays
against the CPU path (which tests/test_losses_issue17.py checks against torch):
forward, backward and with_grad, every reduction. Small arrays (the simulator
runs every thread as Python)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")

SHAPE = (3, 5)
CASES = [("soft_margin_loss", {}), ("hinge_embedding_loss", {"margin": 0.5}),
         ("poisson_nll_loss", {"full": True}),
         ("poisson_nll_loss", {"log_input": False, "full": True, "eps": 0.25})]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in CASES]


def _data(dtype, name="", kw=None):
    rng = np.random.default_rng(5)
    if name == "poisson_nll_loss":
        x = rng.uniform(0.1, 3, SHAPE)
        t = rng.poisson(2.0, SHAPE).astype(np.float64)
        t[0, :3] = (0.0, 1.0, 1.5)
        return x.astype(dtype), t.astype(dtype)
    x = rng.uniform(-2, 2, SHAPE)
    t = np.where(rng.uniform(size=SHAPE) < 0.5, -1.0, 1.0)
    x[0, :3] = (0.5, 0.75, 0.25)  # at the hinge's margin, above and below
    t[0, :3] = -1.0
    t[2, :2] = (0.0, 0.5)  # other targets
    return x.astype(dtype), t.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_forward_backward_and_with_grad(name, kw, dtype):
    x, t = _data(dtype, name, kw)
    forward = getattr(nbops, name)
    backward = getattr(nbops, f"{name}_backward")
    with_grad = getattr(nbops, f"{name}_with_grad")
    for reduction in ("mean", "sum", "none"):
        _close(_h(forward(_d(x), _d(t), reduction=reduction, **kw)),
               np.asarray(forward(x, t, reduction=reduction, **kw)), dtype)
        g = np.random.default_rng(6).uniform(-2, 2, SHAPE).astype(dtype) \
            if reduction == "none" else 0.75
        want = backward(g, x, t, reduction=reduction, **kw)
        dg = _d(g) if reduction == "none" else g
        _close(_h(backward(dg, _d(x), _d(t), reduction=reduction, **kw)), want, dtype)
        loss, grad = with_grad(_d(x), _d(t), reduction=reduction, **kw)
        want_loss, want_grad = with_grad(x, t, reduction=reduction, **kw)
        _close(_h(loss), np.asarray(want_loss), dtype)
        _close(_h(grad), want_grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_margin_ranking_loss(dtype):
    rng = np.random.default_rng(7)
    x1, x2 = rng.uniform(-2, 2, (2, *SHAPE)).astype(dtype)
    y = np.where(rng.uniform(size=SHAPE) < 0.5, -1.0, 1.0).astype(dtype)
    x1[0, :2] = x2[0, :2] + 0.5 * y[0, :2]  # at the hinge
    for reduction in ("mean", "sum", "none"):
        kw = {"margin": 0.5, "reduction": reduction}
        _close(_h(nbops.margin_ranking_loss(_d(x1), _d(x2), _d(y), **kw)),
               np.asarray(nbops.margin_ranking_loss(x1, x2, y, **kw)), dtype)
        g = rng.uniform(-2, 2, SHAPE).astype(dtype) if reduction == "none" else 0.75
        dg = _d(g) if reduction == "none" else g
        got = nbops.margin_ranking_loss_backward(dg, _d(x1), _d(x2), _d(y), **kw)
        want = nbops.margin_ranking_loss_backward(g, x1, x2, y, **kw)
        for a, b in zip(got, want, strict=True):
            _close(_h(a), b, dtype)
        loss, grads = nbops.margin_ranking_loss_with_grad(_d(x1), _d(x2), _d(y), **kw)
        want_loss, want_grads = nbops.margin_ranking_loss_with_grad(x1, x2, y, **kw)
        _close(_h(loss), np.asarray(want_loss), dtype)
        for a, b in zip(grads, want_grads, strict=True):
            _close(_h(a), b, dtype)
    with pytest.raises(ValueError, match="one shape and dtype"):
        nbops.margin_ranking_loss(_d(x1), _d(x2[:, :1].copy()), _d(y))
    with pytest.raises(ValueError, match="all be CUDA device arrays or all host"):
        nbops.margin_ranking_loss(_d(x1), x2, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multilabel_soft_margin_loss(dtype):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal(SHAPE) * 3).astype(dtype)
    y = (rng.uniform(size=SHAPE) < 0.5).astype(dtype)
    for w in (None, rng.uniform(0.5, 2, SHAPE[-1]).astype(dtype)):
        dw = None if w is None else _d(w)
        for reduction in ("mean", "sum", "none"):
            f, b, wg = (nbops.multilabel_soft_margin_loss,
                        nbops.multilabel_soft_margin_loss_backward,
                        nbops.multilabel_soft_margin_loss_with_grad)
            _close(_h(f(_d(x), _d(y), dw, reduction=reduction)),
                   np.asarray(f(x, y, w, reduction=reduction)), dtype)
            g = rng.uniform(-2, 2, SHAPE[:-1]).astype(dtype) if reduction == "none" else 0.75
            dg = _d(g) if reduction == "none" else g
            _close(_h(b(dg, _d(x), _d(y), dw, reduction=reduction)),
                   b(g, x, y, w, reduction=reduction), dtype)
            loss, grad = wg(_d(x), _d(y), dw, reduction=reduction)
            want_loss, want_grad = wg(x, y, w, reduction=reduction)
            _close(_h(loss), np.asarray(want_loss), dtype)
            _close(_h(grad), want_grad, dtype)
    with pytest.raises(ValueError, match="all be CUDA device arrays or all host"):
        nbops.multilabel_soft_margin_loss(_d(x), y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gaussian_nll_loss(dtype):
    rng = np.random.default_rng(9)
    x, t = rng.uniform(-2, 2, (2, *SHAPE)).astype(dtype)
    variances = [rng.uniform(0.2, 2, SHAPE), rng.uniform(0.2, 2, SHAPE[:1]),
                 rng.uniform(0.2, 2, (1, SHAPE[1])), 0.7]
    for var in variances:
        if isinstance(var, np.ndarray):
            var = var.astype(dtype)
            var.flat[0] = 1e-9  # clamped
        dvar = _d(var) if isinstance(var, np.ndarray) else var
        for kw in ({"reduction": "mean"}, {"reduction": "sum", "full": True},
                   {"reduction": "none", "eps": 0.25}):
            _close(_h(nbops.gaussian_nll_loss(_d(x), _d(t), dvar, **kw)),
                   np.asarray(nbops.gaussian_nll_loss(x, t, var, **kw)), dtype)
            none = kw["reduction"] == "none"
            g = rng.uniform(-2, 2, SHAPE).astype(dtype) if none else 0.75
            got = nbops.gaussian_nll_loss_backward(_d(g) if none else g, _d(x), _d(t), dvar,
                                                   **kw)
            want = nbops.gaussian_nll_loss_backward(g, x, t, var, **kw)
            loss, grads = nbops.gaussian_nll_loss_with_grad(_d(x), _d(t), dvar, **kw)
            want_loss, want_grads = nbops.gaussian_nll_loss_with_grad(x, t, var, **kw)
            _close(_h(loss), np.asarray(want_loss), dtype)
            for a, b in (*zip(got, want, strict=True), *zip(grads, want_grads, strict=True)):
                if b is None:
                    assert a is None
                else:
                    assert tuple(a.shape) == b.shape
                    _close(_h(a), b, dtype)
    with pytest.raises(ValueError, match="var has negative entry"):
        nbops.gaussian_nll_loss(_d(x), _d(t), _d(-np.ones(SHAPE, dtype)))
    with pytest.raises(ValueError, match="var is of incorrect size"):
        nbops.gaussian_nll_loss(_d(x), _d(t), _d(np.ones((SHAPE[0], 2), dtype)))
