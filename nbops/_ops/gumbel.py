"""Gumbel-softmax sampling: ``nbops.gumbel_softmax`` and ``nbops.gumbel_softmax_backward``.

As ``torch.nn.functional.gumbel_softmax``: with Gumbel(0, 1) noise
``G = -log(E)``, ``E ~ Exponential(1)``,

* ``y_soft = softmax((logits + G) / tau)`` along the axis;
* ``hard=False`` returns ``y_soft``; ``hard=True`` returns the one-hot of the
  first maximum of ``y_soft`` along the axis, computed as PyTorch computes its
  straight-through value, ``(y_hard - y_soft) + y_soft``.

The noise comes from the counter-based generator of :mod:`nbops.scalar.random`,
as dropout's mask: element ``i`` of ``logits`` (C order) takes the 32-bit word
``w = r[i % 4]`` of the Philox block ``i // 4`` under the seed's key,
``u = (w + 0.5) / 2**32`` (in (0, 1), never 0 or 1) and ``E = -log(u)`` (float64,
the Gumbel value ``-log(E)`` then rounded to the logits' dtype). So the same
seed gives the same sample on any thread count, inside ``@njit`` and on CUDA,
and the backward regenerates ``y_soft`` from the integer seed and the logits
(nothing is stored).

The backward is the gradient of ``y_soft`` (the straight-through estimator
passes ``grad_output`` to ``y_soft`` for ``hard=True`` too):
``softmax_backward(grad_output, y_soft) / tau``.
"""

import warnings

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable

from .. import _config, _memory
from .._launch import launch, task_address
from .._numba_internals import make_task_call
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    direct_out,
    is_dask_array,
    is_device_array,
    may_share_memory,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar._math import const, log
from ..scalar.random import lane, philox4x32_10, splitmix64
from .dropout import _check_seed, _is_none, _njit_seed, _njit_seed_ol
from .elementwise import _float_array
from .plan import axis_plan, dropout_key

__all__ = ["gumbel_softmax", "gumbel_softmax_backward"]

#: Elements per task of the parallel kernel (a multiple of 4).
_TILE = 8192
_LO32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
_TWO = np.uint64(2)
_Z32 = np.uint32(0)
_EPS_DEFAULT = 1e-10


@_config.core
def word_to_unit(w):
    """A 32-bit word as ``u = (w + 0.5) / 2**32`` in (0, 1) (float64)."""
    return (np.float64(w) + 0.5) * 2.3283064365386963e-10


@_config.core
def gumbel_add_unit(x, u, tau):
    """``(x + G) / tau`` in ``x``'s dtype, ``G = -log(-log(u))`` (float64, nbops'
    vectorizable ``log``; a core: inlined on the CPU, a device function on CUDA)."""
    return (x + const(x, -log(-log(u)))) / const(x, tau)


@_config.core
def gumbel_add(x, w, tau):
    """``(x + G) / tau`` in ``x``'s dtype, ``G`` the Gumbel value of the 32-bit word ``w``."""
    return gumbel_add_unit(x, word_to_unit(w), tau)


# ------------------------------------------------------------------ CPU kernel
@register_jitable
def _noisy_blocks(x, out, b0, k0, k1, tau, units):
    """Whole Philox blocks: ``out.size`` is a multiple of 4, out[0] is element 4 * b0.
    The words' units go to ``units`` first, so that the loop of logs vectorizes."""
    for w in range(out.size >> 2):
        j = b0 + np.uint64(w)
        r0, r1, r2, r3 = philox4x32_10(j & _LO32, j >> _SH32, _Z32, _Z32, k0, k1)
        i = 4 * w
        units[i] = word_to_unit(r0)
        units[i + 1] = word_to_unit(r1)
        units[i + 2] = word_to_unit(r2)
        units[i + 3] = word_to_unit(r3)
    for i in range(out.size):
        out[i] = gumbel_add_unit(x[i], units[i], tau)


@register_jitable
def _noisy_partial(x, out, start, lo, hi, k0, k1, tau):
    """out[lo:hi] of :func:`_noisy`, inside one Philox block (a function of its own:
    in the parallel kernel's ``prange`` body, IR-inlined, the Philox rounds were
    compiled twice)."""
    if lo < hi:
        off = (start + lo) % 4
        j = np.uint64(start + lo - off) >> _TWO
        r0, r1, r2, r3 = philox4x32_10(j & _LO32, j >> _SH32, _Z32, _Z32, k0, k1)
        for q in range(hi - lo):
            out[lo + q] = gumbel_add(x[lo + q], lane(r0, r1, r2, r3, off + q), tau)


