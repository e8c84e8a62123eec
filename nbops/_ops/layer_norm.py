"""Layer and RMS normalization: ``nbops.layer_norm``, ``nbops.rms_norm`` and their backwards.

Both normalize each *row*: the last ``len(normalized_shape)`` axes of the
input, flattened (``length`` values), for each index of the leading axes.

Statistics
----------
A row's statistics are float64 sums over its values in a fixed order: the row
is read in blocks of ``_LANES`` values, lane ``k`` of every block adds into its
own float64 accumulator (a plain loop that LLVM vectorizes), then the lanes are
added in order and the row's tail is added last. layer_norm sums ``d = x -
shift`` and ``d * d`` around a shift (the row's first value, or 0 if that is
not finite: :func:`nbops.scalar._norms.finite_shift`), so float32 rows with a
large mean and a small spread keep their variance; rms_norm sums ``x * x``.
Rows are independent, each computed by one thread: the results are
bit-identical on any thread count.

Normalization
-------------
``y = ((x - mean_hi) - mean_lo) * rstd * w + b`` in the input's dtype, where
``mean_hi + mean_lo`` is the float64 mean split into two values of that dtype
(rms_norm: ``y = x * rstd * w``).

Backward
--------
Per row, with ``gw = g * w`` and ``x_hat = (x - mean) * rstd``, the float64
row sums ``a = sum(gw)`` and ``c = sum(gw * (x - mean))`` give

    layer_norm: ``grad_input = rstd * (gw - a / n - (x - mean) * rstd**2 * c / n)``
    rms_norm:   ``grad_input = rstd * (gw - x * rstd**2 * c / n)`` (``mean = 0``)

``grad_weight = sum over rows of g * x_hat`` and ``grad_bias = sum over rows of
g`` are float64 sums per task (a block of rows fixed by the shape alone), then
the tasks' partial sums are added in task order: bit-identical on any thread
count.
"""

import math
import operator

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable

from .. import _config, _memory
from .._launch import entry_point, launch, serial_below
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    deliver,
    is_dask_array,
    is_device_array,
    lean_destination,
    overlaps,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar._norms import finite_shift
from ..scalar.rows import row_view
from .elementwise import _float_array
from .normalization import _constant_flag, _is_none
from .plan import Remembered
from .row_tasks import (
    _LANES,
    _SCRATCH,
    _lane_block,
    _rows_per_task,
    _shifted_sums,
    _sum_parts,
)


def _forward(x, length, centered, w, b, eps, scratch, mean, rstd, out):
    """Normalize each row of the flat contiguous ``x`` (``length > 0`` values a
    row) into ``out``; ``mean``/``rstd`` (float64, one per row) receive the
    statistics, or are both empty (the statistics are not kept: the lean call).

    ``centered``: layer_norm (subtract the mean; ``mean`` receives it) or
    rms_norm (``mean`` receives 0). ``w``, ``b``: (length,) of ``x``'s dtype (ones
    and zeros where the op has none). ``scratch``: unused (the accumulators of
    the sums are on the stack: :data:`~nbops._ops.row_tasks._lane_block`).
    """
    n_rows = x.size // length
    keep = mean.size != 0
    per, n_tasks = _rows_per_task(n_rows, length)
    full = length - length % _LANES
    for t in prange(n_tasks):
        r0 = t * per
        r1 = np.minimum(n_rows, r0 + per)
        acc_s = _lane_block(0.0)
        acc_q = _lane_block(0.0)
        cast = row_view(out, 0, 1).copy()  # a value of x's dtype
        for row in range(r0, r1):
            xs = row_view(x, row * length, length)
            os = row_view(out, row * length, length)
            shift = finite_shift(xs[0]) if centered else 0.0
            if full:
                s, q = _shifted_sums(xs, shift, full, length, acc_s, acc_q)
            else:  # shorter than a block: the tail alone, here (the same bits)
                s = 0.0
                q = 0.0
                for j in range(length):
                    d = np.float64(xs[j]) - shift
                    s += d
                    q += d * d
            if centered:
                mean_d = s / length
                var = q / length - mean_d * mean_d
                if var < 0.0:
                    var = 0.0
                m = shift + mean_d if var == var else var  # NaN statistics, as PyTorch
            else:
                m = 0.0
                var = q / length
            r = 1.0 / math.sqrt(var + eps)
            if keep:
                mean[row] = m
                rstd[row] = r
            cast[0] = r
            rr = cast[0]
            if centered:
                cast[0] = m
                mh = cast[0]
                lo = m - np.float64(mh) if math.isfinite(np.float64(mh)) else 0.0
                cast[0] = lo
                ml = cast[0]
                for j in range(length):
                    os[j] = ((xs[j] - mh) - ml) * rr * w[j] + b[j]
            else:
                for j in range(length):
                    os[j] = xs[j] * rr * w[j]


_forward_serial, _forward_parallel = _config.kernels(_forward)


