"""nbops.optim on CUDA device parameters against the CPU path (which
tests/test_optim.py checks against torch.optim): the same element functions,
the same fused multiply-adds, correctly rounded sqrt and division, so the
device results equal the CPU results bit for bit."""

import numpy as np
import pytest

from nbops._grad import get_grad, set_grad
from nbops.optim import SGD, Adam, AdamW

cuda = pytest.importorskip("numba.cuda")

from devarrays import is_device  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

SHAPES = [(5, 3), (4,)]


def _run(cls, kwargs, dtype, steps=3):
    rng = np.random.default_rng(7)
    host = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    dev = [_d(a) for a in host]
    o_host, o_dev = cls(host, **kwargs), cls(dev, **kwargs)
    for step in range(steps):
        for i, (a, d) in enumerate(zip(host, dev, strict=True)):
            if i == 1 and step == 1:  # no gradient this step: skipped
                set_grad(a, None)
                set_grad(d, None)
                continue
            g = rng.standard_normal(a.shape).astype(dtype)
            set_grad(a, g)
            set_grad(d, _d(g))
        o_host.step()
        o_dev.step()
        for a, d in zip(host, dev, strict=True):
            np.testing.assert_array_equal(_h(d), a)
            assert set(o_dev.state[d]) == set(o_host.state[a])
            for key, value in o_host.state[a].items():
                got = o_dev.state[d][key]
                if key == "step":
                    assert isinstance(got, np.ndarray) and got == value  # kept on the host
                else:
                    assert is_device(got)
                    np.testing.assert_array_equal(_h(got), value)
    return o_host, o_dev, host, dev


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls,kwargs", [
    (SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)),
    (SGD, dict(lr=0.1, momentum=0.5, dampening=0.2, maximize=True)),
    (Adam, dict(lr=0.01, weight_decay=0.1)),
    (AdamW, dict(lr=0.01, amsgrad=True, betas=(0.3, 0.9), maximize=True)),
])
def test_device_step_equals_cpu(cls, kwargs, dtype):
    _run(cls, kwargs, dtype)


def test_device_zero_grad_and_state_dict():
    o_host, o_dev, host, dev = _run(Adam, dict(lr=0.01), np.float32, steps=1)
    g = get_grad(dev[0])
    o_dev.zero_grad(set_to_none=False)
    assert get_grad(dev[0]) is g and not np.any(_h(g))
    o_dev.zero_grad()
    assert get_grad(dev[0]) is None
    # the host optimizer's state loads into a device optimizer: arrays go to the device
    fresh = Adam([_d(a) for a in host], lr=0.01)
    fresh.load_state_dict(o_host.state_dict())
    p0 = fresh.param_groups[0]["params"][0]
    assert is_device(fresh.state[p0]["exp_avg"])
    np.testing.assert_array_equal(_h(fresh.state[p0]["exp_avg"]), o_host.state[host[0]]["exp_avg"])
