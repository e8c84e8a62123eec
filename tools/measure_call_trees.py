#!/usr/bin/env python
"""Run time of one call in several source trees: alternated processes.

Each round starts one process per tree (``PYTHONPATH=TREE``, the trees in turn,
so that a busy machine slows them alike); a process sets Numba's threads
(``--threads``), makes the inputs (``--setup``: statements of ``nbops``,
``np``; a ``numpy.random.default_rng(0)`` as ``rng``), compiles the call
(``--call``: an expression) with a first call, then times ``--calls`` calls and
reports the fastest and the median. Printed: per tree, the minimum of the
processes' fastest calls and the median of their medians, in milliseconds, and
the machine's load average before and after::

    python tools/measure_call_trees.py --tree /tmp/base --tree . --threads 1 \\
        --setup "x = rng.standard_normal((4000, 16), dtype=np.float32)" \\
        --call "nbops.pdist_backward(np.ones(4000 * 3999 // 2, np.float32), x)"
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np, numba
numba.set_num_threads(int(sys.argv[1]))
import nbops
rng = np.random.default_rng(0)
exec(sys.argv[2])
call = compile(sys.argv[3], "<call>", "eval")
eval(call)
times = []
for _ in range(int(sys.argv[4])):
    t = time.perf_counter()
    eval(call)
    times.append(time.perf_counter() - t)
print(json.dumps([nbops.__file__, min(times), sorted(times)[len(times) // 2]]))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", action="append", required=True)
    ap.add_argument("--setup", default="")
    ap.add_argument("--call", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--calls", type=int, default=15)
    ap.add_argument("--procs", type=int, default=3)
    args = ap.parse_args()
    print(f"# load average before: {os.getloadavg()}")
    res = {os.path.abspath(tree): [] for tree in args.tree}
    for _ in range(args.procs):
        for tree in args.tree:
            tree = os.path.abspath(tree)
            env = dict(os.environ, PYTHONPATH=tree)
            out = subprocess.run([sys.executable, "-c", CHILD, str(args.threads), args.setup,
                                  args.call, str(args.calls)], env=env, check=True, cwd=tree,
                                 capture_output=True, text=True).stdout
            res[tree].append(json.loads(out.strip().splitlines()[-1]))
    for tree, runs in res.items():
        print(f"{tree:30s} min {1e3 * min(r[1] for r in runs):9.3f} ms   median "
              f"{1e3 * statistics.median(r[2] for r in runs):9.3f} ms   ({runs[0][0]})")
    print(f"# load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
