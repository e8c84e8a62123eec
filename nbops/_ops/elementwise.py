"""The machinery shared by every elementwise op: one pair of kernels for all.

An :class:`Op` names a scalar core. Numba sees each ``Op`` as a distinct type
(``nbops.Op(relu)``), so the two module-level kernels below compile one
specialization per (op, dtype), and those specializations are cached on disk
like any other (a kernel that takes a *function* argument is not). Inside the
kernels, :func:`apply` resolves the op to its core at compile time and inlines
it, so the loop vectorizes exactly as a hand-written one would.
"""

import numpy as np
from numba import prange, types
from numba.core import errors
from numba.core.imputils import lower_constant
from numba.extending import NativeValue, models, overload, register_model, typeof_impl, unbox

from .. import _config, _memory
from .._launch import entry_point, launch, remembered_entry_point, serial_below
from .._validate import (
    as_array,
    check_inplace,
    check_out,
    dask_ops,
    is_dask_array,
    is_device_array,
    overlaps_differently,
    result_dtype,
)
from ..cuda import ops as cuda_ops
from ..scalar._math import as_float, const


class Op:
    """A named scalar core ``core(x, *params)`` with ``nparams`` hyperparameters."""

    registry = {}

    def __init__(self, name, core, nparams):
        self.name, self.core, self.nparams = name, core, nparams
        Op.registry[name] = self

    def __repr__(self):
        return f"Op({self.name})"


class OpType(types.Dummy):
    """Numba type of an :class:`Op`: carries only the op's name."""

    def __init__(self, name):
        self.op_name = name
        super().__init__(name=f"nbops.Op({name})")


@typeof_impl.register(Op)
def _typeof_op(val, context):
    return OpType(val.name)


register_model(OpType)(models.OpaqueModel)


