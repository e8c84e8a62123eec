"""The softmax family on dask arrays whose rows are split across chunks (the
kernels of nbops/_ops/split_rows.py: per-piece max and sum of exponentials,
merged, then a blockwise write), group_norm / instance_norm with split groups
(row_moments' statistics, then the finish kernel), and ``out=`` for a dask
input (each chunk's result written into the caller's array).

Oracles: nbops' in-memory result and a float64 NumPy formula written here; the
same chunking must give the same bits on 1 and 2 dask workers.
"""

import numpy as np
import pytest

import nbops

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

RNG = np.random.default_rng(1818)
X2 = (RNG.standard_normal((6, 37)) * 3).astype(np.float32)
X3 = (RNG.standard_normal((3, 11, 4)) * 3).astype(np.float32)

# single-element chunks, rows in pieces of 1, 5 and 13 values (uneven), one chunk
CHUNKS_2D = [(1, 1), (2, 5), ((4, 2), (13, 13, 11)), (6, 37)]
CHUNKS_3D = [(1, 1, 1), (2, 4, 3), ((1, 2), (5, 6), (4,))]
NAMES = ["softmax", "log_softmax", "softmin"]


def reference(x, name, axis):
    """The op in float64 NumPy."""
    v = x.astype(np.float64)
    if name == "softmin":
        v = -v
    m = np.max(v, axis=axis, keepdims=True)
    logp = (v - m) - np.log(np.sum(np.exp(v - m), axis=axis, keepdims=True))
    return logp if name == "log_softmax" else np.exp(logp)


def tolerance(dtype):
    return dict(rtol=2e-6, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_split_rows_match_in_memory(name, dtype):
    fn = getattr(nbops, name)
    for x, chunkings, axes in ((X2, CHUNKS_2D, (1, 0)), (X3, CHUNKS_3D, (-1, 1))):
        x = x.astype(dtype)
        for chunks in chunkings:
            d = da.from_array(x, chunks=chunks)
            for axis in axes:
                got = fn(d, axis=axis)
                assert isinstance(got, da.Array)
                got = got.compute()
                assert got.dtype == dtype
                np.testing.assert_allclose(got, fn(x, axis=axis), **tolerance(dtype))
                np.testing.assert_allclose(got, reference(x, name, axis), **tolerance(dtype))


@pytest.mark.parametrize("name", NAMES)
def test_dtype_argument_and_float16(name):
    fn = getattr(nbops, name)
    d = da.from_array(X2, chunks=(2, 5))
    got = fn(d, axis=1, dtype=np.float64).compute()
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, fn(X2, axis=1, dtype=np.float64), rtol=1e-13, atol=1e-13)
    h = X2.astype(np.float16)
    got = fn(da.from_array(h, chunks=(3, 13)), axis=1).compute()
    expected = fn(h, axis=1)
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got.astype(np.float64), expected, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize("name", NAMES)
def test_special_values(name):
    """-inf in one piece of a row (probability 0 there), rows all -inf, holding +inf,
    holding NaN: the in-memory results (PyTorch's), NaN where it has NaN."""
    fn = getattr(nbops, name)
    x = X2.copy()
    x[0, :13] = -np.inf  # a whole piece of -inf beside finite pieces
    x[1, 5] = -np.inf
    x[2, :] = -np.inf
    x[3, 20] = np.inf
    x[4, 30] = np.nan
    if name == "softmin":
        x = -x  # softmin's -inf are the input's +inf
        x[3, 20] = -x[3, 20]
    expected = fn(x, axis=1)
    for chunks in CHUNKS_2D:
        got = fn(da.from_array(x, chunks=chunks), axis=1).compute()
        np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-6, equal_nan=True)


@pytest.mark.parametrize("name", NAMES)
def test_same_bits_on_one_and_two_workers(name):
    fn = getattr(nbops, name)
    for chunks in ((1, 1), (2, 5), ((4, 2), (13, 13, 11))):
        d = fn(da.from_array(X2, chunks=chunks), axis=1)
        one = d.compute(scheduler="threads", num_workers=1)
        two = d.compute(scheduler="threads", num_workers=2)
        sync = d.compute(scheduler="synchronous")
        np.testing.assert_array_equal(one, two)
        np.testing.assert_array_equal(one, sync)


def test_cross_entropy_split_class_axis():
    """cross_entropy's log-softmax along a split class axis takes the same partials."""
    t = RNG.integers(0, X2.shape[1], X2.shape[0])
    for chunks in ((1, 1), (2, 5), ((4, 2), (13, 13, 11))):
        d = da.from_array(X2, chunks=chunks)
        for kw in ({}, {"label_smoothing": 0.2}, {"reduction": "none"}):
            got = nbops.cross_entropy(d, t, **kw).compute()
            np.testing.assert_allclose(got, nbops.cross_entropy(X2, t, **kw), rtol=2e-6,
                                       atol=2e-6)
        one = nbops.cross_entropy(d, t).compute(scheduler="threads", num_workers=1)
        two = nbops.cross_entropy(d, t).compute(scheduler="threads", num_workers=2)
        assert one.tobytes() == two.tobytes()


# --------------------------------------------------------------------- group_norm
def group_reference(x, groups, w, b, eps=1e-5):
    """group_norm in float64 NumPy."""
    n, c = x.shape[:2]
    v = x.astype(np.float64).reshape(n, groups, -1)
    m = v.mean(axis=2, keepdims=True)
    y = ((v - m) / np.sqrt(v.var(axis=2, keepdims=True) + eps)).reshape(x.shape)
    shape = (1, c) + (1,) * (x.ndim - 2)
    return y * w.astype(np.float64).reshape(shape) + b.astype(np.float64).reshape(shape)


