"""Row ops on CUDA arrays: the warp-per-row kernels (short rows) and the
block-per-row kernels (long rows) of the softmax family and of cross_entropy /
nll_loss, each against the CPU path, float64 NumPy formulas and torch (CPU).

The launcher picks the kernel by the row length (``WARP_ROW_MAX``); the tests
move that limit to run both kernels on the same small rows."""

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")
torch = pytest.importorskip("torch")

import _reference as R  # noqa: E402  (tests/: the float64 references)
from devarrays import TOL  # noqa: E402  (after the numba.cuda check)
from devarrays import assert_close as _close  # noqa: E402
from devarrays import to_device as _d  # noqa: E402
from devarrays import to_host as _h  # noqa: E402

from nbops._ops import table  # noqa: E402
from nbops.cuda import _kernels as K  # noqa: E402
from nbops.scalar.rows import LOG_SOFTMAX  # noqa: E402

#: the op table's row ops (softmax, log_softmax, softmin)
ROW_OPS = [e.name for e in table.row_op_entries()]

RNG = np.random.default_rng(3)
# NaN/inf rows: the simulator computes with NumPy scalars, which warn
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")


@pytest.fixture(params=["warp", "block"])
def path(request, monkeypatch):
    """Run the row kernels as a warp per row, or as a block per row."""
    monkeypatch.setattr(K, "WARP_ROW_MAX", 1 << 30 if request.param == "warp" else 0)
    return request.param




def _ref_softmax(x, fn):
    """The row op's float64 NumPy formula (tests/_reference.py) along the last axis."""
    return R.reference(fn)(x.astype(np.float64), -1)


# ------------------------------------------------------------------ the simulator's shuffles
def test_simulator_warp_shuffles():
    """The warp shuffles nbops gives the simulator (real hardware has its own)."""

    @cuda.jit
    def k(out):
        lane = cuda.threadIdx.x
        w = cuda.threadIdx.y
        v = float(100 * w + lane)
        out[w, lane, 0] = cuda.shfl_xor_sync(0xFFFFFFFF, v, 5)
        out[w, lane, 1] = cuda.shfl_down_sync(0xFFFFFFFF, v, 3)
        out[w, lane, 2] = cuda.shfl_up_sync(0xFFFFFFFF, v, 2)
        out[w, lane, 3] = cuda.shfl_sync(0xFFFFFFFF, v, 7)
        out[w, lane, 4] = K.warp_sum(v)
        out[w, lane, 5] = K.warp_max(v)

    out = cuda.device_array((2, 32, 6))
    k[1, (32, 2)](out)
    got = out.copy_to_host()
    lanes = np.arange(32)
    for w in range(2):
        base = 100.0 * w
        np.testing.assert_array_equal(got[w, :, 0], base + (lanes ^ 5))
        np.testing.assert_array_equal(got[w, :, 1],
                                      base + np.where(lanes + 3 < 32, lanes + 3, lanes))
        np.testing.assert_array_equal(got[w, :, 2], base + np.where(lanes >= 2, lanes - 2, lanes))
        np.testing.assert_array_equal(got[w, :, 3], base + 7)
        np.testing.assert_array_equal(got[w, :, 4], 32 * base + lanes.sum())
        np.testing.assert_array_equal(got[w, :, 5], base + 31)


# ------------------------------------------------------------------ softmax family
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", ROW_OPS)
@pytest.mark.parametrize("shape", [(5, 37), (3, 3), (1, 70)])
def test_softmax_family_rows(path, fn, shape, dtype):
    # 5 rows: a partly empty last block of warps; 37 and 70: lanes loop; 3: idle lanes
    x = (RNG.standard_normal(shape) * 4).astype(dtype)
    f = getattr(nbops, fn)
    got = _h(f(_d(x), axis=-1))
    _close(got, f(x, axis=-1), dtype)
    _close(got, _ref_softmax(x, fn).astype(dtype), dtype)


