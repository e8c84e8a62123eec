"""Dropout, Dropout2d, Dropout3d over :func:`nbops.dropout` and friends."""

from .._ops import dropout as _D
from ._module import Module, _rng

__all__ = ["Dropout", "Dropout2d", "Dropout3d"]


class _DropoutNd(Module):
    _fn_name = ""

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
        return fn(input, self.p, self.training, self.inplace, rng=self.rng)

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
