"""The gated linear unit: ``nbops.glu`` and ``nbops.glu_backward``.

The input is viewed as a flat C-order ``(outer, 2 * half, inner)`` array,
``2 * half`` being the length of the split axis: ``a`` is its first half,
``b`` its second, and the output ``(outer, half, inner)`` is
``a * sigmoid(b)``. For each index of the outer axes ``a`` and ``b`` are two
contiguous runs of ``half * inner`` values, so the kernels walk three
contiguous runs (``a``, ``b``, the output): an iteration of the parallel
loop is one short run or a tile of :data:`_TILE` values of a long one;
elementwise, any thread count gives the same bits.

Backward (PyTorch's ``glu_backward``), with ``s = sigmoid(b)`` and ``g`` the
gradient of the output: ``grad_a = s * g`` and ``grad_b = (1 - s) * s * a * g``,
written into the two halves of ``grad_input`` (the input's shape).
"""

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.cpython.unsafe.tuple import tuple_setitem
from numba.extending import overload, register_jitable

from .. import _config, _memory
from .._launch import launch
from .._numba_internals import make_prefetch
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    deliver,
    is_dask_array,
    is_device_array,
    lean_destination,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar._math import const
from ..scalar.activations import sigmoid
from ..scalar.rows import row_view
from . import njit_args as NJ
from .elementwise import _float_array
from .plan import Remembered, axis_plan

__all__ = ["glu", "glu_backward"]

prefetch = make_prefetch()

#: Values per iteration of the parallel kernels over long runs.
_TILE = 16384


# ------------------------------------------------------------------ the math
# Cores (inlined into the CPU kernels, device functions in nbops/cuda/_glu.py).
@_config.core
def glu_value(a, b):
    """One output element: ``a * sigmoid(b)``."""
    return a * sigmoid(b)


@_config.core
def glu_grads(g, a, b):
    """(grad_a, grad_b) of one output element: ``(s g, (1 - s) s a g)``, ``s = sigmoid(b)``."""
    s = sigmoid(b)
    t = s * g
    return t, (const(s, 1.0) - s) * t * a


# ------------------------------------------------------------------ CPU kernels
# x: the flat (O, 2H, I) input; out: the flat (O, H, I) output (forward) or the
# flat (O, 2H, I) grad_input (backward, g the flat (O, H, I) grad_output).
# The forward takes its runs as row_view views (nbops/scalar/rows.py): contiguous
# 1-D arrays its loop vectorizes over, without a slice's reference counting (the
# backward keeps slices: as five row_view views its loop ran far slower). Short
# runs (the last axis: a row's two halves, read at once) get their input
# prefetched two rows ahead (16 values per request: a 64-byte line of float32,
# every other line of float64): two streams in one page are not followed by the
# hardware prefetcher (see make_prefetch in nbops/_numba_internals.py). One run
# per iteration: grouping runs into tasks made the same loop twice as slow.
def _glu(x, out, O, half):
    """out = a * sigmoid(b); ``half`` = H * I values per outer index."""
    if half < _TILE:  # short runs, a and b side by side: one run per iteration
        for o in prange(O):
            if o + 2 < O:
                base = 2 * (o + 2) * half
                for j in range(0, 2 * half, 16):
                    prefetch(x, base + j)
            xa = row_view(x, 2 * o * half, half)
            xb = row_view(x, 2 * o * half + half, half)
            run = row_view(out, o * half, half)
            for k in range(half):
                run[k] = glu_value(xa[k], xb[k])
    else:  # tiles of long runs
        tiles = (half + _TILE - 1) // _TILE
        for u in prange(O * tiles):
            o = u // tiles
            a0 = (u % tiles) * _TILE
            n = min(_TILE, half - a0)
            lo = 2 * o * half + a0
            xa = row_view(x, lo, n)
            xb = row_view(x, lo + half, n)
            run = row_view(out, o * half + a0, n)
            for k in range(n):
                run[k] = glu_value(xa[k], xb[k])


def _glu_grad(g, x, out, O, half):
    """grad_a = s * g, grad_b = (1 - s) * s * a * g with s = sigmoid(b)."""
    n_tiles = (half + _TILE - 1) // _TILE
    for u in prange(O * n_tiles):
        o = u // n_tiles
        a0 = (u % n_tiles) * _TILE
        n = min(_TILE, half - a0)
        lo = 2 * o * half + a0
        xa = x[lo:lo + n]
        xb = x[lo + half:lo + half + n]
        ga = out[lo:lo + n]
        gb = out[lo + half:lo + half + n]
        gs = g[o * half + a0:o * half + a0 + n]
        for k in range(n):
            ga[k], gb[k] = glu_grads(gs[k], xa[k], xb[k])


_glu_serial, _glu_parallel = _config.kernels(_glu)
_grad_serial, _grad_parallel = _config.kernels(_glu_grad)


