"""Tests of ``nbops.batch_norm``.

Expected values come from the float64 NumPy formula below (``ref_batch_norm``)
or from PyTorch (parity tests only), never from nbops itself.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from _threads import assert_same_bits_on_any_thread_count

import nbops
from nbops import _config

FLOATS = (np.float32, np.float64)
TOL = {np.dtype(np.float32): dict(rtol=1e-5, atol=1e-5),
       np.dtype(np.float64): dict(rtol=1e-12, atol=1e-12)}
# channel runs of 1, 5, 30, 24 (per-position paths), 72 and 1100 (> 1024: cut in pieces)
SHAPES = [(6, 3), (4, 3, 5), (3, 4, 5, 6), (2, 3, 2, 3, 4), (3, 2, 8, 9), (2, 3, 1100)]


# --------------------------------------------------------------------------- #
# reference
# --------------------------------------------------------------------------- #


def ref_batch_norm(x, rm, rv, w=None, b=None, training=False, momentum=0.1, eps=1e-5):
    """float64 reference: (output, new running_mean, new running_var)."""
    x = np.asarray(x, np.float64)
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    new_rm = new_rv = None
    if training:
        mean = x.mean(axis=axes)
        var = x.var(axis=axes)  # biased
        n = x.size // x.shape[1]
        if rm is not None:
            new_rm = (1 - momentum) * np.asarray(rm, np.float64) + momentum * mean
            new_rv = (1 - momentum) * np.asarray(rv, np.float64) + momentum * var * n / (n - 1)
    else:
        mean = np.asarray(rm, np.float64)
        var = np.asarray(rv, np.float64)
    y = (x - mean.reshape(bshape)) / np.sqrt(var.reshape(bshape) + eps)
    if w is not None:
        y = y * np.asarray(w, np.float64).reshape(bshape)
    if b is not None:
        y = y + np.asarray(b, np.float64).reshape(bshape)
    return y, new_rm, new_rv


def data(shape, dtype, seed=0, loc=0.5, scale=2.0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale + loc).astype(dtype)


def params(c, dtype, seed=1):
    rng = np.random.default_rng(seed)
    rm = rng.standard_normal(c).astype(dtype)
    rv = rng.uniform(0.5, 2.0, c).astype(dtype)
    w = rng.uniform(0.5, 1.5, c).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    return rm, rv, w, b


def close(got, exp, dtype, what=""):
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, expected {dtype}"
    np.testing.assert_allclose(got, exp, err_msg=what, **TOL[np.dtype(dtype)])


# --------------------------------------------------------------------------- #
# values
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", SHAPES)
def test_training_updates_running_stats(shape, dtype):
    x = data(shape, dtype)
    rm, rv, w, b = params(shape[1], dtype)
    y_exp, rm_exp, rv_exp = ref_batch_norm(x, rm, rv, w, b, True, 0.3, 1e-3)
    y = nbops.batch_norm(x, rm, rv, w, b, training=True, momentum=0.3, eps=1e-3)
    close(y, y_exp, dtype, "output")
    close(rm, rm_exp, dtype, "running_mean")
    close(rv, rv_exp, dtype, "running_var")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("shape", SHAPES[::2])
def test_eval_uses_running_stats(shape, affine, dtype):
    x = data(shape, dtype)
    rm, rv, w, b = params(shape[1], dtype)
    if not affine:
        w = b = None
    rm0, rv0 = rm.copy(), rv.copy()
    y = nbops.batch_norm(x, rm, rv, w, b)
    close(y, ref_batch_norm(x, rm, rv, w, b)[0], dtype)
    np.testing.assert_array_equal(rm, rm0)  # eval never touches them
    np.testing.assert_array_equal(rv, rv0)


@pytest.mark.parametrize("dtype", FLOATS)
def test_training_without_running_stats(dtype):
    x = data((5, 3, 4), dtype)
    _, _, w, _ = params(3, dtype)
    close(nbops.batch_norm(x, None, None, training=True),
          ref_batch_norm(x, None, None, training=True)[0], dtype, "no affine")
    close(nbops.batch_norm(x, None, None, weight=w, training=True),
          ref_batch_norm(x, None, None, w, training=True)[0], dtype, "weight only")


def test_running_stats_keep_their_dtype():
    x = data((8, 2), np.float32)
    rm, rv = np.zeros(2, np.float64), np.ones(2, np.float64)
    _, rm_exp, rv_exp = ref_batch_norm(x, rm, rv, training=True)
    nbops.batch_norm(x, rm, rv, training=True)
    close(rm, rm_exp, np.float64)
    np.testing.assert_allclose(rv, rv_exp, rtol=1e-6)


def test_integer_input_computes_in_float64():
    x = np.arange(24).reshape(4, 3, 2)
    y = nbops.batch_norm(x, None, None, training=True)
    close(y, ref_batch_norm(x, None, None, training=True)[0], np.float64)


@pytest.mark.parametrize("kind", ["fortran", "strided", "reversed", "list"])
def test_noncontiguous_inputs(kind):
    base = data((6, 8, 5), np.float64, seed=3)
    x = {"fortran": np.asfortranarray(base),
         "strided": base[:, ::2],
         "reversed": base[::-1, :, ::-1],
         "list": base.tolist()}[kind]
    xa = np.asarray(x)
    rm, rv, w, b = params(xa.shape[1], np.float64)
    w = w[::-1]  # a negative-stride weight too
    y_exp, rm_exp, rv_exp = ref_batch_norm(xa, rm, rv, w, b, True)
    y = nbops.batch_norm(x, rm, rv, w, b, training=True)
    close(y, y_exp, np.float64, kind)
    close(rm, rm_exp, np.float64)
    close(rv, rv_exp, np.float64)


@pytest.mark.parametrize("order", ["C", "F"])
def test_out(order):
    x = data((4, 3, 5), np.float32)
    rm, rv, w, b = params(3, np.float32)
    out = np.zeros(x.shape, np.float32, order=order)
    got = nbops.batch_norm(x, rm, rv, w, b, out=out)
    assert got is out
    close(out, ref_batch_norm(x, rm, rv, w, b)[0], np.float32)
    # in place: out is the input
    x2 = x.copy()
    nbops.batch_norm(x2, rm, rv, w, b, out=x2)
    close(x2, ref_batch_norm(x, rm, rv, w, b)[0], np.float32)


def test_float32_large_mean_accuracy_parallel_path(monkeypatch):
    """Mean 1e4, spread 1, 294912 float32 values (the parallel kernels), 2 channels:
    statistics and output against a float64 reference, and the serial twin."""
    shape = (16, 2, 96, 96)
    assert np.prod(shape) >= max(200_000, _config.PARALLEL_THRESHOLD)
    x = (np.random.default_rng(7).standard_normal(shape) + 1e4).astype(np.float32)
    rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
    y_exp, rm_exp, rv_exp = ref_batch_norm(x, rm, rv, training=True)
    y = nbops.batch_norm(x, rm, rv, training=True)
    assert y.dtype == np.float32
    # PyTorch's float32 output is off by ~5e-4 here; nbops is within a few ulp
    np.testing.assert_allclose(y, y_exp, rtol=0, atol=5e-6)
    np.testing.assert_allclose(rm, rm_exp, rtol=1e-7)
    np.testing.assert_allclose(rv, rv_exp, rtol=1e-6)
    # the serial twin gives the same bits
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 62)
    rm2, rv2 = np.zeros(2, np.float32), np.ones(2, np.float32)
    y2 = nbops.batch_norm(x, rm2, rv2, training=True)
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(rm2, rm)
    np.testing.assert_array_equal(rv2, rv)
    # eval on the parallel path
    monkeypatch.undo()
    y3 = nbops.batch_norm(x, rm, rv)
    np.testing.assert_allclose(y3, ref_batch_norm(x, rm, rv)[0], rtol=2e-7)


def test_rows_four_at_a_time_same_bits_on_any_thread_count(monkeypatch):
    """(N, C) inputs (the statistics read four batch rows at a time, then the
    rest one by one): against the float64 reference, and the same bits from the
    serial kernels and the parallel ones on 1 or 2 threads."""
    x = (np.random.default_rng(3).standard_normal((4099, 37)) * 3 + 50).astype(np.float32)
    x[5, 2] = -1e3  # an outlier
    w, b = np.linspace(0.5, 2, 37), np.linspace(-1, 1, 37)

    def run():
        rm, rv = np.zeros(37, np.float32), np.ones(37, np.float32)
        y, mean, invstd = nbops.batch_norm(x, rm, rv, w, b, training=True, return_stats=True)
        return [y, mean, invstd, rm, rv, nbops.batch_norm(x, rm, rv, w, b)]

    y_exp, rm_exp, rv_exp = ref_batch_norm(x, np.zeros(37), np.ones(37), w, b, training=True)
    res = run()
    np.testing.assert_allclose(res[0], y_exp, rtol=2e-6, atol=2e-6)
    np.testing.assert_allclose(res[3], rm_exp, rtol=1e-7)
    np.testing.assert_allclose(res[4], rv_exp, rtol=1e-6)
    assert_same_bits_on_any_thread_count(monkeypatch, run)


_THREAD_SCRIPT = """
import hashlib, numba, numpy as np, nbops
x = (np.random.default_rng(7).standard_normal((16, 2, 96, 96)) + 1e4).astype(np.float32)
x[3, 1, 5, 7] = -3e4  # an outlier
rm, rv = np.zeros(2, np.float32), np.ones(2, np.float32)
y = nbops.batch_norm(x, rm, rv, training=True)
print(numba.get_num_threads(), hashlib.sha256(y.tobytes() + rm.tobytes() + rv.tobytes())
      .hexdigest())
