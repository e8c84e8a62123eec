"""Every knob of nbops in one place: jit options, size thresholds, env switches.

Environment variables
---------------------
NBOPS_DISABLE_CACHE=1
    Do not cache compiled kernels on disk (each process compiles again).
NBOPS_CACHE_DIR=<dir>
    Cache compiled kernels there. Otherwise: ``NUMBA_CACHE_DIR`` if set, else
    ``__pycache__`` beside the sources if writable, else the user's cache
    directory, else a per-user folder in the system's temporary directory; if
    none is writable, nbops warns once and runs without a disk cache.
NBOPS_PARALLEL_THRESHOLD=<int>
    Element count from which the multi-threaded kernels are used
    (default below; smaller inputs run the serial twin).
"""

import os
import tempfile
import threading
import warnings

from numba import njit

#: Inputs with at least this many elements run the ``parallel=True`` kernels.
#: Below it, waking the thread pool costs more than the second core gains, even
#: for the transcendental ops, above all when another process keeps a core busy
#: (the measurements: docs/guides/architecture.rst, "Memory, threads and BLAS").
PARALLEL_THRESHOLD = int(os.environ.get("NBOPS_PARALLEL_THRESHOLD", 131072))

CACHE_ENABLED = os.environ.get("NBOPS_DISABLE_CACHE", "").strip().lower() not in (
    "1", "true", "yes", "on")

# error_model="numpy": float division by zero gives inf/nan, as in NumPy and PyTorch.
# No fastmath anywhere: it deletes NaN/inf handling.
_COMMON = dict(error_model="numpy", nogil=True)


_cache_warned = False


def _make_cache_class():
    """A Numba FunctionCache whose locators end with fallbacks that always exist."""
    from numba.core import caching

    class PackageStamp:
        """Stamp every kernel with a hash of all of nbops' sources (and version).

        Numba's own stamp is the kernel's file only: editing a scalar core in
        another file, or upgrading nbops, would load stale machine code.
        """

        def get_source_stamp(self):
            return _package_stamp()

    base = (PackageStamp, caching._SourceFileBackedLocatorMixin, caching._CacheLocator)

    class _DirLocator(*base):
        root = None  # set by subclasses

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(self.root(), self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self):
            return self._cache_path

    class NbopsDirLocator(_DirLocator):
        @staticmethod
        def root():
            return os.environ.get("NBOPS_CACHE_DIR", "")

        @classmethod
        def from_function(cls, py_func, py_file):
            if not cls.root():
                return None
            return super().from_function(py_func, py_file)

    class TempDirLocator(_DirLocator):
        @staticmethod
        def root():
            user = getattr(os, "getuid", lambda: "user")()
            return os.path.join(tempfile.gettempdir(), f"nbops-cache-{user}")

    def stamped(cls):
        return type("Nbops" + cls.__name__, (PackageStamp, cls), {})

    class CacheImpl(caching.CompileResultCacheImpl):
        _locator_classes = [NbopsDirLocator, stamped(caching.UserProvidedCacheLocator),
                            stamped(caching.InTreeCacheLocator),
                            stamped(caching.UserWideCacheLocator), TempDirLocator]

    class NbopsFunctionCache(caching.FunctionCache):
        _impl_class = CacheImpl

        def load_overload(self, sig, target_context):
            try:
                return self._load_without_refresh(sig, target_context)
            except Exception:
                pass
            try:
                return super().load_overload(sig, target_context)
            except Exception:
                # a truncated or corrupt cache file (a crash mid-write, a full
                # disk): forget the index, compile again, and save afresh
                try:
                    os.remove(self._cache_file._index_path)
                except OSError:
                    pass
                return None

        def _load_without_refresh(self, sig, target_context):
            """Numba's load_overload without its ``target_context.refresh()``.

            That refresh imports and registers every lowering implementation
            of Numba (once per process; its cost is in docs/guides/performance.rst):
            needed to compile, not to load machine code, which needs only the
            runtime (NRT). Numba refreshes the context itself before any
            compilation.
            """
            from numba.core.runtime import rtsys

            rtsys.initialize(target_context)
            with self._guard_against_spurious_io_errors():
                return self._load_overload(sig, target_context)

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except Exception:  # the cache is an optimization: never fail an op for it
                pass

    return NbopsFunctionCache


_cache_class = None
_stamp = None


