"""Group and instance normalization: ``nbops.group_norm``, ``nbops.instance_norm``
and their backwards.

group_norm normalizes each *group*: for an ``(N, C, *)`` input and ``G`` groups,
the ``C / G`` consecutive channels of a group and all their positions, for each
sample (``length = C / G * prod(*)`` values, contiguous in a C-ordered input).
The groups are the rows of :mod:`nbops._ops.layer_norm`'s design: float64 sums
in a fixed order around a shift (the group's first value), one thread per
group, so the statistics are bit-identical on any thread count (the sums: one
plain loop compiled with ``reassoc``, which LLVM vectorizes,
``nbops/_ops/row_tasks.py``). The affine
parameters are per channel: ``y = ((x - mean_hi) - mean_lo) * (rstd * w[c]) +
b[c]`` in the input's dtype, with the mean split into two values of that dtype.

instance_norm with the input's statistics is group_norm with one group per
channel (and the running statistics' update: the batch mean of the samples'
means and of their unbiased variances); with the running statistics it is
:func:`nbops.batch_norm` in evaluation.

Backward
--------
Per group, with ``gw = g * w[c]``, the float64 sums ``a = sum(gw)`` and ``k =
sum(gw * (x - mean))`` give ``grad_input = rstd * (gw - a / n - (x - mean) *
rstd**2 * k / n)``. The same pass leaves each (sample, channel)'s float64 sums
``sum(g * (x - mean)) * rstd`` and ``sum(g)``; ``grad_weight`` and ``grad_bias``
add them over the samples in order: bit-identical on any thread count.
"""

import math
import operator

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable

