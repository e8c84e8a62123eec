"""The lean small-call paths of issue 13 (per-call overhead) give the general
paths' results bit for bit, and keep their checks.

* ``multi_margin_loss`` / ``multilabel_margin_loss``: the common call ((N, C)
  C-contiguous float input, int64 targets, no weight, 'mean' or 'sum', a size
  the general path runs serially) takes one serial kernel that checks the
  targets, runs the general row kernel and adds the row losses as NumPy's
  ``add.reduce`` does (``class_margin_losses._numpy_sum``). Compared with the
  general path (``_mm_plan`` / ``_mlm_plan`` + ``_run`` + ``_reduced``) and a
  float64 NumPy formula; out-of-range targets still raise ``ValueError``.
* ``cdist`` at p = 2 in the product form with few features: one serial kernel
  (``similarity._product_lean``) makes the general path's kernel calls.
  Compared with the general path (``_cdist_compute``) and float64 distances.
  (pdist at p = 2 has one kernel for all its calls, ``similarity._pdist_l2``:
  tests/test_similarity.py.)
"""

import numpy as np
import pytest
from numba import njit

import nbops
from nbops._ops import class_margin_losses as CM
from nbops._ops import similarity as SIM

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
    swapped = np.arange(12.0).reshape(4, 3).astype(">f8")  # the general path
    t = np.array([0, 1, 2, 2])
    assert (nbops.multi_margin_loss(swapped, t, margin=0.3).tobytes()
            == nbops.multi_margin_loss(swapped.astype(np.float64), t, margin=0.3).tobytes())
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


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(26, 1), (64, 10), (40, 16), (100, 7)])
def test_cdist_lean_matches_general_path(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    x[5] = x[3]  # equal rows: exactly 0
    x[7] = x[3] * dtype(1 + 1e-5)  # close rows: recomputed directly
    y = rng.standard_normal((shape[0] // 2 + 20, shape[1])).astype(dtype)
    y[2] = x[4]
    x64 = x.astype(np.float64)
    r = np.empty(x.shape[0] * y.shape[0], dtype)
    assert SIM._lean_product(x, y, r)  # the lean path runs
    for b in (y, x):
        got = nbops.cdist(x, b)
        want = SIM._cdist_compute(x[None], b[None], x.shape[0], b.shape[0], shape[1], 2.0, True,
                                  x.dtype)[0]
        assert got.tobytes() == want.tobytes()
        ref = np.sqrt(((x64[:, None] - b.astype(np.float64)[None]) ** 2).sum(axis=2))
        np.testing.assert_allclose(got, ref, rtol=2e-6 if dtype == np.float32 else 1e-12,
                                   atol=1e-6 if dtype == np.float32 else 1e-12)
    assert nbops.cdist(x, x)[3, 5] == 0
    out = np.empty((shape[0], y.shape[0]), dtype)
    assert nbops.cdist(x, y, out=out) is out
    assert out.tobytes() == nbops.cdist(x, y).tobytes()


def test_pdist_cdist_lean_paths_keep_the_checks():
    x = np.zeros((30, 3))
    with pytest.raises(ValueError, match="p must be >= 0"):
        nbops.pdist(x, p=-1.0)
    with pytest.raises(ValueError, match="must be 2-D"):
        nbops.pdist(x[None])
    with pytest.raises(ValueError, match="same last axis"):
        nbops.cdist(x, np.zeros((30, 4)))
    with pytest.raises(ValueError, match="out"):
        nbops.cdist(x, x, out=np.empty((30, 29)))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape, axis", [((64, 10), -1), ((3, 4, 6), 1), ((4, 2), 0),
                                         ((0, 4), -1)])
def test_glu_fast_call_matches_general_path(dtype, shape, axis):
    from nbops._ops import glu as G
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    want = G._forward(x, axis, None, None)
    got = nbops.glu(x, axis)
    assert got.dtype == dtype and got.tobytes() == want.tobytes() and got.shape == want.shape
    a, b = np.split(x.astype(np.float64), 2, axis=axis)
    np.testing.assert_allclose(got, a / (1 + np.exp(-b)),
                               rtol=1e-6 if dtype == np.float32 else 1e-14)
    out = np.empty_like(got)
    assert nbops.glu(x, axis, out=out) is out and out.tobytes() == want.tobytes()
    if x.size:  # out= overlapping the input: the general path (a copy) gives the same
        buf = x.copy().reshape(-1)
        view = buf[:got.size].reshape(got.shape)
        assert nbops.glu(buf.reshape(shape), axis, out=view) is view
        assert view.tobytes() == want.tobytes()


def test_glu_fast_call_keeps_the_checks():
    with pytest.raises(ValueError, match="Halving dimension must be even"):
        nbops.glu(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="out of range"):
        nbops.glu(np.zeros((4, 2)), 2)
    with pytest.raises(ValueError, match="scalars"):
        nbops.glu(np.zeros(()))
    for bad_out, err in ((np.empty((4, 2)), ValueError), (np.empty((4, 1), np.float32), TypeError)):
        with pytest.raises(err, match="out"):
            nbops.glu(np.zeros((4, 2)), out=bad_out)
    ro = np.empty((4, 1))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        nbops.glu(np.zeros((4, 2)), out=ro)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(64, 10), (8, 3, 5), (2, 4, 70), (1, 2, 2, 2)])
