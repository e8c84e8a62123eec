"""The CUDA backend, from the main test process.

* ``import nbops`` and host-array calls never import ``numba.cuda``.
* ``tests/cuda/`` (every CUDA op against the CPU path) runs in a subprocess under
  the CUDA simulator: ``NUMBA_ENABLE_CUDASIM=1`` must be set before Numba is
  imported, and this process imported Numba long ago.
* ``tests/cuda/ptx_check.py`` compiles every kernel to PTX with the real CUDA
  target (typing and lowering as on hardware), where NVVM is installed.

These subprocesses (and the GPU-check smoke run) take minutes of one core each:
they are marked ``background`` and run beside the rest of the suite
(``tests/_background.py``).
"""

import atexit
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HAVE_NUMBA_CUDA = importlib.util.find_spec("numba_cuda") is not None


def _run(code_or_args, env_extra=None, timeout=1200):
    env = dict(os.environ)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env.update(env_extra or {})
    args = [sys.executable] + (["-c", code_or_args] if isinstance(code_or_args, str)
                               else code_or_args)
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_import_nbops_does_not_import_numba_cuda():
    r = _run("import sys, numpy as np, nbops\n"
             "nbops.relu(np.ones(3)); nbops.softmax(np.ones((2, 3)))\n"
             "nbops.cross_entropy(np.ones((2, 3)), np.array([0, 1]))\n"
             "bad = [m for m in sys.modules if m.startswith('numba.cuda') "
             "or m.startswith('nbops.cuda.')]\n"
             "assert not bad, bad\n")
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(not HAVE_NUMBA_CUDA, reason="numba-cuda is not installed")
@pytest.mark.background(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/cuda"],
                        env={"NUMBA_ENABLE_CUDASIM": "1"})
def test_cuda_ops_on_the_simulator(background):
    tail = background.stdout[-6000:]
    assert background.returncode == 0, tail
    print(tail.strip().splitlines()[-1], f"({background.seconds:.0f} s)")


def _have_nvvm():
    try:
        from cuda.pathfinder import load_nvidia_dynamic_lib
        load_nvidia_dynamic_lib("nvvm")
        load_nvidia_dynamic_lib("nvrtc")
        return True
    except Exception:
        return False


@pytest.mark.skipif(not (HAVE_NUMBA_CUDA and _have_nvvm()),
                    reason="numba-cuda or NVVM/NVRTC not installed "
                           "(pip install numba-cuda nvidia-nvvm nvidia-cuda-nvrtc)")
@pytest.mark.background([str(ROOT / "tests" / "cuda" / "ptx_check.py")])
def test_cuda_kernels_compile_to_ptx(background):
    assert background.returncode == 0, background.stdout[-6000:]


#: where the GPU-check smoke run writes (removed at exit)
GPU_CHECK_OUT = tempfile.mkdtemp(prefix="nbops-gpu-check-")
atexit.register(shutil.rmtree, GPU_CHECK_OUT, ignore_errors=True)


@pytest.mark.skipif(not HAVE_NUMBA_CUDA, reason="numba-cuda is not installed")
@pytest.mark.background([str(ROOT / "tools" / "gpu_check.py"), "--smoke", "--skip-tests",
                         "--out", GPU_CHECK_OUT], env={"NUMBA_ENABLE_CUDASIM": "1"},
                        timeout=1800)
def test_gpu_check_script_runs_on_the_simulator(background):
    """tools/gpu_check.py --smoke: the benchmark code (every op, torch's calls on the
    CPU when torch is installed) works before it first meets a GPU."""
    import json

    assert background.returncode == 0, background.stdout[-6000:]
    result = json.loads((Path(GPU_CHECK_OUT) / "gpu_check.json").read_text())
    assert "bench_error" not in result
    ops = {row["op"].split(" ")[0].split("(")[0] for row in result["bench"]}
    import nbops

    not_ops = {"scalar", "warmup", "empty_cache", "nn", "dropout3d", "dropout_mask", "no_grad",
               "enable_grad", "set_grad_enabled", "is_grad_enabled"}  # modules, helpers, grad mode
    public = set(nbops.__all__) - not_ops
    assert public <= ops, sorted(public - ops)
    for row in result["bench"]:
        assert row["nbops_ms"] > 0
        if importlib.util.find_spec("torch") is not None:
            assert "torch_ms" in row, row
