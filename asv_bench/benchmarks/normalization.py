"""batch_norm, linear and pairwise_distance: nbops beside NumPy and PyTorch CPU.

``library``: ``nbops`` (allocating call), ``numpy`` (the NumPy expression),
``torch`` (``torch.nn.functional`` on ``torch.from_numpy``, allocating).
Targets: batch_norm and pairwise_distance at most 1.0x PyTorch, linear at
most 1.1x, on the large shapes.
"""

import numpy as np

import nbops

from ._common import F, built_once, needs_torch, random_array, torch

LIBRARIES = ["nbops", "numpy", "torch"]


def _array(shape, dtype, seed=0):
    return random_array(int(np.prod(shape)), dtype, seed).reshape(shape)


def _numpy_batch_norm(x, rm, rv, w, b, training, momentum=0.1, eps=1e-5):
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, -1) + (1,) * (x.ndim - 2)
    if training:
        mean = x.mean(axis=axes, dtype=np.float64)
        var = x.var(axis=axes, dtype=np.float64)
        n = x.size // x.shape[1]
        rm *= 1 - momentum
        rm += momentum * mean
        rv *= 1 - momentum
        rv += momentum * var * n / (n - 1)
    else:
        mean, var = rm, rv
    scale = (w / np.sqrt(var + eps)).astype(x.dtype)
    shift = (b - mean * scale).astype(x.dtype)
    return x * scale.reshape(bshape) + shift.reshape(bshape)


@built_once
class BatchNorm:
    params = ([(64, 32), (32, 64, 256), (256, 64, 32, 32)],
              ["float32", "float64"],
              [False, True],
              LIBRARIES)
    param_names = ["shape", "dtype", "training", "library"]

    def setup(self, shape, dtype, training, library):
        x = _array(shape, dtype)
        c = shape[1]
        rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
        w, b = np.ones(c, dtype), np.zeros(c, dtype)
        if library == "torch":
            needs_torch()
            tx, trm, trv, tw, tb = map(torch.from_numpy, (x, rm, rv, w, b))
            self.fn = lambda: F.batch_norm(tx, trm, trv, tw, tb, training=training)
        elif library == "numpy":
            self.fn = lambda: _numpy_batch_norm(x, rm, rv, w, b, training)
        else:
            self.fn = lambda: nbops.batch_norm(x, rm, rv, w, b, training=training)

    def time_batch_norm(self, shape, dtype, training, library):
        self.fn()


@built_once
class Linear:
    # (batch, in_features, out_features), with bias
    params = ([(32, 64, 64), (512, 256, 256), (4096, 1024, 1024)],
              ["float32", "float64"],
              LIBRARIES)
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        n, k, m = shape
        x, w, b = _array((n, k), dtype), _array((m, k), dtype, 1), _array((m,), dtype, 2)
        if library == "torch":
            needs_torch()
            tx, tw, tb = map(torch.from_numpy, (x, w, b))
            self.fn = lambda: F.linear(tx, tw, tb)
        elif library == "numpy":
            self.fn = lambda: x @ w.T + b
        else:
            self.fn = lambda: nbops.linear(x, w, b)
        self.fn()

    def time_linear(self, shape, dtype, library):
        self.fn()


@built_once
class PairwiseDistance:
    params = ([(64, 16), (4096, 64), (65536, 128)],
              ["float32", "float64"],
              [1.0, 2.0],
              LIBRARIES)
    param_names = ["shape", "dtype", "p", "library"]

    def setup(self, shape, dtype, p, library):
        x1, x2 = _array(shape, dtype), _array(shape, dtype, 1)
        if library == "torch":
            needs_torch()
            t1, t2 = torch.from_numpy(x1), torch.from_numpy(x2)
            self.fn = lambda: F.pairwise_distance(t1, t2, p=p)
        elif library == "numpy":
            self.fn = lambda: np.linalg.norm(x1 - x2 + 1e-6, ord=p, axis=-1)
        else:
            self.fn = lambda: nbops.pairwise_distance(x1, x2, p=p)
        self.fn()

    def time_pairwise_distance(self, shape, dtype, p, library):
        self.fn()
