#!/usr/bin/env python
"""gelu float64 (``approximate='none'``) and its backward beside PyTorch, before/after.

    python tools/measure_gelu64.py                         # this tree
    python tools/measure_gelu64.py --base /tmp/nbops-base  # and a baseline checkout

At 1e5 and 1e7 float64 elements (``x`` standard normal times 3), on 1 and on 2
threads (Numba's and PyTorch's): ``nbops.gelu`` allocating and into ``out=``,
``torch.nn.functional.gelu``, ``nbops.gelu_backward`` allocating and into
``out=``, ``torch.ops.aten.gelu_backward``. Within a process the cells alternate
(A B C ..., then reversed), each a batch of calls (about 1 ms) with a 2 ms pause
between batches (the two OpenMP pools spin for a while after a parallel call).
With ``--base``, processes of this tree and of the baseline alternate too
(``--procs`` of each), each importing its own ``nbops``. Figures: medians over all
rounds (minima in brackets), us per call; the load average before and after.

Then the serial kernels' cost per element (``--serial``, the figure
``nbops/_tuning.py`` holds as ``COST_NS``): every kernel serial
(``PARALLEL_THRESHOLD`` raised), the slope of the fastest times at 2**12 and 2**16
elements (in cache: short timings, which load disturbs less), ns per element.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

SIZES = (100_000, 10_000_000)
CELLS = ("gelu", "gelu out=", "torch gelu", "backward", "backward out=", "torch backward")


def _calls(nbops, torch, x, g, out, tx, tg):
    """The cells' calls, in CELLS' order."""
    F = torch.nn.functional
    return [lambda: nbops.gelu(x), lambda: nbops.gelu(x, out=out), lambda: F.gelu(tx),
            lambda: nbops.gelu_backward(g, x), lambda: nbops.gelu_backward(g, x, out=out),
            lambda: torch.ops.aten.gelu_backward(tg, tx)]


def _worker(rounds, serial):
    import numba
    import numpy as np
    import torch

    import nbops
    from nbops import _config

    rng = np.random.default_rng(0)
    res = {"nbops": nbops.__file__}
    for threads in (1, 2):
        numba.set_num_threads(threads)
        torch.set_num_threads(threads)
        for n in SIZES:
            x = rng.standard_normal(n) * 3
            g = rng.standard_normal(n)
            out = np.empty_like(x)
            tx, tg = torch.from_numpy(x), torch.from_numpy(g)
            calls = _calls(nbops, torch, x, g, out, tx, tg)
            number = []
            for fn in calls:  # compile / warm up, then calls per ~1 ms batch
                fn()
                t0 = time.perf_counter()
                fn()
                number.append(max(1, int(0.001 / max(time.perf_counter() - t0, 1e-7))))
            times = [[] for _ in calls]
            for r in range(rounds):
                order = range(len(calls)) if r % 2 == 0 else reversed(range(len(calls)))
                for i in order:
                    t0 = time.perf_counter()
                    for _ in range(number[i]):
                        calls[i]()
                    times[i].append((time.perf_counter() - t0) / number[i] * 1e6)
                    time.sleep(0.002)
            res[f"{threads}/{n}"] = times
    if serial:
        saved = _config.PARALLEL_THRESHOLD
        _config.PARALLEL_THRESHOLD = 1 << 62  # the serial kernels
        numba.set_num_threads(1)
        cost = {}
        for name, fn in (("gelu", lambda x, g, o: nbops.gelu(x, out=o)),
                         ("gelu_backward", lambda x, g, o: nbops.gelu_backward(g, x, out=o))):
            best = {}
            for n in (1 << 12, 1 << 16):  # in cache; short timings, robust to load
                x = rng.standard_normal(n) * 3
                g = rng.standard_normal(n)
                o = np.empty_like(x)
                fn(x, g, o)
                reps = max(1, (1 << 16) // n)
                b = float("inf")
                for _ in range(200):
                    t0 = time.perf_counter()
                    for _ in range(reps):
                        fn(x, g, o)
                    b = min(b, (time.perf_counter() - t0) / reps)
                best[n] = b
            cost[name] = (best[1 << 16] - best[1 << 12]) / ((1 << 16) - (1 << 12)) * 1e9
        res["serial_ns"] = cost
        _config.PARALLEL_THRESHOLD = saved
    print("RESULT " + json.dumps(res))


def _run(tree, rounds, serial):
    env = dict(os.environ, PYTHONPATH=tree)
    p = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker",
                        "--rounds", str(rounds)] + (["--serial"] if serial else []),
                       cwd=tree, env=env, capture_output=True, text=True, check=True)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def _fmt(values):
    return f"{statistics.median(values):9.1f} ({min(values):8.1f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="a baseline checkout (git archive) to compare with")
    parser.add_argument("--procs", type=int, default=2, help="processes per tree")
    parser.add_argument("--rounds", type=int, default=10, help="rounds per process")
    parser.add_argument("--serial", action="store_true", help="serial cost per element too")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.rounds, args.serial)
        return
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    trees = {"this": here}
    if args.base:
        trees["base"] = os.path.abspath(args.base)
    print(f"load before {os.getloadavg()}", flush=True)
    merged = {name: {} for name in trees}
    serial = {name: [] for name in trees}
    for _ in range(args.procs):
        for name, tree in trees.items():  # the trees' processes alternate
            res = _run(tree, args.rounds, args.serial)
            for key, cells in res.items():
                if key == "serial_ns":
                    serial[name].append(cells)
                elif key != "nbops":
                    slot = merged[name].setdefault(key, [[] for _ in CELLS])
                    for i, t in enumerate(cells):
                        slot[i] += t
    print(f"load after  {os.getloadavg()}")
    print("us per call, median (min); ratio = median / torch's median")
    for key in merged["this"]:
        threads, n = key.split("/")
        print(f"-- {threads} thread(s), n = {int(n):.0e}")
        for name in trees:
            cells = merged[name][key]
            tf, tb = statistics.median(cells[2]), statistics.median(cells[5])
            print(f"  {name:5s} " + "  ".join(
                f"{label} {_fmt(v)}" + (f" x{statistics.median(v) / (tf if i < 3 else tb):.2f}"
                                        if i not in (2, 5) else "")
                for i, (label, v) in enumerate(zip(CELLS, cells, strict=True))))
    for name, costs in serial.items():
        if costs:
            print(f"serial ns/element ({name}): " + ", ".join(
                f"{op} {min(c[op] for c in costs):.2f}" for op in costs[0]))


if __name__ == "__main__":
    main()
