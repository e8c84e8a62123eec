"""Elementwise activations: ``nbops.relu``, ``nbops.sigmoid``, ...

Each public function validates its arguments once, then runs the shared
elementwise kernels (:mod:`nbops._ops.elementwise`) with the op's scalar core from
:mod:`nbops.scalar.activations`. The ``@overload`` at the bottom of this file
make the same names work inside a user's ``@njit`` code.

Common rules (see docs/guides/semantics.rst):

* float32 stays float32, float64 stays float64; other real dtypes promote as
  ``np.exp`` would (ints to float64, int16 to float32, bool/int8/uint8 to
  float16); complex input raises ``TypeError``.
* ``out=``: an array of exactly the result's shape and dtype to write into.
* ``inplace=True`` (where PyTorch has it): write into ``input`` and return it.
"""

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload

from .. import _config
from .._launch import launch
from .._validate import as_array, as_param, check_out, is_device_array, result_dtype
from ..cuda import ops as _cuda
from ..scalar import activations as S
from ..scalar._math import as_float, const
from .elementwise import Op, map_njit, unary

__all__ = ["relu", "relu6", "elu", "prelu", "leaky_relu", "threshold", "hardtanh",
           "sigmoid", "tanh", "logsigmoid", "softplus", "softshrink", "softsign"]

RELU = Op("relu", S.relu, 0)
RELU6 = Op("relu6", S.relu6, 0)
ELU = Op("elu", S.elu, 1)
PRELU = Op("prelu", S.prelu, 1)
LEAKY_RELU = Op("leaky_relu", S.leaky_relu, 1)
THRESHOLD = Op("threshold", S.threshold, 2)
HARDTANH = Op("hardtanh", S.hardtanh, 2)
SIGMOID = Op("sigmoid", S.sigmoid, 0)
TANH = Op("tanh", S.tanh, 0)
LOGSIGMOID = Op("logsigmoid", S.logsigmoid, 0)
SOFTPLUS = Op("softplus", S.softplus, 2)
SOFTSHRINK = Op("softshrink", S.softshrink, 1)
SOFTSIGN = Op("softsign", S.softsign, 0)


def relu(input, inplace=False, *, out=None):
    r"""Rectified linear unit, :math:`\max(x, 0)`.

    Parameters
    ----------
    input : array_like
        Any shape. NaN stays NaN.
    inplace : bool, default False
        Write the result into ``input`` (a writable float array) and return it.
    out : ndarray, optional
        Array of the result's shape and dtype to write into.

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32.

    Notes
    -----
    Same as ``torch.nn.functional.relu``: NaN stays NaN and ``-0.0`` stays
    ``-0.0``.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> nbops.relu(np.array([-1.0, 0.5, 2.0], dtype=np.float32))
    array([0. , 0.5, 2. ], dtype=float32)
    """
    return unary(RELU, input, (), inplace, out)


def relu6(input, inplace=False, *, out=None):
    r""":math:`\min(\max(x, 0), 6)`.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    inplace : bool, default False
        Write the result into ``input`` (a writable float array) and return it.
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.nn.functional.relu6`` (that is, ``hardtanh(x, 0, 6)``):
    NaN stays NaN.

    Examples
    --------
    >>> nbops.relu6(np.array([-1.0, 3.0, 9.0]))
    array([0., 3., 6.])
    """
    return unary(RELU6, input, (), inplace, out)


def elu(input, alpha=1.0, inplace=False, *, out=None):
    r"""Exponential linear unit: :math:`x` if :math:`x > 0`, else :math:`\alpha (e^x - 1)`.

    ``e^x - 1`` is computed as ``expm1`` (accurate near 0).

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    alpha : float, default 1.0
        Scale of the negative part.
    inplace : bool, default False
        Write the result into ``input`` (a writable float array) and return it.
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.nn.functional.elu``; NaN stays NaN, ``elu(-inf) == -alpha``.

    Examples
    --------
    >>> nbops.elu(np.array([-1.0, 0.0, 2.0]), alpha=2.0)
    array([-1.26424112,  0.        ,  2.        ])
    """
    return unary(ELU, input, (as_param(alpha, "alpha"),), inplace, out)


