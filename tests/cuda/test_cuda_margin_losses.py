"""multi_margin_loss and multilabel_margin_loss (issue 17) on CUDA arrays against
the CPU path (which tests/test_margin_losses_issue17.py checks against torch):
forward, backward and with_grad, every reduction; class indices out of range
raise after the kernel (which never reads outside the row). Small arrays (the
simulator runs every thread as Python)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

N, C = 4, 5
REDUCTIONS = ("mean", "sum", "none")


def _check(name, x, target, kw, dtype):
    f, b, wg = (getattr(nbops, name + s) for s in ("", "_backward", "_with_grad"))
    dkw = {k: (_d(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    for reduction in REDUCTIONS:
        _close(_h(f(_d(x), _d(target), reduction=reduction, **dkw)),
               np.asarray(f(x, target, reduction=reduction, **kw)), dtype)
        g = np.random.default_rng(6).uniform(-2, 2, N).astype(dtype) \
            if reduction == "none" else 0.75
        dg = _d(g) if reduction == "none" else g
        _close(_h(b(dg, _d(x), _d(target), reduction=reduction, **dkw)),
               b(g, x, target, reduction=reduction, **kw), dtype)
        loss, grad = wg(_d(x), _d(target), reduction=reduction, **dkw)
        want_loss, want_grad = wg(x, target, reduction=reduction, **kw)
        _close(_h(loss), np.asarray(want_loss), dtype)
        _close(_h(grad), want_grad, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multi_margin_loss(dtype):
    rng = np.random.default_rng(7)
    x = rng.uniform(-1.5, 1.5, (N, C)).astype(dtype)
    y = rng.integers(0, C, N)
    x[0, (y[0] + 1) % C] = x[0, y[0]] - 1  # a hinge at exactly 0
    w = rng.uniform(0.5, 2, C).astype(dtype)
    for kw in ({}, {"p": 2, "margin": 0.5, "weight": w}):
        _check("multi_margin_loss", x, y, kw, dtype)
    bad = y.copy()
    bad[2] = C
    with pytest.raises(ValueError, match="out of range"):
        nbops.multi_margin_loss(_d(x), _d(bad))
    with pytest.raises(ValueError, match="all be CUDA device arrays or all host"):
        nbops.multi_margin_loss(_d(x), y)
    with pytest.raises(ValueError, match="inconsistent target size"):
        nbops.multi_margin_loss(_d(x), _d(y[:2]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_multilabel_margin_loss(dtype):
    rng = np.random.default_rng(8)
    x = rng.uniform(-1.5, 1.5, (N, C)).astype(dtype)
    t = np.full((N, C), -1)
    t[0, :3] = (2, 0, 4)
    t[1, :2] = (3, 3)
    t[1, 3:] = (1, 0)  # after the first -1: ignored
    t[2] = np.arange(C)
    _check("multilabel_margin_loss", x, t, {}, dtype)
    for value in (C, -2):
        bad = t.copy()
        bad[3, 4] = value
        with pytest.raises(ValueError, match="out of range"):
            nbops.multilabel_margin_loss(_d(x), _d(bad))
    with pytest.raises(ValueError, match="inconsistent target size"):
        nbops.multilabel_margin_loss(_d(x), _d(t[:2]))