from .. import _config, _memory
from .._launch import launch
from .._validate import (
    as_array,
    check_out,
    check_out_apart,
    dask_ops,
    deliver,
    is_dask_array,
    is_device_array,
    overlaps,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar._norms import finite_shift
from ..scalar.rows import row_view
from .elementwise import _float_array
from .normalization import _constant_flag, _is_none, batch_norm, batch_norm_backward
from .plan import Remembered
from .row_tasks import _LANES, _SCRATCH, _plain_shifted_sums, _rows_per_task, _sum_parts

#: Channels of fewer positions (``inner``) are normalized a whole group at a
#: time, with each channel's scale and bias repeated per position.
_SHORT = 16


def _forward(x, groups, cpg, inner, w, b, eps, scratch, mean, rstd, out):
    """Normalize each group (``cpg * inner`` values) of the flat contiguous ``x``
    into ``out``; ``mean``/``rstd`` (float64, one per (sample, group)) receive the
    statistics. ``w``, ``b``: (C,) of ``x``'s dtype (ones and zeros where the op
    has none). ``scratch``: unused (the sums are
    :func:`nbops._ops.row_tasks._plain_shifted_sums`, compiled with ``reassoc``)."""
    n_rows = mean.size
    length = cpg * inner
    per, n_tasks = _rows_per_task(n_rows, length)
    unit = True  # weight all 1 and bias all +0.0 (the defaults): one scale per group
    for j in range(w.size):
        if w[j] != 1.0 or b[j] != 0.0 or math.copysign(1.0, b[j]) < 0.0:
            unit = False
    for t in prange(n_tasks):
        r0 = t * per
        r1 = np.minimum(n_rows, r0 + per)
        cast = row_view(out, 0, 1).copy()  # a value of x's dtype
        n_pos = length if inner < _SHORT else 0
        sc_pos = row_view(out, 0, n_pos).copy()  # a group's scale and bias per position
        b_pos = row_view(out, 0, n_pos).copy()
        for row in range(r0, r1):
            xs = row_view(x, row * length, length)
            shift = finite_shift(xs[0])
            s, q = _plain_shifted_sums(xs, shift, length)
            mean_d = s / length
            var = q / length - mean_d * mean_d
            if var < 0.0:
                var = 0.0
            m = shift + mean_d if var == var else var  # NaN statistics, as PyTorch
            r = 1.0 / math.sqrt(var + eps)
            mean[row] = m
            rstd[row] = r
            cast[0] = m
            mh = cast[0]
            lo = m - np.float64(mh) if math.isfinite(np.float64(mh)) else 0.0
            cast[0] = lo
            ml = cast[0]
            c0 = (row % groups) * cpg
            if inner == 1 and unit:  # the same arithmetic as below, with one scale
                cast[0] = r * 1.0
                rr = cast[0]
                cast[0] = 0.0
                zero = cast[0]
                os = row_view(out, row * length, length)
                for j in range(length):
                    os[j] = ((xs[j] - mh) - ml) * rr + zero
                continue
            if inner == 1:  # (N, C) inputs: plain loops over the group's channels
                wg = row_view(w, c0, cpg)
                bg = row_view(b, c0, cpg)
                for j in range(length):
                    sc_pos[j] = r * np.float64(wg[j])  # (stored in x's dtype)
                os = row_view(out, row * length, length)
                for j in range(length):
                    os[j] = ((xs[j] - mh) - ml) * sc_pos[j] + bg[j]
                continue
            if inner < _SHORT:  # the parameters per position, then one plain loop
                for ci in range(cpg):
                    sc = r * np.float64(w[c0 + ci])  # (stored in x's dtype)
                    bc = b[c0 + ci]
                    for j in range(ci * inner, (ci + 1) * inner):
                        sc_pos[j] = sc
                        b_pos[j] = bc
                os = row_view(out, row * length, length)
                for j in range(length):
                    os[j] = ((xs[j] - mh) - ml) * sc_pos[j] + b_pos[j]
                continue
            for ci in range(cpg):
                cast[0] = r * np.float64(w[c0 + ci])
                sc = cast[0]
                bc = b[c0 + ci]
                xc = row_view(xs, ci * inner, inner)
                oc = row_view(out, row * length + ci * inner, inner)
                for j in range(inner):
                    oc[j] = ((xc[j] - mh) - ml) * sc + bc


_forward_serial, _forward_parallel = _config.kernels(_forward)


@register_jitable
def _input_grad_terms(r, k_sum, a, m, length, cast):
    """A group's terms of ``grad_input = ((g w - ka) - ((x - mh) - ml) kc) rr``, each
    rounded to the dtype of ``cast`` (a one-value scratch array): ``rr = rstd``,
    ``kc = sum(w g (x - mean)) / length * rstd**2``, ``ka = sum(w g) / length``, and the
    float64 mean split into its rounded value ``mh`` and the rest ``ml``."""
    cast[0] = r
    rr = cast[0]
    cast[0] = k_sum / length * r * r
    kc = cast[0]
    cast[0] = a / length
    ka = cast[0]
    cast[0] = m
    mh = cast[0]
    cast[0] = m - np.float64(mh) if math.isfinite(np.float64(mh)) else 0.0
    ml = cast[0]
    return rr, kc, ka, mh, ml


def _backward(g, x, groups, cpg, inner, w, mean, rstd, scratch, grads, part_w, part_b, out):
    """grad_input of each group of the flat contiguous ``g``, ``x`` into ``out``.

    ``w``: (C,) weight in ``g``'s dtype (ones where the op has none);
    ``mean``/``rstd``: float64, one per (sample, group). ``grads``: also each
    (sample, channel)'s float64 sums ``part_w = sum(g * (x - mean)) * rstd`` and
    ``part_b = sum(g)`` (``(N, C)`` arrays), which the caller adds in order.
    """
    n_rows = mean.size
    length = cpg * inner
    per, n_tasks = _rows_per_task(n_rows, length)
    full = inner - inner % _LANES
    for t in prange(n_tasks):
        r0 = t * per
        r1 = np.minimum(n_rows, r0 + per)
        acc_a = row_view(scratch, 0, _LANES).copy()
        acc_c = row_view(scratch, 0, _LANES).copy()
        cast = row_view(out, 0, 1).copy()  # a value of g's dtype
        if inner == 1:  # (N, C): the general path's arithmetic, one value per channel
            for row in range(r0, r1):
                m1 = mean[row]
                r_1 = rstd[row]
                c1 = (row % groups) * cpg
                n1 = row // groups
                gr = row_view(g, row * length, length)
                xr = row_view(x, row * length, length)
                wr = row_view(w, c1, cpg)
                a1 = 0.0
                k1 = 0.0
                for ci in range(cpg):
                    gj = np.float64(gr[ci])
                    sg1 = 0.0 + gj  # a channel's sums: 0.0 plus its one term, as below
                    sgx1 = 0.0 + gj * (np.float64(xr[ci]) - m1)
                    wc1 = np.float64(wr[ci])
                    a1 += wc1 * sg1
                    k1 += wc1 * sgx1
                    if grads:
                        part_w[n1, c1 + ci] = sgx1 * r_1
                        part_b[n1, c1 + ci] = sg1
                rr1, kc1, ka1, mh1, ml1 = _input_grad_terms(r_1, k1, a1, m1, length, cast)
                orow = row_view(out, row * length, length)
                for j in range(length):
                    orow[j] = ((gr[j] * wr[j] - ka1) - ((xr[j] - mh1) - ml1) * kc1) * rr1
        else:
            for row in range(r0, r1):
                m = mean[row]
                r = rstd[row]
                c0 = (row % groups) * cpg
                n = row // groups
                a = 0.0
                k_sum = 0.0
                for ci in range(cpg):
                    gc = row_view(g, row * length + ci * inner, inner)
                    xc = row_view(x, row * length + ci * inner, inner)
                    for k in range(_LANES):
                        acc_a[k] = 0.0
                        acc_c[k] = 0.0
                    for j0 in range(0, full, _LANES):
                        gb = row_view(gc, j0, _LANES)
                        xb = row_view(xc, j0, _LANES)
                        for k in range(_LANES):
                            gj = np.float64(gb[k])
                            acc_a[k] += gj
                            acc_c[k] += gj * (np.float64(xb[k]) - m)
                    sg = 0.0
                    sgx = 0.0
                    for k in range(_LANES):
                        sg += acc_a[k]
                        sgx += acc_c[k]
                    for j in range(full, inner):
                        gj = np.float64(gc[j])
                        sg += gj
                        sgx += gj * (np.float64(xc[j]) - m)
                    wc = np.float64(w[c0 + ci])
                    a += wc * sg
                    k_sum += wc * sgx
                    if grads:
                        part_w[n, c0 + ci] = sgx * r
                        part_b[n, c0 + ci] = sg
                rr, kc, ka, mh, ml = _input_grad_terms(r, k_sum, a, m, length, cast)
                for ci in range(cpg):
                    wc = w[c0 + ci]
                    gc = row_view(g, row * length + ci * inner, inner)
                    xc = row_view(x, row * length + ci * inner, inner)
                    oc = row_view(out, row * length + ci * inner, inner)
                    for j in range(inner):
                        oc[j] = ((gc[j] * wc - ka) - ((xc[j] - mh) - ml) * kc) * rr


_backward_serial, _backward_parallel = _config.kernels(_backward)


@_config.serial_kernel
def _update_running(mean, rstd, eps, n, inner, momentum, run_mean, run_var):
    """PyTorch's running statistics' update from the (N, C) instance statistics
    (flat float64 ``mean``, ``rstd``), in float64 in sample order:
    ``run = (1 - momentum) * run + momentum * batch mean``, with the instances'
    unbiased variances ``(1 / rstd**2 - eps) * inner / (inner - 1)``."""
    c = run_mean.size
    unbias = inner / (inner - 1.0)
    for ch in range(c):
        sm = 0.0
        sv = 0.0
        for i in range(n):
            r = rstd[i * c + ch]
            sm += mean[i * c + ch]
            sv += (1.0 / (r * r) - eps) * unbias
        run_mean[ch] = (1.0 - momentum) * run_mean[ch] + momentum * (sm / n)
        run_var[ch] = (1.0 - momentum) * run_var[ch] + momentum * (sv / n)


# --------------------------------------------------------------------------- #
# argument checks
# --------------------------------------------------------------------------- #


def _groups_plan(x_shape, num_groups):
    """(N, C, inner, groups) of an ``(N, C, *)`` input, checked as PyTorch."""
    if isinstance(num_groups, bool):
        raise TypeError(f"num_groups must be an int, got {num_groups!r}")
    try:
        groups = operator.index(num_groups)
    except TypeError:
        raise TypeError(f"num_groups must be an int, got {num_groups!r}") from None
    if len(x_shape) < 2:
        raise ValueError(f"Expected at least 2 dimensions for input tensor but received "
                         f"{len(x_shape)}")
    if groups <= 0:
        raise ValueError(f"num_groups must be positive, got {groups}")
    n, c = x_shape[0], x_shape[1]
    if c % groups:
        raise ValueError(f"Expected number of channels in input to be divisible by "
                         f"num_groups, but got input of shape {list(x_shape)} and "
                         f"num_groups={groups}")
    return n, c, math.prod(x_shape[2:]), groups


_PLANS = Remembered(_groups_plan)  # for an int num_groups


def _remembered_groups_plan(x_shape, num_groups):
    """:func:`_groups_plan`, remembered for an int ``num_groups`` (a repeated call
    of the same shape skips the checks)."""
    if type(num_groups) is not int:
        return _groups_plan(x_shape, num_groups)
    return _PLANS[(x_shape, num_groups)]


_FILLED = {}  # (fill, channels, dtype char) -> a read-only vector (weight/bias defaults)


def _channel_param(v, name, channels, dtype, fill):
    """weight/bias as a contiguous (C,) array of ``dtype`` (``fill`` where None: one
    read-only vector per size and dtype, made once; the kernels only read it)."""
    if v is None:
        key = (fill, channels, dtype.char)
        vec = _FILLED.get(key)
        if vec is None:
            vec = np.full(channels, fill, dtype)
            vec.flags.writeable = False
            if len(_FILLED) < 64:
                _FILLED[key] = vec
        return vec
    a = as_array(v, name)
    result_dtype(a.dtype, name)
    if a.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) (the input's channels), got "
                         f"{a.shape}")
    return np.ascontiguousarray(a, dtype=dtype)