XG = RNG.standard_normal((4, 6, 5, 7)).astype(np.float32) * 2 + 1
WG = RNG.standard_normal(6).astype(np.float32)
BG = RNG.standard_normal(6).astype(np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_group_norm_split_positions(dtype):
    """group_norm and instance_norm with the positions (and channels) of each group
    split across chunks: the kernels' statistics and finish against the in-memory
    result and float64 NumPy; same bits on 1 and 2 workers."""
    x = XG.astype(dtype)
    w, b = WG.astype(dtype), BG.astype(dtype)
    tol = tolerance(dtype)
    for chunks in ((1, 1, 1, 1), (2, 4, 3, 7), ((3, 1), (2, 4), (5,), (3, 4))):
        d = da.from_array(x, chunks=chunks)
        for groups in (3, 6):
            lazy = nbops.group_norm(d, groups, w, b)
            got = lazy.compute(scheduler="threads", num_workers=1)
            assert got.dtype == dtype
            np.testing.assert_allclose(got, nbops.group_norm(x, groups, w, b), **tol)
            np.testing.assert_allclose(got, group_reference(x, groups, w, b), **tol)
            two = lazy.compute(scheduler="threads", num_workers=2)
            np.testing.assert_array_equal(got, two)
        got = nbops.instance_norm(d, None, None, w, b).compute()
        np.testing.assert_allclose(got, nbops.instance_norm(x, None, None, w, b), **tol)
    # (N, C) input: no positions, the channels of a group split
    x2 = XG[:, :, 0, 0].astype(dtype)
    got = nbops.group_norm(da.from_array(x2, chunks=(1, 2)), 2, w, b).compute()
    np.testing.assert_allclose(got, nbops.group_norm(x2, 2, w, b), **tol)


# --------------------------------------------------------------------- out=
class ArrayLike:
    """A zarr-like target: shape, dtype and __setitem__ only (no ndarray)."""

    def __init__(self, shape, dtype):
        self.data = np.full(shape, np.nan, dtype)
        self.shape = self.data.shape
        self.dtype = self.data.dtype

    def __setitem__(self, key, value):
        self.data[key] = value


@pytest.mark.parametrize("chunks", [(1, 1), (2, 5), ((4, 2), (13, 13, 11)), (6, 37)])
def test_out_elementwise(chunks):
    d = da.from_array(X2, chunks=chunks)
    out = np.full_like(X2, np.nan)
    assert nbops.relu(d, out=out) is out  # computed now, written into out
    np.testing.assert_array_equal(out, nbops.relu(X2))
    out = np.full_like(X2, np.nan)
    nbops.leaky_relu(d, 0.3, out=out)
    np.testing.assert_array_equal(out, nbops.leaky_relu(X2, 0.3))
    target = ArrayLike(X2.shape, X2.dtype)
    assert nbops.relu(d, out=target) is target
    np.testing.assert_array_equal(target.data, nbops.relu(X2))
    # an int input: out of the result dtype (float64), as in memory
    i = np.arange(12).reshape(3, 4) - 6
    out = np.empty(i.shape, np.float64)
    nbops.relu(da.from_array(i, chunks=2), out=out)
    np.testing.assert_array_equal(out, nbops.relu(i))


@pytest.mark.parametrize("name", NAMES)
def test_out_softmax_family(name):
    fn = getattr(nbops, name)
    for chunks in ((1, 1), (2, 5), (6, 37), (2, 37)):
        d = da.from_array(X2, chunks=chunks)
        for axis in (1, 0):
            out = np.full_like(X2, np.nan)
            assert fn(d, axis=axis, out=out) is out
            np.testing.assert_array_equal(out, fn(d, axis=axis).compute())
            target = ArrayLike(X2.shape, X2.dtype)
            fn(d, axis=axis, out=target)
            np.testing.assert_array_equal(target.data, out)
    h = X2.astype(np.float16)  # computed in float32, written as float16
    out = np.empty_like(h)
    fn(da.from_array(h, chunks=(2, 5)), axis=1, out=out)
    np.testing.assert_array_equal(out, fn(da.from_array(h, chunks=(2, 5)), axis=1).compute())
    out = np.empty(X3.shape, np.float64)  # dtype= with out=
    fn(da.from_array(X3, chunks=(2, 4, 3)), axis=1, dtype=np.float64, out=out)
    np.testing.assert_allclose(out, fn(X3, axis=1, dtype=np.float64), rtol=1e-13, atol=1e-13)


def test_out_bad_arguments_before_computing():
    computed = []

    def mark(block):
        computed.append(1)
        return block

    d = da.from_array(X2, chunks=(2, 5)).map_blocks(mark, dtype=X2.dtype,
                                                    meta=np.empty((0, 0), X2.dtype))
    with pytest.raises(ValueError, match="shape"):
        nbops.relu(d, out=np.empty((6, 36), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        nbops.softmax(d, axis=1, out=np.empty(X2.shape, np.float64))
    with pytest.raises(ValueError, match="read-only"):
        ro = np.empty_like(X2)
        ro.flags.writeable = False
        nbops.relu(d, out=ro)
    with pytest.raises(TypeError, match="out must be"):
        nbops.relu(d, out=[[0.0] * 37] * 6)
    with pytest.raises(TypeError, match="local schedulers"):
        with dask.config.set(scheduler="processes"):
            nbops.relu(d, out=np.empty_like(X2))
    with pytest.raises(TypeError, match="inplace"):
        nbops.relu(d, inplace=True)
    assert not computed
