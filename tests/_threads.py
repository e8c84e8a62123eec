"""Shared check: the serial kernels and the parallel ones on 1 and on all threads
give the same bits."""

import numba
import numpy as np

from nbops import _config


def assert_same_bits_on_any_thread_count(monkeypatch, run):
    """``run()`` (a list of arrays) with every kernel serial, then with every kernel
    parallel on 1 thread and on Numba's thread count: all bit-identical."""
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1 << 62)  # the serial kernels
    serial = run()
    monkeypatch.setattr(_config, "PARALLEL_THRESHOLD", 1)  # the parallel kernels
    threads = numba.get_num_threads()
    try:
        for n in sorted({1, threads}):
            numba.set_num_threads(n)
            for got, want in zip(run(), serial, strict=True):
                np.testing.assert_array_equal(got, want)
    finally:
        numba.set_num_threads(threads)
