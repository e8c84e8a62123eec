"""Tests of the elementwise losses: l1_loss, mse_loss, smooth_l1_loss, kl_div,
binary_cross_entropy, binary_cross_entropy_with_logits.

Expected values come from the independent float64 NumPy formulas below (REF)
or from PyTorch, never from nbops itself. Compile time is the cost here, so
the arrays are small, the dtypes few, and compiled kernels are shared.
"""

import os
import subprocess
import sys
import textwrap
import warnings

import _reference as R
import numba
import numpy as np
import pytest

import nbops
from nbops._ops import table
from nbops.scalar import losses as SL

# The pointwise losses of the op table (nbops/_ops/table.py): l1_loss, mse_loss,
# smooth_l1_loss, ... Each is tested below with its float64 reference from
# tests/_reference.py (a missing reference fails), with its default and its
# example parameters, with a weight where it takes one.
POINTWISE = table.pointwise_loss_entries()

FLOATS = (np.float32, np.float64)
REDUCTIONS = ("none", "mean", "sum")
TOL = {np.dtype(np.float32): dict(rtol=2e-5, atol=2e-6),
       np.dtype(np.float64): dict(rtol=1e-12, atol=1e-13)}


# --------------------------------------------------------------------------- #
# float64 reference formulas (PyTorch's CPU definitions)
# --------------------------------------------------------------------------- #
def _f64(a):
    return np.asarray(a, dtype=np.float64)


ref_l1 = R.l1_loss
ref_mse = R.mse_loss
ref_smooth_l1 = R.smooth_l1_loss


def ref_kl(x, t, log_target=False):
    x, t = _f64(x), _f64(t)
    with np.errstate(all="ignore"):
        if log_target:
            return np.exp(t) * (t - x)
        xlogy = np.where(t == 0, 0.0, t * np.log(np.where(t == 0, 1.0, t)))
        xlogy = np.where(np.isnan(t), np.nan, xlogy)
        return xlogy - t * x


def ref_bce(x, t, weight=None):
    x, t = _f64(x), _f64(t)
    with np.errstate(all="ignore"):
        a = np.maximum(np.log1p(-x), -100.0)
        b = np.maximum(np.log(x), -100.0)
    loss = -(t * b + (1 - t) * a)
    return loss if weight is None else loss * _f64(weight)


def ref_bce_logits(x, t, weight=None, pos_weight=None):
    x, t = _f64(x), _f64(t)
    with np.errstate(all="ignore"):
        log_sig = np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))
        lw = 1.0 if pos_weight is None else (_f64(pos_weight) - 1) * t + 1
        loss = (1 - t) * x - lw * log_sig
    return loss if weight is None else loss * _f64(weight)


def reduce_ref(loss, reduction, divisor=None):
    if reduction == "none":
        return loss
    s = loss.sum()
    if reduction == "sum":
        return s
    with np.errstate(all="ignore"):
        return s / (loss.size if divisor is None else divisor)


def assert_close(got, exp, dtype, what=""):
    dtype = np.dtype(dtype)
    if np.ndim(exp) == 0:
        assert type(got) is dtype.type, f"{what}: got {type(got)}, expected {dtype.type}"
    else:
        assert isinstance(got, np.ndarray) and got.dtype == dtype, (what, type(got))
        assert got.shape == np.shape(exp), (what, got.shape, np.shape(exp))
    np.testing.assert_allclose(np.asarray(got, np.float64), exp, equal_nan=True,
                               err_msg=what, **TOL[dtype])


# --------------------------------------------------------------------------- #
# data
# --------------------------------------------------------------------------- #
SHAPE = (6, 5)


def data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    d = dict(
        x=rng.standard_normal(SHAPE) * 2,
        y=rng.standard_normal(SHAPE) * 2,
        p=rng.uniform(0, 1, SHAPE),
        q=rng.uniform(0, 1, SHAPE),
        w=rng.uniform(0, 2, SHAPE),
        wc=rng.uniform(0.5, 2, SHAPE[-1:]),  # along the last axis
        wr=rng.uniform(0.5, 2, (SHAPE[0], 1)),  # per row
    )
    d["q"][0, :2] = (0.0, 1.0)  # exact 0 and 1 targets
    d["p"][1, :2] = (0.0, 1.0)  # probabilities at the clamp
    d["x"][0, 0] = d["y"][0, 0]  # a zero difference
    return {k: v.astype(dtype) for k, v in d.items()}


