#!/usr/bin/env python
"""The performance table's small cells, nbops beside PyTorch, alternated per round.

Each case of ``asv_bench/benchmarks/every_op.py`` (its exact arguments) is called
as nbops allocating, nbops into ``out=`` (where the op takes it) and PyTorch, in
batches of about 2 ms, alternating A B C, C B A, ... over ``--rounds`` rounds; the
figures are the medians over the rounds and, in brackets, the minima (us per
call). On a loaded machine the minima are the figures to compare (PyTorch's
medians on 2 threads suffer most from other processes).

    python tools/measure_small_calls.py --ops glu normalize [--sizes small] \\
        [--dtypes float32 float64] [--rounds 25] [--threads 2]

To compare two versions, run the same command from each checkout (the
``PYTHONPATH`` of each) one after the other, twice, and compare the minima of
nbops against PyTorch's of the same run.
"""

import argparse
import inspect
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _batch(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number * 1e6


def measure(op, size, dtype, rounds):
    """{name: (median, minimum)} of the case's calls (us), names nbops, out, torch."""
    import torch

    from asv_bench.benchmarks import every_op

    fn, torch_name, build = every_op.ALL_CASES[op]
    args, kwargs = build(size, dtype)
    calls = [("nbops", lambda: fn(*args, **kwargs))]
    res = calls[0][1]()
    if "out" in inspect.signature(fn).parameters:
        out = np.empty_like(res)
        calls.append(("out", lambda: fn(*args, out=out, **kwargs)))
    tf = getattr(torch.nn.functional, torch_name, None) or getattr(torch, torch_name)
    targs, tkw = every_op._torch_args(args, kwargs)
    calls.append(("torch", lambda: tf(*targs, **tkw)))
    for _, call in calls:
        call()
    number = max(1, int(2000 / max(1.0, _batch(calls[0][1], 50))))
    times = {name: [] for name, _ in calls}
    for r in range(rounds):
        for name, call in (calls if r % 2 == 0 else calls[::-1]):
            times[name].append(_batch(call, number))
    return {name: (statistics.median(ts), min(ts)) for name, ts in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="+", required=True)
    parser.add_argument("--sizes", nargs="+", default=["small"])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2,
                        help="PyTorch's threads (set NUMBA_NUM_THREADS for nbops')")
    args = parser.parse_args(argv)
    sys.path.insert(0, ROOT)
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    print(f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; torch threads "
          f"{args.threads}, NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', '-')}; "
          f"medians over {args.rounds} rounds [minima], us")
    for op in args.ops:
        for size in args.sizes:
            for dtype in args.dtypes:
                m = measure(op, size, dtype, args.rounds)
                cells = "  ".join(f"{name} {med:7.2f} [{low:6.2f}]"
                                  for name, (med, low) in m.items())
                ratios = "  ".join(f"{name}/torch {m[name][1] / m['torch'][1]:.2f}"
                                   for name in m if name != "torch")
                print(f"{op:24s} {size:6s} {dtype:8s} {cells}   minima: {ratios}", flush=True)


if __name__ == "__main__":
    main()
