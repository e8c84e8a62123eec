"""Margin losses of pairs of inputs: ``nbops.margin_ranking_loss`` (with its backward,
which returns the gradients of both inputs, and ``_with_grad``).

Signatures, defaults and semantics are those of ``torch.nn.functional`` 2.13.
PyTorch computes ``max(0, -target * (input1 - input2) + margin)``: the difference
comes first, so nbops computes it too, in the computation dtype, and runs the
pointwise losses' kernels (nbops/_ops/losses.py) with the scalar cores of
:mod:`nbops.scalar.losses`: the forward's 'mean' and 'sum' in one pass over both inputs and the
target (the weighted kernel, ``input2`` its third operand, the difference formed per
element), its 'none', the backward and ``_with_grad`` on the difference (one NumPy subtraction)
and the target: one pass (``_with_grad``) for the losses, the sum
and the difference's gradient, which is ``input1``'s; ``input2``'s is its negative
(each summed over the axes along which its input was broadcast). Inside ``@njit``
the same names compile to the same kernels (the backward and ``_with_grad`` there
need ``input1`` and ``input2`` of one shape). On CUDA device arrays (``input1``
and ``input2`` C-contiguous, of one shape and dtype) the difference is formed on
the device and the CUDA pointwise-loss kernels (nbops/cuda/_ops.py) run it.
"""

import math
from collections import namedtuple

import numpy as np
from numba import types
from numba.core import errors
from numba.extending import overload
from numba.np.numpy_support import as_dtype, from_dtype

from .. import _config
from .._validate import as_array, dask_ops, is_dask_array, is_device_array
from ..cuda import ops as _cuda
from ..scalar import losses as S
from . import losses as _L
from . import njit_args as NJ
from .elementwise import Op
from .plan import reduction_plan

__all__ = ["margin_ranking_loss", "margin_ranking_loss_backward",
           "margin_ranking_loss_with_grad"]

_RANK = Op("loss.margin_ranking_loss", S.margin_ranking_loss, 1)


@_config.core
def _rank_pair(x1, t, x2, margin):
    """The loss of ``input1``'s and ``input2``'s elements: :func:`S.margin_ranking_loss`
    of their difference (the same bits as the difference taken first)."""
    return S.margin_ranking_loss(x1 - x2, t, margin)


#: the forward from both inputs in one pass (the difference is not stored)
_RANK_PAIR = Op("loss.margin_ranking_loss_pair", _rank_pair, 1)
_L._AUX_PARAM_OPS.add(_RANK_PAIR.name)
_RANK_GRAD = Op("loss.margin_ranking_loss_backward", S.margin_ranking_loss_backward, 1)
#: the cores as the CUDA pointwise-loss drivers take them (``.core``, ``.backward``)
_RANK_CUDA = namedtuple("_Cores", "core backward")(S.margin_ranking_loss,
                                                    S.margin_ranking_loss_backward)


def _on_device(input1, input2, target):
    devices = [type(a) is not np.ndarray and is_device_array(a)
               for a in (input1, input2, target)]
    if any(devices) and not all(devices):
        raise ValueError("margin_ranking_loss: input1, input2 and target must all be CUDA "
                         "device arrays or all host arrays")
    return devices[0]


def _device_difference(input1, input2, target):
    """``input1 - input2`` on the device (``input1 + (-input2)``, exactly the difference)."""
    from ..cuda import _grad_ops as GO

    if len(input1.shape) != len(input2.shape) or len(input1.shape) != len(target.shape):
        raise ValueError("margin_ranking_loss : All input tensors should have same dimension "
                         f"but got sizes: input1: {tuple(input1.shape)}, input2: "
                         f"{tuple(input2.shape)}, target: {tuple(target.shape)}")
    if tuple(input1.shape) != tuple(input2.shape) or input1.dtype != input2.dtype:
        raise ValueError("margin_ranking_loss: on CUDA device arrays input1 and input2 must "
                         "have one shape and dtype")
    d, minus = GO.copy(input1), GO.copy(input2)
    GO.scale(minus, -1.0)
    GO.add_into(d, minus)
    return d


