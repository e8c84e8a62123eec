#!/usr/bin/env python
"""Run time of a few loss backwards and ``_with_grad`` calls (warm kernels).

Each source tree (``--tree DIR``, repeatable; default this one) is timed in
fresh processes (``PYTHONPATH=DIR``), the trees' processes alternating
(``--rounds`` each), so that a busy machine slows them alike. Per call: the
median and the minimum over the rounds of each process's median of
``--calls`` calls, on ``--n`` float32 elements, ``--threads`` threads::

    python tools/measure_loss_grad_speed.py --tree /tmp/base --tree . --rounds 5
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, time
import numpy as np
import numba
import nbops
numba.set_num_threads({threads})
rng = np.random.default_rng(0)
n = {n}
x = rng.standard_normal(n).astype(np.float32)
t = rng.standard_normal(n).astype(np.float32)
p = (1 / (1 + np.exp(-x))).astype(np.float32)
y = rng.random(n).astype(np.float32)
v = y + np.float32(0.5)
s = np.sign(t)
calls = {{
    "mse_loss_backward": lambda: nbops.mse_loss_backward(1.0, x, t),
    "mse_loss_with_grad": lambda: nbops.mse_loss_with_grad(x, t),
    "binary_cross_entropy_backward": lambda: nbops.binary_cross_entropy_backward(1.0, p, y),
    "kl_div_backward": lambda: nbops.kl_div_backward(1.0, x, y),
    "soft_margin_loss_backward": lambda: nbops.soft_margin_loss_backward(1.0, x, s),
    "soft_margin_loss_with_grad": lambda: nbops.soft_margin_loss_with_grad(x, s),
    "gaussian_nll_loss_backward":
        lambda: nbops.gaussian_nll_loss_backward(1.0, x, t, v),
}}
out = {{}}
for name, f in calls.items():
    f()
    times = []
    for _ in range({calls_n}):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    times.sort()
    out[name] = times[len(times) // 2]
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", action="append")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--n", type=int, default=10**6)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    trees = args.tree or ["."]
    code = CHILD.format(threads=args.threads, n=args.n, calls_n=args.calls)
    results = {tree: [] for tree in trees}
    load0 = os.getloadavg()[0]
    for _ in range(args.rounds):
        for tree in trees:
            env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
            out = subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                 capture_output=True, text=True, cwd=os.path.abspath(tree))
            results[tree].append(json.loads(out.stdout.strip().splitlines()[-1]))
    load1 = os.getloadavg()[0]
    print(f"# n={args.n} float32, {args.threads} thread(s), load average {load0:.2f} -> "
          f"{load1:.2f}; ms: median (min) over {args.rounds} processes")
    names = list(results[trees[0]][0])
    print(f"{'call':32s}" + "".join(f" {t[-20:]:>20s}" for t in trees))
    for name in names:
        line = f"{name:32s}"
        for tree in trees:
            v = [r[name] * 1e3 for r in results[tree]]
            line += f" {statistics.median(v):10.3f} ({min(v):7.3f})"
        print(line)


if __name__ == "__main__":
    main()
