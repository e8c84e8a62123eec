"""cosine_embedding_loss, triplet_margin_loss and triplet_margin_with_distance_loss
(issue 17) on CUDA arrays against the CPU path (which tests/test_embedding_losses.py
checks against torch): forward, backward and with_grad, every reduction. Small
arrays (the simulator runs every thread as Python)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

REDUCTIONS = ("mean", "sum", "none")


def _check(name, host_args, kw, dtype, rows):
    """forward, backward and with_grad of ``name`` on device copies of ``host_args``
    against the CPU path, for every reduction."""
    forward, backward, with_grad = (getattr(nbops, name + s)
                                    for s in ("", "_backward", "_with_grad"))
    dev_args = [_d(a) for a in host_args]
    for reduction in REDUCTIONS:
        opts = dict(kw, reduction=reduction)
        _close(_h(forward(*dev_args, **opts)), np.asarray(forward(*host_args, **opts)), dtype)
        g = np.random.default_rng(6).uniform(-2, 2, rows).astype(dtype) \
            if reduction == "none" else 0.75
        want = backward(g, *host_args, **opts)
        got = backward(_d(g) if reduction == "none" else g, *dev_args, **opts)
        assert len(got) == len(want)
        for x, y in zip(got, want, strict=True):
            _close(_h(x), y, dtype)
        loss, grads = with_grad(*dev_args, **opts)
        want_loss, want_grads = with_grad(*host_args, **opts)
        _close(_h(loss), np.asarray(want_loss), dtype)
        for x, y in zip(grads, want_grads, strict=True):
            _close(_h(x), y, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cosine_embedding_loss(dtype):
    rng = np.random.default_rng(5)
    x1, x2 = (rng.standard_normal((4, 3)).astype(dtype) for _ in range(2))
    t = np.array([1.0, -1.0, -1.0, 0.0], dtype)
    x2[2] = x1[2]  # cos = 1: above the margin
    _check("cosine_embedding_loss", (x1, x2, t), {"margin": 0.2}, dtype, 4)
    with pytest.raises(ValueError, match="one shape"):
        nbops.cosine_embedding_loss(_d(x1), _d(x2[:1].copy()), _d(t))
    with pytest.raises(ValueError, match="device arrays or all host"):
        nbops.cosine_embedding_loss(_d(x1), x2, t)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_triplet_margin_losses(dtype):
    rng = np.random.default_rng(7)
    a = rng.standard_normal((4, 3))
    pos = a + 0.5 * rng.standard_normal((4, 3))
    neg = a + rng.standard_normal((4, 3))
    pos[0] = a[0]  # the swap's tie
    neg[1] = a[1] + 10.0  # the hinge closed
    arrays = tuple(x.astype(dtype) for x in (a, pos, neg))
    _check("triplet_margin_loss", arrays, {"swap": True, "margin": 0.5}, dtype, 4)
    if dtype == np.float64:
        _check("triplet_margin_loss", arrays, {"p": np.inf}, dtype, 4)
        _check("triplet_margin_with_distance_loss", arrays,
               {"distance_function": nbops.pairwise_distance, "swap": True}, dtype, 4)
    with pytest.raises(TypeError, match="user callable"):
        nbops.triplet_margin_with_distance_loss(
            *(_d(x) for x in arrays), distance_function=lambda x, y: x)
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        nbops.triplet_margin_loss(*(_d(x) for x in arrays), margin=0.0)


def test_nn_modules_on_device_arrays():
    rng = np.random.default_rng(9)
    arrays = [rng.standard_normal((4, 3)) for _ in range(3)]
    t = np.array([1.0, -1.0, 1.0, -1.0])
    cases = [(nbops.nn.CosineEmbeddingLoss(0.1), (arrays[0], arrays[1], t)),
             (nbops.nn.TripletMarginLoss(swap=True), tuple(arrays)),
             (nbops.nn.TripletMarginWithDistanceLoss(reduction="sum"), tuple(arrays))]
    for module, host_args in cases:
        want = module(*host_args)
        want_grads = module.backward(0.5)
        got = module(*(_d(a) for a in host_args))
        got_grads = module.backward(0.5)
        _close(_h(got), np.asarray(want), np.float64)
        for x, y in zip(got_grads, want_grads, strict=True):
            _close(_h(x), y, np.float64)