@unbox(OpType)
def _unbox_op(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


@lower_constant(OpType)
def _lower_op_constant(context, builder, ty, pyval):
    return context.get_dummy_value()


def apply(op, x, params):
    """``op.core(x, *params)``, with the params cast to x's float type."""
    return op.core(x, *(const(x, p) for p in params))


@overload(apply, inline="always")
def _apply_ol(op, x, params):
    if not isinstance(op, OpType):
        return None
    core = Op.registry[op.op_name].core
    n = len(params)
    if n == 0:
        return lambda op, x, params: core(x)
    if n == 1:
        return lambda op, x, params: core(x, const(x, params[0]))
    if n == 2:
        return lambda op, x, params: core(x, const(x, params[0]), const(x, params[1]))
    return None


# ------------------------------------------------------------------ CPU kernels
# Contiguous 1-D views in, contiguous 1-D view out: one specialization per
# (op, dtype) serves every shape and memory order.
def _map(op, x, out, params):
    for i in prange(x.size):
        out[i] = apply(op, x[i], params)


map_serial, map_parallel = _config.kernels(_map)


def run_map(op, x, out, params):
    """out[i] = op(x[i], *params) on contiguous 1-D arrays of one float dtype."""
    launch(map_serial, map_parallel, (op, x.dtype), x.size, op, x, out, params)


# ------------------------------------------------------------ inside user @njit
def map_njit(op, input, params, inplace, out):
    """What ``nbops.<op>(...)`` does when called inside a user's ``@njit`` code."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(map_njit)
def _map_njit_ol(op, input, params, inplace, out):
    if isinstance(input, (types.Float, types.Integer, types.Boolean)):
        return lambda op, input, params, inplace, out: apply(op, as_float(input), params)
    if not isinstance(input, types.Array):
        return None
    if isinstance(input.dtype, types.Float):
        dtype = input.dtype
    elif isinstance(input.dtype, (types.Integer, types.Boolean)):
        dtype = types.float64
    else:
        return None
    if not (out is None or isinstance(out, (types.NoneType, types.Omitted))):
        if not isinstance(out, types.Array) or out.dtype != dtype:
            raise errors.TypingError(f"nbops: out must be an array of dtype {dtype}")

        def impl_out(op, input, params, inplace, out):
            if out.shape != input.shape:
                raise ValueError("nbops: out must have the input's shape")
            _map_any_layout(op, input, out, params)
            return out

        return impl_out

    if dtype != input.dtype:  # integer input: a new float64 array
        def impl_promote(op, input, params, inplace, out):
            if inplace:
                raise TypeError("nbops: inplace=True needs a float input")
            res = np.empty(input.shape, dtype)
            _map_any_layout(op, input, res, params)
            return res

        return impl_promote

    def impl(op, input, params, inplace, out):
        res = input if inplace else np.empty(input.shape, dtype)
        _map_any_layout(op, input, res, params)
        return res

    return impl


def _map_any_layout(op, x, res, params):
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_map_any_layout)
def _map_any_layout_ol(op, x, res, params):
    if x.layout == "C" and res.layout == "C":
        def impl_flat(op, x, res, params):
            n = x.size
            xf = x.reshape(n)
            rf = res.reshape(n)
            for i in range(n):
                rf[i] = apply(op, as_float(xf[i]), params)

        return impl_flat

    def impl_strided(op, x, res, params):
        for idx in np.ndindex(x.shape):
            res[idx] = apply(op, as_float(x[idx]), params)

    return impl_strided


# ------------------------------------------------------------ the Python driver
# (op, dtype) -> (compiled serial kernel, the size below which launch() would
# run it, compiled parallel kernel or None), for the fast path of contiguous 1-D
# float arrays: below that size the serial kernel is called directly; from it,
# the parallel kernel where launch() would run it (more than one thread now,
# acquire_parallel), else launch() picks (no validation or memory-order work
# left to do either way). Hyperparameters may then be Python floats: the
# compiled code converts them. The parallel entry point is filled in after the
# first launch of the parallel twin (it is compiled on first use), and only
# under the per-op rule (NBOPS_PARALLEL_THRESHOLD unset).
_small_1d = {}
_NO_FAST_PATH = (None, 0, None)


def _same_memory_order(a, b):
    return ((a.flags.c_contiguous and b.flags.c_contiguous)
            or (a.flags.f_contiguous and b.flags.f_contiguous))


def _launch_fast(op, x, res, params, parallel):
    """The fast path at or above its serial size: the parallel kernel's remembered
    entry point ``parallel`` where ``launch`` would run it, else ``launch`` (keyed
    by (op, dtype): the params as x's float type)."""
    threads = _config.threads_now() > 1
    if parallel is not None and threads and _config.acquire_parallel(x.size):
        try:  # what launch() does at this size, without its look-ups
            parallel(op, x, res, params)
        finally:
            _config.release_parallel()
        return
    key = (op, x.dtype)
    launch(map_serial, map_parallel, key, x.size, op, x, res,
           tuple(map(x.dtype.type, params)) if params else params)
    if parallel is None and threads and _config.PARALLEL_THRESHOLD == _config.PER_OP_FLOOR:
        fast = _small_1d.get(key)
        parallel = remembered_entry_point(map_parallel, key)
        if fast is not None and parallel is not None:
            _small_1d[key] = (fast[0], fast[1], parallel)


def unary(op, input, params=(), inplace=False, out=None):
    """Validate, pick the destination and the memory order, and run ``op``.

    ``params`` must already be Python floats (validated by the public function).
    """
    if not inplace and type(input) is np.ndarray and input.ndim == 1:
        # the fast path for contiguous 1-D float arrays: no validation left to do
        fn, below, parallel = _small_1d.get((op, input.dtype), _NO_FAST_PATH)
        if fn is not None:
            in_flags = input.flags
            if in_flags.c_contiguous:
                if input.size >= below:
                    fn = None  # launch() picks the kernel
                if out is None:
                    if fn is not None:
                        res = np.empty_like(input)  # (small)
                        fn(op, input, res, params)
                    else:
                        res = _memory.empty_like(input)
                        _launch_fast(op, input, res, params, parallel)
                    return res
                if (type(out) is np.ndarray and out.dtype == input.dtype
                        and out.shape == input.shape):
                    flags = out.flags
                    # two arrays that own their memory do not overlap (cheaper
                    # than np.may_share_memory, which the other cases take)
                    if (flags.c_contiguous and flags.writeable
                            and (out is input or (flags.owndata and in_flags.owndata)
                                 or not np.may_share_memory(out, input))):
                        if fn is not None:
                            fn(op, input, out, params)
                        else:
                            _launch_fast(op, input, out, params, parallel)
                        return out
    if type(input) is not np.ndarray and is_device_array(input):
        return cuda_ops().unary(op, input, params, inplace, out)  # stays on the device
    if type(input) is not np.ndarray and is_dask_array(input):
        return dask_ops().unary(op, input, params, inplace, out)  # a lazy dask array
    x = input if type(input) is np.ndarray else as_array(input)
    compute, result = result_dtype(x.dtype)
    if params:
        params = tuple(compute.type(p) for p in params)

    if out is None and not inplace:
        if x.ndim == 1 and x.dtype == compute and x.flags.c_contiguous:
            _small_1d[(op, x.dtype)] = (
                entry_point(map_serial, (op, x.dtype), (op, x, x, params)),
                serial_below(map_serial, (op, x.dtype)), None)
        src = x if x.dtype == compute else x.astype(compute)
        if not (src.flags.c_contiguous or src.flags.f_contiguous):
            src = np.ascontiguousarray(src)
        res = _memory.empty_like(src)  # same memory order as src
        run_map(op, src.ravel(order="K"), res.ravel(order="K"), params)
        return res if result == compute else res.astype(result)

    if inplace:
        check_inplace(input, result)
        dest = x
    else:
        check_out(out, x.shape, result)
        dest = out
    src = x if x.dtype == compute else x.astype(compute)
    if dest.dtype == compute and _same_memory_order(src, dest):
        if overlaps_differently(dest, src):
            src = src.copy()
        run_map(op, src.ravel(order="K"), dest.ravel(order="K"), params)
    else:  # strided destination, or a float16 one: compute, then copy in
        np.copyto(dest, unary(op, src, params), casting="unsafe")
    return dest


# ------------------------------------------------------------------ backwards
# The backward of an elementwise op is an Op too, over its derivative core
# ``core(g, r, *params)`` (nbops/scalar/activations.py): two arrays in, one out.
def apply2(op, g, r, params):
    """``op.core(g, r, *params)``, with the params cast to r's float type."""
    return op.core(g, r, *(const(r, p) for p in params))


@overload(apply2, inline="always")
def _apply2_ol(op, g, r, params):
    if not isinstance(op, OpType):
        return None
    core = Op.registry[op.op_name].core
    n = len(params)
    if n == 0:
        return lambda op, g, r, params: core(g, r)
    if n == 1:
        return lambda op, g, r, params: core(g, r, const(r, params[0]))
    if n == 2:
        return lambda op, g, r, params: core(g, r, const(r, params[0]), const(r, params[1]))
    return None


def _map2(op, g, r, out, params):
    for i in prange(g.size):
        out[i] = apply2(op, g[i], r[i], params)


map2_serial, map2_parallel = _config.kernels(_map2)


def run_map2(op, g, r, out, params):
    """out[i] = op(g[i], r[i], *params) on contiguous 1-D arrays of one float dtype."""
    launch(map2_serial, map2_parallel, (op, g.dtype), g.size, op, g, r, out, params)


def flat_as(a, like):
    """``a`` as a flat C-order array of ``like``'s dtype, inside Numba code (no copy
    where it is one already): the backwards' overloads."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(flat_as)
def _flat_as_ol(a, like):
    if a.dtype == like.dtype:
        return lambda a, like: np.ascontiguousarray(a).reshape(-1)

    def impl_cast(a, like):
        res = np.empty(a.size, like.dtype)
        i = 0
        for idx in np.ndindex(a.shape):
            res[i] = a[idx]
            i += 1
        return res

    return impl_cast


def _float_array(a, name):
    """``a`` as an ndarray of a float dtype, or a TypeError naming it."""
    if type(a) is not np.ndarray and is_device_array(a):
        raise TypeError(f"{name}: got a CUDA device array while grad_output is a host "
                        "(NumPy) array; pass all arrays on the same side")
    a = as_array(a, name)
    if a.dtype.kind != "f":
        raise TypeError(f"{name}: expected a float array, got dtype {a.dtype}")
    return a


def binary(op, grad_output, residual, residual_name, params=(), out=None):
    """The backward of an elementwise op: validate, then ``op(g, r, *params)``.

    ``grad_output`` and the residual (named ``residual_name`` in errors) must be
    float arrays of the same shape (no broadcasting, as autograd); the result has
    their common float dtype. ``params`` are already Python floats.
    """
    if type(grad_output) is not np.ndarray:
        if is_device_array(grad_output):
            return cuda_ops().binary(op, grad_output, residual, residual_name, params, out)
        if is_dask_array(grad_output) or is_dask_array(residual):
            return dask_ops().elementwise_backward(op, grad_output, residual, residual_name,
                                                      params, out)
    elif is_dask_array(residual):
        return dask_ops().elementwise_backward(op, grad_output, residual, residual_name,
                                                      params, out)
    g = _float_array(grad_output, "grad_output")
    r = _float_array(residual, residual_name)
    if g.shape != r.shape:
        raise ValueError(f"grad_output has shape {g.shape} but {residual_name} has shape "
                         f"{r.shape}: they must be the same (the forward's output shape)")
    compute, result = result_dtype(np.result_type(g.dtype, r.dtype))
    if out is not None:
        check_out(out, g.shape, result)
    if params:
        params = tuple(compute.type(p) for p in params)
    if (g.flags.f_contiguous and r.flags.f_contiguous
            and not (g.flags.c_contiguous and r.flags.c_contiguous)):
        order = "F"  # both Fortran-ordered: keep that order, no copy
    else:
        order = "C"
    gs = np.asarray(g, dtype=compute, order=order)
    rs = np.asarray(r, dtype=compute, order=order)
    direct = (out is not None and out.dtype == compute
              and (out.flags.c_contiguous if order == "C" else out.flags.f_contiguous)
              and not overlaps_differently(out, gs) and not overlaps_differently(out, rs))
    res = out if direct else _memory.empty(g.shape, compute, order=order)
    if res.size:
        run_map2(op, gs.ravel(order="K"), rs.ravel(order="K"), res.ravel(order="K"), params)
    if direct:
        return out
    if result != compute:
        res = res.astype(result)
    if out is not None:
        np.copyto(out, res, casting="unsafe")
        return out
    return res


def map2_njit(op, grad_output, residual, params, out):
    """What ``nbops.<op>_backward(...)`` does when called inside a user's ``@njit`` code."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(map2_njit)
def _map2_njit_ol(op, grad_output, residual, params, out):
    g, r = grad_output, residual
    if isinstance(g, types.Float) and isinstance(r, types.Float):
        dtype = types.float64 if types.float64 in (g, r) else types.float32

        def impl_scalar(op, grad_output, residual, params, out):
            return apply2(op, dtype(grad_output), dtype(residual), params)

        return impl_scalar
    if not (isinstance(g, types.Array) and isinstance(r, types.Array)):
        return None
    if not (isinstance(g.dtype, types.Float) and isinstance(r.dtype, types.Float)):
        raise errors.TypingError("nbops: grad_output and the residual must be float arrays")
    dtype = types.float64 if types.float64 in (g.dtype, r.dtype) else types.float32
    has_out = not (out is None or isinstance(out, (types.NoneType, types.Omitted)))
    if has_out and (not isinstance(out, types.Array) or out.dtype != dtype):
        raise errors.TypingError(f"nbops: out must be an array of dtype {dtype}")

    if has_out:
        def impl_out(op, grad_output, residual, params, out):
            if grad_output.shape != residual.shape:
                raise ValueError("nbops: grad_output and the residual must have the same shape")
            if out.shape != grad_output.shape:
                raise ValueError("nbops: out must have grad_output's shape")
            _map2_any_layout(op, grad_output, residual, out, params)
            return out

        return impl_out

    def impl(op, grad_output, residual, params, out):
        if grad_output.shape != residual.shape:
            raise ValueError("nbops: grad_output and the residual must have the same shape")
        res = np.empty(grad_output.shape, dtype)
        _map2_any_layout(op, grad_output, residual, res, params)
        return res

    return impl


def _map2_any_layout(op, g, r, res, params):
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(_map2_any_layout)
def _map2_any_layout_ol(op, g, r, res, params):
    dtype = res.dtype
    if g.layout == "C" and r.layout == "C" and res.layout == "C":
        def impl_flat(op, g, r, res, params):
            n = g.size
            gf = g.reshape(n)
            rf = r.reshape(n)
            of = res.reshape(n)
            for i in range(n):
                of[i] = apply2(op, dtype(gf[i]), dtype(rf[i]), params)

        return impl_flat

    def impl_strided(op, g, r, res, params):
        for idx in np.ndindex(g.shape):
            res[idx] = apply2(op, dtype(g[idx]), dtype(r[idx]), params)

    return impl_strided
