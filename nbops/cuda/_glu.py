"""CUDA kernels of ``nbops.glu``, ``nbops.rrelu`` and ``nbops.gumbel_softmax`` and their
backwards (the CPU paths: nbops/_ops/glu.py, nbops/_ops/rrelu.py, nbops/_ops/gumbel.py).

* glu: one thread per output element (grid-stride): ``o = k // half``,
  ``a = x[2 o half + k % half]``, ``b`` ``half`` values further; the backward
  writes both halves of ``grad_input`` for its element.
* rrelu (training) and the Gumbel noise: one thread per Philox block of four
  elements, the CPU's counter/lane scheme (nbops/scalar/random.py) under the
  key the CPU path derives from the seed, so a seed gives the same slopes and
  the same noise here as on the CPU. rrelu in evaluation is ``leaky_relu``'s
  map kernel with the mean slope.
* gumbel_softmax: the noise kernel into ``(logits + G) / tau``, then the
  softmax row kernels of nbops/cuda/_kernels.py (and their backward); ``hard``
  picks the first maximum along the axis, one thread per ``(outer, inner)``
  position.

All arrays here must be C-contiguous on the device (a non-contiguous one
raises ``ValueError``), of one float dtype.
"""

import numpy as np
from numba import cuda

from .._ops import glu as G
from .._ops import gumbel as GS
from .._ops import plan as P
from .._ops import rrelu as RR
from .._ops.activation import LEAKY_RELU
from .._ops.dropout import _check_seed
from ..scalar import activations as S
from ..scalar import rows as R
from ..scalar.random import philox4x32_10
from . import _kernels as K
from ._core import TPB, device
from ._ops import binary, cflat, check_out, dev, float_dtype, unary

_rrelu_core = device(S.rrelu)
_rrelu_grad = device(S.rrelu_backward)
_glu_value = device(G.glu_value)
_glu_grads = device(G.glu_grads)
_gumbel_add = device(GS.gumbel_add)
_philox = device(philox4x32_10)
_LO32 = np.uint64(0xFFFFFFFF)
_SH32 = np.uint64(32)
_Z32 = np.uint32(0)
_WORD = 2.0 ** -32


