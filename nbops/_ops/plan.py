"""Argument plans: each op's arguments validated once, for every backend.

The CPU drivers (``nbops/_ops/*.py``), the CUDA launchers
(``nbops/cuda/_ops.py``) and the ``@njit`` overloads read their options through
the functions here, so the same call gets the same answer or the same
exception (type and message) on every path. A plan is computed from shapes,
dtypes and option values only: it never touches array data, imports no Numba
and no CUDA, and plans that depend only on those may be memoized.

* ``reduction``: :func:`reduction_plan` (PyTorch's ``size_average``/``reduce``
  mapping with its ``DeprecationWarning``, and kl_div's ``'batchmean'``).
* ops along an axis (the softmax family): :func:`normalize_axis`,
  :func:`axis_plan` (``(outer, C, inner)`` of a C-order array).
* cross_entropy / nll_loss: :func:`class_loss_plan` (target kinds and
  shapes, weight length, ``ignore_index``, ``label_smoothing``).
* dropout: :func:`check_p`, :func:`dropout_plan`, :func:`dropout_key`,
  :func:`warn_feature_rank`, :func:`check_dropout1d_rank`,
  :func:`alpha_dropout_constants`.
"""

import math
import operator
import os
import warnings
from typing import NamedTuple

import numpy as np

from ..scalar.random import drop_threshold, splitmix64_int

__all__ = ["Remembered", "REDUCTIONS", "ReductionPlan", "legacy_reduction",
           "reduction_plan", "normalize_axis", "AxisPlan", "axis_plan", "ClassLossPlan",
           "class_loss_plan", "target_range_message", "check_p", "DropoutPlan",
           "dropout_plan", "dropout_seed", "dropout_key", "dropout_threshold",
           "dropout_scale", "channel_axes", "feature_view", "mask_shape",
           "warn_feature_rank", "check_dropout1d_rank", "alpha_dropout_constants"]

class Remembered(dict):
    """Plans remembered by their arguments: ``plans[key]`` is ``make(*key)``, made
    on the first look-up of ``key`` and kept (where ``keep(key)``, if given, is
    true), so a repeated call of the same shapes and options skips the checks (a
    dict look-up). When ``size`` plans are kept the table starts again empty.
    ``key`` must be hashable (a dict raises ``TypeError`` otherwise): callers
    remember only plain keys.

    Examples
    --------
    >>> plans = Remembered(lambda shape, axis: (shape, axis % len(shape)))
    >>> plans[((2, 3), -1)]
    ((2, 3), 1)
    >>> len(plans)
    1
    """

    __slots__ = ("make", "size", "keep")

    def __init__(self, make, size=256, keep=None):
        super().__init__()
        self.make = make
        self.size = size
        self.keep = keep  # keep(key): whether to remember this key's plan (default: all)

    def __missing__(self, key):
        plan = self.make(*key)
        if self.keep is None or self.keep(key):
            if len(self) >= self.size:
                self.clear()
            self[key] = plan
        return plan


# ------------------------------------------------------------------ reduction
REDUCTIONS = ("none", "mean", "sum")

_LEGACY_WARNING = ("size_average and reduce args will be deprecated, please use "
                   "reduction='{}' instead.")


def legacy_reduction(size_average, reduce):
    """PyTorch's mapping of the deprecated ``size_average``/``reduce`` flags
    (``torch.nn._reduction.legacy_get_string``), without the warning.

    ``None`` counts as ``True``; ``reduce=False`` gives ``'none'`` whatever
    ``size_average``; otherwise ``size_average`` chooses ``'mean'`` or ``'sum'``.
    """
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    if reduce:
        return "sum"
    return "none"


