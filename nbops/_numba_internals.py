"""Every use of a private Numba or numba-cuda API, in one place.

nbops leans on a few parts of Numba that are not public API, each for speed or
to run its CUDA kernels on Numba's simulator. Each function below names the
private API it uses, why, and what happens when that API is missing or raises:
nbops then takes a slower but correct path (Numba's own behaviour, or public
API), records the problem in :data:`fallbacks` and warns once (a
:class:`RuntimeWarning`),
so that a Numba release that moved something shows up in the test suite
instead of as a silent slowdown.

Used directly elsewhere, as documented or long-stable extension API (not
fenced): ``numba.extending`` (``overload``, ``intrinsic``, ``register_model``,
``is_jitted``, ...), ``numba.types``, ``numba.core.errors``, the low-level
extension API's ``lower_constant`` (``numba.core.imputils``),
``numba.np.numpy_support.as_dtype``/``from_dtype``, and a dispatcher's
``py_func``, ``compile`` and ``stats``. The tests also reach into numba-cuda
to compile PTX without a GPU (``tests/cuda/ptx_check.py``).

Nothing here imports a module that ``import nbops`` did not import before
(``tests/test_runtime.py`` checks that import compiles nothing and that a warm
start never loads Numba's lowering registries).
"""

import inspect
import os
import pickle
import tempfile
import warnings

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

#: What fell back, and why: ``{name: "ExceptionType: message"}`` (first failure).
fallbacks = {}


def _fall_back(name, exc, consequence, internals=True):
    """Record that ``name`` (a private API, unless ``internals`` is False) failed
    with ``exc``; warn once per name."""
    if name in fallbacks:
        return
    fallbacks[name] = f"{type(exc).__name__}: {exc}"
    if internals:
        message = (f"nbops: Numba internals changed ({name}: {fallbacks[name]}); "
                   f"{consequence}. Please report this with your Numba version.")
    else:
        message = f"nbops: {name} failed ({fallbacks[name]}); {consequence}."
    warnings.warn(message, RuntimeWarning, stacklevel=3)


#: Errors that say a private API moved or changed its signature.
MOVED = (ImportError, AttributeError, TypeError)

#: What reading a damaged cache file can raise. ``pickle`` may raise nearly any
#: exception on bad input (its documentation lists AttributeError, EOFError,
#: ImportError and IndexError besides UnpicklingError); llvmlite raises
#: RuntimeError for damaged object code.
_DAMAGED_FILE = (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError,
                 AttributeError, ImportError, IndexError, KeyError, RuntimeError,
                 MemoryError)

#: What writing a cache file can raise: a full disk or a folder that became
#: read-only (OSError), a compile result Numba cannot pickle.
_SAVE_ERRORS = (OSError, pickle.PicklingError, TypeError, ValueError, AttributeError)


# ------------------------------------------------------------------ disk cache
_fast_load = True  # becomes False if loading without the context refresh fails


