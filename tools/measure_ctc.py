"""ctc_loss beside PyTorch CPU: the cases of asv_bench/benchmarks/backward_ctc.py.

Run from the repository root: ``python tools/measure_ctc.py [--rounds 7]``.
For each size and dtype, the libraries alternate round after round and the
fastest round of each call is printed (forward, backward alone, forward plus
backward) with the ratio nbops / torch. Thread counts are Numba's and
PyTorch's defaults (set ``NUMBA_NUM_THREADS`` and ``OMP_NUM_THREADS`` to change
them).
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "asv_bench"))

from benchmarks.backward_ctc import SIZES, CTCLoss  # noqa: E402

CALLS = ("forward", "backward", "both")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    import numba
    import torch

    print(f"Numba threads {numba.get_num_threads()}, PyTorch threads {torch.get_num_threads()}")
    for size in SIZES:
        for dtype in ("float32", "float64"):
            cases = {}
            for library in ("nbops", "torch"):
                cases[library] = CTCLoss()
                cases[library].setup(size, dtype, library)
            best = {(lib, call): float("inf") for lib in cases for call in CALLS}
            for _ in range(args.rounds):
                for lib, case in cases.items():
                    for call in CALLS:
                        t0 = time.perf_counter()
                        getattr(case, call)()
                        best[lib, call] = min(best[lib, call], time.perf_counter() - t0)
            for call in CALLS:
                nb, th = best["nbops", call], best["torch", call]
                print(f"T,N,C,S={size} {dtype} {call:8s} nbops {nb * 1e3:8.2f} ms  "
                      f"torch {th * 1e3:8.2f} ms  ratio {nb / th:.2f}")


if __name__ == "__main__":
    main()
