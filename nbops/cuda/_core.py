"""The scalar cores, compiled for CUDA: one source of math for CPU and GPU.

:func:`device` turns a CPU core (an ``njit(inline='always')`` dispatcher from
:mod:`nbops.scalar`) into a ``cuda.jit(device=True)`` function compiled from
the same Python function (``core.py_func``). The helpers those cores call
(``const``, ``exp``, ``log1p_unit``, ``tanh``, ``log``, ...) are plain Python
functions with CPU ``@overload``\\ s; here they get CUDA overloads that map to
CUDA's libdevice math (``math.exp`` etc.), so the GPU uses the hardware's fast,
accurate functions instead of the CPU's vectorizable polynomials. Cores that
call other cores (``relu6`` -> ``hardtanh``) and the branch-free ``select``
intrinsic are compiled by numba-cuda as they are.

Under the simulator (``NUMBA_ENABLE_CUDASIM=1``) kernels run as Python: the
core's code object is re-bound to globals in which Numba-only helpers
(``select``, ``sub_exact``, nested core dispatchers) are replaced by Python
equivalents.
"""

import math
import operator
import types as _pytypes

from numba import config, cuda
from numba.extending import is_jitted

from ..scalar import _math as M
from ..scalar import losses as SL
from ..scalar.rows import sub_exact

SIMULATOR = bool(config.ENABLE_CUDASIM)

#: Threads per block of the elementwise and reduction kernels (the simulator
#: runs each thread as a Python thread: keep it small there).
TPB = 32 if SIMULATOR else 256


def _py_select(cond, a, b):
    return a if cond else b


def _python_core(fn, memo):
    """A plain Python copy of core ``fn`` (same code object) for the simulator."""
    py = getattr(fn, "py_func", fn)
    if py in memo:
        return memo[py]
    g = dict(py.__globals__)
    for name in py.__code__.co_names:
        v = g.get(name)
        if v is SL.select:
            g[name] = _py_select
        elif v is sub_exact:
            g[name] = operator.sub
        elif is_jitted(v):
            g[name] = _python_core(v, memo)
    f = _pytypes.FunctionType(py.__code__, g, py.__name__, py.__defaults__, py.__closure__)
    memo[py] = f
    return f


_device = {}


def device(core):
    """``cuda.jit(device=True)`` of a scalar (or row) core, memoized."""
    fn = _device.get(core)
    if fn is None:
        if SIMULATOR:
            fn = cuda.jit(device=True)(_python_core(core, {}))
        else:
            fn = cuda.jit(device=True)(getattr(core, "py_func", core))
        _device[core] = fn
    return fn


# ------------------------------------------- CUDA overloads of the math helpers
if not SIMULATOR:
    from numba.cuda import types as _ct
    from numba.cuda.extending import overload as _overload

    def _ftype(x):
        return x if isinstance(x, _ct.Float) else _ct.float64

    @_overload(M.const, target="cuda", inline="always")
    def _const_cuda(x, value):
        ty = _ftype(x)
        return lambda x, value: ty(value)

    @_overload(M.as_float, target="cuda", inline="always")
    def _as_float_cuda(x):
        ty = _ftype(x)
        return lambda x: ty(x)

    def _unary(pyfunc, mathfunc):
        @_overload(pyfunc, target="cuda", inline="always")
        def _ol(x):
            if isinstance(x, (_ct.Float, _ct.Integer, _ct.Boolean)):
                ty = _ftype(x)
                return lambda x: mathfunc(ty(x))
            return None
        return _ol

    _unary(M.exp, math.exp)
    _unary(M.expm1, math.expm1)
    _unary(M.log1p_unit, math.log1p)
    _unary(M.tanh, math.tanh)

    @_overload(SL.log, target="cuda", inline="always")
    def _log_cuda(x):
        ty = _ftype(x)

        def impl(x):
            v = ty(x)
            # libdevice's log: log(0) = -inf, log(x < 0) = NaN, as the CPU core
            return math.log(v)
        return impl

    @_overload(SL.log1p, target="cuda", inline="always")
    def _log1p_cuda(x):
        ty = _ftype(x)
        return lambda x: math.log1p(ty(x))


# ------------------------------------------------- warp shuffles on the simulator
#: Whether ``cuda.shfl_*_sync`` work here: on a GPU always; on the simulator,
#: once nbops has added them (see install_simulator_warp_shuffles in
#: nbops/_numba_internals.py). Without them the row kernels of
#: nbops/cuda/_kernels.py run a block per row instead of a warp per row.
WARP_SHUFFLES = True

if SIMULATOR:
    from .._numba_internals import install_simulator_warp_shuffles

    WARP_SHUFFLES = install_simulator_warp_shuffles()
