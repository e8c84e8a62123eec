"""Multi-label losses over the last (class) axis: ``nbops.multilabel_soft_margin_loss``
(with its backward and ``_with_grad``).

Signatures, defaults and semantics are those of ``torch.nn.functional`` 2.13:
the elementwise logistic loss
:math:`-(y \\log \\sigma(x) + (1 - y) \\log \\sigma(-x))`, times ``weight``, averaged
over the classes (the last axis), then reduced over the samples.

One kernel runs the rows (samples) in parallel: each row's losses are summed in
float64 (the vectorized sum of nbops/_ops/losses.py, ``_block_sum``) and divided by
the number of classes, and (``_with_grad``,
backward) the row's gradient :math:`g\\,w\\,(\\sigma(x) - y) / C` written in the same
pass. The 'mean'/'sum' over the rows is a float64 sum in row order, so results are
bit-identical for any thread count. The log-sigmoid is
:func:`nbops.scalar.logsigmoid`, the sigmoid :func:`nbops.scalar.sigmoid`. Inside
``@njit`` the same names run the same row kernel (a weight there: ``(C,)`` or
the input's shape). On CUDA device arrays (C-contiguous, one float dtype, the
target of the input's shape, a weight of shape ``(C,)`` or the input's) the row
kernel of nbops/cuda/_multilabel.py runs, one thread per row.
"""

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable
from numba.np.numpy_support import as_dtype

from .. import _config, _memory
from .._launch import launch
from .._validate import as_array, check_out, dask_ops, direct_out, is_dask_array, is_device_array
from ..scalar import activations as A
from ..scalar._math import const
from . import losses as _L
from . import njit_args as NJ
from .plan import reduction_plan

__all__ = ["multilabel_soft_margin_loss", "multilabel_soft_margin_loss_backward",
           "multilabel_soft_margin_loss_with_grad"]


#: rows per task of the row kernel (each task allocates one row buffer)
_ROW_BLOCK = 16