def _backward(g, x, length, centered, w, w64, mean, rstd, scratch, grads, part_w, part_b,
              out):
    """grad_input of each row of the flat contiguous ``g``, ``x`` into ``out``.

    ``w``/``w64``: (length,) weight in ``g``'s dtype and in float64 (ones where
    the op has none); ``mean``/``rstd``: float64, one per row (``mean`` zeros
    for rms_norm, ``centered`` False). ``grads``: also the per-task float64
    partial sums ``part_w[t] = sum(g * x_hat)``, ``part_b[t] = sum(g)`` over
    task t's rows (:func:`_rows_per_task`), which the caller adds in task order.
    """
    n_rows = mean.size
    per, n_tasks = _rows_per_task(n_rows, length)
    full = length - length % _LANES
    for t in prange(n_tasks):
        r0 = t * per
        r1 = np.minimum(n_rows, r0 + per)
        acc_a = row_view(scratch, 0, _LANES).copy()
        acc_c = row_view(scratch, 0, _LANES).copy()
        cast = row_view(out, 0, 1).copy()  # a value of g's dtype
        if grads:
            pw = part_w[t]
            pb = part_b[t]
            for j in range(length):
                pw[j] = 0.0
                pb[j] = 0.0
        for row in range(r0, r1):
            gs = row_view(g, row * length, length)
            xs = row_view(x, row * length, length)
            os = row_view(out, row * length, length)
            m = mean[row]
            r = rstd[row]
            for k in range(_LANES):
                acc_a[k] = 0.0
                acc_c[k] = 0.0
            for j0 in range(0, full, _LANES):
                gb = row_view(gs, j0, _LANES)
                xb = row_view(xs, j0, _LANES)
                wb = row_view(w64, j0, _LANES)
                for k in range(_LANES):
                    gw = np.float64(gb[k]) * wb[k]
                    acc_a[k] += gw
                    acc_c[k] += gw * (np.float64(xb[k]) - m)
            a = 0.0
            c = 0.0
            for k in range(_LANES):
                a += acc_a[k]
                c += acc_c[k]
            for j in range(full, length):
                gw = np.float64(gs[j]) * w64[j]
                a += gw
                c += gw * (np.float64(xs[j]) - m)
            cast[0] = r
            rr = cast[0]
            cast[0] = c / length * r * r
            kc = cast[0]
            if centered:
                cast[0] = a / length
                ka = cast[0]
                cast[0] = m
                mh = cast[0]
                lo = m - np.float64(mh) if math.isfinite(np.float64(mh)) else 0.0
                cast[0] = lo
                ml = cast[0]
                for j in range(length):
                    os[j] = ((gs[j] * w[j] - ka) - ((xs[j] - mh) - ml) * kc) * rr
            else:
                for j in range(length):
                    os[j] = (gs[j] * w[j] - xs[j] * kc) * rr
            if grads:
                for j in range(length):
                    gj = np.float64(gs[j])
                    pw[j] += gj * ((np.float64(xs[j]) - m) * r)
                    pb[j] += gj


_backward_serial, _backward_parallel = _config.kernels(_backward)


# --------------------------------------------------------------------------- #
# argument checks
# --------------------------------------------------------------------------- #


def _normalized_shape(normalized_shape):
    """``normalized_shape`` as a tuple of ints (an int is a 1-tuple)."""
    if isinstance(normalized_shape, (int, np.integer)) and not isinstance(normalized_shape,
                                                                            bool):
        return (operator.index(normalized_shape),)
    try:
        shape = tuple(operator.index(d) for d in normalized_shape)
    except TypeError:
        raise TypeError("normalized_shape must be an int or a tuple of ints, got "
                        f"{normalized_shape!r}") from None
    if not shape:
        raise ValueError("normalized_shape must have at least one element (the trailing "
                         "dimensions to normalize over), got ()")
    return shape




def _rows_plan(x_shape, normalized_shape):
    """(normalized shape tuple, number of rows, row length), shapes checked as PyTorch.

    Remembered for an int or a tuple of ints ``normalized_shape``, so a
    repeated call of the same shapes skips the checks."""
    if type(x_shape) is not tuple or not _plain_ints(normalized_shape):
        return _check_rows(x_shape, normalized_shape)
    return _PLANS[(x_shape, normalized_shape)]


def _plain_ints(normalized_shape):
    """An int or a tuple of ints (exactly: a float or a bool hashes as an int would)."""
    kind = type(normalized_shape)
    if kind is int:
        return True
    if kind is not tuple:
        return False
    for d in normalized_shape:
        if type(d) is not int:
            return False
    return True


def _check_rows(x_shape, normalized_shape):
    """:func:`_rows_plan` without the memo."""
    shape = _normalized_shape(normalized_shape)
    k = len(shape)
    if len(x_shape) < k or tuple(x_shape[len(x_shape) - k:]) != shape:
        raise ValueError(f"Given normalized_shape={list(shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, shape))}], but got input of size "
                         f"{list(x_shape)}")
    length = math.prod(shape)
    n_rows = math.prod(x_shape[:len(x_shape) - k])
    return shape, n_rows, length


_PLANS = Remembered(_check_rows)  # for tuples and ints (the plan of _rows_plan)


_FILLED = {}  # (fill, length, dtype char) -> a read-only vector (weight/bias defaults)


def _affine(v, name, shape, dtype, fill):
    """weight/bias as a contiguous (length,) array of ``dtype`` (``fill`` where None:
    one read-only vector per length and dtype, made once; the kernels only read it)."""
    if v is None:
        key = (fill, shape, dtype.char)
        vec = _FILLED.get(key)
        if vec is None:
            vec = np.full(math.prod(shape), fill, dtype)
            vec.flags.writeable = False
            if len(_FILLED) < 64:
                _FILLED[key] = vec
        return vec
    a = as_array(v, name)
    result_dtype(a.dtype, name)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (normalized_shape), got {a.shape}")
    return np.ascontiguousarray(a, dtype=dtype).reshape(-1)


