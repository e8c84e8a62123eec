"""cross_entropy / nll_loss backward and ``*_with_grad`` on CUDA arrays against the
CPU path (which tests/test_backward_classification.py checks against
torch.autograd): the CUDA kernels built from the same per-sample combines
(nbops/scalar/_class_grad.py). Small arrays: the simulator is slow."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import TOL  # noqa: E402  (after the numba.cuda check)
from devarrays import assert_close as _close  # noqa: E402
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

# float32 sums of a few exponentials: the CPU's own exp vs libdevice's
TOL32 = {**TOL, np.float32: {"rtol": 1e-4, "atol": 1e-6}}


def _case(shape, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape).astype(dtype)
    C = shape[1] if len(shape) > 1 else shape[0]
    tshape = (shape[0],) + tuple(shape[2:]) if len(shape) > 1 else ()
    t = rng.integers(0, C, tshape)
    if t.ndim:
        t.flat[0] = -100
    w = (rng.random(C) + 0.5).astype(dtype)
    p = rng.random(shape).astype(dtype)
    return x, t, w, p


@pytest.mark.parametrize("shape, dtype", [((5, 4), np.float32), ((2, 3, 2, 2), np.float64),
                                          ((3,), np.float64)])
def test_backward_and_with_grad(shape, dtype):
    x, t, w, p = _case(shape, dtype)
    lshape = (shape[0],) + shape[2:] if len(shape) > 1 else ()
    go = np.random.default_rng(1).standard_normal(lshape).astype(dtype)
    for red in ("none", "mean", "sum"):
        g = go if red == "none" else dtype(0.7)
        gd = _d(go) if red == "none" else _d(np.asarray(g, dtype))
        for kw, target in ((dict(weight=w, label_smoothing=0.2), t), (dict(), t),
                           (dict(weight=w, label_smoothing=0.1), p)):
            if target.ndim == 0:  # a 0-d class index: host scalar targets are not sent
                target = np.asarray(target)
            want = nbops.cross_entropy_backward(g, x, target, reduction=red, **kw)
            kwd = {k: (_d(v) if k == "weight" else v) for k, v in kw.items()}
            got = nbops.cross_entropy_backward(gd, _d(x), _d(target), reduction=red, **kwd)
            _close(_h(got), want, dtype, TOL32)
            loss, grad = nbops.cross_entropy_with_grad(_d(x), _d(target), reduction=red, **kwd)
            want_loss, want_grad = nbops.cross_entropy_with_grad(x, target, reduction=red, **kw)
            _close(_h(grad), want_grad, dtype, TOL32)
            _close(_h(loss), np.asarray(want_loss), dtype, TOL32)
        want = nbops.nll_loss_backward(g, x, t, w, reduction=red)
        _close(_h(nbops.nll_loss_backward(gd, _d(x), _d(t), _d(w), reduction=red)), want,
               dtype)
        loss, grad = nbops.nll_loss_with_grad(_d(x), _d(t), reduction=red)
        _close(_h(grad), nbops.nll_loss_with_grad(x, t, reduction=red)[1], dtype)


def test_host_scalar_grad_output_out_and_errors():
    x, t, w, _ = _case((4, 3), np.float64)
    want = nbops.cross_entropy_backward(2.0, x, t)
    out = _d(np.zeros_like(x))
    assert nbops.cross_entropy_backward(2.0, _d(x), _d(t), out=out) is out
    _close(_h(out), want, np.float64)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.cross_entropy_backward(_d(np.ones(4)), _d(x), _d(t))
    with pytest.raises(TypeError, match="grad_output"):
        nbops.nll_loss_backward(_d(np.ones(4, np.float32)), _d(x), _d(t), reduction="none")
    with pytest.raises(TypeError, match="grad_output"):
        nbops.nll_loss_backward(np.ones(4), _d(x), _d(t), reduction="none")
    bad = t.copy()
    bad[2] = 3
    for fn in (nbops.cross_entropy_with_grad, lambda x, t: nbops.cross_entropy_backward(1.0, x, t),
               lambda x, t: nbops.nll_loss_backward(1.0, x, t, reduction="sum")):
        with pytest.raises(ValueError, match="out of range"):
            fn(_d(x), _d(bad))
