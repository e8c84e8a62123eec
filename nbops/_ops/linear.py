"""``nbops.linear``: y = x W^T + b, the matrix product in Numba on Numba's threads.

The product is nbops' own kernel (blocks of 4 rows by 4 outputs, each a set of
dot products over the input features, vectorized), not NumPy's BLAS: OpenBLAS's
threads keep spinning after a product and stall the next parallel kernel of
any op, and a BLAS call inside parallel Numba code oversubscribes the cores
(docs/guides/architecture.rst, "Memory, threads and BLAS"). The bias is added
to each result before it is stored.
"""

import math

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.extending import overload
from numba.np import numpy_support

from .. import _config, _memory
from .._launch import launch, task_address
from .._numba_internals import make_task_call
from .._validate import (
    as_array,
    check_out,
    dask_ops,
    is_dask_array,
    is_device_array,
    lean_destination,
    result_dtype,
)
from ..cuda import ops as _cuda


def linear(input, weight, bias=None, out=None):
    r"""Affine map :math:`y = x W^T + b` over the last axis.

    Parameters
    ----------
    input : array_like, shape (\*, in_features)
        Any number of leading axes (including none: a 1-D input).
    weight : array_like, shape (out_features, in_features)
    bias : array_like, shape (out_features,), optional
    out : ndarray of shape (\*, out_features), optional

    Returns
    -------
    ndarray, shape (\*, out_features)
        float32 when input and weight are float32. Mixed dtypes promote as
        NumPy does (PyTorch raises instead); integers compute in float64,
        float16 in float32 (rounded to float16 once). ``bias`` may also have
        shape ``()`` or ``(1,)`` (broadcast, as PyTorch). A 1-D ``weight``
        (which PyTorch accepts) is rejected.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[1.0, 2.0]], dtype=np.float32)
    >>> w = np.array([[1.0, 0.0], [1.0, 1.0], [0.5, -1.0]], dtype=np.float32)
    >>> nbops.linear(x, w, np.array([0.0, 1.0, 0.0], dtype=np.float32))
    array([[ 1. ,  4. , -1.5]], dtype=float32)
    """
    if type(input) is np.ndarray:
        y = _fast(input, weight, bias, out)
        if y is not None:
            return y
    elif is_device_array(input):
        return _cuda().linear(input, weight=weight, bias=bias, out=out)
    elif is_dask_array(input):
        return dask_ops().linear(input, weight, bias, out=out)
    x = as_array(input)
    w = as_array(weight, "weight")
    result_dtype(x.dtype, "input")  # TypeError naming the argument (complex, object)
    result_dtype(w.dtype, "weight")
    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input's last axis must have in_features={w.shape[1]} elements "
                         f"(weight shape {w.shape}), got input shape {x.shape}")
    dt = np.result_type(x.dtype, w.dtype)
    n_out = w.shape[0]
    if bias is not None:
        b = as_array(bias, "bias")
        result_dtype(b.dtype, "bias")
        if b.ndim > 1 or b.size not in (1, n_out):  # (), (1,) broadcast, as PyTorch
            raise ValueError(f"bias must have shape ({n_out},) (out_features, "
                             f"weight.shape[0]), got {b.shape}")
        dt = np.result_type(dt, b.dtype)
    compute, dtype = result_dtype(dt)  # float16: computed in float32, rounded once
    shape = x.shape[:-1] + (n_out,)
    if out is not None:
        check_out(out, shape, dtype)
    rows = math.prod(x.shape[:-1])
    x2 = np.ascontiguousarray(x.reshape(rows, x.shape[-1]), dtype=compute)
    w2 = np.ascontiguousarray(w, dtype=compute)
    b2 = None
    if bias is not None:
        b2 = np.ascontiguousarray(np.broadcast_to(b.astype(compute, copy=False).reshape(-1),
                                                  (n_out,)))
    direct = out is not None and dtype == compute and out.flags.c_contiguous \
        and not _shares_memory(out, (x2, w2, b2))
    y = out.reshape(rows, n_out) if direct else _memory.empty((rows, n_out), compute)
    _run_product(x2, w2, b2, y)
    if direct:
        return out
    y = y.reshape(shape)
    if out is not None:
        out[...] = y
        return out
    return y if dtype == compute else y.astype(dtype)


