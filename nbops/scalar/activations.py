"""Scalar cores of the elementwise activations: the single source of their math.

Each core is a plain function of one element (plus hyperparameters of the same
float type), compiled inline into nbops' CPU kernels, into the functions that
make ``nbops.<op>`` work inside ``@njit`` code, and (with ``cuda.jit``) into
the CUDA kernels. They are public: call them in your own Numba loops to fuse
several ops into one pass::

    from numba import njit, prange
    from nbops import scalar

    @njit(parallel=True)
    def fused(x, out):
        for i in prange(x.size):
            out[i] = scalar.tanh(scalar.leaky_relu(x[i], 0.1))

Hyperparameters take the element's float type: ``scalar.elu(x, 1.0)`` with a
float32 ``x`` computes in float32 and returns float32 (as NumPy 2 treats a
Python scalar next to a float32 value), on the CPU and on CUDA alike.
"""

import math

from .._config import core
from ._math import const, exp, expm1, log1p_unit, select, x_ndtr, x_ndtr_grad
from ._math import tanh as _tanh

__all__ = ["relu", "relu6", "elu", "prelu", "leaky_relu", "threshold", "hardtanh",
           "sigmoid", "tanh", "logsigmoid", "softplus", "softshrink", "softsign"]


@core
def relu(x):
    r"""Scalar core of :func:`nbops.relu`: :math:`\max(x, 0)`.

    NaN stays NaN and ``-0.0`` stays ``-0.0``, as in PyTorch.

    Parameters
    ----------
    x : float32 or float64
        One element.

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.relu(-2.0), scalar.relu(3.5)
    (0.0, 3.5)
    """
    return const(x, 0.0) if x < 0 else x


@core
def hardtanh(x, min_val, max_val):
    r"""Scalar core of :func:`nbops.hardtanh`.

    :math:`\min(\max(x, \mathrm{min\_val}), \mathrm{max\_val})`.

    NaN stays NaN. ``min_val <= max_val`` is not checked here (the array op
    checks it).

    Parameters
    ----------
    x : float32 or float64
        One element.
    min_val, max_val : float or int
        The bounds, converted to ``x``'s float type.

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.hardtanh(3.0, -1.0, 1.0), scalar.hardtanh(0.25, -1.0, 1.0)
    (1.0, 0.25)
    """
    lo = const(x, min_val)
    hi = const(x, max_val)
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x


@core
def relu6(x):
    r"""Scalar core of :func:`nbops.relu6`: :math:`\min(\max(x, 0), 6)`.

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.relu6(-1.0), scalar.relu6(9.0)
    (0.0, 6.0)
    """
    return hardtanh(x, const(x, 0.0), const(x, 6.0))


@core
def elu(x, alpha):
    r"""Scalar core of :func:`nbops.elu`: :math:`x` if :math:`x > 0`, else :math:`\alpha (e^x - 1)`.

    ``e^x - 1`` is ``expm1`` (accurate near 0).

    Parameters
    ----------
    x : float32 or float64
        One element.
    alpha : float or int
        The scale of the negative part, converted to ``x``'s float type.

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.elu(-1.0, 1.0), 8)
    -0.63212056
    """
    return x if x > 0 else const(x, alpha) * expm1(x)


@core
def leaky_relu(x, negative_slope):
    r"""Scalar core of :func:`nbops.leaky_relu`.

    :math:`x` if :math:`x > 0`, else :math:`\mathrm{negative\_slope} \cdot x`.

    Parameters
    ----------
    x : float32 or float64
        One element.
    negative_slope : float or int
        Converted to ``x``'s float type.

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.leaky_relu(-2.0, 0.1)
    -0.2
    """
    return x if x > 0 else x * const(x, negative_slope)


@core
def prelu(x, weight):
    r"""Scalar core of :func:`nbops.prelu`: :math:`x` if :math:`x \ge 0`, else :math:`w x`.

    Parameters
    ----------
    x : float32 or float64
        One element.
    weight : float or int
        Its channel's slope :math:`w`, converted to ``x``'s float type.

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.prelu(-4.0, 0.25)
    -1.0
    """
    return x if x >= 0 else x * const(x, weight)


