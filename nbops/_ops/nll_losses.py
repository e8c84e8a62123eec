"""Negative log-likelihood losses of a distribution's parameters:
``nbops.poisson_nll_loss`` and ``nbops.gaussian_nll_loss`` (with their backward
and ``_with_grad``).

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

``gaussian_nll_loss`` checks ``var`` as PyTorch does (no negative entry; its
shape is the input's, or the input's without the last axis (homoscedastic: one
variance per row, unsqueezed), or the input's with exactly one axis of size 1),
clamps a copy of it to ``eps`` and runs the pointwise losses' kernels with the
clamped variance as their third, broadcast operand. Its backward returns the
gradients of ``input`` and ``var`` (``var``'s summed over the axes along which it
was broadcast; None for a float ``var``), the variance's passing through the
clamp as in PyTorch (which clamps without gradient). Inside ``@njit`` the same
names run the pointwise losses' ``@njit`` bodies with the same checks (``full``
and ``reduction`` constants). On CUDA device arrays (C-contiguous, input and
target of one shape and float dtype) the kernels of nbops/cuda/_gaussian.py run
it after the same checks (the negative-entry check reads ``var`` back, as
PyTorch's ``torch.any`` synchronizes).
"""

import math
from collections import namedtuple

import numpy as np
from numba import types
from numba.core import errors
from numba.extending import overload, register_jitable
from numba.np.numpy_support import as_dtype

from .._validate import as_array, dask_ops, is_dask_array, is_device_array
from ..cuda import ops as _cuda
from ..scalar import losses as S
from . import losses as _L
from . import njit_args as NJ
from .elementwise import Op
from .losses import (
    _nj_loss,
    _nj_regression_grad,
    _regression,
    _regression_backward,
    _regression_with_grad,
)

__all__ = ["poisson_nll_loss", "poisson_nll_loss_backward", "poisson_nll_loss_with_grad",
           "gaussian_nll_loss", "gaussian_nll_loss_backward", "gaussian_nll_loss_with_grad"]

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


# ================================================================= gaussian_nll_loss
_GAUSS = Op("loss.gaussian_nll_loss", S.gaussian_nll_loss, 0)
_GAUSS_FULL = Op("loss.gaussian_nll_loss_full", S.gaussian_nll_loss_full, 0)
_GAUSS_GRAD = Op("loss.gaussian_nll_loss_backward", S.gaussian_nll_loss_backward, 0)
_GAUSS_VAR_GRAD = Op("loss.gaussian_nll_loss_var_backward", S.gaussian_nll_loss_var_backward, 0)
_L._AUX_OPS.update(op.name for op in (_GAUSS, _GAUSS_FULL, _GAUSS_GRAD, _GAUSS_VAR_GRAD))

_GaussPlan = namedtuple("_GaussPlan", "x t var_clamped var_shape shape compute result mode")


def _gaussian_plan(input, target, var, full, eps, reduction):
    """PyTorch's checks of ``gaussian_nll_loss``'s arguments, in its order, and the
    arrays to run: the clamped variance broadcastable to the loss's shape."""
    x = input if type(input) is np.ndarray else as_array(input, "input")
    t = target if type(target) is np.ndarray else as_array(target, "target")
    if isinstance(var, (float, int)) and not isinstance(var, bool):
        if var < 0:
            raise ValueError("var has negative entry/entries")
        v, var_shape, lowest = np.asarray(float(var)), None, None
    else:
        v = var if type(var) is np.ndarray else as_array(var, "var")
        # the smallest non-NaN entry (NaN only where every entry is NaN): one pass
        lowest = np.fmin.reduce(v, axis=None) if v.size else None
        if lowest is not None and lowest < 0:
            raise ValueError("var has negative entry/entries")
        var_shape = v.shape
        if v.shape != x.shape:
            if x.shape[:-1] == v.shape:  # homoscedastic: one variance per row
                v = v[..., None]
            elif not (x.ndim == v.ndim
                      and sum(b for a, b in zip(x.shape, v.shape, strict=True) if a != b) == 1):
                raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not valid")
    x, t, compute, result = _L._arrays(x, t, (("var", v),) if var_shape is not None else ())
    try:
        shape = np.broadcast_shapes(x.shape, t.shape, v.shape)
    except ValueError:
        raise ValueError(f"input of shape {x.shape}, target of shape {t.shape} and var of "
                         f"shape {v.shape} do not broadcast together") from None
    floor = compute.type(eps)
    if v.dtype == compute and lowest is not None and lowest >= floor:
        vc = v  # nothing below eps: the clamp would copy v unchanged (NaN stays NaN)
    else:
        with np.errstate(invalid="ignore"):
            vc = np.maximum(v.astype(compute), floor)  # NaN stays NaN, as clamp_
    return _GaussPlan(x, t, vc, var_shape, shape, compute, result, reduction)


