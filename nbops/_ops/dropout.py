"""Dropout on a counter-based generator: ``nbops.dropout``, ``dropout1d``, ``dropout2d``,
``dropout3d``, ``alpha_dropout``, ``feature_alpha_dropout`` and ``dropout_mask``.

The keep/drop decision for mask element ``i`` is a pure function of
``(key, i)`` (Philox4x32-10, :mod:`nbops.scalar.random`), so the same seed
gives the same mask, bit for bit, on any thread count, on the serial and the
parallel path, for any split of the work, and (with the same scalar core) on
a GPU. The seed/key/counter scheme is documented in :mod:`nbops.scalar.random`.

Semantics are PyTorch's (``torch.nn.functional.dropout``, 2.13):

* kept elements are multiplied by ``1 / (1 - p)`` (computed in the input's
  float type, as PyTorch does), dropped ones by 0. It is a multiplication, as
  in PyTorch: a dropped NaN stays NaN and a dropped inf becomes NaN.
* ``p == 1``: ``input * 0`` (zeros for finite input, no 0/0); draws nothing.
* ``training=False``, ``p == 0`` or an empty input: the input itself is
  returned (no copy), as PyTorch returns the same tensor; an input that must
  be converted (a list, integers) is returned converted.
* ``p`` outside [0, 1] (or NaN): ``ValueError`` naming ``p``.

Alpha dropout (``alpha_dropout``, ``feature_alpha_dropout``) draws the same
keep decisions (the same mask for the same seed) and then applies PyTorch's
affine map instead of the scaling: a kept element becomes ``x * a + b1``, a
dropped one ``x * 0 + b0`` (constants from
:func:`nbops._ops.plan.alpha_dropout_constants`); ``p == 1`` gives ``input * 0``
as PyTorch does.

Randomness (``rng=``, SPEC 7): ``None`` (fresh OS entropy on every call), an
int seed in ``[0, 2**64)`` (the same seed always gives the same mask), or a
``numpy.random.Generator`` (one 64-bit draw per call, so it advances and
successive calls differ; a ``BitGenerator`` or ``SeedSequence`` is wrapped
with ``numpy.random.default_rng``). ``rng`` is consumed only by calls that
draw a mask (training, ``0 < p < 1``, non-empty input), as PyTorch's
generator is.

Reusing a mask (e.g. for a backward pass)::

    m = nbops.dropout_mask(x.shape, p, rng=seed, dtype=x.dtype)
    y = x * m                    # == nbops.dropout(x, p, rng=seed), bit for bit
    grad_x = grad_y * m

With a Generator, draw the seed once and pass it to both:
``seed = int(gen.integers(2**64, dtype=np.uint64))`` (this is exactly what
``dropout(x, p, rng=gen)`` does with ``gen``).
"""

import math

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable

from .. import _config, _memory
from .._launch import launch
from .._validate import (
    as_array,
    check_inplace,
    check_out,
    dask_ops,
    is_dask_array,
    is_device_array,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar.losses import select
from ..scalar.random import keep, philox4x32_10, splitmix64
from .elementwise import _float_array
from .plan import ALPHA_DROPOUT_ALPHA as _ALPHA
from .plan import (
    DROPOUT1D_RANK_MESSAGE,
    P_RANGE_MESSAGE,
    alpha_dropout_constants,
    channel_axes,
    check_dropout1d_rank,
    check_p,
    dropout_key,
    dropout_plan,
    dropout_scale,
    dropout_threshold,
    mask_shape,
    warn_feature_rank,
)

__all__ = ["dropout", "dropout2d", "dropout3d", "dropout_mask", "dropout_backward",
           "dropout2d_backward", "dropout3d_backward", "dropout1d", "dropout1d_backward",
           "alpha_dropout", "alpha_dropout_backward", "feature_alpha_dropout",
           "feature_alpha_dropout_backward"]

# Elements per task of the parallel kernels (a multiple of 4: tasks start on
# Philox block boundaries).
_TILE = 8192
_LO32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
_TWO = np.uint64(2)
_Z32 = np.uint32(0)


# ------------------------------------------------------------------ spans
# Mask element i is lane i % 4 of the Philox block i // 4. The kernels write
#   x * mask into out  (x an array),
#   out * mask         (x None, inplace True: in place, one array, so that LLVM
#                       needs no run-time alias check, which fails and leaves a
#                       scalar loop when x and out are the same memory; see
#                       docs/guides/architecture.rst, "Vectorization"),
#   the mask           (x None, inplace None).
# x and inplace are None or not when Numba compiles: each use compiles only its
# own loop. Indices into the views are non-negative loop variables: with them
# LLVM vectorizes the loop (with a possibly negative global index it saw
# "unsafe indirect dependences" and stayed scalar). _drop_blocks is compiled
# once per type (not IR-inlined: the Philox core is typed once, not once per
# call site; the kernel calls it for the whole blocks and for the two partial
# ones). Alpha dropout runs the same loops with (multiplier, shift) pairs as
# ``scale`` and ``zero`` (see _masked).
def _masked(v, kept, scale, zero):
    """``v * (scale if kept else zero)``; with pairs ``scale = (a, b1)`` and
    ``zero = (0, b0)`` (alpha dropout): ``v * a + b1`` if kept, ``v * 0 + b0`` if not."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_masked, jit_options={"error_model": "numpy"})
def _masked_ol(v, kept, scale, zero):
    if isinstance(scale, types.BaseTuple):
        def impl_affine(v, kept, scale, zero):
            return v * select(kept, scale[0], zero[0]) + select(kept, scale[1], zero[1])
        return impl_affine

    def impl(v, kept, scale, zero):
        return v * select(kept, scale, zero)
    return impl


def _mask_value(kept, scale, zero):
    """``scale if kept else zero`` (the mask itself; typed but never run for pairs)."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_mask_value, jit_options={"error_model": "numpy"})
def _mask_value_ol(kept, scale, zero):
    if isinstance(scale, types.BaseTuple):
        return lambda kept, scale, zero: select(kept, scale[0], zero[0])
    return lambda kept, scale, zero: select(kept, scale, zero)


@register_jitable
def _drop_blocks(x, inplace, out, b0, k0, k1, t, scale, zero):
    """Whole Philox blocks: ``out.size`` is a multiple of 4, out[0] is element 4 * b0."""
    for w in range(out.size >> 2):
        j = b0 + np.uint64(w)
        r0, r1, r2, r3 = philox4x32_10(j & _LO32, j >> _SH32, _Z32, _Z32, k0, k1)
        i = 4 * w
        if x is not None:
            out[i] = _masked(x[i], r0 >= t, scale, zero)
            out[i + 1] = _masked(x[i + 1], r1 >= t, scale, zero)
            out[i + 2] = _masked(x[i + 2], r2 >= t, scale, zero)
            out[i + 3] = _masked(x[i + 3], r3 >= t, scale, zero)
        elif inplace is not None:
            out[i] = _masked(out[i], r0 >= t, scale, zero)
            out[i + 1] = _masked(out[i + 1], r1 >= t, scale, zero)
            out[i + 2] = _masked(out[i + 2], r2 >= t, scale, zero)
            out[i + 3] = _masked(out[i + 3], r3 >= t, scale, zero)
        else:
            out[i] = _mask_value(r0 >= t, scale, zero)
            out[i + 1] = _mask_value(r1 >= t, scale, zero)
            out[i + 2] = _mask_value(r2 >= t, scale, zero)
            out[i + 3] = _mask_value(r3 >= t, scale, zero)


@register_jitable(inline="always")
def _channel_span(x, out, mult, inner, a, b):
    """out[i] = x[i] * mult[i // inner] for a <= i < b, one run per channel."""
    c = a // inner
    i = a
    while i < b:
        e = min((c + 1) * inner, b)
        m = mult[c]
        xs = x[i:e]
        os_ = out[i:e]
        for j in range(e - i):
            os_[j] = xs[j] * m
        i = e
        c += 1


@register_jitable(inline="always")
def _channel_affine_span(x, out, mult, shift, inner, a, b):
    """out[i] = x[i] * mult[c] + shift[c] with c = i // inner, for a <= i < b."""
    c = a // inner
    i = a
    while i < b:
        e = min((c + 1) * inner, b)
        m = mult[c]
        s = shift[c]
        xs = x[i:e]
        os_ = out[i:e]
        for j in range(e - i):
            os_[j] = xs[j] * m + s
        i = e
        c += 1


# ------------------------------------------------------------------ CPU kernels
# ``start``: the global mask index of out[0] (0 for a whole array; any value
# for a piece of one: the result is the same piece of the whole array's
# result). x, inplace: as in the span helpers. The tasks are independent
# pieces (each gives the same values as in the whole).
def _drop(x, inplace, out, start, k0, k1, t, scale, zero):
    n = out.size
    for task in prange((n + _TILE - 1) // _TILE):
        a = task * _TILE
        b = min(a + _TILE, n)
        # whole Philox blocks h .. e of the piece a .. b (start + h: a multiple of 4)
        h = a + min((4 - (start + a) % 4) % 4, b - a)
        e = h + (b - h) // 4 * 4
        b0 = np.uint64(start + h) >> _TWO
        if x is None:
            _drop_blocks(x, inplace, out[h:e], b0, k0, k1, t, scale, zero)
        else:
            _drop_blocks(x[h:e], inplace, out[h:e], b0, k0, k1, t, scale, zero)
        # the partial blocks a .. h and e .. b: through the same block loop, on a
        # 4-element scratch block (the same specialization of _drop_blocks)
        bx = np.empty(4, out.dtype if x is None else x.dtype)
        bo = np.empty(4, out.dtype)
        for side in range(2):
            lo = a if side == 0 else e
            hi = h if side == 0 else b
            if lo < hi:
                off = (start + lo) % 4
                for k in range(4):
                    bx[k] = 0
                    bo[k] = 0
                for i in range(lo, hi):
                    if x is not None:
                        bx[off + i - lo] = x[i]
                    elif inplace is not None:
                        bo[off + i - lo] = out[i]
                pb = np.uint64(start + lo - off) >> _TWO
                if x is None:
                    _drop_blocks(x, inplace, bo, pb, k0, k1, t, scale, zero)
                else:
                    _drop_blocks(bx, inplace, bo, pb, k0, k1, t, scale, zero)
                for i in range(lo, hi):
                    out[i] = bo[off + i - lo]


def _channel(x, out, mult, inner):
    n = x.size
    for task in prange((n + _TILE - 1) // _TILE):
        a = task * _TILE
        _channel_span(x, out, mult, inner, a, min(a + _TILE, n))


def _channel_affine(x, out, mult, shift, inner):
    n = x.size
    for task in prange((n + _TILE - 1) // _TILE):
        a = task * _TILE
        _channel_affine_span(x, out, mult, shift, inner, a, min(a + _TILE, n))


_drop_serial, _drop_parallel = _config.kernels(_drop)
_channel_serial, _channel_parallel = _config.kernels(_channel)
_channel_affine_serial, _channel_affine_parallel = _config.kernels(_channel_affine)


def _run_drop(x, out, start, key, t, scale, zero):
    """out = x * mask (``out`` may be ``x``); x None: out = the mask. ``scale`` and
    ``zero`` as tuples ``(a, b1)``, ``(0, b0)``: alpha dropout (see _masked)."""
    inplace = True if out is x else None
    if inplace:
        x = None
    name = "alpha_dropout" if type(scale) is tuple else "dropout"
    launch(_drop_serial, _drop_parallel, (name, out.dtype.char, x is None, inplace),
           out.size, x, inplace, out, start, key[0], key[1], t, scale, zero)


def _run_mask(out, start, key, t, scale, zero):
    _run_drop(None, out, start, key, t, scale, zero)


def _run_channel(x, out, mult, inner):
    launch(_channel_serial, _channel_parallel, ("dropout_channel", x.dtype.char), x.size,
           x, out, mult, inner)


def _run_channel_affine(x, out, mult, shift, inner):
    launch(_channel_affine_serial, _channel_affine_parallel,
           ("alpha_dropout_channel", x.dtype.char), x.size, x, out, mult, shift, inner)


# ------------------------------------------------------------------ the driver
# The argument policy (p, training/inplace/out, rng -> key, feature dims, the
# rank warnings) is nbops/_ops/plan.py's, shared with the CUDA launchers.
def _dropout(input, p, training, inplace, rng, feature, out, mode="dropout"):
    """Shared body of every dropout: ``feature`` None (one decision per element)
    or the feature dropout's name; ``mode`` ``"dropout"`` (``x * mask``),
    ``"alpha"`` (alpha dropout's affine map) or ``"alpha_grad"`` (its gradient:
    ``x * mask`` with the mask ``a`` where kept, 0 where dropped)."""
    x = input if type(input) is np.ndarray else as_array(input)
    compute, result = result_dtype(x.dtype)
    plan = dropout_plan(x.shape, p, training, inplace, out is not None, feature)
    target = None  # where the result must go: input (inplace), out, or a new array
    if inplace:
        check_inplace(input, result)
        target = x
    elif out is not None:
        check_out(out, x.shape, result)
        target = out
    if plan.action == "identity":
        if target is None:
            return x if x.dtype == result else x.astype(result)
        if target is not x:
            np.copyto(target, x, casting="unsafe")
        return target
    if plan.action == "zero":  # input * 0, as PyTorch: NaN and inf give NaN
        if target is None:
            return np.multiply(x, result.type(0), dtype=result)
        np.multiply(x, result.type(0), out=target, casting="unsafe")
        return target
    channels, inner = plan.channels, plan.inner
    key = dropout_key(rng)  # last: a Generator advances only when the call succeeds
    t = dropout_threshold(p)
    zero = compute.type(0)
    shifts = None  # alpha dropout's (kept, dropped) shifts
    if mode == "dropout":
        scale = dropout_scale(p, compute)
    else:
        scale, kept_shift, dropped_shift = alpha_dropout_constants(p, compute)
        if mode == "alpha":
            shifts = (kept_shift, dropped_shift)

    src = x if (x.dtype == compute and x.flags.c_contiguous) else \
        np.ascontiguousarray(x, dtype=compute)
    same = False
    if (target is not None and target.dtype == compute and target.flags.c_contiguous):
        same = target.ctypes.data == src.ctypes.data  # the very same elements
        dest = target if (same or not np.may_share_memory(target, src)) else \
            _memory.empty(x.shape, compute)
    else:
        dest = _memory.empty(x.shape, compute)
    xf = src.reshape(-1)
    df = xf if same else dest.reshape(-1)
    if channels is None or inner == 1:  # one decision per element: the same mask
        if shifts is None:
            _run_drop(xf, df, 0, key, t, scale, zero)
        else:
            _run_drop(xf, df, 0, key, t, (scale, shifts[0]), (zero, shifts[1]))
    else:
        mult = np.empty(channels, compute)
        _run_mask(mult, 0, key, t, scale, zero)
        if shifts is None:
            _run_channel(xf, df, mult, inner)
        else:
            shift = np.empty(channels, compute)  # the same decisions: the same key
            _run_mask(shift, 0, key, t, shifts[0], shifts[1])
            _run_channel_affine(xf, df, mult, shift, inner)
    if target is not None:
        if dest is not target:
            np.copyto(target, dest, casting="unsafe")
        return target
    return dest if result == compute else dest.astype(result)


# ------------------------------------------------------------------ public API
def dropout(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    r"""Zero each element with probability ``p``; scale the rest by :math:`1/(1-p)`.

    Parameters
    ----------
    input : array_like
        Any shape (0-d and empty included). float32 stays float32, float64
        stays float64; other real dtypes follow ``np.exp``'s promotion.
    p : float, default 0.5
        Probability of an element being zeroed, in [0, 1].
    training : bool, default True
        If False, return ``input`` itself (no copy), as PyTorch does.
    inplace : bool, default False
        Write into ``input`` (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness: ``None`` (fresh entropy), an int seed (the same seed
        gives the same mask on any thread count), or a Generator (advanced by
        each call). Details: :doc:`/guides/semantics` (reproducible dropout);
        key derivation: :mod:`nbops.scalar.random`.
    out : ndarray, optional, keyword-only
        Array of exactly the result's shape and dtype to write into (and
        return), also when nothing is dropped; not together with ``inplace``.

    Returns
    -------
    ndarray
        ``input * mask``, with ``mask == dropout_mask(input.shape, p, rng=rng,
        dtype=...)``: mask element ``i`` (C order) is a pure function of the
        seed and ``i``. A non-contiguous input gives a C-contiguous result.

    Notes
    -----
    Inside ``@numba.njit`` code (same names, same arguments): ``rng`` must be
    ``None`` (a seed drawn from Numba's own ``np.random`` state) or an integer
    seed (the same mask as outside); a call that does nothing
    (``training=False``, ``p == 0``) returns a copy unless ``inplace=True``
    (one return type); integer inputs give float64; no rank warnings are
    issued there. Runs single-threaded (serial kernels).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.ones(8, dtype=np.float32)
    >>> y = nbops.dropout(x, 0.5, rng=0)
    >>> y.dtype, sorted(set(y.tolist())) == [0.0, 2.0]
    (dtype('float32'), True)
    >>> np.array_equal(y, x * nbops.dropout_mask(x.shape, 0.5, rng=0))
    True
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().dropout(input, p, training, inplace, rng=rng, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().dropout(input, p, training, inplace, rng=rng, out=out)
    return _dropout(input, check_p(p), training, inplace, rng, None, out)


def dropout2d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    r"""Zero whole channels with probability ``p``; scale the rest by :math:`1/(1-p)`.

    PyTorch 2.13's rank rules: a 4-D input is ``(N, C, H, W)``, a 3-D input is
    taken as ``(N, C, L)`` (with PyTorch's warning); other ranks warn (deprecated
    in PyTorch) and use the first two axes as ``(N, C)``; fewer than 2 axes
    raise ``ValueError`` when a mask is drawn. Channel ``n * C + c`` (C order
    over the first two axes) is kept iff mask element ``n * C + c`` is, so the
    result equals ``input * dropout_mask((N, C) + (1,) * (ndim - 2), p, rng=rng,
    dtype=...)``.

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)``, or ``(N, C, L)``; see the rank rules above.
    p : float, default 0.5
        Probability of a channel being zeroed, in [0, 1].
    training : bool, default True
        If False, return ``input`` itself (no copy).
    inplace : bool, default False
        Write into ``input`` (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness, as for :func:`dropout`.
    out : ndarray, optional, keyword-only
        Array of exactly the result's shape and dtype to write into, as for
        :func:`dropout`.

    Returns
    -------
    ndarray
        ``input`` times the channel mask, same shape and dtype as :func:`dropout`'s.

    Examples
    --------
    >>> x = np.ones((2, 3, 4, 4))
    >>> y = nbops.dropout2d(x, 0.5, rng=1)
    >>> bool(np.all((y == 0).all(axis=(2, 3)) | (y == 2).all(axis=(2, 3))))
    True
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().dropout2d(input, p, training, inplace, rng=rng, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().dropout2d(input, p, training, inplace, rng=rng, out=out)
    p = check_p(p)
    warn_feature_rank("dropout2d", np.ndim(input), stacklevel=2)
    return _dropout(input, p, training, inplace, rng, "dropout2d", out)


def dropout3d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    r"""Zero whole 3-D channels with probability ``p``; scale the rest by :math:`1/(1-p)`.

    PyTorch 2.13's rank rules: a 5-D input is ``(N, C, D, H, W)`` (channels over
    the first two axes); any other rank is taken as unbatched, channels along
    axis 0 (a 4-D input is ``(C, D, H, W)``), with PyTorch's deprecation
    warning for ranks other than 4 and 5; a 0-d input raises ``ValueError``
    when a mask is drawn. Equal to ``input * dropout_mask(s, p, rng=rng,
    dtype=...)`` with ``s = (N, C, 1, 1, 1)`` for 5-D inputs and
    ``(C,) + (1,) * (ndim - 1)`` otherwise.

    Parameters
    ----------
    input : array_like
        ``(N, C, D, H, W)`` or ``(C, D, H, W)``; see the rank rules above.
    p : float, default 0.5
        Probability of a channel being zeroed, in [0, 1].
    training : bool, default True
        If False, return ``input`` itself (no copy).
    inplace : bool, default False
        Write into ``input`` (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness, as for :func:`dropout`.
    out : ndarray, optional, keyword-only
        Array of exactly the result's shape and dtype to write into, as for
        :func:`dropout`.

    Returns
    -------
    ndarray
        ``input`` times the channel mask, same shape and dtype as :func:`dropout`'s.

    Examples
    --------
    >>> x = np.ones((3, 2, 2, 2), dtype=np.float32)   # (C, D, H, W)
    >>> y = nbops.dropout3d(x, 0.5, rng=1)
    >>> bool(np.all((y == 0).all(axis=(1, 2, 3)) | (y == 2).all(axis=(1, 2, 3))))
    True
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().dropout3d(input, p, training, inplace, rng=rng, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().dropout3d(input, p, training, inplace, rng=rng, out=out)
    p = check_p(p)
    warn_feature_rank("dropout3d", np.ndim(input), stacklevel=2)
    return _dropout(input, p, training, inplace, rng, "dropout3d", out)


def dropout1d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    r"""Zero whole 1-D channels with probability ``p``; scale the rest by :math:`1/(1-p)`.

    PyTorch 2.13's rank rule: ``(N, C, L)`` (channel ``n * C + c``) or ``(C, L)``
    (unbatched, channel ``c``); any other rank raises ``ValueError`` (PyTorch's
    ``RuntimeError`` message), on every call. The result equals ``input *
    dropout_mask(s, p, rng=rng, dtype=...)`` with ``s = (N, C, 1)`` or ``(C, 1)``.

    Parameters
    ----------
    input : array_like
        ``(N, C, L)`` or ``(C, L)``.
    p : float, default 0.5
        Probability of a channel being zeroed, in [0, 1].
    training : bool, default True
        If False, return ``input`` itself (no copy).
    inplace : bool, default False
        Write into ``input`` (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness, as for :func:`dropout`.
    out : ndarray, optional, keyword-only
        Array of exactly the result's shape and dtype to write into, as for
        :func:`dropout`.

    Returns
    -------
    ndarray
        ``input`` times the channel mask, same shape and dtype as :func:`dropout`'s.

    Notes
    -----
    Same as ``torch.nn.functional.dropout1d`` (feature dropout of the input,
    unsqueezed to ``(1, C, L)`` when unbatched). Inside ``@numba.njit`` a rank
    other than 2 or 3 is a typing error.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.ones((2, 3, 4), dtype=np.float32)   # (N, C, L)
    >>> y = nbops.dropout1d(x, 0.5, rng=1)
    >>> bool(np.all((y == 0).all(axis=2) | (y == 2).all(axis=2)))
    True
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().dropout1d(input, p, training, inplace, rng=rng, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().dropout1d(input, p, training, inplace, rng=rng, out=out)
    p = check_p(p)
    check_dropout1d_rank(np.ndim(input))
    return _dropout(input, p, training, inplace, rng, "dropout1d", out)


_ALPHA_NOTES = r"""Alpha dropout (Klambauer et al., "Self-Normalizing Neural Networks", 2017)
    keeps the mean and variance of inputs of mean 0 and variance 1 (SELU
    activations): with :math:`\alpha' = -1.7580993408473766` (the SELU
    saturation value), :math:`a = ((\alpha'^2 p + 1)(1 - p))^{{-1/2}}` and
    :math:`b = -a \alpha' p`, the output is :math:`a (x m + \alpha' (1 - m)) + b`
    for the keep mask :math:`m` ({mask}). PyTorch's arithmetic and rounding
    (``aten/src/ATen/native/Dropout.cpp``): a kept element is ``x * a + b`` and a
    dropped one ``x * 0 + (a alpha' + b)``, each constant rounded to the
    input's dtype, so the result equals PyTorch's for the same mask, bit for
    bit (PyTorch's random numbers differ). ``p == 1`` gives ``input * 0`` and
    ``training=False`` or ``p == 0`` the input itself, as PyTorch. The
    gradient is ``grad * a`` where kept, 0 where dropped
    (:func:`{name}_backward`). Inside ``@numba.njit``: as :func:`dropout`."""


def alpha_dropout(input, p=0.5, training=False, inplace=False, *, rng=None, out=None):
    r"""Alpha dropout: drop elements to the SELU saturation value, then restore mean 0
    and variance 1 with an affine map.

    Parameters
    ----------
    input : array_like
        Any shape (0-d and empty included); the dtype rule of :func:`dropout`.
    p : float, default 0.5
        Probability of an element being dropped, in [0, 1].
    training : bool, default False
        If False (PyTorch's default here), return ``input`` itself (no copy).
    inplace : bool, default False
        Write into ``input`` (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness, as for :func:`dropout`: the keep decisions are
        ``dropout_mask(input.shape, p, rng=rng, dtype=bool)``.
    out : ndarray, optional, keyword-only
        Array of exactly the result's shape and dtype to write into, as for
        :func:`dropout`.

    Returns
    -------
    ndarray
        Same shape as ``input``; a non-contiguous input gives a C-contiguous
        result.

    Notes
    -----
    {notes}

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.zeros(8, dtype=np.float32)
    >>> y = nbops.alpha_dropout(x, 0.5, training=True, rng=0)
    >>> keep = nbops.dropout_mask(8, 0.5, rng=0, dtype=bool)
    >>> len(set(y[keep].tolist())), len(set(y[~keep].tolist()))
    (1, 1)
    >>> nbops.alpha_dropout(x, 0.5) is x   # training=False
    True
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().alpha_dropout(input, p, training, inplace, rng=rng, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().alpha_dropout(input, p, training, inplace, rng=rng, out=out)
    return _dropout(input, check_p(p), training, inplace, rng, None, out, "alpha")


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False, *, rng=None,
                          out=None):
    r"""Alpha dropout of whole channels: one decision per ``(n, c)`` of an ``(N, C, ...)``
    input (see :func:`alpha_dropout` for the map).

    As PyTorch's ``feature_alpha_dropout``: the first two axes number the
    channels at any rank (a 2-D ``(N, C)`` input drops single elements);
    fewer than 2 axes raise ``ValueError`` when a mask is drawn. The keep
    decision of channel ``n * C + c`` is ``dropout_mask((N, C) + (1,) * (ndim -
    2), p, rng=rng, dtype=bool)``'s.

    Parameters
    ----------
    input : array_like
        ``(N, C, ...)``.
    p : float, default 0.5
        Probability of a channel being dropped, in [0, 1].
    training : bool, default False
        If False (PyTorch's default here), return ``input`` itself (no copy).
    inplace : bool, default False
        Write into ``input`` (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness, as for :func:`dropout`.
    out : ndarray, optional, keyword-only
        Array of exactly the result's shape and dtype to write into, as for
        :func:`dropout`.

    Returns
    -------
    ndarray
        Same shape and dtype as :func:`alpha_dropout`'s.

    Notes
    -----
    {notes}

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.zeros((2, 3, 4), dtype=np.float32)
    >>> y = nbops.feature_alpha_dropout(x, 0.5, training=True, rng=0)
    >>> bool(np.all(y == y[:, :, :1]))   # constant along each channel
    True
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().feature_alpha_dropout(input, p, training, inplace, rng=rng, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().feature_alpha_dropout(input, p, training, inplace, rng=rng, out=out)
    return _dropout(input, check_p(p), training, inplace, rng, "feature_alpha_dropout", out,
                    "alpha")


alpha_dropout.__doc__ = alpha_dropout.__doc__.replace("{notes}", _ALPHA_NOTES.format(
    mask="one decision per element", name="alpha_dropout"))
feature_alpha_dropout.__doc__ = feature_alpha_dropout.__doc__.replace(
    "{notes}", _ALPHA_NOTES.format(mask="one decision per channel",
                                   name="feature_alpha_dropout"))


def dropout_mask(shape, p, rng=None, dtype=np.float32):
    r"""The dropout mask that :func:`dropout` multiplies by, to apply it again.

    Parameters
    ----------
    shape : int or tuple of ints
    p : float
        Drop probability in [0, 1].
    rng : None, int or numpy.random.Generator
        As in :func:`dropout`: with the same int seed (or a Generator in the
        same state) ``dropout(x, p, rng=rng)`` equals
        ``x * dropout_mask(x.shape, p, rng=rng, dtype=x.dtype)`` bit for bit.
    dtype : float32 (default), float64, float16 or bool
        A float dtype gives the *scaled* mask: ``1 / (1 - p)`` (rounded to the
        dtype) where kept, 0 where dropped; ``bool`` gives the keep-mask.

    Returns
    -------
    ndarray of ``shape`` and ``dtype`` (C-contiguous). ``p == 0`` gives ones
    (True), ``p == 1`` zeros (False); neither draws from ``rng``.

    Examples
    --------
    >>> keep = nbops.dropout_mask(6, 0.5, rng=3, dtype=bool)
    >>> keep.tolist() == (nbops.dropout_mask(6, 0.5, rng=3) != 0).tolist()
    True
    """
    shape = mask_shape(shape)
    p = check_p(p)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        compute = dtype
        scale, zero = np.bool_(True), np.bool_(False)
    elif dtype in (np.float32, np.float64, np.float16):
        compute = np.dtype(np.float32) if dtype == np.float16 else dtype
        scale = zero = None  # below: 1 / (1 - p) needs p < 1
    else:
        raise TypeError(f"dtype must be float32, float64, float16 or bool, got {dtype}")
    n = 1
    for s in shape:
        n *= s
    if n == 0 or p == 0.0:
        return np.ones(shape, dtype)
    if p == 1.0:
        return np.zeros(shape, dtype)
    if scale is None:
        scale, zero = dropout_scale(p, compute), compute.type(0)
    key = dropout_key(rng)
    out = _memory.empty(shape, compute)
    _run_mask(out.reshape(-1), 0, key, dropout_threshold(p), scale, zero)
    return out if compute == dtype else out.astype(dtype)


# ------------------------------------------------------------------ backward
_SEED_MESSAGE = ("rng: the backward regenerates the forward's mask from its integer seed; "
                 "pass the int seed the forward used (a Generator or None cannot regenerate "
                 "it: draw the seed once, seed = int(gen.integers(2**64, dtype=np.uint64)), "
                 "and pass it to both)")


def _check_seed(rng):
    """``rng`` of a backward: an int seed (TypeError naming ``rng`` otherwise)."""
    if not isinstance(rng, (int, np.integer)) or isinstance(rng, (bool, np.bool_)):
        raise TypeError(f"{_SEED_MESSAGE}; got {type(rng).__name__}")
    return rng


def _backward(grad_output, p, training, rng, feature, out, mode="dropout"):
    """Shared body of the dropout backwards: the forward applied to grad_output
    with the same seed (the gradient of ``x * mask`` is ``g * mask``); alpha
    dropout's (``mode="alpha_grad"``): ``g`` times its mask ``a`` or 0."""
    p = check_p(p)
    _check_seed(rng)
    if type(grad_output) is not np.ndarray:
        if is_device_array(grad_output):
            if mode != "dropout":
                return _cuda().alpha_dropout_backward(grad_output, p, training, rng, out,
                                                      feature)
            return _cuda().dropout_backward(grad_output, p, training, rng, out, feature)
        if is_dask_array(grad_output):
            return dask_ops().dropout_backward(grad_output, p, training, rng, feature, out,
                                               mode)
    g = _float_array(grad_output, "grad_output")
    if feature == "dropout1d":
        check_dropout1d_rank(g.ndim)
    if out is None and (not training or p == 0.0 or g.size == 0):
        return g.copy()  # a new array, as autograd's gradient (the forward returns its input)
    return _dropout(g, p, training, False, rng, feature, out, mode)


_BACKWARD_DOC = r"""Gradient of :func:`{name}`: ``grad_output`` times the forward's mask.

    The mask is regenerated from the same integer seed (no mask is stored):
    ``{name}_backward(g, p, training, rng=seed)`` equals ``{name}(g, p, training,
    rng=seed)``, bit for bit, on any thread count and on CUDA.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to the forward's output (its
        shape; a float array).
    p : float, default 0.5
        The forward's drop probability, in [0, 1].
    training : bool, default True
        The forward's ``training``.
    rng : int, keyword-only
        The integer seed the forward used (required: a Generator or None
        cannot regenerate the mask).
    out : ndarray, optional, keyword-only
        Array of exactly the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        ``grad_output * mask`` (the mask scaled by ``1 / (1 - p)`` where kept),
        in ``grad_output``'s dtype; ``training=False`` or ``p == 0``: a copy of
        ``grad_output``; ``p == 1``: ``grad_output * 0``.

    Notes
    -----
    PyTorch's ``native_dropout_backward(grad, mask, 1 / (1 - p))``: the
    gradient of ``x * mask`` with the mask the forward drew. Inside
    ``@numba.njit`` ``rng`` must be an integer.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.ones({shape}, dtype=np.float32)
    >>> y = nbops.{name}(x, 0.5, rng=7)
    >>> g = np.full_like(x, 3.0)
    >>> gx = nbops.{name}_backward(g, 0.5, rng=7)
    >>> np.array_equal(gx, g * y)
    True
    """


def dropout_backward(grad_output, p=0.5, training=True, *, rng, out=None):
    return _backward(grad_output, p, training, rng, None, out)


def dropout2d_backward(grad_output, p=0.5, training=True, *, rng, out=None):
    return _backward(grad_output, p, training, rng, "dropout2d", out)


def dropout3d_backward(grad_output, p=0.5, training=True, *, rng, out=None):
    return _backward(grad_output, p, training, rng, "dropout3d", out)


def dropout1d_backward(grad_output, p=0.5, training=True, *, rng, out=None):
    return _backward(grad_output, p, training, rng, "dropout1d", out)


dropout_backward.__doc__ = _BACKWARD_DOC.format(name="dropout", shape="8")
dropout2d_backward.__doc__ = _BACKWARD_DOC.format(name="dropout2d", shape="(2, 3, 4, 4)")
dropout3d_backward.__doc__ = _BACKWARD_DOC.format(name="dropout3d", shape="(2, 3, 2, 2, 2)")
dropout1d_backward.__doc__ = _BACKWARD_DOC.format(name="dropout1d", shape="(2, 3, 4)")


_ALPHA_BACKWARD_DOC = r"""Gradient of :func:`{name}`: ``grad_output * a`` where kept, else 0.

    The mask is regenerated from the same integer seed (no mask is stored), on
    any thread count and on CUDA, bit for bit.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to the forward's output (its
        shape; a float array).
    p : float, default 0.5
        The forward's drop probability, in [0, 1].
    training : bool, default False
        The forward's ``training`` (False: the gradient is ``grad_output``).
    rng : int, keyword-only
        The integer seed the forward used (required: a Generator or None
        cannot regenerate the mask).
    out : ndarray, optional, keyword-only
        Array of exactly the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        ``grad_output * (a if kept else 0)`` with ``a = ((alpha'^2 p + 1)(1 -
        p))^(-1/2)`` rounded to ``grad_output``'s dtype; ``training=False`` or
        ``p == 0``: a copy of ``grad_output``; ``p == 1``: ``grad_output * 0``.

    Notes
    -----
    What ``torch.autograd`` computes for PyTorch's ``input * noise + b``: the
    gradient ``grad * noise``, ``noise = keep * a`` in the input's dtype.
    Inside ``@numba.njit`` ``rng`` must be an integer.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> g = np.ones({shape}, dtype=np.float32)
    >>> gx = nbops.{name}_backward(g, 0.5, True, rng=7)
    >>> y0 = nbops.{name}(np.zeros_like(g), 0.5, True, rng=7)
    >>> y1 = nbops.{name}(np.ones_like(g), 0.5, True, rng=7)
    >>> bool(np.allclose(gx, y1 - y0))   # the slope of the forward's affine map
    True
    """


def alpha_dropout_backward(grad_output, p=0.5, training=False, *, rng, out=None):
    return _backward(grad_output, p, training, rng, None, out, "alpha_grad")


def feature_alpha_dropout_backward(grad_output, p=0.5, training=False, *, rng, out=None):
    return _backward(grad_output, p, training, rng, "feature_alpha_dropout", out,
                     "alpha_grad")


alpha_dropout_backward.__doc__ = _ALPHA_BACKWARD_DOC.format(name="alpha_dropout", shape="8")
feature_alpha_dropout_backward.__doc__ = _ALPHA_BACKWARD_DOC.format(
    name="feature_alpha_dropout", shape="(2, 3, 4)")


# ------------------------------------------------- the same names inside @njit
# Serial cached kernels only (never a parallel dispatcher: see
# docs/guides/architecture.rst, "Cache, fork and thread rules"). The key
# derivation is the one above, so an int seed gives the same mask as outside.
def _njit_seed(rng):
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_njit_seed)
def _njit_seed_ol(rng):
    if _is_none(rng):
        def impl_none(rng):  # Numba's own per-thread np.random state
            lo = np.uint64(np.random.randint(0, 1 << 32))
            hi = np.uint64(np.random.randint(0, 1 << 32))
            return lo | (hi << _SH32)
        return impl_none
    if isinstance(rng, types.Integer):
        if rng.signed:
            def impl_signed(rng):
                if rng < 0:
                    raise ValueError("rng: an int seed must be in [0, 2**64)")
                return np.uint64(rng)
            return impl_signed
        return lambda rng: np.uint64(rng)
    raise errors.TypingError("nbops: inside @njit, rng must be None or an integer seed")


def _is_none(t):
    return t is None or isinstance(t, (types.NoneType, types.Omitted))


@register_jitable
def _njit_check_p(p):
    if not (p >= 0.0 and p <= 1.0):
        raise ValueError(P_RANGE_MESSAGE)


@register_jitable
def _njit_threshold(p):
    return np.uint32(min(np.floor(p * 4294967296.0 + 0.5), 4294967295.0))


@register_jitable
def _njit_key(rng, p):
    s = splitmix64(_njit_seed(rng))
    return np.uint32(s & _LO32), np.uint32(s >> _SH32), _njit_threshold(p)


@register_jitable
def _njit_prepare(shape, p, rng, mode, axes):
    """(channels, inner, seed) of a call that draws (0 < p <= 1, non-empty input)."""
    channels = 1
    inner = 1
    if p == 1.0:  # nothing to draw, no rank check (as PyTorch)
        return channels, inner, np.uint64(0)
    if mode == 1:
        if len(shape) < axes:
            raise ValueError("input: feature dropout requires at least 2 dimensions")
        for k in range(len(shape)):  # the first ``axes`` axes number the channels
            if k < axes:
                channels *= shape[k]
            else:
                inner *= shape[k]
    return channels, inner, _njit_seed(rng)


def _first(v):
    """``v``, or ``v[0]`` of a pair (alpha dropout's (multiplier, shift) pairs)."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_first)
def _first_ol(v):
    if isinstance(v, types.BaseTuple):
        return lambda v: v[0]
    return lambda v: v


def _channel_apply(xf, rf, channels, inner, k0, k1, t, scale, zero):
    """Feature dropout of flat ``xf`` into ``rf``: ``x * mask[c]``, or alpha dropout's
    ``x * mult[c] + shift[c]`` for pairs ``scale``, ``zero`` (serial kernels)."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_channel_apply)
def _channel_apply_ol(xf, rf, channels, inner, k0, k1, t, scale, zero):
    if isinstance(scale, types.BaseTuple):
        def impl_affine(xf, rf, channels, inner, k0, k1, t, scale, zero):
            mult = np.empty(channels, rf.dtype)
            shift = np.empty(channels, rf.dtype)
            _drop_serial(None, None, mult, 0, k0, k1, t, scale[0], zero[0])
            _drop_serial(None, None, shift, 0, k0, k1, t, scale[1], zero[1])
            _channel_affine_serial(xf, rf, mult, shift, inner)
        return impl_affine

    def impl(xf, rf, channels, inner, k0, k1, t, scale, zero):
        mult = np.empty(channels, rf.dtype)
        _drop_serial(None, None, mult, 0, k0, k1, t, scale, zero)
        _channel_serial(xf, rf, mult, inner)
    return impl


def _njit_constants(dtype, alpha):
    """A jitted ``p -> (scale, zero)`` in ``dtype`` (0 < p <= 1): dropout's scalars
    (``alpha`` False), alpha dropout's ``(a, kept_shift)``, ``(0, dropped_shift)``
    pairs (True; the arithmetic of :func:`nbops._ops.plan.alpha_dropout_constants`)
    or its gradient's scalars ``a``, 0 (``"grad"``)."""
    if alpha == "grad":
        def constants(p):
            a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1.0) * (1.0 - p)) if p < 1.0 else 0.0
            return dtype(a), dtype(0)
    elif alpha:
        def constants(p):
            a = 1.0 / math.sqrt((_ALPHA * _ALPHA * p + 1.0) * (1.0 - p)) if p < 1.0 else 0.0
            kept = dtype(_ALPHA * a * p)
            return (dtype(a), kept), (dtype(0), dtype(kept - dtype(_ALPHA * a)))
    else:
        def constants(p):
            return (dtype(1.0 / (1.0 - p)) if p < 1.0 else dtype(0)), dtype(0)
    return register_jitable(constants)


@_config.serial_kernel
def _njit_apply(xf, rf, same, p, seed, feature, channels, inner, scale, zero):
    """The drawing part of the @njit path on flat C-order arrays (cached: one
    specialization per dtype, whatever the rank and the rng type; alpha
    dropout's pairs ``scale``, ``zero``: one more)."""
    if p == 1.0:
        for i in range(rf.size):
            rf[i] = xf[i] * _first(zero)
        return
    s = splitmix64(seed)
    k0, k1, t = np.uint32(s & _LO32), np.uint32(s >> _SH32), _njit_threshold(p)
    if not feature or inner == 1:
        if same:
            _drop_serial(None, True, rf, 0, k0, k1, t, scale, zero)
        else:
            _drop_serial(xf, None, rf, 0, k0, k1, t, scale, zero)
    else:
        _channel_apply(xf, rf, channels, inner, k0, k1, t, scale, zero)


@register_jitable
def _njit_run(xf, rf, same, shape, p, rng, mode, axes, scale, zero):
    channels, inner, seed = _njit_prepare(shape, p, rng, mode, axes)
    _njit_apply(xf, rf, same, p, seed, mode == 1, channels, inner, scale, zero)


def _make_njit_impl(input, rng, out, feature, alpha=False):
    """The @njit implementation of a dropout (``feature``: None or the feature
    dropout's name; ``alpha``: True for alpha dropout's map, ``"grad"`` for its
    gradient, see _njit_constants) for ``input``'s type."""
    impl = _njit_impl(input, rng, out, feature, alpha)
    if impl is not None and alpha:  # alpha dropout: training=False by default, as PyTorch
        impl.__defaults__ = (0.5, False, False, None, None)
    return impl


def _njit_impl(input, rng, out, feature, alpha):
    _njit_seed_ol(rng)  # a bad rng type: TypingError now
    if isinstance(input, (types.Float, types.Integer, types.Boolean)):
        if not _is_none(out):
            raise errors.TypingError("nbops: out= needs an array input")
        if feature is not None:
            raise errors.TypingError(f"nbops.{feature}: input must be an array")
        ftype = input if isinstance(input, types.Float) else types.float64
        fconsts = _njit_constants(ftype, alpha)

        def impl_scalar(input, p=0.5, training=True, inplace=False, rng=None, out=None):
            _njit_check_p(p)
            x = ftype(input)
            if not training or p == 0.0:
                return x
            if p == 1.0:
                return x * ftype(0)
            k0, k1, t = _njit_key(rng, p)
            scale, zero = fconsts(p)
            return _masked(x, keep(0, k0, k1, t), scale, zero)

        return impl_scalar
    if not isinstance(input, types.Array):
        return None
    if isinstance(input.dtype, types.Float) and input.dtype.bitwidth >= 32:
        dtype = input.dtype
    elif isinstance(input.dtype, (types.Integer, types.Boolean)):
        dtype = types.float64
    else:
        raise errors.TypingError(f"nbops: unsupported input dtype {input.dtype} inside @njit")
    if feature == "dropout1d" and input.ndim not in (2, 3):
        raise errors.TypingError(DROPOUT1D_RANK_MESSAGE.format(ndim=input.ndim))
    mode = 0 if feature is None else 1
    axes = 0 if feature is None else channel_axes(feature, input.ndim)  # the plan's rule
    writable = dtype == input.dtype and input.mutable
    consts = _njit_constants(dtype, alpha)

    if not _is_none(out):
        if not (isinstance(out, types.Array) and out.dtype == dtype and out.ndim == input.ndim
                and out.mutable):
            raise errors.TypingError(f"nbops: out must be a writable {input.ndim}-D array "
                                     f"of dtype {dtype}")

        def impl_out(input, p=0.5, training=True, inplace=False, rng=None, out=None):
            _njit_check_p(p)
            if inplace:
                raise ValueError("out= and inplace=True cannot be used together")
            if out.shape != input.shape:
                raise ValueError("out must have the input's shape")
            src = input.astype(dtype)  # a C-order copy
            sf = src.reshape(src.size)
            if training and p != 0.0 and input.size != 0:
                scale, zero = consts(p)
                _njit_run(sf, sf, True, input.shape, p, rng, mode, axes, scale, zero)
            i = 0
            for idx in np.ndindex(out.shape):
                out[idx] = sf[i]
                i += 1
            return out

        return impl_out

    if writable and input.layout == "C":  # no copies
        def impl_c(input, p=0.5, training=True, inplace=False, rng=None, out=None):
            _njit_check_p(p)
            if not training or p == 0.0 or input.size == 0:
                return input if inplace else input.copy()
            res = input if inplace else np.empty_like(input)
            scale, zero = consts(p)
            _njit_run(input.reshape(input.size), res.reshape(res.size), inplace,
                      input.shape, p, rng, mode, axes, scale, zero)
            return res

        return impl_c

    if writable:  # strided: compute on a C-order copy, copy back if in place
        def impl_strided(input, p=0.5, training=True, inplace=False, rng=None, out=None):
            _njit_check_p(p)
            if not training or p == 0.0 or input.size == 0:
                return input if inplace else input.copy()
            src = input.copy()
            sf = src.reshape(src.size)
            scale, zero = consts(p)
            _njit_run(sf, sf, True, input.shape, p, rng, mode, axes, scale, zero)
            if inplace:
                i = 0
                for idx in np.ndindex(input.shape):
                    input[idx] = sf[i]
                    i += 1
                return input
            return src

        return impl_strided

    def impl_new(input, p=0.5, training=True, inplace=False, rng=None, out=None):
        _njit_check_p(p)
        if inplace:
            raise TypeError("input: inplace=True needs a writable float32 or float64 array")
        src = input.astype(dtype)
        if not training or p == 0.0 or input.size == 0:
            return src
        sf = src.reshape(src.size)
        scale, zero = consts(p)
        _njit_run(sf, sf, True, input.shape, p, rng, mode, axes, scale, zero)
        return src

    return impl_new


@overload(dropout)
def _dropout_njit(input, p=0.5, training=True, inplace=False, rng=None, out=None):
    return _make_njit_impl(input, rng, out, None)


@overload(dropout2d)
def _dropout2d_njit(input, p=0.5, training=True, inplace=False, rng=None, out=None):
    return _make_njit_impl(input, rng, out, "dropout2d")


@overload(dropout3d)
def _dropout3d_njit(input, p=0.5, training=True, inplace=False, rng=None, out=None):
    return _make_njit_impl(input, rng, out, "dropout3d")


@overload(dropout1d)
def _dropout1d_njit(input, p=0.5, training=True, inplace=False, rng=None, out=None):
    return _make_njit_impl(input, rng, out, "dropout1d")


@overload(alpha_dropout)
def _alpha_dropout_njit(input, p=0.5, training=False, inplace=False, rng=None, out=None):
    return _make_njit_impl(input, rng, out, None, alpha=True)


@overload(feature_alpha_dropout)
def _feature_alpha_dropout_njit(input, p=0.5, training=False, inplace=False, rng=None,
                                out=None):
    return _make_njit_impl(input, rng, out, "feature_alpha_dropout", alpha=True)


def _make_backward_njit(grad_output, rng, out, forward, training=True):
    """The @njit dropout backward: the forward (its overload) applied to grad_output
    with the integer seed (``training``: the default of the forward's)."""
    if not isinstance(grad_output, types.Array):
        return None
    if not isinstance(grad_output.dtype, types.Float):
        raise errors.TypingError("nbops: grad_output must be a float array")
    if not isinstance(rng, types.Integer):
        raise errors.TypingError(f"nbops: inside @njit, {_SEED_MESSAGE}")

    def impl(grad_output, p=0.5, training=True, rng=None, out=None):
        return forward(grad_output, p, training, False, rng=rng, out=out)

    impl.__defaults__ = (0.5, training, None, None)  # the overload's own defaults
    return impl


def _alpha_dropout_grad(input, p=0.5, training=False, inplace=False, rng=None, out=None):
    """Alpha dropout's gradient inside @njit: ``input`` times the mask ``a``/0."""
    raise NotImplementedError("only callable inside numba-compiled code")


def _feature_alpha_dropout_grad(input, p=0.5, training=False, inplace=False, rng=None,
                                out=None):
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_alpha_dropout_grad)
def _alpha_dropout_grad_njit(input, p=0.5, training=False, inplace=False, rng=None,
                             out=None):
    return _make_njit_impl(input, rng, out, None, alpha="grad")


@overload(_feature_alpha_dropout_grad)
def _feature_alpha_dropout_grad_njit(input, p=0.5, training=False, inplace=False, rng=None,
                                     out=None):
    return _make_njit_impl(input, rng, out, "feature_alpha_dropout", alpha="grad")


@overload(dropout_backward)
def _dropout_backward_njit(grad_output, p=0.5, training=True, rng=None, out=None):
    return _make_backward_njit(grad_output, rng, out, dropout)


@overload(dropout2d_backward)
def _dropout2d_backward_njit(grad_output, p=0.5, training=True, rng=None, out=None):
    return _make_backward_njit(grad_output, rng, out, dropout2d)


@overload(dropout3d_backward)
def _dropout3d_backward_njit(grad_output, p=0.5, training=True, rng=None, out=None):
    return _make_backward_njit(grad_output, rng, out, dropout3d)


@overload(dropout1d_backward)
def _dropout1d_backward_njit(grad_output, p=0.5, training=True, rng=None, out=None):
    return _make_backward_njit(grad_output, rng, out, dropout1d)


@overload(alpha_dropout_backward)
def _alpha_dropout_backward_njit(grad_output, p=0.5, training=False, rng=None, out=None):
    return _make_backward_njit(grad_output, rng, out, _alpha_dropout_grad, training=False)


@overload(feature_alpha_dropout_backward)
def _feature_alpha_dropout_backward_njit(grad_output, p=0.5, training=False, rng=None,
                                         out=None):
    return _make_backward_njit(grad_output, rng, out, _feature_alpha_dropout_grad,
                               training=False)