@core
def threshold(x, threshold, value):
    r"""Scalar core of :func:`nbops.threshold`.

    :math:`x` if :math:`x > \mathrm{threshold}`, else ``value``.

    NaN stays NaN (as PyTorch: the test is ``x <= threshold``).

    Parameters
    ----------
    x : float32 or float64
        One element.
    threshold, value : float or int
        Converted to ``x``'s float type (the comparison is made in that type,
        as PyTorch's).

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.threshold(0.2, 0.5, -1.0), scalar.threshold(0.9, 0.5, -1.0)
    (-1.0, 0.9)
    """
    return const(x, value) if x <= const(x, threshold) else x


@core
def sigmoid(x):
    r"""Scalar core of :func:`nbops.sigmoid`: :math:`1 / (1 + e^{-x})`.

    Uses nbops' vectorizable ``exp`` (within 2 ulp), so a loop over it
    vectorizes.

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.sigmoid(0.0)
    0.5
    """
    one = const(x, 1.0)
    return one / (one + exp(-x))


@core
def tanh(x):
    r"""Scalar core of :func:`nbops.tanh`: :math:`\tanh x`, vectorizable (within 2 ulp).

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.tanh(0.5), 8)
    0.46211716
    """
    return _tanh(x)


@core
def _log1p_exp_neg_abs(z):
    r""":math:`\log(1 + e^{-|z|})` (in :math:`[0, \log 2]`, never overflows): the
    exp and log of :func:`softplus` and :func:`logsigmoid`, written once."""
    return log1p_unit(exp(-abs(z)))


@core
def softplus(x, beta, threshold):
    r"""Scalar core of :func:`nbops.softplus`.

    :math:`\frac{1}{\beta}\log(1 + e^{\beta x})`, or :math:`x` where
    :math:`\beta x > \mathrm{threshold}`.

    Computed as :math:`(\max(z, 0) + \log(1 + e^{-|z|})) / \beta` with
    :math:`z = \beta x` (that is :math:`-\log\sigma(-z) / \beta`, with the
    exp and log of :func:`logsigmoid`), which never overflows.

    Parameters
    ----------
    x : float32 or float64
        One element.
    beta, threshold : float or int
        Converted to ``x``'s float type.

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.softplus(0.0, 1.0, 20.0), 8), scalar.softplus(30.0, 1.0, 20.0)
    (0.69314718, 30.0)
    """
    b = const(x, beta)
    z = x * b
    if z > const(x, threshold):
        return x
    return (select(z > 0, z, const(x, 0.0)) + _log1p_exp_neg_abs(z)) / b


@core
def logsigmoid(x):
    r"""Scalar core of :func:`nbops.logsigmoid`.

    :math:`\log \sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`.

    Stable for any :math:`x` (never overflows). Branch-free (``select``); the
    log-sigmoid of the logit losses (:mod:`nbops.scalar.losses`).

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.logsigmoid(-1000.0)
    -1000.0
    """
    return select(x < 0, x, const(x, 0.0)) - _log1p_exp_neg_abs(x)


@core
def softshrink(x, lambd):
    r"""Scalar core of :func:`nbops.softshrink`.

    :math:`x - \lambda` if :math:`x > \lambda`, :math:`x + \lambda` if :math:`x < -\lambda`, else 0.

    The zero keeps the sign of ``x`` and NaN stays NaN, as in PyTorch.

    Parameters
    ----------
    x : float32 or float64
        One element.
    lambd : float or int
        Converted to ``x``'s float type.

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.softshrink(2.0, 0.5), scalar.softshrink(0.25, 0.5)
    (1.5, 0.0)
    """
    lam = const(x, lambd)
    if x > lam:
        return x - lam
    if x < -lam:
        return x + lam
    return x * const(x, 0.0)  # keeps the sign of zero and NaN, as PyTorch


@core
def softsign(x):
    r"""Scalar core of :func:`nbops.softsign`: :math:`x / (1 + |x|)`.

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.softsign(3.0)
    0.75
    """
    return x / (const(x, 1.0) + abs(x))


__all__ += ["silu"]


@core
def silu(x):
    r"""Scalar core of :func:`nbops.silu`: :math:`x \sigma(x) = x / (1 + e^{-x})`.

    Computed as PyTorch computes it, ``x / (1 + exp(-x))`` with nbops'
    vectorizable ``exp``: ``silu(-inf)`` is NaN (:math:`-\infty / \infty`).

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.silu(0.0), round(scalar.silu(1.0), 8)
    (0.0, 0.73105858)
    """
    return x / (const(x, 1.0) + exp(-x))


__all__ += ["hardswish"]


