"""Bad inputs that every backend must reject alike (tests/test_plan.py runs them on
the CPU path and inside @njit, tests/cuda/test_cuda_plan.py on device arrays).

Each case: an op, its positional arguments (host arrays, float32 / int64),
keyword options, the exception type, a regex its message must match on every
backend, and where the message must be identical to the CPU path's
(``EXACT_NJIT``: inside @njit too; ``EXACT_CUDA``: on device arrays too). Messages
that would hold run-time values are constant inside @njit (formatting numbers there
adds to every compilation of the op), so only their type and wording match.
"""

import warnings
from typing import NamedTuple

import numpy as np

EXACT_NJIT = "njit"
EXACT_CUDA = "cuda"
EXACT_ALL = (EXACT_NJIT, EXACT_CUDA)


def _x(*shape):
    return np.linspace(-1.0, 1.0, int(np.prod(shape))).astype(np.float32).reshape(shape)


def _targets(n, classes=4):
    return (np.arange(n) % classes).astype(np.int64)


def _probs(*shape):
    return np.full(shape, 1.0 / shape[-1] if len(shape) < 2 else 1.0 / shape[1], np.float32)


class Case(NamedTuple):
    id: str
    op: str
    args: tuple
    kwargs: dict
    exc: type
    match: str
    exact: tuple = ()


X = _x(6, 4)
T = _targets(6)
Y = _x(6, 4)[::-1].copy()
Q = _probs(6, 4)

CASES = [
    # reduction
    Case("mse_loss-unknown-reduction", "mse_loss", (X, Y), {"reduction": "avg"}, ValueError,
         "reduction must be one of 'none', 'mean', 'sum', got 'avg'", EXACT_ALL),
    Case("mse_loss-batchmean", "mse_loss", (X, Y), {"reduction": "batchmean"}, ValueError,
         "reduction must be one of", EXACT_ALL),
    Case("kl_div-unknown-reduction", "kl_div", (X, Q), {"reduction": "avg"}, ValueError,
         "reduction must be one of 'none', 'batchmean', 'mean', 'sum'", EXACT_ALL),
    Case("bce-unknown-reduction", "binary_cross_entropy", (Q, Q), {"reduction": "Mean"},
         ValueError, "reduction must be one of", EXACT_ALL),
    Case("cross_entropy-unknown-reduction", "cross_entropy", (X, T), {"reduction": "avg"},
         ValueError, "reduction must be one of", EXACT_ALL),
    Case("nll_loss-batchmean", "nll_loss", (X, T), {"reduction": "batchmean"}, ValueError,
         "reduction must be one of", EXACT_ALL),
    # cross_entropy / nll_loss options and targets
    Case("label_smoothing-above-1", "cross_entropy", (X, T), {"label_smoothing": 1.5},
         ValueError, "label_smoothing must be between 0.0 and 1.0"),
    Case("label_smoothing-negative", "cross_entropy", (X, T), {"label_smoothing": -0.1},
         ValueError, "label_smoothing must be between 0.0 and 1.0"),
    Case("weight-length", "cross_entropy", (X, T), {"weight": np.ones(3, np.float32)},
         ValueError, r"weight must have shape \((4|C),\) \(one weight per class", (EXACT_CUDA,)),
    Case("nll-weight-length", "nll_loss", (X, T), {"weight": np.ones(5, np.float32)},
         ValueError, r"weight must have shape \((4|C),\)", (EXACT_CUDA,)),
    Case("target-batch-size", "cross_entropy", (X, T[:5]), {}, ValueError, "target"),
    Case("target-out-of-range", "cross_entropy", (X, np.array([0, 1, 2, 3, 4, 0])), {},
         ValueError, "target: .*class index .*out of range: expected 0 <= index < "),
    Case("nll-target-negative", "nll_loss", (X, np.array([0, 1, -1, 3, 0, 0])), {},
         ValueError, "out of range"),
    Case("nll-float-targets", "nll_loss", (X, T.astype(np.float32)), {}, TypeError,
         "target: class indices must have an integer dtype, got float32", EXACT_ALL),
    Case("float-targets-not-probabilities", "cross_entropy", (X, T.astype(np.float32)), {},
         TypeError, "target: class indices must have an integer dtype"),
    Case("probabilities-with-ignore_index", "cross_entropy", (X, Q), {"ignore_index": 1},
         ValueError, "ignore_index is not supported with class-probability targets",
         EXACT_ALL),
    Case("ignore_index-float", "nll_loss", (X, T), {"ignore_index": 1.5}, TypeError,
         "ignore_index must be an integer"),
    Case("0-d-input", "cross_entropy", (np.array(1.0, np.float32), np.array(0)), {},
         ValueError, r"input must have shape \(C,\), \(N, C\)", EXACT_ALL),
    # the softmax family's axis
    Case("axis-out-of-range", "softmax", (X, 2), {}, ValueError,
         "axis (2 )?is out of range for (an|the) array", (EXACT_CUDA,)),
    Case("dim-out-of-range", "log_softmax", (X,), {"dim": -3}, ValueError,
         "axis (-3 )?is out of range for (an|the) array", (EXACT_CUDA,)),
    Case("axis-and-dim", "softmin", (X, 0), {"dim": 1}, TypeError,
         "give axis or dim, not both", (EXACT_CUDA,)),
    Case("axis-float", "softmax", (X, 1.0), {}, TypeError, "axis must be an integer"),
    # dropout
    Case("p-above-1", "dropout", (X, 1.5), {"rng": 0}, ValueError,
         "p: dropout probability has to be between 0 and 1"),
    Case("p-negative", "dropout2d", (_x(2, 3, 2, 2), -0.25), {"rng": 0}, ValueError,
         "p: dropout probability has to be between 0 and 1"),
    Case("p-nan", "dropout", (X, float("nan")), {"rng": 0}, ValueError,
         "p: dropout probability has to be between 0 and 1"),
    Case("inplace-and-out", "dropout", (X.copy(), 0.5),
         {"inplace": True, "out": np.zeros_like(X), "rng": 0}, ValueError,
         "out= and inplace=True cannot be used together", EXACT_ALL),
    Case("feature-dropout-1-d", "dropout2d", (_x(5), 0.5), {"rng": 0}, ValueError,
         "requires at least 2 dimensions"),
]


def raised(fn, *args, **kwargs):
    """The exception ``fn(*args, **kwargs)`` raises (AssertionError if none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # dropout2d's rank warnings
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # the test compares it with the expected one
            return exc
    raise AssertionError("no exception raised")