def leaky_relu(input, negative_slope=0.01, inplace=False, *, out=None):
    r""":math:`x` if :math:`x > 0`, else ``negative_slope`` :math:`\cdot x`.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    negative_slope : float, default 0.01
        Slope for :math:`x \le 0`.
    inplace : bool, default False
        Write the result into ``input`` (a writable float array) and return it.
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.nn.functional.leaky_relu``; NaN stays NaN.

    Examples
    --------
    >>> nbops.leaky_relu(np.array([-2.0, 3.0]), 0.1)
    array([-0.2,  3. ])
    """
    return unary(LEAKY_RELU, input, (as_param(negative_slope, "negative_slope"),),
                 inplace, out)


def threshold(input, threshold, value, inplace=False, *, out=None):
    r""":math:`x` if :math:`x >` ``threshold``, else ``value`` (NaN stays NaN, as PyTorch).

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    threshold : float
        Elements :math:`\le` ``threshold`` are replaced.
    value : float
        The replacement.
    inplace : bool, default False
        Write the result into ``input`` (a writable float array) and return it.
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.nn.functional.threshold``: the test is ``x <= threshold``,
    so NaN (for which it is false) is kept.

    Examples
    --------
    >>> nbops.threshold(np.array([0.1, 0.5, 0.9]), 0.5, -1.0)
    array([-1. , -1. ,  0.9])
    """
    params = (as_param(threshold, "threshold"), as_param(value, "value"))
    return unary(THRESHOLD, input, params, inplace, out)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False, *, out=None):
    r""":math:`\min(\max(x, \mathrm{min\_val}), \mathrm{max\_val})`; NaN stays NaN.

    Raises ``ValueError`` if ``min_val > max_val``.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    min_val, max_val : float, default -1.0, 1.0
        The clamp bounds (``min_val <= max_val``).
    inplace : bool, default False
        Write the result into ``input`` (a writable float array) and return it.
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.nn.functional.hardtanh``, including the ``ValueError``
    for ``min_val > max_val``; NaN stays NaN.

    Examples
    --------
    >>> nbops.hardtanh(np.array([-3.0, 0.2, 3.0]))
    array([-1. ,  0.2,  1. ])
    """
    lo, hi = as_param(min_val, "min_val"), as_param(max_val, "max_val")
    if lo > hi:
        raise ValueError(f"min_val ({lo}) cannot be greater than max_val ({hi})")
    return unary(HARDTANH, input, (lo, hi), inplace, out)


def sigmoid(input, *, out=None):
    r"""Logistic function :math:`1 / (1 + e^{-x})`.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.sigmoid`` (``torch.nn.functional.sigmoid``), within 2 ulp
    (nbops' vectorizable ``exp``): 0 at ``-inf``, 1 at ``inf``, NaN stays NaN.
    No ``inplace`` (PyTorch's functional has none).

    Examples
    --------
    >>> nbops.sigmoid(np.array([0.0, 2.0]))
    array([0.5       , 0.88079708])
    """
    return unary(SIGMOID, input, (), False, out)


def tanh(input, *, out=None):
    r"""Hyperbolic tangent :math:`\tanh x`.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.tanh``, within 2 ulp (a vectorizable ``tanh``); NaN stays NaN.

    Examples
    --------
    >>> nbops.tanh(np.array([0.0, 1.0]))
    array([0.        , 0.76159416])
    """
    return unary(TANH, input, (), False, out)


def logsigmoid(input, *, out=None):
    r""":math:`\log(1 / (1 + e^{-x}))`, computed as :math:`\min(x, 0) - \log(1 + e^{-|x|})`.

    Stable for any :math:`x`: never overflows, ``logsigmoid(-1e4) == -1e4``.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.nn.functional.logsigmoid``, which is also computed in the
    stable form; ``logsigmoid(inf) == 0``, NaN stays NaN.

    Examples
    --------
    >>> nbops.logsigmoid(np.array([-1000.0, 0.0, 1000.0]))
    array([-1.00000000e+03, -6.93147181e-01,  0.00000000e+00])
    """
    return unary(LOGSIGMOID, input, (), False, out)


def softplus(input, beta=1.0, threshold=20.0, *, out=None):
    r""":math:`\frac{1}{\beta} \log(1 + e^{\beta x})`, or :math:`x` above the threshold.

    The result is :math:`x` itself where :math:`\beta x >` ``threshold``.
    Computed as :math:`(\max(z, 0) + \log(1 + e^{-|z|})) / \beta` with
    :math:`z = \beta x`: no overflow for any ``threshold``.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    beta : float, default 1.0
        :math:`\beta`.
    threshold : float, default 20.0
        Where :math:`\beta x` exceeds it, the result is :math:`x` itself.
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.nn.functional.softplus``: the threshold applies to
    :math:`\beta x`, not :math:`x` (see the semantics guide). No ``inplace``.

    Examples
    --------
    >>> nbops.softplus(np.array([-1.0, 0.0, 30.0]))
    array([ 0.31326169,  0.69314718, 30.        ])
    """
    params = (as_param(beta, "beta"), as_param(threshold, "threshold"))
    return unary(SOFTPLUS, input, params, False, out)


