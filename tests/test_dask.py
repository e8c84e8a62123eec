"""nbops on dask arrays (nbops/_dask.py): lazy results equal to the in-memory ones for
every chunking tested, dropout masks independent of the chunking, clear errors, and a
dask.distributed LocalCluster run. The oracle is nbops' in-memory result (itself tested
against NumPy and PyTorch in the other test files)."""

import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import nbops
from nbops._ops import table

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

F32 = np.float32
RNG = np.random.default_rng(18)
X = RNG.standard_normal((7, 5)).astype(F32)
Y = RNG.standard_normal((7, 5)).astype(F32)
X3 = RNG.standard_normal((4, 5, 6)).astype(F32)

# single-element chunks, chunks splitting every axis, one chunk, uneven chunks
CHUNKINGS_2D = [(1, 1), (3, 2), (7, 5), ((2, 5), (1, 4))]
CHUNKINGS_3D = [(1, 1, 1), (2, 2, 4), (4, 5, 6), ((3, 1), (1, 4), (5, 1))]


# --------------------------------------------------------------------- helpers
class Counter:
    """Counts the blocks of a source array materialized: 0 until computed."""

    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def __call__(self, block):
        with self.lock:
            self.n += 1
        return block


def lazy(x, chunks):
    """A dask array of ``x`` whose blocks count their materialization."""
    counter = Counter()
    d = da.from_array(x, chunks=chunks).map_blocks(counter, dtype=x.dtype,
                                                   meta=np.empty((0,) * x.ndim, x.dtype))
    return d, counter


def check(result, expected, counter, exact=False, rtol=1e-5, atol=1e-6):
    """``result`` lazy (nothing computed yet), then equal to ``expected`` with its dtype."""
    assert isinstance(result, da.Array)
    assert counter.n == 0, "computed before .compute()"
    got = result.compute()
    assert counter.n > 0
    expected = np.asarray(expected)
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    if exact:
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------- import
def test_import_nbops_does_not_import_dask():
    code = ("import sys, numpy as np, nbops; nbops.relu(np.ones(3)); "
            "assert not [m for m in sys.modules if m == 'dask' or m.startswith('dask.')]")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_numpy_input_does_not_dispatch():
    from nbops._validate import is_dask_array

    assert not is_dask_array(X) and not is_dask_array([1.0]) and is_dask_array(da.ones(3))


# --------------------------------------------------------------------- elementwise
def _param_sets(entry):
    if any(p.kind not in ("float", "int", "bool", "choice") for p in entry.params):
        return []
    example = tuple(p.example if p.example is not None else p.default for p in entry.params)
    return [example]


@pytest.mark.parametrize("entry", [e for e in table.elementwise_entries() if _param_sets(e)],
                         ids=lambda e: e.name)
def test_elementwise(entry):
    fn = getattr(nbops, entry.name)
    for params in _param_sets(entry):
        expected = fn(X, *params)
        for chunks in CHUNKINGS_2D:
            d, counter = lazy(X, chunks)
            check(fn(d, *params), expected, counter, exact=True)


def test_elementwise_promotes_and_0d():
    xi = np.arange(-3, 4).reshape(7, 1)
    d, counter = lazy(xi, (2, 1))
    check(nbops.sigmoid(d), nbops.sigmoid(xi), counter, exact=True)
    d, counter = lazy(np.array(-2.0, F32), ())
    check(nbops.relu(d), nbops.relu(np.array(-2.0, F32)), counter, exact=True)


def test_prelu():
    w = np.array([0.1, 0.2, 0.3, 0.4, 0.5], F32)
    for chunks in CHUNKINGS_2D:
        d, counter = lazy(X, chunks)
        check(nbops.prelu(d, w), nbops.prelu(X, w), counter, exact=True)
        d, counter = lazy(X, chunks)
        check(nbops.prelu(d, w[:1]), nbops.prelu(X, w[:1]), counter, exact=True)
    with pytest.raises(ValueError, match="weight"):
        nbops.prelu(da.from_array(X), w[:3])


# --------------------------------------------------------------------- softmax family
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_softmax_family(name):
    fn = getattr(nbops, name)
    for chunks in CHUNKINGS_3D:
        for axis in (0, 1, -1):
            d, counter = lazy(X3, chunks)
            check(fn(d, axis=axis), fn(X3, axis=axis), counter)
    d, counter = lazy(X3, (2, 2, 4))
    check(fn(d, dim=1, dtype=np.float64), fn(X3, dim=1, dtype=np.float64), counter,
          rtol=1e-12, atol=1e-14)


