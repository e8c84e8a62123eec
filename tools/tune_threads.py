"""Measure where each kernel's parallel twin beats its serial one; write nbops/_tuning.py.

    python tools/tune_threads.py                  # every op, float32 and float64
    python tools/tune_threads.py --ops relu sigmoid --dtypes float32 --no-write
    python tools/tune_threads.py --show           # the table in docs, from nbops/_tuning.py
    python tools/tune_threads.py --merge --ops linear softmax   # only their kernels
    python tools/tune_threads.py --merge --backward-only        # add the backward kernels

Every op of the op table (``nbops._ops.table.entries()``) runs its sample calls
(``entry.samples(table.sample_arrays(dtype, n))``) and those of its backward
(``entry.backward_samples(...)`` on the same arrays: ``<op>_backward``,
``<loss>_with_grad``; ``--no-backward`` skips them, ``--backward-only`` measures
only the kernels the forward does not launch itself) at sizes from 2**12 to 2**20
elements. Each ``launch(serial, parallel, key, n, ...)`` they make is recorded
and both kernels are timed on the very same arguments, through their compiled
entry points: serial and parallel runs alternate (so a burst of load hits both),
and each keeps its fastest of many runs. From these:

* the serial cost per element of each kernel (and op, and dtype): the slope of
  a straight line through the serial times against the element count;
* the measured crossover: the smallest size where the parallel kernel was
  faster, and faster at 3 in 4 of the larger sizes too (a direct comparison of
  the two, no model; a parallel loss is measured again, longer, in case a burst
  of load on the other core caused it);
* the launch cost: parallel minus serial time of the cheapest kernel (relu) on
  a few dozen elements, where the work itself is nothing;
* the parallel efficiency: serial time / (threads x parallel time) at the
  largest size, the median over kernels.

It prints a summary (cost, measured crossover, the rule's threshold) and writes
``nbops/_tuning.py``, which :mod:`nbops._launch` reads. Run it on a quiet
machine (no other process busy): a parallel launch waits for every thread, so
load on any core shows up as launch cost. After writing, the Numba disk cache
of nbops is stale (its key hashes every source file): the next import compiles.
"""

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import textwrap
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numba  # noqa: E402

import nbops  # noqa: E402, F401  (registers every op)
from nbops import _config, _launch  # noqa: E402
from nbops._ops import elementwise, table  # noqa: E402

SIZES = [int(round(2 ** (k / 2))) for k in range(24, 41)]  # 4096 .. 1048576
TARGET = os.path.join(ROOT, "nbops", "_tuning.py")
#: An op is not run at larger sizes once its recorded launches hold more arrays
#: than this (MiB): see measure_ops.
MAX_MB = 1024


def _timed(fn, args):
    t0 = time.perf_counter_ns()
    fn(*args)
    return time.perf_counter_ns() - t0


def compare(serial_fn, parallel_fn, args, budget_s, min_repeats=15, max_repeats=2000):
    """Fastest serial and parallel time (ns) of one call on ``args``, interleaved."""
    best_s = best_p = math.inf
    serial_fn(*args)
    parallel_fn(*args)  # warm the caches and the thread pool
    stop = time.perf_counter() + budget_s
    r = 0
    while r < min_repeats or (r < max_repeats and time.perf_counter() < stop):
        if r % 2:
            best_p = min(best_p, _timed(parallel_fn, args))
            best_s = min(best_s, _timed(serial_fn, args))
        else:
            best_s = min(best_s, _timed(serial_fn, args))
            best_p = min(best_p, _timed(parallel_fn, args))
        r += 1
    return best_s, best_p


class Recorder:
    """Stands in for ``launch`` in the op modules: records each launch, runs serial."""

    def __init__(self):
        self.calls = []

    def __call__(self, serial, parallel, key, n, *args):
        self.calls.append((serial, parallel, key, n, args))
        _launch.entry_point(serial, key, args)(*args)


def patch_launch(recorder):
    """Replace ``launch`` by ``recorder`` in every module that imported it."""
    patched = []
    for name, mod in list(sys.modules.items()):
        if (name.startswith("nbops.") and mod is not _launch
                and getattr(mod, "launch", None) is _launch.launch):
            mod.launch = recorder
            patched.append(mod)
    return patched


