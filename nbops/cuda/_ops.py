"""CUDA implementations behind the public functions (device arrays in and out).

Each function here is called by the public ``nbops.<op>`` after its first line
found a device array; it validates the rest of the arguments (every array
argument must be on the device too: nbops never copies between host and
device behind the caller's back), launches the kernels and returns Numba
device arrays.
"""

import numpy as np
from numba import cuda

from .._ops import plan as P
from . import _alpha_dropout as AD
from . import _kernels as K

__all__ = ["unary", "binary", "prelu", "row_op", "row_backward", "prelu_backward",
           "cross_entropy", "nll_loss", "cross_entropy_backward", "cross_entropy_with_grad",
           "nll_loss_backward", "nll_loss_with_grad", "pointwise_loss", "kl_div",
           "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "pointwise_loss_backward", "pointwise_loss_with_grad", "kl_div_backward",
           "kl_div_with_grad", "binary_cross_entropy_backward",
           "binary_cross_entropy_with_grad", "binary_cross_entropy_with_logits_backward",
           "binary_cross_entropy_with_logits_with_grad", "batch_norm",
           "linear", "linear_backward", "pairwise_distance", "dropout", "dropout2d", "dropout3d",
           "dropout_mask", "batch_norm_backward", "pairwise_distance_backward",
           "dropout_backward", "layer_norm", "rms_norm", "layer_norm_backward",
           "rms_norm_backward", "group_norm", "group_norm_backward", "instance_norm",
           "ctc_loss", "ctc_loss_backward", "ctc_loss_with_grad", "cosine_similarity",
           "cosine_similarity_backward", "normalize", "normalize_backward", "pdist",
           "pdist_backward", "cdist", "cdist_backward",
           "local_response_norm", "local_response_norm_backward", "bilinear",
           "bilinear_backward", "dropout1d", "alpha_dropout",
           "feature_alpha_dropout", "alpha_dropout_backward", "glu", "glu_backward", "rrelu",
           "rrelu_backward", "gumbel_softmax", "gumbel_softmax_backward"]


# ------------------------------------------------------------------ arguments
def _is_dev(x):
    return hasattr(x, "__cuda_array_interface__") or type(x).__name__ == "FakeCUDAArray"


def dev(x, name="input"):
    """``x`` (known to be a device array) as a Numba device array, zero-copy."""
    if hasattr(x, "copy_to_host"):  # a Numba device array (or the simulator's)
        return x
    if hasattr(x, "__cuda_array_interface__"):  # CuPy, torch, ...: zero-copy view
        return cuda.as_cuda_array(x)
    if not _is_dev(x):
        raise TypeError(
            f"{name}: expected a CUDA device array, as the other array arguments of this "
            f"call are on the device; got {type(x).__name__}. nbops never copies between "
            "host and device implicitly: move it with numba.cuda.to_device(...) first")
    return x


def float_dtype(a, name="input"):
    dt = np.dtype(a.dtype)
    if dt.kind == "c":
        raise TypeError(f"{name}: complex input is not supported (got dtype {dt})")
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{name}: CUDA arrays must be float32 or float64 (got dtype {dt}); "
                        "cast on the device first")
    return dt


def is_contig(a):
    return a.is_c_contiguous() or a.is_f_contiguous()


def flat(a, name="input"):
    """1-D view of a contiguous device array, in memory order."""
    if a.size == 0:
        return a.reshape(0) if a.ndim != 1 else a
    if a.ndim == 1 and a.is_c_contiguous():
        return a
    if not is_contig(a):
        raise ValueError(f"{name}: non-contiguous CUDA arrays are not supported yet; "
                         "make a contiguous copy on the device first")
    return a.ravel(order="A")


def cflat(a, name="input"):
    """1-D view of a C-contiguous device array (row-major order matters)."""
    if a.size and not a.is_c_contiguous():
        raise ValueError(f"{name}: this op needs a C-contiguous CUDA array")
    return a.reshape(a.size)


def empty(shape, dtype, like=None):
    order = "C"
    if like is not None and like.ndim > 1 and like.is_f_contiguous() \
            and not like.is_c_contiguous():
        order = "F"
    return cuda.device_array(shape, dtype, order=order)


def check_out(out, shape, dtype, like):
    out = dev(out, "out")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, expected {tuple(shape)}")
    if np.dtype(out.dtype) != dtype:
        raise TypeError(f"out has dtype {out.dtype}, expected {dtype}")
    if out.size and not (out.is_c_contiguous() and like.is_c_contiguous()
                         or out.is_f_contiguous() and like.is_f_contiguous()):
        raise ValueError("out: must be contiguous in the input's memory order")
    return out


# ------------------------------------------------------------------ elementwise
def unary(op, input, params=(), inplace=False, out=None):
    """``op`` (an :class:`nbops._ops.elementwise.Op`) on a device array."""
    x = dev(input)
    dt = float_dtype(x)
    params = tuple(dt.type(p) for p in params)
    if inplace:
        if out is not None:
            raise ValueError("give inplace=True or out=, not both")
        flat(x)
        dest = x
    elif out is not None:
        dest = check_out(out, x.shape, dt, x)
    else:
        dest = empty(x.shape, dt, x)
    if x.size:
        K.run_map(op, flat(x), flat(dest, "out"), params)
    return dest


def binary(op, grad_output, residual, residual_name, params=(), out=None):
    """The backward ``op`` of an elementwise op (``out = core(g, r, *params)``) on
    device arrays of one float dtype and the same shape (no broadcasting)."""
    g = dev(grad_output, "grad_output")
    r = dev(residual, residual_name)
    dt = float_dtype(g, "grad_output")
    _same_float(r, dt, residual_name)
    if tuple(g.shape) != tuple(r.shape):
        raise ValueError(f"grad_output has shape {tuple(g.shape)} but {residual_name} has "
                         f"shape {tuple(r.shape)}: they must be the same")
    params = tuple(dt.type(p) for p in params)
    if g.size and not (g.is_c_contiguous() and r.is_c_contiguous()
                       or g.is_f_contiguous() and r.is_f_contiguous()):
        raise ValueError(f"grad_output and {residual_name}: must be contiguous in one "
                         "memory order; make contiguous copies on the device first")
    dest = check_out(out, g.shape, dt, g) if out is not None else empty(g.shape, dt, g)
    if g.size:
        K.run_map2(op, flat(g, "grad_output"), flat(r, residual_name), flat(dest, "out"),
                   params)
    return dest