def test_softmax_split_axis_inf_and_nan():
    x = np.array([[-np.inf, -np.inf, 1.0, 2.0], [-np.inf] * 4, [np.nan, 0.0, 1.0, 2.0]], F32)
    for chunks in [(1, 1), (3, 2)]:
        d, counter = lazy(x, chunks)
        check(nbops.softmax(d), nbops.softmax(x), counter)


def test_softmax_bad_axis():
    with pytest.raises((ValueError, IndexError), match="axis|dim"):
        nbops.softmax(da.from_array(X), axis=2)


# --------------------------------------------------------------------- losses
POINTWISE = [("l1_loss", {}), ("mse_loss", {}), ("smooth_l1_loss", {"beta": 0.5}),
             ("huber_loss", {"delta": 0.75}), ("kl_div", {}), ("kl_div", {"log_target": True}),
             ("binary_cross_entropy_with_logits", {})]


@pytest.mark.parametrize("name,kwargs", POINTWISE, ids=lambda v: str(v))
def test_pointwise_losses(name, kwargs):
    fn = getattr(nbops, name)
    t = np.abs(Y) if name == "kl_div" and not kwargs else Y
    reductions = ["none", "mean", "sum"] + (["batchmean"] if name == "kl_div" else [])
    for chunks in CHUNKINGS_2D:
        for reduction in reductions:
            d, counter = lazy(X, chunks)
            td = da.from_array(t, chunks=d.chunks)
            check(fn(d, td, reduction=reduction, **kwargs),
                  fn(X, t, reduction=reduction, **kwargs), counter)


def test_pointwise_losses_broadcast_target():
    row = Y[0]
    d, counter = lazy(X, (3, 2))
    with pytest.warns(UserWarning, match="target size"):
        res = nbops.mse_loss(d, row)
    with pytest.warns(UserWarning, match="target size"):
        expected = nbops.mse_loss(X, row)
    check(res, expected, counter)
    d, counter = lazy(X, (3, 2))
    check(nbops.kl_div(d, np.abs(row), reduction="sum"),
          nbops.kl_div(X, np.abs(row), reduction="sum"), counter)
    with pytest.raises(ValueError, match="target of shape"):
        nbops.binary_cross_entropy_with_logits(d, row)
    with pytest.raises(ValueError, match="target of shape"):
        nbops.mse_loss(d, Y[:, :1].repeat(6, axis=1))


def test_weighted_losses():
    w = np.abs(Y) + 0.5
    pw = np.array([1.0, 2.0, 0.5, 3.0, 1.5], F32)
    p = 1 / (1 + np.exp(-X))
    t = (Y > 0).astype(F32)
    for chunks in [(1, 1), ((2, 5), (1, 4))]:
        for reduction in ["none", "mean", "sum"]:
            d, counter = lazy(X, chunks)
            check(nbops.mse_loss(d, Y, reduction=reduction, weight=w),
                  nbops.mse_loss(X, Y, reduction=reduction, weight=w), counter)
            d, counter = lazy(X, chunks)
            check(nbops.huber_loss(d, Y, reduction=reduction, weight=w),
                  nbops.huber_loss(X, Y, reduction=reduction, weight=w), counter)
            d, counter = lazy(X, chunks)
            check(nbops.binary_cross_entropy_with_logits(d, t, w, reduction=reduction,
                                                         pos_weight=pw),
                  nbops.binary_cross_entropy_with_logits(X, t, w, reduction=reduction,
                                                         pos_weight=pw), counter)
            d, counter = lazy(p, chunks)
            check(nbops.binary_cross_entropy(d, t, w, reduction=reduction),
                  nbops.binary_cross_entropy(p, t, w, reduction=reduction), counter)


def test_binary_cross_entropy_checks_each_block_when_computed():
    bad = np.full((4, 2), 0.5, F32)
    bad[3, 1] = 1.5
    loss = nbops.binary_cross_entropy(da.from_array(bad, chunks=2), np.zeros_like(bad))
    with pytest.raises(ValueError, match="input"):
        loss.compute()


