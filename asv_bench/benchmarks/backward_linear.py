"""linear's backward, nbops beside PyTorch CPU's (autograd's backward alone: the
forward is run once in setup and its graph kept).

Target: at most 1.1x PyTorch (the two products dominate).
"""

import nbops

from ._common import built_once, needs_torch, random_array, torch

SHAPES = {"(64,128)x(128,64)": (64, 128, 64), "(1024,256)x(256,256)": (1024, 256, 256),
          "(65536,128)x(128,128)": (65536, 128, 128)}


@built_once
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