def test_batch_norm_eval_fast_call_matches_general_path(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    c = shape[1]
    x = rng.standard_normal(shape).astype(dtype)
    rm = rng.standard_normal(c).astype(dtype)
    rv = rng.uniform(0.5, 2.0, c)  # float64 statistics beside a float32 input too
    w = rng.standard_normal(c).astype(dtype)
    b = rng.standard_normal(c).astype(np.float32)
    for weight, bias in ((None, None), (w, b)):
        got = nbops.batch_norm(x, rm, rv, weight, bias)
        # training=0 and return_stats=True take the general path
        want = nbops.batch_norm(x, rm, rv, weight, bias, training=0)
        assert got.dtype == dtype and got.tobytes() == want.tobytes()
        assert got.tobytes() == nbops.batch_norm(x, rm, rv, weight, bias,
                                                 return_stats=True)[0].tobytes()
        out = np.empty_like(x)
        assert nbops.batch_norm(x, rm, rv, weight, bias, out=out) is out
        assert out.tobytes() == want.tobytes()
        bshape = (1, c) + (1,) * (len(shape) - 2)
        ref = (x.astype(np.float64) - rm.astype(np.float64).reshape(bshape)) / np.sqrt(
            rv.reshape(bshape) + 1e-5)
        if weight is not None:
            ref = ref * w.astype(np.float64).reshape(bshape) + b.astype(np.float64).reshape(bshape)
        np.testing.assert_allclose(got, ref, rtol=1e-5 if dtype == np.float32 else 1e-12,
                                   atol=1e-5 if dtype == np.float32 else 1e-12)


def test_batch_norm_eval_fast_call_keeps_the_checks():
    x = np.zeros((4, 3))
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="running_var must have shape"):
        nbops.batch_norm(x, rm, np.ones(2))
    with pytest.raises(ValueError, match="weight must have shape"):
        nbops.batch_norm(x, rm, rv, np.ones(4))
    with pytest.raises(ValueError, match="non-negative"):
        nbops.batch_norm(x, rm, rv, eps=-1.0)
    with pytest.raises(TypeError, match="running_mean must be a float array"):
        nbops.batch_norm(x, np.zeros(3, np.int64), rv)
    with pytest.raises(ValueError, match="must be given in evaluation"):
        nbops.batch_norm(x, None, None)
    with pytest.raises(TypeError, match="out"):
        nbops.batch_norm(x, rm, rv, out=np.empty((4, 3), np.float32))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(64, 10), (3, 4, 6), (5,), (0, 3)])
