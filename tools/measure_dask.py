#!/usr/bin/env python
"""Throughput of nbops on dask arrays against the same op in memory.

An elementwise op (``relu``) and ``cross_entropy`` (class indices, 'mean') over an
``(N, C)`` float32 array of ``--elements`` elements split by rows into chunks of
``--chunk`` elements, computed with dask's threaded scheduler; beside it the
in-memory nbops call on the whole array. The dask input is an in-memory array
wrapped with ``da.from_array`` (so the figure is nbops + dask's scheduling, not
I/O). Figures are the best of ``--repeat`` runs (the in-memory call and the dask
one alternated), in elements per second.

    python tools/measure_dask.py [--elements 4e7] [--chunk 1e6] [--classes 100]
    python tools/measure_dask.py --workers 2     # the threaded scheduler's threads

relu is timed four ways: ``.compute()`` (dask's concatenation of the chunks'
results into a new array), ``da.store`` into a new array, and ``out=`` (each
chunk's kernel writing into its region of the caller's array) into a new array
against the in-memory call's new result, then into an array already mapped
(``out=`` on both sides).

``--split-rows`` instead times the row ops whose rows are split across chunks
(layer_norm, rms_norm, softmax, log_softmax, normalize, cosine_similarity over
the last axis of a ``--shape`` float32 array in ``--split-chunks`` chunks: the
two-pass paths of nbops/_dask.py with nbops/_ops/split_rows.py's kernels):

    python tools/measure_dask.py --split-rows [--shape 4000,2048] [--split-chunks 1000,1024]
        [--ops layer_norm,rms_norm]

``--split-blocks`` times the per-block work of those paths without dask (one
block's partial and finish, nbops/_dask.py's block functions):

    python tools/measure_dask.py --split-blocks [--shape 4000,2048] [--split-chunks 2000,1024]

The in-memory call and the dask one alternate over ``--repeat`` rounds (A B A B
...); the figures are the minima.

``--relu-breakdown`` times the parts of relu's dask computation apart (graph
construction, the chunks alone, the concatenation, stores into new and into
already-mapped memory, the same chunks in a plain loop without dask):

    python tools/measure_dask.py --relu-breakdown --elements 4e8 --chunk 1e7 --repeat 2
"""

import argparse
import os
import time

import numpy as np


