"""local_response_norm, bilinear and their backwards on device arrays, against the
CPU path (small sizes: the simulator is slow)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

RNG = np.random.default_rng(11)
TOL = {np.float32: {"rtol": 1e-5, "atol": 1e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


def _data(shape, dtype, scale=1.5):
    return (RNG.standard_normal(shape) * scale).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,size", [((2, 5, 3), 3), ((1, 4, 2, 2), 2), ((2, 3, 1), 6)])
def test_local_response_norm_as_cpu(shape, size, dtype):
    x = _data(shape, dtype)
    g = _data(shape, dtype)
    params = dict(alpha=0.5, beta=0.6, k=2.0)
    _close(_h(nbops.local_response_norm(_d(x), size, **params)),
           nbops.local_response_norm(x, size, **params), dtype, TOL)
    _close(_h(nbops.local_response_norm_backward(_d(g), _d(x), size, **params)),
           nbops.local_response_norm_backward(g, x, size, **params), dtype, TOL)
    out = cuda.device_array(shape, dtype)
    assert nbops.local_response_norm(_d(x), size, out=out) is out
    _close(_h(out), nbops.local_response_norm(x, size), dtype, TOL)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_local_response_norm_non_finite_and_empty_as_cpu():
    x = _data((1, 7, 2), np.float64)
    x[0, 1, 0] = np.inf
    x[0, 3, 1] = np.nan
    got = _h(nbops.local_response_norm(_d(x), 2, alpha=0.5))
    np.testing.assert_allclose(got, nbops.local_response_norm(x, 2, alpha=0.5), rtol=1e-12,
                               equal_nan=True)
    e = np.zeros((0, 3, 2), np.float32)
    assert _h(nbops.local_response_norm(_d(e), 2)).shape == (0, 3, 2)
    assert _h(nbops.local_response_norm_backward(_d(e), _d(e), 2)).shape == (0, 3, 2)


def test_local_response_norm_bad_inputs():
    x = _d(_data((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="Expected 3D or higher"):
        nbops.local_response_norm(_d(np.ones((2, 3), np.float32)), 2)
    with pytest.raises(ValueError, match="size must be at least 1"):
        nbops.local_response_norm(x, 0)
    with pytest.raises(TypeError, match="input: expected dtype float32"):
        nbops.local_response_norm_backward(x, _d(np.ones((2, 3, 4))), 2)
    with pytest.raises(ValueError, match="grad_output has shape"):
        nbops.local_response_norm_backward(_d(np.ones((2, 3, 3), np.float32)), x, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lead,n1,n2,n_out", [((5,), 3, 4, 2), ((2, 3), 2, 3, 4)])
def test_bilinear_as_cpu(lead, n1, n2, n_out, dtype):
    x1, x2 = _data(lead + (n1,), dtype), _data(lead + (n2,), dtype)
    w, b = _data((n_out, n1, n2), dtype), _data((n_out,), dtype)
    g = _data(lead + (n_out,), dtype)
    tol = {np.float32: {"rtol": 1e-4, "atol": 1e-5}, np.float64: {"rtol": 1e-11,
                                                                    "atol": 1e-12}}
    for bias in (None, b):
        db = None if bias is None else _d(bias)
        _close(_h(nbops.bilinear(_d(x1), _d(x2), _d(w), db)), nbops.bilinear(x1, x2, w, bias),
               dtype, tol)
        got = nbops.bilinear_backward(_d(g), _d(x1), _d(x2), _d(w), db)
        want = nbops.bilinear_backward(g, x1, x2, w, bias)
        for a, e in zip(got, want, strict=True):
            if e is None:
                assert a is None
            else:
                _close(_h(a), e, dtype, tol)


def test_bilinear_bad_inputs_and_empty():
    x1, x2 = _d(np.ones((4, 3), np.float32)), _d(np.ones((4, 2), np.float32))
    w = _d(np.ones((5, 3, 2), np.float32))
    with pytest.raises(ValueError, match="input1 size does not match weight size"):
        nbops.bilinear(x2, x2, w)
    with pytest.raises(TypeError, match="weight: expected dtype float32"):
        nbops.bilinear(x1, x2, _d(np.ones((5, 3, 2))))
    with pytest.raises(TypeError, match="host"):
        nbops.bilinear(x1, np.ones((4, 2), np.float32), w)
    e1, e2 = _d(np.ones((0, 3), np.float32)), _d(np.ones((0, 2), np.float32))
    assert _h(nbops.bilinear(e1, e2, w)).shape == (0, 5)
    grads = nbops.bilinear_backward(_d(np.ones((0, 5), np.float32)), e1, e2, w)
    np.testing.assert_array_equal(_h(grads[2]), np.zeros((5, 3, 2), np.float32))