def increment(counter):
    """``counter += 1`` in place on the device (a 0-d or 1-element integer device
    array, e.g. BatchNorm's ``num_batches_tracked``): one tiny kernel, no sync."""
    d = counter if hasattr(counter, "copy_to_host") else cuda.as_cuda_array(counter)
    if d.size != 1 or np.dtype(d.dtype).kind not in "iu":
        raise ValueError("counter must be a 1-element integer device array")
    K.increment(d.reshape(1))


def prelu(input, weight, out=None):
    x = dev(input)
    w = dev(weight, "weight")
    dt = float_dtype(x)
    if np.dtype(w.dtype) != dt:
        raise TypeError(f"weight: dtype {w.dtype} differs from input's {dt}")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.ndim > 1 or w.size not in (1, channels):
        raise ValueError(f"weight must be 1-D with 1 or {channels} (the number of channels, "
                         f"input.shape[1]) elements, got shape {w.shape}")
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    inner = int(np.prod(x.shape[2:], dtype=np.int64)) if x.ndim > 2 else 1
    if x.size:
        K.run_prelu(cflat(x), cflat(w.reshape(w.size), "weight"), cflat(dest, "out"),
                    max(inner, 1), w.size)
    return dest


def _same_float(a, dt, name):
    if np.dtype(a.dtype) != dt:
        raise TypeError(f"{name}: dtype {a.dtype} differs from input's {dt} "
                        "(CUDA arrays of one call must share their float dtype)")


# ------------------------------------------------------------------ row ops (softmax family)
def row_op(entry, input, axis=-1, dtype=None, dim=None, out=None):
    """A row op of the op table (``entry``: its :class:`~nbops._ops.table.RowOp`)."""
    x = dev(input)
    dt = float_dtype(x)
    if dtype is not None and np.dtype(dtype) != dt:
        raise TypeError(f"dtype={dtype!r}: casting is not supported on CUDA arrays; "
                        "cast the input on the device first")
    _, O, C, I = P.axis_plan(tuple(x.shape), axis, dim)
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    if x.size == 0:
        return dest
    K.run_row_op(entry.core, cflat(x), cflat(dest, "out"), O, C, I, entry.sgn)
    return dest


def row_backward(entry, grad_output, output, axis=-1, dim=None, out=None):
    """The backward of a row op of the op table (``entry``: its RowOp)."""
    g = dev(grad_output, "grad_output")
    y = dev(output, "output")
    dt = float_dtype(g, "grad_output")
    if np.dtype(y.dtype) != dt:
        raise TypeError(f"output: dtype {y.dtype} differs from grad_output's {dt} "
                        "(CUDA arrays of one call must share their float dtype)")
    if tuple(g.shape) != tuple(y.shape):
        raise ValueError(f"grad_output has shape {tuple(g.shape)} but output has shape "
                         f"{tuple(y.shape)}: they must be the same")
    _, O, C, I = P.axis_plan(tuple(g.shape), axis, dim)
    dest = check_out(out, g.shape, dt, g) if out is not None else empty(g.shape, dt)
    if g.size == 0:
        return dest
    K.run_row_grad(entry.core, cflat(g, "grad_output"), cflat(y, "output"),
                   cflat(dest, "out"), O, C, I, entry.sgn)
    return dest


def prelu_backward(grad_output, input, weight, out=None):
    """``(grad_input, grad_weight)`` of prelu on device arrays of one float dtype."""
    g = dev(grad_output, "grad_output")
    x = dev(input, "input")
    w = dev(weight, "weight")
    dt = float_dtype(g, "grad_output")
    for name, a in (("input", x), ("weight", w)):
        if np.dtype(a.dtype) != dt:
            raise TypeError(f"{name}: dtype {a.dtype} differs from grad_output's {dt} "
                            "(CUDA arrays of one call must share their float dtype)")
    if tuple(g.shape) != tuple(x.shape):
        raise ValueError(f"grad_output has shape {tuple(g.shape)} but input has shape "
                         f"{tuple(x.shape)}: they must be the same")
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.ndim > 1 or w.size not in (1, channels):
        raise ValueError(f"weight must be 1-D with 1 or {channels} (the number of channels, "
                         f"input.shape[1]) elements, got shape {w.shape}")
    out_i, out_w = (None, None) if out is None else out
    gi = check_out(out_i, x.shape, dt, x) if out_i is not None else empty(x.shape, dt)
    gw = check_out(out_w, w.shape, dt, w) if out_w is not None else \
        cuda.device_array(w.shape, dt)
    gwf = cflat(gw, "out")
    if x.size == 0:
        if w.size:
            K.run_fill(gwf, dt.type(0))
        return gi, gw
    inner = x.size if w.size == 1 else x.size // (x.shape[0] * channels)
    K.run_prelu_grad(cflat(g, "grad_output"), cflat(x), cflat(w.reshape(w.size), "weight"),
                     cflat(gi, "out"), gwf, inner)
    return gi, gw


# ------------------------------------------------------------------ losses
def _pair(input, target):
    x = dev(input)
    t = dev(target, "target")
    dt = float_dtype(x)
    _same_float(t, dt, "target")
    if tuple(x.shape) != tuple(t.shape):
        raise ValueError(f"target: shape {t.shape} differs from input's {x.shape} "
                         "(broadcasting is not supported on CUDA arrays)")
    return x, t, dt


def _loss(core, operands, x, t, dt, red, a=None, w=None, p=0.0, wmean=False):
    """An elementwise loss reduced as ``red`` (a :class:`~nbops._ops.plan.ReductionPlan`).

    ``operands`` names the core's arguments: ``K.LOSS_XT`` (x, t),
    ``K.LOSS_XT_PARAM`` (x, t, p) or ``K.LOSS_XT_AUX`` (x, t, a[i % a.size]).
    """
    xf, tf = cflat(x), cflat(t, "target")
    batch = red.batch_divisor(x.shape)
    if red.mode == "none":
        out = cuda.device_array(x.shape, dt)
        if x.size:
            K.run_loss(core, operands, xf, tf, a, w, dt.type(p), cflat(out))
            if batch != 1:  # kl_div's 'batchmean' under the legacy flags, as PyTorch
                K.run_scale(cflat(out), cflat(out), dt.type(1.0 / batch))
        return out
    if x.size == 0:
        partials = cuda.to_device(np.zeros(1))
    else:
        partials = K.run_loss(core, operands, xf, tf, a, w, dt.type(p))
    if wmean and red.mode == "mean" and w is not None:  # sum(w * l) / sum(w), as PyTorch
        return K.finish(partials, dt, pb=K.partial_sums(w))
    denom = x.size if red.mode == "mean" else 1
    return K.finish(partials, dt, denom=denom * batch)


