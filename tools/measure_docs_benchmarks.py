"""Measure the numbers shown in the documentation and write them as CSV tables.

    python tools/measure_docs_benchmarks.py --threads 1   # both tables, as in the docs
    # the committed tables: --threads 1 --repeat 9 --note "shared 2-core KVM virtual machine ..."
    python tools/measure_docs_benchmarks.py --quick    # fewer repeats (a smoke run)

Writes ``docs/benchmarks.csv`` (nbops vs NumPy vs PyTorch for a few
representative ops: the performance guide's table and bar chart) and
``docs/fusion.csv`` (the njit guide's fused loop vs separate calls). Each file
starts with ``#`` lines describing the machine. Each timing run is the mean
time of one call over enough calls to last 50 ms (``timeit``), after a warm-up
call (so compilation is excluded); ``best_us`` is the fastest of ``--repeat``
runs (the least disturbed by other processes on a shared machine) and
``median_us`` their median. PyTorch is optional: without it the
``torch`` rows are left out. This is not the asv suite (``asv_bench/``), only a
quick table for the docs; the machine it ran on may be shared and noisy.
"""

import argparse
import datetime
import os
import platform
import sys
import timeit

if __name__ == "__main__" and "--threads" in sys.argv:
    # Must be set before Numba is imported.
    os.environ["NUMBA_NUM_THREADS"] = sys.argv[sys.argv.index("--threads") + 1]

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numba  # noqa: E402
from numba import njit, prange  # noqa: E402

import nbops  # noqa: E402
from nbops import scalar  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs")


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    parts = [f"cpu: {cpu}, {os.cpu_count()} logical cores",
             f"os: {platform.system()} {platform.release()}",
             f"python {platform.python_version()}, numpy {np.__version__}, "
             f"numba {numba.__version__} ({numba.config.NUMBA_NUM_THREADS} threads), "
             f"torch {torch.__version__ if torch else 'not installed'}"
             + (f" ({torch.get_num_threads()} threads)" if torch else ""),
             f"date: {datetime.date.today().isoformat()}"]
    return parts


def bench(fn, repeat, min_time=0.05):
    fn()  # warm up: compile / load the kernel, touch the memory
    n = 1
    while True:
        t = timeit.timeit(fn, number=n)
        if t >= min_time or n >= 1 << 20:
            break
        n *= 4
    times = [timeit.timeit(fn, number=n) / n for _ in range(repeat)]
    return float(np.min(times)) * 1e6, float(np.median(times)) * 1e6


