"""Scalar cores of the elementwise losses: the single source of their math.

Each core maps one (input, target) pair of elements to its unreduced loss,
exactly as ``torch.nn.functional.<loss>(..., reduction='none')`` computes it
on the CPU (same formula, same order of operations, same NaN/inf behaviour).
nbops' loss kernels inline them and add the ``weight`` factor and the
reduction; call them in your own Numba loops to fuse a loss with other work::

    from numba import njit
    from nbops import scalar

    @njit
    def my_loss(x, y):
        s = 0.0
        for i in range(x.size):
            s += scalar.smooth_l1_loss(x[i], y[i], 0.5)
        return s / x.size

Hyperparameters (``beta``, ``pos_weight``) take the input element's float type:
``scalar.smooth_l1_loss(x, t, 0.5)`` with float32 ``x`` and ``t`` computes in
float32 and returns float32 (as NumPy 2 treats a Python scalar). The input and
the target are both elements: give them the same float type (a float64 target
next to a float32 input computes in float64, as NumPy promotes two arrays).

Each loss core has a derivative core ``<core>_backward(g, x, t[, param])``: ``g``
(the gradient of that element's loss) times the derivative of the unreduced
loss with respect to ``x``, with PyTorch autograd's conventions (``sign(0) = 0``
for the L1 loss, the ``1e-12`` clamp of binary cross-entropy). nbops' backward
kernels pass the reduction's factor in ``g`` and multiply by the weight.

The logit losses take their log-sigmoid from :func:`nbops.scalar.logsigmoid`.

The logarithms (``log``, ``log1p``) and the branch-free ``select`` the cores use
live in :mod:`nbops.scalar._math` with the other vectorizable helpers (they are
re-exported here).
"""


from .._config import core
from ._math import const, exp, log, log1p, select
from .activations import logsigmoid, sigmoid

__all__ = ["l1_loss", "mse_loss", "smooth_l1_loss", "kl_div", "kl_div_log_target",
           "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "binary_cross_entropy_with_logits_pos_weight", "huber_loss", "soft_margin_loss",
           "hinge_embedding_loss", "log", "log1p", "select"]
__all__ += ["l1_loss_backward", "mse_loss_backward", "smooth_l1_loss_backward",
            "huber_loss_backward", "kl_div_backward", "kl_div_log_target_backward",
            "binary_cross_entropy_backward", "binary_cross_entropy_with_logits_backward",
            "binary_cross_entropy_with_logits_pos_weight_backward",
            "soft_margin_loss_backward", "hinge_embedding_loss_backward"]
__all__ += ["poisson_nll_loss_log_input", "poisson_nll_loss_rate", "poisson_stirling_term",
            "poisson_nll_loss_log_input_full", "poisson_nll_loss_rate_full",
            "poisson_nll_loss_log_input_backward", "poisson_nll_loss_rate_backward"]
__all__ += ["gaussian_nll_loss", "gaussian_nll_loss_full", "gaussian_nll_loss_backward",
            "gaussian_nll_loss_var_backward", "margin_ranking_loss",
            "margin_ranking_loss_backward", "multilabel_soft_margin_term",
            "multilabel_soft_margin_term_backward"]


# ---------------------------------------------------------------- the loss cores
# Branch-free (``select``): every side is computed, then one is picked.
@core
def l1_loss(x, t):
    r"""Scalar core of :func:`nbops.l1_loss`: :math:`|x - t|` (unreduced).

    Parameters
    ----------
    x, t : float32 or float64
        Input and target elements.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.l1_loss(1.0, 3.5)
    2.5
    """
    return abs(x - t)


@core
def mse_loss(x, t):
    r"""Scalar core of :func:`nbops.mse_loss`: :math:`(x - t)^2` (unreduced).

    Parameters
    ----------
    x, t : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.mse_loss(1.0, 3.5)
    6.25
    """
    d = x - t
    return d * d


