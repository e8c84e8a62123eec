#!/usr/bin/env python
"""Run time of the column paths' kernels (the op's axis not the last one).

Times ``softmax``, ``log_softmax`` along ``dim=1`` and their backwards, and
``cross_entropy`` (class indices and probabilities, forward and
``_with_grad``) and ``nll_loss`` on an ``(N, C, d1, d2)`` float32 input, on one
thread (``numba.set_num_threads(1)``, serial kernels), in seconds: the fastest
of ``--rounds`` rounds of ``--calls`` calls each (after a warm-up call). With
``--tree DIR`` (repeatable) each tree runs in processes of its own
(``PYTHONPATH=DIR``), alternated ``--procs`` times so that a busy machine
slows them alike; the best of all processes is printed per tree, and the load
average (``os.getloadavg``) before and after::

    python tools/measure_column_kernels.py --tree /tmp/base --tree . --shape 64 1000 8 8
"""

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, time
import numpy as np
import numba
import nbops
numba.set_num_threads(1)
shape = {shape}
rng = np.random.default_rng(0)
x = rng.standard_normal(shape).astype(np.float32)
g = rng.standard_normal(shape).astype(np.float32)
t = rng.integers(0, shape[1], (shape[0],) + tuple(shape[2:]))
p = nbops.softmax(rng.standard_normal(shape).astype(np.float32), dim=1)
y = nbops.softmax(x, dim=1)
ly = nbops.log_softmax(x, dim=1)
calls = {{
    "softmax": lambda: nbops.softmax(x, dim=1),
    "log_softmax": lambda: nbops.log_softmax(x, dim=1),
    "softmax_backward": lambda: nbops.softmax_backward(g, y, dim=1),
    "log_softmax_backward": lambda: nbops.log_softmax_backward(g, ly, dim=1),
    "cross_entropy": lambda: nbops.cross_entropy(x, t),
    "cross_entropy_with_grad": lambda: nbops.cross_entropy_with_grad(x, t),
    "cross_entropy (prob)": lambda: nbops.cross_entropy(x, p),
    "cross_entropy_with_grad (prob)": lambda: nbops.cross_entropy_with_grad(x, p),
    "nll_loss": lambda: nbops.nll_loss(x, t),
}}
best = {{}}
for name, f in calls.items():
    f()
for _ in range({rounds}):
    for name, f in calls.items():
        t0 = time.perf_counter()
        for _ in range({calls_per_round}):
            f()
        dt = (time.perf_counter() - t0) / {calls_per_round}
        best[name] = min(best.get(name, dt), dt)
print(json.dumps(best))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append", default=None)
    ap.add_argument("--shape", type=int, nargs="+", default=[64, 1000, 8, 8])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--calls", type=int, default=3)
    ap.add_argument("--procs", type=int, default=2)
    args = ap.parse_args()
    trees = args.tree or ["."]
    code = CHILD.format(shape=tuple(args.shape), rounds=args.rounds,
                        calls_per_round=args.calls)
    print(f"load before: {os.getloadavg()}")
    best = {tree: {} for tree in trees}
    for _ in range(args.procs):
        for tree in trees:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
            out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                 capture_output=True, text=True).stdout
            for name, dt in json.loads(out.strip().splitlines()[-1]).items():
                best[tree][name] = min(best[tree].get(name, dt), dt)
    print(f"load after: {os.getloadavg()}")
    names = list(best[trees[0]])
    print(f"{'call (ms, 1 thread, best)':34s}" + "".join(f"{t[-14:]:>16s}" for t in trees))
    for name in names:
        print(f"{name:34s}" + "".join(f"{best[t][name] * 1e3:16.3f}" for t in trees))


if __name__ == "__main__":
    main()
