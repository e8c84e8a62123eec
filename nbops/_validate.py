"""Argument checks shared by every op. They run before any kernel, in Python,
and raise exceptions that name the offending argument."""

import numpy as np

from . import _memory

_FLOAT_KINDS = "fd"

# Result dtype of each input dtype: NumPy's rule for np.exp (float16 results
# are computed in float32 and rounded once at the end).
_RESULT_DTYPE = {}


def result_dtype(dtype, name="input"):
    """Return (compute dtype, result dtype) for an input of ``dtype``."""
    try:
        return _RESULT_DTYPE[dtype]
    except KeyError:
        pass
    if dtype.kind == "c":
        raise TypeError(f"{name}: complex input is not supported (got dtype {dtype})")
    if dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a real numeric array, got dtype {dtype}")
    res = np.exp(np.zeros(0, dtype)).dtype
    if res == np.float16:
        pair = (np.dtype(np.float32), res)
    elif res in (np.float32, np.float64):
        pair = (res, res)
    else:  # long double
        raise TypeError(f"{name}: dtype {dtype} is not supported (use float32 or float64)")
    _RESULT_DTYPE[dtype] = pair
    return pair


def is_device_array(x):
    """True for CUDA arrays (``__cuda_array_interface__`` or Numba's simulator arrays)."""
    return hasattr(x, "__cuda_array_interface__") or type(x).__name__ == "FakeCUDAArray"


def as_array(x, name="input"):
    """``x`` as an ndarray (no copy for ndarrays)."""
    if type(x) is np.ndarray:
        return x
    if is_device_array(x):
        raise TypeError(
            f"{name}: got a CUDA device array while the op's first array argument is a "
            "host (NumPy) array; nbops never copies between host and device implicitly: "
            "pass all arrays on the same side")
    if is_dask_array(x):
        raise TypeError(
            f"{name}: got a dask array while the op's first array argument is a NumPy "
            "array; nbops never computes a dask array implicitly: pass the first array "
            "as a dask array too (dask.array.from_array) for a lazy result, or "
            f"{name}.compute() for an in-memory one")
    try:
        return np.asarray(x)
    except Exception as exc:
        raise TypeError(f"{name}: expected an array-like of numbers ({exc})") from None


def as_param(value, name):
    """A hyperparameter as a Python float, or a TypeError naming it."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None


def check_out(out, shape, dtype):
    """``out`` must be a writable ndarray of exactly ``shape`` and ``dtype``."""
    if type(out) is not np.ndarray and not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, expected {dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")


def direct_out(out, shape, dtype):
    """Whether ``out`` can take a kernel's result directly: a writable C-contiguous
    NumPy array of exactly ``shape`` and ``dtype`` (the lean paths' ``out=`` test;
    anything else goes through the general path's checks)."""
    return (type(out) is np.ndarray and out.shape == shape and out.dtype == dtype
            and out.flags.c_contiguous and out.flags.writeable)


def may_share_memory(out, a):
    """``np.may_share_memory(out, a)``, without its call where ``out`` owns its
    memory and ``a`` is, or is a view of, another array that owns its memory
    (distinct allocations cannot overlap: the common ``out=`` call; NumPy sets a
    view's ``base`` to the array that owns the memory)."""
    if out is a:
        return True
    if out.flags.owndata:
        owner = a if a.flags.owndata else a.base
        if owner is not out and type(owner) is np.ndarray and owner.flags.owndata:
            return False
    return np.may_share_memory(out, a)


def overlaps_differently(dest, src):
    """True if writing ``dest[i]`` could clobber an ``src[j]`` not yet read
    (``j != i``): the two share memory and are not the same elements (the same
    start and strides: writing element by element in place is then safe)."""
    if not np.may_share_memory(dest, src):
        return False
    return not (dest.strides == src.strides and dest.ctypes.data == src.ctypes.data)


def overlaps(out, *sources):
    """Whether ``out`` may share memory with any of ``sources`` (None entries
    skipped): every array a kernel reads while it writes ``out`` (weights, biases
    and saved statistics too), so that a destination overlapping one of them gets
    the result through a new array (as NumPy's ufuncs do)."""
    for a in sources:
        if a is not None and may_share_memory(out, a):
            return True
    return False


def check_out_apart(out, running_mean, running_var, update):
    """``out`` must not overlap the running statistics a training call updates in
    place (both are outputs: no order of writes gives each its value)."""
    if update and overlaps(out, running_mean, running_var):
        raise ValueError("out overlaps running_mean or running_var, which this call "
                         "updates in place: pass a separate out")


def lean_destination(out, shape, dtype, *sources):
    """The array a lean path writes its result into, or None (the general path).

    A new array when ``out`` is None (from :mod:`nbops._memory`'s reused blocks
    when large); ``out`` itself when :func:`direct_out` holds and it overlaps
    none of ``sources`` (None entries skipped); else None.
    """
    if out is None:
        return _memory.empty(shape, dtype)
    if not direct_out(out, shape, dtype) or overlaps(out, *sources):
        return None
    return out


def deliver(res, out, direct, compute, result):
    """The value a driver returns: ``out`` when the kernel wrote into it
    (``direct``), else ``res`` (computed in ``compute``) copied into ``out`` or
    cast to the ``result`` dtype."""
    if direct:
        return out
    if result != compute:
        res = res.astype(result)
    if out is not None:
        out[...] = res
        return out
    return res


def check_inplace(x, dtype):
    """``inplace=True`` needs a writable input that can hold the result dtype."""
    if not isinstance(x, np.ndarray):
        raise TypeError("input: inplace=True needs a numpy.ndarray")
    if x.dtype != dtype:
        raise TypeError(f"input: inplace=True needs a float32 or float64 array, "
                        f"got dtype {x.dtype} (the result would be {dtype})")
    if not x.flags.writeable:
        raise ValueError("input is read-only; inplace=True cannot write into it")


def is_dask_array(x):
    """True for a ``dask.array.Array``, checked without importing dask."""
    return type(x).__module__.startswith("dask.") and hasattr(x, "chunks")


def dask_ops():
    """The dask implementations, nbops/_dask.py (imports dask on first use)."""
    from . import _dask

    return _dask
