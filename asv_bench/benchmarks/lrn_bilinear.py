"""local_response_norm and bilinear, forward and backward, nbops beside PyTorch CPU
(backward: autograd's backward alone, the forward run once in setup and its graph
kept)."""

import nbops

from ._common import needs_torch, random_array, torch

LRN_SHAPES = {"(32,64,56,56) size=5": ((32, 64, 56, 56), 5),
              "(8,96,27,27) size=5": ((8, 96, 27, 27), 5)}


class LocalResponseNorm:
    params = (list(LRN_SHAPES), ["float32", "float64"], ["nbops", "torch"])
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        dims, size = LRN_SHAPES[shape]
        n = 1
        for d in dims:
            n *= d
        x = random_array(n, dtype).reshape(dims)
        g = random_array(n, dtype, 1).reshape(dims)
        if library == "torch":
            needs_torch()
            tx = torch.from_numpy(x).requires_grad_()
            y = torch.nn.functional.local_response_norm(tx, size)
            tg = torch.from_numpy(g)
            self.forward = lambda: torch.nn.functional.local_response_norm(tx.detach(), size)
            self.backward = lambda: torch.autograd.grad(y, (tx,), tg, retain_graph=True)
        else:
            self.forward = lambda: nbops.local_response_norm(x, size)
            self.backward = lambda: nbops.local_response_norm_backward(g, x, size)
        self.forward()
        self.backward()

    def time_forward(self, shape, dtype, library):
        self.forward()

    def time_backward(self, shape, dtype, library):
        self.backward()


BILINEAR_SHAPES = {"4096x(64,64)->64": (4096, 64, 64, 64), "512x(256,128)->32": (512, 256, 128, 32)}


class Bilinear:
    params = (list(BILINEAR_SHAPES), ["float32", "float64"], ["nbops", "torch"])
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        rows, n1, n2, n_out = BILINEAR_SHAPES[shape]
        x1 = random_array(rows * n1, dtype).reshape(rows, n1)
        x2 = random_array(rows * n2, dtype, 1).reshape(rows, n2)
        w = random_array(n_out * n1 * n2, dtype, 2).reshape(n_out, n1, n2)
        b = random_array(n_out, dtype, 3)
        g = random_array(rows * n_out, dtype, 4).reshape(rows, n_out)
        if library == "torch":
            needs_torch()
            ts = [torch.from_numpy(a).requires_grad_() for a in (x1, x2, w, b)]
            y = torch.nn.functional.bilinear(*ts)
            tg = torch.from_numpy(g)
            plain = [t.detach() for t in ts]
            self.forward = lambda: torch.nn.functional.bilinear(*plain)
            self.backward = lambda: torch.autograd.grad(y, ts, tg, retain_graph=True)
        else:
            self.forward = lambda: nbops.bilinear(x1, x2, w, b)
            self.backward = lambda: nbops.bilinear_backward(g, x1, x2, w, b)
        self.forward()
        self.backward()

    def time_forward(self, shape, dtype, library):
        self.forward()

    def time_backward(self, shape, dtype, library):
        self.backward()
