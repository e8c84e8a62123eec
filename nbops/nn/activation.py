"""Activation modules: thin holders of hyperparameters over the functional ops.

The formulas, NaN/inf behaviour and dtype rules are documented on the
functional ops (``nbops.relu`` ...); these classes add PyTorch's constructor
signatures, defaults, validation and reprs.

The plain ones (``ReLU``, ``ELU``, ``Softplus``, ...: a constructor storing the
op's parameters, ``forward`` calling the op) are generated from the op table
(:mod:`nbops._ops.table`), and so are those of the row ops (``Softmax``,
``LogSoftmax``, ``Softmin``), over :class:`_SoftmaxBase` (``dim`` as PyTorch);
the other classes below are those with more to them.
"""

import warnings

import numpy as np

from .._grad import accumulate_grad, is_grad_enabled
from .._grad import copy_array as _copy_array
from .._ops import activation as _A
from .._ops import glu as _glu
from .._ops import registry as _registry  # noqa: F401  (registers the row ops, in order)
from .._ops import rrelu as _rrelu
from .._ops import table as _table
from .._ops.plan import dropout_seed as _dropout_seed
from ._module import Module, _check_device, _factory_dtype, _rng, _size, _write


def _inplace(inplace, first=False):
    if not inplace:
        return ""
    return "inplace=True" if first else ", inplace=True"


class Hardtanh(Module):
    """Clamp to ``[min_val, max_val]`` (see :func:`nbops.hardtanh`).

    Parameters
    ----------
    min_val, max_val : float, default -1.0, 1.0
        The clamp bounds; ``max_val <= min_val`` raises ``ValueError`` (PyTorch:
        ``AssertionError``).
    inplace : bool, default False
        Write the result into the input.
    min_value, max_value : float, optional
        PyTorch's deprecated spellings of ``min_val``/``max_val`` (``FutureWarning``).

    Examples
    --------
    >>> nbops.nn.Hardtanh(-2, 2)(np.array([-3.0, 1.0, 3.0], np.float32))
    array([-2.,  1.,  2.], dtype=float32)
    """

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None,
                 max_value=None):
        super().__init__()
        if min_value is not None:
            warnings.warn("keyword argument `min_value` is deprecated and renamed to `min_val`",
                          FutureWarning, stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("keyword argument `max_value` is deprecated and renamed to `max_val`",
                          FutureWarning, stacklevel=2)
            max_val = max_value
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace
        if self.max_val <= self.min_val:
            raise ValueError(f"max_val ({self.max_val}) must be greater than min_val "
                             f"({self.min_val})")

    def forward(self, input):
        result = _A.hardtanh(input, self.min_val, self.max_val, self.inplace)
        # in place, the output: inside (min_val, max_val) exactly where the input is,
        # so the derivative is the same (as autograd keeps hardtanh_'s result)
        self._save_for_backward(result if self.inplace else input)
        return result

    def backward(self, grad_output):
        return _A.hardtanh_backward(grad_output, self._saved_for_backward(), self.min_val,
                                    self.max_val)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace(self.inplace)}"


class ReLU6(Hardtanh):
    """``min(max(0, x), 6)`` (see :func:`nbops.relu6`).

    Parameters
    ----------
    inplace : bool, default False
        Write the result into the input.

    Examples
    --------
    >>> nbops.nn.ReLU6()(np.array([-1.0, 7.0], np.float32))
    array([0., 6.], dtype=float32)
    """

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def forward(self, input):
        result = _A.relu6(input, self.inplace)
        self._save_for_backward(result if self.inplace else input)  # as Hardtanh
        return result

    def backward(self, grad_output):
        return _A.relu6_backward(grad_output, self._saved_for_backward())

    def extra_repr(self):
        return _inplace(self.inplace, first=True)


class PReLU(Module):
    """``x if x >= 0 else a * x`` with a learned slope per channel (see :func:`nbops.prelu`).

    Parameters
    ----------
    num_parameters : int, default 1
        Length of ``weight``: 1 (one shared slope) or the number of channels.
    init : float, default 0.25
        The initial slope (``weight`` is filled with it, no randomness).
    device : {None, 'cpu', 'cuda'}, optional
        Where the parameter lives.
    dtype : dtype, optional
        Of ``weight``; float32 by default.

    Examples
    --------
    >>> m = nbops.nn.PReLU()
    >>> m(np.array([-2.0, 2.0], np.float32))
    array([-0.5,  2. ], dtype=float32)
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        dev = _check_device(device)
        dt = _factory_dtype(dtype)
        n = _size(num_parameters, "num_parameters")
        super().__init__()
        self.num_parameters = num_parameters
        self.init = init
        self.register_parameter("weight", np.empty(n, dt))
        self.reset_parameters()
        if dev == "cuda":
            self.to(device)

    def reset_parameters(self):
        _write(self.weight, self.init)

    def forward(self, input):
        weight = self.weight
        result = _A.prelu(input, weight)
        self._save_for_backward((input, weight))
        return result

    def backward(self, grad_output):
        input, weight = self._saved_for_backward()
        grad_input, grad_weight = _A.prelu_backward(grad_output, input, weight)
        accumulate_grad(weight, grad_weight, owned=True)
        return grad_input

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


def _get_softmax_dim(name, ndim, stacklevel):
    """PyTorch's implicit axis for ``dim=None`` (0 for 0-, 1- and 3-d input, else 1)."""
    warnings.warn(f"Implicit dimension choice for {name} has been deprecated. "
                  "Change the call to include dim=X as an argument.", UserWarning,
                  stacklevel=stacklevel)
    return 0 if ndim in (0, 1, 3) else 1


