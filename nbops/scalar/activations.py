"""Scalar cores of the elementwise activations: the single source of their math.

Each core is a plain function of one element (plus hyperparameters of the same
float type), compiled inline into nbops' CPU kernels, into the functions that
make ``nbops.<op>`` work inside ``@njit`` code, and (with ``cuda.jit``) into
the CUDA kernels. They are public: call them in your own Numba loops to fuse
several ops into one pass::

    from numba import njit, prange
    from nbops import scalar

    @njit(parallel=True)
    def fused(x, out):
        for i in prange(x.size):
            out[i] = scalar.tanh(scalar.leaky_relu(x[i], 0.1))

Hyperparameters should have the element's float type (a float64 literal next
to a float32 element computes in float64).
"""

from .._config import core
from ._math import const, exp, expm1, log1p_unit
from ._math import tanh as _tanh

__all__ = ["relu", "relu6", "elu", "prelu", "leaky_relu", "threshold", "hardtanh",
           "sigmoid", "tanh", "logsigmoid", "softplus", "softshrink", "softsign"]


@core
def relu(x):
    """max(x, 0); NaN stays NaN and -0.0 stays -0.0 (as PyTorch)."""
    return const(x, 0.0) if x < 0 else x


@core
def hardtanh(x, min_val, max_val):
    """min(max(x, min_val), max_val); NaN stays NaN."""
    if x < min_val:
        return min_val
    if x > max_val:
        return max_val
    return x


@core
def relu6(x):
    """min(max(x, 0), 6)."""
    return hardtanh(x, const(x, 0.0), const(x, 6.0))


@core
def elu(x, alpha):
    """x if x > 0 else alpha * (exp(x) - 1)."""
    return x if x > 0 else alpha * expm1(x)


@core
def leaky_relu(x, negative_slope):
    """x if x > 0 else negative_slope * x."""
    return x if x > 0 else x * negative_slope


@core
def prelu(x, weight):
    """x if x >= 0 else weight * x (``weight`` is the channel's slope)."""
    return x if x >= 0 else x * weight


@core
def threshold(x, threshold, value):
    """x if x > threshold else value; NaN stays NaN."""
    return value if x <= threshold else x


@core
def sigmoid(x):
    """1 / (1 + exp(-x))."""
    one = const(x, 1.0)
    return one / (one + exp(-x))


@core
def tanh(x):
    """Hyperbolic tangent."""
    return _tanh(x)


@core
def softplus(x, beta, threshold):
    """log(1 + exp(beta * x)) / beta, or x where beta * x > threshold.

    Computed as (max(z, 0) + log1p(exp(-|z|))) / beta with z = beta * x, which
    never overflows.
    """
    z = x * beta
    if z > threshold:
        return x
    zpos = z if z > 0 else const(x, 0.0)
    return (zpos + log1p_unit(exp(-abs(z)))) / beta


@core
def logsigmoid(x):
    """log(1 / (1 + exp(-x))) = min(x, 0) - log1p(exp(-|x|)), stable for any x."""
    xneg = x if x < 0 else const(x, 0.0)
    return xneg - log1p_unit(exp(-abs(x)))


@core
def softshrink(x, lambd):
    """x - lambd if x > lambd; x + lambd if x < -lambd; else 0."""
    if x > lambd:
        return x - lambd
    if x < -lambd:
        return x + lambd
    return x * const(x, 0.0)  # keeps the sign of zero and NaN, as PyTorch


@core
def softsign(x):
    """x / (1 + |x|)."""
    return x / (const(x, 1.0) + abs(x))