def _stats_shape(x_shape, k):
    """PyTorch's shape of the saved statistics: the leading axes, then k ones."""
    return tuple(x_shape[:len(x_shape) - k]) + (1,) * k


def _saved_rows(v, name, x_shape, k, n_rows):
    """A saved statistic (mean, rstd) as a float64 (n_rows,) array, shape checked."""
    a = as_array(v, name)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a float array, got dtype {a.dtype}")
    lead = tuple(x_shape[:len(x_shape) - k])
    if a.shape not in (lead + (1,) * k, lead):
        raise ValueError(f"{name} must have shape {lead + (1,) * k} (the input's leading "
                         f"dimensions, then ones: as the forward's return_stats), got "
                         f"{a.shape}")
    return np.ascontiguousarray(a, dtype=np.float64).reshape(-1)


def _run_forward(name, input, normalized_shape, weight, bias, eps, out, centered):
    """(result, float64 mean, float64 rstd, normalized shape, compute dtype, result dtype)."""
    x = input if type(input) is np.ndarray else as_array(input)
    compute, result = result_dtype(x.dtype)
    shape, n_rows, length = _rows_plan(x.shape, normalized_shape)
    w = _affine(weight, "weight", shape, compute, 1.0)
    b = _affine(bias, "bias", shape, compute, 0.0)
    if out is not None:
        check_out(out, x.shape, result)
    src = np.ascontiguousarray(x, dtype=compute).reshape(-1)
    direct = (out is not None and result == compute and out.flags.c_contiguous
              and not overlaps(out, src, w, b))
    res = out if direct else _memory.empty(x.shape, compute)
    mean = np.empty(n_rows, np.float64)  # (the kernel writes every row's)
    rstd = np.empty(n_rows, np.float64)
    if length == 0:  # empty rows: NaN statistics, as PyTorch
        mean[:] = np.nan
        rstd[:] = np.nan
    elif n_rows:
        launch(_forward_serial, _forward_parallel, (name, compute.char, src.flags.writeable),
               x.size, src, length, centered, w, b, eps, _SCRATCH, mean, rstd, res.reshape(-1))
    return deliver(res, out, direct, compute, result), mean, rstd, shape, result


_FLOAT32, _FLOAT64 = np.dtype(np.float32), np.dtype(np.float64)
#: The ``mean``/``rstd`` of a forward call that does not keep its statistics.
_NO_STATS = np.empty(0, np.float64)
#: (op name, dtype) -> (the serial forward kernel's entry point, the element count
#: from which the general path would run the parallel twin)
_LEAN = {}


def _lean_affine(v, shape, dtype, fill):
    """weight/bias of the lean call as the kernel's (length,) vector, or None where
    the general path must convert or check it: an ndarray of exactly ``dtype``
    and ``shape`` (the normalized shape), C-contiguous; None: the default vector."""
    if v is None:
        return _affine(None, None, shape, dtype, fill)
    if type(v) is np.ndarray and v.dtype is dtype and v.shape == shape \
            and v.flags.c_contiguous:
        return v if v.ndim == 1 else v.reshape(-1)
    return None


def _lean_forward(name, x, normalized_shape, weight, bias, eps, out, centered):
    """The common call of layer_norm / rms_norm without ``return_stats``, or None.

    A C-contiguous float32/float64 ndarray with rows, weight/bias None or
    C-contiguous ndarrays of its dtype and the normalized shape, a float ``eps``,
    no ``out=`` or a C-contiguous writable one of the input's shape and dtype apart
    from the input: the general path's kernel call (:func:`_run_forward`) with
    fewer Python steps. Below the size where the general path would go parallel
    the serial kernel's entry point is called directly, and the kernel keeps no
    statistics (``_NO_STATS``).
    Any other call returns None and takes the general path, with its checks."""
    dt = x.dtype
    if not ((dt is _FLOAT32 or dt is _FLOAT64) and x.flags.c_contiguous
            and type(eps) is float):
        return None
    shape, n_rows, length = _rows_plan(x.shape, normalized_shape)  # (raises as the general)
    if not (n_rows and length):
        return None
    w = _lean_affine(weight, shape, dt, 1.0)
    b = _lean_affine(bias, shape, dt, 0.0)
    if w is None or b is None:
        return None
    res = lean_destination(out, x.shape, dt, x, w, b)
    if res is None:
        return None
    args = (x.reshape(-1), length, centered, w, b, eps, _SCRATCH, _NO_STATS, _NO_STATS,
            res.reshape(-1))
    lean = _LEAN.get((name, dt))
    if lean is None:
        key = (name, dt.char, True)
        lean = _LEAN[(name, dt)] = (entry_point(_forward_serial, key, args),
                                    serial_below(_forward_serial, key))
    if x.size < lean[1]:
        lean[0](*args)
    else:
        launch(_forward_serial, _forward_parallel, (name, dt.char, x.flags.writeable), x.size,
               *args)
    return res


