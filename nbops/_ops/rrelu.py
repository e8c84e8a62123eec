"""Randomized leaky ReLU: ``nbops.rrelu`` and ``nbops.rrelu_backward``.

Semantics are PyTorch's (``torch.rrelu`` / ``rrelu_with_noise``):

* evaluation (``training=False``): ``leaky_relu`` with the slope
  ``(lower + upper) / 2`` (it is computed by :func:`nbops.leaky_relu`);
* training: an element with ``x <= 0`` is multiplied by its own slope
  ``r ~ U(lower, upper)``; the others (``x > 0``, NaN) pass unchanged.

The slopes come from the counter-based generator of :mod:`nbops.scalar.random`
as dropout's mask does: the seed gives the key (``splitmix64``), element ``i``
of the input (C order) takes the 32-bit word ``w = r[i % 4]`` of the Philox
block ``i // 4`` and its slope is ``lower + (upper - lower) * w / 2**32``
(float64, then rounded to the input's dtype), so the same seed gives the same
slopes on any thread count, inside ``@njit`` and on CUDA, and the backward
regenerates them from the integer seed instead of storing them.

The backward in training is ``grad * slope`` where ``x <= 0`` and ``grad``
elsewhere (PyTorch's ``grad * noise``); in evaluation, or when
``upper - lower <= 1e-6`` (as PyTorch), it is ``leaky_relu``'s backward with
the mean slope.
"""

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
    overlaps_differently,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar.activations import leaky_relu_backward as _leaky_grad_core
from ..scalar.activations import rrelu as _rrelu_core
from ..scalar.activations import rrelu_backward as _rrelu_grad_core
from ..scalar.random import lane, philox4x32_10, splitmix64
from .activation import leaky_relu, leaky_relu_backward
from .dropout import _check_seed, _is_none, _njit_seed, _njit_seed_ol
from .elementwise import _float_array
from .plan import dropout_key

__all__ = ["rrelu", "rrelu_backward"]

#: Elements per task of the parallel kernel (a multiple of 4: tasks start on
#: Philox block boundaries).
_TILE = 8192
_LO32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
_TWO = np.uint64(2)
_Z32 = np.uint32(0)
#: 2**-32: a 32-bit word to [0, 1)
_WORD = 2.0 ** -32
#: PyTorch's rrelu backward uses the drawn slopes only when upper - lower exceeds this
NOISE_SPAN = 1e-6


# ------------------------------------------------------------------ CPU kernel
# x: the flat C-order input; g: None (forward: out = rrelu(x) with the drawn
# slopes) or the flat grad_output (backward: out = g * slope where x <= 0, else g).
# out may be x (in place). Element i's slope: lower + span * w / 2**32 with w the
# word i % 4 of Philox block i // 4.
@register_jitable
def _rrelu_blocks(x, g, out, b0, k0, k1, lower, span):
    """Whole Philox blocks: ``out.size`` is a multiple of 4, out[0] is element 4 * b0
    (the four lanes written out, as dropout's blocks: no per-lane loop)."""
    for w in range(out.size >> 2):
        j = b0 + np.uint64(w)
        r0, r1, r2, r3 = philox4x32_10(j & _LO32, j >> _SH32, _Z32, _Z32, k0, k1)
        i = 4 * w
        s0 = lower + span * (np.float64(r0) * _WORD)
        s1 = lower + span * (np.float64(r1) * _WORD)
        s2 = lower + span * (np.float64(r2) * _WORD)
        s3 = lower + span * (np.float64(r3) * _WORD)
        if g is None:
            out[i] = _rrelu_core(x[i], s0)
            out[i + 1] = _rrelu_core(x[i + 1], s1)
            out[i + 2] = _rrelu_core(x[i + 2], s2)
            out[i + 3] = _rrelu_core(x[i + 3], s3)
        else:
            out[i] = _rrelu_grad_core(g[i], x[i], s0)
            out[i + 1] = _rrelu_grad_core(g[i + 1], x[i + 1], s1)
            out[i + 2] = _rrelu_grad_core(g[i + 2], x[i + 2], s2)
            out[i + 3] = _rrelu_grad_core(g[i + 3], x[i + 3], s3)


