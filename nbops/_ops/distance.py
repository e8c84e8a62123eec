"""``nbops.pairwise_distance``: the p-norm of x1 - x2 + eps along the last axis.

The argument checks are :func:`nbops._ops.plan_norm.pairwise_distance_plan` and
the p-norm arithmetic the cores of :mod:`nbops.scalar._norms`, both shared with
the CUDA backend.
"""

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable
from numba.np import numpy_support

from .. import _config, _memory
from .._launch import launch, task_address
from .._numba_internals import make_task_call
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    deliver,
    is_dask_array,
    is_device_array,
    overlaps,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar._math import const
from ..scalar._norms import (
    PNORM_1,
    PNORM_2,
    PNORM_MAX,
    PNORM_MIN,
    pnorm_add,
    pnorm_backward,
    pnorm_finish,
    pnorm_is_extreme,
    pnorm_kind,
    pnorm_start,
)
from .elementwise import _float_array
from .plan import Remembered
from .plan_norm import pairwise_distance_plan

#: Elements (rows * dim) of a task of :func:`_pdist` (at least a row).
PDIST_TASK = 4096

call_task = make_task_call()


@register_jitable
def _rows_per_task(dim):
    """Rows of a task of :func:`_pdist` and :func:`_pdist_grad`: about
    PDIST_TASK elements, at least a row."""
    return max(1, PDIST_TASK // max(dim, 1))


@_config.task_function
def _pdist_task(a, sa, b, sb, dim, p, eps, out, task):
    """Task ``task`` of :func:`_pdist`: out[r] = ``||a_r - b_r + eps||_p`` for
    the rows of its block of about PDIST_TASK elements (at least a row).

    Accumulated in the input's dtype, as PyTorch. Other p fold
    :func:`pnorm_add` over the row; the p = 2 and p = 1 rows spell out its
    ``acc + d * d`` and ``acc + |d|`` unrolled into four independent sums
    (fixed order: deterministic), for throughput, and finish in their own
    branch (one shared exit made them slower). The row loop is written out
    here, not as cores: Numba inlines a core by copying its IR block by block,
    at a cost that grows with its size, and a row core holding the other cores
    was costly to inline.
    """
    zero = const(eps, 0.0)
    per = _rows_per_task(dim)
    r0 = task * per
    for r in range(r0, min(r0 + per, out.size)):
        x1 = a[r * sa:r * sa + dim]
        x2 = b[r * sb:r * sb + dim]
        n = x1.size
        kind = pnorm_kind(p)  # (per row: hoisted, the p = inf rows ran slower)
        if kind == PNORM_2:
            s0 = s1 = s2 = s3 = zero
            i = 0
            while i + 4 <= n:
                d0 = x1[i] - x2[i] + eps
                d1 = x1[i + 1] - x2[i + 1] + eps
                d2 = x1[i + 2] - x2[i + 2] + eps
                d3 = x1[i + 3] - x2[i + 3] + eps
                s0 += d0 * d0
                s1 += d1 * d1
                s2 += d2 * d2
                s3 += d3 * d3
                i += 4
            while i < n:
                d = x1[i] - x2[i] + eps
                s0 += d * d
                i += 1
            out[r] = pnorm_finish((s0 + s1) + (s2 + s3), p, PNORM_2)
        elif kind == PNORM_1:
            s0 = s1 = s2 = s3 = zero
            i = 0
            while i + 4 <= n:
                s0 += abs(x1[i] - x2[i] + eps)
                s1 += abs(x1[i + 1] - x2[i + 1] + eps)
                s2 += abs(x1[i + 2] - x2[i + 2] + eps)
                s3 += abs(x1[i + 3] - x2[i + 3] + eps)
                i += 4
            while i < n:
                s0 += abs(x1[i] - x2[i] + eps)
                i += 1
            out[r] = pnorm_finish((s0 + s1) + (s2 + s3), p, PNORM_1)
        else:
            acc = pnorm_start(eps, kind)
            for i in range(n):
                acc = pnorm_add(acc, x1[i] - x2[i] + eps, p, kind)
            out[r] = pnorm_finish(acc, p, kind)


def _pdist_tasks(dim, rows):
    """The number of tasks of :func:`_pdist` (and :func:`_pdist_grad`)."""
    per = _rows_per_task(dim)
    return (rows + per - 1) // per


_pdist_tasks_nj = register_jitable(_pdist_tasks)


def _pdist(a, sa, b, sb, dim, p, eps, out, n_tasks, task_fn):
    """out[r] = ``||a_r - b_r + eps||_p`` of row r; ``sa``/``sb`` are the row
    strides (0: one shared row). Tasks: ``n_tasks`` (:func:`_pdist_tasks`)
    blocks of about PDIST_TASK elements' rows, each a call of
    :func:`_pdist_task` at ``task_fn`` (its address: see
    :func:`nbops._ops.linear._product`): compiled once, not again in each of the
    parallel kernel's libraries (shared by pairwise_distance, its backward and
    the triplet losses). The kernel is a loop and a call: its first compile is
    about 0.1 s (the task count comes from Python: counted in the kernel, its
    ``max`` and ``min`` took another 0.07 s to compile)."""
    for task in prange(n_tasks):
        call_task(_pdist_task, task_fn, (a, sa, b, sb, dim, p, eps, out, np.int64(task)))


_pdist_serial, _pdist_parallel = _config.kernels(_pdist)


@_config.core
def pdist_linked(a, sa, b, sb, dim, p, eps, out):
    """:func:`_pdist`'s tasks in order, calling :func:`_pdist_task` linked: for
    the ``@njit`` overloads, which have no task addresses."""
    for task in range(_pdist_tasks_nj(dim, out.size)):
        _pdist_task(a, sa, b, sb, dim, p, eps, out, np.int64(task))


def launch_rows(serial, parallel, task, key, n, *args):
    """``launch`` of a row kernel pair (:func:`_pdist`, :func:`_pdist_grad`)
    with ``args`` (``dim`` at index 4, an array of one value per row at 7),
    appending the task count and the address of the pair's ``task``."""
    launch(serial, parallel, key, n, *args, _pdist_tasks(args[4], args[7].size),
           task_address(task, key, args))


def launch_pdist(key, n, *args):
    """:func:`launch_rows` of the :func:`_pdist` pair."""
    launch_rows(_pdist_serial, _pdist_parallel, _pdist_task, key, n, *args)


#: (x1.shape, x2.shape, p, eps, keepdim) -> the checked plan of an earlier call
#: (plain Python numbers only: the checks depend on nothing else).
_plans = Remembered(pairwise_distance_plan,
                    keep=lambda key: all(type(v) in (int, float, bool) for v in key[2:]))


def pair_plan(x1_shape, x2_shape, p, eps, keepdim):
    """:func:`pairwise_distance_plan`, remembered for plain Python numbers."""
    try:
        return _plans[(x1_shape, x2_shape, p, eps, keepdim)]
    except TypeError:  # (a parameter that is no hashable number)
        return pairwise_distance_plan(x1_shape, x2_shape, p, eps, keepdim)
#: float dtypes computed as they are (x1 and x2 of one of them: no promotion)
_SAME_FLOAT = (np.dtype(np.float32), np.dtype(np.float64))


def _rows(x, shape, compute):
    """``x`` as a flat contiguous array of ``compute`` and its row stride in it.

    An input that already has the broadcast shape, or a single row that all
    rows share, is not materialized (row stride ``dim`` or 0).
    """
    lead, dim = shape[:-1], shape[-1]
    if x.dtype == compute and x.flags.c_contiguous and x.shape == shape:
        return x.reshape(-1), dim  # the common call: no conversion
    if x.ndim >= 1 and x.shape[-1] == dim:
        if x.shape[:-1] == lead:
            return np.ascontiguousarray(x, dtype=compute).reshape(-1), dim
        if x.size == dim:  # every leading axis has length 1
            return np.ascontiguousarray(x, dtype=compute).reshape(-1), 0
    return np.ascontiguousarray(np.broadcast_to(x, shape), dtype=compute).reshape(-1), dim


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False, *, out=None):
    r"""Distance between matching rows: :math:`\lVert x_1 - x_2 + \epsilon \rVert_p`.

    As PyTorch, ``eps`` is added to the difference (not to the norm), and the
    norm is taken over the last axis after broadcasting ``x1`` against ``x2``.

    Parameters
    ----------
    x1, x2 : array_like
        Broadcastable shapes ``(*, D)``; 1-D inputs give a 0-d result (two 0-d
        inputs too, with or without ``keepdim``, as PyTorch).
    p : float
        The norm degree: 0 (count of non-zeros), 1, 2, fractional, negative,
        ``inf``, ``-inf``. As PyTorch, ``inf``, ``-inf`` and negative ``p`` are
        rejected (``ValueError``) when the last axis is empty and rows exist.
    eps : float
        Added to every difference ``x1 - x2``.
    keepdim : bool
        Keep the reduced axis with length 1.
    out : ndarray, optional
        Written with the result and returned (exactly the result's shape and
        dtype; a device array for device inputs).

    Returns
    -------
    ndarray of shape ``broadcast(x1, x2).shape[:-1]`` (``(..., 1)`` with keepdim),
    float32 for float32 inputs (accumulated in the input dtype, as PyTorch).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.pairwise_distance(np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([3.0, 4.0]))
    array([4.9999986 , 3.60554989])
    """
    if type(x1) is not np.ndarray and is_device_array(x1):
        return _cuda().pairwise_distance(x1, x2=x2, p=p, eps=eps, keepdim=keepdim, out=out)
    if type(x1) is not np.ndarray and type(x1).__module__.startswith("dask."):
        from .._dask import pairwise_distance as on_dask  # nbops/_dask.py: a lazy graph
        return on_dask(x1, x2, p, eps, keepdim, out=out)
    a = as_array(x1, "x1")
    b = as_array(x2, "x2")
    plan = pair_plan(a.shape, b.shape, p, eps, keepdim)
    if a.dtype in _SAME_FLOAT and b.dtype == a.dtype:  # the common call: nothing to check
        compute = result = a.dtype
    else:
        result_dtype(a.dtype, "x1")  # a TypeError naming the argument (complex, object)
        result_dtype(b.dtype, "x2")
        compute, result = result_dtype(np.result_type(a.dtype, b.dtype), "x1")
    if out is not None:
        check_out(out, plan.out_shape, result)
    direct = (out is not None and result == compute and out.flags.c_contiguous
              and not overlaps(out, a, b))
    res = out if direct else _memory.empty(plan.out_shape, compute)
    if res.size:
        af, sa = _rows(a, plan.shape, compute)
        bf, sb = _rows(b, plan.shape, compute)
        key = ("pdist", compute.char, af.flags.writeable, bf.flags.writeable)
        launch_pdist(key, plan.rows * max(plan.dim, 1), af, sa, bf, sb, plan.dim,
                     compute.type(plan.p), compute.type(plan.eps), res.reshape(-1))
    return deliver(res, out, direct, compute, result)


