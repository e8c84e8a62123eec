"""Embedding losses of rows: ``nbops.cosine_embedding_loss``, ``nbops.triplet_margin_loss``
and ``nbops.triplet_margin_with_distance_loss``, each with its backward (the
gradients of every input, as a tuple in the forward's argument order) and
``_with_grad`` (the value and that tuple).

Signatures, defaults and semantics are those of ``torch.nn.functional`` 2.13.

cosine_embedding_loss: one kernel runs the rows in parallel; a row's dot product
and squared magnitudes are float64 sums in index order, each magnitude plus
``EPSILON`` = 1e-12 as PyTorch adds it, and (backward, ``_with_grad``) the row's
gradients are written in the same pass.

triplet_margin_loss: the distances are :func:`nbops.pairwise_distance`'s kernel
(nbops/_ops/distance.py: the p-norm of ``x1 - x2 + eps``, accumulated in the
input dtype as PyTorch), two calls (three with ``swap``); the per-row hinge,
the swap's minimum and their gradients are NumPy on the rows; one kernel writes
the three inputs' gradients from the row norms (the cores of
:mod:`nbops.scalar._norms`, as ``pairwise_distance_backward``). The gradient
of the swap's minimum at a tie is split in halves, as ``torch.autograd``.

triplet_margin_with_distance_loss: the triplet loss over a distance function:
None, :func:`nbops.pairwise_distance` (or a ``functools.partial`` of it fixing
``p``/``eps``) and ``nbops.nn.PairwiseDistance`` run the kernels above; any
other Python callable runs on the CPU path for the value, and its backward
raises (no gradient of a user callable is available).

'mean'/'sum' over the rows are float64 sums in row order, so every result is
bit-identical for any thread count. Inside ``@njit`` the same names run the
serial kernels (inputs of one shape there). CUDA device arrays run the kernels
of nbops/cuda/_embedding.py.
"""

import functools
import math

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable
from numba.np.numpy_support import as_dtype

from .. import _config
from .._launch import launch, task_address
from .._numba_internals import make_task_call
from .._validate import (
    as_array,
    as_param,
    dask_ops,
    is_dask_array,
    is_device_array,
    result_dtype,
)
from ..scalar._math import const
from ..scalar._norms import (
    PNORM_MAX,
    PNORM_MIN,
    pnorm_backward,
    pnorm_is_extreme,
    pnorm_kind,
)
from . import distance as _D
from . import losses as _L
from . import njit_args as NJ
from .plan import reduction_plan

__all__ = ["cosine_embedding_loss", "cosine_embedding_loss_backward",
           "cosine_embedding_loss_with_grad", "triplet_margin_loss",
           "triplet_margin_loss_backward", "triplet_margin_loss_with_grad",
           "triplet_margin_with_distance_loss", "triplet_margin_with_distance_loss_backward",
           "triplet_margin_with_distance_loss_with_grad"]

#: added to the squared magnitudes, as PyTorch's cosine_embedding_loss
EPSILON = 1e-12


def _array(a, name):
    return a if type(a) is np.ndarray else as_array(a, name)


def _on_device(name, arrays):
    devices = [type(a) is not np.ndarray and is_device_array(a) for a in arrays]
    if any(devices) and not all(devices):
        raise ValueError(f"{name}: the inputs must all be CUDA device arrays or all host "
                         "arrays")
    return devices[0]


def _device():
    from ..cuda import _embedding
    return _embedding


def _total(row_loss, mode, result):
    """The forward's value from the per-row losses: as they are for 'none', else
    their float64 sum in row order (divided by their number for 'mean')."""
    if mode == "none":
        return row_loss.astype(result, copy=False)
    total = float(np.add.reduce(row_loss.reshape(-1).astype(np.float64, copy=False)))
    return _L._reduce(total, row_loss.size, mode, result)


def _row_grads(grad_output, mode, out_shape, compute):
    """The per-row gradients of the losses (a flat array of ``compute``)."""
    g = _L._grad_output(grad_output, mode, out_shape)
    rows = math.prod(out_shape)
    if mode == "none":
        return np.array(g, compute).reshape(-1)  # (a writable copy: one kernel type)
    if mode == "mean":
        g = g / rows if rows else g * math.nan
    return np.full(rows, g, compute)


# ====================================================== cosine_embedding_loss
def _cosine_rows(a, sa, b, sb, dim, t, st, margin, g, sg, loss, g1, g2, want_grad):
    """Row r: ``loss[r]`` from the cosine of ``a``'s and ``b``'s rows (row strides
    ``sa``/``sb``, 0: one shared row) and the target ``t[r * st]``; with
    ``want_grad``, the gradients of both rows times ``g[r * sg]`` into ``g1``/``g2``."""
    for r in prange(loss.size):
        x1 = a[r * sa:r * sa + dim]
        x2 = b[r * sb:r * sb + dim]
        s = 0.0
        q1 = 0.0
        q2 = 0.0
        for i in range(dim):
            u = float(x1[i])
            v = float(x2[i])
            s += u * v
            q1 += u * u
            q2 += v * v
        q1 += 1e-12  # EPSILON
        q2 += 1e-12
        denom = math.sqrt(q1 * q2)
        cos = s / denom
        tr = t[r * st]
        gc = 0.0
        if tr == 1.0:
            value = 1.0 - cos
            gc = -1.0
        elif tr == -1.0:
            value = cos - margin
            if value >= 0.0:
                gc = 1.0
            elif value < 0.0:
                value = 0.0  # (NaN stays NaN, as PyTorch's clamp_min)
        else:
            value = 0.0
        loss[r] = value
        if want_grad:
            gr = float(g[r * sg]) * gc
            k = gr / denom
            k1 = gr * cos / q1
            k2 = gr * cos / q2
            o1 = g1[r * dim:r * dim + dim]
            o2 = g2[r * dim:r * dim + dim]
            for i in range(dim):
                u = float(x1[i])
                v = float(x2[i])
                o1[i] = k * v - k1 * u
                o2[i] = k * u - k2 * v


_cosine_serial, _cosine_parallel = _config.kernels(_cosine_rows)


def _cosine_check_dims(t_ndim, shape1, shape2):
    if t_ndim not in (0, 1):
        raise ValueError("0D or 1D target tensor expected, multi-target not supported")
    want = 2 if t_ndim == 1 else 1
    if len(shape1) != want or len(shape2) != want:
        raise ValueError(f"{t_ndim}D target tensor expects {want}D input tensors, but found "
                         f"inputs with sizes {list(shape1)} and {list(shape2)}.")


