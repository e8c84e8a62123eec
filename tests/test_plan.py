"""The argument plans of nbops/_ops/plan.py: direct tests, and the same bad inputs
rejected alike on the CPU path and inside @njit (tests/_bad_inputs.py; the CUDA
side is tests/cuda/test_cuda_plan.py)."""

import math
import re
import warnings

import numba
import numpy as np
import pytest
from _bad_inputs import CASES, EXACT_NJIT
from _bad_inputs import raised as _raised

import nbops
from nbops._ops import plan as P

FLAGS = [None, True, False]
LEGACY = [(sa, rd) for sa in FLAGS for rd in FLAGS]


# ------------------------------------------------------------ reduction
def _torch_legacy(size_average, reduce):
    torch = pytest.importorskip("torch")
    return torch.nn._reduction.legacy_get_string(size_average, reduce, emit_warning=False)


@pytest.mark.parametrize("size_average,reduce", LEGACY)
def test_legacy_mapping_is_pytorchs(size_average, reduce):
    assert P.legacy_reduction(size_average, reduce) == _torch_legacy(size_average, reduce)


@pytest.mark.parametrize("size_average,reduce", LEGACY)
def test_reduction_plan_of_legacy_flags(size_average, reduce):
    if size_average is None and reduce is None:
        assert P.reduction_plan("sum") == P.ReductionPlan("sum", False, False)
        return
    want = _torch_legacy(size_average, reduce)
    # the flags win, and reduction is not checked then (as PyTorch)
    plan = P.reduction_plan("xyz", size_average, reduce)
    assert plan == P.ReductionPlan(want, False, True)
    with pytest.warns(DeprecationWarning, match=f"reduction='{want}'") as rec:
        P.reduction_plan("xyz", size_average, reduce, stacklevel=1)
    assert rec[0].filename == __file__  # attributed to the caller
    # kl_div: 'batchmean' still divides by the batch size (PyTorch)
    kl = P.reduction_plan("batchmean", size_average, reduce, batchmean=True)
    assert kl == P.ReductionPlan(want, True, True)
    assert kl.batch_divisor((5, 3)) == 5 and kl.batch_divisor(()) == 1


def test_reduction_plan_without_legacy_flags():
    for name in ("none", "mean", "sum"):
        assert P.reduction_plan(name) == P.ReductionPlan(name, False, False)
        assert P.reduction_plan(name, batchmean=True).mode == name
    bm = P.reduction_plan("batchmean", batchmean=True)
    assert bm == P.ReductionPlan("sum", True, False)
    assert bm.batch_divisor((7, 2)) == 7 and bm.batch_divisor(()) == 1
    assert P.reduction_plan("mean").batch_divisor((7, 2)) == 1
    for bad in ("batchmean", "avg", "Mean", None, 1, ["mean"]):
        with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean', 'sum'"):
            P.reduction_plan(bad)
    with pytest.raises(ValueError, match="'none', 'batchmean', 'mean', 'sum', got 'avg'"):
        P.reduction_plan("avg", batchmean=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P.reduction_plan("mean", stacklevel=1)  # no flags: no warning


# ------------------------------------------------------------ axis
def test_axis_plan():
    assert P.axis_plan((2, 3, 4), 1) == P.AxisPlan(1, 2, 3, 4)
    assert P.axis_plan((2, 3, 4), -1) == P.AxisPlan(2, 6, 4, 1)
    assert P.axis_plan((2, 3, 4), dim=0) == P.AxisPlan(0, 1, 2, 12)
    assert P.axis_plan((2, 3, 4), np.int64(-3)) == P.AxisPlan(0, 1, 2, 12)
    assert P.axis_plan((), 0) == P.AxisPlan(0, 1, 1, 1)  # a 0-d array: one axis of 1
    assert P.axis_plan((), -1) == P.AxisPlan(0, 1, 1, 1)
    assert P.axis_plan((5, 0), 0) == P.AxisPlan(0, 1, 5, 0)
    assert P.axis_plan((2, 3), 1, dim=1).axis == 1  # dim equal to axis: fine
    with pytest.raises(ValueError, match="axis 3 is out of range for an array with 3 dim"):
        P.axis_plan((2, 3, 4), 3)
    with pytest.raises(ValueError, match="axis -2 is out of range for an array with 0 dim"):
        P.axis_plan((), -2)
    with pytest.raises(TypeError, match=r"not both \(got axis=0, dim=1\)"):
        P.axis_plan((2, 3), 0, dim=1)
    with pytest.raises(TypeError, match="axis must be an integer, got 1.0"):
        P.axis_plan((2, 3), 1.0)


# ------------------------------------------------------------ cross_entropy / nll_loss
@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64, np.uint64])
def test_class_loss_plan_index_targets(dtype):
    plan = P.class_loss_plan((8, 5, 2, 3), (8, 2, 3), np.dtype(dtype), (5,), -100, 0.25)
    assert plan == P.ClassLossPlan(False, 8, 5, 6, (8, 2, 3), -100, 0.25,
                                   P.ReductionPlan("mean", False, False))
    one = P.class_loss_plan((5,), (), np.dtype(dtype), None, 3, 0, "none", logits=False)
    assert (one.outer, one.classes, one.inner, one.loss_shape) == (1, 5, 1, ())
    assert one.ignore_index == 3 and one.reduction.mode == "none"