@core
def smooth_l1_loss(x, t, beta):
    r"""Scalar core of :func:`nbops.smooth_l1_loss`.

    :math:`0.5 d^2 / \beta` if :math:`d < \beta`, else :math:`d - 0.5 \beta`, with
    :math:`d = |x - t|`.

    Needs ``beta > 0`` (the array op handles ``beta == 0`` as ``l1_loss``).

    Parameters
    ----------
    x, t : float32 or float64
        Input and target elements.
    beta : float or int
        Converted to ``x``'s float type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.smooth_l1_loss(0.0, 0.5, 1.0), scalar.smooth_l1_loss(0.0, 3.0, 1.0)
    (0.125, 2.5)
    """
    b = const(x, beta)
    d = abs(x - t)
    half = const(x, 0.5)
    return select(d < b, half * d * d / b, d - half * b)


@core
def kl_div(x, t):
    r"""Scalar core of :func:`nbops.kl_div`: :math:`t \log t - t x`, for a log-probability ``x``.

    A zero target contributes ``-0 * x`` (0 unless ``x`` is infinite or NaN, as
    PyTorch's ``xlogy``); a negative target gives NaN.

    Parameters
    ----------
    x, t : float32 or float64
        Log-probability input and probability target.

    Examples
    --------
    >>> import math
    >>> from nbops import scalar
    >>> round(scalar.kl_div(math.log(0.25), 0.5), 8)
    0.34657359
    """
    return select(t == 0, const(x, 0.0), t * log(t)) - t * x


@core
def kl_div_log_target(x, t):
    r"""Scalar core of :func:`nbops.kl_div` with ``log_target=True``: :math:`e^{t} (t - x)`.

    Parameters
    ----------
    x, t : float32 or float64
        Log-probability input and log-probability target.

    Examples
    --------
    >>> import math
    >>> from nbops import scalar
    >>> round(scalar.kl_div_log_target(math.log(0.25), math.log(0.5)), 8)
    0.34657359
    """
    return exp(t) * (t - x)


@core
def binary_cross_entropy(x, t):
    r"""Scalar core of :func:`nbops.binary_cross_entropy`.

    :math:`-(t \log x + (1 - t) \log(1 - x))`.

    Each log is clamped at :math:`-100` (as PyTorch). ``x`` is a probability in
    [0, 1] (not checked here; nbops' ``binary_cross_entropy`` checks it
    before running).

    Parameters
    ----------
    x, t : float32 or float64

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.binary_cross_entropy(0.9, 1.0), 8), scalar.binary_cross_entropy(0.0, 1.0)
    (0.10536052, 100.0)
    """
    lo = const(x, -100.0)
    a = log1p(-x)
    b = log(x)
    a = select(a < lo, lo, a)  # std::max(a, -100): NaN stays NaN
    b = select(b < lo, lo, b)
    return (t - const(x, 1.0)) * a - t * b


@core
def binary_cross_entropy_with_logits(x, t):
    r"""Scalar core of :func:`nbops.binary_cross_entropy_with_logits`.

    :math:`(1 - t)\,x - \log\sigma(x)`.

    With the stable :math:`\log\sigma(x) = \min(x, 0) - \log(1 + e^{-|x|})`
    of :func:`nbops.scalar.logsigmoid`.

    Parameters
    ----------
    x, t : float32 or float64
        Logit and target.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.binary_cross_entropy_with_logits(2.0, 1.0), 8)
    0.12692801
    """
    return (const(x, 1.0) - t) * x - logsigmoid(x)


@core
def binary_cross_entropy_with_logits_pos_weight(x, t, pos_weight):
    r"""Scalar core of :func:`nbops.binary_cross_entropy_with_logits` with ``pos_weight``.

    :math:`(1 - t)\,x - (1 + (p - 1)\,t) \log\sigma(x)`, with :math:`p` the ``pos_weight``.

    Parameters
    ----------
    x, t : float32 or float64
        Logit and target.
    pos_weight : float or int
        The weight :math:`p` of the positive class, converted to ``x``'s float type.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.binary_cross_entropy_with_logits_pos_weight(2.0, 1.0, 3.0), 8)
    0.38078403
    """
    one = const(x, 1.0)
    return (one - t) * x - ((const(x, pos_weight) - one) * t + one) * logsigmoid(x)


