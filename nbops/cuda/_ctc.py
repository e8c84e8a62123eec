"""ctc_loss, its backward and ``_with_grad`` on device arrays.

One block per sample (a grid-stride loop over the samples): the block's threads
share the sample's extended-target states ``s`` at each time step (then
synchronize), with the CPU kernels' representation and formulas
(nbops/_ops/ctc.py: each ``exp(alpha)``, ``exp(beta)`` a float64 mantissa and
an int64 base-2 exponent). The gradient's thread ``c`` sums the shares of class
``c``'s states in a fixed order. No atomics: the results do not depend on the
launch.

The argument checks are the CPU path's, before any kernel; they read the
targets (and device length arrays) on the host: a copy of those small integer
arrays.
"""

import math

import numpy as np
from numba import cuda, float64, int64

from .._ops import ctc as C
from ._core import SIMULATOR, TPB
from ._ops import check_out, dev, float_dtype

#: Blocks at most (each loops over its share of the samples).
MAX_SAMPLE_BLOCKS = 8 if SIMULATOR else 4096

_split_exp = cuda.jit(device=True)(C._split_exp)
_normalized = cuda.jit(device=True)(C._normalized)
_ZERO_E = C._ZERO_E
_POW2 = C._POW2
_LN2 = C._LN2


@cuda.jit(device=True)
def _align(e_max, e):
    return _POW2[min(e_max - e, 1100)]


@cuda.jit(device=True)
def _emissions(lp, t, b, ym, ye):
    for c in range(cuda.threadIdx.x, lp.shape[2], cuda.blockDim.x):
        m, e = _split_exp(float64(lp[t, b, c]))
        ym[b, c] = m
        ye[b, c] = e


