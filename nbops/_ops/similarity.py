"""Similarities and distances along an axis or between row sets:
``nbops.cosine_similarity``, ``nbops.normalize``, ``nbops.pdist``, ``nbops.cdist``
and their backwards.

Arithmetic
----------
Every row sum (squared norms, dot products, p-norms of differences) is a
float64 sum in a fixed order, whatever the input dtype, and each output element
is computed by one thread: the results are bit-identical on any thread count.
The differences of ``pdist``/``cdist`` are taken in float64 too, so a float32
result is the float64 distance rounded once (pdist at p = 2 on more than 25
rows: the float32 square root of the float64 squared distance rounded to
float32, within 1 ulp of it).

cdist at p = 2
--------------
PyTorch's ``compute_mode`` chooses between the direct sum of squared
differences and the product form ``|a|^2 + |b|^2 - 2 a.b`` (a matrix product:
fast, but it cancels when ``a`` and ``b`` are close, so PyTorch's result for
two equal rows is often not 0). nbops follows the same choice of mode, and in
the product mode recomputes directly every pair whose squared distance is
below ``_RECOMPUTE`` times ``|a|^2 + |b|^2`` (or not finite): the product
form is kept only where it cannot cancel much, equal rows give exactly 0, and
the result stays within a few float32 ulps of the float64 distance. The
product ``x1 x2^T`` is nbops' own matrix product (:mod:`nbops._ops.linear`).
pdist at p = 2 on more than 25 rows computes only the upper triangle
(:func:`_pdist_l2`): with few features directly (vectorized float64 sums),
else in the same product form with the same recomputation; its backward takes
the same matrix form as cdist's.
"""

import math
import operator

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable
from numba.np import numpy_support
from numba.np.unsafe.ndarray import to_fixed_tuple

from .. import _config, _memory
from .._launch import entry_point, launch, serial_below
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    is_dask_array,
    is_device_array,
    lean_destination,
    overlaps_differently,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar._norms import (
    PNORM_0,
    PNORM_1,
    PNORM_2,
    PNORM_MAX,
    pnorm_add,
    pnorm_backward,
    pnorm_finish,
    pnorm_kind,
    pnorm_start,
    sgn,
)
from ..scalar.rows import ROW_FASTMATH, chunk_function, row_view
from . import linear as _linear
from .distance import _check_out_pair, _deliver_pair, _sum_to, _sum_to_njit
from .elementwise import _float_array
from .row_tasks import _rows_per_task

#: pnorm_kind for the Python-level callers (its plain function: calling the jitted
#: core from Python would compile it in every process, outside the disk cache)
_pnorm_kind = pnorm_kind.py_func

#: cdist's product form is kept where the squared distance is at least this
#: fraction of ``|a|^2 + |b|^2`` (else the pair is recomputed directly).
_RECOMPUTE = 0.5
#: cdist's compute_mode values (PyTorch's).
COMPUTE_MODES = ("use_mm_for_euclid_dist_if_necessary", "use_mm_for_euclid_dist",
                 "donot_use_mm_for_euclid_dist")
#: the dtypes of the lean calls (_fast_normalize, _lean_product)
_LEAN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------- #
# shared cores
# --------------------------------------------------------------------------- #


@_config.core
def _dot3(a, b, start, n):
    """float64 ``(sum a*a, sum b*b, sum a*b)`` over ``a[start:start+n]``, ``b[...]``."""
    w1 = w2 = w12 = 0.0
    for i in range(start, start + n):
        x = np.float64(a[i])
        y = np.float64(b[i])
        w1 += x * x
        w2 += y * y
        w12 += x * y
    return w1, w2, w12


@_config.core
def _row_pnorm(x, start, n, p, kind):
    """float64 p-norm of ``x[start:start+n]``."""
    if kind == PNORM_2:
        s = 0.0
        for i in range(start, start + n):
            v = np.float64(x[i])
            s += v * v
        return math.sqrt(s)
    acc = pnorm_start(0.0, kind)
    for i in range(start, start + n):
        acc = pnorm_add(acc, np.float64(x[i]), p, kind)
    return pnorm_finish(acc, p, kind)


@register_jitable
def _dot64(a, b, n):
    """float64 ``sum(a[:n] * b[:n])`` as one plain loop: in a kernel compiled with
    ``ROW_FASTMATH`` LLVM vectorizes it (``reassoc`` lets it split the sum into
    vector lanes; no NaN/inf flag). The order is fixed by the compiled code and
    ``n``: the same bits on any thread count."""
    s = 0.0
    for j in range(n):
        s += np.float64(a[j]) * np.float64(b[j])
    return s


@_config.core
def _distance(x, xs, y, ys, m, p, kind):
    """float64 p-norm of ``x[xs:xs+m] - y[ys:ys+m]`` (differences in float64;
    p = 2 and 1 in four independent sums, added in a fixed order)."""
    x = x[xs:xs + m]  # (slices: indices from range() need no wraparound check)
    y = y[ys:ys + m]
    m4 = m - m % 4
    if kind == PNORM_2:
        s0 = s1 = s2 = s3 = 0.0
        for k in range(0, m4, 4):
            d0 = np.float64(x[k]) - np.float64(y[k])
            d1 = np.float64(x[k + 1]) - np.float64(y[k + 1])
            d2 = np.float64(x[k + 2]) - np.float64(y[k + 2])
            d3 = np.float64(x[k + 3]) - np.float64(y[k + 3])
            s0 += d0 * d0
            s1 += d1 * d1
            s2 += d2 * d2
            s3 += d3 * d3
        for k in range(m4, m):
            d = np.float64(x[k]) - np.float64(y[k])
            s0 += d * d
        return math.sqrt((s0 + s1) + (s2 + s3))
    if kind == PNORM_1:
        s0 = s1 = s2 = s3 = 0.0
        for k in range(0, m4, 4):
            s0 += abs(np.float64(x[k]) - np.float64(y[k]))
            s1 += abs(np.float64(x[k + 1]) - np.float64(y[k + 1]))
            s2 += abs(np.float64(x[k + 2]) - np.float64(y[k + 2]))
            s3 += abs(np.float64(x[k + 3]) - np.float64(y[k + 3]))
        for k in range(m4, m):
            s0 += abs(np.float64(x[k]) - np.float64(y[k]))
        return (s0 + s1) + (s2 + s3)
    acc = pnorm_start(0.0, kind)
    for k in range(m):
        acc = pnorm_add(acc, np.float64(x[k]) - np.float64(y[k]), p, kind)
    return pnorm_finish(acc, p, kind)


@_config.core
def _distance_backward(d, dist, g, p, kind):
    """``g`` times the derivative of a distance ``dist`` with respect to one
    difference ``d``, with PyTorch's pdist/cdist conventions: p = 0: 0; p = 1:
    ``g sgn(d)``; p = 2: ``g d / dist`` (0 where ``dist == 0``); p = inf:
    ``g sgn(d)`` where ``|d| == dist``, else 0 (not shared between ties); p < 2:
    ``g sgn(d) |d|^(p-1) / dist^(p-1)`` (0 where ``dist == 0``, or ``d == 0``
    and p < 1); p > 2: ``g d |d|^(p-2) / dist^(p-1)`` (0 where ``dist == 0``)."""
    if kind == PNORM_0:
        return 0.0
    if kind == PNORM_1:
        return g * sgn(d)
    if kind == PNORM_2:
        return 0.0 if dist == 0 else g * d / dist
    if kind == PNORM_MAX:
        return g * sgn(d) if abs(d) == dist else 0.0
    if p < 2:
        if dist == 0 or (d == 0 and p < 1):
            return 0.0
        return sgn(d) * abs(d) ** (p - 1.0) * g / dist ** (p - 1.0)
    if dist == 0:
        return 0.0
    return d * abs(d) ** (p - 2.0) * g / dist ** (p - 1.0)


# --------------------------------------------------------------------------- #
# argument handling
# --------------------------------------------------------------------------- #


def _axis(axis, ndim, op):
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{op}: axis must be an integer, got {axis!r}") from None
    if ndim == 0 or not -ndim <= axis < ndim:
        raise IndexError(f"{op}: axis {axis} is out of range for an input of {ndim} "
                         "dimension(s)")
    return axis % ndim


def _float_param(value, name, op):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be a real number, got {value!r}") from None


def _moved_rows(x, shape, axis, compute):
    """``x`` broadcast to ``shape`` with ``axis`` moved last, as a C-contiguous
    (rows, length) array of ``compute`` (no copy when it already is one)."""
    v = x if x.shape == shape else np.broadcast_to(x, shape)
    if axis != len(shape) - 1:
        v = np.moveaxis(v, axis, -1)
    v = np.ascontiguousarray(v, dtype=compute)
    length = shape[axis]
    return v.reshape(math.prod(v.shape[:-1]), length)


def _unmove(res, shape, axis):
    """A (rows, length) result of :func:`_moved_rows` back to ``shape``'s layout."""
    moved = shape[:axis] + shape[axis + 1:] + (shape[axis],)
    return np.moveaxis(res.reshape(moved), -1, axis)


def _put(res, out, result):
    """``res`` written into ``out`` (checked by the caller) or returned as ``result``."""
    if out is None:
        return np.ascontiguousarray(res, dtype=result)
    if not np.may_share_memory(res, out):  # (else res is out: see _rows_result)
        out[...] = res
    return out