@core
def huber_loss(x, t, delta):
    r"""Scalar core of :func:`nbops.huber_loss`.

    :math:`0.5 d^2` if :math:`d < \delta`, else :math:`\delta (d - 0.5 \delta)`, with
    :math:`d = |x - t|`.

    Parameters
    ----------
    x, t : float32 or float64
        Input and target elements.
    delta : float or int
        Where the loss switches from quadratic to linear (``> 0``), converted to
        ``x``'s float type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.huber_loss(0.0, 0.5, 1.0), scalar.huber_loss(0.0, 3.0, 0.5)
    (0.125, 1.375)
    """
    dl = const(x, delta)
    d = abs(x - t)
    half = const(x, 0.5)
    return select(d < dl, half * d * d, dl * (d - half * dl))


# ----------------------------------------------------------- the derivative cores
# ``g`` times d(loss)/dx, as torch.autograd computes it for the forward's formula.
@core
def _sign(x, d):
    """PyTorch's ``sgn`` of ``d`` in ``x``'s type: 1, -1, or 0 for 0 and NaN."""
    one = const(x, 1.0)
    zero = const(x, 0.0)
    return select(d > zero, one, select(d < zero, -one, zero))


@core
def l1_loss_backward(g, x, t):
    r"""Derivative core of :func:`nbops.l1_loss`: :math:`g\,\mathrm{sign}(x - t)`,
    with :math:`\mathrm{sign}(0) = 0` (and 0 for NaN), as PyTorch's autograd.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Input and target elements.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.l1_loss_backward(2.0, 1.0, 3.5), scalar.l1_loss_backward(2.0, 1.0, 1.0)
    (-2.0, 0.0)
    """
    return g * _sign(x, x - t)


@core
def mse_loss_backward(g, x, t):
    r"""Derivative core of :func:`nbops.mse_loss`: :math:`2 (x - t)\,g`.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Input and target elements.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.mse_loss_backward(0.5, 1.0, 3.5)
    -2.5
    """
    return const(x, 2.0) * (x - t) * g


@core
def smooth_l1_loss_backward(g, x, t, beta):
    r"""Derivative core of :func:`nbops.smooth_l1_loss`: with :math:`d = x - t`,
    :math:`g\,d / \beta` for :math:`|d| \le \beta`, else :math:`g\,\mathrm{sign}(d)`
    (PyTorch's ``smooth_l1_loss_backward``); ``beta = 0`` is
    :func:`l1_loss_backward` (0 at :math:`d = 0`), as PyTorch runs ``l1_loss`` then.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Input and target elements.
    beta : float or int
        As in :func:`nbops.smooth_l1_loss` (``>= 0``), converted to ``x``'s float type.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.smooth_l1_loss_backward(2.0, 0.5, 0.0, 1.0)
    1.0
    >>> scalar.smooth_l1_loss_backward(2.0, 3.0, 0.0, 1.0)
    2.0
    """
    b = const(x, beta)
    d = x - t
    inner = select(b > const(x, 0.0), d * g / b, g * _sign(x, d))
    return select(d < -b, -g, select(d > b, g, inner))


@core
def huber_loss_backward(g, x, t, delta):
    r"""Derivative core of :func:`nbops.huber_loss`: with :math:`d = x - t`,
    :math:`g\,d` for :math:`|d| \le \delta`, else :math:`g\,\delta\,\mathrm{sign}(d)`
    (PyTorch's ``huber_loss_backward``; NaN stays NaN).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Input and target elements.
    delta : float or int
        As in :func:`nbops.huber_loss` (``> 0``), converted to ``x``'s float type.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.huber_loss_backward(2.0, 0.5, 0.0, 1.0)
    1.0
    >>> scalar.huber_loss_backward(2.0, 3.0, 0.0, 0.5)
    1.0
    """
    dl = const(x, delta)
    d = x - t
    return select(d < -dl, -g * dl, select(d > dl, g * dl, d * g))


