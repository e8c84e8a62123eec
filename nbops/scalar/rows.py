"""Row cores of the ops along an axis: softmax, log-softmax, cross-entropy.

The math of those ops, written once. Each function handles one row (a
contiguous 1-D slice holding the ``C`` values along the op's axis) or one
block of columns (``nb`` neighbouring positions of an axis that is not the
last one, read as ``C`` contiguous slices ``x[base + c*I + j0 : ... + nb]``),
and contains the loop over it. The CPU kernels of ``nbops/_ops/softmax.py`` and
``nbops/_ops/classification.py`` call them per row or per block; the same functions
serve the ``@njit`` overloads.

The softmax family is the *log-sum-exp row family*: ops whose row statistics
are the row max and ``sum(exp(v - max))``. Each is a :class:`RowCore` (two
small scalar functions, ``prep`` and ``value``, defined below), from which the
generic :func:`lse_row` / :func:`lse_cols` build the CPU row and column code
and ``nbops/cuda/_kernels.py`` the CUDA block, warp and column kernels: one
definition per op, no per-op copy of a kernel.

Numerics
--------
* The max of a row is an integer max over :func:`order_key` (vectorizes with
  no fast-math flag). A row holding +inf gets an inf max (``inf - inf`` is
  NaN), an all -inf row a -inf max (``-inf - -inf`` is NaN), and a NaN
  anywhere in a row reaches its sum of exponentials: PyTorch's results (NaN
  rows) come out of the arithmetic itself.
* ``exp`` is :func:`nbops.scalar._math.exp` (a vectorizable polynomial,
  within 2 ulp). Sums are accumulated in the element type over blocks of
  :data:`SUM_BLOCK` elements (vectorized) and the block sums are added in
  float64, so long rows keep float32 sums accurate.
* Fast-math: every function here is inlined (``inline='always'``) into the
  kernels of ``nbops/_ops/softmax.py`` and ``nbops/_ops/classification.py``, or
  (the column-block functions :func:`lse_cols`, :func:`grad_cols`,
  :func:`prob_cols` and the cross-entropy chunk functions, ``chunk_function``)
  compiled with the same flags as they: :data:`ROW_FASTMATH` = ``reassoc`` (needed to vectorize a
  sum) and ``contract`` (FMA). The subtractions whose order matters,
  ``(x - max) - log(sum)`` (computing ``max + log(sum)`` first loses
  precision, pytorch/pytorch#11752), go through :func:`sub_exact`, which no
  flag may reassociate. No flag that touches NaN or inf is used anywhere.
* Compile time: a softmax kernel along the last axis is one function (no
  nested compiled calls, each of which Numba would optimize again in every
  caller); along another axis it calls :func:`lse_cols` (:func:`grad_cols`)
  per block of columns, and a cross-entropy kernel one chunk function per
  chunk of samples (see ``chunk_function``). The kernels take their options as ``None`` or a
  value, so that Numba compiles only the path a call needs: a branch whose
  condition compares an argument that is None with None is removed before
  typing (one on ``arg is None`` for a non-None argument is typed and
  compiled, and only LLVM drops it, so the kernels guard a path with an
  argument that is None where the path is not wanted); a :class:`RowCore`
  argument selects its functions through the small overloads
  :func:`row_prep` / :func:`row_value`, each compiled once per type and
  inlined by LLVM. Scratch arrays come from ``stack_block``, not
  ``np.empty``.

Arguments named ``sgn`` (+1 or -1, of the element type) multiply every value
read (softmin is softmax of ``-x``; the product is exact).
"""

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core.imputils import lower_constant
from numba.extending import (
    NativeValue,
    intrinsic,
    models,
    overload,
    register_model,
    typeof_impl,
    unbox,
)

from .._config import _COMMON
from .._numba_internals import make_row_view, make_stack_block
from ._math import const, exp

__all__ = ["row_view", "sub_exact", "order_key", "from_order_key", "one_of", "row_max",
           "row_sumexp", "row_wshift_sum", "row_prob_sums", "cols_max", "cols_sumexp",
           "cols_wshift_sum", "cols_prob_sums", "RowCore", "row_prep", "row_value",
           "lse_row", "lse_cols", "lse_scalar", "softmax_prep", "softmax_value", "log_softmax_prep",
           "log_softmax_value", "SOFTMAX", "LOG_SOFTMAX", "smoothed_loss", "smoothed_target",
           "ce_rows", "nll_rows", "ce_cols", "prob_rows", "prob_cols", "SUM_BLOCK",
           "COLS_BLOCK", "ROW_FASTMATH", "row_grad_term", "row_grad_value", "grad_row",
           "grad_cols", "softmax_grad_term", "softmax_grad_value", "log_softmax_grad_term",
           "log_softmax_grad_value"]