def _cosine_plan(input1, input2, target, margin, size_average, reduce, reduction):
    """The checked arguments: a dict of the kernel's arrays, shapes and dtypes."""
    x1, x2, t = _array(input1, "input1"), _array(input2, "input2"), _array(target, "target")
    _cosine_check_dims(t.ndim, x1.shape, x2.shape)
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=4).mode
    result_dtype(x1.dtype, "input1")
    result_dtype(x2.dtype, "input2")
    if t.dtype.kind not in "biuf":
        raise TypeError(f"target: expected real numbers, got dtype {t.dtype}")
    compute, result = result_dtype(np.result_type(x1.dtype, x2.dtype), "input1")
    try:
        shape = np.broadcast_shapes(x1.shape, x2.shape)
        out_shape = np.broadcast_shapes(shape[:-1], t.shape)
    except ValueError:
        raise ValueError(f"input1 of shape {x1.shape}, input2 of shape {x2.shape} and target "
                         f"of shape {t.shape} do not broadcast together") from None
    full = out_shape + shape[-1:]
    rows, dim = math.prod(out_shape), shape[-1]
    a, sa = _D._rows(x1, full, compute)
    b, sb = _D._rows(x2, full, compute)
    tf = np.array(t, np.float64).reshape(-1)  # (a writable copy: one kernel type)
    return dict(a=a, sa=sa, b=b, sb=sb, t=tf, st=1 if tf.size > 1 else 0, rows=rows,
                dim=dim, full=full, out_shape=out_shape, shapes=(x1.shape, x2.shape),
                compute=compute, result=result, mode=mode, margin=float(margin))


def _cosine_run(plan, g, want_grad):
    """(per-row losses of ``out_shape``, (grad1, grad2) or None)."""
    compute, rows, dim = plan["compute"], plan["rows"], plan["dim"]
    loss = np.empty(rows, compute)
    size = rows * dim if want_grad else 0
    g1, g2 = np.empty(size, compute), np.empty(size, compute)
    if g is None:
        g, sg = np.ones(1, compute), 0
    else:
        sg = 1
    if rows:
        a, b, t = plan["a"], plan["b"], plan["t"]
        key = ("cosine_embedding", compute.char, a.flags.writeable, b.flags.writeable)
        launch(_cosine_serial, _cosine_parallel, key, rows * max(dim, 1), a, plan["sa"], b,
               plan["sb"], dim, t, plan["st"], plan["margin"], g, sg, loss, g1, g2, want_grad)
    loss = loss.reshape(plan["out_shape"])
    if not want_grad:
        return loss, None
    result, full = plan["result"], plan["full"]
    grads = tuple(_D._sum_to(gr.reshape(full), shape, result)
                  for gr, shape in zip((g1, g2), plan["shapes"], strict=True))
    return loss, grads


def cosine_embedding_loss(input1, input2, target, margin=0.0, size_average=None, reduce=None,
                          reduction="mean"):
    r"""Cosine embedding loss of pairs of rows and whether they should be alike.

    .. math::
        \ell_n = \begin{cases} 1 - \cos(x_{1,n}, x_{2,n}) & y_n = 1 \\
                 \max(0, \cos(x_{1,n}, x_{2,n}) - \Delta) & y_n = -1 \\
                 0 & \text{otherwise} \end{cases}

    with :math:`\cos(x_1, x_2) = x_1 \cdot x_2 / \sqrt{(\lVert x_1 \rVert^2 + \epsilon)
    (\lVert x_2 \rVert^2 + \epsilon)}`, :math:`\epsilon = 10^{-12}`.

    Parameters
    ----------
    input1, input2 : array_like
        ``(N, D)`` with a target of shape ``(N,)``, or ``(D,)`` with a 0-d target
        (``ValueError`` otherwise, as PyTorch raises); they broadcast together.
    target : array_like
        1 where the pair should be alike, -1 where it should not.
    margin : float, default 0.0
        :math:`\Delta`.
    size_average, reduce : bool, optional
        Deprecated (``DeprecationWarning``); when given they override
        ``reduction`` as in PyTorch.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'``: the per-pair losses; ``'sum'``: their sum; ``'mean'``: their
        mean.

    Returns
    -------
    ndarray or NumPy scalar
        ``reduction='none'``: the per-pair losses (shape ``(N,)`` or ``()``);
        otherwise a NumPy scalar of the result dtype (float32 stays float32).

    Notes
    -----
    Same as ``torch.nn.functional.cosine_embedding_loss`` (aten's formula, the
    epsilon added to each squared magnitude; targets other than 1 and -1 give
    0). The sums of a row are float64.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x1 = np.array([[1.0, 0.0], [1.0, 1.0]])
    >>> x2 = np.array([[0.0, 1.0], [1.0, 1.0]])
    >>> nbops.cosine_embedding_loss(x1, x2, np.array([1.0, -1.0]), reduction="none")
    array([1., 1.])
    """
    if type(input1) is not np.ndarray and is_dask_array(input1):
        return dask_ops().cosine_embedding_loss(input1, input2, target, margin,
                                                size_average, reduce, reduction)
    if _on_device("cosine_embedding_loss", (input1, input2, target)):
        return _device().cosine(input1, input2, target, margin, size_average, reduce,
                                reduction, None, False)[0]
    plan = _cosine_plan(input1, input2, target, margin, size_average, reduce, reduction)
    loss, _ = _cosine_run(plan, None, False)
    return _total(loss, plan["mode"], plan["result"])


def cosine_embedding_loss_backward(grad_output, input1, input2, target, margin=0.0,
                                   size_average=None, reduce=None, reduction="mean"):
    r"""Backward of :func:`nbops.cosine_embedding_loss`: the gradients of both inputs.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for ``'mean'``/``'sum'``,
        a float array of the per-pair losses' shape for ``'none'``.
    input1, input2, target, margin, size_average, reduce, reduction
        The forward's arguments.

    Returns
    -------
    grad_input1, grad_input2 : ndarray
        The gradients of ``input1`` and ``input2`` (their shapes; an input that
        was broadcast gets its gradient summed back).

    Notes
    -----
    With :math:`g` the gradient of the pair's cosine (:math:`-g_n` for
    :math:`y = 1`, :math:`g_n` for :math:`y = -1` where
    :math:`\cos - \Delta \ge 0`, as ``torch.autograd``, else 0):
    :math:`g (x_2 / d - \cos\, x_1 / m_1)` for ``input1`` and
    :math:`g (x_1 / d - \cos\, x_2 / m_2)` for ``input2``, with
    :math:`m_k = \lVert x_k \rVert^2 + \epsilon` and :math:`d = \sqrt{m_1 m_2}`.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> g1, g2 = nbops.cosine_embedding_loss_backward(
    ...     1.0, np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([1.0]))
    >>> g1, g2
    (array([[ 0., -1.]]), array([[-1.,  0.]]))
    """
    if type(input1) is not np.ndarray and is_dask_array(input1):
        return dask_ops().cosine_embedding_loss_backward(grad_output, input1, input2,
                                                         target, margin, size_average,
                                                         reduce, reduction)
    if _on_device("cosine_embedding_loss", (input1, input2, target)):
        return _device().cosine(input1, input2, target, margin, size_average, reduce,
                                reduction, grad_output, True)[1]
    plan = _cosine_plan(input1, input2, target, margin, size_average, reduce, reduction)
    g = _row_grads(grad_output, plan["mode"], plan["out_shape"], plan["compute"])
    return _cosine_run(plan, g, True)[1]