def _saved_groups(v, name, n, groups):
    """A saved statistic (mean, rstd) as a float64 (N * G,) array, shape checked."""
    a = as_array(v, name)
    if a.dtype.kind not in "fiu":
        raise TypeError(f"{name}: expected a float array, got dtype {a.dtype}")
    if a.shape != (n, groups):
        raise ValueError(f"{name} must have shape {(n, groups)} (samples, groups: as the "
                         f"forward's return_stats), got {a.shape}")
    return np.ascontiguousarray(a, dtype=np.float64).reshape(-1)


def _run_forward(name, input, num_groups, weight, bias, eps, out):
    """(result, float64 mean, float64 rstd, (N, groups), result dtype)."""
    x = input if type(input) is np.ndarray else as_array(input)
    compute, result = result_dtype(x.dtype)
    n, c, inner, groups = _remembered_groups_plan(x.shape, num_groups)
    w = _channel_param(weight, "weight", c, compute, 1.0)
    b = _channel_param(bias, "bias", c, compute, 0.0)
    if out is not None:
        check_out(out, x.shape, result)
    src = np.ascontiguousarray(x, dtype=compute).reshape(-1)
    direct = (out is not None and result == compute and out.flags.c_contiguous
              and not overlaps(out, src, w, b))
    res = out if direct else _memory.empty(x.shape, compute)
    mean = np.empty(n * groups, np.float64)  # (the kernel writes every group's)
    rstd = np.empty(n * groups, np.float64)
    if c // groups * inner == 0:  # empty groups: NaN statistics, as PyTorch
        mean[:] = np.nan
        rstd[:] = np.nan
    elif n:
        launch(_forward_serial, _forward_parallel, (name, compute.char, src.flags.writeable),
               x.size, src, groups, c // groups, inner, w, b, float(eps), _SCRATCH, mean,
               rstd, res.reshape(-1))
    return deliver(res, out, direct, compute, result), mean, rstd, (n, groups), result