def _negated(grad):
    from ..cuda import _grad_ops as GO

    neg = GO.copy(grad)
    GO.scale(neg, -1.0)
    return neg


def _plan(input1, input2, target, margin, size_average, reduce, reduction, difference=True):
    """Checked arrays: (difference, target, input1's shape, input2's shape, shape, compute,
    result, mode, margin); without ``difference``, ``(input1, input2)`` in its place."""
    arrays = [a if type(a) is np.ndarray else as_array(a, name)
              for a, name in ((input1, "input1"), (input2, "input2"), (target, "target"))]
    x1, x2, t = arrays
    if x1.ndim != x2.ndim or x1.ndim != t.ndim:
        raise ValueError("margin_ranking_loss : All input tensors should have same dimension "
                         f"but got sizes: input1: {x1.shape}, input2: {x2.shape}, target: "
                         f"{t.shape}")
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=4).mode
    margin = float(margin)
    x1, x2, compute, result = _L._arrays(x1, x2, (("target", t),))
    try:
        shape = x1.shape if x1.shape == x2.shape == t.shape else \
            np.broadcast_shapes(x1.shape, x2.shape, t.shape)
    except ValueError:
        raise ValueError(f"input1 of shape {x1.shape}, input2 of shape {x2.shape} and target "
                         f"of shape {t.shape} do not broadcast together") from None
    if not difference:
        return (x1, x2), t, x1.shape, x2.shape, shape, compute, result, mode, margin
    d = np.subtract(x1, x2) if x1.dtype == x2.dtype == compute else \
        np.subtract(x1, x2, dtype=compute)
    return d, t, x1.shape, x2.shape, shape, compute, result, mode, margin


def margin_ranking_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                        reduction="mean"):
    r"""Margin ranking loss of two inputs and which of them should rank higher.

    .. math::
        \ell_i = \max(0, -y_i (x_{1,i} - x_{2,i}) + \Delta)

    Parameters
    ----------
    input1, input2 : array_like
        The scores of the pairs' two sides.
    target : array_like
        1 where ``input1`` should rank higher, -1 where ``input2`` should. All
        three have one number of dimensions (``ValueError`` otherwise, as PyTorch
        raises) and broadcast together.
    margin : float, default 0.0
        :math:`\Delta`.
    size_average, reduce : bool, optional
        Deprecated (``DeprecationWarning``); when given they override
        ``reduction`` as in PyTorch.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'``: the array of losses (broadcast shape); ``'sum'``: their sum;
        ``'mean'``: the sum divided by the number of elements.

    Returns
    -------
    ndarray or NumPy scalar
        ``reduction='none'``: the elementwise losses; otherwise a NumPy scalar of
        the computation dtype (float32 stays float32).

    Notes
    -----
    Same as ``torch.nn.functional.margin_ranking_loss``: its formula (the
    difference first), its check of the dimensions, NaN propagating.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x1, x2 = np.array([1.0, 0.5, 0.0]), np.array([0.0, 1.0, 0.25])
    >>> nbops.margin_ranking_loss(x1, x2, np.array([1.0, 1.0, -1.0]), margin=0.5,
    ...                           reduction="none")
    array([0.  , 1.  , 0.25])
    """
    if type(input1) is not np.ndarray and is_dask_array(input1):  # nbops/_dask.py
        return dask_ops().margin_ranking_loss(input1, input2, target, margin, size_average,
                                              reduce, reduction)
    if _on_device(input1, input2, target):
        return _cuda().pointwise_loss(_RANK_CUDA, (float(margin),),
                                      _device_difference(input1, input2, target), target,
                                      size_average, reduce, reduction, None)
    (x1, x2), t, _, _, shape, compute, result, mode, margin = _plan(
        input1, input2, target, margin, size_average, reduce, reduction, difference=False)
    if mode == "none":  # (the fused kernel keeps the inputs' memory order)
        d = np.subtract(x1, x2, dtype=compute)
        return _L._run(_RANK, (margin,), d, t, shape, compute, result, mode)
    # one pass over both inputs (the losses of their difference, not stored)
    res = _L._run(_RANK_PAIR, (margin,), x1, t, shape, compute, result, mode, aux=x2)
    return _L._reduce(res, math.prod(shape), mode, result)


