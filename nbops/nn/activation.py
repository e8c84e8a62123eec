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

from .._grad import accumulate_grad
from .._ops import activation as _A
from .._ops import registry as _registry  # noqa: F401  (registers the row ops, in order)
from .._ops import table as _table
from ._module import Module, _check_device, _factory_dtype, _size, _write


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