def _gaussian_device(input, target, var, full, eps, reduction, grad_output, want_grad):
    """The CUDA path: None when the arguments are host arrays, else
    ``(loss, grad_input, grad_var)`` (the gradients None without ``want_grad``)."""
    number = isinstance(var, (float, int)) and not isinstance(var, bool)
    devices = [_is_device(a) for a in (input, target) + (() if number else (var,))]
    if not any(devices):
        return None
    if not all(devices):
        raise ValueError("gaussian_nll_loss: input, target and var must all be CUDA device "
                         "arrays or all host arrays")
    from ..cuda import _gaussian as G

    xs = tuple(input.shape)
    if number:
        if var < 0:
            raise ValueError("var has negative entry/entries")
        v, var_shape = float(var), None
    else:
        if np.any(var.copy_to_host() < 0):
            raise ValueError("var has negative entry/entries")
        vs = var_shape = tuple(var.shape)
        v = var
        if vs != xs:
            if xs[:-1] == vs:
                v, vs = var.reshape(vs + (1,)), vs + (1,)
            elif not (len(xs) == len(vs)
                      and sum(b for a, b in zip(xs, vs, strict=True) if a != b) == 1):
                raise ValueError("var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not valid")
    n = int(np.prod(xs))
    g, c = None, 1.0
    if want_grad:
        if reduction == "none":
            g = grad_output
        else:
            c = float(grad_output)
            if reduction == "mean":
                c = c / n if n else np.nan
    loss, gx, gv = G.run(input, target, v, None if var_shape is None else tuple(v.shape),
                         full, eps, reduction, g, c, want_grad)
    if gv is not None:
        gv = gv.reshape(var_shape)
    return loss, gx, gv


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    if type(input) is not np.ndarray and is_dask_array(input):  # nbops/_dask.py
        return dask_ops().gaussian_nll_loss(input, target, var, full, eps, reduction)
    dev = _gaussian_device(input, target, var, full, eps, reduction, None, False)
    if dev is not None:
        return dev[0]
    plan = _gaussian_plan(input, target, var, full, eps, reduction)
    op = _GAUSS_FULL if full else _GAUSS
    res = _L._run(op, (), plan.x, plan.t, plan.shape, plan.compute, plan.result, plan.mode,
                  aux=plan.var_clamped)
    if plan.mode == "none":
        return res
    return _L._reduce(res, math.prod(plan.shape), plan.mode, plan.result)


