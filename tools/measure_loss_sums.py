#!/usr/bin/env python
"""The loss cells of the performance table that issue 13's loss-sum work targets,
nbops beside PyTorch on a chosen number of threads each.

Each cell is a case of ``asv_bench/benchmarks/every_op.py`` (its exact arguments,
default reduction 'mean'), timed as ``tools/measure_overhead.py --cases`` times
it: the public call (``nbops``), its kernel launches replayed without any
Python-side work (``kernel``) and ``torch.nn.functional``, alternated over
``--rounds`` rounds of ~10 ms batches; medians in microseconds per call (minima
in brackets), ``ratio`` nbops / torch::

    python tools/measure_loss_sums.py --threads 1 [--rounds 20] [--cells mse_loss:medium]
    python tools/measure_loss_sums.py --threads 2

``--threads`` sets ``NUMBA_NUM_THREADS`` and ``torch.set_num_threads`` alike
(the table runs 2 each). A cell is ``op:size[:dtype]`` (both dtypes when the
dtype is left out).
"""

import argparse
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: the cells above 1.0 in docs/perf_table.csv when this tool was written
CELLS = ["mse_loss:medium", "huber_loss:medium", "smooth_l1_loss:medium",
         "smooth_l1_loss:small:float64", "l1_loss:medium", "soft_margin_loss:medium",
         "gaussian_nll_loss:medium", "margin_ranking_loss:medium", "margin_ranking_loss:small",
         "multilabel_soft_margin_loss:medium", "multilabel_soft_margin_loss:small",
         "triplet_margin_loss:small", "nll_loss:medium"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--cells", nargs="+", default=CELLS)
    args = parser.parse_args(argv)
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, ROOT)
    spec = importlib.util.spec_from_file_location(
        "_measure_overhead", os.path.join(ROOT, "tools", "measure_overhead.py"))
    overhead = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(overhead)

    load = os.getloadavg()
    print(f"threads {args.threads} each; load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}; medians over {args.rounds} alternated rounds [minima], us")
    print(f"{'op':<28} {'size':<7} {'dtype':<8} {'nbops':>17} {'kernel':>17} {'torch':>17} "
          f"{'ratio':>6} {'kernel ratio':>12}")
    for cell in args.cells:
        op, size, *dtype = cell.split(":")
        for dt in dtype or ["float32", "float64"]:
            m = overhead.measure_case(op, size, dt, args.rounds)

            def fmt(name, m=m):
                if name not in m:
                    return f"{'-':>17}"
                return f"{m[name][0]:8.2f} [{m[name][1]:6.2f}]"

            t = m["torch"][0]
            kr = f"{m['kernel'][0] / t:12.2f}" if "kernel" in m else f"{'-':>12}"
            print(f"{op:<28} {size:<7} {dt:<8} {fmt('nbops')} {fmt('kernel')} {fmt('torch')} "
                  f"{m['nbops'][0] / t:6.2f} {kr}", flush=True)
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