@core
def kl_div_backward(g, x, t):
    r"""Derivative core of :func:`nbops.kl_div`: :math:`-g\,t` (any target, as
    PyTorch's autograd of :math:`t \log t - t x`).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Log-probability input and probability target.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.kl_div_backward(2.0, -1.0, 0.25)
    -0.5
    """
    return -(g * t)


@core
def kl_div_log_target_backward(g, x, t):
    r"""Derivative core of :func:`nbops.kl_div` with ``log_target=True``: :math:`-g\,e^{t}`.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Log-probability input and log-probability target.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.kl_div_log_target_backward(2.0, -1.0, 0.0)
    -2.0
    """
    return -(g * exp(t))


@core
def binary_cross_entropy_backward(g, x, t):
    r"""Derivative core of :func:`nbops.binary_cross_entropy`:
    :math:`g\,(x - t) / \max((1 - x)\,x, 10^{-12})` (PyTorch's
    ``binary_cross_entropy_backward``, its clamp of the denominator included:
    PyTorch's constant is the float32 nearest to :math:`10^{-12}`, in float64 too).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Probability input and target.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.binary_cross_entropy_backward(1.0, 0.5, 1.0)
    -2.0
    >>> scalar.binary_cross_entropy_backward(1.0, 0.0, 0.0)
    0.0
    """
    eps = const(x, 9.999999960041972e-13)  # PyTorch's EPSILON: 1e-12 as a float32
    den = (const(x, 1.0) - x) * x
    return g * (x - t) / select(den < eps, eps, den)


@core
def binary_cross_entropy_with_logits_backward(g, x, t):
    r"""Derivative core of :func:`nbops.binary_cross_entropy_with_logits`:
    :math:`g\,(\sigma(x) - t)`.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Logit and target.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.binary_cross_entropy_with_logits_backward(2.0, 0.0, 1.0)
    -1.0
    """
    return (sigmoid(x) - t) * g


@core
def binary_cross_entropy_with_logits_pos_weight_backward(g, x, t, pos_weight):
    r"""Derivative core of :func:`nbops.binary_cross_entropy_with_logits` with
    ``pos_weight``: :math:`g\,((p t + 1 - t)\,\sigma(x) - p t)`, with :math:`p` the
    ``pos_weight`` (PyTorch's ``binary_cross_entropy_with_logits_backward``).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Logit and target.
    pos_weight : float or int
        The weight :math:`p` of the positive class, converted to ``x``'s float type.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.binary_cross_entropy_with_logits_pos_weight_backward(1.0, 0.0, 1.0, 3.0)
    -1.5
    """
    pt = const(x, pos_weight) * t
    return ((pt + const(x, 1.0) - t) * sigmoid(x) - pt) * g


# ------------------------------------------- issue 17: soft margin and hinge embedding
@core
def soft_margin_loss(x, t):
    r"""Scalar core of :func:`nbops.soft_margin_loss`: :math:`\log(1 + e^{-t x})`.

    PyTorch's formula exactly (``log1p(exp(-x * t))``: it overflows to inf where
    :math:`-t x` exceeds the float type's ``log(max)``).

    Parameters
    ----------
    x, t : float32 or float64
        Input and target elements (the target usually 1 or -1).

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.soft_margin_loss(2.0, 1.0), 8), round(scalar.soft_margin_loss(2.0, -1.0), 8)
    (0.12692801, 2.12692801)
    """
    return log1p(exp(-x * t))


