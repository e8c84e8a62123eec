"""Linear over :func:`nbops.linear` (``y = x @ weight.T + bias``)."""

import math

import numpy as np

from .._grad import accumulate_grad
from .._ops.linear import _linear_backward as _linear_backward_impl
from .._ops.linear import linear as _linear
from ._module import (
    Module,
    _check_device,
    _factory_dtype,
    _kaiming_uniform_sqrt5,
    _rng,
    _size,
    _uniform,
    _write,
)

__all__ = ["Linear", "Identity"]


class Identity(Module):
    """Returns its input; any constructor arguments are ignored (as PyTorch).

    Parameters
    ----------
    *args, **kwargs
        Ignored.

    Examples
    --------
    >>> nbops.nn.Identity(54, unused="argument")(np.ones(2))
    array([1., 1.])
    """

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input

    def backward(self, grad_output):
        """Returns ``grad_output`` (nothing is kept by the forward).

        Parameters
        ----------
        grad_output : array
            The gradient of the output.

        Returns
        -------
        array
            ``grad_output`` itself.
        """
        return grad_output


class Linear(Module):
    """``y = x @ weight.T + bias`` over the last axis (see :func:`nbops.linear`).

    ``weight`` ``(out_features, in_features)`` and ``bias`` ``(out_features,)``
    are drawn from U(-1/sqrt(in_features), 1/sqrt(in_features)), PyTorch's
    distributions (``kaiming_uniform_(a=sqrt(5))`` and its bias rule), from
    ``rng`` (None, an int seed or a ``numpy.random.Generator``). ``dtype``
    defaults to float32; ``device`` (None, 'cpu' or 'cuda') is where the
    parameters end up (drawn on the host, then moved with :meth:`Module.to`).

    Parameters
    ----------
    in_features, out_features : int
        Size of the last axis of the input and of the output.
    bias : bool, default True
        Whether to learn an additive bias (``bias`` is None otherwise).
    device : {None, 'cpu', 'cuda'}, optional
        Where the parameters are stored.
    dtype : dtype, optional
        Float dtype of the parameters (float32 by default).
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness of the initialization (nbops' addition).

    Examples
    --------
    >>> m = nbops.nn.Linear(20, 30, rng=0)
    >>> m(np.random.default_rng(0).standard_normal((128, 20), np.float32)).shape
    (128, 30)
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None, *,
                 rng=None):
        dev = _check_device(device)
        dt = _factory_dtype(dtype)
        n_in = _size(in_features, "in_features")
        n_out = _size(out_features, "out_features")
        gen = _rng(rng)
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.register_parameter("weight", np.empty((n_out, n_in), dt))
        self.register_parameter("bias", np.empty(n_out, dt) if bias else None)
        self.reset_parameters(rng=gen)
        if dev == "cuda":
            self.to(device)

    def reset_parameters(self, rng=None):
        """Redraw ``weight`` and ``bias`` from PyTorch's distributions.

        Parameters
        ----------
        rng : None, int or numpy.random.Generator, optional
            The randomness (nbops' addition).
        """
        gen = _rng(rng)
        w = self.weight
        shape = tuple(w.shape)
        _write(w, _kaiming_uniform_sqrt5(gen, shape, w.dtype))
        if self.bias is not None:
            fan_in = shape[1]
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            _write(self.bias, _uniform(gen, bound, tuple(self.bias.shape), self.bias.dtype))

    def forward(self, input):
        weight, bias = self.weight, self.bias
        result = _linear(input, weight, bias)
        self._save_for_backward((input, weight, bias))  # references, as autograd
        return result

    _backward_skips_input_grad = True  # see Sequential.backward

    def backward(self, grad_output, *, needs_input_grad=True):
        r"""The gradient of the input; adds ``weight``'s and ``bias``'s
        (:func:`nbops.linear_backward`).

        Parameters
        ----------
        grad_output : array, shape (\*, out_features)
            The gradient of the latest forward's output.
        needs_input_grad : bool, default True
            False skips the input's gradient (a product as large as the
            weight's) and returns None: for a first layer fed with data.

        Returns
        -------
        array, shape (\*, in_features), or None
            The gradient of that forward's input.
        """
        input, weight, bias = self._saved_for_backward()
        grad_input, grad_weight, grad_bias = _linear_backward_impl(
            grad_output, input, weight, bias, needs_input_grad)
        accumulate_grad(weight, grad_weight, owned=True)
        if bias is not None:
            accumulate_grad(bias, grad_bias, owned=True)
        return grad_input

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


from .._ops.bilinear import bilinear as _bilinear  # noqa: E402
from .._ops.bilinear import bilinear_backward as _bilinear_backward  # noqa: E402

__all__ += ["Bilinear"]


class Bilinear(Module):
    """``y[..., o] = x1 @ weight[o] @ x2 + bias[o]`` (see :func:`nbops.bilinear`).

    ``weight`` ``(out_features, in1_features, in2_features)`` and ``bias``
    ``(out_features,)`` are drawn from U(-1/sqrt(in1_features),
    1/sqrt(in1_features)), PyTorch's initialization, from ``rng`` (None, an int
    seed or a ``numpy.random.Generator``). ``dtype`` defaults to float32;
    ``device`` (None, 'cpu' or 'cuda') is where the parameters end up (drawn on
    the host, then moved with :meth:`Module.to`).

    Parameters
    ----------
    in1_features, in2_features : int
        Size of the last axis of the first and of the second input (in1_features
        > 0, as PyTorch).
    out_features : int
        Size of the last axis of the output.
    bias : bool, default True
        Whether to learn an additive bias (``bias`` is None otherwise).
    device : {None, 'cpu', 'cuda'}, optional
        Where the parameters are stored.
    dtype : dtype, optional
        Float dtype of the parameters (float32 by default).
    rng : None, int or numpy.random.Generator, keyword-only
        The randomness of the initialization (nbops' addition).

    Examples
    --------
    >>> m = nbops.nn.Bilinear(20, 30, 40, rng=0)
    >>> m
    Bilinear(in1_features=20, in2_features=30, out_features=40, bias=True)
    >>> x1 = np.ones((128, 20), np.float32)
    >>> m(x1, np.ones((128, 30), np.float32)).shape
    (128, 40)
    """

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None,
                 dtype=None, *, rng=None):
        dev = _check_device(device)
        dt = _factory_dtype(dtype)
        n1 = _size(in1_features, "in1_features")
        n2 = _size(in2_features, "in2_features")
        n_out = _size(out_features, "out_features")
        gen = _rng(rng)
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        self.register_parameter("weight", np.empty((n_out, n1, n2), dt))
        self.register_parameter("bias", np.empty(n_out, dt) if bias else None)
        self.reset_parameters(rng=gen)
        if dev == "cuda":
            self.to(device)

    def reset_parameters(self, rng=None):
        """Redraw ``weight`` and ``bias`` from U(-1/sqrt(in1_features), 1/sqrt(in1_features)).

        Parameters
        ----------
        rng : None, int or numpy.random.Generator, optional
            The randomness (nbops' addition).
        """
        if self.in1_features <= 0:
            raise ValueError(f"in1_features must be > 0, but got (in1_features="
                             f"{self.in1_features})")
        gen = _rng(rng)
        bound = 1 / math.sqrt(self.weight.shape[1])
        _write(self.weight, _uniform(gen, bound, tuple(self.weight.shape), self.weight.dtype))
        if self.bias is not None:
            _write(self.bias, _uniform(gen, bound, tuple(self.bias.shape), self.bias.dtype))

    def forward(self, input1, input2):
        weight, bias = self.weight, self.bias
        result = _bilinear(input1, input2, weight, bias)
        self._save_for_backward((input1, input2, weight, bias))  # references, as autograd
        return result

    def backward(self, grad_output):
        r"""The gradients of both inputs; adds ``weight``'s and ``bias``'s
        (:func:`nbops.bilinear_backward`).

        Parameters
        ----------
        grad_output : array, shape (\*, out_features)
            The gradient of the latest forward's output.

        Returns
        -------
        tuple of arrays
            ``(grad_input1, grad_input2)``: the gradients of that forward's inputs.
        """
        input1, input2, weight, bias = self._saved_for_backward()
        grad1, grad2, grad_weight, grad_bias = _bilinear_backward(grad_output, input1, input2,
                                                                   weight, bias)
        accumulate_grad(weight, grad_weight, owned=True)
        if bias is not None:
            accumulate_grad(bias, grad_bias, owned=True)
        return grad1, grad2

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
