"""cross_entropy and nll_loss: float64 NumPy reference formulas, PyTorch parity for
every option, layouts, dtypes, inf/NaN logits, errors, thread-count determinism
and calls inside @njit.

Compile time is the cost here: float32 and float64 only (one serial kernel per
dtype for class-index targets, one for probability targets, shared by every
shape and option) and small arrays.
"""

import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

import nbops

DTYPES = (np.float32, np.float64)
REDUCTIONS = ("none", "mean", "sum")
INF, NAN = np.inf, np.nan


# ------------------------------------------------------------ the reference
def _log_softmax(x):
    """log_softmax over axis 1, float64; the class axis moved last."""
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        z = x - np.max(x, axis=1, keepdims=True)
        lp = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    return np.moveaxis(lp, 1, -1)


def _reduce(loss, red, denom):
    if red == "none":
        return loss
    if red == "sum":
        return loss.sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return loss.sum() / denom


def ref_index(x, t, weight=None, ignore=-100, red="mean", ls=0.0, logits=True):
    """PyTorch's cross_entropy (logits=True) / nll_loss with class-index targets:
    loss_n = (1 - ls) * -w[t_n] logp[n, t_n] + ls / C * -sum_c w_c logp[n, c],
    0 where t_n == ignore; 'mean' divides by the sum of w[t_n] over kept samples."""
    x = np.asarray(x, np.float64)
    t = np.asarray(t).astype(np.int64)
    single = x.ndim == 1
    if single:
        x, t = x[None], t[None]
    C = x.shape[1]
    lp = _log_softmax(x) if logits else np.moveaxis(x, 1, -1)
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    keep = t != ignore
    tc = np.where(keep, t, 0)
    wt = np.where(keep, w[tc], 0.0)
    lpt = np.take_along_axis(lp, tc[..., None], -1)[..., 0]
    with np.errstate(invalid="ignore"):
        nll = np.where(keep, -wt * lpt, 0.0)
        smooth = np.where(keep, -(lp * w).sum(-1), 0.0)
    loss = (1 - ls) * nll + ls / C * smooth if ls else nll
    if single:
        loss = loss[0]
    return _reduce(loss, red, wt.sum())


def ref_prob(x, p, weight=None, red="mean", ls=0.0):
    """Class-probability targets: loss_n = -sum_c w_c q[n, c] logp[n, c],
    q = (1 - ls) p + ls / C; 'mean' divides by the number of samples."""
    x = np.asarray(x, np.float64)
    p = np.asarray(p, np.float64)
    single = x.ndim == 1
    if single:
        x, p = x[None], p[None]
    C = x.shape[1]
    lp = _log_softmax(x)
    q = np.moveaxis(p, 1, -1) * (1 - ls) + ls / C
    w = np.ones(C) if weight is None else np.asarray(weight, np.float64)
    with np.errstate(invalid="ignore"):
        loss = -(lp * q * w).sum(-1)
    if single:
        loss = loss[0]
    return _reduce(loss, red, loss.size)


def tol(dtype):
    return dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)


def check(got, exp, dtype, what=""):
    """'none' gives an array of the reference's shape, 'mean' / 'sum' a NumPy scalar."""
    if isinstance(got, np.ndarray):
        assert got.dtype == dtype, what
        assert got.shape == np.shape(exp), what
    else:
        assert type(got) is dtype, (type(got), what)
    np.testing.assert_allclose(got, exp, equal_nan=True, err_msg=str(what), **tol(dtype))


