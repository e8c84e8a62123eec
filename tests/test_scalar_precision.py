"""The scalar cores keep the element's precision.

Inside a user's ``@njit`` code, a core called with a float32 element and Python
float or int hyperparameters computes and returns float32 (a Python scalar takes
the element's precision, as in NumPy 2); float64 stays float64. Values against
float64 NumPy formulas (``_reference.py`` and the loss formulas below). The same
on CUDA: the cores compiled for the device are typed with a float32 element and
float64 / int64 hyperparameters (the types of Python literals), and a kernel
using a float literal compiles to PTX with no float64 arithmetic (in a
subprocess, where NVVM is installed; the simulator checks values only, see
``tests/cuda/test_cuda_scalar_precision.py``).
"""

import importlib.util
import os
import subprocess
import sys

import _reference as R
import numba
import numpy as np
import pytest

from nbops import scalar as S

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _smooth_l1(x, t, beta):
    d = np.abs(np.float64(x) - np.float64(t))
    return np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def _bce_logits_pos_weight(x, t, pos_weight):
    x, t = np.float64(x), np.float64(t)
    return (1.0 - t) * x - (1.0 + (pos_weight - 1.0) * t) * R.logsigmoid(x)


# (name, reference of one element x, target t) per output of the jitted functions below
_FLOAT_HYPER = [
    ("elu", lambda x, t: R.elu(x, 1.3)),
    ("leaky_relu", lambda x, t: R.leaky_relu(x, 0.1)),
    ("prelu", lambda x, t: R.prelu(x, [-0.3])),
    ("threshold", lambda x, t: R.threshold(x, 0.1, -2.5)),
    ("hardtanh", lambda x, t: R.hardtanh(x, -0.7, 1.9)),
    ("softplus", lambda x, t: R.softplus(x, 1.7, 3.0)),
    ("softshrink", lambda x, t: R.softshrink(x, 0.3)),
    ("smooth_l1_loss", lambda x, t: _smooth_l1(x, t, 0.7)),
    ("binary_cross_entropy_with_logits_pos_weight",
     lambda x, t: _bce_logits_pos_weight(x, t, 2.5)),
]


@numba.njit
def _float_hyper(x, t):
    """Every core with hyperparameters, called with Python float literals."""
    return (S.elu(x, 1.3), S.leaky_relu(x, 0.1), S.prelu(x, -0.3),
            S.threshold(x, 0.1, -2.5), S.hardtanh(x, -0.7, 1.9), S.softplus(x, 1.7, 3.0),
            S.softshrink(x, 0.3), S.smooth_l1_loss(x, t, 0.7),
            S.binary_cross_entropy_with_logits_pos_weight(x, t, 2.5))


_INT_HYPER = [
    ("elu", lambda x, t: R.elu(x, 2.0)),
    ("leaky_relu", lambda x, t: R.leaky_relu(x, 3.0)),
    ("prelu", lambda x, t: R.prelu(x, [-2.0])),
    ("threshold", lambda x, t: R.threshold(x, 1.0, -2.0)),
    ("hardtanh", lambda x, t: R.hardtanh(x, -1.0, 2.0)),
    ("softplus", lambda x, t: R.softplus(x, 2.0, 5.0)),
    ("softshrink", lambda x, t: R.softshrink(x, 1.0)),
    ("smooth_l1_loss", lambda x, t: _smooth_l1(x, t, 2.0)),
    ("binary_cross_entropy_with_logits_pos_weight",
     lambda x, t: _bce_logits_pos_weight(x, t, 3.0)),
]


@numba.njit
def _int_hyper(x, t):
    """Every core with hyperparameters, called with Python int literals."""
    return (S.elu(x, 2), S.leaky_relu(x, 3), S.prelu(x, -2), S.threshold(x, 1, -2),
            S.hardtanh(x, -1, 2), S.softplus(x, 2, 5), S.softshrink(x, 1),
            S.smooth_l1_loss(x, t, 2), S.binary_cross_entropy_with_logits_pos_weight(x, t, 3))


_NO_HYPER = ["relu", "relu6", "sigmoid", "tanh", "logsigmoid", "softsign", "l1_loss",
             "mse_loss", "kl_div", "kl_div_log_target", "binary_cross_entropy",
             "binary_cross_entropy_with_logits"]


@numba.njit
def _no_hyper(x, t):
    """The other cores: no hyperparameter, float32 stays float32 all the same."""
    return (S.relu(x), S.relu6(x), S.sigmoid(x), S.tanh(x), S.logsigmoid(x), S.softsign(x),
            S.l1_loss(x, t), S.mse_loss(x, t), S.kl_div(x, t), S.kl_div_log_target(x, t),
            S.binary_cross_entropy(t, t), S.binary_cross_entropy_with_logits(x, t))


def _tolerances(name, dtype, x):
    tol = R.tolerances(name, dtype)
    if name.startswith("binary_cross_entropy_with_logits"):
        # (1 - t) x - log(sigmoid(x)) cancels for x < 0: a few ulp of |x| (as PyTorch)
        tol["atol"] = max(tol["atol"], 4 * np.finfo(dtype).eps * (1 + abs(float(x))))
    return tol


def _return_types(fn, *args):
    types = tuple(numba.typeof(a) for a in args)
    for sig in fn.nopython_signatures:
        if tuple(sig.args) == types:
            return list(sig.return_type)
    raise AssertionError(f"no compiled signature for {types}")