def _run_backward(name, grad_output, input, num_groups, mean, rstd, weight, grads, out):
    """(grad_input, float64 grad_weight, float64 grad_bias, result dtype)."""
    g = _float_array(grad_output, "grad_output")
    x = as_array(input, "input")
    compute, result = result_dtype(np.result_type(g.dtype, result_dtype(x.dtype)[1]))
    if g.shape != x.shape:
        raise ValueError(f"grad_output has shape {g.shape} but input has shape {x.shape}: "
                         "they must be the same (the forward's output shape)")
    n, c, inner, groups = _groups_plan(x.shape, num_groups)
    if mean is None:
        raise TypeError("mean must be an array (the forward's return_stats), got None")
    mean64 = _saved_groups(mean, "mean", n, groups)
    rstd64 = _saved_groups(rstd, "rstd", n, groups)
    w = _channel_param(weight, "weight", c, compute, 1.0)
    if out is not None:
        check_out(out, x.shape, result)
    gs = np.ascontiguousarray(g, dtype=compute).reshape(-1)
    xs = np.ascontiguousarray(x, dtype=compute).reshape(-1)
    direct = (out is not None and out.dtype == compute and out.flags.c_contiguous
              and not overlaps(out, gs, xs, mean64, rstd64, w))
    res = out if direct else _memory.empty(x.shape, compute)
    grad_w = np.zeros(c, np.float64)
    grad_b = np.zeros(c, np.float64)
    if n and c and inner:
        parts = (n, c) if grads else (1, 1)
        part_w = np.empty(parts, np.float64)
        part_b = np.empty(parts, np.float64)
        launch(_backward_serial, _backward_parallel, (name + "_backward", compute.char),
               x.size, gs, xs, groups, c // groups, inner, w, mean64, rstd64, _SCRATCH,
               grads, part_w, part_b, res.reshape(-1))
        if grads:
            _sum_parts(part_w, part_b, grad_w, grad_b)
    elif n and c:  # no positions: zero gradients
        res[...] = 0
    return deliver(res, out, direct, compute, result), grad_w, grad_b, result