def cosine_embedding_loss_with_grad(input1, input2, target, margin=0.0, size_average=None,
                                    reduce=None, reduction="mean"):
    """The value of :func:`nbops.cosine_embedding_loss` and the gradients of both
    inputs, from one pass.

    Parameters
    ----------
    input1, input2, target, margin, size_average, reduce, reduction
        As :func:`nbops.cosine_embedding_loss`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly what the forward returns for these arguments.
    grads : tuple
        ``(grad_input1, grad_input2)``, as the backward with ``grad_output=1.0``
        (for ``reduction='none'``, the gradients of the sum of the losses).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> loss, (g1, g2) = nbops.cosine_embedding_loss_with_grad(
    ...     np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([1.0]))
    >>> float(loss), g1
    (1.0, array([[ 0., -1.]]))
    """
    if type(input1) is not np.ndarray and is_dask_array(input1):
        return dask_ops().cosine_embedding_loss_with_grad(input1, input2, target, margin,
                                                          size_average, reduce, reduction)
    if _on_device("cosine_embedding_loss", (input1, input2, target)):
        return _device().cosine(input1, input2, target, margin, size_average, reduce,
                                reduction, None, True)
    plan = _cosine_plan(input1, input2, target, margin, size_average, reduce, reduction)
    mode = plan["mode"]
    g = _row_grads(1.0 if mode != "none" else np.ones(plan["out_shape"], plan["compute"]),
                   mode, plan["out_shape"], plan["compute"])
    loss, grads = _cosine_run(plan, g, True)
    return _total(loss, mode, plan["result"]), grads


# ======================================================== triplet_margin_loss
#: Elements (rows * dim) of a task of :func:`_triplet_grad_rows` (at least a row).
TRIPLET_TASK = 4096

call_task = make_task_call()


