"""Dropout on CUDA arrays: the same seed gives the bit-identical mask and result as
the CPU path (nbops' own CPU kernels on host arrays) and as the documented scheme
computed in pure Python (Philox4x32-10 and SplitMix64 on Python ints)."""

import warnings

import numpy as np
import pytest

import nbops
from nbops.scalar import random as R

cuda = pytest.importorskip("numba.cuda")

from devarrays import to_device as _d  # noqa: E402  (after the numba.cuda check)
from devarrays import to_host as _h  # noqa: E402

# NaN and inf inputs (the simulator runs the kernels with NumPy scalars)
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")

RNG = np.random.default_rng(11)
DTYPES = [np.float32, np.float64]


def _same(got, want):
    """Bit for bit: same dtype, shape and values (NaN where NaN)."""
    want = np.asarray(want)
    assert got.dtype == want.dtype
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def _ref_keep(n, p, seed):
    """The documented keep decisions of mask elements 0..n-1, in pure Python ints."""
    k = R.splitmix64_int(seed)
    key = (k & 0xFFFFFFFF, k >> 32)
    t = R.drop_threshold(p)
    keep = []
    for i in range(n):
        j = i // 4
        r = R.philox4x32_10_int((j & 0xFFFFFFFF, j >> 32, 0, 0), key)
        keep.append(r[i % 4] >= t)
    return np.array(keep, dtype=bool)


def _ref_dropout(x, p, seed, channels_shape=None):
    """x * mask in float64 NumPy, mask from :func:`_ref_keep` (per element or per channel)."""
    scale = np.float64(x.dtype.type(1.0 / (1.0 - p)))  # PyTorch's rounding of 1 / (1 - p)
    if channels_shape is None:
        m = np.where(_ref_keep(x.size, p, seed), scale, 0.0).reshape(x.shape)
    else:
        m = np.where(_ref_keep(int(np.prod(channels_shape)), p, seed), scale, 0.0)
        m = m.reshape(channels_shape)
    return (x.astype(np.float64) * m).astype(x.dtype)


def _data(shape, dtype):
    return (RNG.standard_normal(shape) * 3).astype(dtype)