# --------------------------------------------------------------------------- #
# public functions
# --------------------------------------------------------------------------- #


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, *, out=None,
               return_stats=False):
    r"""Group normalization: each sample's channels in ``num_groups`` groups.

    .. math:: y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot w_c + b_c

    with the mean and the biased variance of each (sample, group): the ``C /
    num_groups`` consecutive channels of the group and all their positions.

    Parameters
    ----------
    input : array_like
        ``(N, C, *)``; any memory layout.
    num_groups : int
        The number of groups; must divide ``C``.
    weight, bias : array_like of shape (C,), optional
        Per-channel affine parameters (None: ``w = 1``, ``b = 0``).
    eps : float, default 1e-5
        Added to the variance before its square root.
    out : ndarray, optional, keyword-only
        Written with the result (the input's shape and the result dtype).
    return_stats : bool, default False, keyword-only
        Also return the statistics, for :func:`nbops.group_norm_backward`.

    Returns
    -------
    ndarray of the input's shape (float32 stays float32); with
    ``return_stats=True`` the tuple ``(output, mean, rstd)``, the mean and
    ``1 / sqrt(var + eps)`` of each group, of shape ``(N, num_groups)`` in the
    result dtype, as ``torch.ops.aten.native_group_norm`` returns them.

    Notes
    -----
    Same as ``torch.nn.functional.group_norm``. Each group's statistics are
    float64 sums in a fixed order (around the group's first value): float32
    inputs with a large mean keep their variance, and the results are
    bit-identical on any thread count.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[[1.0, 3.0], [2.0, 2.0], [0.0, 4.0], [5.0, 5.0]]])
    >>> nbops.group_norm(x, 2)[0, :, 0]
    array([-1.41419942,  0.        , -1.69774738,  0.72760602])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().group_norm(input, num_groups, weight, bias, eps, out=out,
                                  return_stats=return_stats)
    if type(input) is not np.ndarray and is_dask_array(input):  # nbops/_dask.py
        return dask_ops().group_norm(input, num_groups, weight, bias, eps, out=out,
                                     return_stats=return_stats)
    y, mean, rstd, stats, result = _run_forward("group_norm", input, num_groups, weight, bias,
                                                eps, out)
    if return_stats:
        return y, mean.astype(result).reshape(stats), rstd.astype(result).reshape(stats)
    return y


def group_norm_backward(grad_output, input, num_groups, mean, rstd, weight=None, *,
                        has_bias=None, out=None):
    r"""Gradients of :func:`group_norm`: ``(grad_input, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to ``group_norm``'s output (the
        input's shape; a float array).
    input : array_like
        The forward's input ``(N, C, *)``.
    num_groups : int
        The forward's ``num_groups``.
    mean, rstd : array_like of shape (N, num_groups)
        The statistics ``group_norm(..., return_stats=True)`` returns.
    weight : array_like of shape (C,), optional
        The forward's weight (None: ``w = 1``).
    has_bias : bool, optional, keyword-only
        Whether the forward had a bias (only whether ``grad_bias`` is
        returned). Default: ``weight is not None``.
    out : ndarray, optional, keyword-only
        Written with ``grad_input`` (the input's shape and result dtype).

    Returns
    -------
    tuple
        ``(grad_input, grad_weight, grad_bias)``: ``grad_input`` of the input's
        shape, ``grad_weight``/``grad_bias`` of shape (C,), in the result dtype
        of ``grad_output`` and ``input``; ``grad_weight`` is None when
        ``weight`` is None, ``grad_bias`` when the forward had no bias.

    Notes
    -----
    As PyTorch's ``native_group_norm_backward``: per group of ``n`` values with
    :math:`\hat{x} = (x - \mu)\,\sigma^{-1}` and :math:`\langle\cdot\rangle`
    the group mean,

    .. math::

        \frac{\partial L}{\partial x} = \sigma^{-1}\left(g w_c - \langle g w\rangle
        - \hat{x}\,\langle g w \hat{x}\rangle\right),

    ``grad_weight[c] = sum(g * x_hat)`` and ``grad_bias[c] = sum(g)`` over the
    samples and positions of channel ``c``. The sums are float64 in a fixed
    order: bit-identical on any thread count.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[[1.0, 3.0], [2.0, 6.0]]])
    >>> y, mean, rstd = nbops.group_norm(x, 1, np.ones(2), np.zeros(2), return_stats=True)
    >>> gi, gw, gb = nbops.group_norm_backward(np.ones_like(x), x, 1, mean, rstd, np.ones(2))
    >>> gb
    array([2., 2.])
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().group_norm_backward(grad_output, input, num_groups, mean, rstd, weight,
                                           has_bias=has_bias, out=out)
    if is_dask_array(grad_output) or is_dask_array(input):  # nbops/_dask.py: lazy graphs
        return dask_ops().group_norm_backward(grad_output, input, num_groups, mean, rstd,
                                              weight, has_bias=has_bias, out=out)
    has_bias = weight is not None if has_bias is None else bool(has_bias)
    gi, gw, gb, result = _run_backward("group_norm", grad_output, input, num_groups, mean,
                                       rstd, weight, weight is not None or has_bias, out)
    return (gi, None if weight is None else gw.astype(result),
            gb.astype(result) if has_bias else None)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5, *, out=None,
                  return_stats=False):
    r"""Instance normalization: each (sample, channel) over its positions.

    .. math:: y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot w_c + b_c

    Parameters
    ----------
    input : array_like
        ``(N, C, *)``; any memory layout.
    running_mean, running_var : ndarray of shape (C,), optional
        Running statistics: updated in place when ``use_input_stats`` (from
        the batch mean of the samples' means and of their unbiased
        variances, as PyTorch); normalized with otherwise.
    weight, bias : array_like of shape (C,), optional
        Per-channel affine parameters (None: ``w = 1``, ``b = 0``).
    use_input_stats : bool, default True
        Normalize with each instance's statistics (True) or with the running
        statistics (False; they are then required).
    momentum : float, default 0.1
        Weight of the new batch in the running statistics' update.
    eps : float, default 1e-5
        Added to the variance before its square root.
    out : ndarray, optional, keyword-only
        Written with the result (the input's shape and the result dtype).
    return_stats : bool, default False, keyword-only
        Also return the statistics, for :func:`nbops.instance_norm_backward`.

    Returns
    -------
    ndarray of the input's shape (float32 stays float32); with
    ``return_stats=True`` the tuple ``(output, mean, rstd)`` in the result
    dtype: of shape ``(N, C)`` with ``use_input_stats`` (each instance's mean
    and ``1 / sqrt(var + eps)``), else of shape ``(C,)`` (the running mean and
    ``1 / sqrt(running_var + eps)``).

    Notes
    -----
    Same as ``torch.nn.functional.instance_norm``: with ``use_input_stats``,
    :func:`group_norm` with one group per channel (statistics as there); else
    :func:`batch_norm` in evaluation. With ``use_input_stats`` each instance
    needs more than one position (its unbiased variance).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[[1.0, 3.0], [2.0, 6.0]]])
    >>> rm, rv = np.zeros(2), np.ones(2)
    >>> nbops.instance_norm(x, rm, rv)
    array([[[-0.999995  ,  0.999995  ],
            [-0.99999875,  0.99999875]]])
    >>> rm, rv
    (array([0.2, 0.4]), array([1.1, 1.7]))
    """
    if type(input) is not np.ndarray and is_dask_array(input):  # nbops/_dask.py
        return dask_ops().instance_norm(input, running_mean, running_var, weight, bias,
                                        use_input_stats, momentum, eps, out=out,
                                        return_stats=return_stats)
    on_device = type(input) is not np.ndarray and is_device_array(input)
    x = input if type(input) is np.ndarray or on_device else as_array(input)
    if x.ndim < 2:
        raise ValueError(f"Expected at least 2 dimensions for input tensor but received "
                         f"{x.ndim}")
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("Expected running_mean and running_var to be defined when "
                             "use_input_stats is false")
        return batch_norm(x, running_mean, running_var, weight, bias, False, momentum, eps,
                          out=out, return_stats=return_stats)
    if on_device:
        return _cuda().instance_norm(x, running_mean, running_var, weight, bias, True,
                                     momentum, eps, out=out, return_stats=return_stats)
    n, c = x.shape[0], x.shape[1]
    inner = math.prod(x.shape[2:])
    if inner <= 1:
        raise ValueError(f"Expected more than 1 spatial element when training, got input "
                         f"size {list(x.shape)}")
    for r, name in ((running_mean, "running_mean"), (running_var, "running_var")):
        if r is not None:
            if not isinstance(r, np.ndarray):
                raise TypeError(f"{name} must be a numpy.ndarray (it is updated in place), "
                                f"got {type(r).__name__}")
            if r.shape != (c,) or r.dtype.kind != "f":
                raise ValueError(f"{name} must be a float ndarray of shape ({c},) (updated "
                                 f"in place), got {r.shape} {r.dtype}")
            if not r.flags.writeable:
                raise ValueError(f"{name} must be writeable (it is updated in place)")
    if out is not None and isinstance(out, np.ndarray):
        check_out_apart(out, running_mean, running_var, True)
    y, mean, rstd, stats, result = _run_forward("instance_norm", x, c, weight, bias, eps, out)
    if n and (running_mean is not None or running_var is not None):
        rm = np.zeros(c) if running_mean is None else running_mean.astype(np.float64)
        rv = np.ones(c) if running_var is None else running_var.astype(np.float64)
        _update_running(mean, rstd, float(eps), n, inner, float(momentum), rm, rv)
        if running_mean is not None:
            running_mean[...] = rm
        if running_var is not None:
            running_var[...] = rv
    if return_stats:
        return y, mean.astype(result).reshape(stats), rstd.astype(result).reshape(stats)
    return y