def _rows_result(out, shape, axis, compute, *inputs):
    """The (rows, length) array a row kernel writes: ``out`` itself (reshaped)
    when it is C-contiguous of ``compute`` with ``axis`` the last one and
    overlaps none of the (rows, length) ``inputs`` other than as the very same
    elements (the kernels read a row whole before they write it), so the kernel
    writes it directly; otherwise a new array."""
    if (out is not None and axis == out.ndim - 1 and out.dtype == compute
            and out.flags.c_contiguous):
        res = out.reshape(shape)
        if not any(overlaps_differently(res, a) for a in inputs):
            return res
    return _memory.empty(shape, compute)


def _check_grad(g, shape):
    if g.shape != shape:
        raise ValueError(f"grad_output has shape {g.shape}, expected {shape} (the "
                         "forward's output shape)")


# --------------------------------------------------------------------------- #
# cosine_similarity
# --------------------------------------------------------------------------- #


def _cos_forward(a, b, dim, eps, out):
    for r in prange(out.size):
        w1, w2, w12 = _dot3(a, b, r * dim, dim)
        n1 = math.sqrt(w1)
        n2 = math.sqrt(w2)
        n1 = eps if n1 < eps else n1
        n2 = eps if n2 < eps else n2
        out[r] = w12 / (n1 * n2)


_cos_forward_serial, _cos_forward_parallel = _config.kernels(_cos_forward)


def _cos_backward(a, b, dim, eps, g, out1, out2):
    for r in prange(g.size):
        s = r * dim
        w1, w2, w12 = _dot3(a, b, s, dim)
        r1 = math.sqrt(w1)
        r2 = math.sqrt(w2)
        n1 = eps if r1 < eps else r1
        n2 = eps if r2 < eps else r2
        gr = np.float64(g[r])
        cos = w12 / (n1 * n2)
        c12 = gr / (n1 * n2)
        k1 = 0.0 if r1 == 0 else gr * cos / (n1 * r1)
        k2 = 0.0 if r2 == 0 else gr * cos / (n2 * r2)
        for i in range(s, s + dim):
            x = np.float64(a[i])
            y = np.float64(b[i])
            out1[i] = c12 * y - k1 * x
            out2[i] = c12 * x - k2 * y


_cos_backward_serial, _cos_backward_parallel = _config.kernels(_cos_backward)


def _cos_plan(x1, x2, axis, eps, op):
    a = as_array(x1, "x1")
    b = as_array(x2, "x2")
    r1 = result_dtype(a.dtype, "x1")[1]
    r2 = result_dtype(b.dtype, "x2")[1]
    try:
        shape = np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: x1 of shape {a.shape} and x2 of shape {b.shape} do not "
                         "broadcast") from None
    axis = _axis(axis, len(shape), op)
    eps = _float_param(eps, "eps", op)
    return a, b, r1, r2, shape, axis, eps


def cosine_similarity(x1, x2, axis=1, eps=1e-8, *, out=None):
    r"""Cosine similarity along ``axis``: :math:`\frac{x_1 \cdot x_2}{\max(\lVert x_1
    \rVert, \epsilon) \max(\lVert x_2 \rVert, \epsilon)}`.

    Same as ``torch.nn.functional.cosine_similarity(x1, x2, dim=axis, eps=eps)``.

    Parameters
    ----------
    x1, x2 : array_like
        Broadcastable arrays of at least one dimension.
    axis : int, default 1
        The axis of the broadcast shape along which the vectors lie (PyTorch's
        ``dim``).
    eps : float, default 1e-8
        Lower bound of each norm (not of their product).
    out : ndarray, optional
        Written with the result and returned (the result's shape and dtype).

    Returns
    -------
    ndarray
        The broadcast shape without ``axis``; float32 stays float32.

    Notes
    -----
    As PyTorch 2.x (ATen's ``cosine_similarity``), each norm is clamped to
    ``eps`` on its own: ``w12 / (max(||x1||, eps) * max(||x2||, eps))``, not
    ``w12 / sqrt(max(w1 * w2, eps**2))`` (PyTorch 1.x). The sums are float64.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x1 = np.array([[1.0, 0.0], [1.0, 1.0]])
    >>> nbops.cosine_similarity(x1, np.array([[0.0, 1.0], [2.0, 2.0]]))
    array([0., 1.])
    """
    if type(x1) is not np.ndarray and is_device_array(x1):
        return _cuda().cosine_similarity(x1, x2, axis, eps, out=out)
    if type(x1) is not np.ndarray and is_dask_array(x1):  # nbops/_dask.py: a lazy graph
        return dask_ops().cosine_similarity(x1, x2, axis, eps, out=out)
    op = "cosine_similarity"
    a, b, r1, r2, shape, axis, eps = _cos_plan(x1, x2, axis, eps, op)
    compute, result = result_dtype(np.result_type(r1, r2), "x1")
    out_shape = shape[:axis] + shape[axis + 1:]
    if out is not None:
        check_out(out, out_shape, result)
    af = _moved_rows(a, shape, axis, compute)
    bf = _moved_rows(b, shape, axis, compute)
    res = _memory.empty(af.shape[0], compute)
    if res.size:
        launch(_cos_forward_serial, _cos_forward_parallel, ("cos", compute.char),
               af.size * 3, af.reshape(-1), bf.reshape(-1), shape[axis], eps, res)
    return _put(res.reshape(out_shape), out, result)


def cosine_similarity_backward(grad_output, x1, x2, axis=1, eps=1e-8, *, out=None):
    r"""Gradients of :func:`cosine_similarity`: ``(grad_x1, grad_x2)``.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the similarities (the forward result's shape).
    x1, x2 : array_like
        The forward's inputs.
    axis, eps
        The forward's options.
    out : pair of ndarray or None, optional, keyword-only
        ``(out_x1, out_x2)``, each None or an array of that gradient's shape and
        dtype to write into.

    Returns
    -------
    tuple of ndarray
        ``(grad_x1, grad_x2)`` of the shapes of ``x1`` and ``x2`` (a broadcast
        argument's gradient summed back to its shape, in float64).

    Notes
    -----
    With ``r1 = ||x1||``, ``n1 = max(r1, eps)`` (likewise for x2) and ``c`` the
    similarity, PyTorch's autograd (the clamp is applied without gradient)
    gives ``grad_x1 = g (x2 / (n1 n2) - c x1 / (n1 r1))``, the second term 0
    where ``r1 == 0``; ``grad_x2`` likewise.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> g1, g2 = nbops.cosine_similarity_backward(np.ones(1), np.array([[1.0, 0.0]]),
    ...                                           np.array([[1.0, 1.0]]))
    >>> g1.round(4), g2.round(4)
    (array([[0.    , 0.7071]]), array([[ 0.3536, -0.3536]]))
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().cosine_similarity_backward(grad_output, x1, x2, axis, eps, out=out)
    if is_dask_array(grad_output) or is_dask_array(x1):  # nbops/_dask.py: lazy graphs
        return dask_ops().cosine_similarity_backward(grad_output, x1, x2, axis, eps, out=out)
    op = "cosine_similarity_backward"
    g = _float_array(grad_output, "grad_output")
    a, b, r1, r2, shape, axis, eps = _cos_plan(x1, x2, axis, eps, op)
    _check_grad(g, shape[:axis] + shape[axis + 1:])
    compute = result_dtype(np.result_type(g.dtype, r1, r2), "grad_output")[0]
    _check_out_pair(out, (a.shape, b.shape), (r1, r2))
    af = _moved_rows(a, shape, axis, compute)
    bf = _moved_rows(b, shape, axis, compute)
    grad1 = np.zeros(af.shape, compute)
    grad2 = np.zeros(af.shape, compute)
    if af.size:
        gs = np.ascontiguousarray(g, dtype=compute).reshape(-1)
        launch(_cos_backward_serial, _cos_backward_parallel, ("cos_grad", compute.char),
               af.size * 5, af.reshape(-1), bf.reshape(-1), shape[axis], eps, gs,
               grad1.reshape(-1), grad2.reshape(-1))
    grad1 = _unmove(grad1, shape, axis)
    grad2 = _unmove(grad2, shape, axis)
    return _deliver_pair((_sum_to(grad1, a.shape, r1).reshape(a.shape),
                          _sum_to(grad2, b.shape, r2).reshape(b.shape)), out)


# --------------------------------------------------------------------------- #
# normalize
# --------------------------------------------------------------------------- #


def _normalize_forward(x, dim, p, kind, eps, out):
    """Each row of the flat contiguous ``x`` (``dim`` values a row) divided by
    ``max(||row||_p, eps)`` into ``out``. Rows go in tasks of whole rows cut by
    the shape alone; p = 2 sums the squares with :func:`_dot64`, other p fold
    :func:`_row_pnorm`; the division is in ``out``'s dtype, as PyTorch divides
    by the norm in the input's."""
    n_rows = out.size // max(dim, 1)
    per, n_tasks = _rows_per_task(n_rows, dim)
    for t in prange(n_tasks):
        r0 = t * per
        r1 = np.minimum(n_rows, r0 + per)
        cast = row_view(out, 0, 1).copy()  # a value of out's dtype
        for row in range(r0, r1):
            xs = row_view(x, row * dim, dim)
            os = row_view(out, row * dim, dim)
            if kind == PNORM_2:
                n = math.sqrt(_dot64(xs, xs, dim))
            else:
                n = _row_pnorm(xs, 0, dim, p, kind)
            cast[0] = eps if n < eps else n
            c = cast[0]
            for i in range(dim):
                os[i] = xs[i] / c


_normalize_forward_serial, _normalize_forward_parallel = _config.kernels(
    _normalize_forward, fastmath=ROW_FASTMATH)


