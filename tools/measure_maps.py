#!/usr/bin/env python
"""The performance table's elementwise cells, nbops beside PyTorch, in one process.

    python tools/measure_maps.py [--ops relu gelu ...] [--sizes medium] \
        [--dtypes float32 float64] [--rounds 30] [--threads 2]

Each cell calls what ``asv_bench/benchmarks/every_op.py`` times (its CASES'
arguments): ``nbops`` (allocating), ``out=`` (into a preallocated array) and
``torch`` (``torch.nn.functional``, tensors sharing the arrays' memory). The three
alternate over ``--rounds`` rounds (A B C, C B A, ...), each a batch of calls
(about 2 ms), with a 2 ms pause between batches: Numba's and PyTorch's OpenMP
thread pools both spin for a while after a parallel call, and a pool that starts
while the other still spins on the same two cores can stall for a scheduler tick.
Figures are medians over the rounds (minima in brackets), us per call; ``ratio``
is nbops / torch, ``out`` out= / torch (medians). ``--threads`` sets Numba's and
PyTorch's thread counts (the table measures 2 each). ``--no-torch`` times nbops
alone, without importing PyTorch (no second thread pool in the process). The load
average is printed before and after.

To compare with another checkout, run this file from that checkout's root with
``PYTHONPATH`` set to it (``nbops`` and ``asv_bench`` are imported from the current
directory first).
"""

import argparse
import math
import os
import statistics
import sys
import time

import numpy as np

DEFAULT_OPS = ["relu", "prelu", "sigmoid", "silu", "hardshrink", "softshrink", "leaky_relu",
               "relu6", "hardtanh", "threshold", "hardswish", "gelu"]


def _batch(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number * 1e6


def _calls(every_op, torch, op, size, dtype):
    function, torch_name, build = every_op.CASES[op]
    args, kwargs = build(size, dtype)
    out = np.empty_like(function(*args, **kwargs))
    calls = {"nbops": lambda: function(*args, **kwargs),
             "out=": lambda: function(*args, out=out, **kwargs)}
    if torch is not None:
        tf = getattr(torch.nn.functional, torch_name, None) or getattr(torch, torch_name)
        targs, tkw = every_op._torch_args(args, kwargs)
        calls["torch"] = lambda: tf(*targs, **tkw)
    for fn in calls.values():
        fn()  # compile / load from the cache outside the timing
    return calls


def measure(every_op, torch, op, size, dtype, rounds):
    """{name: (median, minimum)} in us per call."""
    calls = _calls(every_op, torch, op, size, dtype)
    names = list(calls)
    t0 = time.perf_counter()
    calls["nbops"]()
    number = max(1, int(2e-3 / max(time.perf_counter() - t0, 1e-7)))
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            time.sleep(2e-3)
            times[name].append(_batch(calls[name], number))
    return {name: (statistics.median(ts), min(ts)) for name, ts in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="+", default=DEFAULT_OPS)
    parser.add_argument("--sizes", nargs="+", default=["medium"])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-torch", action="store_true")
    opts = parser.parse_args(argv)

    sys.path.insert(0, os.getcwd())
    if opts.no_torch:  # every_op.py imports PyTorch where it is installed
        sys.modules["torch"] = None
    import numba

    import nbops
    from asv_bench.benchmarks import every_op

    torch = None if opts.no_torch else every_op.torch
    numba.set_num_threads(opts.threads)
    if torch is not None:
        torch.set_num_threads(opts.threads)
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"nbops from {os.path.dirname(nbops.__file__)}; {opts.threads} threads each; "
          f"load {load}; medians over {opts.rounds} rounds [minima], us per call")
    print(f"{'op':<12} {'size':<7} {'dtype':<8} {'nbops':>16} {'out=':>16} {'torch':>16} "
          f"{'ratio':>6} {'out':>6}")
    for op in opts.ops:
        for size in opts.sizes:
            for dtype in opts.dtypes:
                m = measure(every_op, torch, op, size, dtype, opts.rounds)
                cells = " ".join(f"{m[n][0]:8.2f} [{m[n][1]:6.2f}]" if n in m
                                 else f"{'-':>16}" for n in ("nbops", "out=", "torch"))
                t = m["torch"][0] if "torch" in m else math.nan
                print(f"{op:<12} {size:<7} {dtype:<8} {cells} {m['nbops'][0] / t:6.2f} "
                      f"{m['out='][0] / t:6.2f}", flush=True)
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load after {load}")


if __name__ == "__main__":
    main()
