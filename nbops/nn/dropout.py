"""Dropout, Dropout2d, Dropout3d over :func:`nbops.dropout` and friends.

The functional ops are imported when first needed, so the modules can be
built (and used in eval mode) even where ``nbops.dropout`` is unavailable.
"""

import importlib

import numpy as np

from .._validate import is_device_array as _is_dev
from ._module import Module, _rng

__all__ = ["Dropout", "Dropout2d", "Dropout3d"]

_PARENT = __package__.rsplit(".", 1)[0]  # "nbops"


_FUNCTIONAL = {}


def _functional(name):
    """``nbops.dropout.<name>``, or None while that module does not exist (cached)."""
    try:
        return _FUNCTIONAL[name]
    except KeyError:
        pass
    try:
        fn = getattr(importlib.import_module(".dropout", _PARENT), name, None)
    except ModuleNotFoundError as exc:
        if exc.name != _PARENT + ".dropout":
            raise
        fn = None
    _FUNCTIONAL[name] = fn
    return fn


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
        fn = _functional(self._fn_name)
        if fn is None:
            if self.training and self.p > 0:
                raise NotImplementedError(f"nbops.{self._fn_name} is not available in this "
                                          "version of nbops (eval mode works)")
            if isinstance(input, np.ndarray) or _is_dev(input):
                return input
            return np.asarray(input)
        return fn(input, self.p, self.training, self.inplace, rng=self.rng)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """In training, zero each element with probability ``p`` and scale the rest by
    ``1 / (1 - p)``; the identity in eval mode (see :func:`nbops.dropout`).

    ``rng`` (None, an int seed or a ``numpy.random.Generator``) makes the
    masks reproducible: the module keeps one Generator across calls.

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

    >>> m = nbops.nn.Dropout2d(p=0.2, rng=0)
    >>> m(np.ones((20, 16, 4, 4), np.float32)).shape
    (20, 16, 4, 4)
    """

    _fn_name = "dropout2d"


class Dropout3d(_DropoutNd):
    """Zero whole channels of an ``(N, C, D, H, W)`` or ``(C, D, H, W)`` input
    (see :func:`nbops.dropout3d`); the identity in eval mode.

    >>> m = nbops.nn.Dropout3d(p=0.2, rng=0)
    >>> m(np.ones((20, 16, 4, 4, 4), np.float32)).shape
    (20, 16, 4, 4, 4)
    """

    _fn_name = "dropout3d"