# --------------------------------------------------------------------------- #
# public functions
# --------------------------------------------------------------------------- #


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, *, out=None,
               return_stats=False):
    r"""Layer normalization over the trailing ``normalized_shape`` dimensions.

    .. math:: y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot w + b

    with the mean and the biased variance of each row: the last
    ``len(normalized_shape)`` axes, for each index of the leading axes.

    Parameters
    ----------
    input : array_like
        ``(*, *normalized_shape)``: any shape whose trailing dimensions are
        ``normalized_shape``; any memory layout.
    normalized_shape : int or tuple of int
        The trailing dimensions to normalize over (an int: the last one).
    weight, bias : array_like of shape ``normalized_shape``, optional
        Elementwise affine parameters (None: ``w = 1``, ``b = 0``).
    eps : float, default 1e-5
        Added to the variance before its square root.
    out : ndarray, optional, keyword-only
        Written with the result (the input's shape and the result dtype).
    return_stats : bool, default False, keyword-only
        Also return the statistics, for :func:`nbops.layer_norm_backward`.

    Returns
    -------
    ndarray of the input's shape (float32 stays float32); with
    ``return_stats=True`` the tuple ``(output, mean, rstd)``, the mean and
    ``1 / sqrt(var + eps)`` of each row in the result dtype, of shape
    ``input.shape[:-k] + (1,) * k`` (``k = len(normalized_shape)``), as
    ``torch.ops.aten.native_layer_norm`` returns them.

    Notes
    -----
    Same as ``torch.nn.functional.layer_norm``. Each row's statistics are
    float64 sums in a fixed order, around the row's first value, so float32
    rows with a large mean keep their variance, and the results are
    bit-identical on any thread count.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.layer_norm(np.array([[1.0, 2.0, 3.0], [2.0, 2.0, 5.0]]), 3)
    array([[-1.22473569,  0.        ,  1.22473569],
           [-0.70710501, -0.70710501,  1.41421003]])
    """
    if type(input) is np.ndarray and not return_stats:
        res = _lean_forward("layer_norm", input, normalized_shape, weight, bias, eps, out,
                            True)
        if res is not None:
            return res
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().layer_norm(input, normalized_shape, weight, bias, eps, out=out,
                                  return_stats=return_stats)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().layer_norm(input, normalized_shape, weight, bias, eps, out=out,
                                     return_stats=return_stats)
    y, mean, rstd, shape, result = _run_forward("layer_norm", input, normalized_shape, weight,
                                                bias, float(eps), out, True)
    if return_stats:
        stats = _stats_shape(y.shape, len(shape))
        return y, mean.astype(result).reshape(stats), rstd.astype(result).reshape(stats)
    return y


