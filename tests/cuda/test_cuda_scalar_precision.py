"""The scalar cores compiled for CUDA keep the element's precision: a kernel
calling a core with a float32 element and Python float / int literal
hyperparameters computes in float32, as on the CPU (``tests/test_scalar_precision.py``).

The simulator runs kernels as Python and checks no types, so this checks the
values: float32 results (exactly representable in float32) within float32
tolerance of float64 NumPy formulas. The types on the real CUDA target (and the
PTX, free of float64 arithmetic) are checked by ``tests/test_scalar_precision.py``.
"""

import _reference as R
import numpy as np
import pytest

cuda = pytest.importorskip("numba.cuda")

from nbops import scalar as S  # noqa: E402
from nbops.cuda._core import device  # noqa: E402

_ELU = device(S.elu)
_LEAKY = device(S.leaky_relu)
_PRELU = device(S.prelu)
_THRESHOLD = device(S.threshold)
_HARDTANH = device(S.hardtanh)
_SOFTPLUS = device(S.softplus)
_SOFTSHRINK = device(S.softshrink)
_SMOOTH_L1 = device(S.smooth_l1_loss)
_BCE_PW = device(S.binary_cross_entropy_with_logits_pos_weight)


@cuda.jit
def _float_literals(x, t, out):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        out[0, i] = _ELU(v, 1.3)
        out[1, i] = _LEAKY(v, 0.1)
        out[2, i] = _PRELU(v, -0.3)
        out[3, i] = _THRESHOLD(v, 0.1, -2.5)
        out[4, i] = _HARDTANH(v, -0.7, 1)
        out[5, i] = _SOFTPLUS(v, 1.7, 3)
        out[6, i] = _SOFTSHRINK(v, 0.3)
        out[7, i] = _SMOOTH_L1(v, t[i], 0.7)
        out[8, i] = _BCE_PW(v, t[i], 2.5)


def _refs(x, t):
    d = np.abs(x - t)
    return {
        "elu": R.elu(x, 1.3),
        "leaky_relu": R.leaky_relu(x, 0.1),
        "prelu": R.prelu(x, [-0.3]),
        "threshold": R.threshold(x, 0.1, -2.5),
        "hardtanh": R.hardtanh(x, -0.7, 1.0),
        "softplus": R.softplus(x, 1.7, 3.0),
        "softshrink": R.softshrink(x, 0.3),
        "smooth_l1_loss": np.where(d < 0.7, 0.5 * d * d / 0.7, d - 0.35),
        "bce_pos_weight": (1.0 - t) * x - (1.0 + 1.5 * t) * R.logsigmoid(x),
    }


# elements away from every threshold above
_X = np.array([-7.5, -3.2, -1.6, -0.9, -0.45, -0.2, -0.05, 0.0, 0.05, 0.2, 0.45, 0.9, 1.6,
               2.7, 4.3, 9.0])
_T = np.array([0.0, 1.0, 0.25, 0.8, 0.5, 0.1, 0.6, 0.3, 0.95, 0.0, 1.0, 0.4, 0.7, 0.2, 0.9,
               0.5])


def test_float32_element_with_python_literals():
    x, t = _X.astype(np.float32), _T.astype(np.float32)
    out = cuda.device_array((9, x.size), np.float64)  # float64: shows what was computed
    _float_literals[1, 32](cuda.to_device(x), cuda.to_device(t), out)
    got = out.copy_to_host()
    refs = _refs(x.astype(np.float64), t.astype(np.float64))
    for row, (name, ref) in zip(got, refs.items(), strict=True):
        np.testing.assert_array_equal(row, row.astype(np.float32), err_msg=name)
        # bce: (1 - t) x - log(sigmoid(x)) cancels for x < 0, a few ulp of |x| (as PyTorch)
        bound = 4e-6 * np.abs(ref) + 5e-7 * (1 + np.abs(_X))
        bad = np.abs(row - ref) > bound
        assert not bad.any(), f"{name}: x={_X[bad]} got {row[bad]}, expected {ref[bad]}"