def _grads(d, t, x1_shape, x2_shape, shape, compute, result, mode, margin, g, want):
    n = math.prod(shape)
    if mode == "none":
        c = 1.0
    else:
        c, g = (g / n if n else g * np.nan) if mode == "mean" else g, None
    gd, total = _L._grad_pass(_RANK, _RANK_GRAD, (margin,), d, t, shape, compute, compute, g,
                              c, want=want)
    g1 = gd if x1_shape == gd.shape else _L._sum_to(gd, x1_shape)
    g2 = np.negative(gd) if x2_shape == gd.shape else _L._sum_to(np.negative(gd), x2_shape)
    return g1.astype(result, copy=False), g2.astype(result, copy=False), total


def margin_ranking_loss_backward(grad_output, input1, input2, target, margin=0.0,
                                 size_average=None, reduce=None, reduction="mean"):
    """Backward of :func:`nbops.margin_ranking_loss`: the gradients of both inputs,
    given ``grad_output`` and the forward's arguments.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for ``'mean'``/``'sum'``,
        a float array of the unreduced loss's shape for ``'none'``.
    input1, input2, target, margin, size_average, reduce, reduction
        The forward's arguments.

    Returns
    -------
    grad_input1, grad_input2 : ndarray
        The gradients of ``input1`` and ``input2`` (their shapes).

    Notes
    -----
    With ``g`` the gradient of the element's loss: :math:`-g y` for ``input1`` and
    :math:`g y` for ``input2`` where :math:`-y (x_1 - x_2) + \\Delta \\ge 0` (at 0
    too, as ``torch.autograd``), else 0.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.margin_ranking_loss_backward(1.0, np.array([0.0, 2.0]), np.array([1.0, 0.0]),
    ...                                    np.array([1.0, 1.0]), reduction="sum")
    (array([-1., -0.]), array([1., 0.]))
    """
    if type(input1) is not np.ndarray and is_dask_array(input1):  # nbops/_dask.py
        return dask_ops().margin_ranking_loss_backward(grad_output, input1, input2, target,
                                                       margin, size_average, reduce, reduction)
    if _on_device(input1, input2, target):
        gd = _cuda().pointwise_loss_backward(_RANK_CUDA, (float(margin),), grad_output,
                                             _device_difference(input1, input2, target),
                                             target, size_average, reduce, reduction, None)
        return gd, _negated(gd)
    plan = _plan(input1, input2, target, margin, size_average, reduce, reduction)
    g = _L._grad_output(grad_output, plan[7], plan[4])
    g1, g2, _ = _grads(*plan, g, False)
    return g1, g2


def margin_ranking_loss_with_grad(input1, input2, target, margin=0.0, size_average=None,
                                  reduce=None, reduction="mean"):
    """The value of :func:`nbops.margin_ranking_loss` and the gradients of both inputs.

    Parameters
    ----------
    input1, input2, target, margin, size_average, reduce, reduction
        As :func:`nbops.margin_ranking_loss`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly what the forward returns for these arguments.
    grads : tuple
        ``(grad_input1, grad_input2)``, as the backward with ``grad_output=1.0``
        (for ``reduction='none'``, the gradients of the sum of the losses).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> loss, (g1, g2) = nbops.margin_ranking_loss_with_grad(
    ...     np.array([0.0, 2.0]), np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    >>> float(loss), g1, g2
    (0.5, array([-0.5, -0. ]), array([0.5, 0. ]))
    """
    if type(input1) is not np.ndarray and is_dask_array(input1):  # nbops/_dask.py
        return dask_ops().margin_ranking_loss_with_grad(input1, input2, target, margin,
                                                        size_average, reduce, reduction)
    if _on_device(input1, input2, target):
        loss, gd = _cuda().pointwise_loss_with_grad(
            _RANK_CUDA, (float(margin),), _device_difference(input1, input2, target), target,
            size_average, reduce, reduction, None)
        return loss, (gd, _negated(gd))
    plan = _plan(input1, input2, target, margin, size_average, reduce, reduction)
    d, t, _, _, shape, compute, result, mode, margin = plan
    if mode == "none":
        loss = _L._run(_RANK, (margin,), d, t, shape, compute, result, "none")
        g1, g2, _ = _grads(*plan, np.ones(shape, compute), False)
        return loss, (g1, g2)
    g1, g2, total = _grads(*plan, 1.0, True)
    return _L._reduce(total, math.prod(shape), mode, result), (g1, g2)