def make_cache_class(source_stamp):
    """Numba's ``FunctionCache``, stamped with nbops' sources and with more locators.

    Private API: ``numba.core.caching`` (``FunctionCache``,
    ``CompileResultCacheImpl``, ``_CacheLocator``,
    ``_SourceFileBackedLocatorMixin`` and the locator classes, named
    ``_UserProvidedCacheLocator`` etc. in Numba 0.60), used through
    :func:`load_without_refresh` and :func:`forget_index` too.

    Why: Numba's own cache stamps a kernel with its file only, so an edit to a
    core in another file (or an upgrade of nbops) would load stale machine code;
    this class stamps every kernel with ``source_stamp()`` (a hash of all of
    nbops' sources). Its locators add ``NBOPS_CACHE_DIR`` first and a per-user
    folder in the temporary directory last (an install folder that is not
    writable and no home directory still get a cache).

    If it fails: raises ``ImportError``, ``AttributeError`` or ``TypeError``
    (:data:`MOVED`); :func:`enable_disk_cache` then uses Numba's own disk cache.

    Parameters
    ----------
    source_stamp : callable
        Returns the stamp (a string) that every cache entry must match.

    Returns
    -------
    type
        The cache class; ``cls(py_func)`` raises ``RuntimeError`` when no
        location is writable.
    """
    from numba.core import caching

    class PackageStamp:
        def get_source_stamp(self):
            return source_stamp()

    base = (PackageStamp, caching._SourceFileBackedLocatorMixin, caching._CacheLocator)

    class _DirLocator(*base):
        root = None  # set by subclasses: the folder, or "" for none

        def __init__(self, py_func, py_file):
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = os.path.join(self.root(), self.get_suitable_cache_subpath(py_file))

        def get_cache_path(self):
            return self._cache_path

        @classmethod
        def from_function(cls, py_func, py_file):
            if not cls.root():
                return None
            return super().from_function(py_func, py_file)

    class NbopsDirLocator(_DirLocator):
        @staticmethod
        def root():
            return os.environ.get("NBOPS_CACHE_DIR", "")

    class TempDirLocator(_DirLocator):
        @staticmethod
        def root():
            try:
                tmp = tempfile.gettempdir()
            except OSError:  # no usable temporary directory at all
                return ""
            chosen = os.path.abspath(tmp)
            if chosen == os.path.abspath(os.getcwd()) and chosen not in (
                    os.path.abspath(os.environ[k]) for k in ("TMPDIR", "TEMP", "TMP")
                    if os.environ.get(k)):
                # every temporary directory is unwritable and tempfile fell back to
                # the working directory: never litter the caller's folder
                return ""
            user = getattr(os, "getuid", lambda: "user")()
            return os.path.join(tmp, f"nbops-cache-{user}")

    def stamped(name):
        # older Numba (0.60) names these classes with a leading underscore
        cls = getattr(caching, name, None) or getattr(caching, "_" + name)
        return type("Nbops" + name, (PackageStamp, cls), {})

    class CacheImpl(caching.CompileResultCacheImpl):
        _locator_classes = [NbopsDirLocator, stamped("UserProvidedCacheLocator"),
                            stamped("InTreeCacheLocator"), stamped("UserWideCacheLocator"),
                            TempDirLocator]

    class NbopsFunctionCache(caching.FunctionCache):
        _impl_class = CacheImpl

        def load_overload(self, sig, target_context):
            global _fast_load
            fast_error = None
            if _fast_load:
                try:
                    return load_without_refresh(self, sig, target_context)
                except _DAMAGED_FILE as exc:  # a damaged file, or the private API moved
                    fast_error = exc
            try:
                result = super().load_overload(sig, target_context)
            except _DAMAGED_FILE:
                # a truncated or damaged cache file (a crash mid-write, a full
                # disk): forget the index, compile again, and save afresh
                forget_index(self)
                return None
            if fast_error is not None and result is not None:
                # Numba's own path read the file that the fast path could not
                _fast_load = False
                _fall_back("FunctionCache._load_overload without context refresh", fast_error,
                           "kernels load through Numba's own path (slower first call)")
            return result

        def save_overload(self, sig, data):
            try:
                super().save_overload(sig, data)
            except _SAVE_ERRORS as exc:  # the cache is an optimization: never fail an op
                _fall_back("saving a kernel to the disk cache", exc,
                           "later processes compile it again", internals=False)

    return NbopsFunctionCache


def load_without_refresh(cache, sig, target_context):
    """Numba's ``Cache.load_overload`` without its ``target_context.refresh()``.

    Private API: ``numba.core.runtime.rtsys.initialize``,
    ``Cache._load_overload`` and ``Cache._guard_against_spurious_io_errors``.

    Why: that refresh imports and registers every lowering implementation of
    Numba (a large share of a warm start, once per process), which is needed
    to compile, not to load machine code; loading needs only the runtime
    (NRT), initialized here. Numba refreshes the context itself before any
    compilation.

    If it fails (the API moved, or a damaged file): the exception propagates
    and the cache's ``load_overload`` tries Numba's own ``load_overload``
    (refresh included: slower, correct); if that one succeeds, the fast path
    is switched off for the process and a warning says so once.
    """
    from numba.core.runtime import rtsys

    rtsys.initialize(target_context)
    with cache._guard_against_spurious_io_errors():
        return cache._load_overload(sig, target_context)


