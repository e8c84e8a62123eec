"""Loss modules over the functional losses (formulas documented there).

``size_average`` / ``reduce`` are PyTorch's deprecated flags: when either is
given it overrides ``reduction`` (mapped as PyTorch maps it) with a
``DeprecationWarning`` (nbops' category for them; PyTorch's modules issue a
``UserWarning`` with the same text). ``reduction`` itself is checked when the
loss is computed, as in PyTorch.

Backward: ``loss_module.backward(grad_output=1.0)`` returns the gradient of the
latest forward's input. For the reductions to one value the forward computes
the loss and that gradient in one pass (``nbops.<loss>_with_grad``) and keeps
the gradient, which ``backward`` returns (times ``grad_output`` when it is not
1); with ``reduction='none'`` the forward keeps its input and target and
``backward(grad_output)`` (an array of the loss's shape) runs
``nbops.<loss>_backward``.
"""

import numbers
import sys
import warnings

import numpy as np

from .._grad import is_grad_enabled
from .._ops import class_margin_losses as _CM
from .._ops import embedding_losses as _EL
from .._ops import losses as _L
from .._ops import margin_losses as _ML
from .._ops import multilabel_losses as _MLS
from .._ops import nll_losses as _NLL
from .._ops import table as _table
from .._ops.classification import cross_entropy as _cross_entropy
from .._ops.classification import cross_entropy_backward as _cross_entropy_backward
from .._ops.classification import cross_entropy_with_grad as _cross_entropy_with_grad
from .._ops.classification import nll_loss as _nll_loss
from .._ops.classification import nll_loss_backward as _nll_loss_backward
from .._ops.classification import nll_loss_with_grad as _nll_loss_with_grad
from .._ops.ctc import ctc_loss as _ctc_loss
from .._ops.ctc import ctc_loss_backward as _ctc_loss_backward
from .._ops.ctc import ctc_loss_with_grad as _ctc_loss_with_grad
from .._ops.plan import reduction_plan
from .._validate import is_device_array as _is_dev
from ._module import Module, _as_state_array, _read

#: the hand-written classes (the generated ones are added at the end)
__all__ = ["CrossEntropyLoss", "NLLLoss", "NLLLoss2d", "KLDivLoss", "BCELoss",
           "BCEWithLogitsLoss", "CTCLoss", "PoissonNLLLoss", "GaussianNLLLoss",
           "MarginRankingLoss", "MultiLabelSoftMarginLoss", "CosineEmbeddingLoss",
           "TripletMarginLoss", "TripletMarginWithDistanceLoss", "MultiMarginLoss",
           "MultiLabelMarginLoss"]


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


