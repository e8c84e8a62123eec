#!/usr/bin/env python
"""One training step (forward, backward, Adam) beside PyTorch, as in issue 15's targets.

    python tools/measure_training.py [--threads N]

The demo MLP (``python -m nbops``: Linear(16, 64), BatchNorm1d, ReLU,
Dropout(0.2), Linear(64, 4), CrossEntropyLoss) at batch 256, and a
784-1024-1024-10 MLP with BatchNorm1d and Dropout at batch 512, float32, Adam;
the input is data (nbops: ``needs_input_grad=False``; torch: an input that does
not require grad). Best of 7 rounds; nbops and torch timed one after the other
with a pause between (each keeps its threads spinning for a while). With
``--threads N`` both use N threads (Numba's ``set_num_threads``, torch's
``set_num_threads``).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "asv_bench"))

from benchmarks.training import MODELS, TrainingStep  # noqa: E402


def best(fn, calls, rounds=7):
    for _ in range(3):
        fn()
    t = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        t = min(t, (time.perf_counter() - t0) / calls)
    return t

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    import numba
    import torch
    if args.threads:
        numba.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    for model in MODELS:
        times = {}
        for library in ("nbops", "torch"):
            bench = TrainingStep()
            bench.setup(model, library)
            time.sleep(0.3)
            times[library] = best(bench.step, 200 if model == "demo_mlp" else 3)
        print(f"{model}: nbops {times['nbops'] * 1e3:.3f} ms, torch {times['torch'] * 1e3:.3f} ms, "
              f"ratio {times['nbops'] / times['torch']:.2f}")

if __name__ == "__main__":
    main()
