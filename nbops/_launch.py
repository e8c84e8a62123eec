"""Calling a kernel pair: serial or parallel by size, without per-call type dispatch."""

from . import _config

_entry_points = {}


def _entry_point(kernel, args):
    """The compiled function behind ``kernel(*args)``, callable without type dispatch."""
    try:
        sig = tuple(kernel.typeof_pyval(a) for a in args)
        return kernel.overloads[sig].entry_point
    except Exception:  # pragma: no cover - numba internals moved: use the dispatcher
        return kernel


def launch(serial, parallel, key, n, *args):
    """Run ``parallel(*args)`` or ``serial(*args)`` (by size and thread safety).

    ``key`` identifies the specialization (op, dtypes, ...): the compiled entry
    point is remembered under it, which skips Numba's per-call type dispatch
    (microseconds that matter for small arrays).
    """
    use_parallel = _config.acquire_parallel(n)
    try:
        kernel = parallel if use_parallel else serial
        fn = _entry_points.get((kernel, key))
        if fn is None:
            kernel(*args)  # compiles, or loads from the disk cache
            _entry_points[(kernel, key)] = _entry_point(kernel, args)
        else:
            fn(*args)
    finally:
        if use_parallel:
            _config.release_parallel()
