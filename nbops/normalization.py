"""Batch normalization: ``nbops.batch_norm``.

Statistics are per channel (axis 1) over the batch and spatial axes, summed in
float64 around a shift (the channel's first value), so float32 inputs with a
large mean and a small spread keep their variance. One thread owns one
channel, so the statistics are bit-identical for any thread count.
"""


import numpy as np
from numba import prange, types
from numba.extending import overload

from . import _config
from ._launch import launch
from ._validate import as_array, as_param, result_dtype


@_config.core
def _channel_stats(x, c, n_outer, channels, inner):
    """(mean, biased variance) of channel c of an (n_outer, channels, inner) array."""
    count = n_outer * inner
    shift = np.float64(x[c * inner])
    s = 0.0
    ss = 0.0
    for n in range(n_outer):
        base = (n * channels + c) * inner
        for j in range(inner):
            d = np.float64(x[base + j]) - shift
            s += d
            ss += d * d
    mean_d = s / count
    return shift + mean_d, max(ss / count - mean_d * mean_d, 0.0)


@_config.parallel_kernel
def _stats_parallel(x, n_outer, channels, inner, mean, var):
    for c in prange(channels):
        mean[c], var[c] = _channel_stats(x, c, n_outer, channels, inner)


@_config.serial_kernel
def _stats_serial(x, n_outer, channels, inner, mean, var):
    for c in range(channels):
        mean[c], var[c] = _channel_stats(x, c, n_outer, channels, inner)


@_config.core
def _normalize_row(x, out, start, stop, mean, scale, bias):
    for j in range(start, stop):
        out[j] = (x[j] - mean) * scale + bias


@_config.parallel_kernel
def _normalize_parallel(x, mean, scale, bias, inner, out):
    """out = (x - mean[c]) * scale[c] + bias[c] over rows of ``inner`` elements."""
    channels = scale.size
    for row in prange(x.size // inner):
        c = row % channels
        _normalize_row(x, out, row * inner, (row + 1) * inner, mean[c], scale[c], bias[c])


@_config.serial_kernel
def _normalize_serial(x, mean, scale, bias, inner, out):
    channels = scale.size
    for row in range(x.size // inner):
        c = row % channels
        _normalize_row(x, out, row * inner, (row + 1) * inner, mean[c], scale[c], bias[c])


def _channel_vector(v, name, channels, dtype):
    if v is None:
        return None
    a = as_array(v, name)
    if a.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},) (the number of channels, "
                         f"input.shape[1]), got {a.shape}")
    result_dtype(a.dtype, name)
    return a.astype(np.float64)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, out=None):
    r"""Batch normalization over axis 1 (the channels) of an ``(N, C, *)`` input.

    .. math:: y = \frac{x - \mathrm{E}[x]}{\sqrt{\mathrm{Var}[x] + \epsilon}} \cdot w + b

    In training, ``E[x]`` and ``Var[x]`` (biased) are the batch statistics per
    channel, and ``running_mean``/``running_var`` (if given) are updated in place:
    ``r = (1 - momentum) * r + momentum * s`` with the *unbiased* batch variance
    for ``running_var``, as PyTorch. In evaluation the running statistics are used.

    Parameters
    ----------
    input : array_like
        ``(N, C)``, ``(N, C, L)``, ``(N, C, H, W)`` or ``(N, C, D, H, W)``.
    running_mean, running_var : ndarray of shape (C,) or None
        Required when ``training=False``; updated in place when training.
    weight, bias : array_like of shape (C,), optional
    training : bool
    momentum : float
    eps : float
    out : ndarray, optional

    Returns
    -------
    ndarray of the input's shape and dtype (float32 stays float32).

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[1.0, 10.0], [3.0, 30.0]])
    >>> rm, rv = np.zeros(2), np.ones(2)
    >>> nbops.batch_norm(x, rm, rv, training=True)
    array([[-0.999995  , -0.99999995],
           [ 0.999995  ,  0.99999995]])
    >>> rm, rv
    (array([0.2, 2. ]), array([ 1.1, 20.9]))
    """
    x = input if type(input) is np.ndarray else as_array(input)
    if x.ndim < 2:
        raise ValueError(f"input must have at least 2 dimensions (N, C, ...), got shape {x.shape}")
    compute, result = result_dtype(x.dtype)
    channels = x.shape[1]
    n_outer = x.shape[0]
    inner = int(np.prod(x.shape[2:], dtype=np.int64))
    count = n_outer * inner
    eps = as_param(eps, "eps")
    w = _channel_vector(weight, "weight", channels, compute)
    b = _channel_vector(bias, "bias", channels, compute)
    for name, r in (("running_mean", running_mean), ("running_var", running_var)):
        if r is not None:
            _check_running(r, name, channels)
    if out is not None:
        from ._validate import check_out
        check_out(out, x.shape, result)

    src = np.ascontiguousarray(x, dtype=compute)
    flat = src.reshape(-1)
    if training:
        if count <= 1:
            raise ValueError("Expected more than 1 value per channel when training, "
                             f"got input size {x.shape}")
        momentum = as_param(momentum, "momentum")
        mean = np.empty(channels, np.float64)
        var = np.empty(channels, np.float64)
        if count:
            launch(_stats_serial, _stats_parallel, ("bn_stats", compute.char), x.size,
                   flat, n_outer, channels, max(inner, 1), mean, var)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("running_mean and running_var must be given in evaluation mode "
                             "(training=False)")
        mean = np.asarray(running_mean, np.float64)
        var = np.asarray(running_var, np.float64)

    invstd = 1.0 / np.sqrt(var + eps)
    scale = invstd if w is None else invstd * w
    shift = np.zeros(channels) if b is None else b
    res = np.empty(x.shape, compute)
    if x.size:
        launch(_normalize_serial, _normalize_parallel, ("bn_normalize", compute.char),
               x.size, flat, mean.astype(compute), scale.astype(compute),
               shift.astype(compute), max(inner, 1), res.reshape(-1))

    if training:  # only after everything that can fail has run
        unbiased = var * (count / (count - 1))
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += (momentum * mean).astype(running_mean.dtype)
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += (momentum * unbiased).astype(running_var.dtype)

    if result != compute:
        res = res.astype(result)
    if out is not None:
        out[...] = res
        return out
    return res


