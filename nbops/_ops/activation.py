"""Elementwise activations: ``nbops.relu``, ``nbops.sigmoid``, ...

Each op is one entry of the op table (:mod:`nbops._ops.table`, whose docstring
walks through adding one): its scalar core from :mod:`nbops.scalar.activations`,
its parameters and checks, its ``nbops.nn`` module and its documentation. The
table generates the public function (which validates its arguments once, then
runs the shared elementwise kernels of :mod:`nbops._ops.elementwise`), the
``@overload`` that makes the same name work inside a user's ``@njit`` code, and
the plain ``nbops.nn`` classes. ``prelu`` (a weight per channel) is written by
hand at the bottom of this file.

Common rules (see docs/guides/semantics.rst):

* float32 stays float32, float64 stays float64; other real dtypes promote as
  ``np.exp`` would (ints to float64, int16 to float32, bool/int8/uint8 to
  float16); complex input raises ``TypeError``.
* ``out=``: an array of exactly the result's shape and dtype to write into.
* ``inplace=True`` (where PyTorch has it): write into ``input`` and return it.
"""

import math

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload, register_jitable

from .. import _config, _memory
from .._launch import launch
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    deliver,
    is_dask_array,
    is_device_array,
    overlaps,
    overlaps_differently,
    result_dtype,
)
from ..cuda import ops as _cuda
from ..scalar import activations as S
from ..scalar._math import as_float, const
from ..scalar.rows import row_view
from . import table
from .elementwise import _float_array, flat_as, map_njit, unary
from .table import Check, Module, Param

RELU = table.elementwise(
    "relu", S.relu, inplace=True, residual="output",
    backward=S.relu_backward,
    module=Module("ReLU", "``max(0, x)`` element-wise", """
        >>> nbops.nn.ReLU()(np.array([-1.0, 2.0], np.float32))
        array([0., 2.], dtype=float32)"""),
    summary=r"Rectified linear unit, :math:`\max(x, 0)`.",
    notes="""Same as ``torch.nn.functional.relu``: NaN stays NaN and ``-0.0`` stays
        ``-0.0``.""",
    example="""
        >>> import numpy as np, nbops
        >>> nbops.relu(np.array([-1.0, 0.5, 2.0], dtype=np.float32))
        array([0. , 0.5, 2. ], dtype=float32)""")

RELU6 = table.elementwise(
    "relu6", S.relu6, inplace=True, module="ReLU6", plot_range=(-2.0, 8.0),
    backward=S.relu6_backward,
    summary=r":math:`\min(\max(x, 0), 6)`.",
    notes="""Same as ``torch.nn.functional.relu6`` (that is, ``hardtanh(x, 0, 6)``):
        NaN stays NaN.""",
    example="""
        >>> nbops.relu6(np.array([-1.0, 3.0, 9.0]))
        array([0., 3., 6.])""")

ELU = table.elementwise(
    "elu", S.elu, (Param("alpha", 1.0, "Scale of the negative part.", example=1.5),),
    inplace=True,
    backward=S.elu_backward,
    module=Module("ELU", "``x if x > 0 else alpha * (exp(x) - 1)``", """
        >>> nbops.nn.ELU()(np.array([1.0, -1e9], np.float32))
        array([ 1., -1.], dtype=float32)"""),
    summary=r"""Exponential linear unit: :math:`x` if :math:`x > 0`, else :math:`\alpha (e^x - 1)`.

        ``e^x - 1`` is computed as ``expm1`` (accurate near 0).""",
    notes="Same as ``torch.nn.functional.elu``; NaN stays NaN, ``elu(-inf) == -alpha``.",
    example="""
        >>> nbops.elu(np.array([-1.0, 0.0, 2.0]), alpha=2.0)
        array([-1.26424112,  0.        ,  2.        ])""")

LEAKY_RELU = table.elementwise(
    "leaky_relu", S.leaky_relu,
    (Param("negative_slope", 0.01, r"Slope for :math:`x \le 0`.", example=0.125),), inplace=True,
    backward=S.leaky_relu_backward,
    module=Module("LeakyReLU", "``x if x >= 0 else negative_slope * x``", """
        >>> nbops.nn.LeakyReLU(0.1)(np.array([-2.0, 2.0], np.float32))
        array([-0.2,  2. ], dtype=float32)""", inplace_output_if="self.negative_slope >= 0"),
    summary=r":math:`x` if :math:`x > 0`, else ``negative_slope`` :math:`\cdot x`.",
    notes="Same as ``torch.nn.functional.leaky_relu``; NaN stays NaN.",
    example="""
        >>> nbops.leaky_relu(np.array([-2.0, 3.0]), 0.1)
        array([-0.2,  3. ])""")

THRESHOLD = table.elementwise(
    "threshold", S.threshold,
    (Param("threshold", doc=r"Elements :math:`\le` ``threshold`` are replaced.", example=0.5),
     Param("value", doc="The replacement.", example=-2.0)),
    inplace=True,
    backward=S.threshold_backward,
    module=Module("Threshold", "``y = x if x > threshold else value``", """
        >>> m = nbops.nn.Threshold(0.1, 20)
        >>> m(np.array([0.0, 0.5], np.float32))
        array([20. ,  0.5], dtype=float32)"""),
    summary=r":math:`x` if :math:`x >` ``threshold``, else ``value`` (NaN stays NaN, as PyTorch).",
    notes="""Same as ``torch.nn.functional.threshold``: the test is ``x <= threshold``,
        so NaN (for which it is false) is kept.""",
    example="""
        >>> nbops.threshold(np.array([0.1, 0.5, 0.9]), 0.5, -1.0)
        array([-1. , -1. ,  0.9])""")

