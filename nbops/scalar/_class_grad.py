"""Gradient row cores of cross_entropy and nll_loss: the math of their backward, once.

With ``p = softmax(x)`` of one sample's row of logits, ``sc`` the sample's
share of ``grad_output`` (``grad_output / divisor`` for 'mean', the sample's
``grad_output`` for 'none'), ``a = 1 - eps``, ``b = eps / C`` (label smoothing
``eps``) and class weights ``w``:

* class-index target ``t`` (cross_entropy):
  ``grad_c = sc * ((a w_t + b W) p_c - b w_c - [c = t] a w_t)``, ``W = sum_c w_c``;
* nll_loss: ``grad_c = -[c = t] sc w_t`` (the input is not read for the gradient);
* class-probability target ``P``, ``q_c = w_c (P_c a + b)`` (smoothed):
  ``grad_c = sc * (Q p_c - q_c)``, ``Q = sum_c q_c``;
* a sample whose target is ``ignore_index``: 0.

``p_c = e_c / s`` with ``e_c = exp(x_c - max)`` and ``s = sum_c e_c``: the
kernels store ``e`` into the gradient while summing (one ``exp`` per element)
and then rewrite it in place with :func:`grad_value`, ``e * k - w_c * bs``,
from the per-sample factors of :func:`index_grad_factor` /
:func:`prob_grad_factor`. The scalar functions are used by the CPU row and
column functions below (chunk functions called by the kernels of
``nbops/_ops/classification.py``, which the ``@njit`` forms call too; see
``chunk_function`` in ``nbops/scalar/rows.py``) and by
the CUDA kernels (``nbops/cuda/_kernels.py``, compiled with
``nbops.cuda._core.device``).

The row functions also compute each sample's loss exactly as the forward's
cores (:func:`nbops.scalar.rows.ce_rows` and friends), so that
``*_with_grad`` returns the forward's loss.
"""

import math

from numba import njit

from .._config import _COMMON
from ._math import const
from .rows import (
    COLS_BLOCK,
    chunk_function,
    cols_max,
    cols_prob_sums,
    cols_sumexp,
    cols_wshift_sum,
    one_of,
    row_max,
    row_prob_sums,
    row_sumexp,
    row_view,
    row_wshift_sum,
    smoothed_loss,
    smoothed_target,
    stack_block,
    sub_exact,
)

_inline = njit(inline="always", **_COMMON)


# ------------------------------------------------------------ scalar combines
@_inline
def index_grad_factor(sc, wt, a, b, wsum, s):
    """The factor of ``e_c`` in a class-index sample's gradient: ``sc (a w_t + b W) / s``."""
    return sc * (a * wt + b * wsum) / s


@_inline
def prob_grad_factor(sc, q_sum, s):
    """The factor of ``e_c`` in a class-probability sample's gradient: ``sc Q / s``."""
    return sc * q_sum / s


@_inline
def grad_value(e, k, wc, bs):
    """One gradient element from ``e = exp(x_c - max)``: ``e * k - wc * bs``."""
    return e * k - wc * bs


@_inline
def target_term(sc, a, wt):
    """What the target class subtracts from its gradient element: ``sc a w_t``."""
    return sc * a * wt


@_inline
def weight_sum(t, w, s0, n, ignore):
    """sum of ``w[t[i]]`` over ``i`` in ``s0 .. s0 + n`` with ``t[i] != ignore``, as a
    float64, in order (the forward's per-chunk sum of the target weights)."""
    sw = 0.0
    for i in range(s0, s0 + n):
        ti = t[i]
        if ti != ignore:
            sw += w[ti]
    return sw


# ------------------------------------------------------------ CPU rows and columns
# x, grad: flat C-order (O, C, I) arrays of one float type; t: flat int64 class
# indices; w: (C,) weights; g: per-sample grad_output (gstride 1) or one value
# (gstride 0); div: the divisor of 'mean' (else 1.0); loss: per-sample losses.
# lse is None: nll_loss; b is None: no label smoothing (a is then 1.0);
# zeroed: grad is all zeros already (nll_loss then writes the target entries only);
# need_loss false: nll_loss's rows leave their loss 0 (a backward needs none).
@chunk_function
def ce_grad_rows(x, t, w, g, gstride, div, C, r0, r1, ignore, a, b, wsum, lse, loss, grad,
                 zeroed, need_loss):
    """Rows r0 .. r1 of flat (N, C) arrays (class axis last); returns (sum of the
    losses, sum of the target weights) in float64, ignored rows left out."""
    sl = 0.0
    sw = 0.0
    one = one_of(x)
    for r in range(r0, r1):
        ti = t[r]
        gr = row_view(grad, r * C, C)
        if ti == ignore:
            loss[r] = 0.0
            if not zeroed:
                for c in range(C):
                    gr[c] = 0.0
            continue
        wt = w[ti]
        sc = g[r * gstride] / div
        row = row_view(x, r * C, C)
        if lse is None:
            li = const(wt, 0.0)
            if need_loss:  # (a scattered read the gradient does not need)
                li = -wt * row[ti]
            if not zeroed:
                for c in range(C):
                    gr[c] = 0.0
        else:
            m = row_max(row, one)
            s = row_sumexp(row, gr, one, m)
            ls = math.log(s)
            li = -wt * sub_exact(sub_exact(row[ti], m), const(m, ls))
            if b is None:
                k = const(m, index_grad_factor(sc, wt, 1.0, 0.0, 0.0, s))
                for c in range(C):
                    gr[c] = gr[c] * k
            else:
                if b != 0:
                    li = smoothed_loss(li, ls * wsum - row_wshift_sum(row, w, m), a, b)
                k = const(m, index_grad_factor(sc, wt, a, b, wsum, s))
                bs = const(m, sc * b)
                for c in range(C):
                    gr[c] = grad_value(gr[c], k, w[c], bs)
        at = r * C + ti  # (through grad itself: see ce_grad_cols)
        grad[at] = grad[at] - target_term(sc, a, wt)
        loss[r] = li
        sl += li
        sw += wt
    return sl, sw


