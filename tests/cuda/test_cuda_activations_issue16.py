"""Issue 16's activations on CUDA arrays where the table-driven matrices do not reach:
gelu's default ``approximate='none'`` (the matrices use the entries' non-default
parameters: 'tanh'), forward and backward, and the parameter checks on device arrays."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning")

X = np.array([-np.inf, -12.0, -5.0, -1.0, -0.0, 0.0, 0.5, 3.0, 30.0, np.inf, np.nan])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_both_choices(approximate, dtype):
    x = X.astype(dtype)
    g = np.linspace(-2, 2, x.size).astype(dtype)
    _close(_h(nbops.gelu(_d(x), approximate)), nbops.gelu(x, approximate), dtype)
    _close(_h(nbops.gelu_backward(_d(g), _d(x), approximate=approximate)),
           nbops.gelu_backward(g, x, approximate=approximate), dtype)
    d = _d(x)
    assert nbops.nn.GELU(approximate)(d) is not d


def test_checks_on_device_arrays():
    d = _d(np.ones(3))
    with pytest.raises(ValueError, match="approximate"):
        nbops.gelu(d, "erf")
    with pytest.raises(ValueError, match="alpha cannot be 0"):
        nbops.celu(d, 0.0)
    with pytest.raises(ValueError, match="alpha cannot be 0"):
        nbops.celu_backward(d, d, 0.0)
    np.testing.assert_array_equal(_h(d), 1.0)