#: Elements summed in the element type before the partial sum is added in float64.
SUM_BLOCK = 1024
#: Positions handled together when the op's axis is not the last one.
COLS_BLOCK = 256

#: Fast-math flags of the kernels these cores are inlined into.
ROW_FASTMATH = frozenset({"reassoc", "contract"})

_inline = njit(inline="always", **_COMMON)

#: Decorator of the chunk functions (one call handles a chunk of samples or a
#: block of columns: :func:`lse_cols`, :func:`grad_cols`, :func:`prob_cols`
#: below, ``ce_grad_rows``, ``ce_grad_cols`` and ``prob_grad_cols`` in
#: ``nbops/scalar/_class_grad.py``):
#: compiled as functions of their own, with the fast-math flags of the kernels
#: that call them, not IR-inlined into the kernels. Numba's IR inlining copies
#: a callee, with every helper inlined into it, block by block, and a
#: parallel kernel compiles its loop body again: a call per chunk costs nothing
#: measurable, and the serial and parallel kernels share the compiled
#: function. LLVM still inlines the small cores into the chunk function's
#: loops, which vectorize as before. The others stay IR-inlined: on their own,
#: :func:`nll_rows`, :func:`prob_rows` and ``prob_grad_rows`` made the serial
#: kernel's first compilation slower (a function of its own has a fixed cost),
#: :func:`ce_rows` ran a few percent slower at (4096, 1000). :func:`ce_cols` is a
#: chunk function too: IR-inlined, LLVM vectorized its float64 chunk sums
#: (``reassoc``) differently in the serial and the parallel kernel, whose float64
#: 'mean' and 'sum' then differed in the last bits.
chunk_function = njit(fastmath=set(ROW_FASTMATH), **_COMMON)


#: ``row_view(arr, start, n)``: ``arr[start:start + n]`` of a 1-D contiguous array,
#: as a view that holds no reference to ``arr``'s memory (no atomic reference
#: counting per row); only while ``arr`` is alive, for a range inside ``arr``.
#: Built on Numba internals: see make_row_view in nbops/_numba_internals.py.
row_view = make_row_view()

#: ``stack_block(like)``: a scratch array of COLS_BLOCK elements of ``like``'s
#: type on the stack of the compiled caller (contents undefined): the per-position
#: accumulators of the column-block functions, without ``np.empty`` (see
#: make_stack_block in nbops/_numba_internals.py).
stack_block = make_stack_block(COLS_BLOCK)


@intrinsic
def sub_exact(typingctx, a, b):
    """``a - b``, an IEEE subtraction that the caller's fast-math flags leave alone.

    Numba adds a function's fast-math flags to every float instruction that has
    none; this one carries ``arcp`` (meaningless for a subtraction), so it is
    never reassociated with its neighbours. (The CUDA simulator, which runs
    the row cores as Python, uses a plain subtraction: ``nbops/cuda/_core.py``.)
    """
    if not (isinstance(a, types.Float) and a == b):
        return None

    def codegen(context, builder, signature, args):
        return builder.fsub(args[0], args[1], flags=("arcp",))

    return a(a, b), codegen


@intrinsic
def order_key(typingctx, x):
    """The bits of a float as a signed integer of the same width, in the float's order.

    ``order_key(a) < order_key(b)`` iff ``a < b`` for non-NaN floats (with
    -0 below +0); positive NaNs sort above +inf. An integer max reduction
    vectorizes without fast-math flags and runs several times faster than a
    float one (whose NaN rules cost a blend sequence per vector).
    """
    if x == types.float32:
        ity, lt, bits = types.int32, ir.IntType(32), 32
    elif x == types.float64:
        ity, lt, bits = types.int64, ir.IntType(64), 64
    else:
        return None

    def codegen(context, builder, signature, args):
        b = builder.bitcast(args[0], lt)
        mask = builder.and_(builder.ashr(b, ir.Constant(lt, bits - 1)),
                            ir.Constant(lt, (1 << (bits - 1)) - 1))
        return builder.xor(b, mask)

    return ity(x), codegen


