"""batch_norm_backward, dropout*_backward and pairwise_distance_backward on device
arrays, against the CPU path: the same results (the dropout masks bit for bit),
results on the device, ``out=``, argument errors. Small sizes (the simulator is slow)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

DTYPES = [np.float32, np.float64]
#: float64 sums in another order than the CPU's: a few ulp of the result's dtype
TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-5}, np.float64: {"rtol": 1e-12, "atol": 1e-12}}


def _bn_data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    g = rng.uniform(-2, 2, shape).astype(dtype)
    w = rng.uniform(0.5, 2, shape[1]).astype(dtype)
    return x, g, w


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(3, 2, 5), (5, 2), (2, 2, 2, 1, 3)])
def test_batch_norm_backward_matches_cpu(dtype, training, shape):
    x, g, w = _bn_data(shape, dtype)
    rm, rv = np.zeros(2, dtype), np.ones(2, dtype)
    y, mean, invstd = nbops.batch_norm(_d(x), _d(rm), _d(rv), _d(w), None,
                                       training=training, return_stats=True)
    cy, cmean, cinvstd = nbops.batch_norm(x, rm.copy(), rv.copy(), w, None,
                                          training=training, return_stats=True)
    _close(_h(mean), cmean, dtype, TOL)
    _close(_h(invstd), cinvstd, dtype, TOL)
    got = nbops.batch_norm_backward(_d(g), _d(x), mean, invstd, _d(w), training=training)
    want = nbops.batch_norm_backward(g, x, cmean, cinvstd, w, training=training)
    for a, b in zip(got, want, strict=True):
        _close(_h(a), b, dtype, TOL)
    gi, gw, gb = nbops.batch_norm_backward(_d(g), _d(x), mean, invstd, training=training)
    assert gw is None and gb is None
    _close(_h(gi), nbops.batch_norm_backward(g, x, cmean, cinvstd, training=training)[0],
           dtype, TOL)


def test_batch_norm_backward_out_and_errors():
    x, g, w = _bn_data((4, 3), np.float64)
    mean, invstd = _d(x.mean(axis=0)), _d(1 / x.std(axis=0))
    out = cuda.device_array(x.shape)
    gi, _, gb = nbops.batch_norm_backward(_d(g), _d(x), mean, invstd, _d(w), training=True,
                                          has_bias=False, out=out)
    assert gi is out and gb is None
    with pytest.raises(ValueError, match="grad_output"):
        nbops.batch_norm_backward(_d(g[:2]), _d(x), mean, invstd)
    with pytest.raises(ValueError, match="invstd"):
        nbops.batch_norm_backward(_d(g), _d(x), mean, _d(np.ones(2)))
    with pytest.raises(TypeError, match="input"):
        nbops.batch_norm_backward(_d(g), _d(x.astype(np.float32)), mean, invstd)
    with pytest.raises(TypeError, match="mean"):
        nbops.batch_norm_backward(_d(g), _d(x), np.zeros(3), invstd)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_backward_same_mask_as_cpu(dtype):
    g = np.random.default_rng(1).standard_normal((2, 3, 4, 2)).astype(dtype)
    for name in ("dropout", "dropout2d", "dropout3d"):
        backward = getattr(nbops, f"{name}_backward")
        np.testing.assert_array_equal(_h(backward(_d(g), 0.4, rng=21)),
                                      backward(g, 0.4, rng=21))  # bit for bit
    res = nbops.dropout_backward(_d(g), 0.4, training=False, rng=0)
    np.testing.assert_array_equal(_h(res), g)
    out = cuda.device_array(g.shape, dtype)
    assert nbops.dropout_backward(_d(g), 0.4, rng=3, out=out) is out
    with pytest.raises(TypeError, match="rng"):
        nbops.dropout_backward(_d(g), 0.4, rng=None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [2.0, 1.0, 0.0, 3.0, 0.5, np.inf, -np.inf])
def test_pairwise_distance_backward_matches_cpu(dtype, p):
    rng = np.random.default_rng(2)
    x1 = rng.standard_normal((3, 5)).astype(dtype)
    x2 = rng.standard_normal((3, 5)).astype(dtype)
    x2[0, 1] = x1[0, 1]
    g = rng.uniform(-2, 2, 3).astype(dtype)
    got = nbops.pairwise_distance_backward(_d(g), _d(x1), _d(x2), p=p)
    want = nbops.pairwise_distance_backward(g, x1, x2, p=p)
    for a, b in zip(got, want, strict=True):
        _close(_h(a), b, dtype, TOL)


def test_pairwise_distance_backward_keepdim_out_and_errors():
    x1, x2 = np.ones((2, 4)), np.zeros((2, 4))
    g = np.array([[1.0], [2.0]])
    o1 = cuda.device_array((2, 4))
    r1, r2 = nbops.pairwise_distance_backward(_d(g), _d(x1), _d(x2), keepdim=True,
                                              out=(o1, None))
    assert r1 is o1
    want = nbops.pairwise_distance_backward(g, x1, x2, keepdim=True)
    _close(_h(r1), want[0], np.float64, TOL)
    _close(_h(r2), want[1], np.float64, TOL)
    with pytest.raises(ValueError, match="grad_output"):
        nbops.pairwise_distance_backward(_d(g), _d(x1), _d(x2))
    with pytest.raises(ValueError, match="same shape"):
        nbops.pairwise_distance_backward(_d(g), _d(x1), _d(x2[:1]), keepdim=True)