def instance_norm_backward(grad_output, input, mean, rstd, weight=None, use_input_stats=True,
                           *, has_bias=None, out=None):
    r"""Gradients of :func:`instance_norm`: ``(grad_input, grad_weight, grad_bias)``.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to ``instance_norm``'s output
        (the input's shape; a float array).
    input : array_like
        The forward's input ``(N, C, *)``.
    mean, rstd : array_like
        The statistics ``instance_norm(..., return_stats=True)`` returns:
        ``(N, C)`` with ``use_input_stats``, else ``(C,)``.
    weight : array_like of shape (C,), optional
        The forward's weight (None: ``w = 1``).
    use_input_stats : bool, default True
        The forward's ``use_input_stats``.
    has_bias : bool, optional, keyword-only
        Whether the forward had a bias (only whether ``grad_bias`` is
        returned). Default: ``weight is not None``.
    out : ndarray, optional, keyword-only
        Written with ``grad_input`` (the input's shape and result dtype).

    Returns
    -------
    tuple
        ``(grad_input, grad_weight, grad_bias)`` as :func:`group_norm_backward`.

    Notes
    -----
    With ``use_input_stats``: :func:`group_norm_backward` with one group per
    channel (the statistics depend on the input); else
    :func:`batch_norm_backward` in evaluation (constant running statistics).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[[1.0, 3.0], [2.0, 6.0]]])
    >>> y, mean, rstd = nbops.instance_norm(x, return_stats=True)
    >>> gi, _, _ = nbops.instance_norm_backward(np.ones_like(x), x, mean, rstd)
    >>> gi
    array([[[0., 0.],
            [0., 0.]]])
    """
    if is_dask_array(grad_output) or is_dask_array(input):  # nbops/_dask.py: lazy graphs
        return dask_ops().instance_norm_backward(grad_output, input, mean, rstd, weight,
                                                 use_input_stats, has_bias=has_bias, out=out)
    on_device = type(input) is not np.ndarray and is_device_array(input)
    x = input if on_device else as_array(input, "input")
    if not use_input_stats:
        return batch_norm_backward(grad_output, x, mean, rstd, weight, False,
                                   has_bias=has_bias, out=out)
    if x.ndim < 2:
        raise ValueError(f"Expected at least 2 dimensions for input tensor but received "
                         f"{x.ndim}")
    return group_norm_backward(grad_output, x, x.shape[1], mean, rstd, weight,
                               has_bias=has_bias, out=out)


__all__ = ["group_norm", "group_norm_backward", "instance_norm", "instance_norm_backward"]


# --------------------------------------------------------------------------- #
# inside a user's @njit function
# --------------------------------------------------------------------------- #
# The overloads check the arguments as the public functions do (fixed messages),
# then call the cached serial kernels above: the same bits as outside @njit.


@register_jitable
def _groups_dims(shape, groups):
    """(N, C, inner) of an (N, C, *) shape split in ``groups`` groups (checked)."""
    if groups <= 0:
        raise ValueError("num_groups must be positive")
    n, c = shape[0], shape[1]
    if c % groups != 0:
        raise ValueError("Expected number of channels in input to be divisible by "
                         "num_groups")
    inner = 1
    for k in range(2, len(shape)):
        inner *= shape[k]
    return n, c, inner


@register_jitable
def _channel_vector(v, c, like, message):
    """weight/bias as a contiguous (C,) array of ``like``'s dtype (length checked)."""
    if v.shape[0] != c:
        raise ValueError(message)
    res = np.empty(c, like.dtype)
    for j in range(c):
        res[j] = v[j]
    return res


@register_jitable
def _njit_forward(input, x, groups, w, b, eps):
    """(flat result, float64 mean, float64 rstd) of the serial forward kernel on the
    flat contiguous ``x`` (of the compute dtype) of ``input``'s shape; ``w``, ``b``:
    (C,) of ``x``'s dtype."""
    n, c, inner = _groups_dims(input.shape, groups)
    res = np.empty(x.size, x.dtype)
    mean = np.full(n * groups, np.nan)
    rstd = np.full(n * groups, np.nan)
    if n != 0 and c // groups * inner != 0:
        _forward_serial(x, groups, c // groups, inner, w, b, np.float64(eps), _SCRATCH.copy(),
                        mean, rstd, res)
    return res, mean, rstd


