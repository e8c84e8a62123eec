"""The backwards of the softmax family and of prelu on CUDA arrays against the CPU
path (which tests/test_backward_rows.py checks against torch.autograd): the CUDA
kernels built from the same row cores (block, warp and column kernels) and
prelu's derivative cores. Small arrays: the simulator runs each thread in Python."""

import numpy as np
import pytest

import nbops
from nbops._ops import table

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

ROW_OPS = [e.name for e in table.row_op_entries()]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ROW_OPS)
def test_row_backward(name, dtype):
    rng = np.random.default_rng(5)
    backward = getattr(nbops, f"{name}_backward")
    x = (rng.standard_normal((3, 5, 4)) * 2).astype(dtype)
    g = rng.uniform(-2, 2, x.shape).astype(dtype)
    for axis in (-1, 1, 0):  # warp rows, columns, columns
        y = getattr(nbops, name)(x, axis)
        want = backward(g, y, axis)
        got = backward(_d(g), _d(y), axis)
        _close(_h(got), want, dtype)
    out = _d(np.zeros_like(g))
    assert backward(_d(g), _d(y), dim=0, out=out) is out
    _close(_h(out), want, dtype)


def test_row_backward_block_rows_and_in_place():
    """Rows longer than a warp's share (the block-per-row kernel), and out= being
    grad_output itself."""
    from nbops.cuda import _kernels as K

    rng = np.random.default_rng(6)
    C = K.WARP_ROW_MAX + 3
    x = rng.standard_normal((2, C))
    g = rng.uniform(-1, 1, x.shape)
    for name in ("softmax", "log_softmax"):
        y = getattr(nbops, name)(x)
        want = getattr(nbops, f"{name}_backward")(g, y)
        dg = _d(g)
        assert getattr(nbops, f"{name}_backward")(dg, _d(y), out=dg) is dg
        _close(_h(dg), want, np.float64)


def test_row_backward_arguments():
    g = np.ones((3, 4))
    with pytest.raises(ValueError, match="grad_output.*output"):
        nbops.softmax_backward(_d(g), _d(np.ones((4, 3))))
    with pytest.raises(TypeError, match="output"):
        nbops.softmax_backward(_d(g), _d(g.astype(np.float32)))
    with pytest.raises(TypeError, match="output"):
        nbops.log_softmax_backward(_d(g), g)  # a host array: never copied implicitly
    with pytest.raises(ValueError, match="axis"):
        nbops.softmin_backward(_d(g), _d(g), axis=3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prelu_backward(dtype):
    rng = np.random.default_rng(7)
    for shape, C in (((4, 3, 5), 3), ((6, 4), 4), ((4, 3, 5), 1), ((9,), 1)):
        x = rng.standard_normal(shape).astype(dtype)
        x.flat[::5] = 0.0
        g = rng.uniform(-2, 2, shape).astype(dtype)
        w = rng.uniform(0.1, 0.5, C).astype(dtype)
        want_i, want_w = nbops.prelu_backward(g, x, w)
        gi, gw = nbops.prelu_backward(_d(g), _d(x), _d(w))
        np.testing.assert_array_equal(_h(gi), want_i)  # one product per element
        _close(_h(gw), want_w, dtype)
    oi, ow = _d(np.zeros_like(g)), _d(np.zeros_like(w))
    gi, gw = nbops.prelu_backward(_d(g), _d(x), _d(w), out=(oi, ow))
    assert gi is oi and gw is ow
    _close(_h(ow), want_w, dtype)


def test_prelu_backward_arguments():
    x = np.ones((2, 3, 4))
    with pytest.raises(ValueError, match="grad_output.*input"):
        nbops.prelu_backward(_d(x[0]), _d(x), _d(np.ones(3)))
    with pytest.raises(TypeError, match="weight"):
        nbops.prelu_backward(_d(x), _d(x), _d(np.ones(3, np.float32)))
    with pytest.raises(ValueError, match="weight"):
        nbops.prelu_backward(_d(x), _d(x), _d(np.ones(2)))