def _normalize_backward(x, dim, p, kind, eps, g, out):
    """grad_input of each row (see :func:`normalize_backward`'s Notes) into
    ``out``, in float64 per element; rows in tasks as the forward. p = 2 takes
    its sums with :func:`_dot64` and ``g / c + x * (gn / n)`` per element."""
    n_rows = out.size // max(dim, 1)
    per, n_tasks = _rows_per_task(n_rows, dim)
    for t in prange(n_tasks):
        r0 = t * per
        r1 = np.minimum(n_rows, r0 + per)
        for row in range(r0, r1):
            s = row * dim
            xs = row_view(x, s, dim)
            gs = row_view(g, s, dim)
            os = row_view(out, s, dim)
            if kind == PNORM_2:
                n = math.sqrt(_dot64(xs, xs, dim))
                gx = _dot64(gs, xs, dim)
                c = eps if n < eps else n
                # the norm's gradient passes the clamp only where it is not clamped
                gn = -gx / (c * c) if n >= eps else 0.0
                inv_c = 1.0 / c
                k = gn / n if n != 0 else 0.0
                for i in range(dim):
                    os[i] = np.float64(gs[i]) * inv_c + np.float64(xs[i]) * k
                continue
            n = _row_pnorm(xs, 0, dim, p, kind)
            c = eps if n < eps else n
            gx = 0.0
            count = 1.0
            if kind == PNORM_MAX:
                count = 0.0
            for i in range(dim):
                v = np.float64(xs[i])
                gx += np.float64(gs[i]) * v
                if kind == PNORM_MAX and (abs(v) == n or v != v):
                    count += 1.0
            gn = -gx / (c * c) if n >= eps else 0.0
            for i in range(dim):
                v = np.float64(xs[i])
                extra = pnorm_backward(v, n, gn, p, kind, count) if gn != 0 else 0.0
                os[i] = np.float64(gs[i]) / c + extra


_normalize_backward_serial, _normalize_backward_parallel = _config.kernels(
    _normalize_backward, fastmath=ROW_FASTMATH)


def _normalize_plan(input, p, axis, eps, op):
    x = as_array(input, "input")
    compute, result = result_dtype(x.dtype, "input")
    axis = _axis(axis, x.ndim, op)
    p = _float_param(p, "p", op)
    eps = _float_param(eps, "eps", op)
    if p < 0 or p == -math.inf:
        raise ValueError(f"{op}: p must be >= 0 (or inf), got {p}")
    return x, compute, result, axis, p, eps


def _fast_normalize(x, p, axis, eps, out):
    """The common call: a C-contiguous float32/float64 ndarray along its last
    axis (an int), float ``p >= 0`` and ``eps``, no ``out=`` or a C-contiguous
    writable one of the input's shape and dtype: the general path's kernel call
    with fewer Python steps; None for any other call."""
    dt = x.dtype
    nd = x.ndim
    if not (dt in _LEAN_DTYPES and nd and (axis == -1 or axis == nd - 1)
            and x.flags.c_contiguous and type(p) is float and p >= 0.0
            and type(eps) is float):
        return None
    # (out= the input itself is written directly: a row is read whole before it is
    # written; a partial overlap goes to the general path)
    res = lean_destination(out, x.shape, dt, None if out is x else x)
    if res is None:
        return None
    if x.size:
        launch(_normalize_forward_serial, _normalize_forward_parallel,
               ("normalize", dt.char), x.size * 2, x.reshape(-1), x.shape[-1], p,
               _pnorm_kind(p), eps, res.reshape(-1))
    return res


def normalize(input, p=2.0, axis=1, eps=1e-12, *, out=None):
    r"""``input`` divided by its p-norm along ``axis``: :math:`x / \max(\lVert x
    \rVert_p, \epsilon)`.

    Same as ``torch.nn.functional.normalize(input, p, dim=axis, eps=eps)``.

    Parameters
    ----------
    input : array_like
        At least one dimension.
    p : float, default 2.0
        The norm's order: 0, 1, 2, fractional, ``inf`` (negative ``p`` is
        rejected).
    axis : int, default 1
        The axis to normalize (PyTorch's ``dim``).
    eps : float, default 1e-12
        Lower bound of the norm.
    out : ndarray, optional
        Written with the result and returned (the input's shape and result dtype).

    Returns
    -------
    ndarray
        ``input``'s shape; float32 stays float32 (the norm is a float64 sum).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]])
    """
    if type(input) is np.ndarray and type(axis) is int:
        res = _fast_normalize(input, p, axis, eps, out)
        if res is not None:
            return res
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().normalize(input, p, axis, eps, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):  # nbops/_dask.py
        return dask_ops().normalize(input, p, axis, eps, out=out)
    x, compute, result, axis, p, eps = _normalize_plan(input, p, axis, eps, "normalize")
    if out is not None:
        check_out(out, x.shape, result)
    xf = _moved_rows(x, x.shape, axis, compute)
    res = _rows_result(out, xf.shape, axis, compute, xf)
    if res.size:
        launch(_normalize_forward_serial, _normalize_forward_parallel,
               ("normalize", compute.char), res.size * 2, xf.reshape(-1), x.shape[axis],
               p, _pnorm_kind(p), eps, res.reshape(-1))
    return _put(_unmove(res, x.shape, axis), out, result)


def normalize_backward(grad_output, input, p=2.0, axis=1, eps=1e-12, *, out=None):
    r"""Gradient of :func:`normalize` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the result (the input's shape).
    input : array_like
        The forward's input (what PyTorch's autograd saves).
    p, axis, eps
        The forward's options.
    out : ndarray, optional
        Written with the gradient and returned.

    Returns
    -------
    ndarray
        ``grad_input`` of the input's shape and result dtype.

    Notes
    -----
    With ``n = ||x||_p`` and ``c = max(n, eps)``, PyTorch's autograd of
    ``x / c`` gives ``g / c + dn/dx * (-(g . x) / c^2)``, the second term only
    where ``n >= eps`` (the clamp passes no gradient where it clamps);
    ``dn/dx`` is the norm's gradient (``x / n`` for p = 2, 0 where ``n == 0``).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.normalize_backward(np.array([[1.0, 0.0]]), np.array([[3.0, 4.0]]))
    array([[ 0.128, -0.096]])
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().normalize_backward(grad_output, input, p, axis, eps, out=out)
    if is_dask_array(grad_output) or is_dask_array(input):  # nbops/_dask.py: lazy graphs
        return dask_ops().normalize_backward(grad_output, input, p, axis, eps, out=out)
    op = "normalize_backward"
    g = _float_array(grad_output, "grad_output")
    x, compute, result, axis, p, eps = _normalize_plan(input, p, axis, eps, op)
    _check_grad(g, x.shape)
    compute = result_dtype(np.result_type(g.dtype, compute), "grad_output")[0]
    if out is not None:
        check_out(out, x.shape, result)
    xf = _moved_rows(x, x.shape, axis, compute)
    gf = _moved_rows(g, x.shape, axis, compute)
    res = _rows_result(out, xf.shape, axis, compute, xf, gf)
    if res.size:
        launch(_normalize_backward_serial, _normalize_backward_parallel,
               ("normalize_grad", compute.char), res.size * 4, xf.reshape(-1),
               x.shape[axis], p, _pnorm_kind(p), eps, gf.reshape(-1),
               res.reshape(-1))
    return _put(_unmove(res, x.shape, axis), out, result)


# --------------------------------------------------------------------------- #
# pdist
# --------------------------------------------------------------------------- #


def _pdist_forward(x, n, m, p, kind, out):
    """Rows ``t`` and ``n - 1 - t`` per task (equal work per task)."""
    for task in prange((n + 1) // 2):
        t = np.int64(task)  # (the prange index may be unsigned: int64 arithmetic)
        for which in range(2):
            i = t if which == 0 else n - 1 - t
            if which == 1 and i == t:
                continue
            base = i * n - i * (i + 1) // 2 - i - 1
            for j in range(i + 1, n):
                out[base + j] = _distance(x, i * m, x, j * m, m, p, kind)


_pdist_forward_serial, _pdist_forward_parallel = _config.kernels(_pdist_forward)


def _pdist_backward(x, n, m, p, kind, dist, g, out):
    for row in prange(n):
        i = np.int64(row)  # (the prange index may be unsigned: int64 arithmetic)
        acc = np.zeros(m)
        for j in range(n):
            if j == i:
                continue
            lo, hi = (i, j) if i < j else (j, i)
            k = lo * n - lo * (lo + 1) // 2 + hi - lo - 1
            dd = np.float64(dist[k])
            gg = np.float64(g[k])
            for c in range(m):
                d = np.float64(x[i * m + c]) - np.float64(x[j * m + c])
                acc[c] += _distance_backward(d, dd, gg, p, kind)
        for c in range(m):
            out[i * m + c] = acc[c]


_pdist_backward_serial, _pdist_backward_parallel = _config.kernels(_pdist_backward)


def _pdist_plan(input, p, op):
    x = as_array(input, "input")
    compute, result = result_dtype(x.dtype, "input")
    if x.ndim != 2:
        raise ValueError(f"{op}: input must be 2-D (N, M), got shape {x.shape}")
    p = _float_param(p, "p", op)
    if not p >= 0:
        raise ValueError(f"{op}: p must be >= 0, got {p}")
    n = x.shape[0]
    return x, compute, result, p, (n * (n - 1) // 2,)


def pdist(input, p=2.0, *, out=None):
    r"""The p-norm distances between every pair of rows ``i < j`` of ``input``.

    Same as ``torch.nn.functional.pdist(input, p)``: the upper triangle of
    ``cdist(input, input, p)``, row after row (``(0, 1), (0, 2), ..., (1, 2), ...``).

    Parameters
    ----------
    input : array_like
        A 2-D array (N, M).
    p : float, default 2.0
        The norm's order (>= 0; ``inf`` included).
    out : ndarray, optional
        Written with the result and returned.

    Returns
    -------
    ndarray of shape ``(N * (N - 1) // 2,)``
        float32 stays float32 (differences and sums in float64).

    Notes
    -----
    At p = 2 with more than 25 rows only the upper triangle is computed: with
    few features (up to 24 float32, 16 float64) as direct float64 sums of
    squared differences, else in :func:`cdist`'s product form (close pairs
    recomputed directly: equal rows give exactly 0, the others are within a
    few float32 ulps of the direct sums). A float32 result is then the float32
    square root of the float64 sum rounded to float32. PyTorch's pdist always
    sums directly, in the input's dtype.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.pdist(np.array([[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]]))
    array([ 5., 10.,  5.])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().pdist(input, p, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):  # nbops/_dask.py
        return dask_ops().pdist(input, p, out=out)
    if type(input) is np.ndarray and type(p) in (float, int) and p == 2 and input.ndim == 2:
        res = _pdist_l2_lean(input, out)  # the common call: no conversion, no copy
        if res is not None:
            return res
    x, compute, result, p, out_shape = _pdist_plan(input, p, "pdist")
    if out is not None:
        check_out(out, out_shape, result)
    res = np.zeros(out_shape, compute)
    n, m = x.shape
    if res.size and m:
        xf = np.ascontiguousarray(x, dtype=compute)
        if _pdist_uses_product(n, p):
            _launch_pdist_l2(xf, res)
        else:
            launch(_pdist_forward_serial, _pdist_forward_parallel,
                   ("pdist_rows", compute.char), res.size * m, xf.reshape(-1), n, m, p,
                   _pnorm_kind(p), res)
    return _put(res, out, result)


