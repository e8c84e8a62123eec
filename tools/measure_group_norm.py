"""group_norm / instance_norm forward and backward vs PyTorch (CPU, float32), one run.

Usage: ``python tools/measure_group_norm.py``; prints the best of several
repeats (ms) and the ratio nbops / torch for each call at (64, 256, 32, 32):
group_norm with 32 groups and instance_norm (the input's statistics), with
weight and bias. The backward is timed alone: torch's
``aten.native_group_norm_backward`` on the statistics of one forward (with a
group per channel for instance_norm: the same computation).
"""

import time

import numba
import numpy as np
import torch

import nbops

SHAPE = (64, 256, 32, 32)


def best(fn, repeat=15):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def measure(instance, x, g, w, b):
    """[(name, nbops ms, torch ms)] of the forward and the backward."""
    n, c = x.shape[:2]
    hw = x.size // (n * c)
    groups = c if instance else 32
    tx, tg, tw, tb = (torch.from_numpy(a) for a in (x, g, w, b))
    if instance:
        name = "instance_norm"
        _, mean, rstd = nbops.instance_norm(x, None, None, w, b, return_stats=True)
        ours = (lambda: nbops.instance_norm(x, None, None, w, b),
                lambda: nbops.instance_norm_backward(g, x, mean, rstd, w))
        torch_forward = lambda: torch.nn.functional.instance_norm(tx, None, None, tw, tb)  # noqa: E731
    else:
        name = "group_norm"
        _, mean, rstd = nbops.group_norm(x, groups, w, b, return_stats=True)
        ours = (lambda: nbops.group_norm(x, groups, w, b),
                lambda: nbops.group_norm_backward(g, x, groups, mean, rstd, w))
        torch_forward = lambda: torch.nn.functional.group_norm(tx, groups, tw, tb)  # noqa: E731
    _, tm, tr = torch.ops.aten.native_group_norm(tx, tw, tb, n, c, hw, groups, 1e-5)
    return [(name, best(ours[0]), best(torch_forward)),
            (name + "_backward", best(ours[1]),
             best(lambda: torch.ops.aten.native_group_norm_backward(
                 tg, tx, tm, tr, tw, n, c, hw, groups, [True, True, True])))]


def main():
    rng = np.random.default_rng(0)
    print(f"threads: nbops {numba.get_num_threads()}, torch {torch.get_num_threads()}")
    x = rng.standard_normal(SHAPE, dtype=np.float32)
    g = rng.standard_normal(SHAPE, dtype=np.float32)
    w = rng.standard_normal(SHAPE[1], dtype=np.float32)
    b = rng.standard_normal(SHAPE[1], dtype=np.float32)
    for name, ours, theirs in measure(False, x, g, w, b) + measure(True, x, g, w, b):
        print(f"{name:24s} {str(SHAPE):18s} nbops {ours:8.2f} ms  torch {theirs:8.2f} ms"
              f"  ratio {ours / theirs:5.2f}")


if __name__ == "__main__":
    main()
