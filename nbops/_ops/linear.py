"""``nbops.linear``: y = x W^T + b, the matrix product done by NumPy's BLAS.

A Numba ``np.dot`` inside parallel code oversubscribes the BLAS threads (see
docs/guides/architecture.rst, "Memory, threads and BLAS"), so the product runs
through NumPy from Python; the bias is added in place on the product, with no
extra temporary.
"""

import math

import numpy as np
from numba import types
from numba.core import errors
from numba.extending import overload
from numba.np import numpy_support

from .. import _config
from .._launch import entry_point
from .._validate import as_array, check_out, dask_ops, is_dask_array, is_device_array, result_dtype
from ..cuda import ops as _cuda


def linear(input, weight, bias=None, out=None):
    r"""Affine map :math:`y = x W^T + b` over the last axis.

    Parameters
    ----------
    input : array_like, shape (\*, in_features)
        Any number of leading axes (including none: a 1-D input).
    weight : array_like, shape (out_features, in_features)
    bias : array_like, shape (out_features,), optional
    out : ndarray of shape (\*, out_features), optional

    Returns
    -------
    ndarray, shape (\*, out_features)
        float32 when input and weight are float32. Mixed dtypes promote as
        NumPy does (PyTorch raises instead); integers compute in float64,
        float16 in float32 (rounded to float16 once). ``bias`` may also have
        shape ``()`` or ``(1,)`` (broadcast, as PyTorch). A 1-D ``weight``
        (which PyTorch accepts) is rejected.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[1.0, 2.0]], dtype=np.float32)
    >>> w = np.array([[1.0, 0.0], [1.0, 1.0], [0.5, -1.0]], dtype=np.float32)
    >>> nbops.linear(x, w, np.array([0.0, 1.0, 0.0], dtype=np.float32))
    array([[ 1. ,  4. , -1.5]], dtype=float32)
    """
    if type(input) is np.ndarray:
        y = _small(input, weight, bias, out)
        if y is not None:
            return y
    elif is_device_array(input):
        return _cuda().linear(input, weight=weight, bias=bias, out=out)
    elif is_dask_array(input):
        return dask_ops().linear(input, weight, bias, out=out)
    x = as_array(input)
    w = as_array(weight, "weight")
    result_dtype(x.dtype, "input")  # TypeError naming the argument (complex, object)
    result_dtype(w.dtype, "weight")
    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input's last axis must have in_features={w.shape[1]} elements "
                         f"(weight shape {w.shape}), got input shape {x.shape}")
    dt = np.result_type(x.dtype, w.dtype)
    n_out = w.shape[0]
    if bias is not None:
        b = as_array(bias, "bias")
        result_dtype(b.dtype, "bias")
        if b.ndim > 1 or b.size not in (1, n_out):  # (), (1,) broadcast, as PyTorch
            raise ValueError(f"bias must have shape ({n_out},) (out_features, "
                             f"weight.shape[0]), got {b.shape}")
        dt = np.result_type(dt, b.dtype)
    compute, dtype = result_dtype(dt)  # float16: computed in float32, rounded once
    shape = x.shape[:-1] + (n_out,)
    if out is not None:
        check_out(out, shape, dtype)
    rows = 1
    for d in x.shape[:-1]:
        rows *= d
    x2 = x.reshape(rows, x.shape[-1]).astype(compute, copy=False)  # (rows, 0) works too
    wt = w.astype(compute, copy=False).T
    direct = out is not None and dtype == compute and out.flags.c_contiguous
    with np.errstate(all="ignore"):  # NaN/inf propagate silently, as in PyTorch
        y = np.matmul(x2, wt, out=out.reshape(rows, n_out) if direct else None)
        if bias is not None:
            y += b.astype(compute, copy=False).reshape(-1)
    if direct:
        return out
    y = y.reshape(shape)
    if out is not None:
        out[...] = y
        return out
    return y if dtype == compute else y.astype(dtype)