# --------------------------------------------------------------------------- #
# backward
# --------------------------------------------------------------------------- #


@_config.task_function
def _pdist_grad_task(a, sa, b, sb, dim, p, eps, norm, g, out1, out2, task):
    """Task ``task`` of :func:`_pdist_grad`: the rows of its block of about
    PDIST_TASK elements (at least a row), as :func:`_pdist_task`'s."""
    kind = pnorm_kind(p)
    per = _rows_per_task(dim)
    r0 = task * per
    for r in range(r0, min(r0 + per, norm.size)):
        x1 = a[r * sa:r * sa + dim]
        x2 = b[r * sb:r * sb + dim]
        o1 = out1[r * dim:r * dim + dim]
        o2 = out2[r * dim:r * dim + dim]
        nr = norm[r]
        gr = g[r]
        count = const(eps, 1.0)
        if kind == PNORM_MAX or kind == PNORM_MIN:
            count = const(eps, 0.0)
            for i in range(dim):
                if pnorm_is_extreme(x1[i] - x2[i] + eps, nr):
                    count += const(eps, 1.0)
        for i in range(dim):
            v = pnorm_backward(x1[i] - x2[i] + eps, nr, gr, p, kind, count)
            o1[i] = v
            o2[i] = -v


def _pdist_grad(a, sa, b, sb, dim, p, eps, norm, g, out1, out2, n_tasks, task_fn):
    """``out1`` (rows * dim) = the gradient of row r's norm ``norm[r]`` times
    ``g[r]`` with respect to ``d = a_r - b_r + eps`` (:func:`pnorm_backward`),
    ``out2 = -out1``; ``sa``/``sb``: the row strides, as in :func:`_pdist`.
    For p = +-inf a first pass counts the row's extreme values. Tasks as
    :func:`_pdist`'s: calls of :func:`_pdist_grad_task` at ``task_fn``."""
    for task in prange(n_tasks):
        call_task(_pdist_grad_task, task_fn,
                  (a, sa, b, sb, dim, p, eps, norm, g, out1, out2, np.int64(task)))