def _affine_pair(input, x, weight, bias):
    """Inside @njit only: (w, b), (C,) arrays of ``x``'s dtype from ``weight`` and
    ``bias`` (ones and zeros where they are None)."""


@overload(_affine_pair)
def _affine_pair_njit(input, x, weight, bias):
    with_w = not _is_none(weight)
    with_b = not _is_none(bias)

    def impl(input, x, weight, bias):
        c = input.shape[1]
        w = np.ones(c, x.dtype)
        b = np.zeros(c, x.dtype)
        if with_w:
            w = _channel_vector(weight, c, x, "weight must have input.shape[1] elements")
        if with_b:
            b = _channel_vector(bias, c, x, "bias must have input.shape[1] elements")
        return w, b

    return impl


@register_jitable
def _output(y, mean, rstd, n, groups):
    return y


@register_jitable
def _with_stats(y, mean, rstd, n, groups):
    return (y, mean.astype(y.dtype).reshape((n, groups)),
            rstd.astype(y.dtype).reshape((n, groups)))


def _compute_dtype(t):
    return t.dtype if isinstance(t.dtype, types.Float) else types.float64


def _vector_arg(v, name, op):
    if not _is_none(v) and (not isinstance(v, types.Array) or v.ndim != 1):
        raise errors.TypingError(f"nbops.{op}: {name} must be a 1-D array of input.shape[1] "
                                 "elements")
    return not _is_none(v)


def _check_input(input, op):
    if input.ndim < 2:
        raise errors.TypingError(f"nbops.{op}: input must have at least 2 dimensions "
                                 "(N, C, ...)")


@overload(group_norm)
def _group_norm_njit(input, num_groups, weight=None, bias=None, eps=1e-5, out=None,
                     return_stats=False):
    """Inside @njit: the cached serial kernel; ``return_stats`` a constant; no ``out=``."""
    if not isinstance(input, types.Array) or not _is_none(out):
        return None
    _check_input(input, "group_norm")
    _vector_arg(weight, "weight", "group_norm")
    _vector_arg(bias, "bias", "group_norm")
    finish = _with_stats if _constant_flag(return_stats, "return_stats", False) else _output
    dtype = _compute_dtype(input)

    def impl(input, num_groups, weight=None, bias=None, eps=1e-5, out=None,
             return_stats=False):
        x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
        w, b = _affine_pair(input, x, weight, bias)
        res, mean, rstd = _njit_forward(input, x, num_groups, w, b, eps)
        return finish(res.reshape(input.shape), mean, rstd, input.shape[0], num_groups)

    return impl


@overload(instance_norm)
def _instance_norm_njit(input, running_mean=None, running_var=None, weight=None, bias=None,
                        use_input_stats=True, momentum=0.1, eps=1e-5, out=None,
                        return_stats=False):
    """Inside @njit: ``use_input_stats`` and ``return_stats`` constants; no ``out=``;
    running_mean and running_var both or neither."""
    if not isinstance(input, types.Array) or not _is_none(out):
        return None
    _check_input(input, "instance_norm")
    no_rm, no_rv = _is_none(running_mean), _is_none(running_var)
    if no_rm != no_rv:
        raise errors.TypingError("nbops.instance_norm: running_mean and running_var must "
                                 "either both be None or neither be None inside @njit")
    has_running = not no_rm
    _vector_arg(weight, "weight", "instance_norm")
    _vector_arg(bias, "bias", "instance_norm")
    stats = _constant_flag(return_stats, "return_stats", False)
    if not _constant_flag(use_input_stats, "use_input_stats", True):
        if not has_running:
            raise errors.TypingError("nbops.instance_norm: expected running_mean and "
                                     "running_var to be defined when use_input_stats is "
                                     "false")
        if stats:
            def running_impl(input, running_mean=None, running_var=None, weight=None,
                             bias=None, use_input_stats=True, momentum=0.1, eps=1e-5,
                             out=None, return_stats=False):
                return batch_norm(input, running_mean, running_var, weight, bias, False,
                                  momentum, eps, return_stats=True)
        else:
            def running_impl(input, running_mean=None, running_var=None, weight=None,
                             bias=None, use_input_stats=True, momentum=0.1, eps=1e-5,
                             out=None, return_stats=False):
                return batch_norm(input, running_mean, running_var, weight, bias, False,
                                  momentum, eps)
        return running_impl
    finish = _with_stats if stats else _output
    dtype = _compute_dtype(input)

    def impl(input, running_mean=None, running_var=None, weight=None, bias=None,
             use_input_stats=True, momentum=0.1, eps=1e-5, out=None, return_stats=False):
        n, c = input.shape[0], input.shape[1]
        if input.size // max(n * c, 1) <= 1 and n * c != 0:
            raise ValueError("Expected more than 1 spatial element when training")
        x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
        if has_running:
            if running_mean.shape[0] != c or running_var.shape[0] != c:
                raise ValueError("running_mean and running_var must have input.shape[1] "
                                 "elements")
        w, b = _affine_pair(input, x, weight, bias)
        res, mean, rstd = _njit_forward(input, x, c, w, b, eps)
        if has_running:  # a compile-time constant: no None-typed write on any Numba
            if n != 0 and c != 0:
                rm = running_mean.astype(np.float64)
                rv = running_var.astype(np.float64)
                _update_running(mean, rstd, np.float64(eps), n, x.size // (n * c),
                                np.float64(momentum), rm, rv)
                for j in range(c):
                    running_mean[j] = rm[j]
                    running_var[j] = rv[j]
        return finish(res.reshape(input.shape), mean, rstd, n, c)

    return impl


