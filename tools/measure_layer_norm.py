"""layer_norm / rms_norm forward and backward vs PyTorch (CPU, float32), one run.

Usage: ``python tools/measure_layer_norm.py``; prints the best of several
repeats (ms) and the ratio nbops / torch for each op, size and direction.
The backward is timed alone: torch's ``aten.native_layer_norm_backward`` and,
for rms_norm, autograd's backward with the forward excluded.
"""

import time

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


def measure(shape, rng):
    """Print the four rows (ms, ratio) of one shape."""
    d = shape[-1]
    x = rng.standard_normal(shape, dtype=np.float32)
    g = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal(d, dtype=np.float32)
    b = rng.standard_normal(d, dtype=np.float32)
    tx, tg, tw, tb = (torch.from_numpy(a) for a in (x, g, w, b))
    rows = []
    # layer_norm forward
    rows.append(("layer_norm fwd", best(lambda: nbops.layer_norm(x, d, w, b)),
                 best(lambda: torch.nn.functional.layer_norm(tx, (d,), tw, tb))))
    _, mean, rstd = nbops.layer_norm(x, d, w, b, return_stats=True)
    _, tmean, trstd = torch.ops.aten.native_layer_norm(tx, [d], tw, tb, 1e-5)
    rows.append(("layer_norm bwd",
                 best(lambda: nbops.layer_norm_backward(g, x, d, mean, rstd, w)),
                 best(lambda: torch.ops.aten.native_layer_norm_backward(
                     tg, tx, [d], tmean, trstd, tw, tb, [True, True, True]))))
    rows.append(("rms_norm fwd", best(lambda: nbops.rms_norm(x, d, w)),
                 best(lambda: torch.nn.functional.rms_norm(tx, (d,), tw))))
    _, r = nbops.rms_norm(x, d, w, return_stats=True)

    def torch_rms_backward():
        ax = tx.detach().requires_grad_()
        aw = tw.detach().requires_grad_()
        y = torch.nn.functional.rms_norm(ax, (d,), aw)
        t0 = time.perf_counter()
        y.backward(tg)
        return time.perf_counter() - t0

    torch_rms_backward()
    t_rms = min(torch_rms_backward() for _ in range(15)) * 1e3
    rows.append(("rms_norm bwd", best(lambda: nbops.rms_norm_backward(g, x, d, r, w)),
                 t_rms))
    for name, ours, theirs in rows:
        print(f"{name:15s} {str(shape):13s} nbops {ours:8.3f} ms  torch {theirs:8.3f} ms"
              f"  ratio {ours / theirs:5.2f}")



def main():
    rng = np.random.default_rng(0)
    print(f"threads: torch {torch.get_num_threads()}")
    for shape in [(8192, 1024), (65536, 128)]:
        measure(shape, rng)


if __name__ == "__main__":
    main()