@intrinsic
def from_order_key(typingctx, k):
    """Inverse of :func:`order_key` (the transform is an involution)."""
    if k == types.int32:
        fty, lt, bits, flt = types.float32, ir.IntType(32), 32, ir.FloatType()
    elif k == types.int64:
        fty, lt, bits, flt = types.float64, ir.IntType(64), 64, ir.DoubleType()
    else:
        return None

    def codegen(context, builder, signature, args):
        b = args[0]
        mask = builder.and_(builder.ashr(b, ir.Constant(lt, bits - 1)),
                            ir.Constant(lt, (1 << (bits - 1)) - 1))
        return builder.bitcast(builder.xor(b, mask), flt)

    return fty(k), codegen


def _select_if(cmp, a, b):
    """Codegen of ``b if b <cmp> a else a`` for integers of one type: the max/min
    builtins' compare and select (their code, without their overload to compile)."""
    if not (isinstance(a, types.Integer) and a == b):
        return None

    def codegen(context, builder, signature, args):
        acc, v = args
        icmp = builder.icmp_signed if a.signed else builder.icmp_unsigned
        return builder.select(icmp(cmp, v, acc), v, acc)

    return a(a, b), codegen


@intrinsic
def int_max(typingctx, a, b):
    """``max(a, b)`` of two integers of one type."""
    return _select_if(">", a, b)


@intrinsic
def int_min(typingctx, a, b):
    """``min(a, b)`` of two integers of one type."""
    return _select_if("<", a, b)


def one_of(arr):
    """1 in the element type of ``arr``."""
    return arr.dtype.type(1)


@overload(one_of, inline="always")
def _one_of_ol(arr):
    ty = arr.dtype
    return lambda arr: ty(1.0)


# ------------------------------------------------------------------ one row
@_inline
def row_max(r, sgn):
    """max(sgn * r) for a non-empty row (through :func:`order_key`).

    The result is the true max of a row without NaN (-inf for an all -inf
    row); for a row holding NaN it is NaN or some other value, and the NaN
    then reaches the row's sum of exponentials, which makes the whole row
    NaN, as in PyTorch.
    """
    k = order_key(sgn * r[0])
    for i in range(1, r.size):
        k = int_max(k, order_key(sgn * r[i]))
    return from_order_key(k)


@_inline
def row_sumexp(r, o, sgn, m):
    """sum(exp(sgn * r - m)) as a float64; unless ``o`` is None, also
    o = exp(sgn * r - m) (``o`` may be ``r``; None is resolved when compiling)."""
    n = r.size
    total = 0.0
    for b0 in range(0, n, SUM_BLOCK):
        b1 = int_min(n, b0 + SUM_BLOCK)
        blk = r[b0:b1]
        s = const(m, 0.0)
        if o is None:
            for i in range(blk.size):
                s += exp(sgn * blk[i] - m)
        else:
            dst = o[b0:b1]
            for i in range(blk.size):
                e = exp(sgn * blk[i] - m)
                dst[i] = e
                s += e
        total += s
    return total


@_inline
def row_wshift_sum(r, w, m):
    """sum(w * (r - m)) as a float64 (label smoothing's sum over the classes)."""
    n = r.size
    total = 0.0
    for b0 in range(0, n, SUM_BLOCK):
        b1 = min(n, b0 + SUM_BLOCK)
        blk = r[b0:b1]
        wb = row_view(w, b0, b1 - b0)
        s = const(m, 0.0)
        for i in range(blk.size):
            s += wb[i] * (blk[i] - m)
        total += s
    return total


@_inline
def row_prob_sums(r, p, w, m, pa, pb):
    """(sum(q * (r - m)), sum(q)) as float64, with q = w * (p * pa + pb).

    ``p * pa + pb`` is a probability target after label smoothing
    (:func:`smoothed_target`).
    """
    n = r.size
    fa = const(m, pa)
    fb = const(m, pb)
    ta = 0.0
    tb = 0.0
    for b0 in range(0, n, SUM_BLOCK):
        b1 = min(n, b0 + SUM_BLOCK)
        blk = r[b0:b1]
        pbk = p[b0:b1]
        wb = row_view(w, b0, b1 - b0)
        sa = const(m, 0.0)
        sb = const(m, 0.0)
        for i in range(blk.size):
            q = wb[i] * smoothed_target(pbk[i], fa, fb)
            sa += q * (blk[i] - m)
            sb += q
        ta += sa
        tb += sb
    return ta, tb