def _rows(x, t, w, g, c, row_loss, grad, want_grad):
    """Row r of (R, C) ``x``, ``t``: its mean weighted loss into ``row_loss[r]`` and,
    with ``want_grad``, its gradient (``g[r]`` times ``c``) into ``grad``. ``w`` has
    one row (shared by every row) or R, ``g`` one element or R (all C-contiguous,
    so that the loops over a row read unit strides and vectorize).

    A row's losses are computed by one flat loop into a row buffer (vectorized)
    and summed in float64 by ``losses._block_sum`` (the vectorized sum of the
    pointwise losses: one compiled sum, so the forward and ``_with_grad`` share
    its bits); the gradient is a second flat loop."""
    n_rows, n_cls = x.shape
    w_rows = w.shape[0] > 1
    g_rows = g.size > 1
    for blk in prange((n_rows + _ROW_BLOCK - 1) // _ROW_BLOCK):
        buf = np.empty(n_cls, x.dtype)
        for r in range(blk * _ROW_BLOCK, min(n_rows, (blk + 1) * _ROW_BLOCK)):
            xr = x[r]
            tr = t[r]
            wr = w[r if w_rows else 0]
            for k in range(n_cls):
                xi = xr[k]
                ti = tr[k]
                one = const(xi, 1.0)
                buf[k] = -(ti * A.logsigmoid(xi) + (one - ti) * A.logsigmoid(-xi)) * wr[k]
            row_loss[r] = _L._block_sum(buf, n_cls) / n_cls
            if want_grad:
                gr = c * g[r if g_rows else 0]
                gd = grad[r]
                for k in range(n_cls):
                    gd[k] = (gr * wr[k]) * (A.sigmoid(xr[k]) - tr[k]) / n_cls


_rows_serial, _rows_parallel = _config.kernels(_rows)


def _grad_rows(x, t, w, g, c, grad):
    """The gradient of :func:`_rows` alone (the backward: no loss to compute),
    the same expression, so the same bits."""
    n_rows, n_cls = x.shape
    for r in prange(n_rows):
        gr = c * g[r]
        for k in range(n_cls):
            xi = x[r, k]
            grad[r, k] = (gr * w[r, k]) * (A.sigmoid(xi) - t[r, k]) / n_cls


_grad_rows_serial, _grad_rows_parallel = _config.kernels(_grad_rows)


def _plan(input, target, weight, size_average, reduce, reduction):
    """Checked (R, C) arrays: x, t, w (rows 1 or R), the loss's shape, dtypes, mode."""
    x = input if type(input) is np.ndarray else as_array(input, "input")
    t = target if type(target) is np.ndarray else as_array(target, "target")
    w = None if weight is None else (weight if type(weight) is np.ndarray
                                     else as_array(weight, "weight"))
    if size_average is not None or reduce is not None:
        mode = reduction_plan(reduction, size_average, reduce, stacklevel=4).mode
    elif reduction in ("none", "mean", "sum"):
        mode = reduction
    else:
        raise ValueError(f"{reduction} is not valid")
    if x.ndim == 0:
        raise ValueError("multilabel_soft_margin_loss: input must have a class axis (its "
                         "last), got a 0-d input")
    x, t, compute, result = _L._arrays(x, t, (() if w is None else (("weight", w),)))
    for a, name in ((t, "target"), (w, "weight")):
        if a is not None and a.shape != x.shape:
            try:
                ok = np.broadcast_shapes(a.shape, x.shape) == x.shape
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"{name} of shape {a.shape} does not broadcast to the input's "
                                 f"shape {x.shape}")
    n_cls = x.shape[-1]
    x2 = np.ascontiguousarray(x, compute).reshape(-1, n_cls)
    t2 = np.ascontiguousarray(np.broadcast_to(t, x.shape), compute).reshape(-1, n_cls)
    if w is None:
        w2 = np.ones((1, n_cls), compute)
    elif w.ndim == 0 or w.shape[-1:] == (n_cls,) and w.size == n_cls:
        # one weight per class, the same for every row: (C,), (1, C), (1, 1, C)...
        w2 = np.ascontiguousarray(np.broadcast_to(w.reshape(-1), (n_cls,)),
                                  compute).reshape(1, n_cls)
    else:
        w2 = np.ascontiguousarray(np.broadcast_to(w, x.shape), compute).reshape(-1, n_cls)
    return x2, t2, w2, x.shape, compute, result, mode


def _device_mode(input, target, weight, size_average, reduce, reduction):
    """The reduction mode when the arguments are CUDA device arrays, else None."""
    devices = [type(a) is not np.ndarray and is_device_array(a)
               for a in (input, target, weight) if a is not None]
    if not any(devices):
        return None
    if not all(devices):
        raise ValueError("multilabel_soft_margin_loss: input, target and weight must all be "
                         "CUDA device arrays or all host arrays")
    if size_average is not None or reduce is not None:
        return reduction_plan(reduction, size_average, reduce, stacklevel=5).mode
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"{reduction} is not valid")
    return reduction


def _device():
    from ..cuda import _multilabel
    return _multilabel


def _run_grad(plan, g_rows_array, c, out):
    """The backward's gradient alone (:func:`_grad_rows`), into ``out`` where it
    can be written there directly (the compute dtype, C-contiguous, apart from
    the arguments: the second value is then True), else into a new array."""
    x2, t2, w2, shape, compute, result, mode = plan
    rows = x2.shape[0]
    g = np.ones(1, compute) if g_rows_array is None else \
        np.ascontiguousarray(g_rows_array, compute).reshape(-1)
    if (out is not None and direct_out(out, shape, compute)
            and not any(np.may_share_memory(out, a) for a in (x2, t2, w2, g))):
        grad, direct = out.reshape(x2.shape), True
    else:
        grad, direct = _memory.empty(x2.shape, compute), False
    w_rows = np.broadcast_to(w2, x2.shape)  # zero strides where one row is shared
    g_rows = np.broadcast_to(g, (rows,))
    if grad.size:
        key = (compute.char, w2.shape[0] > 1, g.size > 1, w_rows.flags.c_contiguous,
               g_rows.flags.c_contiguous)
        launch(_grad_rows_serial, _grad_rows_parallel, key, x2.size, x2, t2, w_rows, g_rows,
               compute.type(c), grad)
    return grad.reshape(shape), direct


