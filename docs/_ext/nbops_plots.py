"""Plots drawn when the documentation is built (matplotlib, Agg backend).

* ``_generated/plots/<name>.png``: each activation's curve and its derivative
  (central differences of nbops' own output), one figure per activation, plus
  ``activations.png``, all of them on one grid. The activations are the op
  table's elementwise entries (``nbops/_ops/table.py``).
* ``_generated/plots/benchmarks.png``: nbops vs NumPy vs PyTorch from the
  committed results table ``docs/benchmarks.csv`` (written by
  ``tools/measure_docs_benchmarks.py``; nothing is timed at build time).
"""

import csv
import os

import numpy as np


def _activations():
    """(name, positional arguments, label of the call, x range) of every elementwise
    op of the op table (``nbops/_ops/table.py``); required arguments (threshold's)
    take the table's example values, prelu a one-element weight."""
    import nbops  # noqa: F401  (registers every op)
    from nbops._ops import table

    for e in table.elementwise_entries():
        args = tuple(np.array([p.example]) if p.kind == "array" else p.example
                     for p in e.params if p.required)
        shown = ", ".join(["x"] + [repr(a.tolist() if isinstance(a, np.ndarray) else a)
                                   for a in args])
        yield e.name, args, f"{e.name}({shown})", e.plot_range


def _curves():
    import nbops
    for name, args, label, (lo, hi) in _activations():
        f = getattr(nbops, name)
        xx = np.linspace(lo, hi, int(round((hi - lo) * 200)) + 1)
        y = f(xx, *args)
        dy = np.gradient(y, xx)
        dy[np.abs(dy) > 10] = np.nan  # a jump (threshold): leave a gap, not a spike
        yield name, label, xx, y, dy


def _draw(ax, label, x, y, dy):
    ax.axhline(0, color="0.8", lw=0.8)
    ax.axvline(0, color="0.8", lw=0.8)
    ax.plot(x, y, lw=2, label="function")
    ax.plot(x, dy, lw=1.5, ls="--", label="derivative (numerical)")
    ax.set_title(label, fontsize=10, family="monospace")
    ax.grid(alpha=0.3)


def activation_plots(outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(outdir, exist_ok=True)
    curves = list(_curves())
    for name, label, x, y, dy in curves:
        fig, ax = plt.subplots(figsize=(4.5, 3.0), dpi=100)
        _draw(ax, label, x, y, dy)
        ax.legend(fontsize=8, loc="upper left")
        fig.tight_layout()
        fig.savefig(os.path.join(outdir, f"{name}.png"))
        plt.close(fig)
    cols = 4
    rows = -(-len(curves) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.5 * rows), dpi=90)
    for ax in axes.flat[len(curves):]:
        ax.set_visible(False)
    for ax, (_name, label, x, y, dy) in zip(axes.flat, curves, strict=False):  # spare axes hidden
        _draw(ax, label, x, y, dy)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "activations.png"))
    plt.close(fig)
    return [c[0] for c in curves]


def read_benchmarks(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(line for line in f if not line.startswith("#"))]
    return rows


def benchmark_plot(csv_path, outdir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(outdir, exist_ok=True)
    rows = read_benchmarks(csv_path)
    cases = []
    for r in rows:
        if r["case"] not in cases:
            cases.append(r["case"])
    libs = ["nbops", "numpy", "torch"]
    times = {(r["case"], r["library"]): float(r["best_us"]) for r in rows
             if r["best_us"] not in ("", "nan")}
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(cases) + 1.4), dpi=100)
    h = 0.8 / len(libs)
    ypos = np.arange(len(cases))
    for k, lib in enumerate(libs):
        vals = [times.get((c, lib), np.nan) for c in cases]
        ax.barh(ypos + (k - 1) * h, vals, height=h, label=lib)
    ax.set_yticks(ypos)
    ax.set_yticklabels(cases, fontsize=8, family="monospace")
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("best time per call (µs, log scale; shorter is faster)")
    ax.grid(axis="x", alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(outdir, "benchmarks.png"))
    plt.close(fig)


def benchmark_table(csv_path, out_path):
    """An rst ``list-table`` of the results, included by the performance guide."""
    rows = read_benchmarks(csv_path)
    cases, t = [], {}
    for r in rows:
        if r["case"] not in cases:
            cases.append(r["case"])
        t[(r["case"], r["library"])] = r["best_us"]

    def fmt(v):
        if v in (None, "", "nan"):
            return "n/a"
        v = float(v)
        return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"

    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 40 15 15 15 15", "",
             "   * - case", "     - nbops (µs)", "     - NumPy (µs)", "     - PyTorch (µs)",
             "     - nbops speed-up vs NumPy"]
    for c in cases:
        nb, npy, th = (t.get((c, lib)) for lib in ("nbops", "numpy", "torch"))
        try:
            sp = f"{float(npy) / float(nb):.1f}x"
        except (TypeError, ValueError, ZeroDivisionError):
            sp = "n/a"
        lines += [f"   * - ``{c}``", f"     - {fmt(nb)}", f"     - {fmt(npy)}",
                  f"     - {fmt(th)}", f"     - {sp}"]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def csv_header(csv_path):
    """The ``#`` lines at the top of a results file (the machine description)."""
    with open(csv_path, encoding="utf-8") as f:
        return [line[1:].strip() for line in f if line.startswith("#")]


def fusion_table(csv_path, out_path):
    rows = read_benchmarks(csv_path)
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: 64 18 18", "",
             "   * - computation (10,000,000 float32 elements, one thread)",
             "     - best of 9 (ms)", "     - median (ms)"]
    for r in rows:
        lines += [f"   * - {r['case']}", f"     - {float(r['best_ms']):.1f}",
                  f"     - {float(r['median_ms']):.1f}"]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def machine_block(csv_path, out_path):
    lines = ["::", ""] + ["    " + line for line in csv_header(csv_path)]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def perf_table(csv_path, out_path, columns=("size", "dtype")):
    """A table of ``tools/perf_table.py``: one row per op, one column per value of
    ``columns`` (the every-op table: (size, dtype); the backward table: dtype,
    each row's size in a column of its own), each cell ``nbops/PyTorch`` for the
    allocating call and, after a slash, for the ``out=`` call."""
    rows = read_benchmarks(csv_path)
    with open(csv_path, encoding="utf-8") as f:  # the "# key: value" lines at the top
        about = [line[1:].strip() for line in f if line.startswith("#")]
    row_columns = [c for c in ("size", "dtype") if c not in columns]
    ops, cols, cells = [], [], {}
    for r in rows:
        if not (r["ratio"] or r["ratio_out"]):
            continue
        op = (r["op"],) + tuple(r[c] for c in row_columns)
        if op not in ops:
            ops.append(op)
        col = tuple(r[c] for c in columns)
        if col not in cols:
            cols.append(col)
        cell = r["ratio"] or "n/a"
        if r["ratio_out"]:
            cell += f" / {r['ratio_out']}"
        cells[(op, col)] = cell
    lines = [f"* {line}" for line in about] + [""]
    lines += [".. list-table::", "   :header-rows: 1", "", "   * - op"]
    lines += [f"     - {c}" for c in row_columns]
    lines += [f"     - {' '.join(col)}" for col in cols]
    for op in ops:
        lines.append(f"   * - ``{op[0]}``")
        lines += [f"     - {value}" for value in op[1:]]
        lines += [f"     - {cells.get((op, col), 'n/a')}" for col in cols]
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
