"""Hinge losses over class scores with class-index targets: ``nbops.multi_margin_loss``
(multi-class hinge) and ``nbops.multilabel_margin_loss`` (multi-class multi-label
hinge), each with its backward and ``_with_grad``.

Signatures, defaults, shapes and checks are those of ``torch.nn.functional`` 2.13
(aten's CPU kernels): the input is ``()``, ``(C,)`` or ``(N, C)`` (``C > 0``), the
sample's loss is divided by ``C`` and 'mean' divides the sum of the samples' losses
by ``N``. A term enters the loss where its hinge is strictly positive (``z > 0``,
as aten compares: a NaN term adds nothing), and its gradient is aten's.

One kernel per loss runs the rows (samples) in parallel: each row sums its terms
in four float64 accumulators (classes k % 4, a fixed order; the hinge itself is
computed in the input's dtype, as aten does, so that the same terms are active)
and, for the backward and ``_with_grad``, writes the row's gradient in the same
pass. The 'mean'/'sum' over
the rows is a float64 sum in row order: results are bit-identical for any thread
count. Class indices are checked before any kernel runs (``ValueError`` naming the
bad index); the kernels never read outside the row whatever the target holds.
``multilabel_margin_loss`` recomputes which classes are targets (aten's forward
saves them in its ``is_target`` buffer): a per-thread scratch row of flags.

Inside ``@njit`` the same names run the serial kernels (``reduction`` and the
legacy flags literal, as every loss). On CUDA device arrays the kernels of
nbops/cuda/_class_margin.py run, one thread per row; a class index out of range
sets an error flag there (read back after the kernel: ``ValueError``).
"""

from collections import namedtuple

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable
from numba.np.numpy_support import as_dtype

from .. import _config
from .._launch import entry_point, launch, serial_below
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    is_dask_array,
    is_device_array,
    overlaps,
    result_dtype,
)
from ..scalar._math import const
from . import losses as _L
from . import njit_args as NJ
from .plan import reduction_plan

__all__ = ["multi_margin_loss", "multi_margin_loss_backward", "multi_margin_loss_with_grad",
           "multilabel_margin_loss", "multilabel_margin_loss_backward",
           "multilabel_margin_loss_with_grad"]

#: rows per task of the multilabel kernel (each task has one scratch row of flags)
_CHUNK = 64


# ------------------------------------------------------------------ kernels
# The row sums go in four float64 accumulators, one per class k % 4, added
# (s0 + s1) + (s2 + s3) at the end of the row: a fixed order (the same for the
# forward, the backward and _with_grad, on any thread count) that does not wait
# on one chain of additions. The terms are selected, not branched to (a hinge's
# sign is data: branches on it are mispredicted).
@_config.core
def _mm_term(z, active, zz, wy):
    """A multi_margin_loss term: ``z * zz * wy`` (``zz``: z for p=2, else 1) where
    ``active`` and ``z > 0`` (not for a NaN ``z``), else 0."""
    return z * zz * wy if active & (z > 0) else const(z, 0.0)


@_config.core
def _mm_grad(z, active, squared, gw):
    """Its derivative times ``gw`` (the row's gradient times w_y / C)."""
    return gw * (z + z if squared else const(z, 1.0)) if active & (z > 0) else gw * 0.0


def _multi_margin_rows(x, t, w, weighted, squared, margin, g, c, row_loss, grad, want_grad):
    """Row r of (R, C) ``x`` with class index ``t[r]``: its loss
    sum_{k != y} w_y max(0, margin - x_y + x_k)^p / C into ``row_loss[r]`` (float64)
    and, with ``want_grad``, its gradient times ``c * g[r]`` (``g`` of size R or 1)
    into ``grad[r]``."""
    n_rows, n_cls = x.shape
    n4 = n_cls - n_cls % 4
    g_step = 1 if g.size > 1 else 0
    for r in prange(n_rows):
        y = t[r]
        if y < 0 or y >= n_cls:  # checked before the kernel: never read out of the row
            row_loss[r] = np.nan
            if want_grad:
                for k in range(n_cls):
                    grad[r, k] = np.nan
            continue
        xy = x[r, y]
        one = const(xy, 1.0)
        wy = w[y] if weighted else one
        s0 = s1 = s2 = s3 = 0.0
        if not want_grad:
            for k in range(0, n4, 4):
                z0 = margin - xy + x[r, k]
                z1 = margin - xy + x[r, k + 1]
                z2 = margin - xy + x[r, k + 2]
                z3 = margin - xy + x[r, k + 3]
                s0 += _mm_term(z0, k != y, z0 if squared else one, wy)
                s1 += _mm_term(z1, k + 1 != y, z1 if squared else one, wy)
                s2 += _mm_term(z2, k + 2 != y, z2 if squared else one, wy)
                s3 += _mm_term(z3, k + 3 != y, z3 if squared else one, wy)
            for k in range(n4, n_cls):
                z0 = margin - xy + x[r, k]
                s0 += _mm_term(z0, k != y, z0 if squared else one, wy)
        else:
            gw = c * g[r * g_step] / n_cls * wy  # float64
            g0 = g1 = g2 = g3 = 0.0
            for k in range(0, n4, 4):
                z0 = margin - xy + x[r, k]
                z1 = margin - xy + x[r, k + 1]
                z2 = margin - xy + x[r, k + 2]
                z3 = margin - xy + x[r, k + 3]
                s0 += _mm_term(z0, k != y, z0 if squared else one, wy)
                s1 += _mm_term(z1, k + 1 != y, z1 if squared else one, wy)
                s2 += _mm_term(z2, k + 2 != y, z2 if squared else one, wy)
                s3 += _mm_term(z3, k + 3 != y, z3 if squared else one, wy)
                d0 = _mm_grad(z0, k != y, squared, gw)
                d1 = _mm_grad(z1, k + 1 != y, squared, gw)
                d2 = _mm_grad(z2, k + 2 != y, squared, gw)
                d3 = _mm_grad(z3, k + 3 != y, squared, gw)
                grad[r, k] = d0
                grad[r, k + 1] = d1
                grad[r, k + 2] = d2
                grad[r, k + 3] = d3
                g0 += d0
                g1 += d1
                g2 += d2
                g3 += d3
            for k in range(n4, n_cls):
                z0 = margin - xy + x[r, k]
                s0 += _mm_term(z0, k != y, z0 if squared else one, wy)
                d0 = _mm_grad(z0, k != y, squared, gw)
                grad[r, k] = d0
                g0 += d0
            grad[r, y] = -((g0 + g1) + (g2 + g3))
        row_loss[r] = ((s0 + s1) + (s2 + s3)) / n_cls