class ReductionPlan(NamedTuple):
    """How a loss's elementwise values are reduced.

    Attributes
    ----------
    mode : {'none', 'mean', 'sum'}
        What the kernels compute: the array of losses, or their sum (divided
        by the element count, or the weight sum, for ``'mean'``).
    batch : bool
        kl_div's ``reduction='batchmean'``: the result of ``mode`` is further
        divided by ``input.shape[0]`` (when the input has a dimension); as in
        PyTorch this also holds when the legacy flags chose ``mode``.
    legacy : bool
        The deprecated flags chose ``mode`` (a ``DeprecationWarning`` is due).
    """

    mode: str
    batch: bool
    legacy: bool

    def batch_divisor(self, shape):
        """The extra divisor of kl_div's ``'batchmean'`` for an input ``shape`` (1: none)."""
        return shape[0] if self.batch and len(shape) else 1

    def warn(self, stacklevel=2):
        """PyTorch's ``DeprecationWarning`` when the legacy flags were given."""
        if self.legacy:
            warnings.warn(_LEGACY_WARNING.format(self.mode), DeprecationWarning,
                          stacklevel=stacklevel + 1)


#: The plans of the plain reductions (no legacy flags), by name.
_PLANS = {name: ReductionPlan(name, False, False) for name in REDUCTIONS}
_KL_DIV_PLANS = {"none": _PLANS["none"], "batchmean": ReductionPlan("sum", True, False),
                 "mean": _PLANS["mean"], "sum": _PLANS["sum"]}


def reduction_plan(reduction="mean", size_average=None, reduce=None, *, batchmean=False,
                   stacklevel=None):
    """Validate ``reduction`` (after the legacy flags, which win as in PyTorch).

    Parameters
    ----------
    reduction : str
        ``'none'``, ``'mean'`` or ``'sum'``; also ``'batchmean'`` when
        ``batchmean`` (kl_div). Not checked when a legacy flag is given
        (PyTorch ignores it then, except kl_div's ``'batchmean'`` division).
    size_average, reduce : bool or None
        PyTorch's deprecated flags.
    batchmean : bool
        Accept ``'batchmean'`` (kl_div only).
    stacklevel : int or None
        Issue the legacy flags' ``DeprecationWarning`` at this stack level
        (1: the function calling this one); None: do not warn (the caller
        warns, with :meth:`ReductionPlan.warn`).

    Returns
    -------
    ReductionPlan

    Raises
    ------
    ValueError
        An unknown ``reduction``.
    """
    if size_average is None and reduce is None:
        plans = _KL_DIV_PLANS if batchmean else _PLANS
        try:
            return plans[reduction]
        except (KeyError, TypeError):  # TypeError: an unhashable value
            raise ValueError(f"reduction must be one of {', '.join(map(repr, plans))}, "
                             f"got {reduction!r}") from None
    plan = ReductionPlan(legacy_reduction(size_average, reduce),
                         batchmean and reduction == "batchmean", True)
    if stacklevel is not None:
        plan.warn(stacklevel + 1)
    return plan


# ------------------------------------------------------------------ ops along an axis
def normalize_axis(axis, dim, ndim):
    """The non-negative axis of ``axis`` (or its alias ``dim``) for ``ndim`` dimensions.

    A 0-d array has one axis of length 1, as in PyTorch.

    Raises
    ------
    TypeError
        Both ``axis`` and ``dim`` given (and different), or a non-integer axis.
    ValueError
        An axis out of range.
    """
    if dim is not None:
        if axis not in (-1, dim):
            raise TypeError(f"give axis or dim, not both (got axis={axis!r}, dim={dim!r})")
        axis = dim
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an integer, got {axis!r}") from None
    n = max(ndim, 1)
    if not -n <= ax < n:
        raise ValueError(axis_range_message(ax, ndim))
    return ax + n if ax < 0 else ax


def axis_range_message(axis, ndim):
    """The message of the ValueError for an axis out of range (shared with @njit)."""
    return f"axis {axis} is out of range for an array with {ndim} dimensions"


class AxisPlan(NamedTuple):
    """A C-order array seen as ``(outer, classes, inner)`` around axis ``axis``."""

    axis: int
    outer: int
    classes: int
    inner: int


