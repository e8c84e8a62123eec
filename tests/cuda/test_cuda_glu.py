"""glu, rrelu, gumbel_softmax and their backwards on device arrays, against the CPU path
(small sizes: the simulator is slow). A seed gives the same slopes and the same
Gumbel noise on the device as on the CPU."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

RNG = np.random.default_rng(7)


def _data(shape, dtype):
    return (RNG.standard_normal(shape) * 2).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((3, 10), -1), ((2, 4, 3), 1)])
def test_glu_as_cpu(shape, axis, dtype):
    x = _data(shape, dtype)
    want = nbops.glu(x, axis)
    _close(_h(nbops.glu(_d(x), axis)), want, dtype)
    g = _data(want.shape, dtype)
    _close(_h(nbops.glu_backward(_d(g), _d(x), dim=axis)), nbops.glu_backward(g, x, axis),
           dtype)
    out = cuda.device_array(want.shape, dtype)
    assert nbops.glu(_d(x), axis, out=out) is out
    _close(_h(out), want, dtype)
    with pytest.raises(ValueError, match="Halving dimension"):
        nbops.glu(_d(np.ones((2, 3), dtype)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rrelu_as_cpu(dtype):
    x = _data((5, 9), dtype)
    g = _data((5, 9), dtype)
    for training in (False, True):
        want = nbops.rrelu(x, 0.1, 0.3, training, rng=4)
        np.testing.assert_array_equal(_h(nbops.rrelu(_d(x), 0.1, 0.3, training, rng=4)), want)
        gw = nbops.rrelu_backward(g, x, 0.1, 0.3, training, rng=4)
        np.testing.assert_array_equal(
            _h(nbops.rrelu_backward(_d(g), _d(x), 0.1, 0.3, training, rng=4)), gw)
    xd = _d(x)
    assert nbops.rrelu(xd, training=True, inplace=True, rng=2) is xd
    np.testing.assert_array_equal(_h(xd), nbops.rrelu(x, training=True, rng=2))
    with pytest.raises(TypeError, match="rng"):
        nbops.rrelu_backward(_d(g), _d(x), training=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", [((4, 5), -1), ((3, 4, 2), 1)])
def test_gumbel_softmax_as_cpu(shape, axis, dtype):
    x = _data(shape, dtype)
    g = _data(shape, dtype)
    for hard in (False, True):
        want = nbops.gumbel_softmax(x, 0.5, hard, axis=axis, rng=6)
        _close(_h(nbops.gumbel_softmax(_d(x), 0.5, hard, axis=axis, rng=6)), want, dtype)
        gw = nbops.gumbel_softmax_backward(g, x, 0.5, hard, axis=axis, rng=6)
        _close(_h(nbops.gumbel_softmax_backward(_d(g), _d(x), 0.5, hard, axis=axis, rng=6)),
               gw, dtype)
    with pytest.raises(TypeError, match="rng"):
        nbops.gumbel_softmax_backward(_d(g), _d(x), rng=None)


def test_gumbel_softmax_backward_from_the_soft_sample_as_cpu():
    x = _data((3, 5), np.float64)
    g = _data((3, 5), np.float64)
    y = nbops.gumbel_softmax(x, rng=1)
    _close(_h(nbops.gumbel_softmax_backward(_d(g), _d(x), y_soft=_d(y))),
           nbops.gumbel_softmax_backward(g, x, y_soft=y), np.float64)