def _weight(weight, x, dt, name="weight"):
    if weight is None:
        return None
    w = dev(weight, name)
    _same_float(w, dt, name)
    if tuple(w.shape) != tuple(x.shape):
        raise ValueError(f"{name}: CUDA losses need a weight of the input's shape "
                         f"{x.shape}, got {w.shape}")
    return cflat(w, name)


def _red(reduction, size_average, reduce, batchmean=False):
    """The reduction plan (warns, at the user's call, for the legacy flags)."""
    return P.reduction_plan(reduction, size_average, reduce, batchmean=batchmean,
                            stacklevel=4)


def pointwise_loss(entry, params, input, target, size_average, reduce, reduction, weight,
                   weight_sum=True):
    """A pointwise loss of the op table (nbops/_ops/table.py): ``entry.core`` of
    (x, t) or of (x, t, params[0]), weighted, reduced (parameters already checked);
    with ``weight_sum`` a weighted 'mean' divides by ``weight.sum()``."""
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce)
    w = _weight(weight, x, dt)
    if params:
        return _loss(entry.core, K.LOSS_XT_PARAM, x, t, dt, red, w=w, p=params[0],
                     wmean=weight_sum)
    return _loss(entry.core, K.LOSS_XT, x, t, dt, red, w=w, wmean=weight_sum)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean",
           log_target=False):
    from ..scalar import losses as S
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce, batchmean=True)
    core = S.kl_div_log_target if log_target else S.kl_div
    return _loss(core, K.LOSS_XT, x, t, dt, red)


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    from ..scalar import losses as S
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce)
    w = _weight(weight, x, dt)
    if x.size:
        if K.any_outside_unit(cflat(x)):
            raise ValueError("input: binary_cross_entropy needs probabilities in [0, 1] "
                             "(found a value outside [0, 1] or NaN)")
        if K.any_outside_unit(cflat(t, "target")):
            raise ValueError("target: binary_cross_entropy needs probabilities in [0, 1] "
                             "(found a value outside [0, 1] or NaN)")
    return _loss(S.binary_cross_entropy, K.LOSS_XT, x, t, dt, red, w=w)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    from ..scalar import losses as S
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce)
    w = _weight(weight, x, dt)
    if pos_weight is None:
        return _loss(S.binary_cross_entropy_with_logits, K.LOSS_XT, x, t, dt, red, w=w)
    pw = dev(pos_weight, "pos_weight")
    _same_float(pw, dt, "pos_weight")
    last = x.shape[x.ndim - 1] if x.ndim else 1
    if pw.size not in (1, last) or pw.ndim > 1:
        raise ValueError(f"pos_weight: CUDA losses need 1 or {last} (input.shape[-1]) "
                         f"values in a 1-D array, got shape {pw.shape}")
    return _loss(S.binary_cross_entropy_with_logits_pos_weight, K.LOSS_XT_AUX, x, t, dt, red,
                 a=cflat(pw.reshape(pw.size), "pos_weight"), w=w)


# ------------------------------------------------------------------ losses: backward
def _grad_output(grad_output, mode, x, dt):
    """(per-element gradient or None, scalar gradient): a device array of the input's
    shape and dtype for ``'none'``, else a real scalar (a 0-d device array is read)."""
    if mode == "none":
        g = dev(grad_output, "grad_output")
        _same_float(g, dt, "grad_output")
        if tuple(g.shape) != tuple(x.shape):
            raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected the shape of "
                             f"the unreduced loss {tuple(x.shape)} (reduction='none')")
        return cflat(g, "grad_output"), 1.0
    if isinstance(grad_output, (bool, np.bool_)):
        raise TypeError("grad_output: expected a real number, got a bool")
    if _is_dev(grad_output):
        g = dev(grad_output, "grad_output")
        if tuple(g.shape) not in ((), (1,)):
            raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected a scalar for "
                             f"reduction='{mode}'")
        return None, float(g.copy_to_host().reshape(()))
    if isinstance(grad_output, (int, float, np.integer, np.floating)):
        return None, float(grad_output)
    arr = np.asarray(grad_output)
    if arr.shape != ():
        raise ValueError(f"grad_output has shape {arr.shape}, expected a scalar for "
                         f"reduction='{mode}'")
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"grad_output: expected a real number, got dtype {arr.dtype}")
    return None, float(arr)


def _loss_grad(core, gcore, operands, x, t, dt, red, grad_output=1.0, a=None, w=None,
               p=0.0, wmean=False, out=None, want=False):
    """The gradient of ``x`` of an elementwise loss reduced as ``red`` (the backward),
    or with ``want`` the pair (loss, gradient) from one kernel."""
    g, c = (None, 1.0) if want else _grad_output(grad_output, red.mode, x, dt)
    dest = check_out(out, x.shape, dt, x) if out is not None else cuda.device_array(x.shape,
                                                                                    dt)
    batch = red.batch_divisor(x.shape)
    if red.mode == "mean" and wmean and w is not None:  # sum(w * l) / sum(w), as PyTorch
        wsum = K.finish(K.partial_sums(w), np.dtype(np.float64)) if x.size else None
        divisor = float(wsum.copy_to_host().reshape(())) if x.size else 0.0
    else:
        divisor = (x.size if red.mode == "mean" else 1) * batch
    if red.mode != "none" and divisor != 1:
        c = c / divisor if divisor else c * np.inf
    xf, tf, df = cflat(x), cflat(t, "target"), cflat(dest, "out")
    if not want:
        if x.size:
            K.run_loss_grad(core, gcore, operands, xf, tf, a, w, g, dt.type(c), dt.type(p), df)
            if red.mode == "none" and batch != 1:  # kl_div's 'batchmean' under the legacy
                K.run_scale(df, df, dt.type(1.0 / batch))  # flags, as the forward
        return dest
    if x.size == 0:
        partials = cuda.to_device(np.zeros(1))
    else:
        partials = K.run_loss_grad(core, gcore, operands, xf, tf, a, w, None, dt.type(c),
                                   dt.type(p), df, want=True)
    if wmean and red.mode == "mean" and w is not None:
        return K.finish(partials, dt, pb=K.partial_sums(w)), dest
    denom = x.size if red.mode == "mean" else 1
    return K.finish(partials, dt, denom=denom * batch), dest


def _with_grad_none(forward, backward, x, dt):
    """(losses, gradient of their sum) of reduction 'none': the forward, then the
    backward with ``grad_output`` all ones."""
    ones = cuda.device_array(x.shape, dt)
    if x.size:
        K.run_fill(cflat(ones), dt.type(1.0))
    return forward(), backward(ones)


