"""Independent float64 NumPy reference formulas for the nbops activations,
pointwise losses and row ops (softmax family).

Nothing here imports nbops: every expected value in the activation tests comes
from these formulas (or from PyTorch), never from nbops itself.

Semantics follow ``torch.nn.functional`` on CPU, including how NaN and inf
propagate (checked against PyTorch 2.x):

* ``threshold``: PyTorch computes ``value if x <= threshold else x``, so a NaN
  input stays NaN (the comparison is False).  Equivalent to "x if x > threshold
  else value" for every non-NaN x.
* ``softshrink``: ``x - l if x > l; x + l if x < -l; else x * 0``: NaN stays NaN.
* ``softsign``: ``x / (1 + |x|)``, so ``softsign(+-inf)`` is NaN, as in PyTorch.
* ``relu``, ``relu6``, ``hardtanh``, ``elu``, ``leaky_relu``, ``prelu`` propagate NaN.
* ``softplus``: ``x if beta*x > threshold else log1p(exp(beta*x)) / beta``
  (evaluated here in an overflow-free form; identical where PyTorch's is finite).
* ``logsigmoid(x) = min(x, 0) - log1p(exp(-|x|))``.

All functions take any array-like, compute in float64 and return float64 arrays.
Use :func:`expected` to get the reference rounded to the result dtype.
"""

import inspect
import math

import numpy as np

# The ops themselves (names, parameters, in-place support, non-default
# parameter sets) come from nbops' op table (nbops/_ops/table.py); the test
# modules read it. What stays here is independent of nbops: one float64
# reference function per op, named as the op (see ``reference``).

# ops made only of comparisons / one multiply / one add: nearly exact
EXACT_OPS = ("relu", "relu6", "prelu", "leaky_relu", "threshold", "hardtanh", "softshrink")


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def relu(x):
    x = _f64(x)
    # np.maximum propagates NaN
    return np.maximum(x, 0.0)


def relu6(x):
    x = _f64(x)
    return np.minimum(np.maximum(x, 0.0), 6.0)


def elu(x, alpha=1.0):
    x = _f64(x)
    with np.errstate(all="ignore"):
        return np.where(x > 0, x, alpha * np.expm1(x))


def leaky_relu(x, negative_slope=0.01):
    x = _f64(x)
    with np.errstate(all="ignore"):
        return np.where(x > 0, x, x * negative_slope)


def prelu(x, weight):
    """weight: 1 element, or C = x.shape[1] elements (broadcast along axis 1)."""
    x = _f64(x)
    w = _f64(weight).reshape(-1)
    if w.size == 1:
        wb = w[0]
    else:
        assert x.ndim >= 2 and x.shape[1] == w.size
        wb = w.reshape((1, w.size) + (1,) * (x.ndim - 2))
    with np.errstate(all="ignore"):
        return np.where(x > 0, x, x * wb)


def threshold(x, threshold, value):
    x = _f64(x)
    # PyTorch: value if x <= threshold else x   (NaN -> NaN)
    return np.where(x <= threshold, np.float64(value), x)


def hardtanh(x, min_val=-1.0, max_val=1.0):
    x = _f64(x)
    # np.minimum/np.maximum propagate NaN
    return np.minimum(np.maximum(x, min_val), max_val)


def sigmoid(x):
    x = _f64(x)
    with np.errstate(all="ignore"):
        e = np.exp(-np.abs(x))  # in (0, 1], never overflows
        pos = 1.0 / (1.0 + e)
        neg = e / (1.0 + e)
        return np.where(x >= 0, pos, np.where(np.isnan(x), x, neg))


def tanh(x):
    return np.tanh(_f64(x))


def logsigmoid(x):
    x = _f64(x)
    with np.errstate(all="ignore"):
        return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def softplus(x, beta=1.0, threshold=20.0):
    x = _f64(x)
    with np.errstate(all="ignore"):
        bx = x * beta
        # log1p(exp(bx)) without overflow: max(bx, 0) + log1p(exp(-|bx|))
        soft = (np.maximum(bx, 0.0) + np.log1p(np.exp(-np.abs(bx)))) / beta
        return np.where(bx > threshold, x, soft)


def softshrink(x, lambd=0.5):
    x = _f64(x)
    with np.errstate(all="ignore"):
        return np.where(x > lambd, x - lambd, np.where(x < -lambd, x + lambd, x * 0.0))


def softsign(x):
    x = _f64(x)
    with np.errstate(all="ignore"):
        return x / (1.0 + np.abs(x))


def silu(x):
    """``x * sigmoid(x)`` with the overflow-free sigmoid above: ``silu(-inf)`` is
    NaN (``-inf * 0``), as PyTorch's ``x / (1 + exp(-x))`` gives."""
    x = _f64(x)
    with np.errstate(all="ignore"):
        return x * sigmoid(x)