def unpatch_launch(modules):
    for mod in modules:
        mod.launch = _launch.launch


class NoFastPath(dict):
    """Stands in for ``elementwise._small_1d``: keeps nothing, so every 1-D call
    goes through ``launch`` (and is recorded)."""

    def __setitem__(self, key, value):
        pass


def record_launches(fn):
    """The launches ``(serial, parallel, key, n, args)`` that ``fn()`` makes, each
    run serial, with the elementwise 1-D fast path off (so that every call goes
    through ``launch``)."""
    recorder = Recorder()
    modules = patch_launch(recorder)
    small_1d, elementwise._small_1d = elementwise._small_1d, NoFastPath()
    try:
        fn()
    finally:
        elementwise._small_1d = small_1d
        unpatch_launch(modules)
    return recorder.calls


def launches(recorder, entry, d, forward=True, backward=True):
    """The recorded launches of the op's sample calls on the arrays ``d`` (if
    ``forward``) and of its backward's (if ``backward``: the kernels the forward
    does not launch itself, such as dropout's mask or linear's product)."""
    recorder.calls = []
    for args, kwargs in entry.samples(d):
        entry.function(*args, **kwargs)
    calls, recorder.calls = recorder.calls, []
    if backward and entry.backward_samples is not None:
        for function, args, kwargs in entry.backward_samples(d):
            function(*args, **kwargs)
        forward_labels = {_launch.cost_label(c[0], c[2]) for c in calls}
        backward_calls = [c for c in recorder.calls
                          if _launch.cost_label(c[0], c[2]) not in forward_labels]
        calls = (calls if forward else []) + backward_calls
    elif not forward:
        calls = []
    return calls


def args_bytes(calls):
    """Bytes of the distinct arrays among the recorded launches' arguments."""
    arrays = {id(a): a for c in calls for a in c[4] if isinstance(a, np.ndarray)}
    return sum(a.nbytes for a in arrays.values())


def measure_ops(entries, dtypes, sizes, budget_s, log, forward=True, backward=True,
                max_bytes=MAX_MB << 20):
    """{(label, dtype): [(n, serial_ns, parallel_ns), ...]} over the sample calls
    (``forward``) and the backward sample calls (``backward``).

    An op whose recorded launches hold more than ``max_bytes`` of arrays at one
    size is not run at the larger sizes (of that dtype): pdist's and cdist's
    samples (and their backwards' grad_output and (rows, rows) matrix) grow with
    the square of the size, 11 GB at 2**19 float32 elements, 40+ at 2**20
    float64; their kernels' element counts are far above 2**20 by then.
    """
    points = {}
    recorder = Recorder()
    modules = patch_launch(recorder)
    small_1d, elementwise._small_1d = elementwise._small_1d, NoFastPath()
    try:
        for dtype in dtypes:
            too_large = set()  # the ops past max_bytes at a smaller size
            for size in sizes:
                d = table.sample_arrays(dtype, size)
                for entry in entries:
                    if entry.name in too_large:
                        continue
                    seen = set()
                    calls = launches(recorder, entry, d, forward, backward)
                    recorder.calls = []  # the backward's, not all in calls
                    held = args_bytes(calls)
                    if held > max_bytes:
                        too_large.add(entry.name)
                        log(f"{dtype} {size:>8}: {entry.name}'s launches hold "
                            f"{held >> 20} MiB: not run at larger sizes")
                    for serial, parallel, key, n, args in calls:
                        label = _launch.cost_label(serial, key)
                        if (label, n) in seen or n < 1024:
                            continue
                        seen.add((label, n))
                        s_fn = _launch.entry_point(serial, key, args)
                        p_fn = _launch.entry_point(parallel, key, args)
                        s, p = compare(s_fn, p_fn, args, budget_s)
                        if p > s and n >= 1 << 15:  # a burst of load? look again, longer
                            s2, p2 = compare(s_fn, p_fn, args, 3 * budget_s)
                            s, p = min(s, s2), min(p, p2)
                        points.setdefault(label, []).append((n, s, p))
                    calls = args = None  # free the arrays before the next op
                log(f"{dtype} {size:>8}: {len(points)} kernels measured")
    finally:
        unpatch_launch(modules)
        elementwise._small_1d = small_1d
    return points


