"""glu, rrelu (training) and gumbel_softmax, forward and backward, vs PyTorch (CPU), one run.

Usage: ``python tools/measure_glu.py [--float64]``; prints the best of several
repeats (ms) and the ratio nbops / torch for each op and direction at
(8192, 1024). The backwards are timed alone: torch's ``aten.glu_backward``,
``aten.rrelu_with_noise_backward`` with the noise of one forward, and autograd's
backward over a graph retained from one forward for gumbel_softmax. nbops'
rrelu and gumbel_softmax backwards regenerate their random numbers from the
seed (PyTorch reads what its forward stored), or, for gumbel_softmax with
``y_soft=``, take the forward's soft sample.
"""

import sys
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


def measure(shape, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    gh = np.ascontiguousarray(g[..., :shape[-1] // 2])
    tx, tg, tgh = (torch.from_numpy(a) for a in (x, g, gh))
    rows = [("glu fwd", best(lambda: nbops.glu(x)), best(lambda: torch.nn.functional.glu(tx))),
            ("glu bwd", best(lambda: nbops.glu_backward(gh, x)),
             best(lambda: torch.ops.aten.glu_backward(tgh, tx, -1)))]
    noise = torch.empty_like(tx)
    torch.ops.aten.rrelu_with_noise(tx, noise, 1 / 8, 1 / 3, True)
    rows += [("rrelu train fwd", best(lambda: nbops.rrelu(x, training=True, rng=1)),
              best(lambda: torch.nn.functional.rrelu(tx, training=True))),
             ("rrelu train bwd",
              best(lambda: nbops.rrelu_backward(g, x, training=True, rng=1)),
              best(lambda: torch.ops.aten.rrelu_with_noise_backward(tg, tx, noise, 1 / 8,
                                                                    1 / 3, True, False)))]
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
    rng = np.random.default_rng(0)
    print(f"threads: torch {torch.get_num_threads()}")
    dtypes = [np.float32] + ([np.float64] if "--float64" in sys.argv else [])
    for dtype in dtypes:
        measure((8192, 1024), dtype, rng)


if __name__ == "__main__":
    main()
