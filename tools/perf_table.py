#!/usr/bin/env python
"""The docs' performance tables: every op (three sizes) and every backward (the
large size), float32 and float64, nbops / PyTorch.

    python tools/perf_table.py                  # time every case, write the table
    python tools/perf_table.py --passes 1       # one pass over the cases (a third of the time)
    python tools/perf_table.py --backward       # EveryBackward: the backward table
    python tools/perf_table.py --ops relu gelu  # rerun only these ops' rows (also --backward)
    python tools/perf_table.py --asv            # time with `asv run` instead
    python tools/perf_table.py --from-results   # rewrite the table from the last asv results
    python tools/perf_table.py --asv -- --quick # options after -- go to `asv run`

The cases are asv's: the classes ``every_op.EveryOp``
(``asv_bench/benchmarks/every_op.py``) and, with ``--backward``,
``every_backward.EveryBackward`` (``asv_bench/benchmarks/every_backward.py``).
By default each case runs in a process of its own on a frozen copy of the
checked-out commit (a temporary git worktree of HEAD: commit what you want
measured; edits made during the run do not leak into it); in that process the
case's cells are built once each (``built_once``) and the three calls of a cell
(nbops allocating, nbops into ``out=``, PyTorch) take their samples in turn,
round after round (``--rounds``, default 9; a sample is a batch of calls of
about 10 ms, timed as ``timeit`` does), and a cell's time is the median of its
samples. The whole run is made ``--passes`` times (default 3) over all the
cases, and each value of the table (times and ratios) is the median of its
passes': on this machine a cell's ratio moves 15 % at the median and up to
2x between two passes minutes apart, so one pass cannot decide a cell near
1.0. So the two libraries of a ratio are timed in the same process, minutes
and milliseconds apart at most: on the shared 2-core virtual machine of these
tables, the same memory-bound call runs at one of two speeds (e.g. 0.9 or 1.8
ms for a map over 1e7 float32) depending on the process, and ``asv run``
(``--asv``: a new process for every cell *and* library) put such differences
into the ratios. ``--asv`` runs ``asv run --python=same -b every_op.EveryOp``
(``every_backward.EveryBackward``) on the frozen copy instead and reads asv's
results, as ``--from-results`` does without running anything.

The tool writes ``docs/perf_table.csv`` (``docs/perf_table_backward.csv``): one
row per (op, size, dtype) with the times of the allocating call, of the
``out=`` call and of PyTorch's, in microseconds, and the two ratios nbops /
PyTorch (by default the median of the rounds' ratios, paired round by
round; the backward table: one row per ``<op>_backward`` /
``<loss>_with_grad`` and dtype, its size in words; PyTorch's time is its
backward alone, or its forward plus backward for a ``_with_grad``). The ``#``
lines at its top give the commit, the machine, the versions, how the run was
timed and the load average of the run, the geometric mean of the ratios and
the number of cells above 1.0. Run it on a machine as quiet as you can get:
the full forward table takes about 55 minutes on 2 cores with the default
3 passes (the first, about 20 minutes, mostly compiling in the fresh copy).

``--ops NAME ...`` reruns only the cases of those ops (an op's name, e.g.
``batch_norm``, or a case's label, e.g. ``batch_norm_eval``,
``cross_entropy_with_grad``; with ``--asv`` the environment variable
``NBOPS_PERF_OPS`` tells the benchmark files to keep only those cases, so that
asv's parameter lists shrink to them), and only their rows of the table are
replaced; the other rows, and the header of the run that measured them, stay,
and a ``# rerun`` line per partial run says which rows which commit measured
(a later line's rows replace an earlier one's). The geometric mean is
recomputed over the whole table. A run whose results hold every case (a full
run, or ``--from-results`` after one) rewrites the whole table and drops those
lines.

``--asv -- --quick`` (asv's one sample per cell, no warm-up) is a smoke test of
the asv path, not a measurement: the header says so. The smoke tests of this tool::

    python tools/perf_table.py --backward --ops relu cross_entropy batch_norm --asv -- --quick
    python tools/perf_table.py --ops relu --rounds 1

(the first about 6 minutes at load average 10 to 14 on 2 cores, most of it
compiling; the second about 20 seconds).
The geometric mean is computed from the ratio columns.
"""

