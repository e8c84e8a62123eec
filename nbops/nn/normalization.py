"""BatchNorm1d/2d/3d over :func:`nbops.batch_norm` (formulas documented there)."""

import numpy as np

from .._grad import accumulate_grad, is_grad_enabled
from .._ops.normalization import batch_norm as _batch_norm
from .._ops.normalization import batch_norm_backward as _batch_norm_backward
from .._validate import is_device_array as _is_dev
from ._module import Module, _check_device, _factory_dtype, _read, _size, _write

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


def _register_affine(module, shape, dtype, affine, bias):
    """PyTorch's affine parameters: ``weight`` and ``bias`` of ``shape`` (set by
    :func:`_reset_affine`), ``bias`` None without ``bias``, both None without ``affine``."""
    module.register_parameter("weight", np.empty(shape, dtype) if affine else None)
    module.register_parameter("bias", np.empty(shape, dtype) if affine and bias else None)


def _reset_affine(module):
    """``weight`` ones and ``bias`` zeros, where the module has them."""
    if module.weight is not None:
        _write(module.weight, 1)
    if getattr(module, "bias", None) is not None:
        _write(module.bias, 0)


def _accumulate_affine(weight, grad_weight, bias=None, grad_bias=None):
    """Add the affine parameters' gradients into their store (those that exist)."""
    if weight is not None:
        accumulate_grad(weight, grad_weight, owned=True)
    if bias is not None:
        accumulate_grad(bias, grad_bias, owned=True)


