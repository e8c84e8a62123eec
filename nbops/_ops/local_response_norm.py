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

a second running float64 sum over the channels. Inputs of one position per
channel (``(N, C, 1)``) take blocks of batch rows as their positions, in the
forward and the backward alike (:func:`_forward_rows`, :func:`_backward_rows`).
"""

import math
import operator

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable

from .. import _config
from .._launch import launch
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
def _positions_per_task(n_ch, n_pos):
    """(positions per task, tasks per batch index): a cut fixed by the shape alone."""
    per = max(1, min(n_pos, _TASK // max(n_ch, 1)))
    return per, (n_pos + per - 1) // per


@register_jitable
def _window_sum(v, s, c0, c1, n_ch, square):
    """The float64 sum over channels ``c0 .. c1`` (clipped to ``0 .. n_ch - 1``) of
    ``v[c, s]`` (squared if ``square``), in channel order."""
    a = 0.0
    for c in range(max(c0, 0), min(c1, n_ch - 1) + 1):
        t = np.float64(v[c, s])
        a += t * t if square else t
    return a


@register_jitable
def _window_start(v, s0, m, acc, after, n_ch, square):
    """``acc[j]``: the sum over channels ``0 .. after - 1`` at position ``s0 + j``
    (the window of channel -1, which :func:`_slide` then moves to channel 0)."""
    for j in range(m):
        acc[j] = _window_sum(v, s0 + j, 0, after - 1, n_ch, square)


@register_jitable
def _slide(v, s0, m, acc, n_ch, c, before, after, square, clamp):
    """Move the running window sums ``acc[j]`` (positions ``s0 + j`` of ``v``'s
    rows, ``j < m``) from channel ``c - 1``'s window to channel ``c``'s, ``c -
    before .. c + after``: channel ``c + after`` in (if it exists), then ``c -
    before - 1`` out (if it exists), squared if ``square``. A non-finite sum (an
    inf or NaN entered, left or stays in the window) is summed anew over the
    window; ``clamp``: a negative one (rounding) is 0."""
    add = c + after
    rem = c - before - 1
    if add < n_ch:
        va = v[add]
        if square:
            for j in range(m):
                t = np.float64(va[s0 + j])
                acc[j] += t * t
        else:
            for j in range(m):
                acc[j] += va[s0 + j]
    if rem >= 0:
        vr = v[rem]
        if square:
            for j in range(m):
                t = np.float64(vr[s0 + j])
                acc[j] -= t * t
        else:
            for j in range(m):
                acc[j] -= vr[s0 + j]
    for j in range(m):
        a = acc[j]
        if not math.isfinite(a):
            acc[j] = _window_sum(v, s0 + j, c - before, c + after, n_ch, square)
        elif clamp and a < 0.0:
            acc[j] = 0.0


@register_jitable
def _powers(acc, m, scale, k, beta, dst):
    """``dst[j] = (acc[j] * scale + k) ** -beta`` (PyTorch's default beta = 0.75
    with two square roots, a loop that vectorizes)."""
    if beta == 0.75:
        for j in range(m):
            r = math.sqrt(acc[j] * scale + k)
            dst[j] = 1.0 / (r * math.sqrt(r))
    else:
        for j in range(m):
            dst[j] = (acc[j] * scale + k) ** -beta


@register_jitable
def _forward_block(xv, s0, m, ov, size, alpha, beta, k):
    """``ov = xv / (W * alpha / size + k)**beta`` (module docstring) at positions
    ``s0 .. s0 + m - 1`` of one batch item: ``xv``, ``ov`` ``(C, S)`` views."""
    n_ch = xv.shape[0]
    before = size // 2
    after = (size - 1) // 2
    scale = alpha / size
    acc = np.zeros(m)
    pw = np.empty(m)
    _window_start(xv, s0, m, acc, after, n_ch, True)
    for c in range(n_ch):
        _slide(xv, s0, m, acc, n_ch, c, before, after, True, True)
        _powers(acc, m, scale, k, beta, pw)
        xc = xv[c]
        oc = ov[c]
        for j in range(m):
            oc[s0 + j] = np.float64(xc[s0 + j]) * pw[j]


@register_jitable
def _backward_block(gv, xv, s0, m, ov, size, alpha, beta, k):
    """grad_input (module docstring) into ``ov`` at positions ``s0 .. s0 + m - 1``
    of one batch item: ``gv``, ``xv``, ``ov`` ``(C, S)`` views."""
    n_ch = xv.shape[0]
    before = size // 2
    after = (size - 1) // 2
    scale = alpha / size
    coef = 2.0 * scale * beta
    acc = np.zeros(m)
    p = np.empty((n_ch, m))  # d**-beta
    q = np.empty((n_ch, m))  # g x d**(-beta - 1)
    _window_start(xv, s0, m, acc, after, n_ch, True)
    for c in range(n_ch):
        _slide(xv, s0, m, acc, n_ch, c, before, after, True, True)
        pc = p[c]
        qc = q[c]
        _powers(acc, m, scale, k, beta, pc)
        xc = xv[c]
        gc = gv[c]
        for j in range(m):
            qc[j] = np.float64(gc[s0 + j]) * np.float64(xc[s0 + j]) * pc[j] / (
                acc[j] * scale + k)
    # the mirrored window: channels c - after .. c + before
    _window_start(q, 0, m, acc, before, n_ch, False)
    for c in range(n_ch):
        _slide(q, 0, m, acc, n_ch, c, after, before, False, False)
        pc = p[c]
        xc = xv[c]
        gc = gv[c]
        oc = ov[c]
        for j in range(m):
            oc[s0 + j] = np.float64(gc[s0 + j]) * pc[j] - coef * np.float64(xc[s0 + j]) * acc[j]


@register_jitable
def _channel_major(a, r0, m):
    """Rows ``r0 .. r0 + m - 1`` of the ``(N, C)`` array ``a`` as a ``(C, m)``
    float64 block (exact)."""
    n_ch = a.shape[1]
    v = np.empty((n_ch, m))
    for j in range(m):
        ar = a[r0 + j]
        for c in range(n_ch):
            v[c, j] = ar[c]
    return v


def _forward(x, size, alpha, beta, k, out):
    """``out = x / (W * alpha / size + k)**beta`` (module docstring) for ``x``,
    ``out``: ``(N, C, S)`` C-contiguous arrays of one float dtype."""
    n_batch, n_ch, n_pos = x.shape
    per, blocks = _positions_per_task(n_ch, n_pos)
    for task in prange(n_batch * blocks):
        s0 = (task % blocks) * per
        _forward_block(x[task // blocks], s0, min(n_pos, s0 + per) - s0, out[task // blocks],
                       size, alpha, beta, k)


_forward_serial, _forward_parallel = _config.kernels(_forward)

#: Batch rows per task of :func:`_forward_rows` (one position per channel).
_ROWS = 16


def _forward_rows(x, size, alpha, beta, k, out):
    """:func:`_forward` of an input with one position per channel (``S == 1``):
    ``x``, ``out`` ``(N, C)`` C-contiguous arrays of one float dtype.

    A task takes a block of ``_ROWS`` batch rows as the positions of
    :func:`_forward_block` (copied channel-major into float64, exactly), so the
    window sums slide over ``_ROWS`` values at a time instead of one: the same
    arithmetic, value by value, so the same bits as :func:`_forward`."""
    n_batch, n_ch = x.shape
    for task in prange((n_batch + _ROWS - 1) // _ROWS):
        r0 = task * _ROWS
        m = min(n_batch, r0 + _ROWS) - r0
        o = np.empty((n_ch, m))
        _forward_block(_channel_major(x, r0, m), 0, m, o, size, alpha, beta, k)
        for j in range(m):
            for c in range(n_ch):
                out[r0 + j, c] = o[c, j]


_forward_rows_serial, _forward_rows_parallel = _config.kernels(_forward_rows)


def _backward(g, x, size, alpha, beta, k, out):
    """grad_input (module docstring) into ``out``; ``g``, ``x``, ``out``: ``(N, C,
    S)`` C-contiguous arrays of one float dtype."""
    n_batch, n_ch, n_pos = x.shape
    per, blocks = _positions_per_task(n_ch, n_pos)
    for task in prange(n_batch * blocks):
        n = task // blocks
        s0 = (task % blocks) * per
        _backward_block(g[n], x[n], s0, min(n_pos, s0 + per) - s0, out[n],
                        size, alpha, beta, k)


_backward_serial, _backward_parallel = _config.kernels(_backward)


def _backward_rows(g, x, size, alpha, beta, k, out):
    """:func:`_backward` of an input with one position per channel (``S == 1``):
    ``g``, ``x``, ``out`` ``(N, C)`` C-contiguous arrays of one float dtype.

    As :func:`_forward_rows`: a task takes a block of ``_ROWS`` batch rows as
    the positions of :func:`_backward_block` (``g`` and ``x`` copied
    channel-major into float64, exactly), the same arithmetic value by value,
    so the same bits as :func:`_backward`."""
    n_batch, n_ch = x.shape
    for task in prange((n_batch + _ROWS - 1) // _ROWS):
        r0 = task * _ROWS
        m = min(n_batch, r0 + _ROWS) - r0
        o = np.empty((n_ch, m))
        _backward_block(_channel_major(g, r0, m), _channel_major(x, r0, m), 0, m, o,
                        size, alpha, beta, k)
        for j in range(m):
            for c in range(n_ch):
                out[r0 + j, c] = o[c, j]


_backward_rows_serial, _backward_rows_parallel = _config.kernels(_backward_rows)


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
    if x.size and n_pos == 1:  # (N, C): blocks of batch rows as the positions
        launch(_forward_rows_serial, _forward_rows_parallel,
               ("local_response_norm_rows", compute.char), x.size,
               src.reshape(n_batch, n_ch), size, alpha, beta, k, res.reshape(n_batch, n_ch))
    elif x.size:
        launch(_forward_serial, _forward_parallel, ("local_response_norm", compute.char),
               x.size, src, size, alpha, beta, k, res.reshape(n_batch, n_ch, n_pos))
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
    if x.size and n_pos == 1:  # (N, C): blocks of batch rows as the positions
        shape2 = (n_batch, n_ch)
        launch(_backward_rows_serial, _backward_rows_parallel,
               ("local_response_norm_backward_rows", compute.char), x.size,
               gs.reshape(shape2), xs.reshape(shape2), size, alpha, beta, k,
               res.reshape(shape2))
    elif x.size:
        launch(_backward_serial, _backward_parallel,
               ("local_response_norm_backward", compute.char), x.size, gs, xs, size,
               alpha, beta, k, res.reshape(shape3))
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
            _forward_serial(x, n, a, b, kk, res)
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
            _backward_serial(g, x, n, a, b, kk, res)
        return res.reshape(input.shape)

    return impl