# --------------------------------------------- a block of columns (axis != last)
# x is the flat C-order (outer, C, inner) array, base = o * C * I; the block is
# positions j0 .. j0 + nb of the inner axis. Per-position accumulators live in
# the small scratch arrays m (element type) and s, a (float64), of length >= nb.
# The loops are elementwise over the block, so they vectorize with no fast-math.
@_inline
def cols_max(x, base, C, I, j0, nb, sgn, m):
    """m[k] = max over c of sgn * x[base + c*I + j0 + k]."""
    first = row_view(x, base + j0, nb)
    for k in range(nb):
        m[k] = sgn * first[k]
    for c in range(1, C):
        start = base + c * I + j0
        r = row_view(x, start, nb)
        for k in range(nb):
            v = sgn * r[k]
            m[k] = v if v > m[k] else m[k]  # NaN: see row_max


@_inline
def cols_sumexp(x, out, base, C, I, j0, nb, sgn, m, s):
    """s[k] = sum over c of exp(sgn * x - m[k]), in float64; unless ``out`` is None,
    also out = exp(sgn * x - m[k]) (``out`` may be ``x``)."""
    for k in range(nb):
        s[k] = 0.0
    for c in range(C):
        start = base + c * I + j0
        r = row_view(x, start, nb)
        if out is None:
            for k in range(nb):
                s[k] += exp(sgn * r[k] - m[k])
        else:
            o = row_view(out, start, nb)
            for k in range(nb):
                e = exp(sgn * r[k] - m[k])
                o[k] = e
                s[k] += e


@_inline
def cols_wshift_sum(x, w, base, C, I, j0, nb, m, a):
    """a[k] = sum over c of w[c] * (x - m[k]), in float64."""
    for k in range(nb):
        a[k] = 0.0
    for c in range(C):
        start = base + c * I + j0
        r = row_view(x, start, nb)
        wc = w[c]
        for k in range(nb):
            a[k] += wc * (r[k] - m[k])


@_inline
def cols_prob_sums(x, p, w, base, C, I, j0, nb, m, pa, pb, a, b):
    """a[k] = sum q * (x - m[k]), b[k] = sum q over c, q = w[c] * (p * pa + pb)."""
    fa = const(w[0], pa)
    fb = const(w[0], pb)
    for k in range(nb):
        a[k] = 0.0
        b[k] = 0.0
    for c in range(C):
        start = base + c * I + j0
        r = row_view(x, start, nb)
        pr = row_view(p, start, nb)
        wc = w[c]
        for k in range(nb):
            q = wc * smoothed_target(pr[k], fa, fb)
            a[k] += q * (r[k] - m[k])
            b[k] += q



# ------------------------------------------- the log-sum-exp row ops (softmax family)
class RowCore:
    """The math of a log-sum-exp row op, written once for the CPU and CUDA kernels.

    The ops of this family (softmax, log-softmax; softmin is softmax with
    ``sgn = -1``) share their row statistics: with ``v = sgn * x`` along the
    op's axis, the row max ``m`` and ``s = sum(exp(v - m))`` (float64), computed
    by the shared passes (:func:`row_max` and :func:`row_sumexp`, :func:`cols_max`
    and :func:`cols_sumexp`; on CUDA the row-statistics device function of
    ``nbops/cuda/_kernels.py``). What differs is two scalar functions:

    ``prep(s)``
        The per-row constant ``k`` from the (float64) sum; the kernels convert
        it to the element type. softmax: ``1 / s``; log-softmax: ``log(s)``.
    ``value(u, k)``
        One element of the result. ``u`` is ``t = exp(v - m)`` as the sum pass
        stored it when ``stores_exp`` is true (softmax: ``t * k``), else the
        shifted value ``d = v - m`` (log-softmax: ``sub_exact(d, k)``).

    Its backward (the vector-Jacobian product given the op's output ``y`` and
    ``grad_output`` ``g``) is two more scalar functions of the same style:

    ``grad_term(g, y)``
        One term of the row sum ``s`` of the backward (float64, as the forward's
        sums). softmax: ``g * y``; log-softmax: ``g``.
    ``grad_value(g, y, s)``
        One element of the gradient of ``v``. softmax: ``y * (g - s)``;
        log-softmax: ``g - exp(y) * s``. The gradient of the input is
        ``sgn`` times it (softmin's is the negated softmax backward, as
        PyTorch's autograd computes it through ``-x``).

    :func:`grad_row` and :func:`grad_cols` build the CPU row and column code
    of every backward from them, ``nbops/cuda/_kernels.py`` its CUDA kernels.

    ``stores_exp`` says whether the sum pass writes ``t`` into the output (one
    ``exp`` per element; the last pass then reads ``t`` back from cache) or not
    (the last pass recomputes ``d`` from the input). Both functions are
    ``njit(inline='always')`` functions of scalars (``math.*``, arithmetic,
    :func:`sub_exact`), the style of the scalar cores, so that
    :func:`nbops.cuda._core.device` compiles the same source for the GPU.

    Numba types a ``RowCore`` as a distinct dummy type naming it
    (``nbops.RowCore(softmax)``), so one module-level kernel compiles (and
    caches on disk) one specialization per (core, dtype), and
    :func:`row_prep` / :func:`row_value` resolve the core's functions at
    compile time, the way :class:`nbops._ops.elementwise.Op` works for
    elementwise ops. The generic row code (:func:`lse_row`, :func:`lse_cols`)
    is plain inlined code around those two calls.
    """

    registry = {}

    def __init__(self, name, prep, value, stores_exp, grad_term=None, grad_value=None):
        self.name, self.prep, self.value, self.stores_exp = name, prep, value, stores_exp
        self.grad_term, self.grad_value = grad_term, grad_value
        #: the ``stored, shifted`` arguments of :func:`lse_row` and :func:`lse_cols`
        self.switches = (True, None) if stores_exp else (None, True)
        RowCore.registry[name] = self

    def __repr__(self):
        return f"RowCore({self.name})"