def axis_plan(shape, axis=-1, dim=None):
    """The :class:`AxisPlan` of an array of ``shape`` along ``axis`` (or ``dim``)."""
    ax = normalize_axis(axis, dim, len(shape))
    if not shape:
        return AxisPlan(ax, 1, 1, 1)
    return AxisPlan(ax, math.prod(shape[:ax]), shape[ax], math.prod(shape[ax + 1:]))


# ------------------------------------------------------------------ cross_entropy, nll_loss
class ClassLossPlan(NamedTuple):
    """A validated cross_entropy / nll_loss call.

    Attributes
    ----------
    probabilities : bool
        The target holds class probabilities (a float target of the input's
        shape, cross_entropy only); else class indices of any integer dtype.
    outer, classes, inner : int
        The input as a C-order ``(N, C, d1 * ... * dk)`` array (``(1, C, 1)``
        for a 1-D input).
    loss_shape : tuple
        The shape of the per-sample losses (``reduction='none'``): the input's
        shape without the class axis.
    ignore_index : int
    label_smoothing : float
    reduction : ReductionPlan
    """

    probabilities: bool
    outer: int
    classes: int
    inner: int
    loss_shape: tuple
    ignore_index: int
    label_smoothing: float
    reduction: ReductionPlan


INPUT_SHAPES_MESSAGE = "input must have shape (C,), (N, C) or (N, C, d1, ..., dk)"


def _class_dims(input_shape):
    if len(input_shape) == 0:
        raise ValueError(f"{INPUT_SHAPES_MESSAGE}, got a 0-d array")
    if len(input_shape) == 1:
        return 1, input_shape[0], 1, ()
    return (input_shape[0], input_shape[1], math.prod(input_shape[2:]),
            (input_shape[0],) + tuple(input_shape[2:]))


def _check_ignore_index(ignore_index):
    try:
        return operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"ignore_index must be an integer, got {ignore_index!r}") from None


LABEL_SMOOTHING_MESSAGE = "label_smoothing must be between 0.0 and 1.0"


def _check_label_smoothing(label_smoothing):
    try:
        eps = float(label_smoothing)
    except (TypeError, ValueError):
        raise TypeError(f"label_smoothing must be a real number, "
                        f"got {label_smoothing!r}") from None
    if not 0.0 <= eps <= 1.0:
        raise ValueError(f"{LABEL_SMOOTHING_MESSAGE}, got {eps}")
    return eps


def index_dtype_message(target_dtype, input_shape, logits):
    """The TypeError message for class-index targets of a non-integer dtype
    (``input_shape`` None: not known, inside @njit at typing time)."""
    shape = "" if input_shape is None else f" {tuple(input_shape)}"
    return (f"target: class indices must have an integer dtype, got {target_dtype}"
            + (f" (class probabilities are a float target of the input's shape{shape})"
               if logits else ""))


TARGET_SHAPES = "target: (N, d1, ..., dk) for input (N, C, d1, ..., dk); () for input (C,)"


def target_shape_message(target_shape, loss_shape, input_shape):
    """The ValueError message for class-index targets of the wrong shape."""
    return (f"target has shape {tuple(target_shape)}, expected {tuple(loss_shape)} for input "
            f"of shape {tuple(input_shape)} ({TARGET_SHAPES})")


def weight_length_message(classes, weight_shape):
    """The ValueError message for a class weight of the wrong shape."""
    return (f"weight must have shape ({classes},) (one weight per class, the input's class "
            f"axis), got shape {tuple(weight_shape)}")


PROBABILITY_IGNORE_MESSAGE = ("ignore_index is not supported with class-probability "
                              "targets (a float target of the input's shape)")


def target_range_message(classes, ignore_index, index=None):
    """The ValueError message for a class index outside ``[0, classes)``."""
    which = "a class index" if index is None else f"class index {int(index)}"
    return (f"target: {which} is out of range: expected 0 <= index < {classes} (the "
            f"number of classes) or ignore_index ({ignore_index})")




