"""The losses' backwards beside PyTorch CPU.

``BackwardLoss``: ``nbops.<loss>_backward(1.0, input, target)`` against PyTorch's
backward alone (``backward`` of a graph built once and retained, so the forward
is excluded). ``LossWithGrad``: ``nbops.<loss>_with_grad(input, target)`` (value
and gradient from one pass) against PyTorch's forward plus backward.

The losses are the op table's pointwise losses (``nbops/_ops/table.py``) and the
hand-written ``kl_div``, ``binary_cross_entropy`` and
``binary_cross_entropy_with_logits``; reduction ``'mean'``, float32.
"""

import numpy as np

import nbops
from nbops._ops import table

from ._common import F, built_once, needs_torch, random_array, torch


def _probabilities(size, dtype, seed):
    return np.random.default_rng(seed).uniform(0.01, 0.99, size).astype(dtype)


def _log_probabilities(size, dtype, seed):
    return np.log(_probabilities(size, dtype, seed))


LOSSES = [e.name for e in table.pointwise_loss_entries()] + [
    "kl_div", "binary_cross_entropy", "binary_cross_entropy_with_logits"]

INPUTS = {"kl_div": _log_probabilities, "binary_cross_entropy": _probabilities}
TARGETS = {"kl_div": _probabilities, "binary_cross_entropy": _probabilities,
           "binary_cross_entropy_with_logits": _probabilities}


def _data(loss, size, dtype):
    return (INPUTS.get(loss, random_array)(size, dtype, seed=0),
            TARGETS.get(loss, random_array)(size, dtype, seed=1))


@built_once
class BackwardLoss:
    params = (sorted(LOSSES), [100_000, 10_000_000], ["float32"], ["nbops", "torch"])
    param_names = ["loss", "size", "dtype", "library"]

    def setup(self, loss, size, dtype, library):
        x, t = _data(loss, size, dtype)
        if library == "torch":
            needs_torch()
            tx = torch.from_numpy(x).requires_grad_()
            out = getattr(F, loss)(tx, torch.from_numpy(t))

            def run():
                tx.grad = None
                out.backward(retain_graph=True)

            self.fn = run
        else:
            fn = getattr(nbops, f"{loss}_backward")
            self.fn = lambda: fn(1.0, x, t)

    def time_backward(self, loss, size, dtype, library):
        self.fn()


@built_once
class LossWithGrad:
    params = (sorted(LOSSES), [100_000, 10_000_000], ["float32"], ["nbops", "torch"])
    param_names = ["loss", "size", "dtype", "library"]

    def setup(self, loss, size, dtype, library):
        x, t = _data(loss, size, dtype)
        if library == "torch":
            needs_torch()
            tx, tt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(t)
            fn = getattr(F, loss)

            def run():
                tx.grad = None
                fn(tx, tt).backward()

            self.fn = run
        else:
            fn = getattr(nbops, f"{loss}_with_grad")
            self.fn = lambda: fn(x, t)
        self.fn()

    def time_with_grad(self, loss, size, dtype, library):
        self.fn()
