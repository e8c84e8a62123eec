"""Ops along an axis: ``nbops.softmax``, ``nbops.log_softmax``, ``nbops.softmin``.

Each is one :func:`~nbops._ops.table.row_op` entry at the end of this module:
its :class:`~nbops.scalar.rows.RowCore` (the op's math: ``prep`` and ``value``,
in ``nbops/scalar/rows.py``) and its sign (softmin is the softmax of ``-x``).
The table generates the public functions, their ``@njit`` overloads, docstrings
and ``nbops.nn`` classes; this module holds what they share, generic over the
row core: the kernels, the driver :func:`_along_axis` and the body of the
overloads (:func:`_axis_njit`).

The input is viewed as a flat C-order ``(outer, C, inner)`` array, ``C`` being
the length of ``axis``. With ``inner == 1`` (the axis is the last one, or the
array is laid out so that it is) each row is processed by
:func:`nbops.scalar.rows.lse_row`: one pass for the max, one that sums
``exp(x - max)`` (softmax also writes it), one that writes the result while the
row is still in cache. Otherwise blocks of :data:`~nbops.scalar.rows.COLS_BLOCK`
neighbouring positions of the inner axis are processed together
(:func:`~nbops.scalar.rows.lse_cols`), with contiguous, vectorized loads. No
temporary the size of the input is made: a non-contiguous input (or one of
another dtype) is first copied into the output array, which is then
transformed in place.

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
from .._validate import as_array, check_out, result_dtype
from ..scalar import rows as R
from ..scalar.rows import (
    COLS_BLOCK,
    ROW_FASTMATH,
    grad_cols,
    grad_row,
    lse_cols,
    lse_row,
    lse_scalar,
    row_view,
)
from . import njit_args as NJ
from . import table
from .elementwise import _float_array, _overlaps_differently, flat_as
from .plan import axis_plan
from .table import Module


# ------------------------------------------------------------------ CPU kernels
# x, out: flat C-order (O, C, I) arrays of one float dtype (out may be x).
# I is None: the axis is the last one (rows of C). core: the op's RowCore (a
# compile-time constant of its own Numba type: one specialization per core and
# dtype); sgn: +1 or -1; stored, shifted: core.switches (True or None each).
# Numba resolves `is None` at compile time, so each specialization compiles
# only its own path.
def _rows(x, out, O, C, I, core, sgn, stored, shifted):
    if I is None:
        for r in prange(O):
            lse_row(core, row_view(x, r * C, C), row_view(out, r * C, C), sgn, stored, shifted)
    else:
        nb = (I + COLS_BLOCK - 1) // COLS_BLOCK
        for u in prange(O * nb):
            lse_cols(core, x, out, u // nb, C, I, (u % nb) * COLS_BLOCK, sgn, stored, shifted)


_rows_serial, _rows_parallel = _config.kernels(_rows, fastmath=ROW_FASTMATH)


def _run(src, dest, O, C, I, core, sgn):
    """Run the kernel on C-contiguous arrays of one float dtype (dest may be src)."""
    if src.size:
        rows = I == 1
        key = (core, src.dtype.char, src.flags.writeable, rows)
        launch(_rows_serial, _rows_parallel, key, src.size,
               src.reshape(-1), dest.reshape(-1), O, C, None if rows else I,
               core, src.dtype.type(sgn), *core.switches)


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


def _along_axis(input, axis, dtype, dim, out, core, sgn):
    """The CPU path of a row op (``core``, ``sgn``: its entry's)."""
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
            _run(src, out, O, C, I, core, sgn)
            return out
        res = np.empty(shape, compute)
        _run(x, res, O, C, I, core, sgn)
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
                    _run(src, om, x.size // max(C, 1), C, 1, core, sgn)
                    return out
            res = np.empty(xm.shape, compute)
            _run(xm, res, x.size // max(C, 1), C, 1, core, sgn)
            return _finish(np.moveaxis(res, -1, ax), result, out)

    # 3. Anything else: copy (and cast) into the destination, then work in place.
    if direct and out.flags.c_contiguous:
        np.copyto(out, x, casting="unsafe")
        _run(out, out, O, C, I, core, sgn)
        return out
    res = np.empty(shape, compute)
    np.copyto(res, x, casting="unsafe")
    _run(res, res, O, C, I, core, sgn)
    return _finish(res, result, out)


def _finish(res, result, out):
    if out is not None:
        np.copyto(out, res, casting="unsafe")
        return out
    return res if res.dtype == result else res.astype(result)


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


def _axis_njit(core, sgn_value, input, axis, dtype, dim, out):
    """The ``@overload`` of a row op (``core``, ``sgn_value``: its entry's); the typing
    functions nbops/_ops/table.py generates call it."""
    _check_axis_types(axis, dim)
    stored, shifted = core.switches  # the kernels' switches
    if isinstance(input, (types.Float, types.Integer, types.Boolean)):
        ty = _float_type(dtype, input)

        def scalar_impl(input, axis=-1, dtype=None, dim=None, out=None):
            _check_range(_axis_of(axis, dim), 0)
            return lse_scalar(core, ty(input), stored)

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

    if has_out:
        def impl_out(input, axis=-1, dtype=None, dim=None, out=None):
            res = np.empty(input.shape, ty)
            _fill_along_axis(input, _axis_of(axis, dim), res, core, sgn, stored, shifted)
            if out.shape != res.shape:
                raise ValueError("nbops: out must have the input's shape")
            for idx in np.ndindex(res.shape):
                out[idx] = res[idx]
            return out

        return impl_out

    def impl(input, axis=-1, dtype=None, dim=None, out=None):
        res = np.empty(input.shape, ty)
        _fill_along_axis(input, _axis_of(axis, dim), res, core, sgn, stored, shifted)
        return res

    return impl


@register_jitable
def _fill_along_axis(input, ax, res, core, sgn, stored, shifted):
    """res (C-contiguous) = the op (``core``, ``sgn``) of ``input`` along axis ``ax``
    (serial)."""
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
        _to_flat(np.ascontiguousarray(input).reshape(-1), flat, O, C, I, core, sgn, stored, shifted)


@register_jitable
def _check_range(ax, nd):
    """The non-negative axis; ValueError as on the CPU path if out of range (a
    constant message: formatting the values would add to every compilation)."""
    n = max(nd, 1)
    if ax < -n or ax >= n:
        raise ValueError("axis is out of range for the array's number of dimensions")
    return ax + n if ax < 0 else ax


def _to_flat(src, flat, O, C, I, core, sgn, stored, shifted):
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_to_flat)
def _to_flat_ol(src, flat, O, C, I, core, sgn, stored, shifted):
    if src.dtype == flat.dtype:
        def impl_same(src, flat, O, C, I, core, sgn, stored, shifted):
            _serial_any(src, flat, O, C, I, core, sgn, stored, shifted)

        return impl_same

    def impl_cast(src, flat, O, C, I, core, sgn, stored, shifted):
        for i in range(flat.size):
            flat[i] = src[i]
        _serial_any(flat, flat, O, C, I, core, sgn, stored, shifted)

    return impl_cast


@register_jitable
def _serial_any(src, flat, O, C, I, core, sgn, stored, shifted):
    """The serial kernel, for a number of positions I (1: rows) known at run time."""
    if I == 1:
        _rows_serial(src, flat, O, C, None, core, sgn, stored, shifted)
    else:
        _rows_serial(src, flat, O, C, I, core, sgn, stored, shifted)


# ------------------------------------------------------------------ the backwards
# g, y, out: flat C-order (O, C, I) arrays of one float dtype (out may be g or y);
# I is None: rows along the last axis. The math is the core's grad_term and
# grad_value (nbops/scalar/rows.py), through grad_row / grad_cols.
def _grad(g, y, out, O, C, I, core, sgn):
    if I is None:
        for r in prange(O):
            grad_row(core, row_view(g, r * C, C), row_view(y, r * C, C),
                     row_view(out, r * C, C), sgn)
    else:
        nb = (I + COLS_BLOCK - 1) // COLS_BLOCK
        for u in prange(O * nb):
            grad_cols(core, g, y, out, u // nb, C, I, (u % nb) * COLS_BLOCK, sgn)


_grad_serial, _grad_parallel = _config.kernels(_grad, fastmath=ROW_FASTMATH)


def _run_grad(g, y, dest, O, C, I, core, sgn):
    """Run the backward kernel on C-contiguous arrays of one float dtype."""
    if g.size:
        rows = I == 1
        key = ("grad", core, g.dtype.char, rows)
        launch(_grad_serial, _grad_parallel, key, g.size,
               g.reshape(-1), y.reshape(-1), dest.reshape(-1), O, C, None if rows else I,
               core, g.dtype.type(sgn))


def _grad_arrays(grad_output, output):
    """grad_output and output as float ndarrays of one shape, and the (compute,
    result) dtypes: their common float dtype (float32 stays float32)."""
    g = _float_array(grad_output, "grad_output")
    y = _float_array(output, "output")
    if g.shape != y.shape:
        raise ValueError(f"grad_output has shape {g.shape} but output has shape {y.shape}: "
                         "they must be the same (the forward's output shape)")
    return g, y, result_dtype(np.result_type(g.dtype, y.dtype))


def _grad_along_axis(grad_output, output, axis, dim, out, core, sgn):
    """The CPU path of a row op's backward (``core``, ``sgn``: its entry's)."""
    g, y, (compute, result) = _grad_arrays(grad_output, output)
    ax, O, C, I = axis_plan(g.shape, axis, dim)
    if out is not None:
        check_out(out, g.shape, result)
    shape = g.shape
    direct = out is not None and out.dtype == compute

    def usable(dest, *srcs):  # dest may be written while the sources are read
        return not any(_overlaps_differently(dest, s) for s in srcs)

    # 1. Both C-order (O, C, I) arrays of the compute dtype.
    same = g.dtype == compute and y.dtype == compute
    if same and g.flags.c_contiguous and y.flags.c_contiguous:
        if direct and out.flags.c_contiguous and usable(out, g, y):
            _run_grad(g, y, out, O, C, I, core, sgn)
            return out
        res = np.empty(shape, compute)
        _run_grad(g, y, res, O, C, I, core, sgn)
        return _finish(res, result, out)

    # 2. The axis made last is C-contiguous in both (e.g. F-order arrays, axis=0): rows.
    if same and g.ndim > 1:
        gm, ym = np.moveaxis(g, ax, -1), np.moveaxis(y, ax, -1)
        if gm.flags.c_contiguous and ym.flags.c_contiguous:
            rows = g.size // max(C, 1)
            if direct:
                om = np.moveaxis(out, ax, -1)
                if om.flags.c_contiguous and usable(om, gm, ym):
                    _run_grad(gm, ym, om, rows, C, 1, core, sgn)
                    return out
            res = np.empty(gm.shape, compute)
            _run_grad(gm, ym, res, rows, C, 1, core, sgn)
            return _finish(np.moveaxis(res, -1, ax), result, out)

    # 3. Anything else: C-contiguous copies of the compute dtype.
    gs = np.ascontiguousarray(g, dtype=compute)
    ys = np.ascontiguousarray(y, dtype=compute)
    if direct and out.flags.c_contiguous and usable(out, gs, ys):
        _run_grad(gs, ys, out, O, C, I, core, sgn)
        return out
    res = np.empty(shape, compute)
    _run_grad(gs, ys, res, O, C, I, core, sgn)
    return _finish(res, result, out)


def _grad_njit(core, sgn_value, grad_output, output, axis, dim, out):
    """The ``@overload`` of a row op's backward (``core``, ``sgn_value``: its
    entry's); the typing functions nbops/_ops/table.py generates call it."""
    _check_axis_types(axis, dim)
    if not (isinstance(grad_output, types.Array) and isinstance(output, types.Array)):
        return None
    if not (isinstance(grad_output.dtype, types.Float) and isinstance(output.dtype, types.Float)):
        raise errors.TypingError("nbops: grad_output and output must be float arrays")
    if grad_output.ndim != output.ndim:
        raise NJ.DeferredError(ValueError("grad_output and output must have the same shape "
                                          "(the forward's output shape)"))
    ty = types.float64 if types.float64 in (grad_output.dtype, output.dtype) else types.float32
    has_out = not (out is None or isinstance(out, (types.NoneType, types.Omitted)))
    if has_out and not (isinstance(out, types.Array) and out.dtype == ty
                        and out.ndim == grad_output.ndim):
        raise errors.TypingError(f"nbops: out must be an array of dtype {ty} "
                                 "and grad_output's number of dimensions")
    sgn = ty(sgn_value)

    if has_out:
        def impl_out(grad_output, output, axis=-1, dim=None, out=None):
            if out.shape != grad_output.shape:
                raise ValueError("nbops: out must have grad_output's shape")
            res = np.empty(grad_output.shape, ty)
            _grad_fill(grad_output, output, _axis_of(axis, dim), res, core, sgn)
            for idx in np.ndindex(res.shape):
                out[idx] = res[idx]
            return out

        return impl_out

    def impl(grad_output, output, axis=-1, dim=None, out=None):
        res = np.empty(grad_output.shape, ty)
        _grad_fill(grad_output, output, _axis_of(axis, dim), res, core, sgn)
        return res

    return impl


@register_jitable
def _grad_fill(g, y, ax, res, core, sgn):
    """res (C-contiguous, ``g``'s shape) = the backward (``core``, ``sgn``) along
    axis ``ax`` (serial)."""
    if g.shape != y.shape:
        raise ValueError("nbops: grad_output and output must have the same shape")
    nd = g.ndim
    ax = _check_range(ax, nd)
    shape = g.shape
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
        gs = flat_as(g, flat)
        ys = flat_as(y, flat)
        if I == 1:
            _grad_serial(gs, ys, flat, O, C, None, core, sgn)
        else:
            _grad_serial(gs, ys, flat, O, C, I, core, sgn)
    return res


# ------------------------------------------------- the softmax family in the op table
# Declared once (nbops/_ops/table.py generates the public function, its @njit
# overload, its docstring and its nbops.nn class; the CUDA path is
# nbops/cuda/_ops.py's row_op). Their float64 references are in tests/_reference.py.
SOFTMAX = table.row_op(
    "softmax", R.SOFTMAX,
    module=Module("Softmax", "Softmax along ``dim``", example="""
        >>> nbops.nn.Softmax(dim=1)(np.array([[0.0, 0.0]], np.float32))
        array([[0.5, 0.5]], dtype=float32)
        """),
    summary=r"""
        Softmax along an axis: :math:`\mathrm{softmax}(x)_i = e^{x_i - m} / \sum_j e^{x_j - m}`.

        :math:`m = \max_j x_j` (the result does not depend on it; it keeps the
        exponentials from overflowing).
        """,
    notes="""
        Same as ``torch.nn.functional.softmax``.
        """,
    backward_formula=r"""
        With :math:`y` the output and :math:`g` ``grad_output``, along the axis:
        :math:`\partial x_i = y_i (g_i - \sum_j g_j y_j)` (PyTorch's
        ``_softmax_backward_data``).
        """,
    example="""
        >>> import numpy as np, nbops
        >>> nbops.softmax(np.array([[1.0, 2.0, 3.0], [0.0, 0.0, -np.inf]]))
        array([[0.09003057, 0.24472847, 0.66524096],
               [0.5       , 0.5       , 0.        ]])
        """)

LOG_SOFTMAX = table.row_op(
    "log_softmax", R.LOG_SOFTMAX,
    module=Module("LogSoftmax", "Log of the softmax along ``dim``, computed stably",
                  example="""
        >>> nbops.nn.LogSoftmax(dim=1)(np.array([[0.0, 0.0]], np.float32))
        array([[-0.6931472, -0.6931472]], dtype=float32)
        """),
    summary=r"""
        Log of the softmax, :math:`(x_i - m) - \log \sum_j e^{x_j - m}` with :math:`m = \max_j x_j`.

        Computed in that order (never :math:`x_i - \mathrm{logsumexp}(x)`), which
        keeps full precision for large inputs.
        """,
    notes="""
        Same as ``torch.nn.functional.log_softmax``.
        """,
    backward_formula=r"""
        With :math:`y` the output (log-probabilities) and :math:`g`
        ``grad_output``, along the axis: :math:`\partial x_i = g_i - e^{y_i} \sum_j g_j`
        (PyTorch's ``_log_softmax_backward_data``).
        """,
    example="""
        >>> nbops.log_softmax(np.array([1.0, 2.0, 3.0], dtype=np.float32))
        array([-2.407606  , -1.4076059 , -0.40760595], dtype=float32)
        """)

SOFTMIN = table.row_op(
    "softmin", R.SOFTMAX, sgn=-1,
    module=Module("Softmin", "Softmax of ``-x`` along ``dim``", example="""
        >>> nbops.nn.Softmin(dim=1)(np.array([[0.0, 0.0]], np.float32))
        array([[0.5, 0.5]], dtype=float32)
        """),
    summary=r"""
        Softmin, :math:`\mathrm{softmax}(-x)`.
        """,
    notes="""
        Same as ``torch.nn.functional.softmin``, computed as the softmax of
        :math:`-x` in one pass (no negated copy).
        """,
    backward_formula=r"""
        With :math:`y` the output and :math:`g` ``grad_output``, along the axis:
        :math:`\partial x_i = -y_i (g_i - \sum_j g_j y_j)`, the softmax backward
        negated (autograd through PyTorch's ``softmax(-x)``).
        """,
    example="""
        >>> nbops.softmin(np.array([1.0, 2.0, 3.0]))
        array([0.66524096, 0.24472847, 0.09003057])
        """)

globals().update({e.name: e.function for e in table.row_op_entries()})
globals().update(table.backward_functions("softmax"))  # softmax_backward, ...
__all__ = [e.name for e in table.row_op_entries()] + list(table.backward_functions("softmax"))
