"""nbops on a dask.distributed LocalCluster of worker processes (issue 18, item 7):
the ops added at the last stop (glu, rrelu, gumbel_softmax, local_response_norm,
bilinear, dropout1d, alpha_dropout, feature_alpha_dropout and the five row losses)
and the split-row paths of nbops/_dask.py (nbops/_ops/split_rows.py's kernels).

One cluster for the module (2 processes of one thread, ``NUMBA_NUM_THREADS=1`` in
the workers: the thread policy of docs/guides/dask.rst for 2 workers on 2 cores),
small arrays (every kernel serial), one ``client.compute`` per test. Each graph is
computed first in this process with the synchronous scheduler (which compiles and
caches the kernels it needs); the workers must then load every kernel from the disk
cache (no cache miss) and give the same bits. The oracle is nbops' in-memory result.
"""

import warnings

import numpy as np
import pytest

import nbops
from nbops import _config

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
import dask  # noqa: E402

F32 = np.float32
RNG = np.random.default_rng(1818)


def _worker_state():
    """(NUMBA_NUM_THREADS, disk-cache hits, the signatures that missed the disk cache)
    of this process's cached nbops kernels (the module-level dispatchers of nbops'
    modules)."""
    import sys

    import numba
    from numba.core.dispatcher import Dispatcher

    hits = 0
    misses = []
    seen = set()
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("nbops"):
            continue
        for obj in list(vars(module).values()):
            if not isinstance(obj, Dispatcher) or id(obj) in seen:
                continue
            seen.add(id(obj))
            stats = obj.stats
            if stats.cache_path is None:  # not a disk-cached kernel
                continue
            hits += sum(stats.cache_hits.values())
            misses += [f"{name}.{obj.py_func.__name__}{sig}" for sig in stats.cache_misses]
    return numba.config.NUMBA_NUM_THREADS, hits, misses


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cluster's own start-up warnings
        with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                      dashboard_address=None,
                                      env={"NUMBA_NUM_THREADS": "1"}) as cluster, \
                distributed.Client(cluster) as c:
            yield c


def _on_cluster(client, results):
    """``results`` computed on the workers, after a local synchronous run (the same
    bits); the workers' thread count and cache use checked."""
    local = dask.compute(*results, scheduler="synchronous")
    got = client.compute(list(results), sync=True)
    for a, b in zip(got, local, strict=True):
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes()
    states = client.run(_worker_state)
    assert len(states) == 2
    for threads, _hits, misses in states.values():
        assert threads == 1
        if _config.CACHE_ENABLED:
            assert not misses, f"a worker compiled kernels instead of loading them: {misses}"
    if _config.CACHE_ENABLED:
        assert sum(h for _, h, _ in states.values()) > 0
    return got


def test_stop18_ops(client):
    """glu, rrelu (training), gumbel_softmax, local_response_norm, bilinear and the
    dropouts (forward and backward) on the workers."""
    x = RNG.standard_normal((6, 4, 8)).astype(F32)
    g = RNG.standard_normal(x.shape).astype(F32)
    w = RNG.standard_normal((3, 8, 8)).astype(F32)
    b = RNG.standard_normal(3).astype(F32)
    d = da.from_array(x, chunks=(2, 4, 4))
    dg = da.from_array(g, chunks=(2, 4, 4))
    calls = [
        (lambda a: nbops.glu(a, -1), {}),
        (lambda a: nbops.rrelu(a, 0.1, 0.3, training=True, rng=4), {}),
        (lambda a: nbops.gumbel_softmax(a, 0.5, axis=-1, rng=8), {}),
        (lambda a: nbops.local_response_norm(a, 3, 0.5, 0.75, 2.0), {}),
        (lambda a: nbops.bilinear(a, a, w, b), {"rtol": 1e-5, "atol": 1e-5}),
        (lambda a: nbops.dropout1d(a, 0.4, True, rng=3), {}),
        (lambda a: nbops.alpha_dropout(a, 0.4, True, rng=3), {}),
        (lambda a: nbops.feature_alpha_dropout(a, 0.4, True, rng=3), {}),
    ]
    gh = g[..., :4]  # glu's output: the last axis halved
    backwards = [nbops.glu_backward(dg[..., :4], d, -1),
                 nbops.rrelu_backward(dg, d, 0.1, 0.3, training=True, rng=4),
                 nbops.local_response_norm_backward(dg, d, 3, 0.5, 0.75, 2.0),
                 nbops.dropout1d_backward(dg, 0.4, True, rng=3)]
    expected_backwards = [nbops.glu_backward(gh, x, -1),
                          nbops.rrelu_backward(g, x, 0.1, 0.3, training=True, rng=4),
                          nbops.local_response_norm_backward(g, x, 3, 0.5, 0.75, 2.0),
                          nbops.dropout1d_backward(g, 0.4, True, rng=3)]
    got = _on_cluster(client, [f(d) for f, _ in calls] + backwards)
    for (f, tol), r in zip(calls, got, strict=False):
        expected = f(x)
        assert r.dtype == expected.dtype
        if tol:
            np.testing.assert_allclose(r, expected, **tol)
        else:
            np.testing.assert_array_equal(r, expected)
    for r, expected in zip(got[len(calls):], expected_backwards, strict=True):
        np.testing.assert_array_equal(r, expected)


