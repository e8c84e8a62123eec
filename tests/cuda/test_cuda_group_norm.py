"""group_norm, instance_norm and their backwards on device arrays, against the CPU
path (small sizes: the simulator is slow)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

RNG = np.random.default_rng(5)
# (shape, groups): a group longer than a simulator block (32 threads), no
# positions (2-D), more groups than the simulator's row blocks (8)
CASES = [((2, 4, 23), 2), ((3, 6), 3), ((5, 4, 3), 4)]
GTOL = {np.float32: {"rtol": 1e-4, "atol": 1e-4}, np.float64: {"rtol": 1e-11, "atol": 1e-11}}


def _data(shape, dtype, loc=0.5):
    return (RNG.standard_normal(shape) * 2 + loc).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,groups", CASES)
def test_group_norm_forward_and_backward_as_cpu(shape, groups, dtype):
    c = shape[1]
    x = _data(shape, dtype, loc=20.0)
    g = _data(shape, dtype)
    w, b = _data(c, dtype, 1.0), _data(c, dtype, 0.0)
    want, wmean, wrstd = nbops.group_norm(x, groups, w, b, return_stats=True)
    got, mean, rstd = nbops.group_norm(_d(x), groups, _d(w), _d(b), return_stats=True)
    _close(_h(got), want, dtype)
    _close(_h(mean), wmean, dtype)
    _close(_h(rstd), wrstd, dtype)
    _close(_h(nbops.group_norm(_d(x), groups)), nbops.group_norm(x, groups), dtype)
    gi, gw, gb = nbops.group_norm_backward(_d(g), _d(x), groups, mean, rstd, _d(w))
    egi, egw, egb = nbops.group_norm_backward(g, x, groups, wmean, wrstd, w)
    _close(_h(gi), egi, dtype, GTOL)
    _close(_h(gw), egw, dtype, GTOL)
    _close(_h(gb), egb, dtype, GTOL)
    res = nbops.group_norm_backward(_d(g), _d(x), groups, mean, rstd, None)
    assert res[1] is None and res[2] is None
    _close(_h(res[0]), nbops.group_norm_backward(g, x, groups, wmean, wrstd)[0], dtype, GTOL)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_instance_norm_forward_backward_and_running_stats_as_cpu(dtype):
    x = _data((3, 4, 5), dtype)
    g = _data(x.shape, dtype)
    w, b = _data(4, dtype, 1.0), _data(4, dtype, 0.0)
    rm, rv = _data(4, dtype), (1.0 + np.abs(_data(4, dtype))).astype(dtype)
    drm, drv = _d(rm), _d(rv)
    for use_input_stats in (True, False):
        want, wmean, wrstd = nbops.instance_norm(x, rm, rv, w, b, use_input_stats, 0.3,
                                                 return_stats=True)
        got, mean, rstd = nbops.instance_norm(_d(x), drm, drv, _d(w), _d(b), use_input_stats,
                                              0.3, return_stats=True)
        _close(_h(got), want, dtype)
        _close(_h(drm), rm, dtype)
        _close(_h(drv), rv, dtype)
        gi, gw, gb = nbops.instance_norm_backward(_d(g), _d(x), mean, rstd, _d(w),
                                                  use_input_stats)
        egi, egw, egb = nbops.instance_norm_backward(g, x, wmean, wrstd, w, use_input_stats)
        _close(_h(gi), egi, dtype, GTOL)
        _close(_h(gw), egw, dtype, GTOL)
        _close(_h(gb), egb, dtype, GTOL)
    _close(_h(nbops.instance_norm(_d(x))), nbops.instance_norm(x), dtype)


def test_nn_modules_and_out_on_device():
    x = _data((2, 4, 3), np.float32)
    m = nbops.nn.GroupNorm(2, 4).to("cuda")
    _close(_h(m(_d(x))), nbops.nn.GroupNorm(2, 4)(x), np.float32)
    g = _data(x.shape, np.float32)
    _close(_h(m.backward(_d(g))), _host_group_norm_grad(x, g), np.float32, GTOL)
    i = nbops.nn.InstanceNorm1d(4, affine=True, track_running_stats=True).to("cuda")
    host = nbops.nn.InstanceNorm1d(4, affine=True, track_running_stats=True)
    _close(_h(i(_d(x))), host(x), np.float32)
    _close(_h(i.running_var), host.running_var, np.float32)
    _close(_h(i.backward(_d(g))), host.backward(g), np.float32, GTOL)
    out = cuda.device_array((2, 4, 3), np.float32)
    assert nbops.group_norm(_d(x), 2, out=out) is out
    _close(_h(out), nbops.group_norm(x, 2), np.float32)


def _host_group_norm_grad(x, g):
    m = nbops.nn.GroupNorm(2, 4)
    m(x)
    return m.backward(g)


def test_bad_device_arguments():
    x = _d(np.ones((2, 4, 3), np.float32))
    with pytest.raises(ValueError, match="divisible by num_groups"):
        nbops.group_norm(x, 3)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        nbops.group_norm(x, 2, _d(np.ones(3, np.float32)))
    with pytest.raises(TypeError, match="expected a CUDA device array"):
        nbops.group_norm(x, 2, np.ones(4, np.float32))
    _, mean, rstd = nbops.group_norm(x, 2, return_stats=True)
    with pytest.raises(ValueError, match=r"rstd must have shape \(2, 2\)"):
        nbops.group_norm_backward(x, x, 2, mean, _d(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.group_norm_backward(_d(np.ones((2, 4, 2), np.float32)), x, 2, mean, rstd)
    with pytest.raises(ValueError, match="more than 1 spatial element"):
        nbops.instance_norm(_d(np.ones((2, 4, 1), np.float32)))
    with pytest.raises(ValueError, match=r"running_mean must be a float device array"):
        nbops.instance_norm(x, _d(np.zeros(3, np.float32)), _d(np.ones(4, np.float32)))
