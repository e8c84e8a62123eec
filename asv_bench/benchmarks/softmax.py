"""Ops along an axis and the classification losses: nbops beside NumPy and PyTorch CPU.

``library``: ``nbops`` (allocating call; for the losses the fused kernel),
``nbops_out`` (softmax family writing into a preallocated ``out=``),
``numpy`` (the best plain-NumPy formulation: max-subtracted, in-place
``exp``), ``torch`` (``torch.nn.functional`` on ``torch.from_numpy``).
Shapes: a small batch (64, 10), many short rows (65536, 128), the issue's
(4096, 1000), few long rows (64, 100000). Losses use int64 targets.
"""

import numpy as np

import nbops
from nbops._ops import table

from ._common import F, built_once, needs_torch, random_array, torch

SHAPES = [(64, 10), (65536, 128), (4096, 1000), (64, 100_000)]
SHAPE_IDS = {str(s): s for s in SHAPES}


def _np_softmax(x):
    e = x - x.max(axis=-1, keepdims=True)
    np.exp(e, out=e)
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _np_log_softmax(x):
    z = x - x.max(axis=-1, keepdims=True)
    e = np.exp(z)
    z -= np.log(e.sum(axis=-1, keepdims=True))
    return z


def _np_cross_entropy(x, t):
    z = x - x.max(axis=1, keepdims=True)
    lse = np.log(np.exp(z).sum(axis=1))
    return np.mean(lse - z[np.arange(x.shape[0]), t])


def _np_nll_loss(x, t):
    return -np.mean(x[np.arange(x.shape[0]), t])


NUMPY = {"softmax": _np_softmax, "log_softmax": _np_log_softmax,
         "softmin": lambda x: _np_softmax(-x),
         "cross_entropy": _np_cross_entropy, "nll_loss": _np_nll_loss}
LOSSES = ("cross_entropy", "nll_loss")
#: the op table's row ops (softmax, log_softmax, softmin)
ROW_OPS = [e.name for e in table.row_op_entries()]


@built_once
class AlongAxis:
    """The row ops (softmax family) over the last axis, and the fused losses ('mean')."""

    params = ([*ROW_OPS, *LOSSES], list(SHAPE_IDS),
              ["float32"], ["nbops", "nbops_out", "numpy", "torch"])
    param_names = ["op", "shape", "dtype", "library"]

    def setup(self, op, shape, dtype, library):
        n, c = SHAPE_IDS[shape]
        self.x = random_array(n * c, dtype).reshape(n, c)
        self.t = np.random.default_rng(1).integers(0, c, n)
        if library == "torch":
            needs_torch()
            fn = getattr(F, op)
            tx, tt = torch.from_numpy(self.x), torch.from_numpy(self.t)
            self.fn = (lambda: fn(tx, tt)) if op in LOSSES else (lambda: fn(tx, -1))
        elif library == "numpy":
            fn = NUMPY[op]
            self.fn = (lambda: fn(self.x, self.t)) if op in LOSSES else (lambda: fn(self.x))
        elif library == "nbops_out":
            if op in LOSSES:
                raise NotImplementedError("losses take no out=")  # asv: skip
            fn = getattr(nbops, op)
            self.out = np.empty_like(self.x)
            self.fn = lambda: fn(self.x, out=self.out)
        else:
            fn = getattr(nbops, op)
            self.fn = (lambda: fn(self.x, self.t)) if op in LOSSES else (lambda: fn(self.x))

    def time_op(self, op, shape, dtype, library):
        self.fn()


@built_once
class SpatialCrossEntropy:
    """cross_entropy on (N, C, H, W) logits (the class axis is not the last one)."""

    params = (["nbops", "torch"], [0.0, 0.1])
    param_names = ["library", "label_smoothing"]

    def setup(self, library, label_smoothing):
        self.x = random_array(8 * 21 * 128 * 128, "float32").reshape(8, 21, 128, 128)
        self.t = np.random.default_rng(1).integers(0, 21, (8, 128, 128))
        if library == "torch":
            needs_torch()
            tx, tt = torch.from_numpy(self.x), torch.from_numpy(self.t)
            self.fn = lambda: F.cross_entropy(tx, tt, label_smoothing=label_smoothing)
        else:
            self.fn = lambda: nbops.cross_entropy(self.x, self.t,
                                                  label_smoothing=label_smoothing)
        self.fn()

    def time_cross_entropy(self, library, label_smoothing):
        self.fn()