# ------------------------------------------------------------------ the Philox core on the device
def test_device_core_known_answer_vectors():
    """The core as the dropout kernels compile it (nbops.cuda._kernels._philox)."""
    from nbops.cuda import _kernels as K

    @cuda.jit
    def kat(c, k, out):
        i = cuda.grid(1)
        if i < c.shape[0]:
            r0, r1, r2, r3 = K._philox(c[i, 0], c[i, 1], c[i, 2], c[i, 3], k[i, 0], k[i, 1])
            out[i, 0] = r0
            out[i, 1] = r1
            out[i, 2] = r2
            out[i, 3] = r3

    vectors = [  # Random123 kat_vectors, philox4x32 10 rounds
        ((0, 0, 0, 0), (0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
        ((0xffffffff,) * 4, (0xffffffff,) * 2, (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
        ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
         (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
    ]
    c = np.array([v[0] for v in vectors], np.uint32)
    k = np.array([v[1] for v in vectors], np.uint32)
    out = cuda.device_array((len(vectors), 4), np.uint32)
    kat[1, 4](_d(c), _d(k), out)
    assert [tuple(int(v) for v in row) for row in out.copy_to_host()] == [v[2] for v in vectors]


# ------------------------------------------------------------------ elementwise dropout
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(37,), (3, 5, 7), (), (2, 4), (1,)])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.9])
def test_dropout_same_as_cpu_and_reference(shape, p, dtype):
    x = _data(shape, dtype)
    seed = int(RNG.integers(1 << 63)) * 2 + 1  # a full 64-bit seed
    got = nbops.dropout(_d(x), p, rng=seed)
    _same(_h(got), nbops.dropout(x, p, rng=seed))
    _same(_h(got), _ref_dropout(x, p, seed))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_is_input_times_mask(dtype):
    x = _data((6, 7), dtype)
    d = _d(x)
    y = _h(nbops.dropout(d, 0.4, rng=77))
    m = _h(nbops.cuda.dropout_mask(x.shape, 0.4, rng=77, dtype=dtype))
    _same(y, x * m)
    assert 0 < (m == 0).sum() < m.size


def test_dropout_nan_inf_and_p_one():
    x = np.array([np.nan, np.inf, -np.inf, 1.0, -0.0, 2.5, np.nan, 3.0, -np.inf], np.float32)
    for p in (0.5, 1.0):
        _same(_h(nbops.dropout(_d(x), p, rng=3)), nbops.dropout(x, p, rng=3))
    z = _h(nbops.dropout(_d(x), 1.0))
    assert np.isnan(z[[0, 1, 2, 6, 8]]).all() and (z[[3, 4, 5, 7]] == 0).all()


def test_identity_returns_the_input_itself():
    x = _data((3, 4, 2), np.float32)
    d = _d(x)
    for kw in ({"training": False}, {"p": 0.0}, {"training": False, "inplace": True}):
        assert nbops.dropout(d, **kw) is d
        with pytest.warns(UserWarning, match="3D input"):
            assert nbops.dropout2d(d, **kw) is d
    e = _d(np.zeros((0, 3), np.float64))
    assert nbops.dropout(e, 0.5) is e
    out = cuda.device_array(x.shape, np.float32)
    assert nbops.dropout(d, 0.5, training=False, out=out) is out
    _same(_h(out), x)
    _same(_h(d), x)


@pytest.mark.parametrize("fn", ["dropout", "dropout2d"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_inplace_and_out(fn, dtype):
    x = _data((2, 3, 5, 2), dtype)
    f = getattr(nbops, fn)
    want = f(x, 0.5, rng=21)
    d = _d(x)
    assert f(d, 0.5, inplace=True, rng=21) is d
    _same(_h(d), want)
    d = _d(x)
    out = cuda.device_array(x.shape, dtype)
    assert f(d, 0.5, rng=21, out=out) is out
    _same(_h(out), want)
    _same(_h(d), x)  # the input is untouched
    out = cuda.device_array(x.shape, dtype)
    assert f(d, 1.0, out=out) is out
    _same(_h(out), f(x, 1.0))


def test_generator_draws_like_the_cpu_path():
    x = _data((4, 9), np.float64)
    g_dev, g_cpu = np.random.default_rng(5), np.random.default_rng(5)
    for _ in range(3):  # successive calls differ, and stay in step with the CPU path
        _same(_h(nbops.dropout(_d(x), 0.3, rng=g_dev)), nbops.dropout(x, 0.3, rng=g_cpu))
    assert g_dev.integers(1 << 62) == g_cpu.integers(1 << 62)
    # calls that draw nothing do not advance it
    state = g_dev.bit_generator.state
    nbops.dropout(_d(x), 0.3, training=False, rng=g_dev)
    nbops.dropout(_d(x), 1.0, rng=g_dev)
    assert g_dev.bit_generator.state == state


# ------------------------------------------------------------------ channel-wise dropout
def _record(fn, *args, **kw):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        r = fn(*args, **kw)
    return r, [(type(v.message), str(v.message)) for v in w]


CHANNEL_CASES = [
    ("dropout2d", (2, 3, 4, 2)),       # (N, C, H, W)
    ("dropout2d", (2, 5, 6)),          # 3-D: (N, C, L), with PyTorch's warning
    ("dropout2d", (4, 6)),             # deprecated rank: channels are the elements
    ("dropout2d", (2, 3, 2, 1, 2)),    # deprecated rank 5
    ("dropout3d", (2, 3, 2, 2, 3)),    # (N, C, D, H, W)
    ("dropout3d", (3, 2, 2, 3)),       # unbatched (C, D, H, W)
    ("dropout3d", (5, 4)),             # deprecated rank: channels along axis 0
    ("dropout3d", (9,)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,shape", CHANNEL_CASES)
def test_channel_dropout_same_as_cpu_and_reference(name, shape, dtype):
    x = _data(shape, dtype)
    f = getattr(nbops, name)
    seed = 1234567 + len(shape)
    got, w_dev = _record(f, _d(x), 0.5, rng=seed)
    want, w_cpu = _record(f, x, 0.5, rng=seed)
    _same(_h(got), want)
    assert w_dev == w_cpu  # the same warnings
    lead = (1,) if (name == "dropout3d" and len(shape) != 5) else ()
    view = lead + shape
    cshape = shape[:2 - len(lead)] + (1,) * (len(view) - 2)
    _same(_h(got), _ref_dropout(x, 0.5, seed, cshape))


def test_channel_dropout_warning_points_at_the_caller():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        nbops.dropout2d(_d(np.ones((2, 3, 4))), 0.5, rng=1)
    assert w and all(v.filename == __file__ for v in w)


# ------------------------------------------------------------------ dropout_mask on the device
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.bool_])
@pytest.mark.parametrize("shape", [(13,), (3, 4, 5), ()])
def test_dropout_mask_same_as_cpu(shape, dtype):
    got = _h(nbops.cuda.dropout_mask(shape, 0.35, rng=99, dtype=dtype))
    _same(got, nbops.dropout_mask(shape, 0.35, rng=99, dtype=dtype))
    keep = _ref_keep(int(np.prod(shape)), 0.35, 99).reshape(shape)
    _same(got != 0, keep)


def test_dropout_mask_edges():
    _same(_h(nbops.cuda.dropout_mask((2, 3), 0.0)), np.ones((2, 3), np.float32))
    _same(_h(nbops.cuda.dropout_mask((2, 3), 0.0, dtype=bool)), np.ones((2, 3), bool))
    # p == 1: zeros, as the CPU path
    _same(_h(nbops.cuda.dropout_mask(5, 1.0, dtype=np.float64)), np.zeros(5))
    _same(_h(nbops.cuda.dropout_mask(5, 1.0, dtype=bool)), np.zeros(5, bool))
    _same(nbops.dropout_mask(5, 1.0, dtype=np.float64), np.zeros(5))
    assert nbops.cuda.dropout_mask((0, 4), 0.5).shape == (0, 4)
    g = np.random.default_rng(4)
    state = g.bit_generator.state
    nbops.cuda.dropout_mask(4, 0.0, rng=g)
    assert g.bit_generator.state == state
    _same(_h(nbops.cuda.dropout_mask(7, 0.5, rng=g)),
          nbops.dropout_mask(7, 0.5, rng=np.random.default_rng(4)))


# ------------------------------------------------------------------ bad input
def test_bad_arguments_raise_before_any_kernel():
    x = _data((2, 3, 4), np.float32)
    d = _d(x)
    for p in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="p"):
            nbops.dropout(d, p)
        with pytest.raises(ValueError, match="p"):
            nbops.dropout2d(d, p)
    with pytest.raises(TypeError, match="out"):
        nbops.dropout(d, 0.5, out=np.empty_like(x))  # a host out for a device input
    with pytest.raises(TypeError, match="out"):
        nbops.dropout(x, 0.5, out=cuda.device_array(x.shape, np.float32))
    with pytest.raises(ValueError, match="out"):
        nbops.dropout(d, 0.5, out=cuda.device_array((2, 3), np.float32))
    with pytest.raises(TypeError, match="out"):
        nbops.dropout(d, 0.5, out=cuda.device_array(x.shape, np.float64))
    with pytest.raises(ValueError, match="inplace"):
        nbops.dropout(d, 0.5, inplace=True, out=cuda.device_array(x.shape, np.float32))
    with pytest.raises(TypeError, match="float32 or float64"):
        nbops.dropout(_d(np.arange(6)), 0.5)
    with pytest.raises(TypeError, match="rng"):
        nbops.dropout(d, 0.5, rng="seed")
    with pytest.raises(ValueError, match="rng"):
        nbops.dropout(d, 0.5, rng=-1)
    with pytest.raises(ValueError, match="C-contiguous"):
        nbops.dropout(cuda.to_device(np.asfortranarray(_data((3, 4), np.float32))), 0.5)
    with pytest.raises(TypeError, match="dtype"):
        nbops.cuda.dropout_mask(3, 0.5, dtype=np.float16)
    with pytest.raises(ValueError, match="shape"):
        nbops.cuda.dropout_mask((2, -1), 0.5)
    _same(_h(d), x)  # nothing the caller passed was modified


def test_feature_dropout_rank_error_does_not_advance_the_generator():
    g = np.random.default_rng(8)
    state = g.bit_generator.state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="input"):
            nbops.dropout2d(_d(np.ones(5)), 0.5, rng=g)
        with pytest.raises(ValueError, match="input"):
            nbops.dropout3d(_d(np.float64(1.0)), 0.5, rng=g)
    assert g.bit_generator.state == state


def test_layer_objects_on_device_arrays():
    x = _data((2, 3, 4, 4), np.float32)
    for mod, fn in ((nbops.nn.Dropout(0.3, rng=5), nbops.dropout),
                    (nbops.nn.Dropout2d(0.3, rng=5), nbops.dropout2d)):
        got = mod(_d(x))
        _same(_h(got), fn(x, 0.3, rng=np.random.default_rng(5)))  # the module's Generator


# ------------------------------------------------------------------ real GPU
@pytest.mark.gpu
def test_large_dropout_on_hardware():
    """Millions of elements (many grid-stride rounds): still the CPU's masks, bit for bit."""
    x = RNG.standard_normal(3_000_001).astype(np.float32)
    _same(_h(nbops.dropout(_d(x), 0.3, rng=2**64 - 1)), nbops.dropout(x, 0.3, rng=2**64 - 1))
    x4 = RNG.standard_normal((64, 96, 8, 8))
    _same(_h(nbops.dropout2d(_d(x4), 0.5, rng=9)), nbops.dropout2d(x4, 0.5, rng=9))
    _same(_h(nbops.cuda.dropout_mask(1_000_003, 0.7, rng=4, dtype=bool)),
          nbops.dropout_mask(1_000_003, 0.7, rng=4, dtype=bool))
