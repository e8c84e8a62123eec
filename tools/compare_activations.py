"""Activation figures in one run: every activation at 1e7 elements (nbops
allocating, nbops out=, torch, the NumPy one-liner), the copy bandwidth, and
100-element call times.

    python tools/compare_activations.py [--dtype float64] [--n 10000000] [--threads 1]

Needs torch==2.13.0 (the CPU build). ``--threads`` pins torch's and Numba's
thread counts (default: both libraries' defaults).
"""

import argparse
import os
import sys
import time
import timeit

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "asv_bench"))

from benchmarks.activations import NUMPY, OPS, TORCH, nbops_args  # noqa: E402

import nbops  # noqa: E402


def best(f, n=7):
    f()
    b = 1e9
    for _ in range(n):
        t = time.perf_counter()
        f()
        b = min(b, time.perf_counter() - t)
    return b


def small(f):
    f()
    return min(timeit.repeat(f, number=20000, repeat=5)) / 20000 * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--n", type=int, default=10**7)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        import numba

        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    print(f"load {os.getloadavg()[0]:.2f}, torch threads {torch.get_num_threads()}, "
          f"{args.n} x {args.dtype}")
    x = np.random.default_rng(0).standard_normal(args.n).astype(args.dtype)
    out = np.empty_like(x)
    t = torch.from_numpy(x)
    copy = best(lambda: np.copyto(out, x))
    bw = 2 * x.nbytes / copy
    print(f"copy {copy * 1e3:.2f} ms = {bw / 1e9:.1f} GB/s (times in ms)")
    print(f"{'op':<11}{'nbops':>8}{'nb out':>8}{'torch':>8}{'numpy':>8}{'nb/torch':>9}"
          f"{'nb/np':>7}{'out/torch':>10}{'bw(out)':>8}")
    for op in OPS:  # every elementwise op of the op table
        nb = getattr(nbops, op)
        extra = nbops_args(op, x.dtype)
        a = best(lambda: nb(x, *extra))  # noqa: B023
        ao = best(lambda: nb(x, *extra, out=out))  # noqa: B023
        tt = best(lambda: TORCH[op](t)) if op in TORCH else float("nan")  # noqa: B023
        nn = best(lambda: NUMPY[op](x), 3) if op in NUMPY else float("nan")  # noqa: B023
        print(f"{op:<11}{a * 1e3:8.2f}{ao * 1e3:8.2f}{tt * 1e3:8.2f}{nn * 1e3:8.2f}"
              f"{a / tt:9.2f}{a / nn:7.2f}{ao / tt:10.2f}{(2 * x.nbytes / ao) / bw:8.2f}")
    xs = x[:100].copy()
    for op in ["relu", "sigmoid", "softplus", "logsigmoid"]:
        nb = getattr(nbops, op)
        # timed inside this iteration
        print(f"100 elements {op}: nbops {small(lambda: nb(xs)):.2f} us, "  # noqa: B023
              f"numpy {small(lambda: NUMPY[op](xs)):.2f} us")  # noqa: B023


if __name__ == "__main__":
    main()