# ------------------------------------------------------------- backwards in @njit
@register_jitable
def _saved_flat(v, n, groups, message):
    if v.ndim != 2 or v.shape[0] != n or v.shape[1] != groups:
        raise ValueError(message)
    return np.ascontiguousarray(v).astype(np.float64).reshape(-1)


@register_jitable
def _grads_wb(gi, gw, gb):
    return gi, gw.astype(gi.dtype), gb.astype(gi.dtype)


@register_jitable
def _grads_w(gi, gw, gb):
    return gi, gw.astype(gi.dtype), None


@register_jitable
def _grads_b(gi, gw, gb):
    return gi, None, gb.astype(gi.dtype)


@register_jitable
def _grads_none(gi, gw, gb):
    return gi, None, None


def _check_grad_types(grad_output, input, op):
    if not (isinstance(grad_output, types.Array) and isinstance(input, types.Array)):
        return False
    if not isinstance(grad_output.dtype, types.Float):
        raise errors.TypingError(f"nbops.{op}: grad_output must be a float array")
    if grad_output.ndim != input.ndim or input.ndim < 2:
        raise errors.TypingError(f"nbops.{op}: grad_output and input must have the same "
                                 "ndim >= 2 (N, C, ...)")
    return True


@overload(group_norm_backward)
def _group_norm_backward_njit(grad_output, input, num_groups, mean, rstd, weight=None,
                              has_bias=None, out=None):
    """Inside @njit: the cached serial kernel; ``has_bias`` a constant; no ``out=``."""
    if not _check_grad_types(grad_output, input, "group_norm_backward"):
        return None
    if not _is_none(out):
        raise errors.TypingError("nbops.group_norm_backward: out= is not supported inside "
                                 "@njit")
    has_w = _vector_arg(weight, "weight", "group_norm_backward")
    has_b = _constant_flag(has_bias, "has_bias", has_w)
    grads = has_w or has_b
    finish = {(True, True): _grads_wb, (True, False): _grads_w, (False, True): _grads_b,
              (False, False): _grads_none}[(has_w, has_b)]
    in_dtype = _compute_dtype(input)
    dtype = types.float64 if types.float64 in (in_dtype, grad_output.dtype) else types.float32

    def impl(grad_output, input, num_groups, mean, rstd, weight=None, has_bias=None,
             out=None):
        if grad_output.shape != input.shape:
            raise ValueError("grad_output must have the input's shape (the forward's output "
                             "shape)")
        n, c, inner = _groups_dims(input.shape, num_groups)
        mean64 = _saved_flat(mean, n, num_groups, "mean must have shape (N, num_groups)")
        rstd64 = _saved_flat(rstd, n, num_groups, "rstd must have shape (N, num_groups)")
        g = np.ascontiguousarray(grad_output).astype(dtype).reshape(-1)
        x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
        w = np.ones(c, dtype)
        if has_w:
            w = _channel_vector(weight, c, x, "weight must have input.shape[1] elements")
        res = np.zeros(x.size, dtype)
        grad_w = np.zeros(c, np.float64)
        grad_b = np.zeros(c, np.float64)
        if n != 0 and c != 0 and inner != 0:
            part_w = np.empty((n if grads else 1, c if grads else 1), np.float64)
            part_b = np.empty((n if grads else 1, c if grads else 1), np.float64)
            _backward_serial(g, x, num_groups, c // num_groups, inner, w, mean64, rstd64,
                             _SCRATCH.copy(), grads, part_w, part_b, res)
            if grads:
                _sum_parts(part_w, part_b, grad_w, grad_b)
        return finish(res.reshape(input.shape), grad_w, grad_b)

    return impl


@overload(instance_norm_backward)
def _instance_norm_backward_njit(grad_output, input, mean, rstd, weight=None,
                                 use_input_stats=True, has_bias=None, out=None):
    """Inside @njit: ``use_input_stats`` and ``has_bias`` constants; no ``out=``."""
    if not _check_grad_types(grad_output, input, "instance_norm_backward"):
        return None
    if not _is_none(out):
        raise errors.TypingError("nbops.instance_norm_backward: out= is not supported "
                                 "inside @njit")
    has_b = _constant_flag(has_bias, "has_bias", not _is_none(weight))
    if not _constant_flag(use_input_stats, "use_input_stats", True):
        if has_b:
            def running_impl(grad_output, input, mean, rstd, weight=None,
                             use_input_stats=True, has_bias=None, out=None):
                return batch_norm_backward(grad_output, input, mean, rstd, weight, False,
                                           has_bias=True)
        else:
            def running_impl(grad_output, input, mean, rstd, weight=None,
                             use_input_stats=True, has_bias=None, out=None):
                return batch_norm_backward(grad_output, input, mean, rstd, weight, False,
                                           has_bias=False)
        return running_impl
    if has_b:
        def impl(grad_output, input, mean, rstd, weight=None, use_input_stats=True,
                 has_bias=None, out=None):
            return group_norm_backward(grad_output, input, input.shape[1], mean, rstd,
                                       weight, has_bias=True)
    else:
        def impl(grad_output, input, mean, rstd, weight=None, use_input_stats=True,
                 has_bias=None, out=None):
            return group_norm_backward(grad_output, input, input.shape[1], mean, rstd,
                                       weight, has_bias=False)
    return impl