import argparse
import contextlib
import csv
import datetime
import glob
import importlib
import itertools
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
#: the environment variable the benchmark files read (asv_bench/benchmarks/_common.py)
PERF_OPS = "NBOPS_PERF_OPS"
#: kind -> (benchmark module, asv benchmark name, asv -b pattern, output file)
TABLES = {
    "forward": ("every_op", "every_op.EveryOp.time_op", r"every_op\.EveryOp",
                os.path.join(ROOT, "docs", "perf_table.csv")),
    "backward": ("every_backward", "every_backward.EveryBackward.time_backward",
                 r"every_backward\.EveryBackward",
                 os.path.join(ROOT, "docs", "perf_table_backward.csv")),
}
COLUMNS = ["op", "size", "dtype", "nbops_us", "nbops_out_us", "torch_us", "ratio",
           "ratio_out"]
SIZE_ORDER = {"small": 0, "medium": 1, "large": 2}


@contextlib.contextmanager
def _no_filter():
    """``$NBOPS_PERF_OPS`` unset for the duration (the benchmark files read it)."""
    saved = os.environ.pop(PERF_OPS, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[PERF_OPS] = saved


def load_cases(kind):
    """{label: op} of every case of the benchmark file of ``kind`` (of this
    checkout), and {label: size in words} (the backward cases; empty for the
    forward's, whose size is a parameter)."""
    module_name, _, _, _ = TABLES[kind]
    path = os.path.join(ROOT, "asv_bench")
    if path not in sys.path:
        sys.path.insert(0, path)
    with _no_filter():
        module = importlib.import_module(f"benchmarks.{module_name}")
    if kind == "forward":
        return {label: case[1] for label, case in module.ALL_CASES.items()}, {}
    return ({label: case.op for label, case in module.ALL_CASES.items()},
            {label: case.size for label, case in module.ALL_CASES.items()})


def check_ops(names, ops_of):
    """Exit with a message naming any of ``names`` that is neither a case nor an op."""
    known = set(ops_of) | set(ops_of.values())
    unknown = [n for n in names if n not in known]
    if unknown:
        ops = ", ".join(sorted(set(ops_of.values())))
        sys.exit(f"no case of {', '.join(unknown)}; the ops: {ops}")


def _load():
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f}, {five:.1f}, {fifteen:.1f}"


def run_line(extra, load_start, load_end):
    """The header's words on how a run was made: asv options and load averages."""
    options = " ".join(extra) or "none"
    words = f"asv options: {options}"
    if "--quick" in extra or "-q" in extra:
        words += " (a smoke run: one sample per cell, not a measurement)"
    return words + "; " + _load_words(load_start, load_end)


def _load_words(load_start, load_end):
    """The header's load averages of a run (and a warning for a loaded machine)."""
    words = f"load average (1, 5, 15 min) at the start: {load_start}, at the end: {load_end}"
    if float(load_start.split(",")[0]) > 0.5 * (os.cpu_count() or 1):
        words += f" (a loaded machine: {os.cpu_count()} logical cores)"
    return words