def test_stop18_losses(client):
    """The five row losses ('mean'), their backward and _with_grad on the workers."""
    x = RNG.standard_normal((8, 6)).astype(F32)
    y = RNG.standard_normal((8, 6)).astype(F32)
    z = RNG.standard_normal((8, 6)).astype(F32)
    sign = np.where(RNG.standard_normal(8) > 0, 1.0, -1.0)
    cls = RNG.integers(0, 6, 8)
    labels = np.full((8, 6), -1)
    labels[:, :2] = RNG.integers(0, 6, (8, 2))
    calls = [("cosine_embedding_loss", (x, y, sign), {"margin": 0.1}),
             ("triplet_margin_loss", (x, y, z), {"margin": 0.5, "swap": True}),
             ("triplet_margin_with_distance_loss", (x, y, z), {}),
             ("multi_margin_loss", (x, cls), {"p": 2, "margin": 0.7}),
             ("multilabel_margin_loss", (x, labels), {})]
    def results(name, arrays, kw):
        """The loss, then every gradient of the backward and of _with_grad."""
        flat = [getattr(nbops, name)(*arrays, **kw)]
        for grads in (getattr(nbops, f"{name}_backward")(0.5, *arrays, **kw),
                      getattr(nbops, f"{name}_with_grad")(*arrays, **kw)[1]):
            flat += list(grads) if isinstance(grads, tuple) else [grads]
        return flat

    lazy, expected = [], []
    for name, arrays, kw in calls:
        dargs = tuple(da.from_array(a, chunks=3) if a.dtype == F32 else a for a in arrays)
        lazy += results(name, dargs, kw)
        expected += results(name, arrays, kw)
    got = _on_cluster(client, lazy)
    for r, e in zip(got, expected, strict=True):
        assert r.dtype == e.dtype and r.shape == e.shape
        np.testing.assert_allclose(r, e, rtol=1e-5, atol=1e-6)


def test_split_rows(client):
    """Rows split across chunks (nbops/_ops/split_rows.py's kernels) on the workers:
    layer_norm, rms_norm, softmax, log_softmax, normalize, cosine_similarity,
    group_norm."""
    x = RNG.standard_normal((6, 40)).astype(F32)
    y = RNG.standard_normal((6, 40)).astype(F32)
    w = RNG.standard_normal(40).astype(F32)
    # C-contiguous blocks here as on the workers (which receive copies): a block of
    # a from_array slice is a strided view, whose kernels would be other signatures.
    d = da.from_array(x, chunks=(3, 16)).map_blocks(np.ascontiguousarray)
    dy = da.from_array(y, chunks=(3, 16)).map_blocks(np.ascontiguousarray)
    lazy = [nbops.layer_norm(d, (40,), w, w), nbops.rms_norm(d, (40,), w),
            nbops.softmax(d, axis=1), nbops.log_softmax(d, axis=1),
            nbops.normalize(d, 2.0, 1), nbops.cosine_similarity(d, dy, 1)]
    expected = [nbops.layer_norm(x, (40,), w, w), nbops.rms_norm(x, (40,), w),
                nbops.softmax(x, axis=1), nbops.log_softmax(x, axis=1),
                nbops.normalize(x, 2.0, 1), nbops.cosine_similarity(x, y, 1)]
    # group_norm with each (sample, channel)'s positions split (4 groups of 2 channels)
    xg = RNG.standard_normal((4, 8, 6, 5)).astype(F32)
    wg = RNG.standard_normal(8).astype(F32)
    dg = da.from_array(xg, chunks=(2, 4, 3, 5)).map_blocks(np.ascontiguousarray)
    lazy.append(nbops.group_norm(dg, 4, wg, wg))
    expected.append(nbops.group_norm(xg, 4, wg, wg))
    got = _on_cluster(client, lazy)
    for r, e in zip(got, expected, strict=True):
        assert r.dtype == e.dtype
        np.testing.assert_allclose(r, e, rtol=1e-5, atol=1e-6)


class MemmapTarget:
    """An ``out=`` the workers can write: each assignment opens the file (a
    numpy.memmap) in the writing process. Picklable by its path."""

    def __init__(self, path, shape, dtype):
        self.path, self.shape, self.dtype = str(path), tuple(shape), np.dtype(dtype)
        np.lib.format.open_memmap(self.path, mode="w+", dtype=self.dtype, shape=self.shape)

    def __setitem__(self, key, value):
        m = np.load(self.path, mmap_mode="r+")
        m[key] = value
        m.flush()


def test_out_on_cluster(client, tmp_path):
    """out= with a dask input on the cluster: a NumPy out raises (the workers would
    write into copies); an array-like the workers can write receives every chunk."""
    x = RNG.standard_normal((6, 40)).astype(F32)
    d = da.from_array(x, chunks=(3, 16)).map_blocks(np.ascontiguousarray)
    with pytest.raises(TypeError, match="local schedulers"):
        nbops.relu(d, out=np.empty_like(x))
    for fn, name in ((lambda a, out: nbops.relu(a, out=out), "relu"),
                     (lambda a, out: nbops.softmax(a, axis=1, out=out), "softmax")):
        target = MemmapTarget(tmp_path / f"{name}.npy", x.shape, x.dtype)
        assert fn(d, target) is target
        np.testing.assert_array_equal(np.load(target.path), fn(d, None).compute(
            scheduler="synchronous"))
