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

The backward table's cases of these losses (``asv_bench/benchmarks/every_backward.py``,
the large size; PyTorch: the backward alone over a kept graph, or forward plus
backward for a ``_with_grad``), nbops beside PyTorch alike::

    python tools/measure_loss_sums.py --threads 1 --backward [--dtypes float32]
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
    parser.add_argument("--backward", nargs="*", metavar="CASE",
                        help="the backward table's cases (default: those of these losses)")
    parser.add_argument("--dtypes", nargs="+", default=["float32"],
                        help="dtypes of --backward")
    args = parser.parse_args(argv)
    os.environ["NUMBA_NUM_THREADS"] = str(args.threads)
    import torch

    torch.set_num_threads(args.threads)
    sys.path.insert(0, ROOT)
    spec = importlib.util.spec_from_file_location(
        "_measure_overhead", os.path.join(ROOT, "tools", "measure_overhead.py"))
    overhead = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(overhead)

    if args.backward is not None:
        return _backward(args, overhead)
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


BACKWARD = [f"{op}_{kind}" for op in
            ("mse_loss", "huber_loss", "smooth_l1_loss", "l1_loss", "soft_margin_loss",
             "gaussian_nll_loss", "margin_ranking_loss", "multilabel_soft_margin_loss")
            for kind in ("backward", "with_grad")]


def _backward(args, overhead):
    import statistics
    import timeit

    from asv_bench.benchmarks import every_backward as EB

    bench = EB.EveryBackward()
    load = os.getloadavg()
    print(f"threads {args.threads} each; load average {load[0]:.1f} {load[1]:.1f} "
          f"{load[2]:.1f}; medians over {args.rounds} alternated rounds [minima], ms")
    print(f"{'case':<40} {'dtype':<8} {'nbops':>17} {'torch':>17} {'ratio':>6}")
    for case in args.backward or BACKWARD:
        for dtype in args.dtypes:
            fns = []
            for library in ("nbops", "torch"):
                bench.setup(case, dtype, library)
                fns.append(bench.fn)
            number = max(1, timeit.Timer(fns[0]).autorange()[0] // 20)
            times = ([], [])
            for r in range(args.rounds):
                order = (0, 1) if r % 2 == 0 else (1, 0)
                for i in order:
                    times[i].append(overhead._batch(fns[i], number) / 1e3)
            med = [statistics.median(t) for t in times]
            print(f"{case:<40} {dtype:<8} {med[0]:8.2f} [{min(times[0]):6.2f}] "
                  f"{med[1]:8.2f} [{min(times[1]):6.2f}] {med[0] / med[1]:6.2f}", flush=True)
    load = os.getloadavg()
    print(f"load average at the end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


if __name__ == "__main__":
    main()
