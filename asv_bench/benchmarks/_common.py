"""Shared helpers: optional PyTorch baseline, input data, the performance tables'
choice of ops."""

import math
import os
import timeit

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # PyTorch is an optional baseline
    torch = F = None


def needs_torch():
    if torch is None:
        raise NotImplementedError("PyTorch is not installed")  # asv: skip


def random_array(size, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(size).astype(dtype)


#: The environment variable that narrows the performance tables' classes
#: (``every_op.EveryOp``, ``every_backward.EveryBackward``) to some ops: names
#: separated by spaces or commas (``tools/perf_table.py --ops`` sets it); unset
#: or empty: every op.
PERF_OPS = "NBOPS_PERF_OPS"


#: environment variable: the dtypes of the two tables' classes, separated by
#: spaces or commas; unset or empty: float32 and float64.
PERF_DTYPES = "NBOPS_PERF_DTYPES"


def perf_dtypes():
    """The dtype names in ``$NBOPS_PERF_DTYPES`` (unset: float32 and float64)."""
    return os.environ.get(PERF_DTYPES, "").replace(",", " ").split() or ["float32", "float64"]


def perf_ops():
    """The op names in ``$NBOPS_PERF_OPS`` (an empty list: every op)."""
    return os.environ.get(PERF_OPS, "").replace(",", " ").split()


def select_cases(cases, op_of):
    """The entries of ``cases`` (label -> case) that ``$NBOPS_PERF_OPS`` names, by
    their label or by their op (``op_of(label, case)``); all of them when it is unset."""
    names = set(perf_ops())
    if not names:
        return dict(cases)
    return {label: case for label, case in cases.items()
            if label in names or op_of(label, case) in names}


#: The length of one timed sample of the performance tables' classes, seconds.
SAMPLE_SECONDS = 0.01


def calls_per_sample(fn, seconds=SAMPLE_SECONDS):
    """How many calls of ``fn`` (already compiled) last about ``seconds``: at
    least 1, from the calls made in a tenth of that time."""
    calls, start = 0, timeit.default_timer()
    while True:
        fn()
        calls += 1
        elapsed = timeit.default_timer() - start
        if elapsed >= seconds / 10:
            return max(1, math.ceil(seconds * calls / elapsed))


def built_once(cls):
    """Class decorator of an asv benchmark class whose ``setup(*params)`` sets
    ``self.fn``, the call its ``time_`` method makes: the inputs are built once
    per parameter set and timed in samples of many calls, as a user's loop runs
    the op.

    asv (asv_runner 0.3 on) runs a class's ``setup`` again before every sample
    and, where the class sets no ``number``, times a single call per sample
    (asv#966). Measured that way each figure was the median of a few single
    calls, each made just after the inputs were built anew (caches cold, the
    result in memory fresh from the allocator): not the steady state of a loop,
    and an allocating call could look up to twice as slow as the same call into
    ``out=``. The decorated ``setup`` does its work once per parameter set (asv
    calls it again before each sample: a no-op then), calls ``self.fn`` once
    (compiling it outside the timing) and sets ``number`` so that a sample lasts
    about :data:`SAMPLE_SECONDS`; asv then times each call of a sample and sums
    them. A ``setup`` that raises ``NotImplementedError`` (asv: skipped) is
    tried again next time.
    """
    setup = cls.setup

    def setup_once(self, *params):
        if getattr(self, "_built_for", None) == params:
            return
        self._built_for = self.fn = None  # the last parameter set's arrays go first
        setup(self, *params)
        self.fn()
        self.number = calls_per_sample(self.fn)
        self._built_for = params

    setup_once.__doc__ = setup.__doc__
    cls.setup = setup_once
    return cls