def _scaled(grad, grad_output):
    """``grad * grad_output`` in place (``grad`` is the module's own array), for a
    ``grad_output`` that is the loss's: a scalar (or a 0-d host or device array)."""
    if type(grad_output) in (float, int) and grad_output == 1:
        return grad
    scale = _read(grad_output) if _is_dev(grad_output) else grad_output
    if not isinstance(scale, numbers.Real):
        scale = np.asarray(scale)
        if scale.ndim != 0 or scale.dtype.kind not in "biuf":
            raise ValueError(f"grad_output must be a real scalar (the loss is one value), got "
                             f"shape {scale.shape} and dtype {scale.dtype}")
    if isinstance(grad, np.ndarray):
        np.multiply(grad, scale, out=grad, casting="unsafe")
    else:
        from ..cuda import _grad_ops

        _grad_ops.scale(grad, float(scale))
    return grad


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        if size_average is not None or reduce is not None:
            plan = reduction_plan(reduction, size_average, reduce)  # the flags' mapping
            self.reduction = plan.mode
            plan.warn(stacklevel=_user_stacklevel())
        else:
            self.reduction = reduction

    def _loss_forward(self, function, with_grad, input, target, **options):
        """The loss, keeping what ``backward`` needs: the gradient from ``with_grad``
        (one pass) for a reduced loss, the input and target for ``reduction='none'``."""
        if not is_grad_enabled():
            return function(input, target, **options)
        if self.reduction == "none":
            loss = function(input, target, **options)
            self._save_for_backward((None, input, target))
        else:
            loss, grad = with_grad(input, target, **options)
            self._save_for_backward((grad, None, None))
        return loss

    def _loss_backward(self, backward, grad_output, **options):
        grad, input, target = self._saved_for_backward()
        if grad is not None:
            return _scaled(grad, grad_output)
        return backward(grad_output, input, target, **options)

    def backward(self, grad_output=1.0):
        """The gradient of the latest forward's input.

        Parameters
        ----------
        grad_output : float or array, default 1.0
            The gradient of the loss: a scalar for ``reduction='mean'``/``'sum'``
            (1.0: the gradient of the loss itself, as ``loss.backward()``), an
            array of the loss's shape for ``reduction='none'``.

        Returns
        -------
        array
            The gradient with respect to the forward's ``input`` (its shape and
            result dtype).
        """
        return self._loss_backward(type(self)._bfn, grad_output, **self._loss_options())


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

    _bfn = staticmethod(_nll_loss_backward)

    def _loss_options(self):
        return {"weight": self.weight, "ignore_index": self.ignore_index,
                "reduction": self.reduction}

    def forward(self, input, target):
        return self._loss_forward(_nll_loss, _nll_loss_with_grad, input, target,
                                  **self._loss_options())


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

    _bfn = staticmethod(_cross_entropy_backward)

    def _loss_options(self):
        return {"weight": self.weight, "ignore_index": self.ignore_index,
                "reduction": self.reduction, "label_smoothing": self.label_smoothing}

    def forward(self, input, target):
        return self._loss_forward(_cross_entropy, _cross_entropy_with_grad, input, target,
                                  **self._loss_options())


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

    _bfn = staticmethod(_L.kl_div_backward)

    def _loss_options(self):
        return {"reduction": self.reduction, "log_target": self.log_target}

    def forward(self, input, target):
        return self._loss_forward(_L.kl_div, _L.kl_div_with_grad, input, target,
                                  **self._loss_options())


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

    _bfn = staticmethod(_L.binary_cross_entropy_backward)

    def _loss_options(self):
        return {"weight": self.weight, "reduction": self.reduction}

    def forward(self, input, target):
        return self._loss_forward(_L.binary_cross_entropy, _L.binary_cross_entropy_with_grad,
                                  input, target, **self._loss_options())


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

    _bfn = staticmethod(_L.binary_cross_entropy_with_logits_backward)

    def _loss_options(self):
        return {"weight": self.weight, "pos_weight": self.pos_weight,
                "reduction": self.reduction}

    def forward(self, input, target):
        return self._loss_forward(_L.binary_cross_entropy_with_logits,
                                  _L.binary_cross_entropy_with_logits_with_grad, input, target,
                                  **self._loss_options())