def _run(plan, g_rows_array, c, want_grad):
    x2, t2, w2, shape, compute, result, mode = plan
    rows = x2.shape[0]
    row_loss = _memory.empty(rows, compute)
    grad = _memory.empty(x2.shape if want_grad else (0, 0), compute)
    g = np.ones(1, compute) if g_rows_array is None else \
        np.ascontiguousarray(g_rows_array, compute).reshape(-1)
    if rows and x2.shape[1]:
        key = (compute.char, want_grad)
        launch(_rows_serial, _rows_parallel, key, x2.size, x2, t2, w2, g,
               compute.type(c), row_loss, grad, want_grad)
    elif rows:  # no classes: 0 / 0, as PyTorch
        row_loss[:] = np.nan
    return row_loss.reshape(shape[:-1]), grad.reshape(shape) if want_grad else None


def _reduced(row_loss, mode, result):
    if mode == "none":
        return row_loss.astype(result, copy=False)
    total = float(np.add.reduce(row_loss.reshape(-1).astype(np.float64)))
    return _L._reduce(total, row_loss.size, mode, result)


def multilabel_soft_margin_loss(input, target, weight=None, size_average=None, reduce=None,
                                reduction="mean"):
    r"""Multi-label one-versus-all logistic loss, averaged over the classes.

    .. math::
        \ell_n = -\frac1C \sum_c w_c \left(y_{nc} \log \sigma(x_{nc})
                 + (1 - y_{nc}) \log \sigma(-x_{nc})\right)

    Parameters
    ----------
    input : array_like
        Logits, the classes along the last axis: ``(C,)``, ``(N, C)``, ...
    target : array_like
        0/1 labels (or probabilities) broadcasting to ``input``'s shape.
    weight : array_like, optional
        Rescaling weights broadcasting to ``input``'s shape (usually ``(C,)``).
    size_average, reduce : bool, optional
        Deprecated (``DeprecationWarning``); when given they override
        ``reduction`` as in PyTorch.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'``: the per-sample losses (``input``'s shape without its last
        axis); ``'sum'``: their sum; ``'mean'``: their mean.

    Returns
    -------
    ndarray or NumPy scalar
        ``reduction='none'``: the per-sample losses; otherwise a NumPy scalar of
        the computation dtype (float32 stays float32).

    Notes
    -----
    Same as ``torch.nn.functional.multilabel_soft_margin_loss`` (its formula,
    with a stable log-sigmoid; ``'<reduction> is not valid'`` for a bad
    reduction).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[0.0, 2.0], [-1.0, 1.0]])
    >>> y = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> nbops.multilabel_soft_margin_loss(x, y, reduction="none")
    array([1.4100376 , 0.31326169])
    """
    if type(input) is not np.ndarray and is_dask_array(input):  # nbops/_dask.py
        return dask_ops().multilabel_soft_margin_loss(input, target, weight, size_average,
                                                      reduce, reduction)
    mode = _device_mode(input, target, weight, size_average, reduce, reduction)
    if mode is not None:
        return _device().run(input, target, weight, mode, None, 1.0, False)[0]
    plan = _plan(input, target, weight, size_average, reduce, reduction)
    row_loss, _ = _run(plan, None, 1.0, False)
    return _reduced(row_loss, plan[6], plan[5])


def _grad_args(grad_output, plan):
    """The per-row gradient array (or None) and the scalar factor of the rows'."""
    shape, mode = plan[3], plan[6]
    rows_shape = shape[:-1]
    g = _L._grad_output(grad_output, mode, rows_shape)
    if mode == "none":
        return g, 1.0
    n = int(np.prod(rows_shape))
    return None, (g / n if n else g * np.nan) if mode == "mean" else g


