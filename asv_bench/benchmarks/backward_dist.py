"""cosine_similarity, normalize, pdist and cdist (issue 16), forward and backward:
nbops beside PyTorch CPU.

``library``: ``nbops`` (allocating) or ``torch`` (``F.cosine_similarity``,
``F.normalize``, ``F.pdist``, ``torch.cdist``; the backwards as
``torch.autograd.grad`` of the op, its forward included, the forward alone
being the forward benchmark). Targets: cosine_similarity at (65536, 128) and
cdist at (4096, 128) x (4096, 128) float32 at most 1.0x PyTorch.
"""

import numpy as np

import nbops

from ._common import F, built_once, needs_torch, random_array, torch


def _array(shape, dtype, seed=0):
    return random_array(int(np.prod(shape)), dtype, seed).reshape(shape)


@built_once
class SimilarityForward:
    params = (["cosine_similarity", "normalize", "cdist", "pdist"], ["nbops", "torch"])
    param_names = ["op", "library"]

    def setup(self, op, library):
        if op in ("cosine_similarity", "normalize"):
            x, y = _array((65536, 128), "float32"), _array((65536, 128), "float32", 1)
        elif op == "cdist":
            x, y = _array((4096, 128), "float32"), _array((4096, 128), "float32", 1)
        else:
            x, y = _array((2048, 64), "float32"), None
        if library == "torch":
            needs_torch()
            tx = torch.from_numpy(x)
            ty = None if y is None else torch.from_numpy(y)
            self.fn = {"cosine_similarity": lambda: F.cosine_similarity(tx, ty),
                       "normalize": lambda: F.normalize(tx),
                       "cdist": lambda: torch.cdist(tx, ty),
                       "pdist": lambda: F.pdist(tx)}[op]
        else:
            self.fn = {"cosine_similarity": lambda: nbops.cosine_similarity(x, y),
                       "normalize": lambda: nbops.normalize(x),
                       "cdist": lambda: nbops.cdist(x, y),
                       "pdist": lambda: nbops.pdist(x)}[op]

    def time_forward(self, op, library):
        self.fn()


@built_once
class SimilarityBackward:
    params = (["cosine_similarity", "normalize", "cdist", "pdist"], ["nbops", "torch"])
    param_names = ["op", "library"]

    def setup(self, op, library):
        if op in ("cosine_similarity", "normalize"):
            x, y = _array((65536, 128), "float32"), _array((65536, 128), "float32", 1)
            g = _array((65536,) if op == "cosine_similarity" else (65536, 128), "float32", 2)
        elif op == "cdist":
            x, y = _array((4096, 128), "float32"), _array((4096, 128), "float32", 1)
            g = _array((4096, 4096), "float32", 2)
        else:
            x, y = _array((2048, 64), "float32"), None
            g = _array((2048 * 2047 // 2,), "float32", 2)
        if library == "torch":
            needs_torch()
            inputs = [torch.from_numpy(v).requires_grad_() for v in (x, y) if v is not None]
            fwd = {"cosine_similarity": F.cosine_similarity, "normalize": F.normalize,
                   "cdist": torch.cdist, "pdist": F.pdist}[op]
            tg = torch.from_numpy(g)
            self.fn = lambda: torch.autograd.grad(fwd(*inputs), inputs, tg)
        else:
            self.fn = {"cosine_similarity": lambda: nbops.cosine_similarity_backward(g, x, y),
                       "normalize": lambda: nbops.normalize_backward(g, x),
                       "cdist": lambda: nbops.cdist_backward(g, x, y),
                       "pdist": lambda: nbops.pdist_backward(g, x)}[op]
        self.fn()

    def time_backward(self, op, library):
        self.fn()