def np_softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def cases():
    rng = np.random.default_rng(0)
    f32 = np.float32
    x1m = rng.standard_normal(1_000_000).astype(f32)
    y1m = rng.standard_normal(1_000_000).astype(f32)
    t1m = rng.uniform(0, 1, 1_000_000).astype(f32)
    x1k = rng.standard_normal(1_000).astype(f32)
    logits = rng.standard_normal((4096, 1000)).astype(f32)
    labels = rng.integers(0, 1000, 4096)
    xbn = rng.standard_normal((8192, 256)).astype(f32)
    rm, rv = rng.standard_normal(256).astype(f32), rng.uniform(0.5, 2, 256).astype(f32)
    w, b = rng.standard_normal(256).astype(f32), rng.standard_normal(256).astype(f32)
    xl = rng.standard_normal((1024, 512)).astype(f32)
    wl = rng.standard_normal((256, 512)).astype(f32)
    bl = rng.standard_normal(256).astype(f32)
    p1 = rng.standard_normal((16384, 128)).astype(f32)
    p2 = rng.standard_normal((16384, 128)).astype(f32)
    T = torch.from_numpy if torch else None

    def row(case, nb, npy, th_args, th):
        out = [(case, "nbops", nb), (case, "numpy", npy)]
        if torch:
            targs = [T(a) if isinstance(a, np.ndarray) else a for a in th_args]
            out.append((case, "torch", lambda: th(*targs)))
        return out

    c = []
    c += row("relu, 1e3 float32", lambda: nbops.relu(x1k), lambda: np.maximum(x1k, 0),
             [x1k], lambda t: F.relu(t))
    c += row("relu, 1e6 float32", lambda: nbops.relu(x1m), lambda: np.maximum(x1m, 0),
             [x1m], lambda t: F.relu(t))
    c += row("sigmoid, 1e6 float32", lambda: nbops.sigmoid(x1m),
             lambda: 1 / (1 + np.exp(-x1m)), [x1m], lambda t: torch.sigmoid(t))
    c += row("softplus, 1e6 float32", lambda: nbops.softplus(x1m),
             lambda: np.logaddexp(x1m, f32(0)), [x1m], lambda t: F.softplus(t))
    c += row("tanh, 1e6 float32", lambda: nbops.tanh(x1m), lambda: np.tanh(x1m),
             [x1m], lambda t: torch.tanh(t))
    c += row("softmax, (4096, 1000) float32", lambda: nbops.softmax(logits, axis=-1),
             lambda: np_softmax(logits), [logits], lambda t: F.softmax(t, dim=-1))
    c += row("log_softmax, (4096, 1000) float32", lambda: nbops.log_softmax(logits, axis=-1),
             lambda: np_log_softmax(logits), [logits], lambda t: F.log_softmax(t, dim=-1))
    c += row("cross_entropy, (4096, 1000) float32",
             lambda: nbops.cross_entropy(logits, labels),
             lambda: -np_log_softmax(logits)[np.arange(4096), labels].mean(),
             [logits, labels], lambda t, y: F.cross_entropy(t, y))
    c += row("batch_norm eval, (8192, 256) float32",
             lambda: nbops.batch_norm(xbn, rm, rv, w, b),
             lambda: (xbn - rm) / np.sqrt(rv + f32(1e-5)) * w + b,
             [xbn, rm, rv, w, b], lambda x, m, v, ww, bb: F.batch_norm(x, m, v, ww, bb))
    c += row("linear, (1024, 512) x (256, 512)", lambda: nbops.linear(xl, wl, bl),
             lambda: xl @ wl.T + bl, [xl, wl, bl], lambda x, ww, bb: F.linear(x, ww, bb))
    c += row("mse_loss, 1e6 float32", lambda: nbops.mse_loss(x1m, y1m),
             lambda: np.mean((x1m - y1m) ** 2), [x1m, y1m], lambda a, b: F.mse_loss(a, b))
    c += row("bce_with_logits, 1e6 float32",
             lambda: nbops.binary_cross_entropy_with_logits(x1m, t1m),
             lambda: np.mean(np.maximum(x1m, 0) - x1m * t1m + np.log1p(np.exp(-np.abs(x1m)))),
             [x1m, t1m], lambda a, b: F.binary_cross_entropy_with_logits(a, b))
    c += row("pairwise_distance, (16384, 128) float32",
             lambda: nbops.pairwise_distance(p1, p2),
             lambda: np.sqrt(((p1 - p2 + f32(1e-6)) ** 2).sum(axis=-1)),
             [p1, p2], lambda a, b: F.pairwise_distance(a, b))
    return c


# --- the njit guide's fusion example -------------------------------------------
@njit(parallel=True)
def fused(x, slope, out):
    for i in prange(x.size):
        out[i] = scalar.sigmoid(scalar.leaky_relu(x[i], slope))
    return out


@njit(parallel=True)
def fused_loss(x, y, slope):
    # mse_loss(sigmoid(leaky_relu(x, slope)), y) in one pass, no temporaries
    s = np.float32(0.0)
    for i in prange(x.size):
        d = scalar.sigmoid(scalar.leaky_relu(x[i], slope)) - y[i]
        s += d * d
    return s / np.float32(x.size)