def hardswish(x, dtype=np.float64):
    """PyTorch's ``x * min(max(x + 3, 0), 6) / 6``: ``-0.0`` for negative x <= -3,
    NaN at -inf (``-inf * 0``), NaN stays NaN. PyTorch forms the product before
    dividing, in the element's precision ``dtype``: it overflows to inf for x above
    ``finfo(dtype).max / 6`` (``hardswish(float32 max)`` is inf)."""
    x = _f64(x)
    with np.errstate(all="ignore"):
        prod = x * np.minimum(np.maximum(x + 3.0, 0.0), 6.0)
        prod = np.where(np.abs(prod) > np.finfo(dtype).max, prod * np.inf, prod)
        return prod / 6.0


_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def gelu(x, approximate="none"):
    """``x * Phi(x)`` (``0.5 x erfc(-x / sqrt 2)``: no cancellation for x < 0), or
    with ``approximate='tanh'`` ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``
    (as ``x * sigmoid(2u)``, the same function without cancellation). Both are NaN
    at -inf (``-inf * 0``), as PyTorch's."""
    x = _f64(x)
    with np.errstate(all="ignore"):
        if approximate == "none":
            return 0.5 * x * _erfc(-x / math.sqrt(2.0))
        assert approximate == "tanh", approximate
        u = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
        return x * sigmoid(2.0 * u)


def mish(x):
    """``x tanh(softplus(x))``, softplus as ``logaddexp(0, x)`` (no overflow): NaN at
    -inf (``-inf * 0``), as PyTorch's."""
    x = _f64(x)
    with np.errstate(all="ignore"):
        return x * np.tanh(np.logaddexp(0.0, x))


def hardsigmoid(x):
    x = _f64(x)
    return np.minimum(np.maximum(x + 3.0, 0.0), 6.0) / 6.0


SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    x = _f64(x)
    with np.errstate(all="ignore"):
        return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(x))


def celu(x, alpha=1.0):
    x = _f64(x)
    with np.errstate(all="ignore"):
        return np.where(x > 0, x, alpha * np.expm1(x / alpha))


def hardshrink(x, lambd=0.5):
    """0 (``+0.0``) on the closed interval ``[-lambd, lambd]``, else x; NaN stays NaN."""
    x = _f64(x)
    return np.where((x >= -lambd) & (x <= lambd), 0.0, x)


def tanhshrink(x):
    x = _f64(x)
    return x - np.tanh(x)


# --------------------------------------------------------------------------- #
# pointwise losses: the unreduced loss of each (input, target) pair, as
# ``torch.nn.functional.<loss>(..., reduction='none')``
# --------------------------------------------------------------------------- #
def l1_loss(x, t):
    return np.abs(_f64(x) - _f64(t))


def mse_loss(x, t):
    return (_f64(x) - _f64(t)) ** 2


def smooth_l1_loss(x, t, beta=1.0):
    """``0.5 d^2 / beta if d < beta else d - 0.5 beta``; ``beta=0`` is the L1 loss."""
    d = np.abs(_f64(x) - _f64(t))
    if beta == 0:
        return d
    with np.errstate(all="ignore"):
        return np.where(d < beta, 0.5 * d * d / beta, d - 0.5 * beta)


def huber_loss(x, t, delta=1.0):
    """``0.5 d^2 if d < delta else delta (d - 0.5 delta)``."""
    d = np.abs(_f64(x) - _f64(t))
    with np.errstate(all="ignore"):
        return np.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))



def soft_margin_loss(x, t):
    """``log(1 + exp(-t x))`` (inf where PyTorch's ``exp`` overflows)."""
    with np.errstate(over="ignore"):
        return np.log1p(np.exp(-_f64(x) * _f64(t)))


def hinge_embedding_loss(x, t, margin=1.0):
    """``[t != 1] max(0, margin - x) + [t != -1] x``, PyTorch's formula for any target."""
    x, t = _f64(x), _f64(t)
    return np.where(t != 1, np.maximum(margin - x, 0.0), 0.0) + np.where(t != -1, x, 0.0)

