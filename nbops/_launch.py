"""Calling a kernel pair: serial or parallel by size, without per-call type dispatch.

Numba's dispatcher types every argument on every call (a few microseconds).
``launch`` does that once per specialization ``key``: it compiles (or loads
from the disk cache) the kernel for the arguments' types, keeps the compiled
entry point, and calls it directly afterwards.

Serial or parallel: each specialization runs its ``parallel=True`` twin from
its own element count, :func:`parallel_from`, computed once from the kernel's
serial cost per element ``c`` (ns, measured, in :mod:`nbops._tuning`), the
extra time of a parallel launch ``L`` (ns, thread-pool wake-up and join) and
the parallel efficiency ``e`` on ``T`` threads. On ``n`` elements the serial
kernel takes ``n c`` and the parallel one about ``L + n c / (T e)``, so the
parallel twin runs when::

    n c (1 - 1 / (T e)) > L        and n >= _config.PARALLEL_FLOOR

or from the kernel's measured crossover where that is smaller (the tuning run
timed both twins at sizes from 2**12 to 2**20: a direct comparison, where the
rule's single ``L`` is a median over all kernels). Expensive ops (exp, log,
per-row work) switch earlier than cheap ones (relu, copies).
``NBOPS_PARALLEL_THRESHOLD`` replaces all of this with one element count for
every op (:mod:`nbops._config`).
"""

import math
import os
import sys

import numpy as np
from numba import types

from . import _config, _numba_internals, _tuning

_entry_points = {}
_signatures = {}
#: NBOPS_CHECK_LAUNCH_KEYS=1: check on every launch that the key's remembered
#: entry point was compiled for these arguments' types (tests; costs a typeof
#: per argument per call).
CHECK_KEYS = os.environ.get("NBOPS_CHECK_LAUNCH_KEYS") == "1"

#: (serial kernel, key) -> element count from which the parallel twin runs.
_parallel_from = {}

NEVER = sys.maxsize


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
    if fn is None or CHECK_KEYS:
        sig = tuple(_writable(_numba_internals.argument_type(kernel, a)) for a in args)
        if fn is not None:
            if _signatures[(kernel, key)] != sig:
                raise AssertionError(
                    f"launch key {key!r} of {kernel} was first used with argument types "
                    f"{_signatures[(kernel, key)]} and now with {sig}: the key must "
                    f"determine every argument's type")
            return fn
        kernel.compile(sig)  # compiles, or loads from the disk cache
        fn = _numba_internals.compiled_entry_point(kernel, sig)
        _entry_points[(kernel, key)] = fn
        _signatures[(kernel, key)] = sig
    return fn


def remembered_entry_point(kernel, key):
    """The entry point :func:`entry_point` remembered for ``(kernel, key)``, or None
    before its first launch (fast paths that call it directly)."""
    return _entry_points.get((kernel, key))


def cost_label(kernel, key):
    """The name of ``kernel``'s specialization ``key`` in :data:`nbops._tuning.COST_NS`
    and its dtype's name: ``("elementwise._map[sigmoid]", "float32")``.

    The label is the kernel's module and name plus the op names the key holds
    (the :class:`~nbops._ops.elementwise.Op` of the shared map kernel, the loss
    of the shared loss kernels); the dtype is the key's dtype (or dtype char).
    """
    func = kernel.py_func
    tags, dtype = [], None
    for item in key:
        name = getattr(item, "name", None)
        if isinstance(item, np.dtype):
            dtype = dtype or item.name
        elif isinstance(item, str) and len(item) == 1 and item in "efdg":
            dtype = dtype or np.dtype(item).name
        elif isinstance(item, str):
            tags.append(item)
        elif isinstance(name, str) and (hasattr(item, "core") or hasattr(item, "prep")):
            tags.append(name)  # an elementwise Op or a RowCore
    label = f"{func.__module__.rsplit('.', 1)[-1]}.{func.__qualname__}"
    if tags:
        label += "[" + ",".join(tags) + "]"
    return label, dtype or "float64"


def cost_ns(kernel, key):
    """Serial cost per element (ns) of ``kernel``'s specialization ``key``, from the
    tuning table (:data:`nbops._tuning.DEFAULT_COST_NS` where it is not listed)."""
    label, dtype = cost_label(kernel, key)
    costs = _tuning.COST_NS.get(label, {})
    return costs.get(dtype, _tuning.DEFAULT_COST_NS)


