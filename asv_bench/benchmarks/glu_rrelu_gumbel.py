"""glu, rrelu (training) and gumbel_softmax, forward and backward: nbops beside PyTorch CPU.

``library``: ``nbops`` (allocating calls) or ``torch`` (``torch.nn.functional``
on ``torch.from_numpy``; glu also ``nbops_out`` and ``torch_out``, into
preallocated outputs; the backward alone: ``aten.glu_backward`` for glu,
``aten.rrelu_with_noise_backward`` with the noise of one forward for rrelu,
``torch.autograd.grad`` over a graph retained from one forward for
gumbel_softmax). nbops' backwards of rrelu and gumbel_softmax regenerate their
random numbers from the seed (no stored noise), so they do more work than
PyTorch's, which read what the forward stored (gumbel_softmax's also with
``y_soft=``, the forward's soft sample: no regeneration).
"""

import numpy as np

import nbops

from ._common import F, needs_torch, random_array, torch

SHAPES = [(64, 128), (8192, 1024), (65536, 128)]


def _arrays(shape, dtype, out_shape=None):
    n = int(np.prod(shape))
    gs = shape if out_shape is None else out_shape
    return (random_array(n, dtype, 0).reshape(shape),
            random_array(int(np.prod(gs)), dtype, 1).reshape(gs))


class GLU:
    """glu along the last axis, and along axis 1 of the 4-d shape (channels of an
    image batch); ``*_out`` libraries write into a preallocated output (nbops'
    ``out=``, PyTorch's ``aten.glu.out`` and ``aten.glu_backward.grad_input``)."""

    params = (SHAPES + [(64, 256, 32, 32)], ["float32", "float64"],
              ["nbops", "nbops_out", "torch", "torch_out"])
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        axis = 1 if len(shape) == 4 else -1
        out_shape = list(shape)
        out_shape[axis] //= 2
        x, g = _arrays(shape, dtype, tuple(out_shape))
        if library.startswith("torch"):
            needs_torch()
            tx, tg = torch.from_numpy(x), torch.from_numpy(g)
            if library == "torch_out":
                y, gi = torch.empty(out_shape, dtype=tx.dtype), torch.empty_like(tx)
                self.forward = lambda: torch.ops.aten.glu.out(tx, axis, out=y)
                self.backward = lambda: torch.ops.aten.glu_backward.grad_input(
                    tg, tx, axis, grad_input=gi)
            else:
                self.forward = lambda: F.glu(tx, axis)
                self.backward = lambda: torch.ops.aten.glu_backward(tg, tx, axis)
        elif library == "nbops_out":
            y, gi = np.empty(out_shape, dtype), np.empty_like(x)
            self.forward = lambda: nbops.glu(x, axis, out=y)
            self.backward = lambda: nbops.glu_backward(g, x, axis, out=gi)
        else:
            self.forward = lambda: nbops.glu(x, axis)
            self.backward = lambda: nbops.glu_backward(g, x, axis)
        self.forward()  # compile / load from the cache outside the timing
        self.backward()

    def time_glu(self, shape, dtype, library):
        self.forward()

    def time_glu_backward(self, shape, dtype, library):
        self.backward()


class RReLU:
    params = (SHAPES, ["float32", "float64"], ["nbops", "torch"])
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        x, g = _arrays(shape, dtype)
        if library == "torch":
            needs_torch()
            tx, tg = torch.from_numpy(x), torch.from_numpy(g)
            noise = torch.empty_like(tx)
            torch.ops.aten.rrelu_with_noise(tx, noise, 1 / 8, 1 / 3, True)
            self.forward = lambda: F.rrelu(tx, training=True)
            self.backward = lambda: torch.ops.aten.rrelu_with_noise_backward(
                tg, tx, noise, 1 / 8, 1 / 3, True, False)
        else:
            self.forward = lambda: nbops.rrelu(x, training=True, rng=1)
            self.backward = lambda: nbops.rrelu_backward(g, x, training=True, rng=1)
        self.forward()
        self.backward()

    def time_rrelu_training(self, shape, dtype, library):
        self.forward()

    def time_rrelu_backward_training(self, shape, dtype, library):
        self.backward()


class GumbelSoftmax:
    params = (SHAPES, ["float32", "float64"], ["nbops", "torch"])
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        x, g = _arrays(shape, dtype)
        if library == "torch":
            needs_torch()
            tx, tg = torch.from_numpy(x), torch.from_numpy(g)
            self.forward = lambda: F.gumbel_softmax(tx)
            ax = tx.clone().requires_grad_()
            y = F.gumbel_softmax(ax)
            self.backward = lambda: torch.autograd.grad(y, (ax,), tg, retain_graph=True)
            self.backward_soft = self.backward
        else:
            ys = nbops.gumbel_softmax(x, rng=1)
            self.forward = lambda: nbops.gumbel_softmax(x, rng=1)
            self.backward = lambda: nbops.gumbel_softmax_backward(g, x, rng=1)
            self.backward_soft = lambda: nbops.gumbel_softmax_backward(g, x, y_soft=ys)
        self.forward()
        self.backward()
        self.backward_soft()

    def time_gumbel_softmax(self, shape, dtype, library):
        self.forward()

    def time_gumbel_softmax_backward(self, shape, dtype, library):
        self.backward()

    def time_gumbel_softmax_backward_y_soft(self, shape, dtype, library):
        """nbops from the forward's soft sample (``y_soft=``); PyTorch as above."""
        self.backward_soft()