# (name, call(d, reduction), reference(d) -> (loss, mean divisor))
CASES = {
    "smooth_l1_beta": (lambda d, r: nbops.smooth_l1_loss(d["x"], d["y"], reduction=r,
                                                         beta=2.5),
                       lambda d: (ref_smooth_l1(d["x"], d["y"], 2.5), None)),
    "smooth_l1_beta0": (lambda d, r: nbops.smooth_l1_loss(d["x"], d["y"], reduction=r,
                                                          beta=0),
                        lambda d: (ref_l1(d["x"], d["y"]), None)),
    "kl": (lambda d, r: nbops.kl_div(d["x"], d["q"], reduction=r),
           lambda d: (ref_kl(d["x"], d["q"]), None)),
    "kl_log": (lambda d, r: nbops.kl_div(d["x"], d["y"], reduction=r, log_target=True),
               lambda d: (ref_kl(d["x"], d["y"], True), None)),
    "bce": (lambda d, r: nbops.binary_cross_entropy(d["p"], d["q"], reduction=r),
            lambda d: (ref_bce(d["p"], d["q"]), None)),
    "bce_weight": (lambda d, r: nbops.binary_cross_entropy(d["p"], d["q"], d["wc"],
                                                           reduction=r),
                   lambda d: (ref_bce(d["p"], d["q"], d["wc"]), None)),
    "bce_logits": (lambda d, r: nbops.binary_cross_entropy_with_logits(d["x"], d["q"],
                                                                       reduction=r),
                   lambda d: (ref_bce_logits(d["x"], d["q"]), None)),
    "bce_logits_w_pw": (lambda d, r: nbops.binary_cross_entropy_with_logits(
        d["x"], d["q"], d["wr"], reduction=r, pos_weight=d["wc"]),
        lambda d: (ref_bce_logits(d["x"], d["q"], d["wr"], d["wc"]), None)),
    "bce_logits_full_w": (lambda d, r: nbops.binary_cross_entropy_with_logits(
        d["x"], d["q"], d["w"], reduction=r, pos_weight=d["w"]),
        lambda d: (ref_bce_logits(d["x"], d["q"], d["w"], d["w"]), None)),
}


def _weighted_divisor(entry, w):
    """What a table loss's weighted 'mean' divides by (None: the element count)."""
    if w is None or entry.mean_divisor == "count":
        return None
    return _f64(w).sum()


def _pointwise_cases(entry):
    """``{case: (call, reference)}`` of a table loss: its defaults, its example
    parameters, and a weight where it takes one."""
    f, ref = entry.function, R.reference(entry.name)
    cases = {entry.name: ({}, None)}
    if entry.params:
        cases[f"{entry.name}_example"] = (entry.example_params(), None)
    if entry.weight:
        cases[f"{entry.name}_weight"] = ({}, "w")
    return {name: ((lambda d, r, kw=kw, w=w: f(d["x"], d["y"], reduction=r, **kw,
                                              **({"weight": d[w]} if w else {}))),
                   (lambda d, kw=kw, w=w: (ref(d["x"], d["y"], **kw) * (d[w] if w else 1),
                                           _weighted_divisor(entry, d[w] if w else None))))
            for name, (kw, w) in cases.items()}


for _entry in POINTWISE:
    CASES.update(_pointwise_cases(_entry))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_reference(case, dtype):
    call, ref = CASES[case]
    d = data(dtype)
    copies = {k: v.copy() for k, v in d.items()}
    loss, divisor = ref(d)
    for r in REDUCTIONS:
        assert_close(call(d, r), reduce_ref(loss, r, divisor), dtype, f"{case} {r}")
    for k in d:  # nothing the caller passed is modified
        np.testing.assert_array_equal(d[k], copies[k])