class CTCLoss(_Loss):
    """Connectionist temporal classification loss (see :func:`nbops.ctc_loss`).

    Parameters
    ----------
    blank : int, default 0
        The blank class.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the per-sample losses are reduced ('mean': each divided by its
        target length, then averaged; checked when the loss is computed).
    zero_infinity : bool, default False
        Replace infinite losses (impossible alignments) and their gradients by 0.

    Examples
    --------
    >>> ctc = nbops.nn.CTCLoss(reduction="sum")
    >>> round(float(ctc(np.log(np.full((3, 1, 2), 0.5)), np.array([[1]]), [3], [1])), 12)
    0.287682072452
    >>> ctc.backward()[:, 0]  # the gradient of the log-probabilities
    array([[ 0.        ,  0.        ],
           [ 0.16666667, -0.16666667],
           [ 0.        ,  0.        ]])
    """

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__(reduction=reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def _loss_options(self):
        return {"blank": self.blank, "reduction": self.reduction,
                "zero_infinity": self.zero_infinity}

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        """The loss; with gradients enabled, also what :meth:`backward` needs
        (the gradient itself for 'mean' and 'sum', one pass).

        Parameters
        ----------
        log_probs, targets, input_lengths, target_lengths
            As :func:`nbops.ctc_loss`.

        Returns
        -------
        NumPy scalar or ndarray
            What :func:`nbops.ctc_loss` returns.
        """
        args = (log_probs, targets, input_lengths, target_lengths)
        options = self._loss_options()
        if not is_grad_enabled():
            return _ctc_loss(*args, **options)
        if self.reduction == "none":
            loss = _ctc_loss(*args, **options)
            self._save_for_backward((None, args))
        else:
            loss, grad = _ctc_loss_with_grad(*args, **options)
            self._save_for_backward((grad, None))
        return loss

    def backward(self, grad_output=1.0):
        """The gradient of the latest forward's ``log_probs``.

        Parameters
        ----------
        grad_output : float or array, default 1.0
            The gradient of the loss: a scalar for ``reduction='mean'``/``'sum'``,
            an array of the loss's shape for ``reduction='none'``.

        Returns
        -------
        ndarray
            The gradient with respect to ``log_probs`` (its shape and dtype).
        """
        grad, args = self._saved_for_backward()
        if grad is not None:
            return _scaled(grad, grad_output)
        return _ctc_loss_backward(grad_output, *args, **self._loss_options())


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood (see :func:`nbops.poisson_nll_loss`).

    Parameters
    ----------
    log_input : bool, default True
        Whether the input is the log of the rate (else the rate itself).
    full : bool, default False
        Add Stirling's approximation of :math:`\\log(y!)` for targets above 1.
    size_average, reduce : bool, optional
        PyTorch's deprecated flags: either one, when given, sets ``reduction``
        (with a ``DeprecationWarning``).
    eps : float, default 1e-8
        Added to the rate before its log (``log_input=False``).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the elementwise losses are reduced (checked when the loss is computed).

    Examples
    --------
    >>> loss = nbops.nn.PoissonNLLLoss()
    >>> loss(np.array([0.0, 0.5, 1.0]), np.array([1.0, 2.0, 3.0]))
    np.float64(0.4556676997197246)
    """

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    _bfn = staticmethod(_NLL.poisson_nll_loss_backward)

    def _loss_options(self):
        return {"log_input": self.log_input, "full": self.full, "eps": self.eps,
                "reduction": self.reduction}

    def forward(self, log_input, target):
        return self._loss_forward(_NLL.poisson_nll_loss, _NLL.poisson_nll_loss_with_grad,
                                  log_input, target, **self._loss_options())


class _ThreeInputLoss(_Loss):
    """A loss of three arrays whose ``backward`` returns the gradients of the
    differentiable ones (a tuple, as the functional backward)."""

    def _forward3(self, function, with_grad, a, b, c, differentiable=True):
        """The loss, keeping the gradients from ``with_grad`` (one pass) for a reduced
        loss, the arrays for ``reduction='none'`` (or when ``differentiable`` is
        False: the backward then raises the functional backward's error)."""
        options = self._loss_options()
        if not is_grad_enabled():
            return function(a, b, c, **options)
        if self.reduction == "none" or not differentiable:
            loss = function(a, b, c, **options)
            self._save_for_backward((None, a, b, c))
        else:
            loss, grads = with_grad(a, b, c, **options)
            self._save_for_backward((grads, None, None, None))
        return loss

    def _backward3(self, backward, grad_output):
        grads, a, b, c = self._saved_for_backward()
        if grads is not None:
            return tuple(None if g is None else _scaled(g, grad_output) for g in grads)
        return backward(grad_output, a, b, c, **self._loss_options())


class GaussianNLLLoss(_ThreeInputLoss):
    """Gaussian negative log-likelihood (see :func:`nbops.gaussian_nll_loss`).

    Parameters
    ----------
    full : bool, default False
        Add the constant :math:`\\tfrac12 \\log 2\\pi` (keyword-only, as in PyTorch).
    eps : float, default 1e-6
        The variances are clamped to at least ``eps``.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the elementwise losses are reduced (checked when the loss is computed).

    Notes
    -----
    ``forward(input, target, var)``; ``backward(grad_output=1.0)`` returns
    ``(grad_input, grad_var)`` (``grad_var`` None for a float ``var``), as
    :func:`nbops.gaussian_nll_loss_backward`.

    Examples
    --------
    >>> loss = nbops.nn.GaussianNLLLoss()
    >>> loss(np.array([0.0, 1.0]), np.array([1.0, 1.0]), np.array([1.0, 2.0]))
    np.float64(0.42328679513998635)
    >>> gx, gv = loss.backward()
    >>> gx
    array([-0.5,  0. ])
    """

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def _loss_options(self):
        return {"full": self.full, "eps": self.eps, "reduction": self.reduction}

    def forward(self, input, target, var):
        return self._forward3(_NLL.gaussian_nll_loss, _NLL.gaussian_nll_loss_with_grad,
                              input, target, var)

    def backward(self, grad_output=1.0):
        """The gradients of the latest forward's input and variance.

        Parameters
        ----------
        grad_output : float or array, default 1.0
            The gradient of the loss: a scalar for ``reduction='mean'``/``'sum'``,
            an array of the loss's shape for ``reduction='none'``.

        Returns
        -------
        tuple
            ``(grad_input, grad_var)``: arrays of the shapes of the forward's
            ``input`` and ``var`` (``grad_var`` None for a float ``var``).
        """
        return self._backward3(_NLL.gaussian_nll_loss_backward, grad_output)


class MarginRankingLoss(_ThreeInputLoss):
    """Margin ranking loss of two inputs (see :func:`nbops.margin_ranking_loss`).

    Parameters
    ----------
    margin : float, default 0.0
        The margin :math:`\\Delta`.
    size_average, reduce : bool, optional
        PyTorch's deprecated flags: either one, when given, sets ``reduction``
        (with a ``DeprecationWarning``).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the elementwise losses are reduced (checked when the loss is computed).

    Notes
    -----
    ``forward(input1, input2, target)``; ``backward(grad_output=1.0)`` returns
    ``(grad_input1, grad_input2)``, as :func:`nbops.margin_ranking_loss_backward`.

    Examples
    --------
    >>> loss = nbops.nn.MarginRankingLoss(margin=0.5)
    >>> loss(np.array([1.0, 0.5]), np.array([0.0, 1.0]), np.array([1.0, 1.0]))
    np.float64(0.5)
    >>> loss.backward()
    (array([-0. , -0.5]), array([0. , 0.5]))
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def _loss_options(self):
        return {"margin": self.margin, "reduction": self.reduction}

    def forward(self, input1, input2, target):
        return self._forward3(_ML.margin_ranking_loss, _ML.margin_ranking_loss_with_grad,
                              input1, input2, target)

    def backward(self, grad_output=1.0):
        """The gradients of the latest forward's two inputs.

        Parameters
        ----------
        grad_output : float or array, default 1.0
            The gradient of the loss: a scalar for ``reduction='mean'``/``'sum'``,
            an array of the loss's shape for ``reduction='none'``.

        Returns
        -------
        tuple
            ``(grad_input1, grad_input2)``, arrays of the inputs' shapes.
        """
        return self._backward3(_ML.margin_ranking_loss_backward, grad_output)


class MultiLabelSoftMarginLoss(_WeightedLoss):
    """Multi-label one-versus-all logistic loss (see
    :func:`nbops.multilabel_soft_margin_loss`).

    Parameters
    ----------
    weight : array_like, optional
        Rescaling weight of each class, shape ``(C,)`` (a buffer, part of
        ``state_dict()`` when given).
    size_average, reduce : bool, optional
        PyTorch's deprecated flags: either one, when given, sets ``reduction``
        (with a ``DeprecationWarning``).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the per-sample losses are reduced (checked when the loss is computed).

    Examples
    --------
    >>> loss = nbops.nn.MultiLabelSoftMarginLoss()
    >>> loss(np.zeros((2, 3)), np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]]))
    np.float64(0.6931471805599453)
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)

    _bfn = staticmethod(_MLS.multilabel_soft_margin_loss_backward)

    def _loss_options(self):
        return {"weight": self.weight, "reduction": self.reduction}

    def forward(self, input, target):
        return self._loss_forward(_MLS.multilabel_soft_margin_loss,
                                  _MLS.multilabel_soft_margin_loss_with_grad, input, target,
                                  **self._loss_options())