class _BatchNorm(Module):
    """PyTorch's ``_NormBase`` + ``_BatchNorm``: state, reset, forward, repr."""

    _version = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        dev = _check_device(device)
        dt = _factory_dtype(dtype)
        n = _size(num_features, "num_features")
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        _register_affine(self, n, dt, affine, bias)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(n, dt))
            self.register_buffer("running_var", np.ones(n, dt))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()
        if dev == "cuda":
            self.to(device)

    def reset_running_stats(self):
        if self.track_running_stats:
            _write(self.running_mean, 0)
            _write(self.running_var, 1)
            _write(self.num_batches_tracked, 0)

    def reset_parameters(self):
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input):
        raise NotImplementedError

    def _optional_keys(self, version):
        # PyTorch fills a missing num_batches_tracked for checkpoints older than version 2
        # (and for plain dicts, which carry no version).
        if (version is None or version < 2) and self.track_running_stats:
            return ("num_batches_tracked",)
        return ()

    def forward(self, input):
        # a device array as it is (np.asarray would copy it to the host)
        x = input if isinstance(input, np.ndarray) or _is_dev(input) else np.asarray(input)
        self._check_input_dim(x)
        factor = 0.0 if self.momentum is None else self.momentum
        track = self.training and self.track_running_stats and \
            self.num_batches_tracked is not None
        if track and self.momentum is None:  # cumulative moving average
            factor = 1.0 / float(_read(self.num_batches_tracked) + 1)
        if self.training:
            bn_training = True
        else:
            bn_training = self.running_mean is None and self.running_var is None
        use_stats = not self.training or self.track_running_stats
        weight, bias = self.weight, self.bias
        grad = is_grad_enabled()
        out = _batch_norm(x, self.running_mean if use_stats else None,
                          self.running_var if use_stats else None, weight, bias,
                          bn_training, factor, self.eps, return_stats=grad)
        if grad:  # the input and the statistics it was normalized with, as autograd
            out, mean, invstd = out
            self._save_for_backward((x, mean, invstd, weight, bias, bn_training))
        if track:  # after the call, so a rejected input changes nothing
            nbt = self.num_batches_tracked
            if isinstance(nbt, np.ndarray):
                nbt += 1
            else:  # on the device: a one-thread kernel, no copy or sync
                from .. import cuda as _cuda

                _cuda.ops().increment(nbt)
        return out

    def backward(self, grad_output):
        """The gradient of the input; adds ``weight``'s and ``bias``'s
        (:func:`nbops.batch_norm_backward`).

        A forward in training mode (or without running statistics) normalized
        with the batch statistics, which depend on the input: their gradient is
        included. In evaluation the running statistics were constants; they
        never get a gradient.

        Parameters
        ----------
        grad_output : array
            The gradient of the latest forward's output (its shape).

        Returns
        -------
        array
            The gradient of that forward's input.
        """
        x, mean, invstd, weight, bias, training = self._saved_for_backward()
        grad_input, grad_weight, grad_bias = _batch_norm_backward(
            grad_output, x, mean, invstd, weight, training, has_bias=bias is not None)
        _accumulate_affine(weight, grad_weight, bias, grad_bias)
        return grad_input

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization of a 2-D ``(N, C)`` or 3-D ``(N, C, L)`` input
    (see :func:`nbops.batch_norm`).

    ``weight`` ones, ``bias`` zeros, ``running_mean`` zeros, ``running_var``
    ones, ``num_batches_tracked`` an int64 0-d array, as PyTorch. ``momentum=None``
    uses a cumulative average; in eval mode the running statistics are used.
    After ``to("cuda")`` all of them are device arrays, and training on device
    inputs updates the running statistics in place on the device.

    Parameters
    ----------
    num_features : int
        The number of channels ``C``.
    eps : float, default 1e-5
        Added to the variance before its square root.
    momentum : float or None, default 0.1
        Weight of the new batch in the running statistics' update; None for a
        cumulative moving average.
    affine : bool, default True
        Whether to learn ``weight`` and ``bias`` (None otherwise).
    track_running_stats : bool, default True
        Whether to keep ``running_mean``, ``running_var`` and
        ``num_batches_tracked`` (None otherwise: batch statistics in eval mode too).
    device : {None, 'cpu', 'cuda'}, optional
        Where the parameters and buffers are stored.
    dtype : dtype, optional
        Float dtype of the parameters and buffers (float32 by default).
    bias : bool, default True, keyword-only
        With ``affine``, whether to learn ``bias`` too.

    Examples
    --------
    >>> m = nbops.nn.BatchNorm1d(2)
    >>> m(np.array([[1.0, 10.0], [3.0, 30.0]], np.float32))
    array([[-0.999995  , -0.99999994],
           [ 0.999995  ,  0.99999994]], dtype=float32)
    >>> m.running_mean, int(m.num_batches_tracked)
    (array([0.2, 2. ], dtype=float32), 1)
    """

    def _check_input_dim(self, input):
        if input.ndim != 2 and input.ndim != 3:
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch normalization of a 4-D ``(N, C, H, W)`` input (see :class:`BatchNorm1d`).

    Parameters
    ----------
    num_features, eps, momentum, affine, track_running_stats, device, dtype, bias
        As :class:`BatchNorm1d`.

    Examples
    --------
    >>> m = nbops.nn.BatchNorm2d(3, affine=False).eval()
    >>> m(np.ones((1, 3, 2, 2), np.float32)).shape
    (1, 3, 2, 2)
    """

    def _check_input_dim(self, input):
        if input.ndim != 4:
            raise ValueError(f"expected 4D input (got {input.ndim}D input)")


class BatchNorm3d(_BatchNorm):
    """Batch normalization of a 5-D ``(N, C, D, H, W)`` input (see :class:`BatchNorm1d`).

    Parameters
    ----------
    num_features, eps, momentum, affine, track_running_stats, device, dtype, bias
        As :class:`BatchNorm1d`.

    Examples
    --------
    >>> m = nbops.nn.BatchNorm3d(3, momentum=None).eval()
    >>> m(np.ones((1, 3, 1, 2, 2), np.float32)).shape
    (1, 3, 1, 2, 2)
    """

    def _check_input_dim(self, input):
        if input.ndim != 5:
            raise ValueError(f"expected 5D input (got {input.ndim}D input)")


# ------------------------------------------------------------ LayerNorm, RMSNorm
from .._ops.layer_norm import layer_norm as _layer_norm  # noqa: E402
from .._ops.layer_norm import layer_norm_backward as _layer_norm_backward  # noqa: E402
from .._ops.layer_norm import rms_norm as _rms_norm  # noqa: E402
from .._ops.layer_norm import rms_norm_backward as _rms_norm_backward  # noqa: E402

__all__ += ["LayerNorm", "RMSNorm"]