# --------------------------------------------------------------------------- #
# PyTorch parity, every option
# --------------------------------------------------------------------------- #
def _torch_cases(d):
    """(name, nbops call, torch call) with the same arguments."""
    x, y, p, q, w, wc, wr = (d[k] for k in ("x", "y", "p", "q", "w", "wc", "wr"))
    for e in POINTWISE:
        yield e.name, e.function, (x, y), {}
        if e.params:
            yield e.name + " example", e.function, (x, y), e.example_params()
        if e.weight:
            yield e.name + " weight", e.function, (x, y), dict(weight=w)
    for beta in (1.0, 0.3, 0.0):
        yield f"smooth beta={beta}", nbops.smooth_l1_loss, (x, y), dict(beta=beta)
    for lt in (False, True):
        yield f"kl log_target={lt}", nbops.kl_div, (x, y if lt else q), dict(log_target=lt)
    yield "bce", nbops.binary_cross_entropy, (p, q), {}
    for name, wt in (("full", w), ("last axis", wc), ("row", wr)):
        yield f"bce weight {name}", nbops.binary_cross_entropy, (p, q), dict(weight=wt)
    f = nbops.binary_cross_entropy_with_logits
    yield "bcel", f, (x, q), {}
    for name, kw in (("weight", dict(weight=w)), ("pos_weight", dict(pos_weight=wc)),
                     ("both", dict(weight=wr, pos_weight=wc)),
                     ("full pos_weight", dict(pos_weight=w))):
        yield f"bcel {name}", f, (x, q), kw


@pytest.mark.parametrize("dtype", FLOATS)
def test_torch_parity(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    d = data(dtype, seed=1)
    for name, fn, args, kw in _torch_cases(d):
        tf = getattr(F, fn.__name__)
        targs = [torch.from_numpy(a) for a in args]
        tkw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
               for k, v in kw.items()}
        reds = REDUCTIONS + (("batchmean",) if fn is nbops.kl_div else ())
        for r in reds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # PyTorch's, on its legacy flags
                exp = tf(*targs, reduction=r, **tkw).numpy()
            got = fn(*args, reduction=r, **kw)
            assert_close(got, exp.astype(np.float64) if r == "none" else float(exp), dtype,
                         f"{name} {r}")


@pytest.mark.parametrize("legacy", [(None, False), (False, None), (False, True),
                                    (True, False), (True, True), (False, False)])
def test_legacy_flags(legacy):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    d = data(np.float64)
    sa, rd = legacy
    tx, ty, tq = (torch.from_numpy(d[k]) for k in ("x", "y", "q"))
    for fn, args, targs in ((nbops.mse_loss, (d["x"], d["y"]), (tx, ty)),
                            (nbops.kl_div, (d["x"], d["q"]), (tx, tq))):
        with pytest.warns(DeprecationWarning):
            got = fn(*args, size_average=sa, reduce=rd, reduction="sum")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # PyTorch's, on its legacy flags
            exp = getattr(F, fn.__name__)(*targs, size_average=sa, reduce=rd,
                                          reduction="sum").numpy()
        np.testing.assert_allclose(got, exp, rtol=1e-12)
    # PyTorch divides by the batch size whenever reduction='batchmean', even
    # when the legacy flags choose the reduction
    with pytest.warns(DeprecationWarning):
        got = nbops.kl_div(d["x"], d["q"], size_average=sa, reduce=rd, reduction="batchmean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # PyTorch's, on its legacy flags
        exp = F.kl_div(tx, tq, size_average=sa, reduce=rd, reduction="batchmean").numpy()
    np.testing.assert_allclose(got, exp, rtol=1e-12)


# --------------------------------------------------------------------------- #
# shapes: broadcasting, empty, 0-d, non-contiguous
# --------------------------------------------------------------------------- #
def test_broadcasting_regression_warns_like_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.arange(4.0).reshape(4, 1)
    y = np.array([0.5, 1.5, -2.0])
    wt = np.array([[1.0], [2.0], [0.5], [3.0]])
    for fn in (e.function for e in POINTWISE if e.name != "soft_margin_loss"):
        # (soft_margin_loss rejects a target that grows the input's shape, as
        # PyTorch: tests/test_losses_issue17.py::test_soft_margin_target_shape)
        kws = [{}, dict(weight=wt)] if table.TABLE[fn.__name__].weight else [{}]
        for kw in kws:
            tkw = {k: torch.from_numpy(v) for k, v in kw.items()}
            for r in REDUCTIONS:
                with pytest.warns(UserWarning, match="target size"):
                    got = fn(x, y, reduction=r, **kw)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)  # PyTorch's, on its legacy flags
                    exp = getattr(F, fn.__name__)(torch.from_numpy(x), torch.from_numpy(y),
                                                  reduction=r, **tkw).numpy()
                assert np.shape(got) == exp.shape
                np.testing.assert_allclose(got, exp, rtol=1e-12)
    # kl_div broadcasts silently, as PyTorch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = nbops.kl_div(x, np.abs(y), reduction="none")
    np.testing.assert_allclose(got, ref_kl(x, np.abs(y)), rtol=1e-12)