_mm_serial, _mm_parallel = _config.kernels(_multi_margin_rows)


@_config.core
def _mlm_active(z, is_target):
    """Whether a multilabel_margin_loss term counts: a non-target class, hinge > 0."""
    return (not is_target) & (z > 0)


def _multilabel_margin_rows(x, t, g, c, row_loss, grad, want_grad):
    """Row r of (R, C) ``x`` with the class indices ``t[r]`` (up to the first
    negative one): sum_j sum_{k not a target} max(0, 1 - x_{y_j} + x_k) / C into
    ``row_loss[r]`` (float64) and, with ``want_grad``, its gradient times
    ``c * g[r]`` into ``grad[r]`` (each class's count of active terms, then
    scaled). Rows go in tasks of _CHUNK, one flag row each."""
    n_rows, n_cls = x.shape
    n4 = n_cls - n_cls % 4
    n_tasks = (n_rows + _CHUNK - 1) // _CHUNK
    g_step = 1 if g.size > 1 else 0
    for b in prange(n_tasks):
        is_target = np.zeros(n_cls, np.bool_)
        for r in range(b * _CHUNK, min(n_rows, (b + 1) * _CHUNK)):
            n_t = 0
            while n_t < n_cls:
                y = t[r, n_t]
                if y < 0 or y >= n_cls:  # -1 ends the list (others: checked before)
                    break
                is_target[y] = True
                n_t += 1
            if want_grad:
                for k in range(n_cls):
                    grad[r, k] = 0
            s0 = s1 = s2 = s3 = 0.0
            for j in range(n_t):
                y = t[r, j]
                base = const(x[r, y], 1.0) - x[r, y]
                zero = const(base, 0.0)
                count = 0
                for k in range(0, n4, 4):
                    z0 = base + x[r, k]
                    z1 = base + x[r, k + 1]
                    z2 = base + x[r, k + 2]
                    z3 = base + x[r, k + 3]
                    a0 = _mlm_active(z0, is_target[k])
                    a1 = _mlm_active(z1, is_target[k + 1])
                    a2 = _mlm_active(z2, is_target[k + 2])
                    a3 = _mlm_active(z3, is_target[k + 3])
                    s0 += z0 if a0 else zero
                    s1 += z1 if a1 else zero
                    s2 += z2 if a2 else zero
                    s3 += z3 if a3 else zero
                    if want_grad:
                        grad[r, k] += a0
                        grad[r, k + 1] += a1
                        grad[r, k + 2] += a2
                        grad[r, k + 3] += a3
                        count += (np.int64(a0) + np.int64(a1)) + (np.int64(a2) + np.int64(a3))
                for k in range(n4, n_cls):
                    z0 = base + x[r, k]
                    a0 = _mlm_active(z0, is_target[k])
                    s0 += z0 if a0 else zero
                    if want_grad:
                        grad[r, k] += a0
                        count += np.int64(a0)
                if want_grad:
                    grad[r, y] -= count
            row_loss[r] = ((s0 + s1) + (s2 + s3)) / n_cls
            if want_grad:
                f = c * g[r * g_step] / n_cls
                for k in range(n_cls):
                    grad[r, k] *= f
            for j in range(n_t):
                is_target[t[r, j]] = False


_mlm_serial, _mlm_parallel = _config.kernels(_multilabel_margin_rows)


