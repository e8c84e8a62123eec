"""Local response normalization: ``nbops.local_response_norm`` and its backward.

The input ``(N, C, *)`` is read as ``(N, C, S)`` (``S`` the product of the
trailing dimensions). Each value is divided by a power of the mean square over
a window of ``size`` channels around its own, as PyTorch pads it: ``size // 2``
channels before, ``(size - 1) // 2`` after, the channels past either end counted
as zeros (the mean always divides by ``size``)::

    W[c]   = sum of x[c']**2 over  c - size // 2 <= c' <= c + (size - 1) // 2
    d[c]   = W[c] * alpha / size + k
    out[c] = x[c] / d[c]**beta

Window sums
-----------
For each position the window sums are a running float64 sum over the channels
(one square added and one removed per channel: O(C) per position whatever
``size``). A window holding an inf or a NaN makes the running sum non-finite;
the sum is then taken anew over the window's channels, so the channels after
it get PyTorch's values again. Positions are independent, each summed by one
thread in channel order: the results are bit-identical on any thread count.

Backward
--------
With ``g`` the gradient of the output, ``p[c] = d[c]**-beta`` and ``q[c] =
g[c] x[c] p[c] / d[c]``, channel ``m`` lies in the windows of the channels ``c``
with ``m - (size - 1) // 2 <= c <= m + size // 2`` (the window mirrored), so::

    grad_input[m] = g[m] p[m] - 2 alpha beta / size * x[m] * sum of q[c] over them

a second running float64 sum over the channels.

Kernels
-------
A task takes a block of positions (of one batch item, or consecutive batch
rows for inputs of one position per channel, ``(N, C, 1)``), copies it
channel-major into float64 scratch (exactly), runs :func:`_forward_block` or
:func:`_backward_block` on it and writes the block back. The block functions
see float64 ``(C, m)`` arrays only: one compiled form for every dtype, shape
and kernel (the first call compiles less). The window sums slide over
``(C + 1, m)`` rows whose last row is zeros (the channel that enters or leaves
where there is none), so the inner loops have no branches.
"""

import math
import operator

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable

from .. import _config
from .._launch import launch, task_address
from .._numba_internals import make_task_call
from .._validate import (
    as_array,
    as_param,
    check_out,
    dask_ops,
    deliver,
    is_dask_array,
    is_device_array,
    result_dtype,
)
from ..cuda import ops as _cuda
from .elementwise import _float_array

#: Target number of (channel, position) values a task works on: its positions
#: are a block of ``_TASK // C`` of them (at least one), fixed by the shape.
_TASK = 4096


