#!/usr/bin/env python
"""The losses of issue 17 at 10 million float32 elements beside PyTorch CPU.

Runs the cases of asv_bench/benchmarks/losses_issue17.py: the value
(``nbops.<loss>`` against ``torch.nn.functional.<loss>``) and the value with the
gradient (``nbops.<loss>_with_grad`` against PyTorch's forward plus backward),
reduction 'mean', alternating the libraries round after round (a burst of load
hits both) and keeping each one's fastest round; then the (65536, 128) cases of
``PairLoss17`` (margin_ranking_loss, gaussian_nll_loss with a variance per row,
multilabel_soft_margin_loss with a per-class weight) the same way.

    python tools/measure_losses_issue17.py [--rounds N] [--size N]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from asv_bench.benchmarks.losses_issue17 import (  # noqa: E402
    CASES,
    Loss17,
    Loss17WithGrad,
    PairLoss17,
)


def _fastest(runs, rounds):
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for library, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[library] = min(best[library], time.perf_counter() - t0)
    return (f"{best['nbops'] * 1e3:7.1f} ms vs {best['torch'] * 1e3:7.1f} ms "
            f"({best['nbops'] / best['torch']:.2f}x)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--size", type=int, default=10_000_000)
    args = ap.parse_args()
    import numba
    import torch
    print(f"numba threads {numba.get_num_threads()}, torch threads {torch.get_num_threads()}, "
          f"size {args.size}, float32, reduction 'mean'")
    print(f"{'case':28s} {'value':>36s} {'value with gradient':>36s}")
    for case in sorted(CASES):
        cells = []
        for cls in (Loss17, Loss17WithGrad):
            runs = {}
            for library in ("nbops", "torch"):
                bench = cls()
                bench.setup(case, args.size, "float32", library)
                runs[library] = bench.fn
            cells.append(_fastest(runs, args.rounds))
        print(f"{case:28s} {cells[0]:>36s} {cells[1]:>36s}", flush=True)
    print("(65536, 128) float32, reduction 'mean'")
    for loss in PairLoss17.params[0]:
        cells = []
        for mode in PairLoss17.params[1]:
            runs = {}
            for library in ("nbops", "torch"):
                bench = PairLoss17()
                bench.setup(loss, mode, library)
                runs[library] = bench.fn
            cells.append(_fastest(runs, args.rounds))
        print(f"{loss:28s} {cells[0]:>36s} {cells[1]:>36s}", flush=True)


if __name__ == "__main__":
    main()