_pdist_grad_serial, _pdist_grad_parallel = _config.kernels(_pdist_grad)


@_config.core
def pdist_grad_linked(a, sa, b, sb, dim, p, eps, norm, g, out1, out2):
    """:func:`_pdist_grad` for ``@njit`` callers (as :func:`pdist_linked`)."""
    for task in range(_pdist_tasks_nj(dim, norm.size)):
        _pdist_grad_task(a, sa, b, sb, dim, p, eps, norm, g, out1, out2, np.int64(task))


def _sum_to(grad, shape, result):
    """``grad`` (of the broadcast shape) summed back to an argument's ``shape``
    (in float64, in NumPy's fixed order), as ``result``."""
    if grad.shape == shape:
        return grad if grad.dtype == result else grad.astype(result)
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + k for k, n in enumerate(shape)
                                      if n == 1 and grad.shape[lead + k] != 1)
    return grad.sum(axis=axes, dtype=np.float64).reshape(shape).astype(result)


def _deliver_pair(grads, out):
    """``grads`` written into ``out`` (None or a pair, whose entries may be None)."""
    if out is None:
        return grads
    res = []
    for grad, dest in zip(grads, out, strict=True):
        if dest is None:
            res.append(grad)
        else:
            dest[...] = grad
            res.append(dest)
    return tuple(res)