def test_normalize_fast_call_matches_general_path(dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = rng.standard_normal(shape).astype(dtype)
    if x.size:
        x.reshape(-1, shape[-1])[0] = 0  # a zero row: divided by eps
    for p in (2.0, 1.0, 3.0, np.inf, 0.0):
        got = nbops.normalize(x, p, -1)
        # a NumPy integer axis takes the general path
        want = nbops.normalize(x, p, np.int64(len(shape) - 1))
        assert got.dtype == dtype and got.tobytes() == want.tobytes()
        out = np.empty_like(x)
        assert nbops.normalize(x, p, len(shape) - 1, out=out) is out
        assert out.tobytes() == want.tobytes()
        if p > 0:
            x64 = x.astype(np.float64)
            norm = np.linalg.norm(x64, ord=p, axis=-1, keepdims=True) if x.size else 1.0
            ref = x64 / np.maximum(norm, 1e-12)
            np.testing.assert_allclose(got, ref, rtol=1e-5 if dtype == np.float32 else 1e-13)
    inplace = x.copy()
    assert nbops.normalize(inplace, 2.0, -1, out=inplace) is inplace
    assert inplace.tobytes() == nbops.normalize(x, 2.0, -1).tobytes()


def test_normalize_fast_call_keeps_the_checks():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match="p must be >= 0"):
        nbops.normalize(x, -1.0, -1)
    with pytest.raises(IndexError, match="out of range"):
        nbops.normalize(x, 2.0, 2)
    with pytest.raises(ValueError, match="out has shape"):
        nbops.normalize(x, 2.0, -1, out=np.empty((4, 2)))
    with pytest.raises(TypeError, match="out has dtype"):
        nbops.normalize(x, 2.0, -1, out=np.empty((4, 3), np.float32))
    ro = np.empty((4, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        nbops.normalize(x, 2.0, -1, out=ro)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(64, 10), (3, 4, 6), (7,), (), (0, 3)])
def test_softmax_family_fast_call_matches_general_path(dtype, shape):
    rng = np.random.default_rng(sum(shape) + 2)
    x = np.asarray(rng.standard_normal(shape) * 4).astype(dtype)
    x64 = x.astype(np.float64)
    for op in (nbops.softmax, nbops.log_softmax, nbops.softmin):
        for axis in sorted({-1, 0, len(shape) - 1}):
            if not shape and axis:
                continue
            got = op(x, axis)
            want = op(x, np.int64(axis))  # a NumPy integer axis: the general path
            assert got.dtype == dtype and got.tobytes() == want.tobytes()
            out = np.empty_like(x)
            assert op(x, axis, out=out) is out and out.tobytes() == want.tobytes()
            if x.size:
                ax = axis if shape else None
                z = -x64 if op is nbops.softmin else x64
                m = np.max(z, axis=ax, keepdims=True)
                lse = m + np.log(np.sum(np.exp(z - m), axis=ax, keepdims=True))
                ref = z - lse if op is nbops.log_softmax else np.exp(z - lse)
                np.testing.assert_allclose(got, ref, rtol=1e-5 if dtype == np.float32
                                           else 1e-13, atol=1e-6 if dtype == np.float32
                                           else 1e-14)
    inplace = x.copy()  # out= is the input: the general path (in place)
    assert nbops.softmax(inplace, -1, out=inplace) is inplace
    np.testing.assert_allclose(inplace, nbops.softmax(x, -1), rtol=3e-7, atol=0)


def test_softmax_fast_call_keeps_the_checks():
    x = np.ones((4, 3))
    with pytest.raises(ValueError, match="out of range"):
        nbops.softmax(x, 2)
    with pytest.raises(ValueError, match="out has shape"):
        nbops.log_softmax(x, -1, out=np.empty((4, 2)))
    with pytest.raises(TypeError, match="out has dtype"):
        nbops.log_softmax(x, -1, out=np.empty((4, 3), np.float32))
    ro = np.empty((4, 3))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        nbops.softmax(x, -1, out=ro)


def test_group_norm_remembered_plan_keeps_the_checks():
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    first = nbops.group_norm(x, 2)
    assert nbops.group_norm(x, 2).tobytes() == first.tobytes()  # the remembered plan
    assert nbops.group_norm(x, np.int64(2)).tobytes() == first.tobytes()  # not remembered
    for bad, err in ((4, ValueError), (0, ValueError), (True, TypeError), (2.0, TypeError)):
        with pytest.raises(err):
            nbops.group_norm(x, bad)
        with pytest.raises(err):  # twice: errors are never remembered
            nbops.group_norm(x, bad)


def _general_norm(name, x, ns, w, b, eps):
    """The general path's result (``_run_forward``: plans, conversions, launch)."""
    from nbops._ops import layer_norm as LN
    return LN._run_forward(name, x, ns, w, b, eps, None, name == "layer_norm")[0]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape,ns", [((64, 10), (10,)), ((3, 7), 7), ((2, 3, 4, 5), (4, 5)),
                                      ((40, 33), (33,)), ((1, 1), 1)])