def multilabel_soft_margin_loss_backward(grad_output, input, target, weight=None,
                                         size_average=None, reduce=None, reduction="mean", *,
                                         out=None):
    r"""Backward of :func:`nbops.multilabel_soft_margin_loss`: the gradient of its input.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for ``'mean'``/``'sum'``,
        a float array of the per-sample losses' shape for ``'none'``.
    input, target, weight, size_average, reduce, reduction
        The forward's arguments.
    out : ndarray, optional
        Array of ``input``'s shape and the result dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        The gradient of ``input`` (its shape; float32 stays float32).

    Notes
    -----
    :math:`g_n\,w_c\,(\sigma(x_{nc}) - y_{nc}) / C`, with :math:`g_n` the gradient
    of sample :math:`n`'s loss, as ``torch.autograd`` computes.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.multilabel_soft_margin_loss_backward(1.0, np.zeros((1, 2)),
    ...                                            np.array([[1.0, 0.0]]))
    array([[-0.25,  0.25]])
    """
    if type(input) is not np.ndarray and is_dask_array(input):  # nbops/_dask.py
        return dask_ops().multilabel_soft_margin_loss_backward(
            grad_output, input, target, weight, size_average, reduce, reduction, out=out)
    mode = _device_mode(input, target, weight, size_average, reduce, reduction)
    if mode is not None:
        rows = int(np.prod(tuple(input.shape)[:-1]))
        if mode == "none":
            g, c = grad_output, 1.0
        else:
            c = float(grad_output)
            c = (c / rows if rows else np.nan) if mode == "mean" else c
            g = None
        return _device().run(input, target, weight, mode, g, c, True)[1]
    plan = _plan(input, target, weight, size_average, reduce, reduction)
    g, c = _grad_args(grad_output, plan)
    if out is not None:
        check_out(out, plan[3], plan[5])
    grad, direct = _run_grad(plan, g, c, out)
    grad = grad.astype(plan[5], copy=False)
    if out is None:
        return grad
    if not direct:
        np.copyto(out, grad)
    return out


def multilabel_soft_margin_loss_with_grad(input, target, weight=None, size_average=None,
                                          reduce=None, reduction="mean"):
    """The value of :func:`nbops.multilabel_soft_margin_loss` and the gradient of its
    input, from one pass.

    Parameters
    ----------
    input, target, weight, size_average, reduce, reduction
        As :func:`nbops.multilabel_soft_margin_loss`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly what the forward returns for these arguments.
    grad_input : ndarray
        As the backward with ``grad_output=1.0`` (for ``reduction='none'``, the
        gradient of the sum of the per-sample losses).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> loss, grad = nbops.multilabel_soft_margin_loss_with_grad(np.zeros((1, 2)),
    ...                                                          np.array([[1.0, 0.0]]))
    >>> grad
    array([[-0.25,  0.25]])
    """
    if type(input) is not np.ndarray and is_dask_array(input):  # nbops/_dask.py
        return dask_ops().multilabel_soft_margin_loss_with_grad(input, target, weight,
                                                                size_average, reduce, reduction)
    mode = _device_mode(input, target, weight, size_average, reduce, reduction)
    if mode is not None:
        rows = int(np.prod(tuple(input.shape)[:-1]))
        c = 1.0 if mode != "mean" else (1.0 / rows if rows else np.nan)
        return _device().run(input, target, weight, mode, None, c, True)
    plan = _plan(input, target, weight, size_average, reduce, reduction)
    if plan[6] == "none":
        row_loss, grad = _run(plan, None, 1.0, True)
    else:
        row_loss, grad = _run(plan, None, *_grad_args(1.0, plan)[1:], True)
    return _reduced(row_loss, plan[6], plan[5]), grad.astype(plan[5], copy=False)


# ------------------------------------------------------------------ @njit
def _nj_setup(input, target, weight, size_average, reduce, reduction):
    """(mode, compute dtype, weighted) of the literal arguments' types."""
    mode = NJ.reduction_plan(size_average, reduce, reduction).mode
    arrays = [a for a in (input, target, weight) if not NJ.is_none(a)]
    if not all(isinstance(a, types.Array) for a in arrays) or input.ndim == 0:
        raise errors.TypingError("nbops: multilabel_soft_margin_loss inside @njit takes "
                                 "arrays, the classes along the input's last axis")
    dtype = np.result_type(*(as_dtype(a.dtype) for a in arrays))
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    return mode, dtype.type, not NJ.is_none(weight)


