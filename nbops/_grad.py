"""Grad mode (``nbops.no_grad``) and the gradient store of ``nbops.nn`` parameters.

nbops has no autograd: parameters are plain arrays (NumPy arrays, or Numba
device arrays after ``module.to("cuda")``), so their gradients cannot live on
them as ``torch.Tensor.grad`` does. They live here instead, in one store keyed
by the parameter object itself (a weak reference: a gradient goes away with its
parameter, and a new array that happens to reuse a freed array's ``id`` never
sees the old gradient):

- module backwards add into it (:func:`accumulate_grad`, ``+=`` as PyTorch);
- optimizers read it (:func:`get_grad`) and clear it (:func:`set_grad` with None);
- users reach it by the parameter (``nbops.nn.get_grad(model.fc.weight)``) or by
  the parameter's ``state_dict`` name (``dict(model.named_grads())``).

Grad mode is per thread, as in PyTorch: inside ``with nbops.no_grad():`` the
modules' ``forward`` keeps nothing for a backward.
"""

import functools
import threading
import weakref

import numpy as np

from ._validate import is_device_array

__all__ = ["no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
           "get_grad", "set_grad", "accumulate_grad"]

# ---------------------------------------------------------------------------
# Grad mode
# ---------------------------------------------------------------------------

_mode = threading.local()


def is_grad_enabled():
    """Whether modules keep what their backward needs (PyTorch's ``torch.is_grad_enabled``).

    Returns
    -------
    bool
        True unless inside ``no_grad()`` (or after ``set_grad_enabled(False)``)
        on this thread.
    """
    return getattr(_mode, "enabled", True)


class _GradMode:
    """A context manager and function decorator that sets the grad mode, then restores it."""

    _enabled = True

    def __enter__(self):
        self._prev = is_grad_enabled()
        _mode.enabled = self._enabled

    def __exit__(self, *exc):
        _mode.enabled = self._prev
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with type(self)():
                return fn(*args, **kwargs)
        return wrapper


class no_grad(_GradMode):
    """Context manager (and decorator) inside which modules keep nothing for a backward.

    As ``torch.no_grad``: use it for evaluation, so that ``forward`` does not
    hold on to its inputs or outputs. The setting is per thread.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> with nbops.no_grad():
    ...     nbops.is_grad_enabled()
    False
    >>> nbops.is_grad_enabled()
    True
    """

    _enabled = False


class enable_grad(_GradMode):
    """Context manager (and decorator) that turns grad mode back on inside ``no_grad``."""

    _enabled = True


class set_grad_enabled(_GradMode):
    """Set grad mode to ``mode``: a function call, or a context manager that restores it.

    Parameters
    ----------
    mode : bool
        True to keep what the backward needs, False as inside ``no_grad``.
    """

    def __init__(self, mode):
        self._prev = is_grad_enabled()
        self._enabled = bool(mode)
        _mode.enabled = self._enabled

    def __enter__(self):
        pass

    def __call__(self, fn):
        _mode.enabled = self._prev  # used as a decorator: the call above set nothing lasting
        mode = self._enabled

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)
        return wrapper


# ---------------------------------------------------------------------------
# The gradient store
# ---------------------------------------------------------------------------

# id(param) -> (weakref to param, gradient). The weak reference's callback drops
# the entry when the parameter is freed; get_grad also checks the referent, so
# an array that reuses a freed id never reads a stale gradient.
_store = {}


def _forget(key, ref):
    entry = _store.get(key)
    if entry is not None and entry[0] is ref:
        del _store[key]


def _check_param(param):
    if not (isinstance(param, np.ndarray) or is_device_array(param)):
        raise TypeError(f"param must be a parameter array (numpy.ndarray or CUDA device "
                        f"array), got {type(param).__name__}")


def get_grad(param):
    """The gradient accumulated for parameter ``param``, or None (PyTorch's ``param.grad``).

    Parameters
    ----------
    param : numpy.ndarray or CUDA device array
        A parameter, e.g. ``model.fc.weight`` or one of ``model.parameters()``.

    Returns
    -------
    numpy.ndarray, CUDA device array or None
        An array of the parameter's shape and dtype, on the parameter's side
        (host or device), or None when no backward has reached it since the
        last ``zero_grad()``.
    """
    entry = _store.get(id(param))
    if entry is None or entry[0]() is not param:
        return None
    return entry[1]


def set_grad(param, grad):
    """Set (or with None, clear) the gradient of ``param`` (PyTorch's ``param.grad = grad``).

    Parameters
    ----------
    param : numpy.ndarray or CUDA device array
        The parameter.
    grad : array or None
        The new gradient, stored as it is (not copied): an array of the
        parameter's shape and dtype on the parameter's side (host or device).
        None clears the gradient.
    """
    _check_param(param)
    key = id(param)
    if grad is None:
        entry = _store.pop(key, None)
        return
    if tuple(grad.shape) != tuple(param.shape) or np.dtype(grad.dtype) != np.dtype(param.dtype):
        raise ValueError(f"grad must have the parameter's shape {tuple(param.shape)} and dtype "
                         f"{np.dtype(param.dtype)}, got shape {tuple(grad.shape)} and dtype "
                         f"{np.dtype(grad.dtype)}")
    if isinstance(param, np.ndarray) != isinstance(grad, np.ndarray):
        raise TypeError("grad must be on the parameter's side: a NumPy array for a host "
                        "parameter, a CUDA device array for a device parameter")
    entry = _store.get(key)
    if entry is not None and entry[0]() is param:
        _store[key] = (entry[0], grad)
        return
    ref = weakref.ref(param, lambda r, key=key: _forget(key, r))
    _store[key] = (ref, grad)


def accumulate_grad(param, grad, *, owned=False):
    """Add ``grad`` into the gradient of ``param`` (``param.grad += grad``, as autograd does).

    Parameters
    ----------
    param : numpy.ndarray or CUDA device array
        The parameter.
    grad : array
        This backward's contribution (the parameter's shape and dtype, on its side).
    owned : bool, default False
        True when ``grad`` is a fresh array nobody else holds: the first
        contribution is then stored as it is, instead of copied.
    """
    current = get_grad(param)
    if current is None:
        if not owned:
            grad = grad.copy() if isinstance(grad, np.ndarray) else _device_copy(grad)
        set_grad(param, grad)
        return
    if isinstance(current, np.ndarray):
        np.add(current, grad, out=current)
    else:
        _device_add_into(current, grad)


def copy_array(a):
    """A copy of array ``a`` (host or device); anything else is returned as it is (an
    op converts it, so an in-place op does not write into it)."""
    if isinstance(a, np.ndarray):
        return a.copy()
    if is_device_array(a):
        return _device_copy(a)
    return a


def _device_copy(a):
    from .cuda import _grad_ops
    return _grad_ops.copy(a)


def _device_add_into(acc, a):
    from .cuda import _grad_ops
    _grad_ops.add_into(acc, a)