# ------------------------------------------------------------------ lean calls
# The common small call (:func:`_lean`): an (N, C) C-contiguous float32/float64
# input, C-contiguous int64 targets, no weight, 'mean' or 'sum', few enough
# elements that the general path would run the serial kernel. One serial kernel
# checks the targets first (where one is out of range it computes nothing and
# returns ok = False: the general path then raises its error), runs the same row
# kernel as the general path and adds the float64 row losses as NumPy's
# ``add.reduce`` adds them (_numpy_sum): the same bits as the general path.
@register_jitable
def _block_sum(a, lo, n):
    """NumPy's pairwise sum of ``a[lo:lo + n]``, ``n <= 128``: eight accumulators."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    while i < n - n % 8:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@register_jitable
def _numpy_sum(a):
    """``np.add.reduce(a)`` of a contiguous 1-d float64 ``a``, bit for bit: NumPy's
    pairwise sum (blocks of up to 128 values in eight accumulators, a longer
    run split in two at a multiple of 8), its recursion walked with a stack."""
    n = a.shape[0]
    if n <= 128:
        return 0.0 + _block_sum(a, 0, n)
    los = np.empty(128, np.int64)  # the pending runs (start, length; -1: add the
    lens = np.empty(128, np.int64)  # last two values)
    vals = np.empty(128, np.float64)
    top, nv = 1, 0
    los[0], lens[0] = 0, n
    while top:
        top -= 1
        lo, m = los[top], lens[top]
        if m == -1:
            nv -= 1
            vals[nv - 1] = vals[nv - 1] + vals[nv]
        elif m <= 128:
            vals[nv] = _block_sum(a, lo, m)
            nv += 1
        else:
            m2 = m // 2
            m2 -= m2 % 8
            los[top], lens[top] = 0, -1
            los[top + 1], lens[top + 1] = lo + m2, m - m2
            los[top + 2], lens[top + 2] = lo, m2
            top += 3
    return 0.0 + vals[0]


def _mm_lean(x, t, margin, squared):
    n, c = x.shape
    for r in range(n):
        if t[r] < 0 or t[r] >= c:
            return 0.0, False
    row_loss = np.empty(n, np.float64)
    one = np.ones(1, x.dtype)
    # the float margin in x's dtype (rounded as the general path's compute.type(margin))
    _mm_serial(x, t, one, False, squared, const(x[0, 0], margin), one, one[0], row_loss,
               np.empty((0, 0), x.dtype), False)
    return _numpy_sum(row_loss), True


def _mlm_lean(x, t):
    n, c = x.shape
    for r in range(n):
        for k in range(c):
            if t[r, k] < -1 or t[r, k] >= c:
                return 0.0, False
    row_loss = np.empty(n, np.float64)
    one = np.ones(1, x.dtype)
    _mlm_serial(x, t, one, one[0], row_loss, np.empty((0, 0), x.dtype), False)
    return _numpy_sum(row_loss), True


_mm_lean_serial = _config.serial_kernel(_mm_lean)
_mlm_lean_serial = _config.serial_kernel(_mlm_lean)
# (the lean calls take arrays whose dtype *is* one of these: NumPy's native dtype
# singletons; a byte-swapped or otherwise equal dtype takes the general path)
_FLOAT32, _FLOAT64, _INT64 = np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int64)


_lean_below = {}


def _lean_limit(serial, dt):
    """Inputs of fewer elements take the lean kernel (the general path would run
    its serial twin), per row kernel and dtype."""
    limit = _lean_below.get((serial, dt))
    if limit is None:
        limit = _lean_below[(serial, dt)] = serial_below(serial, (dt.char, False))
    return limit


#: dtype -> (the entry point of _mm_lean_serial, the lean call's size limit)
_mm_lean_fn = {}


def _lean_mm(input, target, reduction, margin, squared):
    """multi_margin_loss's common small call (see above), or None where the call
    is not that one or a target is out of range (the general path raises)."""
    dt = input.dtype
    if not (type(target) is np.ndarray and (reduction == "mean" or reduction == "sum")
            and (dt is _FLOAT32 or dt is _FLOAT64) and target.dtype is _INT64
            and input.ndim == 2 and target.ndim == 1 and input.flags.c_contiguous
            and target.flags.c_contiguous):
        return None
    n = input.shape[0]
    lean = _mm_lean_fn.get(dt)
    if lean is None:
        lean = _mm_lean_fn[dt] = (
            entry_point(_mm_lean_serial, ("mm_lean", dt.char), (input, target, 1.0, False)),
            _lean_limit(_mm_serial, dt))
    if target.shape[0] != n or not 0 < input.size < lean[1]:
        return None
    total, ok = lean[0](input, target, float(margin), squared)
    if not ok:
        return None
    return dt.type(total if reduction == "sum" else total / n)


def _lean_mlm(input, target, reduction):
    """multilabel_margin_loss's common small call (see above), or None."""
    dt = input.dtype
    if not (type(target) is np.ndarray and (reduction == "mean" or reduction == "sum")
            and (dt is _FLOAT32 or dt is _FLOAT64) and target.dtype is _INT64
            and input.ndim == 2 and input.flags.c_contiguous and target.flags.c_contiguous):
        return None
    if target.shape != input.shape or not 0 < input.size < _lean_limit(_mlm_serial, dt):
        return None
    total, ok = entry_point(_mlm_lean_serial, ("mlm_lean", dt.char),
                            (input, target))(input, target)
    if not ok:
        return None
    return dt.type(total if reduction == "sum" else total / input.shape[0])


# ------------------------------------------------------------------ checks
def _mode(size_average, reduce, reduction):
    """The reduction mode (legacy flags first, with their warning at the user's call)."""
    if size_average is not None or reduce is not None:
        return reduction_plan(reduction, size_average, reduce, stacklevel=5).mode
    if reduction in ("none", "mean", "sum"):
        return reduction
    raise ValueError(f"{reduction} is not valid")


def _frames(shape):
    """(N, C) of an input of ``shape``: ``()`` -> (1, 1), ``(C,)`` -> (1, C)."""
    if not (len(shape) == 0 or len(shape) in (1, 2) and shape[-1] != 0):
        raise ValueError("Expected non-empty vector or matrix with optional 0-dim batch size, "
                         f"but got: {tuple(shape)}")
    if len(shape) <= 1:
        return 1, (shape[0] if shape else 1)
    return tuple(shape)


def _check_p(p):
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer,
                                                             np.floating)) or p not in (1, 2):
        raise ValueError("only p == 1 and p == 2 supported")
    return int(p)


def _index_array(t):
    if t.dtype.kind not in "iu":
        raise TypeError(f"target: expected integer class indices, got dtype {t.dtype}")


def _check_range(t, lo, hi, what):
    """Every value of ``t`` in [lo, hi) (``ValueError`` naming the first bad one)."""
    if t.size == 0:
        return
    tmin, tmax = np.min(t), np.max(t)
    if tmin < lo or tmax >= hi:
        bad = tmin if tmin < lo else tmax
        raise ValueError(f"target: class index {int(bad)} is out of range: expected "
                         f"{what} (C = {hi}, the number of classes)")