def pointwise_loss_backward(entry, params, grad_output, input, target, size_average, reduce,
                            reduction, weight, weight_sum=True, out=None):
    """The backward of a pointwise loss of the op table (``entry.backward``)."""
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce)
    w = _weight(weight, x, dt)
    operands = K.LOSS_XT_PARAM if params else K.LOSS_XT
    return _loss_grad(entry.core, entry.backward, operands, x, t, dt, red, grad_output, w=w,
                      p=params[0] if params else 0.0, wmean=weight_sum, out=out)


def pointwise_loss_with_grad(entry, params, input, target, size_average, reduce, reduction,
                             weight, weight_sum=True):
    """``(loss, grad_input)`` of a pointwise loss of the op table, from one kernel."""
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce)
    w = _weight(weight, x, dt)
    operands = K.LOSS_XT_PARAM if params else K.LOSS_XT
    p = params[0] if params else 0.0
    if red.mode == "none":
        return _with_grad_none(
            lambda: _loss(entry.core, operands, x, t, dt, red, w=w, p=p, wmean=weight_sum),
            lambda ones: _loss_grad(entry.core, entry.backward, operands, x, t, dt, red, ones,
                                    w=w, p=p, wmean=weight_sum), x, dt)
    return _loss_grad(entry.core, entry.backward, operands, x, t, dt, red, w=w, p=p,
                      wmean=weight_sum, want=True)


def _kl_cores(log_target):
    from ..scalar import losses as S
    if log_target:
        return S.kl_div_log_target, S.kl_div_log_target_backward
    return S.kl_div, S.kl_div_backward


def kl_div_backward(grad_output, input, target, size_average=None, reduce=None,
                    reduction="mean", log_target=False, out=None):
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce, batchmean=True)
    core, gcore = _kl_cores(log_target)
    return _loss_grad(core, gcore, K.LOSS_XT, x, t, dt, red, grad_output, out=out)


def kl_div_with_grad(input, target, size_average=None, reduce=None, reduction="mean",
                     log_target=False):
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce, batchmean=True)
    core, gcore = _kl_cores(log_target)
    if red.mode == "none":
        return _with_grad_none(
            lambda: _loss(core, K.LOSS_XT, x, t, dt, red),
            lambda ones: _loss_grad(core, gcore, K.LOSS_XT, x, t, dt, red, ones), x, dt)
    return _loss_grad(core, gcore, K.LOSS_XT, x, t, dt, red, want=True)


def binary_cross_entropy_backward(grad_output, input, target, weight=None, size_average=None,
                                  reduce=None, reduction="mean", out=None):
    from ..scalar import losses as S
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce)
    w = _weight(weight, x, dt)
    return _loss_grad(S.binary_cross_entropy, S.binary_cross_entropy_backward, K.LOSS_XT, x, t,
                      dt, red, grad_output, w=w, out=out)


def binary_cross_entropy_with_grad(input, target, weight=None, size_average=None, reduce=None,
                                   reduction="mean"):
    from ..scalar import losses as S
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce)
    w = _weight(weight, x, dt)
    if red.mode == "none":
        return _with_grad_none(
            lambda: binary_cross_entropy(x, t, weight, reduction="none"),
            lambda ones: _loss_grad(S.binary_cross_entropy, S.binary_cross_entropy_backward,
                                    K.LOSS_XT, x, t, dt, red, ones, w=w), x, dt)
    if x.size:
        if K.any_outside_unit(cflat(x)):
            raise ValueError("input: binary_cross_entropy needs probabilities in [0, 1] "
                             "(found a value outside [0, 1] or NaN)")
        if K.any_outside_unit(cflat(t, "target")):
            raise ValueError("target: binary_cross_entropy needs probabilities in [0, 1] "
                             "(found a value outside [0, 1] or NaN)")
    return _loss_grad(S.binary_cross_entropy, S.binary_cross_entropy_backward, K.LOSS_XT, x, t,
                      dt, red, w=w, want=True)


def _logits_cores(x, dt, pos_weight):
    """(core, derivative core, operands, pos_weight as a flat device array or None)."""
    from ..scalar import losses as S
    if pos_weight is None:
        return (S.binary_cross_entropy_with_logits, S.binary_cross_entropy_with_logits_backward,
                K.LOSS_XT, None)
    pw = dev(pos_weight, "pos_weight")
    _same_float(pw, dt, "pos_weight")
    last = x.shape[x.ndim - 1] if x.ndim else 1
    if pw.size not in (1, last) or pw.ndim > 1:
        raise ValueError(f"pos_weight: CUDA losses need 1 or {last} (input.shape[-1]) "
                         f"values in a 1-D array, got shape {pw.shape}")
    return (S.binary_cross_entropy_with_logits_pos_weight,
            S.binary_cross_entropy_with_logits_pos_weight_backward, K.LOSS_XT_AUX,
            cflat(pw.reshape(pw.size), "pos_weight"))


def binary_cross_entropy_with_logits_backward(grad_output, input, target, weight=None,
                                              size_average=None, reduce=None, reduction="mean",
                                              pos_weight=None, out=None):
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce)
    w = _weight(weight, x, dt)
    core, gcore, operands, a = _logits_cores(x, dt, pos_weight)
    return _loss_grad(core, gcore, operands, x, t, dt, red, grad_output, a=a, w=w, out=out)


def binary_cross_entropy_with_logits_with_grad(input, target, weight=None, size_average=None,
                                               reduce=None, reduction="mean", pos_weight=None):
    x, t, dt = _pair(input, target)
    red = _red(reduction, size_average, reduce)
    w = _weight(weight, x, dt)
    core, gcore, operands, a = _logits_cores(x, dt, pos_weight)
    if red.mode == "none":
        return _with_grad_none(
            lambda: _loss(core, operands, x, t, dt, red, a=a, w=w),
            lambda ones: _loss_grad(core, gcore, operands, x, t, dt, red, ones, a=a, w=w),
            x, dt)
    return _loss_grad(core, gcore, operands, x, t, dt, red, a=a, w=w, want=True)