def _shares_memory(out, arrays):
    """Whether ``out`` may share memory with one of ``arrays`` (None skipped). Two
    distinct arrays that own their memory do not: no ``np.may_share_memory`` call
    for them (the common call's cost)."""
    own = out.flags.owndata
    for a in arrays:
        if a is None:
            continue
        if a is out:
            return True
        if own and a.flags.owndata:
            continue
        if np.may_share_memory(out, a):
            return True
    return False


# ----------------------------------------------------------- the matrix product
#: Outputs per task of the parallel product: a task computes all its rows'
#: products with this many rows of ``weight``, which stay in the core's cache.
OUT_CHUNK = 64

call_task = make_task_call()

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_NO_BIAS = {dt.char: np.empty(0, dt) for dt in _FLOATS}  # (never read without a bias)


@_config.core
def _put4(y, r0, o, v0, v1, v2, v3, b, mode):
    """Store a column of 4 results: y[r0:r0+4, o] = v (mode 0), v + b[o] (mode 1),
    or y[r0:r0+4, o] + v (mode 2, accumulating)."""
    if mode == 1:
        v0 += b[o]
        v1 += b[o]
        v2 += b[o]
        v3 += b[o]
    elif mode == 2:
        v0 += y[r0, o]
        v1 += y[r0 + 1, o]
        v2 += y[r0 + 2, o]
        v3 += y[r0 + 3, o]
    y[r0, o], y[r0 + 1, o], y[r0 + 2, o], y[r0 + 3, o] = v0, v1, v2, v3


@_config.core
def _tile(x, w, b, mode, y, r0, r1, o0, o1, n_k):
    """y[r0:r1, o0:o1] = x[r0:r1, :n_k] w[o0:o1, :n_k]^T, 4 rows by 4 outputs at a
    time; plus the bias ``b`` (mode 1), or added to y (mode 2, see _put4).

    Each of the 16 products of a 4 x 4 block is a dot product over the input
    features, all 16 in one pass over them: 8 loads feed 16 multiply-adds, and
    the compiler vectorizes the pass (``reassoc``: the sums are reassociated,
    as a BLAS does too).
    """
    zero = y.dtype.type(0)
    o_rest = o0
    if r1 - r0 == 4:
        o = o0
        while o + 4 <= o1:
            a0 = a1 = a2 = a3 = c0 = c1 = c2 = c3 = zero
            d0 = d1 = d2 = d3 = e0 = e1 = e2 = e3 = zero
            for k in range(n_k):
                x0, x1, x2, x3 = x[r0, k], x[r0 + 1, k], x[r0 + 2, k], x[r0 + 3, k]
                w0, w1, w2, w3 = w[o, k], w[o + 1, k], w[o + 2, k], w[o + 3, k]
                a0 += x0 * w0
                a1 += x1 * w0
                a2 += x2 * w0
                a3 += x3 * w0
                c0 += x0 * w1
                c1 += x1 * w1
                c2 += x2 * w1
                c3 += x3 * w1
                d0 += x0 * w2
                d1 += x1 * w2
                d2 += x2 * w2
                d3 += x3 * w2
                e0 += x0 * w3
                e1 += x1 * w3
                e2 += x2 * w3
                e3 += x3 * w3
            _put4(y, r0, o, a0, a1, a2, a3, b, mode)
            _put4(y, r0, o + 1, c0, c1, c2, c3, b, mode)
            _put4(y, r0, o + 2, d0, d1, d2, d3, b, mode)
            _put4(y, r0, o + 3, e0, e1, e2, e3, b, mode)
            o += 4
        o_rest = o
    # the outputs left over (fewer than 4), and all outputs of a block of < 4 rows
    for r in range(r0, r1):
        for o in range(o_rest if r1 - r0 == 4 else o0, o1):
            acc = zero
            for k in range(n_k):
                acc += x[r, k] * w[o, k]
            if mode == 1:
                acc += b[o]
            elif mode == 2:
                acc += y[r, o]
            y[r, o] = acc


_FAST = frozenset({"reassoc", "contract"})


