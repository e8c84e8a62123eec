"""Rows split across chunks along the last axis: nbops/_ops/split_rows.py's kernels
(the per-chunk float64 row partials and the finish) behind nbops/_dask.py's paths for
layer_norm, rms_norm, normalize and cosine_similarity; the softmax family's and
cross_entropy's log-sum-exp partials (NumPy) on the same rows. Rows long enough for
the kernels' lanes and tails (pieces of 13 and 37 values, and of 1), special values,
float64 and float16 inputs. The oracle is nbops' in-memory result (tested against
NumPy and PyTorch in the other files)."""

import numpy as np
import pytest

import nbops

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

F32 = np.float32
RNG = np.random.default_rng(1819)
X = RNG.standard_normal((6, 37)).astype(F32)
Y = RNG.standard_normal((6, 37)).astype(F32)
X[1] += 1000.0  # a large mean and a small spread (layer_norm's shifted sums)
X[2, 5] = np.inf
X[3, 20] = np.nan
X[4] = -np.inf
X4 = RNG.standard_normal((2, 3, 4, 20)).astype(F32)
W = RNG.standard_normal(37).astype(F32)
B = RNG.standard_normal(37).astype(F32)
CHUNKS = [(4, 13), (6, (36, 1)), (1, (13, 24))]


def _same(got, expected, rtol=2e-5, atol=2e-6):
    got = dask.compute(got)[0]
    if isinstance(expected, tuple):
        for g, e in zip(got, expected, strict=True):
            _same(g, e, rtol, atol)
        return
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("chunks", CHUNKS, ids=str)
def test_layer_norm_and_rms_norm(chunks):
    x = X[[0, 1, 5]]  # finite rows (the special values: the softmax test)
    d = da.from_array(x, chunks=(1, chunks[1]))
    for w, b in ((W, B), (None, None)):
        _same(nbops.layer_norm(d, (37,), w, b, return_stats=True),
              nbops.layer_norm(x, (37,), w, b, return_stats=True), rtol=1e-4, atol=1e-4)
        _same(nbops.rms_norm(d, (37,), w, return_stats=True),
              nbops.rms_norm(x, (37,), w, return_stats=True))
    # two normalized axes, split in both; float64
    d4 = da.from_array(X4, chunks=(1, 2, 3, 13))
    w4 = RNG.standard_normal((4, 20)).astype(F32)
    _same(nbops.layer_norm(d4, (4, 20), w4, w4), nbops.layer_norm(X4, (4, 20), w4, w4))
    x64 = X4.astype(np.float64)
    _same(nbops.rms_norm(da.from_array(x64, chunks=(2, 1, 2, 7)), (3, 4, 20)),
          nbops.rms_norm(x64, (3, 4, 20)), 1e-12, 1e-13)


@pytest.mark.parametrize("chunks", CHUNKS, ids=str)
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_softmax_family(chunks, name):
    """Special values included: +inf (a NaN row), NaN, an all -inf row."""
    fn = getattr(nbops, name)
    d = da.from_array(X, chunks=chunks)
    with np.errstate(invalid="ignore"):
        _same(fn(d, axis=-1), fn(X, axis=-1))
        _same(fn(d, axis=-1, dtype=np.float64), fn(X, axis=-1, dtype=np.float64), 1e-12, 1e-13)
        _same(fn(d.astype(np.float16), axis=-1), fn(X.astype(np.float16), axis=-1), 2e-3, 1e-4)


def test_cross_entropy_split_classes():
    x = X[[0, 1, 5]]
    t = np.array([3, 36, 0])
    d = da.from_array(x, chunks=(2, 13))
    _same(nbops.cross_entropy(d, t), nbops.cross_entropy(x, t), 1e-5, 1e-6)
    _same(nbops.cross_entropy(d, t, reduction="none"),
          nbops.cross_entropy(x, t, reduction="none"), 1e-5, 1e-6)