@core
def soft_margin_loss_backward(g, x, t):
    r"""Derivative core of :func:`nbops.soft_margin_loss`: with :math:`z = e^{-t x}`,
    :math:`-g\,t\,z / (1 + z)` (PyTorch's ``soft_margin_loss_backward``: NaN where
    :math:`z` overflows, as PyTorch).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Input and target elements.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.soft_margin_loss_backward(1.0, 0.0, 1.0), 8)
    -0.5
    """
    z = exp(-t * x)
    return -(t * z) / (const(x, 1.0) + z) * g


@core
def hinge_embedding_loss(x, t, margin):
    r"""Scalar core of :func:`nbops.hinge_embedding_loss`.

    PyTorch's formula: :math:`[t \ne 1]\,\max(0, \Delta - x) + [t \ne -1]\,x`, so
    :math:`x` for :math:`t = 1`, :math:`\max(0, \Delta - x)` for :math:`t = -1`
    (and the sum of both terms for any other target, as PyTorch). NaN propagates.

    Parameters
    ----------
    x, t : float32 or float64
        Input (usually a distance) and target (1 or -1) elements.
    margin : float or int
        :math:`\Delta`, converted to ``x``'s float type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.hinge_embedding_loss(0.25, 1.0, 1.0), scalar.hinge_embedding_loss(0.25, -1.0, 1.0)
    (0.25, 0.75)
    """
    zero = const(x, 0.0)
    one = const(x, 1.0)
    d = const(x, margin) - x
    clamped = select(d < zero, zero, d)
    return select(t != one, clamped, zero) + select(t != -one, x, zero)


@core
def hinge_embedding_loss_backward(g, x, t, margin):
    r"""Derivative core of :func:`nbops.hinge_embedding_loss`:
    :math:`g\,([t \ne -1] - [t \ne 1]\,[\Delta - x \ge 0])` (the gradient
    ``torch.autograd`` gives PyTorch's formula: ``clamp_min`` passes the gradient
    where :math:`\Delta - x = 0`, not where it is NaN).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Input and target elements.
    margin : float or int
        As in :func:`nbops.hinge_embedding_loss`.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.hinge_embedding_loss_backward(2.0, 0.25, -1.0, 1.0)
    -2.0
    """
    zero = const(x, 0.0)
    one = const(x, 1.0)
    d = const(x, margin) - x
    margin_part = select((t != one) & (d >= zero), -g, zero)
    return margin_part + select(t != -one, g, zero)


# ------------------------------------------------ issue 17: Poisson negative log-likelihood
@core
def poisson_stirling_term(t):
    r"""Stirling's approximation of :math:`\log(t!)`,
    :math:`t \log t - t + \tfrac12 \log(2 \pi t)`, for :math:`t > 1`, else 0: the
    term ``poisson_nll_loss(..., full=True)`` adds (PyTorch's ``masked_fill(target <= 1, 0)``,
    so a NaN target gives NaN).

    Parameters
    ----------
    t : float32 or float64
        A target element.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.poisson_stirling_term(3.0), 8), scalar.poisson_stirling_term(1.0)
    (1.76408154, 0.0)
    """
    term = t * log(t) - t + const(t, 0.5) * log(const(t, 6.283185307179586) * t)
    return select(t <= const(t, 1.0), const(t, 0.0), term)


@core
def poisson_nll_loss_log_input(x, t, eps):
    r"""Scalar core of :func:`nbops.poisson_nll_loss` with ``log_input=True``:
    :math:`e^x - t x`.

    Parameters
    ----------
    x, t : float32 or float64
        Input (the log of the rate) and target (a count) elements.
    eps : float
        Unused (the signature of :func:`poisson_nll_loss_rate`).

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.poisson_nll_loss_log_input(0.5, 2.0, 1e-8), 8)
    0.64872127
    """
    return exp(x) - t * x


@core
def poisson_nll_loss_log_input_full(x, t, eps):
    r"""Scalar core of :func:`nbops.poisson_nll_loss` with ``log_input=True, full=True``:
    :func:`poisson_nll_loss_log_input` plus :func:`poisson_stirling_term`.

    Parameters
    ----------
    x, t : float32 or float64
        Input (the log of the rate) and target (a count) elements.
    eps : float
        Unused.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.poisson_nll_loss_log_input_full(0.5, 2.0, 1e-8), 8)
    1.30052776
    """
    return exp(x) - t * x + poisson_stirling_term(t)