gaussian_nll_loss.__doc__ = """Gaussian negative log-likelihood loss.

.. math::
    \\ell_i = \\tfrac12 \\left(\\log \\max(v_i, \\epsilon)
              + \\frac{(x_i - y_i)^2}{\\max(v_i, \\epsilon)}\\right)
              \\; \\left(+ \\tfrac12 \\log 2\\pi \\text{ with full}\\right)

Parameters
----------
input : array_like
    The expectations (means) of the Gaussians.
target : array_like
    Samples of them; a shape that broadcasts with ``input``'s.
var : array_like or float
    The variances: ``input``'s shape, or ``input``'s shape without its last
    axis or with one axis of size 1 (one variance shared along it), or a
    float. No entry may be negative (``ValueError``).
full : bool, default False
    Add the constant :math:`\\tfrac12 \\log 2\\pi`.
eps : float, default 1e-6
    The variances are clamped to at least ``eps`` (for stability).
reduction : {'mean', 'sum', 'none'}, default 'mean'
    ``'none'``: the array of losses; ``'sum'``: their sum; ``'mean'``: the sum
    divided by the number of elements.

Returns
-------
ndarray or NumPy scalar
    ``reduction='none'``: the elementwise losses (the broadcast shape);
    otherwise a NumPy scalar of the computation dtype (float32 stays float32).

Notes
-----
Same as ``torch.nn.functional.gaussian_nll_loss`` (no deprecated
``size_average``/``reduce`` flags there): its checks of ``var`` and
``reduction`` with its messages, its clamp of a copy of ``var`` (NaN stays
NaN) and its formula.

Examples
--------
>>> import numpy as np, nbops
>>> x, y = np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 0.0])
>>> nbops.gaussian_nll_loss(x, y, np.array([1.0, 2.0, 4.0]), reduction="none")
array([0.125     , 0.34657359, 1.19314718])
"""


def _gaussian_grads(plan, full, grad_output, want):
    """(grad_input, grad_var, loss sum) for ``plan`` (``grad_output`` checked here)."""
    n = math.prod(plan.shape)
    g = _L._grad_output(grad_output, plan.mode, plan.shape)
    if plan.mode == "none":
        c = 1.0
    else:
        c, g = (g / n if n else g * np.nan) if plan.mode == "mean" else g, None
    op = _GAUSS_FULL if full else _GAUSS
    if plan.var_shape is None:
        grad_x, total = _L._grad_pass(op, _GAUSS_GRAD, (), plan.x, plan.t, plan.shape,
                                      plan.compute, plan.result, g, c, aux=plan.var_clamped,
                                      want=want)
        return grad_x, None, total
    # both gradients from one pass (one kernel to compile); gv of plan.shape
    grad_x, total, gv = _L._grad_pass(op, _GAUSS_GRAD, (), plan.x, plan.t, plan.shape,
                                      plan.compute, plan.result, g, c, aux=plan.var_clamped,
                                      want=want, gop2=_GAUSS_VAR_GRAD)
    if gv.shape != plan.var_clamped.shape:
        gv = _L._sum_to(gv, plan.var_clamped.shape)
    return grad_x, gv.reshape(plan.var_shape).astype(plan.result, copy=False), total


def gaussian_nll_loss_backward(grad_output, input, target, var, full=False, eps=1e-6,
                               reduction="mean"):
    """Backward of :func:`nbops.gaussian_nll_loss`: the gradients of its input and of
    its variance, given ``grad_output`` and the forward's arguments.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for ``'mean'``/``'sum'``,
        a float array of the unreduced loss's shape for ``'none'``.
    input, target, var, full, eps, reduction
        The forward's arguments.

    Returns
    -------
    grad_input : ndarray
        The gradient of ``input`` (its shape; float32 stays float32).
    grad_var : ndarray or None
        The gradient of ``var`` (its shape, summed over the axes along which it
        was broadcast); None for a float ``var``.

    Notes
    -----
    With :math:`v` the clamped variance and ``g`` the gradient of the element's
    loss: :math:`g (x - y) / v` for the input and
    :math:`\\tfrac{g}{2} (1/v - (x - y)^2 / v^2)` for the variance, where the
    clamp passes the gradient unchanged (PyTorch clamps without gradient), as
    ``torch.autograd`` computes.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> gx, gv = nbops.gaussian_nll_loss_backward(1.0, np.array([1.0, 3.0]), np.zeros(2),
    ...                                           np.array([1.0, 4.0]), reduction="sum")
    >>> gx, gv
    (array([1.  , 0.75]), array([ 0.     , -0.15625]))
    """
    if type(input) is not np.ndarray and is_dask_array(input):  # nbops/_dask.py
        return dask_ops().gaussian_nll_loss_backward(grad_output, input, target, var, full, eps,
                                                     reduction)
    dev = _gaussian_device(input, target, var, full, eps, reduction, grad_output, True)
    if dev is not None:
        return dev[1], dev[2]
    plan = _gaussian_plan(input, target, var, full, eps, reduction)
    grad_x, grad_v, _ = _gaussian_grads(plan, full, grad_output, False)
    return grad_x, grad_v