CLASS_CASES = [
    {},
    {"weight": np.array([0.5, 1.0, 2.0, 1.5, 0.25], F32)},
    {"ignore_index": 2},
    {"weight": np.array([0.5, 1.0, 2.0, 1.5, 0.25], F32), "ignore_index": 1,
     "label_smoothing": 0.2},
]


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("case", range(len(CLASS_CASES)))
def test_class_losses_2d(name, case):
    kwargs = dict(CLASS_CASES[case])
    if name == "nll_loss":
        kwargs.pop("label_smoothing", None)
    fn = getattr(nbops, name)
    t = RNG.integers(0, 5, 7)
    for chunks in CHUNKINGS_2D:  # (1, 1) and (3, 2) split the class axis
        for reduction in ["none", "mean", "sum"]:
            d, counter = lazy(X, chunks)
            check(fn(d, t, reduction=reduction, **kwargs),
                  fn(X, t, reduction=reduction, **kwargs), counter)


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
def test_class_losses_nd(name):
    fn = getattr(nbops, name)
    kwargs = dict(CLASS_CASES[3]) if name == "cross_entropy" else {"ignore_index": 3}
    t = RNG.integers(0, 5, (4, 6))
    t[0, 0] = kwargs["ignore_index"]
    for chunks in CHUNKINGS_3D:
        td = da.from_array(t, chunks=(chunks[0], chunks[2]))
        for reduction in ["none", "mean", "sum"]:
            d, counter = lazy(X3, chunks)
            check(fn(d, td, reduction=reduction, **kwargs),
                  fn(X3, t, reduction=reduction, **kwargs), counter)


def test_cross_entropy_probabilities_and_1d():
    probs = nbops.softmax(Y)
    for chunks in [(1, 1), (3, 5)]:
        for reduction in ["none", "mean", "sum"]:
            d, counter = lazy(X, chunks)
            check(nbops.cross_entropy(d, probs, reduction=reduction, label_smoothing=0.1),
                  nbops.cross_entropy(X, probs, reduction=reduction, label_smoothing=0.1),
                  counter)
    x1 = X[0]
    d, counter = lazy(x1, 2)
    check(nbops.cross_entropy(d, np.array(3)), nbops.cross_entropy(x1, np.array(3)), counter)


def test_loss_float64_stays_float64():
    x64 = X.astype(np.float64)
    t = RNG.integers(0, 5, 7)
    d, counter = lazy(x64, (3, 2))
    check(nbops.cross_entropy(d, t), nbops.cross_entropy(x64, t), counter,
          rtol=1e-12, atol=0)


def test_class_target_out_of_range_raises_when_computed():
    t = np.array([0, 1, 7, 0, 1, 2, 3])
    for chunks in [(3, 5), (3, 2)]:
        loss = nbops.cross_entropy(da.from_array(X, chunks=chunks), t)
        with pytest.raises(ValueError, match="out of range"):
            loss.compute()


# --------------------------------------------------------------------- the other ops
def test_batch_norm():
    g = np.array([1.0, 0.5, 2.0, -1.0, 0.25], F32)
    b = np.array([0.0, 0.1, -0.2, 0.3, 1.0], F32)
    for chunks in CHUNKINGS_3D:
        for training in (True, False):
            rm, rv = np.full(5, 0.1, F32), np.full(5, 2.0, F32)
            rm2, rv2 = rm.copy(), rv.copy()
            d, counter = lazy(X3, chunks)
            res = nbops.batch_norm(d, rm, rv, g, b, training=training, momentum=0.2)
            assert (rm == F32(0.1)).all() and (rv == F32(2.0)).all()  # not yet
            check(res, nbops.batch_norm(X3, rm2, rv2, g, b, training=training, momentum=0.2),
                  counter, rtol=1e-5, atol=1e-5)
            np.testing.assert_allclose(rm, rm2, rtol=1e-6, atol=1e-7)
            np.testing.assert_allclose(rv, rv2, rtol=1e-6)
    d, counter = lazy(X3, (1, 2, 3))
    check(nbops.batch_norm(d, None, None, training=True),
          nbops.batch_norm(X3, None, None, training=True), counter, rtol=1e-5, atol=1e-5)


def test_linear():
    w = RNG.standard_normal((3, 6)).astype(F32)
    bias = RNG.standard_normal(3).astype(F32)
    for chunks in CHUNKINGS_3D:
        for b in (None, bias):
            d, counter = lazy(X3, chunks)
            check(nbops.linear(d, w, b), nbops.linear(X3, w, b), counter, atol=1e-5)


def test_linear_backward():
    w = RNG.standard_normal((3, 6)).astype(F32)
    bias = RNG.standard_normal(3).astype(F32)
    g3 = RNG.standard_normal((4, 5, 3)).astype(F32)
    for chunks in CHUNKINGS_3D:
        for b in (None, bias):
            gd, counter = lazy(g3, chunks[:2] + (2,))  # every gradient reads grad_output
            got = nbops.linear_backward(gd, da.from_array(X3, chunks=chunks), w, b)
            exp = nbops.linear_backward(g3, X3, w, b)
            for k in range(3):
                if exp[k] is None:
                    assert got[k] is None
                    continue
                check(got[k], exp[k], counter, atol=1e-5)
                counter.n = 0


