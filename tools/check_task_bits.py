#!/usr/bin/env python
"""Bit-for-bit check of the kernels whose tasks are called by address (triplet
losses' gradients, pairwise distances, gumbel_softmax's noise, ctc_loss's and
local_response_norm's backwards) across source trees.

Hashes (sha256 of the bytes) the outputs of ``triplet_margin_loss``, its
``_backward`` and ``_with_grad`` and ``triplet_margin_with_distance_loss``'s
(``distance_function=None``), every reduction, ``swap`` False and True, p in
(2, 1, 1.5, inf, 0), on shapes whose row counts are not multiples of a task's
rows (``embedding_losses.TRIPLET_TASK`` elements), rows longer than a task,
and a positive shared by all rows (row stride 0); ``gumbel_softmax`` (soft and
hard) and its backward on sizes not multiples of a task's ``gumbel._TILE``
elements nor of a Philox block's 4, along the last and the first axis, and
``gumbel_noise``; ``pairwise_distance`` and its backward (p also -inf, a
shared row, the ``@njit`` forms); ctc_loss's backward and ``_with_grad`` (every reduction,
with and without ``zero_infinity``, samples of no input, of an impossible
target, of unequal lengths, the ``@njit`` overloads); float32 and float64, in
fresh processes per source tree (``PYTHONPATH``), on 1 and 2 threads, each with
the default thresholds and with ``NBOPS_PARALLEL_THRESHOLD=1`` (every launch
parallel); and the ``@njit`` overloads' results. Prints the number of outputs
compared and every mismatch; exits 1 on a mismatch::

    python tools/check_task_bits.py --tree /tmp/base --tree .
"""

from _bits import compare_trees