def _rrelu(x, g, out, start, k0, k1, lower, span):
    # start: the global index of out[0] (0 for a whole array; nbops/_dask.py runs
    # pieces of an array), as nbops/_ops/dropout.py's _drop
    n = out.size
    for task in prange((n + _TILE - 1) // _TILE):
        a = task * _TILE
        b = min(a + _TILE, n)
        # whole Philox blocks h .. e of the piece a .. b (start + h: a multiple of 4)
        h = a + min((4 - (start + a) % 4) % 4, b - a)
        e = h + (b - h) // 4 * 4
        b0 = np.uint64(start + h) >> _TWO
        if g is None:
            _rrelu_blocks(x[h:e], g, out[h:e], b0, k0, k1, lower, span)
        else:
            _rrelu_blocks(x[h:e], g[h:e], out[h:e], b0, k0, k1, lower, span)
        for side in range(2):  # the partial blocks a .. h and e .. b
            lo = a if side == 0 else e
            hi = h if side == 0 else b
            if lo < hi:
                off = (start + lo) % 4
                j = np.uint64(start + lo - off) >> _TWO
                r0, r1, r2, r3 = philox4x32_10(j & _LO32, j >> _SH32, _Z32, _Z32, k0, k1)
                for q in range(hi - lo):
                    s = lower + span * (np.float64(lane(r0, r1, r2, r3, off + q)) * _WORD)
                    i = lo + q
                    if g is None:
                        out[i] = _rrelu_core(x[i], s)
                    else:
                        out[i] = _rrelu_grad_core(g[i], x[i], s)


_rrelu_serial, _rrelu_parallel = _config.kernels(_rrelu)


def _run(x, g, out, key, lower, upper, start=0):
    """out = rrelu(x) (g None) or its gradient g * slope, for the flat pieces whose
    first element has the global index ``start``."""
    launch(_rrelu_serial, _rrelu_parallel, ("rrelu", out.dtype.char, g is None), out.size,
           x, g, out, start, key[0], key[1], float(lower), float(upper) - float(lower))


# ------------------------------------------------------------------ argument checks
def _bounds(lower, upper):
    """(lower, upper) as floats; ValueError if lower > upper (as PyTorch)."""
    for name, v in (("lower", lower), ("upper", upper)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer,
                                                                 np.floating)):
            raise TypeError(f"{name} must be a float, got {type(v).__name__}")
    lower, upper = float(lower), float(upper)
    if not lower <= upper:
        raise ValueError(f"Lower bound should be less than or equal to the upper bound, got "
                         f"lower={lower}, upper={upper}")
    return lower, upper


def _train(input, lower, upper, inplace, rng, out):
    x = input if type(input) is np.ndarray else as_array(input)
    compute, result = result_dtype(x.dtype)
    target = None  # where the result must go: input (inplace), out, or a new array
    if inplace:
        if out is not None:
            raise ValueError("out= and inplace=True cannot be used together")
        check_inplace(input, result)
        target = x
    elif out is not None:
        check_out(out, x.shape, result)
        target = out
    if x.size == 0:  # nothing to draw (rng is not consumed)
        if target is None:
            return x.astype(result)
        return target
    key = dropout_key(rng)  # last: a Generator advances only when the call succeeds
    src = x if (x.dtype == compute and x.flags.c_contiguous) else \
        np.ascontiguousarray(x, dtype=compute)
    if (target is not None and target.dtype == compute and target.flags.c_contiguous
            and not overlaps_differently(target, src)):
        dest = target
    else:
        dest = _memory.empty(x.shape, compute)
    _run(src.reshape(-1), None, dest.reshape(-1), key, lower, upper)
    if target is not None:
        if dest is not target:
            np.copyto(target, dest, casting="unsafe")
        return target
    return dest if result == compute else dest.astype(result)