@pytest.mark.parametrize("name", ["relu", "sigmoid", "softplus"])
def test_elementwise_backward(name):
    """Blockwise on aligned chunks; a NumPy residual or grad_output is split
    into the dask one's chunks."""
    backward = getattr(nbops, f"{name}_backward")
    residual = getattr(nbops, name)(X) if name in ("relu", "sigmoid") else X
    exp = backward(Y, residual)
    for chunks in CHUNKINGS_2D:
        d, counter = lazy(Y, chunks)
        check(backward(d, residual), exp, counter, exact=True)
        r, counter = lazy(residual, chunks)
        check(backward(Y, r), exp, counter, exact=True)
    with pytest.raises(ValueError, match="chunks"):
        backward(da.from_array(Y, chunks=(3, 2)), da.from_array(residual, chunks=(2, 2)))
    with pytest.raises(TypeError, match="out"):
        backward(da.from_array(Y), residual, out=np.empty_like(Y))


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.0, np.inf, -np.inf])
def test_pairwise_distance(p):
    y3 = RNG.standard_normal(X3.shape).astype(F32)
    for chunks in CHUNKINGS_3D:
        for keepdim in (False, True):
            d, counter = lazy(X3, chunks)
            y = da.from_array(y3, chunks=d.chunks)
            check(nbops.pairwise_distance(d, y, p, keepdim=keepdim),
                  nbops.pairwise_distance(X3, y3, p, keepdim=keepdim), counter)


def test_pairwise_distance_numpy_row_and_nll_loss_1d():
    row = Y[0]
    d, counter = lazy(X, (3, 2))
    check(nbops.pairwise_distance(d, row), nbops.pairwise_distance(X, row), counter)
    logp = nbops.log_softmax(X[0])
    d, counter = lazy(logp, 2)
    check(nbops.nll_loss(d, np.array(4), reduction="sum"),
          nbops.nll_loss(logp, np.array(4), reduction="sum"), counter)