def test_shape_errors():
    x = np.zeros((3, 4))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"\(3, 4\).*\(5,\)"):
        nbops.mse_loss(x, np.zeros(5))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 4\)"):
        nbops.kl_div(x, np.zeros((2, 4)))
    for fn in (nbops.binary_cross_entropy, nbops.binary_cross_entropy_with_logits):
        with pytest.raises(ValueError, match="target"):
            fn(x, np.zeros((1, 4)))
    with pytest.raises(ValueError, match="weight"):
        nbops.mse_loss(x, x, weight=np.ones(4))
    with pytest.raises(ValueError, match="weight"):
        nbops.binary_cross_entropy(x, x, weight=np.ones((2, 3, 4)))
    with pytest.raises(ValueError, match="weight"):
        nbops.binary_cross_entropy_with_logits(x, x, weight=np.ones(3))
    with pytest.raises(ValueError, match="pos_weight"):
        nbops.binary_cross_entropy_with_logits(x, x, pos_weight=np.ones(3))
    with pytest.raises(ValueError, match="pos_weight"):
        nbops.binary_cross_entropy_with_logits(x, x, pos_weight=np.ones((2, 1, 4)))


@pytest.mark.parametrize("shape", [(0,), (3, 0)])
def test_empty(shape):
    x = np.zeros(shape, np.float32)
    for fn, args in (*((e.function, (x, x)) for e in POINTWISE), (nbops.kl_div, (x, x)),
                     (nbops.binary_cross_entropy, (x, x)),
                     (nbops.binary_cross_entropy_with_logits, (x, x))):
        none = fn(*args, reduction="none")
        assert none.shape == shape and none.dtype == np.float32
        s = fn(*args, reduction="sum")
        assert type(s) is np.float32 and s == 0
        m = fn(*args, reduction="mean")
        assert type(m) is np.float32 and np.isnan(m)
    assert np.isnan(nbops.kl_div(x, x, reduction="batchmean")) == (shape[0] == 0)
    assert np.isnan(nbops.mse_loss(x, x, weight=x))  # 0 / sum(weight) = 0 / 0


def test_zero_dim():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, y = np.array(0.7), np.array(0.2)
    for fn in (*(e.function for e in POINTWISE), nbops.kl_div, nbops.binary_cross_entropy,
               nbops.binary_cross_entropy_with_logits):
        tf = getattr(F, fn.__name__)
        for r in REDUCTIONS + (("batchmean",) if fn is nbops.kl_div else ()):
            got = fn(x, y, reduction=r)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # PyTorch's, on its legacy flags
                exp = tf(torch.from_numpy(x), torch.from_numpy(y), reduction=r).numpy()
            assert np.shape(got) == exp.shape
            np.testing.assert_allclose(got, exp, rtol=1e-12)


@pytest.mark.parametrize("dtype", FLOATS)
def test_non_contiguous(dtype):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((8, 10)).astype(dtype)
    tbase = rng.uniform(0, 1, (8, 10)).astype(dtype)
    views = {
        "F order": (np.asfortranarray(base), np.asfortranarray(tbase)),
        "C and F": (base, np.asfortranarray(tbase)),
        "strided": (base[::2, 1::3], tbase[1::2, 2::3]),
        "negative": (base[::-1, ::-2], tbase[::-1, ::-2]),
        "transposed": (base.T, tbase.T),
    }
    wc = rng.uniform(0.5, 2, 10).astype(dtype)
    for name, (x, t) in views.items():
        for r in REDUCTIONS:
            assert_close(nbops.mse_loss(x, t, reduction=r), reduce_ref(ref_mse(x, t), r),
                         dtype, f"mse {name} {r}")
            assert_close(nbops.kl_div(x, t, reduction=r), reduce_ref(ref_kl(x, t), r),
                         dtype, f"kl {name} {r}")
            pw = wc[: x.shape[-1]]
            assert_close(nbops.binary_cross_entropy_with_logits(x, t, reduction=r,
                                                                pos_weight=pw),
                         reduce_ref(ref_bce_logits(x, t, pos_weight=pw), r), dtype,
                         f"bcel {name} {r}")
    out = nbops.mse_loss(views["F order"][0], views["F order"][1], reduction="none")
    assert out.flags.f_contiguous  # the memory order of the inputs is kept