# ------------------------------------------------------- small products, serial
#: Products of at most this many multiply-adds (rows * in * out, e.g. (64, 128)
#: x (128, 64)) run in a serial kernel: below it, BLAS's call and threading
#: overhead (and NumPy's error-state handling) cost more than the product
#: (docs/guides/performance.rst, "linear").
SMALL_PRODUCT = 1 << 19

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _small_product(x, w, b, has_bias, y):
    """y = x w^T (+ b): x (rows, in), w (out, in), y (rows, out), C-contiguous, one dtype."""
    n_in = x.shape[1]
    for r in range(x.shape[0]):
        for o in range(w.shape[0]):
            acc = y.dtype.type(0)
            for k in range(n_in):
                acc += x[r, k] * w[o, k]
            if has_bias:
                acc += b[o]
            y[r, o] = acc


# reassoc: the dot product vectorizes (BLAS sums in its own order too); contract: FMA
_small_product_kernel = _config.serial_kernel(_small_product,
                                              fastmath=frozenset({"reassoc", "contract"}))


def _small(x, weight, bias, out):
    """The common small call (one float dtype, C-contiguous, no ``out=``) in the
    serial kernel; None for any other call (the general path checks it)."""
    if not (out is None and type(weight) is np.ndarray and x.dtype in _FLOATS
            and weight.dtype == x.dtype and weight.ndim == 2 and x.ndim >= 1
            and x.shape[-1] == weight.shape[1]
            and (bias is None or (type(bias) is np.ndarray and bias.dtype == x.dtype
                                  and bias.shape == (weight.shape[0],)))):
        return None
    n_out, n_in = weight.shape
    rows = math.prod(x.shape[:-1])
    if rows * n_in * n_out > SMALL_PRODUCT or not (x.flags.c_contiguous
                                                   and weight.flags.c_contiguous):
        return None
    y = np.empty(x.shape[:-1] + (n_out,), x.dtype)
    x2, y2 = x.reshape(rows, n_in), y.reshape(rows, n_out)
    b = weight[0, :0] if bias is None else bias  # (never read without a bias)
    args = (x2, weight, b, bias is not None, y2)
    entry_point(_small_product_kernel, ("linear", x.dtype.char), args)(*args)
    return y


@overload(linear)
def _linear_njit(input, weight, bias=None, out=None):
    """Inside @njit: a plain loop (Numba's np.dot needs SciPy, and BLAS inside
    parallel code oversubscribes threads). Fine for small layers."""
    if not (isinstance(input, types.Array) and isinstance(weight, types.Array)):
        return None
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        return None
    if weight.ndim != 2 or input.ndim < 1:
        raise errors.TypingError("nbops.linear: weight must be 2-D and input at least 1-D")
    has_bias = not (bias is None or isinstance(bias, (types.NoneType, types.Omitted)))
    dts = [numpy_support.as_dtype(input.dtype), numpy_support.as_dtype(weight.dtype)]
    if has_bias:
        if not isinstance(bias, types.Array) or bias.ndim != 1:
            raise errors.TypingError("nbops.linear: bias must be a 1-D array")
        dts.append(numpy_support.as_dtype(bias.dtype))
    compute, res_dt = result_dtype(np.result_type(*dts))
    if compute != res_dt:
        raise errors.TypingError("nbops.linear inside @njit: float16 is not supported")
    dtype = numpy_support.from_dtype(compute)

    def impl(input, weight, bias=None, out=None):
        n_in = input.shape[-1]
        if weight.shape[1] != n_in:
            raise ValueError("linear: input's last axis must have weight.shape[1] elements")
        n_out = weight.shape[0]
        if has_bias:
            if bias.shape[0] != n_out and bias.shape[0] != 1:
                raise ValueError("linear: bias must have weight.shape[0] elements")
        x2 = np.ascontiguousarray(input).reshape(-1, n_in)
        res = np.empty((x2.shape[0], n_out), dtype)
        for i in range(x2.shape[0]):
            for o in range(n_out):
                acc = dtype(0)
                for k in range(n_in):
                    acc += dtype(x2[i, k]) * dtype(weight[o, k])
                if has_bias:
                    acc += dtype(bias[o if bias.shape[0] == n_out else 0])
                res[i, o] = acc
        return res.reshape(input.shape[:-1] + (n_out,))

    return impl


__all__ = ["linear"]