@pytest.mark.parametrize("name", ["dropout", "dropout2d", "dropout3d"])
def test_dropout_mask_independent_of_chunking(name):
    fn = getattr(nbops, name)
    x = RNG.standard_normal((3, 4, 5, 6)).astype(F32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dropout3d's rank warning
        expected = fn(x, 0.4, rng=123)
        for chunks in [(1, 1, 1, 1), (2, 3, 5, 6), (3, 4, 5, 6), ((1, 2), (3, 1), (2, 3), (4, 2)),
                       (1, 1, 1, 5)]:
            d, counter = lazy(x, chunks)
            check(fn(d, 0.4, rng=123), expected, counter, exact=True)
    d = da.from_array(x, chunks=2)
    assert nbops.dropout(d, 0.4, training=False) is d
    np.testing.assert_array_equal(nbops.dropout(d, 1.0).compute(), nbops.dropout(x, 1.0))


# --------------------------------------------------------------------- bad inputs
def test_unknown_chunk_sizes():
    d = da.from_array(X, chunks=(3, 5))
    unknown = d[d[:, 0] > -10]  # rows of unknown count
    assert np.isnan(unknown.shape[0])
    with pytest.raises(ValueError, match="unknown chunk sizes.*compute_chunk_sizes"):
        nbops.cross_entropy(unknown, np.zeros(7, np.int64))
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        nbops.dropout(unknown, 0.5, rng=0)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        nbops.mse_loss(unknown, unknown)
    assert nbops.relu(unknown).compute().shape == (7, 5)  # elementwise: no shape needed


def test_mismatched_chunks_and_bad_arguments():
    d = da.from_array(X, chunks=(3, 5))
    with pytest.raises(ValueError, match="target: its chunks"):
        nbops.cross_entropy(d, da.from_array(np.zeros(7, np.int64), chunks=2))
    with pytest.raises(ValueError, match="target: its chunks"):
        nbops.mse_loss(d, da.from_array(Y, chunks=(2, 5)))
    with pytest.raises(ValueError, match="x2: its chunks"):
        nbops.pairwise_distance(d, da.from_array(Y, chunks=(2, 5)))
    with pytest.raises(TypeError, match="out"):
        nbops.dropout(d, 0.5, rng=0, out=np.empty_like(X))
    with pytest.raises(TypeError, match="inplace"):
        nbops.relu(d, inplace=True)
    with pytest.raises(TypeError, match="weight: pass a NumPy array"):
        nbops.cross_entropy(d, np.zeros(7, np.int64), weight=da.ones(5))
    with pytest.raises(ValueError, match="reduction"):
        nbops.cross_entropy(d, np.zeros(7, np.int64), reduction="avg")
    with pytest.raises(ValueError, match="p"):
        nbops.dropout(d, 1.5)
    with pytest.raises(ValueError, match="weight"):
        nbops.cross_entropy(d, np.zeros(7, np.int64), weight=np.ones(4))
    with pytest.raises(ValueError, match="in_features"):
        nbops.linear(d, np.ones((2, 4), F32))
    # a NumPy first array: a dask array elsewhere is never computed implicitly
    with pytest.raises(TypeError, match="target: got a dask array"):
        nbops.mse_loss(X, da.from_array(Y, chunks=(3, 5)))
    with pytest.raises(TypeError, match="targets: got a dask array"):
        nbops.ctc_loss(np.zeros((4, 2, 3), F32), da.ones((2, 2), dtype=np.int64), [4, 4],
                       [2, 2])


# --------------------------------------------------------------------- schedulers
def test_threaded_scheduler_results_are_bit_identical():
    x = RNG.standard_normal((64, 50)).astype(F32)
    t = RNG.integers(0, 50, 64)
    d = da.from_array(x, chunks=(8, 10))
    loss = nbops.cross_entropy(d, t)
    sync = loss.compute(scheduler="synchronous")
    threaded = loss.compute(scheduler="threads", num_workers=4)
    assert sync.tobytes() == threaded.tobytes()
    np.testing.assert_allclose(threaded, nbops.cross_entropy(x, t), rtol=1e-6)


def test_thread_policy_one_parallel_launch_at_a_time(monkeypatch):
    """Blocks big enough for the parallel kernels, four scheduler threads: at most one
    parallel launch at a time in the process, the others take the serial twins."""
    from nbops import _config

    acquire, release = _config.acquire_parallel, _config.release_parallel
    state = {"active": 0, "peak": 0, "parallel": 0, "serial": 0}
    lock = threading.Lock()

    def counting_acquire(n):
        ok = acquire(n)
        with lock:
            state["parallel" if ok else "serial"] += 1
            if ok:
                state["active"] += 1
                state["peak"] = max(state["peak"], state["active"])
        return ok

    def counting_release():
        with lock:
            state["active"] -= 1
        release()

    monkeypatch.setattr(_config, "acquire_parallel", counting_acquire)
    monkeypatch.setattr(_config, "release_parallel", counting_release)
    from nbops import _launch

    parallel_from = _launch.everywhere_parallel_from()  # every kernel parallel from here
    if parallel_from is None:
        pytest.skip("nothing runs parallel (one Numba thread)")
    rows = parallel_from // 16 + 1
    x = RNG.standard_normal((8 * rows, 16)).astype(F32)
    d = da.from_array(x, chunks=(rows, 16))
    got = nbops.softplus(d).compute(scheduler="threads", num_workers=4)
    assert state["peak"] == 1 and state["parallel"] + state["serial"] == 8
    np.testing.assert_array_equal(got, nbops.softplus(x))


def test_local_cluster():
    """softmax + cross_entropy (+ an activation, dropout and cross_entropy's gradient) on
    two worker processes."""
    distributed = pytest.importorskip("distributed")

    x = RNG.standard_normal((40, 12)).astype(F32)
    t = RNG.integers(0, 12, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own start-up warnings
        with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            d = da.from_array(x, chunks=(10, 5))
            probs = nbops.softmax(d, axis=1)
            loss = nbops.cross_entropy(d, da.from_array(t, chunks=10), label_smoothing=0.1)
            dropped = nbops.dropout(nbops.elu(d), 0.3, rng=7)
            _, grad = nbops.cross_entropy_with_grad(d, da.from_array(t, chunks=10),
                                                    label_smoothing=0.1)
            got_probs, got_loss, got_dropped, got_grad = client.compute(
                [probs, loss, dropped, grad], sync=True)
            local = loss.compute(scheduler="synchronous")
    np.testing.assert_array_equal(got_dropped, nbops.dropout(nbops.elu(x), 0.3, rng=7))
    np.testing.assert_allclose(got_probs, nbops.softmax(x, axis=1), rtol=1e-5, atol=1e-7)
    assert got_loss.dtype == np.float32
    assert got_loss.tobytes() == local.tobytes()  # the same graph, any number of workers
    np.testing.assert_allclose(got_loss, nbops.cross_entropy(x, t, label_smoothing=0.1),
                               rtol=1e-6)
    np.testing.assert_allclose(got_grad, nbops.cross_entropy_with_grad(
        x, t, label_smoothing=0.1)[1], rtol=1e-5, atol=1e-7)  # split class axis, on workers


def test_dask_config_untouched():
    assert dask.config.get("scheduler", None) is None


# --------------------------------------------------------------------- backwards
def _check_all(got, exp, counter, **tol):
    """A tuple of lazy gradients (None where expected None) against the in-memory one."""
    assert len(got) == len(exp)
    for g, e in zip(got, exp, strict=True):
        if e is None:
            assert g is None
            continue
        check(g, e, counter, **tol)
        counter.n = 0


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "softmin"])
def test_softmax_family_backward(name):
    """Blockwise when the axis is one chunk; a split axis: float64 row-sum partials."""
    fn, backward = getattr(nbops, name), getattr(nbops, f"{name}_backward")
    g3 = RNG.standard_normal(X3.shape).astype(F32)
    for axis in (0, 1, -1):
        y = fn(X3, axis=axis)
        exp = backward(g3, y, axis=axis)
        for chunks in CHUNKINGS_3D:
            gd, counter = lazy(g3, chunks)
            check(backward(gd, da.from_array(y, chunks=chunks), axis=axis), exp, counter)
            yd, counter = lazy(y, chunks)
            check(backward(g3, yd, dim=axis), exp, counter)  # a NumPy grad_output
    y64 = fn(X3.astype(np.float64), axis=1)
    gd, counter = lazy(g3.astype(np.float64), (2, 2, 4))
    check(backward(gd, y64, axis=1), backward(g3.astype(np.float64), y64, axis=1), counter,
          rtol=1e-12, atol=1e-14)
    with pytest.raises(TypeError, match="out"):
        backward(da.from_array(g3), y64.astype(F32), out=np.empty_like(g3))


