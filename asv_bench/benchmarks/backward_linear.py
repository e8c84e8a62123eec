"""linear's backward, nbops beside PyTorch CPU's (autograd's backward alone: the
forward is run once in setup and its graph kept).

Target: at most 1.1x PyTorch (the two products dominate).
"""

import numpy as np

import nbops

from ._common import needs_torch, random_array, torch

SHAPES = {"(64,128)x(128,64)": (64, 128, 64), "(1024,256)x(256,256)": (1024, 256, 256),
          "(65536,128)x(128,128)": (65536, 128, 128)}


class LinearBackward:
    params = (list(SHAPES), ["float32", "float64"], ["nbops", "torch"])
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        rows, n_in, n_out = SHAPES[shape]
        x = random_array(rows * n_in, dtype).reshape(rows, n_in)
        w = random_array(n_out * n_in, dtype, 1).reshape(n_out, n_in)
        b = random_array(n_out, dtype, 2)
        g = random_array(rows * n_out, dtype, 3).reshape(rows, n_out)
        if library == "torch":
            needs_torch()
            tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
            y = torch.nn.functional.linear(tx, tw, tb)
            tg = torch.from_numpy(g)
            self.fn = lambda: torch.autograd.grad(y, (tx, tw, tb), tg, retain_graph=True)
        else:
            self.fn = lambda: nbops.linear_backward(g, x, w, b)
        self.fn()

    def time_backward(self, shape, dtype, library):
        self.fn()


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