def _check_out_pair(out, shapes, dtypes):
    if out is None:
        return
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError("out must be None or a pair (out_x1, out_x2) of arrays or None")
    for name, dest, shape, dtype in zip(("out[0]", "out[1]"), out, shapes, dtypes, strict=True):
        if dest is None:
            continue
        try:
            check_out(dest, shape, dtype)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{name}: {exc}") from None


def pairwise_distance_backward(grad_output, x1, x2, p=2.0, eps=1e-6, keepdim=False, *,
                               out=None):
    r"""Gradients of :func:`pairwise_distance`: ``(grad_x1, grad_x2)``.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to the distances (the forward
        result's shape, float).
    x1, x2 : array_like
        The forward's inputs (broadcastable, ``(*, D)``).
    p, eps, keepdim
        The forward's options.
    out : pair of ndarray or None, optional, keyword-only
        ``(out_x1, out_x2)``, each None or an array of exactly that gradient's
        shape and dtype to write into.

    Returns
    -------
    tuple of ndarray
        ``(grad_x1, grad_x2)`` of the shapes of ``x1`` and ``x2``: the gradient of
        an argument that was broadcast is summed back to its shape (in
        float64). Each has its argument's result dtype (float32 stays float32).

    Notes
    -----
    With ``d = x1 - x2 + eps`` (broadcast) and ``n = ||d||_p`` per row, the
    gradient with respect to ``d`` is PyTorch's ``norm_backward``:
    ``g d / n`` for p = 2 (0 where ``n == 0``; with the ``eps`` shift two
    identical rows give ``g / sqrt(D)``, not 0), ``g sgn(d)`` for p = 1
    (``sgn(0) = sgn(NaN) = 0``), 0 for p = 0, ``g sgn(d) / k`` at the ``k``
    entries with ``|d| == n`` (or NaN) for p = +-inf, and
    ``g sgn(d) |d|^(p-1) / n^(p-1)`` otherwise (0 where ``d == 0`` for p < 1,
    where ``n == 0`` for p > 1). ``grad_x1`` is it, ``grad_x2`` its negative.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x1, x2 = np.array([[3.0, 4.0]]), np.zeros((1, 2))
    >>> g1, g2 = nbops.pairwise_distance_backward(np.ones(1), x1, x2, eps=0.0)
    >>> g1, g2
    (array([[0.6, 0.8]]), array([[-0.6, -0.8]]))
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().pairwise_distance_backward(grad_output, x1, x2, p=p, eps=eps,
                                                  keepdim=keepdim, out=out)
    if type(x1) is not np.ndarray and is_dask_array(x1):
        return dask_ops().pairwise_distance_backward(grad_output, x1, x2, p, eps, keepdim,
                                                     out=out)
    g = _float_array(grad_output, "grad_output")
    a = as_array(x1, "x1")
    b = as_array(x2, "x2")
    plan = pair_plan(a.shape, b.shape, p, eps, keepdim)
    r1 = result_dtype(a.dtype, "x1")[1]
    r2 = result_dtype(b.dtype, "x2")[1]
    if g.shape != plan.out_shape:
        raise ValueError(f"grad_output has shape {g.shape}, expected {plan.out_shape} (the "
                         "forward's output shape)")
    compute = result_dtype(np.result_type(g.dtype, r1, r2), "grad_output")[0]
    _check_out_pair(out, (a.shape, b.shape), (r1, r2))
    shape = plan.shape
    grad1 = np.empty(shape, compute)  # (every element written below)
    grad2 = np.empty(shape, compute)
    if plan.rows and plan.dim:
        af, sa = _rows(a, shape, compute)
        bf, sb = _rows(b, shape, compute)
        pp, ee = compute.type(plan.p), compute.type(plan.eps)
        norm = np.empty(plan.rows, compute)
        n = plan.rows * plan.dim
        launch_pdist(("pdist", compute.char, af.flags.writeable, bf.flags.writeable), n,
                     af, sa, bf, sb, plan.dim, pp, ee, norm)
        gs = np.ascontiguousarray(g, dtype=compute).reshape(-1)
        launch_rows(_pdist_grad_serial, _pdist_grad_parallel, _pdist_grad_task,
                    ("pdist_grad", compute.char), n,
                    af, sa, bf, sb, plan.dim, pp, ee, norm, gs, grad1.reshape(-1),
                    grad2.reshape(-1))
    return _deliver_pair((_sum_to(grad1, a.shape if a.ndim else (), r1).reshape(a.shape),
                          _sum_to(grad2, b.shape if b.ndim else (), r2).reshape(b.shape)),
                         out)


@overload(pairwise_distance, prefer_literal=True)
def _pairwise_distance_njit(x1, x2, p=2.0, eps=1e-6, keepdim=False, out=None):
    """Inside @njit: the serial kernel (never the parallel one: see
    docs/guides/architecture.rst, "Cache, fork and thread rules"). x1 and x2
    must have the same ndim (size-1 axes broadcast); keepdim must be a constant;
    no ``out=``."""
    if not (isinstance(x1, types.Array) and isinstance(x2, types.Array)):
        return None
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        return None
    if x1.ndim != x2.ndim or x1.ndim < 1:
        raise errors.TypingError("nbops.pairwise_distance inside @njit: x1 and x2 must "
                                 "have the same ndim >= 1 (size-1 axes broadcast)")
    if isinstance(keepdim, types.BooleanLiteral):
        keep = keepdim.literal_value
    elif keepdim is False or isinstance(keepdim, (types.Omitted, bool)):
        keep = False
    else:
        raise errors.TypingError("nbops.pairwise_distance inside @njit: keepdim must be "
                                 "a constant True or False")
    dt = np.result_type(numpy_support.as_dtype(x1.dtype), numpy_support.as_dtype(x2.dtype))
    dtype = numpy_support.from_dtype(result_dtype(dt, "x1")[0])

    def impl(x1, x2, p=2.0, eps=1e-6, keepdim=False, out=None):
        shape = np.broadcast_shapes(x1.shape, x2.shape)
        dim = shape[-1]
        rows = 1
        for k in range(len(shape) - 1):
            rows *= shape[k]
        pp = dtype(p)
        if dim == 0 and rows > 0 and (pp < 0 or np.isinf(pp)):
            raise ValueError("pairwise_distance: p = inf, -inf or negative p on an empty "
                             "last axis")
        if x1.shape == shape:
            a = np.ascontiguousarray(x1).astype(dtype).reshape(-1)
        else:
            a = np.ascontiguousarray(np.broadcast_to(x1, shape)).astype(dtype).reshape(-1)
        if x2.shape == shape:
            b = np.ascontiguousarray(x2).astype(dtype).reshape(-1)
        else:
            b = np.ascontiguousarray(np.broadcast_to(x2, shape)).astype(dtype).reshape(-1)
        res = np.empty(rows, dtype)
        # the cached serial kernel: keeps the user's compile short
        pdist_linked(a, dim, b, dim, dim, pp, dtype(eps), res)
        if keep:
            return res.reshape(shape[:-1] + (1,))
        return res.reshape(shape[:-1])

    return impl


@register_jitable
def _sum_to_njit(grad, shape, target, dtype_like):
    """The flat ``grad`` of the broadcast ``shape`` summed (in float64, in index
    order) to ``target`` (the same ndim, axes of 1 broadcast), as ``dtype_like``'s dtype."""
    if target == shape:
        return grad.astype(dtype_like.dtype).reshape(target)
    size = 1
    for k in range(len(target)):
        size *= target[k]
    acc = np.zeros(size, np.float64)
    for i in range(grad.size):
        rem = i
        j = 0
        stride = 1
        for k in range(len(shape) - 1, -1, -1):
            coord = rem % shape[k]
            rem //= shape[k]
            if target[k] != 1:
                j += coord * stride
            stride *= target[k]
        acc[j] += grad[i]
    return acc.astype(dtype_like.dtype).reshape(target)


