#!/usr/bin/env python
"""alpha_dropout, feature_alpha_dropout and dropout1d, forward and backward, beside PyTorch CPU.

The figures of docs/guides/performance.rst ("Alpha dropout and dropout1d"). Each
call is timed alone (best of ``--repeat`` runs, after one warm-up call) on 1e7
float32 elements; the backwards beside ``torch.autograd.grad`` over a graph kept
from one forward (``retain_graph=True``: PyTorch's backward alone, reading its
stored noise), nbops' regenerating the mask from the seed. Run with the threads
you compare (``NUMBA_NUM_THREADS=2 python tools/measure_alpha_dropout.py --threads 2``).
"""

import argparse
import time

import numpy as np
import torch

import nbops

F = torch.nn.functional


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(name, shape, rng, repeat):
    """Print the forward (allocating and into ``out=``) and backward rows of one op."""
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    fn, bw, tfn = getattr(nbops, name), getattr(nbops, f"{name}_backward"), getattr(F, name)
    tx = torch.from_numpy(x)
    txg = torch.from_numpy(x.copy()).requires_grad_()
    ty = tfn(txg, 0.5, True)
    tg = torch.from_numpy(g)
    out = np.empty_like(x)
    cases = [
        (f"{name} {shape}", lambda: fn(x, 0.5, True, rng=1), lambda: tfn(tx, 0.5, True)),
        (f"{name} {shape} out=", lambda: fn(x, 0.5, True, rng=1, out=out),
         lambda: tfn(tx, 0.5, True)),
        (f"{name}_backward {shape}", lambda: bw(g, 0.5, True, rng=1),
         lambda: torch.autograd.grad(ty, txg, tg, retain_graph=True)),
    ]
    for label, ours, theirs in cases:
        tn, tt = best(ours, repeat), best(theirs, repeat)
        print(f"{label:52s} {tn * 1e3:9.1f} {tt * 1e3:9.1f} {tn / tt:6.2f}", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"{'call (float32, p=0.5)':52s} {'nbops ms':>9s} {'torch ms':>9s} {'ratio':>6s}")
    for name, shape in [("alpha_dropout", (10_000_000,)),
                        ("feature_alpha_dropout", (64, 64, 2441)),
                        ("feature_alpha_dropout", (256, 64, 8, 76)),
                        ("dropout1d", (64, 64, 2441))]:
        measure(name, shape, rng, args.repeat)


if __name__ == "__main__":
    main()