SPECIAL = np.array([
    [0.0, 0.0, -np.inf, 1.0],
    [-np.inf] * 4,
    [1.0, np.inf, 0.0, -1.0],
    [np.inf, np.inf, 0.0, 0.0],
    [1.0, np.nan, 0.0, 2.0],
    [-0.0, 0.0, -0.0, 0.0],
    [1e30, -1e30, 0.0, 88.0],
])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", ROW_OPS)
def test_softmax_nan_inf_rows_as_torch(path, fn, dtype):
    x = SPECIAL.astype(dtype)
    got = _h(getattr(nbops, fn)(_d(x), axis=1))
    want = getattr(torch.nn.functional, fn)(torch.from_numpy(x), dim=1).numpy()
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, **TOL[dtype])
    cpu = getattr(nbops, fn)(x, axis=1)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(cpu))
    np.testing.assert_allclose(got, cpu, **TOL[dtype])


class _Spy:
    """Stands in for a kernel; records launches and forwards them."""

    def __init__(self, kernel, calls, name):
        self.kernel, self.calls, self.name = kernel, calls, name

    def __getitem__(self, config):
        self.calls.append(self.name)
        return self.kernel[config]


@pytest.mark.parametrize("C,kernel", [(1024, "warp"), (1025, "block")])
def test_launcher_picks_warp_or_block_by_row_length(monkeypatch, C, kernel):
    calls = []
    row_kernels = K.row_kernels(LOG_SOFTMAX)  # log_softmax's (built from its row core)
    for name in ("warp", "rows"):
        monkeypatch.setattr(row_kernels, name,
                            _Spy(getattr(row_kernels, name), calls, f"log_softmax.{name}"))
    for name in ("_ce_warp", "_ce_rows"):
        monkeypatch.setattr(K, name, _Spy(getattr(K, name), calls, name))
    x = RNG.standard_normal((1, C)).astype(np.float32)
    t = np.array([C - 1])
    _close(_h(nbops.log_softmax(_d(x))), _ref_softmax(x, "log_softmax").astype(np.float32),
           np.float32)
    _close(_h(nbops.cross_entropy(_d(x), _d(t), reduction="none")),
           nbops.cross_entropy(x, t, reduction="none"), np.float32)
    want = (["log_softmax.warp", "_ce_warp"] if kernel == "warp"
            else ["log_softmax.rows", "_ce_rows"])
    assert calls == want


