"""Argument plans of ``batch_norm`` and ``pairwise_distance``, for every backend.

The CPU drivers (:mod:`nbops._ops.normalization`, :mod:`nbops._ops.distance`)
and the CUDA functions (:mod:`nbops.cuda._ops`) first turn their array
arguments into their own arrays (NumPy or device arrays: whatever has
``shape``), check what only they can check (dtypes, host or device, writable),
then call the plan here, which checks shapes and options and computes the
sizes the kernels need. So the same arguments give the same answer or the same
error on every backend. Plain Python: nothing here compiles.
"""

import math
from typing import NamedTuple

import numpy as np

from .._validate import as_param


class BatchNormPlan(NamedTuple):
    """A validated ``batch_norm`` call: the input as ``(n_outer, channels, inner)``."""

    n_outer: int
    channels: int
    inner: int
    #: Values per channel (``n_outer * inner``).
    count: int
    training: bool
    #: A float in training; 0.0 in evaluation (unused there).
    momentum: float
    eps: float
    #: Whether running statistics were given (in training: updated in place).
    has_running: bool

    @property
    def update_running(self):
        return self.training and self.has_running


def _check_channels(shape, name, channels):
    if tuple(shape) != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) (the number of channels, "
                         f"input.shape[1]), got {tuple(shape)}")


def batch_norm_plan(shape, running_mean, running_var, weight, bias, training, momentum, eps):
    """Check a ``batch_norm`` call and return its :class:`BatchNormPlan`.

    ``shape``: the input's shape; the four vectors are None or arrays of the
    caller's backend (only their ``shape`` is read here). As PyTorch: the
    input is ``(N, C, *)``, or 1-D and empty (``(0,)``: no channels, an empty
    result); running statistics are both given or both None and required in
    evaluation; training needs more than one value per channel and ``eps > 0``
    (``eps >= 0`` otherwise); ``momentum`` must be a number in training.
    """
    shape = tuple(shape)
    if len(shape) >= 2:
        n_outer, channels = shape[0], shape[1]
        inner = 1
        for d in shape[2:]:
            inner *= d
    elif shape == (0,):  # PyTorch returns an empty result (no channels)
        n_outer, channels, inner = 0, 0, 1
    else:
        raise ValueError(f"input must have at least 2 dimensions (N, C, ...), got shape {shape}")
    count = n_outer * inner
    eps = as_param(eps, "eps")
    training = bool(training)
    momentum = as_param(momentum, "momentum") if training else 0.0
    if weight is not None:
        _check_channels(weight.shape, "weight", channels)
    if bias is not None:
        _check_channels(bias.shape, "bias", channels)
    if (running_mean is None) != (running_var is None):
        raise ValueError("running_mean and running_var must either both be None or "
                         "neither be None")
    if running_mean is not None:
        _check_channels(running_mean.shape, "running_mean", channels)
        _check_channels(running_var.shape, "running_var", channels)
    elif not training:
        raise ValueError("running_mean and running_var must be given in evaluation mode "
                         "(training=False)")
    if training and count == 1:
        raise ValueError("Expected more than 1 value per channel when training, "
                         f"got input size {shape}")
    if training and eps <= 0.0:
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0.0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    return BatchNormPlan(n_outer, channels, inner, count, training, momentum, eps,
                         running_mean is not None)


class PairwiseDistancePlan(NamedTuple):
    """A validated ``pairwise_distance`` call over ``rows`` rows of ``dim`` values."""

    #: The broadcast shape of x1 and x2 (``(1,)`` for two 0-d inputs).
    shape: tuple
    rows: int
    dim: int
    #: The result's shape.
    out_shape: tuple
    p: float
    eps: float


def pairwise_distance_plan(shape1, shape2, p, eps, keepdim):
    """Check a ``pairwise_distance`` call (shapes of x1 and x2, options) and return
    its :class:`PairwiseDistancePlan`.

    As PyTorch: x1 and x2 broadcast; the norm is over the last axis; 1-D inputs
    give a 0-d result (``(1,)`` with ``keepdim``) and two 0-d inputs a 0-d one;
    ``p`` must not be NaN, and ``p = +-inf`` or ``p < 0`` is an error when
    there are rows and the last axis is empty.
    """
    p = as_param(p, "p")
    eps = as_param(eps, "eps")
    if math.isnan(p):
        raise ValueError("p must not be NaN")
    shape1, shape2 = tuple(shape1), tuple(shape2)
    try:
        shape = shape1 if shape1 == shape2 else np.broadcast_shapes(shape1, shape2)
    except ValueError:
        raise ValueError(f"x1 of shape {shape1} and x2 of shape {shape2} do not broadcast") \
            from None
    scalar = len(shape) == 0
    if scalar:
        shape = (1,)
    dim = shape[-1]
    out_shape = () if scalar else shape[:-1] + ((1,) if keepdim else ())
    rows = 1
    for d in shape[:-1]:
        rows *= d
    if dim == 0 and rows and (p < 0 or math.isinf(p)):
        raise ValueError(f"p={p}: the {p}-norm of an empty last axis (shape {shape}) is "
                         "undefined; PyTorch raises too (use p >= 0 finite)")
    return PairwiseDistancePlan(shape, rows, dim, out_shape, p, eps)