def softshrink(input, lambd=0.5, *, out=None):
    r""":math:`x \mp \lambda` if :math:`\pm x > \lambda`, else 0.

    That is :math:`x - \lambda` if :math:`x > \lambda`, :math:`x + \lambda` if
    :math:`x < -\lambda`.

    Raises ``ValueError`` if ``lambd < 0``.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    lambd : float, default 0.5
        :math:`\lambda \ge 0`.
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.nn.functional.softshrink``: the zero keeps the sign of
    ``x`` and NaN stays NaN.

    Examples
    --------
    >>> nbops.softshrink(np.array([-1.0, 0.2, 1.0]))
    array([-0.5,  0. ,  0.5])
    """
    lam = as_param(lambd, "lambd")
    if not lam >= 0:
        raise ValueError(f"lambd must be >= 0, got {lam}")
    return unary(SOFTSHRINK, input, (lam,), False, out)


def softsign(input, *, out=None):
    r""":math:`x / (1 + |x|)`.

    Parameters
    ----------
    input : array_like
        Any shape, any memory layout (0-d and empty included).
    out : ndarray, optional
        Array of the result's shape and dtype to write into (keyword-only).

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32, float64 stays float64,
        other real dtypes promote as ``np.exp`` would.

    Notes
    -----
    Same as ``torch.nn.functional.softsign``, computed as PyTorch computes it:
    ``softsign(±inf)`` is NaN (:math:`\infty / \infty`), and NaN stays NaN.

    Examples
    --------
    >>> nbops.softsign(np.array([-3.0, 1.0]))
    array([-0.75,  0.5 ])
    """
    return unary(SOFTSIGN, input, (), False, out)