def test_dtypes():
    x16 = np.array([0.25, 0.5, 2.0], np.float16)
    for r in REDUCTIONS:
        got = nbops.mse_loss(x16, np.zeros(3, np.float16), reduction=r)
        assert np.asarray(got).dtype == np.float16
    got = nbops.mse_loss(np.array([1, 2, 3]), np.array([0, 0, 0]))
    assert type(got) is np.float64 and got == np.float64(14 / 3)
    got = nbops.l1_loss(np.ones(3, np.float32), np.zeros(3, np.float64), reduction="sum")
    assert type(got) is np.float64
    got = nbops.l1_loss([1.0, 2.0], [0.5, 0.5])  # array-likes
    assert got == 1.0
    with pytest.raises(TypeError, match="target"):
        nbops.mse_loss(np.ones(2), np.ones(2, complex))


# --------------------------------------------------------------------------- #
# extremes and NaN: as PyTorch
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("dtype", FLOATS)
def test_extremes_torch(dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    inf, nan = np.inf, np.nan
    logits = np.array([inf, inf, -inf, -inf, 1e4, -1e4, 1e4, -1e4, 0, nan, 3.0, 50.0, -50.0],
                      dtype)
    tgt = np.array([1, 0, 1, 0, 0, 1, 1, 0, 0.5, 1, nan, 0.3, 0.7], dtype)
    pw = np.full(logits.shape, 2.5, dtype)
    probs = np.array([0, 1, 0, 1, 1e-30, 1 - 1e-7, 0.5], dtype)
    ptgt = np.array([0, 1, 1, 0, 1, 0.5, 0.25], dtype)
    x = np.array([inf, -inf, nan, 1.0, -inf, 2.0, 1e30, 5.0], dtype)
    y = np.array([inf, 1.0, 0.0, nan, 0.0, 0.0, -1e30, 2.0], dtype)
    kq = np.array([0.0, 0.0, 0.0, 0.5, nan, -1.0, 1.0, 1e-30], dtype)
    cases = [
        ("bcel", nbops.binary_cross_entropy_with_logits, (logits, tgt), {}),
        ("bcel pw", nbops.binary_cross_entropy_with_logits, (logits, tgt),
         dict(pos_weight=pw)),
        ("bce", nbops.binary_cross_entropy, (probs, ptgt), {}),
        *((e.name, e.function, (x, y), {}) for e in POINTWISE),
        *((e.name + " example", e.function, (x, y), e.example_params())
          for e in POINTWISE if e.params),
        ("kl", nbops.kl_div, (x, kq), {}),
        ("kl log", nbops.kl_div, (x, y), dict(log_target=True)),
    ]
    for name, fn, args, kw in cases:
        tf = getattr(F, fn.__name__)
        tkw = {k: torch.from_numpy(v) for k, v in kw.items() if isinstance(v, np.ndarray)}
        tkw.update({k: v for k, v in kw.items() if not isinstance(v, np.ndarray)})
        with np.errstate(all="ignore"):
            exp = tf(*(torch.from_numpy(a) for a in args), reduction="none", **tkw).numpy()
            got = fn(*args, reduction="none", **kw)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(exp), err_msg=name)
        np.testing.assert_array_equal(np.isinf(got), np.isinf(exp), err_msg=name)
        fin = np.isfinite(exp)
        np.testing.assert_allclose(got[fin], exp[fin], err_msg=name, **TOL[np.dtype(dtype)])
    # the -100 clamp
    b = nbops.binary_cross_entropy(np.array([0.0, 1.0], dtype), np.array([1.0, 0.0], dtype),
                                   reduction="none")
    np.testing.assert_array_equal(b, [100.0, 100.0])