def _check_running(r, name, channels):
    if not isinstance(r, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray (it is updated in place), "
                        f"got {type(r).__name__}")
    if r.shape != (channels,):
        raise ValueError(f"{name} must have shape ({channels},), got {r.shape}")
    if r.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array, got dtype {r.dtype}")


__all__ = ["batch_norm"]


def _is_none(t):
    return t is None or isinstance(t, (types.NoneType, types.Omitted))


@overload(batch_norm)
def _batch_norm_njit(input, running_mean, running_var, weight=None, bias=None,
                     training=False, momentum=0.1, eps=1e-5, out=None):
    if not isinstance(input, types.Array) or not _is_none(out):
        return None
    dtype = input.dtype if isinstance(input.dtype, types.Float) else types.float64
    no_rm, no_rv = _is_none(running_mean), _is_none(running_var)
    no_w, no_b = _is_none(weight), _is_none(bias)

    def impl(input, running_mean, running_var, weight=None, bias=None, training=False,
             momentum=0.1, eps=1e-5, out=None):
        if input.ndim < 2:
            raise ValueError("input must have at least 2 dimensions (N, C, ...)")
        x = np.ascontiguousarray(input).astype(dtype).reshape(-1)
        n_outer = input.shape[0]
        channels = input.shape[1]
        inner = 1
        for k in range(2, input.ndim):
            inner *= input.shape[k]
        count = n_outer * inner
        mean = np.empty(channels, np.float64)
        var = np.empty(channels, np.float64)
        if training:
            if count <= 1:
                raise ValueError("Expected more than 1 value per channel when training")
            for c in range(channels):
                mean[c], var[c] = _channel_stats(x, c, n_outer, channels, inner)
        else:
            if no_rm or no_rv:
                raise ValueError("running_mean and running_var must be given in evaluation mode")
            mean[:] = running_mean
            var[:] = running_var
        scale = 1.0 / np.sqrt(var + eps)
        shift = np.zeros(channels)
        if not no_w:
            scale = scale * weight
        if not no_b:
            shift[:] = bias
        res = np.empty(x.size, dtype)
        for row in range(x.size // max(inner, 1)):
            c = row % channels
            _normalize_row(x, res, row * inner, (row + 1) * inner, dtype(mean[c]),
                           dtype(scale[c]), dtype(shift[c]))
        if training:
            if not no_rm:
                running_mean[:] = (1 - momentum) * running_mean + momentum * mean
            if not no_rv:
                running_var[:] = ((1 - momentum) * running_var
                                  + momentum * var * (count / (count - 1)))
        return res.reshape(input.shape)

    return impl