HARDTANH = table.elementwise(
    "hardtanh", S.hardtanh,
    (Param("min_val", -1.0, "The lower clamp bound.", example=-0.5),
     Param("max_val", 1.0, "The upper clamp bound (``min_val <= max_val``).", example=2.0)),
    inplace=True, backward=S.hardtanh_backward, module="Hardtanh",
    checks=(Check("min_val > max_val",
                  "min_val ({min_val}) cannot be greater than max_val ({max_val})",
                  "min_val cannot be greater than max_val"),),
    summary=r""":math:`\min(\max(x, \mathrm{min\_val}), \mathrm{max\_val})`; NaN stays NaN.

        Raises ``ValueError`` if ``min_val > max_val``.""",
    notes="""Same as ``torch.nn.functional.hardtanh``, including the ``ValueError``
        for ``min_val > max_val``; NaN stays NaN.""",
    example="""
        >>> nbops.hardtanh(np.array([-3.0, 0.2, 3.0]))
        array([-1. ,  0.2,  1. ])""")

SIGMOID = table.elementwise(
    "sigmoid", S.sigmoid, residual="output",
    backward=S.sigmoid_backward,
    module=Module("Sigmoid", "``1 / (1 + exp(-x))``", """
        >>> nbops.nn.Sigmoid()(np.array([0.0], np.float32))
        array([0.5], dtype=float32)"""),
    summary=r"Logistic function :math:`1 / (1 + e^{-x})`.",
    notes="""Same as ``torch.sigmoid`` (``torch.nn.functional.sigmoid``), within 2 ulp
        (nbops' vectorizable ``exp``): 0 at ``-inf``, 1 at ``inf``, NaN stays NaN.
        No ``inplace`` (PyTorch's functional has none).""",
    example="""
        >>> nbops.sigmoid(np.array([0.0, 2.0]))
        array([0.5       , 0.88079708])""")

TANH = table.elementwise(
    "tanh", S.tanh, residual="output",
    backward=S.tanh_backward,
    module=Module("Tanh", "Hyperbolic tangent", """
        >>> nbops.nn.Tanh()(np.array([0.0], np.float32))
        array([0.], dtype=float32)"""),
    summary=r"Hyperbolic tangent :math:`\tanh x`.",
    notes="Same as ``torch.tanh``, within 2 ulp (a vectorizable ``tanh``); NaN stays NaN.",
    example="""
        >>> nbops.tanh(np.array([0.0, 1.0]))
        array([0.        , 0.76159416])""")

LOGSIGMOID = table.elementwise(
    "logsigmoid", S.logsigmoid,
    backward=S.logsigmoid_backward,
    module=Module("LogSigmoid", "``log(sigmoid(x))``, computed stably", """
        >>> nbops.nn.LogSigmoid()(np.array([0.0], np.float32))
        array([-0.6931472], dtype=float32)"""),
    summary=r""":math:`\log(1 / (1 + e^{-x}))`, computed as :math:`\min(x, 0) - \log(1 + e^{-|x|})`.

        Stable for any :math:`x`: never overflows, ``logsigmoid(-1e4) == -1e4``.""",
    notes="""Same as ``torch.nn.functional.logsigmoid``, which is also computed in the
        stable form; ``logsigmoid(inf) == 0``, NaN stays NaN.""",
    example="""
        >>> nbops.logsigmoid(np.array([-1000.0, 0.0, 1000.0]))
        array([-1.00000000e+03, -6.93147181e-01,  0.00000000e+00])""")

SOFTPLUS = table.elementwise(
    "softplus", S.softplus,
    (Param("beta", 1.0, r":math:`\beta`.", example=2.0),
     Param("threshold", 20.0, r"Where :math:`\beta x` exceeds it, the result is :math:`x` itself.",
       example=10.0)),
    backward=S.softplus_backward,
    module=Module("Softplus",
                  "``log(1 + exp(beta * x)) / beta``, linear above ``threshold``", """
        >>> nbops.nn.Softplus()(np.array([0.0, 30.0], np.float32))
        array([ 0.6931472, 30.       ], dtype=float32)"""),
    summary=r""":math:`\frac{1}{\beta} \log(1 + e^{\beta x})`, """
            r"""or :math:`x` where :math:`\beta x >` ``threshold``.

        Computed as :math:`(\max(z, 0) + \log(1 + e^{-|z|})) / \beta` with
        :math:`z = \beta x`: no overflow for any ``threshold``.""",
    notes="""Same as ``torch.nn.functional.softplus``: the threshold applies to
        :math:`\beta x`, not :math:`x` (see the semantics guide). No ``inplace``.""",
    example="""
        >>> nbops.softplus(np.array([-1.0, 0.0, 30.0]))
        array([ 0.31326169,  0.69314718, 30.        ])""")