def launch_cost(budget_s):
    """Parallel minus serial time (ns) of relu's map kernel on 16 to 256 elements."""
    op = elementwise.Op.registry["relu"]
    extra = []
    for n in (16, 64, 256):
        x = np.linspace(-1, 1, n, dtype=np.float32)
        out = np.empty_like(x)
        key = (op, x.dtype)
        args = (op, x, out, ())
        s, p = compare(_launch.entry_point(elementwise.map_serial, key, args),
                       _launch.entry_point(elementwise.map_parallel, key, args),
                       args, budget_s, min_repeats=200)
        extra.append(p - s)
    return statistics.median(extra)


def analyse(pts, threads):
    """Cost per element (ns), measured crossover (elements or None), efficiency."""
    pts = sorted(pts)
    n = np.array([p[0] for p in pts], float)
    s = np.array([p[1] for p in pts], float)
    par = np.array([p[2] for p in pts], float)
    if len(pts) >= 2:
        cost = float(np.polyfit(n, s, 1, w=1 / s)[0])  # relative errors weigh the same
    else:
        cost = float(s[0] / n[0])
    if not cost > 0:
        cost = float(np.min(s / n))
    # The smallest size where the parallel kernel won, and won at 3 in 4 of the
    # larger sizes too: a loss above it is more likely a burst of load on the
    # other core (the parallel run waits for it) than real, a win is not (both
    # kernels keep their fastest run).
    wins = par < s
    crossover = None
    for i in range(len(pts) - 1, -1, -1):
        if wins[i] and wins[i:].mean() >= 0.75:
            crossover = int(n[i])
    efficiency = float(np.median(s[-3:] / (threads * par[-3:])))  # the largest sizes
    return cost, crossover, efficiency


def implied_launch_ns(cost, crossover, threads, efficiency):
    """The launch cost that puts the rule's threshold at the measured crossover."""
    return crossover * cost * (1 - 1 / (threads * efficiency))


def machine():
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} logical CPUs"


def load():
    try:
        return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())
    except OSError:
        return "unknown"


def _dict_line(key, inner):
    """One ``"key": {inner},`` line of a generated dict, split after the key if long."""
    line = f'    "{key}": {{{inner}}},'
    return line if len(line) <= 100 else f'    "{key}":\n        {{{inner}}},'


def render(results, launch_ns, efficiency, default_cost, threads, header):
    lines = ['"""Measured inputs of the serial/parallel choice (:mod:`nbops._launch`).', ""]
    lines += header
    lines += ['"""', "", "# Generated by tools/tune_threads.py: edit by re-running it.", ""]
    lines.append("#: Threads of the run that measured the figures below.")
    lines.append(f"THREADS = {threads}")
    lines.append("#: Extra time of a parallel launch over a serial call, in ns "
                 "(pool wake-up + join):")
    lines.append("#: the larger of the empty launch's and the median implied by the "
                 "crossovers.")
    lines.append(f"LAUNCH_NS = {launch_ns:.0f}.0")
    lines.append("#: Parallel speed-up per thread on work well above the launch cost.")
    lines.append(f"EFFICIENCY = {efficiency:.2f}")
    lines.append("#: Serial cost per element (ns) of kernels not in ``COST_NS``:")
    lines.append("#: the cheapest measured (late rather than early parallel).")
    lines.append(f"DEFAULT_COST_NS = {default_cost:.3g}")
    lines.append("#: Serial cost per element (ns) by kernel label and dtype.")
    lines.append("COST_NS = {")
    for label in sorted({lab for lab, _ in results}):
        by_dtype = {dt: r[0] for (lab, dt), r in sorted(results.items()) if lab == label}
        inner = ", ".join(f'"{dt}": {c:.3g}' for dt, c in by_dtype.items())
        lines.append(_dict_line(label, inner))
    lines.append("}")
    lines.append("#: Measured crossover (elements): the smallest size where the parallel kernel")
    lines.append("#: was faster, and at 3 in 4 larger sizes; None: never up to 2**20 (reference).")
    lines.append("CROSSOVER = {")
    for label in sorted({lab for lab, _ in results}):
        by_dtype = {dt: r[1] for (lab, dt), r in sorted(results.items()) if lab == label}
        inner = ", ".join(f'"{dt}": {c}' for dt, c in by_dtype.items())
        lines.append(_dict_line(label, inner))
    lines.append("}")
    return "\n".join(lines) + "\n"


