#!/usr/bin/env python
"""Compile time of an op's first call: a fresh process per measurement.

Each measurement is one new Python process with an empty disk cache of its own
(``NBOPS_CACHE_DIR`` and ``NUMBA_CACHE_DIR`` set to a new temporary folder,
removed afterwards; ``--no-disk-cache`` runs with ``NBOPS_DISABLE_CACHE=1``
instead) that imports nbops, makes the inputs, compiles a trivial function of
its own (so Numba's one-time set-up of its first compilation is not counted;
``--no-prime`` counts it), then times the op's first call and a second, warm
call with the same arguments. The compile time is the first minus the second,
in wall time and in the process's CPU time (``time.process_time``: every
thread of the child; much less sensitive than wall time to other processes on
a busy machine). The figures printed are the best of ``--repeat`` processes;
``--tree DIR`` (repeatable) measures in each source tree (``PYTHONPATH=DIR``;
e.g. an unpacked older commit), the trees' processes interleaved so that a busy
machine slows them alike. The machine's load (``os.getloadavg``) is printed
before and after.

One op (``--op``): inputs ``x`` of ``--shape`` and ``--dtype`` (standard
normal); for the losses ``t``, class indices (``--target index``, int64, the
input's shape without axis 1) or class probabilities (``--target prob``, the
input's shape); ``g``, the backward's ``grad_output``: 1.0 for a loss
(reduction 'mean'), else an array of the input's shape. The call made is
``nbops.OP(x, t)`` for a loss (``nbops.OP(g, x, t)`` for its backward),
``nbops.OP(x)`` (``nbops.OP(g, x)``) otherwise; ``--call EXPR`` replaces it (an
expression of ``nbops``, ``np``, ``x``, ``t``, ``g``). ``--kernels`` also lists
each compiled function with its compile time (Numba's ``numba:compile``
events, nested ones included) from the best process.

    python tools/measure_compile.py --op cross_entropy_backward --shape 64 10
    python tools/measure_compile.py --op cross_entropy --shape 8 10 4 4 --target prob
    python tools/measure_compile.py --op relu_backward --shape 1000 --dtype float64
    python tools/measure_compile.py --op cross_entropy_with_grad --shape 64 10 \\
        --tree /tmp/base --tree . --repeat 3 --kernels

The table (``--table``): every ``<op>_backward`` and ``<loss>_with_grad`` of
the op table (:func:`nbops._ops.table.backward_functions`), each called as
its first backward sample call (``Entry.backward_samples``, the warm-up's
calls) on the table's sample arrays (:func:`nbops._ops.table.sample_arrays`)
at two sizes: ``serial``, 64 elements (rows of 16: the serial kernels), and
``parallel``, 65536 elements (4096 rows of 16) with
``NBOPS_PARALLEL_THRESHOLD=4096``, so that every kernel launch of the call runs
its ``parallel=True`` twin (the one a large input compiles); then the column
paths (the op's axis not the last one): ``softmax``, ``log_softmax``,
``softmin`` along ``dim=1`` and ``cross_entropy``, ``nll_loss`` (class-index
targets; cross_entropy also with probabilities) of ``(N, C, d1, d2)``
inputs, forward, backward and ``_with_grad``, serial on (8, 10, 4, 4) and
parallel on (64, 10, 16, 16) (same threshold). The ``path`` column says
which kernels compiled (``P``: a ``*_parallel`` one, ``S``: serial ones
only, ``-``: none of nbops' kernel pairs, e.g. NumPy's matrix product);
``n`` counts the compiled functions (``numba:compile`` events); with
``--kernels`` each row is followed by its list.
``--only REGEX`` keeps the rows whose call name matches, ``--size serial``
(or ``parallel``) the rows of one size; ``--jobs J`` runs
``J`` processes at a time (CPU times stay comparable, wall times less so);
``--csv FILE`` writes the rows, ``--json FILE`` every process's record (the
compiled functions with their compile times). Float32 unless ``--dtype``::

    python tools/measure_compile.py --table --repeat 1 --jobs 2 --csv /tmp/compile.csv
    python tools/measure_compile.py --table --only 'softmax|cross_entropy' \\
        --tree /tmp/base --tree .
"""

import argparse
import concurrent.futures
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

LOSSES = ("cross_entropy", "nll_loss", "binary_cross_entropy",
          "binary_cross_entropy_with_logits", "mse_loss", "l1_loss", "smooth_l1_loss",
          "kl_div", "huber_loss")

#: The table's sizes: elements of the sample arrays and the parallel threshold
#: set for the process (None: nbops' default per-op thresholds).
SIZES = {"serial": (64, None), "parallel": (65536, 4096)}
#: The column paths' input shapes per size.
COLUMN_SHAPES = {"serial": (8, 10, 4, 4), "parallel": (64, 10, 16, 16)}