"""


def test_bit_identical_for_1_and_2_threads():
    procs = []
    for n in (1, 2):
        env = dict(os.environ, NUMBA_NUM_THREADS=str(n))
        procs.append(subprocess.Popen([sys.executable, "-c", _THREAD_SCRIPT], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outs = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        outs.append(stdout.split())
    assert [o[0] for o in outs] == ["1", "2"]
    assert outs[0][1] == outs[1][1]


# --------------------------------------------------------------------------- #
# edge cases
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 2, 1, 1)])
def test_one_value_per_channel_raises_in_training(shape):
    x = np.ones(shape)
    rm, rv = np.zeros(shape[1]), np.ones(shape[1])
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nbops.batch_norm(x, rm, rv, training=True)
    np.testing.assert_array_equal(rm, 0)
    np.testing.assert_array_equal(rv, 1)
    # fine in evaluation
    np.testing.assert_allclose(nbops.batch_norm(x, rm, rv), 1 / np.sqrt(1 + 1e-5))


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (2, 3, 0), (4, 0, 2)])
@pytest.mark.parametrize("training", [False, True])
def test_empty_input(shape, training):
    c = shape[1]
    rm, rv = np.zeros(c, np.float32), np.ones(c, np.float32)
    y = nbops.batch_norm(np.zeros(shape, np.float32), rm, rv, training=training)
    assert y.shape == shape and y.dtype == np.float32
    # PyTorch leaves the running statistics alone on an empty batch
    np.testing.assert_array_equal(rm, 0)
    np.testing.assert_array_equal(rv, 1)


def test_nan_and_inf():
    x = np.array([[1.0, np.nan, np.inf, 2.0],
                  [2.0, 1.0, 1.0, 2.0],
                  [4.0, 3.0, 2.0, 2.0]])
    rm, rv = np.zeros(4), np.ones(4)
    y = nbops.batch_norm(x, rm, rv, training=True)
    y_exp, _, _ = ref_batch_norm(x[:, :1], None, None, training=True)
    np.testing.assert_allclose(y[:, 0], y_exp[:, 0], rtol=1e-12)
    assert np.isnan(y[:, 1:3]).all()  # a NaN or an inf spoils its channel
    assert np.isnan(rm[1]) and np.isnan(rv[1])
    assert rm[2] == np.inf and np.isnan(rv[2])  # inf as a channel's first value
    np.testing.assert_array_equal(y[:, 3], 0.0)  # constant channel
    np.testing.assert_allclose(rv[3], 0.9)


# --------------------------------------------------------------------------- #
# bad input: a clear error naming the argument, nothing modified
# --------------------------------------------------------------------------- #


def _bad_cases():
    ro = np.ones(3)
    ro.flags.writeable = False
    c = dict(x=np.ones((4, 3, 2)), rm=np.zeros(3), rv=np.ones(3))
    return [
        (ValueError, "weight", dict(c, weight=np.ones(4), training=True)),
        (ValueError, "weight", dict(c, weight=np.ones((3, 1)), training=True)),
        (ValueError, "bias", dict(c, bias=np.ones(2), training=True)),
        (TypeError, "weight", dict(c, weight=np.ones(3, complex), training=True)),
        (ValueError, "running_mean", dict(c, rm=np.zeros(4), training=True)),
        (TypeError, "running_var", dict(c, rv=[1.0, 1.0, 1.0], training=True)),
        (TypeError, "running_var", dict(c, rv=np.ones(3, np.int64), training=True)),
        (ValueError, "running_var", dict(c, rv=ro, training=True)),
        (ValueError, "running_var", dict(c, rv=None, training=True)),
        (ValueError, "running_mean", dict(c, rm=None, rv=None, training=False)),
        (ValueError, "input", dict(c, x=np.ones(3), training=True)),
        (TypeError, "input", dict(c, x=np.ones((4, 3), complex), training=True)),
        (TypeError, "momentum", dict(c, momentum="fast", training=True)),
        (ValueError, "eps", dict(c, eps=0.0, training=True)),
        (ValueError, "eps", dict(c, eps=-1.0, training=False)),
        (ValueError, "out", dict(c, out=np.empty((4, 3)), training=True)),
        (TypeError, "out", dict(c, out=np.empty((4, 3, 2), np.float32), training=True)),
    ]


@pytest.mark.parametrize("exc, name, case", _bad_cases(),
                         ids=[f"{i}-{c[1]}" for i, c in enumerate(_bad_cases())])
def test_bad_input_raises_and_modifies_nothing(exc, name, case):
    case = dict(case)
    x, rm, rv = case.pop("x"), case.pop("rm"), case.pop("rv")
    x0 = np.array(x)
    rm0 = None if rm is None else np.array(rm, copy=True)
    rv0 = None if rv is None else np.array(rv, copy=True)
    with pytest.raises(exc, match=name):
        nbops.batch_norm(x, rm, rv, **case)
    np.testing.assert_array_equal(x, x0)
    if rm0 is not None:
        np.testing.assert_array_equal(rm, rm0)
    if rv0 is not None:
        np.testing.assert_array_equal(rv, rv0)


def test_read_only_running_stats_are_fine_in_eval():
    rm, rv = np.zeros(3), np.ones(3)
    rm.flags.writeable = rv.flags.writeable = False
    y = nbops.batch_norm(np.ones((2, 3)), rm, rv)
    np.testing.assert_allclose(y, 1 / np.sqrt(1 + 1e-5))


# --------------------------------------------------------------------------- #
# PyTorch parity
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("shape", [(7, 3), (3, 4, 5, 6), (2, 2, 3, 1, 4)])
def test_torch_parity(shape, training, dtype):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = data(shape, dtype, seed=11, loc=3.0)
    rm, rv, w, b = params(shape[1], dtype, seed=12)
    t_rm, t_rv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    expected = F.batch_norm(torch.from_numpy(x), t_rm, t_rv, torch.from_numpy(w),
                            torch.from_numpy(b), training=training, momentum=0.2,
                            eps=1e-4).numpy()
    got = nbops.batch_norm(x, rm, rv, w, b, training=training, momentum=0.2, eps=1e-4)
    tol = dict(rtol=1e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)
    assert got.dtype == expected.dtype
    np.testing.assert_allclose(got, expected, **tol)
    np.testing.assert_allclose(rm, t_rm.numpy(), **tol)
    np.testing.assert_allclose(rv, t_rv.numpy(), **tol)


@pytest.mark.parametrize("training", [False, True])
def test_torch_parity_nan_inf(training):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = np.array([[1.0, np.nan, np.inf, 2.0, 1.0, -np.inf],
                  [2.0, 1.0, 1.0, 2.0, 5.0, 1.0],
                  [4.0, 3.0, 2.0, 2.0, np.inf, 1.0]])
    rm = np.array([0.0, 1.0, np.inf, 0.0, 0.0, -np.inf])
    rv = np.array([1.0, np.nan, 1.0, 0.0, -1.0, 1.0])
    w = np.array([1.0, 1.0, 1.0, np.inf, 0.0, 1.0])
    b = np.array([0.0, 0.0, 1.0, 0.0, np.inf, 0.0])
    t_rm, t_rv = torch.from_numpy(rm.copy()), torch.from_numpy(rv.copy())
    with np.errstate(all="ignore"):
        expected = F.batch_norm(torch.from_numpy(x), t_rm, t_rv, torch.from_numpy(w),
                                torch.from_numpy(b), training=training, eps=1e-5).numpy()
        got = nbops.batch_norm(x, rm, rv, w, b, training=training, eps=1e-5)
    np.testing.assert_allclose(got, expected, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(rm, t_rm.numpy(), rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(rv, t_rv.numpy(), rtol=1e-12, equal_nan=True)


# --------------------------------------------------------------------------- #
# inside a user's @njit function
# --------------------------------------------------------------------------- #


def test_inside_njit():
    numba = pytest.importorskip("numba")

    @numba.njit
    def run(x, rm, rv, w, b):
        y1 = nbops.batch_norm(x, rm, rv, w, b, True, 0.3, 1e-3)  # updates rm, rv
        y2 = nbops.batch_norm(x, None, None, training=True)
        y3 = nbops.batch_norm(x, rm, rv, w, b)
        return y1, y2, y3

    x = data((5, 3, 4), np.float32)
    rm, rv, w, b = params(3, np.float32)
    y1_exp, rm_exp, rv_exp = ref_batch_norm(x, rm, rv, w, b, True, 0.3, 1e-3)
    y1, y2, y3 = run(x, rm, rv, w, b)
    close(y1, y1_exp, np.float32, "training")
    close(rm, rm_exp, np.float32, "running_mean")
    close(rv, rv_exp, np.float32, "running_var")
    close(y2, ref_batch_norm(x, None, None, training=True)[0], np.float32, "no stats")
    close(y3, ref_batch_norm(x, rm, rv, w, b)[0], np.float32, "eval")
    with pytest.raises(ValueError, match="Expected more than 1 value per channel"):
        run(np.ones((1, 3, 1), np.float32), rm, rv, w, b)


# --------------------------------------------------------------------------- #
# 1-D empty input (PyTorch: an empty result, no channels)
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("dtype", FLOATS)
def test_1d_empty_input_returns_empty(training, dtype):
    rm, rv = np.zeros(0, dtype), np.ones(0, dtype)
    y = nbops.batch_norm(np.zeros(0, dtype), rm, rv, training=training)
    assert isinstance(y, np.ndarray) and y.shape == (0,) and y.dtype == dtype
    out = np.empty(0, dtype)
    assert nbops.batch_norm(np.zeros(0, dtype), rm, rv, training=training, out=out) is out
    if training:  # no running statistics: fine in training, as PyTorch
        assert nbops.batch_norm(np.zeros(0, dtype), None, None, training=True).shape == (0,)


@pytest.mark.parametrize("training", [False, True])
def test_1d_empty_input_torch_parity(training):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    exp = F.batch_norm(torch.zeros(0), torch.zeros(0), torch.ones(0), training=training)
    got = nbops.batch_norm(np.zeros(0, np.float32), np.zeros(0, np.float32),
                           np.ones(0, np.float32), training=training)
    assert got.shape == tuple(exp.shape) and got.dtype == np.float32


@pytest.mark.parametrize("case, exc, match", [
    (dict(x=np.zeros(3), rm=np.zeros(3), rv=np.ones(3)), ValueError, "input"),
    (dict(x=np.zeros(1), rm=np.zeros(1), rv=np.ones(1)), ValueError, "input"),
    (dict(x=np.zeros(()), rm=np.zeros(0), rv=np.ones(0)), ValueError, "input"),
    (dict(x=np.zeros(0), rm=np.zeros(3), rv=np.ones(3)), ValueError, "running_mean"),
    (dict(x=np.zeros(0), rm=None, rv=None), ValueError, "running_mean"),
    (dict(x=np.zeros(0), rm=np.zeros(0), rv=np.ones(0), eps=-1.0), ValueError, "eps"),
])
def test_1d_input_errors(case, exc, match):
    case = dict(case)
    x, rm, rv = case.pop("x"), case.pop("rm"), case.pop("rv")
    with pytest.raises(exc, match=match):
        nbops.batch_norm(x, rm, rv, **case)


def test_1d_empty_input_inside_njit():
    numba = pytest.importorskip("numba")

    @numba.njit
    def run(x, rm, rv):
        return (nbops.batch_norm(x, rm, rv, training=True), nbops.batch_norm(x, rm, rv),
                nbops.batch_norm(x, None, None, training=True))

    for y in run(np.zeros(0, np.float32), np.zeros(0), np.ones(0)):
        assert y.shape == (0,) and y.dtype == np.float32
    with pytest.raises(ValueError, match="2 dimensions"):
        run(np.zeros(3, np.float32), np.zeros(0), np.ones(0))


# --------------------------------------------------------------------------- #
# the shared set-up and per-channel rules (nbops._ops.plan_norm, nbops.scalar._norms)
# --------------------------------------------------------------------------- #


def test_plan_sizes_and_momentum():
    from nbops._ops.plan_norm import batch_norm_plan

    plan = batch_norm_plan((4, 3, 2, 5), np.zeros(3), np.ones(3), None, None, True, 0.2, 1e-3)
    assert (plan.n_outer, plan.channels, plan.inner, plan.count) == (4, 3, 10, 40)
    assert plan.training and plan.update_running and plan.momentum == 0.2 and plan.eps == 1e-3
    plan = batch_norm_plan((4, 3), np.zeros(3), np.ones(3), None, None, False, None, 1e-5)
    assert not plan.update_running  # momentum is not used (nor checked) in evaluation
    with pytest.raises(TypeError, match="momentum"):
        batch_norm_plan((4, 3), None, None, None, None, True, None, 1e-5)


def test_eval_infinite_scale_keeps_the_two_step_form():
    """float32 input, float64 running means that float32 does not hold, zero
    running variances and eps = 0: the scale is inf, so the mean's low part is
    not folded into the offset (inf * lo): ``(x - mean) * inf`` is +-inf even
    where x equals the float32-rounded mean, as in the float64 reference."""
    rm = np.array([0.1, 1 / 3, -2.7])
    rv = np.zeros(3)
    x = np.array([[0.1, 0.3, -2.7], [1.0, 1 / 3, -3.0], [-1.0, 0.0, 5.0]], np.float32)
    y = nbops.batch_norm(x, rm, rv, eps=0.0)
    expected = np.sign(x.astype(np.float64) - rm) * np.inf
    np.testing.assert_array_equal(y, expected.astype(np.float32))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(64, 10), (5, 3, 70)])
def test_training_lean_path_same_bits_as_general_path(shape, dtype):
    """The lean training call (float momentum and eps, (C,) ndarrays) and the
    general path (``return_stats=True`` takes it; so do an int momentum and a
    list weight) give the same output and running statistics, bit for bit."""
    x = data(shape, dtype, seed=9, loc=30.0)
    rm0, rv0, w, b = params(shape[1], dtype, seed=10)
    results = []
    for kwargs in ({}, {"return_stats": True}, {"momentum": 0.1, "weight": list(w)}):
        rm, rv = rm0.copy(), rv0.copy()
        kw = dict(dict(weight=w, bias=b, training=True), **kwargs)
        y = nbops.batch_norm(x, rm, rv, **kw)
        results.append((y[0] if isinstance(y, tuple) else y, rm, rv))
    rm, rv = rm0.copy(), rv0.copy()
    out = np.empty_like(x)
    assert nbops.batch_norm(x, rm, rv, w, b, training=True, out=out) is out
    results.append((out, rm, rv))
    for got in results[1:]:
        for a, e in zip(got, results[0], strict=True):
            np.testing.assert_array_equal(a, e)
    y_exp, rm_exp, rv_exp = ref_batch_norm(x, rm0, rv0, w, b, training=True)
    close(results[0][0], y_exp, dtype)
    np.testing.assert_allclose(results[0][1], rm_exp, rtol=1e-6)


def test_huge_common_offset_and_inf_first_value():
    """The finite shift: float32 channels with a mean of 1e6 and a spread of 1 keep
    their variance, and a channel whose first value is inf has an inf mean (the
    shift is 0 there, not inf, which would give NaN)."""
    x = data((64, 3), np.float32, seed=5, loc=0.0, scale=1.0)
    x[:, 0] += np.float32(1e6)
    x[0, 2] = np.inf
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    y = nbops.batch_norm(x, rm, rv, training=True)
    y_exp, rm_exp, rv_exp = ref_batch_norm(x[:, :2], np.zeros(2), np.ones(2), training=True)
    np.testing.assert_allclose(y[:, :2], y_exp, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rv[:2], rv_exp, rtol=1e-4)
    assert rm[2] == np.inf and np.isnan(rv[2]) and np.isnan(y[:, 2]).all()