def forget_index(cache):
    """Delete the index file of ``cache`` (all its entries are recompiled and saved afresh).

    Private API: ``Cache._cache_file._index_path``.

    If it fails: with no ``_index_path``, the cache's ``flush()`` (which
    writes an empty index) does the same; if the file cannot be removed or
    written (a read-only folder), nothing is done: the damaged entry is then
    recompiled in every process, which is slow but correct.
    """
    try:
        path = cache._cache_file._index_path
    except AttributeError as exc:
        _fall_back("Cache._cache_file._index_path", exc, "a damaged cache index is flushed")
        try:
            cache.flush()
        except OSError:
            pass  # a read-only cache folder: recompiled each time (see above)
        return
    try:
        os.remove(path)
    except OSError:
        pass  # removed already, or a read-only folder (see above)


def enable_disk_cache(dispatcher, source_stamp):
    """Give ``dispatcher`` nbops' disk cache (see :func:`make_cache_class`).

    Private API: the dispatcher's ``_cache`` attribute (what Numba's
    ``cache=True`` sets) and :func:`make_cache_class`.

    If it fails with :data:`MOVED`: a warning (once), and the caller should
    fall back to ``njit(cache=True)``, Numba's own disk cache, which is
    stamped with the kernel's own file only (right for an installed nbops,
    whose files an upgrade all rewrites; while editing nbops' sources, set
    ``NBOPS_DISABLE_CACHE=1``). ``RuntimeError`` (no writable location)
    propagates unchanged.

    Returns
    -------
    bool
        True if nbops' cache is attached, False if the caller must fall back.
    """
    global _cache_class
    try:
        if _cache_class is None:
            _cache_class = make_cache_class(source_stamp)
        cache = _cache_class(dispatcher.py_func)
        dispatcher._cache = cache
    except MOVED as exc:
        _fall_back("numba.core.caching", exc,
                   "kernels use Numba's own disk cache (stamped with the kernel's file only)")
        return False
    return True


_cache_class = None


# ------------------------------------------------------------ calling a kernel
def argument_type(dispatcher, value):
    """The Numba type under which ``dispatcher`` would compile for ``value``.

    Private API: ``Dispatcher.typeof_pyval``. If it is missing:
    ``numba.typeof(value)`` (the same type for every argument nbops passes:
    arrays, scalars, tuples and ``Op`` objects).
    """
    try:
        typeof = dispatcher.typeof_pyval
    except AttributeError as exc:
        _fall_back("Dispatcher.typeof_pyval", exc, "arguments are typed with numba.typeof")
        from numba import typeof
    return typeof(value)


def compiled_entry_point(dispatcher, sig):
    """The compiled function for ``sig`` (compiled already), callable without dispatch.

    Private API: ``Dispatcher.overloads[sig].entry_point`` (a compile
    result's attribute). Why: calling it skips the dispatcher's typing of
    every argument on every call (microseconds, as much as a small op).

    If it fails: the dispatcher itself, which types the arguments on each call
    (slower, same results), and a warning once.
    """
    try:
        return dispatcher.overloads[sig].entry_point
    except (AttributeError, KeyError) as exc:
        _fall_back("Dispatcher.overloads[sig].entry_point", exc,
                   "kernels are called through their dispatcher (slower small calls)")
        return dispatcher


# ------------------------------------------------------------- array row views
def _array_view_api():
    """``(make_array, populate_array, pack_array)``, or None with a warning if moved."""
    try:
        from numba.core.cgutils import pack_array
        from numba.np.arrayobj import make_array, populate_array

        params = inspect.signature(populate_array).parameters
        missing = {"array", "data", "shape", "strides", "itemsize", "meminfo"} - set(params)
        if missing:
            raise TypeError(f"populate_array() has no parameter(s) {sorted(missing)}")
    except MOVED as exc:
        _fall_back("numba.np.arrayobj.populate_array", exc,
                   "row views are ordinary slices (reference counted: slower)")
        return None
    return make_array, populate_array, pack_array