def test_prelu_backward():
    w = np.array([0.1, 0.2, 0.3, 0.4, 0.5], F32)
    x = X3.copy()
    x[0, 0, :3] = 0.0  # x == 0 takes the slope
    g3 = RNG.standard_normal(X3.shape).astype(F32)
    for weight in (w, w[:1]):
        exp = nbops.prelu_backward(g3, x, weight)
        for chunks in CHUNKINGS_3D:
            gd, counter = lazy(g3, chunks)
            _check_all(nbops.prelu_backward(gd, da.from_array(x, chunks=chunks), weight), exp,
                       counter, atol=1e-5)
            xd, counter = lazy(x, chunks)
            _check_all(nbops.prelu_backward(g3, xd, weight), exp, counter, atol=1e-5)
    with pytest.raises(ValueError, match="weight"):
        nbops.prelu_backward(da.from_array(g3), x, w[:3])


@pytest.mark.parametrize("name", ["dropout", "dropout2d", "dropout3d"])
def test_dropout_backward_mask_independent_of_chunking(name):
    backward = getattr(nbops, f"{name}_backward")
    g = RNG.standard_normal((3, 4, 5, 6)).astype(F32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dropout3d's rank warning
        exp = backward(g, 0.4, rng=123)
        for chunks in [(1, 1, 1, 1), (2, 3, 5, 6), ((1, 2), (3, 1), (2, 3), (4, 2))]:
            gd, counter = lazy(g, chunks)
            check(backward(gd, 0.4, rng=123), exp, counter, exact=True)
            gd, counter = lazy(g, chunks)
            check(backward(gd, 0.4, False, rng=123), g, counter, exact=True)
    with pytest.raises((TypeError, ValueError), match="rng"):
        backward(da.from_array(g), 0.4, rng=None)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, np.inf])
def test_pairwise_distance_backward(p):
    y3 = RNG.standard_normal(X3.shape).astype(F32)
    for keepdim in (False, True):
        gshape = (4, 5, 1) if keepdim else (4, 5)
        g = RNG.standard_normal(gshape).astype(F32)
        exp = nbops.pairwise_distance_backward(g, X3, y3, p, keepdim=keepdim)
        for chunks in CHUNKINGS_3D:  # (1, 1, 1) and (2, 2, 4) split the feature axis
            d, counter = lazy(X3, chunks)
            gd = da.from_array(g, chunks=d.chunks[:2] + ((1,),) if keepdim else d.chunks[:2])
            got = nbops.pairwise_distance_backward(gd, d, da.from_array(y3, chunks=chunks), p,
                                                   keepdim=keepdim)
            assert got[0].chunks == d.chunks
            _check_all(got, exp, counter, atol=1e-5)
    row = y3[0, 0]  # a NumPy x2 broadcast against x1: its gradient summed back
    g = RNG.standard_normal((4, 5)).astype(F32)
    d, counter = lazy(X3, (2, 2, 3))
    _check_all(nbops.pairwise_distance_backward(g, d, row),
               nbops.pairwise_distance_backward(g, X3, row), counter, atol=1e-5)


