"""Host and device arrays mixed in one call: a TypeError that names the argument,
raised before any kernel runs and before anything the caller passed is modified
(nbops never copies between host and device behind the caller's back).

Every op with more than one array argument, each such argument on the other side
from ``input``, in both directions (device input with a host argument: the CUDA
path's check; host input with a device argument: the CPU path's check)."""

import warnings

import numpy as np
import pytest

import nbops

cuda = pytest.importorskip("numba.cuda")

RNG = np.random.default_rng(5)
X = RNG.random((4, 3))
T = RNG.random((4, 3))
W = RNG.random((4, 3))
IDX = np.array([0, 1, 2, 1])
WC = RNG.random(3)
WL = RNG.random((2, 3))

# name: (op, positional arrays, keyword arrays, the argument put on the other side)
CASES = {
    "prelu-weight": (nbops.prelu, [X, WC], {}, "weight"),
    "relu-out": (nbops.relu, [X], {"out": np.empty_like(X)}, "out"),
    "softmax-out": (nbops.softmax, [X], {"out": np.empty_like(X)}, "out"),
    "log_softmax-out": (nbops.log_softmax, [X], {"out": np.empty_like(X)}, "out"),
    "softmin-out": (nbops.softmin, [X], {"out": np.empty_like(X)}, "out"),
    "l1_loss-target": (nbops.l1_loss, [X, T], {}, "target"),
    "l1_loss-weight": (nbops.l1_loss, [X, T], {"weight": W}, "weight"),
    "mse_loss-target": (nbops.mse_loss, [X, T], {}, "target"),
    "mse_loss-weight": (nbops.mse_loss, [X, T], {"weight": W}, "weight"),
    "smooth_l1_loss-target": (nbops.smooth_l1_loss, [X, T], {}, "target"),
    "kl_div-target": (nbops.kl_div, [X, T], {}, "target"),
    "bce-target": (nbops.binary_cross_entropy, [X, T], {}, "target"),
    "bce-weight": (nbops.binary_cross_entropy, [X, T], {"weight": W}, "weight"),
    "bce_logits-target": (nbops.binary_cross_entropy_with_logits, [X, T], {}, "target"),
    "bce_logits-weight": (nbops.binary_cross_entropy_with_logits, [X, T], {"weight": W},
                          "weight"),
    "bce_logits-pos_weight": (nbops.binary_cross_entropy_with_logits, [X, T],
                              {"pos_weight": WC}, "pos_weight"),
    "cross_entropy-target": (nbops.cross_entropy, [X, IDX], {}, "target"),
    "cross_entropy-probabilities": (nbops.cross_entropy, [X, T], {}, "target"),
    "cross_entropy-weight": (nbops.cross_entropy, [X, IDX], {"weight": WC}, "weight"),
    "nll_loss-target": (nbops.nll_loss, [X, IDX], {}, "target"),
    "nll_loss-weight": (nbops.nll_loss, [X, IDX], {"weight": WC}, "weight"),
    "batch_norm-running_mean": (nbops.batch_norm, [X, WC, WC + 1], {}, "running_mean"),
    "batch_norm-running_var": (nbops.batch_norm, [X, WC, WC + 1], {}, "running_var"),
    "batch_norm-weight": (nbops.batch_norm, [X, WC, WC + 1], {"weight": WC}, "weight"),
    "batch_norm-bias": (nbops.batch_norm, [X, WC, WC + 1], {"bias": WC}, "bias"),
    "batch_norm-out": (nbops.batch_norm, [X, WC, WC + 1], {"out": np.empty_like(X)}, "out"),
    "linear-weight": (nbops.linear, [X, WL], {}, "weight"),
    "linear-bias": (nbops.linear, [X, WL], {"bias": WC[:2]}, "bias"),
    "linear-out": (nbops.linear, [X, WL], {"out": np.empty((4, 2))}, "out"),
    "pairwise_distance-x2": (nbops.pairwise_distance, [X, T], {}, "x2"),
    "dropout-out": (nbops.dropout, [X], {"out": np.empty_like(X)}, "out"),
    "dropout2d-out": (nbops.dropout2d, [X[None]], {"out": np.empty((1, 4, 3))}, "out"),
    "dropout3d-out": (nbops.dropout3d, [X[None, None]], {"out": np.empty((1, 1, 4, 3))},
                      "out"),
}
POSITION = {"target": 1, "weight": 1, "running_mean": 1, "running_var": 2, "x2": 1}


def _to(a, device):
    return cuda.to_device(np.ascontiguousarray(a)) if device else np.array(a)


@pytest.mark.parametrize("input_on", ["device", "host"])
@pytest.mark.parametrize("case", list(CASES))
def test_mixing_host_and_device_raises_naming_the_argument(case, input_on):
    op, args, kwargs, name = CASES[case]
    on_device = input_on == "device"
    args = [_to(a, on_device) for a in args]
    kwargs = {k: _to(v, on_device) for k, v in kwargs.items()}
    if name in kwargs:
        kwargs[name] = _to(CASES[case][2][name], not on_device)
    else:
        i = POSITION[name]
        args[i] = _to(CASES[case][1][i], not on_device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropout2d/3d rank warnings
        with pytest.raises(TypeError) as info:
            op(*args, **kwargs)
    msg = str(info.value)
    assert msg.startswith(name), msg  # names the argument first
    assert ("device" in msg) or ("numpy.ndarray" in msg), msg


def test_nothing_is_modified_when_a_later_argument_is_on_the_host():
    x = RNG.standard_normal((6, 3))
    rm, rv = RNG.random(3), RNG.random(3) + 1
    drm, drv = cuda.to_device(rm), cuda.to_device(rv)
    with pytest.raises(TypeError, match="^bias"):
        nbops.batch_norm(cuda.to_device(x), drm, drv, cuda.to_device(WC), WC, training=True)
    np.testing.assert_array_equal(drm.copy_to_host(), rm)
    np.testing.assert_array_equal(drv.copy_to_host(), rv)
    d = cuda.to_device(x)
    with pytest.raises(TypeError, match="^out"):
        nbops.dropout(d, 0.5, rng=1, out=np.empty_like(x))
    np.testing.assert_array_equal(d.copy_to_host(), x)


def test_non_array_arguments_with_a_device_input():
    d = cuda.to_device(X)
    with pytest.raises(TypeError, match="^target"):
        nbops.mse_loss(d, T.tolist())
    with pytest.raises(TypeError, match="^weight"):
        nbops.linear(d, WL.tolist())
