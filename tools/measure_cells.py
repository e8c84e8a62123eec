#!/usr/bin/env python
"""Cells of the performance table near or above PyTorch (issue 13), before/after.

The cases are those of ``asv_bench/benchmarks/every_op.py`` (the same
arguments): pdist float32 small (64, 10) and large (512, 128) (float64 beside
them), nll_loss medium (4096, 1000), multi_margin_loss small float32, linear
small (64, 128) x (128, 64) + bias, prelu and sigmoid small float64.

Each source tree given with ``--trees`` (default: this checkout) is measured in
its own process, the trees alternating, ``--repeat`` times, on each thread
count of ``--threads`` (Numba's and PyTorch's). In a process the calls
alternate (nbops allocating, nbops into ``out=``, PyTorch; reversed every
other round) in batches of about 2 ms over ``--rounds`` rounds. Printed per
cell: the median and [minimum] wall time per call (us) and, on 1 thread, the
minimum CPU time of the calling thread (``time.thread_time``, which other
processes on a loaded machine disturb less), and nbops / PyTorch of the minima.

    python tools/measure_cells.py --trees /tmp/base . --threads 1 2 --rounds 15

``--accuracy``: instead, per tree, the relative error of float32 pdist at the
table's two sizes (rows of standard normals scaled by 10^u, u uniform in
[-3, 3], 20 inputs) against the float64 distances, nbops' and PyTorch's
(maximum, mean and 99th percentile, in units of 2^-24).

A baseline tree: ``git archive <rev> | tar -x -C /tmp/base``.
"""

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: (op, size, dtype) of the cells
CELLS = [("pdist", "small", "float32"), ("pdist", "large", "float32"),
         ("pdist", "small", "float64"), ("pdist", "large", "float64"),
         ("nll_loss", "medium", "float64"), ("nll_loss", "medium", "float32"),
         ("multi_margin_loss", "small", "float32"), ("linear", "small", "float32"),
         ("prelu", "small", "float64"), ("sigmoid", "small", "float64")]


def _batch(fn, number, clock):
    t0 = clock()
    for _ in range(number):
        fn()
    return (clock() - t0) / number * 1e6


def measure(op, size, dtype, rounds, threads):
    """{name: (median, minimum, cpu minimum)} of the case's calls (us)."""
    import numba
    import numpy as np
    import torch

    from asv_bench.benchmarks import every_op

    numba.set_num_threads(threads)
    torch.set_num_threads(threads)
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
    number = max(1, int(2000 / max(1.0, _batch(calls[0][1], 20, time.perf_counter))))
    wall = {name: [] for name, _ in calls}
    cpu = {name: [] for name, _ in calls}
    for r in range(rounds):
        for name, call in (calls if r % 2 == 0 else calls[::-1]):
            wall[name].append(_batch(call, number, time.perf_counter))
            cpu[name].append(_batch(call, number, time.thread_time))
    return {name: (statistics.median(wall[name]), min(wall[name]), min(cpu[name]))
            for name in wall}


def worker(threads, rounds, cells):
    """One process: every cell on ``threads`` threads, as JSON lines on stdout."""
    for op, size, dtype in cells:
        m = measure(op, size, dtype, rounds, threads)
        print(json.dumps({"cell": [op, size, dtype], "times": m}), flush=True)


def accuracy(inputs=20):
    """pdist float32 errors against float64 (see the module docstring), printed."""
    import numpy as np
    import torch

    import nbops

    for shape in [(64, 10), (512, 128)]:
        rng = np.random.default_rng(0)
        i, j = np.triu_indices(shape[0], 1)
        errs = {"nbops": [], "torch": []}
        for _ in range(inputs):
            x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3)).astype(np.float32)
            x64 = x.astype(np.float64)
            ref = np.sqrt(((x64[i] - x64[j]) ** 2).sum(axis=1))
            got = {"nbops": nbops.pdist(x),
                   "torch": torch.nn.functional.pdist(torch.from_numpy(x)).numpy()}
            for name in errs:
                errs[name].append(np.abs(got[name] - ref) / ref)
        for name, e in errs.items():
            e = np.concatenate(e) / 2.0 ** -24
            print(f"pdist float32 {shape}  {name:6s} error / 2^-24: max {e.max():.2f}  "
                  f"mean {e.mean():.3f}  p99 {np.quantile(e, 0.99):.2f}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs="+", default=[ROOT])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=2, help="processes per tree and threads")
    parser.add_argument("--ops", nargs="+", help="only these ops' cells")
    parser.add_argument("--accuracy", action="store_true", help="pdist float32 errors")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    cells = [c for c in CELLS if not args.ops or c[0] in args.ops]
    if args.accuracy and args.worker is not None:
        sys.path.insert(0, os.getcwd())
        accuracy()
        return
    if args.accuracy:
        for tree in args.trees:
            print(os.path.abspath(tree), flush=True)
            subprocess.run([sys.executable, os.path.abspath(__file__), "--accuracy", "--worker",
                            "1"], cwd=os.path.abspath(tree), check=True,
                           env=dict(os.environ, PYTHONPATH=os.path.abspath(tree)))
        return
    if args.worker is not None:
        sys.path.insert(0, os.getcwd())
        worker(args.worker, args.rounds, cells)
        return
    best = {}
    for threads in args.threads:
        for rep in range(args.repeat):
            for tree in (args.trees if rep % 2 == 0 else args.trees[::-1]):
                env = dict(os.environ, PYTHONPATH=os.path.abspath(tree),
                           NUMBA_NUM_THREADS=str(max(args.threads)))
                cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(threads),
                       "--rounds", str(args.rounds)] + (["--ops"] + args.ops if args.ops else [])
                load = os.getloadavg()[0]
                out = subprocess.run(cmd, cwd=os.path.abspath(tree), env=env, check=True,
                                     capture_output=True, text=True).stdout
                for line in out.splitlines():
                    rec = json.loads(line)
                    key = (threads, tree, tuple(rec["cell"]))
                    runs = best.setdefault(key, [])
                    runs.append((rec["times"], load))
    for threads in args.threads:
        print(f"\n{threads} thread(s); per tree: nbops / out= / torch, median [min] wall us"
              + (", {cpu min}" if threads == 1 else "") + "; ratio of the minima to torch")
        for cell in cells:
            for tree in args.trees:
                runs = best[(threads, tree, cell)]
                # the run with the lowest PyTorch minimum (the least disturbed)
                times, load = min(runs, key=lambda r: r[0]["torch"][1])
                parts = []
                for name, (med, low, cpu) in times.items():
                    parts.append(f"{name} {med:8.2f} [{low:8.2f}]"
                                 + (f" {{{cpu:8.2f}}}" if threads == 1 else ""))
                ratio = " ".join(f"{times[n][1] / times['torch'][1]:.2f}"
                                 for n in times if n != "torch")
                cpu_ratio = (" cpu " + " ".join(f"{times[n][2] / times['torch'][2]:.2f}"
                                                for n in times if n != "torch")
                             if threads == 1 else "")
                print(f"{' '.join(cell):30s} {os.path.basename(os.path.abspath(tree)):12s} "
                      f"{'  '.join(parts)}  ratio {ratio}{cpu_ratio}  (load {load:.1f})")


if __name__ == "__main__":
    main()