@cuda.jit
def _ctc_kernel(lp, targets, offsets, il, tl, blank, scale, zero_infinity, want_grad,
                labels, skip, am, ae, bm, be, qm, qe, wm, we, ym, ye, nll, grad):
    """Forward (``nll``) and, with ``want_grad``, the gradient of each sample."""
    tid = cuda.threadIdx.x
    step = cuda.blockDim.x
    n_time = lp.shape[0]
    n_c = lp.shape[2]
    for b in range(cuda.blockIdx.x, nll.size, cuda.gridDim.x):
        n_t = il[b]
        n_s = 2 * tl[b] + 1
        for s in range(tid, n_s, step):
            if s % 2 == 0:
                labels[b, s] = blank
                skip[b, s] = False
            else:
                k = offsets[b] + s // 2
                labels[b, s] = targets[k]
                skip[b, s] = s > 1 and targets[k] != targets[k - 1]
        if want_grad:
            for i in range(tid, (n_time - n_t) * n_c, step):
                grad[n_t + i // n_c, b, i % n_c] = 0.0
        cuda.syncthreads()
        if n_t == 0:
            if tid == 0:
                nll[b] = -0.0 if n_s == 1 else math.inf
            cuda.syncthreads()
            continue
        # alpha
        _emissions(lp, 0, b, ym, ye)
        cuda.syncthreads()
        for s in range(tid, n_s, step):
            if s < 2:
                m, e = _normalized(ym[b, labels[b, s]], ye[b, labels[b, s]])
                am[b, 0, s] = m
                ae[b, 0, s] = e
            else:
                am[b, 0, s] = 0.0
                ae[b, 0, s] = _ZERO_E
        for t in range(1, n_t):
            cuda.syncthreads()
            _emissions(lp, t, b, ym, ye)
            cuda.syncthreads()
            for s in range(tid, n_s, step):
                e1 = ae[b, t - 1, s]
                e2 = ae[b, t - 1, s - 1] if s > 0 else int64(_ZERO_E)
                e3 = ae[b, t - 1, s - 2] if skip[b, s] else int64(_ZERO_E)
                em = max(e1, e2, e3)
                v = am[b, t - 1, s] * _align(em, e1)
                if s > 0:
                    v += am[b, t - 1, s - 1] * _align(em, e2)
                if skip[b, s]:
                    v += am[b, t - 1, s - 2] * _align(em, e3)
                c = labels[b, s]
                m, e = _normalized(v * ym[b, c], em + ye[b, c])
                am[b, t, s] = m
                ae[b, t, s] = e
        cuda.syncthreads()
        r = n_t - 1
        if n_s == 1:
            v = am[b, r, 0]
            e = ae[b, r, 0]
        else:
            e = max(ae[b, r, n_s - 1], ae[b, r, n_s - 2])
            v = (am[b, r, n_s - 1] * _align(e, ae[b, r, n_s - 1])
                 + am[b, r, n_s - 2] * _align(e, ae[b, r, n_s - 2]))
        loss = math.inf if v == 0.0 else -(math.log(v) + e * _LN2)
        if tid == 0:
            nll[b] = loss
        if not want_grad:
            cuda.syncthreads()
            continue
        g = scale[b]
        if loss == math.inf:
            fill = 0.0 if zero_infinity else math.nan
            for i in range(tid, n_t * n_c, step):
                grad[i // n_c, b, i % n_c] = fill
            cuda.syncthreads()
            continue
        # beta, the states' shares, the gradient
        for t in range(n_t - 1, -1, -1):
            cuda.syncthreads()
            _emissions(lp, t, b, ym, ye)
            cuda.syncthreads()
            cur = t % 2
            nxt = (t + 1) % 2
            for s in range(tid, n_s, step):
                if t == n_t - 1:
                    qm[b, s] = 1.0 if s >= n_s - 2 else 0.0
                    qe[b, s] = 0 if s >= n_s - 2 else _ZERO_E
                else:
                    e1 = be[b, nxt, s]
                    e2 = be[b, nxt, s + 1] if s < n_s - 1 else int64(_ZERO_E)
                    e3 = be[b, nxt, s + 2] if s < n_s - 2 and skip[b, s + 2] else int64(_ZERO_E)
                    em = max(e1, e2, e3)
                    v = bm[b, nxt, s] * _align(em, e1)
                    if s < n_s - 1:
                        v += bm[b, nxt, s + 1] * _align(em, e2)
                    if s < n_s - 2 and skip[b, s + 2]:
                        v += bm[b, nxt, s + 2] * _align(em, e3)
                    m, e = _normalized(v, em)
                    qm[b, s] = m
                    qe[b, s] = e
            cuda.syncthreads()
            for s in range(tid, n_s, step):
                c = labels[b, s]
                m, e = _normalized(qm[b, s] * ym[b, c], qe[b, s] + ye[b, c])
                bm[b, cur, s] = m
                be[b, cur, s] = e
                m, e = _normalized(am[b, t, s] * qm[b, s], ae[b, t, s] + qe[b, s])
                wm[b, s] = m
                we[b, s] = e
            cuda.syncthreads()
            for c in range(tid, n_c, step):
                e_max = int64(_ZERO_E)
                for s in range(n_s):
                    e_max = max(e_max, we[b, s])
                total = 0.0
                acc = 0.0
                for s in range(n_s):
                    w = wm[b, s] * _align(e_max, we[b, s])
                    total += w
                    if labels[b, s] == c:
                        acc += w
                grad[t, b, c] = (math.exp(float64(lp[t, b, c])) - acc / total) * g
        cuda.syncthreads()


@cuda.jit
def _reduce_kernel(nll, tl, mode, zero_infinity, out):
    """One thread: 'none' (0: the losses in ``out``'s dtype), 'sum' (1) or
    'mean' (2) of the per-sample losses, in sample order."""
    if cuda.grid(1) != 0:
        return
    total = 0.0
    for i in range(nll.size):
        v = nll[i]
        if zero_infinity and v == math.inf:
            v = 0.0
        if mode == 0:
            out[i] = v
        elif mode == 2:
            total += v / max(tl[i], 1)
        else:
            total += v
    if mode == 2:
        out[0] = total / nll.size if nll.size else math.nan
    elif mode == 1:
        out[0] = total


def _host_ints(v):
    """A device array's values on the host (the checks read them), else ``v``."""
    if hasattr(v, "copy_to_host") or hasattr(v, "__cuda_array_interface__"):
        return dev(v).copy_to_host()
    return v


def _run(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity,
         grad_output, want_grad, out):
    """(loss or None, gradient or None) on the device."""
    x = dev(log_probs, "log_probs")
    dt = float_dtype(x, "log_probs")
    compute, result, batched, shape3 = C._check_log_probs(x.shape, dt)
    if not hasattr(targets, "copy_to_host") and not hasattr(targets, "__cuda_array_interface__"):
        raise TypeError("targets: expected a CUDA device array, as log_probs")
    flat, offsets, il, tl, blank = C._checked(
        shape3, batched, _host_ints(targets), _host_ints(input_lengths),
        _host_ints(target_lengths), blank, reduction, zero_infinity)
    n_t, n, n_c = shape3
    scale = None
    if want_grad:
        if grad_output is None:
            scale = (np.ones(n) if reduction != "mean"
                     else 1.0 / np.maximum(tl, 1).astype(np.float64) / max(n, 1))
        else:
            g = grad_output
            if hasattr(g, "copy_to_host") or hasattr(g, "__cuda_array_interface__"):
                g = dev(g, "grad_output").copy_to_host()
            scale = C._scales(g, n, tl, reduction, batched, result)
    x3 = x.reshape(shape3) if x.ndim == 2 else x
    if x3.size and not x3.is_c_contiguous():
        raise ValueError("log_probs: this op needs a C-contiguous CUDA array")
    n_lab = max(int(2 * tl.max() + 1) if n else 1, 1)
    grad = cuda.device_array(shape3, dt) if want_grad else cuda.device_array((1, 1, 1), dt)
    nll = cuda.device_array(max(n, 1), np.float64)
    if n:
        f64 = np.float64
        i64 = np.int64
        rows = n_t if n_t else 1
        _ctc_kernel[min(n, MAX_SAMPLE_BLOCKS), TPB](
            x3, cuda.to_device(flat if flat.size else np.zeros(1, i64)),
            cuda.to_device(offsets), cuda.to_device(il), cuda.to_device(tl), blank,
            cuda.to_device(scale if want_grad else np.zeros(n)), bool(zero_infinity),
            bool(want_grad),
            cuda.device_array((n, n_lab), i64), cuda.device_array((n, n_lab), np.bool_),
            cuda.device_array((n, rows, n_lab), f64), cuda.device_array((n, rows, n_lab), i64),
            cuda.device_array((n, 2, n_lab), f64), cuda.device_array((n, 2, n_lab), i64),
            cuda.device_array((n, n_lab), f64), cuda.device_array((n, n_lab), i64),
            cuda.device_array((n, n_lab), f64), cuda.device_array((n, n_lab), i64),
            cuda.device_array((n, n_c), f64), cuda.device_array((n, n_c), i64),
            nll, grad)
    loss = None
    if grad_output is None:  # the forward, or _with_grad
        tl_dev = cuda.to_device(tl if n else np.zeros(1, np.int64))
        if reduction == "none":
            res = cuda.device_array(n, dt)
            if n:
                _reduce_kernel[1, 1](nll, tl_dev, 0, bool(zero_infinity), res)
            loss = res if batched else res.reshape(())
        else:
            res = cuda.device_array(1, dt)
            nll_n = nll if n else cuda.device_array(0, np.float64)
            _reduce_kernel[1, 1](nll_n, tl_dev, 2 if reduction == "mean" else 1,
                                 bool(zero_infinity), res)
            loss = res.reshape(())
    if not want_grad:
        return loss, None
    shape = tuple(x.shape)
    grad = grad.reshape(shape)
    if out is not None:
        dest = check_out(out, shape, dt, x)
        dest.copy_to_device(grad)
        grad = dest
    return loss, grad


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    return _run(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                zero_infinity, None, False, None)[0]


def ctc_loss_backward(grad_output, log_probs, targets, input_lengths, target_lengths, blank=0,
                      reduction="mean", zero_infinity=False, out=None):
    return _run(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                zero_infinity, grad_output, True, out)[1]


def ctc_loss_with_grad(log_probs, targets, input_lengths, target_lengths, blank=0,
                       reduction="mean", zero_infinity=False, out=None):
    return _run(log_probs, targets, input_lengths, target_lengths, blank, reduction,
                zero_infinity, None, True, out)
