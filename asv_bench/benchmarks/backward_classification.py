"""cross_entropy and nll_loss gradients beside PyTorch CPU, float32, 'mean'.

``op``:

* ``cross_entropy_backward`` / ``nll_loss_backward``: the gradient of the input
  given ``grad_output`` (nbops: from the logits, softmax recomputed; torch: the
  backward alone, ``torch.autograd.grad`` of a loss computed in ``setup``, the
  forward excluded);
* ``cross_entropy_with_grad`` / ``nll_loss_with_grad``: loss and gradient
  (nbops: the fused call; torch: the forward plus ``backward()``).

Shapes: the forward's large sizes, (65536, 128) and (4096, 1000).
``library``: ``nbops`` (allocating), ``nbops_out`` (the gradient into a
preallocated ``out=``), ``torch``.
"""

import numpy as np

import nbops

from ._common import F, built_once, needs_torch, random_array, torch

OPS = ["cross_entropy_backward", "cross_entropy_with_grad", "nll_loss_backward",
       "nll_loss_with_grad"]


@built_once
class ClassificationGrad:
    params = (OPS, ["65536x128", "4096x1000"], ["nbops", "nbops_out", "torch"])
    param_names = ["op", "shape", "library"]

    def setup(self, op, shape, library):
        N, C = (int(s) for s in shape.split("x"))
        x = random_array((N, C), "float32", seed=0)
        t = np.random.default_rng(1).integers(0, C, N)
        loss = op.split("_backward")[0].split("_with_grad")[0]
        if loss == "nll_loss":
            x = nbops.log_softmax(x, axis=1)
        if library == "torch":
            needs_torch()
            fn = getattr(F, loss)
            tx, tt = torch.from_numpy(x), torch.from_numpy(t)
            if op.endswith("_backward"):
                xa = tx.detach().requires_grad_(True)
                value = fn(xa, tt)
                self.fn = lambda: torch.autograd.grad(value, xa, retain_graph=True)
            else:
                def fused():
                    xa = tx.detach().requires_grad_(True)
                    fn(xa, tt).backward()
                    return xa.grad
                self.fn = fused
        else:
            kw = {"out": np.empty_like(x)} if library == "nbops_out" else {}
            fn = getattr(nbops, op)
            if op.endswith("_backward"):
                g = np.float32(1.0)
                self.fn = lambda: fn(g, x, t, **kw)
            else:
                self.fn = lambda: fn(x, t, **kw)

    def time_grad(self, op, shape, library):
        self.fn()
