"""batch_norm and pairwise_distance on device arrays: the CPU's per-channel rules
(finite shift, NaN offset), the shared argument plan, PyTorch's edge cases and
``out=``. Compared with the CPU path and with PyTorch (where installed)."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

from devarrays import assert_close as _close  # noqa: E402  (after the numba.cuda check)
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

RNG = np.random.default_rng(11)

# The simulator runs the kernels as Python threads, where NumPy warns about the
# IEEE results these tests are about (np.errstate does not reach those threads).
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

# channels: a NaN, an inf first value, a -inf, a constant one (var 0), an inf bias
X_SPECIAL = np.array([[1.0, np.nan, np.inf, 2.0, 1.0, -np.inf],
                      [2.0, 1.0, 1.0, 2.0, 5.0, 1.0],
                      [4.0, 3.0, 2.0, 2.0, np.inf, 1.0]])
RM = np.array([0.0, 1.0, np.inf, 0.0, 0.0, -np.inf])
RV = np.array([1.0, np.nan, 1.0, 0.0, -1.0, 1.0])
W = np.array([1.0, 1.0, 1.0, np.inf, 0.0, 1.0])
B = np.array([0.0, 0.0, 1.0, 0.0, np.inf, 0.0])


def _batch_norm_both(x, rm, rv, w, b, training, **kw):
    """(device result, device rm, device rv), (CPU result, CPU rm, CPU rv)."""
    drm, drv = _d(rm), _d(rv)
    with np.errstate(all="ignore"):
        got = nbops.batch_norm(_d(x), drm, drv, _d(w), _d(b), training=training, **kw)
        rm, rv = rm.copy(), rv.copy()
        want = nbops.batch_norm(x, rm, rv, w, b, training=training, **kw)
    return (_h(got), _h(drm), _h(drv)), (want, rm, rv)


@pytest.mark.parametrize("training", [False, True])
def test_batch_norm_nan_inf_as_cpu_and_torch(training):
    """The NaN-offset rule (eval: var 0 with an inf weight makes 0 * inf in
    ``bias - mean * scale``: the channel is NaN) and the finite shift (training:
    an inf first value gives an inf mean, not NaN): the CUDA path lacked both."""
    (got, grm, grv), (want, rm, rv) = _batch_norm_both(X_SPECIAL, RM, RV, W, B, training)
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(grm, rm, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(grv, rv, rtol=1e-12, equal_nan=True)
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    t_rm, t_rv = torch.from_numpy(RM.copy()), torch.from_numpy(RV.copy())
    exp = F.batch_norm(torch.from_numpy(X_SPECIAL), t_rm, t_rv, torch.from_numpy(W),
                       torch.from_numpy(B), training=training).numpy()
    np.testing.assert_allclose(got, exp, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(grm, t_rm.numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(grv, t_rv.numpy(), rtol=1e-12, equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_batch_norm_huge_offset_and_inf_first_value(dtype):
    """float32 channels around 1e6 with a spread of 1 keep their variance (shifted
    sums), and an inf first value gives an inf running mean as on the CPU."""
    x = (RNG.standard_normal((16, 3, 4))).astype(dtype)
    x[:, 0] += dtype(1e6)
    x[:, 1] -= dtype(3e7)
    x[0, 2, 0] = np.inf
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
    (got, grm, grv), (want, rm, rv) = _batch_norm_both(x, rm, rv, np.ones(3, dtype),
                                                       np.zeros(3, dtype), True)
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(got, want, equal_nan=True, **tol)
    np.testing.assert_allclose(grm, rm, equal_nan=True, **tol)
    np.testing.assert_allclose(grv, rv, equal_nan=True, **tol)
    assert grm[2] == np.inf and np.isnan(grv[2])
    ref_var = x[:, :2].astype(np.float64).var(axis=(0, 2)) * 64 / 63
    np.testing.assert_allclose(grv[:2], 0.9 + 0.1 * ref_var, rtol=1e-4)


@pytest.mark.parametrize("training", [False, True])
def test_batch_norm_1d_empty(training):
    x = _d(np.zeros(0, np.float32))
    y = nbops.batch_norm(x, _d(np.zeros(0, np.float32)), _d(np.ones(0, np.float32)),
                         training=training)
    assert _h(y).shape == (0,) and _h(y).dtype == np.float32
    with pytest.raises(ValueError, match="2 dimensions"):
        nbops.batch_norm(_d(np.zeros(3)), _d(np.zeros(3)), _d(np.ones(3)))


@pytest.mark.parametrize("kw, exc, match", [
    (dict(training=True, momentum=None), TypeError, "momentum"),
    (dict(training=True, eps=0.0), ValueError, "eps"),
    (dict(training=False, eps=-1.0), ValueError, "eps"),
    (dict(training=True, weight=np.ones(4)), ValueError, "weight"),
])
def test_batch_norm_same_errors_as_cpu(kw, exc, match):
    x = RNG.standard_normal((4, 3))
    kw_d = {k: (_d(v) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    with pytest.raises(exc, match=match) as cpu:
        nbops.batch_norm(x, np.zeros(3), np.ones(3), **kw)
    with pytest.raises(exc, match=match) as dev:
        nbops.batch_norm(_d(x), _d(np.zeros(3)), _d(np.ones(3)), **kw_d)
    assert str(dev.value) == str(cpu.value)


@pytest.mark.parametrize("p", [2.0, 1.0, 0.0, 3.0, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pairwise_distance_out(p, dtype):
    a = RNG.standard_normal((5, 7)).astype(dtype)
    b = RNG.standard_normal((5, 7)).astype(dtype)
    for keepdim in (False, True):
        want = nbops.pairwise_distance(a, b, p=p, keepdim=keepdim)
        out = cuda.device_array(want.shape, dtype)
        r = nbops.pairwise_distance(_d(a), _d(b), p=p, keepdim=keepdim, out=out)
        assert r is out
        _close(_h(out), want, dtype)


def test_pairwise_distance_1d_shapes_as_cpu():
    a, b = RNG.standard_normal(6), RNG.standard_normal(6)
    for keepdim in (False, True):
        want = nbops.pairwise_distance(a, b, keepdim=keepdim)
        got = _h(nbops.pairwise_distance(_d(a), _d(b), keepdim=keepdim))
        _close(got, want, np.float64)
        out = cuda.device_array(want.shape)
        nbops.pairwise_distance(_d(a), _d(b), keepdim=keepdim, out=out)
        _close(_h(out), want, np.float64)


@pytest.mark.parametrize("out, exc, match", [
    (lambda: cuda.device_array(3), ValueError, "out has shape"),
    (lambda: cuda.device_array((4, 1)), ValueError, "out has shape"),
    (lambda: cuda.device_array(4, np.float32), TypeError, "out has dtype"),
    (lambda: np.empty(4), TypeError, "out"),
])
def test_pairwise_distance_out_errors(out, exc, match):
    a, b = _d(RNG.standard_normal((4, 5))), _d(RNG.standard_normal((4, 5)))
    with pytest.raises(exc, match=match):
        nbops.pairwise_distance(a, b, out=out())


def test_pairwise_distance_nan_inf_as_cpu():
    a = np.array([[np.nan, 1.0, 0.0], [np.inf, 1.0, 0.0], [np.inf, 0.0, 0.0], [1.0, 1.0, 1.0]])
    b = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [np.inf, 0.0, 0.0], [1.0, 1.0, 1.0]])
    for p in [0.0, 1.0, 2.0, 0.5, 3.0, np.inf, -np.inf, -1.5]:
        with np.errstate(all="ignore"):
            want = nbops.pairwise_distance(a, b, p=p, eps=0.0)
            got = _h(nbops.pairwise_distance(_d(a), _d(b), p=p, eps=0.0))
        np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True, err_msg=f"p={p}")