# ------------------------------------------------------------------ kernels
@cuda.jit
def _glu_kernel(x, out, half):
    """out[k] = a * sigmoid(b) over the flat (O, H, I) output (``half`` = H * I)."""
    for k in range(cuda.grid(1), out.size, cuda.gridsize(1)):
        j = 2 * (k // half) * half + k % half
        out[k] = _glu_value(x[j], x[j + half])


@cuda.jit
def _glu_grad_kernel(g, x, out, half):
    """grad_a = s * g, grad_b = (1 - s) * s * a * g with s = sigmoid(b)."""
    for k in range(cuda.grid(1), g.size, cuda.gridsize(1)):
        j = 2 * (k // half) * half + k % half
        ga, gb = _glu_grads(g[k], x[j], x[j + half])
        out[j] = ga
        out[j + half] = gb


@cuda.jit(device=True)
def _word(r0, r1, r2, r3, q):
    r = r0
    if q == 1:
        r = r1
    elif q == 2:
        r = r2
    elif q == 3:
        r = r3
    return r


@cuda.jit
def _rrelu_kernel(x, g, out, backward, k0, k1, lower, span):
    """rrelu (``backward`` False) or its gradient ``g * slope`` where x <= 0 (True),
    element i's slope from word i % 4 of Philox block i // 4."""
    n = out.size
    for j in range(cuda.grid(1), (n + 3) // 4, cuda.gridsize(1)):
        b = np.uint64(j)
        r0, r1, r2, r3 = _philox(b & _LO32, b >> _SH32, _Z32, _Z32, k0, k1)
        for q in range(4):
            i = 4 * j + q
            if i < n:
                s = lower + span * (np.float64(_word(r0, r1, r2, r3, q)) * _WORD)
                if backward:
                    out[i] = _rrelu_grad(g[i], x[i], s)
                else:
                    out[i] = _rrelu_core(x[i], s)


@cuda.jit
def _gumbel_kernel(x, out, k0, k1, tau):
    """out[i] = (x[i] + G_i) / tau, G_i from word i % 4 of Philox block i // 4."""
    n = out.size
    for j in range(cuda.grid(1), (n + 3) // 4, cuda.gridsize(1)):
        b = np.uint64(j)
        r0, r1, r2, r3 = _philox(b & _LO32, b >> _SH32, _Z32, _Z32, k0, k1)
        for q in range(4):
            i = 4 * j + q
            if i < n:
                out[i] = _gumbel_add(x[i], _word(r0, r1, r2, r3, q), tau)


@cuda.jit
def _div_kernel(x, d):
    for i in range(cuda.grid(1), x.size, cuda.gridsize(1)):
        x[i] = x[i] / d


@cuda.jit
def _hard_kernel(y, out, O, C, I, one):
    """out = (one-hot of the first maximum along C - y) + y in y's dtype (``one``: 1 of
    it), one thread per (o, i)."""
    for u in range(cuda.grid(1), O * I, cuda.gridsize(1)):
        base = (u // I) * C * I + u % I
        best = 0
        for c in range(1, C):
            if y[base + c * I] > y[base + best * I]:
                best = c
        for c in range(C):
            v = y[base + c * I]
            h = one - one
            if c == best:
                h = one
            out[base + c * I] = (h - v) + v


# ------------------------------------------------------------------ glu
def _same(a, dt, name):
    if np.dtype(a.dtype) != dt:
        raise TypeError(f"{name}: dtype {a.dtype} differs from {dt} (CUDA arrays of one call "
                        "must share their float dtype)")


def glu(input, axis=-1, *, dim=None, out=None):
    x = dev(input)
    dt = float_dtype(x)
    _, O, H, I, out_shape = G.glu_plan(tuple(x.shape), axis, dim)
    dest = check_out(out, out_shape, dt, x) if out is not None else \
        cuda.device_array(out_shape, dt)
    if dest.size:
        _glu_kernel[K.grid(dest.size), TPB](cflat(x), cflat(dest, "out"), np.int64(H * I))
    return dest


def glu_backward(grad_output, input, axis=-1, *, dim=None, out=None):
    g = dev(grad_output, "grad_output")
    x = dev(input)
    dt = float_dtype(g, "grad_output")
    _same(x, dt, "input")
    ax, O, H, I, out_shape = G.glu_plan(tuple(x.shape), axis, dim)
    if tuple(g.shape) != out_shape:
        raise ValueError(f"grad_output has shape {tuple(g.shape)} but the forward's output has "
                         f"shape {out_shape} (input {tuple(x.shape)} halved along axis {ax})")
    dest = check_out(out, x.shape, dt, x) if out is not None else \
        cuda.device_array(x.shape, dt)
    if g.size:
        _glu_grad_kernel[K.grid(g.size), TPB](cflat(g, "grad_output"), cflat(x),
                                              cflat(dest, "out"), np.int64(H * I))
    return dest


# ------------------------------------------------------------------ rrelu
def rrelu(input, lower, upper, training, inplace, *, rng=None, out=None):
    lower, upper = RR._bounds(lower, upper)
    x = dev(input)
    dt = float_dtype(x)
    if not training:
        return unary(LEAKY_RELU.op, x, ((lower + upper) / 2,), inplace, out)
    if inplace:
        if out is not None:
            raise ValueError("out= and inplace=True cannot be used together")
        dest = x
    elif out is not None:
        dest = check_out(out, x.shape, dt, x)
    else:
        dest = cuda.device_array(x.shape, dt)
    if x.size == 0:
        return dest
    key = P.dropout_key(rng)
    xf = cflat(x)
    _rrelu_kernel[K.grid((x.size + 3) // 4), TPB](xf, xf, cflat(dest, "out"), False, key[0],
                                                   key[1], lower, upper - lower)
    return dest


def rrelu_backward(grad_output, input, lower, upper, training, *, rng=None, out=None):
    lower, upper = RR._bounds(lower, upper)
    if not training or upper - lower <= RR.NOISE_SPAN:
        return binary(LEAKY_RELU.backward_op, grad_output, input, "input",
                      ((lower + upper) / 2,), out)
    _check_seed(rng)
    g = dev(grad_output, "grad_output")
    x = dev(input)
    dt = float_dtype(g, "grad_output")
    _same(x, dt, "input")
    if tuple(g.shape) != tuple(x.shape):
        raise ValueError(f"grad_output has shape {tuple(g.shape)} but input has shape "
                         f"{tuple(x.shape)}: they must be the same")
    dest = check_out(out, x.shape, dt, x) if out is not None else \
        cuda.device_array(x.shape, dt)
    if x.size:
        key = P.dropout_key(rng)
        _rrelu_kernel[K.grid((x.size + 3) // 4), TPB](cflat(x), cflat(g, "grad_output"),
                                                       cflat(dest, "out"), True, key[0],
                                                       key[1], lower, upper - lower)
    return dest


# ------------------------------------------------------------------ gumbel_softmax
def _soft(x, dt, O, C, I, key, tau):
    """y_soft = softmax((x + G) / tau) along C, a new C-contiguous device array."""
    y = cuda.device_array(x.shape, dt)
    yf = cflat(y, "out")
    _gumbel_kernel[K.grid((x.size + 3) // 4), TPB](cflat(x, "logits"), yf, key[0], key[1],
                                                   tau)
    K.run_row_op(R.SOFTMAX, yf, yf, O, C, I, 1)
    return y


def gumbel_softmax(logits, tau, hard, eps, axis, *, dim=None, rng=None, out=None):
    tau = GS._check_args(tau, eps, 3)
    x = dev(logits, "logits")
    dt = float_dtype(x, "logits")
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension")
    _, O, C, I = P.axis_plan(tuple(x.shape), axis, dim)
    if out is not None:
        out = check_out(out, x.shape, dt, x)
    if x.size == 0:
        return out if out is not None else cuda.device_array(x.shape, dt)
    y = _soft(x, dt, O, C, I, P.dropout_key(rng), tau)
    if hard:
        dest = out if out is not None else cuda.device_array(x.shape, dt)
        _hard_kernel[K.grid(O * I), TPB](cflat(y), cflat(dest, "out"), np.int64(O),
                                         np.int64(C), np.int64(I), dt.type(1))
        return dest
    if out is not None:
        out.copy_to_device(y)
        return out
    return y


def gumbel_softmax_backward(grad_output, logits, tau, hard, eps, axis, *, dim=None, rng=None,
                            y_soft=None, out=None):
    tau = GS._check_args(tau, eps, 3)
    if y_soft is None:
        _check_seed(rng)
    g = dev(grad_output, "grad_output")
    x = dev(logits, "logits")
    dt = float_dtype(g, "grad_output")
    _same(x, dt, "logits")
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension")
    if tuple(g.shape) != tuple(x.shape):
        raise ValueError(f"grad_output has shape {tuple(g.shape)} but logits has shape "
                         f"{tuple(x.shape)}: they must be the same")
    _, O, C, I = P.axis_plan(tuple(x.shape), axis, dim)
    dest = check_out(out, x.shape, dt, x) if out is not None else \
        cuda.device_array(x.shape, dt)
    if x.size == 0:
        return dest
    if y_soft is None:
        y = _soft(x, dt, O, C, I, P.dropout_key(rng), tau)
    else:
        y = dev(y_soft, "y_soft")
        _same(y, dt, "y_soft")
        if tuple(y.shape) != tuple(x.shape):
            raise ValueError(f"y_soft has shape {tuple(y.shape)} but logits has shape "
                             f"{tuple(x.shape)}: they must be the same")
    df = cflat(dest, "out")
    K.run_row_grad(R.SOFTMAX, cflat(g, "grad_output"), cflat(y), df, O, C, I, 1)
    _div_kernel[K.grid(df.size), TPB](df, dt.type(tau))
    return dest

