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

The logit losses take their log-sigmoid from :func:`nbops.scalar.logsigmoid`.

The logarithms (``log``, ``log1p``) and the branch-free ``select`` the cores use
live in :mod:`nbops.scalar._math` with the other vectorizable helpers (they are
re-exported here).
"""


from .._config import core
from ._math import const, exp, log, log1p, select
from .activations import logsigmoid

__all__ = ["l1_loss", "mse_loss", "smooth_l1_loss", "kl_div", "kl_div_log_target",
           "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "binary_cross_entropy_with_logits_pos_weight", "huber_loss", "log", "log1p",
           "select"]


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
