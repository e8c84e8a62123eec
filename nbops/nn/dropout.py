"""Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout and FeatureAlphaDropout over
:func:`nbops.dropout` and friends."""

import numpy as np

from .._ops import dropout as _D
from .._ops.plan import dropout_seed as _dropout_seed
from ._module import Module, _rng

__all__ = ["Dropout", "Dropout2d", "Dropout3d", "Dropout1d", "AlphaDropout",
           "FeatureAlphaDropout"]


class _DropoutNd(Module):
    _fn_name = ""
    #: whether forward passes ``inplace`` on (PyTorch's AlphaDropout and
    #: FeatureAlphaDropout keep it for the repr only)
    _passes_inplace = True

    def __init__(self, p=0.5, inplace=False, *, rng=None):
        super().__init__()
        if p < 0 or p > 1:
            raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
        self.p = p
        self.inplace = inplace
        # None: fresh entropy on every call; otherwise one Generator, so that
        # successive calls draw different masks and the sequence is reproducible.
        self.rng = None if rng is None else _rng(rng)

    def forward(self, input):
        fn = getattr(_D, self._fn_name)
        p, training = self.p, self.training
        seed = 0
        if training and 0 < p < 1 and np.size(input) != 0:
            # An int seed, kept for the backward (which regenerates the mask from it):
            # drawn from the module's Generator as the functional op draws it (the
            # same masks as passing the Generator), or fresh entropy for rng=None.
            seed = _dropout_seed(self.rng)
        result = fn(input, p, training, self.inplace and self._passes_inplace, rng=seed)
        self._save_for_backward((p, training, seed))
        return result

    def backward(self, grad_output):
        """The gradient of the input: ``grad_output`` times the latest forward's mask,
        regenerated from its seed (``nbops.dropout_backward`` and friends).

        Parameters
        ----------
        grad_output : array
            The gradient of the latest forward's output (its shape).

        Returns
        -------
        array
            The gradient of that forward's input.
        """
        p, training, seed = self._saved_for_backward()
        return getattr(_D, self._fn_name + "_backward")(grad_output, p, training, rng=seed)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """In training, zero each element with probability ``p`` and scale the rest by
    ``1 / (1 - p)``; the identity in eval mode (see :func:`nbops.dropout`).

    ``rng`` (None, an int seed or a ``numpy.random.Generator``) makes the
    masks reproducible: the module keeps one Generator across calls.

    Parameters
    ----------
    p : float, default 0.5
        Probability of an element being zeroed, in [0, 1].
    inplace : bool, default False
        Write into the input (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness: the module keeps one Generator across calls, so a seed
        makes the sequence of masks reproducible (nbops' addition).

    Examples
    --------
    >>> m = nbops.nn.Dropout(p=0.2, rng=0)
    >>> m(np.ones((20, 16), np.float32)).shape
    (20, 16)
    >>> m.eval()(np.ones(3, np.float32))
    array([1., 1., 1.], dtype=float32)
    """

    _fn_name = "dropout"


class Dropout2d(_DropoutNd):
    """Zero whole channels of an ``(N, C, H, W)`` or ``(C, H, W)`` input
    (see :func:`nbops.dropout2d`); the identity in eval mode.

    Parameters
    ----------
    p : float, default 0.5
        Probability of a channel being zeroed, in [0, 1].
    inplace : bool, default False
        Write into the input (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness: the module keeps one Generator across calls, so a seed
        makes the sequence of masks reproducible (nbops' addition).

    Examples
    --------
    >>> m = nbops.nn.Dropout2d(p=0.2, rng=0)
    >>> m(np.ones((20, 16, 4, 4), np.float32)).shape
    (20, 16, 4, 4)
    """

    _fn_name = "dropout2d"


class Dropout3d(_DropoutNd):
    """Zero whole channels of an ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input
    (see :func:`nbops.dropout3d`); the identity in eval mode.

    Parameters
    ----------
    p : float, default 0.5
        Probability of a channel being zeroed, in [0, 1].
    inplace : bool, default False
        Write into the input (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness: the module keeps one Generator across calls, so a seed
        makes the sequence of masks reproducible (nbops' addition).

    Examples
    --------
    >>> m = nbops.nn.Dropout3d(p=0.2, rng=0)
    >>> m(np.ones((20, 16, 4, 4, 4), np.float32)).shape
    (20, 16, 4, 4, 4)
    """

    _fn_name = "dropout3d"


class Dropout1d(_DropoutNd):
    """Zero whole channels of an ``(N, C, L)`` or ``(C, L)`` input
    (see :func:`nbops.dropout1d`); the identity in eval mode.

    Parameters
    ----------
    p : float, default 0.5
        Probability of a channel being zeroed, in [0, 1].
    inplace : bool, default False
        Write into the input (a writable float array) and return it.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness: the module keeps one Generator across calls, so a seed
        makes the sequence of masks reproducible (nbops' addition).

    Examples
    --------
    >>> m = nbops.nn.Dropout1d(p=0.2, rng=0)
    >>> m(np.ones((20, 16, 8), np.float32)).shape
    (20, 16, 8)
    """

    _fn_name = "dropout1d"


class AlphaDropout(_DropoutNd):
    """Alpha dropout (see :func:`nbops.alpha_dropout`): in training, drop elements to
    the SELU saturation value and restore mean 0 and variance 1; the identity in
    eval mode.

    Parameters
    ----------
    p : float, default 0.5
        Probability of an element being dropped, in [0, 1].
    inplace : bool, default False
        Kept for the repr only: as ``torch.nn.AlphaDropout``, the forward never
        writes into its input.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness: the module keeps one Generator across calls, so a seed
        makes the sequence of masks reproducible (nbops' addition).

    Examples
    --------
    >>> m = nbops.nn.AlphaDropout(p=0.2, rng=0)
    >>> y = m(np.random.default_rng(0).standard_normal(100_000))
    >>> bool(abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02)
    True
    """

    _fn_name = "alpha_dropout"
    _passes_inplace = False


class FeatureAlphaDropout(_DropoutNd):
    """Alpha dropout of whole channels of an ``(N, C, ...)`` input
    (see :func:`nbops.feature_alpha_dropout`); the identity in eval mode.

    Parameters
    ----------
    p : float, default 0.5
        Probability of a channel being dropped, in [0, 1].
    inplace : bool, default False
        Kept for the repr only: as ``torch.nn.FeatureAlphaDropout``, the forward
        never writes into its input.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness: the module keeps one Generator across calls, so a seed
        makes the sequence of masks reproducible (nbops' addition).

    Examples
    --------
    >>> m = nbops.nn.FeatureAlphaDropout(p=0.2, rng=0)
    >>> m(np.ones((20, 16, 4, 4), np.float32)).shape
    (20, 16, 4, 4)
    """

    _fn_name = "feature_alpha_dropout"
    _passes_inplace = False
