#!/usr/bin/env python
"""The normalization cells of the performance table, nbops beside PyTorch.

Each cell calls the arguments of ``asv_bench/benchmarks/every_op.py``'s case
(``docs/perf_table.csv``'s op, size and dtype; any op of that file, e.g.
``normalize``, ``prelu``, ``leaky_relu``), alternating nbops allocating,
nbops into ``out=`` and PyTorch over ``--rounds`` rounds (each a timed batch of
calls, the order reversed every other round, with ``--pause`` ms between
batches: Numba's and PyTorch's OpenMP pools both spin a while after a parallel
call), and prints the median (``--best``: the best round) per call in
microseconds, ``--minima`` also the best round in brackets, and the ratios to
PyTorch (the table's ``ratio`` and ``ratio_out``)::

    python tools/measure_norm_cells.py [--ops batch_norm layer_norm] [--sizes medium]
        [--dtypes float32] [--rounds 15] [--threads 1] [--best] [--minima] [--kernels]
        [--pause 2] [--nbops-path DIR]

Besides the table's cells, ``layer_norm_affine`` and ``rms_norm_affine`` are
layer_norm with weight and bias and rms_norm with weight (of ones and zeros)
on the same inputs. ``--kernels`` adds the compiled kernels of the call alone
(replayed through their entry points, serial on one thread, parallel on more;
layer_norm, rms_norm and batch_norm): the call's time without its Python side.
``--nbops-path DIR`` imports nbops from DIR (e.g. a ``git archive`` of an older
commit) instead of this checkout: run both, one after the other, for a
before/after comparison.

Alternating the three libraries in one process keeps the load of a shared
machine out of the ratios as far as it can be; say ``uptime``'s load next to
the figures. ``--threads 1`` runs both libraries on one thread
(``numba.set_num_threads`` and ``torch.set_num_threads``): the kernels' own cost,
less disturbed by other processes on a loaded machine than a parallel launch,
which waits for its slowest thread; on one thread the figures are the
process's CPU time, not wall time.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

OPS = ("batch_norm", "batch_norm_eval", "layer_norm", "rms_norm", "group_norm",
       "instance_norm", "local_response_norm")
#: Cells beside the table's: the op with its affine parameters.
AFFINE = {"layer_norm_affine": "layer_norm", "rms_norm_affine": "rms_norm"}


def _case(op, size, dtype):
    """(nbops function, torch function, args, kwargs) of a cell."""
    from asv_bench.benchmarks import every_op

    function, torch_name, build = every_op.CASES[AFFINE.get(op, op)]
    args, kwargs = build(size, dtype)
    if op in AFFINE:
        n = args[0].shape[-1]
        args = args + ((np.ones(n, dtype),) + ((np.zeros(n, dtype),) if op == "layer_norm_affine"
                                               else ()))
    return function, getattr(every_op.F, torch_name), args, kwargs, every_op._torch_args


def _kernels(op, args, kwargs):
    """The call's kernel launches replayed through their compiled entry points
    (serial or parallel as :func:`nbops._launch.launch` picks), or None."""
    import nbops._launch as L

    x = args[0]
    dt = x.dtype
    if op in ("layer_norm", "rms_norm", "layer_norm_affine", "rms_norm_affine"):
        from nbops._ops import layer_norm as LN

        name = AFFINE.get(op, op)
        n = x.shape[-1]
        rows = x.size // n
        w = args[2] if len(args) > 2 else np.ones(n, dt)
        b = args[3] if len(args) > 3 else np.zeros(n, dt)
        eps = 1e-5 if name == "layer_norm" else float(np.finfo(dt).eps)
        launches = [(LN._forward_serial, LN._forward_parallel, (name, dt.char, True), x.size,
                     (x.reshape(-1), n, name == "layer_norm", w, b, eps, LN._SCRATCH,
                      np.empty(rows), np.empty(rows), np.empty(x.size, dt)))]
    elif op in ("batch_norm", "batch_norm_eval"):
        from nbops._ops import normalization as N

        if x.ndim != 2:
            return None
        n_outer, c = x.shape
        flat = x.reshape(-1)
        mean, var = np.zeros(c), np.ones(c)
        launches = []
        if op == "batch_norm":
            tile_c, rows, n_blocks, n_tiles = N._stats_plan(n_outer, c, 1)
            launches.append((N._stats_serial, N._stats_parallel, ("bn_stats", dt.char, True),
                             x.size, (flat, n_outer, 1, tile_c, rows, n_tiles,
                                      np.empty((n_blocks, c)), np.empty((n_blocks, c)),
                                      N._SCRATCH, np.empty(c), np.empty(c), np.empty(c), False,
                                      0.1, mean, var)))
        per_position = 1 < N._PER_POSITION  # an (N, C) input: one value per channel run
        launches.append((N._normalize_serial, N._normalize_parallel,
                         ("bn_normalize", dt.char, True, per_position), x.size,
                         (flat, c, 1, True if per_position else None, mean, var,
                          np.ones(c), np.zeros(c), 1e-5, np.empty((4, c), dt),
                          np.empty(x.size, dt))))
    elif op == "normalize" and x.ndim == 2:
        from nbops._ops import similarity as SIM

        launches = [(SIM._normalize_forward_serial, SIM._normalize_forward_parallel,
                     ("normalize", dt.char), x.size * 2,
                     (x.reshape(-1), x.shape[-1], 2.0, 0, 1e-12, np.empty(x.size, dt)))]
    else:
        return None
    import numba

    parallel = numba.get_num_threads() > 1
    calls = []
    for serial, par, key, n, a in launches:
        kernel = par if parallel and n >= L.parallel_from(serial, key) else serial
        calls.append((L.entry_point(kernel, key, a), a))

    def run():
        for fn, a in calls:
            fn(*a)
    return run


def _calls(op, size, dtype, kernels=False):
    function, tfn, args, kwargs, torch_args = _case(op, size, dtype)
    targs, tkw = torch_args(args, kwargs)
    out = np.empty_like(function(*args, **kwargs))
    calls = {"nbops": lambda: function(*args, **kwargs),
             "nbops_out": lambda: function(*args, out=out, **kwargs),
             "torch": lambda: tfn(*targs, **tkw)}
    run = _kernels(op, args, kwargs) if kernels else None
    if run is not None:
        calls["kernels"] = run
    return calls


#: The clock: wall time, or with ``--threads 1`` the process's CPU time (the
#: time other processes hold the core is not counted).
CLOCK = [time.perf_counter]


def _batch(fn, number):
    t0 = CLOCK[0]()
    for _ in range(number):
        fn()
    return (CLOCK[0]() - t0) / number * 1e6


def measure(op, size, dtype, rounds, pick=statistics.median, kernels=False, pause=0.0):
    """{call: (picked, minimum)} in us per call."""
    calls = _calls(op, size, dtype, kernels)
    for fn in calls.values():
        fn()
    first = _batch(calls["torch"], 3)
    number = max(1, int(20000 / max(first, 1.0)))  # about 20 ms a batch
    times = {k: [] for k in calls}
    names = list(calls)
    for r in range(rounds):
        for k in names if r % 2 == 0 else names[::-1]:
            if pause:
                time.sleep(pause)
            times[k].append(_batch(calls[k], number))
    return {k: (pick(v), min(v)) for k, v in times.items()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="*", default=list(OPS))
    parser.add_argument("--sizes", nargs="*", default=["small", "medium"])
    parser.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, help="threads of both libraries")
    parser.add_argument("--best", action="store_true",
                        help="the best round of each, not the median")
    parser.add_argument("--minima", action="store_true",
                        help="also print the best round of each, in brackets")
    parser.add_argument("--pause", type=float, default=0.0,
                        help="milliseconds of sleep before each batch")
    parser.add_argument("--kernels", action="store_true",
                        help="also the call's kernels alone (layer_norm, rms_norm, batch_norm)")
    parser.add_argument("--nbops-path", help="import nbops from this directory")
    a = parser.parse_args(argv)
    if a.nbops_path:
        sys.path.insert(0, os.path.abspath(a.nbops_path))
    import nbops

    print(f"nbops from {os.path.dirname(os.path.dirname(nbops.__file__))}")
    if a.threads:
        import numba
        import torch

        numba.set_num_threads(a.threads)
        torch.set_num_threads(a.threads)
        if a.threads == 1:
            CLOCK[0] = time.process_time
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}; "
          f"{a.threads or 'default'} threads; {a.rounds} rounds, "
          + ("best round" if a.best else "medians") + (" [minima]" if a.minima else ""))
    w = 19 if a.minima else 9

    def cell(v):
        return f"{v[0]:9.2f} [{v[1]:7.2f}]" if a.minima else f"{v[0]:9.2f}"
    print(f"{'op':22s} {'size':6s} {'dtype':7s} {'nbops':>{w}s} {'out=':>{w}s} {'torch':>{w}s} "
          f"{'ratio':>6s} {'r_out':>6s}" + (f" {'kernels':>{w}s}" if a.kernels else ""))
    for op in a.ops:
        for size in a.sizes:
            for dtype in a.dtypes:
                m = measure(op, size, dtype, a.rounds, min if a.best else statistics.median,
                            a.kernels, a.pause / 1e3)
                t = m["torch"][0]
                k = f" {cell(m['kernels'])}" if "kernels" in m else ""
                print(f"{op:22s} {size:6s} {dtype:7s} {cell(m['nbops'])} {cell(m['nbops_out'])} "
                      f"{cell(m['torch'])} {m['nbops'][0] / t:6.2f} {m['nbops_out'][0] / t:6.2f}"
                      f"{k}", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}")


if __name__ == "__main__":
    main()