def rst_table(results, launch_ns, efficiency, threads):
    """The per-kernel table of docs/guides/performance.rst (reStructuredText)."""
    rows = [("kernel [ops]", "f32 ns/el", "f32 measured", "f32 threshold", "f64 ns/el",
             "f64 measured", "f64 threshold")]
    for label in sorted({lab for lab, _ in results}):
        row = [label]
        for dt in ("float32", "float64"):
            if (label, dt) not in results:
                row += ["--"] * 3
                continue
            cost, crossover, _ = results[(label, dt)]
            rule = _launch.threshold(cost, threads, launch_ns, efficiency)
            row += [f"{cost:.3f}", "never" if crossover is None else str(crossover),
                    "never" if rule == _launch.NEVER else str(rule)]
        rows.append(tuple(row))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    rule_line = "  ".join("=" * w for w in widths)
    out = [rule_line,
           "  ".join(c.ljust(w) for c, w in zip(rows[0], widths, strict=True)).rstrip(),
           rule_line]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows[1:]]
    return "\n".join(out + [rule_line])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", nargs="*", help="only these ops (default: every op)")
    ap.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    ap.add_argument("--budget", type=float, default=0.12,
                    help="seconds of timing per kernel and size (default 0.12)")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--no-backward", action="store_true",
                       help="only the forwards' sample calls (not <op>_backward, "
                            "<loss>_with_grad)")
    which.add_argument("--backward-only", action="store_true",
                       help="only the kernels of the backward sample calls that the "
                            "forwards' do not launch (with --merge: add the backward "
                            "kernels, keeping every forward figure)")
    ap.add_argument("--max-mb", type=int, default=MAX_MB,
                    help="stop running an op at larger sizes once its launches hold more "
                         f"than this many MiB of arrays (default {MAX_MB}: pdist, cdist)")
    ap.add_argument("--sizes", type=int, nargs="*",
                    help="only these of the sizes (elements; default 4096 .. 2**20)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--merge", action="store_true",
                    help="with --ops: replace only those kernels' figures in nbops/_tuning.py, "
                         "keeping its launch cost, efficiency and other kernels")
    ap.add_argument("--out", default=TARGET)
    ap.add_argument("--rst", action="store_true",
                    help="also print the table of docs/guides/performance.rst")
    ap.add_argument("--show", action="store_true",
                    help="measure nothing: print nbops/_tuning.py's table as reStructuredText")
    opts = ap.parse_args(argv)
    if opts.show:
        from nbops import _tuning

        results = {(label, dt): (cost, _tuning.CROSSOVER.get(label, {}).get(dt), None)
                   for label, by_dtype in _tuning.COST_NS.items()
                   for dt, cost in by_dtype.items()}
        print(rst_table(results, _tuning.LAUNCH_NS, _tuning.EFFICIENCY, _tuning.THREADS))
        return 0

    threads = numba.get_num_threads()
    if threads < 2 or _config.PER_OP_FLOOR is None:
        sys.exit("tune_threads: needs at least 2 Numba threads and no "
                 "NBOPS_PARALLEL_THRESHOLD")
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = load()
    entries = [e for e in table.entries() if e.samples is not None
               and (not opts.ops or e.name in opts.ops)]

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    log(f"{len(entries)} ops, dtypes {opts.dtypes}, {threads} threads, load {load_before}")
    launch_ns = launch_cost(max(opts.budget, 0.5))
    log(f"launch cost: {launch_ns:.0f} ns")
    points = measure_ops(entries, opts.dtypes, opts.sizes or SIZES, opts.budget, log,
                         forward=not opts.backward_only, backward=not opts.no_backward,
                         max_bytes=opts.max_mb << 20)
    direct_ns = max(launch_ns, launch_cost(max(opts.budget, 0.5)))  # the larger of 2 runs

    results = {label: analyse(pts, threads) for label, pts in points.items()}
    efficiency = statistics.median(r[2] for r in results.values())
    efficiency = min(max(efficiency, 0.55), 1.0)
    default_cost = min(r[0] for r in results.values())
    # The launch cost the rule uses: at least the one measured on a few elements,
    # and at least the median of those that reproduce each measured crossover (a
    # join waits for the slowest thread, so the real cost near the crossover is
    # larger than the empty launch's).
    implied = [implied_launch_ns(c, x, threads, efficiency)
               for c, x, _ in results.values() if x is not None]
    implied_ns = statistics.median(implied) if implied else 0.0
    launch_ns = max(direct_ns, implied_ns)

    print(f"\nlaunch cost {launch_ns:.0f} ns (empty launch {direct_ns:.0f} ns, median "
          f"implied by the crossovers {implied_ns:.0f} ns), parallel efficiency "
          f"{efficiency:.2f} on {threads} threads, load {load_before} -> {load()}")
    print(f"{'kernel':48} {'dtype':8} {'ns/elem':>8} {'crossover':>10} {'rule':>9} "
          f"{'eff':>5}")
    for (label, dtype), (cost, crossover, eff) in sorted(results.items()):
        rule = _launch.threshold(cost, threads, launch_ns, efficiency)
        rule = "never" if rule == _launch.NEVER else rule
        print(f"{label:48} {dtype:8} {cost:8.3f} {str(crossover):>10} {rule!s:>9} "
              f"{eff:5.2f}")

    if opts.rst:
        print()
        print(rst_table(results, launch_ns, efficiency, threads))

    header = [
        f"Generated by ``python tools/tune_threads.py`` on {started:%Y-%m-%d %H:%M} UTC:",
        f"{machine()}, {threads} Numba threads ({numba.config.THREADING_LAYER} layer "
        f"requested, {numba.threading_layer()} used), numba {numba.__version__},",
        f"load average {load_before} before and {load()} after.",
        f"Launch cost: {direct_ns:.0f} ns for an empty launch, {implied_ns:.0f} ns "
        "(the median) for",
        "the rule to reproduce each measured crossover.",
        "",
        "Re-run ``python tools/tune_threads.py`` on a quiet machine (no other busy",
        "process): load on any core shows up as launch cost and makes the thresholds",
        "higher than they need to be. Costs are per element of the count each kernel",
        "is launched with (``n`` in ``launch``); labels are ``module.kernel[ops]``.",
    ]
    if opts.merge:  # the new figures of these kernels, the rest as it was
        from nbops import _tuning as old

        merged = {(lab, dt): (cost, old.CROSSOVER.get(lab, {}).get(dt), None)
                  for lab, by_dtype in old.COST_NS.items() for dt, cost in by_dtype.items()}
        merged.update(results)
        results, launch_ns, efficiency = merged, old.LAUNCH_NS, old.EFFICIENCY
        default_cost = min([old.DEFAULT_COST_NS] + [r[0] for r in results.values()])
        threads = old.THREADS
        merged_note = (f"Merged on {started:%Y-%m-%d %H:%M} UTC (``--merge``): re-measured "
                       + ", ".join(sorted({lab for lab, _ in points}))
                       + f", load average {load_before} before and {load()} after.")
        header = (old.__doc__.strip("\n").splitlines()[2:]  # (after the title)
                  + [""] + textwrap.wrap(merged_note, 88, break_on_hyphens=False))
    text = render({(lab, dt): r for (lab, dt), r in results.items()}, launch_ns, efficiency,
                  default_cost, threads, header)
    if not opts.no_write:
        with open(opts.out, "w") as f:
            f.write(text)
        print(f"\nwrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