@njit(parallel=True, fastmath={"reassoc"})
def fused_loss_reassoc(x, y, slope):
    # the same, allowing LLVM to reorder the sum (so that the loop vectorizes)
    s = np.float32(0.0)
    for i in prange(x.size):
        d = scalar.sigmoid(scalar.leaky_relu(x[i], slope)) - y[i]
        s += d * d
    return s / np.float32(x.size)


def fusion_cases(n):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.uniform(0, 1, n).astype(np.float32)
    out = np.empty_like(x)
    tmp = np.empty_like(x)
    slope = np.float32(0.1)
    np.testing.assert_allclose(fused(x, slope, out), nbops.sigmoid(nbops.leaky_relu(x, 0.1)),
                               rtol=1e-6)
    return [
        ("sigmoid(leaky_relu(x)), two nbops calls",
         lambda: nbops.sigmoid(nbops.leaky_relu(x, 0.1))),
        ("sigmoid(leaky_relu(x)), two nbops calls with out=",
         lambda: nbops.sigmoid(nbops.leaky_relu(x, 0.1, out=tmp), out=out)),
        ("sigmoid(leaky_relu(x)), one fused prange loop", lambda: fused(x, slope, out)),
        ("sigmoid(leaky_relu(x)), NumPy",
         lambda: 1 / (1 + np.exp(-np.where(x > 0, x, slope * x)))),
        ("mse_loss(sigmoid(leaky_relu(x)), y), three nbops calls",
         lambda: nbops.mse_loss(nbops.sigmoid(nbops.leaky_relu(x, 0.1)), y)),
        ("mse_loss(sigmoid(leaky_relu(x)), y), fused map + nbops.mse_loss",
         lambda: nbops.mse_loss(fused(x, slope, out), y)),
        ("mse_loss(sigmoid(leaky_relu(x)), y), one fused reduction loop",
         lambda: fused_loss(x, y, slope)),
        ("mse_loss(sigmoid(leaky_relu(x)), y), one fused loop, fastmath reassoc",
         lambda: fused_loss_reassoc(x, y, slope)),
    ]


def write(path, header, rows, fields):
    with open(path, "w", encoding="utf-8") as f:
        for line in header:
            f.write(f"# {line}\n")
        f.write(",".join(fields) + "\n")
        for r in rows:
            f.write(",".join(f'"{v}"' if "," in str(v) else str(v) for v in r) + "\n")
    print("wrote", os.path.relpath(path))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", choices=["benchmarks", "fusion"])
    ap.add_argument("--out", default=DOCS)
    ap.add_argument("--note", default="",
                    help="a line about the machine for the files' headers (e.g. 'shared VM')")
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for Numba and PyTorch (default: their own defaults); "
                         "the docs' tables use --threads 1, which a busy shared machine "
                         "disturbs far less than multi-threaded runs")
    args = ap.parse_args(argv)
    if args.threads and torch is not None:
        torch.set_num_threads(args.threads)
    repeat = 3 if args.quick else args.repeat
    header = machine() + ([f"note: {args.note}"] if args.note else [])
    for line in header:
        print(line)
    if args.only != "fusion":
        rows = []
        for case, lib, fn in cases():
            best, med = bench(fn, repeat)
            print(f"{case:45s} {lib:6s} {best:12.1f} us (median {med:.1f})")
            rows.append((case, lib, f"{best:.2f}", f"{med:.2f}"))
        write(os.path.join(args.out, "benchmarks.csv"), header, rows,
              ["case", "library", "best_us", "median_us"])
    if args.only != "benchmarks":
        n = 10_000_000
        rows = []
        for case, fn in fusion_cases(n):
            best, med = bench(fn, repeat)
            print(f"{case:60s} {best / 1e3:9.2f} ms (median {med / 1e3:.2f})")
            rows.append((case, f"{best / 1e3:.2f}", f"{med / 1e3:.2f}"))
        write(os.path.join(args.out, "fusion.csv"),
              header + [f"n = {n:,} float32 elements"], rows,
              ["case", "best_ms", "median_ms"])


if __name__ == "__main__":
    main()