# --------------------------------------------------------------------------- #
# row ops (softmax family): the op along ``axis``
# --------------------------------------------------------------------------- #
def _shifted_sum(x, axis):
    """z = x - max(x), s = sum(exp(z)) along ``axis`` (float64). NaN, an all -inf
    row and a row holding +inf make the whole row NaN, as PyTorch's, from the
    arithmetic itself (inf - inf, -inf - -inf)."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        z = x - np.max(x, axis=axis, keepdims=True)
        return z, np.sum(np.exp(z), axis=axis, keepdims=True)


def softmax(x, axis=-1):
    z, s = _shifted_sum(x, axis)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return np.exp(z) / s


def log_softmax(x, axis=-1):
    z, s = _shifted_sum(x, axis)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        return z - np.log(s)


def softmin(x, axis=-1):
    return softmax(-np.asarray(x, dtype=np.float64), axis)


# --------------------------------------------------------------------------- #
# looking a reference up
# --------------------------------------------------------------------------- #

PRELU_WEIGHT = 0.25


def reference(name):
    """The float64 reference function of op ``name``; a missing one fails the test."""
    f = globals().get(name)
    if not callable(f) or name.startswith("_"):
        raise AssertionError(f"tests/_reference.py has no float64 reference for op {name!r}: "
                             "add a function of that name")
    return f


def ref(name, x, **kw):
    """Reference result (float64) of op ``name`` on ``x`` with hyperparameters ``kw``
    (the op's required arguments included)."""
    f = reference(name)
    if name == "prelu":
        kw = dict(kw)
        w = kw.pop("weight", np.array([PRELU_WEIGHT]))
        return f(x, w)
    return f(x, **kw)


def result_dtype(dtype):
    """The dtype np.exp would give for an input of ``dtype`` (the nbops rule)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.dtype(np.float16)
    return np.result_type(np.exp(np.zeros(1, dtype=dtype)).dtype)


def expected(name, x, out_dtype=None, **kw):
    """Reference computed in float64 from the *given* input values, then rounded
    to the result dtype (so float32 overflow gives inf as it must)."""
    x = np.asarray(x)
    if out_dtype is None:
        out_dtype = result_dtype(x.dtype)
    if "dtype" in inspect.signature(reference(name)).parameters:
        # a reference that reproduces an overflow of PyTorch's intermediate result
        # takes the precision it is computed in (float16 results: float32)
        kw["dtype"] = np.float32 if np.dtype(out_dtype) == np.float16 else out_dtype
    r = ref(name, x.astype(np.float64), **kw)
    with np.errstate(all="ignore"):
        return np.asarray(r).astype(out_dtype)


# Tolerances against the float64 reference rounded to the result dtype.
def tolerances(name, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.float64:
        if name in EXACT_OPS:
            return dict(rtol=1e-15, atol=0.0)
        return dict(rtol=1e-12, atol=1e-15)
    if dtype == np.float32:
        if name in EXACT_OPS:
            # one float32 rounding of the hyperparameter and of the product
            return dict(rtol=1e-6, atol=1e-30)
        return dict(rtol=4e-6, atol=1e-7)
    if dtype == np.float16:
        return dict(rtol=2e-3, atol=1e-4)
    raise AssertionError(f"no tolerance for {dtype}")


def assert_matches(got, exp, rtol, atol, what=""):
    """Shape/dtype equal; NaN masks equal; +-inf equal; finite values close."""
    got = np.asarray(got)
    exp = np.asarray(exp)
    assert got.shape == exp.shape, f"{what}: shape {got.shape} != {exp.shape}"
    assert got.dtype == exp.dtype, f"{what}: dtype {got.dtype} != {exp.dtype}"
    gn, en = np.isnan(got), np.isnan(exp)
    assert np.array_equal(gn, en), (
        f"{what}: NaN positions differ: got NaN at {np.argwhere(gn & ~en).ravel()[:10]} "
        f"(not expected), missing NaN at {np.argwhere(en & ~gn).ravel()[:10]}"
    )
    gi, ei = np.isinf(got), np.isinf(exp)
    assert np.array_equal(gi, ei), (
        f"{what}: inf positions differ: got {got[gi | ei]} expected {exp[gi | ei]}")
    assert np.array_equal(got[gi], exp[ei]), f"{what}: inf signs differ"
    fin = np.isfinite(exp)
    np.testing.assert_allclose(
        got[fin].astype(np.float64), exp[fin].astype(np.float64), rtol=rtol, atol=atol, err_msg=what
    )


# --------------------------------------------------------------------------- #
# test data
# --------------------------------------------------------------------------- #


def special_values(dtype):
    """Extreme / special inputs for a float dtype."""
    dtype = np.dtype(dtype)
    fi = np.finfo(dtype)
    sub = np.nextafter(dtype.type(0), dtype.type(1))  # smallest subnormal
    vals = [
        0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 0.25, -0.25, 1.25, -1.25, 2.0, -2.0,
        5.999, 6.0, 6.001, 19.5, 20.0, 20.5, -20.0, 37.0, -37.0,
        88.0, -88.0, 100.0, -100.0, 1e4, -1e4,
        np.inf, -np.inf, np.nan, -np.nan,
        float(fi.max), -float(fi.max), float(fi.tiny), -float(fi.tiny), float(sub), -float(sub),
        1e-10, -1e-10, 1e-30, -1e-30,
    ]
    if dtype == np.float64:
        vals += [1000.0, -1000.0, 700.0, -700.0, 750.0, -750.0, 1e300, -1e300]
    return np.array(vals, dtype=dtype)


def random_data(shape, dtype, seed=0, scale=4.0):
    """Normal data with scale ``scale`` (covers every branch of every op)."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * scale).astype(dtype)