# ------------------------------------------------------------------ public functions
def rrelu(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, *, rng=None,
          out=None):
    r"""Randomized leaky ReLU: :math:`x` if :math:`x > 0`, else :math:`r x`.

    In training, :math:`r \sim U(\mathrm{lower}, \mathrm{upper})` is drawn for
    each element from the counter-based generator; in evaluation
    :math:`r = (\mathrm{lower} + \mathrm{upper}) / 2`.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    lower, upper : float, default 1/8, 1/3
        The bounds of the slopes' uniform distribution (``lower <= upper``).
    training : bool, default False
        Draw the slopes (True) or use their mean (False), as PyTorch.
    inplace : bool, default False
        Write the result into ``input`` (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness in training, as for :func:`nbops.dropout`: ``None``
        (fresh entropy), an int seed (the same slopes on any thread count and
        on CUDA; :func:`nbops.rrelu_backward` regenerates them from it) or a
        Generator (one 64-bit draw per call).
    out : ndarray, optional, keyword-only
        Array of the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.nn.functional.rrelu`` (PyTorch's ``rrelu_with_noise``: the
    slope is applied where ``x <= 0``; NaN stays NaN). Element ``i`` (C order)
    of the input gets the slope ``lower + (upper - lower) * w / 2**32``, ``w``
    the 32-bit Philox word of the seed's key at counter ``i`` (see
    :mod:`nbops.scalar.random`), so the slopes are a function of the seed and
    the index alone. PyTorch's generator differs: the same seed does not give
    PyTorch's slopes.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.rrelu(np.array([-2.0, 3.0]), 0.25, 0.75)
    array([-1.,  3.])
    >>> y = nbops.rrelu(np.full(1000, -1.0), training=True, rng=0)
    >>> bool(np.all((-y >= 1 / 8) & (-y <= 1 / 3)))
    True
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().rrelu(input, lower, upper, training, inplace, rng=rng, out=out)
    lower, upper = _bounds(lower, upper)
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().rrelu_train(input, lower, upper, inplace, rng, out)
    return _train(input, lower, upper, inplace, rng, out)


def rrelu_backward(grad_output, input, lower=1.0 / 8, upper=1.0 / 3, training=False, *,
                   rng=None, out=None):
    r"""Gradient of :func:`rrelu` with respect to its input.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the loss with respect to the forward's output (the
        input's shape; a float array).
    input : array_like
        The forward's input.
    lower, upper : float, default 1/8, 1/3
        The forward's bounds.
    training : bool, default False
        The forward's ``training``.
    rng : int, keyword-only
        In training: the integer seed the forward used (required; the slopes are
        regenerated from it). Unused in evaluation.
    out : ndarray, optional, keyword-only
        Array of the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        ``grad_input``, of the input's shape, in the common float dtype of
        ``grad_output`` and ``input``.

    Notes
    -----
    PyTorch's ``rrelu_with_noise_backward``: in training (with
    ``upper - lower > 1e-6``) ``grad * r`` where ``x <= 0`` and ``grad``
    elsewhere, ``r`` the slope the forward drew for the element; otherwise
    :func:`nbops.leaky_relu_backward` with the slope ``(lower + upper) / 2``.

    Examples
    --------
    >>> x = np.array([-2.0, -1.0, 3.0])
    >>> y = nbops.rrelu(x, training=True, rng=5)
    >>> gx = nbops.rrelu_backward(np.ones(3), x, training=True, rng=5)
    >>> np.allclose(gx, [y[0] / x[0], y[1] / x[1], 1.0])
    True
    """
    if type(grad_output) is not np.ndarray and is_device_array(grad_output):
        return _cuda().rrelu_backward(grad_output, input, lower, upper, training, rng=rng,
                                      out=out)
    lower, upper = _bounds(lower, upper)
    if not training or upper - lower <= NOISE_SPAN:
        return leaky_relu_backward(grad_output, input, (lower + upper) / 2, out=out)
    _check_seed(rng)
    if is_dask_array(grad_output) or is_dask_array(input):
        return dask_ops().rrelu_backward_train(grad_output, input, lower, upper, rng, out)
    g = _float_array(grad_output, "grad_output")
    x = input if type(input) is np.ndarray else as_array(input)
    result_dtype(x.dtype)
    if g.shape != x.shape:
        raise ValueError(f"grad_output has shape {g.shape} but input has shape {x.shape}: "
                         "they must be the same (the forward's output shape)")
    compute, result = result_dtype(np.result_type(g.dtype, x.dtype))
    if out is not None:
        check_out(out, x.shape, result)
    gs = np.ascontiguousarray(g, dtype=compute)
    xs = np.ascontiguousarray(x, dtype=compute)
    res = _memory.empty(x.shape, compute)
    if res.size:
        _run(xs.reshape(-1), gs.reshape(-1), res.reshape(-1), dropout_key(rng), lower, upper)
    if out is not None:
        np.copyto(out, res, casting="unsafe")
        return out
    return res if result == compute else res.astype(result)


# ------------------------------------------------- the same names inside @njit
# The serial cached kernel (one specialization per dtype and direction); the key
# derivation is dropout's, so an int seed gives the same slopes as outside.
@register_jitable
def _njit_bounds(lower, upper):
    if not lower <= upper:
        raise ValueError("Lower bound should be less than or equal to the upper bound")


@register_jitable
def _njit_key(rng):
    s = splitmix64(_njit_seed(rng))
    return np.uint32(s & _LO32), np.uint32(s >> _SH32)


@register_jitable
def _njit_forward(flat, lower, upper, training, rng):
    """rrelu of the flat C-order ``flat`` in place."""
    if training:
        if flat.size != 0:
            k0, k1 = _njit_key(rng)
            _rrelu_serial(flat, None, flat, 0, k0, k1, np.float64(lower),
                          np.float64(upper) - np.float64(lower))
    else:
        slope = (np.float64(lower) + np.float64(upper)) / 2
        for i in range(flat.size):
            flat[i] = _rrelu_core(flat[i], slope)


def _compute_type(t):
    return t if isinstance(t, types.Float) else types.float64


@overload(rrelu)
def _rrelu_njit(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, rng=None,
                out=None):
    if not isinstance(input, types.Array):
        return None
    if not _is_none(out):
        raise errors.TypingError("nbops.rrelu: out= is not supported inside @njit")
    _njit_seed_ol(rng)  # a bad rng type: TypingError now
    dtype = _compute_type(input.dtype)
    if dtype == input.dtype and input.mutable and input.layout == "C":
        def impl_c(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False,
                   rng=None, out=None):
            _njit_bounds(lower, upper)
            res = input if inplace else input.copy()
            _njit_forward(res.reshape(-1), lower, upper, training, rng)
            return res

        return impl_c

    def impl(input, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, rng=None,
             out=None):
        _njit_bounds(lower, upper)
        if inplace:
            raise TypeError("input: inplace=True inside @njit needs a writable C-contiguous "
                            "float32 or float64 array")
        res = input.astype(dtype)  # a C-order copy
        _njit_forward(res.reshape(-1), lower, upper, training, rng)
        return res

    return impl


@overload(rrelu_backward)
def _rrelu_backward_njit(grad_output, input, lower=1.0 / 8, upper=1.0 / 3, training=False,
                         rng=None, out=None):
    if not (isinstance(grad_output, types.Array) and isinstance(input, types.Array)):
        return None
    if not isinstance(grad_output.dtype, types.Float):
        raise errors.TypingError("nbops.rrelu_backward: grad_output must be a float array")
    if not _is_none(out):
        raise errors.TypingError("nbops.rrelu_backward: out= is not supported inside @njit")
    if not (_is_none(rng) or isinstance(rng, types.Integer)):
        raise errors.TypingError("nbops.rrelu_backward: inside @njit, rng must be the "
                                 "forward's integer seed")
    seeded = isinstance(rng, types.Integer)
    in_type = _compute_type(input.dtype)
    dtype = types.float64 if types.float64 in (in_type, grad_output.dtype) else types.float32

    def impl(grad_output, input, lower=1.0 / 8, upper=1.0 / 3, training=False, rng=None,
             out=None):
        _njit_bounds(lower, upper)
        if grad_output.shape != input.shape:
            raise ValueError("grad_output must have the input's shape")
        g = grad_output.astype(dtype)
        x = input.astype(dtype)
        gf = g.reshape(-1)
        xf = x.reshape(-1)
        lo = np.float64(lower)
        span = np.float64(upper) - lo
        if training and span > NOISE_SPAN:
            if not seeded:
                raise TypeError("rng: the backward regenerates the forward's slopes from "
                                "its integer seed; pass the int seed the forward used")
            if gf.size != 0:
                k0, k1 = _njit_key(rng)
                _rrelu_serial(xf, gf, gf, 0, k0, k1, lo, span)
        else:
            slope = (lo + np.float64(upper)) / 2
            for i in range(gf.size):
                gf[i] = _leaky_grad_core(gf[i], xf[i], slope)
        return g

    return impl

