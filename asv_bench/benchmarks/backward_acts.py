"""Issue 16's elementwise activations, forward (gelu's tanh form) and backward, beside
PyTorch: ``torch.ops.aten.<op>_backward`` where torch has that kernel, else autograd
with the forward excluded (tanhshrink's backward is composite in torch)."""

import numpy as np

import nbops

from ._common import built_once, needs_torch, random_array, torch

SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
#: (nbops keyword arguments, torch forward, torch backward (g, x)); gelu_tanh is gelu
#: with approximate='tanh'
CASES = {
    "gelu": ({}, lambda F, t: F.gelu(t), lambda a, g, x: a.gelu_backward(g, x)),
    "gelu_tanh": ({"approximate": "tanh"}, lambda F, t: F.gelu(t, approximate="tanh"),
                  lambda a, g, x: a.gelu_backward(g, x, approximate="tanh")),
    "mish": ({}, lambda F, t: F.mish(t), lambda a, g, x: a.mish_backward(g, x)),
    "hardsigmoid": ({}, lambda F, t: F.hardsigmoid(t),
                    lambda a, g, x: a.hardsigmoid_backward(g, x)),
    "selu": ({}, lambda F, t: F.selu(t),
             lambda a, g, x: a.elu_backward(g, *SELU, 1.0, False, x)),
    "celu": ({}, lambda F, t: F.celu(t),
             lambda a, g, x: a.elu_backward(g, 1.0, 1.0, 1.0, False, x)),
    "hardshrink": ({}, lambda F, t: F.hardshrink(t),
                   lambda a, g, x: a.hardshrink_backward(g, x, 0.5)),
    "tanhshrink": ({}, lambda F, t: F.tanhshrink(t), None),
}


def _nbops_name(op):
    return "gelu" if op == "gelu_tanh" else op


@built_once
class ActivationsBackward:
    """Each backward at 1e7 float32 (the issue's 1.0x-PyTorch target), into ``out=``
    and allocating."""

    params = (list(CASES), ["nbops", "nbops_out", "torch"])
    param_names = ["op", "library"]

    def setup(self, op, library):
        x = random_array(10_000_000, "float32")
        g = random_array(10_000_000, "float32", 1)
        kw, forward, backward = CASES[op]
        if library == "torch":
            needs_torch()
            tg, tx = torch.from_numpy(g), torch.from_numpy(x)
            if backward is not None:
                self.fn = lambda: backward(torch.ops.aten, tg, tx)
            else:  # autograd, the forward excluded
                xr = tx.clone().requires_grad_()
                y = forward(torch.nn.functional, xr)

                def run():
                    xr.grad = None
                    y.backward(tg, retain_graph=True)

                self.fn = run
        else:
            fn = getattr(nbops, f"{_nbops_name(op)}_backward")
            out = np.empty_like(x) if library == "nbops_out" else None
            self.fn = (lambda: fn(g, x, **kw, out=out)) if out is not None \
                else (lambda: fn(g, x, **kw))
        self.fn()

    def time_backward(self, op, library):
        self.fn()


@built_once
class GeluTanhForward:
    """gelu's tanh form at 1e7 float32 (AllActivationsLarge times the default form)."""

    params = (["nbops", "nbops_out", "torch"],)
    param_names = ["library"]

    def setup(self, library):
        x = random_array(10_000_000, "float32")
        if library == "torch":
            needs_torch()
            t = torch.from_numpy(x)
            self.fn = lambda: torch.nn.functional.gelu(t, approximate="tanh")
        else:
            out = np.empty_like(x) if library == "nbops_out" else None
            self.fn = (lambda: nbops.gelu(x, "tanh", out=out)) if out is not None \
                else (lambda: nbops.gelu(x, "tanh"))
        self.fn()

    def time_forward(self, library):
        self.fn()