def _device_ones(input):
    from numba import cuda
    return cuda.to_device(np.ones(tuple(input.shape), np.dtype(input.dtype)))


def gaussian_nll_loss_with_grad(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """The value of :func:`nbops.gaussian_nll_loss` and the gradients of its input and
    variance.

    Parameters
    ----------
    input, target, var, full, eps, reduction
        As :func:`nbops.gaussian_nll_loss`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly what the forward returns for these arguments.
    grads : tuple
        ``(grad_input, grad_var)``, as the backward with ``grad_output=1.0`` (for
        ``reduction='none'``, the gradients of the sum of the losses).

    Notes
    -----
    One pass computes the losses (summed as the forward sums them) and the input's
    gradient, a second the variance's.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> loss, (gx, gv) = nbops.gaussian_nll_loss_with_grad(np.ones(2), np.zeros(2), 1.0)
    >>> float(loss), gx, gv
    (0.5, array([0.5, 0.5]), None)
    """
    if type(input) is not np.ndarray and is_dask_array(input):  # nbops/_dask.py
        return dask_ops().gaussian_nll_loss_with_grad(input, target, var, full, eps, reduction)
    # reduction='none': the gradients of the sum of the losses
    ones = _device_ones(input) if reduction == "none" and _is_device(input) else 1.0
    dev = _gaussian_device(input, target, var, full, eps, reduction, ones, True)
    if dev is not None:
        return dev[0], dev[1:]
    plan = _gaussian_plan(input, target, var, full, eps, reduction)
    if plan.mode == "none":
        loss = gaussian_nll_loss(input, target, var, full, eps, "none")
        grad_x, grad_v, _ = _gaussian_grads(plan, full, np.ones(plan.shape, plan.compute),
                                            False)
        return loss, (grad_x, grad_v)
    grad_x, grad_v, total = _gaussian_grads(plan, full, 1.0, True)
    return _L._reduce(total, math.prod(plan.shape), plan.mode, plan.result), \
        (grad_x, grad_v)


# ------------------------------------------------------------ gaussian_nll_loss, @njit
def _nj_gauss_setup(input, target, var, full, reduction):
    """(mode, loss Op, compute dtype class, clamp) for the literal arguments' types."""
    mode = NJ.reduction_plan(None, None, reduction).mode
    op = _GAUSS_FULL if NJ.literal(full, "full") else _GAUSS
    arrays = [a for a in (input, target, var) if isinstance(a, types.Array)]
    if not (isinstance(input, types.Array) and isinstance(target, types.Array)):
        raise errors.TypingError("nbops: gaussian_nll_loss inside @njit takes arrays")
    dtype = np.result_type(*(as_dtype(a.dtype) for a in arrays))
    dt = (dtype if dtype.kind == "f" else np.dtype(np.float64)).type
    if isinstance(var, types.Number):
        def clamp(input, var, eps):
            if var < 0:
                raise ValueError("var has negative entry/entries")
            v = dt(var)
            return np.full(np.asarray(input).shape, v if v != v or v >= eps else dt(eps), dt)
    elif isinstance(var, types.Array) and var.ndim in (input.ndim, input.ndim - 1):
        short = var.ndim == input.ndim - 1

        def clamp(input, var, eps):
            va = np.asarray(var)
            xs = np.asarray(input).shape
            for v in va.flat:
                if v < 0:
                    raise ValueError("var has negative entry/entries")
            if short:
                if va.shape != xs[:-1]:
                    raise ValueError("var is of incorrect size")
            elif va.shape != xs:
                mismatch = 0
                for k in range(len(xs)):
                    if xs[k] != va.shape[k]:
                        mismatch += va.shape[k]
                if mismatch != 1:
                    raise ValueError("var is of incorrect size")
            vc = np.empty(va.size, dt)
            k = 0
            for v in va.flat:
                vd = dt(v)
                vc[k] = vd if vd != vd or vd >= eps else dt(eps)
                k += 1
            if short:
                return vc.reshape(va.shape + (1,))
            return vc.reshape(va.shape)
    else:
        raise errors.TypingError("nbops: gaussian_nll_loss: var must be a number or an array "
                                 "of the input's number of dimensions (or one less)")
    return mode, op, dt, register_jitable(clamp)


@overload(gaussian_nll_loss, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _gaussian_nll_loss_njit(input, target, var, full=False, eps=1e-6, reduction="mean"):
    mode, op, dt, clamp = _nj_gauss_setup(input, target, var, full, reduction)
    if mode == "none":
        def impl(input, target, var, full=False, eps=1e-6, reduction="mean"):
            return _L._nj_map(op, input, target, None, clamp(input, var, eps), ())
    else:
        mean = mode == "mean"

        def impl(input, target, var, full=False, eps=1e-6, reduction="mean"):
            s, n = _L._nj_sum(op, input, target, None, clamp(input, var, eps), ())
            if mean:
                s = _L._nj_div(s, n)
            return dt(s)

    return impl


def _nj_gauss_bodies(input, target, var, full, reduction):
    mode, op, dt, clamp = _nj_gauss_setup(input, target, var, full, reduction)
    grad_x = _L._nj_regression_grad(op, _GAUSS_GRAD, input, target, None, None, reduction,
                                    None)
    grad_v = _L._nj_regression_grad(op, _GAUSS_VAR_GRAD, input, target, None, None,
                                    reduction, None)
    has_var_grad = isinstance(var, types.Array)

    @register_jitable
    def var_grad(gv, vc, var):
        if has_var_grad:
            return _L._nj_sum_to(gv, vc).reshape(np.asarray(var).shape)
        return None

    return grad_x, grad_v, clamp, var_grad


@overload(gaussian_nll_loss_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _gaussian_nll_loss_backward_njit(grad_output, input, target, var, full=False, eps=1e-6,
                                     reduction="mean"):
    grad_x, grad_v, clamp, var_grad = _nj_gauss_bodies(input, target, var, full, reduction)
    bx, bv = grad_x[0], grad_v[0]

    def impl(grad_output, input, target, var, full=False, eps=1e-6, reduction="mean"):
        vc = clamp(input, var, eps)
        gx = bx(grad_output, input, target, None, vc, (), None)
        gv = bv(grad_output, input, target, None, vc, (), None)
        return gx, var_grad(gv, vc, var)

    return impl


@overload(gaussian_nll_loss_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _gaussian_nll_loss_with_grad_njit(input, target, var, full=False, eps=1e-6,
                                      reduction="mean"):
    grad_x, grad_v, clamp, var_grad = _nj_gauss_bodies(input, target, var, full, reduction)
    wx, wv = grad_x[1], grad_v[1]

    def impl(input, target, var, full=False, eps=1e-6, reduction="mean"):
        vc = clamp(input, var, eps)
        loss, gx = wx(input, target, None, vc, ())
        gv = wv(input, target, None, vc, ())[1]
        return loss, (gx, var_grad(gv, vc, var))

    return impl
