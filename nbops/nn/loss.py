"""Loss modules over the functional losses (formulas documented there).

``size_average`` / ``reduce`` are PyTorch's deprecated flags: when either is
given it overrides ``reduction`` (mapped as PyTorch maps it) with a
``DeprecationWarning`` (nbops' category for them; PyTorch's modules issue a
``UserWarning`` with the same text). ``reduction`` itself is checked when the
loss is computed, as in PyTorch.
"""

import sys
import warnings

from .._ops import losses as _L
from .._ops import table as _table
from .._ops.classification import cross_entropy as _cross_entropy
from .._ops.classification import nll_loss as _nll_loss
from .._ops.plan import reduction_plan
from ._module import Module, _as_state_array

#: the hand-written classes (the generated ones are added at the end)
__all__ = ["CrossEntropyLoss", "NLLLoss", "NLLLoss2d", "KLDivLoss", "BCELoss",
           "BCEWithLogitsLoss"]


def _optional_array(value):
    """None, a CUDA device array as it is, or ``np.asarray(value)``."""
    return _as_state_array(value)


def _user_stacklevel():
    """``stacklevel`` of the first frame outside this file and the generated classes'
    constructors (the user's constructor call)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and (frame.f_code.co_filename == __file__
                                 or frame.f_code.co_filename.startswith("<nbops.nn.")):
        frame, level = frame.f_back, level + 1
    return level


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        if size_average is not None or reduce is not None:
            plan = reduction_plan(reduction, size_average, reduce)  # the flags' mapping
            self.reduction = plan.mode
            plan.warn(stacklevel=_user_stacklevel())
        else:
            self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _optional_array(weight))


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (see :func:`nbops.nll_loss`).

    ``weight`` (per class) is a buffer, so it is part of ``state_dict()``.

    Parameters
    ----------
    weight : array_like, optional
        Rescaling weight of each class, shape ``(C,)`` (a buffer, part of
        ``state_dict()`` when given).
    size_average : bool, optional
        PyTorch's deprecated flag: when given (it or ``reduce``), it sets
        ``reduction`` (with a ``DeprecationWarning``).
    ignore_index : int, default -100
        Targets of this class contribute neither to the loss nor to the mean.
    reduce : bool, optional
        Deprecated, as ``size_average``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the elementwise losses are reduced (checked when the loss is computed).

    Examples
    --------
    >>> logp = np.log(np.array([[0.2, 0.3, 0.5], [0.5, 0.2, 0.3]]))
    >>> nbops.nn.NLLLoss(reduction="none")(logp, np.array([2, 1]))
    array([0.69314718, 1.60943791])
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return _nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                            reduction=self.reduction)


class NLLLoss2d(NLLLoss):
    """Deprecated alias of :class:`NLLLoss` (a ``FutureWarning`` when built), as in PyTorch.

    Parameters
    ----------
    weight, size_average, ignore_index, reduce, reduction
        As :class:`NLLLoss`.
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        warnings.warn("`NLLLoss2d` has been deprecated. Please use `NLLLoss` instead as a "
                      "drop-in replacement and see "
                      "https://pytorch.org/docs/main/nn.html#torch.nn.NLLLoss for more details.",
                      FutureWarning, stacklevel=_user_stacklevel())
        super().__init__(weight, size_average, ignore_index, reduce, reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy of logits against class indices or class probabilities
    (see :func:`nbops.cross_entropy`).

    Parameters
    ----------
    weight : array_like, optional
        Rescaling weight of each class, shape ``(C,)`` (a buffer, part of
        ``state_dict()`` when given).
    size_average : bool, optional
        PyTorch's deprecated flag: when given (it or ``reduce``), it sets
        ``reduction`` (with a ``DeprecationWarning``).
    ignore_index : int, default -100
        Targets of this class contribute neither to the loss nor to the mean.
    reduce : bool, optional
        Deprecated, as ``size_average``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the elementwise losses are reduced (checked when the loss is computed).
    label_smoothing : float, default 0.0
        Amount of smoothing of the target distribution, in [0, 1].

    Examples
    --------
    >>> x = np.array([[0.2, 0.3, 0.5], [0.5, 0.2, 0.3]])
    >>> nbops.nn.CrossEntropyLoss(weight=np.array([2.0, 4.0, 6.0]), reduction="none")(
    ...     x, np.array([2, 1]))
    array([5.63898637, 4.95932424])
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return _cross_entropy(input, target, weight=self.weight,
                                 ignore_index=self.ignore_index, reduction=self.reduction,
                                 label_smoothing=self.label_smoothing)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence of a log-probability input (see :func:`nbops.kl_div`).

    Parameters
    ----------
    size_average, reduce : bool, optional
        PyTorch's deprecated flags: either one, when given, sets ``reduction``
        (with a ``DeprecationWarning``).
    reduction : {'mean', 'batchmean', 'sum', 'none'}, default 'mean'
        How the elementwise losses are reduced (checked when the loss is computed).
    log_target : bool, default False
        Whether ``target`` holds log-probabilities.

    Examples
    --------
    >>> loss = nbops.nn.KLDivLoss(reduction="batchmean")
    >>> loss(np.log(np.array([[0.25, 0.75]])), np.array([[0.5, 0.5]]))
    np.float64(0.14384103622589045)
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return _L.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities (see :func:`nbops.binary_cross_entropy`).

    Parameters
    ----------
    weight : array_like, optional
        Rescaling weight of each element, broadcast to the input's shape (a
        buffer, part of ``state_dict()`` when given).
    size_average, reduce : bool, optional
        PyTorch's deprecated flags: either one, when given, sets ``reduction``
        (with a ``DeprecationWarning``).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the elementwise losses are reduced (checked when the loss is computed).

    Examples
    --------
    >>> nbops.nn.BCELoss()(np.array([0.9, 0.2]), np.array([1.0, 0.0]))
    np.float64(0.16425203348601802)
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)

    def forward(self, input, target):
        return _L.binary_cross_entropy(input, target, weight=self.weight,
                                       reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits, computed stably
    (see :func:`nbops.binary_cross_entropy_with_logits`).

    ``weight`` and ``pos_weight`` are buffers (part of ``state_dict()`` when given).

    Parameters
    ----------
    weight : array_like, optional
        Rescaling weight of each element, broadcast to the input's shape (a
        buffer, part of ``state_dict()`` when given).
    size_average, reduce : bool, optional
        PyTorch's deprecated flags: either one, when given, sets ``reduction``
        (with a ``DeprecationWarning``).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the elementwise losses are reduced (checked when the loss is computed).
    pos_weight : array_like, optional
        Weight of the positive class, broadcast against the input (a buffer).

    Examples
    --------
    >>> nbops.nn.BCEWithLogitsLoss()(np.array([2.0, -1.0]), np.array([1.0, 0.0]))
    np.float64(0.22009484928059764)
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _optional_array(weight))
        self.register_buffer("pos_weight", _optional_array(pos_weight))

    def forward(self, input, target):
        return _L.binary_cross_entropy_with_logits(input, target, self.weight,
                                                   pos_weight=self.pos_weight,
                                                   reduction=self.reduction)


# The pointwise losses' classes (L1Loss, MSELoss, SmoothL1Loss, ...), generated
# from their op-table entries (nbops/_ops/losses.py).
_GENERATED = _table.loss_module_classes(_Loss, __name__)
globals().update(_GENERATED)
__all__ = list(_GENERATED) + __all__