class RowCoreType(types.Dummy):
    """Numba type of a :class:`RowCore`: carries only the core's name."""

    def __init__(self, name):
        self.core_name = name
        super().__init__(name=f"nbops.RowCore({name})")


@typeof_impl.register(RowCore)
def _typeof_row_core(val, context):
    return RowCoreType(val.name)


register_model(RowCoreType)(models.OpaqueModel)


@unbox(RowCoreType)
def _unbox_row_core(typ, obj, c):
    return NativeValue(c.context.get_dummy_value())


@lower_constant(RowCoreType)
def _lower_row_core_constant(context, builder, ty, pyval):
    return context.get_dummy_value()


def row_prep(core, s):
    """``core.prep(s)`` inside Numba code (the core resolved when compiling)."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(row_prep, jit_options=_COMMON)
def _row_prep_ol(core, s):
    if isinstance(core, RowCoreType):
        prep = RowCore.registry[core.core_name].prep
        return lambda core, s: prep(s)
    return None


def row_value(core, u, k):
    """``core.value(u, k)`` inside Numba code (the core resolved when compiling)."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(row_value, jit_options=_COMMON)
def _row_value_ol(core, u, k):
    if isinstance(core, RowCoreType):
        value = RowCore.registry[core.core_name].value
        return lambda core, u, k: value(u, k)
    return None


