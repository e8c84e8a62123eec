#!/usr/bin/env python
"""One optimizer step, nbops.optim beside torch.optim on the CPU, and the copy baseline.

Runs the cases of asv_bench/benchmarks/optim.py (Adam and SGD with momentum,
10 million float32 parameters and the demo MLP's), alternating the libraries
round after round (a burst of load hits all of them) and keeping each one's
fastest round. Prints the times, nbops' ratio to PyTorch's fastest path and,
at 10M, the share of the copy bandwidth (``np.copyto`` of as many bytes as the
step moves) that nbops reaches.

    python tools/measure_optim.py [--rounds N]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from asv_bench.benchmarks.optim import LIBRARIES, OptimizerStep  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    import numba
    import torch
    print(f"numba threads {numba.get_num_threads()}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()}")
    for size, repeat in (("10M", 1), ("demo_mlp", 200)):
        for optimizer in ("adam", "sgd_momentum"):
            fns = {}
            for library in LIBRARIES:
                bench = OptimizerStep()
                try:
                    bench.setup(size, optimizer, library)
                except NotImplementedError:
                    continue
                fns[library] = bench.fn
            best = dict.fromkeys(fns, float("inf"))
            for _ in range(args.rounds):
                for library, fn in fns.items():
                    t0 = time.perf_counter()
                    for _ in range(repeat):
                        fn()
                    best[library] = min(best[library], (time.perf_counter() - t0) / repeat)
            for library, t in best.items():
                print(f"{size:9s} {optimizer:13s} {library:14s} {t * 1e3:9.3f} ms")
            fastest = min(t for lib, t in best.items() if lib.startswith("torch"))
            line = f"{size} {optimizer}: nbops / torch's fastest = {best['nbops'] / fastest:.2f}x"
            if "copy" in best:
                line += f", copy bandwidth share = {best['copy'] / best['nbops']:.0%}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