SOFTSHRINK = table.elementwise(
    "softshrink", S.softshrink, (Param("lambd", 0.5, r":math:`\lambda \ge 0`.", example=1.25),),
    checks=(Check("not lambd >= 0", "lambd must be >= 0, got {lambd}", "lambd must be >= 0"),),
    backward=S.softshrink_backward,
    module=Module("Softshrink", "Shrink towards 0 by ``lambd``", """
        >>> nbops.nn.Softshrink()(np.array([-1.0, 0.2, 1.0], np.float32))
        array([-0.5,  0. ,  0.5], dtype=float32)""", repr="{lambd}"),
    summary=r""":math:`x - \lambda` if :math:`x > \lambda`, """
            r""":math:`x + \lambda` if :math:`x < -\lambda`, else 0.

        Raises ``ValueError`` if ``lambd < 0``.""",
    notes="""Same as ``torch.nn.functional.softshrink``: the zero keeps the sign of
        ``x`` and NaN stays NaN.""",
    example="""
        >>> nbops.softshrink(np.array([-1.0, 0.2, 1.0]))
        array([-0.5,  0. ,  0.5])""")

SOFTSIGN = table.elementwise(
    "softsign", S.softsign,
    backward=S.softsign_backward,
    module=Module("Softsign", "``x / (1 + |x|)``", """
        >>> nbops.nn.Softsign()(np.array([1.0], np.float32))
        array([0.5], dtype=float32)"""),
    summary=r":math:`x / (1 + |x|)`.",
    notes=r"""Same as ``torch.nn.functional.softsign``, computed as PyTorch computes it:
        ``softsign(±inf)`` is NaN (:math:`\infty / \infty`), and NaN stays NaN.""",
    example="""
        >>> nbops.softsign(np.array([-3.0, 1.0]))
        array([-0.75,  0.5 ])""")


# ---------------------------------------------------------------- prelu
#: Channel runs (``prod(shape[2:])``) shorter than this are mapped a whole batch
#: row at a time, with the weights repeated per position (:func:`_prelu_weights`).
_PRELU_PER_POSITION = 64
#: Target number of elements per task of :func:`_prelu`.
_PRELU_TASK = 16384