def _best(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _alternate(mem, lazy, repeat):
    """Minimum times of ``mem`` and ``lazy``, run alternately ``repeat`` times each."""
    tm, tl = [], []
    for _ in range(repeat):
        tm.append(_best(mem, 1))
        tl.append(_best(lazy, 1))
    return min(tm), min(tl)


def split_rows(args):
    import dask
    import dask.array as da

    import nbops

    shape = tuple(int(s) for s in args.shape.split(","))
    chunks = tuple(int(s) for s in args.split_chunks.split(","))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    y = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal(shape[-1], dtype=np.float32)
    dx = da.from_array(x, chunks=chunks)
    dy = da.from_array(y, chunks=chunks)
    sched = {"scheduler": "threads"}
    if args.workers:
        sched["num_workers"] = args.workers
    ns = (shape[-1],)
    cases = {
        "layer_norm": (lambda a: nbops.layer_norm(a, ns, w, w)),
        "rms_norm": (lambda a: nbops.rms_norm(a, ns, w)),
        "softmax": (lambda a, **kw: nbops.softmax(a, axis=-1, **kw)),
        "log_softmax": (lambda a, **kw: nbops.log_softmax(a, axis=-1, **kw)),
        "normalize": (lambda a: nbops.normalize(a, 2.0, -1)),
        "cosine_similarity": (lambda a, b=None: nbops.cosine_similarity(
            a, y if b is None else b, -1)),
    }
    print(f"{shape} float32, chunks {chunks} ({dx.npartitions} chunks, the last axis in "
          f"{len(dx.chunks[-1])} pieces), threaded scheduler "
          f"({args.workers or 'default'} workers), minima of {args.repeat} alternated rounds")
    n = x.size
    if args.ops:
        cases = {k: v for k, v in cases.items() if k in args.ops.split(",")}
    for name, fn in cases.items():
        def graph(fn=fn, name=name):
            return fn(dx, dy) if name == "cosine_similarity" else fn(dx)

        def lazy(graph=graph):
            return graph().compute(**sched)

        def store(graph=graph):
            g = graph()
            da.store(g, np.empty(g.shape, g.dtype), **sched)

        def mem(fn=fn):
            return fn(x)

        expected, got = mem(), lazy()  # compile / warm up
        store()
        err = float(np.max(np.abs(got.astype(np.float64) - expected)))
        tm, tl = _alternate(mem, lazy, args.repeat)
        tm2, ts = _alternate(mem, store, args.repeat)
        tm = min(tm, tm2)
        line = (f"{name:18s} in memory {n / tm / 1e9:5.2f} G el/s   dask .compute() "
                f"{n / tl / 1e9:5.2f} (ratio {tm / tl:4.2f})   da.store {n / ts / 1e9:5.2f} "
                f"(ratio {tm / ts:4.2f})")
        if name in ("softmax", "log_softmax"):  # out=: the finish writes into the array
            def into(fn=fn):
                with dask.config.set(**sched):
                    fn(dx, out=np.empty_like(x))

            into()
            tm3, to = _alternate(mem, into, args.repeat)
            line += f"   out= {n / to / 1e9:5.2f} (ratio {min(tm, tm3) / to:4.2f})"
        print(f"{line}   max |dask - in memory| {err:.1e}")


def split_blocks(args):
    """The per-block work of the split-row paths without dask: the partial and the
    finish of one block, a column slice of a C array (a row piece of ``--shape``'s
    first ``--split-chunks``), as dask's threads call them (nbops/_dask.py's block
    functions, one thread each: they run serial kernels)."""
    from nbops import _dask as D

    shape = tuple(int(s) for s in args.shape.split(","))
    rows, piece = (int(s) for s in args.split_chunks.split(","))
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape, dtype=np.float32)
    y = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal(shape[-1], dtype=np.float32)
    a, b = x[:rows, :piece], y[:rows, :piece]  # a block: rows at a stride of shape[-1]
    info = {0: {"array-location": [(0, rows), (0, piece)]}}
    mean = np.zeros((rows, 1))
    rstd = np.ones((rows, 1))
    norm = np.ones((rows, 1))
    f32 = np.dtype(np.float32)
    cases = {
        "layer_norm": (lambda: D._row_stats_partial(a, 1, True),
                       lambda: D._ln_finish(a, mean, rstd, w, w, 1, f32, f32, True,
                                            block_info=info)),
        "rms_norm": (lambda: D._row_stats_partial(a, 1, False),
                     lambda: D._ln_finish(a, mean, rstd, w, None, 1, f32, f32, False,
                                          block_info=info)),
        "normalize": (lambda: D._pnorm_partial(a, 1, 2.0),
                      lambda: D._normalize_finish(a, norm, 1e-12, f32, 1)),
        "cosine_similarity": (lambda: D._dot3_partial(a, b, 1), None),
    }
    if args.ops:
        cases = {k: v for k, v in cases.items() if k in args.ops.split(",")}
    print(f"one ({rows}, {piece}) float32 block of a {shape} array, minima of "
          f"{args.repeat} alternated rounds, load average {os.getloadavg()}")
    fns = [f for pair in cases.values() for f in pair if f is not None]
    for f in fns:
        f()  # compile / load
    best = [float("inf")] * len(fns)
    for _ in range(args.repeat):
        for i, f in enumerate(fns):
            best[i] = min(best[i], _best(f, 1))
    n = rows * piece
    i = 0
    for name, (_, finish) in cases.items():
        line = f"{name:18s} partial {best[i] * 1e3:7.2f} ms ({n / best[i] / 1e9:5.2f} G el/s)"
        i += 1
        if finish is not None:
            line += f"   finish {best[i] * 1e3:7.2f} ms ({n / best[i] / 1e9:5.2f} G el/s)"
            i += 1
        print(line)


