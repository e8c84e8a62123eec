"""layer_norm, rms_norm and their backwards on device arrays, against the CPU path
(small sizes: the simulator is slow)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

RNG = np.random.default_rng(5)
# (shape, normalized_shape): a row longer than a simulator block (32 threads), a
# 2-D normalized shape, more rows than the simulator's row blocks (8)
CASES = [((3, 45), 45), ((2, 3, 4), (3, 4)), ((10, 5), 5)]


def _data(shape, dtype, loc=0.5):
    return (RNG.standard_normal(shape) * 2 + loc).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,ns", CASES)
def test_layer_norm_forward_and_backward_as_cpu(shape, ns, dtype):
    x = _data(shape, dtype, loc=20.0)
    g = _data(shape, dtype)
    ws = x.shape[x.ndim - (1 if np.ndim(ns) == 0 else len(ns)):]
    w, b = _data(ws, dtype, 1.0), _data(ws, dtype, 0.0)
    want, wmean, wrstd = nbops.layer_norm(x, ns, w, b, return_stats=True)
    got, mean, rstd = nbops.layer_norm(_d(x), ns, _d(w), _d(b), return_stats=True)
    _close(_h(got), want, dtype)
    _close(_h(mean), wmean, dtype)
    _close(_h(rstd), wrstd, dtype)
    _close(_h(nbops.layer_norm(_d(x), ns)), nbops.layer_norm(x, ns), dtype)
    gi, gw, gb = nbops.layer_norm_backward(_d(g), _d(x), ns, mean, rstd, _d(w))
    egi, egw, egb = nbops.layer_norm_backward(g, x, ns, wmean, wrstd, w)
    tol = {np.float32: {"rtol": 1e-4, "atol": 1e-4}, np.float64: {"rtol": 1e-11, "atol": 1e-11}}
    _close(_h(gi), egi, dtype, tol)
    _close(_h(gw), egw, dtype, tol)
    _close(_h(gb), egb, dtype, tol)
    res = nbops.layer_norm_backward(_d(g), _d(x), ns, mean, rstd, None)
    assert res[1] is None and res[2] is None
    _close(_h(res[0]), nbops.layer_norm_backward(g, x, ns, wmean, wrstd)[0], dtype, tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,ns", CASES)
def test_rms_norm_forward_and_backward_as_cpu(shape, ns, dtype):
    x = _data(shape, dtype)
    g = _data(shape, dtype)
    ws = x.shape[x.ndim - (1 if np.ndim(ns) == 0 else len(ns)):]
    w = _data(ws, dtype, 1.0)
    want, wrstd = nbops.rms_norm(x, ns, w, return_stats=True)
    got, rstd = nbops.rms_norm(_d(x), ns, _d(w), return_stats=True)
    _close(_h(got), want, dtype)
    _close(_h(rstd), wrstd, dtype)
    _close(_h(nbops.rms_norm(_d(x), ns, None, 1e-3)), nbops.rms_norm(x, ns, None, 1e-3), dtype)
    tol = {np.float32: {"rtol": 1e-4, "atol": 1e-4}, np.float64: {"rtol": 1e-11, "atol": 1e-11}}
    gi, gw = nbops.rms_norm_backward(_d(g), _d(x), ns, rstd, _d(w))
    egi, egw = nbops.rms_norm_backward(g, x, ns, wrstd, w)
    _close(_h(gi), egi, dtype, tol)
    _close(_h(gw), egw, dtype, tol)
    gi, gw = nbops.rms_norm_backward(_d(g), _d(x), ns, rstd)
    assert gw is None
    _close(_h(gi), nbops.rms_norm_backward(g, x, ns, wrstd)[0], dtype, tol)


def test_nn_modules_and_out_on_device():
    x = _data((2, 6), np.float32)
    m = nbops.nn.LayerNorm(6).to("cuda")
    _close(_h(m(_d(x))), nbops.nn.LayerNorm(6)(x), np.float32)
    r = nbops.nn.RMSNorm(6).to("cuda")
    _close(_h(r(_d(x))), nbops.nn.RMSNorm(6)(x), np.float32)
    out = cuda.device_array((2, 6), np.float32)
    assert nbops.layer_norm(_d(x), 6, out=out) is out
    _close(_h(out), nbops.layer_norm(x, 6), np.float32)


def test_bad_device_arguments():
    x = _d(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"normalized_shape=\[3\]"):
        nbops.layer_norm(x, 3)
    with pytest.raises(ValueError, match=r"weight must have shape \(4,\)"):
        nbops.layer_norm(x, 4, _d(np.ones(3, np.float32)))
    with pytest.raises(TypeError, match="expected a CUDA device array"):
        nbops.layer_norm(x, 4, np.ones(4, np.float32))
    _, mean, rstd = nbops.layer_norm(x, 4, return_stats=True)
    with pytest.raises(ValueError, match=r"rstd must have shape \(2, 1\)"):
        nbops.layer_norm_backward(x, x, 4, mean, _d(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.rms_norm_backward(_d(np.ones((2, 3), np.float32)), x, 4, rstd)
