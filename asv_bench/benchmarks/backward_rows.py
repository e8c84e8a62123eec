"""The backwards of the softmax family and of prelu: nbops beside PyTorch CPU.

``library``: ``nbops`` (allocating call), ``nbops_out`` (into a preallocated
``out=``), ``torch`` (the backward alone: ``torch.ops.aten._softmax_backward_data``
/ ``_log_softmax_backward_data`` on ``torch.from_numpy`` views; softmin's is
softmax's negated, so torch's softmin time is that kernel plus a negation,
``torch.autograd.grad`` over a retained graph for prelu: the forward is not
timed). Shapes: many short rows (65536, 128) and the issue's (4096, 1000),
float32; prelu at 1e7 elements, one weight on a 1-D input and 16 channels of
an (N, 16, 64, 64) input.
"""

import numpy as np

import nbops
from nbops._ops import table

from ._common import built_once, needs_torch, random_array, torch

SHAPES = {"(65536, 128)": (65536, 128), "(4096, 1000)": (4096, 1000)}
ROW_OPS = [e.name for e in table.row_op_entries()]


def _torch_row_backward(op, g, y):
    needs_torch()
    aten = torch.ops.aten
    if op == "log_softmax":
        return lambda: aten._log_softmax_backward_data(g, y, 1, torch.float32)
    if op == "softmin":
        return lambda: aten._softmax_backward_data(g, y, 1, torch.float32).neg_()
    return lambda: aten._softmax_backward_data(g, y, 1, torch.float32)


@built_once
class RowBackward:
    """``<op>_backward(grad_output, output)`` along the last axis."""

    params = (ROW_OPS, list(SHAPES), ["nbops", "nbops_out", "torch"])
    param_names = ["op", "shape", "library"]

    def setup(self, op, shape, library):
        n, c = SHAPES[shape]
        x = random_array(n * c, "float32").reshape(n, c)
        self.g = random_array(n * c, "float32", seed=1).reshape(n, c)
        self.y = getattr(nbops, op)(x)
        backward = getattr(nbops, f"{op}_backward")
        if library == "torch":
            self.fn = _torch_row_backward(op, torch.from_numpy(self.g), torch.from_numpy(self.y))
        elif library == "nbops_out":
            self.out = np.empty_like(x)
            self.fn = lambda: backward(self.g, self.y, out=self.out)
        else:
            self.fn = lambda: backward(self.g, self.y)

    def time_backward(self, op, shape, library):
        self.fn()


@built_once
class PreluBackward:
    """``prelu_backward(grad_output, input, weight) -> (grad_input, grad_weight)``."""

    params = (["1-D, 1 weight", "(N, 16, 64, 64)"], ["nbops", "torch"])
    param_names = ["case", "library"]

    def setup(self, case, library):
        n = 10_000_000
        shape, channels = ((n,), 1) if case.startswith("1-D") else ((n // 65536, 16, 64, 64), 16)
        size = int(np.prod(shape))
        self.x = random_array(size, "float32").reshape(shape)
        self.g = random_array(size, "float32", seed=1).reshape(shape)
        self.w = np.full(channels, 0.25, np.float32)
        if library == "torch":
            needs_torch()
            x = torch.from_numpy(self.x).requires_grad_()
            w = torch.from_numpy(self.w).requires_grad_()
            y = torch.nn.functional.prelu(x, w)
            g = torch.from_numpy(self.g)
            self.fn = lambda: torch.autograd.grad(y, (x, w), g, retain_graph=True)
        else:
            self.fn = lambda: nbops.prelu_backward(self.g, self.x, self.w)
        self.fn()

    def time_prelu_backward(self, case, library):
        self.fn()
