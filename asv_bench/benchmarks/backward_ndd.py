"""Backwards of batch_norm, dropout / dropout2d and pairwise_distance: nbops beside
PyTorch CPU's backward alone (the forward is run once in ``setup``).

``library``: ``nbops`` (``nbops.<op>_backward``, allocating) or ``torch``
(``torch.ops.aten.native_batch_norm_backward``, ``native_dropout_backward`` with
the stored mask, ``torch.autograd.grad`` of the composite ops with the graph
retained). Targets: at most 1.0x PyTorch at the forward's large sizes.
"""

import numpy as np

import nbops

from ._common import F, built_once, needs_torch, random_array, torch


def _array(shape, dtype, seed=0):
    return random_array(int(np.prod(shape)), dtype, seed).reshape(shape)


@built_once
class BatchNormBackward:
    params = ([(64, 32), (32, 64, 256), (256, 64, 32, 32)],
              ["float32", "float64"],
              [True, False],
              ["nbops", "torch"])
    param_names = ["shape", "dtype", "training", "library"]

    def setup(self, shape, dtype, training, library):
        x, g = _array(shape, dtype), _array(shape, dtype, 1)
        c = shape[1]
        w = np.ones(c, dtype)
        rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
        _, mean, invstd = nbops.batch_norm(x, rm, rv, w, None, training=training,
                                           return_stats=True)
        if library == "torch":
            needs_torch()
            tx, tg, tw, tm, ti, trm, trv = map(torch.from_numpy, (x, g, w, mean, invstd, rm, rv))
            if training:
                self.fn = lambda: torch.ops.aten.native_batch_norm_backward(
                    tg, tx, tw, None, None, tm, ti, True, 1e-5, [True, True, True])
            else:
                self.fn = lambda: torch.ops.aten.native_batch_norm_backward(
                    tg, tx, tw, trm, trv, None, None, False, 1e-5, [True, True, True])
        else:
            self.fn = lambda: nbops.batch_norm_backward(g, x, mean, invstd, w,
                                                        training=training)

    def time_batch_norm_backward(self, shape, dtype, training, library):
        self.fn()


@built_once
class DropoutBackward:
    params = ([100_000, 10_000_000], ["nbops", "torch"])
    param_names = ["size", "library"]

    def setup(self, size, library):
        g = random_array(size, "float32")
        if library == "torch":
            needs_torch()
            tg = torch.from_numpy(g)
            mask = torch.from_numpy(nbops.dropout_mask(size, 0.5, rng=1, dtype=bool))
            self.fn = lambda: torch.ops.aten.native_dropout_backward(tg, mask, 2.0)
        else:
            self.fn = lambda: nbops.dropout_backward(g, 0.5, rng=1)
        self.fn()

    def time_dropout_backward(self, size, library):
        self.fn()


@built_once
class Dropout2dBackward:
    """Channel dropout's backward on (64, 64, 32, 32) float32."""

    params = ["nbops", "torch"]
    param_names = ["library"]

    def setup(self, library):
        g = _array((64, 64, 32, 32), "float32")
        if library == "torch":
            needs_torch()
            tx = torch.from_numpy(g.copy()).requires_grad_()
            y = F.dropout2d(tx, 0.5)
            tg = torch.from_numpy(g)
            self.fn = lambda: torch.autograd.grad(y, tx, tg, retain_graph=True)
        else:
            self.fn = lambda: nbops.dropout2d_backward(g, 0.5, rng=1)
        self.fn()

    def time_dropout2d_backward(self, library):
        self.fn()


@built_once
class PairwiseDistanceBackward:
    params = ([(64, 16), (4096, 64), (65536, 128)],
              ["float32", "float64"],
              [1.0, 2.0],
              ["nbops", "torch"])
    param_names = ["shape", "dtype", "p", "library"]

    def setup(self, shape, dtype, p, library):
        x1, x2 = _array(shape, dtype), _array(shape, dtype, 1)
        g = _array(shape[:1], dtype, 2)
        if library == "torch":
            needs_torch()
            t1 = torch.from_numpy(x1).requires_grad_()
            t2 = torch.from_numpy(x2).requires_grad_()
            dist = F.pairwise_distance(t1, t2, p=p)
            tg = torch.from_numpy(g)
            self.fn = lambda: torch.autograd.grad(dist, (t1, t2), tg, retain_graph=True)
        else:
            self.fn = lambda: nbops.pairwise_distance_backward(g, x1, x2, p=p)
        self.fn()

    def time_pairwise_distance_backward(self, shape, dtype, p, library):
        self.fn()