def _host(a, name):
    return a if type(a) is np.ndarray else as_array(a, name)


#: a checked call: (R, C) input in the compute dtype, int64 targets, (C,) weights or
#: None, p, margin, the input's shape, the loss's shape ('none'), dtypes and mode
Plan = namedtuple("Plan", "x t w p margin shape loss_shape compute result mode")


def _mm_plan(input, target, p, margin, weight, size_average, reduce, reduction):
    mode = _mode(size_average, reduce, reduction)
    p = _check_p(p)
    x, t = _host(input, "input"), _host(target, "target")
    w = None if weight is None else _host(weight, "weight")
    if w is not None and w.ndim != 1:
        raise ValueError("weight must be one-dimensional")
    n, c = _frames(x.shape)
    if t.ndim > 1 or t.size != n:
        raise ValueError(f"inconsistent target size, expected {n} but got {t.shape}")
    _index_array(t)
    if w is not None and w.size != c:
        raise ValueError(f"inconsistent weight size, expected {c} but got {w.shape}")
    compute, result = result_dtype(x.dtype, "input")
    if w is not None:
        result_dtype(w.dtype, "weight")
        compute, result = result_dtype(np.result_type(x.dtype, w.dtype))
    _check_range(t, 0, c, "0 <= index < C")
    x2 = np.ascontiguousarray(x, compute).reshape(n, c)
    t1 = np.ascontiguousarray(t, np.int64).reshape(n)
    w1 = None if w is None else np.ascontiguousarray(w, compute)
    return Plan(x2, t1, w1, p, compute.type(float(margin)), x.shape,
                (n,) if t.ndim else (), compute, result, mode)


def _mlm_plan(input, target, size_average, reduce, reduction):
    mode = _mode(size_average, reduce, reduction)
    x, t = _host(input, "input"), _host(target, "target")
    n, c = _frames(x.shape)
    if (t.ndim > 1 or t.size != c) if x.ndim <= 1 else t.shape != x.shape:
        raise ValueError(f"inconsistent target size: {t.shape} for input of size: {x.shape}")
    _index_array(t)
    compute, result = result_dtype(x.dtype, "input")
    _check_range(t, -1, c, "-1 <= index < C (-1 ends a sample's list)")
    x2 = np.ascontiguousarray(x, compute).reshape(n, c)
    t2 = np.ascontiguousarray(t, np.int64).reshape(n, c)
    return Plan(x2, t2, None, 1, None, x.shape, (n,) if t.ndim == 2 else (), compute, result,
                mode)


# ------------------------------------------------------------------ drivers
def _run(plan, g, c, want_grad, out=None):
    """(float64 row losses, gradient or None) of a plan; ``g``: the per-row gradients
    (or None: all ones) times the factor ``c``."""
    x = plan.x
    rows = x.shape[0]
    row_loss = np.empty(rows, np.float64)
    if want_grad:
        grad = out if out is not None else np.empty(x.shape, plan.compute)
    else:
        grad = np.empty((0, 0), plan.compute)
    g = np.ones(1, plan.compute) if g is None else np.ascontiguousarray(g, plan.compute)
    g = g.reshape(-1)
    cf = plan.compute.type(c)
    if rows:
        if plan.margin is None:  # multilabel_margin_loss
            key = (plan.compute.char, want_grad)
            launch(_mlm_serial, _mlm_parallel, key, x.size, x, plan.t, g, cf, row_loss, grad,
                   want_grad)
        else:
            weighted = plan.w is not None
            w = plan.w if weighted else np.ones(1, plan.compute)
            key = (plan.compute.char, want_grad)
            launch(_mm_serial, _mm_parallel, key, x.size, x, plan.t, w, weighted, plan.p == 2,
                   plan.margin, g, cf, row_loss, grad, want_grad)
    return row_loss, grad if want_grad else None


def _reduced(row_loss, plan):
    """The forward's result from the float64 row losses."""
    if plan.mode == "none":
        return row_loss.astype(plan.result).reshape(plan.loss_shape)
    total = float(np.add.reduce(row_loss))
    if plan.mode == "mean":
        total = total / row_loss.size if row_loss.size else np.nan
    return plan.result.type(total)


def _grad_args(grad_output, plan):
    """The per-row gradients (or None) and the scalar factor of the rows'."""
    g = _L._grad_output(grad_output, plan.mode, plan.loss_shape)
    if plan.mode == "none":
        return g, 1.0
    rows = plan.x.shape[0]
    return None, ((g / rows if rows else np.nan) if plan.mode == "mean" else g)


def _backward(plan, grad_output, out):
    g, c = _grad_args(grad_output, plan)
    direct = (out is not None and out.dtype == plan.compute and out.shape == plan.shape
              and out.flags.c_contiguous and plan.compute == plan.result
              and not overlaps(out, plan.x, plan.t, plan.w, g))
    if out is not None:
        check_out(out, plan.shape, plan.result)
    grad = _run(plan, g, c, True, out.reshape(plan.x.shape) if direct else None)[1]
    if direct:
        return out
    grad = grad.reshape(plan.shape).astype(plan.result, copy=False)
    if out is None:
        return grad
    np.copyto(out, grad)
    return out


def _with_grad(plan):
    if plan.mode == "none":
        row_loss, grad = _run(plan, None, 1.0, True)
    else:
        row_loss, grad = _run(plan, None, _grad_args(1.0, plan)[1], True)
    return _reduced(row_loss, plan), grad.reshape(plan.shape).astype(plan.result, copy=False)


def _on_device(*arrays):
    devices = [type(a) is not np.ndarray and is_device_array(a) for a in arrays
               if a is not None]
    if not any(devices):
        return False
    if not all(devices):
        raise ValueError("input, target (and weight) must all be CUDA device arrays or all "
                         "host arrays")
    return True


