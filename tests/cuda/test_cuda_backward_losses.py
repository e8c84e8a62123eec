"""The losses' backwards and fused value and gradient on CUDA arrays against the
CPU path (which tests/test_backward_losses.py checks against torch.autograd): the
CUDA kernels built from the same loss and derivative cores. Small arrays (the
simulator runs every thread as Python)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning",
                                        "ignore:divide by zero encountered:RuntimeWarning")

SHAPE = (3, 5)
#: (loss, options): "full" / "C" a weight of the input's shape / of its last axis
CASES = [
    ("l1_loss", {"weight": "full"}), ("mse_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
    ("smooth_l1_loss", {"beta": 0.0}), ("huber_loss", {"delta": 0.5, "weight": "full"}),
    ("kl_div", {}), ("kl_div", {"log_target": True}),
    ("binary_cross_entropy", {"weight": "full"}),
    ("binary_cross_entropy_with_logits", {"weight": "full", "pos_weight": "C"}),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in CASES]


def _data(name, kw, dtype):
    rng = np.random.default_rng(5)
    if name == "kl_div":
        x = np.log(rng.uniform(0.05, 1, SHAPE))
        t = np.log(rng.uniform(0.05, 1, SHAPE)) if kw.get("log_target") else \
            rng.uniform(0, 1, SHAPE)
    elif name == "binary_cross_entropy":
        x, t = rng.uniform(0.02, 0.98, SHAPE), rng.uniform(0, 1, SHAPE)
        x[0, :2] = [0.0, 1.0]  # the clamped denominator
    else:
        x, t = rng.uniform(-3, 3, SHAPE), rng.uniform(-3, 3, SHAPE)
        x[0, :3] = [1.0, 1.5, 0.0]  # the kinks: x - t = 0, 0.5, -1
        t[0, :3] = 1.0
    options = {}
    for k, v in kw.items():
        if v == "full":
            v = rng.uniform(0.5, 2, SHAPE).astype(dtype)
        elif v == "C":
            v = rng.uniform(0.5, 3, SHAPE[-1]).astype(dtype)
        options[k] = v
    return x.astype(dtype), t.astype(dtype), options


def _on_device(options):
    return {k: _d(v) if isinstance(v, np.ndarray) else v for k, v in options.items()}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "kw"), CASES, ids=IDS)
def test_backward_and_with_grad(name, kw, dtype):
    x, t, options = _data(name, kw, dtype)
    dopts = _on_device(options)
    backward = getattr(nbops, f"{name}_backward")
    with_grad = getattr(nbops, f"{name}_with_grad")
    reductions = ["mean", "sum", "none"] + (["batchmean"] if name == "kl_div" else [])
    for reduction in reductions:
        g = np.random.default_rng(6).uniform(-2, 2, SHAPE).astype(dtype) \
            if reduction == "none" else 0.75
        want = backward(g, x, t, reduction=reduction, **options)
        dg = _d(g) if reduction == "none" else g
        got = backward(dg, _d(x), _d(t), reduction=reduction, **dopts)
        _close(_h(got), want, dtype)
        out = _d(np.zeros_like(x))
        assert backward(dg, _d(x), _d(t), reduction=reduction, out=out, **dopts) is out
        _close(_h(out), want, dtype)
        loss, grad = with_grad(_d(x), _d(t), reduction=reduction, **dopts)
        want_loss, want_grad = with_grad(x, t, reduction=reduction, **options)
        _close(_h(loss), np.asarray(want_loss), dtype)
        _close(_h(grad), want_grad, dtype)
        # the value is the CUDA forward's, bit for bit (same grid, same sums)
        np.testing.assert_array_equal(
            _h(loss), _h(getattr(nbops, name)(_d(x), _d(t), reduction=reduction, **dopts)))


def test_conventions_on_device():
    x, t = np.array([1.0, 2.0, 0.0]), np.array([1.0, 1.0, 1.0])
    np.testing.assert_array_equal(
        _h(nbops.l1_loss_backward(1.0, _d(x), _d(t), reduction="sum")), [0.0, 1.0, -1.0])
    np.testing.assert_array_equal(
        _h(nbops.smooth_l1_loss_backward(1.0, _d(x), _d(t), reduction="sum", beta=0.0)),
        [0.0, 1.0, -1.0])
    eps = float(np.float32(1e-12))
    np.testing.assert_array_equal(
        _h(nbops.binary_cross_entropy_backward(1.0, _d(np.array([0.0, 1.0])),
                                               _d(np.array([1.0, 0.0])), reduction="sum")),
        [-1 / eps, 1 / eps])


def test_arguments():
    x = np.ones(SHAPE)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.mse_loss_backward(_d(np.ones((5, 3))), _d(x), _d(x), reduction="none")
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.mse_loss_backward(_d(np.ones(3)), _d(x), _d(x))
    with pytest.raises(TypeError, match="grad_output"):
        nbops.mse_loss_backward(np.ones(SHAPE), _d(x), _d(x), reduction="none")
    with pytest.raises(TypeError, match="grad_output"):
        nbops.mse_loss_backward(_d(np.ones(SHAPE, np.float32)), _d(x), _d(x), reduction="none")
    with pytest.raises(TypeError, match="target"):
        nbops.kl_div_backward(1.0, _d(x), x)  # a host target: never copied implicitly
    with pytest.raises(ValueError, match="pos_weight"):
        nbops.binary_cross_entropy_with_logits_backward(1.0, _d(x), _d(x),
                                                        pos_weight=_d(np.ones(4)))
    with pytest.raises(ValueError, match="input"):
        nbops.binary_cross_entropy_with_grad(_d(x * 2), _d(x))
    # a 0-d device grad_output
    np.testing.assert_array_equal(
        _h(nbops.mse_loss_backward(_d(np.array(0.5)), _d(x), _d(x * 0))),
        nbops.mse_loss_backward(0.5, x, x * 0))