def _prelu(x, weight, out, length, per_position):
    """``out = prelu(x)`` of the flat (N, C, inner) ``x``, in tasks of whole rows.

    ``per_position`` True: a row is one batch row (``length = C * inner``
    values) and ``weight`` holds each position's weight (the channel weights
    repeated ``inner`` times); None: a row is one (n, c) run of ``length =
    inner`` values, all of channel ``row % C`` (``weight``: one per channel).
    (Resolved when Numba compiles. Both loops run over views of the row, from
    0: indexing ``row * inner + j`` kept LLVM from vectorizing, and an (N, C)
    input took one prange iteration per element, about 30 times the cost of
    the elementwise map.)
    """
    channels = weight.size
    n_rows = x.size // length
    per = np.maximum(1, _PRELU_TASK // length)
    for t in prange((n_rows + per - 1) // per):
        r0 = t * per
        r1 = np.minimum(n_rows, r0 + per)
        for row in range(r0, r1):
            xs = row_view(x, row * length, length)
            os = row_view(out, row * length, length)
            if per_position is not None:
                for j in range(length):
                    os[j] = S.prelu(xs[j], weight[j])
            else:
                w = weight[row % channels]
                for j in range(length):
                    os[j] = S.prelu(xs[j], w)


_prelu_serial, _prelu_parallel = _config.kernels(_prelu)


def _launch_prelu(x, w, res, inner):
    """:func:`_prelu` on the flat C-contiguous ``x`` into ``res`` (``w``: the C
    weights, of ``x``'s dtype, contiguous)."""
    if inner < _PRELU_PER_POSITION:
        wrow = w if inner == 1 else np.repeat(w, inner)
        launch(_prelu_serial, _prelu_parallel, ("prelu", x.dtype.char, True), x.size, x, wrow,
               res, w.size * inner, True)
    else:
        launch(_prelu_serial, _prelu_parallel, ("prelu", x.dtype.char, False), x.size, x, w,
               res, inner, None)


def prelu(input, weight, *, out=None):
    r""":math:`x` if :math:`x \ge 0`, else :math:`w_c x` with a learned slope per channel.

    Parameters
    ----------
    input : array_like
        Shape ``(N, C, *)``; the channel axis is axis 1. For ``input.ndim < 2``
        there is one channel.
    weight : array_like
        1-D with 1 element (shared) or ``C`` elements (one per channel).
    out : ndarray, optional

    Returns
    -------
    ndarray
        Same shape as ``input``; float32 stays float32.

    Notes
    -----
    Same as ``torch.nn.functional.prelu``: :math:`x` if :math:`x \ge 0`,
    else :math:`w_c x` with :math:`c` the element's channel; NaN stays NaN.

    Examples
    --------
    >>> nbops.prelu(np.array([[-1.0, -1.0], [2.0, -4.0]]), np.array([0.1, 0.5]))
    array([[-0.1, -0.5],
           [ 2. , -2. ]])
    """
    if (type(input) is np.ndarray and type(weight) is np.ndarray and weight.size == 1
            and weight.ndim == 1 and weight.dtype.char in "fd"):
        # one shared slope, checked: the unary op (its fast path), first
        return unary(_PRELU, input, (weight.item(),), False, out)
    if type(input) is not np.ndarray and is_device_array(input):
        return _cuda().prelu(input, weight=weight, out=out)
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().prelu(input, weight, out=out)
    x = input if type(input) is np.ndarray else as_array(input)
    if (out is None and type(weight) is np.ndarray and x.dtype == weight.dtype
            and x.dtype.char in "fd" and x.ndim >= 2 and weight.ndim == 1
            and weight.size == x.shape[1] > 1 and x.flags.c_contiguous
            and weight.flags.c_contiguous):  # the common per-channel call, checked
        res = _memory.empty(x.shape, x.dtype)
        if x.size:
            _launch_prelu(x.reshape(-1), weight, res.reshape(-1), math.prod(x.shape[2:]))
        return res
    if (type(weight) is np.ndarray and weight.ndim == 1 and weight.size == 1
            and weight.dtype.char in "fd"):  # one shared slope, checked: the unary op
        return unary(_PRELU, x, (float(weight[0]),), False, out)
    w = as_array(weight, "weight")
    compute, result = result_dtype(x.dtype)
    result_dtype(w.dtype, "weight")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.ndim > 1 or w.size not in (1, channels):
        raise ValueError(f"weight must be 1-D with 1 or {channels} (the number of channels, "
                         f"input.shape[1]) elements, got shape {w.shape}")
    if w.size == 1:
        return unary(_PRELU, x, (float(w.reshape(-1)[0]),), False, out)
    if out is not None:
        check_out(out, x.shape, result)
    src = np.ascontiguousarray(x, dtype=compute)
    wc = np.ascontiguousarray(w.reshape(-1), dtype=compute)
    res = out if (out is not None and out.dtype == compute and out.flags.c_contiguous
                  and not overlaps(out, src, wc)) else _memory.empty(x.shape, compute)
    inner = max(1, math.prod(x.shape[2:]))
    if src.size:
        _launch_prelu(src.reshape(-1), wc, res.reshape(-1), inner)
    if out is None:
        return res if result == compute else res.astype(result)
    if res is not out:
        np.copyto(out, res, casting="unsafe")
    return out


# ---------------------------------------------------------------- prelu's backward
#: Elements per partial sum of prelu's weight gradient: the chunks, hence the
#: partials and their (serial, in order) sum, do not depend on the thread count.
PRELU_GRAD_CHUNK = 16384


#: Float64 accumulators per run of one channel (their order of addition is fixed).
_LANES = 8


def _prelu_grad(g, x, w, gi, partial, inner, per):
    """gi = prelu's input gradient; partial[u, c] (flat, float64) = the weight
    gradient's terms of chunk u for channel c (C = w.size).

    inner is None (an (N, C) array, C > 1; None is resolved when compiling, so
    each path compiles alone): chunk u is the rows u * per ... (of length C),
    added into one float64 accumulator per channel. Otherwise
    chunk u is the elements u * per ... (per = PRELU_GRAD_CHUNK), cut into runs
    of one channel (rows of ``inner`` elements, channel row % C), each run
    added into _LANES float64 accumulators (element j into lane j % _LANES).
    No fast-math: every addition is made in the order written, so the serial and
    the parallel kernel give the same bits.
    """
    C = w.size
    n = x.size
    U = partial.size // C
    if inner is None:
        rows = n // C
        for u in prange(U):
            p = row_view(partial, u * C, C)
            for c in range(C):
                p[c] = 0.0
            for r in range(u * per, min(rows, (u + 1) * per)):
                gr = row_view(g, r * C, C)
                xr = row_view(x, r * C, C)
                ir = row_view(gi, r * C, C)
                for c in range(C):
                    ir[c] = S.prelu_backward(gr[c], xr[c], w[c])
                    p[c] += S.prelu_weight_backward(gr[c], xr[c])
    else:
        for u in prange(U):
            p = row_view(partial, u * C, C)
            for c in range(C):
                p[c] = 0.0
            acc = np.empty(_LANES, np.float64)
            pos = u * per
            end = min(n, pos + per)
            while pos < end:
                r = pos // inner
                stop = min(end, (r + 1) * inner)
                c = r % C
                wc = w[c]
                m = stop - pos
                gb = row_view(g, pos, m)
                xb = row_view(x, pos, m)
                ib = row_view(gi, pos, m)
                for k in range(_LANES):
                    acc[k] = 0.0
                full = m - m % _LANES
                for j0 in range(0, full, _LANES):
                    for k in range(_LANES):
                        ib[j0 + k] = S.prelu_backward(gb[j0 + k], xb[j0 + k], wc)
                        acc[k] += S.prelu_weight_backward(gb[j0 + k], xb[j0 + k])
                for j in range(full, m):
                    ib[j] = S.prelu_backward(gb[j], xb[j], wc)
                    acc[0] += S.prelu_weight_backward(gb[j], xb[j])
                total = 0.0
                for k in range(_LANES):
                    total += acc[k]
                p[c] += total
                pos = stop


_prelu_grad_serial, _prelu_grad_parallel = _config.kernels(_prelu_grad)


@register_jitable
def prelu_grad_plan(shape, weight_size):
    """(inner, per, chunks) of prelu's backward on an input of ``shape`` with
    ``weight_size`` weights (see :func:`_prelu_grad`; also inside ``@njit``)."""
    n = 1
    inner = 1
    for k in range(len(shape)):
        n *= shape[k]
        if k >= 2:
            inner *= shape[k]
    C = weight_size
    if C == 1:  # one weight: every element is of its channel
        inner = max(n, 1)
    if inner == 1 and C > 1:
        per = max(1, PRELU_GRAD_CHUNK // C)
        chunks = (n // C + per - 1) // per
    else:
        per = PRELU_GRAD_CHUNK
        chunks = (n + per - 1) // per
    return inner, per, max(chunks, 1)


def _prelu_weight_check(x_shape, w):
    channels = x_shape[1] if len(x_shape) >= 2 else 1
    if w.ndim > 1 or w.size not in (1, channels):
        raise ValueError(f"weight must be 1-D with 1 or {channels} (the number of channels, "
                         f"input.shape[1]) elements, got shape {w.shape}")


def prelu_backward(grad_output, input, weight, *, out=None):
    r"""Backward of :func:`nbops.prelu`: the gradients of its input and its weight.

    Parameters
    ----------
    grad_output : array_like
        The gradient of the forward's output: a float array of ``input``'s shape.
    input : array_like
        The forward's input, shape ``(N, C, *)`` (any shape with one weight).
    weight : array_like
        The forward's weight: 1-D with 1 element (shared) or ``C`` elements.
    out : tuple of two ndarray or None, optional
        Arrays to write ``(grad_input, grad_weight)`` into (either may be None),
        of the results' shapes and dtype.

    Returns
    -------
    grad_input : ndarray
        ``input``'s shape; the common float dtype of ``grad_output`` and
        ``input`` (float32 stays float32).
    grad_weight : ndarray
        ``weight``'s shape, the same dtype.

    Notes
    -----
    As PyTorch's autograd: with :math:`g` ``grad_output`` and :math:`w_c` the
    slope of the element's channel, the input's gradient is :math:`g` where
    :math:`x > 0` and :math:`w_c g` elsewhere (at :math:`x = 0` too), and
    :math:`w_c`'s is the sum of :math:`x g` over the elements of channel
    :math:`c` with :math:`x \le 0` (over every element for a single weight),
    by :func:`nbops.scalar.prelu_backward` and
    :func:`nbops.scalar.prelu_weight_backward`. The sum is over fixed chunks
    of the input, each accumulated in float64, then added in chunk order: the
    same bits on any thread count.

    Examples
    --------
    >>> x = np.array([[-1.0, 2.0], [-3.0, -4.0]])
    >>> gi, gw = nbops.prelu_backward(np.ones((2, 2)), x, np.array([0.1, 0.5]))
    >>> gi
    array([[0.1, 1. ],
           [0.1, 0.5]])
    >>> gw
    array([-4., -4.])
    """
    if type(grad_output) is not np.ndarray:
        if is_device_array(grad_output):
            return _cuda().prelu_backward(grad_output, input, weight, out=out)
        if is_dask_array(grad_output):
            return dask_ops().prelu_backward(grad_output, input, weight, out=out)
    elif type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().prelu_backward(grad_output, input, weight, out=out)
    g = _float_array(grad_output, "grad_output")
    x = _float_array(input, "input")
    w = as_array(weight, "weight")
    if w.dtype.kind not in "fiub":
        raise TypeError(f"weight: expected a real array, got dtype {w.dtype}")
    if g.shape != x.shape:
        raise ValueError(f"grad_output has shape {g.shape} but input has shape {x.shape}: "
                         "they must be the same (the forward's output shape)")
    _prelu_weight_check(x.shape, w)
    compute, result = result_dtype(np.result_type(g.dtype, x.dtype))
    out_i, out_w = _prelu_outs(out, x.shape, w.shape, result)
    gs = np.ascontiguousarray(g, dtype=compute)
    xs = np.ascontiguousarray(x, dtype=compute)
    wc = np.ascontiguousarray(w.reshape(-1), dtype=compute)
    direct = (out_i is not None and out_i.dtype == compute and out_i.flags.c_contiguous
              and not overlaps_differently(out_i, gs)
              and not overlaps_differently(out_i, xs) and not overlaps(out_i, wc))
    gi = out_i if direct else _memory.empty(x.shape, compute)
    C = w.size
    inner, per, chunks = prelu_grad_plan(x.shape, C)
    partial = np.empty(chunks * C, np.float64)
    if xs.size:
        rows = inner == 1 and C > 1
        launch(_prelu_grad_serial, _prelu_grad_parallel, ("prelu_grad", compute.char, rows),
               xs.size, gs.reshape(-1), xs.reshape(-1), wc, gi.reshape(-1), partial,
               None if rows else inner, per)
    else:
        partial[:] = 0.0
    gw = partial.reshape(chunks, C).sum(axis=0).astype(result).reshape(w.shape)
    gi = deliver(gi, out_i, direct, compute, result)
    if out_w is not None:
        out_w[...] = gw
        gw = out_w
    return gi, gw


# the type stub's annotations where they differ from the table's (tools/gen_stubs.py)
prelu_backward.__annotations__.update({
    "out": "tuple[NDArray[Any] | None, NDArray[Any] | None] | None",
    "return": "tuple[NDArray[np.floating[Any]], NDArray[np.floating[Any]]]"})


def _prelu_outs(out, x_shape, w_shape, result):
    if out is None:
        return None, None
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError("out must be a pair (grad_input, grad_weight) of arrays or None")
    if out[0] is not None:
        check_out(out[0], x_shape, result)
    if out[1] is not None:
        check_out(out[1], w_shape, result)
        if out[0] is not None and np.may_share_memory(out[0], out[1]):
            raise ValueError("out: grad_input and grad_weight share memory: pass two "
                             "separate arrays (each receives its own gradient)")
    return out[0], out[1]


SILU = table.elementwise(
    "silu", S.silu, inplace=True,
    backward=S.silu_backward,
    module=Module("SiLU", "``x * sigmoid(x)``", """
        >>> nbops.nn.SiLU()(np.array([0.0, 1.0], np.float32))
        array([0.       , 0.7310586], dtype=float32)"""),
    summary=r"Sigmoid linear unit (swish), :math:`x \sigma(x) = x / (1 + e^{-x})`.",
    notes=r"""Same as ``torch.nn.functional.silu``, computed as PyTorch computes it,
        ``x / (1 + exp(-x))``, within 2 ulp (nbops' vectorizable ``exp``):
        ``silu(inf) == inf``, ``silu(-inf)`` is NaN (:math:`-\infty / \infty`) and
        NaN stays NaN.""",
    example="""
        >>> nbops.silu(np.array([-1.0, 0.0, 2.0]))
        array([-0.26894142,  0.        ,  1.76159416])""")

HARDSWISH = table.elementwise(
    "hardswish", S.hardswish, inplace=True,
    backward=S.hardswish_backward,
    module=Module("Hardswish", "``x * relu6(x + 3) / 6``", """
        >>> nbops.nn.Hardswish()(np.array([-3.0, 1.0, 4.0], np.float32))
        array([-0.       ,  0.6666667,  4.       ], dtype=float32)""", repr=""),
    summary=r""":math:`x \cdot \mathrm{relu6}(x + 3) / 6`: 0 for :math:`x \le -3`, """
            r""":math:`x` for :math:`x \ge 3`.""",
    notes=r"""Same as ``torch.nn.functional.hardswish``, computed as PyTorch computes it,
        ``x * min(max(x + 3, 0), 6) / 6``: ``-0.0`` for :math:`-\infty < x \le -3`,
        ``hardswish(inf) == inf``, ``hardswish(-inf)`` is NaN
        (:math:`-\infty \cdot 0`) and NaN stays NaN. As PyTorch's, the module's
        repr does not show ``inplace``.""",
    example="""
        >>> nbops.hardswish(np.array([-4.0, -1.0, 0.5, 3.0]))
        array([-0.        , -0.33333333,  0.29166667,  3.        ])""")

PRELU = table.elementwise(
    "prelu", S.prelu, (Param("weight", kind="array", example=0.25,
                             doc="1-D with 1 element (shared) or ``C`` elements."),),
    function=prelu, module="PReLU",
    samples=lambda d: [((d.x, np.array([0.25], d.dtype)), {}), ((d.x2, d.ch), {})])
_PRELU = PRELU.op  # its Op (the 1-weight path), a global that @njit code can read
PRELU.backward_function = prelu_backward  # written by hand above
PRELU.backward_samples = lambda d: [
    (prelu_backward, (d.g, d.x, np.array([0.25], d.dtype)), {}),
    (prelu_backward, (d.g2, d.x2, d.ch), {})]

GELU = table.elementwise(
    "gelu", {"none": S.gelu, "tanh": S.gelu_tanh},
    (Param("approximate", "none", kind="choice", choices=("none", "tanh"), example="tanh",
           doc="``'none'``: the exact form (``erf``); ``'tanh'``: the tanh approximation."),),
    backward={"none": S.gelu_backward, "tanh": S.gelu_tanh_backward},
    module=Module("GELU", "Gaussian error linear unit ``x * Phi(x)``", """
        >>> np.round(nbops.nn.GELU()(np.array([0.0, 1.0], np.float32)), 6)
        array([0.      , 0.841345], dtype=float32)""", repr="approximate={approximate!r}"),
    summary=r"""Gaussian error linear unit,
        :math:`x \Phi(x) = 0.5 x (1 + \mathrm{erf}(x / \sqrt 2))`.

        With ``approximate='tanh'``:
        :math:`0.5 x (1 + \tanh(\sqrt{2/\pi} (x + 0.044715 x^3)))`.""",
    notes=r"""Same as ``torch.nn.functional.gelu``. Its formulas are computed without
        their cancellation for negative :math:`x`: the exact form as
        :math:`0.5 x \, \mathrm{erfc}(-x / \sqrt 2)` (nbops' vectorizable
        ``erfc``, float32 and float64), the tanh form as :math:`x \sigma(2u)` (nbops'
        vectorizable ``exp``), both within a few ulp. ``gelu(inf) == inf``,
        ``gelu(-inf)`` is NaN (:math:`-\infty \cdot 0`, as PyTorch's) and NaN stays
        NaN. Any other ``approximate`` raises ``ValueError``. The scalar cores are
        :func:`nbops.scalar.gelu` and :func:`nbops.scalar.gelu_tanh`.""",
    example="""
        >>> nbops.gelu(np.array([-1.0, 0.0, 2.0]))
        array([-0.15865525,  0.        ,  1.95449974])
        >>> nbops.gelu(np.array([-1.0, 0.0, 2.0]), approximate="tanh")
        array([-0.15880801,  0.        ,  1.95459769])""")

MISH = table.elementwise(
    "mish", S.mish, inplace=True,
    backward=S.mish_backward,
    module=Module("Mish", "``x * tanh(softplus(x))``", """
        >>> nbops.nn.Mish()(np.array([0.0, 1.0], np.float32))
        array([0.       , 0.8650984], dtype=float32)"""),
    summary=r"Mish, :math:`x \tanh(\mathrm{softplus}(x)) = x \tanh(\log(1 + e^x))`.",
    notes=r"""Same as ``torch.nn.functional.mish``, computed with one ``exp`` (nbops'
        vectorizable one) and one division as :math:`x n / (n + 2)` with
        :math:`n = e^x (e^x + 2)` (the same function), within a few ulp:
        ``mish(inf) == inf``, ``mish(-inf)`` is NaN (:math:`-\infty \cdot 0`, as
        PyTorch's) and NaN stays NaN.""",
    example="""
        >>> nbops.mish(np.array([-1.0, 0.0, 2.0]))
        array([-0.30340146,  0.        ,  1.94395896])""")

HARDSIGMOID = table.elementwise(
    "hardsigmoid", S.hardsigmoid, inplace=True,
    backward=S.hardsigmoid_backward,
    module=Module("Hardsigmoid", "``relu6(x + 3) / 6``", """
        >>> nbops.nn.Hardsigmoid()(np.array([-4.0, 0.0, 4.0], np.float32))
        array([0. , 0.5, 1. ], dtype=float32)""", repr=""),
    summary=r""":math:`\mathrm{relu6}(x + 3) / 6`: 0 for :math:`x \le -3`, 1 for """
            r""":math:`x \ge 3`, linear between.""",
    notes=r"""Same as ``torch.nn.functional.hardsigmoid``, computed as PyTorch computes
        it, ``min(max(x + 3, 0), 6) / 6``: NaN stays NaN. Its backward is 0 at
        both kinks and for NaN, and multiplies by PyTorch's 1/6 (rounded to
        float32, in float64 too). As PyTorch's, the module's repr does not show
        ``inplace``.""",
    example="""
        >>> nbops.hardsigmoid(np.array([-4.0, -1.5, 0.0, 3.0]))
        array([0.  , 0.25, 0.5 , 1.  ])""")

SELU = table.elementwise(
    "selu", S.selu, inplace=True,
    backward=S.selu_backward,
    module=Module("SELU", "``scale * elu(x, alpha)`` with SELU's constants", """
        >>> nbops.nn.SELU()(np.array([1.0], np.float32))
        array([1.050701], dtype=float32)"""),
    summary=r"""Scaled exponential linear unit: :math:`\lambda x` if :math:`x > 0`, else
        :math:`\lambda \alpha (e^x - 1)`.

        With :math:`\alpha = 1.6732632423543772848170429916717` and
        :math:`\lambda = 1.0507009873554804934193349852946` (PyTorch's).""",
    notes="""Same as ``torch.nn.functional.selu`` (PyTorch's ``elu`` kernel with these
        constants; ``e^x - 1`` as ``expm1``): ``selu(-inf) == -alpha * scale``, NaN
        stays NaN.""",
    example="""
        >>> nbops.selu(np.array([-1.0, 0.0, 2.0]))
        array([-1.11133074,  0.        ,  2.10140197])""")

CELU = table.elementwise(
    "celu", S.celu, (Param("alpha", 1.0, r":math:`\alpha \ne 0`.", example=0.5),),
    inplace=True,
    checks=(Check("alpha == 0", "ZeroDivisionError: alpha cannot be 0 for CELU",
                  "alpha cannot be 0 for CELU"),),
    backward=S.celu_backward,
    module=Module("CELU", "``x if x > 0 else alpha * (exp(x / alpha) - 1)``", """
        >>> nbops.nn.CELU()(np.array([1.0, -1e9], np.float32))
        array([ 1., -1.], dtype=float32)"""),
    summary=r""":math:`x` if :math:`x > 0`, else :math:`\alpha (e^{x / \alpha} - 1)`.

        Raises ``ValueError`` if ``alpha == 0``.""",
    notes="""Same as ``torch.nn.functional.celu`` (PyTorch's ``elu`` kernel with input
        scale ``1 / alpha``; ``e^x - 1`` as ``expm1``), including the error for
        ``alpha == 0`` (a ``ValueError`` with PyTorch's message): ``celu(-inf) ==
        -alpha``, NaN stays NaN.""",
    example="""
        >>> nbops.celu(np.array([-1.0, 0.0, 2.0]), alpha=2.0)
        array([-0.78693868,  0.        ,  2.        ])""")

HARDSHRINK = table.elementwise(
    "hardshrink", S.hardshrink, (Param("lambd", 0.5, r":math:`\lambda`.", example=1.25),),
    backward=S.hardshrink_backward,
    module=Module("Hardshrink", "0 on ``[-lambd, lambd]``, ``x`` elsewhere", """
        >>> nbops.nn.Hardshrink()(np.array([-1.0, 0.2, 1.0], np.float32))
        array([-1.,  0.,  1.], dtype=float32)""", repr="{lambd}"),
    summary=r""":math:`x` if :math:`|x| > \lambda`, else 0.""",
    notes=r"""Same as ``torch.nn.functional.hardshrink``: the interval
        :math:`[-\lambda, \lambda]` is closed, its zero is ``+0.0``, NaN stays NaN,
        and, as PyTorch, a negative ``lambd`` is accepted (the identity). No
        ``inplace`` (PyTorch's has none).""",
    example="""
        >>> nbops.hardshrink(np.array([-1.0, 0.5, 0.75]))
        array([-1.  ,  0.  ,  0.75])""")

TANHSHRINK = table.elementwise(
    "tanhshrink", S.tanhshrink,
    backward=S.tanhshrink_backward,
    module=Module("Tanhshrink", "``x - tanh(x)``", """
        >>> nbops.nn.Tanhshrink()(np.array([0.0, 1.0], np.float32))
        array([0.        , 0.23840582], dtype=float32)"""),
    summary=r":math:`x - \tanh x`.",
    notes="""Same as ``torch.nn.functional.tanhshrink`` (``input - input.tanh()``), with
        nbops' vectorizable ``tanh`` (within 2 ulp): ``tanhshrink(±inf) == ±inf``,
        NaN stays NaN.""",
    example="""
        >>> nbops.tanhshrink(np.array([-1.0, 0.0, 2.0]))
        array([-0.23840584,  0.        ,  1.03597242])""")

# The public functions, generated from the entries above (prelu's is written by hand).
globals().update({e.name: e.function for e in table.entries("activation")})
globals().update(table.backward_functions("activation"))  # relu_backward, ...
__all__ = ([e.name for e in table.entries("activation")]
           + list(table.backward_functions("activation")))


# ------------------------------- prelu inside @njit (the others' are generated)
@overload(prelu)
def _prelu_njit(input, weight, out=None):
    if isinstance(input, (types.Float, types.Integer, types.Boolean)):
        if isinstance(weight, types.Array):
            def prelu_scalar_w_array(input, weight, out=None):
                if weight.size != 1:
                    raise ValueError("weight must have 1 element for a scalar input")
                x = as_float(input)
                return S.prelu(x, const(x, weight.ravel()[0]))

            return prelu_scalar_w_array
        return lambda input, weight, out=None: S.prelu(as_float(input),
                                                       const(as_float(input), weight))
    if not isinstance(input, types.Array) or not isinstance(weight, types.Array):
        return None
    if input.ndim < 2:
        def prelu_1d(input, weight, out=None):
            if weight.size != 1:
                raise ValueError("weight must have 1 element for input.ndim < 2")
            return map_njit(_PRELU, input, (weight.ravel()[0],), False, out)

        return prelu_1d
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        raise errors.TypingError("nbops.prelu inside @njit does not take out=")
    dtype = input.dtype if isinstance(input.dtype, types.Float) else types.float64

    def prelu_nd(input, weight, out=None):
        channels = input.shape[1]
        w = weight.ravel()
        if w.size != 1 and w.size != channels:
            raise ValueError("weight must have 1 or input.shape[1] elements")
        res = np.empty(input.shape, dtype)
        for idx in np.ndindex(input.shape):
            xi = as_float(input[idx])
            res[idx] = S.prelu(xi, const(xi, w[idx[1] % w.size]))
        return res

    return prelu_nd


@overload(prelu_backward)
def _prelu_backward_njit(grad_output, input, weight, out=None):
    if not all(isinstance(a, types.Array) for a in (grad_output, input, weight)):
        return None
    for name, a in (("grad_output", grad_output), ("input", input)):
        if not isinstance(a.dtype, types.Float):
            raise errors.TypingError(f"nbops: {name} must be a float array")
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        raise errors.TypingError("nbops.prelu_backward inside @njit does not take out=")
    if grad_output.ndim != input.ndim:
        raise errors.TypingError("nbops: grad_output must have input's shape")
    dtype = types.float64 if types.float64 in (grad_output.dtype, input.dtype) else types.float32

    def prelu_backward_impl(grad_output, input, weight, out=None):
        if grad_output.shape != input.shape:
            raise ValueError("nbops: grad_output and input must have the same shape")
        shape = input.shape
        channels = shape[1] if input.ndim >= 2 else 1
        C = weight.size
        if weight.ndim > 1 or (C != 1 and C != channels):
            raise ValueError("weight must be 1-D with 1 or input.shape[1] elements")
        gi = np.empty(shape, dtype)
        flat = gi.reshape(-1)
        wc = np.empty(C, dtype)
        wf = weight.ravel()
        for c in range(C):
            wc[c] = wf[c]
        inner, per, chunks = prelu_grad_plan(shape, C)
        partial = np.empty(chunks * C, np.float64)
        for i in range(partial.size):
            partial[i] = 0.0
        if flat.size:
            gs = flat_as(grad_output, flat)
            xs = flat_as(input, flat)
            if inner == 1 and C > 1:
                _prelu_grad_serial(gs, xs, wc, flat, partial, None, per)
            else:
                _prelu_grad_serial(gs, xs, wc, flat, partial, inner, per)
        gw = np.empty(weight.shape, dtype)
        gwf = gw.reshape(-1)
        for c in range(C):
            total = 0.0
            for u in range(chunks):
                total += partial[u * C + c]
            gwf[c] = total
        return gi, gw

    return prelu_backward_impl
