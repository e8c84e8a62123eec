"""nbops' uses of private Numba APIs (nbops/_numba_internals.py): each one works
on the installed Numba, and each fallback (the private API missing or raising,
simulated with monkeypatch) gives the same results, records the failure in
``fallbacks`` and warns once."""

import importlib.util
import os
import subprocess
import sys
import textwrap
import threading
import types as pytypes
import warnings

import numpy as np
import pytest
from numba import njit

import nbops  # noqa: F401  (the package first: _numba_internals is imported by it)
from nbops import _config
from nbops import _numba_internals as NI

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(autouse=True)
def fresh_record(monkeypatch):
    """Each test starts with no recorded fallback (and restores the real record)."""
    monkeypatch.setattr(NI, "fallbacks", {})


# ------------------------------------------------------------------ row views
def _sums_with(view):
    """A kernel summing rows of length C of a flat array through ``view``."""

    @njit
    def sums(x, C):
        out = np.empty(x.size // C, x.dtype)
        for r in range(out.size):
            row = view(x, r * C, C)
            acc = x.dtype.type(0)
            for c in range(row.size):
                acc += row[c]
            out[r] = acc
        return out

    return sums


def _row_sums_ref(x, C):
    return x.astype(np.float64).reshape(-1, C).sum(axis=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_row_view_on_this_numba(dtype):
    view = NI.make_row_view()
    assert view is not NI._row_slice and not NI.fallbacks
    x = np.arange(24, dtype=dtype)
    got = _sums_with(view)(x, 6)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, _row_sums_ref(x, 6))
    x.flags.writeable = False  # a read-only input gives a read-only view
    np.testing.assert_array_equal(_sums_with(view)(x, 4), _row_sums_ref(x, 4))


def _changed_populate_array(array, data, shape):  # a signature Numba might move to
    raise AssertionError("never called: the signature check rejects it")


@pytest.mark.parametrize("damage", ["missing", "signature_changed"])
def test_row_view_falls_back_to_a_slice(damage, monkeypatch):
    import numba.np.arrayobj as arrayobj

    if damage == "missing":
        monkeypatch.delattr(arrayobj, "populate_array")
    else:
        monkeypatch.setattr(arrayobj, "populate_array", _changed_populate_array)
    with pytest.warns(RuntimeWarning, match="row views are ordinary slices"):
        view = NI.make_row_view()
    assert view is NI._row_slice
    assert "numba.np.arrayobj.populate_array" in NI.fallbacks
    x = np.linspace(-3, 3, 30, dtype=np.float32)
    monkeypatch.undo()  # compile the private view again to compare
    np.testing.assert_array_equal(_sums_with(view)(x, 5), _sums_with(NI.make_row_view())(x, 5))
    np.testing.assert_allclose(_sums_with(view)(x, 5), _row_sums_ref(x, 5), rtol=1e-6)


# ------------------------------------------------------------------ stack blocks
def _block_sums_with(block):
    """A kernel filling a scratch block per row of a flat array and summing it."""

    @njit
    def sums(x, C):
        out = np.empty(x.size // C, np.float64)
        for r in range(out.size):
            a = block(x[0])
            b = block(0.0)
            for c in range(C):
                a[c] = x[r * C + c]
                b[c] = 2.0
            acc = 0.0
            for c in range(C):
                acc += a[c] * b[c]
            out[r] = acc
        return out

    return sums


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stack_block_on_this_numba(dtype):
    block = NI.make_stack_block(8)
    assert not NI.fallbacks
    x = np.arange(24, dtype=dtype)
    np.testing.assert_array_equal(_block_sums_with(block)(x, 6), 2 * _row_sums_ref(x, 6))
    np.testing.assert_array_equal(_block_sums_with(block)(x, 8), 2 * _row_sums_ref(x, 8))


def test_stack_block_falls_back_to_a_heap_array(monkeypatch):
    import numba.np.arrayobj as arrayobj

    monkeypatch.delattr(arrayobj, "populate_array")
    with pytest.warns(RuntimeWarning, match="row views are ordinary slices"):
        block = NI.make_stack_block(8)
    monkeypatch.undo()
    x = np.linspace(-3, 3, 32, dtype=np.float32)
    np.testing.assert_array_equal(_block_sums_with(block)(x, 8),
                                  _block_sums_with(NI.make_stack_block(8))(x, 8))


# ------------------------------------------------------------------ disk cache
def _affine(x, a):
    return a * x + 1.0


def _kernel():
    """A fresh dispatcher of ``_affine`` with nbops' cache (a new process, as far as
    the cache is concerned)."""
    return _config._cached_njit(_affine, **_config._COMMON)


def _hits(kernel):
    return sum(kernel.stats.cache_hits.values()), sum(kernel.stats.cache_misses.values())


X = np.linspace(-2, 2, 9)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NBOPS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_config, "CACHE_ENABLED", True)
    monkeypatch.setattr(NI, "_fast_load", True)
    return tmp_path


def test_cache_saves_and_loads_without_refresh(cache_dir, monkeypatch):
    first = _kernel()
    y = first(X, 2.0)
    assert _hits(first) == (0, 1)
    assert list(cache_dir.rglob("*.nbi")) and list(cache_dir.rglob("*.nbc"))

    calls = []
    real = NI.load_without_refresh

    def spy(cache, sig, target_context):
        calls.append(sig)
        return real(cache, sig, target_context)

    monkeypatch.setattr(NI, "load_without_refresh", spy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = _kernel()
        np.testing.assert_array_equal(second(X, 2.0), y)
    assert _hits(second) == (1, 0) and calls
    assert NI._fast_load and not NI.fallbacks
    np.testing.assert_array_equal(y, 2.0 * X + 1.0)


def test_cache_load_falls_back_to_numbas_path(cache_dir, monkeypatch):
    y = _kernel()(X, 3.0)

    def moved(cache, sig, target_context):  # what a renamed private method gives
        raise AttributeError("'NbopsFunctionCache' object has no attribute "
                             "'_load_overload' (simulated)")

    monkeypatch.setattr(NI, "load_without_refresh", moved)
    with pytest.warns(RuntimeWarning, match="Numba's own path"):
        second = _kernel()
        np.testing.assert_array_equal(second(X, 3.0), y)
    assert _hits(second) == (1, 0)  # loaded all the same, through Numba's load_overload
    assert not NI._fast_load
    assert "FunctionCache._load_overload without context refresh" in NI.fallbacks
    with warnings.catch_warnings():  # once: the next loads take Numba's path silently
        warnings.simplefilter("error")
        third = _kernel()
        np.testing.assert_array_equal(third(X, 3.0), y)
    assert _hits(third) == (1, 0)


@pytest.mark.parametrize("damage", ["garbage_index", "truncated_data"])
def test_damaged_cache_files_recompile(damage, cache_dir):
    y = _kernel()(X, 4.0)
    suffix = ".nbi" if damage == "garbage_index" else ".nbc"
    for p in cache_dir.rglob("*" + suffix):
        p.write_bytes(b"garbage\n" if damage == "garbage_index" else p.read_bytes()[:50])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a damaged file is no API change: no warning
        again = _kernel()
        np.testing.assert_array_equal(again(X, 4.0), y)
        assert _hits(again) == (0, 1)
        third = _kernel()  # the rewritten cache works
        np.testing.assert_array_equal(third(X, 4.0), y)
        assert _hits(third) == (1, 0)
    assert NI._fast_load and not NI.fallbacks


def test_forget_index_falls_back_to_flush():
    flushed = []
    cache = pytypes.SimpleNamespace(_cache_file=object(), flush=lambda: flushed.append(1))
    with pytest.warns(RuntimeWarning, match="flushed"):
        NI.forget_index(cache)
    assert flushed == [1] and "Cache._cache_file._index_path" in NI.fallbacks


def test_forget_index_removes_the_index(tmp_path):
    index = tmp_path / "f.nbi"
    index.write_bytes(b"x")
    cache = pytypes.SimpleNamespace(_cache_file=pytypes.SimpleNamespace(_index_path=str(index)))
    NI.forget_index(cache)
    NI.forget_index(cache)  # already gone: nothing to do
    assert not index.exists() and not NI.fallbacks


def test_save_failure_warns_once_and_the_op_works(cache_dir, monkeypatch):
    from numba.core import caching

    def disk_full(self, sig, data):
        raise OSError(28, "No space left on device (simulated)")

    monkeypatch.setattr(caching.Cache, "save_overload", disk_full)
    with pytest.warns(RuntimeWarning, match="saving a kernel to the disk cache failed"):
        np.testing.assert_array_equal(_kernel()(X, 5.0), 5.0 * X + 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(_kernel()(X, 5.0), 5.0 * X + 1.0)
    assert "saving a kernel to the disk cache" in NI.fallbacks
    assert not list(cache_dir.rglob("*.nbc"))


def test_cache_class_missing_falls_back_to_numbas_cache(tmp_path, monkeypatch):
    import numba

    def moved(source_stamp):
        raise AttributeError("module 'numba.core.caching' has no attribute "
                             "'_CacheLocator' (simulated)")

    monkeypatch.setattr(NI, "make_cache_class", moved)
    monkeypatch.setattr(NI, "_cache_class", None)
    monkeypatch.setattr(_config, "CACHE_ENABLED", True)
    monkeypatch.delenv("NBOPS_CACHE_DIR", raising=False)
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))  # Numba's own locator
    with pytest.warns(RuntimeWarning, match="Numba's own disk cache"):
        kernel = _kernel()
    np.testing.assert_array_equal(kernel(X, 6.0), 6.0 * X + 1.0)
    assert _hits(kernel) == (0, 1)
    assert list(tmp_path.rglob("*.nbi"))  # saved by Numba's cache
    assert "numba.core.caching" in NI.fallbacks


def test_no_writable_location_warns_and_runs_uncached(monkeypatch):
    def nowhere(dispatcher, source_stamp):
        raise RuntimeError("cannot cache function: no locator available (simulated)")

    def numba_nowhere(*args, **kwargs):
        if kwargs.get("cache"):
            raise RuntimeError("cannot cache function: no locator available (simulated)")
        return njit(*args, **kwargs)

    monkeypatch.setattr(NI, "enable_disk_cache", nowhere)
    monkeypatch.setattr(_config, "njit", numba_nowhere)
    monkeypatch.setattr(_config, "CACHE_ENABLED", True)
    monkeypatch.setattr(_config, "_cache_warned", False)
    with pytest.warns(RuntimeWarning, match="not cached on disk"):
        kernel = _kernel()
    np.testing.assert_array_equal(kernel(X, 7.0), 7.0 * X + 1.0)


# ------------------------------------------------------------------ calling a kernel
def test_entry_point_on_this_numba():
    kernel = _config._cached_njit(_affine, **_config._COMMON)
    sig = (NI.argument_type(kernel, X), NI.argument_type(kernel, 2.0))
    kernel.compile(sig)
    fn = NI.compiled_entry_point(kernel, sig)
    assert fn is not kernel and not NI.fallbacks
    np.testing.assert_array_equal(fn(X, 2.0), 2.0 * X + 1.0)


def test_entry_point_falls_back_to_the_dispatcher():
    kernel = _config._cached_njit(_affine, **_config._COMMON)
    never_compiled = (NI.argument_type(kernel, X.astype(np.float32)),
                      NI.argument_type(kernel, 2.0))
    with pytest.warns(RuntimeWarning, match="through their dispatcher"):
        fn = NI.compiled_entry_point(kernel, never_compiled)
    assert fn is kernel
    np.testing.assert_array_equal(fn(X, 2.0), 2.0 * X + 1.0)


# ------------------------------------------------------- tasks called by address
def _scale_task(x, a, out, task):
    """out[task] = a * x[task]; raises for a negative ``a`` (an exception to propagate)."""
    if a < 0.0:
        raise ValueError("negative scale")
    out[task] = a * x[task]


def _tasks_with(call_task, task):
    @njit
    def run(x, a, out, address):
        for t in range(x.size):
            call_task(task, address, (x, a, out, np.int64(t)))

    return run


def _task_and_address():
    from numba import types

    task = _config.task_function(_scale_task)
    sig = (NI.argument_type(task, X), types.float64, NI.argument_type(task, X),
           types.int64)
    return task, NI.task_address(task, sig)


def test_task_call_on_this_numba():
    call_task = NI.make_task_call()
    assert call_task is not NI._call_linked and not NI.fallbacks
    task, address = _task_and_address()
    assert address
    run = _tasks_with(call_task, task)
    out = np.zeros_like(X)
    run(X, 3.0, out, address)
    np.testing.assert_array_equal(out, 3.0 * X)
    with pytest.raises(ValueError, match="negative scale"):  # the task's exception
        run(X, -1.0, out, address)
    for cres in run.overloads.values():  # the task's code is not linked into the caller
        assert not any("_scale_task" in f.name for f in cres.library.get_defined_functions())


def test_task_call_falls_back_to_a_linked_call(monkeypatch):
    from numba.core import cgutils

    monkeypatch.delattr(cgutils, "if_unlikely")
    with pytest.warns(RuntimeWarning, match="linked into their kernels"):
        call_task = NI.make_task_call()
    monkeypatch.undo()
    assert call_task is NI._call_linked
    task, address = _task_and_address()
    out = np.zeros_like(X)
    _tasks_with(call_task, task)(X, 3.0, out, address)
    np.testing.assert_array_equal(out, 3.0 * X)


def test_argument_type_falls_back_to_numba_typeof():
    import numba

    kernel = _config._cached_njit(_affine, **_config._COMMON)
    plain = pytypes.SimpleNamespace()  # no typeof_pyval
    for value in (X, X.astype(np.float32)[::2], 2.0, 3, (1, 2.0)):
        expected = NI.argument_type(kernel, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            assert NI.argument_type(plain, value) == expected == numba.typeof(value)
    assert "Dispatcher.typeof_pyval" in NI.fallbacks


# ------------------------------------------------------------------ simulator shuffles
class _Dim:
    def __init__(self, x, y=0, z=0):
        self.x, self.y, self.z = x, y, z


class _FakeCuda:
    """What the shuffles use of the simulator's fake ``cuda`` module, on Python threads."""

    def __init__(self, nthreads):
        self.blockDim = _Dim(32, nthreads // 32, 1)
        self.blockIdx = _Dim(0)
        self._barrier = threading.Barrier(nthreads)
        self._local = threading.local()

    @property
    def threadIdx(self):
        return self._local.idx

    def syncthreads(self):
        self._barrier.wait()


def test_shuffle_emulation():
    fake = type("Fake", (_FakeCuda,), NI._shuffle_methods())(64)
    got = np.zeros((2, 32, 5))

    def thread(w, lane):
        fake._local.idx = _Dim(lane, w, 0)
        v = 100.0 * w + lane
        got[w, lane, 0] = fake.shfl_xor_sync(0xFFFFFFFF, v, 5)
        got[w, lane, 1] = fake.shfl_down_sync(0xFFFFFFFF, v, 3)
        got[w, lane, 2] = fake.shfl_up_sync(0xFFFFFFFF, v, 2)
        got[w, lane, 3] = fake.shfl_sync(0xFFFFFFFF, v, 7)
        s, off = v, 16  # the xor butterfly of nbops/cuda/_kernels.py's warp_sum
        while off:
            s += fake.shfl_xor_sync(0xFFFFFFFF, s, off)
            off //= 2
        got[w, lane, 4] = s

    threads = [threading.Thread(target=thread, args=(w, lane))
               for w in range(2) for lane in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lanes = np.arange(32)
    for w in range(2):
        base = 100.0 * w
        np.testing.assert_array_equal(got[w, :, 0], base + (lanes ^ 5))
        np.testing.assert_array_equal(got[w, :, 1], base + np.where(lanes < 29, lanes + 3, lanes))
        np.testing.assert_array_equal(got[w, :, 2], base + np.where(lanes >= 2, lanes - 2, lanes))
        np.testing.assert_array_equal(got[w, :, 3], base + 7)
        np.testing.assert_array_equal(got[w, :, 4], 32 * base + lanes.sum())


SIMULATOR_CODE = """
    import sys, warnings
    if {missing}:
        import numba.cuda
        sys.modules["numba.cuda.simulator.kernelapi"] = None  # the private class is gone
    import numpy as np
    import nbops
    from numba import cuda
    from nbops import _numba_internals
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from nbops.cuda import _core, _kernels
    print(_core.WARP_SHUFFLES, _kernels.WARP_ROW_MAX, sorted(_numba_internals.fallbacks),
          len(caught))
    x = np.random.default_rng(0).standard_normal((6, 40)).astype(np.float32)
    p = nbops.softmax(np.random.default_rng(1).standard_normal((6, 40)).astype(np.float32))
    sm = cuda.to_device(np.empty_like(x))
    nbops.softmax(cuda.to_device(x), out=sm)
    ce = nbops.cross_entropy(cuda.to_device(x), cuda.to_device(p), reduction="none")
    print(float(np.abs(sm.copy_to_host() - nbops.softmax(x)).max()),
          float(np.abs(ce.copy_to_host() - nbops.cross_entropy(x, p, reduction="none")).max()))
"""


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None
                    and importlib.util.find_spec("numba.cuda") is None,
                    reason="no numba.cuda")
@pytest.mark.parametrize("missing", [False, True])
def test_simulator_shuffles_installed_or_block_kernels(missing):
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", NBOPS_DISABLE_CACHE="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c",
                           textwrap.dedent(SIMULATOR_CODE.format(missing=missing))],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first, second = proc.stdout.strip().splitlines()[-2:]
    if missing:
        assert first == "False 0 ['numba.cuda.simulator.kernelapi.FakeCUDAModule'] 1"
    else:
        assert first == "True 1024 [] 0"
    sm_err, ce_err = map(float, second.split())
    assert sm_err < 1e-6 and ce_err < 1e-5
