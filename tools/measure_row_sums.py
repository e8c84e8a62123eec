#!/usr/bin/env python
"""Why nbops' float64 row sums are compiled with ``reassoc``: three ways to sum a row.

    python tools/measure_row_sums.py [--rows 4096] [--length 1000]

Sums the squares of every row of a (rows, length) float32 array into float64,
one thread, and prints the best of 20 runs of each variant:

* ``8 scalars``: eight accumulators written out (element ``j`` into ``j % 8``);
* ``16 lanes``: sixteen accumulators in a small array (``acc[k] += ...``);
* ``reassoc``: one plain loop ``s += x * x`` compiled with
  ``fastmath={"reassoc", "contract"}`` (no NaN/inf flag: NaN and inf propagate
  as without it).

Without ``reassoc`` LLVM keeps the additions of a floating-point sum in
program order, so neither hand-unrolled form becomes vector code (the machine
code has only scalar ``vaddsd``); with it, the loop vectorizes (``vcvtps2pd``,
``vfmadd...pd`` on ``ymm``) and its order is fixed by the compiled code and the
row length: the same bits on any thread count. normalize's kernels use this
(``nbops/_ops/similarity.py``), as the softmax family and cross_entropy already
did (``ROW_FASTMATH`` in ``nbops/scalar/rows.py``).
"""

import argparse
import time

import numba
import numpy as np

OPTS = dict(error_model="numpy", cache=False)


@numba.njit(**OPTS)
def _eight(a, n):
    s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = 0.0
    full = n - n % 8
    for j in range(0, full, 8):
        s0 += np.float64(a[j]) * np.float64(a[j])
        s1 += np.float64(a[j + 1]) * np.float64(a[j + 1])
        s2 += np.float64(a[j + 2]) * np.float64(a[j + 2])
        s3 += np.float64(a[j + 3]) * np.float64(a[j + 3])
        s4 += np.float64(a[j + 4]) * np.float64(a[j + 4])
        s5 += np.float64(a[j + 5]) * np.float64(a[j + 5])
        s6 += np.float64(a[j + 6]) * np.float64(a[j + 6])
        s7 += np.float64(a[j + 7]) * np.float64(a[j + 7])
    s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    for j in range(full, n):
        s += np.float64(a[j]) * np.float64(a[j])
    return s


@numba.njit(**OPTS)
def _lanes(a, n):
    acc = np.zeros(16)
    full = n - n % 16
    for j0 in range(0, full, 16):
        for k in range(16):
            acc[k] += np.float64(a[j0 + k]) * np.float64(a[j0 + k])
    s = 0.0
    for k in range(16):
        s += acc[k]
    for j in range(full, n):
        s += np.float64(a[j]) * np.float64(a[j])
    return s


@numba.njit(fastmath={"reassoc", "contract"}, **OPTS)
def _reassoc(a, n):
    s = 0.0
    for j in range(n):
        s += np.float64(a[j]) * np.float64(a[j])
    return s


def _over_rows(row_sum):
    @numba.njit(**OPTS)
    def run(x, m):
        t = 0.0
        for r in range(x.size // m):
            t += row_sum(x[r * m:(r + 1) * m], m)
        return t
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4096)
    ap.add_argument("--length", type=int, default=1000)
    opts = ap.parse_args()
    numba.set_num_threads(1)
    x = np.random.default_rng(0).standard_normal(opts.rows * opts.length).astype(np.float32)
    want = float(np.sum(x.astype(np.float64) ** 2))
    for name, row_sum in [("8 scalars", _eight), ("16 lanes", _lanes), ("reassoc", _reassoc)]:
        run = _over_rows(row_sum)
        got = run(x, opts.length)
        best = min(_timed(run, x, opts.length) for _ in range(20))
        print(f"{name:10s} {best * 1e3:8.3f} ms  ({best / x.size * 1e9:.3f} ns per element; "
              f"relative difference from NumPy {abs(got - want) / want:.1e})")


def _timed(run, x, m):
    t0 = time.perf_counter()
    run(x, m)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