def rms_norm(input, normalized_shape, weight=None, eps=None, *, out=None, return_stats=False):
    r"""Root mean square normalization over the trailing ``normalized_shape`` dimensions.

    .. math:: y = \frac{x}{\sqrt{\mathrm{E}[x^2] + \epsilon}} \cdot w

    with the mean of the squares of each row: the last ``len(normalized_shape)``
    axes, for each index of the leading axes.

    Parameters
    ----------
    input : array_like
        ``(*, *normalized_shape)``; any memory layout.
    normalized_shape : int or tuple of int
        The trailing dimensions to normalize over (an int: the last one).
    weight : array_like of shape ``normalized_shape``, optional
        Elementwise scale (None: ``w = 1``).
    eps : float, optional
        Added to the mean square; None (the default): ``numpy.finfo(dtype).eps``
        of the input's (float) dtype, as PyTorch.
    out : ndarray, optional, keyword-only
        Written with the result (the input's shape and the result dtype).
    return_stats : bool, default False, keyword-only
        Also return ``rstd``, for :func:`nbops.rms_norm_backward`.

    Returns
    -------
    ndarray of the input's shape (float32 stays float32); with
    ``return_stats=True`` the tuple ``(output, rstd)``, ``1 / sqrt(E[x^2] + eps)``
    of each row in the result dtype, of shape ``input.shape[:-k] + (1,) * k``.

    Notes
    -----
    Same as ``torch.nn.functional.rms_norm``. The mean square of each row is a
    float64 sum in a fixed order: bit-identical on any thread count.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.rms_norm(np.array([[3.0, 4.0], [1.0, -1.0]]), 2)
    array([[ 0.84852814,  1.13137085],
           [ 1.        , -1.        ]])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().rms_norm(input, normalized_shape, weight, eps, out=out,
                                return_stats=return_stats)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().rms_norm(input, normalized_shape, weight, eps, out=out,
                                   return_stats=return_stats)
    x = input if type(input) is np.ndarray else as_array(input)
    eps = _rms_eps(x.dtype, eps)
    if type(input) is np.ndarray and not return_stats:
        res = _lean_forward("rms_norm", x, normalized_shape, weight, None, eps, out, False)
        if res is not None:
            return res
    y, _, rstd, shape, result = _run_forward("rms_norm", x, normalized_shape, weight, None, eps,
                                             out, False)
    if return_stats:
        return y, rstd.astype(result).reshape(_stats_shape(y.shape, len(shape)))
    return y


def _rms_eps(dtype, eps):
    """PyTorch's default: the machine epsilon of the input's dtype (of the result
    dtype for a non-float input)."""
    if eps is not None:
        return float(eps)
    default = _DEFAULT_EPS.get(dtype)
    if default is None:
        kind = dtype if dtype.kind == "f" else result_dtype(dtype)[1]
        default = _DEFAULT_EPS[dtype] = float(np.finfo(kind).eps)
    return default


_DEFAULT_EPS = {}  # dtype -> rms_norm's default eps


def _run_backward(name, grad_output, input, normalized_shape, mean, rstd, weight, grads,
                  out):
    """(grad_input, float64 grad_weight, float64 grad_bias, shape, result dtype)."""
    g = _float_array(grad_output, "grad_output")
    x = as_array(input, "input")
    compute, result = result_dtype(np.result_type(g.dtype, result_dtype(x.dtype)[1]))
    if g.shape != x.shape:
        raise ValueError(f"grad_output has shape {g.shape} but input has shape {x.shape}: "
                         "they must be the same (the forward's output shape)")
    shape, n_rows, length = _rows_plan(x.shape, normalized_shape)
    k = len(shape)
    mean64 = (np.zeros(n_rows) if mean is None
              else _saved_rows(mean, "mean", x.shape, k, n_rows))
    rstd64 = _saved_rows(rstd, "rstd", x.shape, k, n_rows)
    w = _affine(weight, "weight", shape, compute, 1.0)
    w64 = w.astype(np.float64)
    if out is not None:
        check_out(out, x.shape, result)
    gs = np.ascontiguousarray(g, dtype=compute).reshape(-1)
    xs = np.ascontiguousarray(x, dtype=compute).reshape(-1)
    direct = (out is not None and out.dtype == compute and out.flags.c_contiguous
              and not overlaps(out, gs, xs, mean64, rstd64, w))
    res = out if direct else _memory.empty(x.shape, compute)
    grad_w = np.zeros(length, np.float64)
    grad_b = np.zeros(length, np.float64)
    if n_rows and length:
        per, n_tasks = _rows_per_task(n_rows, length)
        parts = (n_tasks, length) if grads else (1, 1)
        part_w = np.empty(parts, np.float64)
        part_b = np.empty(parts, np.float64)
        launch(_backward_serial, _backward_parallel, (name + "_backward", compute.char),
               x.size, gs, xs, length, mean is not None, w, w64, mean64, rstd64, _SCRATCH,
               grads, part_w, part_b, res.reshape(-1))
        if grads:
            _sum_parts(part_w, part_b, grad_w, grad_b)
    grad_input = deliver(res, out, direct, compute, result)
    return grad_input, grad_w.reshape(shape), grad_b.reshape(shape), result


def layer_norm_backward(grad_output, input, normalized_shape, mean, rstd, weight=None, *,
                        has_bias=None, out=None):
    r"""Gradients of :func:`layer_norm`: ``(grad_input, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to ``layer_norm``'s output (the
        input's shape; a float array).
    input : array_like
        The forward's input.
    normalized_shape : int or tuple of int
        The forward's ``normalized_shape``.
    mean, rstd : array_like
        The statistics ``layer_norm(..., return_stats=True)`` returns: of shape
        ``input.shape[:-k] + (1,) * k`` (or ``input.shape[:-k]``).
    weight : array_like of shape ``normalized_shape``, optional
        The forward's weight (None: ``w = 1``).
    has_bias : bool, optional, keyword-only
        Whether the forward had a bias (only whether ``grad_bias`` is
        returned). Default: ``weight is not None``.
    out : ndarray, optional, keyword-only
        Written with ``grad_input`` (the input's shape and result dtype).

    Returns
    -------
    tuple
        ``(grad_input, grad_weight, grad_bias)``: ``grad_input`` of the
        input's shape, ``grad_weight``/``grad_bias`` of shape
        ``normalized_shape``, in the result dtype of ``grad_output`` and
        ``input`` (float32 stays float32); ``grad_weight`` is None when
        ``weight`` is None, ``grad_bias`` when the forward had no bias.

    Notes
    -----
    As PyTorch's ``native_layer_norm_backward``, per row of ``n`` values with
    :math:`\hat{x} = (x - \mu)\,\sigma^{-1}` and :math:`\langle\cdot\rangle`
    the row mean:

    .. math::

        \frac{\partial L}{\partial x} = \sigma^{-1}\left(g w - \langle g w\rangle
        - \hat{x}\,\langle g w \hat{x}\rangle\right),

    ``grad_weight = sum(g * x_hat)`` and ``grad_bias = sum(g)`` over the rows.
    The sums are float64 with a cut fixed by the shape: bit-identical on any
    thread count.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[1.0, 2.0, 4.0], [0.0, 3.0, 3.0]])
    >>> w, b = np.ones(3), np.zeros(3)
    >>> y, mean, rstd = nbops.layer_norm(x, 3, w, b, return_stats=True)
    >>> g = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 2.0]])
    >>> gi, gw, gb = nbops.layer_norm_backward(g, x, 3, mean, rstd, w)
    >>> gb
    array([1., 0., 2.])
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().layer_norm_backward(grad_output, input, normalized_shape, mean, rstd,
                                           weight, has_bias=has_bias, out=out)
    if is_dask_array(grad_output) or is_dask_array(input):  # nbops/_dask.py: lazy graphs
        return dask_ops().layer_norm_backward(grad_output, input, normalized_shape, mean, rstd,
                                              weight, has_bias=has_bias, out=out)
    has_bias = weight is not None if has_bias is None else bool(has_bias)
    if mean is None:
        raise TypeError("mean must be an array (the forward's return_stats), got None")
    gi, gw, gb, result = _run_backward("layer_norm", grad_output, input, normalized_shape,
                                       mean, rstd, weight, weight is not None or has_bias,
                                       out)
    return (gi, None if weight is None else gw.astype(result),
            gb.astype(result) if has_bias else None)