# ------------------------------------------------------------------ argument checks
def glu_plan(shape, axis, dim):
    """(axis, outer, half, inner, output shape) of a glu of an input of ``shape``.

    Raises ValueError for a 0-d input or an odd length along the axis (PyTorch's
    RuntimeError messages), and as :func:`nbops._ops.plan.axis_plan` for a bad axis.
    """
    if len(shape) == 0:
        raise ValueError("glu does not support scalars because halving size must be even")
    ax, O, C, I = axis_plan(shape, axis, dim)
    if C % 2:
        raise ValueError(f"Halving dimension must be even, but dimension {ax} is size {C}")
    out_shape = tuple(shape[:ax]) + (C // 2,) + tuple(shape[ax + 1:])
    return ax, O, C // 2, I, out_shape


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _fast_plan(shape, axis):
    """(outer, half * inner, output shape) of a checked (shape, int axis)."""
    _, O, H, I, out_shape = glu_plan(shape, axis, None)
    return O, H * I, out_shape


_plans = Remembered(_fast_plan)  # (shape, int axis) -> its plan


def _fast_forward(input, axis, out):
    """The common call (a C-contiguous float32/float64 ndarray, an int axis, no
    ``out=`` or a C-contiguous one of the result's shape and dtype apart from the
    input) with the plan of its shape and axis remembered; None for any other
    call (the general path). Same checks, kernel and arguments as _forward."""
    dt = input.dtype
    if not (dt in _FLOATS and input.flags.c_contiguous):
        return None
    O, HI, out_shape = _plans[(input.shape, axis)]  # (raises for bad ones)
    res = lean_destination(out, out_shape, dt, input)
    if res is None:
        return None
    if O and HI:
        launch(_glu_serial, _glu_parallel, ("glu", dt.char), input.size, input.reshape(-1),
               res.reshape(-1), O, HI)
    return res


def _forward(input, axis, dim, out):
    x = input if type(input) is np.ndarray else as_array(input)
    compute, result = result_dtype(x.dtype)
    ax, O, H, I, out_shape = glu_plan(x.shape, axis, dim)
    if out is not None:
        check_out(out, out_shape, result)
    src = np.ascontiguousarray(x, dtype=compute)
    direct = (out is not None and out.dtype == compute and out.flags.c_contiguous
              and not np.may_share_memory(out, src))
    res = out if direct else _memory.empty(out_shape, compute)
    if res.size:
        launch(_glu_serial, _glu_parallel, ("glu", compute.char), x.size,
               src.reshape(-1), res.reshape(-1), O, H * I)
    return deliver(res, out, direct, compute, result)


def _backward(grad_output, input, axis, dim, out):
    g = _float_array(grad_output, "grad_output")
    x = input if type(input) is np.ndarray else as_array(input)
    result_dtype(x.dtype)
    compute, result = result_dtype(np.result_type(g.dtype, x.dtype))
    ax, O, H, I, out_shape = glu_plan(x.shape, axis, dim)
    if g.shape != out_shape:
        raise ValueError(f"grad_output has shape {g.shape} but the forward's output has shape "
                         f"{out_shape} (input {x.shape} halved along axis {ax})")
    if out is not None:
        check_out(out, x.shape, result)
    gs = np.ascontiguousarray(g, dtype=compute)
    src = np.ascontiguousarray(x, dtype=compute)
    direct = (out is not None and out.dtype == compute and out.flags.c_contiguous
              and not np.may_share_memory(out, src) and not np.may_share_memory(out, gs))
    res = out if direct else _memory.empty(x.shape, compute)
    if res.size:
        launch(_grad_serial, _grad_parallel, ("glu_backward", compute.char), x.size,
               gs.reshape(-1), src.reshape(-1), res.reshape(-1), O, H * I)
    return deliver(res, out, direct, compute, result)


# ------------------------------------------------------------------ public functions
def glu(input, axis=-1, *, dim=None, out=None):
    r"""Gated linear unit: :math:`a \otimes \sigma(b)`, ``a`` and ``b`` the two halves
    of ``input`` along an axis.

    Parameters
    ----------
    input : array_like
        Any shape with an even length along ``axis`` (at least 1-d); any memory
        layout.
    axis : int, default -1
        The axis to split in half.
    dim : int, optional, keyword-only
        PyTorch's name of ``axis`` (give one of them).
    out : ndarray, optional, keyword-only
        Written with the result (the output shape and the result dtype).

    Returns
    -------
    ndarray
        The input's shape with ``axis`` halved; float32 stays float32, float64
        stays float64, other real dtypes promote as ``np.exp`` would.

    Raises
    ------
    ValueError
        A 0-d input, or an odd length along ``axis`` (PyTorch's messages).

    Notes
    -----
    Same as ``torch.nn.functional.glu``; the sigmoid is
    :func:`nbops.scalar.sigmoid`. The gradient is :func:`nbops.glu_backward`.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.glu(np.array([[1.0, 2.0, 0.0, 100.0]]))
    array([[0.5, 2. ]])
    """
    if type(input) is np.ndarray and dim is None and type(axis) is int:
        res = _fast_forward(input, axis, out)
        if res is not None:
            return res
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().glu(input, axis, dim=dim, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().glu(input, axis, dim=dim, out=out)
    return _forward(input, axis, dim, out)


def glu_backward(grad_output, input, axis=-1, *, dim=None, out=None):
    r"""Gradient of :func:`glu` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to the forward's output (its
        shape: the input's with ``axis`` halved).
    input : array_like
        The forward's input.
    axis : int, default -1
        The forward's axis.
    dim : int, optional, keyword-only
        PyTorch's name of ``axis``.
    out : ndarray, optional, keyword-only
        Written with ``grad_input`` (the input's shape and the result dtype).

    Returns
    -------
    ndarray
        ``grad_input``, of the input's shape, in the common float dtype of
        ``grad_output`` and ``input`` (float32 stays float32).

    Notes
    -----
    With :math:`s = \sigma(b)` and :math:`g` ``grad_output``:
    :math:`\partial a = s\,g` (the first half) and
    :math:`\partial b = (1 - s)\,s\,a\,g` (the second half), as PyTorch's
    ``glu_backward``.

    Examples
    --------
    >>> x = np.array([[1.0, 2.0, 0.0, 0.0]])
    >>> nbops.glu_backward(np.array([[1.0, 1.0]]), x)
    array([[0.5 , 0.5 , 0.25, 0.5 ]])
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().glu_backward(grad_output, input, axis, dim=dim, out=out)
    if is_dask_array(grad_output) or is_dask_array(input):
        return dask_ops().glu_backward(grad_output, input, axis, dim=dim, out=out)
    return _backward(grad_output, input, axis, dim, out)


# ------------------------------------------------- the same names inside @njit
# The serial cached kernels above (one specialization per dtype); out= is not
# supported inside @njit.
def _compute_type(t):
    return t if isinstance(t, types.Float) else types.float64


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
    """``dim`` if given (then ``axis`` must be -1 or equal), else ``axis``."""
    if dim is None:
        return axis
    if axis != -1 and axis != dim:
        raise TypeError("give axis or dim, not both")
    return dim


@register_jitable
def _check_range(ax, nd):
    """The non-negative axis (ValueError if out of range, a constant message)."""
    if ax < -nd or ax >= nd:
        raise ValueError("axis is out of range for the array's number of dimensions")
    return ax + nd if ax < 0 else ax


@register_jitable
def _njit_plan(shape, ax):
    """(outer, half * inner, output shape) of a glu along ``ax`` (non-negative)."""
    O = 1
    C = 1
    I = 1
    for k in range(len(shape)):
        if k < ax:
            O *= shape[k]
        elif k == ax:
            C = shape[k]
        else:
            I *= shape[k]
    if C % 2 != 0:
        raise ValueError("Halving dimension must be even")
    return O, C // 2 * I, tuple_setitem(shape, ax, C // 2)


def _check_njit(input, out, name):
    if not isinstance(input, types.Array):
        return False
    if input.ndim == 0:
        raise errors.TypingError("glu does not support scalars because halving size must "
                                 "be even")
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        raise errors.TypingError(f"nbops.{name}: out= is not supported inside @njit")
    return True


@overload(glu)
@NJ.plan_errors_at_run_time
def _glu_njit(input, axis=-1, dim=None, out=None):
    _check_axis_types(axis, dim)
    if not _check_njit(input, out, "glu"):
        return None
    dtype = _compute_type(input.dtype)
    nd = input.ndim

    def impl(input, axis=-1, dim=None, out=None):
        ax = _check_range(_axis_of(axis, dim), nd)
        O, half, out_shape = _njit_plan(input.shape, ax)
        x = input.astype(dtype)  # a C-order copy
        res = np.empty(out_shape, dtype)
        if res.size != 0:
            _glu_serial(x.reshape(-1), res.reshape(-1), O, half)
        return res

    return impl


@overload(glu_backward)
@NJ.plan_errors_at_run_time
def _glu_backward_njit(grad_output, input, axis=-1, dim=None, out=None):
    _check_axis_types(axis, dim)
    if not (isinstance(grad_output, types.Array) and _check_njit(input, out, "glu_backward")):
        return None
    if not isinstance(grad_output.dtype, types.Float):
        raise errors.TypingError("nbops.glu_backward: grad_output must be a float array")
    if grad_output.ndim != input.ndim:
        raise errors.TypingError("nbops.glu_backward: grad_output must have the forward's "
                                 "output shape")
    in_type = _compute_type(input.dtype)
    dtype = types.float64 if types.float64 in (in_type, grad_output.dtype) else types.float32
    nd = input.ndim

    def impl(grad_output, input, axis=-1, dim=None, out=None):
        ax = _check_range(_axis_of(axis, dim), nd)
        O, half, out_shape = _njit_plan(input.shape, ax)
        if grad_output.shape != out_shape:
            raise ValueError("grad_output must have the forward's output shape")
        g = grad_output.astype(dtype)
        x = input.astype(dtype)
        res = np.empty(input.shape, dtype)
        if res.size != 0:
            _grad_serial(g.reshape(-1), x.reshape(-1), res.reshape(-1), O, half)
        return res

    return impl
