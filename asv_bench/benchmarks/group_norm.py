"""group_norm and instance_norm, forward and backward: nbops beside PyTorch CPU.

``library``: ``nbops`` (allocating calls) or ``torch`` (``torch.nn.functional``
on ``torch.from_numpy``; the backward alone: ``aten.native_group_norm_backward``
with the statistics of one forward made in ``setup``). Target: group_norm at
most 1.0x PyTorch at (64, 256, 32, 32) with 32 groups, float32. With weight
and bias.
"""

import numpy as np

import nbops

from ._common import F, needs_torch, random_array, torch

SHAPES = [(4, 32, 8, 8), (64, 256, 32, 32)]


def _arrays(shape, dtype):
    c = shape[1]
    n = int(np.prod(shape))
    return (random_array(n, dtype, 0).reshape(shape), random_array(n, dtype, 1).reshape(shape),
            random_array(c, dtype, 2), random_array(c, dtype, 3))


def _calls(shape, dtype, library, groups, instance):
    """(forward, backward) callables: group_norm with ``groups`` groups, or
    instance_norm (``instance``; the input's statistics, ``groups`` = C)."""
    x, g, w, b = _arrays(shape, dtype)
    n, c = shape[:2]
    hw = int(np.prod(shape[2:]))
    if library == "torch":
        needs_torch()
        tx, tg, tw, tb = map(torch.from_numpy, (x, g, w, b))
        _, tm, tr = torch.ops.aten.native_group_norm(tx, tw, tb, n, c, hw, groups, 1e-5)
        if instance:
            forward = lambda: F.instance_norm(tx, None, None, tw, tb)  # noqa: E731
        else:
            forward = lambda: F.group_norm(tx, groups, tw, tb)  # noqa: E731
        return forward, lambda: torch.ops.aten.native_group_norm_backward(
            tg, tx, tm, tr, tw, n, c, hw, groups, [True, True, True])
    if instance:
        _, mean, rstd = nbops.instance_norm(x, None, None, w, b, return_stats=True)
        return (lambda: nbops.instance_norm(x, None, None, w, b),
                lambda: nbops.instance_norm_backward(g, x, mean, rstd, w))
    _, mean, rstd = nbops.group_norm(x, groups, w, b, return_stats=True)
    return (lambda: nbops.group_norm(x, groups, w, b),
            lambda: nbops.group_norm_backward(g, x, groups, mean, rstd, w))


class GroupNorm:
    params = (SHAPES, ["float32", "float64"], ["nbops", "torch"])
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        self.forward, self.backward = _calls(shape, dtype, library, 32, False)
        self.forward()  # compile / load from the cache outside the timing
        self.backward()

    def time_group_norm(self, shape, dtype, library):
        self.forward()

    def time_group_norm_backward(self, shape, dtype, library):
        self.backward()


class InstanceNorm:
    """With the input's statistics; PyTorch's backward timed as
    ``aten.native_group_norm_backward`` with a group per channel (the same
    computation; its autograd runs batch_norm's backward on the (1, N * C, *)
    view)."""

    params = (SHAPES, ["float32", "float64"], ["nbops", "torch"])
    param_names = ["shape", "dtype", "library"]

    def setup(self, shape, dtype, library):
        self.forward, self.backward = _calls(shape, dtype, library, shape[1], True)
        self.forward()
        self.backward()

    def time_instance_norm(self, shape, dtype, library):
        self.forward()

    def time_instance_norm_backward(self, shape, dtype, library):
        self.backward()