def _nj_body(dt, weighted, want_grad):
    """body(input, target, weight, g, c) -> (row losses, (R, C) gradient) on the row
    kernel (``g``: the per-row gradients, or empty for all ones)."""
    kernel = _rows_serial

    def body(input, target, weight, g, c):
        n_cls = input.shape[-1]
        x2 = np.ascontiguousarray(input).astype(dt).reshape((-1, n_cls))
        t2 = np.ascontiguousarray(target).astype(dt).reshape((-1, n_cls))
        if t2.shape != x2.shape:
            raise ValueError("nbops: multilabel_soft_margin_loss: inside @njit the target "
                             "must have the input's shape")
        rows = x2.shape[0]
        if weighted:
            w = np.ascontiguousarray(weight).astype(dt)
            if w.size == n_cls:
                w2 = w.reshape((1, n_cls))
            elif w.size == x2.size:
                w2 = w.reshape((rows, n_cls))
            else:
                raise ValueError("nbops: multilabel_soft_margin_loss: inside @njit the weight "
                                 "must have shape (C,) or the input's")
        else:
            w2 = np.ones((1, n_cls), dt)
        row_loss = np.empty(rows, dt)
        grad = np.empty((rows, n_cls) if want_grad else (0, 0), dt)
        gr = g.astype(dt) if g.size == rows else np.ones(1, dt)
        if rows and n_cls:
            kernel(x2, t2, w2, gr, dt(c), row_loss, grad, want_grad)
        else:
            row_loss[:] = np.nan
        return row_loss, grad

    return register_jitable(body)


@register_jitable
def _nj_total(row_loss):
    """The float64 sum of the row losses in row order."""
    s = 0.0
    for r in range(row_loss.size):
        s += row_loss[r]
    return s


def _nj_value(mode, dt):
    """value(row_loss, shape) -> the forward's result for ``mode``."""
    def none(row_loss, shape):
        return row_loss.reshape(shape[:-1])

    def total(row_loss, shape):
        s = _nj_total(row_loss)
        if mode == "mean":
            s = s / row_loss.size if row_loss.size else np.nan
        return dt(s)

    return register_jitable(none if mode == "none" else total)


@overload(multilabel_soft_margin_loss, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _mlsm_njit(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
    mode, dt, weighted = _nj_setup(input, target, weight, size_average, reduce, reduction)
    body, value = _nj_body(dt, weighted, False), _nj_value(mode, dt)

    def impl(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
        return value(body(input, target, weight, np.ones(0), 1.0)[0], input.shape)

    return impl


@overload(multilabel_soft_margin_loss_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _mlsm_backward_njit(grad_output, input, target, weight=None, size_average=None,
                        reduce=None, reduction="mean", out=None):
    mode, dt, weighted = _nj_setup(input, target, weight, size_average, reduce, reduction)
    body = _nj_body(dt, weighted, True)
    factor = NJ.loss_grad_factor(mode, "multilabel_soft_margin_loss_backward")
    if not NJ.is_none(out):
        raise errors.TypingError("nbops: multilabel_soft_margin_loss_backward: out= is not "
                                 "supported inside @njit")

    def impl(grad_output, input, target, weight=None, size_average=None, reduce=None,
             reduction="mean", out=None):
        rows = input.size // input.shape[-1] if input.shape[-1] else 0
        g, c = factor(grad_output, rows)
        return body(input, target, weight, g, c)[1].reshape(input.shape)

    return impl


@overload(multilabel_soft_margin_loss_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _mlsm_with_grad_njit(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    mode, dt, weighted = _nj_setup(input, target, weight, size_average, reduce, reduction)
    body, value = _nj_body(dt, weighted, True), _nj_value(mode, dt)
    factor = NJ.loss_grad_factor(mode, "multilabel_soft_margin_loss_with_grad")

    def impl(input, target, weight=None, size_average=None, reduce=None, reduction="mean"):
        rows = input.size // input.shape[-1] if input.shape[-1] else 0
        c = 1.0 if mode == "none" else factor(1.0, rows)[1]
        row_loss, grad = body(input, target, weight, np.ones(0), c)
        return value(row_loss, input.shape), grad.reshape(input.shape)

    return impl
