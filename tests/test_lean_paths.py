"""The lean paths of issue 13 (per-call overhead, cheaper sums) give the results
of the general paths, bit for bit.

* ``nll_loss``'s common call ((N, C) C-contiguous log-probabilities, int64
  targets, N up to one chunk of rows) runs a three-argument kernel
  (``classification._nll_lean``): its value is compared with the general
  kernel's (``_planned`` + ``_index_loss``) and with a float64 NumPy formula;
  out-of-range targets still raise before any loss is computed.
* The pointwise losses' fused kernel sums in the documented order: the value
  is compared, bit for bit, with that order written here (each chunk of
  ``CHUNK`` losses in blocks of ``losses.BLOCK``, each block summed by the
  compiled ``losses._block_sum``, the block sums added in order in float64;
  the chunk sums added by NumPy's ``add.reduce``).
* prelu with a one-element weight gives the general path's result.
"""

import numpy as np
import pytest

import nbops
from nbops._ops import classification as CL
from nbops._ops import losses as L
from nbops._ops.reduction import CHUNK

FLOATS = (np.float32, np.float64)


def _general_nll(x, t, reduction):
    xx, tt, w, plan, compute, result = CL._planned(x, t, None, None, -100, None, reduction,
                                                   0.0, False)
    return CL._index_loss(xx, tt, w, plan, False, compute, result)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(1, 1), (64, 10), (1000, 3), (CL.UNIT_ELEMS, 2)])
def test_nll_lean_matches_general_path(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = np.log(rng.uniform(0.01, 1.0, shape)).astype(dtype)
    t = rng.integers(0, shape[1], shape[0]).astype(np.int64)
    for reduction in ("mean", "sum"):
        got = nbops.nll_loss(x, t, reduction=reduction)
        want = _general_nll(x, t, reduction)
        assert got.dtype == want.dtype == dtype
        assert got.tobytes() == want.tobytes()
        ref = -np.sum(x.astype(np.float64)[np.arange(shape[0]), t])
        if reduction == "mean":
            ref /= shape[0]
        np.testing.assert_allclose(float(got), ref, rtol=1e-6 if dtype == np.float32 else 1e-13)


def test_nll_lean_rejects_out_of_range_targets():
    x = np.log(np.full((4, 3), 1 / 3))
    for bad in (3, -1, -100):  # -100: ignored, so the general path (no error) runs
        t = np.array([0, 1, bad, 2])
        if bad == -100:
            assert float(nbops.nll_loss(x, t)) == pytest.approx(np.log(3.0))
        else:
            with pytest.raises(ValueError, match="target"):
                nbops.nll_loss(x, t)


def _documented_sum(losses):
    """The fused kernel's sum of float losses, in its documented order."""
    partials = []
    for start in range(0, losses.size, CHUNK):
        chunk = losses[start:start + CHUNK]
        s = 0.0
        for b in range(0, chunk.size, L.BLOCK):
            block = np.ascontiguousarray(chunk[b:b + L.BLOCK])
            s += L._block_sum(block, block.size)
        partials.append(s)
    return float(np.add.reduce(np.array(partials)))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n", [7, CHUNK + 3, 2 * CHUNK, 3 * CHUNK + 5, 4 * CHUNK + 2])
def test_chunk_sums_keep_the_order(dtype, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal(n).astype(dtype)
    t = rng.standard_normal(n).astype(dtype)
    for loss in (nbops.l1_loss, nbops.mse_loss):
        losses = loss(x, t, reduction="none")
        got = loss(x, t, reduction="sum")
        assert got.tobytes() == dtype(_documented_sum(losses)).tobytes()


@pytest.mark.parametrize("dtype", FLOATS)
def test_prelu_shared_slope(dtype):
    x = np.random.default_rng(0).standard_normal(1000).astype(dtype)
    w = np.array([0.25], dtype)
    want = np.where(x >= 0, x, dtype(0.25) * x)
    np.testing.assert_array_equal(nbops.prelu(x, w), want)
    out = np.empty_like(x)
    assert nbops.prelu(x, w, out=out) is out
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(nbops.prelu(x.reshape(10, 100), w), want.reshape(10, 100))
    with pytest.raises(ValueError, match="weight"):
        nbops.prelu(x.reshape(10, 100), np.array([0.25, 0.5], dtype))