@_config.task_function(fastmath=_FAST)
def _product_task(x, w, b, has_bias, y, task):
    """Task ``task`` of :func:`_product`: rows ``4 (task // chunks)`` .. + 4,
    outputs ``OUT_CHUNK (task % chunks)`` .. + OUT_CHUNK (``chunks`` output
    chunks), by :func:`_tile` (IR-inlined here)."""
    rows, n_out = y.shape
    chunks = (n_out + OUT_CHUNK - 1) // OUT_CHUNK
    r0 = (task // chunks) * 4
    o0 = (task % chunks) * OUT_CHUNK
    _tile(x, w, b, 1 if has_bias else 0, y, r0, min(r0 + 4, rows), o0,
          min(o0 + OUT_CHUNK, n_out), x.shape[1])


def _product(x, w, b, has_bias, y, task_fn):
    """y = x w^T (+ b): x (rows, in), w (out, in), y (rows, out), one dtype, the
    input features contiguous. Tasks: blocks of 4 rows x OUT_CHUNK outputs, each
    a call of :func:`_product_task` at ``task_fn`` (its address, see
    :func:`nbops._launch.task_address`)."""
    rows, n_out = y.shape
    chunks = (n_out + OUT_CHUNK - 1) // OUT_CHUNK
    for task in prange(((rows + 3) // 4) * chunks):
        call_task(_product_task, task_fn, (x, w, b, has_bias, y, np.int64(task)))


# reassoc: the dot products vectorize (a BLAS sums in its own order too);
# contract: multiply-adds fuse. NaN and inf propagate unchanged.
_product_serial, _product_parallel = _config.kernels(_product, fastmath=_FAST)


#: Input features up to which the product runs as row updates (_product_rows),
#: per dtype: below them the tiles' vectorized sums run mostly scalar.
FEW_INPUTS = {"f": 24, "d": 16}
#: Rows per task of _product_rows.
ROWS_PER_TASK = 16


@_config.task_function(fastmath=frozenset({"contract"}))
def _product_rows_task(x, wt, b, has_bias, y, task):
    """Task ``task`` of :func:`_product_rows`: its ROWS_PER_TASK rows."""
    rows, n_out = y.shape
    n_k = x.shape[1]
    zero = y.dtype.type(0)
    for r in range(task * ROWS_PER_TASK, min(rows, (task + 1) * ROWS_PER_TASK)):
        yr = y[r]
        xr = x[r]
        for o in range(n_out):
            yr[o] = zero
        for k in range(n_k):
            xv = xr[k]
            wk = wt[k]
            for o in range(n_out):
                yr[o] += xv * wk[o]
        if has_bias:
            for o in range(n_out):
                yr[o] += b[o]


def _product_rows(x, wt, b, has_bias, y, task_fn):
    """y = x wt (+ b) for few input features: x (rows, in), wt (in, out), y (rows, out).

    Each output row is the sum of the rows of ``wt`` scaled by the input's
    features, ``x[r, 0] wt[0] + x[r, 1] wt[1] + ...`` (then ``+ b``), one
    vectorized pass over the outputs per feature. The 4 x 4 tiles of _product
    sum over the features instead: with few of them, the sums' final horizontal
    additions would cost more than the products. Tasks: ROWS_PER_TASK rows, each
    a call of :func:`_product_rows_task` at ``task_fn`` (see :func:`_product`).
    """
    rows = y.shape[0]
    for task in prange((rows + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        call_task(_product_rows_task, task_fn, (x, wt, b, has_bias, y, np.int64(task)))


_product_rows_serial, _product_rows_parallel = _config.kernels(
    _product_rows, fastmath=frozenset({"contract"}))


@_config.core
def product_linked(x, w, b, has_bias, y):
    """:func:`_product`'s tasks in order, calling :func:`_product_task` as Numba
    does (linked): for ``@njit`` callers, which have no task addresses."""
    chunks = (y.shape[1] + OUT_CHUNK - 1) // OUT_CHUNK
    for task in range(((y.shape[0] + 3) // 4) * chunks):
        _product_task(x, w, b, has_bias, y, np.int64(task))


@_config.core
def product_rows_linked(x, wt, b, has_bias, y):
    """:func:`_product_rows` for ``@njit`` callers (as :func:`product_linked`)."""
    for task in range((y.shape[0] + ROWS_PER_TASK - 1) // ROWS_PER_TASK):
        _product_rows_task(x, wt, b, has_bias, y, np.int64(task))


def launch_tasks(serial, parallel, task, key, n, *args):
    """``launch`` of a kernel pair whose tasks call ``task`` by its address
    (appended to ``args``: :func:`nbops._launch.task_address`)."""
    launch(serial, parallel, key, n, *args, task_address(task, key, args))


def _run_product(x2, w, b, y2, wt=None):
    """y2 = x2 w^T (+ b) on Numba's threads (serial below the cost-based threshold).

    ``wt``, when the caller has it, is ``w``'s transpose as a C-contiguous
    array (the form _product_rows reads); ``w`` may then be None.

    OpenBLAS is not used: its threads keep spinning after a product and stall
    the next parallel kernel of any op (docs/guides/performance.rst, "linear").
    """
    rows, n_in = x2.shape
    dt = x2.dtype
    bias = _NO_BIAS[dt.char] if b is None else b
    n = rows * n_in * y2.shape[1]
    has_bias = b is not None
    if n_in <= FEW_INPUTS[dt.char]:
        if wt is None:
            wt = np.ascontiguousarray(w.T)
        key = _ROWS_KEYS[dt.char]
        launch(_product_rows_serial, _product_rows_parallel, key, n, x2, wt, bias, has_bias,
               y2, task_address(_product_rows_task, key, (x2, wt, bias, has_bias, y2)))
        return
    if w is None:
        w = np.ascontiguousarray(wt.T)
    key = _PRODUCT_KEYS[dt.char]
    launch(_product_serial, _product_parallel, key, n, x2, w, bias, has_bias, y2,
           task_address(_product_task, key, (x2, w, bias, has_bias, y2)))


_PRODUCT_KEYS = {dt.char: ("linear", dt.char) for dt in _FLOATS}
_ROWS_KEYS = {dt.char: ("linear_rows", dt.char) for dt in _FLOATS}


def _fast(x, weight, bias, out):
    """The common call (one float dtype, C-contiguous arrays; ``out=`` of the
    result's shape and dtype, apart from the inputs) with no conversion; None
    for any other call (the general path checks and converts it)."""
    if not (type(weight) is np.ndarray and x.dtype in _FLOATS
            and weight.dtype == x.dtype and weight.ndim == 2 and x.ndim >= 1
            and x.shape[-1] == weight.shape[1]
            and (bias is None or (type(bias) is np.ndarray and bias.dtype == x.dtype
                                  and bias.shape == (weight.shape[0],)
                                  and bias.flags.c_contiguous))
            and x.flags.c_contiguous and weight.flags.c_contiguous):
        return None
    n_out, n_in = weight.shape
    shape = x.shape[:-1] + (n_out,)
    y = lean_destination(out, shape, x.dtype, x, weight, bias)
    if y is None:
        return None
    rows = math.prod(x.shape[:-1])
    _run_product(x.reshape(rows, n_in), weight, bias, y.reshape(rows, n_out))
    return y


# --------------------------------------------------------------------- backward
#: A weight-gradient task owns this many outputs x inputs of the gradient ...
WG_CHUNK = 64
#: ... and transposes its columns of grad_output and input this many rows at a time.
ROW_BLOCK = 256


@_config.core
def _transpose_into(a, r0, m, c0, c1, out):
    """out[c - c0, r] = a[r0 + r, c] for r < m, c0 <= c < c1: 16 rows at a time, so
    that each pass over the columns writes whole cache lines of every output row."""
    r = 0
    while r + 16 <= m:
        for c in range(c0, c1):
            o = out[c - c0]
            for j in range(16):
                o[r + j] = a[r0 + r + j, c]
        r += 16
    while r < m:
        for c in range(c0, c1):
            out[c - c0, r] = a[r0 + r, c]
        r += 1


# the tile and the transposes: functions of their own (compiled faster than inlined)
@_config.task_function(fastmath=_FAST, calls=("_tile", "_transpose_into"))
def _weight_grad_task(g, x, gw, bias_sums, want_bias, task):
    """Task ``task`` of :func:`_weight_grad`: its WG_CHUNK x WG_CHUNK block of
    ``gw`` (and its outputs' bias sums where it holds the first inputs)."""
    rows, n_out = g.shape
    n_in = x.shape[1]
    in_chunks = max(1, (n_in + WG_CHUNK - 1) // WG_CHUNK)
    o0 = (task // in_chunks) * WG_CHUNK
    o1 = min(o0 + WG_CHUNK, n_out)
    i0 = (task % in_chunks) * WG_CHUNK
    i1 = min(i0 + WG_CHUNK, n_in)
    gs = np.empty((o1 - o0, ROW_BLOCK), g.dtype)
    xs = np.empty((i1 - i0, ROW_BLOCK), x.dtype)
    sums = np.empty(o1 - o0, np.float64)  # (np.empty and loops: np.zeros compiles more)
    block = gw[o0:o1, i0:i1]
    for o in range(o1 - o0):
        sums[o] = 0.0
        for i in range(i1 - i0):
            block[o, i] = 0
    for r0 in range(0, rows, ROW_BLOCK):
        m = min(ROW_BLOCK, rows - r0)
        _transpose_into(g, r0, m, o0, o1, gs)
        _transpose_into(x, r0, m, i0, i1, xs)
        for a in range(0, o1 - o0, 4):
            _tile(gs, xs, gs[0], 2, block, a, min(a + 4, o1 - o0), 0, i1 - i0, m)
        if want_bias and i0 == 0:
            for o in range(o1 - o0):
                for r in range(m):
                    sums[o] += gs[o, r]
    if want_bias and i0 == 0:
        for o in range(o0, o1):
            bias_sums[o] = sums[o - o0]


def _weight_grad(g, x, gw, bias_sums, want_bias, task_fn):
    """gw = g^T x: g (rows, n_out), x (rows, n_in); with ``want_bias`` also the
    float64 column sums of g (the bias's gradient) into ``bias_sums``.

    A task owns a WG_CHUNK x WG_CHUNK block of gw. It copies its columns of g and
    x, ROW_BLOCK rows at a time, transposed into scratch that stays in cache,
    and adds their product to its block (the forward's 4 x 4 tiles, the rows
    being the reduction). The blocks follow the rows in order: the same bits on
    any thread count. Each task is a call of :func:`_weight_grad_task` at
    ``task_fn`` (see :func:`_product`).
    """
    n_out = g.shape[1]
    n_in = x.shape[1]
    in_chunks = max(1, (n_in + WG_CHUNK - 1) // WG_CHUNK)  # (n_in = 0: the bias's sums)
    for task in prange(((n_out + WG_CHUNK - 1) // WG_CHUNK) * in_chunks):
        call_task(_weight_grad_task, task_fn, (g, x, gw, bias_sums, want_bias, np.int64(task)))


_weight_grad_serial, _weight_grad_parallel = _config.kernels(_weight_grad, fastmath=_FAST)


@_config.core
def weight_grad_linked(g, x, gw, bias_sums, want_bias):
    """:func:`_weight_grad` for ``@njit`` callers (as :func:`product_linked`)."""
    in_chunks = max(1, (x.shape[1] + WG_CHUNK - 1) // WG_CHUNK)
    for task in range(((g.shape[1] + WG_CHUNK - 1) // WG_CHUNK) * in_chunks):
        _weight_grad_task(g, x, gw, bias_sums, want_bias, np.int64(task))


def linear_backward(grad_output, input, weight, bias=None):
    r"""Backward of :func:`nbops.linear`: the gradients of its input, weight and bias.

    Parameters
    ----------
    grad_output : array_like, shape (\*, out_features)
        The gradient of the forward's output.
    input : array_like, shape (\*, in_features)
        The forward's input.
    weight : array_like, shape (out_features, in_features)
        The forward's weight.
    bias : array_like, optional
        The forward's bias, or None: only its shape is used (``grad_bias`` has
        it); None gives ``grad_bias = None``.

    Returns
    -------
    grad_input : ndarray, shape of ``input``
    grad_weight : ndarray, shape of ``weight``
    grad_bias : ndarray of ``bias``'s shape, or None
        In the common float dtype of the arguments (float32 stays float32).

    Notes
    -----
    With ``x`` and ``g`` the input and ``grad_output`` flattened to rows:
    :math:`\partial x = g W`, :math:`\partial W = g^T x`,
    :math:`\partial b = \sum_{rows} g` (summed to the bias's shape when it was
    broadcast), as ``torch.autograd`` computes them. The two products run in the
    forward's kernel, so every result is the same bits on any thread count;
    ``grad_bias`` is accumulated in float64.

    Examples
    --------
    >>> import numpy as np, nbops
    >>> x = np.array([[1.0, 2.0]])
    >>> w = np.array([[1.0, 0.0], [1.0, 1.0], [0.5, -1.0]])
    >>> gi, gw, gb = nbops.linear_backward(np.ones((1, 3)), x, w, np.zeros(3))
    >>> gi
    array([[2.5, 0. ]])
    >>> gw
    array([[1., 2.],
           [1., 2.],
           [1., 2.]])
    >>> gb
    array([1., 1., 1.])
    """
    return _linear_backward(grad_output, input, weight, bias, True)


def _linear_backward(grad_output, input, weight, bias, needs_input_grad):
    """linear_backward; ``needs_input_grad=False`` leaves out the input's gradient
    (None; on host arrays its product is skipped), for a first layer whose input
    is data (``nbops.nn.Sequential.backward(..., needs_input_grad=False)``)."""
    if type(grad_output) is not np.ndarray:
        if is_device_array(grad_output):
            grads = _cuda().linear_backward(grad_output, input, weight, bias)
        elif is_dask_array(grad_output):
            grads = dask_ops().linear_backward(grad_output, input, weight, bias)
        else:
            grads = None
        if grads is not None:
            return grads if needs_input_grad else (None, *grads[1:])
    g = as_array(grad_output, "grad_output")
    x = as_array(input)
    w = as_array(weight, "weight")
    for arr, name in ((g, "grad_output"), (x, "input"), (w, "weight")):
        result_dtype(arr.dtype, name)  # TypeError naming the argument (complex, object)
    dts = [g.dtype, x.dtype, w.dtype]
    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got shape {w.shape}")
    n_out, n_in = w.shape
    if x.ndim < 1 or x.shape[-1] != n_in:
        raise ValueError(f"input's last axis must have in_features={n_in} elements "
                         f"(weight shape {w.shape}), got input shape {x.shape}")
    if g.shape != x.shape[:-1] + (n_out,):
        raise ValueError(f"grad_output must have the forward output's shape "
                         f"{x.shape[:-1] + (n_out,)}, got {g.shape}")
    if bias is not None:
        b = as_array(bias, "bias")
        if b.ndim > 1 or b.size not in (1, n_out):
            raise ValueError(f"bias must have shape ({n_out},) (out_features, "
                             f"weight.shape[0]), got {b.shape}")
        result_dtype(b.dtype, "bias")
        dts.append(b.dtype)
    compute, dtype = result_dtype(np.result_type(*dts))
    rows = math.prod(x.shape[:-1])
    g2 = np.ascontiguousarray(g.reshape(rows, n_out), dtype=compute)
    x2 = np.ascontiguousarray(x.reshape(rows, n_in), dtype=compute)
    w2 = np.asarray(w, dtype=compute)
    grad_input = None
    if needs_input_grad:
        grad_input = _memory.empty((rows, n_in), compute)
        _run_product(g2, None, None, grad_input, wt=np.ascontiguousarray(w2))  # g W
        grad_input = grad_input.reshape(x.shape).astype(dtype, copy=False)
    grad_weight = _memory.empty((n_out, n_in), compute)  # g^T x, and the bias's sums
    sums = np.zeros(n_out if bias is not None else 0, compute)
    launch_tasks(_weight_grad_serial, _weight_grad_parallel, _weight_grad_task,
                 ("linear_weight", compute.char), rows * n_in * n_out, g2, x2, grad_weight, sums,
                 bias is not None)
    grad_bias = None
    if bias is not None:
        grad_bias = sums if b.size == n_out else sums.sum(dtype=np.float64).astype(compute)
        grad_bias = grad_bias.reshape(b.shape).astype(dtype, copy=False)
    return grad_input, grad_weight.astype(dtype, copy=False), grad_bias


@overload(linear)
def _linear_njit(input, weight, bias=None, out=None):
    """Inside @njit: the serial product kernel of the Python path (the caller's
    code decides the threads). Inputs of another dtype are converted first."""
    if not (isinstance(input, types.Array) and isinstance(weight, types.Array)):
        return None
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        return None
    if weight.ndim != 2 or input.ndim < 1:
        raise errors.TypingError("nbops.linear: weight must be 2-D and input at least 1-D")
    has_bias = not (bias is None or isinstance(bias, (types.NoneType, types.Omitted)))
    dts = [numpy_support.as_dtype(input.dtype), numpy_support.as_dtype(weight.dtype)]
    if has_bias:
        if not isinstance(bias, types.Array) or bias.ndim != 1:
            raise errors.TypingError("nbops.linear: bias must be a 1-D array")
        dts.append(numpy_support.as_dtype(bias.dtype))
    compute, res_dt = result_dtype(np.result_type(*dts))
    if compute != res_dt:
        raise errors.TypingError("nbops.linear inside @njit: float16 is not supported")
    dtype = numpy_support.from_dtype(compute)
    x_as_is = dts[0] == compute  # (constants: Numba prunes the other branch)
    w_as_is = dts[1] == compute

    def impl(input, weight, bias=None, out=None):
        n_in = input.shape[-1]
        if weight.shape[1] != n_in:
            raise ValueError("linear: input's last axis must have weight.shape[1] elements")
        n_out = weight.shape[0]
        b = np.zeros(n_out if has_bias else 0, dtype)
        if has_bias:
            if bias.shape[0] != n_out and bias.shape[0] != 1:
                raise ValueError("linear: bias must have weight.shape[0] elements")
            for o in range(n_out):
                b[o] = bias[o if bias.shape[0] == n_out else 0]
        if x_as_is:
            x2 = np.ascontiguousarray(input).reshape(-1, n_in)
        else:
            x2 = np.ascontiguousarray(input).reshape(-1, n_in).astype(dtype)
        if w_as_is:
            w2 = np.ascontiguousarray(weight)
        else:
            w2 = np.ascontiguousarray(weight).astype(dtype)
        y = np.empty((x2.shape[0], n_out), dtype)
        product_linked(x2, w2, b, has_bias, y)
        return y.reshape(input.shape[:-1] + (n_out,))

    return impl


@overload(linear_backward)
def _linear_backward_njit(grad_output, input, weight, bias=None):
    """Inside @njit: the serial kernels of the Python path, one float dtype."""
    arrays = (grad_output, input, weight)
    if not all(isinstance(a, types.Array) for a in arrays):
        return None
    if weight.ndim != 2 or input.ndim < 1 or grad_output.ndim != input.ndim:
        raise errors.TypingError("nbops.linear_backward: weight must be 2-D, input at least "
                                 "1-D and grad_output of input's ndim")
    has_bias = not (bias is None or isinstance(bias, (types.NoneType, types.Omitted)))
    if has_bias and not (isinstance(bias, types.Array) and bias.ndim == 1):
        raise errors.TypingError("nbops.linear_backward: bias must be a 1-D array or None")
    if not (grad_output.dtype == input.dtype == weight.dtype
            and isinstance(input.dtype, types.Float)):
        raise errors.TypingError("nbops.linear_backward inside @njit: grad_output, input and "
                                 "weight must have one float dtype")
    dtype = input.dtype

    def impl(grad_output, input, weight, bias=None):
        n_out, n_in = weight.shape
        if input.shape[-1] != n_in:
            raise ValueError("linear_backward: input's last axis must have weight.shape[1] "
                             "elements")
        if grad_output.shape[:-1] != input.shape[:-1] or grad_output.shape[-1] != n_out:
            raise ValueError("linear_backward: grad_output must have the forward output's "
                             "shape")
        g2 = np.ascontiguousarray(grad_output).reshape(-1, n_out)
        x2 = np.ascontiguousarray(input).reshape(-1, n_in)
        grad_input = np.empty((x2.shape[0], n_in), dtype)
        product_linked(g2, np.ascontiguousarray(weight.T), np.empty(0, dtype), False,
                       grad_input)
        grad_weight = np.empty((n_out, n_in), dtype)
        sums = np.zeros(n_out, dtype)
        weight_grad_linked(g2, x2, grad_weight, sums, has_bias)
        grad_bias = None
        if has_bias:
            if bias.shape[0] != n_out and bias.shape[0] != 1:
                raise ValueError("linear_backward: bias must have weight.shape[0] elements")
            if bias.shape[0] == n_out:
                grad_bias = sums
            else:
                grad_bias = np.full(1, sums.astype(np.float64).sum(), dtype)
        return grad_input.reshape(input.shape), grad_weight, grad_bias

    return impl


__all__ = ["linear", "linear_backward"]
