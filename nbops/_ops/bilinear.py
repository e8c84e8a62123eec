"""``nbops.bilinear``: ``y[..., o] = x1[..., :] @ W[o] @ x2[..., :] + b[o]``, and its backward.

The work is matrix products in :mod:`nbops._ops.linear`'s kernels (nbops' own,
on Numba's threads: that module's docstring says why not NumPy's BLAS), over
the rows of the inputs flattened to ``(rows, in1)`` and ``(rows, in2)``:

* forward: ``t = x1 @ W1`` with ``W1[i, o * in2 + j] = W[o, i, j]`` (a linear
  layer of ``out * in2`` outputs), then per row ``y[r, o] = t[r, o, :] .
  x2[r, :] (+ b[o])``;
* backward: ``grad_x1[r] = sum_o g[r, o] u[r, o, :]`` with ``u = x2 @ W2``,
  ``W2[j, o * in1 + i] = W[o, i, j]``; ``grad_x2[r] = sum_o g[r, o] t[r, o, :]``;
  ``grad_W = g^T (x1 (x) x2)`` (linear's weight-gradient kernel over the rows'
  outer products ``x1[r, i] x2[r, j]``); ``grad_b = sum_r g[r]`` (float64).

The intermediates (``t``, ``u``, the outer products) have ``out * in2``,
``out * in1`` and ``in1 * in2`` values a row; the rows are taken in blocks of
at most ``_BLOCK_VALUES`` such values (a cut fixed by the shape), so memory
stays bounded and every result is the same bits on any thread count.
"""

import math

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable
from numba.np import numpy_support

from .. import _config, _memory
from .._launch import launch
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    is_dask_array,
    is_device_array,
    result_dtype,
)
from ..cuda import ops as _cuda
from . import linear as L

#: Values of an intermediate per block of rows, at most (at least one row a block).
_BLOCK_VALUES = 1 << 22


def _contract(t, x2, b, has_bias, y):
    """``y[r, o] = sum_j t[r, o * n2 + j] x2[r, j] (+ b[o])``: t (rows, out * n2),
    x2 (rows, n2), y (rows, out)."""
    rows, n_out = y.shape
    n2 = x2.shape[1]
    for r in prange(rows):
        tr = t[r]
        xr = x2[r]
        for o in range(n_out):
            acc = y.dtype.type(0)
            base = o * n2
            for j in range(n2):
                acc += tr[base + j] * xr[j]
            if has_bias:
                acc += b[o]
            y[r, o] = acc


# reassoc: the row dots vectorize (as linear's products); contract: fused multiply-adds
_contract_serial, _contract_parallel = _config.kernels(
    _contract, fastmath=frozenset({"reassoc", "contract"}))


def _weighted_rows(u, g, res):
    """``res[r, :] = sum_o g[r, o] u[r, o * n :(o + 1) * n]``: u (rows, out * n),
    g (rows, out), res (rows, n)."""
    rows, n = res.shape
    n_out = g.shape[1]
    for r in prange(rows):
        ur = u[r]
        out = res[r]
        for i in range(n):
            out[i] = 0
        for o in range(n_out):
            go = g[r, o]
            base = o * n
            for i in range(n):
                out[i] += go * ur[base + i]


_weighted_rows_serial, _weighted_rows_parallel = _config.kernels(
    _weighted_rows, fastmath=frozenset({"contract"}))


def _outer_rows(x1, x2, q):
    """``q[r, i * n2 + j] = x1[r, i] x2[r, j]``."""
    rows, n1 = x1.shape
    n2 = x2.shape[1]
    for r in prange(rows):
        for i in range(n1):
            v = x1[r, i]
            base = i * n2
            for j in range(n2):
                q[r, base + j] = v * x2[r, j]


_outer_rows_serial, _outer_rows_parallel = _config.kernels(_outer_rows)