# ------------------------------------------------------------------ cross_entropy / nll
def _class_loss(input, target, weight, ignore_index, reduction, size_average, reduce,
                label_smoothing, lse):
    x = dev(input)
    t = dev(target, "target")
    dt = float_dtype(x)
    w = None if weight is None else dev(weight, "weight")
    plan = P.class_loss_plan(tuple(x.shape), tuple(t.shape), np.dtype(t.dtype),
                             None if w is None else tuple(w.shape), ignore_index,
                             label_smoothing, reduction, size_average, reduce, lse,
                             stacklevel=4)
    O, C, I = plan.outer, plan.classes, plan.inner
    tshape, eps, red = plan.loss_shape, plan.label_smoothing, plan.reduction.mode
    ignore_index = plan.ignore_index
    if w is not None:
        _same_float(w, dt, "weight")
    n = O * I
    loss = cuda.device_array(max(n, 1), dt)
    xf = cflat(x)
    if plan.probabilities:
        _same_float(t, dt, "target")
        if n:
            K.run_ce_prob(xf, cflat(t, "target"), w, O, C, I, eps, lse, loss)
        if red == "none":
            return loss[:n].reshape(tshape) if n else cuda.device_array(tshape, dt)
        return K.finish(K.partial_sums(loss[:n]) if n else cuda.to_device(np.zeros(1)), dt,
                        denom=n if red == "mean" else 1)
    wts = cuda.device_array(max(n, 1), dt)
    if n and K.run_ce(xf, cflat(t.reshape(n) if t.ndim != 1 else t, "target"), w, O, C, I,
                      ignore_index, eps, lse, loss, wts):
        raise ValueError(P.target_range_message(C, ignore_index))
    if red == "none":
        return loss[:n].reshape(tshape) if n else cuda.device_array(tshape, dt)
    if n == 0:
        z = cuda.to_device(np.zeros(1))
        return K.finish(z, dt, pb=z if red == "mean" else None)
    pl = K.partial_sums(loss[:n])
    if red == "sum":
        return K.finish(pl, dt)
    return K.finish(pl, dt, pb=K.partial_sums(wts[:n]))


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    return _class_loss(input, target, weight, ignore_index, reduction, size_average, reduce,
                       label_smoothing, True)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    return _class_loss(input, target, weight, ignore_index, reduction, size_average, reduce,
                       0.0, False)


# ------------------------------------------- cross_entropy / nll_loss gradients
def _grad_values(grad_output, plan, dt, n):
    """``grad_output`` as a flat device array of ``dt`` (a host number or a device
    array of the forward output's shape) and its stride (1: per sample)."""
    red = plan.reduction.mode
    if not _is_dev(grad_output):
        if red == "none" or np.ndim(grad_output) != 0:
            raise TypeError("grad_output: expected a CUDA device array of the per-sample "
                            "losses' shape, or a number for reduction='mean'/'sum'")
        v = np.asarray(grad_output)
        if v.dtype.kind not in "iuf":
            raise TypeError(f"grad_output: expected a real number, got dtype {v.dtype}")
        return cuda.to_device(np.full(1, v, dt)), 0
    g = dev(grad_output, "grad_output")
    _same_float(g, dt, "grad_output")
    expected = plan.loss_shape if red == "none" else ()
    if tuple(g.shape) != tuple(expected):
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected {tuple(expected)} "
                         f"(the shape of the forward's output with reduction={red!r})")
    if red == "none":
        return (cflat(g, "grad_output") if n else cuda.device_array(1, dt)), 1
    return g.reshape(1), 0


def _class_grad(input, target, weight, ignore_index, reduction, size_average, reduce,
                label_smoothing, lse, grad_output, out, fused):
    """(loss, grad_input) on the device; ``fused`` false: grad_output given, the loss
    is not returned (None)."""
    x = dev(input)
    t = dev(target, "target")
    dt = float_dtype(x)
    w = None if weight is None else dev(weight, "weight")
    plan = P.class_loss_plan(tuple(x.shape), tuple(t.shape), np.dtype(t.dtype),
                             None if w is None else tuple(w.shape), ignore_index,
                             label_smoothing, reduction, size_average, reduce, lse,
                             stacklevel=4)
    if w is not None:
        _same_float(w, dt, "weight")
    O, C, I = plan.outer, plan.classes, plan.inner
    n, eps, red = O * I, plan.label_smoothing, plan.reduction.mode
    if fused:
        g, gstride = cuda.to_device(np.ones(1, dt)), 0
    else:
        g, gstride = _grad_values(grad_output, plan, dt, n)
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    if out is not None and x.size and not dest.is_c_contiguous():
        raise ValueError("out: this op needs a C-contiguous CUDA array")
    xf = cflat(x)
    # *_with_grad: the forward (its loss is returned; it checks the class indices).
    # The class indices are checked before the gradient kernel runs, and the target
    # weights of the 'mean' divisor gathered, by nll_loss's forward kernel (one read
    # per sample).
    loss = None
    if fused:
        loss = _class_loss(x, t, w, ignore_index, reduction, size_average, reduce,
                           label_smoothing, lse)
    wts = None
    if not plan.probabilities and n:
        tf = cflat(t.reshape(n) if t.ndim != 1 else t, "target")
        if red == "mean" or not fused:
            wts = cuda.device_array(n, dt)
            if K.run_ce(xf, tf, w, O, C, I, plan.ignore_index, 0.0, False,
                        cuda.device_array(n, dt), wts):
                raise ValueError(P.target_range_message(C, plan.ignore_index))
    if n == 0 or C == 0:
        if x.size:
            K.run_fill(cflat(dest, "out"), dt.type(0))
        return loss, dest
    if plan.probabilities:
        den = cuda.to_device(np.array([float(n) if red == "mean" else 1.0]))
        K.run_ce_prob_grad(xf, cflat(t, "target"), w, g, gstride, den, O, C, I, eps,
                           cflat(dest, "out"))
        return loss, dest
    den = K.weight_total(wts) if red == "mean" else cuda.to_device(np.ones(1))
    wsum = 0.0
    if eps:
        wsum = float(w.copy_to_host().sum(dtype=np.float64)) if w is not None else float(C)
    K.run_ce_grad(xf, tf, w, g, gstride, den, O, C, I, plan.ignore_index, eps, wsum, lse,
                  cflat(dest, "out"))
    return loss, dest


def cross_entropy_backward(input, target, grad_output, weight=None, size_average=None,
                           ignore_index=-100, reduce=None, reduction="mean",
                           label_smoothing=0.0, out=None):
    return _class_grad(input, target, weight, ignore_index, reduction, size_average, reduce,
                       label_smoothing, True, grad_output, out, False)[1]


def cross_entropy_with_grad(input, target, weight=None, size_average=None, ignore_index=-100,
                            reduce=None, reduction="mean", label_smoothing=0.0, out=None):
    return _class_grad(input, target, weight, ignore_index, reduction, size_average, reduce,
                       label_smoothing, True, None, out, True)