def _shape_tuple(normalized_shape):
    """PyTorch's ``normalized_shape`` attribute: an int becomes a 1-tuple."""
    if isinstance(normalized_shape, (int, np.integer)):
        normalized_shape = (normalized_shape,)
    return tuple(_size(d, "normalized_shape") for d in normalized_shape)


class LayerNorm(Module):
    """Layer normalization over the trailing ``normalized_shape`` dimensions
    (see :func:`nbops.layer_norm`).

    ``weight`` ones and ``bias`` zeros of shape ``normalized_shape``, as PyTorch
    (state_dict keys ``weight``, ``bias``; none without ``elementwise_affine``).

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The trailing dimensions to normalize over (stored as a tuple).
    eps : float, default 1e-5
        Added to the variance before its square root.
    elementwise_affine : bool, default True
        Whether to learn ``weight`` (and ``bias``); None otherwise.
    bias : bool, default True
        With ``elementwise_affine``, whether to learn ``bias`` too.
    device : {None, 'cpu', 'cuda'}, optional
        Where the parameters are stored.
    dtype : dtype, optional
        Float dtype of the parameters (float32 by default).

    Examples
    --------
    >>> m = nbops.nn.LayerNorm(3)
    >>> m
    LayerNorm((3,), eps=1e-05, elementwise_affine=True, bias=True)
    >>> m(np.array([[1.0, 2.0, 3.0]], np.float32))
    array([[-1.2247357,  0.       ,  1.2247357]], dtype=float32)
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        dev = _check_device(device)
        dt = _factory_dtype(dtype)
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        _register_affine(self, self.normalized_shape, dt, elementwise_affine, bias)
        self.reset_parameters()
        if dev == "cuda":
            self.to(device)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        x = input if isinstance(input, np.ndarray) or _is_dev(input) else np.asarray(input)
        weight, bias = self.weight, self.bias
        if not is_grad_enabled():
            return _layer_norm(x, self.normalized_shape, weight, bias, self.eps)
        out, mean, rstd = _layer_norm(x, self.normalized_shape, weight, bias, self.eps,
                                      return_stats=True)
        self._save_for_backward((x, mean, rstd, weight, bias))  # as autograd saves them
        return out

    def backward(self, grad_output):
        """The gradient of the input; adds ``weight``'s and ``bias``'s
        (:func:`nbops.layer_norm_backward`).

        Parameters
        ----------
        grad_output : array
            The gradient of the latest forward's output (its shape).

        Returns
        -------
        array
            The gradient of that forward's input.
        """
        x, mean, rstd, weight, bias = self._saved_for_backward()
        grad_input, grad_weight, grad_bias = _layer_norm_backward(
            grad_output, x, self.normalized_shape, mean, rstd, weight,
            has_bias=bias is not None)
        _accumulate_affine(weight, grad_weight, bias, grad_bias)
        return grad_input

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class RMSNorm(Module):
    """Root mean square normalization over the trailing ``normalized_shape``
    dimensions (see :func:`nbops.rms_norm`).

    ``weight`` ones of shape ``normalized_shape``, as PyTorch (state_dict key
    ``weight``; none without ``elementwise_affine``).

    Parameters
    ----------
    normalized_shape : int or tuple of int
        The trailing dimensions to normalize over (stored as a tuple).
    eps : float, optional
        Added to the mean square; None: the machine epsilon of the input's dtype.
    elementwise_affine : bool, default True
        Whether to learn ``weight``; None otherwise.
    device : {None, 'cpu', 'cuda'}, optional
        Where the parameters are stored.
    dtype : dtype, optional
        Float dtype of the parameters (float32 by default).

    Examples
    --------
    >>> m = nbops.nn.RMSNorm(2)
    >>> m
    RMSNorm((2,), eps=None, elementwise_affine=True)
    >>> m(np.array([[3.0, 4.0]], np.float32))
    array([[0.84852815, 1.1313709 ]], dtype=float32)
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        dev = _check_device(device)
        dt = _factory_dtype(dtype)
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.register_parameter(
            "weight", np.empty(self.normalized_shape, dt) if elementwise_affine else None)
        self.reset_parameters()
        if dev == "cuda":
            self.to(device)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        x = input if isinstance(input, np.ndarray) or _is_dev(input) else np.asarray(input)
        weight = self.weight
        if not is_grad_enabled():
            return _rms_norm(x, self.normalized_shape, weight, self.eps)
        out, rstd = _rms_norm(x, self.normalized_shape, weight, self.eps, return_stats=True)
        self._save_for_backward((x, rstd, weight))  # as autograd saves them
        return out

    def backward(self, grad_output):
        """The gradient of the input; adds ``weight``'s (:func:`nbops.rms_norm_backward`).

        Parameters
        ----------
        grad_output : array
            The gradient of the latest forward's output (its shape).

        Returns
        -------
        array
            The gradient of that forward's input.
        """
        x, rstd, weight = self._saved_for_backward()
        grad_input, grad_weight = _rms_norm_backward(grad_output, x, self.normalized_shape,
                                                     rstd, weight)
        _accumulate_affine(weight, grad_weight)
        return grad_input

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