class CosineEmbeddingLoss(_ThreeInputLoss):
    """Cosine embedding loss of pairs of rows (see :func:`nbops.cosine_embedding_loss`).

    Parameters
    ----------
    margin : float, default 0.0
        The margin :math:`\\Delta` of the dissimilar pairs.
    size_average, reduce : bool, optional
        PyTorch's deprecated flags: either one, when given, sets ``reduction``
        (with a ``DeprecationWarning``).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the per-pair losses are reduced (checked when the loss is computed).

    Notes
    -----
    ``forward(input1, input2, target)``; ``backward(grad_output=1.0)`` returns
    ``(grad_input1, grad_input2)``, as :func:`nbops.cosine_embedding_loss_backward`.

    Examples
    --------
    >>> loss = nbops.nn.CosineEmbeddingLoss()
    >>> float(loss(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([1.0])))
    1.0
    >>> [g.shape for g in loss.backward()]
    [(1, 2), (1, 2)]
    """

    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def _loss_options(self):
        return {"margin": self.margin, "reduction": self.reduction}

    def forward(self, input1, input2, target):
        return self._forward3(_EL.cosine_embedding_loss, _EL.cosine_embedding_loss_with_grad,
                              input1, input2, target)

    def backward(self, grad_output=1.0):
        """The gradients of the latest forward's two inputs.

        Parameters
        ----------
        grad_output : float or array, default 1.0
            The gradient of the loss: a scalar for ``reduction='mean'``/``'sum'``,
            an array of the loss's shape for ``reduction='none'``.

        Returns
        -------
        tuple
            ``(grad_input1, grad_input2)``, arrays of the inputs' shapes.
        """
        return self._backward3(_EL.cosine_embedding_loss_backward, grad_output)