def _device():
    from ..cuda import _class_margin
    return _class_margin


# ------------------------------------------------------------------ multi_margin_loss
def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, size_average=None,
                      reduce=None, reduction="mean"):
    r"""Multi-class hinge loss of class scores and a class index per sample.

    .. math::
        \ell_n = \frac1C \sum_{k \ne y_n} w_{y_n}
                 \max(0, \Delta - x_{n, y_n} + x_{n, k})^p

    Parameters
    ----------
    input : array_like
        Scores ``(N, C)``, ``(C,)`` (one sample) or ``()`` (one class), ``C > 0``.
    target : array_like
        Integer class indices in ``[0, C)``: ``(N,)`` (or ``()`` for one sample).
    p : {1, 2}, default 1
        The hinge's power.
    margin : float, default 1.0
        :math:`\Delta`.
    weight : array_like, optional
        Per-class weights ``(C,)``: the target class's weight multiplies the
        sample's terms.
    size_average, reduce : bool, optional
        Deprecated (``DeprecationWarning``); when given they override
        ``reduction`` as in PyTorch.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'``: the per-sample losses, ``(N,)`` (``()`` for a 0-d target);
        ``'sum'``: their sum; ``'mean'``: their mean.

    Returns
    -------
    ndarray or NumPy scalar
        ``reduction='none'``: the per-sample losses; otherwise a NumPy scalar of
        the computation dtype (float32 stays float32).

    Notes
    -----
    Same as ``torch.nn.functional.multi_margin_loss`` (aten's CPU kernel): its
    shape checks and messages, a term counting where its hinge is strictly
    positive. With no samples, ``'mean'`` is NaN and ``'sum'`` 0. Class indices
    out of range raise ``ValueError`` before any computation.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[0.25, 0.5, 0.0, 0.75]])
    >>> float(nbops.multi_margin_loss(x, np.array([3])))
    0.375
    """
    if (type(input) is np.ndarray and weight is None and size_average is None
            and reduce is None and type(p) is int and (p == 1 or p == 2)
            and type(margin) in (float, int)):
        res = _lean_mm(input, target, reduction, margin, p == 2)
        if res is not None:
            return res
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().multi_margin_loss(input, target, p, margin, weight, size_average,
                                            reduce, reduction)
    if _on_device(input, target, weight):
        mode = _mode(size_average, reduce, reduction)
        return _device().multi_margin(input, target, _check_p(p), margin, weight, mode, None,
                                      1.0, False)[0]
    plan = _mm_plan(input, target, p, margin, weight, size_average, reduce, reduction)
    return _reduced(_run(plan, None, 1.0, False)[0], plan)


def multi_margin_loss_backward(grad_output, input, target, p=1, margin=1.0, weight=None,
                               size_average=None, reduce=None, reduction="mean", *, out=None):
    r"""Backward of :func:`nbops.multi_margin_loss`: the gradient of its input.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for ``'mean'``/``'sum'``,
        a float array of the per-sample losses' shape for ``'none'``.
    input, target, p, margin, weight, size_average, reduce, reduction
        The forward's arguments.
    out : ndarray, optional
        Array of ``input``'s shape and the result dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        The gradient of ``input`` (its shape; float32 stays float32).

    Notes
    -----
    With :math:`g_n` the gradient of sample :math:`n`'s loss and
    :math:`z_{nk} = \Delta - x_{n, y_n} + x_{n, k}`: :math:`g_n w_{y_n} p\,
    z_{nk}^{p-1} / C` for a class :math:`k \ne y_n` with :math:`z_{nk} > 0` (else
    0), and minus the row's sum of those at the target class, as aten's
    ``multi_margin_loss_backward``.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.multi_margin_loss_backward(1.0, np.array([[0.25, 0.5, 0.0, 0.75]]),
    ...                                  np.array([3]))
    array([[ 0.25,  0.25,  0.25, -0.75]])
    """
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().multi_margin_loss_backward(grad_output, input, target, p, margin,
                                                     weight, size_average, reduce,
                                                     reduction, out=out)
    if _on_device(input, target, weight):
        mode = _mode(size_average, reduce, reduction)
        g, c = _device_grad_args(grad_output, input, mode)
        return _device().multi_margin(input, target, _check_p(p), margin, weight, mode, g, c,
                                      True)[1]
    plan = _mm_plan(input, target, p, margin, weight, size_average, reduce, reduction)
    return _backward(plan, grad_output, out)


def multi_margin_loss_with_grad(input, target, p=1, margin=1.0, weight=None,
                                size_average=None, reduce=None, reduction="mean"):
    """The value of :func:`nbops.multi_margin_loss` and the gradient of its input,
    from one pass.

    Parameters
    ----------
    input, target, p, margin, weight, size_average, reduce, reduction
        As :func:`nbops.multi_margin_loss`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly what the forward returns for these arguments.
    grad_input : ndarray
        As the backward with ``grad_output=1.0`` (for ``reduction='none'``, the
        gradient of the sum of the per-sample losses).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> loss, grad = nbops.multi_margin_loss_with_grad(np.array([[0.25, 0.5, 0.0, 0.75]]),
    ...                                                np.array([3]), reduction="sum")
    >>> float(loss), grad
    (0.375, array([[ 0.25,  0.25,  0.25, -0.75]]))
    """
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().multi_margin_loss_with_grad(input, target, p, margin, weight,
                                                      size_average, reduce, reduction)
    if _on_device(input, target, weight):
        mode = _mode(size_average, reduce, reduction)
        return _device().multi_margin(input, target, _check_p(p), margin, weight, mode, None,
                                      _device_factor(input, mode), True)
    plan = _mm_plan(input, target, p, margin, weight, size_average, reduce, reduction)
    return _with_grad(plan)