def test_batch_norm_backward_and_return_stats():
    w = np.array([1.0, 0.5, 2.0, -1.0, 0.25], F32)
    b = np.array([0.0, 0.1, -0.2, 0.3, 1.0], F32)
    g3 = RNG.standard_normal(X3.shape).astype(F32)
    for training in (True, False):
        rm, rv = np.full(5, 0.1, F32), np.full(5, 2.0, F32)
        y, mean, invstd = nbops.batch_norm(X3, rm.copy(), rv.copy(), w, b, training=training,
                                           return_stats=True)
        for weight in (w, None):
            exp = nbops.batch_norm_backward(g3, X3, mean, invstd, weight, training)
            for chunks in CHUNKINGS_3D:
                gd, counter = lazy(g3, chunks)
                _check_all(nbops.batch_norm_backward(gd, da.from_array(X3, chunks=chunks), mean,
                                                     invstd, weight, training),
                           exp, counter, rtol=1e-5, atol=1e-5)
        for chunks in CHUNKINGS_3D:  # the lazy statistics, straight into the backward
            d, counter = lazy(X3, chunks)
            got = nbops.batch_norm(d, rm.copy(), rv.copy(), w, b, training=training,
                                   return_stats=True)
            if training:
                _check_all(got, (y, mean, invstd), counter, rtol=1e-5, atol=1e-5)
            else:  # the running statistics: they do not read the input
                check(got[0], y, counter, rtol=1e-5, atol=1e-5)
                for lazy_stat, stat in zip(got[1:], (mean, invstd), strict=True):
                    assert lazy_stat.dtype == stat.dtype
                    np.testing.assert_allclose(lazy_stat.compute(), stat, rtol=1e-6)
            gd, counter = lazy(g3, chunks)
            _check_all(nbops.batch_norm_backward(gd, d, got[1], got[2], w, training),
                       nbops.batch_norm_backward(g3, X3, mean, invstd, w, training), counter,
                       rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="invstd"):
        nbops.batch_norm_backward(da.from_array(g3), X3, mean, invstd[:3], w, True)


def _loss_grad_cases(name, kwargs, x, t, reductions, make_input, make_target, tol):
    """``<name>_backward`` and ``<name>_with_grad`` of lazy inputs against the in-memory
    ones: a float, a 0-d array and a lazy 0-d grad_output for the reduced losses, a
    lazy grad_output of the loss's shape for 'none'."""
    backward = getattr(nbops, f"{name}_backward")
    with_grad = getattr(nbops, f"{name}_with_grad")
    for reduction in reductions:
        loss = getattr(nbops, name)(x, t, reduction=reduction, **kwargs)
        if reduction == "none":
            gs = [RNG.standard_normal(loss.shape).astype(loss.dtype)]
        else:
            gs = [0.75, np.array(1.5, F32)]
        for g in gs:
            exp = backward(g, x, t, reduction=reduction, **kwargs)
            d, counter = make_input()
            if reduction == "none":
                gl = da.from_array(g, chunks=d.chunks if g.ndim == d.ndim
                                   else d.chunks[:1] + d.chunks[2:])
            else:
                gl = g
            check(backward(gl, d, make_target(d), reduction=reduction, **kwargs), exp,
                  counter, **tol)
        if reduction != "none":  # a lazy 0-d grad_output
            d, counter = make_input()
            check(backward(da.asarray(np.float64(0.75)), d, make_target(d),
                           reduction=reduction, **kwargs),
                  backward(0.75, x, t, reduction=reduction, **kwargs), counter, **tol)
        exp_loss, exp_grad = with_grad(x, t, reduction=reduction, **kwargs)
        d, counter = make_input()
        got_loss, got_grad = with_grad(d, make_target(d), reduction=reduction, **kwargs)
        check(got_loss, exp_loss, counter, **tol)
        counter.n = 0
        check(got_grad, exp_grad, counter, **tol)