@contextlib.contextmanager
def frozen_head():
    """``(commit, folder)``: a temporary git worktree of HEAD, removed afterwards
    (the runs measure it, so edits to this checkout during a run leak nowhere)."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "nbops")
        subprocess.run(["git", "worktree", "add", "--detach", tree, head], cwd=ROOT,
                       check=True, stdout=subprocess.DEVNULL)
        try:
            yield head, tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT,
                           check=False)


def benchmark_class(kind):
    """The asv class of the table ``kind`` (``EveryOp``, ``EveryBackward``), from
    the benchmark files on ``sys.path``."""
    module_name, bench, _, _ = TABLES[kind]
    module = importlib.import_module(f"benchmarks.{module_name}")
    return getattr(module, bench.split(".")[1])


def run_asv(kind, extra, ops):
    """asv on a frozen copy of HEAD (a temporary git worktree): asv runs each
    benchmark in a new process that imports nbops and the benchmark files anew,
    so edits to this checkout during the run would mix versions (and shift the
    benchmarks' parameter indices). This checkout's asv results are copied in
    first (asv adds to a commit's results file; other benchmarks' results of the
    same commit stay) and back afterwards. Returns the header's run line."""
    _, _, pattern, _ = TABLES[kind]
    results = os.path.join(ROOT, "asv_bench", "results")
    load_start = _load()
    with frozen_head() as (head, tree):
        env = dict(os.environ, PYTHONPATH=tree)
        env.pop(PERF_OPS, None)
        if ops:
            env[PERF_OPS] = " ".join(ops)
        asv = os.path.join(tree, "asv_bench")
        if os.path.isdir(results):
            shutil.copytree(results, os.path.join(asv, "results"))
        subprocess.run(["asv", "machine", "--yes"], cwd=asv, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["asv", "run", "--python=same", f"--set-commit-hash={head}",
                        "-b", pattern, *extra], cwd=asv, env=env, check=True)
        shutil.copytree(os.path.join(asv, "results"), results, dirs_exist_ok=True)
    return run_line(extra, load_start, _load())


#: seconds of rest before each sample: the thread pool of the library timed
#: before (Numba's OpenMP workers, PyTorch's own OpenMP, OpenBLAS) spins a while
#: after its last call and would take a core from the next library's threads
PAUSE = 0.05


def measure_case(kind, label, rounds, pause=PAUSE):
    """{(label, *cell params, library): seconds per call} of one case: every cell
    (size, dtype) of ``label`` in this process, the libraries' samples
    alternating round after round (nbops, nbops_out, torch, nbops, ...), each
    cell's time the median of its ``rounds`` samples, and its ratios (keys
    ``ratio``, ``ratio_out`` in the library's place) the medians of the rounds'
    ratios nbops / PyTorch (paired: a drift of the machine's speed over the
    run cancels). A sample is
    ``built_once``'s batch of calls (about 10 ms), timed as ``timeit`` does (the
    garbage collector off), after ``pause`` seconds of rest and one untimed
    call. A library the case skips (``NotImplementedError``: no ``out=``, no
    PyTorch op) has no entry."""
    cls = benchmark_class(kind)
    *cell_params, libraries = cls.params[1:]
    values = {}
    for cell in itertools.product(*cell_params):
        built = {}
        for library in libraries:
            instance = cls()
            try:
                instance.setup(label, *cell, library)
            except NotImplementedError:
                continue
            built[library] = instance
        samples = {library: [] for library in built}
        for _ in range(rounds):
            for library, instance in built.items():
                time.sleep(pause)
                instance.fn()  # wakes this library's threads
                timer = timeit.Timer(instance.fn)
                samples[library].append(timer.timeit(instance.number) / instance.number)
        for library, times in samples.items():
            values[(label, *cell, library)] = statistics.median(times)
        for library, ratio in (("nbops", "ratio"), ("nbops_out", "ratio_out")):
            if library in samples and "torch" in samples:  # paired round by round
                values[(label, *cell, ratio)] = statistics.median(
                    a / b for a, b in zip(samples[library], samples["torch"], strict=True))
        built.clear()  # this cell's arrays go before the next cell's are made
    return values


def run_interleaved(kind, ops, rounds, passes=1):
    """Every case (or those of ``ops``) measured by :func:`measure_case`, one
    process per case, in a frozen copy of HEAD (a temporary git worktree: edits
    to this checkout during the run do not leak into it); ``passes`` times over
    all the cases, each value (times and ratios) the median of its passes
    (:func:`median_of_passes`). Returns (the results in :func:`latest_results`'
    form, the header's run line)."""
    ops_of, _ = load_cases(kind)
    labels = sorted(label for label, op in ops_of.items()
                    if not ops or label in ops or op in ops)
    load_start = _load()
    runs = []
    with frozen_head() as (head, tree):
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [tree, os.path.join(tree, "asv_bench")]))
        env.pop(PERF_OPS, None)
        for p in range(passes):
            values = {}
            for i, label in enumerate(labels):
                print(f"[pass {p + 1}/{passes}, {i + 1}/{len(labels)}] {label}", flush=True)
                child = subprocess.run(
                    [sys.executable, os.path.join(tree, "tools", "perf_table.py"),
                     "--measure-case", label, "--rounds", str(rounds)]
                    + (["--backward"] if kind == "backward" else []),
                    cwd=tree, env=env, capture_output=True, text=True)
                if child.returncode:  # the case's cells stay empty; the others go on
                    print(f"{label} failed:\n{child.stderr[-3000:]}", file=sys.stderr)
                    continue
                for key, seconds in json.loads(child.stdout.splitlines()[-1]):
                    values[tuple(key)] = seconds
            runs.append(values)
    params = [labels] + [list(p) for p in benchmark_class(kind).params[1:]]
    run = (f"libraries alternating in one process per case, median of {rounds} samples "
           f"of about 10 ms")
    if passes > 1:
        run += f", then the median of {passes} passes over all the cases"
    run += "; " + _load_words(load_start, _load())
    return ({"commit_hash": head, "requirements": {}}, params, median_of_passes(runs)), run