def test_layer_norm_lean_call_matches_general_path(dtype, shape, ns):
    from nbops._ops import layer_norm as LN
    rng = np.random.default_rng(sum(shape))
    x = (rng.standard_normal(shape) * 2.0 + 50.0).astype(dtype)
    k = 1 if np.ndim(ns) == 0 else len(ns)
    w = rng.standard_normal(shape[-k:]).astype(dtype)
    b = rng.standard_normal(shape[-k:]).astype(dtype)
    axes = tuple(range(len(shape) - k, len(shape)))
    x64 = x.astype(np.float64)
    for weight, bias in ((None, None), (w, None), (w, b)):
        got = nbops.layer_norm(x, ns, weight, bias)
        assert LN._LEAN[("layer_norm", np.dtype(dtype))]  # the lean path ran
        want = _general_norm("layer_norm", x, ns, weight, bias, 1e-5)
        assert got.dtype == dtype and got.tobytes() == want.tobytes()
        out = np.empty_like(x)
        assert nbops.layer_norm(x, ns, weight, bias, out=out) is out
        assert out.tobytes() == want.tobytes()
        ref = (x64 - x64.mean(axes, keepdims=True)) / np.sqrt(x64.var(axes, keepdims=True)
                                                             + 1e-5)
        ref = ref * (1.0 if weight is None else w) + (0.0 if bias is None else b)
        np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5 if dtype == np.float32
                                   else 1e-12)
        got = nbops.rms_norm(x, ns, weight)
        assert got.tobytes() == _general_norm("rms_norm", x, ns, weight, None,
                                              float(np.finfo(dtype).eps)).tobytes()
        ref = x64 / np.sqrt((x64 * x64).mean(axes, keepdims=True) + np.finfo(dtype).eps)
        np.testing.assert_allclose(got, ref * (1.0 if weight is None else w), rtol=0,
                                   atol=2e-5 if dtype == np.float32 else 1e-12)
    # calls the lean path leaves to the general one: the same results
    assert nbops.layer_norm(x, ns, w.astype(np.float64), b).tobytes() == \
        _general_norm("layer_norm", x, ns, w.astype(np.float64), b, 1e-5).tobytes()
    assert nbops.layer_norm(x, list(np.atleast_1d(ns)), w, b, eps=1e-5).tobytes() == \
        nbops.layer_norm(x, ns, w, b).tobytes()


def test_layer_norm_lean_call_keeps_the_checks():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="expected input with shape"):
        nbops.layer_norm(x, (4,))
    with pytest.raises(ValueError, match="weight must have shape"):
        nbops.layer_norm(x, (3,), np.ones(4, np.float32))
    with pytest.raises(ValueError, match="bias must have shape"):
        nbops.layer_norm(x, 3, None, np.ones((1, 3), np.float32))
    with pytest.raises(TypeError, match="normalized_shape"):
        nbops.layer_norm(x, (3.0,))
    with pytest.raises(TypeError, match="out has dtype"):
        nbops.layer_norm(x, 3, out=np.empty((4, 3)))
    with pytest.raises(ValueError, match="out has shape"):
        nbops.rms_norm(x, 3, out=np.empty((4, 2), np.float32))
    ro = np.empty((4, 3), np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        nbops.layer_norm(x, 3, out=ro)
    y = np.arange(12, dtype=np.float32).reshape(4, 3)
    want = nbops.layer_norm(y, 3)
    assert nbops.layer_norm(y, 3, out=y) is y  # out= is the input: the general path
    assert y.tobytes() == want.tobytes()
    y = np.arange(12, dtype=np.float32).reshape(4, 3).copy()  # owns its memory
    assert nbops.layer_norm(y[:], 3, out=y) is y  # the input a view of out=: the same
    assert y.tobytes() == want.tobytes()
    z = np.arange(12, dtype=np.float32).reshape(4, 3)  # a view of another array
    assert nbops.layer_norm(z, 3, out=np.empty_like(z)).tobytes() == want.tobytes()

def test_may_share_memory_shortcut():
    from nbops._validate import may_share_memory

    base = np.zeros(12)
    out = np.zeros(12)
    assert not may_share_memory(out, base)
    assert not may_share_memory(out, base.reshape(3, 4))  # a view of another array
    assert may_share_memory(out, out.reshape(3, 4))  # a view of out itself
    assert may_share_memory(out, out[2:].reshape(2, 5))
    assert may_share_memory(out[:6], out[3:])  # out a view: NumPy's test
    assert not may_share_memory(out[:6], out[6:])
    x = np.zeros((64, 10), np.float32).reshape(64, 10)
    res = nbops.pdist(x, out=np.full(2016, np.nan, np.float32))
    assert (res == 0).all()