def test_class_loss_plan_probability_targets():
    plan = P.class_loss_plan((8, 5, 3), (8, 5, 3), np.dtype(np.float32), None, -1, 1.0, "sum")
    assert plan.probabilities and plan.loss_shape == (8, 3) and plan.inner == 3
    assert plan.label_smoothing == 1.0
    with pytest.raises(TypeError, match="float dtype, got int64"):
        P.class_loss_plan((8, 5), (8, 5), np.dtype(np.int64))
    with pytest.raises(ValueError, match="ignore_index is not supported"):
        P.class_loss_plan((8, 5), (8, 5), np.dtype(np.float64), ignore_index=0)
    # nll_loss has no probability targets: a target of the input's shape is indices
    with pytest.raises(TypeError, match="class indices must have an integer dtype"):
        P.class_loss_plan((8, 5), (8, 5), np.dtype(np.float64), logits=False)
    with pytest.raises(ValueError, match=r"target has shape \(8, 5\), expected \(8,\)"):
        P.class_loss_plan((8, 5), (8, 5), np.dtype(np.int64), logits=False)


def test_class_loss_plan_errors():
    f32, i64 = np.dtype(np.float32), np.dtype(np.int64)
    with pytest.raises(ValueError, match="got a 0-d array"):
        P.class_loss_plan((), (), i64)
    with pytest.raises(TypeError, match="complex"):
        P.class_loss_plan((4, 3), (4,), np.dtype(np.complex64))
    with pytest.raises(TypeError, match="class indices must have an integer dtype, got "
                                        r"float32 \(class probabilities"):
        P.class_loss_plan((4, 3), (4,), f32)
    with pytest.raises(ValueError, match=r"target has shape \(5,\), expected \(4,\) for "
                                         r"input of shape \(4, 3\)"):
        P.class_loss_plan((4, 3), (5,), i64)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\).*got shape \(2,\)"):
        P.class_loss_plan((4, 3), (4,), i64, (2,))
    with pytest.raises(ValueError, match=r"got shape \(1, 3\)"):
        P.class_loss_plan((4, 3), (4,), i64, (1, 3))
    for bad in (1.5, -100.0, "1", None):  # -100.0 == -100: not memoized as the int
        with pytest.raises(TypeError, match="ignore_index must be an integer"):
            P.class_loss_plan((4, 3), (4,), i64, None, bad)
    assert P.class_loss_plan((4, 3), (4,), i64, None, np.int16(-100)).ignore_index == -100
    for bad in (1.5, -0.1, math.nan):
        with pytest.raises(ValueError, match="label_smoothing must be between 0.0 and 1.0"):
            P.class_loss_plan((4, 3), (4,), i64, label_smoothing=bad)
    with pytest.raises(TypeError, match="label_smoothing must be a real number"):
        P.class_loss_plan((4, 3), (4,), i64, label_smoothing="x")
    with pytest.raises(ValueError, match="reduction must be one of"):
        P.class_loss_plan((4, 3), (4,), i64, reduction="batchmean")
    with pytest.warns(DeprecationWarning, match="reduction='none'"):
        plan = P.class_loss_plan((4, 3), (4,), i64, reduce=False, stacklevel=1)
    assert plan.reduction == P.ReductionPlan("none", False, True)
    assert P.target_range_message(3, -100, 7) == (
        "target: class index 7 is out of range: expected 0 <= index < 3 (the number of "
        "classes) or ignore_index (-100)")