# ------------------------------------------------------------------ multilabel_margin_loss
def multilabel_margin_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    r"""Multi-class multi-label hinge loss: every target class against every other class.

    .. math::
        \ell_n = \frac1C \sum_{j} \sum_{k \notin Y_n}
                 \max(0, 1 - x_{n, y_{nj}} + x_{n, k})

    where :math:`y_{n0}, y_{n1}, \dots` are the entries of ``target[n]`` before its
    first ``-1`` and :math:`Y_n` their set.

    Parameters
    ----------
    input : array_like
        Scores ``(N, C)``, ``(C,)`` (one sample) or ``()`` (one class), ``C > 0``.
    target : array_like
        Integer class indices of the input's shape (for a 0-d input: ``()`` or
        ``(1,)``), each sample's list ended by its first ``-1``; every entry (after
        the ``-1`` too) in ``[-1, C)``.
    size_average, reduce : bool, optional
        Deprecated (``DeprecationWarning``); when given they override
        ``reduction`` as in PyTorch.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'``: the per-sample losses, ``(N,)`` (``()`` for a 0-d or 1-d
        input); ``'sum'``: their sum; ``'mean'``: their mean.

    Returns
    -------
    ndarray or NumPy scalar
        ``reduction='none'``: the per-sample losses; otherwise a NumPy scalar of
        the computation dtype (float32 stays float32).

    Notes
    -----
    Same as ``torch.nn.functional.multilabel_margin_loss`` (aten's CPU kernel):
    its shape checks, a class listed twice counting twice, a term counting where
    its hinge is strictly positive. With no samples, ``'mean'`` is NaN and
    ``'sum'`` 0. Entries out of ``[-1, C)`` raise ``ValueError`` before any
    computation.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[0.1, 0.2, 0.4, 0.8]])
    >>> y = np.array([[3, 0, -1, 1]])
    >>> float(nbops.multilabel_margin_loss(x, y))
    0.85
    """
    if type(input) is np.ndarray and size_average is None and reduce is None:
        res = _lean_mlm(input, target, reduction)
        if res is not None:
            return res
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().multilabel_margin_loss(input, target, size_average, reduce,
                                                 reduction)
    if _on_device(input, target):
        mode = _mode(size_average, reduce, reduction)
        return _device().multilabel_margin(input, target, mode, None, 1.0, False)[0]
    plan = _mlm_plan(input, target, size_average, reduce, reduction)
    return _reduced(_run(plan, None, 1.0, False)[0], plan)


def multilabel_margin_loss_backward(grad_output, input, target, size_average=None, reduce=None,
                                    reduction="mean", *, out=None):
    r"""Backward of :func:`nbops.multilabel_margin_loss`: the gradient of its input.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for ``'mean'``/``'sum'``,
        a float array of the per-sample losses' shape for ``'none'``.
    input, target, size_average, reduce, reduction
        The forward's arguments.
    out : ndarray, optional
        Array of ``input``'s shape and the result dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        The gradient of ``input`` (its shape; float32 stays float32).

    Notes
    -----
    With :math:`g_n` the gradient of sample :math:`n`'s loss: :math:`g_n / C`
    times the number of active terms (hinge :math:`> 0`) in which a non-target
    class appears, minus that number for a target class, as aten's
    ``multilabel_margin_loss_backward`` (which reads the ``is_target`` buffer
    its forward saved; this recomputes it from ``target``).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.multilabel_margin_loss_backward(1.0, np.array([[0.1, 0.2, 0.4, 0.8]]),
    ...                                       np.array([[3, 0, -1, 1]]))
    array([[-0.5,  0.5,  0.5, -0.5]])
    """
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().multilabel_margin_loss_backward(grad_output, input, target,
                                                          size_average, reduce, reduction,
                                                          out=out)
    if _on_device(input, target):
        mode = _mode(size_average, reduce, reduction)
        g, c = _device_grad_args(grad_output, input, mode)
        return _device().multilabel_margin(input, target, mode, g, c, True)[1]
    plan = _mlm_plan(input, target, size_average, reduce, reduction)
    return _backward(plan, grad_output, out)


def multilabel_margin_loss_with_grad(input, target, size_average=None, reduce=None,
                                     reduction="mean"):
    """The value of :func:`nbops.multilabel_margin_loss` and the gradient of its input,
    from one pass.

    Parameters
    ----------
    input, target, size_average, reduce, reduction
        As :func:`nbops.multilabel_margin_loss`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly what the forward returns for these arguments.
    grad_input : ndarray
        As the backward with ``grad_output=1.0`` (for ``reduction='none'``, the
        gradient of the sum of the per-sample losses).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> loss, grad = nbops.multilabel_margin_loss_with_grad(
    ...     np.array([[0.1, 0.2, 0.4, 0.8]]), np.array([[3, 0, -1, 1]]))
    >>> float(loss), grad
    (0.85, array([[-0.5,  0.5,  0.5, -0.5]]))
    """
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().multilabel_margin_loss_with_grad(input, target, size_average,
                                                           reduce, reduction)
    if _on_device(input, target):
        mode = _mode(size_average, reduce, reduction)
        return _device().multilabel_margin(input, target, mode, None,
                                           _device_factor(input, mode), True)
    plan = _mlm_plan(input, target, size_average, reduce, reduction)
    return _with_grad(plan)


# ------------------------------------------------------------------ CUDA arguments
def _device_rows(input):
    shape = tuple(input.shape)
    return shape[0] if len(shape) == 2 else 1


