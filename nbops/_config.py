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
    One element count from which every op runs its multi-threaded kernel
    (smaller inputs run the serial twin), on any number of threads. Unset (the
    default), each op has its own threshold, from its measured cost per element
    and the measured cost of a parallel launch (:mod:`nbops._launch`, the
    figures in :mod:`nbops._tuning`, redone by ``python tools/tune_threads.py``),
    never below :data:`PARALLEL_FLOOR` elements, and nothing runs in parallel
    when Numba has one thread (``NUMBA_NUM_THREADS=1`` or
    ``numba.set_num_threads(1)``).
NBOPS_OUTPUT_CACHE_MB=<int>
    At most this many MiB of freed large results (4 MiB and up) are kept for
    reuse by later results of the same size (:mod:`nbops._memory`; 256 by
    default, 0 turns the cache off). :func:`nbops.empty_cache` drops them.
"""

import os
import threading
import warnings

from numba import njit

from . import _numba_internals

#: No op runs its ``parallel=True`` kernel below this many elements: the
#: smallest size ``tools/tune_threads.py`` measures. Each op's own threshold
#: (:func:`nbops._launch.parallel_from`) lies at or above it.
PARALLEL_FLOOR = 4096

_THRESHOLD_ENV = os.environ.get("NBOPS_PARALLEL_THRESHOLD", "").strip()

#: Inputs below this many elements always run the serial kernels. By default it
#: is :data:`PARALLEL_FLOOR` and each op's own threshold decides above it
#: (:func:`nbops._launch.parallel_from`); set from ``NBOPS_PARALLEL_THRESHOLD``
#: (or assigned any other value, as tests do), it is the one threshold of every
#: op: inputs of at least this many elements run the parallel kernels.
PARALLEL_THRESHOLD = int(_THRESHOLD_ENV) if _THRESHOLD_ENV else PARALLEL_FLOOR

#: While :data:`PARALLEL_THRESHOLD` equals this, the per-op thresholds apply;
#: None when ``NBOPS_PARALLEL_THRESHOLD`` is set.
PER_OP_FLOOR = None if _THRESHOLD_ENV else PARALLEL_FLOOR

_OUTPUT_CACHE_ENV = os.environ.get("NBOPS_OUTPUT_CACHE_MB", "").strip()

#: At most this many bytes of idle output blocks are kept for reuse
#: (:mod:`nbops._memory`); 0 turns the cache of blocks off.
OUTPUT_CACHE_BYTES = (int(_OUTPUT_CACHE_ENV) if _OUTPUT_CACHE_ENV else 256) << 20

CACHE_ENABLED = os.environ.get("NBOPS_DISABLE_CACHE", "").strip().lower() not in (
    "1", "true", "yes", "on")

# error_model="numpy": float division by zero gives inf/nan, as in NumPy and PyTorch.
# No fastmath anywhere: it deletes NaN/inf handling.
_COMMON = dict(error_model="numpy", nogil=True)


_cache_warned = False
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


def _cached_njit(func, **options):
    """``njit(**options)(func)`` with a disk cache: nbops' (stamped with a hash of
    all of nbops' sources, see :mod:`nbops._numba_internals`), else Numba's own,
    else none (a warning, once)."""
    global _cache_warned
    dispatcher = njit(**options)(func)
    if not CACHE_ENABLED:
        return dispatcher
    try:
        if _numba_internals.enable_disk_cache(dispatcher, _package_stamp):
            return dispatcher
    except RuntimeError:
        pass  # no location of nbops' is writable: Numba's own may be (a zip import)
    try:
        return njit(cache=True, **options)(func)
    except RuntimeError as exc:  # no writable location at all
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
    return _cached_njit(func, fastmath=_checked(fastmath), **_COMMON)


def parallel_kernel(func=None, *, fastmath=False):
    """Decorator for a module-level ``parallel=True`` kernel (cached on disk).

    For a serial/parallel pair use :func:`kernels` (one function, two kernels
    with distinct cache files: Numba's cache key ignores the ``parallel`` flag).
    """
    if func is None:
        return lambda f: parallel_kernel(f, fastmath=fastmath)
    return _cached_njit(func, parallel=True, fastmath=_checked(fastmath), **_COMMON)


def _copy(func, calls=(), fastmath=False, suffix=""):
    """A copy of ``func`` named ``<name><suffix>`` whose globals have the cores
    named in ``calls`` as :func:`called_core` functions (``func`` itself where
    there is nothing to change)."""
    if not calls and not suffix:
        return func
    import types as pytypes

    scope = func.__globals__
    if calls:
        scope = dict(scope)
        for name in calls:
            scope[name] = called_core(scope[name], fastmath=fastmath)
    copy = pytypes.FunctionType(func.__code__, scope, func.__name__ + suffix,
                                func.__defaults__, func.__closure__)
    copy.__qualname__ = func.__qualname__ + suffix
    copy.__module__ = func.__module__
    copy.__doc__ = func.__doc__
    return copy


def kernels(func, *, fastmath=False, parallel_calls=()):
    """The (serial, parallel) pair of cached kernels compiled from one function.

    Write the work as a loop over independent tasks with ``numba.prange``: the
    parallel kernel runs the tasks on Numba's threads, the serial one (where
    ``prange`` is ``range``) one after the other, with the same code, so both
    give the same results bit for bit. The parallel kernel is compiled from a
    copy of the function named ``<name>_parallel``: Numba's cache files are
    named after the function and its key ignores the ``parallel`` flag.

    ``parallel_calls``: names of :func:`core` functions that the parallel
    kernel calls as compiled functions of their own (:func:`called_core`)
    where the serial one inlines them into its Numba IR. Numba's parfor passes
    copy, type and lower the IR of a prange body more than once, so a large
    inlined core costs the parallel kernel's first compile much more than the
    serial one's; called, it is typed and compiled once, and LLVM may still
    inline it. The parallel kernel then sees the module's globals as they are
    when ``kernels`` is called (everything it uses must be defined before).
    (A large task is better a :func:`task_function` called by address.)
    """
    twin = _copy(func, parallel_calls, fastmath, "_parallel")
    return (serial_kernel(func, fastmath=fastmath),
            parallel_kernel(twin, fastmath=fastmath))


def task_function(func=None, *, fastmath=False, calls=()):
    """Decorator for the task function of a kernel pair (cached on disk): the
    kernels call it by its address (``call_task``, :func:`nbops._launch.task_address`),
    so that it is compiled once, not again inside each kernel (see
    :func:`nbops._numba_internals.make_task_call`). Give it the kernels'
    fast-math flags. Its cores are IR-inlined into it, except those named in
    ``calls``: called as compiled functions of their own (:func:`called_core`,
    as ``parallel_calls`` of :func:`kernels`; defined before the task)."""
    if func is None:
        return lambda f: task_function(f, fastmath=fastmath, calls=calls)
    return _cached_njit(_copy(func, calls, fastmath), fastmath=_checked(fastmath), **_COMMON)


def _checked(fastmath):
    """Only flags that keep NaN and inf semantics (results may differ in rounding)."""
    if fastmath and not set(fastmath) <= {"reassoc", "contract", "arcp", "nsz"}:
        raise ValueError(f"nbops: fast-math flags {set(fastmath)} would change NaN/inf "
                         "behaviour")
    return set(fastmath) if fastmath else False


def core(func):
    """Decorator for a scalar core: compiled inline into every caller."""
    return njit(inline="always", **_COMMON)(func)


_called_cores = {}


def called_core(core_function, *, fastmath=False):
    """The :func:`core` ``core_function`` as a function its callers call rather than
    inline into their Numba IR (one dispatcher per core and fast-math flags;
    compiled with those flags: see :func:`kernels`' ``parallel_calls``)."""
    key = (core_function, frozenset(fastmath) if fastmath else None)
    called = _called_cores.get(key)
    if called is None:
        called = njit(fastmath=_checked(fastmath), **_COMMON)(core_function.py_func)
        _called_cores[key] = called
    return called


# --- parallel launches: thread- and fork-safety --------------------------------
# A forked child of a process that already ran parallel work may be killed at
# its first parallel launch (OpenMP); several Python threads launching parallel
# regions at once abort under the workqueue layer. So: only the process that
# first launched parallel work launches it, one launch at a time, and every
# other caller takes the serial twin (same results, bit for bit).
# (Which process that is, is decided at fork time, not by an ``os.getpid()`` per
# launch: that system call cost about 0.2 us of every parallel call's 6 to 8 us
# at 1e5 elements.)
_parallel_lock = threading.Lock()
_parallel_pid = None  # the process that launched parallel work, once one has
_parallel_refused = False  # True in a forked child of that process


def _parallel_after_fork_in_child():
    global _parallel_refused
    _parallel_refused = _parallel_pid is not None  # (set in the parent: it launched)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_parallel_after_fork_in_child)


def acquire_parallel(n):
    """Return True if the caller may launch a parallel kernel on ``n`` elements.

    The caller must call :func:`release_parallel` afterwards when this returned True.
    """
    global _parallel_pid
    if n < PARALLEL_THRESHOLD or _parallel_refused:
        return False
    if not _parallel_lock.acquire(blocking=False):
        return False
    if _parallel_pid is None:
        _parallel_pid = os.getpid()
    return True


def release_parallel():
    _parallel_lock.release()


def pool_threads():
    """Threads of Numba's pool (``NUMBA_NUM_THREADS``, else the CPU count): the
    thread count the per-op thresholds are computed for."""
    from numba import config

    return config.NUMBA_NUM_THREADS


_thread_count = None


def threads_now():
    """``numba.get_num_threads()`` (this thread's setting), read cheaply.

    Numba's public function also starts the thread pool and checks its result
    on every call; after one such call, its C getter alone is read.
    """
    global _thread_count
    if _thread_count is None:
        import numba

        numba.get_num_threads()  # starts the pool; raises if Numba's state is broken
        try:
            from numba.np.ufunc import parallel

            getter = parallel._get_num_threads
            getter()
            _thread_count = getter
        except Exception:  # a Numba without that private getter: the public one
            _thread_count = numba.get_num_threads
    return _thread_count()