@core
def hardswish(x):
    r"""Scalar core of :func:`nbops.hardswish`: :math:`x \cdot \mathrm{relu6}(x + 3) / 6`.

    Computed as PyTorch computes it, ``x * min(max(x + 3, 0), 6) / 6``: 0 for
    :math:`x \le -3` (``-0.0`` for negative ``x``), :math:`x` for :math:`x \ge 3`,
    ``hardswish(-inf)`` is NaN (:math:`-\infty \cdot 0`) and NaN stays NaN.

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.hardswish(-1.5), scalar.hardswish(3.0)
    (-0.375, 3.0)
    """
    return x * hardtanh(x + const(x, 3.0), const(x, 0.0), const(x, 6.0)) / const(x, 6.0)


# ------------------------------------------------------------------ derivatives
# ``<op>_backward(g, r, *params)``: ``g`` times the derivative of ``<op>`` at the
# residual ``r`` (the op's output for relu, sigmoid and tanh, its input otherwise),
# with PyTorch autograd's conventions at the kinks. The sources of
# ``nbops.<op>_backward`` (nbops/_ops/table.py generates them), usable in your own
# loops as the forward cores are.
__all__ += ["relu_backward", "relu6_backward", "elu_backward", "leaky_relu_backward",
            "threshold_backward", "hardtanh_backward", "sigmoid_backward", "tanh_backward",
            "logsigmoid_backward", "softplus_backward", "softshrink_backward",
            "softsign_backward", "silu_backward", "hardswish_backward"]


@core
def relu_backward(g, y):
    r"""Derivative core of :func:`nbops.relu`, from its output ``y``: ``g`` if
    :math:`y > 0`, else 0 (0 at ``relu(0)``, as PyTorch).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    y : float32 or float64
        The output element ``relu(x)``.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.relu_backward(2.0, 3.0), scalar.relu_backward(2.0, 0.0)
    (2.0, 0.0)
    """
    return const(g, 0.0) if y <= 0 else g


@core
def hardtanh_backward(g, x, min_val, max_val):
    r"""Derivative core of :func:`nbops.hardtanh`: ``g`` strictly between the
    bounds, 0 at and beyond them (PyTorch's ``hardtanh_backward``); NaN ``x``
    passes ``g`` through.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.
    min_val : float32 or float64
        As in :func:`nbops.hardtanh`.
    max_val : float32 or float64
        As in :func:`nbops.hardtanh`.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.hardtanh_backward(2.0, 0.5, -1.0, 1.0), scalar.hardtanh_backward(2.0, 1.0, -1.0, 1.0)
    (2.0, 0.0)
    """
    if x <= const(x, min_val) or x >= const(x, max_val):
        return const(g, 0.0)
    return g


@core
def relu6_backward(g, x):
    r"""Derivative core of :func:`nbops.relu6`: ``g`` for :math:`0 < x < 6`, else 0
    (0 at both bounds, as PyTorch's ``hardtanh_backward``).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.relu6_backward(2.0, 3.0), scalar.relu6_backward(2.0, 6.0)
    (2.0, 0.0)
    """
    return hardtanh_backward(g, x, const(x, 0.0), const(x, 6.0))


@core
def elu_backward(g, x, alpha):
    r"""Derivative core of :func:`nbops.elu`, from its input: ``g`` for :math:`x > 0`,
    else :math:`g \alpha e^x` (so :math:`g \alpha` at 0, as PyTorch's ``elu_backward``).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.
    alpha : float32 or float64
        As in :func:`nbops.elu`.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.elu_backward(2.0, 1.0, 1.5), scalar.elu_backward(2.0, 0.0, 1.5)
    (2.0, 3.0)
    """
    if x <= 0:  # NaN passes g through, as PyTorch's
        return g * const(g, alpha) * exp(x)
    return g


@core
def leaky_relu_backward(g, x, negative_slope):
    r"""Derivative core of :func:`nbops.leaky_relu`: ``g`` for :math:`x > 0`, else
    ``g * negative_slope`` (the slope at 0, as PyTorch).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.
    negative_slope : float32 or float64
        As in :func:`nbops.leaky_relu`.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.leaky_relu_backward(2.0, 0.0, 0.25)
    0.5
    """
    return g if x > 0 else g * const(g, negative_slope)


