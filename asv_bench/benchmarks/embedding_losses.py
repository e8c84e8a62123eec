"""The embedding losses of issue 17 beside PyTorch CPU at (65536, 128), float32,
reduction 'mean': cosine_embedding_loss, triplet_margin_loss (p = 2, with and
without the swap) and triplet_margin_with_distance_loss (its default distance);
the value (``mode='value'``) and the value with every input's gradient
(``mode='with_grad'``: ``nbops.<loss>_with_grad``, one call, against PyTorch's
forward plus backward)."""

import numpy as np

import nbops

from ._common import F, built_once, needs_torch, random_array, torch

SHAPE = (65536, 128)

#: case -> (function name, options)
CASES = {"cosine_embedding_loss": ("cosine_embedding_loss", {"margin": 0.1}),
         "triplet_margin_loss": ("triplet_margin_loss", {}),
         "triplet_margin_loss-swap": ("triplet_margin_loss", {"swap": True}),
         "triplet_margin_with_distance_loss": ("triplet_margin_with_distance_loss", {})}


def _args(name, dtype="float32"):
    """The host arrays of one case and how many of them are differentiated."""
    x1 = random_array(SHAPE, dtype, seed=0)
    x2 = random_array(SHAPE, dtype, seed=1)
    if name == "cosine_embedding_loss":
        target = np.where(np.random.default_rng(2).uniform(size=SHAPE[0]) < 0.5, -1,
                          1).astype(dtype)
        return (x1, x2, target), 2
    return (x1, x1 + 0.5 * x2, random_array(SHAPE, dtype, seed=2)), 3


@built_once
class EmbeddingLoss:
    params = (sorted(CASES), ["value", "with_grad"], ["nbops", "torch"])
    param_names = ["loss", "mode", "library"]

    def setup(self, case, mode, library):
        name, options = CASES[case]
        args, n_diff = _args(name)
        if library == "torch":
            needs_torch()
            fn = getattr(F, name)
            targs = tuple(torch.from_numpy(a) for a in args)
            if mode == "value":
                self.fn = lambda: fn(*targs, **options)
            else:
                for a in targs[:n_diff]:
                    a.requires_grad_()

                def run():
                    for a in targs[:n_diff]:
                        a.grad = None
                    fn(*targs, **options).backward()

                self.fn = run
        else:
            fn = getattr(nbops, name if mode == "value" else f"{name}_with_grad")
            self.fn = lambda: fn(*args, **options)

    def time_loss(self, case, mode, library):
        self.fn()
