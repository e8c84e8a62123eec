"""Negative log-likelihood losses of a distribution's parameters:
``nbops.poisson_nll_loss`` (with its backward and ``_with_grad``).

Signatures, defaults and semantics are those of ``torch.nn.functional`` 2.13. The
per-element math lives in the scalar cores of :mod:`nbops.scalar.losses`; the
drivers are the pointwise losses' (nbops/_ops/losses.py on the CPU and inside
``@njit``, nbops/cuda/_ops.py on CUDA device arrays): one fused pass computes the
losses and their sum (and the gradient, for ``_with_grad``), with the same
deterministic reduction.

``poisson_nll_loss``'s two flags choose one of four loss cores (``log_input``:
the input is the log of the rate or the rate itself; ``full``: Stirling's term
added), and one of two derivative cores (Stirling's term does not depend on
the input).
"""

from collections import namedtuple

import numpy as np
from numba.extending import overload

from .._validate import is_device_array
from ..cuda import ops as _cuda
from ..scalar import losses as S
from . import njit_args as NJ
from .elementwise import Op
from .losses import (
    _nj_loss,
    _nj_regression_grad,
    _regression,
    _regression_backward,
    _regression_with_grad,
)

__all__ = ["poisson_nll_loss", "poisson_nll_loss_backward", "poisson_nll_loss_with_grad"]

#: One variant of a loss: its Ops (CPU and @njit) and its cores (CUDA), as the
#: pointwise-loss drivers take them.
_Variant = namedtuple("_Variant", "op gop core backward")


def _variant(name, core, backward):
    return _Variant(Op(f"loss.{name}", core, 1), Op(f"loss.{name}_backward", backward, 1),
                    core, backward)


#: (log_input, full) -> the variant of poisson_nll_loss
_POISSON = {
    (True, False): _variant("poisson_nll_loss_log_input", S.poisson_nll_loss_log_input,
                            S.poisson_nll_loss_log_input_backward),
    (True, True): _variant("poisson_nll_loss_log_input_full",
                           S.poisson_nll_loss_log_input_full,
                           S.poisson_nll_loss_log_input_backward),
    (False, False): _variant("poisson_nll_loss_rate", S.poisson_nll_loss_rate,
                             S.poisson_nll_loss_rate_backward),
    (False, True): _variant("poisson_nll_loss_rate_full", S.poisson_nll_loss_rate_full,
                            S.poisson_nll_loss_rate_backward),
}


def _is_device(input):
    return type(input) is not np.ndarray and is_device_array(input)


def _poisson(log_input, full, eps):
    return _POISSON[bool(log_input), bool(full)], (float(eps),)


_POISSON_DOC_PARAMS = """input : array_like
    The expectation of the Poisson distribution: its log with
    ``log_input=True`` (the default), the rate itself otherwise.
target : array_like
    The observed counts, a shape that broadcasts with ``input``'s (a
    ``UserWarning`` when the shapes differ).
log_input : bool, default True
    :math:`\\ell = e^x - y x` if True, :math:`\\ell = x - y \\log(x + \\epsilon)`
    otherwise.
full : bool, default False
    Add Stirling's approximation of :math:`\\log(y!)`,
    :math:`y \\log y - y + \\tfrac12 \\log(2 \\pi y)`, for targets above 1 (0 for
    the others).
size_average : bool, optional
    Deprecated (``DeprecationWarning``); with ``reduce``, overrides
    ``reduction`` as in PyTorch.
eps : float, default 1e-8
    Added to the rate before its log (``log_input=False`` only).
reduce : bool, optional
    Deprecated, see ``size_average``.
reduction : {'mean', 'sum', 'none'}, default 'mean'
    ``'none'``: the array of losses; ``'sum'``: their sum; ``'mean'``: the sum
    divided by the number of elements."""


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
                     reduce=None, reduction="mean"):
    if _is_device(input):
        v, params = _poisson(log_input, full, eps)
        return _cuda().pointwise_loss(v, params, input, target, size_average, reduce,
                                      reduction, None)
    v, params = _poisson(log_input, full, eps)
    return _regression(v.op, params, input, target, size_average, reduce, reduction, None)


poisson_nll_loss.__doc__ = f"""Poisson negative log-likelihood loss.

.. math::
    \\ell_i = e^{{x_i}} - y_i x_i \\quad (\\text{{log_input}}), \\qquad
    \\ell_i = x_i - y_i \\log(x_i + \\epsilon) \\quad (\\text{{otherwise}})

plus Stirling's term with ``full=True``.

Parameters
----------
{_POISSON_DOC_PARAMS}

Returns
-------
ndarray or NumPy scalar
    ``reduction='none'``: the elementwise losses (the broadcast shape);
    otherwise a NumPy scalar of the computation dtype (float32 stays float32).

Notes
-----
Same as ``torch.nn.functional.poisson_nll_loss``, with its argument order
(``eps`` between the deprecated flags) and its formulas: Stirling's term is
masked where the target is at most 1 (a NaN target gives NaN).

Examples
--------
>>> import numpy as np, nbops
>>> x, y = np.array([0.0, 0.5, 1.0]), np.array([1.0, 2.0, 3.0])
>>> nbops.poisson_nll_loss(x, y, reduction="none")
array([ 1.        ,  0.64872127, -0.28171817])
>>> nbops.poisson_nll_loss(x, y, full=True, reduction="none")
array([1.        , 1.30052776, 1.48236337])
"""