def make_row_view():
    """``row_view(arr, start, n)``: ``arr[start:start + n]`` without reference counting.

    Private API: ``numba.np.arrayobj.make_array`` and ``populate_array``
    (called with ``meminfo=None``), ``numba.core.cgutils.pack_array``.

    Why: a slice of an array holds a reference to its memory; in the row
    kernels (one slice per row, ``nbops/scalar/rows.py``) every slice means
    an atomic increment and decrement of a counter that all threads share.
    The view built here holds none: valid only while ``arr`` is alive (inside
    the kernel that received it), for a range inside ``arr``.

    If it fails (the API is missing or its signature changed): the returned
    function is the plain slice ``arr[start:start + n]`` (same type, same
    values, reference counted: slower), and a warning once.
    """
    api = _array_view_api()
    if api is None:
        return _row_slice
    make_array, populate_array, pack_array = api

    @intrinsic
    def row_view(typingctx, arr, start, n):
        """``arr[start:start + n]`` of a 1-D contiguous array, as a view that holds no
        reference to ``arr``'s memory (no atomic reference counting per row).

        Only for use while ``arr`` is alive (inside the kernel that received it);
        ``start`` and ``n`` must describe a range inside ``arr``.
        """
        if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C"):
            return None
        retty = types.Array(arr.dtype, 1, "C", readonly=not arr.mutable)

        def codegen(context, builder, signature, args):
            ary = make_array(signature.args[0])(context, builder, args[0])
            first = context.cast(builder, args[1], signature.args[1], types.intp)
            count = context.cast(builder, args[2], signature.args[2], types.intp)
            view = make_array(retty)(context, builder)
            itemsize = context.get_constant(
                types.intp, context.get_abi_sizeof(context.get_data_type(retty.dtype)))
            populate_array(view, data=builder.gep(ary.data, [first]),
                           shape=pack_array(builder, [count]),
                           strides=pack_array(builder, [itemsize]),
                           itemsize=itemsize, meminfo=None)
            return view._getvalue()

        return retty(arr, start, n), codegen

    return row_view


def make_stack_block(n):
    """``stack_block(like)``: a scratch array of ``n`` elements of ``like``'s type
    on the stack of the compiled function that calls it (contents undefined).

    Private API: as :func:`make_row_view`, plus ``numba.core.cgutils.alloca_once``.

    Why: ``np.empty`` in a kernel costs its own template compilation (once per
    dtype and process) and an allocation per call; the column-block functions
    of ``nbops/scalar/rows.py`` and ``nbops/scalar/_class_grad.py`` need a few
    scratch arrays of ``COLS_BLOCK`` elements per block. The array lives in
    the caller's stack frame (allocated once in its entry block, so one array
    per call site whatever the loops around it) and holds no reference count:
    valid only inside the function that made it.

    If it fails (the API is missing or its signature changed): the returned
    function is ``np.full(n, like)`` (a heap array; slower to compile).
    """
    api = _array_view_api()
    if api is None:
        @njit(inline="always", error_model="numpy", nogil=True)
        def heap_block(like):
            return np.full(n, like)

        return heap_block
    make_array, populate_array, pack_array = api
    from numba.core.cgutils import alloca_once

    @intrinsic
    def stack_block(typingctx, like):
        """A 1-D C-contiguous array of ``n`` elements of ``like``'s (float) type on
        the caller's stack; its contents are undefined."""
        if not isinstance(like, (types.Float, types.Integer)):
            return None
        retty = types.Array(like, 1, "C")

        def codegen(context, builder, signature, args):
            llty = context.get_data_type(like)
            data = alloca_once(builder, llty, size=n)
            view = make_array(retty)(context, builder)
            itemsize = context.get_constant(types.intp, context.get_abi_sizeof(llty))
            populate_array(view, data=data,
                           shape=pack_array(builder, [context.get_constant(types.intp, n)]),
                           strides=pack_array(builder, [itemsize]),
                           itemsize=itemsize, meminfo=None)
            return view._getvalue()

        return retty(like), codegen

    return stack_block