# ---------------------------------------------------------------- prelu
def _prelu(x, weight, out, inner):
    channels = weight.size
    for row in prange(x.size // inner):  # rows of the (outer * C, inner) view
        w = weight[row % channels]
        for j in range(row * inner, (row + 1) * inner):
            out[j] = S.prelu(x[j], w)


_prelu_serial, _prelu_parallel = _config.kernels(_prelu)


def prelu(input, weight, *, out=None):
    r""":math:`x` if :math:`x \ge 0`, else :math:`w_c x` with a learned slope per channel.

    Parameters
    ----------
    input : array_like
        Shape ``(N, C, *)``; the channel axis is axis 1. For ``input.ndim < 2``
        there is one channel.
    weight : array_like
        1-D with 1 element (shared) or ``C`` elements (one per channel).
    out : ndarray, optional

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32.

    Notes
    -----
    Same as ``torch.nn.functional.prelu``: :math:`x` if :math:`x \ge 0`,
    else :math:`w_c x` with :math:`c` the element's channel; NaN stays NaN.

    Examples
    --------
    >>> nbops.prelu(np.array([[-1.0, -1.0], [2.0, -4.0]]), np.array([0.1, 0.5]))
    array([[-0.1, -0.5],
           [ 2. , -2. ]])
    """
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().prelu(input, weight=weight, out=out)
    x = input if type(input) is np.ndarray else as_array(input)
    w = as_array(weight, "weight")
    compute, result = result_dtype(x.dtype)
    result_dtype(w.dtype, "weight")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.ndim > 1 or w.size not in (1, channels):
        raise ValueError(f"weight must be 1-D with 1 or {channels} (the number of channels, "
                         f"input.shape[1]) elements, got shape {w.shape}")
    if w.size == 1:
        return unary(PRELU, x, (float(w.reshape(-1)[0]),), False, out)
    if out is not None:
        check_out(out, x.shape, result)
    src = np.ascontiguousarray(x, dtype=compute)
    res = out if (out is not None and out.dtype == compute and out.flags.c_contiguous
                  and not np.may_share_memory(out, src)) else np.empty(x.shape, compute)
    inner = max(1, int(np.prod(x.shape[2:])))
    if src.size:
        wc = np.ascontiguousarray(w.reshape(-1), dtype=compute)
        launch(_prelu_serial, _prelu_parallel, ("prelu", compute.char), src.size,
               src.reshape(-1), wc, res.reshape(-1), inner)
    if out is None:
        return res if result == compute else res.astype(result)
    if res is not out:
        np.copyto(out, res, casting="unsafe")
    return out


# ------------------------------------------------- the same names inside @njit
@overload(relu)
def _relu_njit(input, inplace=False, out=None):
    return lambda input, inplace=False, out=None: map_njit(RELU, input, (), inplace, out)


@overload(relu6)
def _relu6_njit(input, inplace=False, out=None):
    return lambda input, inplace=False, out=None: map_njit(RELU6, input, (), inplace, out)


@overload(elu)
def _elu_njit(input, alpha=1.0, inplace=False, out=None):
    return lambda input, alpha=1.0, inplace=False, out=None: map_njit(
        ELU, input, (alpha,), inplace, out)


@overload(leaky_relu)
def _leaky_relu_njit(input, negative_slope=0.01, inplace=False, out=None):
    return lambda input, negative_slope=0.01, inplace=False, out=None: map_njit(
        LEAKY_RELU, input, (negative_slope,), inplace, out)


@overload(threshold)
def _threshold_njit(input, threshold, value, inplace=False, out=None):
    return lambda input, threshold, value, inplace=False, out=None: map_njit(
        THRESHOLD, input, (threshold, value), inplace, out)


@overload(hardtanh)
def _hardtanh_njit(input, min_val=-1.0, max_val=1.0, inplace=False, out=None):
    def impl(input, min_val=-1.0, max_val=1.0, inplace=False, out=None):
        if min_val > max_val:
            raise ValueError("min_val cannot be greater than max_val")
        return map_njit(HARDTANH, input, (min_val, max_val), inplace, out)

    return impl


@overload(sigmoid)
def _sigmoid_njit(input, out=None):
    return lambda input, out=None: map_njit(SIGMOID, input, (), False, out)


@overload(tanh)
def _tanh_njit(input, out=None):
    return lambda input, out=None: map_njit(TANH, input, (), False, out)


@overload(logsigmoid)
def _logsigmoid_njit(input, out=None):
    return lambda input, out=None: map_njit(LOGSIGMOID, input, (), False, out)


@overload(softplus)
def _softplus_njit(input, beta=1.0, threshold=20.0, out=None):
    return lambda input, beta=1.0, threshold=20.0, out=None: map_njit(
        SOFTPLUS, input, (beta, threshold), False, out)


@overload(softshrink)
def _softshrink_njit(input, lambd=0.5, out=None):
    def impl(input, lambd=0.5, out=None):
        if not lambd >= 0:
            raise ValueError("lambd must be >= 0")
        return map_njit(SOFTSHRINK, input, (lambd,), False, out)

    return impl


@overload(softsign)
def _softsign_njit(input, out=None):
    return lambda input, out=None: map_njit(SOFTSIGN, input, (), False, out)


@overload(prelu)
def _prelu_njit(input, weight, out=None):
    if isinstance(input, (types.Float, types.Integer, types.Boolean)):
        if isinstance(weight, types.Array):
            def prelu_scalar_w_array(input, weight, out=None):
                if weight.size != 1:
                    raise ValueError("weight must have 1 element for a scalar input")
                x = as_float(input)
                return S.prelu(x, const(x, weight.ravel()[0]))

            return prelu_scalar_w_array
        return lambda input, weight, out=None: S.prelu(as_float(input),
                                                       const(as_float(input), weight))
    if not isinstance(input, types.Array) or not isinstance(weight, types.Array):
        return None
    if input.ndim < 2:
        def prelu_1d(input, weight, out=None):
            if weight.size != 1:
                raise ValueError("weight must have 1 element for input.ndim < 2")
            return map_njit(PRELU, input, (weight.ravel()[0],), False, out)

        return prelu_1d
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        raise errors.TypingError("nbops.prelu inside @njit does not take out=")
    dtype = input.dtype if isinstance(input.dtype, types.Float) else types.float64

    def prelu_nd(input, weight, out=None):
        channels = input.shape[1]
        w = weight.ravel()
        if w.size != 1 and w.size != channels:
            raise ValueError("weight must have 1 or input.shape[1] elements")
        res = np.empty(input.shape, dtype)
        for idx in np.ndindex(input.shape):
            xi = as_float(input[idx])
            res[idx] = S.prelu(xi, const(xi, w[idx[1] % w.size]))
        return res

    return prelu_nd
