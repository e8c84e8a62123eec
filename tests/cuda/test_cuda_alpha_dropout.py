"""alpha_dropout, feature_alpha_dropout, dropout1d and their backwards on CUDA arrays:
the same seed gives the CPU path's result bit for bit (the same keep decisions, the
same rounding), and the keep decisions are the documented scheme's (pure Python)."""

import warnings

import numpy as np
import pytest

import nbops
from nbops.scalar import random as R

cuda = pytest.importorskip("numba.cuda")

from devarrays import to_device as _d  # noqa: E402  (after the numba.cuda check)
from devarrays import to_host as _h  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

RNG = np.random.default_rng(12)
DTYPES = [np.float32, np.float64]


def _same(got, want):
    want = np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def _ref_keep(n, p, seed):
    """The documented keep decisions of mask elements 0..n-1, in pure Python ints."""
    k = R.splitmix64_int(seed)
    key = (k & 0xFFFFFFFF, k >> 32)
    t = R.drop_threshold(p)
    out = []
    for i in range(n):
        j = i // 4
        out.append(R.philox4x32_10_int((j & 0xFFFFFFFF, j >> 32, 0, 0), key)[i % 4] >= t)
    return np.array(out, dtype=bool)


def _data(shape, dtype):
    return (RNG.standard_normal(shape) * 3).astype(dtype)


CASES = [("alpha_dropout", (37,)), ("alpha_dropout", (3, 5, 7)), ("alpha_dropout", ()),
         ("feature_alpha_dropout", (2, 3, 4, 2)),   # one (multiplier, shift) per channel
         ("feature_alpha_dropout", (4, 6)),         # 2-D: one decision per element
         ("dropout1d", (2, 3, 5)), ("dropout1d", (4, 6))]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,shape", CASES)
def test_same_as_cpu_and_the_documented_mask(name, shape, dtype):
    x = _data(shape, dtype)
    fn = getattr(nbops, name)
    seed = int(RNG.integers(1 << 63)) * 2 + 1
    got = _h(fn(_d(x), 0.4, True, rng=seed))
    want = fn(x, 0.4, True, rng=seed)
    _same(got, want)
    # the keep decisions: the documented scheme's, per element or per channel
    if name == "alpha_dropout":
        mshape = shape
    elif name == "dropout1d" and len(shape) == 2:
        mshape = (shape[0], 1)
    else:
        mshape = shape[:2] + (1,) * (len(shape) - 2)
    keep = _ref_keep(int(np.prod(mshape)), 0.4, seed).reshape(mshape)
    _same(keep, nbops.dropout_mask(mshape, 0.4, rng=seed, dtype=bool))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,shape", [("alpha_dropout", (3, 5, 7)),
                                        ("feature_alpha_dropout", (2, 3, 4, 2)),
                                        ("dropout1d", (2, 3, 5))])
def test_backward_same_as_cpu(name, shape, dtype):
    g = _data(shape, dtype)
    backward = getattr(nbops, f"{name}_backward")
    _same(_h(backward(_d(g), 0.3, True, rng=21)), backward(g, 0.3, True, rng=21))
    res = backward(_d(g), 0.3, False, rng=0)  # a copy, as autograd's gradient
    _same(_h(res), g)
    out = cuda.device_array(shape, dtype)
    assert backward(_d(g), 0.3, True, rng=3, out=out) is out
    _same(_h(out), backward(g, 0.3, True, rng=3))
    with pytest.raises(TypeError, match="rng"):
        backward(_d(g), 0.3, True, rng=None)


def test_nan_inf_p_one_and_identity():
    x = np.array([np.nan, np.inf, -np.inf, 1.0, -0.0, 2.5, np.nan, 3.0, -np.inf],
                 np.float32)
    for p in (0.5, 1.0):
        _same(_h(nbops.alpha_dropout(_d(x), p, True, rng=3)),
              nbops.alpha_dropout(x, p, True, rng=3))
    d = _d(x.reshape(3, 3))
    for fn in (nbops.alpha_dropout, nbops.feature_alpha_dropout, nbops.dropout1d):
        assert fn(d, 0.5, False) is d
        assert fn(d, 0.0, True) is d
    assert nbops.alpha_dropout(d) is d  # training=False by default, as PyTorch


@pytest.mark.parametrize("name", ["alpha_dropout", "feature_alpha_dropout", "dropout1d"])
def test_inplace_and_out(name):
    x = _data((2, 3, 5, 2) if name != "dropout1d" else (2, 3, 5), np.float32)
    fn = getattr(nbops, name)
    want = fn(x, 0.5, True, rng=21)
    d = _d(x)
    assert fn(d, 0.5, True, True, rng=21) is d
    _same(_h(d), want)
    d = _d(x)
    out = cuda.device_array(x.shape, np.float32)
    assert fn(d, 0.5, True, rng=21, out=out) is out
    _same(_h(out), want)
    _same(_h(d), x)


def test_bad_arguments_raise_before_any_kernel():
    g = np.random.default_rng(8)
    state = g.bit_generator.state
    with pytest.raises(ValueError, match="2D or 3D"):
        nbops.dropout1d(_d(np.ones((2, 3, 4, 5))), 0.5, training=False)
    with pytest.raises(ValueError, match="2 dimensions"):
        nbops.feature_alpha_dropout(_d(np.ones(5)), 0.5, True, rng=g)
    with pytest.raises(ValueError, match="p"):
        nbops.alpha_dropout(_d(np.ones(5)), 1.5, True, rng=g)
    with pytest.raises(TypeError, match="float32 or float64"):
        nbops.alpha_dropout(_d(np.arange(6)), 0.5, True, rng=g)
    with pytest.raises(ValueError, match="2D or 3D"):
        nbops.dropout1d_backward(_d(np.ones(5)), 0.5, rng=0)
    assert g.bit_generator.state == state


def test_modules_on_device_arrays():
    x = _data((2, 3, 4), np.float32)
    g = _data((2, 3, 4), np.float32)
    for mod, fn in ((nbops.nn.AlphaDropout(0.3, rng=5), nbops.alpha_dropout),
                    (nbops.nn.FeatureAlphaDropout(0.3, rng=5), nbops.feature_alpha_dropout),
                    (nbops.nn.Dropout1d(0.3, rng=5), nbops.dropout1d)):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            got = mod(_d(x))
        seed = int(np.random.default_rng(5).integers(2**64, dtype=np.uint64))
        _same(_h(got), fn(x, 0.3, True, rng=seed))
        back = getattr(nbops, fn.__name__ + "_backward")
        _same(_h(mod.backward(_d(g))), back(g, 0.3, True, rng=seed))


@pytest.mark.gpu
def test_large_alpha_dropout_on_hardware():
    """Millions of elements on a GPU: the CPU's results bit for bit (mul.rn: no FMA)."""
    x = RNG.standard_normal(3_000_001).astype(np.float32)
    _same(_h(nbops.alpha_dropout(_d(x), 0.3, True, rng=2**64 - 1)),
          nbops.alpha_dropout(x, 0.3, True, rng=2**64 - 1))
    x4 = RNG.standard_normal((64, 96, 8, 8))
    _same(_h(nbops.feature_alpha_dropout(_d(x4), 0.5, True, rng=9)),
          nbops.feature_alpha_dropout(x4, 0.5, True, rng=9))