def nll_loss_backward(input, target, grad_output, weight=None, size_average=None,
                      ignore_index=-100, reduce=None, reduction="mean", out=None):
    return _class_grad(input, target, weight, ignore_index, reduction, size_average, reduce,
                       0.0, False, grad_output, out, False)[1]


def nll_loss_with_grad(input, target, weight=None, size_average=None, ignore_index=-100,
                       reduce=None, reduction="mean", out=None):
    return _class_grad(input, target, weight, ignore_index, reduction, size_average, reduce,
                       0.0, False, None, out, True)


# ------------------------------------------------------------------ batch_norm
def _channel(v, name):
    """A per-channel vector on the device (its shape is checked by the plan)."""
    if v is None:
        return None
    a = dev(v, name)
    float_dtype(a, name)
    return a


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, out=None, return_stats=False):
    from .._ops.plan_norm import batch_norm_plan
    x = dev(input)
    dt = float_dtype(x)
    rm = _channel(running_mean, "running_mean")
    rv = _channel(running_var, "running_var")
    w = _channel(weight, "weight")
    b = _channel(bias, "bias")
    plan = batch_norm_plan(x.shape, rm, rv, w, b, training, momentum, eps)
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    if x.size == 0:  # PyTorch: empty result, running statistics untouched
        if return_stats:
            from .._ops.normalization import _empty_stats
            return (dest, *(cuda.to_device(a) for a in _empty_stats(
                plan, None if rm is None else rm.copy_to_host(),
                None if rv is None else rv.copy_to_host(), dt)))
        return dest
    stats = K.run_batch_norm(cflat(x), plan, rm, rv, w, b, cflat(dest, "out"))
    return (dest, *stats) if return_stats else dest


def batch_norm_backward(grad_output, input, mean, invstd, weight=None, training=False,
                        has_bias=None, out=None):
    """:func:`nbops.batch_norm_backward` on device arrays (C-contiguous)."""
    from .._ops.normalization import _backward_plan
    g = dev(grad_output, "grad_output")
    x = dev(input)
    dt = float_dtype(g, "grad_output")
    _same_float(x, dt, "input")
    training = bool(training)
    n_outer, channels, inner = _backward_plan(g, x, training)
    vectors = []
    for name, v in (("mean", mean), ("invstd", invstd), ("weight", weight)):
        v = _channel(v, name)
        if v is not None and tuple(v.shape) != (channels,):
            raise ValueError(f"{name} must have shape ({channels},) (the number of channels, "
                             f"input.shape[1]), got {tuple(v.shape)}")
        vectors.append(v)
    m, iv, w = vectors
    has_bias = weight is not None if has_bias is None else bool(has_bias)
    dest = check_out(out, x.shape, dt, x) if out is not None else empty(x.shape, dt)
    gw = cuda.device_array(channels, dt)
    gb = cuda.device_array(channels, dt)
    if x.size:
        K.run_batch_norm_backward(cflat(g, "grad_output"), cflat(x), channels, inner, m, iv, w,
                                  training, cflat(dest, "out"), gw, gb)
    elif channels:
        K.run_fill(gw, dt.type(0))
        K.run_fill(gb, dt.type(0))
    return dest, gw if w is not None else None, gb if has_bias else None


# ------------------------------------------------------------------ linear
def linear(input, weight, bias=None, out=None):
    x = dev(input)
    W = dev(weight, "weight")
    dt = float_dtype(x)
    _same_float(W, dt, "weight")
    if W.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got {W.shape}")
    Nout, Kin = W.shape
    if x.ndim == 0 or x.shape[x.ndim - 1] != Kin:
        raise ValueError(f"input: last axis must have {Kin} (in_features) elements, "
                         f"got shape {x.shape}")
    if bias is not None:
        bias = dev(bias, "bias")
        _same_float(bias, dt, "bias")
        if bias.ndim != 1 or bias.size != Nout:
            raise ValueError(f"bias must be 1-D with {Nout} elements, got {bias.shape}")
    oshape = tuple(x.shape[:-1]) + (Nout,)
    dest = check_out(out, oshape, dt, x) if out is not None else cuda.device_array(oshape, dt)
    M = x.size // Kin if Kin else int(np.prod(x.shape[:-1], dtype=np.int64))
    if M and Nout:
        a = cflat(x).reshape(M, Kin)
        if not W.is_c_contiguous():
            raise ValueError("weight: this op needs a C-contiguous CUDA array")
        K.run_linear(a, W, bias, cflat(dest, "out").reshape(M, Nout))
    return dest


def linear_backward(grad_output, input, weight, bias=None):
    """(grad_input, grad_weight, grad_bias) of linear on device arrays: the two
    products in the forward's tiled kernel (on transposed views), the bias's
    column sums in float64."""
    g = dev(grad_output, "grad_output")
    x = dev(input)
    W = dev(weight, "weight")
    dt = float_dtype(g, "grad_output")
    _same_float(x, dt, "input")
    _same_float(W, dt, "weight")
    if W.ndim != 2:
        raise ValueError(f"weight must be 2-D (out_features, in_features), got {W.shape}")
    Nout, Kin = W.shape
    if x.ndim == 0 or x.shape[x.ndim - 1] != Kin:
        raise ValueError(f"input: last axis must have {Kin} (in_features) elements, "
                         f"got shape {x.shape}")
    if tuple(g.shape) != tuple(x.shape[:-1]) + (Nout,):
        raise ValueError(f"grad_output must have the forward output's shape "
                         f"{tuple(x.shape[:-1]) + (Nout,)}, got {g.shape}")
    if bias is not None:
        bias = dev(bias, "bias")
        if bias.ndim != 1 or bias.size != Nout:
            raise ValueError(f"bias must be 1-D with {Nout} elements, got {bias.shape}")
    M = int(np.prod(x.shape[:-1], dtype=np.int64))
    g2 = cflat(g, "grad_output").reshape(M, Nout)
    x2 = cflat(x).reshape(M, Kin)
    grad_input = cuda.device_array((M, Kin), dt)
    grad_weight = cuda.device_array((Nout, Kin), dt)
    if M and Kin:
        K.run_linear(g2, W.T, None, grad_input)  # g W
    if Nout and Kin:
        K.run_linear(g2.T, x2.T, None, grad_weight)  # g^T x
    grad_bias = None
    if bias is not None:
        grad_bias = cuda.device_array(Nout, dt)
        if Nout:
            K.run_column_sums(g2, grad_bias)
    return grad_input.reshape(tuple(x.shape)), grad_weight, grad_bias