class _SoftmaxBase(Module):
    """The base of the row-op classes (``Softmax``, ``LogSoftmax``, ``Softmin``),
    generated from the op table: ``_fn`` is the op, ``_name`` its name."""

    _fn = None
    _bfn = None
    _name = ""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        dim = self.dim
        if dim is None:
            dim = _get_softmax_dim(self._name, np.ndim(input), stacklevel=4)
        result = type(self)._fn(input, axis=dim)
        self._save_for_backward((result, dim))  # the output, as autograd
        return result

    def backward(self, grad_output):
        output, dim = self._saved_for_backward()
        return type(self)._bfn(grad_output, output, axis=dim)

    def extra_repr(self):
        return f"dim={self.dim}"


Hardtanh.backward.__doc__ = _table.module_backward_doc(
    ":func:`nbops.hardtanh_backward` on the input the forward kept (its output in place).")
ReLU6.backward.__doc__ = _table.module_backward_doc(
    ":func:`nbops.relu6_backward` on the input the forward kept (its output in place).")
PReLU.backward.__doc__ = _table.module_backward_doc(
    ":func:`nbops.prelu_backward` on the input the forward kept; ``weight``'s gradient is "
    "added into the gradient store.")
_SoftmaxBase.backward.__doc__ = _table.module_backward_doc(
    "``nbops.<op>_backward`` on the output the forward kept, along its ``dim``.")

# The plain wrappers, generated from the op table (ReLU, ELU, Softplus, ...).
_GENERATED = _table.module_classes("activation", Module, __name__)
globals().update(_GENERATED)
# The row-op classes (Softmax, LogSoftmax, Softmin), generated over _SoftmaxBase.
_ROW_GENERATED = _table.row_module_classes(_SoftmaxBase, __name__)
globals().update(_ROW_GENERATED)
__all__ = [*_GENERATED, "Hardtanh", "ReLU6", "PReLU", *_ROW_GENERATED]


class GLU(Module):
    """Gated linear unit along ``dim`` (see :func:`nbops.glu`).

    Parameters
    ----------
    dim : int, default -1
        The axis split in half (its length must be even).

    Examples
    --------
    >>> nbops.nn.GLU()(np.array([[1.0, 2.0, 0.0, 100.0]], np.float32))
    array([[0.5, 2. ]], dtype=float32)
    """

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        result = _glu.glu(input, dim=self.dim)
        self._save_for_backward(input)
        return result

    def backward(self, grad_output):
        return _glu.glu_backward(grad_output, self._saved_for_backward(), dim=self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"


GLU.backward.__doc__ = _table.module_backward_doc(
    ":func:`nbops.glu_backward` on the input the forward kept, along its ``dim``.")
__all__ += ["GLU"]


class RReLU(Module):
    """Randomized leaky ReLU (see :func:`nbops.rrelu`): in training each element
    with ``x <= 0`` gets a slope drawn from ``U(lower, upper)``; in eval mode the
    slope is ``(lower + upper) / 2``.

    Parameters
    ----------
    lower, upper : float, default 1/8, 1/3
        The bounds of the slopes' uniform distribution.
    inplace : bool, default False
        Write the result into the input.
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness in training: the module keeps one Generator across
        calls, so a seed makes the sequence of slopes reproducible (nbops'
        addition).

    Examples
    --------
    >>> m = nbops.nn.RReLU(0.25, 0.75, rng=0)
    >>> m.eval()(np.array([-2.0, 3.0], np.float32))
    array([-1.,  3.], dtype=float32)
    """

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False, *, rng=None):
        super().__init__()
        self.lower = lower
        self.upper = upper
        self.inplace = inplace
        # None: fresh entropy on every call; otherwise one Generator, so that
        # successive calls draw different slopes and the sequence is reproducible.
        self.rng = None if rng is None else _rng(rng)

    def forward(self, input):
        training = self.training
        seed = 0
        if training and np.size(input) != 0:
            # An int seed, kept for the backward (which regenerates the slopes from it).
            seed = _dropout_seed(self.rng)
        saved = _copy_array(input) if self.inplace and is_grad_enabled() else input
        result = _rrelu.rrelu(input, self.lower, self.upper, training, self.inplace, rng=seed)
        self._save_for_backward((saved, training, seed))
        return result

    def backward(self, grad_output):
        input, training, seed = self._saved_for_backward()
        return _rrelu.rrelu_backward(grad_output, input, self.lower, self.upper, training,
                                     rng=seed)

    def extra_repr(self):
        return f"lower={self.lower}, upper={self.upper}{_inplace(self.inplace)}"


RReLU.backward.__doc__ = _table.module_backward_doc(
    ":func:`nbops.rrelu_backward` on the input the forward kept, with the slopes "
    "regenerated from the forward's seed.")
__all__ += ["RReLU"]
