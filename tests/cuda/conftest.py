"""The CUDA tests: run on the simulator (``NUMBA_ENABLE_CUDASIM=1``, set before Numba
is imported: ``tests/test_cuda.py`` runs this folder in a subprocess) or on a real
GPU. In a plain test run without either, they are skipped here (the subprocess
runs them)."""

import os
import sys

import pytest

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM", "") == "1"


def _gpu():
    try:
        from numba import cuda
        return (not SIM) and cuda.is_available()
    except Exception:
        return False


def pytest_configure(config):
    # (the ``gpu`` marker is registered in pyproject.toml)
    if SIM:
        # The simulator runs each GPU thread as a Python thread and hands a barrier
        # (syncthreads, nbops' emulated warp shuffles) from thread to thread; with
        # the default 5 ms GIL switch interval the suite ran about twice as long.
        sys.setswitchinterval(5e-4)


def pytest_collection_modifyitems(config, items):
    try:
        import numba_cuda  # noqa: F401
    except ImportError:
        reason = "numba-cuda is not installed"
    else:
        reason = None
    gpu = _gpu()
    for item in items:
        if "tests/cuda/" not in str(item.fspath).replace(os.sep, "/"):
            continue
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))
        elif not (SIM or gpu):
            item.add_marker(pytest.mark.skip(
                reason="CUDA tests run under NUMBA_ENABLE_CUDASIM=1 via tests/test_cuda.py"))
        elif "gpu" in item.keywords and not gpu:
            item.add_marker(pytest.mark.skip(reason="needs a real NVIDIA GPU"))
