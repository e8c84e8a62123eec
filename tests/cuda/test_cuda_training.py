"""Training on CUDA: a model moved with ``to("cuda")`` takes forward, backward and
optimizer steps on device arrays, against the same model trained on the CPU path
(which tests/test_training.py checks against PyTorch). Small sizes: the simulator
runs each GPU thread as a Python thread."""

import numpy as np
import pytest

import nbops.nn as nn
from nbops import optim

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close  # noqa: E402  (after the numba.cuda check)
from devarrays import is_device as _is_dev  # noqa: E402
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

TOL = {np.float32: dict(rtol=1e-4, atol=1e-5)}


def _model():
    return nn.Sequential(nn.Linear(4, 6, rng=0), nn.BatchNorm1d(6), nn.ReLU(),
                         nn.Dropout(0.5, rng=3), nn.Linear(6, 3, rng=1))


@pytest.mark.parametrize("make_opt", [
    lambda params: optim.Adam(params, lr=1e-2, weight_decay=1e-3),
    lambda params: optim.SGD(params, lr=0.1, momentum=0.9),
], ids=["Adam", "SGD"])
def test_training_steps_on_device_match_cpu(make_opt):
    host, dev = _model(), _model().to("cuda")
    crit_h, crit_d = nn.CrossEntropyLoss(), nn.CrossEntropyLoss()
    opt_h, opt_d = make_opt(host.parameters()), make_opt(dev.parameters())
    sched_h = optim.lr_scheduler.StepLR(opt_h, step_size=2, gamma=0.5)
    sched_d = optim.lr_scheduler.StepLR(opt_d, step_size=2, gamma=0.5)
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((8, 4)).astype(np.float32)
        y = rng.integers(0, 3, 8)
        for model, crit, opt, sched, xs, ys in ((host, crit_h, opt_h, sched_h, x, y),
                                                (dev, crit_d, opt_d, sched_d, _d(x), _d(y))):
            opt.zero_grad()
            crit(model(xs), ys)
            model.backward(crit.backward())
            opt.step()
            sched.step()
        host_state = host.state_dict()
        for name, value in dev.state_dict().items():
            assert _is_dev(value), name  # everything stays on the device
            if name.endswith("num_batches_tracked"):
                np.testing.assert_array_equal(_h(value), host_state[name])
            else:
                assert_close(_h(value), host_state[name], np.float32, TOL)
    for i, state in opt_d.state_dict()["state"].items():
        for key, value in state.items():
            want = opt_h.state_dict()["state"][i][key]
            if key != "step":
                assert _is_dev(value), key
                assert_close(_h(value), want, np.float32, TOL)
