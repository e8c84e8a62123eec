#!/usr/bin/env python
"""Large allocating calls with and without nbops' cache of output blocks.

For each op, at the performance table's large size in float32, times in one
process, alternating: the allocating call with the cache of blocks
(:mod:`nbops._memory`, the default), the same call with the cache turned off
(every result a fresh ``np.empty``), the ``out=`` call, and PyTorch's call
(where installed). Medians and minima over the rounds, in milliseconds::

    python tools/measure_output_cache.py
    python tools/measure_output_cache.py --threads 1 --rounds 15 --ops relu softmax

The figures and what they mean are in docs/guides/performance.rst ("Large
results from reused blocks").
"""

import argparse
import os
import time

import numpy as np

import nbops
from nbops import _config


def cases(rng):
    flat = rng.standard_normal(10**7).astype(np.float32)
    rows = rng.standard_normal((65536, 128)).astype(np.float32)
    ones = np.ones(128, np.float32)
    zeros = np.zeros(128, np.float32)
    return {
        "relu": (lambda out=None: nbops.relu(flat, out=out), flat,
                 lambda t: t["torch"].relu(t["flat"])),
        "sigmoid": (lambda out=None: nbops.sigmoid(flat, out=out), flat,
                    lambda t: t["torch"].sigmoid(t["flat"])),
        "softmax": (lambda out=None: nbops.softmax(rows, axis=1, out=out), rows,
                    lambda t: t["torch"].softmax(t["rows"], 1)),
        "layer_norm": (lambda out=None: nbops.layer_norm(rows, (128,), out=out), rows,
                       lambda t: t["F"].layer_norm(t["rows"], (128,))),
        "batch_norm": (lambda out=None: nbops.batch_norm(rows, zeros, ones, out=out), rows,
                       lambda t: t["F"].batch_norm(t["rows"], t["zeros"], t["ones"])),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ops", nargs="+")
    ap.add_argument("--rounds", type=int, default=11)
    ap.add_argument("--calls", type=int, default=5, help="calls per timed sample")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import numba

    numba.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    table = cases(rng)
    tt = None
    try:
        import torch

        torch.set_num_threads(args.threads)
        tt = {"torch": torch, "F": torch.nn.functional}
    except ImportError:
        pass
    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.1f}; ms, median / min")
    print(f"{'op':12s} {'cache':>14s} {'no cache':>14s} {'out=':>14s} {'PyTorch':>14s}")
    cache_bytes = _config.OUTPUT_CACHE_BYTES
    for name, (call, x, torch_call) in table.items():
        if args.ops and name not in args.ops:
            continue
        if tt is not None:
            tt["flat"] = tt["torch"].from_numpy(table["relu"][1])
            tt["rows"] = tt["torch"].from_numpy(table["softmax"][1])
            tt["zeros"] = tt["torch"].zeros(128)
            tt["ones"] = tt["torch"].ones(128)
        out = np.empty_like(x)
        variants = {"cache": call, "no cache": call,
                    "out=": lambda call=call, out=out: call(out=out)}
        if tt is not None:
            variants["PyTorch"] = lambda torch_call=torch_call: torch_call(tt)
        times = {k: [] for k in variants}
        for k, f in variants.items():
            _config.OUTPUT_CACHE_BYTES = 0 if k == "no cache" else cache_bytes
            f()
        for _ in range(args.rounds):
            for k, f in variants.items():
                _config.OUTPUT_CACHE_BYTES = 0 if k == "no cache" else cache_bytes
                start = time.perf_counter()
                for _ in range(args.calls):
                    f()
                times[k].append((time.perf_counter() - start) / args.calls * 1e3)
            time.sleep(0.1)
        _config.OUTPUT_CACHE_BYTES = cache_bytes
        cells = [f"{np.median(v):6.2f} / {min(v):5.2f}" for v in times.values()]
        print(f"{name:12s} " + " ".join(f"{c:>14s}" for c in cells), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
