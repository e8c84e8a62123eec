"""Helpers shared by the CUDA tests: moving arrays to and from the device, and
comparing a device result with a host reference."""

import numpy as np
from numba import cuda

#: Tolerances of a CUDA result against the CPU path (libdevice vs nbops' own
#: vectorizable math on the CPU: a few ulp apart).
TOL = {np.float32: {"rtol": 2e-5, "atol": 2e-6}, np.float64: {"rtol": 1e-12, "atol": 1e-13}}


def to_device(a):
    """A Numba device array holding ``a`` (C-contiguous; 0-d stays 0-d)."""
    a = np.asarray(a)
    return cuda.to_device(a if a.ndim == 0 else np.ascontiguousarray(a))


def is_device(a):
    return not isinstance(a, np.ndarray) and hasattr(a, "copy_to_host")


def to_host(d):
    """The host copy of a result, which must still be on the device."""
    assert is_device(d), type(d)
    return d.copy_to_host()


def assert_close(got, want, dtype, tol=TOL):
    """Same dtype and shape, values within ``tol[dtype]``."""
    want = np.asarray(want)
    assert got.dtype == want.dtype == np.dtype(dtype)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, **tol[dtype])
