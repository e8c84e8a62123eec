"""``nbops.linear_backward`` on CUDA arrays against the CPU path (which
tests/test_backward_linear.py checks against float64 formulas and torch)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import is_device  # noqa: E402
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_backward(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 6)).astype(dtype)
    w = rng.standard_normal((5, 6)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    g = rng.standard_normal((2, 3, 5)).astype(dtype)
    want = nbops.linear_backward(g, x, w, b)
    got = nbops.linear_backward(_d(g), _d(x), _d(w), _d(b))
    for a, e in zip(got, want, strict=True):
        assert is_device(a)
        _close(_h(a), e, dtype)
    gi, gw, gb = nbops.linear_backward(_d(g), _d(x), _d(w))
    assert gb is None
    _close(_h(gw), want[1], dtype)


def test_linear_backward_bad_arguments():
    x, w, g = (_d(np.ones(s, np.float32)) for s in ((3, 4), (2, 4), (3, 2)))
    with pytest.raises(ValueError, match="grad_output"):
        nbops.linear_backward(_d(np.ones((3, 3), np.float32)), x, w)
    with pytest.raises(TypeError, match="input"):
        nbops.linear_backward(g, _d(np.ones((3, 4))), w)
    with pytest.raises(ValueError, match="bias"):
        nbops.linear_backward(g, x, w, _d(np.ones(3, np.float32)))
