"""local_response_norm and bilinear, forward and backward, vs PyTorch (CPU, float32), one run.

Usage: ``python tools/measure_lrn_bilinear.py``; prints the best of several
repeats (ms) and the ratio nbops / torch for each call: local_response_norm
with size 5 at (32, 64, 56, 56), bilinear with a bias at 4096 rows of (64, 64)
features to 64 outputs. The backward is timed alone: ``torch.autograd.grad``
over a graph kept from one forward (``retain_graph=True``).
"""

import time

import numba
import numpy as np
import torch

import nbops

LRN_SHAPE = (32, 64, 56, 56)
BILINEAR = (4096, 64, 64, 64)  # rows, in1, in2, out


def best(fn, repeat=10):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def main():
    rng = np.random.default_rng(0)
    print(f"threads: nbops {numba.get_num_threads()}, torch {torch.get_num_threads()}")
    rows = []
    x = rng.standard_normal(LRN_SHAPE, dtype=np.float32)
    g = rng.standard_normal(LRN_SHAPE, dtype=np.float32)
    tx = torch.from_numpy(x).requires_grad_()
    ty = torch.nn.functional.local_response_norm(tx, 5)
    tg = torch.from_numpy(g)
    rows.append((f"local_response_norm size=5 {LRN_SHAPE}",
                 best(lambda: nbops.local_response_norm(x, 5)),
                 best(lambda: torch.nn.functional.local_response_norm(tx.detach(), 5))))
    rows.append(("local_response_norm_backward",
                 best(lambda: nbops.local_response_norm_backward(g, x, 5)),
                 best(lambda: torch.autograd.grad(ty, (tx,), tg, retain_graph=True))))
    n, n1, n2, n_out = BILINEAR
    x1 = rng.standard_normal((n, n1), dtype=np.float32)
    x2 = rng.standard_normal((n, n2), dtype=np.float32)
    w = rng.standard_normal((n_out, n1, n2), dtype=np.float32)
    b = rng.standard_normal(n_out, dtype=np.float32)
    gb = rng.standard_normal((n, n_out), dtype=np.float32)
    ts = [torch.from_numpy(a).requires_grad_() for a in (x1, x2, w, b)]
    by = torch.nn.functional.bilinear(*ts)
    plain = [t.detach() for t in ts]
    rows.append((f"bilinear {n}x({n1},{n2})->{n_out}",
                 best(lambda: nbops.bilinear(x1, x2, w, b)),
                 best(lambda: torch.nn.functional.bilinear(*plain))))
    tgb = torch.from_numpy(gb)
    rows.append(("bilinear_backward",
                 best(lambda: nbops.bilinear_backward(gb, x1, x2, w, b)),
                 best(lambda: torch.autograd.grad(by, ts, tgb, retain_graph=True))))
    for name, ours, theirs in rows:
        print(f"{name:48s} {ours:8.1f} {theirs:8.1f} {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
