"""``nbops.pairwise_distance``: the p-norm of x1 - x2 + eps along the last axis."""

import math

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload

from . import _config
from ._launch import launch
from ._validate import as_array, as_param, result_dtype
from .scalar._math import const


@_config.core
def pnorm_row(a, b, start, stop, p, eps):
    """``||a[start:stop] - b[start:stop] + eps||_p`` (p may be 0, fractional, or +-inf)."""
    if p == 2:
        s = const(eps, 0.0)
        for i in range(start, stop):
            d = a[i] - b[i] + eps
            s += d * d
        return math.sqrt(s)
    if p == 1:
        s = const(eps, 0.0)
        for i in range(start, stop):
            s += abs(a[i] - b[i] + eps)
        return s
    if p == 0:
        s = const(eps, 0.0)
        for i in range(start, stop):
            if a[i] - b[i] + eps != 0:
                s += const(eps, 1.0)
        return s
    if math.isinf(p):
        best = const(eps, math.inf) if p < 0 else const(eps, 0.0)
        if p < 0 and stop == start:
            best = const(eps, 0.0)
        for i in range(start, stop):
            d = abs(a[i] - b[i] + eps)
            if d != d:
                return d
            if (p > 0 and d > best) or (p < 0 and d < best):
                best = d
        return best
    s = const(eps, 0.0)
    for i in range(start, stop):
        s += abs(a[i] - b[i] + eps) ** p
    return s ** (const(eps, 1.0) / p)


@_config.parallel_kernel
def _pdist_parallel(a, b, dim, p, eps, out):
    for r in prange(out.size):
        out[r] = pnorm_row(a, b, r * dim, (r + 1) * dim, p, eps)


@_config.serial_kernel
def _pdist_serial(a, b, dim, p, eps, out):
    for r in range(out.size):
        out[r] = pnorm_row(a, b, r * dim, (r + 1) * dim, p, eps)


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    r"""Distance between matching rows: :math:`\lVert x_1 - x_2 + \epsilon \rVert_p`.

    As PyTorch, ``eps`` is added to the difference (not to the norm), and the
    norm is taken over the last axis after broadcasting ``x1`` against ``x2``.

    Parameters
    ----------
    x1, x2 : array_like
        Broadcastable shapes ``(*, D)``; 1-D inputs give a 0-d result.
    p : float
        The norm degree: 0 (count of non-zeros), 1, 2, fractional, ``inf``, ``-inf``.
    eps : float
        Added to every difference ``x1 - x2``.
    keepdim : bool
        Keep the reduced axis with length 1.

    Returns
    -------
    ndarray of shape ``broadcast(x1, x2).shape[:-1]`` (``(..., 1)`` with keepdim).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.pairwise_distance(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([3.0, 4.0]))
    array([4.9999986 , 3.60554989])
    """
    a = as_array(x1, "x1")
    b = as_array(x2, "x2")
    p = as_param(p, "p")
    eps = as_param(eps, "eps")
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"x1 of shape {a.shape} and x2 of shape {b.shape} do not broadcast") \
            from None
    compute, result = result_dtype(np.result_type(a.dtype, b.dtype), "x1")
    if len(shape) == 0:
        shape = (1,)
    dim = shape[-1]
    a = np.ascontiguousarray(np.broadcast_to(a, shape), dtype=compute)
    b = np.ascontiguousarray(np.broadcast_to(b, shape), dtype=compute)
    out_shape = shape[:-1] + ((1,) if keepdim else ())
    res = np.empty(out_shape, compute)
    if res.size:
        launch(_pdist_serial, _pdist_parallel, ("pdist", compute.char), a.size + res.size,
               a.reshape(-1), b.reshape(-1), dim, compute.type(p), compute.type(eps),
               res.reshape(-1))
    return res if result == compute else res.astype(result)


@overload(pairwise_distance, prefer_literal=True)
def _pairwise_distance_njit(x1, x2, p=2.0, eps=1e-6, keepdim=False):
    if not (isinstance(x1, types.Array) and isinstance(x2, types.Array)):
        return None
    if x1.ndim != x2.ndim:
        raise errors.TypingError("nbops.pairwise_distance inside @njit: x1 and x2 must "
                                 "have the same ndim (size-1 axes broadcast)")
    if isinstance(keepdim, types.BooleanLiteral):
        keep = keepdim.literal_value
    elif keepdim is False or isinstance(keepdim, (types.Omitted, bool)):
        keep = False
    else:
        raise errors.TypingError("nbops.pairwise_distance inside @njit: keepdim must be "
                                 "a constant True or False")
    dtype = x1.dtype if isinstance(x1.dtype, types.Float) else types.float64

    def impl(x1, x2, p=2.0, eps=1e-6, keepdim=False):
        shape = np.broadcast_shapes(x1.shape, x2.shape)
        a = np.ascontiguousarray(np.broadcast_to(x1, shape)).astype(dtype)
        b = np.ascontiguousarray(np.broadcast_to(x2, shape)).astype(dtype)
        dim = shape[-1]
        rows = a.size // dim if dim else 0
        res = np.empty(rows, dtype)
        af = a.reshape(-1)
        bf = b.reshape(-1)
        for r in range(rows):
            res[r] = pnorm_row(af, bf, r * dim, (r + 1) * dim, dtype(p), dtype(eps))
        if keep:
            return res.reshape(shape[:-1] + (1,))
        return res.reshape(shape[:-1])

    return impl


__all__ = ["pairwise_distance"]