@core
def poisson_nll_loss_rate(x, t, eps):
    r"""Scalar core of :func:`nbops.poisson_nll_loss` with ``log_input=False``:
    :math:`x - t \log(x + \epsilon)`.

    Parameters
    ----------
    x, t : float32 or float64
        Input (the rate) and target (a count) elements.
    eps : float
        :math:`\epsilon`, converted to ``x``'s float type.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.poisson_nll_loss_rate(2.0, 2.0, 0.0), 8)
    0.61370564
    """
    return x - t * log(x + const(x, eps))


@core
def poisson_nll_loss_rate_full(x, t, eps):
    r"""Scalar core of :func:`nbops.poisson_nll_loss` with ``log_input=False, full=True``:
    :func:`poisson_nll_loss_rate` plus :func:`poisson_stirling_term`.

    Parameters
    ----------
    x, t : float32 or float64
        Input (the rate) and target (a count) elements.
    eps : float
        :math:`\epsilon`, converted to ``x``'s float type.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.poisson_nll_loss_rate_full(2.0, 2.0, 0.0), 8)
    1.26551212
    """
    return x - t * log(x + const(x, eps)) + poisson_stirling_term(t)


@core
def poisson_nll_loss_log_input_backward(g, x, t, eps):
    r"""Derivative core of :func:`poisson_nll_loss_log_input`: :math:`g e^x - g t`.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Input and target elements.
    eps : float
        Unused.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.poisson_nll_loss_log_input_backward(2.0, 0.0, 3.0, 1e-8)
    -4.0
    """
    return g * exp(x) - g * t


@core
def poisson_nll_loss_rate_backward(g, x, t, eps):
    r"""Derivative core of :func:`poisson_nll_loss_rate`: :math:`g - g t / (x + \epsilon)`.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t : float32 or float64
        Input and target elements.
    eps : float
        :math:`\epsilon`, converted to ``x``'s float type.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.poisson_nll_loss_rate_backward(2.0, 2.0, 3.0, 0.0)
    -1.0
    """
    return g + (-g * t) / (x + const(x, eps))


# ----------------------------------------------- issue 17: Gaussian negative log-likelihood
@core
def gaussian_nll_loss(x, t, v):
    r"""Scalar core of :func:`nbops.gaussian_nll_loss`:
    :math:`\tfrac12 (\log v + (x - t)^2 / v)`, with ``v`` the variance already
    clamped to ``eps``.

    Parameters
    ----------
    x, t, v : float32 or float64
        Input (the mean), target and (clamped) variance elements.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.gaussian_nll_loss(1.0, 3.0, 2.0), 8)
    1.34657359
    """
    d = x - t
    return const(x, 0.5) * (log(v) + d * d / v)


@core
def gaussian_nll_loss_full(x, t, v):
    r"""Scalar core of :func:`nbops.gaussian_nll_loss` with ``full=True``:
    :func:`gaussian_nll_loss` plus :math:`\tfrac12 \log(2\pi)`.

    Parameters
    ----------
    x, t, v : float32 or float64
        Input (the mean), target and (clamped) variance elements.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.gaussian_nll_loss_full(0.0, 0.0, 1.0), 8)
    0.91893853
    """
    d = x - t
    return const(x, 0.5) * (log(v) + d * d / v) + const(x, 0.9189385332046727)


@core
def gaussian_nll_loss_backward(g, x, t, v):
    r"""Derivative core of :func:`gaussian_nll_loss` in ``x``: :math:`g (x - t) / v`
    (in the order of ``torch.autograd``: :math:`(g/2 / v) \cdot 2 (x - t)`).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t, v : float32 or float64
        Input, target and (clamped) variance elements.

    Returns
    -------
    float
        The gradient of the input element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.gaussian_nll_loss_backward(1.0, 3.0, 1.0, 4.0)
    0.5
    """
    d = x - t
    return (const(x, 0.5) * g / v) * (const(x, 2.0) * d)


