"""Large outputs from reused memory: a small cache of freed output blocks.

A call that allocates a large result (``nbops.relu(x)`` on 1e7 elements) spends
most of its time on the first writes to fresh memory, not on the op: the
operating system maps and zeroes every page of a new block (and on some virtual
machines fetches it from the host again), so the allocating call can take 3 to
20 times as long as the same call into ``out=``. Results of at least
:data:`MIN_BYTES` therefore come from blocks nbops keeps: when the last array
that views a block is freed, the block goes back to a cache of idle blocks (at
most :data:`nbops._config.OUTPUT_CACHE_BYTES` in all, the oldest dropped first),
and the next result of the same byte size reuses it, pages already mapped. This
is what PyTorch's CUDA allocator does for device memory.

What a caller sees: the result is an ordinary writable NumPy array, C- or
F-ordered as NumPy's would be, that does not own its memory
(``flags.owndata`` is False: its ``base`` holds the block). A block is reused
only once no array views it any more, so results never share memory with
anything alive. :func:`nbops.empty_cache` drops the idle blocks;
``NBOPS_OUTPUT_CACHE_MB=0`` turns the cache off.

Small results (below :data:`MIN_BYTES`) come from ``np.empty``: their pages are
reused by the C allocator already.
"""

import math
import os
import threading
import weakref

import numpy as np

from . import _config

#: Results from this many bytes on come from the cache of blocks (NumPy asks
#: for transparent huge pages from 4 MiB on: the sizes where fresh pages cost).
MIN_BYTES = 4 << 20

_lock = threading.Lock()


def _after_fork_in_child():
    # a lock another thread held at the fork would stay held in the child
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_idle = []  # idle blocks (uint8 arrays), oldest first; a few dozen at most


def _block_freed(block):
    """Finalizer of a block's last view: keep the block for reuse (bounded)."""
    limit = _config.OUTPUT_CACHE_BYTES
    with _lock:
        if block.nbytes > limit:
            return
        _idle.append(block)
        held = sum(b.nbytes for b in _idle)
        while held > limit:
            held -= _idle.pop(0).nbytes


def _take(nbytes):
    """An idle block of exactly ``nbytes`` bytes (the newest), or a new one."""
    with _lock:
        for i in range(len(_idle) - 1, -1, -1):
            if _idle[i].nbytes == nbytes:
                return _idle.pop(i)
    return np.empty(nbytes, np.uint8)


def empty(shape, dtype=float, order="C"):
    """``np.empty(shape, dtype, order)``, from a reused block when it is large.

    ``order`` is ``"C"`` or ``"F"``.
    """
    size = shape if isinstance(shape, int) else math.prod(shape)
    if size < MIN_BYTES // 8:  # small in any dtype: the common case, kept cheap
        return np.empty(shape, dtype, order)
    dtype = np.dtype(dtype)
    nbytes = size * dtype.itemsize
    if nbytes < MIN_BYTES or nbytes > _config.OUTPUT_CACHE_BYTES:
        return np.empty(shape, dtype, order)
    return _from_block((shape,) if isinstance(shape, int) else shape, dtype, order, nbytes)


def empty_like(a, dtype=None):
    """``np.empty_like(a, dtype)``, from a reused block when it is large."""
    nbytes = a.nbytes if dtype is None else a.size * np.dtype(dtype).itemsize
    if nbytes < MIN_BYTES or nbytes > _config.OUTPUT_CACHE_BYTES:
        return np.empty_like(a, dtype)
    if a.flags.c_contiguous:
        order = "C"
    elif a.flags.f_contiguous:
        order = "F"
    else:
        return np.empty_like(a, dtype)  # (NumPy's layout of a non-contiguous ``a``)
    return _from_block(a.shape, a.dtype if dtype is None else np.dtype(dtype), order, nbytes)


def _from_block(shape, dtype, order, nbytes):
    block = _take(nbytes)
    result = np.frombuffer(memoryview(block), dtype).reshape(shape, order=order)
    # NumPy keeps the block through a memoryview of its own, at the end of the
    # result's chain of bases: every later view of the result keeps it alive,
    # so the block is free again when that memoryview is.
    owner = result.base
    while isinstance(owner, np.ndarray):
        owner = owner.base
    weakref.finalize(owner, _block_freed, block).atexit = False
    return result


def empty_cache():
    """Drop the idle output blocks that nbops keeps for reuse.

    Large results (4 MiB and up) come from a cache of blocks freed by earlier
    results, which saves the first-touch cost of fresh memory (the cache is at
    most ``NBOPS_OUTPUT_CACHE_MB`` MiB, 256 by default; 0 turns it off). Call
    this to hand the idle blocks back to the operating system; arrays still in
    use are not affected.

    Returns
    -------
    int
        The number of bytes released.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> y = nbops.relu(np.ones(2_000_000))  # 16 MB: from the cache of blocks
    >>> del y                               # its block becomes idle
    >>> nbops.empty_cache() >= 16_000_000
    True
    """
    with _lock:
        released = sum(b.nbytes for b in _idle)
        _idle.clear()
    return released


def idle_bytes():
    """The bytes of idle blocks held for reuse now."""
    with _lock:
        return sum(b.nbytes for b in _idle)