class TripletMarginLoss(_ThreeInputLoss):
    """Triplet margin loss (see :func:`nbops.triplet_margin_loss`).

    Parameters
    ----------
    margin : float, default 1.0
        The margin :math:`\\Delta`, greater than 0 (``ValueError`` otherwise).
    p : float, default 2.0
        The norm's degree.
    eps : float, default 1e-6
        Added to the differences.
    swap : bool, default False
        The distance swap.
    size_average, reduce : bool, optional
        PyTorch's deprecated flags: either one, when given, sets ``reduction``
        (with a ``DeprecationWarning``).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the per-triplet losses are reduced (checked when the loss is computed).

    Notes
    -----
    ``forward(anchor, positive, negative)``; ``backward(grad_output=1.0)`` returns
    ``(grad_anchor, grad_positive, grad_negative)``, as
    :func:`nbops.triplet_margin_loss_backward`.

    Examples
    --------
    >>> loss = nbops.nn.TripletMarginLoss(margin=0.5)
    >>> value = loss(np.zeros((2, 3)), np.ones((2, 3)), np.full((2, 3), 2.0))
    >>> [g.shape for g in loss.backward()]
    [(2, 3), (2, 3), (2, 3)]
    """

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: expected margin to be greater than 0, got "
                             f"{margin} instead")
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap

    def _loss_options(self):
        return {"margin": self.margin, "p": self.p, "eps": self.eps, "swap": self.swap,
                "reduction": self.reduction}

    def forward(self, anchor, positive, negative):
        return self._forward3(_EL.triplet_margin_loss, _EL.triplet_margin_loss_with_grad,
                              anchor, positive, negative)

    def backward(self, grad_output=1.0):
        """The gradients of the latest forward's three inputs.

        Parameters
        ----------
        grad_output : float or array, default 1.0
            The gradient of the loss: a scalar for ``reduction='mean'``/``'sum'``,
            an array of the loss's shape for ``reduction='none'``.

        Returns
        -------
        tuple
            ``(grad_anchor, grad_positive, grad_negative)``, arrays of the inputs'
            shapes.
        """
        return self._backward3(_EL.triplet_margin_loss_backward, grad_output)


class TripletMarginWithDistanceLoss(_ThreeInputLoss):
    """Triplet margin loss over a distance function (see
    :func:`nbops.triplet_margin_with_distance_loss`).

    Parameters
    ----------
    distance_function : callable, optional (keyword-only)
        The distance of two arrays of rows; None: a
        :class:`nbops.nn.PairwiseDistance` (p = 2, eps = 1e-6), as PyTorch.
    margin : float, default 1.0
        The margin :math:`\\Delta`, greater than 0 (``ValueError`` otherwise).
    swap : bool, default False
        The distance swap.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the per-triplet losses are reduced (checked when the loss is computed).

    Notes
    -----
    ``backward(grad_output=1.0)`` returns ``(grad_anchor, grad_positive,
    grad_negative)``; with a distance function whose gradient nbops does not have
    (a user callable) the forward works and the backward raises ``TypeError``.

    Examples
    --------
    >>> loss = nbops.nn.TripletMarginWithDistanceLoss(margin=0.5)
    >>> value = loss(np.zeros((2, 3)), np.ones((2, 3)), np.full((2, 3), 2.0))
    >>> [g.shape for g in loss.backward()]
    [(2, 3), (2, 3), (2, 3)]
    """

    def __init__(self, *, distance_function=None, margin=1.0, swap=False, reduction="mean"):
        super().__init__(None, None, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginWithDistanceLoss: expected margin to be greater "
                             f"than 0, got {margin} instead")
        from .distance import PairwiseDistance

        self.distance_function = distance_function if distance_function is not None \
            else PairwiseDistance()
        self.margin = margin
        self.swap = swap

    def _loss_options(self):
        return {"distance_function": self.distance_function, "margin": self.margin,
                "swap": self.swap, "reduction": self.reduction}

    def forward(self, anchor, positive, negative):
        known = _EL._known_distance(self.distance_function) is not None
        return self._forward3(_EL.triplet_margin_with_distance_loss,
                              _EL.triplet_margin_with_distance_loss_with_grad, anchor,
                              positive, negative, differentiable=known)

    def backward(self, grad_output=1.0):
        """The gradients of the latest forward's three inputs.

        Parameters
        ----------
        grad_output : float or array, default 1.0
            The gradient of the loss: a scalar for ``reduction='mean'``/``'sum'``,
            an array of the loss's shape for ``reduction='none'``.

        Returns
        -------
        tuple
            ``(grad_anchor, grad_positive, grad_negative)``, arrays of the inputs'
            shapes.

        Raises
        ------
        TypeError
            The distance function is a user callable (no gradient available).
        """
        return self._backward3(_EL.triplet_margin_with_distance_loss_backward, grad_output)


