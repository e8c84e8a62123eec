"""``nbops.linear``: y = x W^T + b, the matrix product done by NumPy's BLAS.

A Numba ``np.dot`` inside parallel code oversubscribes the BLAS threads (see
DESIGN.md), so the product runs through NumPy from Python; the bias is added
in place on the product, with no extra temporary.
"""

import numpy as np
from numba import types
from numba.extending import overload

from ._validate import as_array, result_dtype


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
        NumPy does (PyTorch raises instead); integers compute in float64.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[1.0, 2.0]], dtype=np.float32)
    >>> w = np.array([[1.0, 0.0], [1.0, 1.0], [0.5, -1.0]], dtype=np.float32)
    >>> nbops.linear(x, w, np.array([0.0, 1.0, 0.0], dtype=np.float32))
    array([[ 1. ,  4. , -1.5]], dtype=float32)
    """
    x = as_array(input)
    w = as_array(weight, "weight")
    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input's last axis must have in_features={w.shape[1]} elements "
                         f"(weight shape {w.shape}), got input shape {x.shape}")
    dtype = result_dtype(np.result_type(x.dtype, w.dtype))[1]
    if bias is not None:
        b = as_array(bias, "bias")
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias must have shape ({w.shape[0]},), got {b.shape}")
        dtype = result_dtype(np.result_type(dtype, b.dtype), "bias")[1]
    shape = x.shape[:-1] + (w.shape[0],)
    if out is not None:
        from ._validate import check_out
        check_out(out, shape, dtype)
    x2 = x.reshape(-1, x.shape[-1]).astype(dtype, copy=False)
    wt = w.astype(dtype, copy=False).T
    dest = out.reshape(-1, w.shape[0]) if (out is not None and out.flags.c_contiguous) else None
    y = np.matmul(x2, wt, out=dest)
    if bias is not None:
        y += b.astype(dtype, copy=False)
    y = y.reshape(shape)
    if out is not None and dest is None:
        out[...] = y
        return out
    return out if out is not None else y


@overload(linear)
def _linear_njit(input, weight, bias=None, out=None):
    """Inside @njit: a plain loop (Numba's np.dot needs SciPy, and BLAS inside
    parallel code oversubscribes threads). Fine for small layers."""
    if not (isinstance(input, types.Array) and isinstance(weight, types.Array)):
        return None
    has_bias = not (bias is None or isinstance(bias, (types.NoneType, types.Omitted)))
    dtype = input.dtype if isinstance(input.dtype, types.Float) else types.float64

    def impl(input, weight, bias=None, out=None):
        n_in = input.shape[-1]
        if weight.shape[1] != n_in:
            raise ValueError("input's last axis must have weight.shape[1] elements")
        n_out = weight.shape[0]
        x2 = np.ascontiguousarray(input).reshape(-1, n_in)
        res = np.empty((x2.shape[0], n_out), dtype)
        for i in range(x2.shape[0]):
            for o in range(n_out):
                acc = dtype(0)
                for k in range(n_in):
                    acc += x2[i, k] * weight[o, k]
                if has_bias:
                    acc += bias[o]
                res[i, o] = acc
        return res.reshape(input.shape[:-1] + (n_out,))

    return impl


__all__ = ["linear"]
