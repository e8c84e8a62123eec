"""alpha_dropout, feature_alpha_dropout and dropout1d, forward and backward: nbops
(Philox4x32-10 counter-based masks) beside PyTorch CPU.

``library``:

* ``nbops``: ``nbops.<op>(x, p, True, rng=gen)`` (allocating; gen advances) and
  ``nbops.<op>_backward(g, p, True, rng=seed)`` (the mask regenerated from the seed);
* ``torch``: ``F.<op>(t, p, True)`` on ``torch.from_numpy`` (default threads) and
  ``torch.autograd.grad`` over a graph kept from one forward (the backward alone).

Shapes: 1e7 float32 elements, as ``(10_000_000,)`` for alpha_dropout,
``(64, 64, 2441)`` for feature_alpha_dropout and dropout1d (one decision per
``(n, c)`` channel), and ``(256, 64, 8, 8)`` for feature_alpha_dropout on a
small inner size.
"""

import numpy as np

import nbops

from ._common import F, built_once, needs_torch, random_array, torch

_SHAPES = {"alpha_dropout": [(10_000_000,)],
           "feature_alpha_dropout": [(64, 64, 2441), (256, 64, 8, 8)],
           "dropout1d": [(64, 64, 2441)]}
_CASES = [(name, shape) for name, shapes in _SHAPES.items() for shape in shapes]


def _array(shape, seed=0):
    return random_array(int(np.prod(shape)), "float32", seed).reshape(shape)


@built_once
class AlphaDropout:
    params = (_CASES, [0.5], ["nbops", "torch"])
    param_names = ["op_shape", "p", "library"]

    def setup(self, op_shape, p, library):
        name, shape = op_shape
        x = _array(shape)
        gen = np.random.default_rng(0)
        if library == "torch":
            needs_torch()
            t, tfn = torch.from_numpy(x), getattr(F, name)
            self.fn = lambda: tfn(t, p, True)
        else:
            fn = getattr(nbops, name)
            self.fn = lambda: fn(x, p, True, rng=gen)

    def time_forward(self, op_shape, p, library):
        self.fn()


@built_once
class AlphaDropoutBackward:
    params = (_CASES, [0.5], ["nbops", "torch"])
    param_names = ["op_shape", "p", "library"]

    def setup(self, op_shape, p, library):
        name, shape = op_shape
        g = _array(shape, 1)
        if library == "torch":
            needs_torch()
            tx = torch.from_numpy(_array(shape)).requires_grad_()
            y = getattr(F, name)(tx, p, True)
            tg = torch.from_numpy(g)
            self.fn = lambda: torch.autograd.grad(y, tx, tg, retain_graph=True)
        else:
            bw = getattr(nbops, f"{name}_backward")
            self.fn = lambda: bw(g, p, True, rng=1)
        self.fn()

    def time_backward(self, op_shape, p, library):
        self.fn()