def class_loss_plan(input_shape, target_shape, target_dtype, weight_shape=None,
                    ignore_index=-100, label_smoothing=0.0, reduction="mean",
                    size_average=None, reduce=None, logits=True, stacklevel=None):
    """Validate a cross_entropy (``logits=True``) or nll_loss call.

    Checks, in this order: ``reduction`` (and the legacy flags), the input's
    rank, a complex target, ``ignore_index``, ``label_smoothing``, the
    target's kind (probabilities: cross_entropy with a target of the input's
    shape; else class indices), its dtype and shape, and the weight's shape.
    The target's values (class indices in range) are data, checked by each
    backend before its kernel, with :func:`target_range_message`.

    Parameters
    ----------
    input_shape, target_shape : tuple
    target_dtype : numpy.dtype
    weight_shape : tuple or None
        None: no weight.
    stacklevel : int or None
        As in :func:`reduction_plan`.

    Returns
    -------
    ClassLossPlan
    """
    args = (tuple(input_shape), tuple(target_shape), target_dtype, weight_shape,
            ignore_index, label_smoothing, reduction, size_average, reduce, logits)
    try:
        # type(ignore_index): -100.0 == -100 but is not an integer
        plan = _CLASS_LOSS_PLANS[args + (type(ignore_index),)]
    except TypeError:  # an unhashable option value: not remembered
        plan = _class_loss_plan(*args)
    if stacklevel is not None:
        plan.reduction.warn(stacklevel + 1)
    return plan


def _class_loss_plan(input_shape, target_shape, target_dtype, weight_shape, ignore_index,
                     label_smoothing, reduction, size_average, reduce, logits):
    red = reduction_plan(reduction, size_average, reduce)
    O, C, I, loss_shape = _class_dims(input_shape)
    target_dtype = np.dtype(target_dtype)
    if target_dtype.kind == "c":
        raise TypeError(f"target: complex dtype {target_dtype} is not supported")
    ignore = _check_ignore_index(ignore_index)
    eps = _check_label_smoothing(label_smoothing)
    probabilities = logits and target_shape == input_shape
    if probabilities:
        if ignore >= 0:
            raise ValueError(PROBABILITY_IGNORE_MESSAGE)
        if target_dtype.kind != "f":
            raise TypeError(f"target: a target of the input's shape {input_shape} holds "
                            f"class probabilities and must have a float dtype, "
                            f"got {target_dtype}")
    else:
        if target_dtype.kind not in "iu":
            raise TypeError(index_dtype_message(target_dtype, input_shape, logits))
        if target_shape != loss_shape:
            raise ValueError(target_shape_message(target_shape, loss_shape, input_shape))
    if weight_shape is not None and tuple(weight_shape) != (C,):
        raise ValueError(weight_length_message(C, weight_shape))
    return ClassLossPlan(probabilities, O, C, I, loss_shape, ignore, eps, red)


_CLASS_LOSS_PLANS = Remembered(lambda *key: _class_loss_plan(*key[:-1]))


# ------------------------------------------------------------------ dropout
P_RANGE_MESSAGE = "p: dropout probability has to be between 0 and 1"
INPLACE_OUT_MESSAGE = "out= and inplace=True cannot be used together"


def check_p(p):
    """``p`` as a float in [0, 1] (TypeError if not a number, ValueError outside or NaN)."""
    try:
        value = float(p)
    except (TypeError, ValueError):
        raise TypeError(f"p must be a real number, got {p!r}") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{P_RANGE_MESSAGE}, but got {value}")
    return value


_WARN_RANK = ("{name}: Received a {ndim}-D input to {name}, which is deprecated in "
              "PyTorch and will result in an error in a future PyTorch release. To "
              "retain the behavior and silence this warning, please use dropout instead. "
              "Note that {name} exists to provide channel-wise dropout on inputs with "
              "{k} spatial dimensions, a channel dimension, and an optional batch "
              "dimension (i.e. {a}D or {b}D inputs).")