def rms_norm_backward(grad_output, input, normalized_shape, rstd, weight=None, *, out=None):
    r"""Gradients of :func:`rms_norm`: ``(grad_input, grad_weight)``.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to ``rms_norm``'s output (the
        input's shape; a float array).
    input : array_like
        The forward's input.
    normalized_shape : int or tuple of int
        The forward's ``normalized_shape``.
    rstd : array_like
        ``1 / sqrt(E[x^2] + eps)`` per row, as ``rms_norm(..., return_stats=True)``
        returns it (shape ``input.shape[:-k] + (1,) * k`` or ``input.shape[:-k]``).
    weight : array_like of shape ``normalized_shape``, optional
        The forward's weight (None: ``w = 1``).
    out : ndarray, optional, keyword-only
        Written with ``grad_input`` (the input's shape and result dtype).

    Returns
    -------
    tuple
        ``(grad_input, grad_weight)``: ``grad_input`` of the input's shape,
        ``grad_weight`` of shape ``normalized_shape`` (None when ``weight`` is
        None), in the result dtype of ``grad_output`` and ``input``.

    Notes
    -----
    Per row of ``n`` values, with :math:`r` = ``rstd``:

    .. math::

        \frac{\partial L}{\partial x} = r\left(g w - x\,r^2\,\langle g w x\rangle\right),

    and ``grad_weight = sum(g * x * r)`` over the rows (float64 sums with a cut
    fixed by the shape: bit-identical on any thread count).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[3.0, 4.0]])
    >>> y, rstd = nbops.rms_norm(x, 2, return_stats=True)
    >>> gi, gw = nbops.rms_norm_backward(np.array([[1.0, 0.0]]), x, 2, rstd)
    >>> np.round(gi, 4)
    array([[ 0.181 , -0.1358]])
    >>> gw is None
    True
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().rms_norm_backward(grad_output, input, normalized_shape, rstd, weight,
                                         out=out)
    if is_dask_array(grad_output) or is_dask_array(input):  # nbops/_dask.py: lazy graphs
        return dask_ops().rms_norm_backward(grad_output, input, normalized_shape, rstd, weight,
                                            out=out)
    gi, gw, _, result = _run_backward("rms_norm", grad_output, input, normalized_shape, None,
                                      rstd, weight, weight is not None, out)
    return gi, None if weight is None else gw.astype(result)



__all__ = ["layer_norm", "rms_norm", "layer_norm_backward", "rms_norm_backward"]


# --------------------------------------------------------------------------- #
# inside a user's @njit function
# --------------------------------------------------------------------------- #
# The overloads check the shapes as the public functions do (fixed messages),
# then call the cached serial kernels above: the same bits as outside @njit.


@register_jitable
def _one_tuple(n):
    return (n,)


@register_jitable
def _same_tuple(t):
    return t


def _shape_converter(normalized_shape, name):
    """A jitable turning ``normalized_shape``'s Numba type into a tuple of ints, and
    its length (known when the overload compiles)."""
    if isinstance(normalized_shape, types.Integer):
        return _one_tuple, 1
    if isinstance(normalized_shape, types.UniTuple) and isinstance(normalized_shape.dtype,
                                                                    types.Integer):
        if normalized_shape.count == 0:
            raise errors.TypingError(f"nbops.{name}: normalized_shape must have at least one "
                                     "element")
        return _same_tuple, normalized_shape.count
    raise errors.TypingError(f"nbops.{name}: normalized_shape must be an int or a tuple of "
                             "ints")


_STATS_SHAPES = {}


def _stats_shape_jitable(ndim, k):
    """A jitable ``shape -> shape[:ndim - k] + (1,) * k`` (the saved statistics' shape)."""
    fn = _STATS_SHAPES.get((ndim, k))
    if fn is None:
        items = [f"s[{i}]" for i in range(ndim - k)] + ["1"] * k
        namespace = {}
        exec(f"def stats_shape(s):\n    return ({', '.join(items)},)\n", namespace)
        fn = _STATS_SHAPES[(ndim, k)] = register_jitable(namespace["stats_shape"])
    return fn


@register_jitable
def _rows_and_length(shape, ns, message):
    """(rows, row length) of an input ``shape`` normalized over ``ns`` (checked)."""
    nd = len(shape)
    k = len(ns)
    if nd < k:
        raise ValueError(message)
    length = 1
    for i in range(k):
        if shape[nd - k + i] != ns[i]:
            raise ValueError(message)
        length *= ns[i]
    n_rows = 1
    for i in range(nd - k):
        n_rows *= shape[i]
    return n_rows, length


@register_jitable
def _flat_affine(v, ns, length, like, message):
    """weight/bias as a contiguous (length,) array of ``like``'s dtype (shape checked)."""
    for i in range(len(ns)):
        if v.shape[i] != ns[i]:
            raise ValueError(message)
    res = np.empty(length, like.dtype)
    flat = np.ascontiguousarray(v).reshape(-1)
    for j in range(length):
        res[j] = flat[j]
    return res


def _affine_ndim(v, k, name, op):
    if not _is_none(v) and (not isinstance(v, types.Array) or v.ndim != k):
        raise errors.TypingError(f"nbops.{op}: {name} must be an array of "
                                 "normalized_shape's shape")
    return not _is_none(v)


def _compute_dtype(t):
    return t.dtype if isinstance(t.dtype, types.Float) else types.float64


@register_jitable
def _length(ns):
    length = 1
    for d in ns:
        length *= d
    return length


@register_jitable
def _njit_forward(x, shape, ns, w, b, eps, centered):
    """(flat result, float64 mean, float64 rstd) of the serial forward kernel on the
    flat contiguous ``x`` (of the compute dtype) of the input ``shape``."""
    n_rows, length = _rows_and_length(shape, ns, "input's trailing dimensions must be "
                                      "normalized_shape")
    res = np.empty(x.size, x.dtype)
    mean = np.full(n_rows, np.nan)
    rstd = np.full(n_rows, np.nan)
    if n_rows != 0 and length != 0:
        _forward_serial(x, length, centered, w, b, np.float64(eps), _SCRATCH.copy(), mean,
                        rstd, res)
    return res, mean, rstd


@register_jitable
def _ln_output(y, mean, rstd, stats_shape):
    return y


@register_jitable
def _ln_with_stats(y, mean, rstd, stats_shape):
    return (y, mean.astype(y.dtype).reshape(stats_shape),
            rstd.astype(y.dtype).reshape(stats_shape))


@register_jitable
def _rms_output(y, mean, rstd, stats_shape):
    return y


@register_jitable
def _rms_with_stats(y, mean, rstd, stats_shape):
    return y, rstd.astype(y.dtype).reshape(stats_shape)


@overload(layer_norm)
def _layer_norm_njit(input, normalized_shape, weight=None, bias=None, eps=1e-5, out=None,
                     return_stats=False):
    """Inside @njit: the cached serial kernel; ``return_stats`` a constant; no ``out=``."""
    if not isinstance(input, types.Array) or not _is_none(out):
        return None
    to_tuple, k = _shape_converter(normalized_shape, "layer_norm")
    has_w = _affine_ndim(weight, k, "weight", "layer_norm")
    has_b = _affine_ndim(bias, k, "bias", "layer_norm")
    finish = _ln_with_stats if _constant_flag(return_stats, "return_stats", False) \
        else _ln_output
    stats_shape = _stats_shape_jitable(input.ndim, k)
    dtype = _compute_dtype(input)

    def impl(input, normalized_shape, weight=None, bias=None, eps=1e-5, out=None,
             return_stats=False):
        ns = to_tuple(normalized_shape)
        length = _length(ns)
        x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
        w = np.ones(length, dtype)
        b = np.zeros(length, dtype)
        if has_w:
            w = _flat_affine(weight, ns, length, x, "weight must have shape normalized_shape")
        if has_b:
            b = _flat_affine(bias, ns, length, x, "bias must have shape normalized_shape")
        res, mean, rstd = _njit_forward(x, input.shape, ns, w, b, eps, True)
        return finish(res.reshape(input.shape), mean, rstd, stats_shape(input.shape))

    return impl


@overload(rms_norm)
def _rms_norm_njit(input, normalized_shape, weight=None, eps=None, out=None,
                   return_stats=False):
    """Inside @njit: the cached serial kernel; ``return_stats`` a constant; no ``out=``."""
    if not isinstance(input, types.Array) or not _is_none(out):
        return None
    to_tuple, k = _shape_converter(normalized_shape, "rms_norm")
    has_w = _affine_ndim(weight, k, "weight", "rms_norm")
    finish = _rms_with_stats if _constant_flag(return_stats, "return_stats", False) \
        else _rms_output
    stats_shape = _stats_shape_jitable(input.ndim, k)
    dtype = _compute_dtype(input)
    own = input.dtype if isinstance(input.dtype, types.Float) else dtype
    default_eps = float(np.finfo(np.dtype(str(own))).eps)
    no_eps = _is_none(eps)

    def impl(input, normalized_shape, weight=None, eps=None, out=None, return_stats=False):
        ns = to_tuple(normalized_shape)
        length = _length(ns)
        x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
        w = np.ones(length, dtype)
        if has_w:
            w = _flat_affine(weight, ns, length, x, "weight must have shape normalized_shape")
        e = default_eps
        if not no_eps:
            e = np.float64(eps)
        res, mean, rstd = _njit_forward(x, input.shape, ns, w, np.zeros(length, dtype), e,
                                        False)
        return finish(res.reshape(input.shape), mean, rstd, stats_shape(input.shape))

    return impl


# ------------------------------------------------------------- backwards in @njit
@register_jitable
def _njit_backward(g, x, shape, ns, mean, rstd, w, centered, grads):
    """(flat grad_input, float64 grad_weight sums, float64 grad_bias sums) of the
    serial backward kernel on the flat contiguous ``g``, ``x``."""
    n_rows, length = _rows_and_length(shape, ns, "input's trailing dimensions must be "
                                      "normalized_shape")
    if mean.size != n_rows:
        raise ValueError("mean must have one value per row (input.shape[:-k])")
    if rstd.size != n_rows:
        raise ValueError("rstd must have one value per row (input.shape[:-k])")
    mean64 = np.zeros(n_rows)  # rms_norm: no mean (``mean`` is ``rstd`` then)
    if centered:
        mean64 = np.ascontiguousarray(mean).astype(np.float64).reshape(-1)
    rstd64 = np.ascontiguousarray(rstd).astype(np.float64).reshape(-1)
    res = np.empty(x.size, x.dtype)
    grad_w = np.zeros(length, np.float64)
    grad_b = np.zeros(length, np.float64)
    if n_rows != 0 and length != 0:
        per, n_tasks = _rows_per_task(n_rows, length)
        part_w = np.empty((n_tasks if grads else 1, length if grads else 1), np.float64)
        part_b = np.empty((n_tasks if grads else 1, length if grads else 1), np.float64)
        _backward_serial(g, x, length, centered, w, w.astype(np.float64), mean64, rstd64,
                         _SCRATCH.copy(), grads, part_w, part_b, res)
        if grads:
            _sum_parts(part_w, part_b, grad_w, grad_b)
    return res, grad_w, grad_b


@register_jitable
def _grads_wb(gi, gw, gb, shape):
    return gi, gw.astype(gi.dtype).reshape(shape), gb.astype(gi.dtype).reshape(shape)


@register_jitable
def _grads_w(gi, gw, gb, shape):
    return gi, gw.astype(gi.dtype).reshape(shape), None


@register_jitable
def _grads_b(gi, gw, gb, shape):
    return gi, None, gb.astype(gi.dtype).reshape(shape)


@register_jitable
def _grads_none(gi, gw, gb, shape):
    return gi, None, None


@register_jitable
def _rms_grads_w(gi, gw, gb, shape):
    return gi, gw.astype(gi.dtype).reshape(shape)


@register_jitable
def _rms_grads_none(gi, gw, gb, shape):
    return gi, None


def _check_grad_types(grad_output, input, op):
    if not (isinstance(grad_output, types.Array) and isinstance(input, types.Array)):
        return False
    if not isinstance(grad_output.dtype, types.Float):
        raise errors.TypingError(f"nbops.{op}: grad_output must be a float array")
    if grad_output.ndim != input.ndim:
        raise errors.TypingError(f"nbops.{op}: grad_output and input must have the same "
                                 "shape")
    return True


def _backward_dtype(grad_output, input):
    in_dtype = _compute_dtype(input)
    return types.float64 if types.float64 in (in_dtype, grad_output.dtype) else types.float32


@overload(layer_norm_backward)
def _layer_norm_backward_njit(grad_output, input, normalized_shape, mean, rstd, weight=None,
                              has_bias=None, out=None):
    """Inside @njit: the cached serial kernel; ``has_bias`` a constant; no ``out=``."""
    if not _check_grad_types(grad_output, input, "layer_norm_backward"):
        return None
    if not _is_none(out):
        raise errors.TypingError("nbops.layer_norm_backward: out= is not supported inside "
                                 "@njit")
    to_tuple, k = _shape_converter(normalized_shape, "layer_norm_backward")
    has_w = _affine_ndim(weight, k, "weight", "layer_norm_backward")
    has_b = _constant_flag(has_bias, "has_bias", has_w)
    finish = {(True, True): _grads_wb, (True, False): _grads_w, (False, True): _grads_b,
              (False, False): _grads_none}[(has_w, has_b)]
    dtype = _backward_dtype(grad_output, input)

    def impl(grad_output, input, normalized_shape, mean, rstd, weight=None, has_bias=None,
             out=None):
        if grad_output.shape != input.shape:
            raise ValueError("grad_output must have the input's shape (the forward's output "
                             "shape)")
        ns = to_tuple(normalized_shape)
        length = _length(ns)
        g = np.ascontiguousarray(grad_output).astype(dtype).reshape(-1)
        x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
        w = np.ones(length, dtype)
        if has_w:
            w = _flat_affine(weight, ns, length, x, "weight must have shape normalized_shape")
        gi, gw, gb = _njit_backward(g, x, input.shape, ns, mean, rstd, w, True,
                                    has_w or has_b)
        return finish(gi.reshape(input.shape), gw, gb, ns)

    return impl


@overload(rms_norm_backward)
def _rms_norm_backward_njit(grad_output, input, normalized_shape, rstd, weight=None,
                            out=None):
    """Inside @njit: the cached serial kernel; no ``out=``."""
    if not _check_grad_types(grad_output, input, "rms_norm_backward"):
        return None
    if not _is_none(out):
        raise errors.TypingError("nbops.rms_norm_backward: out= is not supported inside "
                                 "@njit")
    to_tuple, k = _shape_converter(normalized_shape, "rms_norm_backward")
    has_w = _affine_ndim(weight, k, "weight", "rms_norm_backward")
    finish = _rms_grads_w if has_w else _rms_grads_none
    dtype = _backward_dtype(grad_output, input)

    def impl(grad_output, input, normalized_shape, rstd, weight=None, out=None):
        if grad_output.shape != input.shape:
            raise ValueError("grad_output must have the input's shape (the forward's output "
                             "shape)")
        ns = to_tuple(normalized_shape)
        length = _length(ns)
        g = np.ascontiguousarray(grad_output).astype(dtype).reshape(-1)
        x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
        w = np.ones(length, dtype)
        if has_w:
            w = _flat_affine(weight, ns, length, x, "weight must have shape normalized_shape")
        gi, gw, gb = _njit_backward(g, x, input.shape, ns, rstd, rstd, w, False, has_w)
        return finish(gi.reshape(input.shape), gw, gb, ns)

    return impl