@register_jitable
def _plan(n_batch, n_ch, n_pos):
    """(tasks, positions per task): a cut fixed by the shape alone. With several
    positions per channel a task's positions lie in one batch item; with one
    (``(N, C, 1)``) they are consecutive batch rows."""
    per = max(1, _TASK // max(n_ch, 1))
    if n_pos == 1:
        return (n_batch + per - 1) // per, per
    per = min(per, n_pos)
    return n_batch * ((n_pos + per - 1) // per), per


@register_jitable
def _block(task, per, n_batch, n_pos):
    """(batch index, position, count, batch step, position step) of a task's
    positions: ``(n0 + j * dn, s0 + j * ds)`` for ``j < m`` (see :func:`_plan`)."""
    if n_pos == 1:
        n0 = task * per
        return n0, 0, min(n_batch, n0 + per) - n0, 1, 0
    blocks = (n_pos + per - 1) // per
    s0 = (task % blocks) * per
    return task // blocks, s0, min(n_pos, s0 + per) - s0, 0, 1


@register_jitable
def _gather(a, n0, s0, m, dn, ds, dst):
    """``dst[c, j] = a[n0 + j * dn, c, s0 + j * ds]`` (float64, exact)."""
    for c in range(a.shape[1]):
        for j in range(m):
            dst[c, j] = a[n0 + j * dn, c, s0 + j * ds]


@register_jitable
def _scatter(src, n0, s0, m, dn, ds, out):
    """``out[n0 + j * dn, c, s0 + j * ds] = src[c, j]`` (rounded to ``out``'s dtype)."""
    for c in range(out.shape[1]):
        for j in range(m):
            out[n0 + j * dn, c, s0 + j * ds] = src[c, j]


@register_jitable
def _slide(v, acc, c, before, after):
    """Move the running window sums ``acc[j]`` over ``v``'s rows (``(C + 1, m)``,
    row ``C`` zeros) from channel ``c - 1``'s window to channel ``c``'s, ``c -
    before .. c + after``: ``v[c + after]`` in, ``v[c - before - 1]`` out (the
    zero row where that channel does not exist: adding or subtracting 0.0
    changes no sum, which is never -0.0). A non-finite sum (an inf or NaN
    entered, left or stays in the window) is summed anew over the window."""
    n_ch = v.shape[0] - 1
    m = acc.size
    add = c + after
    rem = c - before - 1
    va = v[add if add < n_ch else n_ch]
    vr = v[rem if rem >= 0 else n_ch]
    bad = False
    for j in range(m):
        a = acc[j] + va[j]
        a -= vr[j]
        acc[j] = a
        bad |= not math.isfinite(a)
    if bad:
        for j in range(m):
            if not math.isfinite(acc[j]):
                a = 0.0
                for c2 in range(max(c - before, 0), min(c + after, n_ch - 1) + 1):
                    a += v[c2, j]
                acc[j] = a


@register_jitable
def _window_start(v, acc, after):
    """``acc[j]``: the sum of ``v[c, j]`` over channels ``0 .. after - 1`` in channel
    order (the window of channel -1, which :func:`_slide` moves to channel 0)."""
    acc[:] = 0.0
    for c in range(min(after, v.shape[0] - 1)):
        for j in range(acc.size):
            acc[j] += v[c, j]


@register_jitable
def _squares(x, sq):
    """``sq[c, j] = x[c, j] ** 2`` and the zero row ``sq[C]``."""
    n_ch, m = x.shape
    for c in range(n_ch):
        for j in range(m):
            t = x[c, j]
            sq[c, j] = t * t
    sq[n_ch] = 0.0


@register_jitable
def _forward_block(x, sq, o, acc, size, alpha, beta, k):
    """``o = x / (W * alpha / size + k)**beta`` (module docstring) of a block of
    positions: ``x``, ``o``: ``(C, m)``, ``sq``: ``(C + 1, m)`` scratch, ``acc``:
    ``(m,)``; float64 (so one compiled form serves every dtype and kernel).

    ``d**-beta``: PyTorch's default beta = 0.75 with two square roots (a loop
    that vectorizes). A window sum below 0 (rounding) counts as 0."""
    n_ch, m = x.shape
    scale = alpha / size
    _squares(x, sq)
    _window_start(sq, acc, (size - 1) // 2)
    for c in range(n_ch):
        _slide(sq, acc, c, size // 2, (size - 1) // 2)
        xc = x[c]
        oc = o[c]
        if beta == 0.75:
            for j in range(m):
                a = acc[j]
                if a < 0.0:
                    a = 0.0
                acc[j] = a
                r = math.sqrt(a * scale + k)
                oc[j] = xc[j] * (1.0 / (r * math.sqrt(r)))
        else:
            for j in range(m):
                a = acc[j]
                if a < 0.0:
                    a = 0.0
                acc[j] = a
                oc[j] = xc[j] * (a * scale + k) ** -beta


@register_jitable
def _backward_block(g, x, sq, p, q, acc, size, alpha, beta, k):
    """grad_input (module docstring) of a block of positions into ``sq[:C]``:
    ``g``, ``x``, ``p``: ``(C, m)``, ``sq``, ``q``: ``(C + 1, m)`` scratch,
    ``acc``: ``(m,)``; float64. ``p = d**-beta``, ``q = g x d**(-beta - 1)``."""
    n_ch, m = x.shape
    before = size // 2
    after = (size - 1) // 2
    scale = alpha / size
    coef = 2.0 * scale * beta
    _squares(x, sq)
    _window_start(sq, acc, after)
    for c in range(n_ch):
        _slide(sq, acc, c, before, after)
        pc = p[c]
        qc = q[c]
        xc = x[c]
        gc = g[c]
        if beta == 0.75:
            for j in range(m):
                a = acc[j]
                if a < 0.0:
                    a = 0.0
                acc[j] = a
                r = math.sqrt(a * scale + k)
                pc[j] = 1.0 / (r * math.sqrt(r))
        else:
            for j in range(m):
                a = acc[j]
                if a < 0.0:
                    a = 0.0
                acc[j] = a
                pc[j] = (a * scale + k) ** -beta
        for j in range(m):
            qc[j] = gc[j] * xc[j] * pc[j] / (acc[j] * scale + k)
    # the mirrored window: channels c - after .. c + before
    q[n_ch] = 0.0
    _window_start(q, acc, before)
    for c in range(n_ch):
        _slide(q, acc, c, after, before)
        pc = p[c]
        xc = x[c]
        gc = g[c]
        oc = sq[c]
        for j in range(m):
            oc[j] = gc[j] * pc[j] - coef * xc[j] * acc[j]


@_config.core
def _forward_task(x, out, task, per, size, alpha, beta, k):
    """One task of :func:`_forward`: its block of positions (:func:`_block`)
    copied channel-major into float64 (exactly), :func:`_forward_block`, and
    the block written back."""
    n_batch, n_ch, n_pos = x.shape
    n0, s0, m, dn, ds = _block(task, per, n_batch, n_pos)
    buf = np.empty((3 * n_ch + 2, m))  # x, out: C rows; squares: C + 1; window sums
    xb = buf[:n_ch]
    ob = buf[n_ch:2 * n_ch]
    _gather(x, n0, s0, m, dn, ds, xb)
    _forward_block(xb, buf[2 * n_ch:3 * n_ch + 1], ob, buf[3 * n_ch + 1], size, alpha, beta, k)
    _scatter(ob, n0, s0, m, dn, ds, out)


def _forward(x, size, alpha, beta, k, out, tasks, per):
    """``out = x / (W * alpha / size + k)**beta`` (module docstring) for ``x``,
    ``out``: ``(N, C, S)`` C-contiguous arrays of one float dtype; ``tasks``,
    ``per``: :func:`_plan`'s. The prange body is one call (little IR for
    Numba's parfor passes to copy and type)."""
    for task in prange(tasks):
        _forward_task(x, out, np.int64(task), per, size, alpha, beta, k)


_forward_serial, _forward_parallel = _config.kernels(_forward, parallel_calls=("_forward_task",))


@_config.core
def _backward_task(g, x, out, task, per, size, alpha, beta, k):
    """One task of :func:`_backward` (as :func:`_forward_task`)."""
    n_batch, n_ch, n_pos = x.shape
    n0, s0, m, dn, ds = _block(task, per, n_batch, n_pos)
    buf = np.empty((5 * n_ch + 3, m))  # g, x, p: C rows; squares, q: C + 1; window sums
    gb = buf[:n_ch]
    xb = buf[n_ch:2 * n_ch]
    sq = buf[2 * n_ch:3 * n_ch + 1]
    _gather(g, n0, s0, m, dn, ds, gb)
    _gather(x, n0, s0, m, dn, ds, xb)
    _backward_block(gb, xb, sq, buf[3 * n_ch + 1:4 * n_ch + 1], buf[4 * n_ch + 1:5 * n_ch + 2],
                    buf[5 * n_ch + 2], size, alpha, beta, k)
    _scatter(sq, n0, s0, m, dn, ds, out)


@_config.task_function
def _backward_by_address(g, x, out, per, size, alpha, beta, k, task):
    """:func:`_backward_task` (IR-inlined) as the task function that
    :func:`_backward` calls by its address."""
    _backward_task(g, x, out, task, per, size, alpha, beta, k)


call_task = make_task_call()


def _backward(g, x, size, alpha, beta, k, out, tasks, per, task_fn):
    """grad_input (module docstring) into ``out``; ``g``, ``x``, ``out``: ``(N, C,
    S)`` C-contiguous arrays of one float dtype (tasks as in :func:`_forward`).
    Each task is a call of :func:`_backward_by_address` at ``task_fn`` (its
    address: see :func:`nbops._ops.linear._product`): compiled once, not again
    in each of the parallel kernel's libraries."""
    for task in prange(tasks):
        call_task(_backward_by_address, task_fn,
                  (g, x, out, per, size, alpha, beta, k, np.int64(task)))


_backward_serial, _backward_parallel = _config.kernels(_backward)


@_config.core
def _backward_linked(g, x, size, alpha, beta, k, out, tasks, per):
    """:func:`_backward`'s tasks in order (its task linked): for the ``@njit``
    overload, which has no task addresses."""
    for task in range(tasks):
        _backward_task(g, x, out, np.int64(task), per, size, alpha, beta, k)


# --------------------------------------------------------------------------- #
# argument checks
# --------------------------------------------------------------------------- #


def _check_size(size):
    """``size`` as a positive int (a TypeError or ValueError naming it)."""
    if isinstance(size, (bool, np.bool_)):
        raise TypeError(f"size must be an int, got {size!r}")
    try:
        n = operator.index(size)
    except TypeError:
        raise TypeError(f"size must be an int, got {type(size).__name__} {size!r}") from None
    if n < 1:
        raise ValueError(f"size must be at least 1 (the number of channels of the window), "
                         f"got {n}")
    return n


def _check_ndim(shape, name="input"):
    """(N, C, S) of an input of at least 3 dimensions (PyTorch's ValueError otherwise)."""
    if len(shape) < 3:
        raise ValueError(f"Expected 3D or higher dimensionality {name} (got {len(shape)} "
                         "dimensions)")
    return shape[0], shape[1], math.prod(shape[2:])


def _params(size, alpha, beta, k):
    return (_check_size(size), as_param(alpha, "alpha"), as_param(beta, "beta"),
            as_param(k, "k"))


# --------------------------------------------------------------------------- #
# public functions
# --------------------------------------------------------------------------- #


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0, *, out=None):
    r"""Local response normalization across channels (axis 1).

    .. math:: y_c = x_c \left(k + \frac{\alpha}{n} \sum_{c'} x_{c'}^2\right)^{-\beta}

    with the sum over the window of ``n = size`` channels ``c - n // 2 <= c' <=
    c + (n - 1) // 2`` (channels past either end count as zeros).

    Parameters
    ----------
    input : array_like
        ``(N, C, *)``: at least 3 dimensions, the channels on axis 1; any memory
        layout.
    size : int
        The number of channels of the window (at least 1).
    alpha : float, default 1e-4
        Multiplies the window's mean square.
    beta : float, default 0.75
        The exponent.
    k : float, default 1.0
        Added to the scaled mean square.
    out : ndarray, optional, keyword-only
        Written with the result (the input's shape and the result dtype).

    Returns
    -------
    ndarray of the input's shape (float32 stays float32; integers compute in
    float64).

    Notes
    -----
    Same as ``torch.nn.functional.local_response_norm`` (its zero padding and
    average pooling over ``size`` channels). The window sums are running
    float64 sums over the channels (O(C) per position for any ``size``), one
    thread per position: bit-identical on any thread count.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.arange(1.0, 5.0).reshape(1, 4, 1)
    >>> nbops.local_response_norm(x, 2, alpha=1.0)[0, :, 0]
    array([0.73778795, 0.78158994, 0.66195018, 0.56794943])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().local_response_norm(input, size, alpha, beta, k, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().local_response_norm(input, size, alpha, beta, k, out=out)
    x = as_array(input)
    compute, result = result_dtype(x.dtype)
    n_batch, n_ch, n_pos = _check_ndim(x.shape)
    size, alpha, beta, k = _params(size, alpha, beta, k)
    if out is not None:
        check_out(out, x.shape, result)
    src = np.ascontiguousarray(x, dtype=compute).reshape(n_batch, n_ch, n_pos)
    direct = (out is not None and result == compute and out.flags.c_contiguous
              and not np.may_share_memory(out, src))
    res = out if direct else np.empty(x.shape, compute)
    if x.size:
        launch(_forward_serial, _forward_parallel, ("local_response_norm", compute.char),
               x.size, src, size, alpha, beta, k, res.reshape(n_batch, n_ch, n_pos),
               *_plan(n_batch, n_ch, n_pos))
    return deliver(res, out, direct, compute, result)


def local_response_norm_backward(grad_output, input, size, alpha=1e-4, beta=0.75, k=1.0, *,
                                 out=None):
    r"""Gradient of :func:`local_response_norm` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to ``local_response_norm``'s
        output (the input's shape; a float array).
    input : array_like
        The forward's input ``(N, C, *)``.
    size, alpha, beta, k
        The forward's parameters.
    out : ndarray, optional, keyword-only
        Written with ``grad_input`` (the input's shape and the result dtype).

    Returns
    -------
    ndarray
        ``grad_input``, of the input's shape, in the result dtype of
        ``grad_output`` and ``input`` (float32 stays float32).

    Notes
    -----
    With :math:`d_c = k + \frac{\alpha}{n} \sum_{c' \in w(c)} x_{c'}^2` the
    forward's denominators (before the power) and :math:`g` the gradient of
    the output:

    .. math::

        \frac{\partial L}{\partial x_m} = g_m d_m^{-\beta}
        - \frac{2 \alpha \beta}{n} x_m \sum_{c:\, m \in w(c)} g_c x_c d_c^{-\beta - 1},

    the channels ``c`` whose window holds ``m`` being ``m - (n - 1) // 2 <= c
    <= m + n // 2``; as ``torch.autograd`` differentiates PyTorch's forward.
    Both window sums are running float64 sums over the channels, one thread
    per position: bit-identical on any thread count.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.arange(1.0, 5.0).reshape(1, 4, 1)
    >>> g = np.array([0.0, 1.0, 0.0, 0.0]).reshape(1, 4, 1)
    >>> nbops.local_response_norm_backward(g, x, 2, alpha=1.0)[0, :, 0]
    array([-0.16748356,  0.05582785,  0.        ,  0.        ])
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().local_response_norm_backward(grad_output, input, size, alpha, beta, k,
                                                    out=out)
    if is_dask_array(grad_output) or is_dask_array(input):
        return dask_ops().local_response_norm_backward(grad_output, input, size, alpha, beta,
                                                       k, out=out)
    g = _float_array(grad_output, "grad_output")
    x = as_array(input, "input")
    compute, result = result_dtype(np.result_type(g.dtype, result_dtype(x.dtype)[1]))
    n_batch, n_ch, n_pos = _check_ndim(x.shape)
    if g.shape != x.shape:
        raise ValueError(f"grad_output has shape {g.shape} but input has shape {x.shape}: "
                         "they must be the same (the forward's output shape)")
    size, alpha, beta, k = _params(size, alpha, beta, k)
    if out is not None:
        check_out(out, x.shape, result)
    shape3 = (n_batch, n_ch, n_pos)
    gs = np.ascontiguousarray(g, dtype=compute).reshape(shape3)
    xs = np.ascontiguousarray(x, dtype=compute).reshape(shape3)
    direct = (out is not None and out.dtype == compute and out.flags.c_contiguous
              and not np.may_share_memory(out, gs) and not np.may_share_memory(out, xs))
    res = out if direct else np.empty(x.shape, compute)
    if x.size:
        key = ("local_response_norm_backward", compute.char)
        tasks, per = _plan(n_batch, n_ch, n_pos)
        out3 = res.reshape(shape3)
        launch(_backward_serial, _backward_parallel, key, x.size, gs, xs, size, alpha, beta, k,
               out3, tasks, per, task_address(_backward_by_address, key,
                                              (gs, xs, out3, per, size, alpha, beta, k)))
    return deliver(res, out, direct, compute, result)


__all__ = ["local_response_norm", "local_response_norm_backward"]


# --------------------------------------------------------------------------- #
# inside a user's @njit function
# --------------------------------------------------------------------------- #
# The overloads check the arguments as the public functions do (fixed
# messages), then call the cached serial kernels above: the same bits as
# outside @njit.


def _compute_dtype(t):
    return t.dtype if isinstance(t.dtype, types.Float) else types.float64


@register_jitable
def _shape3(shape):
    """(N, C, S) of an input shape of at least 3 dimensions."""
    n_pos = 1
    for i in range(2, len(shape)):
        n_pos *= shape[i]
    return shape[0], shape[1], n_pos


@register_jitable
def _njit_params(size, alpha, beta, k):
    if size < 1:
        raise ValueError("local_response_norm: size must be at least 1")
    return np.int64(size), np.float64(alpha), np.float64(beta), np.float64(k)


def _check_njit_types(input, size, op):
    if not isinstance(input, types.Array):
        return False
    if input.ndim < 3:
        raise errors.TypingError(f"nbops.{op}: Expected 3D or higher dimensionality input "
                                 f"(got {input.ndim} dimensions)")
    if not isinstance(size, types.Integer) or isinstance(size, types.Boolean):
        raise errors.TypingError(f"nbops.{op}: size must be an int")
    return True


@overload(local_response_norm)
def _local_response_norm_njit(input, size, alpha=1e-4, beta=0.75, k=1.0, out=None):
    """Inside @njit: the cached serial kernel; no ``out=``."""
    if not _check_njit_types(input, size, "local_response_norm"):
        return None
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        raise errors.TypingError("nbops.local_response_norm: out= is not supported inside "
                                 "@njit")
    dtype = _compute_dtype(input)

    def impl(input, size, alpha=1e-4, beta=0.75, k=1.0, out=None):
        n, a, b, kk = _njit_params(size, alpha, beta, k)
        shape3 = _shape3(input.shape)
        x = np.ascontiguousarray(input).astype(dtype).reshape(shape3)
        res = np.empty(shape3, dtype)
        if x.size != 0:
            tasks, per = _plan(shape3[0], shape3[1], shape3[2])
            _forward_serial(x, n, a, b, kk, res, tasks, per)
        return res.reshape(input.shape)

    return impl


@overload(local_response_norm_backward)
def _local_response_norm_backward_njit(grad_output, input, size, alpha=1e-4, beta=0.75,
                                       k=1.0, out=None):
    """Inside @njit: the cached serial kernel; no ``out=``."""
    if not (isinstance(grad_output, types.Array)
            and _check_njit_types(input, size, "local_response_norm_backward")):
        return None
    if not isinstance(grad_output.dtype, types.Float):
        raise errors.TypingError("nbops.local_response_norm_backward: grad_output must be a "
                                 "float array")
    if grad_output.ndim != input.ndim:
        raise errors.TypingError("nbops.local_response_norm_backward: grad_output and input "
                                 "must have the same shape")
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        raise errors.TypingError("nbops.local_response_norm_backward: out= is not supported "
                                 "inside @njit")
    in_dtype = _compute_dtype(input)
    dtype = (types.float64 if types.float64 in (in_dtype, grad_output.dtype)
             else types.float32)

    def impl(grad_output, input, size, alpha=1e-4, beta=0.75, k=1.0, out=None):
        if grad_output.shape != input.shape:
            raise ValueError("grad_output must have the input's shape (the forward's output "
                             "shape)")
        n, a, b, kk = _njit_params(size, alpha, beta, k)
        shape3 = _shape3(input.shape)
        g = np.ascontiguousarray(grad_output).astype(dtype).reshape(shape3)
        x = np.ascontiguousarray(input).astype(dtype).reshape(shape3)
        res = np.empty(shape3, dtype)
        if x.size != 0:
            tasks, per = _plan(shape3[0], shape3[1], shape3[2])
            _backward_linked(g, x, n, a, b, kk, res, tasks, per)
        return res.reshape(input.shape)

    return impl
