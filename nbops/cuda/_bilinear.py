"""bilinear and its backward on device arrays.

One thread per result value (grid-stride loops), each summing its products in
float64 in index order: the results do not depend on the launch. These are
direct loops, not tiled matrix products (correct everywhere, not yet fast on
large layers).
"""

import math

import numpy as np
from numba import cuda, float64

from ._core import TPB
from ._kernels import grid
from ._ops import cflat, check_out, dev, float_dtype


@cuda.jit
def _bilinear_kernel(x1, x2, w, b, has_bias, rows, n_out, n1, n2, y):
    """y[r, o] = sum_ij x1[r, i] w[o, i, j] x2[r, j] (+ b[o]); flat C-order arrays."""
    for k in range(cuda.grid(1), rows * n_out, cuda.gridsize(1)):
        r = k // n_out
        o = k - r * n_out
        acc = float64(0.0)
        for i in range(n1):
            inner = float64(0.0)
            wb = (o * n1 + i) * n2
            for j in range(n2):
                inner += float64(w[wb + j]) * float64(x2[r * n2 + j])
            acc += float64(x1[r * n1 + i]) * inner
        if has_bias:
            acc += float64(b[o])
        y[k] = acc


@cuda.jit
def _grad_input_kernel(g, x, w, rows, n_out, n1, n2, first, res):
    """``first``: res[r, i] = sum_oj g[r, o] w[o, i, j] x[r, j] (x = input2, res of
    in1); else res[r, j] = sum_oi g[r, o] x[r, i] w[o, i, j] (x = input1)."""
    n_res = n1 if first else n2
    n_x = n2 if first else n1
    for k in range(cuda.grid(1), rows * n_res, cuda.gridsize(1)):
        r = k // n_res
        a = k - r * n_res
        acc = float64(0.0)
        for o in range(n_out):
            inner = float64(0.0)
            for c in range(n_x):
                if first:
                    wv = w[(o * n1 + a) * n2 + c]
                else:
                    wv = w[(o * n1 + c) * n2 + a]
                inner += float64(wv) * float64(x[r * n_x + c])
            acc += float64(g[r * n_out + o]) * inner
        res[k] = acc


@cuda.jit
def _grad_weight_kernel(g, x1, x2, rows, n_out, n1, n2, gw):
    """gw[o, i, j] = sum_r g[r, o] x1[r, i] x2[r, j]."""
    for k in range(cuda.grid(1), n_out * n1 * n2, cuda.gridsize(1)):
        o = k // (n1 * n2)
        rest = k - o * n1 * n2
        i = rest // n2
        j = rest - i * n2
        acc = float64(0.0)
        for r in range(rows):
            acc += float64(g[r * n_out + o]) * float64(x1[r * n1 + i]) * float64(x2[r * n2 + j])
        gw[k] = acc


@cuda.jit
def _grad_bias_kernel(g, rows, n_out, gb):
    for o in range(cuda.grid(1), n_out, cuda.gridsize(1)):
        acc = float64(0.0)
        for r in range(rows):
            acc += float64(g[r * n_out + o])
        gb[o] = acc


def _arrays(input1, input2, weight, bias, dt_from):
    from .._ops.bilinear import _check

    x1 = dev(input1, "input1")
    x2 = dev(input2, "input2")
    w = dev(weight, "weight")
    b = None if bias is None else dev(bias, "bias")
    dt = float_dtype(dt_from[0], dt_from[1]) if dt_from else float_dtype(x1, "input1")
    for a, name in ((x1, "input1"), (x2, "input2"), (w, "weight"), (b, "bias")):
        if a is not None and np.dtype(a.dtype) != dt:
            raise TypeError(f"{name}: expected dtype {dt} (the other arguments'), got "
                            f"{a.dtype}")
    _check(tuple(x1.shape), tuple(x2.shape), tuple(w.shape),
           None if b is None else tuple(b.shape))
    return x1, x2, w, b, dt


def bilinear(input1, input2, weight, bias=None, out=None):
    """:func:`nbops.bilinear` on device arrays (C-contiguous)."""
    x1, x2, w, b, dt = _arrays(input1, input2, weight, bias, None)
    n_out, n1, n2 = (int(s) for s in w.shape)
    shape = tuple(x1.shape)[:-1] + (n_out,)
    dest = check_out(out, shape, dt, x1) if out is not None else cuda.device_array(shape, dt)
    rows = math.prod(tuple(x1.shape)[:-1])
    if rows and n_out:
        bf = cflat(b, "bias") if b is not None else cflat(w, "weight")
        _bilinear_kernel[grid(rows * n_out), TPB](
            cflat(x1, "input1"), cflat(x2, "input2"), cflat(w, "weight"), bf, b is not None,
            np.int64(rows), np.int64(n_out), np.int64(n1), np.int64(n2), cflat(dest, "out"))
    return dest


def bilinear_backward(grad_output, input1, input2, weight, bias=None):
    """:func:`nbops.bilinear_backward` on device arrays (C-contiguous)."""
    g = dev(grad_output, "grad_output")
    x1, x2, w, b, dt = _arrays(input1, input2, weight, bias, (g, "grad_output"))
    n_out, n1, n2 = (int(s) for s in w.shape)
    if tuple(g.shape) != tuple(x1.shape)[:-1] + (n_out,):
        raise ValueError(f"grad_output must have the forward output's shape "
                         f"{tuple(x1.shape)[:-1] + (n_out,)}, got {tuple(g.shape)}")
    rows = math.prod(tuple(x1.shape)[:-1])
    grad1 = cuda.device_array(tuple(x1.shape), dt)
    grad2 = cuda.device_array(tuple(x2.shape), dt)
    grad_w = cuda.device_array((n_out, n1, n2), dt)
    grad_b = None if b is None else cuda.device_array(n_out, dt)
    dims = (np.int64(rows), np.int64(n_out), np.int64(n1), np.int64(n2))
    gf, x1f, x2f, wf = (cflat(g, "grad_output"), cflat(x1, "input1"), cflat(x2, "input2"),
                        cflat(w, "weight"))
    if rows * n1:
        _grad_input_kernel[grid(rows * n1), TPB](gf, x2f, wf, *dims, True, cflat(grad1))
    if rows * n2:
        _grad_input_kernel[grid(rows * n2), TPB](gf, x1f, wf, *dims, False, cflat(grad2))
    if n_out * n1 * n2:
        _grad_weight_kernel[grid(n_out * n1 * n2), TPB](gf, x1f, x2f, *dims, cflat(grad_w))
    if grad_b is not None and n_out:
        _grad_bias_kernel[grid(n_out), TPB](gf, np.int64(rows), np.int64(n_out), grad_b)
    return grad1, grad2, grad_w, grad_b