@pytest.mark.parametrize("p", [2.0, 1.0, np.inf, 0.0, 0.5])
def test_normalize(p):
    x = X[[0, 1, 5]].copy()
    x[2, ::3] = 0.0
    for chunks in CHUNKS:
        d = da.from_array(x, chunks=chunks)
        _same(nbops.normalize(d, p, -1), nbops.normalize(x, p, -1))
        _same(nbops.normalize(d.astype(np.float64), p, 1), nbops.normalize(x.astype(np.float64),
              p, 1), 1e-12, 1e-14)
    with np.errstate(invalid="ignore"):
        d = da.from_array(X, chunks=(3, 13))  # inf, NaN, -inf rows
        _same(nbops.normalize(d, p, 1), nbops.normalize(X, p, 1))


def test_cosine_similarity():
    x, y = X[[0, 1, 5]], Y[:3].copy()
    y[1] = 0.0  # a zero vector (its norm clamped to eps)
    for chunks in CHUNKS:
        a, b = da.from_array(x, chunks=chunks), da.from_array(y, chunks=chunks)
        _same(nbops.cosine_similarity(a, b, 1), nbops.cosine_similarity(x, y, 1))
        _same(nbops.cosine_similarity(a, b.astype(np.float64), 1),
              nbops.cosine_similarity(x, y.astype(np.float64), 1), 1e-6, 1e-7)


def test_same_chunking_same_bits_on_any_scheduler():
    d = da.from_array(X[[0, 1, 5]], chunks=(1, 13))
    dy = da.from_array(Y[:3], chunks=(1, 13))
    results = (nbops.layer_norm(d, (37,), W, B), nbops.rms_norm(d, (37,)),
               nbops.softmax(d, axis=1), nbops.normalize(d, 3.0, 1),
               nbops.cosine_similarity(d, dy, 1))
    one = dask.compute(results, scheduler="synchronous")[0]
    many = dask.compute(results, scheduler="threads", num_workers=3)[0]
    for a, b in zip(one, many, strict=True):
        assert a.tobytes() == b.tobytes()


def test_row_moments_any_layout_same_sums_as_in_memory():
    """split_rows.row_moments takes layer_norm's row sums (nbops/_ops/row_tasks.py)
    on the row pieces of a flat view (nbops/_dask.py's ``_flat_rows``): a column
    slice of a C array (rows at a stride) and a strided view (copied) give the bits
    of the contiguous copy, and a piece holding whole rows the in-memory kernel's
    mean; rows of 203 values (four 16-lane blocks, single blocks and a tail) and of
    5 (the tail only)."""
    from nbops._dask import _flat_rows
    from nbops._ops.split_rows import row_moments, run

    rng = np.random.default_rng(7)
    for n in (203, 5):
        big = (rng.standard_normal((4, 2 * n)) * 3 + 50).astype(F32)
        dense = np.ascontiguousarray(big[:, ::2])
        for centered in (False, True):  # (expected: the centered statistics after)
            expected = np.empty((4, 3))
            run(row_moments, dense.reshape(-1), n, 4, n, centered, expected)
            # a strided view (copied), a column slice (read in place, rows at 2n)
            for view in (big[:, ::2], big[:, :n]):
                got, want = np.empty((4, 3)), np.empty((4, 3))
                flat, stride = _flat_rows(view)
                assert np.shares_memory(flat, big) == (view.strides[1] == big.itemsize)
                run(row_moments, flat, stride, 4, n, centered, got)
                run(row_moments, np.ascontiguousarray(view).reshape(-1), n, 4, n, centered,
                    want)
                assert got.tobytes() == want.tobytes()
        mean = nbops.layer_norm(dense.astype(np.float64), (n,), return_stats=True)[1]
        np.testing.assert_array_equal(expected[:, 1], mean.reshape(-1))
        ref = dense.astype(np.float64)
        np.testing.assert_allclose(expected[:, 1], ref.mean(1), rtol=1e-13)
        np.testing.assert_allclose(expected[:, 2], ((ref - ref.mean(1, keepdims=True)) ** 2)
                                   .sum(1), rtol=1e-9)