def _launch_pdist_l2(x, res):
    """:func:`_pdist_l2` of the C-contiguous float32/float64 (n, m) ``x`` (m > 0) into
    ``res`` (the serial entry point called directly at a size that surely runs it,
    compiled only then: a call that runs the parallel kernel compiles only that)."""
    m = x.shape[1]
    few = True if m <= _linear.FEW_INPUTS[x.dtype.char] else None
    product = True if few is None else None  # (one of the two None: see _pdist_l2)
    key = ("pdist_l2", x.dtype.char, few is None)
    lean = _l2_lean.get(key)
    if lean is None:
        lean = _l2_lean[key] = [None, serial_below(_pdist_l2_serial, key)]
    if res.size * m < lean[1]:
        if lean[0] is None:
            lean[0] = entry_point(_pdist_l2_serial, key, (x, few, product, res))
        lean[0](x, few, product, res)
    else:
        launch(_pdist_l2_serial, _pdist_l2_parallel, key, res.size * m, x, few, product, res)


#: launch key of _pdist_l2 -> [its serial entry point (None until a call runs it),
#: serial_below's count for it]
_l2_lean = {}


def _pdist_l2_lean(x, out):
    """pdist at p = 2 of a 2-D ``x`` straight into a new array or into ``out`` where
    ``x`` is C-contiguous float32/float64 with more than 25 rows (the product-form
    calls of :func:`_pdist_uses_product`) and features, and ``out`` is None or
    exactly the result (shape, dtype, C-contiguous, writable, sharing no memory
    with ``x``); else None (the general path)."""
    n, m = x.shape
    dt = x.dtype
    if not (n > 25 and m and (dt is _LEAN_DTYPES[0] or dt is _LEAN_DTYPES[1])
            and x.flags.c_contiguous):
        return None
    shape = (n * (n - 1) // 2,)
    res = lean_destination(out, shape, dt, x)
    if res is None:
        return None
    _launch_pdist_l2(x, res)
    return res


#: Rows of a task of :func:`_pdist_l2` (the rows of linear's 4 x 4 tiles).
PDIST_BLOCK = 4
#: Tasks of :func:`_pdist_l2` at most (each with its scratch rows; task t takes the
#: pairs of row blocks t, t + PDIST_TASKS, ...).
PDIST_TASKS = 64
#: Pairs per finishing pass of :func:`_pdist_l2` (a pass with a pair to recompute
#: is scanned again).
PDIST_CHUNK = 32


@_config.core
def _store_roots(acc, r, n, res):
    """pdist's row ``r``: ``res[pair (r, j)] = sqrt(acc[j])`` for j > r, in ``res``'s
    dtype (float32: the square root of the float64 sum rounded to float32, a
    vectorized float32 root)."""
    base = r * n - r * (r + 1) // 2  # (where pair (r, r + 1) goes)
    o = row_view(res, base, n - r - 1)
    a = row_view(acc, r + 1, n - r - 1)
    for j in range(o.size):
        o[j] = np.sqrt(res.dtype.type(a[j]))


@chunk_function
def _pdist_direct_rows(x, xt, acc, r0, r1, res):
    """:func:`_pdist_l2`'s rows r0 <= r < r1 with few features: their distances to
    the rows after them as direct float64 sums (``xt``: x^T in float64, rows of
    ``acc.size`` elements; ``acc``: the task's scratch row).

    A chunk function (``nbops/scalar/rows.py``): compiled once, called by the
    serial and the parallel kernel (a ``prange`` body that IR-inlines the rows'
    loops compiles them twice)."""
    n, m = x.shape
    width = acc.size
    for r in range(r0, r1):
        # the sums over j from r + 1 rounded down to a multiple of 8 (whole
        # vectors: the pairs j <= r and the padding are computed, not stored)
        j0 = (r + 1) // 8 * 8
        a = row_view(acc, j0, width - j0)
        for j in range(a.size):
            a[j] = 0.0
        for k in range(m):
            xv = np.float64(x[r, k])
            xk = row_view(xt, k * width + j0, width - j0)
            for j in range(a.size):
                d = xk[j] - xv
                a[j] += d * d
        _store_roots(acc, r, n, res)


@chunk_function
def _pdist_product_rows(x, sq, acc, prod, chunk_bad, r0, r1, res):
    """:func:`_pdist_l2`'s rows r0 <= r < r1 (at most PDIST_BLOCK) in the product
    form (``sq``: the rows' float64 squared norms; ``acc``, ``prod`` (PDIST_BLOCK,
    n), ``chunk_bad``: the task's scratch). A chunk function, as
    :func:`_pdist_direct_rows`."""
    n, m = x.shape
    xf = x.reshape(n * m)
    _linear._tile(x[r0:r1], x, x[0], 0, prod, 0, r1 - r0, r0, n, m)
    for r in range(r0, r1):
        pr = prod[r - r0]
        sr = sq[r]
        for c in range((n - r - 1 + PDIST_CHUNK - 1) // PDIST_CHUNK):
            c0 = r + 1 + c * PDIST_CHUNK
            bad = 0
            for j in range(c0, min(c0 + PDIST_CHUNK, n)):
                s = sr + sq[j]
                d2 = s - 2.0 * np.float64(pr[j])
                ok = (d2 >= _RECOMPUTE * s) & (d2 < math.inf)
                acc[j] = d2 if ok else -1.0
                bad += not ok
            chunk_bad[c] = bad
        _store_roots(acc, r, n, res)
        base = r * n - r * (r + 1) // 2 - r - 1  # (pair (r, j) goes to base + j)
        for c in range((n - r - 1 + PDIST_CHUNK - 1) // PDIST_CHUNK):
            c0 = r + 1 + c * PDIST_CHUNK
            for j in range(c0, min(c0 + PDIST_CHUNK, n) if chunk_bad[c] else c0):
                if acc[j] < 0:
                    res[base + j] = _distance(xf, r * m, xf, j * m, m, 2.0, PNORM_2)


def _pdist_l2(x, few, product, res):
    """pdist at p = 2: ``res`` (flat, ``n (n - 1) / 2``) = the distances of the
    row pairs i < j of ``x`` (n, m); each computed by one task with the same
    code (the same bits on any thread count).

    The rows go in blocks of PDIST_BLOCK; task t takes the block pairs ``(q,
    blocks - 1 - q)`` (equal work per pair) for q = t, t + tasks, ... A row's
    distances to the rows after it are computed in vectorized passes over j:

    * ``few`` True (few features): directly, ``sum_k (x_jk - x_ik)^2`` in float64 (the
      features of all rows as ``x^T``'s rows, a pass over j per feature);
    * ``few`` None: in the product form: the products ``x_i . x_j`` of the block's rows
      with the rows j >= its first, by linear's 4 x 4 tiles (the upper
      triangle only; input dtype), then ``d2 = |x_i|^2 + |x_j|^2 - 2 x_i . x_j``
      in float64 (squared norms: float64 sums) and its square root,
      PDIST_CHUNK pairs at a time; a chunk with a ``d2`` below ``_RECOMPUTE
      (|x_i|^2 + |x_j|^2)`` or not finite is scanned again and those pairs
      (close pairs, inf, NaN: rare) are recomputed directly by :func:`_distance`.

    ``product`` is True where ``few`` is None and None where it is True: Numba
    prunes a branch on ``arg is not None`` before typing only where ``arg`` is
    None, so each path tests its own argument and a call compiles one path
    (``few`` alone, True or None, compiled both where it was True).
    """
    n, m = x.shape
    xf = x.reshape(n * m)
    blocks = (n + PDIST_BLOCK - 1) // PDIST_BLOCK
    pairs = (blocks + 1) // 2
    tasks = min(pairs, PDIST_TASKS)
    width = (n + 7) // 8 * 8
    # each task's scratch rows, allocated once
    accs = np.empty((tasks, width))
    if few is not None:
        # x^T in float64, its rows padded to a multiple of 8 (see below)
        xt = np.zeros(m * width)
        for k in range(m):
            for r in range(n):
                xt[k * width + r] = x[r, k]
    if product is not None:
        sq = np.empty(n)
        for r in range(n):
            s = 0.0
            for k in range(r * m, r * m + m):
                v = np.float64(xf[k])
                s += v * v
            sq[r] = s
        prods = np.empty((tasks, PDIST_BLOCK, n), x.dtype)
        bads = np.empty((tasks, n // PDIST_CHUNK + 1), np.int64)
    for task in prange(tasks):
        acc = accs[task]
        for q in range(np.int64(task), pairs, tasks):  # (the prange index may be unsigned)
            for which in range(2):
                blk = q if which == 0 else blocks - 1 - q
                if which == 1 and blk == q:
                    continue
                r0 = blk * PDIST_BLOCK
                r1 = min(r0 + PDIST_BLOCK, n)
                if few is not None:
                    _pdist_direct_rows(x, xt, acc, r0, r1, res)
                if product is not None:
                    _pdist_product_rows(x, sq, acc, prods[task], bads[task], r0, r1, res)


_pdist_l2_serial, _pdist_l2_parallel = _config.kernels(_pdist_l2, fastmath=ROW_FASTMATH)


def _symmetric_ratio(g, dist, n, out):
    """The flat (n, n) ``out`` = ``g / dist`` of pair (min(i, j), max(i, j)) (0 on the
    diagonal and where ``dist == 0``)."""
    for task in prange(n):
        i = np.int64(task)
        for j in range(n):
            lo, hi = (i, j) if i < j else (j, i)
            k = lo * n - lo * (lo + 1) // 2 + hi - lo - 1
            out[i * n + j] = 0 if i == j or dist[k] == 0 else g[k] / dist[k]


_symmetric_ratio_serial, _symmetric_ratio_parallel = _config.kernels(_symmetric_ratio)


def _pdist_uses_product(n, p):
    """pdist at p = 2 on more than 25 rows: cdist's product form (module docstring)."""
    return p == 2 and n > 25


def pdist_backward(grad_output, input, p=2.0, *, output=None, out=None):
    r"""Gradient of :func:`pdist` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the distances, ``(N * (N - 1) // 2,)``.
    input : array_like
        The forward's input (N, M).
    p : float, default 2.0
        The forward's ``p``.
    output : array_like, optional, keyword-only
        The forward's result (PyTorch saves it); recomputed when not given.
    out : ndarray, optional
        Written with the gradient and returned.

    Returns
    -------
    ndarray
        ``grad_input`` (N, M), the input's result dtype.

    Notes
    -----
    ``grad_input[i] = sum over j != i of d dist_ij / d x_i`` with PyTorch's
    conventions (see :func:`cdist_backward`): 0 at a zero distance for p = 2,
    ``sgn(d)`` at every entry with ``|d| == dist`` for p = inf.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.pdist_backward(np.ones(1), np.array([[0.0, 0.0], [3.0, 4.0]]))
    array([[-0.6, -0.8],
           [ 0.6,  0.8]])
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().pdist_backward(grad_output, input, p, output=output, out=out)
    if is_dask_array(grad_output) or is_dask_array(input):  # nbops/_dask.py: lazy graphs
        return dask_ops().pdist_backward(grad_output, input, p, output=output, out=out)
    op = "pdist_backward"
    g = _float_array(grad_output, "grad_output")
    x, compute, result, p, out_shape = _pdist_plan(input, p, op)
    _check_grad(g, out_shape)
    compute = result_dtype(np.result_type(g.dtype, compute), "grad_output")[0]
    if out is not None:
        check_out(out, x.shape, result)
    n, m = x.shape
    res = np.zeros(x.shape, compute)
    if g.size and m:
        if output is None:
            dist = pdist(x, p).astype(compute, copy=False)
        else:
            dist = _float_array(output, "output")
            _check_grad_like(dist, out_shape, "output")
            dist = np.ascontiguousarray(dist, dtype=compute)
        xf = np.ascontiguousarray(x, dtype=compute)
        gf = np.ascontiguousarray(g, dtype=compute)
        if _pdist_uses_product(n, p):
            # the ratios r = g / dist (0 where dist == 0) as a symmetric (n, n) matrix:
            # grad = x * rowsum(r) - r x, the product in nbops' matrix product
            ratio = _memory.empty((n, n), compute)
            launch(_symmetric_ratio_serial, _symmetric_ratio_parallel,
                   ("pdist_ratio", compute.char), n * n, gf, dist, n, ratio.reshape(-1))
            r_x = _memory.empty((n, m), compute)
            _linear._run_product(ratio, None, None, r_x, wt=xf)
            res[...] = ratio.sum(axis=1)[:, None] * xf - r_x
        else:
            launch(_pdist_backward_serial, _pdist_backward_parallel,
                   ("pdist_grad", compute.char), 2 * g.size * m, xf.reshape(-1), n, m, p,
                   _pnorm_kind(p), dist, gf, res.reshape(-1))
    return _put(res, out, result)


def _check_grad_like(v, shape, name):
    if v.shape != shape:
        raise ValueError(f"{name} has shape {v.shape}, expected {shape}")


# --------------------------------------------------------------------------- #
# cdist
# --------------------------------------------------------------------------- #


def _cdist_direct(a, b, nb, rp, rr, m, p, kind, out):
    """out (nb, rp, rr) = distances of a's rows (nb, rp, m) to b's (nb, rr, m)."""
    for t in prange(nb * rp):
        batch = t // rp
        for j in range(rr):
            out[t * rr + j] = _distance(a, t * m, b, (batch * rr + j) * m, m, p, kind)


_cdist_direct_serial, _cdist_direct_parallel = _config.kernels(_cdist_direct)


def _square_norms(x, m, out):
    for r in prange(out.size):
        out[r] = _row_pnorm(x, r * m, m, 2.0, PNORM_2) ** 2


_square_norms_serial, _square_norms_parallel = _config.kernels(_square_norms)


def _cdist_finish(a, b, n1, n2, m, tau, prod):
    """``prod`` (rp, rr) holds ``a b^T``; replaced by the distances (see the module
    docstring: pairs that would cancel are recomputed directly)."""
    rr = n2.size
    for i in prange(n1.size):
        for j in range(rr):
            s = n1[i] + n2[j]
            d2 = s - 2.0 * np.float64(prod[i * rr + j])
            if d2 >= tau * s and d2 < math.inf:
                prod[i * rr + j] = math.sqrt(d2)
            else:
                prod[i * rr + j] = _distance(a, i * m, b, j * m, m, 2.0, PNORM_2)


_cdist_finish_serial, _cdist_finish_parallel = _config.kernels(_cdist_finish)


# The lean p = 2 product-form call of cdist (:func:`_lean_product`): 2-D
# C-contiguous float32/float64 rows, few features (the product is _linear's
# _product_rows), a size every kernel of the general path runs serially. One
# serial kernel makes the general path's calls (the same kernels: _square_norms,
# _product_rows, then _cdist_finish's arithmetic, the same cores and flags)
# without a Python launch each: the same bits.
def _product_lean(a, b, res):
    """``res`` (flat) = cdist(a, b) at p = 2 in the product form."""
    rp, m = a.shape
    rr = b.shape[0]
    af = a.reshape(rp * m)
    bf = b.reshape(rr * m)
    n1 = np.empty(rp)
    _square_norms_serial(af, m, n1)
    n2 = np.empty(rr)
    _square_norms_serial(bf, m, n2)
    prod = np.empty((rp, rr), a.dtype)
    _linear.product_rows_linked(a, np.ascontiguousarray(b.T), np.empty(0, a.dtype), False,
                                prod)
    prod = prod.reshape(rp * rr)
    for i in range(rp):
        for j in range(rr):
            s = n1[i] + n2[j]
            d2 = s - 2.0 * np.float64(prod[i * rr + j])
            if d2 >= _RECOMPUTE * s and d2 < math.inf:
                res[i * rr + j] = math.sqrt(d2)
            else:
                res[i * rr + j] = _distance(af, i * m, bf, j * m, m, 2.0, PNORM_2)


_product_lean_serial = _config.serial_kernel(_product_lean)


def _lean_product(a, b, res):
    """Run :func:`_product_lean` for C-contiguous 2-D ``a``, ``b`` of one float
    dtype into the flat ``res`` of that dtype and return True, or return False
    where the general path must run (not that call: more features than
    _product_rows takes, or a size some kernel runs in parallel)."""
    dt = a.dtype
    (rp, m), rr = a.shape, b.shape[0]
    if not (dt in _LEAN_DTYPES and b.dtype == dt and a.flags.c_contiguous
            and b.flags.c_contiguous and 0 < m <= _linear.FEW_INPUTS[dt.char]
            and rp * rr * 4 < serial_below(_cdist_finish_serial, ("cdist_finish", dt.char))
            and rp * rr * m < serial_below(_linear._product_rows_serial,
                                           ("linear_rows", dt.char))):
        return False
    entry_point(_product_lean_serial, ("dist_lean", dt.char), (a, b, res))(a, b, res)
    return True


def _cdist_grad_rows(a, b, nb, rp, rr, m, p, kind, dist, g, out):
    """out[t] (a's row t) = the sum over b's rows j of the gradient of
    ``dist[t, j]`` with respect to ``a``'s row (b's gradient: the same call with
    the roles swapped and ``dist``, ``g`` transposed, the derivative being odd)."""
    for t in prange(nb * rp):
        batch = t // rp
        acc = np.zeros(m)
        for j in range(rr):
            k = t * rr + j
            dd = np.float64(dist[k])
            gg = np.float64(g[k])
            bs = (batch * rr + j) * m
            for c in range(m):
                d = np.float64(a[t * m + c]) - np.float64(b[bs + c])
                acc[c] += _distance_backward(d, dd, gg, p, kind)
        for c in range(m):
            out[t * m + c] = acc[c]


_cdist_grad_rows_serial, _cdist_grad_rows_parallel = _config.kernels(_cdist_grad_rows)


def _cdist_plan(x1, x2, p, compute_mode, op):
    a = as_array(x1, "x1")
    b = as_array(x2, "x2")
    r1 = result_dtype(a.dtype, "x1")[1]
    r2 = result_dtype(b.dtype, "x2")[1]
    if a.ndim < 2 or b.ndim < 2:
        raise ValueError(f"{op}: x1 and x2 must have at least 2 dimensions, got shapes "
                         f"{a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"{op}: x1 and x2 must have the same last axis, got {a.shape[-1]} "
                         f"and {b.shape[-1]}")
    p = _float_param(p, "p", op)
    if not p >= 0:
        raise ValueError(f"{op}: p must be >= 0, got {p}")
    if compute_mode not in COMPUTE_MODES:
        raise ValueError(f"{op}: compute_mode must be one of {COMPUTE_MODES}, got "
                         f"{compute_mode!r}")
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"{op}: the batch axes of x1 {a.shape} and x2 {b.shape} do not "
                         "broadcast") from None
    rp, rr, m = a.shape[-2], b.shape[-2], a.shape[-1]
    use_mm = p == 2 and (compute_mode == COMPUTE_MODES[1]
                         or (compute_mode == COMPUTE_MODES[0] and (rp > 25 or rr > 25)))
    return a, b, r1, r2, batch, rp, rr, m, p, use_mm


def _batched(x, batch, rows, m, compute):
    """``x`` broadcast to ``batch + (rows, m)`` as a C-contiguous (nb, rows, m) array."""
    shape = batch + (rows, m)
    v = x if x.shape == shape else np.broadcast_to(x, shape)
    return np.ascontiguousarray(v, dtype=compute).reshape(math.prod(batch), rows, m)


def _cdist_compute(a3, b3, rp, rr, m, p, use_mm, compute):
    nb = a3.shape[0]
    res = np.zeros((nb, rp, rr), compute)
    if not res.size or not m:
        return res
    if not use_mm:
        launch(_cdist_direct_serial, _cdist_direct_parallel, ("cdist", compute.char),
               res.size * m, a3.reshape(-1), b3.reshape(-1), nb, rp, rr, m, p, _pnorm_kind(p),
               res.reshape(-1))
        return res
    n1 = np.empty(rp)
    n2 = np.empty(rr)
    for k in range(nb):
        a, b = a3[k], b3[k]
        launch(_square_norms_serial, _square_norms_parallel, ("sqnorm", compute.char),
               a.size, a.reshape(-1), m, n1)
        launch(_square_norms_serial, _square_norms_parallel, ("sqnorm", compute.char),
               b.size, b.reshape(-1), m, n2)
        _linear._run_product(a, b, None, res[k])
        launch(_cdist_finish_serial, _cdist_finish_parallel, ("cdist_finish", compute.char),
               rp * rr * 4, a.reshape(-1), b.reshape(-1), n1, n2, m, _RECOMPUTE,
               res[k].reshape(-1))
    return res


def cdist(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary", *, out=None):
    r"""The p-norm distances between each row of ``x1`` and each row of ``x2``.

    Same as ``torch.cdist(x1, x2, p, compute_mode)``: ``(*, P, M)`` and
    ``(*, R, M)`` give ``(*, P, R)`` (the batch axes ``*`` broadcast).

    Parameters
    ----------
    x1, x2 : array_like
        At least 2-D, the same last axis.
    p : float, default 2.0
        The norm's order (>= 0; ``inf`` included).
    compute_mode : str, default 'use_mm_for_euclid_dist_if_necessary'
        PyTorch's choice for p = 2: ``'use_mm_for_euclid_dist'`` (the product
        form), ``'donot_use_mm_for_euclid_dist'`` (direct sums), or the default
        (the product form when P > 25 or R > 25).
    out : ndarray, optional
        Written with the result and returned.

    Returns
    -------
    ndarray of shape ``batch + (P, R)``
        float32 stays float32.

    Notes
    -----
    The direct mode takes the differences and their sums in float64: the
    result is the float64 distance rounded once. The product form (p = 2)
    uses ``|a|^2 + |b|^2 - 2 a.b`` (the product in the input dtype, norms in
    float64) only for pairs whose squared distance is at least half of
    ``|a|^2 + |b|^2``, and recomputes the others directly. PyTorch's product
    mode keeps every pair in that form, in the input dtype: for two equal or
    close float32 rows it returns distances of the order of
    ``sqrt(eps32) * |a|`` (1e-4 relative, not 0), where nbops returns the
    direct value (exactly 0 for equal rows). Elsewhere the two differ by a few
    float32 ulps.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.cdist(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([[3.0, 4.0]]))
    array([[5.        ],
           [3.60555128]])
    """
    if type(x1) is not np.ndarray and is_device_array(x1):
        return _cuda().cdist(x1, x2, p, compute_mode, out=out)
    if type(x1) is not np.ndarray and is_dask_array(x1):  # nbops/_dask.py: a lazy graph
        return dask_ops().cdist(x1, x2, p, compute_mode, out=out)
    a, b, r1, r2, batch, rp, rr, m, p, use_mm = _cdist_plan(x1, x2, p, compute_mode, "cdist")
    compute, result = result_dtype(np.result_type(r1, r2), "x1")
    out_shape = batch + (rp, rr)
    if out is not None:
        check_out(out, out_shape, result)
    if use_mm and not batch and a.dtype == b.dtype == compute and rp and rr:
        res = _memory.empty(out_shape, compute)
        if _lean_product(a, b, res.reshape(-1)):
            return _put(res, out, result)
    res = _cdist_compute(_batched(a, batch, rp, m, compute), _batched(b, batch, rr, m, compute),
                         rp, rr, m, p, use_mm, compute)
    return _put(res.reshape(out_shape), out, result)


def cdist_backward(grad_output, x1, x2, p=2.0,
                   compute_mode="use_mm_for_euclid_dist_if_necessary", *, output=None,
                   out=None):
    r"""Gradients of :func:`cdist`: ``(grad_x1, grad_x2)``.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the distances, ``batch + (P, R)``.
    x1, x2 : array_like
        The forward's inputs.
    p, compute_mode
        The forward's options.
    output : array_like, optional, keyword-only
        The forward's result (PyTorch saves it); recomputed when not given.
    out : pair of ndarray or None, optional, keyword-only
        ``(out_x1, out_x2)``, each None or an array to write that gradient into.

    Returns
    -------
    tuple of ndarray
        ``(grad_x1, grad_x2)`` of the shapes of ``x1`` and ``x2`` (broadcast
        batch axes summed back, in float64).

    Notes
    -----
    With ``d = x1_i - x2_j`` and ``dist_ij`` the distance, ``grad_x1_i = sum_j
    g_ij d dist_ij / dd`` and ``grad_x2_j = -sum_i g_ij d dist_ij / dd``, with
    PyTorch's conventions: p = 2: ``d / dist`` (0 where ``dist == 0``: equal
    rows give 0); p = 1: ``sgn(d)``; p = 0: 0; p = inf: ``sgn(d)`` at every
    entry with ``|d| == dist`` (not shared between ties); p < 2:
    ``sgn(d) |d|^(p-1) / dist^(p-1)`` (0 where ``dist == 0``, or ``d == 0`` for
    p < 1); other p: ``d |d|^(p-2) / dist^(p-1)`` (0 where ``dist == 0``). For
    p = 2 in the product mode this is computed as PyTorch does, with matrix
    products: ``x1 * rowsum(r) - r x2`` with ``r = g / dist`` (0 where
    ``dist == 0``).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> g1, g2 = nbops.cdist_backward(np.ones((1, 1)), np.array([[3.0, 4.0]]), np.zeros((1, 2)))
    >>> g1, g2
    (array([[0.6, 0.8]]), array([[-0.6, -0.8]]))
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().cdist_backward(grad_output, x1, x2, p, compute_mode, output=output,
                                      out=out)
    if is_dask_array(grad_output) or is_dask_array(x1):  # nbops/_dask.py: lazy graphs
        return dask_ops().cdist_backward(grad_output, x1, x2, p, compute_mode, output=output,
                                         out=out)
    op = "cdist_backward"
    g = _float_array(grad_output, "grad_output")
    a, b, r1, r2, batch, rp, rr, m, p, use_mm = _cdist_plan(x1, x2, p, compute_mode, op)
    out_shape = batch + (rp, rr)
    _check_grad(g, out_shape)
    compute = result_dtype(np.result_type(g.dtype, r1, r2), "grad_output")[0]
    _check_out_pair(out, (a.shape, b.shape), (r1, r2))
    a3 = _batched(a, batch, rp, m, compute)
    b3 = _batched(b, batch, rr, m, compute)
    nb = a3.shape[0]
    g3 = np.ascontiguousarray(g, dtype=compute).reshape(nb, rp, rr)
    if g.size and m:
        if output is None:
            dist = _cdist_compute(a3, b3, rp, rr, m, p, use_mm, compute)
        else:
            dist = _float_array(output, "output")
            _check_grad_like(dist, out_shape, "output")
            dist = np.ascontiguousarray(dist, dtype=compute).reshape(nb, rp, rr)
    read = (a3, b3, g3, dist) if g.size and m else ()
    # each gradient into its out= array where it can be written there directly
    dest1 = _cdist_dest(out, 0, a.shape, batch + (rp, m), compute, read)
    dest2 = _cdist_dest(out, 1, b.shape, batch + (rr, m), compute,
                        read if dest1 is None else read + (dest1,))
    grad1 = _memory.empty(a3.shape, compute) if dest1 is None else dest1.reshape(a3.shape)
    grad2 = _memory.empty(b3.shape, compute) if dest2 is None else dest2.reshape(b3.shape)
    if not (g.size and m):
        grad1[...] = 0
        grad2[...] = 0
    elif use_mm:
        ratio = np.zeros((rp, rr), compute)
        for k in range(nb):
            ratio[...] = 0
            np.divide(g3[k], dist[k], out=ratio, where=dist[k] != 0)
            # linear's backward of y = x1 x2^T at grad r: (r x2, r^T x1), each
            # product written into its gradient, then x * rowsum(r) - product
            _linear._run_product(ratio, None, None, grad1[k], wt=b3[k])
            _scaled_minus(a3[k], ratio.sum(axis=1), grad1[k])
            grad2[k] = _linear._linear_backward(ratio, a3[k], b3[k], None, False)[1]
            _scaled_minus(b3[k], ratio.sum(axis=0), grad2[k])
    else:
        kind = _pnorm_kind(p)
        work = g.size * m * 2
        launch(_cdist_grad_rows_serial, _cdist_grad_rows_parallel,
               ("cdist_grad", compute.char), work, a3.reshape(-1), b3.reshape(-1), nb, rp,
               rr, m, p, kind, dist.reshape(-1), g3.reshape(-1), grad1.reshape(-1))
        dist_t = np.ascontiguousarray(dist.transpose(0, 2, 1))
        g_t = np.ascontiguousarray(g3.transpose(0, 2, 1))
        launch(_cdist_grad_rows_serial, _cdist_grad_rows_parallel,
               ("cdist_grad", compute.char), work, b3.reshape(-1), a3.reshape(-1), nb, rr,
               rp, m, p, kind, dist_t.reshape(-1), g_t.reshape(-1),
               grad2.reshape(-1))
    if dest1 is not None and dest2 is not None:
        return dest1, dest2
    res1 = dest1 if dest1 is not None else _sum_to(grad1.reshape(batch + (rp, m)), a.shape,
                                                   r1).reshape(a.shape)
    res2 = dest2 if dest2 is not None else _sum_to(grad2.reshape(batch + (rr, m)), b.shape,
                                                   r2).reshape(b.shape)
    # (a gradient written in place is handed back as is: no copy onto itself)
    return _deliver_pair((res1, res2), (None if out is None else
                                        (None if dest1 is not None else out[0],
                                         None if dest2 is not None else out[1])))


#: Rows of one pass of :func:`_scaled_minus` (its temporary stays in cache).
_MINUS_ROWS = 512


def _scaled_minus(x, scale, dest):
    """``dest = x * scale[:, None] - dest`` (one rounding each, in ``dest``'s
    dtype), ``_MINUS_ROWS`` rows at a time."""
    rows = dest.shape[0]
    tmp = np.empty((min(rows, _MINUS_ROWS),) + dest.shape[1:], dest.dtype)
    for r0 in range(0, rows, _MINUS_ROWS):
        r1 = min(rows, r0 + _MINUS_ROWS)
        t = tmp[:r1 - r0]
        np.multiply(scale[r0:r1, None], x[r0:r1], out=t)
        np.subtract(t, dest[r0:r1], out=dest[r0:r1])


def _cdist_dest(out, index, shape, full_shape, compute, read):
    """``out[index]`` where cdist_backward can write that gradient into it directly
    (no broadcast axes to sum, the compute dtype, C-contiguous, apart from the
    arrays ``read``), else None."""
    dest = None if out is None else out[index]
    if (dest is None or shape != full_shape or dest.dtype != compute
            or not dest.flags.c_contiguous
            or any(np.may_share_memory(dest, r) for r in read)):
        return None
    return dest


# --------------------------------------------------------------------------- #
# inside @njit: the cached serial kernels, on arrays moved into rows here
# --------------------------------------------------------------------------- #


def _njit_dtype(*arrays):
    """The compute dtype of float/int Numba array types (as the Python path)."""
    dt = np.result_type(*[result_dtype(numpy_support.as_dtype(a.dtype), "input")[1]
                          for a in arrays])
    return numpy_support.from_dtype(result_dtype(dt, "input")[0])


def _check_arrays(op, *arrays):
    if not all(isinstance(a, types.Array) for a in arrays):
        return False
    if not all(isinstance(a.dtype, (types.Float, types.Integer, types.Boolean))
               for a in arrays):
        raise errors.TypingError(f"nbops.{op}: real arrays expected")
    return True


def _no_out(op, out):
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        raise errors.TypingError(f"nbops.{op}: out= is not supported inside @njit")


@register_jitable
def _split(shape, axis):
    """(before, length, after): the sizes of the axes before ``axis``, of it, after it."""
    ndim = len(shape)
    if axis < -ndim or axis >= ndim:
        raise IndexError("axis is out of range")
    if axis < 0:
        axis += ndim
    before = 1
    after = 1
    for k in range(axis):
        before *= shape[k]
    for k in range(axis + 1, ndim):
        after *= shape[k]
    return axis, before, shape[axis], after


@register_jitable
def _to_rows(x, shape, before, length, after, dtype):
    """``x`` broadcast to ``shape``, its axis moved last: flat (rows * length)."""
    flat = np.ascontiguousarray(np.broadcast_to(x, shape)).reshape(-1)
    out = np.empty(before * after * length, dtype)
    for p in range(before):
        for i in range(length):
            for q in range(after):
                out[(p * after + q) * length + i] = flat[(p * length + i) * after + q]
    return out


@register_jitable
def _from_rows(rows, before, length, after):
    """The inverse of :func:`_to_rows` (flat, in the broadcast shape's order)."""
    out = np.empty_like(rows)
    for p in range(before):
        for i in range(length):
            for q in range(after):
                out[(p * length + i) * after + q] = rows[(p * after + q) * length + i]
    return out


@register_jitable
def _without(shape, axis, n):
    """``shape`` without ``axis``, as an array of ``n`` values."""
    res = np.empty(n, np.int64)
    k = 0
    for j in range(len(shape)):
        if j != axis:
            res[k] = shape[j]
            k += 1
    return res


@overload(cosine_similarity)
def _cosine_similarity_njit(x1, x2, axis=1, eps=1e-8, out=None):
    """Inside @njit: x1 and x2 of the same ndim (size-1 axes broadcast); no ``out=``."""
    if not _check_arrays("cosine_similarity", x1, x2):
        return None
    _no_out("cosine_similarity", out)
    if x1.ndim != x2.ndim:
        raise errors.TypingError("nbops.cosine_similarity inside @njit: x1 and x2 must have "
                                 "the same ndim (size-1 axes broadcast)")
    dtype = _njit_dtype(x1, x2)
    nd = x1.ndim - 1

    def impl(x1, x2, axis=1, eps=1e-8, out=None):
        shape = np.broadcast_shapes(x1.shape, x2.shape)
        ax, before, length, after = _split(shape, axis)
        a = _to_rows(x1, shape, before, length, after, dtype)
        b = _to_rows(x2, shape, before, length, after, dtype)
        res = np.empty(before * after, dtype)
        _cos_forward_serial(a, b, length, np.float64(eps), res)
        return res.reshape(to_fixed_tuple(_without(shape, ax, nd), nd))

    return impl


@overload(cosine_similarity_backward)
def _cosine_similarity_backward_njit(grad_output, x1, x2, axis=1, eps=1e-8, out=None):
    """Inside @njit: as the forward's overload; a broadcast argument's gradient is
    summed in index order."""
    if not _check_arrays("cosine_similarity_backward", grad_output, x1, x2):
        return None
    _no_out("cosine_similarity_backward", out)
    if x1.ndim != x2.ndim or grad_output.ndim != x1.ndim - 1:
        raise errors.TypingError("nbops.cosine_similarity_backward inside @njit: x1 and x2 "
                                 "of the same ndim, grad_output of one less")
    dtype = _njit_dtype(grad_output, x1, x2)
    like1 = np.empty(0, result_dtype(numpy_support.as_dtype(x1.dtype), "x1")[1])
    like2 = np.empty(0, result_dtype(numpy_support.as_dtype(x2.dtype), "x2")[1])

    def impl(grad_output, x1, x2, axis=1, eps=1e-8, out=None):
        shape = np.broadcast_shapes(x1.shape, x2.shape)
        ax, before, length, after = _split(shape, axis)
        k = 0
        for j in range(len(shape)):
            if j != ax:
                if grad_output.shape[k] != shape[j]:
                    raise ValueError("grad_output must have the forward's output shape")
                k += 1
        a = _to_rows(x1, shape, before, length, after, dtype)
        b = _to_rows(x2, shape, before, length, after, dtype)
        g = np.ascontiguousarray(grad_output).astype(dtype).reshape(-1)
        o1 = np.empty(a.size, dtype)
        o2 = np.empty(a.size, dtype)
        _cos_backward_serial(a, b, length, np.float64(eps), g, o1, o2)
        return (_sum_to_njit(_from_rows(o1, before, length, after), shape, x1.shape, like1),
                _sum_to_njit(_from_rows(o2, before, length, after), shape, x2.shape, like2))

    return impl


def _normalize_njit_checks(op, input, out):
    if not _check_arrays(op, input):
        return None
    _no_out(op, out)
    return True


@overload(normalize)
def _normalize_njit(input, p=2.0, axis=1, eps=1e-12, out=None):
    """Inside @njit: no ``out=``."""
    if _normalize_njit_checks("normalize", input, out) is None:
        return None
    dtype = _njit_dtype(input)

    def impl(input, p=2.0, axis=1, eps=1e-12, out=None):
        pp = np.float64(p)
        if pp < 0:
            raise ValueError("normalize: p must be >= 0 (or inf)")
        shape = input.shape
        ax, before, length, after = _split(shape, axis)
        x = _to_rows(input, shape, before, length, after, dtype)
        res = np.empty(x.size, dtype)
        if x.size:
            _normalize_forward_serial(x, length, pp, pnorm_kind(pp), np.float64(eps), res)
        return _from_rows(res, before, length, after).reshape(shape)

    return impl


@overload(normalize_backward)
def _normalize_backward_njit(grad_output, input, p=2.0, axis=1, eps=1e-12, out=None):
    """Inside @njit: no ``out=``."""
    if _normalize_njit_checks("normalize_backward", input, out) is None:
        return None
    if not _check_arrays("normalize_backward", grad_output):
        return None
    dtype = _njit_dtype(grad_output, input)

    def impl(grad_output, input, p=2.0, axis=1, eps=1e-12, out=None):
        pp = np.float64(p)
        if pp < 0:
            raise ValueError("normalize: p must be >= 0 (or inf)")
        shape = input.shape
        if grad_output.shape != shape:
            raise ValueError("grad_output must have the input's shape")
        ax, before, length, after = _split(shape, axis)
        x = _to_rows(input, shape, before, length, after, dtype)
        g = _to_rows(grad_output, shape, before, length, after, dtype)
        res = np.empty(x.size, dtype)
        if x.size:
            _normalize_backward_serial(x, length, pp, pnorm_kind(pp), np.float64(eps), g,
                                       res)
        return _from_rows(res, before, length, after).reshape(shape)

    return impl


@overload(pdist)
def _pdist_njit(input, p=2.0, out=None):
    """Inside @njit: no ``out=``."""
    if not _check_arrays("pdist", input):
        return None
    _no_out("pdist", out)
    if input.ndim != 2:
        raise errors.TypingError("nbops.pdist: input must be 2-D (N, M)")
    dtype = _njit_dtype(input)

    def impl(input, p=2.0, out=None):
        pp = np.float64(p)
        if not pp >= 0:
            raise ValueError("pdist: p must be >= 0")
        n, m = input.shape
        res = np.zeros(n * (n - 1) // 2, dtype)
        if res.size and m:
            x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
            _pdist_forward_serial(x, n, m, pp, pnorm_kind(pp), res)
        return res

    return impl


@overload(pdist_backward)
def _pdist_backward_njit(grad_output, input, p=2.0, output=None, out=None):
    """Inside @njit: the distances are recomputed (``output=`` is ignored); no ``out=``."""
    if not _check_arrays("pdist_backward", grad_output, input):
        return None
    _no_out("pdist_backward", out)
    if input.ndim != 2 or grad_output.ndim != 1:
        raise errors.TypingError("nbops.pdist_backward: input must be 2-D, grad_output 1-D")
    dtype = _njit_dtype(grad_output, input)

    def impl(grad_output, input, p=2.0, output=None, out=None):
        pp = np.float64(p)
        if not pp >= 0:
            raise ValueError("pdist: p must be >= 0")
        n, m = input.shape
        if grad_output.size != n * (n - 1) // 2:
            raise ValueError("grad_output must have the forward's output shape")
        res = np.zeros(n * m, dtype)
        if grad_output.size and m:
            x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
            dist = np.zeros(n * (n - 1) // 2, dtype)
            _pdist_forward_serial(x, n, m, pp, pnorm_kind(pp), dist)
            g = np.ascontiguousarray(grad_output).astype(dtype)
            _pdist_backward_serial(x, n, m, pp, pnorm_kind(pp), dist, g, res)
        return res.reshape(n, m)

    return impl


@register_jitable
def _cdist_shapes(s1, s2):
    """(batch-broadcast shape of x1, of x2, result shape) of cdist's 2+-D shapes."""
    nd = len(s1)
    full1 = np.empty(nd, np.int64)
    full2 = np.empty(nd, np.int64)
    res = np.empty(nd, np.int64)
    for k in range(nd - 2):
        if s1[k] != s2[k] and s1[k] != 1 and s2[k] != 1:
            raise ValueError("cdist: the batch axes of x1 and x2 do not broadcast")
        b = max(s1[k], s2[k])
        full1[k] = full2[k] = res[k] = b
    full1[nd - 2], full1[nd - 1] = s1[nd - 2], s1[nd - 1]
    full2[nd - 2], full2[nd - 1] = s2[nd - 2], s2[nd - 1]
    res[nd - 2], res[nd - 1] = s1[nd - 2], s2[nd - 2]
    if s1[nd - 1] != s2[nd - 1]:
        raise ValueError("cdist: x1 and x2 must have the same last axis")
    return full1, full2, res


def _cdist_njit_types(op, x1, x2, out):
    if not _check_arrays(op, x1, x2):
        return False
    _no_out(op, out)
    if x1.ndim != x2.ndim or x1.ndim < 2:
        raise errors.TypingError(f"nbops.{op} inside @njit: x1 and x2 of the same ndim >= 2 "
                                 "(size-1 batch axes broadcast)")
    return True


@overload(cdist)
def _cdist_njit(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary", out=None):
    """Inside @njit: direct sums for every p and mode (the float64 distance rounded
    once); x1 and x2 of the same ndim; no ``out=``."""
    if not _cdist_njit_types("cdist", x1, x2, out):
        return None
    dtype = _njit_dtype(x1, x2)
    nd = x1.ndim

    def impl(x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary", out=None):
        pp = np.float64(p)
        if not pp >= 0:
            raise ValueError("cdist: p must be >= 0")
        f1, f2, rs = _cdist_shapes(x1.shape, x2.shape)
        s1 = to_fixed_tuple(f1, nd)
        s2 = to_fixed_tuple(f2, nd)
        rp, rr, m = s1[nd - 2], s2[nd - 2], s1[nd - 1]
        nb = 1
        for k in range(nd - 2):
            nb *= s1[k]
        a = np.ascontiguousarray(np.broadcast_to(x1, s1)).astype(dtype).reshape(-1)
        b = np.ascontiguousarray(np.broadcast_to(x2, s2)).astype(dtype).reshape(-1)
        res = np.zeros(nb * rp * rr, dtype)
        if res.size and m:
            _cdist_direct_serial(a, b, nb, rp, rr, m, pp, pnorm_kind(pp), res)
        return res.reshape(to_fixed_tuple(rs, nd))

    return impl


@overload(cdist_backward)
def _cdist_backward_njit(grad_output, x1, x2, p=2.0,
                         compute_mode="use_mm_for_euclid_dist_if_necessary", output=None,
                         out=None):
    """Inside @njit: direct sums (the distances recomputed, ``output=`` ignored); x1
    and x2 of the same ndim; broadcast batch axes summed in index order; no ``out=``."""
    if not _cdist_njit_types("cdist_backward", x1, x2, out):
        return None
    if not _check_arrays("cdist_backward", grad_output) or grad_output.ndim != x1.ndim:
        raise errors.TypingError("nbops.cdist_backward: grad_output must be an array of the "
                                 "forward's output ndim")
    dtype = _njit_dtype(grad_output, x1, x2)
    nd = x1.ndim
    like1 = np.empty(0, result_dtype(numpy_support.as_dtype(x1.dtype), "x1")[1])
    like2 = np.empty(0, result_dtype(numpy_support.as_dtype(x2.dtype), "x2")[1])

    def impl(grad_output, x1, x2, p=2.0, compute_mode="use_mm_for_euclid_dist_if_necessary",
             output=None, out=None):
        pp = np.float64(p)
        if not pp >= 0:
            raise ValueError("cdist: p must be >= 0")
        f1, f2, rs = _cdist_shapes(x1.shape, x2.shape)
        s1 = to_fixed_tuple(f1, nd)
        s2 = to_fixed_tuple(f2, nd)
        if grad_output.shape != to_fixed_tuple(rs, nd):
            raise ValueError("grad_output must have the forward's output shape")
        rp, rr, m = s1[nd - 2], s2[nd - 2], s1[nd - 1]
        nb = 1
        for k in range(nd - 2):
            nb *= s1[k]
        a = np.ascontiguousarray(np.broadcast_to(x1, s1)).astype(dtype).reshape(-1)
        b = np.ascontiguousarray(np.broadcast_to(x2, s2)).astype(dtype).reshape(-1)
        o1 = np.zeros(a.size, dtype)
        o2 = np.zeros(b.size, dtype)
        if grad_output.size and m:
            kind = pnorm_kind(pp)
            dist = np.zeros(nb * rp * rr, dtype)
            _cdist_direct_serial(a, b, nb, rp, rr, m, pp, kind, dist)
            g = np.ascontiguousarray(grad_output).astype(dtype).reshape(-1)
            _cdist_grad_rows_serial(a, b, nb, rp, rr, m, pp, kind, dist, g, o1)
            dist_t = np.empty_like(dist)
            g_t = np.empty_like(g)
            for bi in range(nb):
                for i in range(rp):
                    for j in range(rr):
                        dist_t[(bi * rr + j) * rp + i] = dist[(bi * rp + i) * rr + j]
                        g_t[(bi * rr + j) * rp + i] = g[(bi * rp + i) * rr + j]
            _cdist_grad_rows_serial(b, a, nb, rr, rp, m, pp, kind, dist_t, g_t, o2)
        return (_sum_to_njit(o1, s1, x1.shape, like1), _sum_to_njit(o2, s2, x2.shape, like2))

    return impl


__all__ = ["cosine_similarity", "cosine_similarity_backward", "normalize",
           "normalize_backward", "pdist", "pdist_backward", "cdist", "cdist_backward"]