@core
def threshold_backward(g, x, threshold, value):
    r"""Derivative core of :func:`nbops.threshold`: 0 for :math:`x \le` ``threshold``
    (0 at ``x == threshold``), else ``g``; ``value`` is unused (the signature is the
    forward's).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.
    threshold : float32 or float64
        As in :func:`nbops.threshold`.
    value : float32 or float64
        As in :func:`nbops.threshold`.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.threshold_backward(2.0, 0.5, 0.5, -1.0)  # 0 at x == threshold
    0.0
    """
    return const(g, 0.0) if x <= const(x, threshold) else g


@core
def sigmoid_backward(g, y):
    r"""Derivative core of :func:`nbops.sigmoid`, from its output ``y``:
    :math:`g (1 - y) y` (PyTorch's ``sigmoid_backward``).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    y : float32 or float64
        The output element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.sigmoid_backward(2.0, 0.5)
    0.5
    """
    return g * (const(y, 1.0) - y) * y


@core
def tanh_backward(g, y):
    r"""Derivative core of :func:`nbops.tanh`, from its output ``y``:
    :math:`g (1 - y^2)` (PyTorch's ``tanh_backward``).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    y : float32 or float64
        The output element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.tanh_backward(2.0, 0.5)
    1.5
    """
    return g * (const(y, 1.0) - y * y)


@core
def logsigmoid_backward(g, x):
    r"""Derivative core of :func:`nbops.logsigmoid`: :math:`g \sigma(-x)`, computed
    stably as PyTorch's ``log_sigmoid_backward`` with :math:`z = e^{-|x|}`:
    :math:`g / (1 + z)` for :math:`x < 0`, :math:`g z / (1 + z)` otherwise (no
    overflow for any :math:`x`).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.logsigmoid_backward(2.0, 0.0), scalar.logsigmoid_backward(2.0, -1000.0)
    (1.0, 2.0)
    """
    z = exp(-abs(x))
    one = const(x, 1.0)
    return g * (select(x < 0, one, z) / (one + z))


@core
def softplus_backward(g, x, beta, threshold):
    r"""Derivative core of :func:`nbops.softplus`: ``g`` where
    :math:`\beta x >` ``threshold`` (the linear part), else :math:`g \sigma(\beta x)`
    (computed as ``1 / (1 + exp(-beta x))``: no overflow for any ``threshold``).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.
    beta : float32 or float64
        As in :func:`nbops.softplus`.
    threshold : float32 or float64
        As in :func:`nbops.softplus`.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.softplus_backward(2.0, 0.0, 1.0, 20.0), scalar.softplus_backward(2.0, 30.0, 1.0, 9.0)
    (1.0, 2.0)
    """
    z = x * const(x, beta)
    if z > const(x, threshold):
        return g
    one = const(x, 1.0)
    return g * (one / (one + exp(-z)))


@core
def softshrink_backward(g, x, lambd):
    r"""Derivative core of :func:`nbops.softshrink`: 0 on the closed interval
    :math:`[-\lambda, \lambda]`, else ``g`` (PyTorch's ``softshrink_backward``;
    NaN ``x`` passes ``g`` through).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.
    lambd : float32 or float64
        As in :func:`nbops.softshrink`.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.softshrink_backward(2.0, 0.5, 0.5), scalar.softshrink_backward(2.0, 0.75, 0.5)
    (0.0, 2.0)
    """
    lam = const(x, lambd)
    if x >= -lam and x <= lam:
        return const(g, 0.0)
    return g


@core
def softsign_backward(g, x):
    r"""Derivative core of :func:`nbops.softsign`: :math:`g / (1 + |x|)^2`.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.softsign_backward(2.0, 1.0)
    0.5
    """
    d = const(x, 1.0) + abs(x)
    return g / (d * d)


@core
def silu_backward(g, x):
    r"""Derivative core of :func:`nbops.silu`: :math:`g \sigma(x) (1 + x (1 - \sigma(x)))`
    (PyTorch's ``silu_backward``).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.silu_backward(2.0, 0.0)
    1.0
    """
    one = const(x, 1.0)
    s = one / (one + exp(-x))
    return g * s * (one + x * (one - s))


@core
def hardswish_backward(g, x):
    r"""Derivative core of :func:`nbops.hardswish` (PyTorch's ``hardswish_backward``):
    0 for :math:`x \le -3`, :math:`g (x / 3 + 1/2)` for :math:`-3 < x < 3`, ``g``
    from 3 on (so 0 at -3 and ``g`` at 3; NaN passes ``g`` through).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.hardswish_backward(2.0, 0.0), scalar.hardswish_backward(2.0, 3.0)
    (1.0, 2.0)
    """
    three = const(x, 3.0)
    if x <= -three:
        return const(g, 0.0)
    if x < three:
        return g * (x / three + const(x, 0.5))
    return g