PROCESS = r"""
import json, time
import numpy as np
import nbops
from numba.core import event

{setup}
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

ONE_OP_SETUP = r"""
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
"""

# A table row: the first backward sample call of ``function`` in ``entry``'s
# backward samples, on sample arrays of n elements.
SAMPLE_SETUP = r"""
from nbops._ops import table
_entry = next(e for e in table.entries() if e.name == {entry!r})
_d = table.sample_arrays(np.dtype({dtype!r}), {n})
_fn, _args, _kwargs = next(c for c in _entry.backward_samples(_d)
                           if c[0].__name__ == {function!r})
"""
SAMPLE_CALL = "_fn(*_args, **_kwargs)"


def default_call(op, target):
    base = op.removesuffix("_backward").removesuffix("_with_grad")
    loss = base in LOSSES
    args = "x, t" if loss and target != "none" else "x"
    if op.endswith("_backward"):
        args = "g, " + args
    return f"nbops.{op}({args})", loss


def one_op_setup(shape, dtype, target, is_loss):
    return ONE_OP_SETUP.format(shape=tuple(shape), dtype=dtype, target=target, is_loss=is_loss)


def measure(code, tree, threshold=None, disk_cache=True):
    """Run ``code`` in a fresh process (source tree ``tree``, or this one), with an
    empty cache folder of its own; its printed JSON record."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("NBOPS_PARALLEL_THRESHOLD", None)
    if threshold is not None:
        env["NBOPS_PARALLEL_THRESHOLD"] = str(threshold)
    cache = None
    if disk_cache:
        env.pop("NBOPS_DISABLE_CACHE", None)
        cache = tempfile.mkdtemp(prefix="nbops_compile_")
        env["NBOPS_CACHE_DIR"] = env["NUMBA_CACHE_DIR"] = cache
    else:
        env["NBOPS_DISABLE_CACHE"] = "1"
    cwd = None
    if tree is not None:
        cwd = os.path.abspath(tree)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (cwd, env.get("PYTHONPATH")) if p)
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=cwd,
                             capture_output=True, text=True).stdout
    finally:
        if cache is not None:
            shutil.rmtree(cache, ignore_errors=True)
    return json.loads(out.strip().splitlines()[-1])


def table_rows(dtype, only=None, sizes=None):
    """The table's rows: (name, size, setup code, call, threshold); ``sizes``: the
    names of :data:`SIZES` to keep (None: all)."""
    sys.path.insert(0, os.getcwd())
    import nbops  # noqa: F401  (registers every op)
    from nbops._ops import table

    rows = []
    for size, (n, threshold) in SIZES.items():
        if sizes and size not in sizes:
            continue
        for entry in table.entries():
            if entry.backward_samples is None:
                continue
            import numpy as np

            seen = []
            for function, _, _ in entry.backward_samples(table.sample_arrays(np.dtype(dtype), 16)):
                if function.__name__ not in seen:
                    seen.append(function.__name__)
            for name in seen:
                setup = SAMPLE_SETUP.format(entry=entry.name, dtype=dtype, n=n, function=name)
                rows.append((name, size, setup, SAMPLE_CALL, threshold))
        shape = COLUMN_SHAPES[size]
        for op in ("softmax", "log_softmax", "softmin"):
            setup = one_op_setup(shape, dtype, "none", False)
            rows.append((f"{op} (dim=1)", size, setup, f"nbops.{op}(x, dim=1)", threshold))
            setup += f"y = nbops.{op}(x, dim=1)\n"  # the forward compiled before the timing
            rows.append((f"{op}_backward (dim=1)", size, setup,
                         f"nbops.{op}_backward(g, y, dim=1)", threshold))
        for op, target in (("cross_entropy", "index"), ("cross_entropy", "prob"),
                           ("nll_loss", "index")):
            setup = one_op_setup(shape, dtype, target, True)
            what = "" if target == "index" else ", prob"
            for suffix, call in (("", f"nbops.{op}(x, t)"),
                                 ("_backward", f"nbops.{op}_backward(g, x, t)"),
                                 ("_with_grad", f"nbops.{op}_with_grad(x, t)")):
                rows.append((f"{op}{suffix} (N,C,d,d{what})", size, setup, call, threshold))
    if only:
        rows = [r for r in rows if re.search(only, r[0])]
    return rows


def path_of(kernels):
    names = [name for name, _, _ in kernels]
    if any(name.endswith("_parallel") for name in names):
        return "P"
    return "S" if names else "-"