_WARN_3D = ("dropout2d: Received a 3D input to dropout2d and assuming that channel-wise "
            "1D dropout behavior is desired - input is interpreted as shape (N, C, L), "
            "where C is the channel dim (as PyTorch 2.13 does). PyTorch will change this "
            "in a future release to interpret the input as one without a batch "
            "dimension, i.e. shape (C, H, W).")


def warn_feature_rank(name, ndim, stacklevel=2):
    """PyTorch 2.13's warnings for dropout2d / dropout3d inputs of unusual rank."""
    if name == "dropout2d":
        if ndim not in (3, 4):
            warnings.warn(_WARN_RANK.format(name=name, ndim=ndim, k=2, a=3, b=4),
                          stacklevel=stacklevel + 1)
        if ndim == 3:
            warnings.warn(_WARN_3D, stacklevel=stacklevel + 1)
    elif ndim not in (4, 5):
        warnings.warn(_WARN_RANK.format(name=name, ndim=ndim, k=3, a=4, b=5),
                      stacklevel=stacklevel + 1)


def channel_axes(name, ndim):
    """How many leading axes of an ``ndim``-D input number the channels of feature
    dropout (one decision per channel): dropout2d and feature_alpha_dropout use
    the first two as ``(N, C)``; dropout3d does for a 5-D input and dropout1d
    for a 3-D one, and otherwise they take the input as unbatched (channels on
    axis 0). An input with fewer axes cannot be feature-dropped."""
    if name == "dropout3d":
        return 2 if ndim == 5 else 1
    if name == "dropout1d":
        return 2 if ndim == 3 else 1
    return 2


def feature_view(name, shape):
    """(channels, inner): the channel structure of PyTorch's feature dropout."""
    axes = channel_axes(name, len(shape))
    if len(shape) < axes:
        raise ValueError(f"input: {name} (feature dropout) requires at least 2 dimensions "
                         f"in the input, got shape {tuple(shape)}")
    return math.prod(shape[:axes]), math.prod(shape[axes:])


DROPOUT1D_RANK_MESSAGE = (
    "input: dropout1d: Expected 2D or 3D input, but received a {ndim}D input. Note that "
    "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial dimension, "
    "a channel dimension, and an optional batch dimension (i.e. 2D or 3D inputs).")


def check_dropout1d_rank(ndim):
    """PyTorch's rank rule of dropout1d (checked on every call, training or not):
    ``(N, C, L)`` or ``(C, L)``; ValueError otherwise (PyTorch's RuntimeError text)."""
    if ndim not in (2, 3):
        raise ValueError(DROPOUT1D_RANK_MESSAGE.format(ndim=ndim))


#: The SELU saturation value's magnitude, ``SELU.scale * SELU.alpha``: alpha dropout
#: sets a dropped element to ``-ALPHA_DROPOUT_ALPHA`` before its affine correction
#: (PyTorch's constant, aten/src/ATen/native/Dropout.cpp).
ALPHA_DROPOUT_ALPHA = 1.7580993408473766


def alpha_dropout_constants(p, dtype):
    """``(scale, kept_shift, dropped_shift)`` of alpha dropout in ``dtype`` (``0 < p < 1``).

    PyTorch's arithmetic (``_dropout_impl`` with ``alpha_dropout=true``): with
    ``alpha = ALPHA_DROPOUT_ALPHA`` and, in double,
    ``a = 1 / sqrt((alpha**2 p + 1) (1 - p))``, it forms the noise
    ``keep * a`` and the shift ``b = (keep - 1) * (alpha a) + alpha a p`` in the
    input's dtype (each scalar rounded to it) and returns ``input * noise + b``.
    So a kept element becomes ``x * scale + kept_shift`` and a dropped one
    ``x * 0 + dropped_shift`` (NaN for a non-finite ``x``, as PyTorch), with the
    three constants below rounded exactly as PyTorch rounds them.
    """
    alpha = ALPHA_DROPOUT_ALPHA
    a = 1.0 / math.sqrt((alpha * alpha * p + 1.0) * (1.0 - p))
    t = np.dtype(dtype).type
    kept_shift = t(alpha * a * p)
    dropped_shift = t(kept_shift - t(alpha * a))  # -(alpha a) + alpha a p, rounded once
    return t(a), kept_shift, dropped_shift


