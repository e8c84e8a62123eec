"""Calling a kernel pair: serial or parallel by size, without per-call type dispatch.

Numba's dispatcher types every argument on every call (a few microseconds).
``launch`` does that once per specialization ``key``: it compiles (or loads
from the disk cache) the kernel for the arguments' types, keeps the compiled
entry point, and calls it directly afterwards.
"""

from numba import types

from . import _config, _numba_internals

_entry_points = {}


def _writable(ty):
    # A read-only input array is passed to the code compiled for a writable one
    # (the kernels never write their inputs): one specialization, not two.
    if isinstance(ty, types.Array) and not ty.mutable:
        return ty.copy(readonly=False)
    return ty


def entry_point(kernel, key, args):
    """The compiled ``kernel`` for ``args``' types, remembered under ``(kernel, key)``.

    ``key`` must determine the Numba type of every argument (dtypes, ndim, layout).
    """
    fn = _entry_points.get((kernel, key))
    if fn is None:
        sig = tuple(_writable(_numba_internals.argument_type(kernel, a)) for a in args)
        kernel.compile(sig)  # compiles, or loads from the disk cache
        fn = _numba_internals.compiled_entry_point(kernel, sig)
        _entry_points[(kernel, key)] = fn
    return fn


def launch(serial, parallel, key, n, *args):
    """Run ``parallel(*args)`` or ``serial(*args)`` on ``n`` elements of work.

    The parallel twin runs from ``_config.PARALLEL_THRESHOLD`` elements, and
    only when it is safe (see ``_config.acquire_parallel``).
    """
    if _config.acquire_parallel(n):
        try:
            entry_point(parallel, key, args)(*args)
        finally:
            _config.release_parallel()
    else:
        entry_point(serial, key, args)(*args)