def relu_breakdown(args):
    """Where relu's dask time goes: the parts of ``relu(dx).compute()`` timed apart."""
    import dask
    import dask.array as da

    import nbops

    C = args.classes
    N = int(args.elements) // C
    rows = max(int(args.chunk) // C, 1)
    x = np.random.default_rng(0).standard_normal((N, C), dtype=np.float32)
    dx = da.from_array(x, chunks=(rows, C))
    slices = [slice(i, i + rows) for i in range(0, N, rows)]
    sched = {"scheduler": "threads"}
    if args.workers:
        sched["num_workers"] = args.workers
    nbops.relu(dx[:2 * rows]).compute(**sched)  # compile / warm up
    ready = np.empty_like(x)
    ready[...] = 0  # an output whose pages are already mapped
    r = nbops.relu(dx)
    pieces = r.to_delayed().ravel().tolist()
    parts = dask.compute(*pieces, **sched)
    cases = [
        ("in memory: relu(x) (a new output)", lambda: nbops.relu(x)),
        ("in memory: relu(x, out=<mapped array>)", lambda: nbops.relu(x, out=ready)),
        ("dask graph: nbops.relu(dx), built only", lambda: nbops.relu(dx)),
        ("loop, no dask: relu(x[s]) per chunk (new outputs)",
         lambda: [nbops.relu(x[s]) for s in slices]),
        ("loop, no dask: relu(x[s], out=<mapped>[s])",
         lambda: [nbops.relu(x[s], out=ready[s]) for s in slices]),
        ("dask: the chunks' results only (no concatenation)",
         lambda: dask.compute(*pieces, **sched)),
        ("numpy: np.concatenate of the chunks' results", lambda: np.concatenate(parts)),
        ("dask: relu(dx).compute()", lambda: r.compute(**sched)),
        ("dask: da.store(relu(dx), np.empty_like(x))",
         lambda: da.store(r, np.empty_like(x), **sched)),
        ("dask: da.store(relu(dx), <mapped array>)", lambda: da.store(r, ready, **sched)),
        ("dask without nbops: dx.map_blocks(np.maximum, 0).compute()",
         lambda: dx.map_blocks(np.maximum, np.float32(0)).compute(**sched)),
    ]
    print(f"relu of {N} x {C} float32, chunks of {rows} rows ({dx.npartitions} chunks), "
          f"threaded scheduler ({args.workers or 'default'} workers), best of "
          f"{args.repeat} rounds (cases alternated)")
    best = [float("inf")] * len(cases)
    for _ in range(args.repeat):
        for i, (_, fn) in enumerate(cases):
            best[i] = min(best[i], _best(fn, 1))
    for (name, _), sec in zip(cases, best, strict=True):
        print(f"{name:62s} {sec * 1e3:8.1f} ms")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--elements", type=float, default=4e7)
    ap.add_argument("--chunk", type=float, default=1e6)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--workers", type=int, default=None,
                    help="threads of dask's threaded scheduler (default: its own)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--split-rows", action="store_true",
                    help="time the row ops with rows split across chunks instead")
    ap.add_argument("--relu-breakdown", action="store_true",
                    help="time the parts of relu's dask computation instead")
    ap.add_argument("--shape", default="4000,2048", help="--split-rows: the array's shape")
    ap.add_argument("--split-chunks", default="1000,1024", help="--split-rows: its chunks")
    ap.add_argument("--split-blocks", action="store_true",
                    help="the split-row paths' per-block partial and finish, without dask")
    ap.add_argument("--ops", default=None,
                    help="--split-rows: only these ops (comma-separated names)")
    args = ap.parse_args()
    print("load average (1, 5, 15 min): " + " ".join(f"{v:.2f}" for v in os.getloadavg()))
    if args.split_blocks:
        split_blocks(args)
        return
    if args.split_rows:
        split_rows(args)
        return
    if args.relu_breakdown:
        relu_breakdown(args)
        return

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

    ready = np.zeros_like(x)  # an output whose pages are already mapped
    cases = {
        "relu": (lambda: nbops.relu(x),
                 lambda: nbops.relu(dx).compute(**sched)),
        # the dask result stored chunk by chunk into a preallocated array (no
        # final concatenation): what a pipeline writing to disk would pay
        "relu (da.store)": (lambda: nbops.relu(x),
                            lambda: da.store(nbops.relu(dx), np.empty_like(x), **sched)),
        # out=: each chunk's kernel writes into its region of the caller's array
        # (no chunk results, no concatenation); a new array against the in-memory
        # call's new result, then an array already mapped on both sides
        "relu (out=new)": (lambda: nbops.relu(x),
                           lambda: nbops.relu(dx, out=np.empty_like(x))),
        "relu (out=mapped)": (lambda: nbops.relu(x, out=ready),
                              lambda: nbops.relu(dx, out=ready)),
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
            tm, tl = _alternate(mem, lazy, args.repeat)
            n = N * C
            print(f"{name:18s} in memory {n / tm / 1e9:6.2f} G el/s   dask {n / tl / 1e9:6.2f} "
                  f"G el/s   ratio {tm / tl:5.2f}")


if __name__ == "__main__":
    main()