def make_prefetch():
    """``prefetch(arr, i)``: ask the CPU to bring the cache line of ``arr[i]`` in
    (LLVM's ``llvm.prefetch``, read, keep in all levels); no effect on values.

    Private API: ``numba.np.arrayobj.make_array`` and
    ``numba.core.cgutils.get_or_insert_function``.

    Why: glu along the last axis reads each row's two halves at once, two
    streams in one 4 KiB page, and the hardware prefetcher does not follow
    them (the kernels of ``nbops/_ops/glu.py`` ran at half the speed of the
    same work over separate arrays); asking for the rows ahead restores it.

    If it fails (the API is missing): the returned function does nothing.
    """
    try:
        from llvmlite import ir
        from numba.core.cgutils import get_or_insert_function
        from numba.np.arrayobj import make_array
    except MOVED as exc:
        _fall_back("numba.np.arrayobj.make_array", exc, "no software prefetch (slower glu)")

        @njit(inline="always", nogil=True)
        def no_prefetch(arr, i):
            return None

        return no_prefetch

    @intrinsic
    def prefetch(typingctx, arr, i):
        if not (isinstance(arr, types.Array) and isinstance(i, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            ary = make_array(signature.args[0])(context, builder, args[0])
            index = context.cast(builder, args[1], signature.args[1], types.intp)
            ptr = builder.gep(ary.data, [index])
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
            fn = get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            builder.call(fn, [ptr, i32(0), i32(3), i32(1)])
            return context.get_dummy_value()

        return types.void(arr, i), codegen

    return prefetch


@njit(inline="always", error_model="numpy", nogil=True)
def _row_slice(arr, start, n):
    """``arr[start:start + n]``: the fallback of :func:`make_row_view` (reference counted)."""
    return arr[start:start + n]


# ----------------------------------------------- task functions called by address
def make_task_call():
    """``call_task(fn, address, args)``: ``fn(*args)``, calling the machine code at
    ``address`` (:func:`task_address` of ``fn`` for ``args``' types) without
    linking ``fn`` into the caller.

    Private API: ``context.call_conv`` (``get_function_type``, ``call_function``,
    ``return_status_propagate``) and ``numba.core.cgutils.if_unlikely``.

    Why: Numba links the code of every function a function calls into the
    caller's own library and optimizes and compiles it to machine code again
    there, once per library. A ``parallel=True`` kernel is four libraries (the
    prange body, its gufunc wrapper, the parallel wrapper and the kernel), so a
    large task function called from a prange body, or IR-inlined into it, is
    optimized and compiled four or five times. Called through its address, it
    is compiled once (and cached on disk on its own), and the serial and the
    parallel kernel share it: the kernels' own code is a loop and a call. The
    kernel receives the address as an argument (an integer: nothing
    process-specific is compiled into it, so it is cached as usual).

    ``args``: a tuple of exactly the types ``fn`` was compiled for at
    ``address`` (the callers pass their own arguments unchanged, plus an int64
    task index: :func:`nbops._launch.task_address`); ``fn`` returns nothing.
    An exception of ``fn`` propagates.

    If it fails (the API is missing): ``call_task`` calls ``fn`` as Numba does,
    linked into the caller (slower to compile, same results), and a warning
    once; ``address`` is then unused.
    """
    try:
        from numba.core import cgutils

        if_unlikely = cgutils.if_unlikely
    except MOVED as exc:
        _fall_back("numba.core.cgutils.if_unlikely", exc,
                   "task functions are linked into their kernels (slower first calls)")
        return _call_linked

    @intrinsic
    def call_task(typingctx, fn, address, args):
        """``fn(*args)`` through the machine code at ``address`` (see make_task_call)."""
        if not (isinstance(fn, types.Dispatcher) and isinstance(address, types.Integer)
                and isinstance(args, types.BaseTuple)):
            return None
        argtys = tuple(args.types)

        def codegen(context, builder, signature, llargs):
            call_conv = context.call_conv
            fnty = call_conv.get_function_type(types.none, argtys)
            addr = context.cast(builder, llargs[1], signature.args[1], types.intp)
            callee = builder.inttoptr(addr, fnty.as_pointer())
            values = [builder.extract_value(llargs[2], i) for i in range(len(argtys))]
            status, _ = call_conv.call_function(builder, callee, types.none, argtys, values)
            with if_unlikely(builder, status.is_error):
                call_conv.return_status_propagate(builder, status)
            return context.get_dummy_value()

        return types.none(fn, address, args), codegen

    return call_task


@njit(inline="always", error_model="numpy", nogil=True)
def _call_linked(fn, address, args):
    """``fn(*args)``: the fallback of :func:`make_task_call` (linked, as Numba calls)."""
    fn(*args)


def task_address(dispatcher, sig):
    """The address of ``dispatcher``'s machine code for the argument types ``sig``
    (compiled, or loaded from the disk cache, first), for :func:`make_task_call`.

    Private API: ``Dispatcher.overloads[sig]``'s ``library`` and ``fndesc``
    (``CodeLibrary.get_pointer_to_function``, ``fndesc.llvm_func_name``).

    If it fails: 0 (unused by the fallback of :func:`make_task_call`; a
    :class:`RuntimeError` if that intrinsic is in use).
    """
    dispatcher.compile(sig)
    try:
        cres = dispatcher.overloads[sig]
        address = cres.library.get_pointer_to_function(cres.fndesc.llvm_func_name)
    except (AttributeError, KeyError) as exc:
        _fall_back("CompileResult.library.get_pointer_to_function", exc,
                   "task functions cannot be called by address")
        address = 0
    if not address and fallbacks.get("numba.core.cgutils.if_unlikely") is None:
        raise RuntimeError(f"nbops: no machine code for {dispatcher.py_func.__qualname__} "
                           f"{sig}")
    return address


# ------------------------------------------------ CUDA simulator: warp shuffles
def _shuffle_methods():
    """``shfl_sync``, ``shfl_xor_sync``, ``shfl_down_sync``, ``shfl_up_sync`` as
    methods of the simulator's fake ``cuda`` module, built only on what a
    simulated kernel itself can use (``threadIdx``, ``blockDim``,
    ``syncthreads``).

    Emulation: each thread posts its value in a table, every live thread of
    the block meets at a barrier, reads its source lane's value and meets
    again. Right when all live threads of a block shuffle the same number of
    times with a full mask, as nbops' warp kernels do (whole warps exit
    together). A source lane outside the warp or the block gives the thread's
    own value, as ``shfl_down``/``shfl_up`` do.
    """

    def exchange(fake_cuda, value, source_lane):
        table = fake_cuda.__dict__.setdefault("_nbops_shuffle", {})
        t, d, b = fake_cuda.threadIdx, fake_cuda.blockDim, fake_cuda.blockIdx
        block = (b.x, b.y, b.z)
        tid = t.x + d.x * (t.y + d.y * t.z)
        lane = tid % 32
        table[block, tid] = value
        fake_cuda.syncthreads()
        src = source_lane(lane)
        v = table.get((block, tid - lane + src), value) if 0 <= src < 32 else value
        fake_cuda.syncthreads()
        return v

    def shfl_sync(self, mask, value, src_lane):
        return exchange(self, value, lambda lane: src_lane % 32)

    def shfl_xor_sync(self, mask, value, lane_mask):
        return exchange(self, value, lambda lane: lane ^ lane_mask)

    def shfl_down_sync(self, mask, value, delta):
        return exchange(self, value, lambda lane: lane + delta)

    def shfl_up_sync(self, mask, value, delta):
        return exchange(self, value, lambda lane: lane - delta)

    return {"shfl_sync": shfl_sync, "shfl_xor_sync": shfl_xor_sync,
            "shfl_down_sync": shfl_down_sync, "shfl_up_sync": shfl_up_sync}


def install_simulator_warp_shuffles():
    """Give Numba's CUDA simulator the warp shuffles it lacks, where missing.

    Private API: ``numba.cuda.simulator.kernelapi.FakeCUDAModule``, the class
    of the fake ``cuda`` module that the simulator puts in a running kernel's
    globals; the shuffles (:func:`_shuffle_methods`) are added to it.

    Why: nbops' warp-per-row kernels (``nbops/cuda/_kernels.py``) then run
    unchanged on the simulator, where its CUDA tests run. A simulator that
    has the shuffles keeps its own.

    If it fails (no such class): returns False and warns once; the CUDA
    launchers then run the block-per-row and column kernels instead of the
    warp-per-row ones (same results within rounding, slower on a GPU, and
    the simulator is no GPU).

    Returns
    -------
    bool
        True if the simulator has warp shuffles now.
    """
    try:
        from numba.cuda.simulator.kernelapi import FakeCUDAModule
    except ImportError as exc:
        _fall_back("numba.cuda.simulator.kernelapi.FakeCUDAModule", exc,
                   "the CUDA simulator runs the block-per-row kernels instead of the "
                   "warp-per-row ones")
        return False
    for name, method in _shuffle_methods().items():
        if not hasattr(FakeCUDAModule, name):
            setattr(FakeCUDAModule, name, method)
    return True
