"""A three-layer chain (linear, batch_norm, relu, linear, cross_entropy) run
forward and backward with nbops' functional ops, against ``torch.autograd`` on
the same parameters: the input's and every parameter's gradient match (the
chain of docs/guides/training_by_hand.rst)."""

import numpy as np
import pytest

import nbops

torch = pytest.importorskip("torch")


def _chain(dtype, seed=0):
    rng = np.random.default_rng(seed)
    p = {"x": rng.standard_normal((32, 6)), "W1": rng.standard_normal((8, 6)) * 0.5,
         "b1": rng.standard_normal(8) * 0.1, "gamma": rng.uniform(0.5, 1.5, 8),
         "beta": rng.standard_normal(8) * 0.1, "W2": rng.standard_normal((3, 8)) * 0.5,
         "b2": rng.standard_normal(3) * 0.1}
    p = {k: v.astype(dtype) for k, v in p.items()}
    y = rng.integers(0, 3, 32)
    y[:3] = 1  # an ignored class below
    weight = rng.uniform(0.5, 2.0, 3).astype(dtype)
    return p, y, weight


def _nbops_grads(p, y, weight, fused):
    rm, rv = np.zeros(8, p["x"].dtype), np.ones(8, p["x"].dtype)
    h1 = nbops.linear(p["x"], p["W1"], p["b1"])
    h2, mean, invstd = nbops.batch_norm(h1, rm, rv, p["gamma"], p["beta"], training=True,
                                        return_stats=True)
    h3 = nbops.relu(h2)
    z = nbops.linear(h3, p["W2"], p["b2"])
    options = dict(weight=weight, ignore_index=1, label_smoothing=0.1)
    if fused:
        loss, gz = nbops.cross_entropy_with_grad(z, y, **options)
    else:
        loss = nbops.cross_entropy(z, y, **options)
        gz = nbops.cross_entropy_backward(1.0, z, y, **options)
    gh3, gW2, gb2 = nbops.linear_backward(gz, h3, p["W2"], p["b2"])
    gh2 = nbops.relu_backward(gh3, h3)
    gh1, ggamma, gbeta = nbops.batch_norm_backward(gh2, h1, mean, invstd, p["gamma"],
                                                   training=True)
    gx, gW1, gb1 = nbops.linear_backward(gh1, p["x"], p["W1"], p["b1"])
    return float(loss), {"x": gx, "W1": gW1, "b1": gb1, "gamma": ggamma, "beta": gbeta,
                         "W2": gW2, "b2": gb2}


def _torch_grads(p, y, weight):
    t = {k: torch.from_numpy(v.copy()).requires_grad_() for k, v in p.items()}
    F = torch.nn.functional
    h = F.linear(t["x"], t["W1"], t["b1"])
    h = F.batch_norm(h, None, None, t["gamma"], t["beta"], training=True)
    z = F.linear(F.relu(h), t["W2"], t["b2"])
    loss = F.cross_entropy(z, torch.from_numpy(y), weight=torch.from_numpy(weight),
                           ignore_index=1, label_smoothing=0.1)
    loss.backward()
    return float(loss.detach()), {k: v.grad.numpy() for k, v in t.items()}


@pytest.mark.parametrize("fused", [True, False], ids=["with_grad", "backward"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chain_matches_torch_autograd(dtype, fused):
    p, y, weight = _chain(dtype)
    loss, got = _nbops_grads(p, y, weight, fused)
    exp_loss, exp = _torch_grads(p, y, weight)
    tol = dict(rtol=2e-4, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(loss, exp_loss, **tol)
    for name, g in got.items():
        assert g.dtype == np.dtype(dtype), name
        np.testing.assert_allclose(g, exp[name], err_msg=name, **tol)
