"""The generated elementwise backwards beside PyTorch's ``aten.*_backward`` kernels."""

import numpy as np

import nbops

from ._common import built_once, needs_torch, random_array, torch


@built_once
class ElementwiseBackward:
    """The generated elementwise backwards at 1e5 and 1e7 elements, into ``out=``
    and allocating, beside ``torch.ops.aten.<op>_backward`` where it exists."""

    params = (["relu", "sigmoid", "tanh", "elu", "softplus", "silu"], [100_000, 10_000_000],
              ["nbops", "nbops_out", "torch"])
    param_names = ["op", "n", "library"]

    def setup(self, op, n, library):
        x = random_array(n, "float32")
        g = random_array(n, "float32", 1)
        forward = getattr(nbops, op)
        residual = forward(x) if op in ("relu", "sigmoid", "tanh") else x
        if library == "torch":
            needs_torch()
            aten = torch.ops.aten
            tg, tr = torch.from_numpy(g), torch.from_numpy(residual)
            calls = {"relu": lambda: aten.threshold_backward(tg, tr, 0.0),
                     "sigmoid": lambda: aten.sigmoid_backward(tg, tr),
                     "tanh": lambda: aten.tanh_backward(tg, tr),
                     "elu": lambda: aten.elu_backward(tg, 1.0, 1.0, 1.0, False, tr),
                     "softplus": lambda: aten.softplus_backward(tg, tr, 1.0, 20.0),
                     "silu": lambda: aten.silu_backward(tg, tr)}
            self.fn = calls[op]
        else:
            backward = getattr(nbops, f"{op}_backward")
            out = np.empty_like(x) if library == "nbops_out" else None
            self.fn = (lambda: backward(g, residual, out=out)) if out is not None \
                else (lambda: backward(g, residual))
        self.fn()

    def time_backward(self, op, n, library):
        self.fn()
