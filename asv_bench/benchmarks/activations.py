"""Elementwise activations: nbops beside NumPy one-liners and PyTorch CPU.

``library``: ``nbops`` (allocating call), ``nbops_out`` (writing into a
preallocated ``out=``), ``numpy`` (the NumPy one-liner), ``torch``
(``torch.nn.functional`` on ``torch.from_numpy``, allocating).
``Copy`` is the machine's copy bandwidth in the same run, for the
memory-bound ops' bytes-per-second target.

The ops are the op table's elementwise entries (``nbops/_ops/table.py``); the
NumPy and PyTorch baselines below are per op (an op without one skips those
libraries).
"""

import numpy as np

import nbops
from nbops._ops import table

from ._common import F, built_once, needs_torch, random_array, torch

#: every elementwise op of the table
OPS = [e.name for e in table.elementwise_entries()]

NUMPY = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "softplus": lambda x: np.logaddexp(x, 0),
    "logsigmoid": lambda x: -np.logaddexp(0, -x),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "relu6": lambda x: np.clip(x, 0, 6),
    "hardtanh": lambda x: np.clip(x, -1, 1),
    "threshold": lambda x: np.where(x > 0.5, x, -2.0),
    "prelu": lambda x: np.where(x >= 0, x, 0.25 * x),
    "softshrink": lambda x: np.where(x > 0.5, x - 0.5, np.where(x < -0.5, x + 0.5, 0)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "hardswish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
    "hardsigmoid": lambda x: np.clip(x + 3, 0, 6) / 6,
    "hardshrink": lambda x: np.where(np.abs(x) > 0.5, x, 0),
    "tanhshrink": lambda x: x - np.tanh(x),
}
TORCH = {
    "relu": lambda t: F.relu(t),
    "sigmoid": lambda t: torch.sigmoid(t),
    "softplus": lambda t: F.softplus(t),
    "logsigmoid": lambda t: F.logsigmoid(t),
    "tanh": lambda t: torch.tanh(t),
    "elu": lambda t: F.elu(t),
    "leaky_relu": lambda t: F.leaky_relu(t),
    "softsign": lambda t: F.softsign(t),
    "relu6": lambda t: F.relu6(t),
    "hardtanh": lambda t: F.hardtanh(t),
    "threshold": lambda t: F.threshold(t, 0.5, -2.0),
    "prelu": lambda t: F.prelu(t, torch.tensor([0.25], dtype=t.dtype)),
    "softshrink": lambda t: F.softshrink(t),
    "silu": lambda t: F.silu(t),
    "hardswish": lambda t: F.hardswish(t),
    "gelu": lambda t: F.gelu(t),
    "mish": lambda t: F.mish(t),
    "hardsigmoid": lambda t: F.hardsigmoid(t),
    "selu": lambda t: F.selu(t),
    "celu": lambda t: F.celu(t),
    "hardshrink": lambda t: F.hardshrink(t),
    "tanhshrink": lambda t: F.tanhshrink(t),
}


def nbops_args(op, dtype):
    """The required arguments of the nbops call (the table's examples)."""
    entry = table.TABLE[op]
    return tuple(np.full(1, p.example, dtype) if p.kind == "array" else p.example
                 for p in entry.params if p.required)


@built_once
class Activation:
    params = (["relu", "sigmoid", "softplus", "logsigmoid"],
              [100, 10_000, 1_000_000, 10_000_000],
              ["float32", "float64"],
              ["nbops", "nbops_out", "numpy", "torch"])
    param_names = ["op", "size", "dtype", "library"]

    def setup(self, op, size, dtype, library):
        self.x = random_array(size, dtype)
        self.out = np.empty_like(self.x)
        baseline = {"torch": TORCH, "numpy": NUMPY}.get(library, {})
        if library in ("torch", "numpy") and op not in baseline:
            raise NotImplementedError(f"no {library} baseline for {op}")  # asv: skipped
        if library == "torch":
            needs_torch()
            self.t = torch.from_numpy(self.x)
            self.fn = lambda: TORCH[op](self.t)
        elif library == "numpy":
            self.fn = lambda: NUMPY[op](self.x)
        elif library == "nbops_out":
            nb, args = getattr(nbops, op), nbops_args(op, dtype)
            self.fn = lambda: nb(self.x, *args, out=self.out)
        else:
            nb, args = getattr(nbops, op), nbops_args(op, dtype)
            self.fn = lambda: nb(self.x, *args)

    def time_op(self, op, size, dtype, library):
        self.fn()


@built_once
class AllActivationsLarge:
    """Every activation at 1e7 float32, for the issue's 1.0x-PyTorch target."""

    params = (OPS, ["nbops", "nbops_out", "numpy", "torch"])
    param_names = ["op", "library"]

    def setup(self, op, library):
        Activation.setup(self, op, 10_000_000, "float32", library)

    def time_op(self, op, library):
        self.fn()


class Copy:
    """np.copyto of 1e7 float32: reads 40 MB and writes 40 MB."""

    def setup(self):
        self.x = random_array(10_000_000, "float32")
        self.out = np.empty_like(self.x)

    def time_copy(self):
        np.copyto(self.out, self.x)