def run_table(args):
    trees = args.tree or [None]
    rows = table_rows(args.dtype, args.only, args.size)
    jobs = [(i, tree) for _ in range(args.repeat) for i in range(len(rows)) for tree in trees]
    prime = not args.no_prime
    results = {}
    load0 = os.getloadavg()

    def one(job):
        i, tree = job
        name, size, setup, call, threshold = rows[i]
        code = PROCESS.format(setup=setup, prime=prime, call=call)
        try:
            return job, measure(code, tree, threshold, not args.no_disk_cache)
        except subprocess.CalledProcessError as exc:
            print(f"{name} {size}: failed\n{exc.stderr}", file=sys.stderr, flush=True)
            return job, None

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for done, future in enumerate(concurrent.futures.as_completed(
                [pool.submit(one, job) for job in jobs]), 1):
            (i, tree), record = future.result()
            if record is None:
                continue
            results.setdefault((i, tree), []).append(record)
            print(f"[{done}/{len(jobs)}] {rows[i][0]} {rows[i][1]} {tree or '.'}: "
                  f"wall {record['first'] - record['second']:.3f} cpu {record['cpu']:.3f} "
                  f"{path_of(record['kernels'])}", file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {load0[0]:.2f} -> "
          f"{load1[0]:.2f}; {args.dtype}; first call minus the second, best of {args.repeat} "
          f"fresh processes ({args.jobs} at a time), "
          + ("NBOPS_DISABLE_CACHE=1" if args.no_disk_cache else "an empty cache folder each")
          + "; seconds of wall time and of the process's CPU time")
    head = f"{'call':48s} {'size':8s}"
    for tree in trees:
        label = tree or "this tree"
        head += f" | {label[-14:]:>14s}: path  n    wall    cpu"
    print(head)
    table_out = []
    for i, (name, size, _, _, _) in enumerate(rows):
        line = f"{name:48s} {size:8s}"
        record = {"call": name, "size": size}
        for tree in trees:
            runs = results.get((i, tree))
            if not runs:
                line += f" | {'':14s}  failed"
                continue
            best = min(runs, key=lambda r: r["cpu"])
            wall = min(r["first"] - r["second"] for r in runs)
            cpu = best["cpu"]
            path = path_of(best["kernels"])
            line += f" | {'':14s}  {path:4s} {len(best['kernels']):3d} {wall:7.3f} {cpu:6.3f}"
            label = tree or "."
            record.update({f"{label} path": path, f"{label} n": len(best["kernels"]),
                           f"{label} wall": round(wall, 3), f"{label} cpu": round(cpu, 3)})
        print(line, flush=True)
        if args.kernels:
            for tree in trees:
                runs = results.get((i, tree))
                if runs:
                    print(f"  {tree or '.'}:")
                    for kname, seconds, depth in min(runs, key=lambda r: r["cpu"])["kernels"]:
                        print(f"    {'  ' * depth}{kname:40s} {seconds:7.3f}")
        table_out.append(record)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([{"call": rows[i][0], "size": rows[i][1], "tree": tree or ".",
                        "runs": runs} for (i, tree), runs in sorted(results.items(),
                                                                   key=lambda kv: kv[0][0])],
                      f, indent=1)
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            fields = list(dict.fromkeys(k for r in table_out for k in r))
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(table_out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--op", help="an nbops function name")
    ap.add_argument("--shape", type=int, nargs="+")
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--target", choices=("index", "prob", "float", "none"),
                    help="the loss's target (default: index for cross_entropy and "
                         "nll_loss, float for the other losses, none otherwise)")
    ap.add_argument("--call", help="the expression to time (default: see the docstring)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tree", action="append", metavar="DIR")
    ap.add_argument("--no-prime", action="store_true",
                    help="count Numba's own first-compilation set-up too")
    ap.add_argument("--no-disk-cache", action="store_true",
                    help="NBOPS_DISABLE_CACHE=1 instead of an empty cache folder")
    ap.add_argument("--kernels", action="store_true",
                    help="list the compiled functions of the best process")
    ap.add_argument("--table", action="store_true",
                    help="every backward and the column paths (see the docstring)")
    ap.add_argument("--only", metavar="REGEX", help="--table: the rows whose call matches")
    ap.add_argument("--size", action="append", choices=tuple(SIZES),
                    help="--table: only this size (repeatable; default: all)")
    ap.add_argument("--jobs", type=int, default=1, help="--table: processes at a time")
    ap.add_argument("--csv", metavar="FILE", help="--table: write the rows there")
    ap.add_argument("--json", metavar="FILE",
                    help="--table: every process's record (compiled functions included)")
    args = ap.parse_args()
    if args.table:
        run_table(args)
        return
    if not args.op or not args.shape:
        ap.error("--op and --shape are required (or --table)")
    base = args.op.removesuffix("_backward").removesuffix("_with_grad")
    target = args.target or ("index" if base in ("cross_entropy", "nll_loss")
                             else "float" if base in LOSSES else "none")
    call, loss = default_call(args.op, target)
    code = PROCESS.format(setup=one_op_setup(args.shape, args.dtype, target, loss),
                          prime=not args.no_prime, call=args.call or call)
    trees = args.tree or [None]
    load0 = os.getloadavg()
    results = {tree: [] for tree in trees}
    for _ in range(args.repeat):
        for tree in trees:
            results[tree].append(measure(code, tree, disk_cache=not args.no_disk_cache))
    load1 = os.getloadavg()
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load average {load0[0]:.2f} -> {load1[0]:.2f}; "
          f"{args.call or call}, x {tuple(args.shape)} {args.dtype}, target {target}; "
          f"first call minus the second, best of {args.repeat} fresh processes, "
          + ("NBOPS_DISABLE_CACHE=1" if args.no_disk_cache else "an empty cache folder each")
          + ", seconds of wall time (and of the process's CPU time)")
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
