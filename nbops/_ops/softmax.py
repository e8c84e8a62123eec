"""Ops along an axis: ``nbops.softmax``, ``nbops.log_softmax``, ``nbops.softmin``.

The input is viewed as a flat C-order ``(outer, C, inner)`` array, ``C`` being
the length of ``axis``. With ``inner == 1`` (the axis is the last one, or the
array is laid out so that it is) each row is processed by
:func:`nbops.scalar.rows.softmax_row`: one pass for the max, one that writes
``exp(x - max)`` and sums it, one that scales the row while it is still in
cache (log-softmax: max, sum, write). Otherwise blocks of
:data:`~nbops.scalar.rows.COLS_BLOCK` neighbouring positions of the inner axis
are processed together (:func:`~nbops.scalar.rows.softmax_cols`), with
contiguous, vectorized loads. No temporary the size of the input is made: a
non-contiguous input (or one of another dtype) is first copied into the output
array, which is then transformed in place.

Rows holding -inf, +inf or NaN give PyTorch's results: an all -inf row, a row
holding +inf and a row holding NaN are NaN throughout; a -inf next to finite
values gets probability 0 (log-probability -inf).
"""

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable

from .. import _config
from .._launch import launch
from .._validate import as_array, check_out, is_device_array, result_dtype
from ..cuda import ops as _cuda
from ..scalar.rows import COLS_BLOCK, ROW_FASTMATH, row_view, softmax_cols, softmax_row
from . import njit_args as NJ
from .plan import axis_plan

__all__ = ["softmax", "log_softmax", "softmin"]


# ------------------------------------------------------------------ CPU kernels
# x, out: flat C-order (O, C, I) arrays of one float dtype (out may be x).
# I is None: the axis is the last one (rows of C); log is None: softmax, else
# log-softmax. Numba resolves `is None` at compile time, so each specialization
# compiles only its own path.
def _softmax(x, out, O, C, I, sgn, log):
    if I is None:
        for r in prange(O):
            softmax_row(row_view(x, r * C, C), row_view(out, r * C, C), sgn, log)
    else:
        nb = (I + COLS_BLOCK - 1) // COLS_BLOCK
        for u in prange(O * nb):
            softmax_cols(x, out, u // nb, C, I, (u % nb) * COLS_BLOCK, sgn, log)


_softmax_serial, _softmax_parallel = _config.kernels(_softmax, fastmath=ROW_FASTMATH)


def _run(src, dest, O, C, I, sgn, log):
    """Run the kernel on C-contiguous arrays of one float dtype (dest may be src)."""
    if src.size:
        rows = I == 1
        key = ("softmax", src.dtype.char, src.flags.writeable, rows, log)
        launch(_softmax_serial, _softmax_parallel, key, src.size,
               src.reshape(-1), dest.reshape(-1), O, C, None if rows else I,
               src.dtype.type(sgn), True if log else None)


# ------------------------------------------------------------ the Python driver
def _dtypes(x, dtype):
    if dtype is None:
        return result_dtype(x.dtype)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"dtype must be a NumPy float dtype, got {dtype!r}") from None
    if dt.kind != "f":
        raise TypeError(f"dtype must be a float dtype, got {dt}")
    result_dtype(x.dtype)  # rejects complex and non-numeric input
    return result_dtype(dt)


def _shares_exactly(a, b):
    return a.ctypes.data == b.ctypes.data and a.strides == b.strides