def poisson_nll_loss_backward(grad_output, input, target, log_input=True, full=False,
                              size_average=None, eps=1e-8, reduce=None, reduction="mean", *,
                              out=None):
    """Backward of :func:`nbops.poisson_nll_loss`: the gradient of its input, given
    ``grad_output`` and the forward's arguments.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar (or 0-d array) for
        ``'mean'``/``'sum'``, a float array of the unreduced loss's (broadcast)
        shape for ``'none'``.
    input, target, log_input, full, size_average, eps, reduce, reduction
        The forward's arguments.
    out : ndarray, optional
        Array of ``input``'s shape and the result dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        The gradient of ``input`` (its shape; float32 stays float32).

    Notes
    -----
    Element by element, with ``g`` the gradient of the element's loss:
    :math:`g e^x - g y` with ``log_input``, else :math:`g - g y / (x + \\epsilon)`
    (Stirling's term does not depend on the input), as ``torch.autograd``
    computes for ``torch.nn.functional.poisson_nll_loss``.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.poisson_nll_loss_backward(1.0, np.zeros(2), np.array([1.0, 3.0]),
    ...                                 reduction="sum")
    array([ 0., -2.])
    """
    v, params = _poisson(log_input, full, eps)
    if _is_device(input):
        return _cuda().pointwise_loss_backward(v, params, grad_output, input, target,
                                               size_average, reduce, reduction, None, out=out)
    return _regression_backward(v.op, v.gop, params, grad_output, input, target, size_average,
                                reduce, reduction, None, out=out)


def poisson_nll_loss_with_grad(input, target, log_input=True, full=False, size_average=None,
                               eps=1e-8, reduce=None, reduction="mean"):
    """The value of :func:`nbops.poisson_nll_loss` and the gradient of its input, from
    one pass over ``input`` and ``target``.

    Parameters
    ----------
    input, target, log_input, full, size_average, eps, reduce, reduction
        As :func:`nbops.poisson_nll_loss`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly what the forward returns for these arguments.
    grad_input : ndarray
        The gradient of ``loss`` with respect to ``input`` (as the backward with
        ``grad_output=1.0``; for ``reduction='none'``, the gradient of the sum of
        the losses).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> loss, grad = nbops.poisson_nll_loss_with_grad(np.zeros(2), np.array([1.0, 3.0]))
    >>> float(loss), grad
    (1.0, array([ 0., -1.]))
    """
    v, params = _poisson(log_input, full, eps)
    if _is_device(input):
        return _cuda().pointwise_loss_with_grad(v, params, input, target, size_average,
                                                reduce, reduction, None)
    return _regression_with_grad(v.op, v.gop, params, input, target, size_average, reduce,
                                 reduction, None)


# ------------------------------------------------------------------ @njit
def _nj_poisson(log_input, full):
    """The variant for ``log_input`` and ``full``, constants inside @njit."""
    return _POISSON[bool(NJ.literal(log_input, "log_input")), bool(NJ.literal(full, "full"))]


@overload(poisson_nll_loss, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _poisson_nll_loss_njit(input, target, log_input=True, full=False, size_average=None,
                           eps=1e-8, reduce=None, reduction="mean"):
    v = _nj_poisson(log_input, full)
    body = _nj_loss(v.op, input, target, size_average, reduce, reduction, None)

    def impl(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
             reduce=None, reduction="mean"):
        return body(input, target, None, (eps,))

    return impl


@overload(poisson_nll_loss_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _poisson_nll_loss_backward_njit(grad_output, input, target, log_input=True, full=False,
                                    size_average=None, eps=1e-8, reduce=None,
                                    reduction="mean", out=None):
    v = _nj_poisson(log_input, full)
    body = _nj_regression_grad(v.op, v.gop, input, target, size_average, reduce, reduction,
                               None)[0]

    def impl(grad_output, input, target, log_input=True, full=False, size_average=None,
             eps=1e-8, reduce=None, reduction="mean", out=None):
        return body(grad_output, input, target, None, None, (eps,), out)

    return impl


@overload(poisson_nll_loss_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _poisson_nll_loss_with_grad_njit(input, target, log_input=True, full=False,
                                     size_average=None, eps=1e-8, reduce=None,
                                     reduction="mean"):
    v = _nj_poisson(log_input, full)
    body = _nj_regression_grad(v.op, v.gop, input, target, size_average, reduce, reduction,
                               None)[1]

    def impl(input, target, log_input=True, full=False, size_average=None, eps=1e-8,
             reduce=None, reduction="mean"):
        return body(input, target, None, None, (eps,))

    return impl