@core
def gaussian_nll_loss_var_backward(g, x, t, v):
    r"""Derivative core of :func:`gaussian_nll_loss` in ``v``:
    :math:`\tfrac{g}{2} (1/v - (x - t)^2 / v^2)` (``torch.autograd`` passes it
    through the clamp of the variance, which PyTorch does without gradient).

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    x, t, v : float32 or float64
        Input, target and (clamped) variance elements.

    Returns
    -------
    float
        The gradient of the variance element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.gaussian_nll_loss_var_backward(1.0, 2.0, 1.0, 4.0)
    0.09375
    """
    d = x - t
    half_g = const(x, 0.5) * g
    return half_g / v - half_g * ((d * d / v) / v)


# ------------------------------------------------------------ issue 17: margin ranking
@core
def margin_ranking_loss(d, y, margin):
    r"""Scalar core of :func:`nbops.margin_ranking_loss`, of the difference
    :math:`d = x_1 - x_2`: :math:`\max(0, -y d + \Delta)` (NaN propagates).

    Parameters
    ----------
    d : float32 or float64
        ``input1 - input2`` (PyTorch subtracts first, too).
    y : float32 or float64
        The target element (1 or -1: which input should rank higher).
    margin : float
        :math:`\Delta`, converted to ``d``'s float type.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.margin_ranking_loss(0.25, 1.0, 0.5), scalar.margin_ranking_loss(0.25, -1.0, 0.0)
    (0.25, 0.25)
    """
    v = -y * d + const(d, margin)
    return select(v < const(d, 0.0), const(d, 0.0), v)


@core
def margin_ranking_loss_backward(g, d, y, margin):
    r"""Derivative core of :func:`margin_ranking_loss` in :math:`d`: :math:`-g y`
    where :math:`-y d + \Delta \ge 0`, else 0 (``clamp_min`` passes the gradient at
    0, as ``torch.autograd``); ``input1``'s gradient is it, ``input2``'s its negative.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the element's loss.
    d, y : float32 or float64
        The difference ``input1 - input2`` and the target element.
    margin : float
        As in :func:`margin_ranking_loss`.

    Returns
    -------
    float
        The gradient of the difference element.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.margin_ranking_loss_backward(2.0, 0.25, 1.0, 0.5)
    -2.0
    """
    v = -y * d + const(d, margin)
    return select(v >= const(d, 0.0), g, const(d, 0.0)) * -y


# -------------------------------------------------- issue 17: multi-label soft margin
@core
def multilabel_soft_margin_term(x, t):
    r"""One class's term of :func:`nbops.multilabel_soft_margin_loss` (before its
    weight and the mean over the classes): :math:`-(t \log\sigma(x) + (1 - t)
    \log\sigma(-x))`.

    Parameters
    ----------
    x, t : float32 or float64
        Logit and target (0/1 label) elements.

    Examples
    --------
    >>> from nbops import scalar
    >>> round(scalar.multilabel_soft_margin_term(0.0, 1.0), 8)
    0.69314718
    """
    return -(t * logsigmoid(x) + (const(x, 1.0) - t) * logsigmoid(-x))


@core
def multilabel_soft_margin_term_backward(g, x, t):
    r"""Derivative core of :func:`multilabel_soft_margin_term`: :math:`g (\sigma(x) - t)`.

    Parameters
    ----------
    g : float32 or float64
        The gradient of the term.
    x, t : float32 or float64
        Logit and target elements.

    Returns
    -------
    float
        The gradient of the logit.

    Examples
    --------
    >>> from nbops import scalar
    >>> scalar.multilabel_soft_margin_term_backward(2.0, 0.0, 1.0)
    -1.0
    """
    return g * (sigmoid(x) - t)