__all__ += ["prelu_backward", "prelu_weight_backward"]


@core
def prelu_backward(g, x, weight):
    r"""Derivative core of :func:`nbops.prelu` for its input: ``g`` if
    :math:`x > 0`, else :math:`w g` (:math:`w g` at :math:`x = 0` and for NaN
    ``x``, as PyTorch's ``prelu`` backward).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.
    weight : float or int
        Its channel's slope :math:`w`, converted to ``x``'s float type.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.prelu_backward(2.0, 3.0, 0.25), scalar.prelu_backward(2.0, 0.0, 0.25)
    (2.0, 0.5)
    """
    return g if x > 0 else const(x, weight) * g


@core
def prelu_weight_backward(g, x):
    r"""One term of :func:`nbops.prelu`'s weight gradient: 0 if :math:`x > 0`,
    else :math:`x g` (PyTorch's convention; the weight's gradient is the sum of
    these terms over every element of its channel).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        The element's term of its channel's weight gradient.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.prelu_weight_backward(2.0, 3.0), scalar.prelu_weight_backward(2.0, -1.5)
    (0.0, -3.0)
    """
    return const(g, 0.0) if x > 0 else x * g


# ------------------------------------------------------------------ issue 16's activations
# PyTorch's constants, as its CPU kernels write them (aten/src/ATen/native/cpu/Activation.cpp)
_GELU_TANH_BETA = math.sqrt(2.0) * (2.0 / math.sqrt(math.pi)) * 0.5  # sqrt(2 / pi)
_GELU_TANH_KAPPA = 0.044715
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
#: PyTorch's hardsigmoid_backward multiplies by 1/6 rounded to float32, in float64 too
_ONE_SIXTH_F32 = 0.1666666716337204

__all__ += ["gelu", "gelu_tanh", "gelu_backward", "gelu_tanh_backward"]


@core
def gelu(x):
    r"""Scalar core of :func:`nbops.gelu` (``approximate='none'``): :math:`x \Phi(x)`.

    PyTorch's :math:`0.5 x (1 + \mathrm{erf}(x / \sqrt 2))`, computed as
    :math:`x \Phi(x)` with :math:`\Phi(x) = \mathrm{erfc}(-x / \sqrt 2) / 2` (no
    cancellation for negative :math:`x`), from nbops' vectorizable :math:`\Phi`
    (``nbops/scalar/_math.py``; the CUDA kernels compile the same code): float32
    within 6 ulp of the exact :math:`\Phi`, float64 within 4 ulp of the exact
    :math:`x \Phi(x)`, subnormal results included. ``gelu(inf) == inf``,
    ``gelu(-inf)`` is NaN (:math:`-\infty \cdot 0`, as PyTorch's) and NaN stays NaN.

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.gelu(0.0), round(scalar.gelu(1.0), 8)
    (0.0, 0.84134475)
    """
    return x_ndtr(x)  # x * Phi(x)


@core
def _sigmoid_2u_gelu(x):
    r"""``(s, q, d)`` of the tanh approximation: :math:`u = \sqrt{2/\pi} (x + 0.044715 x^3)`,
    :math:`q = e^{-2|u|}` (never overflows), :math:`d = 1 / (1 + q)` and
    :math:`s = (1 + \tanh u) / 2 = \sigma(2u)` (``d`` or ``q d``)."""
    u = const(x, _GELU_TANH_BETA) * (x + const(x, _GELU_TANH_KAPPA) * (x * x * x))
    q = exp(-abs(u + u))
    d = const(x, 1.0) / (const(x, 1.0) + q)
    return select(u >= 0, d, q * d), q, d


@core
def gelu_tanh(x):
    r"""Scalar core of :func:`nbops.gelu` with ``approximate='tanh'``.

    :math:`0.5 x (1 + \tanh u)`, :math:`u = \sqrt{2/\pi} (x + 0.044715 x^3)`,
    computed as :math:`x \sigma(2u)` (the same function: :math:`1 + \tanh u = 2
    \sigma(2u)`) with nbops' vectorizable ``exp``: no cancellation for negative
    :math:`x`, one ``exp`` and one division. ``gelu_tanh(-inf)`` is NaN, as PyTorch's.

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.gelu_tanh(1.0), 8)
    0.84119199
    """
    s, q, d = _sigmoid_2u_gelu(x)
    return x * s


