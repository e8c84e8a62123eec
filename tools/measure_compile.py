#!/usr/bin/env python
"""Compile time of one op's first call: a fresh process per measurement.

Each measurement is one new Python process with the disk cache off
(``NBOPS_DISABLE_CACHE=1``) that imports nbops, makes the inputs, compiles a
trivial function of its own (so Numba's one-time set-up of its first
compilation is not counted; ``--no-prime`` counts it), then times the op's first
call and a second, warm call with the same arguments. The compile time is the
first minus the second, in wall time and in the process's CPU time (less
sensitive to other processes on a busy machine). The figures printed are the
best of ``--repeat`` processes; ``--tree DIR`` (repeatable) measures in each source tree
(``PYTHONPATH=DIR``; e.g. an unpacked older commit), the trees' processes
interleaved so that a busy machine slows them alike. The machine's load
(``os.getloadavg``) is printed before and after.

Inputs: ``x`` of ``--shape`` and ``--dtype`` (standard normal); for the losses
``t``, class indices (``--target index``, int64, the input's shape without
axis 1) or class probabilities (``--target prob``, the input's shape); ``g``,
the backward's ``grad_output``: 1.0 for a loss (reduction 'mean'), else an
array of the input's shape. The call made is ``nbops.OP(x, t)`` for a loss
(``nbops.OP(g, x, t)`` for its backward), ``nbops.OP(x)`` (``nbops.OP(g, x)``)
otherwise; ``--call EXPR`` replaces it (an expression of ``nbops``, ``np``,
``x``, ``t``, ``g``). ``--kernels`` also lists each compiled function with its
compile time (Numba's ``numba:compile`` events, nested ones included) from the
best process.

    python tools/measure_compile.py --op cross_entropy_backward --shape 64 10
    python tools/measure_compile.py --op cross_entropy --shape 8 10 4 4 --target prob
    python tools/measure_compile.py --op relu_backward --shape 1000 --dtype float64
    python tools/measure_compile.py --op cross_entropy_with_grad --shape 64 10 \\
        --tree /tmp/base --tree . --repeat 3 --kernels
"""

import argparse
import json
import os
import subprocess
import sys
import time

LOSSES = ("cross_entropy", "nll_loss", "binary_cross_entropy",
          "binary_cross_entropy_with_logits", "mse_loss", "l1_loss", "smooth_l1_loss",
          "kl_div", "huber_loss")

PROCESS = r"""
import json, time
import numpy as np
import nbops
from numba.core import event

x = np.random.default_rng(0).standard_normal({shape}).astype("{dtype}")
rng = np.random.default_rng(1)
t = None
if "{target}" == "index":
    t = rng.integers(0, x.shape[1] if x.ndim > 1 else x.shape[0],
                     size=x.shape[:1] + x.shape[2:]).astype(np.int64)
elif "{target}" == "prob":
    p = rng.random(x.shape)
    t = (p / p.sum(axis=1 if x.ndim > 1 else 0, keepdims=True)).astype(x.dtype)
elif "{target}" == "float":
    t = rng.random(x.shape).astype(x.dtype)
g = x.dtype.type(1.0) if {is_loss} else rng.standard_normal(x.shape).astype(x.dtype)
if {prime}:
    import numba
    numba.njit(lambda v: v + 1)(1.0)

named = []
class Named(event.Listener):
    def __init__(self):
        self.starts = []
    def on_start(self, ev):
        self.starts.append(time.perf_counter())
    def on_end(self, ev):
        t0 = self.starts.pop()
        d = ev.data["dispatcher"]
        named.append((getattr(d, "py_func", d).__qualname__, time.perf_counter() - t0,
                      len(self.starts)))
listener = Named()
event.register("numba:compile", listener)
c0, t0 = time.process_time(), time.perf_counter()
{call}
c1, t1 = time.process_time(), time.perf_counter()
event.unregister("numba:compile", listener)
{call}
c2, t2 = time.process_time(), time.perf_counter()
print(json.dumps({{"first": t1 - t0, "second": t2 - t1, "cpu": (c1 - c0) - (c2 - c1),
                  "kernels": named}}))
"""


def default_call(op, target):
    base = op.removesuffix("_backward").removesuffix("_with_grad")
    loss = base in LOSSES
    args = "x, t" if loss and target != "none" else "x"
    if op.endswith("_backward"):
        args = "g, " + args
    return f"nbops.{op}({args})", loss


def measure(code, tree):
    env = dict(os.environ, NBOPS_DISABLE_CACHE="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cwd = None
    if tree is not None:
        cwd = os.path.abspath(tree)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (cwd, env.get("PYTHONPATH")) if p)
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=cwd,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--op", required=True, help="an nbops function name")
    ap.add_argument("--shape", type=int, nargs="+", required=True)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--target", choices=("index", "prob", "float", "none"),
                    help="the loss's target (default: index for cross_entropy and "
                         "nll_loss, float for the other losses, none otherwise)")
    ap.add_argument("--call", help="the expression to time (default: see the docstring)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tree", action="append", metavar="DIR")
    ap.add_argument("--no-prime", action="store_true",
                    help="count Numba's own first-compilation set-up too")
    ap.add_argument("--kernels", action="store_true",
                    help="list the compiled functions of the best process")
    args = ap.parse_args()
    base = args.op.removesuffix("_backward").removesuffix("_with_grad")
    target = args.target or ("index" if base in ("cross_entropy", "nll_loss")
                             else "float" if base in LOSSES else "none")
    call, loss = default_call(args.op, target)
    code = PROCESS.format(shape=tuple(args.shape), dtype=args.dtype, target=target,
                          is_loss=loss, prime=not args.no_prime, call=args.call or call)
    trees = args.tree or [None]
    load0 = os.getloadavg()
    results = {tree: [] for tree in trees}
    for _ in range(args.repeat):
        for tree in trees:
            results[tree].append(measure(code, tree))
    load1 = os.getloadavg()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {load0[0]:.2f} -> {load1[0]:.2f}; "
          f"{args.call or call}, x {tuple(args.shape)} {args.dtype}, target {target}; "
          f"first call minus the second, best of {args.repeat} fresh processes, "
          "NBOPS_DISABLE_CACHE=1, seconds of wall time (and of this process's CPU time)")
    for tree in trees:
        runs = sorted(results[tree], key=lambda r: r["first"] - r["second"])
        best = runs[0]
        every = ", ".join(f"{r['first'] - r['second']:.3f}" for r in results[tree])
        cpu = min(r["cpu"] for r in results[tree])
        print(f"{tree or '(this tree)':30s} {best['first'] - best['second']:7.3f}   "
              f"cpu {cpu:6.3f}   (all: {every})")
        if args.kernels:
            for name, seconds, depth in best["kernels"]:
                print(f"    {'  ' * depth}{name:40s} {seconds:7.3f}")


if __name__ == "__main__":
    main()
