"""Elementwise losses: nbops beside NumPy one-liners and PyTorch CPU.

``library``: ``nbops`` (the fused kernel, reduction as given), ``numpy`` (the
NumPy formula, float64 accumulation where NumPy picks it), ``torch``
(``torch.nn.functional`` on ``torch.from_numpy``).

The losses are the op table's pointwise losses (``nbops/_ops/table.py``) and
the hand-written ``kl_div`` and ``binary_cross_entropy_with_logits``; a loss
without a NumPy baseline below skips that library.
"""

import numpy as np

import nbops
from nbops._ops import table

from ._common import F, built_once, needs_torch, random_array, torch


def _probabilities(size, dtype, seed):
    return np.random.default_rng(seed).uniform(0, 1, size).astype(dtype)


def _log_sigmoid(x):
    return np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))


NUMPY = {
    "mse_loss": lambda x, t: np.mean((x - t) ** 2),
    "l1_loss": lambda x, t: np.mean(np.abs(x - t)),
    "smooth_l1_loss": lambda x, t: np.mean(
        np.where(np.abs(x - t) < 1, 0.5 * (x - t) ** 2, np.abs(x - t) - 0.5)),
    "kl_div": lambda x, t: np.mean(np.where(t == 0, 0, t * np.log(np.where(t == 0, 1, t)))
                                   - t * x),
    "binary_cross_entropy_with_logits": lambda x, t: np.mean((1 - t) * x - _log_sigmoid(x)),
}

#: every pointwise loss of the table, then the hand-written ones
LOSSES = [e.name for e in table.pointwise_loss_entries()] + [
    "kl_div", "binary_cross_entropy_with_logits"]

TARGETS = {  # kl_div and BCE take probabilities as targets (the others: random_array)
    "kl_div": _probabilities,
    "binary_cross_entropy_with_logits": _probabilities,
}


@built_once
class Loss:
    params = (sorted(LOSSES), [100, 100_000, 10_000_000], ["float32"], ["mean", "none"],
              ["nbops", "numpy", "torch"])
    param_names = ["loss", "size", "dtype", "reduction", "library"]

    def setup(self, loss, size, dtype, reduction, library):
        self.x = random_array(size, dtype, seed=0)
        self.t = TARGETS.get(loss, random_array)(size, dtype, seed=1)
        if library == "torch":
            needs_torch()
            fn = getattr(F, loss)
            tx, tt = torch.from_numpy(self.x), torch.from_numpy(self.t)
            self.fn = lambda: fn(tx, tt, reduction=reduction)
        elif library == "numpy":
            if reduction != "mean":
                raise NotImplementedError("the NumPy baseline is the mean only")  # asv: skip
            if loss not in NUMPY:
                raise NotImplementedError(f"no NumPy baseline for {loss}")  # asv: skip
            fn = NUMPY[loss]
            self.fn = lambda: fn(self.x, self.t)
        else:
            fn = getattr(nbops, loss)
            self.fn = lambda: fn(self.x, self.t, reduction=reduction)
        with np.errstate(all="ignore"):
            self.fn()  # compile / load from the cache outside the timing

    def time_loss(self, loss, size, dtype, reduction, library):
        with np.errstate(all="ignore"):
            self.fn()


@built_once
class BCEWithLogitsPosWeight:
    """(65536, 128) float32 logits with a per-class pos_weight (the weighted kernel)."""

    params = (["nbops", "torch"],)
    param_names = ["library"]

    def setup(self, library):
        self.x = random_array((65536, 128), "float32", seed=0)
        self.t = _probabilities((65536, 128), "float32", seed=1)
        self.pw = _probabilities(128, "float32", seed=2) + 0.5
        if library == "torch":
            needs_torch()
            tx, tt, tpw = (torch.from_numpy(a) for a in (self.x, self.t, self.pw))
            self.fn = lambda: F.binary_cross_entropy_with_logits(tx, tt, pos_weight=tpw)
        else:
            self.fn = lambda: nbops.binary_cross_entropy_with_logits(self.x, self.t,
                                                                     pos_weight=self.pw)
        self.fn()

    def time_loss(self, library):
        self.fn()
