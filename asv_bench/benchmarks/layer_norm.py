"""layer_norm and rms_norm, forward and backward: nbops beside PyTorch CPU.

``library``: ``nbops`` (allocating calls) or ``torch`` (``torch.nn.functional``
on ``torch.from_numpy``; the backward alone: ``aten.native_layer_norm_backward``
for layer_norm, ``torch.autograd.grad`` over a retained graph for rms_norm,
whose forward runs once in ``setup``). Targets: at most 1.0x PyTorch at
(8192, 1024) and (65536, 128) float32, forward and backward. Normalized over
the last axis, with weight (and bias for layer_norm).
"""

import numpy as np

import nbops

from ._common import F, needs_torch, random_array, torch

SHAPES = [(64, 128), (8192, 1024), (65536, 128)]


def _arrays(shape, dtype):
    d = shape[-1]
    n = int(np.prod(shape))
    return (random_array(n, dtype, 0).reshape(shape), random_array(n, dtype, 1).reshape(shape),
            random_array(d, dtype, 2), random_array(d, dtype, 3))


class LayerNorm:
    params = (SHAPES, ["float32", "float64"], ["nbops", "torch"])
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        x, g, w, b = _arrays(shape, dtype)
        d = shape[-1]
        if library == "torch":
            needs_torch()
            tx, tg, tw, tb = map(torch.from_numpy, (x, g, w, b))
            _, tm, tr = torch.ops.aten.native_layer_norm(tx, [d], tw, tb, 1e-5)
            self.forward = lambda: F.layer_norm(tx, (d,), tw, tb)
            self.backward = lambda: torch.ops.aten.native_layer_norm_backward(
                tg, tx, [d], tm, tr, tw, tb, [True, True, True])
        else:
            _, mean, rstd = nbops.layer_norm(x, d, w, b, return_stats=True)
            self.forward = lambda: nbops.layer_norm(x, d, w, b)
            self.backward = lambda: nbops.layer_norm_backward(g, x, d, mean, rstd, w)
        self.forward()  # compile / load from the cache outside the timing
        self.backward()

    def time_layer_norm(self, shape, dtype, library):
        self.forward()

    def time_layer_norm_backward(self, shape, dtype, library):
        self.backward()


class RMSNorm:
    params = (SHAPES, ["float32", "float64"], ["nbops", "torch"])
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        x, g, w, _ = _arrays(shape, dtype)
        d = shape[-1]
        if library == "torch":
            needs_torch()
            tx, tg, tw = map(torch.from_numpy, (x, g, w))
            self.forward = lambda: F.rms_norm(tx, (d,), tw)
            ax, aw = tx.clone().requires_grad_(), tw.clone().requires_grad_()
            y = F.rms_norm(ax, (d,), aw)
            self.backward = lambda: torch.autograd.grad(y, (ax, aw), tg, retain_graph=True)
        else:
            _, rstd = nbops.rms_norm(x, d, w, return_stats=True)
            self.forward = lambda: nbops.rms_norm(x, d, w)
            self.backward = lambda: nbops.rms_norm_backward(g, x, d, rstd, w)
        self.forward()
        self.backward()

    def time_rms_norm(self, shape, dtype, library):
        self.forward()

    def time_rms_norm_backward(self, shape, dtype, library):
        self.backward()
