#!/usr/bin/env python
"""The docs' performance table: every op, three sizes, float32 and float64, nbops / PyTorch.

    python tools/perf_table.py                  # run asv's EveryOp suite, write the table
    python tools/perf_table.py --from-results   # rewrite the table from the last asv results
    python tools/perf_table.py -- --quick       # options after -- go to `asv run`

Runs ``asv run --python=same -b every_op.EveryOp`` (``asv_bench/benchmarks/every_op.py``)
in this Python environment on a frozen copy of the checked-out commit (a
temporary git worktree of HEAD: commit what you want measured; edits made during
the run do not leak into it), then writes ``docs/perf_table.csv``: one row per
(op, size, dtype) with the times of the allocating call, of the ``out=`` call and of PyTorch's, in
microseconds, and the two ratios nbops / PyTorch. The ``#`` lines at its top
give the machine, the versions, the geometric mean of the ratios and the number
of cells above 1.0. All the figures come from one asv run (asv's median of its
samples), so the ratios compare timings taken minutes apart on the same machine.
Run it on a machine as quiet as you can get.
"""

import argparse
import csv
import datetime
import glob
import itertools
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
BENCH = "every_op.EveryOp.time_op"
OUT = os.path.join(ROOT, "docs", "perf_table.csv")


def run_asv(extra):
    """asv on a frozen copy of HEAD (a temporary git worktree): asv runs each
    benchmark in a new process that imports nbops and the benchmark files anew,
    so edits to this checkout during the run would mix versions (and shift the
    benchmarks' parameter indices). The results are copied back here."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "nbops")
        subprocess.run(["git", "worktree", "add", "--detach", tree, head], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL)
        try:
            env = dict(os.environ, PYTHONPATH=tree)
            asv = os.path.join(tree, "asv_bench")
            subprocess.run(["asv", "machine", "--yes"], cwd=asv, env=env, check=True,
                           stdout=subprocess.DEVNULL)
            subprocess.run(["asv", "run", "--python=same", f"--set-commit-hash={head}",
                            "-b", r"every_op\.EveryOp", *extra], cwd=asv, env=env,
                           check=True)
            shutil.copytree(os.path.join(asv, "results"),
                            os.path.join(ROOT, "asv_bench", "results"), dirs_exist_ok=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT,
                           check=False)


def latest_results():
    """(params, {param tuple: seconds}) of the newest asv results holding EveryOp."""
    files = glob.glob(os.path.join(ROOT, "asv_bench", "results", "*", "*.json"))
    best = None
    for path in sorted(files, key=os.path.getmtime, reverse=True):
        if path.endswith("machine.json"):
            continue
        with open(path) as f:
            data = json.load(f)
        if BENCH in data.get("results", {}):
            best = data
            break
    if best is None:
        sys.exit("no asv results with every_op.EveryOp: run without --from-results")
    columns = best["result_columns"]
    entry = dict(zip(columns, best["results"][BENCH], strict=False))
    params = entry["params"]
    values = {}
    for combo, value in zip(itertools.product(*params), entry["result"], strict=True):
        values[tuple(p.strip("'") for p in combo)] = value
    return best, params, values


def _us(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) \
        else value * 1e6


def write_table(data, params, values):
    ops, sizes, dtypes, _libraries = [[p.strip("'") for p in ps] for ps in params]
    rows, ratios = [], []
    for op, size, dtype in itertools.product(ops, sizes, dtypes):
        t = {lib: _us(values.get((op, size, dtype, lib)))
             for lib in ("nbops", "nbops_out", "torch")}
        r = t["nbops"] / t["torch"] if t["nbops"] and t["torch"] else None
        ro = t["nbops_out"] / t["torch"] if t["nbops_out"] and t["torch"] else None
        ratios += [x for x in (r, ro) if x is not None]
        rows.append([op, size, dtype] + [f"{t[k]:.2f}" if t[k] else "" for k in t]
                    + [f"{x:.2f}" if x else "" for x in (r, ro)])
    geomean = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else float("nan")
    over = sum(x > 1.0 for x in ratios)
    import numba
    import numpy

    with open(OUT, "w", newline="") as f:
        f.write(f"# commit: {data['commit_hash'][:10]}, asv median times, "
                f"date: {datetime.date.today()}\n")
        f.write(f"# machine: {platform.processor() or platform.machine()}, "
                f"{os.cpu_count()} logical cores; python {platform.python_version()}, "
                f"numpy {numpy.__version__}, numba {numba.__version__}"
                f", torch {data.get('requirements', {}).get('torch', 'as installed')}\n")
        f.write(f"# geomean nbops/torch over {len(ratios)} cells: {geomean:.2f}; "
                f"cells above 1.0: {over}\n")
        w = csv.writer(f)
        w.writerow(["op", "size", "dtype", "nbops_us", "nbops_out_us", "torch_us",
                    "ratio", "ratio_out"])
        w.writerows(rows)
    print(f"wrote {OUT}: {len(rows)} rows, geomean {geomean:.2f}, {over} cells above 1.0")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-results", action="store_true",
                        help="do not run asv; use the newest results")
    parser.add_argument("asv_options", nargs="*", help="after --: options of asv run")
    args = parser.parse_args()
    if not args.from_results:
        run_asv(args.asv_options)
    write_table(*latest_results())


if __name__ == "__main__":
    main()