# ------------------------------------------------------------ dropout
def test_dropout_plan():
    assert P.check_p(0) == 0.0 and P.check_p(np.float32(0.5)) == 0.5
    for bad in (1.5, -0.1, math.nan):
        with pytest.raises(ValueError, match="p: dropout probability has to be between 0"):
            P.check_p(bad)
    with pytest.raises(TypeError, match="p must be a real number"):
        P.check_p("a")
    assert P.dropout_plan((4, 3), 0.5) == P.DropoutPlan("draw", None, 1)
    assert P.dropout_plan((4, 3), 0.5, training=False).action == "identity"
    assert P.dropout_plan((4, 3), 0.0).action == "identity"
    assert P.dropout_plan((4, 0), 0.5).action == "identity"
    assert P.dropout_plan((4, 3), 1.0).action == "zero"
    assert P.dropout_plan((2, 3, 4, 5), 0.5, feature="dropout2d") == \
        P.DropoutPlan("draw", 6, 20)
    assert P.dropout_plan((2, 3, 4, 5, 6), 0.5, feature="dropout3d")[1:] == (6, 120)
    assert P.dropout_plan((3, 4, 5, 6), 0.5, feature="dropout3d")[1:] == (3, 120)
    assert P.dropout_plan((), 0.5).action == "draw"  # a 0-d array has one element
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        P.dropout_plan((5,), 0.5, feature="dropout2d")
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        P.dropout_plan((), 0.5, feature="dropout3d")
    assert P.dropout_plan((7,), 0.5, feature="dropout3d")[1:] == (7, 1)
    assert [P.channel_axes("dropout2d", n) for n in (1, 3, 4, 5)] == [2, 2, 2, 2]
    assert [P.channel_axes("dropout3d", n) for n in (1, 4, 5, 6)] == [1, 1, 2, 1]
    assert P.dropout_plan((5,), 1.0, feature="dropout2d").action == "zero"  # draws nothing
    with pytest.raises(ValueError, match="out= and inplace=True"):
        P.dropout_plan((4,), 0.5, training=False, inplace=True, has_out=True)


def test_dropout_rng_forms():
    assert P.dropout_seed(5) == P.dropout_seed(np.uint64(5)) == 5
    assert P.dropout_key(3) == P.dropout_key(3)
    g1, g2 = np.random.default_rng(1), np.random.default_rng(1)
    assert P.dropout_key(g1) == P.dropout_key(g2) != P.dropout_key(g1)
    assert P.dropout_seed(np.random.SeedSequence(4)) == \
        P.dropout_seed(np.random.default_rng(np.random.SeedSequence(4)))
    for bad, exc in ((-1, ValueError), (1 << 64, ValueError), (1.5, TypeError),
                     (True, TypeError)):
        with pytest.raises(exc, match="rng"):
            P.dropout_seed(bad)
    assert P.dropout_threshold(0.5) == np.uint32(1 << 31)
    assert P.dropout_scale(0.5, np.dtype(np.float32)) == np.float32(2.0)