def _device_factor(input, mode):
    """The rows' gradient factor of ``_with_grad`` on the device."""
    if mode != "mean":
        return 1.0
    rows = _device_rows(input)
    return 1.0 / rows if rows else np.nan


def _device_grad_args(grad_output, input, mode):
    """(per-row gradients or None, factor) of a device backward."""
    if mode == "none":
        return grad_output, 1.0
    if is_device_array(grad_output):
        grad_output = grad_output.copy_to_host()
    c = _L._grad_output(grad_output, mode, ())
    if mode == "mean":
        rows = _device_rows(input)
        c = c / rows if rows else np.nan
    return None, c


# ------------------------------------------------------------------ @njit
# Constant messages (formatting values inside @njit would add to every compilation).
_NJ_EMPTY = "Expected non-empty vector or matrix with optional 0-dim batch size"
_NJ_TARGET_SIZE = "inconsistent target size (inside @njit)"
_NJ_RANGE = "target: a class index is out of range: expected 0 <= index < C"
_NJ_LABEL_RANGE = "target: a class index is out of range: expected -1 <= index < C"


def _nj_dtype(name, input, target, weight=None, lists=False):
    """The computation dtype's type of the argument types, after the typing-time checks
    (``lists``: a target of the input's shape, multilabel_margin_loss's)."""
    if not isinstance(input, types.Array) or input.ndim not in (1, 2):
        raise errors.TypingError(f"nbops: {name} inside @njit takes an input array of shape "
                                 "(C,) or (N, C)")
    if lists and not (isinstance(target, types.Array) and target.ndim == input.ndim):
        raise errors.TypingError(f"nbops: {name}: the target must be an array of the input's "
                                 "shape")
    tdtype = target.dtype if isinstance(target, types.Array) else target
    if not isinstance(tdtype, types.Integer):
        raise errors.TypingError(f"nbops: {name}: the target must hold integer class indices")
    dtypes = [as_dtype(input.dtype)]
    if not NJ.is_none(weight):
        if not isinstance(weight, types.Array) or weight.ndim != 1:
            raise errors.TypingError(f"nbops: {name}: weight must be one-dimensional")
        dtypes.append(as_dtype(weight.dtype))
    dtype = np.result_type(*dtypes)
    return (dtype if dtype.kind == "f" else np.dtype(np.float64)).type


def _nj_rows_of(dt):
    """rows(input) -> the input as (N, C) rows of ``dt`` (a copy)."""
    def rows(input):
        n_cls = input.shape[-1]
        if n_cls == 0:
            raise ValueError(_NJ_EMPTY)
        return np.ascontiguousarray(input).astype(dt).reshape((-1, n_cls))
    return register_jitable(rows)


def _nj_class_targets(target):
    """targets(target, n, c) -> (n,) int64 class indices, checked (size, range)."""
    if isinstance(target, types.Integer):
        def scalar(target, n, c):
            if n != 1:
                raise ValueError(_NJ_TARGET_SIZE)
            if target < 0 or target >= c:
                raise ValueError(_NJ_RANGE)
            t = np.empty(1, np.int64)
            t[0] = target
            return t
        return register_jitable(scalar)
    if target.ndim > 1:
        raise errors.TypingError("nbops: multi_margin_loss: the target must be () or (N,)")

    def array(target, n, c):
        src = np.ascontiguousarray(target).reshape(-1)
        if src.size != n:
            raise ValueError(_NJ_TARGET_SIZE)
        t = np.empty(n, np.int64)
        for i in range(n):
            v = src[i]
            if v < 0 or v >= c:
                raise ValueError(_NJ_RANGE)
            t[i] = v
        return t
    return register_jitable(array)


@register_jitable
def _nj_label_targets(target, n, c):
    """(n, c) int64 class-index lists of a target of the input's shape, checked."""
    src = np.ascontiguousarray(target).reshape(-1)
    if src.size != n * c:
        raise ValueError(_NJ_TARGET_SIZE)
    t = np.empty((n, c), np.int64)
    flat = t.reshape(-1)
    for i in range(src.size):
        v = src[i]
        if v < -1 or v >= c:
            raise ValueError(_NJ_LABEL_RANGE)
        flat[i] = v
    return t


def _nj_value(mode, dt, zero_d):
    """value(row_loss) -> the forward's result for ``mode``."""
    def none(row_loss):
        return row_loss.astype(dt)

    def none_0d(row_loss):
        out = np.empty((), dt)
        out[()] = row_loss[0]
        return out

    def total(row_loss):
        s = 0.0
        for r in range(row_loss.size):
            s += row_loss[r]
        if mode == "mean":
            s = s / row_loss.size if row_loss.size else np.nan
        return dt(s)

    if mode != "none":
        return register_jitable(total)
    return register_jitable(none_0d if zero_d else none)


def _nj_mm_body(dt, target, weighted, want_grad):
    """body(input, target, p, margin, weight, g, c) -> (float64 row losses, gradient)."""
    kernel, targets, rows_of = _mm_serial, _nj_class_targets(target), _nj_rows_of(dt)

    def body(input, target, p, margin, weight, g, c):
        if p != 1 and p != 2:
            raise ValueError("only p == 1 and p == 2 supported")
        x2 = rows_of(input)
        n, n_cls = x2.shape
        t = targets(target, n, n_cls)
        if weighted:
            w = np.ascontiguousarray(weight).astype(dt)
            if w.size != n_cls:
                raise ValueError("inconsistent weight size (inside @njit)")
        else:
            w = np.ones(1, dt)
        row_loss = np.empty(n, np.float64)
        grad = np.empty((n, n_cls) if want_grad else (0, 0), dt)
        if n:
            kernel(x2, t, w, weighted, p == 2, dt(margin), g.astype(dt), dt(c), row_loss, grad,
                   want_grad)
        return row_loss, grad

    return register_jitable(body)