class MultiMarginLoss(_WeightedLoss):
    """Multi-class hinge loss of class scores and class indices (see
    :func:`nbops.multi_margin_loss`).

    Parameters
    ----------
    p : {1, 2}, default 1
        The hinge's power.
    margin : float, default 1.0
        The margin.
    weight : array_like, optional
        Weight of each class, shape ``(C,)`` (a buffer, part of ``state_dict()``
        when given).
    size_average, reduce : bool, optional
        PyTorch's deprecated flags: either one, when given, sets ``reduction``
        (with a ``DeprecationWarning``).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the per-sample losses are reduced (checked when the loss is computed).

    Examples
    --------
    >>> loss = nbops.nn.MultiMarginLoss()
    >>> float(loss(np.array([[0.25, 0.5, 0.0, 0.75]]), np.array([3])))
    0.375
    >>> loss.backward()
    array([[ 0.25,  0.25,  0.25, -0.75]])
    """

    def __init__(self, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        if p != 1 and p != 2:
            raise ValueError("only p == 1 and p == 2 supported")
        if self.weight is not None and len(self.weight.shape) != 1:
            raise ValueError("MultiMarginLoss: expected weight to be None or 1D tensor, got "
                             f"{len(self.weight.shape)}D instead")
        self.p = p
        self.margin = margin

    _bfn = staticmethod(_CM.multi_margin_loss_backward)

    def _loss_options(self):
        return {"p": self.p, "margin": self.margin, "weight": self.weight,
                "reduction": self.reduction}

    def forward(self, input, target):
        return self._loss_forward(_CM.multi_margin_loss, _CM.multi_margin_loss_with_grad,
                                  input, target, **self._loss_options())


class MultiLabelMarginLoss(_Loss):
    """Multi-class multi-label hinge loss of class scores and class-index lists (see
    :func:`nbops.multilabel_margin_loss`).

    Parameters
    ----------
    size_average, reduce : bool, optional
        PyTorch's deprecated flags: either one, when given, sets ``reduction``
        (with a ``DeprecationWarning``).
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        How the per-sample losses are reduced (checked when the loss is computed).

    Examples
    --------
    >>> loss = nbops.nn.MultiLabelMarginLoss()
    >>> float(loss(np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([[3, 0, -1, 1]])))
    0.85
    >>> loss.backward()
    array([[-0.5,  0.5,  0.5, -0.5]])
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)

    _bfn = staticmethod(_CM.multilabel_margin_loss_backward)

    def _loss_options(self):
        return {"reduction": self.reduction}

    def forward(self, input, target):
        return self._loss_forward(_CM.multilabel_margin_loss,
                                  _CM.multilabel_margin_loss_with_grad, input, target,
                                  **self._loss_options())


# The pointwise losses' classes (L1Loss, MSELoss, SmoothL1Loss, ...), generated
# from their op-table entries (nbops/_ops/losses.py).
_GENERATED = _table.loss_module_classes(_Loss, __name__)
globals().update(_GENERATED)
__all__ = list(_GENERATED) + __all__