class DropoutPlan(NamedTuple):
    """What a dropout call does.

    Attributes
    ----------
    action : {'identity', 'zero', 'draw'}
        ``'identity'``: nothing is dropped (``training=False``, ``p == 0`` or
        an empty input: the input itself, as PyTorch); ``'zero'``: ``p == 1``
        (``input * 0``, nothing drawn); ``'draw'``: a mask is drawn.
    channels : int or None
        Feature dropout: the number of channels (one decision each); None for
        elementwise dropout.
    inner : int
        Elements per channel (1 for elementwise dropout).
    """

    action: str
    channels: object
    inner: int


_IDENTITY = DropoutPlan("identity", None, 1)
_ZERO = DropoutPlan("zero", None, 1)
_DRAW = DropoutPlan("draw", None, 1)


def dropout_plan(shape, p, training=True, inplace=False, has_out=False, feature=None):
    """Validate a dropout call (``feature``: None for elementwise dropout, or the name
    of a feature dropout: dropout1d, dropout2d, dropout3d, feature_alpha_dropout).

    ``p`` must have been checked with :func:`check_p` (before the rank
    warnings, as PyTorch). ``inplace`` with ``out=`` raises ValueError; a
    feature dropout of a 0-d or 1-D input raises ValueError only when it
    draws a mask (as PyTorch).
    """
    if inplace and has_out:
        raise ValueError(INPLACE_OUT_MESSAGE)
    if not training or p == 0.0 or 0 in shape:
        return _IDENTITY
    if p == 1.0:
        return _ZERO
    if feature is None:
        return _DRAW
    channels, inner = feature_view(feature, tuple(shape))
    return DropoutPlan("draw", channels, inner)


def mask_shape(shape):
    """dropout_mask's ``shape`` (an int or a sequence of ints >= 0) as a tuple."""
    try:
        shape = (int(shape.__index__()),) if hasattr(shape, "__index__") else \
            tuple(int(s.__index__()) for s in shape)
    except (TypeError, AttributeError):
        raise TypeError(f"shape must be an int or a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"shape: negative dimensions are not allowed, got {shape}")
    return shape


_M64 = (1 << 64) - 1


def dropout_seed(rng):
    """The 64-bit seed (a Python int) of an ``rng=`` argument; advances a Generator.

    ``None``: fresh OS entropy; an int in ``[0, 2**64)``; a
    ``numpy.random.Generator`` (one 64-bit draw); a ``BitGenerator`` or
    ``SeedSequence`` (wrapped with ``numpy.random.default_rng``).
    """
    if rng is None:
        return int.from_bytes(os.urandom(8), "little")
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(1 << 64, dtype=np.uint64))
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, (bool, np.bool_)):
        s = int(rng)
        if not 0 <= s <= _M64:
            raise ValueError(f"rng: an int seed must be in [0, 2**64), got {s}")
        return s
    if isinstance(rng, (np.random.BitGenerator, np.random.SeedSequence)):
        return dropout_seed(np.random.default_rng(rng))
    raise TypeError("rng must be None, an int seed or a numpy.random.Generator, "
                    f"got {type(rng).__name__}")


def dropout_key(rng):
    """(k0, k1): the Philox key words (``uint32``) for an ``rng=`` argument.

    Call it last, after every other check: a Generator advances only when
    the call succeeds.
    """
    k = splitmix64_int(dropout_seed(rng))
    return np.uint32(k & 0xFFFFFFFF), np.uint32(k >> 32)


def dropout_threshold(p):
    """The uint32 threshold below which a Philox word drops its element."""
    return np.uint32(drop_threshold(p))


def dropout_scale(p, dtype):
    """``1 / (1 - p)`` computed in double and rounded to ``dtype``, as PyTorch."""
    return dtype.type(1.0 / (1.0 - p))