# ------------------------------------------------------------------ cross_entropy / nll_loss
def _torch_loss(fn, x, t, **kw):
    kw = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    return getattr(torch.nn.functional, fn)(torch.from_numpy(x), torch.from_numpy(t),
                                            **kw).numpy()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_class_index_rows(path, fn, dtype):
    # per-sample losses of the row kernels, then the reductions (weighted mean included)
    x = RNG.standard_normal((5, 37)).astype(dtype)
    if fn == "nll_loss":
        x = nbops.log_softmax(x)
    t = RNG.integers(0, 37, 5)
    t[2] = -100  # ignored
    w = RNG.random(37).astype(dtype)
    f = getattr(nbops, fn)
    cases = [("none", {}), ("none", {"weight": w}), ("none", {"ignore_index": 5}),
             ("mean", {"weight": w}), ("sum", {})]
    for reduction, kw in cases:
        dkw = {k: _d(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        tt = t if "ignore_index" not in kw else np.where(t == -100, 5, t)
        got = _h(f(_d(x), _d(tt.astype(np.int32)), reduction=reduction, **dkw))
        _close(got, f(x, tt, reduction=reduction, **kw), dtype)
        _close(got, _torch_loss(fn, x, tt, reduction=reduction, **kw), dtype)


def test_cross_entropy_label_smoothing_rows(path):
    x = RNG.standard_normal((5, 40))
    t = RNG.integers(0, 40, 5)
    t[1] = -100
    w = RNG.random(40)
    for reduction, kw in (("none", {"label_smoothing": 0.15}),
                          ("none", {"label_smoothing": 0.3, "weight": w}),
                          ("mean", {"label_smoothing": 0.3, "weight": w})):
        dkw = {k: _d(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        got = _h(nbops.cross_entropy(_d(x), _d(t), reduction=reduction, **dkw))
        _close(got, nbops.cross_entropy(x, t, reduction=reduction, **kw), np.float64)
        _close(got, _torch_loss("cross_entropy", x, t, reduction=reduction, **kw), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_probability_targets_rows(dtype):
    x = RNG.standard_normal((5, 37)).astype(dtype)
    p = nbops.softmax(RNG.standard_normal((5, 37))).astype(dtype)
    w = RNG.random(37).astype(dtype)
    for kw in ({}, {"label_smoothing": 0.2}, {"weight": w}):
        dkw = {k: _d(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
        got = _h(nbops.cross_entropy(_d(x), _d(p), reduction="none", **dkw))
        _close(got, nbops.cross_entropy(x, p, reduction="none", **kw), dtype)
        _close(got, _torch_loss("cross_entropy", x, p, reduction="none", **kw), dtype)


def test_cross_entropy_nan_inf_rows_as_torch(path):
    x = SPECIAL[:, :4].copy()
    t = np.array([0, 1, 2, 3, 0, 1, 3])
    got = _h(nbops.cross_entropy(_d(x), _d(t), reduction="none"))
    want = _torch_loss("cross_entropy", x, t, reduction="none")
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-12)


# ------------------------------------------------------------------ bad class indices
@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("bad", [37, -1, 1 << 40])
def test_bad_class_index_raises_and_the_context_survives(path, fn, bad):
    f = getattr(nbops, fn)
    x = RNG.standard_normal((4, 37))
    t = np.array([0, 3, bad, 36])
    with pytest.raises(ValueError, match="target: a class index is out of range"):
        f(_d(x), _d(t))
    t[2] = 1
    _close(_h(f(_d(x), _d(t))), f(x, t), np.float64)  # the context is still usable
    cuda.synchronize()


@pytest.mark.parametrize("fn", ["cross_entropy", "nll_loss"])
def test_bad_class_index_positions_raise(fn):
    """(N, C, d) input: the thread-per-position kernel."""
    f = getattr(nbops, fn)
    x = RNG.standard_normal((2, 4, 3))
    t = np.array([[0, 1, 2], [3, 4, 0]])
    with pytest.raises(ValueError, match="out of range"):
        f(_d(x), _d(t))
    t[1, 1] = -100  # ignored: fine
    _close(_h(f(_d(x), _d(t))), f(x, t), np.float64)


# ------------------------------------------------------------------ real GPU
@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(4096, 1000), (8192, 33), (64, 5000)])
def test_rows_on_hardware(shape):
    """Warp-per-row (C <= 1024) and block-per-row kernels at real sizes, repeatable bit for bit."""
    x = (RNG.standard_normal(shape) * 3).astype(np.float32)
    t = RNG.integers(0, shape[1], shape[0])
    d, dt = _d(x), _d(t)
    for fn in ("softmax", "log_softmax"):
        a = _h(getattr(nbops, fn)(d))
        _close(a, _ref_softmax(x, fn).astype(np.float32), np.float32)
        np.testing.assert_array_equal(a, _h(getattr(nbops, fn)(d)))
    a = _h(nbops.cross_entropy(d, dt, reduction="none"))
    _close(a, nbops.cross_entropy(x, t, reduction="none"), np.float32)
    m = _h(nbops.cross_entropy(d, dt, label_smoothing=0.1))
    _close(m, nbops.cross_entropy(x, t, label_smoothing=0.1), np.float32)
    np.testing.assert_array_equal(m, _h(nbops.cross_entropy(d, dt, label_smoothing=0.1)))
