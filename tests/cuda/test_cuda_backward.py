"""The elementwise backwards (``nbops.<op>_backward``) on CUDA arrays against the
CPU path (which tests/test_backward.py checks against torch.autograd): the CUDA
2-input map kernels built from the same derivative cores."""

import numpy as np
import pytest

import nbops
from nbops._ops import table

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning",
                                        "ignore:overflow encountered:RuntimeWarning")

ENTRIES = table.backward_entries()
SPECIAL = np.array([-np.inf, -30.0, -3.0, -1.0, -0.5, -0.0, 0.0, 0.5, 1.0, 2.0, 3.0, 6.0,
                    30.0, np.inf, np.nan])


def _params(entry):
    """The entry's non-default parameter set (the required ones included)."""
    kw = entry.example_params()
    return tuple(kw.get(p.name, p.default) for p in entry.params)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
def test_backward(entry, dtype):
    rng = np.random.default_rng(3)
    params = _params(entry)
    x = np.concatenate([SPECIAL, rng.standard_normal(25) * 4]).astype(dtype).reshape(5, 8)
    g = rng.uniform(-2, 2, x.shape).astype(dtype)
    r = x if entry.residual == "input" else getattr(nbops, entry.name)(x, *params)
    backward = getattr(nbops, f"{entry.name}_backward")
    want = backward(g, r, *params)
    got = backward(_d(g), _d(r), *params)
    _close(_h(got), want, dtype)
    out = _d(np.zeros_like(g))
    assert backward(_d(g), _d(r), *params, out=out) is out
    _close(_h(out), want, dtype)


def test_backward_arguments():
    g = np.ones((3, 4))
    with pytest.raises(ValueError, match="grad_output.*output"):
        nbops.relu_backward(_d(g), _d(np.ones((4, 3))))
    with pytest.raises(TypeError, match="input"):
        nbops.softplus_backward(_d(g), g)  # a host residual: never copied implicitly
    with pytest.raises(TypeError, match="input"):
        nbops.softplus_backward(_d(g), _d(g.astype(np.float32)))
    with pytest.raises(ValueError, match="min_val"):
        nbops.hardtanh_backward(_d(g), _d(g), 2.0, 1.0)
    fortran = np.asfortranarray(np.arange(12.0).reshape(3, 4))  # F-ordered: kept
    want = nbops.elu_backward(np.ones((3, 4)), fortran)
    np.testing.assert_array_equal(
        _h(nbops.elu_backward(cuda.to_device(np.ones((3, 4), order="F")),
                              cuda.to_device(fortran))), want)
