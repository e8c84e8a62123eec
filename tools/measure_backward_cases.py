#!/usr/bin/env python
"""Backward-table cases beside PyTorch's backward alone, before/after (issue 14).

The cases are those of ``asv_bench/benchmarks/every_backward.py`` (the same
arguments and the same three calls as its ``setup``: nbops allocating, nbops
into ``out=``, and ``torch.autograd.grad`` over a graph built once, the
forward not timed). Each source tree of ``--trees`` (default: this checkout)
runs in its own process with its own ``asv_bench``, the trees alternating,
``--repeat`` times, on each thread count of ``--threads`` (Numba's and
PyTorch's). In a process the three calls alternate (reversed every other
round) over ``--rounds`` rounds. Printed per case: the median and [minimum]
milliseconds per call and nbops / PyTorch of the medians (allocating /
``out=``), with the load average at the start::

    python tools/measure_backward_cases.py --threads 1 2 --rounds 15
    python tools/measure_backward_cases.py --trees /tmp/base . \\
        --cases local_response_norm_backward cdist_backward

A baseline tree: ``git archive <rev> | tar -x -C /tmp/base``.
"""

import argparse
import inspect
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: the cases of the table above 1.0 in issue 14's float32 run at 3a25772
CASES = ["local_response_norm_backward", "cdist_backward", "gumbel_softmax_backward",
         "multilabel_soft_margin_loss_backward"]


def measure(case, dtype, rounds, threads):
    """{library: [seconds per call of each round]} of one case."""
    import numba
    import numpy as np
    import torch

    from asv_bench.benchmarks import every_backward as eb

    numba.set_num_threads(threads)
    torch.set_num_threads(threads)
    spec = eb.ALL_CASES[case].build(dtype)
    calls = {}
    function, args, kwargs = spec.nbops()
    calls["nbops"] = lambda: function(*args, **kwargs)
    if "out" in inspect.signature(function).parameters:
        out = eb._preallocated(function, args, kwargs, False)
        if out is not None:
            calls["nbops_out"] = lambda: function(*args, out=out, **kwargs)
    forward, arguments, diff, grad = spec.torch()
    tensors = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in arguments]
    for i in diff:
        tensors[i] = tensors[i].detach().requires_grad_()
    leaves = [tensors[i] for i in diff]
    output = forward(*tensors)
    tg = None if grad is None else torch.from_numpy(grad)
    calls["torch"] = lambda: torch.autograd.grad(output, leaves, tg, retain_graph=True)
    for fn in calls.values():
        fn()
        fn()
    times = {name: [] for name in calls}
    order = list(calls)
    for r in range(rounds):
        for name in (order if r % 2 == 0 else order[::-1]):
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def _child(argv):
    case, dtype, rounds, threads = argv[0], argv[1], int(argv[2]), int(argv[3])
    print(json.dumps(measure(case, dtype, rounds, threads)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", nargs="*", default=[ROOT])
    parser.add_argument("--cases", nargs="*", default=CASES)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--threads", nargs="*", type=int, default=[1, 2])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    for threads in args.threads:
        for case in args.cases:
            res = {tree: {} for tree in args.trees}
            load = os.getloadavg()[0]
            for _ in range(args.repeat):
                for tree in args.trees:
                    env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
                    cmd = [sys.executable, os.path.abspath(__file__), "--child", case,
                           args.dtype, str(args.rounds), str(threads)]
                    text = subprocess.run(cmd, env=env, cwd=os.path.abspath(tree), check=True,
                                          capture_output=True, text=True).stdout
                    for name, ts in json.loads(text.strip().splitlines()[-1]).items():
                        res[tree].setdefault(name, []).extend(ts)
            load = f"{load:.1f}-{os.getloadavg()[0]:.1f}"
            for tree, times in res.items():
                med = {n: statistics.median(t) * 1e3 for n, t in times.items()}
                cells = "  ".join(f"{n} {med[n]:8.2f} [{min(t) * 1e3:8.2f}]"
                                  for n, t in times.items())
                ratio = " / ".join(f"{med[n] / med['torch']:.2f}" for n in times
                                   if n != "torch")
                print(f"{case:38s} {threads}t load {load}  {os.path.basename(tree) or tree}: "
                      f"{cells}  ratio {ratio}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2:])
    else:
        main()
