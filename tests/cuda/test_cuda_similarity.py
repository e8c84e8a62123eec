"""cosine_similarity, normalize, pdist, cdist and their backwards on device arrays,
against the CPU path (small sizes: the simulator is slow)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

RNG = np.random.default_rng(7)
DIRECT = "donot_use_mm_for_euclid_dist"


def _data(shape, dtype):
    return RNG.standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cosine_similarity_and_normalize_as_cpu(dtype):
    x1, x2 = _data((3, 5, 4), dtype), _data((3, 5, 4), dtype)
    x1[0, :, 1] = 0
    g = _data((3, 4), dtype)
    _close(_h(nbops.cosine_similarity(_d(x1), _d(x2))), nbops.cosine_similarity(x1, x2), dtype)
    got = nbops.cosine_similarity_backward(_d(g), _d(x1), _d(x2))
    want = nbops.cosine_similarity_backward(g, x1, x2)
    for u, v in zip(got, want, strict=True):
        _close(_h(u), v, dtype)
    gx = _data(x1.shape, dtype)
    for p, axis in ((2.0, 1), (1.5, -1), (np.inf, 0)):
        _close(_h(nbops.normalize(_d(x1), p, axis)), nbops.normalize(x1, p, axis), dtype)
        _close(_h(nbops.normalize_backward(_d(gx), _d(x1), p, axis)),
               nbops.normalize_backward(gx, x1, p, axis), dtype)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0, np.inf])
def test_cdist_and_pdist_as_cpu(p):
    dtype = np.float64
    a, b = _data((2, 4, 3), dtype), _data((2, 5, 3), dtype)
    b[1, 2] = a[1, 0]
    g = _data((2, 4, 5), dtype)
    d = nbops.cdist(_d(a), _d(b), p)
    _close(_h(d), nbops.cdist(a, b, p, DIRECT), dtype)
    got = nbops.cdist_backward(_d(g), _d(a), _d(b), p)
    want = nbops.cdist_backward(g, a, b, p, DIRECT)
    for u, v in zip(got, want, strict=True):
        _close(_h(u), v, dtype)
    got = nbops.cdist_backward(_d(g), _d(a), _d(b), p, output=d)
    _close(_h(got[0]), want[0], dtype)
    x = _data((6, 3), dtype)
    x[4] = x[1]
    gp = _data((15,), dtype)
    _close(_h(nbops.pdist(_d(x), p)), nbops.pdist(x, p), dtype)
    _close(_h(nbops.pdist_backward(_d(gp), _d(x), p)), nbops.pdist_backward(gp, x, p), dtype)


def test_bad_device_arguments():
    a = _d(np.ones((2, 3)))
    with pytest.raises(ValueError, match="same shape"):
        nbops.cosine_similarity(a, _d(np.ones((1, 3))))
    with pytest.raises(TypeError, match="device"):
        nbops.cosine_similarity(a, np.ones((2, 3)))
    with pytest.raises(ValueError, match="grad_output"):
        nbops.normalize_backward(_d(np.ones((2, 2))), a)
    with pytest.raises(ValueError, match="compute_mode"):
        nbops.cdist(a, a, compute_mode="x")
    with pytest.raises(ValueError, match="2-D"):
        nbops.pdist(_d(np.ones(3)))