def case(shape, dtype, seed=0):
    """Logits, class indices (some equal to 1), weights and probabilities for ``shape``."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    C = shape[0] if len(shape) == 1 else shape[1]
    tshape = () if len(shape) == 1 else (shape[0],) + shape[2:]
    t = rng.integers(0, C, tshape)
    if t.ndim:
        t.reshape(-1)[::3] = 1
    w = (rng.random(C) + 0.5).astype(dtype)
    p = rng.random(shape)
    p = (p / p.sum(axis=0 if len(shape) == 1 else 1, keepdims=True)).astype(dtype)
    return x, t, w, p


SHAPES = [(5,), (6, 4), (3, 4, 5), (2, 3, 4, 5), (2, 3, 20, 15)]  # 300 > a column block


# ------------------------------------------------------------ the worked example
def test_worked_example():
    x = np.array([[0.2, 0.3, 0.5], [0.5, 0.2, 0.3]])
    t = np.array([2, 1])
    w = np.array([2.0, 4.0, 6.0])
    got = nbops.cross_entropy(x, t, weight=w, reduction="none")
    np.testing.assert_allclose(got, [5.6390, 4.9593], atol=5e-5)  # PyTorch's values
    np.testing.assert_allclose(got, ref_index(x, t, w, red="none"), rtol=1e-14)
    np.testing.assert_allclose(nbops.cross_entropy(x, t, weight=w), 1.0598, atol=5e-5)
    np.testing.assert_allclose(nbops.cross_entropy(x, t, weight=w, reduction="sum"), 10.5983,
                               atol=5e-5)
    x32 = x.astype(np.float32)
    assert type(nbops.cross_entropy(x32, t)) is np.float32
    assert nbops.cross_entropy(x32, t, reduction="none").dtype == np.float32


# ------------------------------------------------------------ every option vs the reference
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_index_targets_match_reference(shape, dtype):
    x, t, w, _ = case(shape, dtype)
    for red in REDUCTIONS:
        for weight in (None, w):
            for ignore in (-100, 1):
                for ls in (0.0, 0.25):
                    what = (red, weight is not None, ignore, ls)
                    got = nbops.cross_entropy(x, t, weight, ignore_index=ignore,
                                              reduction=red, label_smoothing=ls)
                    check(got, ref_index(x, t, weight, ignore, red, ls), dtype, what)
                got = nbops.nll_loss(x, t, weight, ignore_index=ignore, reduction=red)
                check(got, ref_index(x, t, weight, ignore, red, logits=False), dtype,
                      ("nll",) + what)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_probability_targets_match_reference(shape, dtype):
    x, _, w, p = case(shape, dtype)
    for red in REDUCTIONS:
        for weight in (None, w):
            for ls in (0.0, 0.3):
                got = nbops.cross_entropy(x, p, weight, reduction=red, label_smoothing=ls)
                check(got, ref_prob(x, p, weight, red, ls), dtype, (red, weight is None, ls))


@pytest.mark.parametrize("dtype", DTYPES)
def test_long_rows(dtype):
    x, t, w, p = case((3, 2500), dtype)  # longer than a summation block
    x[1] += 1e4
    check(nbops.cross_entropy(x, t, w, label_smoothing=0.1), ref_index(x, t, w, ls=0.1), dtype)
    check(nbops.cross_entropy(x, p, reduction="none"), ref_prob(x, p, red="none"), dtype)


def test_target_integer_dtypes():
    x, t, w, _ = case((7, 5), np.float64)
    exp = ref_index(x, t, w, red="none")
    for dt in (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.uint64):
        np.testing.assert_allclose(nbops.cross_entropy(x, t.astype(dt), w, reduction="none"),
                                   exp, rtol=1e-14)
    ti = t.astype(np.int8)
    ti[2] = -1
    np.testing.assert_allclose(nbops.nll_loss(x, ti, ignore_index=-1, reduction="none"),
                               ref_index(x, ti, ignore=-1, red="none", logits=False))
    assert nbops.cross_entropy(x[0], 3) == nbops.cross_entropy(x[0], np.array(3))  # 0-d target


# ------------------------------------------------------------ edge cases
@pytest.mark.parametrize("dtype", DTYPES)
def test_all_ignored_and_empty(dtype):
    x, t, w, p = case((4, 3), dtype)
    t[:] = 2
    for fn in (nbops.cross_entropy, nbops.nll_loss):
        assert np.isnan(fn(x, t, ignore_index=2))
        assert np.isnan(fn(x, t, w, ignore_index=2))
        assert fn(x, t, ignore_index=2, reduction="sum") == 0
        np.testing.assert_array_equal(fn(x, t, ignore_index=2, reduction="none"), 0)
    assert np.isnan(nbops.cross_entropy(x, t, ignore_index=2, label_smoothing=0.2))
    e = np.empty((0, 3), dtype)
    te = np.empty(0, np.int64)
    for fn in (nbops.cross_entropy, nbops.nll_loss):
        m = fn(e, te)
        assert type(m) is dtype and np.isnan(m)
        assert fn(e, te, reduction="sum") == 0
        none = fn(e, te, reduction="none")
        assert none.shape == (0,) and none.dtype == dtype
    assert np.isnan(nbops.cross_entropy(e, e))
    assert nbops.cross_entropy(e, e, reduction="sum") == 0
    assert nbops.cross_entropy(np.empty((2, 3, 0), dtype), np.empty((2, 0), np.int64),
                               reduction="none").shape == (2, 0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_inf_and_nan_logits(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.array([[-INF, -INF, -INF], [INF, 1, 2], [NAN, 1, 2], [-INF, 1, 2], [1, -INF, 2],
                  [1e38, -1e38, 0], [0, 0, 0]], dtype)
    t = np.array([0, 1, 2, 1, 1, 1, 2])
    w = np.array([1.0, 0.0, 2.0], dtype)
    p = np.full(x.shape, 1 / 3, dtype)
    p[4] = [0.5, 0.0, 0.5]
    tx, tt, tw, tp = (torch.from_numpy(a) for a in (x, t, w, p))
    for red in REDUCTIONS:
        for weight, tweight in ((None, None), (w, tw)):
            for ls in (0.0, 0.1):
                with np.errstate(invalid="ignore", over="ignore"):
                    exp = F.cross_entropy(tx, tt, tweight, reduction=red,
                                          label_smoothing=ls).numpy()
                    got = nbops.cross_entropy(x, t, weight, reduction=red, label_smoothing=ls)
                np.testing.assert_allclose(got, exp, equal_nan=True, **tol(dtype))
                check(got, ref_index(x, t, weight, red=red, ls=ls), dtype)
                exp = F.cross_entropy(tx, tp, tweight, reduction=red, label_smoothing=ls).numpy()
                got = nbops.cross_entropy(x, p, weight, reduction=red, label_smoothing=ls)
                np.testing.assert_allclose(got, exp, equal_nan=True, **tol(dtype))
            exp = F.nll_loss(tx, tt, tweight, reduction=red).numpy()
            got = nbops.nll_loss(x, t, weight, reduction=red)
            np.testing.assert_allclose(got, exp, equal_nan=True, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_non_contiguous_inputs(dtype):
    x, t, w, p = case((6, 5), dtype)
    xf = np.asfortranarray(x)  # the transposed view is used as (1, C, N)
    xs = np.ascontiguousarray(np.repeat(x, 2, axis=1))[:, ::2]
    for xv in (xf, xs, x[::-1][::-1]):
        for red in REDUCTIONS:
            check(nbops.cross_entropy(xv, t, w, ignore_index=1, reduction=red,
                                      label_smoothing=0.2),
                  ref_index(x, t, w, 1, red, 0.2), dtype)
            check(nbops.nll_loss(xv, t, w, reduction=red), ref_index(x, t, w, red=red,
                                                                      logits=False), dtype)
            check(nbops.cross_entropy(xv, np.asfortranarray(p), reduction=red),
                  ref_prob(x, p, red=red), dtype)
    x4, t4, w4, p4 = case((2, 3, 4, 5), dtype)
    x4v = np.ascontiguousarray(x4.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # channels last
    check(nbops.cross_entropy(x4v, t4[:, ::-1, :], w4, reduction="none"),
          ref_index(x4, t4[:, ::-1, :], w4, red="none"), dtype)
    check(nbops.cross_entropy(x4v, p4, reduction="sum"), ref_prob(x4, p4, red="sum"), dtype)


def test_mixed_dtypes():
    x, t, w, p = case((5, 4), np.float32)
    check(nbops.cross_entropy(x, t, w.astype(np.float64)), ref_index(x, t, w), np.float32)
    check(nbops.cross_entropy(x, p.astype(np.float64)), ref_prob(x, p), np.float32)
    xi = (x * 10).astype(np.int64)
    check(nbops.cross_entropy(xi, t), ref_index(xi, t), np.float64)  # ints: float64
    x16 = x.astype(np.float16)
    got = nbops.cross_entropy(x16, t, reduction="none")
    assert got.dtype == np.float16
    np.testing.assert_allclose(got, ref_index(x16, t, red="none"), rtol=2e-3)


def test_deprecated_size_average_and_reduce():
    x, t, w, _ = case((6, 4), np.float64)
    mapping = [((None, False), "none"), ((False, None), "sum"), ((True, True), "mean"),
               ((False, False), "none"), ((None, True), "mean")]
    for (size_average, reduce), red in mapping:
        for fn, logits in ((nbops.cross_entropy, True), (nbops.nll_loss, False)):
            with pytest.warns(DeprecationWarning):
                got = fn(x, t, w, size_average=size_average, reduce=reduce, reduction="sum")
            np.testing.assert_allclose(got, ref_index(x, t, w, red=red, logits=logits))


# ------------------------------------------------------------ bad input
def test_bad_targets_raise_before_any_kernel():
    x = np.zeros((100_000, 4), np.float32)
    t = np.zeros(100_000, np.int64)
    for bad in (4, 10**12, -1, -(10**12)):
        t[-1] = bad  # near the end of a large input: a read there would crash
        for fn in (nbops.cross_entropy, nbops.nll_loss):
            with pytest.raises(ValueError, match="target"):
                fn(x, t)
    t[-1] = -100
    assert nbops.nll_loss(x, t) == 0  # ignore_index is excluded from the check
    t[-1] = -7
    assert nbops.cross_entropy(x, t, ignore_index=-7, reduction="sum") > 0
    with pytest.raises(ValueError, match="target"):
        nbops.cross_entropy(x, t)
    with pytest.raises(ValueError, match="target"):
        nbops.cross_entropy(x[0], 4)
    for bad in (t.astype(np.float32)[:, None][:, [0, 0]], np.zeros(100_000, np.float64)):
        with pytest.raises(TypeError, match="target"):
            nbops.cross_entropy(x, bad)
    with pytest.raises(TypeError, match="target"):
        nbops.nll_loss(x, np.zeros((100_000, 4), np.float32))  # no probabilities in nll_loss
    with pytest.raises(TypeError, match="target"):
        nbops.cross_entropy(x, np.zeros((100_000, 4), np.int64))  # probabilities must be float


def test_bad_shapes_and_options():
    x = np.zeros((6, 4))
    t = np.zeros(6, np.int64)
    with pytest.raises(ValueError, match=r"\(5,\).*\(6, 4\)"):
        nbops.cross_entropy(x, t[:5])
    with pytest.raises(ValueError, match=r"\(6, 2\).*\(6, 4, 3\)"):
        nbops.nll_loss(np.zeros((6, 4, 3)), np.zeros((6, 2), np.int64))
    with pytest.raises(ValueError, match="weight"):
        nbops.cross_entropy(x, t, weight=np.ones(3))
    with pytest.raises(ValueError, match="reduction"):
        nbops.cross_entropy(x, t, reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        nbops.cross_entropy(x, t, label_smoothing=1.5)
    with pytest.raises(ValueError, match="ignore_index"):
        nbops.cross_entropy(x, np.full((6, 4), 0.25), ignore_index=1)
    with pytest.raises(TypeError, match="ignore_index"):
        nbops.nll_loss(x, t, ignore_index=1.5)
    with pytest.raises(ValueError, match="input"):
        nbops.cross_entropy(np.float64(1.0), np.int64(0))
    with pytest.raises(TypeError, match="complex"):
        nbops.cross_entropy(x.astype(np.complex128), t)


# ------------------------------------------------------------ PyTorch parity
@pytest.mark.parametrize("dtype", DTYPES)
def test_torch_parity_every_option(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for shape in ((5,), (7, 4), (3, 4, 5), (2, 3, 4, 5)):
        x, t, w, p = case(shape, dtype, seed=7)
        tx, tt, tw, tp = (torch.from_numpy(a) for a in (x, t, w, p))
        for red in REDUCTIONS:
            for weight, tweight in ((None, None), (w, tw)):
                for ignore in (-100, 1, 3):
                    for ls in (0.0, 0.2):
                        exp = F.cross_entropy(tx, tt, tweight, ignore_index=ignore,
                                              reduction=red, label_smoothing=ls).numpy()
                        got = nbops.cross_entropy(x, t, weight, ignore_index=ignore,
                                                  reduction=red, label_smoothing=ls)
                        check(got, exp, dtype, (shape, red, ignore, ls))
                    exp = F.nll_loss(tx, tt, tweight, ignore_index=ignore,
                                     reduction=red).numpy()
                    check(nbops.nll_loss(x, t, weight, ignore_index=ignore, reduction=red),
                          exp, dtype, (shape, red, ignore))
                for ls in (0.0, 0.2):
                    exp = F.cross_entropy(tx, tp, tweight, reduction=red,
                                          label_smoothing=ls).numpy()
                    check(nbops.cross_entropy(x, p, weight, reduction=red, label_smoothing=ls),
                          exp, dtype, (shape, "prob", red, ls))
    x, t, _, _ = case((4, 3), dtype)
    t[:] = 1
    tx, tt = torch.from_numpy(x), torch.from_numpy(t)
    for ls in (0.0, 0.3):  # everything ignored
        exp = F.cross_entropy(tx, tt, ignore_index=1, label_smoothing=ls).numpy()
        np.testing.assert_array_equal(nbops.cross_entropy(x, t, ignore_index=1,
                                                          label_smoothing=ls), exp)


# ------------------------------------------------------------ threads
_THREAD_SCRIPT = r"""
import json, sys
import numpy as np
import nbops
rng = np.random.default_rng(0)
x = (rng.standard_normal((1024, 200)) * 3).astype(np.float32)
t = rng.integers(0, 200, 1024)
t[::7] = -100
w = rng.random(200).astype(np.float32)
x4 = (rng.standard_normal((4, 50, 30, 30)) * 3).astype(np.float32)
t4 = rng.integers(0, 50, (4, 30, 30))
p = nbops.softmax(x[:, ::-1].copy())
x5 = rng.standard_normal((5, 7, 300))  # float64 column path: its chunk sums
t5 = rng.integers(0, 7, (5, 300))
res = {
    "ce64_cols": [float(nbops.cross_entropy(x5, t5)),
                  float(nbops.cross_entropy(x5, t5, reduction="sum", label_smoothing=0.1)),
                  float(nbops.nll_loss(nbops.log_softmax(x5, 1), t5))],
    "softmax": nbops.softmax(x).tobytes().hex(),
    "log_softmax_cols": nbops.log_softmax(x4, 1).tobytes().hex(),
    "ce": [float(nbops.cross_entropy(x, t, w, label_smoothing=0.1)),
           float(nbops.cross_entropy(x4, t4, reduction="sum")),
           float(nbops.nll_loss(x, t, w)), float(nbops.cross_entropy(x, p))],
    "ce_none": nbops.cross_entropy(x4, t4, reduction="none").tobytes().hex(),
}
json.dump(res, sys.stdout)
"""


def _run_threads(n, threshold):
    env = dict(os.environ, NUMBA_NUM_THREADS=str(n), NBOPS_PARALLEL_THRESHOLD=str(threshold))
    out = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env, check=True,
                         capture_output=True, text=True, timeout=600).stdout
    return json.loads(out)


def test_results_identical_on_any_thread_count():
    """Parallel kernels on 1 and 2 threads and the serial kernels: the same bits."""
    one = _run_threads(1, 1000)
    two = _run_threads(2, 1000)
    serial = _run_threads(2, 10**12)
    assert one == two
    assert serial == two


# ------------------------------------------------------------ inside @njit
@numba.njit
def _jit_index(x, t, w):
    return (nbops.cross_entropy(x, t), nbops.cross_entropy(x, t, w, reduction="none"),
            nbops.cross_entropy(x, t, w, None, 1, None, "sum", 0.2),
            nbops.nll_loss(x, t, w, ignore_index=1, reduction="mean"),
            nbops.nll_loss(x, t, reduction="none"))


@numba.njit
def _jit_prob(x, p, w):
    return (nbops.cross_entropy(x, p, w, reduction="none", label_smoothing=0.1),
            nbops.cross_entropy(x, p))


@numba.njit
def _jit_bad(x, t):
    return nbops.cross_entropy(x, t, reduction="sum")


def test_inside_njit():
    # every form on float32 (N, C); compile time limits the rest to one call each
    x, t, w, p = case((6, 4), np.float32)
    a, b, c, d, e = _jit_index(x, t, w)
    assert isinstance(a, float) and isinstance(b, np.ndarray)  # literal reductions
    np.testing.assert_allclose(a, ref_index(x, t), rtol=1e-5)
    check(b, ref_index(x, t, w, red="none"), np.float32)
    np.testing.assert_allclose(c, ref_index(x, t, w, 1, "sum", 0.2), rtol=1e-5)
    np.testing.assert_allclose(d, ref_index(x, t, w, 1, logits=False), rtol=1e-5)
    check(e, ref_index(x, t, red="none", logits=False), np.float32)
    x4, t4, w4, p4 = case((2, 3, 4, 5), np.float64)
    f, g = _jit_prob(x4, p4, w4)
    check(f, ref_prob(x4, p4, w4, "none", 0.1), np.float64)
    np.testing.assert_allclose(g, ref_prob(x4, p4), rtol=1e-12)
    np.testing.assert_allclose(_jit_bad(x4, t4), ref_index(x4, t4, red="sum"), rtol=1e-12)
    t4[1, 2, 3] = 9
    with pytest.raises(ValueError, match="out of range"):
        _jit_bad(x4, t4)


def test_inside_njit_reduction_must_be_literal():
    @numba.njit
    def runtime_reduction(x, t, red):
        return nbops.cross_entropy(x, t, reduction=red)

    x, t, _, _ = case((3, 4), np.float64)
    with pytest.raises(numba.core.errors.TypingError, match="literal"):
        runtime_reduction(x, t, "mean")