@pytest.mark.parametrize("name,kwargs", POINTWISE, ids=lambda v: str(v))
def test_pointwise_loss_backward(name, kwargs):
    t = np.abs(Y) if name == "kl_div" and not kwargs else Y
    reductions = ["none", "mean", "sum"] + (["batchmean"] if name == "kl_div" else [])
    for chunks in CHUNKINGS_2D:
        _loss_grad_cases(name, kwargs, X, t, reductions, lambda c=chunks: lazy(X, c),
                         lambda d: da.from_array(t, chunks=d.chunks), {})


def test_pointwise_loss_backward_broadcast_target():
    row = Y[0]
    with pytest.warns(UserWarning, match="target size"):
        exp_loss, exp_grad = nbops.mse_loss_with_grad(X, row, reduction="sum")
    for chunks in [(3, 2), (7, 5)]:
        d, counter = lazy(X, chunks)
        check(nbops.mse_loss_backward(0.5, d, row), nbops.mse_loss_backward(0.5, X, row),
              counter)
        d, counter = lazy(X, chunks)
        with pytest.warns(UserWarning, match="target size"):
            loss, grad = nbops.mse_loss_with_grad(d, row, reduction="sum")
        check(loss, exp_loss, counter)
        counter.n = 0
        check(grad, exp_grad, counter)


def test_weighted_loss_backward():
    w = np.abs(Y) + 0.5
    pw = np.array([1.0, 2.0, 0.5, 3.0, 1.5], F32)
    p = 1 / (1 + np.exp(-X))
    t = (Y > 0).astype(F32)
    for chunks in [(1, 1), ((2, 5), (1, 4))]:
        for name, x, target, kwargs in [
                ("mse_loss", X, Y, {"weight": w}), ("huber_loss", X, Y, {"weight": w}),
                ("binary_cross_entropy", p, t, {"weight": w}),
                ("binary_cross_entropy_with_logits", X, t, {"weight": w, "pos_weight": pw})]:
            _loss_grad_cases(name, kwargs, x, target, ["none", "mean", "sum"],
                             lambda c=chunks, x=x: lazy(x, c), lambda d, tt=target: tt,
                             {"rtol": 1e-5, "atol": 1e-5})


@pytest.mark.parametrize("name", ["cross_entropy", "nll_loss"])
@pytest.mark.parametrize("case", range(len(CLASS_CASES)))
def test_class_loss_backward(name, case):
    kwargs = dict(CLASS_CASES[case])
    if name == "nll_loss":
        kwargs.pop("label_smoothing", None)
    t = RNG.integers(0, 5, 7)
    t[2] = kwargs.get("ignore_index", 0)
    for chunks in CHUNKINGS_2D:  # (1, 1) and (3, 2) split the class axis
        _loss_grad_cases(name, kwargs, X, t, ["none", "mean", "sum"],
                         lambda c=chunks: lazy(X, c),
                         lambda d: da.from_array(t, chunks=d.chunks[0]), {})
    t3 = RNG.integers(0, 5, (4, 6))  # (N, C, d), a NumPy target
    for chunks in CHUNKINGS_3D:
        _loss_grad_cases(name, kwargs, X3, t3, ["none", "mean"],
                         lambda c=chunks: lazy(X3, c), lambda d: t3, {})


def test_class_loss_backward_probabilities_1d_and_errors():
    probs = nbops.softmax(Y)
    for chunks in [(1, 1), (3, 5)]:
        _loss_grad_cases("cross_entropy", {"label_smoothing": 0.1}, X, probs,
                         ["none", "mean", "sum"], lambda c=chunks: lazy(X, c),
                         lambda d: da.from_array(probs, chunks=d.chunks), {})
    x1 = X[0]
    _loss_grad_cases("cross_entropy", {}, x1, np.array(3), ["none", "mean"],
                     lambda: lazy(x1, 2), lambda d: np.array(3), {})
    d = da.from_array(X, chunks=(3, 5))
    t = np.zeros(7, np.int64)
    with pytest.raises(ValueError, match="grad_output"):
        nbops.cross_entropy_backward(np.ones(3, F32), d, t)
    with pytest.raises(ValueError, match="grad_output"):
        nbops.cross_entropy_backward(da.ones(6, chunks=3), d, t, reduction="none")
    with pytest.raises(TypeError, match="out"):
        nbops.nll_loss_backward(1.0, d, t, out=np.empty_like(X))
    with pytest.raises(ValueError, match="target: its chunks"):
        nbops.mse_loss_backward(1.0, d, da.from_array(Y, chunks=(2, 5)))
    bad = np.array([0, 1, 7, 0, 1, 2, 3])
    with pytest.raises(ValueError, match="out of range"):
        nbops.cross_entropy_backward(1.0, d, bad).compute()
