"""CUDA backend of nbops (optional: needs the ``numba-cuda`` package).

The public functions (``nbops.relu``, ``nbops.softmax``, ...) send device arrays
here: a Numba device array, or anything with ``__cuda_array_interface__``
(CuPy arrays, CUDA torch tensors; wrapped zero-copy with
``numba.cuda.as_cuda_array``). Results stay on the device as Numba device
arrays; pass them to ``cupy.asarray(r)`` or ``torch.as_tensor(r, device="cuda")``
for zero-copy views. Losses with ``reduction='mean'|'sum'`` return a 0-d
device array.

Importing this package imports nothing from ``numba.cuda``: :func:`ops` loads
the kernels on the first device array that arrives, so ``import nbops`` works
without a GPU and without ``numba-cuda``.

Every kernel is compiled from the same scalar cores as the CPU kernels
(:mod:`nbops.scalar`), see :mod:`nbops.cuda._core`.

Dropout (``nbops.dropout``, ``dropout1d``, ``dropout2d``, ``dropout3d``,
``alpha_dropout``, ``feature_alpha_dropout``) runs on device
arrays with the CPU path's counter-based generator (Philox4x32-10, the same
seed -> key and counter/lane scheme, the same core compiled for the GPU): the
same ``rng=`` seed gives a bit-identical mask and result on CPU and GPU.
:func:`dropout_mask` here is ``nbops.dropout_mask`` returning a device array
(``nbops.dropout_mask`` itself takes a shape and returns a host array).

Not implemented on CUDA yet: non-contiguous device arrays (F-contiguous ones
work for the elementwise ops, not for dropout, whose mask is in C order),
float16 and integer device inputs, broadcasting between device arguments.
"""

_loaded = None


def ops():
    """The CUDA implementations (imports ``numba.cuda`` on first use)."""
    global _loaded
    if _loaded is None:
        try:
            from . import _ops as module
        except ImportError as exc:  # numba-cuda missing
            raise ImportError(
                "nbops: a CUDA array was passed, but the CUDA backend needs the "
                f"numba-cuda package (pip install 'nbops[cuda]'): {exc}") from exc
        _loaded = module
    return _loaded


def dropout_mask(shape, p, rng=None, dtype="float32"):
    """:func:`nbops.dropout_mask` on the device: a Numba device array of ``shape``.

    The same arguments give the same mask as ``nbops.dropout_mask`` (bit for
    bit), so ``nbops.dropout(x_dev, p, rng=seed)`` equals
    ``x_dev * dropout_mask(x_dev.shape, p, rng=seed, dtype=x_dev.dtype)``.
    ``dtype``: float32 (default), float64 (the scaled mask) or bool (the
    keep-mask); float16 is not supported on CUDA.
    """
    return ops().dropout_mask(shape, p, rng=rng, dtype=dtype)