@chunk_function
def ce_grad_cols(x, t, w, g, gstride, div, o, C, I, j0, ignore, a, b, wsum, lse, loss, grad,
                 zeroed):
    """Positions j0 .. j0 + COLS_BLOCK of sample row o of flat (N, C, I) arrays."""
    nb = min(COLS_BLOCK, I - j0)
    base = o * C * I
    s0 = o * I + j0
    one = one_of(x)
    m = stack_block(one)
    kk = stack_block(one)
    bs = stack_block(one)
    s = stack_block(0.0)
    aa = stack_block(0.0)
    for k in range(nb):
        m[k] = 0.0
        kk[k] = 0.0
        bs[k] = 0.0
        s[k] = 1.0
        aa[k] = 0.0
    if lse is not None:
        cols_max(x, base, C, I, j0, nb, one, m)
        cols_sumexp(x, grad, base, C, I, j0, nb, one, m, s)
        if b is not None:
            if b != 0:
                cols_wshift_sum(x, w, base, C, I, j0, nb, m, aa)
    elif not zeroed:
        for c in range(C):
            ob = row_view(grad, base + c * I + j0, nb)
            for k in range(nb):
                ob[k] = 0.0
    sl = 0.0
    sw = 0.0
    for k in range(nb):
        ti = t[s0 + k]
        if ti == ignore:
            loss[s0 + k] = 0.0
            continue
        wt = w[ti]
        xt = x[base + ti * I + j0 + k]
        li = -wt * xt
        if lse is not None:
            sc = g[(s0 + k) * gstride] / div
            ls = math.log(s[k])
            li = -wt * sub_exact(sub_exact(xt, m[k]), const(xt, ls))
            if b is None:
                kk[k] = index_grad_factor(sc, wt, 1.0, 0.0, 0.0, s[k])
            else:
                if b != 0:
                    li = smoothed_loss(li, ls * wsum - aa[k], a, b)
                kk[k] = index_grad_factor(sc, wt, a, b, wsum, s[k])
                bs[k] = sc * b
        loss[s0 + k] = li
        sl += li
        sw += wt
    if lse is not None:
        for c in range(C):
            ob = row_view(grad, base + c * I + j0, nb)
            wc = w[c]
            for k in range(nb):
                ob[k] = grad_value(ob[k], kk[k], wc, bs[k])
    for k in range(nb):
        ti = t[s0 + k]
        if ti == ignore:
            if lse is not None:  # (nll_loss: already 0)
                for c in range(C):
                    grad[base + c * I + j0 + k] = 0.0
        else:
            at = base + ti * I + j0 + k
            grad[at] = grad[at] - target_term(g[(s0 + k) * gstride] / div, a, w[ti])
    return sl, sw


@_inline
def prob_grad_rows(x, p, w, g, gstride, div, C, r0, r1, pa, pb, loss, grad):
    """Class-probability targets, rows r0 .. r1; returns the float64 sum of their losses."""
    sl = 0.0
    one = one_of(x)
    for r in range(r0, r1):
        row = row_view(x, r * C, C)
        pr = row_view(p, r * C, C)
        gr = row_view(grad, r * C, C)
        m = row_max(row, one)
        s = row_sumexp(row, gr, one, m)
        qa, qb = row_prob_sums(row, pr, w, m, pa, pb)
        li = math.log(s) * qb - qa
        loss[r] = li
        sl += li
        sc = g[r * gstride] / div
        k = const(m, prob_grad_factor(sc, qb, s))
        fa = const(m, pa)
        fb = const(m, pb)
        bs = const(m, sc)
        for c in range(C):
            gr[c] = grad_value(gr[c], k, w[c] * smoothed_target(pr[c], fa, fb), bs)
    return sl


@chunk_function
def prob_grad_cols(x, p, w, g, gstride, div, o, C, I, j0, pa, pb, loss, grad):
    """Class-probability targets, positions j0 .. j0 + COLS_BLOCK of sample row o."""
    nb = min(COLS_BLOCK, I - j0)
    base = o * C * I
    s0 = o * I + j0
    one = one_of(x)
    m = stack_block(one)
    kk = stack_block(one)
    bs = stack_block(one)
    s = stack_block(0.0)
    qa = stack_block(0.0)
    qb = stack_block(0.0)
    cols_max(x, base, C, I, j0, nb, one, m)
    cols_sumexp(x, grad, base, C, I, j0, nb, one, m, s)
    cols_prob_sums(x, p, w, base, C, I, j0, nb, m, pa, pb, qa, qb)
    fa = const(m[0], pa)
    fb = const(m[0], pb)
    sl = 0.0
    for k in range(nb):
        li = math.log(s[k]) * qb[k] - qa[k]
        loss[s0 + k] = li
        sl += li
        sc = g[(s0 + k) * gstride] / div
        kk[k] = prob_grad_factor(sc, qb[k], s[k])
        bs[k] = sc
    for c in range(C):
        start = base + c * I + j0
        ob = row_view(grad, start, nb)
        pr = row_view(p, start, nb)
        wc = w[c]
        for k in range(nb):
            ob[k] = grad_value(ob[k], kk[k], wc * smoothed_target(pr[k], fa, fb), bs[k])
    return sl