def _package_stamp():
    """sha256 of every .py file of the nbops package (computed once per process)."""
    global _stamp
    if _stamp is None:
        import hashlib

        root = os.path.dirname(os.path.abspath(__file__))
        digest = hashlib.sha256()
        for folder, dirs, files in sorted(os.walk(root)):
            dirs.sort()
            for name in sorted(files):
                if name.endswith(".py"):
                    path = os.path.join(folder, name)
                    digest.update(os.path.relpath(path, root).encode())
                    with open(path, "rb") as f:
                        digest.update(f.read())
        _stamp = digest.hexdigest()
    return _stamp


def _with_cache(dispatcher):
    """Turn on the on-disk cache, or warn (once) and go on without it."""
    global _cache_class, _cache_warned
    if not CACHE_ENABLED:
        return dispatcher
    try:
        if _cache_class is None:
            _cache_class = _make_cache_class()
        dispatcher._cache = _cache_class(dispatcher.py_func)
    except Exception as exc:  # no writable location at all, or Numba internals moved
        try:
            dispatcher.enable_caching()
        except Exception:
            if not _cache_warned:
                _cache_warned = True
                warnings.warn(f"nbops: compiled kernels are not cached on disk ({exc})",
                              RuntimeWarning, stacklevel=3)
    return dispatcher


def serial_kernel(func=None, *, fastmath=False):
    """Decorator for a module-level single-threaded kernel (cached on disk).

    ``fastmath``: a set of LLVM fast-math flags (never ``nnan``/``ninf``/``fast``).
    """
    if func is None:
        return lambda f: serial_kernel(f, fastmath=fastmath)
    return _with_cache(njit(fastmath=_checked(fastmath), **_COMMON)(func))


def parallel_kernel(func=None, *, fastmath=False):
    """Decorator for a module-level ``parallel=True`` kernel (cached on disk).

    For a serial/parallel pair use :func:`kernels` (one function, two kernels
    with distinct cache files: Numba's cache key ignores the ``parallel`` flag).
    """
    if func is None:
        return lambda f: parallel_kernel(f, fastmath=fastmath)
    return _with_cache(njit(parallel=True, fastmath=_checked(fastmath), **_COMMON)(func))


def kernels(func, *, fastmath=False):
    """The (serial, parallel) pair of cached kernels compiled from one function.

    Write the work as a loop over independent tasks with ``numba.prange``: the
    parallel kernel runs the tasks on Numba's threads, the serial one (where
    ``prange`` is ``range``) one after the other, with the same code, so both
    give the same results bit for bit. The parallel kernel is compiled from a
    copy of the function named ``<name>_parallel``: Numba's cache files are
    named after the function and its key ignores the ``parallel`` flag.
    """
    import types as pytypes

    twin = pytypes.FunctionType(func.__code__, func.__globals__, func.__name__ + "_parallel",
                                func.__defaults__, func.__closure__)
    twin.__qualname__ = func.__qualname__ + "_parallel"
    twin.__module__ = func.__module__
    twin.__doc__ = func.__doc__
    return (serial_kernel(func, fastmath=fastmath),
            parallel_kernel(twin, fastmath=fastmath))


def _checked(fastmath):
    """Only flags that keep NaN and inf semantics (results may differ in rounding)."""
    if fastmath and not set(fastmath) <= {"reassoc", "contract", "arcp", "nsz"}:
        raise ValueError(f"nbops: fast-math flags {set(fastmath)} would change NaN/inf "
                         "behaviour")
    return set(fastmath) if fastmath else False


def core(func):
    """Decorator for a scalar core: compiled inline into every caller."""
    return njit(inline="always", **_COMMON)(func)


# --- parallel launches: thread- and fork-safety --------------------------------
# A forked child of a process that already ran parallel work may be killed at
# its first parallel launch (OpenMP); several Python threads launching parallel
# regions at once abort under the workqueue layer. So: only the process that
# first launched parallel work launches it, one launch at a time, and every
# other caller takes the serial twin (same results, bit for bit).
_parallel_lock = threading.Lock()
_parallel_pid = None


def acquire_parallel(n):
    """Return True if the caller may launch a parallel kernel on ``n`` elements.

    The caller must call :func:`release_parallel` afterwards when this returned True.
    """
    global _parallel_pid
    if n < PARALLEL_THRESHOLD:
        return False
    pid = os.getpid()
    if _parallel_pid is not None and _parallel_pid != pid:
        return False
    if not _parallel_lock.acquire(blocking=False):
        return False
    _parallel_pid = pid
    return True


def release_parallel():
    _parallel_lock.release()