def test_bce_probability_errors():
    good = np.full(4, 0.5)
    for bad in (1.5, -0.1, np.nan, np.inf):
        v = good.copy()
        v[2] = bad
        before = v.copy()
        with pytest.raises(ValueError, match="input"):
            nbops.binary_cross_entropy(v, good)
        with pytest.raises(ValueError, match="target"):
            nbops.binary_cross_entropy(good, v, reduction="none")
        with pytest.raises(ValueError, match="input"):  # weighted path too
            nbops.binary_cross_entropy(v, good, weight=good)
        np.testing.assert_array_equal(v, before)
    # several chunks of the check kernel (parallel from its threshold)
    big = np.full(200_003, 0.5, np.float32)
    for bad in (1.5, -0.1, np.nan, np.inf):
        v = big.copy()
        v[-1] = bad
        with pytest.raises(ValueError, match=r"input.*\(1 of 200003"):
            nbops.binary_cross_entropy(v, big)
        with pytest.raises(ValueError, match="target"):
            nbops.binary_cross_entropy(big, v)


def test_argument_errors():
    x = np.ones(3)
    for fn in (*(e.function for e in POINTWISE), nbops.kl_div,
               nbops.binary_cross_entropy, nbops.binary_cross_entropy_with_logits):
        with pytest.raises(ValueError, match="reduction"):
            fn(x, x * 0.5, reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        nbops.mse_loss(x, x, reduction="batchmean")  # only kl_div has it
    with pytest.raises(ValueError, match="beta"):
        nbops.smooth_l1_loss(x, x, beta=-0.5)
    with pytest.raises(TypeError, match="beta"):
        nbops.smooth_l1_loss(x, x, beta="a")


def test_signatures_match_torch():
    torch = pytest.importorskip("torch")
    import inspect
    for name in (*(e.name for e in POINTWISE), "kl_div", "binary_cross_entropy",
                 "binary_cross_entropy_with_logits"):
        ours = inspect.signature(getattr(nbops, name)).parameters
        theirs = inspect.signature(getattr(torch.nn.functional, name)).parameters
        assert list(ours) == list(theirs), name
        assert [p.default for p in ours.values()] == [p.default for p in theirs.values()]


# --------------------------------------------------------------------------- #
# scalar cores and the float32 log
# --------------------------------------------------------------------------- #
@numba.njit
def _vlog(x, out, which):
    for i in range(x.size):
        out[i] = SL.log(x[i]) if which == 0 else SL.log1p(x[i])


def test_float32_log_accuracy():
    bits = np.arange(1, 0x7F800000, 9973, dtype=np.uint32)  # positive finite floats
    x = bits.view(np.float32)
    for which, ref, arg in ((0, np.log, x), (1, np.log1p, np.concatenate([-x[x < 1], x]))):
        out = np.empty_like(arg)
        _vlog(arg, out, which)
        exact = ref(arg.astype(np.float64))
        ulp = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
        assert np.max(np.abs(out - exact) / ulp) < 2.0
    special = np.array([0.0, -0.0, -1.0, np.inf, -np.inf, np.nan, 1.0, 1e-45], np.float32)
    out = np.empty_like(special)
    _vlog(special, out, 0)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out, np.log(special))
    _vlog(special, out, 1)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(out, np.log1p(special))


# --------------------------------------------------------------------------- #
# inside user @njit code (one compiled function for all the losses)
# --------------------------------------------------------------------------- #
@numba.njit
def _njit_losses(x, y, p, q, w, wc, wr):
    return (nbops.l1_loss(x, y),
            nbops.mse_loss(x, y, reduction="none"),
            nbops.mse_loss(x, y, reduction="mean", weight=w),
            nbops.smooth_l1_loss(x, y, reduction="sum", beta=0.5),
            nbops.kl_div(x, q, reduction="batchmean"),
            nbops.kl_div(x, y, reduction="none", log_target=True),
            nbops.binary_cross_entropy(p, q, wc, reduction="sum"),
            nbops.binary_cross_entropy_with_logits(x, q, wr, reduction="none",
                                                   pos_weight=wc),
            nbops.binary_cross_entropy_with_logits(x, q))


def test_njit():
    d = data(np.float32, seed=4)
    args = [d[k] for k in ("x", "y", "p", "q", "w", "wc", "wr")]
    got = _njit_losses(*args)
    x, y, p, q, w, wc, wr = args
    exp = (ref_l1(x, y).mean(), ref_mse(x, y), (ref_mse(x, y) * w).sum() / _f64(w).sum(),
           ref_smooth_l1(x, y, 0.5).sum(), ref_kl(x, q).sum() / x.shape[0],
           ref_kl(x, y, True), ref_bce(p, q, wc).sum(),
           ref_bce_logits(x, q, wr, wc), ref_bce_logits(x, q).mean())
    for i, (g, e) in enumerate(zip(got, exp, strict=True)):
        np.testing.assert_allclose(g, e, err_msg=str(i), **TOL[np.dtype(np.float32)])
    rtype = _njit_losses.nopython_signatures[0].return_type
    assert all(getattr(ty, "dtype", ty) == numba.float32 for ty in rtype), rtype
    with pytest.raises(ValueError):
        bad = p.copy()
        bad[0, 0] = 2.0
        _njit_losses(x, y, bad, q, w, wc, wr)