def _nj_mlm_body(dt, want_grad):
    """body(input, target, g, c) -> (float64 row losses, gradient)."""
    kernel, rows_of = _mlm_serial, _nj_rows_of(dt)

    def body(input, target, g, c):
        if target.shape != input.shape:
            raise ValueError(_NJ_TARGET_SIZE)
        x2 = rows_of(input)
        n, n_cls = x2.shape
        t = _nj_label_targets(target, n, n_cls)
        row_loss = np.empty(n, np.float64)
        grad = np.empty((n, n_cls) if want_grad else (0, 0), dt)
        if n:
            kernel(x2, t, g.astype(dt), dt(c), row_loss, grad, want_grad)
        return row_loss, grad

    return register_jitable(body)


def _mm_zero_d(target):
    return not (isinstance(target, types.Array) and target.ndim == 1)


@overload(multi_margin_loss, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _mm_njit(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
             reduction="mean"):
    mode = NJ.reduction_plan(size_average, reduce, reduction).mode
    dt = _nj_dtype("multi_margin_loss", input, target, weight)
    body = _nj_mm_body(dt, target, not NJ.is_none(weight), False)
    value = _nj_value(mode, dt, _mm_zero_d(target))

    def impl(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
             reduction="mean"):
        return value(body(input, target, p, margin, weight, np.ones(1), 1.0)[0])

    return impl


@overload(multi_margin_loss_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _mm_backward_njit(grad_output, input, target, p=1, margin=1.0, weight=None,
                      size_average=None, reduce=None, reduction="mean", out=None):
    mode = NJ.reduction_plan(size_average, reduce, reduction).mode
    dt = _nj_dtype("multi_margin_loss_backward", input, target, weight)
    body = _nj_mm_body(dt, target, not NJ.is_none(weight), True)
    factor = NJ.loss_grad_factor(mode, "multi_margin_loss_backward")
    if not NJ.is_none(out):
        raise errors.TypingError("nbops: multi_margin_loss_backward: out= is not supported "
                                 "inside @njit")

    def impl(grad_output, input, target, p=1, margin=1.0, weight=None, size_average=None,
             reduce=None, reduction="mean", out=None):
        rows = input.size // input.shape[-1] if input.shape[-1] else 0
        g, c = factor(grad_output, rows)
        return body(input, target, p, margin, weight, g, c)[1].reshape(input.shape)

    return impl


@overload(multi_margin_loss_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _mm_with_grad_njit(input, target, p=1, margin=1.0, weight=None, size_average=None,
                       reduce=None, reduction="mean"):
    mode = NJ.reduction_plan(size_average, reduce, reduction).mode
    dt = _nj_dtype("multi_margin_loss_with_grad", input, target, weight)
    body = _nj_mm_body(dt, target, not NJ.is_none(weight), True)
    value = _nj_value(mode, dt, _mm_zero_d(target))
    factor = NJ.loss_grad_factor(mode, "multi_margin_loss_with_grad")

    def impl(input, target, p=1, margin=1.0, weight=None, size_average=None, reduce=None,
             reduction="mean"):
        rows = input.size // input.shape[-1] if input.shape[-1] else 0
        c = 1.0 if mode == "none" else factor(1.0, rows)[1]
        row_loss, grad = body(input, target, p, margin, weight, np.ones(1), c)
        return value(row_loss), grad.reshape(input.shape)

    return impl


@overload(multilabel_margin_loss, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _mlm_njit(input, target, size_average=None, reduce=None, reduction="mean"):
    mode = NJ.reduction_plan(size_average, reduce, reduction).mode
    dt = _nj_dtype("multilabel_margin_loss", input, target, lists=True)
    body, value = _nj_mlm_body(dt, False), _nj_value(mode, dt, input.ndim == 1)

    def impl(input, target, size_average=None, reduce=None, reduction="mean"):
        return value(body(input, target, np.ones(1), 1.0)[0])

    return impl


@overload(multilabel_margin_loss_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _mlm_backward_njit(grad_output, input, target, size_average=None, reduce=None,
                       reduction="mean", out=None):
    mode = NJ.reduction_plan(size_average, reduce, reduction).mode
    dt = _nj_dtype("multilabel_margin_loss_backward", input, target, lists=True)
    body = _nj_mlm_body(dt, True)
    factor = NJ.loss_grad_factor(mode, "multilabel_margin_loss_backward")
    if not NJ.is_none(out):
        raise errors.TypingError("nbops: multilabel_margin_loss_backward: out= is not "
                                 "supported inside @njit")

    def impl(grad_output, input, target, size_average=None, reduce=None, reduction="mean",
             out=None):
        rows = input.size // input.shape[-1] if input.shape[-1] else 0
        g, c = factor(grad_output, rows)
        return body(input, target, g, c)[1].reshape(input.shape)

    return impl


@overload(multilabel_margin_loss_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _mlm_with_grad_njit(input, target, size_average=None, reduce=None, reduction="mean"):
    mode = NJ.reduction_plan(size_average, reduce, reduction).mode
    dt = _nj_dtype("multilabel_margin_loss_with_grad", input, target, lists=True)
    body = _nj_mlm_body(dt, True)
    value = _nj_value(mode, dt, input.ndim == 1)
    factor = NJ.loss_grad_factor(mode, "multilabel_margin_loss_with_grad")

    def impl(input, target, size_average=None, reduce=None, reduction="mean"):
        rows = input.size // input.shape[-1] if input.shape[-1] else 0
        c = 1.0 if mode == "none" else factor(1.0, rows)[1]
        row_loss, grad = body(input, target, np.ones(1), c)
        return value(row_loss), grad.reshape(input.shape)

    return impl
