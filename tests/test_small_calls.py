"""The lean small-call paths of issue 13 (per-call overhead) give the general
paths' results bit for bit, and keep their checks.

* ``multi_margin_loss`` / ``multilabel_margin_loss``: the common call ((N, C)
  C-contiguous float input, int64 targets, no weight, 'mean' or 'sum', a size
  the general path runs serially) takes one serial kernel that checks the
  targets, runs the general row kernel and adds the row losses as NumPy's
  ``add.reduce`` does (``class_margin_losses._numpy_sum``). Compared with the
  general path (``_mm_plan`` / ``_mlm_plan`` + ``_run`` + ``_reduced``) and a
  float64 NumPy formula; out-of-range targets still raise ``ValueError``.
"""

import numpy as np
import pytest
from numba import njit

import nbops
from nbops._ops import class_margin_losses as CM

FLOATS = (np.float32, np.float64)
SHAPES = [(1, 1), (64, 10), (3, 7), (129, 5), (300, 3)]


@njit
def _sum_of(a):
    return CM._numpy_sum(a)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 127, 128, 129, 135, 256, 1000, 4097, 20000])
def test_numpy_sum_is_add_reduce(n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
    assert np.float64(_sum_of(a)).tobytes() == np.add.reduce(a).tobytes()


def _mm_reference(x, t, p, margin):
    x = x.astype(np.float64)
    n, c = x.shape
    z = margin - x[np.arange(n), t][:, None] + x
    z[np.arange(n), t] = 0.0
    return (np.maximum(z, 0.0) ** p).sum(axis=1) / c


def _mlm_reference(x, t):
    x = x.astype(np.float64)
    n, c = x.shape
    out = np.zeros(n)
    for r in range(n):
        ys = []
        for y in t[r]:
            if y < 0:
                break
            ys.append(y)
        for y in ys:
            for k in range(c):
                if k not in ys:
                    out[r] += max(0.0, 1.0 - x[r, y] + x[r, k])
    return out / c


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_multi_margin_lean_matches_general_path(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.integers(0, shape[1], shape[0])
    assert x.size < CM._lean_limit(CM._mm_serial, x.dtype)  # the lean path runs
    for p in (1, 2):
        for margin in (1.0, 0.3, 2):
            ref = _mm_reference(x, t, p, margin)
            for reduction in ("mean", "sum"):
                got = nbops.multi_margin_loss(x, t, p=p, margin=margin, reduction=reduction)
                plan = CM._mm_plan(x, t, p, margin, None, None, None, reduction)
                want = CM._reduced(CM._run(plan, None, 1.0, False)[0], plan)
                assert got.dtype == want.dtype == dtype
                assert got.tobytes() == want.tobytes()
                want_ref = ref.sum() / (shape[0] if reduction == "mean" else 1)
                np.testing.assert_allclose(float(got), want_ref,
                                           rtol=1e-5 if dtype == np.float32 else 1e-12)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_multilabel_margin_lean_matches_general_path(dtype, shape):
    rng = np.random.default_rng(sum(shape) + 1)
    x = rng.standard_normal(shape).astype(dtype)
    t = np.where(np.arange(shape[1]) < 2, rng.integers(0, shape[1], shape)[:, :1], -1)
    if shape[1] > 1:  # two labels on some rows
        t[::2, 1] = rng.integers(0, shape[1], t[::2, 1].shape)
    assert x.size < CM._lean_limit(CM._mlm_serial, x.dtype)
    ref = _mlm_reference(x, t)
    for reduction in ("mean", "sum"):
        got = nbops.multilabel_margin_loss(x, t, reduction=reduction)
        plan = CM._mlm_plan(x, t, None, None, reduction)
        want = CM._reduced(CM._run(plan, None, 1.0, False)[0], plan)
        assert got.dtype == want.dtype == dtype
        assert got.tobytes() == want.tobytes()
        want_ref = ref.sum() / (shape[0] if reduction == "mean" else 1)
        np.testing.assert_allclose(float(got), want_ref,
                                   rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_margin_lean_paths_keep_the_checks():
    x = np.zeros((4, 3))
    for bad in (3, -1):
        with pytest.raises(ValueError, match="target: class index"):
            nbops.multi_margin_loss(x, np.array([0, 1, bad, 2]))
    with pytest.raises(ValueError, match="inconsistent target size"):
        nbops.multi_margin_loss(x, np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="only p == 1 and p == 2"):
        nbops.multi_margin_loss(x, np.array([0, 1, 2, 2]), p=3)
    with pytest.raises(ValueError, match="is not valid"):
        nbops.multi_margin_loss(x, np.array([0, 1, 2, 2]), reduction="avg")
    labels = np.array([[0, -1, 0], [1, 2, -1], [2, -1, -1], [0, 1, 2]])
    for bad in (3, -2):
        t = labels.copy()
        t[2, 2] = bad  # after the row's -1: still checked
        with pytest.raises(ValueError, match="target: class index"):
            nbops.multilabel_margin_loss(x, t)
    with pytest.raises(ValueError, match="inconsistent target size"):
        nbops.multilabel_margin_loss(x, labels[:3])