@core
def gelu_backward(g, x):
    r"""Derivative core of :func:`nbops.gelu` (``approximate='none'``):
    :math:`g (\Phi(x) + x \varphi(x))`, PyTorch's ``gelu_backward``
    (``0.5 (1 + erf(x / sqrt 2)) + x exp(-x^2 / 2) / sqrt(2 pi)``, the first term
    :math:`\Phi(x)` as :func:`gelu` computes it); NaN at :math:`\pm\infty`, as
    PyTorch's.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.gelu_backward(2.0, 0.0)
    1.0
    """
    return g * x_ndtr_grad(x)  # Phi(x) + x phi(x), from one vectorizable exp


@core
def gelu_tanh_backward(g, x):
    r"""Derivative core of :func:`nbops.gelu` with ``approximate='tanh'``: PyTorch's
    :math:`g (0.5 (1 + \tanh u) + 0.5 x (1 - \tanh^2 u) u')`, with
    :math:`u = \sqrt{2/\pi} (x + 0.044715 x^3)` and
    :math:`u' = \sqrt{2/\pi} (1 + 3 \cdot 0.044715 x^2)`, computed with
    :math:`s = \sigma(2u)` as :math:`g (s + 2 x s (1 - s) u')` (no cancellation;
    NaN at :math:`\pm\infty`, as PyTorch's; for large finite :math:`|x|` the limits
    0 and ``g``, where PyTorch's float32 kernel overflows to NaN).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.gelu_tanh_backward(2.0, 0.0)
    1.0
    """
    s, q, d = _sigmoid_2u_gelu(x)
    du = const(x, _GELU_TANH_BETA) * (const(x, 1.0) + const(x, 3.0 * _GELU_TANH_KAPPA) * (x * x))
    # where q underflows to 0 the term is 0 (x * du may overflow: 0 * inf), NaN at +-inf
    term = select(q > 0, const(x, 2.0) * x * (q * d * d) * du, x * const(x, 0.0))
    return g * (s + term)


__all__ += ["mish", "mish_backward"]


@core
def _mish_parts(x):
    r"""``(t, d, e)`` of mish: :math:`e = e^{\min(x, 20)}`, :math:`n = e (e + 2)`,
    :math:`t = \tanh(\mathrm{softplus}(x)) = n / (n + 2)` and
    :math:`d = 1 - t^2 = 2 (1 + t) / (n + 2)` (no cancellation); from :math:`x = 20`
    on, where ``exp`` is clamped, ``t = 1`` and ``d = 0`` (as they round in float64)."""
    e = exp(min(x, const(x, 20.0)))
    n = e * (e + const(x, 2.0))
    q = const(x, 1.0) / (n + const(x, 2.0))
    big = x >= const(x, 20.0)
    t = select(big, const(x, 1.0), n * q)
    return t, select(big, const(x, 0.0), const(x, 2.0) * q * (const(x, 1.0) + t)), e


@core
def mish(x):
    r"""Scalar core of :func:`nbops.mish`: :math:`x \tanh(\mathrm{softplus}(x))`.

    PyTorch's ``x * tanh(log1p(exp(x)))``, computed with one ``exp`` and one
    division as :math:`x n / (n + 2)`, :math:`n = e^x (e^x + 2)` (the same
    function: :math:`\tanh(\log(1 + e^x)) = n / (n + 2)`), within a few ulp.
    ``mish(inf) == inf``, ``mish(-inf)`` is NaN (:math:`-\infty \cdot 0`, as
    PyTorch's) and NaN stays NaN.

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.mish(0.0), round(scalar.mish(1.0), 8)
    (0.0, 0.86509839)
    """
    t, d, e = _mish_parts(x)
    return x * t


@core
def mish_backward(g, x):
    r"""Derivative core of :func:`nbops.mish`: PyTorch's ``mish_backward``,
    :math:`g (t + x \sigma(x) (1 - t^2))` with :math:`t = \tanh(\mathrm{softplus}(x))`,
    computed as :func:`mish` computes :math:`t` (and :math:`1 - t^2 = 2 (1 + t) / (n + 2)`:
    no cancellation); NaN at :math:`\pm\infty`, as PyTorch's.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.mish_backward(2.0, 0.0), 8)
    1.2
    """
    t, d, e = _mish_parts(x)
    sigmoid = e / (const(x, 1.0) + e)
    return g * (t + x * sigmoid * d)