def row_grad_term(core, g, y):
    """``core.grad_term(g, y)`` inside Numba code (the core resolved when compiling)."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(row_grad_term, jit_options=_COMMON)
def _row_grad_term_ol(core, g, y):
    if isinstance(core, RowCoreType):
        term = RowCore.registry[core.core_name].grad_term
        return lambda core, g, y: term(g, y)
    return None


def row_grad_value(core, g, y, s):
    """``core.grad_value(g, y, s)`` inside Numba code (the core resolved when compiling)."""
    raise NotImplementedError("only callable inside numba-compiled code")


@overload(row_grad_value, jit_options=_COMMON)
def _row_grad_value_ol(core, g, y, s):
    if isinstance(core, RowCoreType):
        value = RowCore.registry[core.core_name].grad_value
        return lambda core, g, y, s: value(g, y, s)
    return None


# ``stored, shifted`` below are ``core.switches``: (True, None) for a core that
# stores exp(v - m), (None, True) for one that does not. Numba resolves a branch
# on ``arg is not None`` when compiling only where the argument is None, so
# each path has its own switch and each core compiles only its own path.
@_inline
def lse_row(core, r, o, sgn, stored, shifted):
    """One row: ``o`` = the op of ``sgn * r`` (``o`` may be ``r``).

    Three passes over the row: its max, ``s`` (also storing ``t = exp(v - m)``
    into ``o`` when the core stores it), then ``value`` of each element while
    the row is still in cache.
    """
    if r.size == 0:
        return
    m = row_max(r, sgn)
    if stored is not None:
        k = const(m, row_prep(core, row_sumexp(r, o, sgn, m)))
        for i in range(o.size):
            o[i] = row_value(core, o[i], k)
    if shifted is not None:
        k = const(m, row_prep(core, row_sumexp(r, None, sgn, m)))
        for i in range(r.size):
            o[i] = row_value(core, sub_exact(sgn * r[i], m), k)


@chunk_function
def lse_cols(core, x, out, o, C, I, j0, sgn, stored, shifted):
    """:func:`lse_row` for positions j0 .. j0 + COLS_BLOCK of the (o, :, j) rows of
    a flat (O, C, I) array (``out`` may be ``x``).

    A chunk function (see ``chunk_function``): the serial and parallel kernels
    call it rather than copy it into their loop bodies."""
    nb = min(COLS_BLOCK, I - j0)
    if C == 0 or nb <= 0:
        return
    base = o * C * I
    m = stack_block(sgn)
    f = stack_block(sgn)
    s = stack_block(0.0)
    cols_max(x, base, C, I, j0, nb, sgn, m)
    if stored is not None:
        cols_sumexp(x, out, base, C, I, j0, nb, sgn, m, s)
        for k in range(nb):
            f[k] = row_prep(core, s[k])
        for c in range(C):
            ob = row_view(out, base + c * I + j0, nb)
            for k in range(nb):
                ob[k] = row_value(core, ob[k], f[k])
    if shifted is not None:
        cols_sumexp(x, None, base, C, I, j0, nb, sgn, m, s)
        for k in range(nb):
            f[k] = row_prep(core, s[k])
        for c in range(C):
            start = base + c * I + j0
            r = row_view(x, start, nb)
            ob = row_view(out, start, nb)
            for k in range(nb):
                ob[k] = row_value(core, sub_exact(sgn * r[k], m[k]), f[k])


@_inline
def lse_scalar(core, v, stored):
    """The op of a one-element row holding ``v`` (a 0-d input): ``d = v - v``
    (0, or NaN for an infinite or NaN ``v``, as PyTorch's)."""
    d = v - v
    t = exp(d)
    return row_value(core, t if stored else d, const(v, row_prep(core, np.float64(t))))


@_inline
def grad_row(core, g, y, o, sgn):
    """The backward of one row: ``o = sgn * grad_value(g, y, s)`` with
    ``s = sum(grad_term(g, y))`` over the row (``o`` may be ``g`` or ``y``).

    Two passes: the sum (in the element type over blocks of :data:`SUM_BLOCK`
    elements, the block sums added in float64, as :func:`row_sumexp`), then
    the result, while the row is still in cache.
    """
    n = g.size
    total = 0.0
    for b0 in range(0, n, SUM_BLOCK):
        b1 = int_min(n, b0 + SUM_BLOCK)
        gb = g[b0:b1]
        yb = y[b0:b1]
        s = const(sgn, 0.0)
        for i in range(gb.size):
            s += row_grad_term(core, gb[i], yb[i])
        total += s
    k = const(sgn, total)
    for i in range(n):
        o[i] = sgn * row_grad_value(core, g[i], y[i], k)


@chunk_function
def grad_cols(core, g, y, out, o, C, I, j0, sgn):
    """:func:`grad_row` for positions j0 .. j0 + COLS_BLOCK of the (o, :, j) rows of
    flat (O, C, I) arrays (``out`` may be ``g`` or ``y``; sums in float64; a chunk
    function, as :func:`lse_cols`)."""
    nb = min(COLS_BLOCK, I - j0)
    if C == 0 or nb <= 0:
        return
    base = o * C * I
    s = stack_block(0.0)
    f = stack_block(sgn)
    for k in range(nb):
        s[k] = 0.0
    for c in range(C):
        start = base + c * I + j0
        gr = row_view(g, start, nb)
        yr = row_view(y, start, nb)
        for k in range(nb):
            s[k] += row_grad_term(core, gr[k], yr[k])
    for k in range(nb):
        f[k] = s[k]
    for c in range(C):
        start = base + c * I + j0
        gr = row_view(g, start, nb)
        yr = row_view(y, start, nb)
        ob = row_view(out, start, nb)
        for k in range(nb):
            ob[k] = sgn * row_grad_value(core, gr[k], yr[k], f[k])


# The cores of the softmax family (nbops/_ops/softmax.py declares the ops).
@_inline
def softmax_prep(s):
    """softmax's per-row constant: ``1 / s``."""
    return 1.0 / s


@_inline
def softmax_value(t, k):
    """softmax of one element from its stored ``t = exp(v - m)``: ``t * (1 / s)``."""
    return t * k


@_inline
def log_softmax_prep(s):
    """log-softmax's per-row constant: ``log(s)``."""
    return math.log(s)


@_inline
def log_softmax_value(d, k):
    """log-softmax of one element: ``(v - m) - log(s)``, in that order (never
    ``v - (m + log(s))``, which loses precision: pytorch/pytorch#11752)."""
    return sub_exact(d, k)


# Their backwards, from the output y and grad_output g (PyTorch's
# _softmax_backward_data and _log_softmax_backward_data).
@_inline
def softmax_grad_term(g, y):
    """A term of softmax's backward row sum: ``g * y``."""
    return g * y


@_inline
def softmax_grad_value(g, y, s):
    """softmax's backward of one element: ``y * (g - s)``, ``s = sum(g * y)``."""
    return y * (g - s)


@_inline
def log_softmax_grad_term(g, y):
    """A term of log-softmax's backward row sum: ``g``."""
    return g


@_inline
def log_softmax_grad_value(g, y, s):
    """log-softmax's backward of one element: ``g - exp(y) * s``, ``s = sum(g)``."""
    return g - exp(y) * s


#: softmax (and softmin, its ``sgn = -1`` op): the sum pass stores ``exp(v - m)``.
SOFTMAX = RowCore("softmax", softmax_prep, softmax_value, stores_exp=True,
                  grad_term=softmax_grad_term, grad_value=softmax_grad_value)
#: log-softmax: the last pass recomputes ``v - m``.
LOG_SOFTMAX = RowCore("log_softmax", log_softmax_prep, log_softmax_value, stores_exp=False,
                      grad_term=log_softmax_grad_term, grad_value=log_softmax_grad_value)


# ------------------------------------------------- label smoothing
# The two combines of label smoothing, written once for the CPU row cores below
# and the CUDA row kernels (called by the helpers of nbops/cuda/_rows.py, which
# nbops/cuda/_kernels.py compiles with cuda.jit(device=True)).
@_inline
def smoothed_loss(nll, smooth, a, b):
    r"""Cross-entropy of one sample with a class-index target, after label smoothing.

    Parameters
    ----------
    nll : float
        The unsmoothed loss :math:`-w_t \log p_t`.
    smooth : float
        The uniform term :math:`-\sum_c w_c \log p_c`.
    a, b : float
        :math:`1 - \varepsilon` and :math:`\varepsilon / C` (``label_smoothing``
        :math:`\varepsilon`, ``C`` classes).

    Returns
    -------
    float
        ``a * nll + b * smooth``.
    """
    return a * nll + b * smooth


@_inline
def smoothed_target(p, a, b):
    r"""A class-probability target after label smoothing.

    Parameters
    ----------
    p : float
        The target probability of one class.
    a, b : float
        :math:`1 - \varepsilon` and :math:`\varepsilon / C`, as in :func:`smoothed_loss`.

    Returns
    -------
    float
        ``p * a + b``.
    """
    return p * a + b


# ------------------------------------------------- cross-entropy, one unit
# Class-index targets. Per sample with target t (not ignore_index):
#   logp_t = (x_t - max) - log(sum(exp(x - max)))        (x_t itself if not lse: nll_loss)
#   nll    = -w_t * logp_t
#   smooth = -sum_c w_c * logp_c = log(sum(exp)) * wsum - sum_c w_c * (x_c - max)
#   loss   = a * nll + b * smooth,   a = 1 - label_smoothing, b = label_smoothing / C
#            (smoothed_loss)
# An ignored sample has loss 0 and weight 0 and its row is never read.
# Returns (sum of losses, sum of w_t) in float64, in sample order.
# b is None: no label smoothing; lse is None: nll_loss (these branches are
# resolved when Numba compiles the kernel, see the module docstring).
@_inline
def ce_rows(x, t, w, C, r0, r1, ignore, a, b, wsum, loss):
    """Rows r0 .. r1 of a flat (N, C) array of logits (class axis last)."""
    sl = 0.0
    sw = 0.0
    one = one_of(x)
    tb = row_view(t, r0, r1 - r0)
    lb = row_view(loss, r0, r1 - r0)
    for k in range(tb.size):
        ti = tb[k]
        if ti == ignore:
            lb[k] = 0.0
            continue
        wt = w[ti]
        row = row_view(x, (r0 + k) * C, C)
        m = row_max(row, one)
        ls = math.log(row_sumexp(row, None, one, m))
        logp = sub_exact(sub_exact(row[ti], m), const(m, ls))
        li = -wt * logp
        if b is not None:
            if b != 0:
                li = smoothed_loss(li, ls * wsum - row_wshift_sum(row, w, m), a, b)
        lb[k] = li
        sl += li
        sw += wt
    return sl, sw


@_inline
def nll_rows(x, t, w, C, r0, r1, ignore, unit_w, loss):
    """nll_loss on rows r0 .. r1 of a flat (N, C) array of log-probabilities.

    ``unit_w``: all weights are 1 (no weight gathered per sample).
    """
    sl = 0.0
    sw = 0.0
    tb = row_view(t, r0, r1 - r0)
    lb = row_view(loss, r0, r1 - r0)
    xb = row_view(x, r0 * C, (r1 - r0) * C)
    if unit_w:
        for k in range(tb.size):
            ti = tb[k]
            if ti == ignore:
                lb[k] = 0.0
                continue
            li = -xb[k * C + ti]
            lb[k] = li
            sl += li
            sw += 1.0
        return sl, sw
    for k in range(tb.size):
        ti = tb[k]
        if ti == ignore:
            lb[k] = 0.0
            continue
        wt = w[ti]
        li = -wt * xb[k * C + ti]
        lb[k] = li
        sl += li
        sw += wt
    return sl, sw


@chunk_function
def ce_cols(x, t, w, o, C, I, j0, ignore, a, b, wsum, lse, loss):
    """Positions j0 .. j0 + COLS_BLOCK of sample row o of a flat (N, C, I) array."""
    nb = min(COLS_BLOCK, I - j0)
    base = o * C * I
    s0 = o * I + j0
    tb = row_view(t, s0, nb)
    lb = row_view(loss, s0, nb)
    # stack scratch and fill loops (np.empty, np.zeros and np.ones would each cost
    # Numba a template compilation: docs/guides/architecture.rst)
    one = one_of(x)
    m = stack_block(one)
    s = stack_block(0.0)
    aa = stack_block(0.0)
    for k in range(nb):
        m[k] = 0.0
        s[k] = 1.0
        aa[k] = 0.0
    if lse is not None:
        if C > 0:
            cols_max(x, base, C, I, j0, nb, one, m)
            cols_sumexp(x, None, base, C, I, j0, nb, one, m, s)
            if b is not None:
                if b != 0:
                    cols_wshift_sum(x, w, base, C, I, j0, nb, m, aa)
    sl = 0.0
    sw = 0.0
    for k in range(nb):
        ti = tb[k]
        if ti == ignore:
            lb[k] = 0.0
            continue
        wt = w[ti]
        xt = x[base + ti * I + j0 + k]
        li = -wt * xt
        if lse is not None:
            ls = math.log(s[k])
            logp = sub_exact(sub_exact(xt, m[k]), const(xt, ls))
            li = -wt * logp
            if b is not None:
                if b != 0:
                    li = smoothed_loss(li, ls * wsum - aa[k], a, b)
        lb[k] = li
        sl += li
        sw += wt
    return sl, sw


# Class-probability targets p (same shape as x), after label smoothing
# q_c = w_c * (p_c * pa + pb), pa = 1 - label_smoothing, pb = label_smoothing / C
# (smoothed_target):
#   loss = -sum_c q_c * logp_c = log(sum(exp(x - max))) * sum_c q_c - sum_c q_c * (x_c - max)
@_inline
def prob_rows(x, p, w, C, r0, r1, pa, pb, loss):
    """Rows r0 .. r1 of flat (N, C) arrays; returns the float64 sum of their losses."""
    sl = 0.0
    one = one_of(x)
    for r in range(r0, r1):
        row = row_view(x, r * C, C)
        m = row_max(row, one)
        ls = math.log(row_sumexp(row, None, one, m))
        qa, qb = row_prob_sums(row, row_view(p, r * C, C), w, m, pa, pb)
        li = ls * qb - qa
        loss[r] = li
        sl += li
    return sl


@chunk_function
def prob_cols(x, p, w, o, C, I, j0, pa, pb, loss):
    """Positions j0 .. j0 + COLS_BLOCK of sample row o of flat (N, C, I) arrays."""
    nb = min(COLS_BLOCK, I - j0)
    base = o * C * I
    s0 = o * I + j0
    lb = row_view(loss, s0, nb)
    one = one_of(x)
    m = stack_block(one)
    s = stack_block(0.0)
    qa = stack_block(0.0)
    qb = stack_block(0.0)
    cols_max(x, base, C, I, j0, nb, one, m)
    cols_sumexp(x, None, base, C, I, j0, nb, one, m, s)
    cols_prob_sums(x, p, w, base, C, I, j0, nb, m, pa, pb, qa, qb)
    sl = 0.0
    for k in range(nb):
        li = math.log(s[k]) * qb[k] - qa[k]
        lb[k] = li
        sl += li
    return sl
