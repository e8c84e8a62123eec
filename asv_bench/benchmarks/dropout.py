"""Dropout: nbops (Philox4x32-10 counter-based masks) beside PyTorch CPU and NumPy.

``library``:

* ``nbops``: ``nbops.dropout(x, p, rng=gen)`` (allocating; gen advances).
* ``nbops_inplace``: ``nbops.dropout(x, p, inplace=True, rng=gen)``.
* ``torch``: ``F.dropout(t, p)`` on ``torch.from_numpy`` (allocating, default threads).
* ``numpy``: the NumPy formulation of the whole op,
  ``x * (gen.random(x.shape, dtype=np.float32) >= p) * np.float32(1 / (1 - p))``.

``Mask`` times the masks alone: ``nbops.dropout_mask(..., dtype=bool)`` and
NumPy's ``gen.random(shape, dtype=np.float32) < p``. ``Relu`` is nbops' relu at
the same size (the issue's target: dropout within 2x of it).
"""

import numpy as np

import nbops

from ._common import F, built_once, needs_torch, random_array, torch


@built_once
class Dropout:
    params = ([100_000, 10_000_000], [0.1, 0.5],
              ["nbops", "nbops_inplace", "torch", "numpy"])
    param_names = ["size", "p", "library"]

    def setup(self, size, p, library):
        self.x = random_array(size, "float32")
        gen = np.random.default_rng(0)
        if library == "torch":
            needs_torch()
            t = torch.from_numpy(self.x)
            self.fn = lambda: F.dropout(t, p)
        elif library == "numpy":
            scale = np.float32(1.0 / (1.0 - p))
            self.fn = lambda: self.x * (gen.random(self.x.shape, dtype=np.float32) >= p) * scale
        elif library == "nbops_inplace":
            self.fn = lambda: nbops.dropout(self.x, p, inplace=True, rng=gen)
        else:
            self.fn = lambda: nbops.dropout(self.x, p, rng=gen)

    def time_dropout(self, size, p, library):
        self.fn()


@built_once
class Dropout2d:
    """Channel dropout on (64, 64, 32, 32) float32 (4.2e6 elements)."""

    params = ["nbops", "torch"]
    param_names = ["library"]

    def setup(self, library):
        self.x = random_array(64 * 64 * 32 * 32, "float32").reshape(64, 64, 32, 32)
        gen = np.random.default_rng(0)
        if library == "torch":
            needs_torch()
            t = torch.from_numpy(self.x)
            self.fn = lambda: F.dropout2d(t, 0.5)
        else:
            self.fn = lambda: nbops.dropout2d(self.x, 0.5, rng=gen)
        self.fn()

    def time_dropout2d(self, library):
        self.fn()


@built_once
class Mask:
    """The 1e7-element keep-mask alone."""

    params = ["nbops", "numpy"]
    param_names = ["library"]

    def setup(self, library):
        gen = np.random.default_rng(0)
        n = 10_000_000
        if library == "numpy":
            self.fn = lambda: gen.random(n, dtype=np.float32) < 0.5
        else:
            self.fn = lambda: nbops.dropout_mask(n, 0.5, rng=gen, dtype=bool)
        self.fn()

    def time_mask(self, library):
        self.fn()


class Relu:
    """nbops.relu on the same 1e7 float32 input: dropout's 2x reference."""

    def setup(self):
        self.x = random_array(10_000_000, "float32")
        nbops.relu(self.x)

    def time_relu(self):
        nbops.relu(self.x)
