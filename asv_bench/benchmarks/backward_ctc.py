"""ctc_loss forward, backward and forward plus backward: nbops beside PyTorch CPU.

``library``: ``nbops`` (``nbops.ctc_loss``, ``ctc_loss_backward`` and
``ctc_loss_with_grad``) or ``torch`` (``torch.nn.functional.ctc_loss``; the
backward alone: ``torch.autograd.grad`` over a retained graph whose forward runs
once in ``setup``; forward plus backward: both, on a fresh leaf). Target: forward
plus backward at most 0.5x PyTorch at T=200, N=64, C=32, target length 50,
float32. log_probs are a log_softmax of random logits; padded targets, full
lengths, reduction 'mean'.
"""

import numpy as np

import nbops

from ._common import F, needs_torch, torch

SIZES = [(50, 8, 16, 10), (200, 64, 32, 50)]  # (T, N, C, S)


def _arrays(size, dtype):
    n_t, n, n_c, s = size
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_t, n, n_c))
    lp = (x - np.log(np.exp(x).sum(-1, keepdims=True))).astype(dtype)
    return lp, rng.integers(1, n_c, (n, s)), (n_t,) * n, (s,) * n


class CTCLoss:
    params = (SIZES, ["float32", "float64"], ["nbops", "torch"])
    param_names = ["size", "dtype", "library"]

    def setup(self, size, dtype, library):
        lp, targets, il, tl = _arrays(size, dtype)
        if library == "torch":
            needs_torch()
            tlp, tt = torch.from_numpy(lp), torch.from_numpy(targets)
            self.forward = lambda: F.ctc_loss(tlp, tt, il, tl)
            leaf = tlp.clone().requires_grad_()
            loss = F.ctc_loss(leaf, tt, il, tl)
            self.backward = lambda: torch.autograd.grad(loss, leaf, retain_graph=True)

            def both():
                a = tlp.clone().requires_grad_()
                F.ctc_loss(a, tt, il, tl).backward()

            self.both = both
        else:
            self.forward = lambda: nbops.ctc_loss(lp, targets, il, tl)
            self.backward = lambda: nbops.ctc_loss_backward(1.0, lp, targets, il, tl)
            self.both = lambda: nbops.ctc_loss_with_grad(lp, targets, il, tl)
        self.forward()  # compile / load from the cache outside the timing
        self.backward()
        self.both()

    def time_ctc_loss(self, size, dtype, library):
        self.forward()

    def time_ctc_loss_backward(self, size, dtype, library):
        self.backward()

    def time_ctc_loss_with_grad(self, size, dtype, library):
        self.both()