# ------------------------------------------------------------------ pairwise_distance
def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdim=False, out=None):
    from .._ops.plan_norm import pairwise_distance_plan
    a = dev(x1, "x1")
    b = dev(x2, "x2")
    dt = float_dtype(a, "x1")
    _same_float(b, dt, "x2")
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"x1 of shape {a.shape} and x2 of shape {b.shape}: CUDA arrays "
                         "must have the same shape (no broadcasting on CUDA yet)")
    plan = pairwise_distance_plan(a.shape, b.shape, p, eps, keepdim)
    if out is not None:
        dest = check_out(out, plan.out_shape, dt, a)
    else:
        dest = cuda.device_array(plan.out_shape, dt)
    if plan.rows:
        K.run_pdist(cflat(a, "x1"), cflat(b, "x2"), plan.rows, plan.dim, plan.p, plan.eps,
                    cflat(dest, "out"))
    return dest


def pairwise_distance_backward(grad_output, x1, x2, p=2.0, eps=1e-6, keepdim=False, out=None):
    """:func:`nbops.pairwise_distance_backward` on device arrays of one shape."""
    from .._ops.plan_norm import pairwise_distance_plan
    a = dev(x1, "x1")
    b = dev(x2, "x2")
    g = dev(grad_output, "grad_output")
    dt = float_dtype(a, "x1")
    _same_float(b, dt, "x2")
    _same_float(g, dt, "grad_output")
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"x1 of shape {a.shape} and x2 of shape {b.shape}: CUDA arrays "
                         "must have the same shape (no broadcasting on CUDA yet)")
    plan = pairwise_distance_plan(a.shape, b.shape, p, eps, keepdim)
    if tuple(g.shape) != plan.out_shape:
        raise ValueError(f"grad_output has shape {tuple(g.shape)}, expected {plan.out_shape} "
                         "(the forward's output shape)")
    if out is not None and not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise TypeError("out must be None or a pair (out_x1, out_x2) of arrays or None")
    dests = []
    for k, shape in enumerate((a.shape, b.shape)):
        o = None if out is None else out[k]
        dests.append(cuda.device_array(shape, dt) if o is None else
                     check_out(o, shape, dt, a))
    o1, o2 = dests
    if plan.rows and plan.dim:
        norm = cuda.device_array(plan.rows, dt)
        af, bf = cflat(a, "x1"), cflat(b, "x2")
        K.run_pdist(af, bf, plan.rows, plan.dim, plan.p, plan.eps, norm)
        K.run_pdist_grad(af, bf, plan.rows, plan.dim, plan.p, plan.eps, norm,
                         cflat(g, "grad_output"), cflat(o1, "out"), cflat(o2, "out"))
    elif a.size:
        K.run_fill(cflat(o1, "out"), dt.type(0))
        K.run_fill(cflat(o2, "out"), dt.type(0))
    return o1, o2


# ------------------------------------------------------------------ dropout
# The argument policy is the CPU path's (nbops/_ops/plan.py: p, the rng= ->
# Philox key, the channel structure, the rank warnings), so a seed means the
# same mask here as on the CPU; the kernels follow the CPU's counter/lane scheme.
def _dropout(input, p, training, inplace, rng, out, feature, mode="dropout"):
    """``mode``: ``"dropout"``, ``"alpha"`` or ``"alpha_grad"``, as the CPU driver's
    (nbops/_ops/dropout.py)."""
    x = dev(input)
    dt = float_dtype(x)
    plan = P.dropout_plan(tuple(x.shape), p, training, inplace, out is not None, feature)
    if inplace:
        target = x
    elif out is not None:
        target = check_out(out, x.shape, dt, x)
    else:
        target = None
    if plan.action == "identity":  # the input itself, as PyTorch
        if target is None or target is x:
            return input
        target.copy_to_device(x)
        return target
    xf = cflat(x)  # the mask is in C order
    dest = target if target is not None else cuda.device_array(x.shape, dt)
    df = cflat(dest, "out")
    if plan.action == "zero":  # input * 0, as PyTorch: NaN and inf give NaN
        K.run_scale(xf, df, dt.type(0))
        return input if inplace else dest
    channels, inner = plan.channels, plan.inner
    key = P.dropout_key(rng)  # last: a Generator advances only when the call succeeds
    t = P.dropout_threshold(p)
    zero = dt.type(0)
    if mode == "dropout":
        scale = P.dropout_scale(p, dt)
    else:
        scale, kept_shift, dropped_shift = P.alpha_dropout_constants(p, dt)
    if mode == "alpha":
        if channels is None or inner == 1:
            AD.run_alpha_dropout(xf, df, key, t, scale, zero, kept_shift, dropped_shift)
        else:  # one (multiplier, shift) pair per channel, from the same decisions
            mult = cuda.device_array(channels, dt)
            shift = cuda.device_array(channels, dt)
            K.run_mask(mult, key, t, scale, zero)
            K.run_mask(shift, key, t, kept_shift, dropped_shift)
            AD.run_channel_affine(xf, df, mult, shift, inner)
    elif channels is None or inner == 1:
        K.run_dropout(xf, df, key, t, scale, zero)
    else:
        mult = cuda.device_array(channels, dt)
        K.run_mask(mult, key, t, scale, zero)
        K.run_channel(xf, df, mult, inner)
    return input if inplace else dest


