"""Memory bandwidth of the elementwise backwards into ``out=``, as a share of a copy's.

Issue 14 asks the memory-bound elementwise backwards written into ``out=`` to
reach at least 80% of the copy bandwidth. A backward ``grad_input =
f'(residual) * grad_output`` reads two arrays and writes one (3 x n x itemsize
bytes); a copy reads one and writes one (2 x n x itemsize). This script times,
at 1e7 float32 elements (the backward table's size, its arguments from
``asv_bench/benchmarks/every_backward.py``), every elementwise backward of the
op table into ``out=`` and, alternating with it, two copies of the same size:
a Numba ``prange`` copy on nbops' threads (the machine's copy bandwidth with
those threads) and ``np.copyto`` (NumPy's, one thread). It prints each
backward's bandwidth in GB/s and as a share of each copy's::

    python tools/measure_backward_bandwidth.py
    python tools/measure_backward_bandwidth.py --ops relu sigmoid --rounds 30

Times are the minimum over ``--rounds`` calls (bandwidth-bound kernels on a
shared machine: the minimum is the least disturbed). Figures and their load
are in docs/guides/performance.rst ("Elementwise backwards and the copy
bandwidth").
"""

import argparse
import os
import sys
import time

import numpy as np
from numba import get_num_threads, njit, prange

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@njit(parallel=True, cache=True)
def _parallel_copy(src, dst):
    for i in prange(src.size):
        dst[i] = src[i]


def _best(fn, rounds):
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", nargs="*", help="op names (default: every elementwise op)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--dtype", default="float32")
    args = parser.parse_args(argv)
    sys.path.insert(0, os.path.join(ROOT, "asv_bench"))
    from benchmarks.every_backward import ALL_CASES, FLAT  # noqa: E402


    cases = {label: case for label, case in ALL_CASES.items()
             if case.size == FLAT and label.endswith("_backward")
             and (not args.ops or case.op in args.ops)}
    n = 10_000_000
    src = np.ones(n, args.dtype)
    dst = np.empty_like(src)
    _parallel_copy(src, dst)
    itemsize = src.itemsize
    print(f"{n} x {args.dtype}; Numba threads: {get_num_threads()}; "
          f"load average: {os.getloadavg()}; minimum of {args.rounds} calls each")
    print(f"{'backward':28s} {'ms':>7s} {'GB/s':>6s}  {'share of parallel copy':>22s}"
          f"  {'share of np.copyto':>18s}")
    shares = []
    for label, case in sorted(cases.items()):
        function, fargs, kwargs = case.build(args.dtype).nbops()
        grad_output = fargs[0]
        if not isinstance(grad_output, np.ndarray) or grad_output.size != n:
            continue
        if any(isinstance(a, np.ndarray) and a.size != n for a in fargs[1:]):
            continue  # a parameter array (prelu's weight): not a pure map
        out = np.empty_like(grad_output)
        try:
            function(*fargs, out=out, **kwargs)
        except TypeError:
            continue  # no out= form
        def call(function=function, fargs=fargs, out=out, kwargs=kwargs):
            function(*fargs, out=out, **kwargs)

        t_op = t_par = t_np = float("inf")
        for _ in range(max(1, args.rounds // 5)):  # alternate in blocks of 5 calls
            t_op = min(t_op, _best(call, 5))
            t_par = min(t_par, _best(lambda: _parallel_copy(src, dst), 5))
            t_np = min(t_np, _best(lambda: np.copyto(dst, src), 5))
        op_bw = 3 * n * itemsize / t_op / 1e9
        par_bw = 2 * n * itemsize / t_par / 1e9
        np_bw = 2 * n * itemsize / t_np / 1e9
        shares.append(op_bw / par_bw)
        print(f"{label:28s} {t_op * 1e3:7.2f} {op_bw:6.1f}  "
              f"{op_bw / par_bw:14.0%} ({par_bw:4.1f})  {op_bw / np_bw:10.0%} ({np_bw:4.1f})")
    if shares:
        print(f"share of the parallel copy: min {min(shares):.0%}, "
              f"median {float(np.median(shares)):.0%}, below 80%: "
              f"{sum(s < 0.8 for s in shares)} of {len(shares)}")


if __name__ == "__main__":
    main()