def threshold(cost, threads=None, launch_ns=None, efficiency=None):
    """The element count from which a kernel costing ``cost`` ns per element runs
    its parallel twin on ``threads`` threads (``NEVER`` on one thread).

    The smallest ``n`` with ``n cost (1 - 1 / (threads efficiency)) > launch_ns``,
    and at least :data:`nbops._config.PARALLEL_FLOOR`.
    """
    if threads is None:
        threads = _config.pool_threads()
    launch_ns = _tuning.LAUNCH_NS if launch_ns is None else launch_ns
    efficiency = _tuning.EFFICIENCY if efficiency is None else efficiency
    gain = 1.0 - 1.0 / (threads * efficiency)  # share of the serial time saved
    if threads < 2 or gain <= 0.0 or not cost > 0.0:
        return NEVER
    n = math.floor(launch_ns / (cost * gain)) + 1
    return max(n, _config.PARALLEL_FLOOR)


def measured_crossover(kernel, key):
    """The tuning run's measured crossover of ``kernel``'s specialization ``key``
    (:data:`nbops._tuning.CROSSOVER`: the smallest size where the parallel twin
    won, and kept winning), or None where it never won or was not measured."""
    label, dtype = cost_label(kernel, key)
    return _tuning.CROSSOVER.get(label, {}).get(dtype)


def parallel_from(serial, key):
    """The element count from which ``launch(serial, ..., key, n, ...)`` runs the
    parallel twin under the per-op rule, computed once per (kernel, key): the
    rule's threshold, or the measured crossover where the parallel twin was
    measured to win earlier than the rule predicts (a direct comparison)."""
    n = _parallel_from.get((serial, key))
    if n is None:
        n = threshold(cost_ns(serial, key))
        measured = measured_crossover(serial, key)
        if n != NEVER and measured is not None:
            n = max(min(n, measured), _config.PARALLEL_FLOOR)
        _parallel_from[(serial, key)] = n
    return n


def serial_below(serial, key):
    """Inputs of fewer elements surely run ``serial`` (for fast paths that call
    the serial entry point directly): the per-op threshold, or the one of
    ``NBOPS_PARALLEL_THRESHOLD``."""
    if _config.PARALLEL_THRESHOLD == _config.PER_OP_FLOOR:
        return parallel_from(serial, key)
    return _config.PARALLEL_THRESHOLD


def everywhere_parallel_from():
    """An element count from which every kernel of the tuning table (and every
    unlisted one) runs parallel, or None when nothing runs parallel (warm-up)."""
    if _config.PARALLEL_THRESHOLD != _config.PER_OP_FLOOR:
        return _config.PARALLEL_THRESHOLD
    costs = [c for by_dtype in _tuning.COST_NS.values() for c in by_dtype.values()]
    n = threshold(min(costs + [_tuning.DEFAULT_COST_NS]))
    return None if n == NEVER else n


def launch(serial, parallel, key, n, *args):
    """Run ``parallel(*args)`` or ``serial(*args)`` on ``n`` elements of work.

    The parallel twin runs from :func:`parallel_from` elements (or from
    ``NBOPS_PARALLEL_THRESHOLD``'s), when Numba has more than one thread, and
    only when it is safe (see ``_config.acquire_parallel``).
    """
    floor = _config.PARALLEL_THRESHOLD
    if n >= floor:
        if floor == _config.PER_OP_FLOOR:  # the per-op rule
            limit = _parallel_from.get((serial, key))
            if limit is None:
                limit = parallel_from(serial, key)
            wanted = n >= limit and _config.threads_now() > 1
        else:  # NBOPS_PARALLEL_THRESHOLD: one threshold for all
            wanted = True
        if wanted and _config.acquire_parallel(n):
            try:
                entry_point(parallel, key, args)(*args)
            finally:
                _config.release_parallel()
            return
    entry_point(serial, key, args)(*args)


_task_addresses = {}


def task_address(task, key, args):
    """The address of the task function ``task`` compiled (or loaded from the disk
    cache) for a kernel's arguments ``args`` and an int64 task index, found
    once per (task, key): the kernel pair's last argument, for ``call_task``
    (:func:`nbops._numba_internals.make_task_call`). ``key`` must determine
    ``args``' types, as for :func:`launch`. The caller launches the pair with
    its own ``launch`` (the name that tools/tune_threads.py replaces)."""
    address = _task_addresses.get((task, key))
    if address is None:
        sig = tuple(_writable(_numba_internals.argument_type(task, a)) for a in args)
        address = _numba_internals.task_address(task, sig + (types.int64,))
        _task_addresses[(task, key)] = address
    return address
