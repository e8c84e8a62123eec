"""Module backward on CUDA: a model moved with ``to("cuda")`` runs forward and
backward on device arrays, and its gradients stay on the device, against the
same model on the CPU path (which tests/test_nn_backward.py checks against
PyTorch); the gradient store's device helpers (nbops/cuda/_grad_ops.py). Small
sizes: the simulator runs each GPU thread as a Python thread."""

import numpy as np
import pytest

import nbops.nn as nn

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close  # noqa: E402  (after the numba.cuda check)
from devarrays import is_device as _is_dev  # noqa: E402
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

from nbops.cuda import _grad_ops  # noqa: E402

TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


def _close(got, want, dtype=np.float32):
    assert_close(got, want, dtype, TOL)


def _chain():
    return nn.Sequential(nn.Linear(4, 6, rng=0), nn.BatchNorm1d(6), nn.ReLU(),
                         nn.Dropout(0.5, rng=3), nn.Linear(6, 3, rng=1))


def _compare_grads(dev_model, host_model, dtype=np.float32):
    host = dict(host_model.named_grads())
    for name, g in dev_model.named_grads():
        assert _is_dev(g), name
        _close(_h(g), host[name], dtype)


def test_chain_backward_on_device_matches_cpu():
    host, dev = _chain(), _chain().to("cuda")
    crit_h, crit_d = nn.CrossEntropyLoss(), nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    for step in range(2):  # the second backward adds into the first's gradients
        x = rng.standard_normal((8, 4)).astype(np.float32)
        y = rng.integers(0, 3, 8)
        loss_h = crit_h(host(x), y)
        loss_d = crit_d(dev(_d(x)), _d(y))
        _close(_h(loss_d), np.asarray(loss_h))
        gx_h = host.backward(crit_h.backward())
        gx_d = dev.backward(crit_d.backward())
        _close(_h(gx_d), gx_h)
        _compare_grads(dev, host)
        if step == 0:
            first = nn.get_grad(dev[0].weight)
    assert nn.get_grad(dev[0].weight) is first  # accumulated in place on the device
    for name, b in dev.named_buffers():
        if name.endswith("running_mean"):
            _close(_h(b), host.get_submodule(name.rsplit(".", 1)[0]).running_mean)
    dev.zero_grad(set_to_none=False)
    assert nn.get_grad(dev[0].weight) is first and not _h(first).any()
    dev.zero_grad()
    assert all(g is None for _, g in dev.named_grads())


def test_grads_follow_the_model_to_the_host_and_back():
    dev = nn.Sequential(nn.Linear(3, 2, rng=0)).to("cuda")
    dev(_d(np.ones((2, 3), np.float32)))
    dev.backward(_d(np.ones((2, 2), np.float32)))
    dev.cpu()
    g = nn.get_grad(dev[0].weight)
    assert isinstance(g, np.ndarray)
    np.testing.assert_array_equal(g, np.full((2, 3), 2.0, np.float32))
    dev.cuda()
    assert _is_dev(nn.get_grad(dev[0].weight))
    np.testing.assert_array_equal(_h(nn.get_grad(dev[0].bias)), [2.0, 2.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activations_prelu_and_softmax_backward_on_device(dtype):
    def build():
        return nn.Sequential(nn.ELU(inplace=True), nn.PReLU(4, dtype=dtype),
                             nn.LeakyReLU(0.2), nn.Tanh(), nn.Softmax(dim=1))
    host, dev = build(), build().to("cuda")
    x = np.random.default_rng(1).standard_normal((3, 4, 2)).astype(dtype)
    g = np.random.default_rng(2).standard_normal((3, 4, 2)).astype(dtype)
    _close(_h(dev(_d(x))), host(x.copy()), dtype)
    _close(_h(dev.backward(_d(g))), host.backward(g), dtype)
    _compare_grads(dev, host, dtype)


def test_loss_grad_output_scaling_and_none_on_device():
    rng = np.random.default_rng(3)
    x, t = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((4, 3))
    t = t.astype(np.float32)
    mse_h, mse_d = nn.MSELoss(), nn.MSELoss()
    mse_h(x, t), mse_d(_d(x), _d(t))
    _close(_h(mse_d.backward(2.0)), mse_h.backward(2.0))  # the scale kernel
    bce_h, bce_d = nn.BCEWithLogitsLoss(reduction="none"), nn.BCEWithLogitsLoss(reduction="none")
    u = rng.uniform(0, 1, (4, 3)).astype(np.float32)
    bce_h(x, u), bce_d(_d(x), _d(u))
    g = rng.standard_normal((4, 3)).astype(np.float32)
    _close(_h(bce_d.backward(_d(g))), bce_h.backward(g))


def test_pairwise_distance_backward_on_device():
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    m_h, m_d = nn.PairwiseDistance(), nn.PairwiseDistance()
    m_h(a, b), m_d(_d(a), _d(b))
    g = rng.standard_normal(3)
    for got, want in zip(m_d.backward(_d(g)), m_h.backward(g), strict=True):
        _close(_h(got), want, np.float64)


def test_grad_ops_copy_add_into_scale():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    d = _d(a)
    c = _grad_ops.copy(d)
    assert c is not d
    np.testing.assert_array_equal(_h(c), a)
    _grad_ops.add_into(c, d)
    np.testing.assert_array_equal(_h(c), 2 * a)
    _grad_ops.scale(c, 0.5)
    np.testing.assert_array_equal(_h(c), a)
    np.testing.assert_array_equal(_h(d), a)  # the source is untouched
    with pytest.raises(ValueError, match="shapes"):
        _grad_ops.add_into(c, _d(np.zeros(6, np.float32)))