@overload(pairwise_distance_backward, prefer_literal=True)
def _pairwise_distance_backward_njit(grad_output, x1, x2, p=2.0, eps=1e-6, keepdim=False,
                                     out=None):
    """Inside @njit: the cached serial kernels, with the forward overload's rules
    (x1 and x2 of the same ndim, size-1 axes broadcast; keepdim a constant; no
    ``out=``). A broadcast argument's gradient is summed in index order."""
    if not all(isinstance(a, types.Array) for a in (grad_output, x1, x2)):
        return None
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        raise errors.TypingError("nbops.pairwise_distance_backward: out= is not supported "
                                 "inside @njit")
    if x1.ndim != x2.ndim or x1.ndim < 1:
        raise errors.TypingError("nbops.pairwise_distance_backward inside @njit: x1 and x2 "
                                 "must have the same ndim >= 1 (size-1 axes broadcast)")
    if not isinstance(grad_output.dtype, types.Float):
        raise errors.TypingError("nbops.pairwise_distance_backward: grad_output must be a "
                                 "float array")
    if isinstance(keepdim, types.BooleanLiteral):
        keep = keepdim.literal_value
    elif keepdim is False or isinstance(keepdim, (types.Omitted, bool)):
        keep = False
    else:
        raise errors.TypingError("nbops.pairwise_distance_backward inside @njit: keepdim "
                                 "must be a constant True or False")
    if grad_output.ndim != x1.ndim - 1 + keep:
        raise errors.TypingError(f"nbops.pairwise_distance_backward: grad_output must have "
                                 f"{x1.ndim - 1 + keep} dimensions (the forward's output)")
    dt1 = result_dtype(numpy_support.as_dtype(x1.dtype), "x1")[1]
    dt2 = result_dtype(numpy_support.as_dtype(x2.dtype), "x2")[1]
    dt = np.result_type(dt1, dt2, numpy_support.as_dtype(grad_output.dtype))
    dtype = numpy_support.from_dtype(result_dtype(dt, "grad_output")[0])
    like1, like2 = np.empty(0, dt1), np.empty(0, dt2)

    def impl(grad_output, x1, x2, p=2.0, eps=1e-6, keepdim=False, out=None):
        shape = np.broadcast_shapes(x1.shape, x2.shape)
        dim = shape[-1]
        rows = 1
        for k in range(len(shape) - 1):
            rows *= shape[k]
            if grad_output.shape[k] != shape[k]:
                raise ValueError("grad_output must have the forward's output shape")
        if keep and grad_output.shape[-1] != 1:
            raise ValueError("grad_output must have the forward's output shape")
        pp = dtype(p)
        if dim == 0 and rows > 0 and (pp < 0 or np.isinf(pp)):
            raise ValueError("pairwise_distance: p = inf, -inf or negative p on an empty "
                             "last axis")
        a = np.ascontiguousarray(np.broadcast_to(x1, shape)).astype(dtype).reshape(-1)
        b = np.ascontiguousarray(np.broadcast_to(x2, shape)).astype(dtype).reshape(-1)
        g = np.ascontiguousarray(grad_output).astype(dtype).reshape(-1)
        norm = np.empty(rows, dtype)
        o1 = np.zeros(rows * dim, dtype)
        o2 = np.zeros(rows * dim, dtype)
        if rows * dim:
            pdist_linked(a, dim, b, dim, dim, pp, dtype(eps), norm)
            pdist_grad_linked(a, dim, b, dim, dim, pp, dtype(eps), norm, g, o1, o2)
        return (_sum_to_njit(o1, shape, x1.shape, like1),
                _sum_to_njit(o2, shape, x2.shape, like2))

    return impl


__all__ = ["pairwise_distance", "pairwise_distance_backward"]