def dropout(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    return _dropout(input, P.check_p(p), training, inplace, rng, out, None)


def dropout2d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    p = P.check_p(p)
    P.warn_feature_rank("dropout2d", dev(input).ndim, stacklevel=3)
    return _dropout(input, p, training, inplace, rng, out, "dropout2d")


def dropout3d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    p = P.check_p(p)
    P.warn_feature_rank("dropout3d", dev(input).ndim, stacklevel=3)
    return _dropout(input, p, training, inplace, rng, out, "dropout3d")


def dropout1d(input, p=0.5, training=True, inplace=False, *, rng=None, out=None):
    p = P.check_p(p)
    P.check_dropout1d_rank(dev(input).ndim)
    return _dropout(input, p, training, inplace, rng, out, "dropout1d")


def alpha_dropout(input, p=0.5, training=False, inplace=False, *, rng=None, out=None):
    return _dropout(input, P.check_p(p), training, inplace, rng, out, None, "alpha")


def feature_alpha_dropout(input, p=0.5, training=False, inplace=False, *, rng=None,
                          out=None):
    return _dropout(input, P.check_p(p), training, inplace, rng, out,
                    "feature_alpha_dropout", "alpha")


def dropout_mask(shape, p, rng=None, dtype=np.float32):
    """:func:`nbops.dropout_mask` as a device array (the same mask for the same seed)."""
    shape = P.mask_shape(shape)
    p = P.check_p(p)
    dt = np.dtype(dtype)
    if dt == np.bool_:
        scale, zero = np.bool_(True), np.bool_(False)
    elif dt in (np.float32, np.float64):
        # p == 1: zeros, and no 1 / (1 - p) (the CPU path divides by zero there)
        scale, zero = (P.dropout_scale(p, dt) if p < 1.0 else dt.type(0)), dt.type(0)
    else:
        raise TypeError(f"dtype: CUDA dropout masks must be float32, float64 or bool, "
                        f"got {dt}")
    out = cuda.device_array(shape, dt)
    if out.size == 0:
        return out
    of = cflat(out, "out")
    if p == 0.0 or p == 1.0:  # draws nothing, as on the CPU
        K.run_fill(of, scale if p == 0.0 else zero)
        return out
    K.run_mask(of, P.dropout_key(rng), P.dropout_threshold(p), scale, zero)
    return out


def dropout_backward(grad_output, p, training, rng, out, feature):
    """The dropout backwards on a device array (``p`` and the int seed ``rng``
    already checked): the forward's mask from the same seed; a copy where the
    forward returns its input."""
    return _dropout_backward(grad_output, p, training, rng, out, feature, "dropout")


def alpha_dropout_backward(grad_output, p, training, rng, out, feature):
    """alpha_dropout_backward and feature_alpha_dropout_backward (``feature``) on a
    device array: ``grad_output`` times the forward's multiplier ``a`` or 0."""
    return _dropout_backward(grad_output, p, training, rng, out, feature, "alpha_grad")


def _dropout_backward(grad_output, p, training, rng, out, feature, mode):
    g = dev(grad_output, "grad_output")
    dt = float_dtype(g, "grad_output")
    if feature == "dropout1d":
        P.check_dropout1d_rank(g.ndim)
    if out is None and (not training or p == 0.0 or g.size == 0):
        res = empty(g.shape, dt, g)
        if g.size:
            res.copy_to_device(g)
        return res
    return _dropout(g, p, training, False, rng, out, feature, mode)


# ------------------------------------------------------------------ layer_norm, rms_norm
# (kernels and launchers in nbops/cuda/_norm_rows.py, which uses the helpers above)
def layer_norm(*args, **kwargs):
    from . import _norm_rows
    return _norm_rows.layer_norm(*args, **kwargs)


def rms_norm(*args, **kwargs):
    from . import _norm_rows
    return _norm_rows.rms_norm(*args, **kwargs)


def layer_norm_backward(*args, **kwargs):
    from . import _norm_rows
    return _norm_rows.layer_norm_backward(*args, **kwargs)


def rms_norm_backward(*args, **kwargs):
    from . import _norm_rows
    return _norm_rows.rms_norm_backward(*args, **kwargs)


# ------------------------------------------------------------------ group_norm, instance_norm
# (kernels and launchers in nbops/cuda/_norm_groups.py, which uses the helpers above)
def group_norm(*args, **kwargs):
    from . import _norm_groups
    return _norm_groups.group_norm(*args, **kwargs)


def group_norm_backward(*args, **kwargs):
    from . import _norm_groups
    return _norm_groups.group_norm_backward(*args, **kwargs)


def instance_norm(*args, **kwargs):
    from . import _norm_groups
    return _norm_groups.instance_norm(*args, **kwargs)


# ------------------------------------------------------------------ ctc_loss
# (kernels and launchers in nbops/cuda/_ctc.py, which uses the helpers above)
def ctc_loss(*args, **kwargs):
    from . import _ctc
    return _ctc.ctc_loss(*args, **kwargs)


def ctc_loss_backward(*args, **kwargs):
    from . import _ctc
    return _ctc.ctc_loss_backward(*args, **kwargs)


def ctc_loss_with_grad(*args, **kwargs):
    from . import _ctc
    return _ctc.ctc_loss_with_grad(*args, **kwargs)


# ------------------------------------------------------------------ similarities and distances
# (kernels and launchers in nbops/cuda/_similarity.py, which uses the helpers above)
def _similarity():
    from . import _similarity
    return _similarity


def cosine_similarity(*args, **kwargs):
    return _similarity().cosine_similarity(*args, **kwargs)


def cosine_similarity_backward(*args, **kwargs):
    return _similarity().cosine_similarity_backward(*args, **kwargs)


def normalize(*args, **kwargs):
    return _similarity().normalize(*args, **kwargs)


def normalize_backward(*args, **kwargs):
    return _similarity().normalize_backward(*args, **kwargs)


def pdist(*args, **kwargs):
    return _similarity().pdist(*args, **kwargs)


def pdist_backward(*args, **kwargs):
    return _similarity().pdist_backward(*args, **kwargs)


def cdist(*args, **kwargs):
    return _similarity().cdist(*args, **kwargs)


def cdist_backward(*args, **kwargs):
    return _similarity().cdist_backward(*args, **kwargs)


# ------------------------------------------------------------------ local_response_norm
# (kernels and launchers in nbops/cuda/_lrn.py, which uses the helpers above)
def local_response_norm(*args, **kwargs):
    from . import _lrn
    return _lrn.local_response_norm(*args, **kwargs)


def local_response_norm_backward(*args, **kwargs):
    from . import _lrn
    return _lrn.local_response_norm_backward(*args, **kwargs)


# ------------------------------------------------------------------ bilinear
# (kernels and launchers in nbops/cuda/_bilinear.py, which uses the helpers above)
def bilinear(*args, **kwargs):
    from . import _bilinear
    return _bilinear.bilinear(*args, **kwargs)


def bilinear_backward(*args, **kwargs):
    from . import _bilinear
    return _bilinear.bilinear_backward(*args, **kwargs)


# ------------------------------------------------------------------ glu, rrelu, gumbel_softmax
# (kernels and launchers in nbops/cuda/_glu.py, which uses the helpers above)
def glu(*args, **kwargs):
    from . import _glu
    return _glu.glu(*args, **kwargs)


def glu_backward(*args, **kwargs):
    from . import _glu
    return _glu.glu_backward(*args, **kwargs)


def rrelu(*args, **kwargs):
    from . import _glu
    return _glu.rrelu(*args, **kwargs)


def rrelu_backward(*args, **kwargs):
    from . import _glu
    return _glu.rrelu_backward(*args, **kwargs)


def gumbel_softmax(*args, **kwargs):
    from . import _glu
    return _glu.gumbel_softmax(*args, **kwargs)


def gumbel_softmax_backward(*args, **kwargs):
    from . import _glu
    return _glu.gumbel_softmax_backward(*args, **kwargs)
