"""glu, rrelu (training) and gumbel_softmax, forward and backward, vs PyTorch (CPU), one run.

Usage::

    python tools/measure_glu.py [--ops glu rrelu gumbel] [--float64] [--rounds N] [--threads N]

glu (the default of ``--ops``) is timed at (8192, 1024) and (65536, 128) along
the last axis and at (64, 256, 32, 32) along axis 1, in float32 and float64
(the float64 rows always: glu's targets name them), forward and backward, each
allocating and into a preallocated output (nbops' ``out=``, PyTorch's
``aten.glu.out`` / ``aten.glu_backward.grad_input``). The backward is
``aten.glu_backward`` alone. nbops and PyTorch calls alternate (A B A B ...)
over ``--rounds`` rounds (default 25), so both see the same load; the table
gives the median and the best time of each (ms) and the ratio of the medians
nbops / PyTorch (and of the best times).

rrelu and gumbel_softmax (``--ops rrelu gumbel``, float32 unless ``--float64``)
are timed at (8192, 1024), allocating, best of 15 each: the backwards alone,
``aten.rrelu_with_noise_backward`` with the noise of one forward, and autograd's
backward over a graph retained from one forward for gumbel_softmax. nbops'
rrelu and gumbel_softmax backwards regenerate their random numbers from the
seed (PyTorch reads what its forward stored), or, for gumbel_softmax with
``y_soft=``, take the forward's soft sample.

The machine's load average is printed first and last: the figures are only
comparable within one run.
"""

import argparse
import os
import statistics
import time

import numba
import numpy as np
import torch

import nbops


def best(fn, repeat=15):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def alternate(ours, theirs, rounds):
    """Median and best (ms) of ``ours`` and ``theirs``, called in turn ``rounds`` times."""
    ours(), theirs()
    a, b = [], []
    for _ in range(rounds):
        for fn, times in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return (statistics.median(a) * 1e3, min(a) * 1e3,
            statistics.median(b) * 1e3, min(b) * 1e3)


#: (shape, axis) of the glu cases.
GLU_CASES = [((8192, 1024), -1), ((65536, 128), -1), ((64, 256, 32, 32), 1)]


def glu_calls(shape, axis, dtype, rng):
    """(name, nbops call, PyTorch call) of glu's forward and backward, allocating and
    into preallocated outputs, at ``shape`` along ``axis``."""
    x = rng.standard_normal(shape).astype(dtype)
    out_shape = list(shape)
    out_shape[axis] //= 2
    g = rng.standard_normal(out_shape).astype(dtype)
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    y, ty = np.empty(out_shape, dtype), torch.empty(out_shape, dtype=tx.dtype)
    gi, tgi = np.empty(shape, dtype), torch.empty(shape, dtype=tx.dtype)
    aten = torch.ops.aten
    return [
        ("glu", lambda: nbops.glu(x, axis), lambda: torch.nn.functional.glu(tx, axis)),
        ("glu out=", lambda: nbops.glu(x, axis, out=y),
         lambda: aten.glu.out(tx, axis, out=ty)),
        ("glu_backward", lambda: nbops.glu_backward(g, x, axis),
         lambda: aten.glu_backward(tg, tx, axis)),
        ("glu_backward out=", lambda: nbops.glu_backward(g, x, axis, out=gi),
         lambda: aten.glu_backward.grad_input(tg, tx, axis, grad_input=tgi)),
    ]


def measure_glu(rounds):
    rng = np.random.default_rng(0)
    print(f"{'glu call':34s} {'dtype':8s} {'nbops med':>9s} {'best':>7s} "
          f"{'torch med':>9s} {'best':>7s} {'ratio':>6s} {'best':>6s}")
    for dtype in (np.float32, np.float64):
        for shape, axis in GLU_CASES:
            for name, ours, theirs in glu_calls(shape, axis, dtype, rng):
                om, ob, tm, tb = alternate(ours, theirs, rounds)
                label = f"{name} {shape} axis {axis}"
                print(f"{label:34s} {np.dtype(dtype).name:8s} {om:9.3f} {ob:7.3f} "
                      f"{tm:9.3f} {tb:7.3f} {om / tm:6.2f} {ob / tb:6.2f}", flush=True)


def measure_random_ops(ops, shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    rows = []
    if "rrelu" in ops:
        noise = torch.empty_like(tx)
        torch.ops.aten.rrelu_with_noise(tx, noise, 1 / 8, 1 / 3, True)
        rows += [("rrelu train fwd", best(lambda: nbops.rrelu(x, training=True, rng=1)),
                  best(lambda: torch.nn.functional.rrelu(tx, training=True))),
                 ("rrelu train bwd",
                  best(lambda: nbops.rrelu_backward(g, x, training=True, rng=1)),
                  best(lambda: torch.ops.aten.rrelu_with_noise_backward(
                      tg, tx, noise, 1 / 8, 1 / 3, True, False)))]
    if "gumbel" in ops:
        ax = tx.clone().requires_grad_()
        y = torch.nn.functional.gumbel_softmax(ax)
        rows += [("gumbel_softmax fwd", best(lambda: nbops.gumbel_softmax(x, rng=1)),
                  best(lambda: torch.nn.functional.gumbel_softmax(tx))),
                 ("gumbel_softmax hard", best(lambda: nbops.gumbel_softmax(x, hard=True, rng=1)),
                  best(lambda: torch.nn.functional.gumbel_softmax(tx, hard=True))),
                 ("gumbel_softmax bwd", best(lambda: nbops.gumbel_softmax_backward(g, x, rng=1)),
                  best(lambda: torch.autograd.grad(y, (ax,), tg, retain_graph=True)))]
        ys = nbops.gumbel_softmax(x, rng=1)
        rows += [("gumbel bwd y_soft=",
                  best(lambda: nbops.gumbel_softmax_backward(g, x, y_soft=ys)),
                  best(lambda: torch.autograd.grad(y, (ax,), tg, retain_graph=True)))]
    for name, ours, theirs in rows:
        print(f"{name:20s} {str(shape):13s} {np.dtype(dtype).name:8s} nbops {ours:8.3f} ms  "
              f"torch {theirs:8.3f} ms  ratio {ours / theirs:5.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="+", default=["glu"], choices=["glu", "rrelu", "gumbel"])
    parser.add_argument("--float64", action="store_true",
                        help="rrelu and gumbel_softmax in float64 too")
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of both libraries (default: their own defaults); "
                             "1 compares the kernels alone, without thread wake-up, "
                             "which dominates on a loaded machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
        numba.set_num_threads(args.threads)
    print(f"threads: torch {torch.get_num_threads()}, numba {numba.get_num_threads()}; "
          f"load average "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    if "glu" in args.ops:
        measure_glu(args.rounds)
    rng = np.random.default_rng(0)
    if {"rrelu", "gumbel"} & set(args.ops):
        for dtype in [np.float32] + ([np.float64] if args.float64 else []):
            measure_random_ops(args.ops, (8192, 1024), dtype, rng)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
