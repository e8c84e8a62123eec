#!/usr/bin/env python
"""The normalization cells of the performance table, nbops beside PyTorch.

Each cell calls the arguments of ``asv_bench/benchmarks/every_op.py``'s case
(``docs/perf_table.csv``'s op, size and dtype), alternating nbops allocating,
nbops into ``out=`` and PyTorch over ``--rounds`` rounds (each a timed batch of
calls), and prints the median (``--best``: the best round) per call in
microseconds and the ratios to PyTorch (the table's ``ratio`` and
``ratio_out``)::

    python tools/measure_norm_cells.py [--ops batch_norm layer_norm] [--sizes medium]
        [--dtypes float32] [--rounds 15] [--threads 1] [--best]

Alternating the three libraries in one process keeps the load of a shared
machine out of the ratios as far as it can be; say ``uptime``'s load next to
the figures. ``--threads 1`` runs both libraries on one thread
(``numba.set_num_threads`` and ``torch.set_num_threads``): the kernels' own cost,
less disturbed by other processes on a loaded machine than a parallel launch,
which waits for its slowest thread; on one thread the figures are the
process's CPU time, not wall time.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

OPS = ("batch_norm", "batch_norm_eval", "layer_norm", "rms_norm", "group_norm",
       "instance_norm", "local_response_norm")


def _calls(op, size, dtype):
    from asv_bench.benchmarks import every_op

    function, torch_name, build = every_op.CASES[op]
    args, kwargs = build(size, dtype)
    targs, tkw = every_op._torch_args(args, kwargs)
    tfn = getattr(every_op.F, torch_name)
    out = np.empty_like(function(*args, **kwargs))
    return ({"nbops": lambda: function(*args, **kwargs),
             "nbops_out": lambda: function(*args, out=out, **kwargs),
             "torch": lambda: tfn(*targs, **tkw)})


#: The clock: wall time, or with ``--threads 1`` the process's CPU time (the
#: time other processes hold the core is not counted).
CLOCK = [time.perf_counter]


def _batch(fn, number):
    t0 = CLOCK[0]()
    for _ in range(number):
        fn()
    return (CLOCK[0]() - t0) / number * 1e6


def measure(op, size, dtype, rounds, pick=statistics.median):
    calls = _calls(op, size, dtype)
    for fn in calls.values():
        fn()
    first = _batch(calls["torch"], 3)
    number = max(1, int(20000 / max(first, 1.0)))  # about 20 ms a batch
    times = {k: [] for k in calls}
    for _ in range(rounds):
        for k, fn in calls.items():
            times[k].append(_batch(fn, number))
    return {k: pick(v) for k, v in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="*", default=list(OPS))
    parser.add_argument("--sizes", nargs="*", default=["small", "medium"])
    parser.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, help="threads of both libraries")
    parser.add_argument("--best", action="store_true",
                        help="the best round of each, not the median")
    a = parser.parse_args(argv)
    if a.threads:
        import numba
        import torch

        numba.set_num_threads(a.threads)
        torch.set_num_threads(a.threads)
        if a.threads == 1:
            CLOCK[0] = time.process_time
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}")
    print(f"{'op':22s} {'size':6s} {'dtype':7s} {'nbops':>9s} {'out=':>9s} {'torch':>9s} "
          f"{'ratio':>6s} {'r_out':>6s}")
    for op in a.ops:
        for size in a.sizes:
            for dtype in a.dtypes:
                m = measure(op, size, dtype, a.rounds, min if a.best else statistics.median)
                t = m["torch"]
                print(f"{op:22s} {size:6s} {dtype:7s} {m['nbops']:9.2f} {m['nbops_out']:9.2f} "
                      f"{t:9.2f} {m['nbops'] / t:6.2f} {m['nbops_out'] / t:6.2f}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}")


if __name__ == "__main__":
    main()
