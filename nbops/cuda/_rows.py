"""Scalar helpers of the CUDA row kernels (softmax family, cross_entropy,
nll_loss, pairwise_distance): the per-element math of a row, written once.

The block-per-row, warp-per-row and thread-per-position kernels in
:mod:`nbops.cuda._kernels` differ only in how they split a row and reduce
across threads; each value they compute goes through one of these functions
or, for the softmax family, through the op's row core
(:class:`nbops.scalar.rows.RowCore`: the CPU's ``prep`` and ``value``).
They are plain Python functions in the style of the scalar cores (``math.*``,
arithmetic, comparisons, :func:`nbops.scalar._math.exp`, whose CUDA overload is
libdevice's ``exp``), compiled with :func:`nbops.cuda._core.device`, i.e.
``cuda.jit(device=True)``, and run as Python under the simulator. None calls
another, so each compiles on its own; the label-smoothing ones call the CPU row
cores' combines (:func:`nbops.scalar.rows.smoothed_loss`,
:func:`nbops.scalar.rows.smoothed_target`), compiled for the device with them.
:func:`nanmax` and :func:`nanmin` are the CPU's p-norm cores
(:mod:`nbops.scalar._norms`), re-exported here.

NaN and infinities follow PyTorch's CPU ops (checked against torch 2.13)
through IEEE arithmetic alone: the row maximum is NaN-sticky (:func:`nanmax`),
so a row holding a NaN is NaN everywhere; a row that is all ``-inf`` has
``v - max = -inf - (-inf) = NaN``, so it is NaN; a ``+inf`` entry makes
``inf - inf = NaN`` a term of the sum, so the whole row is NaN; a ``-inf``
entry next to finite ones gets ``exp(-inf) = 0`` (log-softmax ``-inf``).
"""

import math

from ..scalar import _math as M
from ..scalar._norms import nanmax, nanmin  # noqa: F401  (shared with the CPU p-norms)
from ..scalar.rows import smoothed_loss, smoothed_target


def exp_shifted(v, m):
    """``exp(v - m)``: one term of a softmax denominator (``m``: the row maximum)."""
    return M.exp(v - m)


def shifted(v, m):
    """``v - m``: an element shifted by its row maximum (what a row core's ``value``
    takes when the core does not store ``exp(v - m)``: log-softmax)."""
    return v - m


def log_sum_exp(m, s):
    """``m + log(s)``: the log-sum-exp of a row from its maximum and its ``sum exp(v - m)``.

    Cross-entropy's shift: ``log_softmax(v)_c = v_c - log_sum_exp(m, s)``.
    """
    return m + math.log(s)


def class_loss(lp_target, w_target, smooth_sum, eps, C):
    """Cross-entropy / NLL of one sample with a class-index target, as PyTorch:
    ``-(1 - eps) * w_t * logp_t - (eps / C) * sum_c w_c logp_c``
    (``eps``: label smoothing; ``smooth_sum``: the weighted sum of the row's log-probabilities).

    The combine of :func:`nbops.scalar.rows.smoothed_loss` (``a * nll + b * smooth``),
    with ``w_t`` and the signs in its coefficients: ``a = -(1 - eps) * w_t``,
    ``nll = logp_t``, ``b = -eps / C``, ``smooth = smooth_sum``.
    """
    return smoothed_loss(lp_target, smooth_sum, -(1.0 - eps) * w_target, -(eps / C))


def smoothed_probability(q, eps, C):
    """A class-probability target after label smoothing: ``q * (1 - eps) + eps / C``
    (:func:`nbops.scalar.rows.smoothed_target`)."""
    return smoothed_target(q, 1.0 - eps, eps / C)
