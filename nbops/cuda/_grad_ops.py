"""Device helpers of the gradient store (nbops/_grad.py) and the loss modules.

``accumulate_grad`` keeps a parameter's gradient on the parameter's side: for a
parameter on the GPU the first contribution is copied (:func:`copy`) and the
later ones are added in place (:func:`add_into`); a loss module scales its
kept gradient by a ``grad_output`` other than 1 (:func:`scale`). Every array is
a C-contiguous Numba device array (what the backwards return); the kernels run
over the flat elements.
"""

import numpy as np
from numba import cuda

from ._core import TPB
from ._kernels import grid


@cuda.jit
def _add_into_kernel(acc, a):
    for i in range(cuda.grid(1), acc.size, cuda.gridsize(1)):
        acc[i] += a[i]


@cuda.jit
def _scale_kernel(a, s):
    for i in range(cuda.grid(1), a.size, cuda.gridsize(1)):
        a[i] *= s


def _flat(a, name):
    d = a if hasattr(a, "copy_to_host") else cuda.as_cuda_array(a)
    if not d.is_c_contiguous():
        raise ValueError(f"{name}: gradients on the device must be C-contiguous")
    return d.reshape(d.size)


def copy(a):
    """A new device array equal to device array ``a`` (a device-to-device copy)."""
    d = a if hasattr(a, "copy_to_host") else cuda.as_cuda_array(a)
    if not d.is_c_contiguous():
        raise ValueError("copy: the device array must be C-contiguous")
    out = cuda.device_array(d.shape, d.dtype)
    if d.size:
        out.copy_to_device(d)
    return out


def add_into(acc, a):
    """``acc += a`` in place on the device (same shape and dtype)."""
    if tuple(acc.shape) != tuple(a.shape) or np.dtype(acc.dtype) != np.dtype(a.dtype):
        raise ValueError(f"add_into: shapes/dtypes differ: {tuple(acc.shape)} {acc.dtype} "
                         f"and {tuple(a.shape)} {a.dtype}")
    acc_f, a_f = _flat(acc, "acc"), _flat(a, "a")
    if acc_f.size:
        _add_into_kernel[grid(acc_f.size), TPB](acc_f, a_f)


def scale(a, s):
    """``a *= s`` in place on the device (``s``: a host scalar, cast to ``a``'s dtype)."""
    a_f = _flat(a, "a")
    if a_f.size:
        _scale_kernel[grid(a_f.size), TPB](a_f, np.dtype(a_f.dtype).type(s))