def median_of_passes(runs):
    """{key: median of the values of ``key`` over ``runs``} (a list of
    {key: value}): each cell's times and ratios the median of the passes that
    measured it (a pass timing a cell alone at one of this machine's two
    process speeds, or under a burst of load, no longer decides it)."""
    keys = dict.fromkeys(k for values in runs for k in values)
    return {k: statistics.median(values[k] for values in runs if k in values) for k in keys}


def latest_results(kind):
    """(results data, params, {param tuple: seconds}) of the newest asv results
    holding the benchmark of ``kind``."""
    _, bench, pattern, _ = TABLES[kind]
    files = glob.glob(os.path.join(ROOT, "asv_bench", "results", "*", "*.json"))
    best = None
    for path in sorted(files, key=os.path.getmtime, reverse=True):
        if path.endswith("machine.json"):
            continue
        with open(path) as f:
            data = json.load(f)
        if bench in data.get("results", {}):
            best = data
            break
    if best is None:
        sys.exit(f"no asv results with {pattern}: run without --from-results")
    columns = best["result_columns"]
    entry = dict(zip(columns, best["results"][bench], strict=False))
    params = [[p.strip("'") for p in ps] for ps in entry["params"]]
    values = {}
    for combo, value in zip(itertools.product(*params), entry["result"], strict=True):
        values[combo] = value
    return best, params, values


def _us(value):
    return None if value is None or (isinstance(value, float) and math.isnan(value)) \
        else value * 1e6


def table_rows(kind, params, values, sizes):
    """The table's rows ``[op, size, dtype, nbops_us, nbops_out_us, torch_us,
    ratio, ratio_out]`` (strings) of one asv result."""
    if kind == "forward":
        labels, size_list, dtypes, _libraries = params
        keys = [((op, size, dtype), (op, size, dtype))
                for op, size, dtype in itertools.product(labels, size_list, dtypes)]
    else:
        labels, dtypes, _libraries = params
        keys = [((case, sizes.get(case, ""), dtype), (case, dtype))
                for case, dtype in itertools.product(labels, dtypes)]
    rows = []
    for row_key, param_key in keys:
        t = {lib: _us(values.get((*param_key, lib))) for lib in ("nbops", "nbops_out", "torch")}
        # the paired ratios where the run made them (the default timing), else the times'
        r = values.get((*param_key, "ratio")) or (
            t["nbops"] / t["torch"] if t["nbops"] and t["torch"] else None)
        ro = values.get((*param_key, "ratio_out")) or (
            t["nbops_out"] / t["torch"] if t["nbops_out"] and t["torch"] else None)
        rows.append(list(row_key) + [f"{t[k]:.2f}" if t[k] else "" for k in t]
                    + [f"{x:.2f}" if x else "" for x in (r, ro)])
    return rows


def read_table(path):
    """(header lines without their ``# ``, rows) of a table written by this tool,
    ([], []) where there is none."""
    if not os.path.exists(path):
        return [], []
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    header = [line[1:].strip() for line in lines if line.startswith("#")]
    body = [line for line in lines if not line.startswith("#")]
    rows = list(csv.reader(body))
    return header, [r for r in rows[1:] if r]


def summary(rows):
    """The header's geometric-mean line over the ratio cells of ``rows``."""
    # from the ratio columns (the paired ratios of the default timing)
    ratios = [float(x) for r in rows for x in r[6:8] if x and float(x) > 0]
    geomean = math.exp(sum(map(math.log, ratios)) / len(ratios)) if ratios else float("nan")
    over = sum(x > 1.0 for x in ratios)
    return f"geomean nbops/torch over {len(ratios)} cells: {geomean:.2f}; " \
           f"cells above 1.0: {over}", geomean, over


