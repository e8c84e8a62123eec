#!/usr/bin/env python
"""Throughput of nbops on dask arrays against the same op in memory.

An elementwise op (``relu``) and ``cross_entropy`` (class indices, 'mean') over an
``(N, C)`` float32 array of ``--elements`` elements split by rows into chunks of
``--chunk`` elements, computed with dask's threaded scheduler; beside it the
in-memory nbops call on the whole array. The dask input is an in-memory array
wrapped with ``da.from_array`` (so the figure is nbops + dask's scheduling, not
I/O). Figures are the best of ``--repeat`` runs, in elements per second.

    python tools/measure_dask.py [--elements 4e7] [--chunk 1e6] [--classes 100]
    python tools/measure_dask.py --workers 2     # the threaded scheduler's threads
"""

import argparse
import time

import numpy as np


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=float, default=4e7)
    ap.add_argument("--chunk", type=float, default=1e6)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--workers", type=int, default=None,
                    help="threads of dask's threaded scheduler (default: its own)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    import dask
    import dask.array as da

    import nbops

    C = args.classes
    N = int(args.elements) // C
    rows = max(int(args.chunk) // C, 1)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C), dtype=np.float32)
    t = rng.integers(0, C, N)
    dx = da.from_array(x, chunks=(rows, C))
    dt = da.from_array(t, chunks=rows)
    sched = {"scheduler": "threads"}
    if args.workers:
        sched["num_workers"] = args.workers

    cases = {
        "relu": (lambda: nbops.relu(x),
                 lambda: nbops.relu(dx).compute(**sched)),
        # the dask result stored chunk by chunk into a preallocated array (no
        # final concatenation): what a pipeline writing to disk would pay
        "relu (da.store)": (lambda: nbops.relu(x),
                            lambda: da.store(nbops.relu(dx), np.empty_like(x), **sched)),
        "cross_entropy": (lambda: nbops.cross_entropy(x, t),
                          lambda: nbops.cross_entropy(dx, dt).compute(**sched)),
    }
    print(f"{N} x {C} float32 ({N * C:.2e} elements), chunks of {rows} x {C} "
          f"({dx.npartitions} chunks), threaded scheduler "
          f"({args.workers or 'default'} workers)")
    with dask.config.set(**sched):
        for name, (mem, lazy) in cases.items():
            mem()
            lazy()  # compile / warm up
            tm = _best(mem, args.repeat)
            tl = _best(lazy, args.repeat)
            n = N * C
            print(f"{name:18s} in memory {n / tm / 1e9:6.2f} G el/s   dask {n / tl / 1e9:6.2f} "
                  f"G el/s   ratio {tm / tl:5.2f}")


if __name__ == "__main__":
    main()