# ------------------------------------------------------------------ @njit
def _nj_difference_type(input1, input2, target):
    """The Numba type of ``input1 - input2`` in the computation dtype of all three."""
    arrays = (input1, input2, target)
    if not all(isinstance(a, types.Array) for a in arrays):
        raise errors.TypingError("nbops: margin_ranking_loss inside @njit takes arrays")
    if len({a.ndim for a in arrays}) != 1:
        raise errors.TypingError("nbops: margin_ranking_loss: All input tensors should have "
                                 "same dimension")
    dtype = np.result_type(*(as_dtype(a.dtype) for a in arrays))
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    return types.Array(from_dtype(dtype), input1.ndim, "C"), dtype.type


@overload(margin_ranking_loss, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _margin_ranking_loss_njit(input1, input2, target, margin=0.0, size_average=None,
                              reduce=None, reduction="mean"):
    d_type, dt = _nj_difference_type(input1, input2, target)
    body = _L._nj_loss(_RANK, d_type, target, size_average, reduce, reduction, None)

    def impl(input1, input2, target, margin=0.0, size_average=None, reduce=None,
             reduction="mean"):
        d = np.subtract(input1, input2).astype(dt)
        return body(d, target, None, (float(margin),))

    return impl


def _nj_grad_bodies(input1, input2, target, size_average, reduce, reduction):
    d_type, dt = _nj_difference_type(input1, input2, target)
    return _L._nj_regression_grad(_RANK, _RANK_GRAD, d_type, target, size_average, reduce,
                                  reduction, None), dt


@overload(margin_ranking_loss_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _margin_ranking_loss_backward_njit(grad_output, input1, input2, target, margin=0.0,
                                       size_average=None, reduce=None, reduction="mean"):
    bodies, dt = _nj_grad_bodies(input1, input2, target, size_average, reduce, reduction)
    body = bodies[0]

    def impl(grad_output, input1, input2, target, margin=0.0, size_average=None, reduce=None,
             reduction="mean"):
        if input1.shape != input2.shape:
            raise ValueError("nbops: margin_ranking_loss_backward: inside @njit input1 and "
                             "input2 must have one shape")
        d = np.subtract(input1, input2).astype(dt)
        gd = body(grad_output, d, target, None, None, (float(margin),), None)
        return gd, -gd

    return impl


@overload(margin_ranking_loss_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _margin_ranking_loss_with_grad_njit(input1, input2, target, margin=0.0, size_average=None,
                                        reduce=None, reduction="mean"):
    bodies, dt = _nj_grad_bodies(input1, input2, target, size_average, reduce, reduction)
    body = bodies[1]

    def impl(input1, input2, target, margin=0.0, size_average=None, reduce=None,
             reduction="mean"):
        if input1.shape != input2.shape:
            raise ValueError("nbops: margin_ranking_loss_with_grad: inside @njit input1 and "
                             "input2 must have one shape")
        d = np.subtract(input1, input2).astype(dt)
        loss, gd = body(d, target, None, None, (float(margin),))
        return loss, (gd, -gd)

    return impl