@_config.serial_kernel
def _column_sums(g, sums):
    """``sums[o] = sum_r g[r, o]`` in float64, the rows in order."""
    for o in range(sums.size):
        sums[o] = 0.0
    for r in range(g.shape[0]):
        for o in range(sums.size):
            sums[o] += g[r, o]


@register_jitable
def _rows_per_block(rows, width):
    """Rows per block of an intermediate of ``width`` values a row: a multiple of
    4 (the product kernels' row tiles) unless it is all the rows; fixed by the shape."""
    per = max(4, _BLOCK_VALUES // max(width, 1) // 4 * 4)
    return max(1, min(rows, per))


# --------------------------------------------------------------------------- #
# argument checks
# --------------------------------------------------------------------------- #


def _check(s1, s2, sw, sb):
    """PyTorch's shape checks of bilinear (its messages), on the shapes (tuples) of
    input1, input2, weight and bias (None without one)."""
    if len(sw) != 3:
        raise ValueError(f"bilinear(): weight must be 3-D (out_features, in1_features, "
                         f"in2_features), got shape {sw}")
    if len(s1) < 1 or len(s2) < 1:
        raise ValueError("bilinear(): inputs must have at least one dimension (the features), "
                         f"got shapes {s1} and {s2}")
    if len(s1) != len(s2):
        raise ValueError(f"bilinear(): input dimensions do not match: got {len(s1)} and "
                         f"{len(s2)}")
    for i, (a, c) in enumerate(zip(s1[:-1], s2[:-1], strict=True)):
        if a != c:
            raise ValueError(f"bilinear(): input batch dimensions do not match at dim {i}: "
                             f"got {a} and {c}")
    if s1[-1] != sw[1]:
        raise ValueError(f"bilinear(): input1 size does not match weight size: got "
                         f"{s1[-1]} but expected {sw[1]}")
    if s2[-1] != sw[2]:
        raise ValueError(f"bilinear(): input2 size does not match weight size: got "
                         f"{s2[-1]} but expected {sw[2]}")
    if sb is not None and len(sb) != 1:
        raise ValueError(f"bilinear(): bias must be 1-D (out_features,), got shape {sb}")
    if sb is not None and sb[0] != sw[0]:
        raise ValueError(f"bilinear(): bias size does not match weight size: got "
                         f"{sb[0]} but expected {sw[0]}")


def _arrays(input1, input2, weight, bias, extra=()):
    """(x1, x2, w, b, compute dtype, result dtype), checked."""
    x1 = as_array(input1, "input1")
    x2 = as_array(input2, "input2")
    w = as_array(weight, "weight")
    b = None if bias is None else as_array(bias, "bias")
    arrays = [(x1, "input1"), (x2, "input2"), (w, "weight"), *extra]
    if b is not None:
        arrays.append((b, "bias"))
    for a, name in arrays:
        result_dtype(a.dtype, name)  # TypeError naming the argument (complex, object)
    _check(x1.shape, x2.shape, w.shape, None if b is None else b.shape)
    compute, dtype = result_dtype(np.result_type(*[a.dtype for a, _ in arrays]))
    return x1, x2, w, b, compute, dtype


def _flat_rows(a, rows, compute):
    return np.ascontiguousarray(a.reshape(rows, a.shape[-1]), dtype=compute)


# --------------------------------------------------------------------------- #
# public functions
# --------------------------------------------------------------------------- #


def bilinear(input1, input2, weight, bias=None, *, out=None):
    r"""Bilinear map :math:`y_o = x_1^T W_o x_2 + b_o` over the last axes.

    Parameters
    ----------
    input1 : array_like, shape (\*, in1_features)
    input2 : array_like, shape (\*, in2_features)
        The same leading dimensions as ``input1``.
    weight : array_like, shape (out_features, in1_features, in2_features)
    bias : array_like, shape (out_features,), optional
    out : ndarray of shape (\*, out_features), optional, keyword-only
        Written with the result (the result dtype).

    Returns
    -------
    ndarray, shape (\*, out_features)
        float32 when the arguments are float32; mixed dtypes promote as NumPy
        does (PyTorch raises instead), integers compute in float64.

    Notes
    -----
    Same as ``torch.nn.functional.bilinear`` (its shape checks and messages).
    Computed as ``x1 @ W`` (a linear layer of ``out_features * in2_features``
    outputs, in the kernels of :func:`nbops.linear`), then a dot product of
    each row with ``x2``: the same bits on any thread count.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x1 = np.array([[1.0, 2.0]])
    >>> x2 = np.array([[3.0, 0.0, 1.0]])
    >>> w = np.arange(12.0).reshape(2, 2, 3)
    >>> nbops.bilinear(x1, x2, w, np.array([0.5, -0.5]))
    array([[ 30.5, 101.5]])
    """
    if type(input1) is not np.ndarray and is_device_array(input1):
        return _cuda().bilinear(input1, input2, weight, bias, out=out)
    if is_dask_array(input1) or is_dask_array(input2):
        return dask_ops().bilinear(input1, input2, weight, bias, out=out)
    x1, x2, w, b, compute, dtype = _arrays(input1, input2, weight, bias)
    n_out, n1, n2 = w.shape
    shape = x1.shape[:-1] + (n_out,)
    if out is not None:
        check_out(out, shape, dtype)
    rows = math.prod(x1.shape[:-1])
    x1r = _flat_rows(x1, rows, compute)
    x2r = _flat_rows(x2, rows, compute)
    w1 = np.ascontiguousarray(w.transpose(0, 2, 1).reshape(n_out * n2, n1), dtype=compute)
    b2 = L._NO_BIAS[compute.char] if b is None else np.ascontiguousarray(b, dtype=compute)
    y = _memory.empty((rows, n_out), compute)
    per = _rows_per_block(rows, n_out * n2)
    t = _memory.empty((per, n_out * n2), compute)
    for r0 in range(0, rows, per):
        r1 = min(rows, r0 + per)
        tb = t[:r1 - r0]
        L._run_product(x1r[r0:r1], w1, None, tb)
        launch(_contract_serial, _contract_parallel, ("bilinear_contract", compute.char),
               (r1 - r0) * n_out * n2, tb, x2r[r0:r1], b2, b is not None, y[r0:r1])
    y = y.reshape(shape)
    if out is not None:
        out[...] = y
        return out
    return y if dtype == compute else y.astype(dtype)


def bilinear_backward(grad_output, input1, input2, weight, bias=None):
    r"""Backward of :func:`nbops.bilinear`: the gradients of its inputs, weight and bias.

    Parameters
    ----------
    grad_output : array_like, shape (\*, out_features)
        The gradient of the forward's output.
    input1, input2, weight : array_like
        The forward's arguments.
    bias : array_like, optional
        The forward's bias, or None: only its shape is used; None gives
        ``grad_bias = None``.

    Returns
    -------
    tuple
        ``(grad_input1, grad_input2, grad_weight, grad_bias)`` of the shapes of
        ``input1``, ``input2``, ``weight`` and ``bias`` (None without a bias), in
        the common float dtype of the arguments (float32 stays float32).

    Notes
    -----
    With ``g`` the gradient of the output and the inputs flattened to rows:

    .. math::

        \partial x_1[r, i] = \sum_{o, j} g_{ro} W_{oij} x_2[r, j], \quad
        \partial x_2[r, j] = \sum_{o, i} g_{ro} x_1[r, i] W_{oij},

        \partial W_{oij} = \sum_r g_{ro} x_1[r, i] x_2[r, j], \quad
        \partial b_o = \sum_r g_{ro},

    as ``torch.autograd`` computes them; the products run in the kernels of
    :func:`nbops.linear` (the same bits on any thread count), ``grad_bias`` is
    summed in float64.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x1 = np.array([[1.0, 2.0]])
    >>> x2 = np.array([[3.0, 0.0, 1.0]])
    >>> w = np.arange(12.0).reshape(2, 2, 3)
    >>> g1, g2, gw, gb = nbops.bilinear_backward(np.ones((1, 2)), x1, x2, w, np.zeros(2))
    >>> g1
    array([[28., 52.]])
    >>> gb
    array([1., 1.])
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().bilinear_backward(grad_output, input1, input2, weight, bias)
    if is_dask_array(grad_output) or is_dask_array(input1) or is_dask_array(input2):
        return dask_ops().bilinear_backward(grad_output, input1, input2, weight, bias)
    g = as_array(grad_output, "grad_output")
    x1, x2, w, b, compute, dtype = _arrays(input1, input2, weight, bias,
                                           ((g, "grad_output"),))
    n_out, n1, n2 = w.shape
    if g.shape != x1.shape[:-1] + (n_out,):
        raise ValueError(f"grad_output must have the forward output's shape "
                         f"{x1.shape[:-1] + (n_out,)}, got {g.shape}")
    rows = math.prod(x1.shape[:-1])
    gr = _flat_rows(g, rows, compute)
    x1r = _flat_rows(x1, rows, compute)
    x2r = _flat_rows(x2, rows, compute)
    wc = np.ascontiguousarray(w, dtype=compute)
    w1 = np.ascontiguousarray(wc.transpose(0, 2, 1).reshape(n_out * n2, n1))  # x1 -> t
    w2 = wc.reshape(n_out * n1, n2)  # x2 -> u
    grad1 = _memory.empty((rows, n1), compute)
    grad2 = _memory.empty((rows, n2), compute)
    grad_w = np.zeros((n_out, n1 * n2), compute)
    per = _rows_per_block(rows, max(n_out * n2, n_out * n1, n1 * n2))
    t = _memory.empty((per, n_out * n2), compute)
    u = _memory.empty((per, n_out * n1), compute)
    q = _memory.empty((per, n1 * n2), compute)
    part = _memory.empty((n_out, n1 * n2), compute) if rows > per else grad_w
    no_sums = np.zeros(0, compute)
    for r0 in range(0, rows, per):
        r1 = min(rows, r0 + per)
        m = r1 - r0
        gb, x1b, x2b = gr[r0:r1], x1r[r0:r1], x2r[r0:r1]
        tb, ub, qb = t[:m], u[:m], q[:m]
        L._run_product(x1b, w1, None, tb)
        launch(_weighted_rows_serial, _weighted_rows_parallel,
               ("bilinear_weighted_rows", compute.char), m * n_out * n2, tb, gb, grad2[r0:r1])
        L._run_product(x2b, w2, None, ub)
        launch(_weighted_rows_serial, _weighted_rows_parallel,
               ("bilinear_weighted_rows", compute.char), m * n_out * n1, ub, gb, grad1[r0:r1])
        launch(_outer_rows_serial, _outer_rows_parallel, ("bilinear_outer", compute.char),
               m * n1 * n2, x1b, x2b, qb)
        L.launch_tasks(L._weight_grad_serial, L._weight_grad_parallel, L._weight_grad_task,
                       ("linear_weight", compute.char), m * n1 * n2 * n_out, gb, qb, part,
                       no_sums, False)
        if part is not grad_w:
            grad_w += part
    grad_bias = None
    if b is not None:
        sums = np.zeros(n_out)
        _column_sums(gr, sums)
        grad_bias = sums.astype(dtype)
    return (grad1.reshape(x1.shape).astype(dtype, copy=False),
            grad2.reshape(x2.shape).astype(dtype, copy=False),
            grad_w.reshape(n_out, n1, n2).astype(dtype, copy=False), grad_bias)


__all__ = ["bilinear", "bilinear_backward"]


# --------------------------------------------------------------------------- #
# inside a user's @njit function
# --------------------------------------------------------------------------- #


def _is_none(t):
    return t is None or isinstance(t, (types.NoneType, types.Omitted))


def _njit_types(arrays, bias, op):
    """The compute dtype (Numba type) of the arguments, or None when they are not arrays."""
    if not all(isinstance(a, types.Array) for a in arrays):
        return None
    has_bias = not _is_none(bias)
    if has_bias and not (isinstance(bias, types.Array) and bias.ndim == 1):
        raise errors.TypingError(f"nbops.{op}: bias must be a 1-D array or None")
    if arrays[-1].ndim != 3:
        raise errors.TypingError(f"nbops.{op}: weight must be 3-D (out_features, "
                                 "in1_features, in2_features)")
    dts = [numpy_support.as_dtype(a.dtype) for a in arrays]
    if has_bias:
        dts.append(numpy_support.as_dtype(bias.dtype))
    compute, res = result_dtype(np.result_type(*dts))
    if compute != res:
        raise errors.TypingError(f"nbops.{op} inside @njit: float16 is not supported")
    return numpy_support.from_dtype(compute), has_bias


@register_jitable
def _njit_product(x, w, y, few, no_bias):
    """y = x w^T in the serial kernel :func:`nbops._ops.linear._run_product` picks."""
    if x.shape[1] <= few:
        L.product_rows_linked(x, np.ascontiguousarray(w.T), no_bias, False, y)
    else:
        L.product_linked(x, w, no_bias, False, y)


@register_jitable
def _njit_check(input1, input2, weight):
    n_out, n1, n2 = weight.shape
    if input1.shape[:-1] != input2.shape[:-1]:
        raise ValueError("bilinear(): input batch dimensions do not match")
    if input1.shape[-1] != n1:
        raise ValueError("bilinear(): input1 size does not match weight size")
    if input2.shape[-1] != n2:
        raise ValueError("bilinear(): input2 size does not match weight size")


@register_jitable
def _leading_size(shape):
    """The number of rows of an array of ``shape`` taken as (rows, shape[-1]);
    ``reshape(-1, 0)`` cannot infer it when the last axis is empty."""
    rows = 1
    for k in range(len(shape) - 1):
        rows *= shape[k]
    return rows


@overload(bilinear)
def _bilinear_njit(input1, input2, weight, bias=None, out=None):
    """Inside @njit: the serial kernels of the Python path, the same row blocks
    (the same bits); no ``out=``."""
    found = _njit_types((input1, input2, weight), bias, "bilinear")
    if found is None:
        return None
    if not _is_none(out):
        raise errors.TypingError("nbops.bilinear: out= is not supported inside @njit")
    if input1.ndim != input2.ndim:
        raise errors.TypingError("nbops.bilinear: input dimensions do not match")
    dtype, has_bias = found
    few = L.FEW_INPUTS[np.dtype(str(dtype)).char]

    def impl(input1, input2, weight, bias=None, out=None):
        _njit_check(input1, input2, weight)
        n_out, n1, n2 = weight.shape
        b = np.zeros(n_out if has_bias else 0, dtype)
        if has_bias:
            if bias.shape[0] != n_out:
                raise ValueError("bilinear(): bias size does not match weight size")
            for o in range(n_out):
                b[o] = bias[o]
        rows = _leading_size(input1.shape)
        x1 = np.ascontiguousarray(input1).reshape((rows, n1)).astype(dtype)
        x2 = np.ascontiguousarray(input2).reshape((rows, n2)).astype(dtype)
        w1 = np.ascontiguousarray(np.ascontiguousarray(weight).astype(dtype).transpose(
            0, 2, 1)).reshape((n_out * n2, n1))
        nob = np.empty(0, dtype)
        y = np.empty((rows, n_out), dtype)
        per = _rows_per_block(rows, n_out * n2)
        for r0 in range(0, rows, per):  # (copies: contiguous arrays, as outside @njit)
            r1 = min(rows, r0 + per)
            tb = np.empty((r1 - r0, n_out * n2), dtype)
            yb = np.empty((r1 - r0, n_out), dtype)
            _njit_product(np.ascontiguousarray(x1[r0:r1]), w1, tb, few, nob)
            _contract_serial(tb, np.ascontiguousarray(x2[r0:r1]), b, has_bias, yb)
            y[r0:r1] = yb
        return y.reshape(input1.shape[:-1] + (n_out,))

    return impl


@overload(bilinear_backward)
def _bilinear_backward_njit(grad_output, input1, input2, weight, bias=None):
    """Inside @njit: the serial kernels of the Python path, the same row blocks
    (the same bits)."""
    found = _njit_types((grad_output, input1, input2, weight), bias, "bilinear_backward")
    if found is None:
        return None
    if not input1.ndim == input2.ndim == grad_output.ndim:
        raise errors.TypingError("nbops.bilinear_backward: grad_output, input1 and input2 "
                                 "must have the same number of dimensions")
    dtype, has_bias = found
    few = L.FEW_INPUTS[np.dtype(str(dtype)).char]

    def impl(grad_output, input1, input2, weight, bias=None):
        _njit_check(input1, input2, weight)
        n_out, n1, n2 = weight.shape
        if grad_output.shape[:-1] != input1.shape[:-1] or grad_output.shape[-1] != n_out:
            raise ValueError("bilinear_backward: grad_output must have the forward output's "
                             "shape")
        if has_bias and bias.shape[0] != n_out:
            raise ValueError("bilinear(): bias size does not match weight size")
        rows = _leading_size(input1.shape)
        g = np.ascontiguousarray(grad_output).reshape((rows, n_out)).astype(dtype)
        x1 = np.ascontiguousarray(input1).reshape((rows, n1)).astype(dtype)
        x2 = np.ascontiguousarray(input2).reshape((rows, n2)).astype(dtype)
        wc = np.ascontiguousarray(weight).astype(dtype)
        w1 = np.ascontiguousarray(wc.transpose(0, 2, 1)).reshape((n_out * n2, n1))
        w2 = wc.reshape((n_out * n1, n2))
        nob = np.empty(0, dtype)
        grad1 = np.empty((rows, n1), dtype)
        grad2 = np.empty((rows, n2), dtype)
        grad_w = np.zeros((n_out, n1 * n2), dtype)
        per = _rows_per_block(rows, max(n_out * n2, n_out * n1, n1 * n2))
        part = np.empty((n_out, n1 * n2), dtype)
        for r0 in range(0, rows, per):  # (copies: contiguous arrays, as outside @njit)
            r1 = min(rows, r0 + per)
            m = r1 - r0
            gb = np.ascontiguousarray(g[r0:r1])
            x1b = np.ascontiguousarray(x1[r0:r1])
            x2b = np.ascontiguousarray(x2[r0:r1])
            tb = np.empty((m, n_out * n2), dtype)
            ub = np.empty((m, n_out * n1), dtype)
            qb = np.empty((m, n1 * n2), dtype)
            g1b = np.empty((m, n1), dtype)
            g2b = np.empty((m, n2), dtype)
            _njit_product(x1b, w1, tb, few, nob)
            _weighted_rows_serial(tb, gb, g2b)
            _njit_product(x2b, w2, ub, few, nob)
            _weighted_rows_serial(ub, gb, g1b)
            _outer_rows_serial(x1b, x2b, qb)
            L.weight_grad_linked(gb, qb, part, nob, False)
            grad1[r0:r1] = g1b
            grad2[r0:r1] = g2b
            if rows > per:
                grad_w += part
            else:
                grad_w[:, :] = part
        grad_bias = None
        if has_bias:
            sums = np.zeros(n_out)
            _column_sums(g, sums)
            grad_bias = sums.astype(dtype)
        return (grad1.reshape(input1.shape), grad2.reshape(input2.shape),
                grad_w.reshape(n_out, n1, n2), grad_bias)

    return impl
