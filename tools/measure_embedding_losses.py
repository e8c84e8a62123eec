"""Time the embedding losses of issue 17 beside PyTorch CPU at (65536, 128) float32
(reduction 'mean'): the value, and the value with the inputs' gradients (nbops'
``_with_grad``; PyTorch's forward plus ``backward()``). Median of ``--repeat``
runs after a warm-up call. Run: ``python tools/measure_embedding_losses.py``."""

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

import nbops

SHAPE = (65536, 128)


def median_ms(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x1 = rng.standard_normal(SHAPE).astype(np.float32)
    x2 = rng.standard_normal(SHAPE).astype(np.float32)
    x3 = rng.standard_normal(SHAPE).astype(np.float32)
    sign = np.where(rng.uniform(size=SHAPE[0]) < 0.5, -1, 1).astype(np.float32)
    cases = [("cosine_embedding_loss", (x1, x2, sign), 2, {"margin": 0.1}),
             ("triplet_margin_loss", (x1, x1 + 0.5 * x2, x3), 3, {}),
             ("triplet_margin_loss", (x1, x1 + 0.5 * x2, x3), 3, {"swap": True}),
             ("triplet_margin_with_distance_loss", (x1, x1 + 0.5 * x2, x3), 3, {})]
    print(f"threads: nbops/numba {nbops._config.threads_now()}, torch {torch.get_num_threads()}")
    for name, arrays, n_diff, kw in cases:
        measure(name, arrays, n_diff, kw, args.repeat)


def measure(name, arrays, n_diff, kw, repeat):
    fn, wg, tfn = getattr(nbops, name), getattr(nbops, name + "_with_grad"), getattr(F, name)
    targs = [torch.from_numpy(a) for a in arrays]
    tdiff = [t.clone().requires_grad_() if i < n_diff else t for i, t in enumerate(targs)]

    def torch_both():
        for t in tdiff[:n_diff]:
            t.grad = None
        tfn(*tdiff, **kw).backward()

    value = (median_ms(lambda: fn(*arrays, **kw), repeat),
             median_ms(lambda: tfn(*targs, **kw), repeat))
    both = (median_ms(lambda: wg(*arrays, **kw), repeat), median_ms(torch_both, repeat))
    label = name + "".join(f" {k}={v}" for k, v in kw.items())
    print(f"{label:48s} value {value[0]:7.1f} vs {value[1]:7.1f} ms "
          f"({value[0] / value[1]:.2f}x)   with_grad {both[0]:7.1f} vs {both[1]:7.1f} ms "
          f"({both[0] / both[1]:.2f}x)")

if __name__ == "__main__":
    main()
