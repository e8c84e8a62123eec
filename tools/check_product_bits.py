#!/usr/bin/env python
"""Bit-for-bit check of linear's product kernels across source trees.

Hashes (sha256 of the bytes) the outputs of ``linear``, ``linear_backward``,
``bilinear``, ``bilinear_backward``, ``cdist``, ``cdist_backward``, ``pdist`` and
``pdist_backward`` on shapes chosen around the kernels' blocks (row counts and
output counts not multiples of 4, fewer and more input features than
``linear.FEW_INPUTS``, more outputs than ``OUT_CHUNK``), float32 and float64,
with and without a bias, in fresh processes per source tree (``PYTHONPATH``), on
1 and 2 threads, each with the default thresholds and with
``NBOPS_PARALLEL_THRESHOLD=1`` (every launch parallel). Prints the number of
outputs compared and every mismatch; exits 1 on a mismatch::

    python tools/check_product_bits.py --tree /tmp/base --tree .
"""

from _bits import compare_trees

CHILD = r"""

LINEAR = [(1, 5, 3), (7, 30, 13), (33, 40, 67), (130, 64, 70), (257, 100, 130),
          (1001, 128, 129), (5, 20, 9), (99, 24, 31), (66, 17, 5), (4, 25, 4), (3, 33, 2)]
DIST = [(30, 3, 40), (50, 30, 70), (301, 16, 27), (130, 65, 200)]

for dt in (np.float32, np.float64):
    rng = np.random.default_rng(0)
    for rows, n_in, n_out in LINEAR:
        x = rng.standard_normal((rows, n_in)).astype(dt)
        w = rng.standard_normal((n_out, n_in)).astype(dt)
        b = rng.standard_normal(n_out).astype(dt)
        g = rng.standard_normal((rows, n_out)).astype(dt)
        tag = f"{np.dtype(dt).name} {rows}x{n_in}->{n_out}"
        put("linear " + tag, nbops.linear(x, w))
        put("linear bias " + tag, nbops.linear(x, w, b))
        put("linear 3d " + tag, nbops.linear(x.reshape(1, rows, n_in), w, b))
        put("linear_backward " + tag, *nbops.linear_backward(g, x, w))
        put("linear_backward bias " + tag, *nbops.linear_backward(g, x, w, b))
        put("linear_backward bias1 " + tag, *nbops.linear_backward(g, x, w, b[:1]))
        if n_in <= 40 and n_out <= 70:
            n2 = max(1, n_in // 3)
            x2 = rng.standard_normal((rows, n2)).astype(dt)
            w3 = rng.standard_normal((n_out, n_in, n2)).astype(dt)
            put("bilinear " + tag, nbops.bilinear(x, x2, w3, b))
            put("bilinear_backward " + tag, *nbops.bilinear_backward(g, x, x2, w3, b))
    for n, m, r in DIST:
        a = rng.standard_normal((n, m)).astype(dt)
        c = rng.standard_normal((r, m)).astype(dt)
        tag = f"{np.dtype(dt).name} {n}x{m} {r}"
        put("cdist " + tag, nbops.cdist(a, c))
        gd = rng.standard_normal((n, r)).astype(dt)
        put("cdist_backward " + tag, *nbops.cdist_backward(gd, a, c))
        put("pdist " + tag, nbops.pdist(a))
        gp = rng.standard_normal(n * (n - 1) // 2).astype(dt)
        put("pdist_backward " + tag, nbops.pdist_backward(gp, a))
print(json.dumps([nbops.__file__, out]))
"""


if __name__ == "__main__":
    compare_trees(CHILD, __doc__.split("\n")[0])