@_config.task_function
def _triplet_task(a, sa, pos, sp, neg, sn, dim, p, eps, dp, dn, ds, cp, cn, cs, swap,
                  ga, gp, gn, task):
    """Task ``task`` of :func:`_triplet_grad_rows`: its block of about TRIPLET_TASK
    elements' rows (at least a row)."""
    kind = pnorm_kind(p)
    per = max(1, TRIPLET_TASK // max(dim, 1))
    r0 = task * per
    one = const(eps, 1.0)
    for r in range(r0, min(r0 + per, dp.size)):
        xa = a[r * sa:r * sa + dim]
        xp = pos[r * sp:r * sp + dim]
        xn = neg[r * sn:r * sn + dim]
        oa = ga[r * dim:r * dim + dim]
        op = gp[r * dim:r * dim + dim]
        on = gn[r * dim:r * dim + dim]
        kap = one
        kan = one
        kpn = one
        if kind == PNORM_MAX or kind == PNORM_MIN:  # the number of extreme entries
            kap = const(eps, 0.0)
            kan = const(eps, 0.0)
            kpn = const(eps, 0.0)
            for i in range(dim):
                if pnorm_is_extreme(xa[i] - xp[i] + eps, dp[r]):
                    kap += one
                if pnorm_is_extreme(xa[i] - xn[i] + eps, dn[r]):
                    kan += one
                if swap is not None and pnorm_is_extreme(xp[i] - xn[i] + eps, ds[r]):
                    kpn += one
        for i in range(dim):
            vp = pnorm_backward(xa[i] - xp[i] + eps, dp[r], cp[r], p, kind, kap)
            vn = pnorm_backward(xa[i] - xn[i] + eps, dn[r], cn[r], p, kind, kan)
            oa[i] = vp + vn
            if swap is not None:
                vs = pnorm_backward(xp[i] - xn[i] + eps, ds[r], cs[r], p, kind, kpn)
                op[i] = vs - vp
                on[i] = -vn - vs
            else:
                op[i] = -vp
                on[i] = -vn


def _triplet_tasks(dim, rows):
    """The number of tasks of :func:`_triplet_grad_rows`."""
    per = max(1, TRIPLET_TASK // max(dim, 1))
    return (rows + per - 1) // per


_triplet_tasks_nj = register_jitable(_triplet_tasks)


def _triplet_grad_rows(a, sa, pos, sp, neg, sn, dim, p, eps, dp, dn, ds, cp, cn, cs, swap,
                       ga, gp, gn, n_tasks, task_fn):
    """Row r's gradients of ``cp[r] * ||a - pos + eps||_p + cn[r] * ||a - neg + eps||_p``
    (``+ cs[r] * ||pos - neg + eps||_p`` with ``swap``), given the row norms
    ``dp``, ``dn``, ``ds``, into ``ga``, ``gp``, ``gn`` (rows * dim each); row
    strides as :func:`nbops._ops.distance._pdist`'s. ``swap``: True or None (the
    swap's distance's terms are compiled only for the calls that have them).
    Tasks: ``n_tasks`` (:func:`_triplet_tasks`, counted in Python: see
    :func:`nbops._ops.distance._pdist`) blocks of about TRIPLET_TASK elements'
    rows, each a call of
    :func:`_triplet_task` at ``task_fn`` (its address: see
    :func:`nbops._ops.linear._product`): compiled once, not again in each of the
    parallel kernel's libraries."""
    for task in prange(n_tasks):
        call_task(_triplet_task, task_fn, (a, sa, pos, sp, neg, sn, dim, p, eps, dp, dn, ds, cp,
                                           cn, cs, swap, ga, gp, gn, np.int64(task)))


_triplet_grad_serial, _triplet_grad_parallel = _config.kernels(_triplet_grad_rows)


@_config.core
def _triplet_grad_linked(a, sa, pos, sp, neg, sn, dim, p, eps, dp, dn, ds, cp, cn, cs, swap,
                         ga, gp, gn):
    """:func:`_triplet_grad_rows`'s tasks in order, calling :func:`_triplet_task`
    linked: for the ``@njit`` overloads, which have no task addresses."""
    for task in range(_triplet_tasks_nj(dim, dp.size)):
        _triplet_task(a, sa, pos, sp, neg, sn, dim, p, eps, dp, dn, ds, cp, cn, cs, swap,
                      ga, gp, gn, np.int64(task))

_TRIPLET_NAMES = ("anchor", "positive", "negative")
#: (the three dtypes) -> (compute, result) dtypes, once checked
_TRIPLET_DTYPES = {}


def _triplet_check(ndims, margin):
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    a_dim, p_dim, n_dim = ndims
    if not (a_dim == p_dim and p_dim == n_dim):
        raise ValueError("The anchor, positive, and negative tensors are expected to have the "
                         f"same number of dimensions, but got: anchor {a_dim}D, positive "
                         f"{p_dim}D, and negative {n_dim}D inputs")


def _triplet_plan(anchor, positive, negative, margin, p, eps, swap, mode):
    """The checked arguments: a dict of the kernels' arrays, shapes and dtypes."""
    arrays = [_array(x, name) for x, name in zip((anchor, positive, negative), _TRIPLET_NAMES,
                                                  strict=True)]
    margin = as_param(margin, "margin")
    _triplet_check([x.ndim for x in arrays], margin)
    dtypes = tuple(x.dtype for x in arrays)
    pair = _TRIPLET_DTYPES.get(dtypes)
    if pair is None:
        for x, name in zip(arrays, _TRIPLET_NAMES, strict=True):
            result_dtype(x.dtype, name)
        pair = _TRIPLET_DTYPES[dtypes] = result_dtype(np.result_type(*dtypes), "anchor")
    compute, result = pair
    a_shape = arrays[0].shape
    try:
        shape = a_shape if a_shape == arrays[1].shape == arrays[2].shape else \
            np.broadcast_shapes(*(x.shape for x in arrays))
    except ValueError:
        raise ValueError("anchor of shape {}, positive of shape {} and negative of shape {} "
                         "do not broadcast together".format(*(x.shape for x in arrays))) \
            from None
    plan = _D.pair_plan(shape, shape, p, eps, False)  # pairwise_distance's plans, shared
    flat = [_D._rows(x, plan.shape, compute) for x in arrays]
    return dict(flat=flat, shapes=tuple(x.shape for x in arrays), plan=plan,
                compute=compute, result=result, mode=mode, margin=margin, swap=bool(swap))


def _pdist_rows(plan, compute, first, second):
    (af, sa), (bf, sb) = first, second
    out = np.empty(plan.rows, compute)
    if plan.rows:
        key = ("pdist", compute.char, af.flags.writeable, bf.flags.writeable)
        _D.launch_pdist(key, plan.rows * max(plan.dim, 1), af, sa, bf, sb, plan.dim,
                        compute.type(plan.p), compute.type(plan.eps), out)
    return out


def _triplet_distances(tp):
    """The row distances (anchor-positive, anchor-negative, positive-negative or None)."""
    plan, compute, (fa, fp, fn) = tp["plan"], tp["compute"], tp["flat"]
    dp = _pdist_rows(plan, compute, fa, fp)
    dn = _pdist_rows(plan, compute, fa, fn)
    ds = _pdist_rows(plan, compute, fp, fn) if tp["swap"] else None
    return dp, dn, ds


def _hinge(dp, dn, ds, margin, compute):
    """(margin + dp - min(dn, ds), its clamp at 0): PyTorch's order of operations."""
    neg = dn if ds is None else np.minimum(dn, ds)
    v = (compute.type(margin) + dp) - neg
    return v, np.maximum(v, compute.type(0))


def _hinge_grads(v, dn, ds, g, compute):
    """The gradients of the row distances: (d/d dp, d/d dn, d/d ds or None), for the
    rows' loss gradients ``g``; clamp_min passes where ``v >= 0`` and the swap's
    minimum splits a tie in halves, as ``torch.autograd``."""
    zero = compute.type(0)
    cp = np.where(v >= 0, g, zero).astype(compute, copy=False)
    cneg = -cp
    if ds is None:
        return cp, cneg, None
    half = cneg / compute.type(2)
    tie = dn == ds
    cn = np.where(dn > ds, zero, np.where(tie, half, cneg))
    cs = np.where(dn < ds, zero, np.where(tie, half, cneg))
    return cp, cn, cs


def _triplet_grads(tp, dists, coefficients):
    """The three inputs' gradients (their shapes, the result dtype)."""
    plan, compute, (fa, fp, fn) = tp["plan"], tp["compute"], tp["flat"]
    dp, dn, ds = dists
    cp, cn, cs = coefficients
    size = plan.rows * plan.dim
    grads = [np.zeros(size, compute) for _ in range(3)]
    if size:
        swap = ds is not None
        key = ("triplet_grad", compute.char, fa[0].flags.writeable, fp[0].flags.writeable,
               fn[0].flags.writeable, swap)
        args = (fa[0], fa[1], fp[0], fp[1], fn[0], fn[1], plan.dim, compute.type(plan.p),
                compute.type(plan.eps), dp, dn, ds if swap else dp,
                np.ascontiguousarray(cp, compute), np.ascontiguousarray(cn, compute),
                np.ascontiguousarray(cs if swap else cp, compute), True if swap else None,
                *grads)
        launch(_triplet_grad_serial, _triplet_grad_parallel, key, size, *args,
               _triplet_tasks(plan.dim, plan.rows), task_address(_triplet_task, key, args))
    return tuple(_D._sum_to(gr.reshape(plan.shape), shape if shape else (), tp["result"])
                 .reshape(shape) for gr, shape in zip(grads, tp["shapes"], strict=True))


def _triplet_value(tp):
    dists = _triplet_distances(tp)
    v, loss = _hinge(*dists, tp["margin"], tp["compute"])
    return dists, v, loss


def _triplet_forward(tp):
    _, _, loss = _triplet_value(tp)
    return _total(loss.reshape(tp["plan"].out_shape), tp["mode"], tp["result"])


def _triplet_backward(tp, grad_output):
    dists, v, _ = _triplet_value(tp)
    g = _row_grads(grad_output, tp["mode"], tp["plan"].out_shape, tp["compute"])
    return _triplet_grads(tp, dists, _hinge_grads(v, dists[1], dists[2], g, tp["compute"]))


def _triplet_with_grad(tp):
    dists, v, loss = _triplet_value(tp)
    out_shape, mode = tp["plan"].out_shape, tp["mode"]
    g = _row_grads(1.0 if mode != "none" else np.ones(out_shape, tp["compute"]), mode,
                   out_shape, tp["compute"])
    grads = _triplet_grads(tp, dists, _hinge_grads(v, dists[1], dists[2], g, tp["compute"]))
    return _total(loss.reshape(out_shape), mode, tp["result"]), grads


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    r"""Triplet margin loss: an anchor should be nearer its positive than its negative.

    .. math::
        \ell_n = \max(0, \Delta + d(a_n, p_n) - d(a_n, n_n)),
        \quad d(x, y) = \lVert x - y + \epsilon \rVert_p

    Parameters
    ----------
    anchor, positive, negative : array_like
        ``(N, D)`` or ``(D,)`` (any ``(*, D)``): one number of dimensions
        (``ValueError`` otherwise, as PyTorch raises); they broadcast together.
    margin : float, default 1.0
        :math:`\Delta`, greater than 0.
    p : float, default 2
        The norm's degree, as :func:`nbops.pairwise_distance`.
    eps : float, default 1e-6
        Added to every difference, as :func:`nbops.pairwise_distance`.
    swap : bool, default False
        Use :math:`\min(d(a, n), d(p, n))` as the negative distance (the
        distance swap of Balntas et al.).
    size_average, reduce : bool, optional
        Deprecated (``DeprecationWarning``); when given they override
        ``reduction`` as in PyTorch.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'``: the per-triplet losses; ``'sum'``: their sum; ``'mean'``:
        their mean.

    Returns
    -------
    ndarray or NumPy scalar
        ``reduction='none'``: the per-triplet losses (shape ``(N,)``, ``()`` for
        1-D inputs); otherwise a NumPy scalar of the result dtype (float32 stays
        float32).

    Notes
    -----
    Same as ``torch.nn.functional.triplet_margin_loss`` (the distances
    accumulated in the input dtype, as :func:`nbops.pairwise_distance`).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> a, pos, neg = np.zeros((2, 2)), np.array([[1.0, 0.0], [3.0, 0.0]]), np.ones((2, 2))
    >>> nbops.triplet_margin_loss(a, pos, neg, eps=0.0, reduction="none")
    array([0.58578644, 2.58578644])
    """
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    if type(anchor) is not np.ndarray and is_dask_array(anchor):
        return dask_ops().triplet_margin_loss(anchor, positive, negative, margin, p, eps,
                                              swap, size_average, reduce, reduction)
    if _on_device("triplet_margin_loss", (anchor, positive, negative)):
        return _device().triplet(anchor, positive, negative, margin, p, eps, swap, mode,
                                 None, False)[0]
    return _triplet_forward(_triplet_plan(anchor, positive, negative, margin, p, eps, swap,
                                          mode))


def triplet_margin_loss_backward(grad_output, anchor, positive, negative, margin=1.0, p=2,
                                 eps=1e-6, swap=False, size_average=None, reduce=None,
                                 reduction="mean"):
    r"""Backward of :func:`nbops.triplet_margin_loss`: the gradients of the three inputs.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for ``'mean'``/``'sum'``,
        a float array of the per-triplet losses' shape for ``'none'``.
    anchor, positive, negative, margin, p, eps, swap, size_average, reduce, reduction
        The forward's arguments.

    Returns
    -------
    grad_anchor, grad_positive, grad_negative : ndarray
        The gradients of the three inputs (their shapes; an input that was
        broadcast gets its gradient summed back).

    Notes
    -----
    Where :math:`\Delta + d_p - d_n \ge 0` (at 0 too, as ``torch.autograd``)
    the triplet's gradient :math:`g` flows to :math:`d_p` and :math:`-g` to
    :math:`d_n` (with ``swap``, to the smaller of :math:`d(a, n)` and
    :math:`d(p, n)`, in halves at a tie), then through each distance as
    :func:`nbops.pairwise_distance_backward`.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> ga, gp, gn = nbops.triplet_margin_loss_backward(
    ...     1.0, np.zeros((1, 2)), np.array([[3.0, 4.0]]), np.ones((1, 2)), eps=0.0)
    >>> ga
    array([[ 0.10710678, -0.09289322]])
    """
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    if type(anchor) is not np.ndarray and is_dask_array(anchor):
        return dask_ops().triplet_margin_loss_backward(grad_output, anchor, positive,
                                                       negative, margin, p, eps, swap,
                                                       size_average, reduce, reduction)
    if _on_device("triplet_margin_loss", (anchor, positive, negative)):
        return _device().triplet(anchor, positive, negative, margin, p, eps, swap, mode,
                                 grad_output, True)[1]
    return _triplet_backward(_triplet_plan(anchor, positive, negative, margin, p, eps, swap,
                                           mode), grad_output)


def triplet_margin_loss_with_grad(anchor, positive, negative, margin=1.0, p=2, eps=1e-6,
                                  swap=False, size_average=None, reduce=None,
                                  reduction="mean"):
    """The value of :func:`nbops.triplet_margin_loss` and the gradients of its three
    inputs.

    Parameters
    ----------
    anchor, positive, negative, margin, p, eps, swap, size_average, reduce, reduction
        As :func:`nbops.triplet_margin_loss`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly what the forward returns for these arguments.
    grads : tuple
        ``(grad_anchor, grad_positive, grad_negative)``, as the backward with
        ``grad_output=1.0`` (for ``reduction='none'``, the gradients of the sum of
        the losses).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> loss, (ga, gp, gn) = nbops.triplet_margin_loss_with_grad(
    ...     np.zeros((1, 2)), np.array([[3.0, 4.0]]), np.ones((1, 2)), eps=0.0)
    >>> round(float(loss), 6), gp
    (4.585786, array([[0.6, 0.8]]))
    """
    mode = reduction_plan(reduction, size_average, reduce, stacklevel=3).mode
    if type(anchor) is not np.ndarray and is_dask_array(anchor):
        return dask_ops().triplet_margin_loss_with_grad(anchor, positive, negative, margin,
                                                        p, eps, swap, size_average, reduce,
                                                        reduction)
    if _on_device("triplet_margin_loss", (anchor, positive, negative)):
        return _device().triplet(anchor, positive, negative, margin, p, eps, swap, mode,
                                 None, True)
    return _triplet_with_grad(_triplet_plan(anchor, positive, negative, margin, p, eps, swap,
                                            mode))


# ========================================== triplet_margin_with_distance_loss
def _known_distance(distance_function):
    """``(p, eps)`` of a distance whose gradient nbops has, else None."""
    if distance_function is None or distance_function is _D.pairwise_distance:
        return 2.0, 1e-6
    if isinstance(distance_function, functools.partial) \
            and distance_function.func is _D.pairwise_distance and not distance_function.args \
            and set(distance_function.keywords) <= {"p", "eps", "keepdim"} \
            and not distance_function.keywords.get("keepdim", False):
        kw = distance_function.keywords
        return kw.get("p", 2.0), kw.get("eps", 1e-6)
    from ..nn.distance import PairwiseDistance

    if isinstance(distance_function, PairwiseDistance) and not distance_function.keepdim:
        return distance_function.norm, distance_function.eps
    return None


def _distance_mode(reduction, margin):
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{reduction} is not a valid value for reduction")
    margin = as_param(margin, "margin")
    if margin <= 0:
        raise ValueError(f"margin must be greater than 0, got {margin}")
    return reduction


def _user_distance_value(anchor, positive, negative, distance_function, margin, swap, mode):
    """The loss through a user's ``distance_function`` (CPU, NumPy on its results)."""
    arrays = [_array(x, name) for x, name in zip((anchor, positive, negative), _TRIPLET_NAMES,
                                                  strict=True)]
    _triplet_check([x.ndim for x in arrays], margin)
    a, pos, neg = arrays
    dp = np.asarray(distance_function(a, pos))
    dn = np.asarray(distance_function(a, neg))
    if swap:
        dn = np.minimum(dn, np.asarray(distance_function(pos, neg)))
    dtype = np.result_type(dp.dtype, dn.dtype)
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    loss = np.maximum(dtype.type(margin) + dp.astype(dtype) - dn.astype(dtype), dtype.type(0))
    return _total(np.asarray(loss), mode, dtype)


def _no_gradient(distance_function):
    name = getattr(distance_function, "__qualname__", type(distance_function).__name__)
    return TypeError(f"triplet_margin_with_distance_loss: no gradient is available for the "
                     f"distance_function {name!r}; the backward supports None, "
                     "nbops.pairwise_distance (or a functools.partial of it fixing p and eps) "
                     "and nbops.nn.PairwiseDistance")


def triplet_margin_with_distance_loss(anchor, positive, negative, *, distance_function=None,
                                      margin=1.0, swap=False, reduction="mean"):
    r"""Triplet margin loss over a distance function.

    .. math::
        \ell_n = \max(0, \Delta + d(a_n, p_n) - d(a_n, n_n))

    Parameters
    ----------
    anchor, positive, negative : array_like
        ``(N, D)`` or ``(D,)``, one number of dimensions (``ValueError``
        otherwise, as PyTorch raises).
    distance_function : callable, optional (keyword-only)
        :math:`d(x, y)`, row by row. None: :func:`nbops.pairwise_distance`
        (p = 2, eps = 1e-6). :func:`nbops.pairwise_distance`, a
        ``functools.partial`` of it fixing ``p``/``eps`` and
        ``nbops.nn.PairwiseDistance`` run nbops' kernels on every path and have
        a backward; any other callable (e.g. ``lambda x, y: 1 -
        nbops.cosine_similarity(x, y)``) is called on host arrays for the value
        only (its backward raises ``TypeError``).
    margin : float, default 1.0
        :math:`\Delta`, greater than 0.
    swap : bool, default False
        Use :math:`\min(d(a, n), d(p, n))` as the negative distance.
    reduction : {'mean', 'sum', 'none'}, default 'mean'
        ``'none'``: the per-triplet losses; ``'sum'``: their sum; ``'mean'``:
        their mean.

    Returns
    -------
    ndarray or NumPy scalar
        As :func:`nbops.triplet_margin_loss`.

    Notes
    -----
    Same as ``torch.nn.functional.triplet_margin_with_distance_loss`` (its
    checks: ``'<reduction> is not a valid value for reduction'``, the margin,
    the dimensions).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> a, pos, neg = np.zeros((1, 2)), np.array([[1.0, 0.0]]), np.ones((1, 2))
    >>> float(nbops.triplet_margin_with_distance_loss(
    ...     a, pos, neg, distance_function=lambda x, y: np.abs(x - y).sum(-1)))
    0.0
    """
    mode = _distance_mode(reduction, margin)
    known = _known_distance(distance_function)
    if type(anchor) is not np.ndarray and is_dask_array(anchor):
        return dask_ops().triplet_margin_with_distance_loss(anchor, positive, negative,
                                                            distance_function=distance_function,
                                                            margin=margin, swap=swap,
                                                            reduction=reduction)
    on_device = _on_device("triplet_margin_with_distance_loss", (anchor, positive, negative))
    if known is None:
        if on_device:
            raise TypeError("triplet_margin_with_distance_loss: on CUDA device arrays the "
                            "distance_function must be None, nbops.pairwise_distance or "
                            "nbops.nn.PairwiseDistance (a user callable runs on host arrays)")
        return _user_distance_value(anchor, positive, negative, distance_function,
                                    float(margin), swap, mode)
    if on_device:
        return _device().triplet(anchor, positive, negative, margin, *known, swap, mode,
                                 None, False)[0]
    return _triplet_forward(_triplet_plan(anchor, positive, negative, margin, *known, swap,
                                          mode))


def triplet_margin_with_distance_loss_backward(grad_output, anchor, positive, negative, *,
                                               distance_function=None, margin=1.0,
                                               swap=False, reduction="mean"):
    """Backward of :func:`nbops.triplet_margin_with_distance_loss`: the gradients of the
    three inputs.

    Parameters
    ----------
    grad_output : float or array_like
        The gradient of the forward's output: a real scalar for ``'mean'``/``'sum'``,
        a float array of the per-triplet losses' shape for ``'none'``.
    anchor, positive, negative, distance_function, margin, swap, reduction
        The forward's arguments. ``distance_function`` must be one whose
        gradient nbops has: None, :func:`nbops.pairwise_distance` (or a
        ``functools.partial`` of it fixing ``p``/``eps``) or
        ``nbops.nn.PairwiseDistance``; another callable raises ``TypeError``.

    Returns
    -------
    grad_anchor, grad_positive, grad_negative : ndarray
        As :func:`nbops.triplet_margin_loss_backward`.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> ga, gp, gn = nbops.triplet_margin_with_distance_loss_backward(
    ...     1.0, np.zeros((1, 2)), np.array([[3.0, 4.0]]), np.ones((1, 2)))
    >>> gp.round(6)
    array([[0.6, 0.8]])
    """
    mode = _distance_mode(reduction, margin)
    known = _known_distance(distance_function)
    if known is None:
        raise _no_gradient(distance_function)
    if type(anchor) is not np.ndarray and is_dask_array(anchor):
        return dask_ops().triplet_margin_with_distance_loss_backward(grad_output, anchor,
                                                                     positive, negative,
                                                                     distance_function=distance_function,
                                                                     margin=margin,
                                                                     swap=swap,
                                                                     reduction=reduction)
    if _on_device("triplet_margin_with_distance_loss", (anchor, positive, negative)):
        return _device().triplet(anchor, positive, negative, margin, *known, swap, mode,
                                 grad_output, True)[1]
    return _triplet_backward(_triplet_plan(anchor, positive, negative, margin, *known, swap,
                                           mode), grad_output)


def triplet_margin_with_distance_loss_with_grad(anchor, positive, negative, *,
                                                distance_function=None, margin=1.0,
                                                swap=False, reduction="mean"):
    """The value of :func:`nbops.triplet_margin_with_distance_loss` and the gradients
    of its three inputs.

    Parameters
    ----------
    anchor, positive, negative, distance_function, margin, swap, reduction
        As :func:`nbops.triplet_margin_with_distance_loss_backward`.

    Returns
    -------
    loss : NumPy scalar or ndarray
        Exactly what the forward returns for these arguments.
    grads : tuple
        ``(grad_anchor, grad_positive, grad_negative)``, as the backward with
        ``grad_output=1.0``.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> loss, grads = nbops.triplet_margin_with_distance_loss_with_grad(
    ...     np.zeros((1, 2)), np.array([[3.0, 4.0]]), np.ones((1, 2)))
    >>> len(grads)
    3
    """
    mode = _distance_mode(reduction, margin)
    known = _known_distance(distance_function)
    if known is None:
        raise _no_gradient(distance_function)
    if type(anchor) is not np.ndarray and is_dask_array(anchor):
        return dask_ops().triplet_margin_with_distance_loss_with_grad(anchor, positive,
                                                                      negative,
                                                                      distance_function=distance_function,
                                                                      margin=margin,
                                                                      swap=swap,
                                                                      reduction=reduction)
    if _on_device("triplet_margin_with_distance_loss", (anchor, positive, negative)):
        return _device().triplet(anchor, positive, negative, margin, *known, swap, mode,
                                 None, True)
    return _triplet_with_grad(_triplet_plan(anchor, positive, negative, margin, *known, swap,
                                            mode))


# ------------------------------------------------------------------ @njit
def _nj_float_dtype(name, arrays):
    """The computation dtype's scalar type of the array arguments' types."""
    if not all(isinstance(a, types.Array) for a in arrays):
        raise errors.TypingError(f"nbops: {name} inside @njit takes arrays")
    dtype = np.result_type(*(as_dtype(a.dtype) for a in arrays))
    if dtype.kind != "f":
        dtype = np.dtype(np.float64)
    return dtype.type


def _nj_value(mode, dt):
    """value(row_loss, out_shape) -> the forward's result for ``mode``."""
    def none(row_loss, out_shape):
        return row_loss.reshape(out_shape)

    def total(row_loss, out_shape):
        s = 0.0
        for r in range(row_loss.size):
            s += row_loss[r]
        if mode == "mean":
            s = s / row_loss.size if row_loss.size else np.nan
        return dt(s)

    return register_jitable(none if mode == "none" else total)


def _nj_row_grads(name, mode, dt):
    """rows_g(grad_output, rows) -> the per-row gradients of the losses (``dt``)."""
    message = f"{name}: grad_output must have the shape of the per-row losses (reduction='none')"

    def none_g(grad_output, rows):
        g = np.ascontiguousarray(np.asarray(grad_output)).reshape(-1).astype(dt)
        if g.size != rows:
            raise ValueError(message)
        return g

    def scalar_g(grad_output, rows):
        c = float(grad_output)
        if mode == "mean":
            c = c / rows if rows else np.nan
        return np.full(rows, c, dt)

    return register_jitable(none_g if mode == "none" else scalar_g)


@register_jitable
def _nj_ones(grad_output, rows):
    return np.ones(rows)


@register_jitable
def _nj_rows(shape):
    """The number of rows of an array of ``shape`` (all axes but the last)."""
    rows = 1
    for k in range(len(shape) - 1):
        rows *= shape[k]
    return rows


@register_jitable
def _nj_target_0d(target, rows):
    t = np.empty(1, np.float64)
    t[0] = target[()]
    return t


@register_jitable
def _nj_target_1d(target, rows):
    if target.size != rows:
        raise ValueError("nbops: cosine_embedding_loss: inside @njit the target must have "
                         "one value per row")
    t = np.empty(rows, np.float64)
    for r in range(rows):
        t[r] = target[r]
    return t


def _nj_cosine_setup(input1, input2, target, size_average, reduce, reduction):
    mode = NJ.reduction_plan(size_average, reduce, reduction).mode
    dt = _nj_float_dtype("cosine_embedding_loss", (input1, input2))
    if not isinstance(target, types.Array):
        raise errors.TypingError("nbops: cosine_embedding_loss inside @njit takes arrays")
    try:
        _cosine_check_dims(target.ndim, (0,) * input1.ndim, (0,) * input2.ndim)
    except ValueError as exc:
        raise errors.TypingError(f"nbops: cosine_embedding_loss: {exc}") from None
    return mode, dt, target.ndim


def _nj_cosine_body(dt, t_ndim, want_grad):
    """body(input1, input2, target, margin, g) -> (row losses, grad1, grad2 (flat))."""
    kernel = _cosine_serial
    to_rows = _nj_target_0d if t_ndim == 0 else _nj_target_1d

    def body(input1, input2, target, margin, g):
        if input1.shape != input2.shape:
            raise ValueError("nbops: cosine_embedding_loss: inside @njit input1 and input2 "
                             "must have one shape")
        dim = input1.shape[-1]
        rows = 1 if t_ndim == 0 else input1.shape[0]
        a = np.ascontiguousarray(input1).astype(dt).reshape(-1)
        b = np.ascontiguousarray(input2).astype(dt).reshape(-1)
        t = to_rows(target, rows)
        loss = np.empty(rows, dt)
        size = rows * dim if want_grad else 0
        g1 = np.empty(size, dt)
        g2 = np.empty(size, dt)
        gd = g.astype(dt)
        if rows:
            kernel(a, dim, b, dim, dim, t, 1, float(margin), gd, 1, loss, g1, g2, want_grad)
        return loss, g1, g2

    return register_jitable(body)


@overload(cosine_embedding_loss, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _cosine_embedding_loss_njit(input1, input2, target, margin=0.0, size_average=None,
                                reduce=None, reduction="mean"):
    mode, dt, t_ndim = _nj_cosine_setup(input1, input2, target, size_average, reduce,
                                        reduction)
    body, value = _nj_cosine_body(dt, t_ndim, False), _nj_value(mode, dt)

    def impl(input1, input2, target, margin=0.0, size_average=None, reduce=None,
             reduction="mean"):
        rows = 1 if t_ndim == 0 else input1.shape[0]
        loss = body(input1, input2, target, margin, np.ones(rows))[0]
        return value(loss, input1.shape[:-1])

    return impl


@overload(cosine_embedding_loss_backward, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _cosine_embedding_loss_backward_njit(grad_output, input1, input2, target, margin=0.0,
                                         size_average=None, reduce=None, reduction="mean"):
    mode, dt, t_ndim = _nj_cosine_setup(input1, input2, target, size_average, reduce,
                                        reduction)
    body = _nj_cosine_body(dt, t_ndim, True)
    rows_g = _nj_row_grads("nbops: cosine_embedding_loss_backward", mode, dt)

    def impl(grad_output, input1, input2, target, margin=0.0, size_average=None, reduce=None,
             reduction="mean"):
        rows = 1 if t_ndim == 0 else input1.shape[0]
        _, g1, g2 = body(input1, input2, target, margin, rows_g(grad_output, rows))
        return g1.reshape(input1.shape), g2.reshape(input2.shape)

    return impl


@overload(cosine_embedding_loss_with_grad, prefer_literal=True)
@NJ.plan_errors_at_run_time
def _cosine_embedding_loss_with_grad_njit(input1, input2, target, margin=0.0,
                                          size_average=None, reduce=None, reduction="mean"):
    mode, dt, t_ndim = _nj_cosine_setup(input1, input2, target, size_average, reduce,
                                        reduction)
    body, value = _nj_cosine_body(dt, t_ndim, True), _nj_value(mode, dt)
    rows_g = _nj_row_grads("nbops: cosine_embedding_loss_with_grad", mode, dt) \
        if mode != "none" else _nj_ones

    def impl(input1, input2, target, margin=0.0, size_average=None, reduce=None,
             reduction="mean"):
        rows = 1 if t_ndim == 0 else input1.shape[0]
        loss, g1, g2 = body(input1, input2, target, margin, rows_g(1.0, rows))
        return value(loss, input1.shape[:-1]), (g1.reshape(input1.shape),
                                                g2.reshape(input2.shape))

    return impl


def _nj_triplet_setup(name, anchor, positive, negative):
    dt = _nj_float_dtype(name, (anchor, positive, negative))
    if not anchor.ndim == positive.ndim == negative.ndim or anchor.ndim < 1:
        raise errors.TypingError(f"nbops: {name}: The anchor, positive, and negative tensors "
                                 "are expected to have the same number of dimensions (>= 1 "
                                 "inside @njit)")
    return dt


def _nj_triplet_body(name, dt, want_grad):
    """body(anchor, positive, negative, margin, p, eps, swap, g) ->
    (row losses, (grad_anchor, grad_positive, grad_negative) flat)."""
    pdist, grad_kernel = _D.pdist_linked, _triplet_grad_linked
    shape_message = f"nbops: {name}: inside @njit anchor, positive and negative must have one shape"

    def body(anchor, positive, negative, margin, p, eps, swap, g):
        if margin <= 0:
            raise ValueError("margin must be greater than 0")
        if anchor.shape != positive.shape or anchor.shape != negative.shape:
            raise ValueError(shape_message)
        dim = anchor.shape[-1]
        rows = _nj_rows(anchor.shape)
        pp, ee = dt(p), dt(eps)
        if dim == 0 and rows > 0 and (pp < 0 or np.isinf(pp)):
            raise ValueError("pairwise_distance: p = inf, -inf or negative p on an empty "
                             "last axis")
        a = np.ascontiguousarray(anchor).astype(dt).reshape(-1)
        ps = np.ascontiguousarray(positive).astype(dt).reshape(-1)
        ng = np.ascontiguousarray(negative).astype(dt).reshape(-1)
        dp = np.empty(rows, dt)
        dn = np.empty(rows, dt)
        ds = np.empty(rows if swap else 0, dt)
        if rows:
            pdist(a, dim, ps, dim, dim, pp, ee, dp)
            pdist(a, dim, ng, dim, dim, pp, ee, dn)
            if swap:
                pdist(ps, dim, ng, dim, dim, pp, ee, ds)
        loss = np.empty(rows, dt)
        cp = np.zeros(rows, dt)
        cn = np.zeros(rows, dt)
        cs = np.zeros(rows, dt)
        zero = dt(0.0)
        for r in range(rows):
            neg = dn[r]
            if swap and (ds[r] < neg or ds[r] != ds[r]):
                neg = ds[r]
            v = (dt(margin) + dp[r]) - neg
            loss[r] = v if (v > zero or v != v) else zero
            if want_grad and v >= zero:
                gr = dt(g[r])
                cp[r] = gr
                if not swap:
                    cn[r] = -gr
                elif dn[r] == ds[r]:
                    cn[r] = -gr / dt(2.0)
                    cs[r] = -gr / dt(2.0)
                elif dn[r] < ds[r]:
                    cn[r] = -gr
                elif dn[r] > ds[r]:
                    cs[r] = -gr
                else:  # a NaN: both, as torch.autograd's minimum
                    cn[r] = -gr
                    cs[r] = -gr
        size = rows * dim if want_grad else 0
        ga = np.zeros(size, dt)
        gp = np.zeros(size, dt)
        gn = np.zeros(size, dt)
        if size and swap:
            grad_kernel(a, dim, ps, dim, ng, dim, dim, pp, ee, dp, dn, ds, cp, cn, cs, True,
                        ga, gp, gn)
        elif size:
            grad_kernel(a, dim, ps, dim, ng, dim, dim, pp, ee, dp, dn, dp, cp, cn, cs, None,
                        ga, gp, gn)
        return loss, ga, gp, gn

    return register_jitable(body)


def _nj_triplet_overloads(name, with_distance):
    """Register the forward, backward and _with_grad overloads of ``name``."""
    forward, backward, with_grad = (globals()[name + s] for s in ("", "_backward",
                                                                   "_with_grad"))

    def check_distance(distance_function):
        if not NJ.is_none(distance_function):
            raise errors.TypingError(f"nbops: {name} inside @njit: distance_function must be "
                                     "None (pairwise_distance); pass other distances outside "
                                     "@njit")

    def setup(anchor, positive, negative, reduction, size_average=None, reduce=None):
        dt = _nj_triplet_setup(name, anchor, positive, negative)
        mode = NJ.reduction_plan(size_average, reduce, reduction).mode
        return dt, mode

    if with_distance:
        @overload(forward, prefer_literal=True)
        @NJ.plan_errors_at_run_time
        def _forward(anchor, positive, negative, distance_function=None, margin=1.0,
                     swap=False, reduction="mean"):
            check_distance(distance_function)
            dt, mode = setup(anchor, positive, negative, reduction)
            body, value = _nj_triplet_body(name, dt, False), _nj_value(mode, dt)

            def impl(anchor, positive, negative, distance_function=None, margin=1.0,
                     swap=False, reduction="mean"):
                loss = body(anchor, positive, negative, margin, 2.0, 1e-6, swap,
                            np.ones(0))[0]
                return value(loss, anchor.shape[:-1])

            return impl

        @overload(backward, prefer_literal=True)
        @NJ.plan_errors_at_run_time
        def _backward(grad_output, anchor, positive, negative, distance_function=None,
                      margin=1.0, swap=False, reduction="mean"):
            check_distance(distance_function)
            dt, mode = setup(anchor, positive, negative, reduction)
            body = _nj_triplet_body(name, dt, True)
            rows_g = _nj_row_grads(f"nbops: {name}_backward", mode, dt)

            def impl(grad_output, anchor, positive, negative, distance_function=None,
                     margin=1.0, swap=False, reduction="mean"):
                rows = _nj_rows(anchor.shape)
                _, ga, gp, gn = body(anchor, positive, negative, margin, 2.0, 1e-6, swap,
                                     rows_g(grad_output, rows))
                return (ga.reshape(anchor.shape), gp.reshape(anchor.shape),
                        gn.reshape(anchor.shape))

            return impl

        @overload(with_grad, prefer_literal=True)
        @NJ.plan_errors_at_run_time
        def _with_grad(anchor, positive, negative, distance_function=None, margin=1.0,
                       swap=False, reduction="mean"):
            check_distance(distance_function)
            dt, mode = setup(anchor, positive, negative, reduction)
            body, value = _nj_triplet_body(name, dt, True), _nj_value(mode, dt)
            rows_g = _nj_row_grads(f"nbops: {name}_with_grad", mode, dt) \
                if mode != "none" else _nj_ones

            def impl(anchor, positive, negative, distance_function=None, margin=1.0,
                     swap=False, reduction="mean"):
                rows = _nj_rows(anchor.shape)
                loss, ga, gp, gn = body(anchor, positive, negative, margin, 2.0, 1e-6, swap,
                                        rows_g(1.0, rows))
                return value(loss, anchor.shape[:-1]), (ga.reshape(anchor.shape),
                                                        gp.reshape(anchor.shape),
                                                        gn.reshape(anchor.shape))

            return impl
        return

    @overload(forward, prefer_literal=True)
    @NJ.plan_errors_at_run_time
    def _tforward(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                  size_average=None, reduce=None, reduction="mean"):
        dt, mode = setup(anchor, positive, negative, reduction, size_average, reduce)
        body, value = _nj_triplet_body(name, dt, False), _nj_value(mode, dt)

        def impl(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                 size_average=None, reduce=None, reduction="mean"):
            loss = body(anchor, positive, negative, margin, p, eps, swap, np.ones(0))[0]
            return value(loss, anchor.shape[:-1])

        return impl

    @overload(backward, prefer_literal=True)
    @NJ.plan_errors_at_run_time
    def _tbackward(grad_output, anchor, positive, negative, margin=1.0, p=2, eps=1e-6,
                   swap=False, size_average=None, reduce=None, reduction="mean"):
        dt, mode = setup(anchor, positive, negative, reduction, size_average, reduce)
        body = _nj_triplet_body(name, dt, True)
        rows_g = _nj_row_grads(f"nbops: {name}_backward", mode, dt)

        def impl(grad_output, anchor, positive, negative, margin=1.0, p=2, eps=1e-6,
                 swap=False, size_average=None, reduce=None, reduction="mean"):
            rows = _nj_rows(anchor.shape)
            _, ga, gp, gn = body(anchor, positive, negative, margin, p, eps, swap,
                                 rows_g(grad_output, rows))
            return (ga.reshape(anchor.shape), gp.reshape(anchor.shape),
                    gn.reshape(anchor.shape))

        return impl

    @overload(with_grad, prefer_literal=True)
    @NJ.plan_errors_at_run_time
    def _twith_grad(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                    size_average=None, reduce=None, reduction="mean"):
        dt, mode = setup(anchor, positive, negative, reduction, size_average, reduce)
        body, value = _nj_triplet_body(name, dt, True), _nj_value(mode, dt)
        rows_g = _nj_row_grads(f"nbops: {name}_with_grad", mode, dt) \
            if mode != "none" else _nj_ones

        def impl(anchor, positive, negative, margin=1.0, p=2, eps=1e-6, swap=False,
                 size_average=None, reduce=None, reduction="mean"):
            rows = _nj_rows(anchor.shape)
            loss, ga, gp, gn = body(anchor, positive, negative, margin, p, eps, swap,
                                    rows_g(1.0, rows))
            return value(loss, anchor.shape[:-1]), (ga.reshape(anchor.shape),
                                                    gp.reshape(anchor.shape),
                                                    gn.reshape(anchor.shape))

        return impl


_nj_triplet_overloads("triplet_margin_loss", False)
_nj_triplet_overloads("triplet_margin_with_distance_loss", True)