CHILD = r"""
from nbops._ops.gumbel import gumbel_noise

SHAPES = [(3000, 7), (70, 130), (5, 5000), (1001, 3), (33, 64)]

@numba.njit
def nj_pd(a, b, p, g):
    return (nbops.pairwise_distance(a, b, p),
            nbops.pairwise_distance_backward(g, a, b, p))

@numba.njit
def nj(a, pos, neg, p, swap, g):
    return (nbops.triplet_margin_loss(a, pos, neg, 0.5, p, 1e-6, swap),
            nbops.triplet_margin_loss_backward(g, a, pos, neg, 0.5, p, 1e-6, swap))

for dt in (np.float32, np.float64):
    rng = np.random.default_rng(0)
    for rows, dim in SHAPES:
        a = rng.standard_normal((rows, dim)).astype(dt)
        pos = (a + 0.3 * rng.standard_normal((rows, dim))).astype(dt)
        neg = rng.standard_normal((rows, dim)).astype(dt)
        shared = rng.standard_normal((1, dim)).astype(dt)
        gn = rng.standard_normal(rows).astype(dt)
        for p in (2.0, 1.0, 1.5, np.inf, 0.0):
            for swap in (False, True):
                for red in ("none", "mean", "sum"):
                    g = gn if red == "none" else dt(0.7)
                    tag = f"{np.dtype(dt).name} {rows}x{dim} p={p} swap={swap} {red}"
                    kw = dict(margin=0.5, p=p, swap=swap, reduction=red)
                    put("fwd " + tag, nbops.triplet_margin_loss(a, pos, neg, **kw))
                    put("bwd " + tag, nbops.triplet_margin_loss_backward(g, a, pos, neg, **kw))
                    put("wg " + tag, nbops.triplet_margin_loss_with_grad(a, pos, neg, **kw))
                    if p == 2.0:
                        put("bwd shared " + tag,
                            nbops.triplet_margin_loss_backward(g, a, shared, neg, **kw))
                        dkw = dict(margin=0.5, swap=swap, reduction=red)
                        put("dist bwd " + tag, nbops.triplet_margin_with_distance_loss_backward(
                            g, a, pos, neg, **dkw))
                        put("dist wg " + tag, nbops.triplet_margin_with_distance_loss_with_grad(
                            a, pos, neg, **dkw))
                if rows <= 1001:
                    put(f"njit {np.dtype(dt).name} {rows}x{dim} p={p} swap={swap}",
                        nj(a, pos, neg, p, swap, dt(0.7)))
        for p in (2.0, 1.0, 1.5, np.inf, -np.inf, 0.0):  # pairwise_distance's own calls
            tag = f"{np.dtype(dt).name} {rows}x{dim} p={p}"
            put("pd " + tag, nbops.pairwise_distance(a, neg, p=p))
            put("pd shared " + tag, nbops.pairwise_distance(shared, neg, p=p))
            put("pd bwd " + tag, nbops.pairwise_distance_backward(gn, a, neg, p=p))
            if rows <= 1001:
                put("pd njit " + tag, nj_pd(a, neg, p, gn))
@numba.njit
def nj_gumbel(x, g, hard):
    return (nbops.gumbel_softmax(x, 0.7, hard, rng=11),
            nbops.gumbel_softmax_backward(g, x, 0.7, hard, rng=11))

for dt in (np.float32, np.float64):
    rng = np.random.default_rng(1)
    for shape in [(3, 5), (1001, 9), (8193, 3), (5, 16387), (4097, 8)]:
        x = rng.standard_normal(shape).astype(dt)
        g = rng.standard_normal(shape).astype(dt)
        for hard in (False, True):
            for axis in (-1, 0):
                tag = f"{np.dtype(dt).name} {shape} hard={hard} axis={axis}"
                put("gumbel " + tag, nbops.gumbel_softmax(x, 0.7, hard, axis=axis, rng=11))
                put("gumbel_backward " + tag,
                    nbops.gumbel_softmax_backward(g, x, 0.7, hard, axis=axis, rng=11))
            put(f"njit gumbel {np.dtype(dt).name} {shape} hard={hard}", nj_gumbel(x, g, hard))
        put(f"gumbel_noise {np.dtype(dt).name} {shape}", gumbel_noise(shape, 5, dt))
@numba.njit
def nj_ctc(lp, t, il, tl):
    return nbops.ctc_loss_backward(1.0, lp, t, il, tl, 0, "sum", True)

for dt in (np.float32, np.float64):
    rng = np.random.default_rng(2)
    for n_t, n, n_c in [(12, 5, 4), (30, 33, 7), (50, 17, 20)]:
        lp = rng.standard_normal((n_t, n, n_c))
        lp = (lp - np.log(np.exp(lp).sum(axis=2, keepdims=True))).astype(dt)
        s_max = max(1, n_t // 3)
        t = rng.integers(1, n_c, size=(n, s_max))
        il = rng.integers(0, n_t + 1, size=n)
        il[0] = n_t
        il[1] = 0
        tl = rng.integers(0, s_max + 1, size=n)
        tl[2] = s_max
        il[2] = 1  # an impossible target (inf)
        for red in ("none", "mean", "sum"):
            for zi in (False, True):
                g = rng.standard_normal(n).astype(dt) if red == "none" else 0.7
                tag = f"{np.dtype(dt).name} {(n_t, n, n_c)} {red} zero_infinity={zi}"
                put("ctc_backward " + tag,
                    nbops.ctc_loss_backward(g, lp, t, il, tl, 0, red, zi))
                put("ctc_with_grad " + tag, nbops.ctc_loss_with_grad(lp, t, il, tl, 0, red, zi))
        put(f"njit ctc {np.dtype(dt).name} {(n_t, n, n_c)}", nj_ctc(lp, t, il, tl))
@numba.njit
def nj_lrn(g, x):
    return nbops.local_response_norm_backward(g, x, 3, 1e-3, 0.75, 2.0)

for dt in (np.float32, np.float64):
    rng = np.random.default_rng(3)
    for shape in [(100, 13, 1), (2, 7, 33), (5, 16, 9, 11), (1, 3, 5001), (33, 70, 40)]:
        x = rng.standard_normal(shape).astype(dt)
        g = rng.standard_normal(shape).astype(dt)
        for size in (1, 3, 4):
            put(f"lrn_backward {np.dtype(dt).name} {shape} size={size}",
                nbops.local_response_norm_backward(g, x, size, 1e-3, 0.75, 2.0))
        put(f"njit lrn_backward {np.dtype(dt).name} {shape}", nj_lrn(g, x))
print(json.dumps([nbops.__file__, out]))
"""


if __name__ == "__main__":
    compare_trees(CHILD, __doc__.split("\n")[0])