def _along_axis(input, axis, dtype, dim, out, sgn, log):
    x = input if type(input) is np.ndarray else as_array(input)
    compute, result = _dtypes(x, dtype)
    ax, O, C, I = axis_plan(x.shape, axis, dim)
    if out is not None:
        check_out(out, x.shape, result)
    shape = x.shape
    direct = out is not None and out.dtype == compute

    # 1. Input already a C-order (O, C, I) array of the compute dtype.
    if x.dtype == compute and x.flags.c_contiguous:
        if direct and out.flags.c_contiguous:
            src = x
            if np.may_share_memory(out, x) and not _shares_exactly(out, x):
                src = x.copy()
            _run(src, out, O, C, I, sgn, log)
            return out
        res = np.empty(shape, compute)
        _run(x, res, O, C, I, sgn, log)
        return _finish(res, result, out)

    # 2. The axis made last is C-contiguous (e.g. an F-order array with axis=0): rows.
    if x.ndim > 1 and x.dtype == compute:
        xm = np.moveaxis(x, ax, -1)
        if xm.flags.c_contiguous:
            if direct:
                om = np.moveaxis(out, ax, -1)
                if om.flags.c_contiguous:
                    src = xm
                    if np.may_share_memory(out, x) and not _shares_exactly(om, xm):
                        src = xm.copy()
                    _run(src, om, x.size // max(C, 1), C, 1, sgn, log)
                    return out
            res = np.empty(xm.shape, compute)
            _run(xm, res, x.size // max(C, 1), C, 1, sgn, log)
            return _finish(np.moveaxis(res, -1, ax), result, out)

    # 3. Anything else: copy (and cast) into the destination, then work in place.
    if direct and out.flags.c_contiguous:
        np.copyto(out, x, casting="unsafe")
        _run(out, out, O, C, I, sgn, log)
        return out
    res = np.empty(shape, compute)
    np.copyto(res, x, casting="unsafe")
    _run(res, res, O, C, I, sgn, log)
    return _finish(res, result, out)


def _finish(res, result, out):
    if out is not None:
        np.copyto(out, res, casting="unsafe")
        return out
    return res if res.dtype == result else res.astype(result)


def softmax(input, axis=-1, dtype=None, *, dim=None, out=None):
    r"""Softmax along an axis: :math:`\mathrm{softmax}(x)_i = e^{x_i - m} / \sum_j e^{x_j - m}`.

    :math:`m = \max_j x_j` (the result does not depend on it; it keeps the
    exponentials from overflowing).

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout. 0-d arrays count as one element.
    axis : int, default -1
        The axis to normalize over. ``dim=`` is accepted as an alias (PyTorch).
    dtype : dtype, optional
        As PyTorch's ``dtype=``: the input is cast to this float dtype first
        and the result has it (e.g. ``float64`` for a float32 input).
    dim : int, optional
        PyTorch's name for ``axis`` (keyword-only); give one or the other.
    out : ndarray, optional
        Array of the result's shape and dtype to write into (may be ``input``).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, integers give float64.
        Rows that are all -inf, or hold +inf or NaN, are NaN (as in PyTorch).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -np.inf]]))
    array([[0.09003057, 0.24472847, 0.66524096],
           [0.5       , 0.5       , 0.        ]])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().softmax(input, axis=axis, dtype=dtype, dim=dim, out=out)
    return _along_axis(input, axis, dtype, dim, out, 1, False)


def log_softmax(input, axis=-1, dtype=None, *, dim=None, out=None):
    r"""Log of the softmax, :math:`(x_i - m) - \log \sum_j e^{x_j - m}` with :math:`m = \max_j x_j`.

    Computed in that order (never :math:`x_i - \mathrm{logsumexp}(x)`), which
    keeps full precision for large inputs. Arguments as :func:`softmax`.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout.
    axis : int, default -1
        The axis to normalize over (``dim=`` is accepted as an alias).
    dtype : dtype, optional
        Cast the input to this float dtype first, as PyTorch's ``dtype=``.
    dim : int, optional
        PyTorch's name for ``axis`` (keyword-only); give one or the other.
    out : ndarray, optional
        Array of the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32.

    Notes
    -----
    Same as ``torch.nn.functional.log_softmax``; a row that is all ``-inf``
    or holds NaN or ``+inf`` is NaN, as in PyTorch.

    Examples
    --------
    >>> nbops.log_softmax(np.array([1.0, 2.0, 3.0], dtype=np.float32))
    array([-2.407606  , -1.4076059 , -0.40760595], dtype=float32)
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().log_softmax(input, axis=axis, dtype=dtype, dim=dim, out=out)
    return _along_axis(input, axis, dtype, dim, out, 1, True)


def softmin(input, axis=-1, dtype=None, *, dim=None, out=None):
    r"""Softmin, :math:`\mathrm{softmax}(-x)`. Arguments as :func:`softmax`.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout.
    axis : int, default -1
        The axis to normalize over (``dim=`` is accepted as an alias).
    dtype : dtype, optional
        Cast the input to this float dtype first, as PyTorch's ``dtype=``.
    dim : int, optional
        PyTorch's name for ``axis`` (keyword-only); give one or the other.
    out : ndarray, optional
        Array of the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32.

    Notes
    -----
    Same as ``torch.nn.functional.softmin``, computed as the softmax of
    :math:`-x` in one pass (no negated copy).

    Examples
    --------
    >>> nbops.softmin(np.array([1.0, 2.0, 3.0]))
    array([0.66524096, 0.24472847, 0.09003057])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().softmin(input, axis=axis, dtype=dtype, dim=dim, out=out)
    return _along_axis(input, axis, dtype, dim, out, -1, False)


# ------------------------------------------------- the same names inside @njit
def _float_type(dtype, input_dtype):
    """The Numba float type of a ``dtype=`` argument (None: from the input)."""
    if dtype is None or isinstance(dtype, (types.NoneType, types.Omitted)):
        return input_dtype if isinstance(input_dtype, types.Float) else types.float64
    if isinstance(dtype, types.NumberClass) and isinstance(dtype.dtype, types.Float):
        return dtype.dtype
    if isinstance(dtype, types.DType) and isinstance(dtype.dtype, types.Float):
        return dtype.dtype
    raise errors.TypingError("nbops: dtype must be None, np.float32 or np.float64")


def _check_axis_types(axis, dim):
    """Typing-time check: ``axis`` and ``dim`` must be integers (or dim None)."""
    for name, value in (("axis", axis), ("dim", dim)):
        if NJ.is_none(value) or isinstance(value, (int, types.Integer)):
            continue
        if isinstance(value, types.Omitted) and isinstance(value.value, int):
            continue
        raise NJ.DeferredError(TypeError(f"{name} must be an integer, got a value of "
                                         f"type {value}"))


@register_jitable
def _axis_of(axis, dim):
    """``dim`` if given (then ``axis`` must be -1 or equal), else ``axis`` (the plan's rule)."""
    if dim is None:
        return axis
    if axis != -1 and axis != dim:
        raise TypeError("give axis or dim, not both")
    return dim


def _axis_njit(sgn_value, log, input, axis, dtype, dim, out):
    _check_axis_types(axis, dim)
    if isinstance(input, (types.Float, types.Integer, types.Boolean)):
        ty = _float_type(dtype, input)

        def scalar_impl(input, axis=-1, dtype=None, dim=None, out=None):
            _check_range(_axis_of(axis, dim), 0)
            v = ty(input)
            z = v - v  # 0, or NaN for an infinite or NaN input (as PyTorch's 0-d softmax)
            return z if log else np.exp(z)

        return scalar_impl
    if not isinstance(input, types.Array):
        return None
    ty = _float_type(dtype, input.dtype)
    has_out = not (out is None or isinstance(out, (types.NoneType, types.Omitted)))
    if has_out and not (isinstance(out, types.Array) and out.dtype == ty
                        and out.ndim == input.ndim):
        raise errors.TypingError(f"nbops: out must be an array of dtype {ty} "
                                 "and the input's number of dimensions")
    sgn = ty(sgn_value)
    flag = True if log else None  # the kernels' log argument

    if has_out:
        def impl_out(input, axis=-1, dtype=None, dim=None, out=None):
            res = np.empty(input.shape, ty)
            _fill_along_axis(input, _axis_of(axis, dim), res, sgn, flag)
            if out.shape != res.shape:
                raise ValueError("nbops: out must have the input's shape")
            for idx in np.ndindex(res.shape):
                out[idx] = res[idx]
            return out

        return impl_out

    def impl(input, axis=-1, dtype=None, dim=None, out=None):
        res = np.empty(input.shape, ty)
        _fill_along_axis(input, _axis_of(axis, dim), res, sgn, flag)
        return res

    return impl


@register_jitable
def _fill_along_axis(input, ax, res, sgn, log):
    """res (C-contiguous) = the op of ``input`` along axis ``ax`` (serial)."""
    nd = input.ndim
    ax = _check_range(ax, nd)
    shape = input.shape
    O = 1
    C = 1
    I = 1
    for k in range(nd):
        if k < ax:
            O *= shape[k]
        elif k == ax:
            C = shape[k]
        else:
            I *= shape[k]
    flat = res.reshape(-1)
    if flat.size:
        _to_flat(np.ascontiguousarray(input).reshape(-1), flat, O, C, I, sgn, log)


@register_jitable
def _check_range(ax, nd):
    """The non-negative axis; ValueError as on the CPU path if out of range (a
    constant message: formatting the values would add to every compilation)."""
    n = max(nd, 1)
    if ax < -n or ax >= n:
        raise ValueError("axis is out of range for the array's number of dimensions")
    return ax + n if ax < 0 else ax


def _to_flat(src, flat, O, C, I, sgn, log):
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_to_flat)
def _to_flat_ol(src, flat, O, C, I, sgn, log):
    if src.dtype == flat.dtype:
        return lambda src, flat, O, C, I, sgn, log: _serial_any(src, flat, O, C, I, sgn, log)

    def impl_cast(src, flat, O, C, I, sgn, log):
        for i in range(flat.size):
            flat[i] = src[i]
        _serial_any(flat, flat, O, C, I, sgn, log)

    return impl_cast


@register_jitable
def _serial_any(src, flat, O, C, I, sgn, log):
    """The serial kernel, for a number of positions I (1: rows) known at run time."""
    if I == 1:
        _softmax_serial(src, flat, O, C, None, sgn, log)
    else:
        _softmax_serial(src, flat, O, C, I, sgn, log)


@overload(softmax)
@NJ.plan_errors_at_run_time
def _softmax_njit(input, axis=-1, dtype=None, dim=None, out=None):
    return _axis_njit(1.0, False, input, axis, dtype, dim, out)


@overload(log_softmax)
@NJ.plan_errors_at_run_time
def _log_softmax_njit(input, axis=-1, dtype=None, dim=None, out=None):
    return _axis_njit(1.0, True, input, axis, dtype, dim, out)


@overload(softmin)
@NJ.plan_errors_at_run_time
def _softmin_njit(input, axis=-1, dtype=None, dim=None, out=None):
    return _axis_njit(-1.0, False, input, axis, dtype, dim, out)