# elements away from every threshold of the hyperparameters above (a float32
# rounding of a hyperparameter never moves one to the other side)
_X = np.array([-7.5, -3.2, -1.6, -0.9, -0.45, -0.2, -0.05, 0.0, 0.05, 0.2, 0.45, 0.9, 1.6,
               2.7, 4.3, 9.0, 25.0])
_T = np.array([0.0, 1.0, 0.25, 0.8, 0.5, 0.1, 0.6, 0.3, 0.95, 0.0, 1.0, 0.4, 0.7, 0.2, 0.9,
               0.5, 1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fn, cases", [(_float_hyper, _FLOAT_HYPER), (_int_hyper, _INT_HYPER)],
                         ids=["float", "int"])
def test_hyperparameters_take_the_element_precision(fn, cases, dtype):
    x, t = _X.astype(dtype), _T.astype(dtype)
    for i in range(x.size):
        got = fn(x[i], t[i])
        for (name, ref), value in zip(cases, got, strict=True):
            exp = np.asarray(ref(x[i], t[i]), np.float64).reshape(1).astype(dtype)
            R.assert_matches(np.array([value], dtype), exp, what=f"{name}({x[i]})",
                             **_tolerances(name, dtype, x[i]))
    rt = _return_types(fn, x[0], t[0])
    want = numba.from_dtype(np.dtype(dtype))
    wrong = [f"{name} -> {ty}" for (name, _), ty in zip(cases, rt, strict=True) if ty != want]
    assert not wrong, f"{dtype.__name__} element: {wrong}"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cores_without_hyperparameters_keep_the_element_type(dtype):
    x, t = dtype(0.3), dtype(0.6)
    _no_hyper(x, t)
    want = numba.from_dtype(np.dtype(dtype))
    rt = _return_types(_no_hyper, x, t)
    wrong = [f"{name} -> {ty}" for name, ty in zip(_NO_HYPER, rt, strict=True) if ty != want]
    assert not wrong, wrong


@numba.njit
def _user_loop(x, out):
    for i in range(x.size):
        out[i] = S.elu(x[i], 1.0)
    return S.elu(x[0], 1.0)


def test_issue_example_in_a_user_loop():
    """``nbops.scalar.elu(x[i], 1.0)`` in a user's loop over a float32 array."""
    x = _X.astype(np.float32)
    out = np.empty_like(x)
    _user_loop(x, out)
    R.assert_matches(out, R.expected("elu", x, alpha=1.0), **R.tolerances("elu", np.float32))
    sig = _user_loop.nopython_signatures[0]
    assert sig.return_type == numba.float32, sig


# ------------------------------------------------------------------ CUDA: typing and PTX
_PTX_SCRIPT = r"""
import sys, types as _pt
import numba.cuda.cudadrv.nvrtc as _nvrtc
import numba.cuda.dispatcher as _disp
from numba import cuda
from numba.cuda import types as T
# no driver here: device discovery stubbed (as tests/cuda/ptx_check.py)
_disp.get_current_device = lambda: _pt.SimpleNamespace(compute_capability=(9, 0))
_nvrtc.get_supported_ccs = lambda: ((7, 5), (8, 0), (9, 0))
from nbops import scalar as S
from nbops.cuda._core import device

f32, f64, i64 = T.float32, T.float64, T.int64
cores = {  # core: the types of its Python-literal hyperparameters
    "elu": (f64,), "leaky_relu": (f64,), "prelu": (f64,), "threshold": (f64, i64),
    "hardtanh": (i64, f64), "softplus": (f64, i64), "softshrink": (f64,),
    "smooth_l1_loss": (f64,), "binary_cross_entropy_with_logits_pos_weight": (f64,),
}
try:
    cuda.compile_ptx(S.relu.py_func, (f32,), device=True, cc=(9, 0))
except Exception as exc:  # no NVVM here
    print("no nvvm", type(exc).__name__)
    sys.exit(0)
bad = []
for name, hyper in cores.items():
    core = getattr(S, name)
    elems = (f32, f32) if name.endswith(("loss", "pos_weight")) else (f32,)
    _, rt = cuda.compile_ptx(core.py_func, elems + hyper, device=True, cc=(9, 0))
    if rt != f32:
        bad.append(f"{name}: returns {rt}")

elu, softplus = device(S.elu), device(S.softplus)
bce = device(S.binary_cross_entropy_with_logits_pos_weight)


def kernel(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = elu(x[i], 1.3) + softplus(x[i], 1.7, 20.0) + bce(x[i], x[i], 2.5)


ptx, _ = cuda.compile_ptx(kernel, (f32[::1], f32[::1]), cc=(9, 0))
f64_lines = [ln.strip() for ln in ptx.splitlines() if ".f64" in ln]
if f64_lines:
    bad.append(f"float64 in the PTX of a float32 kernel: {f64_lines[:5]}")
print("\n".join(bad) if bad else "ptx ok")
sys.exit(1 if bad else 0)
"""


@pytest.mark.skipif(importlib.util.find_spec("numba_cuda") is None,
                    reason="numba-cuda is not installed")
def test_cuda_cores_compute_in_float32():
    """On the real CUDA target (typed and lowered to PTX, no GPU needed)."""
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="0")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", _PTX_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    if "no nvvm" in proc.stdout:
        pytest.skip("NVVM/NVRTC not installed")
    assert "ptx ok" in proc.stdout, out[-4000:]
