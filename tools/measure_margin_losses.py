#!/usr/bin/env python
"""multi_margin_loss and multilabel_margin_loss on (65536, 128) float32 beside
PyTorch CPU.

Runs the cases of asv_bench/benchmarks/margin_losses_issue17.py: the value, the
value with the gradient (``nbops.<loss>_with_grad`` against PyTorch's forward plus
backward) and the backward alone (against autograd over a kept graph), reduction
'mean', alternating the libraries round after round (a burst of load hits both)
and keeping each one's fastest round.

    python tools/measure_margin_losses.py [--rounds N]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from asv_bench.benchmarks.margin_losses_issue17 import CASES, ClassMarginLoss  # noqa: E402


def _fastest(runs, rounds):
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(rounds):
        for library, fn in runs.items():
            t0 = time.perf_counter()
            fn()
            best[library] = min(best[library], time.perf_counter() - t0)
    return (f"{best['nbops'] * 1e3:6.1f} vs {best['torch'] * 1e3:6.1f} ms "
            f"({best['nbops'] / best['torch']:.2f}x)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    import numba
    import torch
    print(f"numba threads {numba.get_num_threads()}, torch threads {torch.get_num_threads()}, "
          "(65536, 128) float32, reduction 'mean'")
    modes = ("value", "with_grad", "backward")
    print(f"{'case':28s} " + " ".join(f"{m:>26s}" for m in modes))
    for case in sorted(CASES):
        cells = []
        for mode in modes:
            runs = {}
            for library in ("nbops", "torch"):
                bench = ClassMarginLoss()
                bench.setup(case, mode, library)
                runs[library] = bench.fn
            cells.append(_fastest(runs, args.rounds))
        print(f"{case:28s} " + " ".join(f"{c:>26s}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
