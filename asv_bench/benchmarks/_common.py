"""Shared helpers: optional PyTorch baseline, input data, the performance tables'
choice of ops."""

import os

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
