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

Not implemented on CUDA yet: dropout (its counter-based generator must be
shared with the CPU path in ``nbops/dropout.py``), non-contiguous device
arrays, float16 and integer device inputs.
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