def _njit_pointwise(entry):
    """An @njit function calling the table loss ``entry`` as a user would: defaults,
    example parameters with 'none' and 'sum', and a weighted mean where it has one."""
    kw = "".join(f", {k}={v!r}" for k, v in entry.example_params().items())
    weighted = ", f(x, y, weight=w)" if entry.weight else ""
    source = (f"def run(x, y, w):\n    return (f(x, y), f(x, y, reduction='none'{kw}), "
              f"f(x, y, reduction='sum'{kw}){weighted})\n")
    ns = {"f": entry.function}
    exec(source, ns)
    return numba.njit(ns["run"])


@pytest.mark.parametrize("entry", POINTWISE, ids=[e.name for e in POINTWISE])
def test_njit_pointwise(entry):
    d = data(np.float32, seed=5)
    x, y, w = d["x"], d["y"], d["w"]
    ref, kw = R.reference(entry.name), entry.example_params()
    run = _njit_pointwise(entry)
    got = run(x, y, w)
    rtype = run.nopython_signatures[0].return_type  # float32 stays float32
    assert all(getattr(ty, "dtype", ty) == numba.float32 for ty in rtype), rtype
    exp = [ref(x, y).mean(), ref(x, y, **kw), ref(x, y, **kw).sum()]
    cpu = [entry.function(x, y), entry.function(x, y, reduction="none", **kw),
           entry.function(x, y, reduction="sum", **kw)]
    if entry.weight:
        exp.append((ref(x, y) * w).sum() / (_weighted_divisor(entry, w) or w.size))
        cpu.append(entry.function(x, y, weight=w))
    assert len(got) == len(exp)
    for i, (g, e, c) in enumerate(zip(got, exp, cpu, strict=True)):
        np.testing.assert_allclose(g, e, err_msg=str(i), **TOL[np.dtype(np.float32)])
        np.testing.assert_allclose(g, c, err_msg=str(i), **TOL[np.dtype(np.float32)])


def test_pointwise_references_exist():
    assert POINTWISE
    for e in POINTWISE:  # a missing float64 reference fails
        assert callable(R.reference(e.name)), e.name


def test_njit_reduction_must_be_literal():
    @numba.njit
    def f(x, r):
        return nbops.mse_loss(x, x, reduction=r)

    with pytest.raises(numba.core.errors.TypingError, match="reduction"):
        f(np.ones(2), "sum")


# --------------------------------------------------------------------------- #
# determinism over thread counts (parallel kernels, in fresh processes)
# --------------------------------------------------------------------------- #
_THREAD_SCRIPT = textwrap.dedent("""
    import numpy as np, nbops
    n = 1_000_003
    rng = np.random.default_rng(7)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    q = rng.uniform(0, 1, n).astype(np.float32)
    pw = rng.uniform(0.5, 2, 1000).astype(np.float32)
    res = [nbops.mse_loss(x, y), nbops.kl_div(x, q, reduction="sum"),
           nbops.binary_cross_entropy(q, q[::-1].copy()),
           nbops.binary_cross_entropy_with_logits(x[:1_000_000].reshape(-1, 1000),
                                                  q[:1_000_000].reshape(-1, 1000),
                                                  pos_weight=pw)]
    none = nbops.mse_loss(x, y, reduction="none")
    ref = np.sum((x.astype(np.float64) - y) ** 2) / n
    print(" ".join(np.asarray(v, np.float32).view(np.uint32).astype(str).item()
                   for v in res), none.view(np.uint32).sum(dtype=np.uint64),
          abs(float(res[0]) - ref) / ref)
""")


def test_thread_count_determinism():
    outs = []
    for threads in ("1", "2"):
        env = dict(os.environ, NUMBA_NUM_THREADS=threads)
        proc = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT], env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout.split())
    assert outs[0] == outs[1]
    assert float(outs[0][-1]) < 1e-6  # float64 accumulation: float32 mean accurate