__all__ += ["hardsigmoid", "hardsigmoid_backward"]


@core
def hardsigmoid(x):
    r"""Scalar core of :func:`nbops.hardsigmoid`: :math:`\mathrm{relu6}(x + 3) / 6`.

    Computed as PyTorch computes it, ``min(max(x + 3, 0), 6) / 6``: 0 for
    :math:`x \le -3`, 1 for :math:`x \ge 3`, NaN stays NaN.

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.hardsigmoid(0.0), scalar.hardsigmoid(-4.0), scalar.hardsigmoid(3.0)
    (0.5, 0.0, 1.0)
    """
    return hardtanh(x + const(x, 3.0), const(x, 0.0), const(x, 6.0)) / const(x, 6.0)


@core
def hardsigmoid_backward(g, x):
    r"""Derivative core of :func:`nbops.hardsigmoid` (PyTorch's ``hardsigmoid_backward``):
    :math:`g / 6` for :math:`-3 < x < 3`, else 0 (0 at both kinks and for NaN ``x``);
    the 1/6 is PyTorch's, rounded to float32 in float64 too.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.hardsigmoid_backward(6.0, 0.0) == 6.0 * 0.1666666716337204
    True
    >>> scalar.hardsigmoid_backward(6.0, 3.0)
    0.0
    """
    three = const(x, 3.0)
    if x > -three and x < three:
        return g * const(g, _ONE_SIXTH_F32)
    return const(g, 0.0)


__all__ += ["selu", "selu_backward"]


@core
def selu(x):
    r"""Scalar core of :func:`nbops.selu`: :math:`\lambda x` if :math:`x > 0`, else
    :math:`\lambda \alpha (e^x - 1)`, with PyTorch's :math:`\alpha \approx 1.6733`
    and :math:`\lambda \approx 1.0507`.

    ``e^x - 1`` is ``expm1``; :math:`\lambda \alpha` is formed in ``x``'s type,
    as PyTorch's ``elu`` kernel forms it. ``selu(-inf) == -\lambda \alpha``, NaN
    stays NaN.

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.selu(1.0), 8), round(scalar.selu(-1.0), 8)
    (1.05070099, -1.11133074)
    """
    scale = const(x, _SELU_SCALE)
    return x * scale if x > 0 else expm1(x) * (const(x, _SELU_ALPHA) * scale)


@core
def selu_backward(g, x):
    r"""Derivative core of :func:`nbops.selu`, from its input (PyTorch's ``elu_backward``
    with selu's constants): :math:`g \lambda` for :math:`x > 0` (and NaN ``x``),
    else :math:`g \lambda \alpha e^x` (so :math:`g \lambda \alpha` at 0).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.selu_backward(1.0, 1.0), 8), round(scalar.selu_backward(1.0, 0.0), 8)
    (1.05070099, 1.75809934)
    """
    scale = const(x, _SELU_SCALE)
    if x <= 0:
        return g * (const(x, _SELU_ALPHA) * scale) * exp(x)
    return g * scale


__all__ += ["celu", "celu_backward"]


@core
def celu(x, alpha):
    r"""Scalar core of :func:`nbops.celu`: :math:`x` if :math:`x > 0`, else
    :math:`\alpha (e^{x / \alpha} - 1)`.

    Computed as PyTorch computes it (its ``elu`` kernel with input scale
    :math:`1 / \alpha`): ``expm1(x * (1 / alpha)) * alpha``. ``alpha == 0`` is not
    checked here (the array op raises ``ValueError``).

    Parameters
    ----------
    x : float32 or float64
        One element.
    alpha : float or int
        Converted to ``x``'s float type.

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.celu(-1.0, 2.0), 8), scalar.celu(3.0, 2.0)
    (-0.78693868, 3.0)
    """
    a = const(x, alpha)
    return x if x > 0 else expm1(x * (const(x, 1.0) / a)) * a