# ------------------------------------------------------ GroupNorm, InstanceNorm
from .._ops.group_norm import group_norm as _group_norm  # noqa: E402
from .._ops.group_norm import group_norm_backward as _group_norm_backward  # noqa: E402
from .._ops.group_norm import instance_norm as _instance_norm  # noqa: E402
from .._ops.group_norm import instance_norm_backward as _instance_norm_backward  # noqa: E402

__all__ += ["GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]


class GroupNorm(Module):
    """Group normalization of an ``(N, C, *)`` input (see :func:`nbops.group_norm`).

    ``weight`` ones and ``bias`` zeros of shape ``(num_channels,)``, as PyTorch
    (state_dict keys ``weight``, ``bias``; none without ``affine``).

    Parameters
    ----------
    num_groups : int
        The number of groups; must divide ``num_channels``.
    num_channels : int
        The number of channels ``C``.
    eps : float, default 1e-5
        Added to the variance before its square root.
    affine : bool, default True
        Whether to learn ``weight`` and ``bias`` (None otherwise).
    device : {None, 'cpu', 'cuda'}, optional
        Where the parameters are stored.
    dtype : dtype, optional
        Float dtype of the parameters (float32 by default).
    bias : bool, default True, keyword-only
        With ``affine``, whether to learn ``bias`` too.

    Examples
    --------
    >>> m = nbops.nn.GroupNorm(2, 4)
    >>> m
    GroupNorm(2, 4, eps=1e-05, affine=True, bias=True)
    >>> m(np.arange(8, dtype=np.float32).reshape(1, 4, 2))[0, :, 0]
    array([-1.3416355,  0.4472118, -1.3416355,  0.4472118], dtype=float32)
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None, *, bias=True):
        dev = _check_device(device)
        dt = _factory_dtype(dtype)
        groups = _size(num_groups, "num_groups")
        channels = _size(num_channels, "num_channels")
        if groups == 0 or channels % groups:
            raise ValueError("num_channels must be divisible by num_groups")
        super().__init__()
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.affine = affine
        _register_affine(self, channels, dt, affine, bias)
        self.reset_parameters()
        if dev == "cuda":
            self.to(device)

    def reset_parameters(self):
        _reset_affine(self)

    def forward(self, input):
        x = input if isinstance(input, np.ndarray) or _is_dev(input) else np.asarray(input)
        weight, bias = self.weight, self.bias
        if not is_grad_enabled():
            return _group_norm(x, self.num_groups, weight, bias, self.eps)
        out, mean, rstd = _group_norm(x, self.num_groups, weight, bias, self.eps,
                                      return_stats=True)
        self._save_for_backward((x, mean, rstd, weight, bias))  # as autograd saves them
        return out

    def backward(self, grad_output):
        """The gradient of the input; adds ``weight``'s and ``bias``'s
        (:func:`nbops.group_norm_backward`).

        Parameters
        ----------
        grad_output : array
            The gradient of the latest forward's output (its shape).

        Returns
        -------
        array
            The gradient of that forward's input.
        """
        x, mean, rstd, weight, bias = self._saved_for_backward()
        grad_input, grad_weight, grad_bias = _group_norm_backward(
            grad_output, x, self.num_groups, mean, rstd, weight, has_bias=bias is not None)
        _accumulate_affine(weight, grad_weight, bias, grad_bias)
        return grad_input

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}, bias={self.bias is not None}")


class _InstanceNorm(_BatchNorm):
    """PyTorch's ``_InstanceNorm``: ``_NormBase``'s state with instance statistics."""

    #: the number of dimensions of an input without a batch dimension
    _no_batch_dim = 2

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def _load_plan(self, state_dict, prefix, metadata, plan, missing, unexpected, errors):
        # PyTorch's _InstanceNorm: a checkpoint without a version (older than 0.4)
        # may hold running statistics that a module without them rejects
        version = metadata.get(prefix[:-1], {}).get("version") if metadata else None
        keys = [prefix + name for name in ("running_mean", "running_var")
                if prefix + name in state_dict]
        if version is None and not self.track_running_stats and keys:
            klass = type(self).__name__
            names = " and ".join(f'"{k}"' for k in keys)
            errors.append(
                f"Unexpected running stats buffer(s) {names} for {klass} with "
                "track_running_stats=False. If state_dict is a checkpoint saved before "
                f"0.4.0, this may be expected because {klass} does not track running stats "
                "by default since 0.4.0. Please remove these keys from state_dict. If the "
                "running stats are actually needed, instead set track_running_stats=True "
                f"in {klass} to enable them. See the documentation of {klass} for details.")
            state_dict = {k: v for k, v in state_dict.items() if k not in keys}
        super()._load_plan(state_dict, prefix, metadata, plan, missing, unexpected, errors)

    def forward(self, input):
        x = input if isinstance(input, np.ndarray) or _is_dev(input) else np.asarray(input)
        self._check_input_dim(x)
        feature_dim = x.ndim - self._no_batch_dim
        if x.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(f"expected input's size at dim={feature_dim} to match "
                                 f"num_features ({self.num_features}), but got: "
                                 f"{x.shape[feature_dim]}.")
            import warnings

            warnings.warn(f"input's size at dim={feature_dim} does not match num_features. "
                          "You can silence this warning by not passing in num_features, "
                          "which is not used because affine=False", stacklevel=2)
        batched = x.ndim != self._no_batch_dim
        if not batched:  # as PyTorch: the input as a batch of one
            x = x.reshape((1,) + x.shape)
        use_input_stats = self.training or not self.track_running_stats
        momentum = self.momentum if self.momentum is not None else 0.0
        weight, bias = self.weight, self.bias
        grad = is_grad_enabled()
        out = _instance_norm(x, self.running_mean, self.running_var, weight, bias,
                             use_input_stats, momentum, self.eps, return_stats=grad)
        if grad:
            out, mean, rstd = out
            self._save_for_backward((x, mean, rstd, weight, bias, use_input_stats, batched))
        return out if batched else out.reshape(out.shape[1:])

    def backward(self, grad_output):
        """The gradient of the input; adds ``weight``'s and ``bias``'s
        (:func:`nbops.instance_norm_backward`).

        With the input's statistics (training, or no running statistics) their
        gradient is included; the running statistics are constants.

        Parameters
        ----------
        grad_output : array
            The gradient of the latest forward's output (its shape).

        Returns
        -------
        array
            The gradient of that forward's input.
        """
        x, mean, rstd, weight, bias, use_input_stats, batched = self._saved_for_backward()
        if not batched:
            grad_output = grad_output.reshape((1,) + tuple(grad_output.shape))
        grad_input, grad_weight, grad_bias = _instance_norm_backward(
            grad_output, x, mean, rstd, weight, use_input_stats, has_bias=bias is not None)
        _accumulate_affine(weight, grad_weight, bias, grad_bias)
        return grad_input if batched else grad_input.reshape(grad_input.shape[1:])


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization of a 3-D ``(N, C, L)`` or 2-D ``(C, L)`` input
    (see :func:`nbops.instance_norm`).

    As PyTorch: no parameters and no running statistics by default; with
    ``affine``, ``weight`` ones and ``bias`` zeros; with
    ``track_running_stats``, ``running_mean`` zeros, ``running_var`` ones and
    ``num_batches_tracked`` (an int64 0-d array, never incremented), updated in
    training and used in evaluation.

    Parameters
    ----------
    num_features : int
        The number of channels ``C``.
    eps : float, default 1e-5
        Added to the variance before its square root.
    momentum : float or None, default 0.1
        Weight of the new batch in the running statistics' update (None: 0).
    affine : bool, default False
        Whether to learn ``weight`` and ``bias``.
    track_running_stats : bool, default False
        Whether to keep running statistics.
    device : {None, 'cpu', 'cuda'}, optional
        Where the parameters and buffers are stored.
    dtype : dtype, optional
        Float dtype of the parameters and buffers (float32 by default).
    bias : bool, default True, keyword-only
        With ``affine``, whether to learn ``bias`` too.

    Examples
    --------
    >>> m = nbops.nn.InstanceNorm1d(2)
    >>> m
    InstanceNorm1d(2, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)
    >>> m(np.array([[[1.0, 3.0], [2.0, 6.0]]], np.float32))
    array([[[-0.999995  ,  0.999995  ],
            [-0.99999875,  0.99999875]]], dtype=float32)
    """

    _no_batch_dim = 2

    def _check_input_dim(self, input):
        if input.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization of a 4-D ``(N, C, H, W)`` or 3-D ``(C, H, W)`` input
    (see :class:`InstanceNorm1d`).

    Parameters
    ----------
    num_features, eps, momentum, affine, track_running_stats, device, dtype, bias
        As :class:`InstanceNorm1d`.

    Examples
    --------
    >>> m = nbops.nn.InstanceNorm2d(3, affine=True)
    >>> m(np.arange(24, dtype=np.float32).reshape(1, 3, 2, 4)).shape
    (1, 3, 2, 4)
    """

    _no_batch_dim = 3

    def _check_input_dim(self, input):
        if input.ndim not in (3, 4):
            raise ValueError(f"expected 3D or 4D input (got {input.ndim}D input)")


class InstanceNorm3d(_InstanceNorm):
    """Instance normalization of a 5-D ``(N, C, D, H, W)`` or 4-D ``(C, D, H, W)``
    input (see :class:`InstanceNorm1d`).

    Parameters
    ----------
    num_features, eps, momentum, affine, track_running_stats, device, dtype, bias
        As :class:`InstanceNorm1d`.

    Examples
    --------
    >>> m = nbops.nn.InstanceNorm3d(3, track_running_stats=True)
    >>> m(np.arange(48, dtype=np.float32).reshape(1, 3, 2, 2, 4)).shape
    (1, 3, 2, 2, 4)
    """

    _no_batch_dim = 4

    def _check_input_dim(self, input):
        if input.ndim not in (4, 5):
            raise ValueError(f"expected 4D or 5D input (got {input.ndim}D input)")


# ------------------------------------------------------------ local response norm
from .._ops.local_response_norm import local_response_norm as _local_response_norm  # noqa: E402
from .._ops.local_response_norm import (  # noqa: E402
    local_response_norm_backward as _local_response_norm_backward,
)


class LocalResponseNorm(Module):
    """Local response normalization across channels (see
    :func:`nbops.local_response_norm`); no parameters.

    Parameters
    ----------
    size : int
        The number of channels of the window.
    alpha : float, default 1e-4
        Multiplies the window's mean square.
    beta : float, default 0.75
        The exponent.
    k : float, default 1.0
        Added to the scaled mean square.

    Examples
    --------
    >>> m = nbops.nn.LocalResponseNorm(2)
    >>> m
    LocalResponseNorm(2, alpha=0.0001, beta=0.75, k=1.0)
    >>> m(np.ones((1, 3, 2), np.float32)).shape
    (1, 3, 2)
    """

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k

    def forward(self, input):
        x = input if isinstance(input, np.ndarray) or _is_dev(input) else np.asarray(input)
        result = _local_response_norm(x, self.size, self.alpha, self.beta, self.k)
        self._save_for_backward(x)  # as autograd saves it
        return result

    def backward(self, grad_output):
        """The gradient of the input (:func:`nbops.local_response_norm_backward`).

        Parameters
        ----------
        grad_output : array
            The gradient of the latest forward's output (its shape).

        Returns
        -------
        array
            The gradient of that forward's input.
        """
        x = self._saved_for_backward()
        return _local_response_norm_backward(grad_output, x, self.size, self.alpha, self.beta,
                                             self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