def _sort_key(row):
    return row[0], SIZE_ORDER.get(row[1], 0), row[2]


def merge(old_header, old_rows, new_rows, new_labels, partial, about):
    """The table after a run: ``about`` (the run's header lines: commit, machine,
    run) and ``new_rows``; for a ``partial`` run, the old table with the rows of
    ``new_labels`` replaced and a ``rerun`` line added (``about`` joined into it).
    Returns (header lines without the summary, rows)."""
    if not partial:
        return list(about), sorted(new_rows, key=_sort_key)
    kept = [r for r in old_rows if r[0] not in new_labels]
    header = [h for h in old_header if not h.startswith("geomean")]
    if not header:
        header = ["commit: none (no full run yet): the rows come from the reruns below",
                  about[1]]
    commit, _, rest = about[0].partition(",")
    header.append(f"rerun of {', '.join(sorted(new_labels))} ({len(new_rows)} rows): "
                  f"{commit},{rest}; {about[2]}")
    return header, sorted(kept + new_rows, key=_sort_key)


def write_table(path, header, rows):
    line, geomean, over = summary(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        # the summary after the full run's lines, before the reruns'
        split = next((i for i, h in enumerate(header) if h.startswith("rerun")), len(header))
        for h in header[:split] + [line] + header[split:]:
            f.write(f"# {h}\n")
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows)
    print(f"wrote {path}: {len(rows)} rows, geomean {geomean:.2f}, {over} cells above 1.0")


def about_run(data, run):
    """The header lines of a run: commit and date, machine and versions, how it ran."""
    import numba
    import numpy

    how = "asv median times" if "asv" in run else "median times"
    return [f"commit: {data['commit_hash'][:10]}, {how}, "
            f"date: {datetime.date.today()}",
            f"machine: {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} logical cores; python {platform.python_version()}, "
            f"numpy {numpy.__version__}, numba {numba.__version__}"
            f", torch {data.get('requirements', {}).get('torch', 'as installed')}",
            run]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backward", action="store_true",
                        help="the backward table (every_backward.EveryBackward)")
    parser.add_argument("--ops", nargs="+", metavar="NAME",
                        help="rerun only these ops' (or cases') rows")
    parser.add_argument("--asv", action="store_true",
                        help="time with asv run (one process per cell and library)")
    parser.add_argument("--from-results", action="store_true",
                        help="do not run anything; the table from asv's newest results")
    parser.add_argument("--rounds", type=int, default=9,
                        help="samples per cell and library (default 9)")
    parser.add_argument("--passes", type=int, default=3,
                        help="passes over all the cases, a cell's values the median "
                             "of its passes' (default 3)")
    parser.add_argument("--measure-case", metavar="LABEL", help=argparse.SUPPRESS)
    parser.add_argument("asv_options", nargs="*", help="after --: options of asv run")
    args = parser.parse_args()
    kind = "backward" if args.backward else "forward"
    if args.measure_case:  # the child process of run_interleaved: JSON on the last line
        values = measure_case(kind, args.measure_case, args.rounds)
        print(json.dumps([[list(key), seconds] for key, seconds in values.items()]))
        return
    ops_of, sizes = load_cases(kind)
    if args.ops:
        check_ops(args.ops, ops_of)
    if args.from_results:
        run = "asv options and load: not recorded (written with --from-results)"
        data, params, values = latest_results(kind)
    elif args.asv:
        run = run_asv(kind, args.asv_options, args.ops)
        data, params, values = latest_results(kind)
    else:
        (data, params, values), run = run_interleaved(kind, args.ops, args.rounds,
                                                       args.passes)
    labels = set(params[0])
    partial = bool(args.ops) or not set(ops_of) <= labels
    path = TABLES[kind][3]
    old_header, old_rows = read_table(path)
    header, rows = merge(old_header, old_rows, table_rows(kind, params, values, sizes),
                         labels, partial, about_run(data, run))
    write_table(path, header, rows)


if __name__ == "__main__":
    main()