def test_feature_rank_warnings():
    with pytest.warns(UserWarning, match="Received a 3D input to dropout2d"):
        P.warn_feature_rank("dropout2d", 3)
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout3d"):
        P.warn_feature_rank("dropout3d", 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P.warn_feature_rank("dropout2d", 4)
        P.warn_feature_rank("dropout3d", 5)


# ------------------------------------------------------------ CPU and @njit alike
def _njit_caller(case):
    """An @njit function calling the op as the case does: str/bool options as
    literals (as a user writes them), every other value as a run-time argument."""
    params, call, values = [], [], []
    for i, a in enumerate(case.args):
        params.append(f"a{i}")
        call.append(f"a{i}")
        values.append(a)
    for k, v in case.kwargs.items():
        if isinstance(v, (str, bool)) or v is None:
            call.append(f"{k}={v!r}")
        else:
            params.append(k)
            call.append(f"{k}={k}")
            values.append(v)
    src = f"def f({', '.join(params)}):\n    return nbops.{case.op}({', '.join(call)})\n"
    namespace = {"nbops": nbops}
    exec(src, namespace)
    return numba.njit(namespace["f"]), values


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_same_error_on_cpu_and_in_njit(case):
    cpu = _raised(getattr(nbops, case.op), *case.args, **case.kwargs)
    assert type(cpu) is case.exc, repr(cpu)
    assert re.search(case.match, str(cpu)), str(cpu)
    fn, values = _njit_caller(case)
    jit = _raised(fn, *values)
    assert type(jit) is case.exc, repr(jit)
    assert re.search(case.match, str(jit)), str(jit)
    if EXACT_NJIT in case.exact:
        assert str(jit) == str(cpu)


def test_invalid_literal_raises_when_called_and_the_caller_still_compiles():
    @numba.njit
    def scaled(x, y):  # arithmetic on the result: still types
        return nbops.mse_loss(x, y, reduction="avg") * 2.0 + 1.0

    with pytest.raises(ValueError, match="reduction must be one of 'none', 'mean', 'sum', "
                                         "got 'avg'"):
        scaled(np.ones(3), np.zeros(3))

    @numba.njit
    def non_literal(x, r):  # not a constant: a compile-time error, naming the argument
        return nbops.cross_entropy(x, np.zeros(2, np.int64), reduction=r)

    with pytest.raises(numba.core.errors.TypingError, match="reduction"):
        non_literal(np.ones((2, 3)), "sum")


# ------------------------------------------------------------ the legacy flags everywhere
_RNG = np.random.default_rng(3)
_X = _RNG.standard_normal((5, 4))
_Y = _RNG.standard_normal((5, 4))
_Q = _RNG.uniform(0.1, 1.0, (5, 4))
_T = np.array([0, 3, 1, 2, 3])


@numba.njit
def _mse_legacy(x, y):
    return (nbops.mse_loss(x, y, size_average=False),
            nbops.mse_loss(x, y, reduce=False, reduction="sum"),
            nbops.mse_loss(x, y, size_average=True, reduce=True, reduction="none"),
            nbops.mse_loss(x, y, size_average=False, reduce=False))


@numba.njit
def _kl_legacy(x, q):
    return (nbops.kl_div(x, q, size_average=False, reduction="batchmean"),
            nbops.kl_div(x, q, reduce=False, reduction="batchmean"),
            nbops.kl_div(x, q, size_average=True, reduction="batchmean"))


@numba.njit
def _class_legacy(x, t):
    return (nbops.cross_entropy(x, t, size_average=False),
            nbops.nll_loss(x, t, reduce=False))


def test_legacy_flags_inside_njit_as_on_the_cpu():
    with pytest.warns(DeprecationWarning, match="size_average and reduce args"):
        got = _mse_legacy(_X, _Y)  # warns when it compiles
    legacy = [(False, None, "mean"), (None, False, "sum"), (True, True, "none"),
              (False, False, "mean")]
    for g, (sa, rd, red) in zip(got, legacy, strict=True):
        with pytest.warns(DeprecationWarning):
            want = nbops.mse_loss(_X, _Y, size_average=sa, reduce=rd, reduction=red)
        np.testing.assert_allclose(g, want, rtol=1e-12)
    with pytest.warns(DeprecationWarning):
        got = _kl_legacy(_X, _Q)
    for g, (sa, rd) in zip(got, [(False, None), (None, False), (True, None)], strict=True):
        with pytest.warns(DeprecationWarning):
            want = nbops.kl_div(_X, _Q, size_average=sa, reduce=rd, reduction="batchmean")
        np.testing.assert_allclose(g, want, rtol=1e-12)
    with pytest.warns(DeprecationWarning):
        ce, nll = _class_legacy(_X, _T)
    with pytest.warns(DeprecationWarning):
        np.testing.assert_allclose(ce, nbops.cross_entropy(_X, _T, size_average=False),
                                   rtol=1e-12)
    with pytest.warns(DeprecationWarning):
        np.testing.assert_allclose(nll, nbops.nll_loss(_X, _T, reduce=False), rtol=1e-12)


def test_legacy_kl_div_matches_torch():
    torch = pytest.importorskip("torch")
    tx, tq = torch.from_numpy(_X), torch.from_numpy(_Q)
    for sa, rd in LEGACY[1:]:
        for red in ("batchmean", "mean", "xyz"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                want = torch.nn.functional.kl_div(tx, tq, size_average=sa, reduce=rd,
                                                  reduction=red).numpy()
            with pytest.warns(DeprecationWarning):
                got = nbops.kl_div(_X, _Q, size_average=sa, reduce=rd, reduction=red)
            np.testing.assert_allclose(got, want, rtol=1e-12)