@core
def celu_backward(g, x, alpha):
    r"""Derivative core of :func:`nbops.celu` (PyTorch's ``elu_backward`` with input
    scale :math:`1 / \alpha`): ``g`` for :math:`x > 0` (and NaN ``x``), else
    :math:`g (1 / \alpha) \alpha e^{x / \alpha}` (so ``g`` at 0).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.
    alpha : float32 or float64
        As in :func:`nbops.celu`.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.celu_backward(2.0, 1.0, 0.5), scalar.celu_backward(2.0, 0.0, 0.5)
    (2.0, 2.0)
    """
    if x <= 0:
        a = const(x, alpha)
        inv = const(x, 1.0) / a
        return g * inv * a * exp(x * inv)
    return g


__all__ += ["hardshrink", "hardshrink_backward"]


@core
def hardshrink(x, lambd):
    r"""Scalar core of :func:`nbops.hardshrink`: 0 for :math:`-\lambda \le x \le \lambda`,
    else :math:`x`.

    As PyTorch's: the zero is ``+0.0`` (also for ``x = -0.0``), NaN stays NaN,
    and a negative ``lambd`` makes it the identity.

    Parameters
    ----------
    x : float32 or float64
        One element.
    lambd : float or int
        Converted to ``x``'s float type.

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.hardshrink(0.5, 0.5), scalar.hardshrink(0.75, 0.5)
    (0.0, 0.75)
    """
    lam = const(x, lambd)
    return const(x, 0.0) if x >= -lam and x <= lam else x


@core
def hardshrink_backward(g, x, lambd):
    r"""Derivative core of :func:`nbops.hardshrink` (PyTorch's ``hardshrink_backward``):
    0 on the closed interval :math:`[-\lambda, \lambda]`, else ``g`` (NaN ``x``
    passes ``g`` through).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.
    lambd : float32 or float64
        As in :func:`nbops.hardshrink`.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.hardshrink_backward(2.0, 0.5, 0.5), scalar.hardshrink_backward(2.0, 0.75, 0.5)
    (0.0, 2.0)
    """
    lam = const(x, lambd)
    return const(g, 0.0) if x >= -lam and x <= lam else g


__all__ += ["tanhshrink", "tanhshrink_backward"]


@core
def tanhshrink(x):
    r"""Scalar core of :func:`nbops.tanhshrink`: :math:`x - \tanh x`.

    As PyTorch's ``input - input.tanh()`` (nbops' vectorizable ``tanh``):
    ``tanhshrink(±inf) == ±inf``, NaN stays NaN.

    Parameters
    ----------
    x : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.tanhshrink(1.0), 8)
    0.23840584
    """
    return x - _tanh(x)


@core
def tanhshrink_backward(g, x):
    r"""Derivative core of :func:`nbops.tanhshrink`: what PyTorch's autograd computes
    for ``input - input.tanh()``, :math:`g - g (1 - \tanh^2 x)` (``g`` at
    :math:`\pm\infty`, NaN for NaN ``x``).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.tanhshrink_backward(2.0, 0.0)
    0.0
    """
    t = _tanh(x)
    return g - g * (const(x, 1.0) - t * t)


__all__ += ["rrelu", "rrelu_backward"]


@core
def rrelu(x, slope):
    r"""Scalar core of :func:`nbops.rrelu` given the element's slope: :math:`x` if
    :math:`x > 0`, else :math:`\mathrm{slope} \cdot x`.

    In training ``slope`` is the element's random draw from :math:`U(\mathrm{lower},
    \mathrm{upper})`; in evaluation it is :math:`(\mathrm{lower} + \mathrm{upper}) / 2`.
    The test is PyTorch's ``x <= 0`` (0 gets the slope, a NaN stays NaN).

    Parameters
    ----------
    x : float32 or float64
        One element.
    slope : float
        Converted to ``x``'s float type.

    Returns
    -------
    float
        Of ``x``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.rrelu(-2.0, 0.25), scalar.rrelu(3.0, 0.25)
    (-0.5, 3.0)
    """
    return x * const(x, slope) if x <= 0 else x


@core
def rrelu_backward(g, x, slope):
    r"""Derivative core of :func:`nbops.rrelu` in training, given the element's slope:
    ``g * slope`` where :math:`x \le 0`, else ``g`` (PyTorch's ``grad * noise``, the
    noise 1 where ``x > 0`` or NaN).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the output element.
    x : float32 or float64
        The input element.
    slope : float
        The element's slope (as drawn by the forward).

    Returns
    -------
    float
        Of ``g``'s type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.rrelu_backward(2.0, -1.0, 0.25)
    0.5
    """
    return g * const(g, slope) if x <= 0 else g