@_config.task_function
def _noisy_task(x, out, start, k0, k1, tau, task):
    """Task ``task`` of :func:`_noisy`: out[a:b], ``a = task * _TILE``."""
    n = out.size
    a = task * _TILE
    b = min(a + _TILE, n)
    # whole Philox blocks h .. e of the piece a .. b (start + h: a multiple of 4)
    h = a + min((4 - (start + a) % 4) % 4, b - a)
    e = h + (b - h) // 4 * 4
    units = np.empty(e - h, np.float64)
    _noisy_blocks(x[h:e], out[h:e], np.uint64(start + h) >> _TWO, k0, k1, tau, units)
    _noisy_partial(x, out, start, a, h, k0, k1, tau)  # the partial blocks a .. h
    _noisy_partial(x, out, start, e, b, k0, k1, tau)  # and e .. b


call_task = make_task_call()


def _noisy(x, out, start, k0, k1, tau, task_fn):
    """out[i] = (x[i] + G_i) / tau in x's dtype (out may be x); ``start``: the global
    index of out[0] (0 for a whole array; nbops/_dask.py runs pieces of an array).
    Tasks: pieces of _TILE elements, each a call of :func:`_noisy_task` at
    ``task_fn`` (its address: see :func:`nbops._ops.linear._product`): compiled
    once, not again in each of the parallel kernel's libraries."""
    for task in prange((out.size + _TILE - 1) // _TILE):
        call_task(_noisy_task, task_fn, (x, out, start, k0, k1, tau, np.int64(task)))


_noisy_serial, _noisy_parallel = _config.kernels(_noisy)


@_config.core
def _noisy_linked(x, out, start, k0, k1, tau):
    """:func:`_noisy`'s tasks in order, calling :func:`_noisy_task` linked: for the
    ``@njit`` overloads, which have no task addresses."""
    for task in range((out.size + _TILE - 1) // _TILE):
        _noisy_task(x, out, start, k0, k1, tau, np.int64(task))


def _run_noisy(src, dest, key, tau, start=0):
    lkey = ("gumbel", dest.dtype.char)
    args = (src, dest, start, key[0], key[1], float(tau))
    launch(_noisy_serial, _noisy_parallel, lkey, dest.size, *args,
           task_address(_noisy_task, lkey, args))


# ------------------------------------------------------------------ helpers
def _check_args(tau, eps, stacklevel):
    if isinstance(tau, (bool, np.bool_)) or not isinstance(tau, (int, float, np.integer,
                                                                 np.floating)):
        raise TypeError(f"tau must be a float, got {type(tau).__name__}")
    if eps != _EPS_DEFAULT:
        warnings.warn("`eps` parameter is deprecated and has no effect.", UserWarning,
                      stacklevel=stacklevel + 1)
    return float(tau)


def _soft(x, compute, axis, dim, key, tau, z=None):
    """y_soft = softmax((x + G) / tau) along the axis, in ``compute`` (C-contiguous);
    ``z``: a C-contiguous array of ``compute`` apart from ``x`` for ``(x + G) / tau``
    (made when None)."""
    from .softmax import softmax  # registered after this module is imported

    z = _memory.empty(x.shape, compute) if z is None else z
    src = np.ascontiguousarray(x, dtype=compute)
    if z.size:
        _run_noisy(src.reshape(-1), z.reshape(-1), key, tau)
    return softmax(z, axis, dim=dim)  # (in place the kernel would see aliased arrays: slower)


def _harden(y_soft, ax):
    """PyTorch's straight-through value ``(y_hard - y_soft) + y_soft`` (y_hard: the
    one-hot of the first maximum along ``ax``)."""
    if y_soft.size == 0:
        return y_soft
    index = np.expand_dims(np.argmax(y_soft, axis=ax), ax)
    hard = np.zeros_like(y_soft)
    np.put_along_axis(hard, index, 1.0, axis=ax)
    return (hard - y_soft) + y_soft


def gumbel_noise(shape, rng, dtype=np.float64):
    """The Gumbel(0, 1) noise ``G`` that :func:`gumbel_softmax` adds for ``rng``
    (an int seed): element ``i`` (C order) as the forward draws it (for tests)."""
    dtype = np.dtype(dtype)
    z = np.zeros(shape, dtype)
    if z.size:
        _run_noisy(z.reshape(-1), z.reshape(-1), dropout_key(_check_seed(rng)), 1.0)
    return z


# ------------------------------------------------------------------ public functions
def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, axis=-1, *, dim=None, rng=None,
                   out=None):
    r"""A sample of the Gumbel-softmax distribution: ``softmax((logits + G) / tau)``.

    Parameters
    ----------
    logits : array_like
        Unnormalized log-probabilities; any shape (at least 1-d), any layout.
    tau : float, default 1.0
        The temperature.
    hard : bool, default False
        Return the one-hot of the sample's first maximum along the axis (its
        gradient is still the soft sample's: :func:`gumbel_softmax_backward`).
    eps : float, default 1e-10
        Deprecated in PyTorch and unused (a ``UserWarning`` when not the default).
    axis : int, default -1
        The axis of the categories.
    dim : int, optional, keyword-only
        PyTorch's name of ``axis``.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness, as for :func:`nbops.dropout`: ``None`` (fresh entropy),
        an int seed (the same sample on any thread count and on CUDA; the
        backward regenerates it from the seed) or a Generator.
    out : ndarray, optional, keyword-only
        Array of the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        The logits' shape; float32 stays float32, float64 stays float64.

    Notes
    -----
    Same as ``torch.nn.functional.gumbel_softmax`` (``-log`` of an
    ``Exponential(1)`` draw as the noise; the straight-through value
    ``(y_hard - y_soft) + y_soft`` for ``hard=True``). Element ``i`` of the noise
    is ``-log(-log((w + 0.5) / 2**32))``, ``w`` the 32-bit Philox word at
    counter ``i`` under the seed's key (:mod:`nbops.scalar.random`): PyTorch's
    generator differs, so the same seed does not give PyTorch's sample.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> y = nbops.gumbel_softmax(np.zeros((2, 3)), rng=0)
    >>> np.allclose(y.sum(axis=-1), 1.0)
    True
    >>> nbops.gumbel_softmax(np.array([0.0, 50.0, 0.0]), hard=True, rng=0)
    array([0., 1., 0.])
    """
    if type(logits) is not np.ndarray and is_device_array(logits):
        return _cuda().gumbel_softmax(logits, tau, hard, eps, axis, dim=dim, rng=rng, out=out)
    if type(logits) is not np.ndarray and is_dask_array(logits):
        return dask_ops().gumbel_softmax(logits, tau, hard, eps, axis, dim=dim, rng=rng, out=out)
    tau = _check_args(tau, eps, 2)
    x = logits if type(logits) is np.ndarray else as_array(logits, "logits")
    compute, result = result_dtype(x.dtype, "logits")
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension")
    ax = axis_plan(x.shape, axis, dim).axis
    if out is not None:
        check_out(out, x.shape, result)
    key = dropout_key(rng) if x.size else (np.uint32(0), np.uint32(0))
    y = _soft(x, compute, axis, dim, key, tau)
    if hard:
        y = _harden(y, ax)
    if out is not None:
        np.copyto(out, y, casting="unsafe")
        return out
    return y if result == compute else y.astype(result)


def gumbel_softmax_backward(grad_output, logits, tau=1.0, hard=False, eps=1e-10, axis=-1, *,
                            dim=None, rng=None, y_soft=None, out=None):
    r"""Gradient of :func:`gumbel_softmax` with respect to ``logits``.

    The soft sample is regenerated from the integer seed and the logits.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to the forward's output (the
        logits' shape; a float array).
    logits : array_like
        The forward's logits.
    tau : float, default 1.0
        The forward's temperature.
    hard : bool, default False
        The forward's ``hard`` (it does not change the gradient: the
        straight-through estimator).
    eps : float, default 1e-10
        Unused, as in the forward.
    axis : int, default -1
        The forward's axis.
    dim : int, optional, keyword-only
        PyTorch's name of ``axis``.
    rng : int, keyword-only
        The integer seed the forward used: the soft sample is regenerated from it
        (required unless ``y_soft`` is given).
    y_soft : array_like, optional, keyword-only
        The forward's soft sample (its output when ``hard=False``): then nothing
        is regenerated and ``rng`` is not used.
    out : ndarray, optional, keyword-only
        Array of the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        ``grad_logits``, in the common float dtype of ``grad_output`` and ``logits``.

    Notes
    -----
    With :math:`y` the soft sample and :math:`g` ``grad_output``, along the axis:
    :math:`\partial x_i = y_i (g_i - \sum_j g_j y_j) / \tau` (autograd through
    PyTorch's ``gumbel_softmax``, ``hard`` or not).

    Examples
    --------
    >>> x = np.array([[0.5, -1.0, 2.0]])
    >>> y = nbops.gumbel_softmax(x, rng=3)
    >>> g = np.array([[1.0, 0.0, 0.0]])
    >>> np.allclose(nbops.gumbel_softmax_backward(g, x, rng=3), y * (g - (g * y).sum()))
    True
    >>> np.allclose(nbops.gumbel_softmax_backward(g, x, y_soft=y),
    ...             nbops.gumbel_softmax_backward(g, x, rng=3))
    True
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().gumbel_softmax_backward(grad_output, logits, tau, hard, eps, axis,
                                               dim=dim, rng=rng, y_soft=y_soft, out=out)
    if is_dask_array(grad_output) or is_dask_array(logits) or is_dask_array(y_soft):
        return dask_ops().gumbel_softmax_backward(grad_output, logits, tau, hard, eps, axis,
                                                  dim=dim, rng=rng, y_soft=y_soft, out=out)
    from .softmax import softmax_backward

    tau = _check_args(tau, eps, 2)
    if y_soft is None:
        _check_seed(rng)
    g = _float_array(grad_output, "grad_output")
    x = logits if type(logits) is np.ndarray else as_array(logits, "logits")
    result_dtype(x.dtype, "logits")
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension")
    if g.shape != x.shape:
        raise ValueError(f"grad_output has shape {g.shape} but logits has shape {x.shape}: "
                         "they must be the same (the forward's output shape)")
    axis_plan(x.shape, axis, dim)
    ys = None if y_soft is None else _float_array(y_soft, "y_soft")
    if ys is not None and ys.shape != x.shape:
        raise ValueError(f"y_soft has shape {ys.shape} but logits has shape {x.shape}: they "
                         "must be the same")
    dtypes = (g.dtype, x.dtype) if ys is None else (g.dtype, x.dtype, ys.dtype)
    compute, result = result_dtype(np.result_type(*dtypes))
    if out is not None:
        check_out(out, x.shape, result)
    gc = np.ascontiguousarray(g, dtype=compute)
    dest = out if out is not None and out.dtype == compute else None  # written directly
    if ys is None:
        # the noisy logits go into the result's array (free until the gradient is
        # written there): one temporary the size of the input less
        if dest is None:
            dest = np.empty(x.shape, compute)
        z = dest if direct_out(dest, x.shape, compute) else None
        if z is not None and (may_share_memory(z, x) or may_share_memory(z, gc)):
            z = None
        y = _soft(x, compute, axis, dim, dropout_key(rng), tau, z)
        res = softmax_backward(gc, y, axis, dim=dim, out=dest)
    else:
        res = softmax_backward(gc, np.ascontiguousarray(ys, dtype=compute), axis, dim=dim,
                               out=dest)
    if tau != 1.0:  # (dividing by one changes no value: no pass for the default tau)
        res /= compute.type(tau)
    if out is not None:
        if res is not out:
            np.copyto(out, res, casting="unsafe")
        return out
    return res if result == compute else res.astype(result)


# ------------------------------------------------- the same names inside @njit
# The serial noise kernel, then nbops.softmax / softmax_backward's own overloads.
@register_jitable
def _njit_key(rng):
    s = splitmix64(_njit_seed(rng))
    return np.uint32(s & _LO32), np.uint32(s >> _SH32)


@register_jitable
def _njit_hard(y, ax, one):
    """(one-hot of the first maximum along ``ax`` - y) + y, on a C-contiguous ``y``
    (``one``: 1 in y's dtype)."""
    shape = y.shape
    O = 1
    C = 1
    I = 1
    for k in range(len(shape)):
        if k < ax:
            O *= shape[k]
        elif k == ax:
            C = shape[k]
        else:
            I *= shape[k]
    flat = y.reshape(-1)
    res = np.empty_like(flat)
    for o in range(O):
        for i in range(I):
            base = o * C * I + i
            best = 0
            for c in range(1, C):
                if flat[base + c * I] > flat[base + best * I]:
                    best = c
            for c in range(C):
                v = flat[base + c * I]
                h = one - one
                if c == best:
                    h = one
                res[base + c * I] = (h - v) + v
    return res.reshape(shape)


def _float_type(t):
    return t if isinstance(t, types.Float) else types.float64


@overload(gumbel_softmax)
def _gumbel_softmax_njit(logits, tau=1.0, hard=False, eps=1e-10, axis=-1, dim=None, rng=None,
                         out=None):
    from .softmax import _axis_of, _check_range, softmax

    if not isinstance(logits, types.Array):
        return None
    if logits.ndim == 0:
        raise errors.TypingError("nbops.gumbel_softmax: logits must have at least one "
                                 "dimension")
    if not _is_none(out):
        raise errors.TypingError("nbops.gumbel_softmax: out= is not supported inside @njit")
    _njit_seed_ol(rng)  # a bad rng type: TypingError now
    dtype = _float_type(logits.dtype)
    nd = logits.ndim

    def impl(logits, tau=1.0, hard=False, eps=1e-10, axis=-1, dim=None, rng=None, out=None):
        ax = _check_range(_axis_of(axis, dim), nd)
        z = logits.astype(dtype)  # a C-order copy
        zf = z.reshape(-1)
        if zf.size != 0:
            k0, k1 = _njit_key(rng)
            _noisy_linked(zf, zf, 0, k0, k1, np.float64(tau))
        y = softmax(z, ax)
        if hard:
            return _njit_hard(y, ax, dtype(1))
        return y

    return impl


@overload(gumbel_softmax_backward)
def _gumbel_softmax_backward_njit(grad_output, logits, tau=1.0, hard=False, eps=1e-10,
                                  axis=-1, dim=None, rng=None, y_soft=None, out=None):
    from .softmax import _axis_of, _check_range, softmax, softmax_backward

    if not (isinstance(grad_output, types.Array) and isinstance(logits, types.Array)):
        return None
    if not isinstance(grad_output.dtype, types.Float):
        raise errors.TypingError("nbops.gumbel_softmax_backward: grad_output must be a "
                                 "float array")
    if not _is_none(out):
        raise errors.TypingError("nbops.gumbel_softmax_backward: out= is not supported "
                                 "inside @njit")
    given = not _is_none(y_soft)
    if given and not (isinstance(y_soft, types.Array) and y_soft.ndim == logits.ndim):
        raise errors.TypingError("nbops.gumbel_softmax_backward: y_soft must be an array of "
                                 "the logits' shape")
    if not given and not isinstance(rng, types.Integer):
        raise errors.TypingError("nbops.gumbel_softmax_backward: inside @njit, rng must be "
                                 "the forward's integer seed (or give y_soft)")
    in_type = _float_type(logits.dtype)
    dtype = types.float64 if types.float64 in (in_type, grad_output.dtype) else types.float32
    nd = logits.ndim

    if given:
        def impl_given(grad_output, logits, tau=1.0, hard=False, eps=1e-10, axis=-1, dim=None,
                       rng=None, y_soft=None, out=None):
            ax = _check_range(_axis_of(axis, dim), nd)
            if grad_output.shape != logits.shape or y_soft.shape != logits.shape:
                raise ValueError("grad_output and y_soft must have the logits' shape")
            res = softmax_backward(grad_output.astype(dtype), y_soft.astype(dtype), ax)
            return res / dtype(tau)

        return impl_given

    def impl(grad_output, logits, tau=1.0, hard=False, eps=1e-10, axis=-1, dim=None, rng=None,
             y_soft=None, out=None):
        ax = _check_range(_axis_of(axis, dim), nd)
        if grad_output.shape != logits.shape:
            raise ValueError("grad_output must have the logits' shape")
        z = logits.astype(dtype)
        zf = z.reshape(-1)
        if zf.size != 0:
            k0, k1 = _njit_key(rng)
            _noisy_linked(zf, zf, 0, k0, k1, np.float64(tau))
        y = softmax(z, ax)
        res = softmax_backward(grad_output.astype(dtype), y, ax)
        return res / dtype(tau)

    return impl
