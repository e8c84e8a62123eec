"""ctc_loss, its backward and ctc_loss_with_grad on device arrays, against the CPU
path (tested against PyTorch in tests/test_ctc.py); small sizes: the simulator is
slow."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import to_device as _d  # noqa: E402  (after the numba.cuda check)
from devarrays import to_host as _h  # noqa: E402

TOL = {np.float32: dict(rtol=1e-6, atol=1e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _case(dtype, n=3):
    """T=7, C=4 (fewer than the simulator block's 32 threads) or 40 classes (more);
    a repeated label, an empty target, an impossible sample."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((7, n, 4))
    lp = (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(dtype)
    targets = np.array([[1, 1, 2], [3, 0, 0], [2, 3, 1]])[:n]
    return lp, targets, [7, 5, 2][:n], [3, 0, 3][:n]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_as_cpu(dtype, reduction):
    lp, targets, il, tl = _case(dtype)
    for zero_infinity in (False, True):
        kw = dict(reduction=reduction, zero_infinity=zero_infinity)
        want = nbops.ctc_loss(lp, targets, il, tl, **kw)
        got = _h(nbops.ctc_loss(_d(lp), _d(targets), il, tl, **kw))
        assert got.dtype == dtype and got.shape == np.shape(want)
        np.testing.assert_allclose(got, want, **TOL[dtype])
        g = np.linspace(-1, 2, 3).astype(dtype) if reduction == "none" else 0.5
        want = nbops.ctc_loss_backward(g, lp, targets, il, tl, **kw)
        got = _h(nbops.ctc_loss_backward(_d(g) if reduction == "none" else g, _d(lp),
                                         _d(targets), il, tl, **kw))
        assert got.dtype == dtype and got.shape == lp.shape
        np.testing.assert_allclose(got, want, equal_nan=True, **TOL[dtype])
    loss, grad = nbops.ctc_loss_with_grad(_d(lp), _d(targets), il, tl, reduction=reduction,
                                          zero_infinity=True)
    want_loss, want_grad = nbops.ctc_loss_with_grad(lp, targets, il, tl, reduction=reduction,
                                                    zero_infinity=True)
    np.testing.assert_allclose(_h(loss), want_loss, **TOL[dtype])
    np.testing.assert_allclose(_h(grad), want_grad, **TOL[dtype])


def test_many_classes_unbatched_concatenated_and_errors():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((5, 40))
    lp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    t = np.array([39, 7])
    want = nbops.ctc_loss(lp, t, 5, 2, blank=3, reduction="none")
    got = _h(nbops.ctc_loss(_d(lp), _d(t), 5, 2, blank=3, reduction="none"))
    assert got.shape == () and np.allclose(got, want, rtol=1e-12)
    out = _d(np.zeros_like(lp))
    grad = nbops.ctc_loss_backward(1.0, _d(lp), _d(t), _d(np.array(5)), (2,), blank=3,
                                   out=out)
    assert grad is out
    np.testing.assert_allclose(_h(grad), nbops.ctc_loss_backward(1.0, lp, t, 5, 2, blank=3),
                               rtol=1e-12, atol=1e-13)
    lp3, targets, il, tl = _case(np.float64)
    flat = np.concatenate([targets[b, :tl[b]] for b in range(3)])
    np.testing.assert_allclose(
        _h(nbops.ctc_loss(_d(lp3), _d(flat), il, tl, reduction="none")),
        nbops.ctc_loss(lp3, targets, il, tl, reduction="none"), rtol=1e-12)
    with pytest.raises(ValueError, match="must not contain the blank"):
        nbops.ctc_loss(_d(lp), _d(np.array([3, 1])), 5, 2, blank=3)
    with pytest.raises(ValueError, match="input_lengths must be at most"):
        nbops.ctc_loss(_d(lp), _d(t), 6, 2)
    with pytest.raises(TypeError, match="targets: expected a CUDA device array"):
        nbops.ctc_loss(_d(lp), t, 5, 2)


def test_nn_module_on_device():
    lp, targets, il, tl = _case(np.float32)
    for reduction, g in (("mean", 0.5), ("none", np.array([1.0, -2.0, 0.5], np.float32))):
        m, cpu = nbops.nn.CTCLoss(reduction=reduction), nbops.nn.CTCLoss(reduction=reduction)
        loss = m(_d(lp), _d(targets), il, tl)
        np.testing.assert_allclose(_h(loss), cpu(lp, targets, il, tl), **TOL[np.float32])
        grad = m.backward(_d(g) if reduction == "none" else g)
        np.testing.assert_allclose(_h(grad), cpu.backward(g), equal_nan=True,
                                   **TOL[np.float32])
