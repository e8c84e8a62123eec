"""Every knob of nbops in one place: jit options, size thresholds, env switches.

Environment variables
---------------------
NBOPS_DISABLE_CACHE=1
    Do not cache compiled kernels on disk (each process compiles again).
NBOPS_PARALLEL_THRESHOLD=<int>
    Element count from which the multi-threaded kernels are used
    (default below; smaller inputs run the serial twin).
"""

import os
import threading
import warnings

from numba import njit

#: Inputs with at least this many elements run the ``parallel=True`` kernels.
#: Measured on a 2-core machine: below ~1e5 elements the thread-pool wake-up
#: (microseconds idle, milliseconds when another process keeps a core busy)
#: costs more than the second core gains, even for the transcendental ops.
PARALLEL_THRESHOLD = int(os.environ.get("NBOPS_PARALLEL_THRESHOLD", 131072))

CACHE_ENABLED = os.environ.get("NBOPS_DISABLE_CACHE", "").strip().lower() not in (
    "1", "true", "yes", "on")

# error_model="numpy": float division by zero gives inf/nan, as in NumPy and PyTorch.
# No fastmath anywhere: it deletes NaN/inf handling.
_COMMON = dict(error_model="numpy", nogil=True)


def _with_cache(dispatcher):
    """Turn on the on-disk cache, or warn and go on without it."""
    if CACHE_ENABLED:
        try:
            dispatcher.enable_caching()
        except Exception as exc:  # e.g. read-only install and no user cache dir
            warnings.warn(f"nbops: kernel cache disabled ({exc})", RuntimeWarning,
                          stacklevel=3)
    return dispatcher


def serial_kernel(func):
    """Decorator for a module-level single-threaded kernel (cached on disk)."""
    return _with_cache(njit(**_COMMON)(func))


def parallel_kernel(func):
    """Decorator for a module-level ``parallel=True`` kernel (cached on disk).

    Keep it a different Python function from its serial twin: Numba's cache
    key ignores the ``parallel`` flag.
    """
    return _with_cache(njit(parallel=True, **_COMMON)(func))


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
