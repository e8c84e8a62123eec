#!/usr/bin/env python
"""cosine_similarity, normalize, pdist and cdist, forward and backward, beside PyTorch CPU.

The figures of docs/guides/performance.rst ("Similarities and distances of issue 16").
Each call is timed alone (best of ``--repeat`` runs, after one warm-up call); the
backwards beside ``torch.autograd.grad`` of the same op minus its forward (the
graph rebuilt each time, as a training step does). Run with the threads you
compare (``NUMBA_NUM_THREADS=2 python tools/measure_similarity.py --threads 2``).
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)

    def arr(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    x, y = arr(65536, 128), arr(65536, 128)
    a, b = arr(4096, 128), arr(4096, 128)
    pin = arr(2048, 64)
    gc, gn, gd = arr(65536), arr(65536, 128), arr(4096, 4096)
    gp = arr(2048 * 2047 // 2)
    cd = nbops.cdist(a, b)

    def grad(fwd, inputs, g):
        ts = [torch.from_numpy(v).requires_grad_() for v in inputs]
        return lambda: torch.autograd.grad(fwd(*ts), ts, torch.from_numpy(g))

    t = torch.from_numpy
    cases = [
        ("cosine_similarity (65536, 128)", lambda: nbops.cosine_similarity(x, y),
         lambda: F.cosine_similarity(t(x), t(y)), None),
        ("cosine_similarity_backward (65536, 128)",
         lambda: nbops.cosine_similarity_backward(gc, x, y),
         grad(F.cosine_similarity, (x, y), gc), lambda: F.cosine_similarity(t(x), t(y))),
        ("normalize (65536, 128)", lambda: nbops.normalize(x),
         lambda: F.normalize(t(x)), None),
        ("normalize_backward (65536, 128)", lambda: nbops.normalize_backward(gn, x),
         grad(F.normalize, (x,), gn), lambda: F.normalize(t(x))),
        ("cdist (4096, 128) x (4096, 128)", lambda: nbops.cdist(a, b),
         lambda: torch.cdist(t(a), t(b)), None),
        ("cdist_backward (4096, 128) x (4096, 128)",
         lambda: nbops.cdist_backward(gd, a, b, output=cd),
         grad(torch.cdist, (a, b), gd), lambda: torch.cdist(t(a), t(b))),
        ("pdist (2048, 64)", lambda: nbops.pdist(pin), lambda: F.pdist(t(pin)), None),
        ("pdist_backward (2048, 64)", lambda: nbops.pdist_backward(gp, pin),
         grad(F.pdist, (pin,), gp), lambda: F.pdist(t(pin))),
    ]
    print(f"{'call (float32)':45s} {'nbops ms':>9s} {'torch ms':>9s} {'ratio':>6s}")
    for name, ours, theirs, their_forward in cases:
        tn = best(ours, args.repeat)
        tt = best(theirs, args.repeat)
        if their_forward is not None:
            tt -= best(their_forward, args.repeat)
        print(f"{name:45s} {tn * 1e3:9.1f} {tt * 1e3:9.1f} {tn / tt:6.2f}")


if __name__ == "__main__":
    main()
