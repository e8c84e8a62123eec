#!/usr/bin/env python
"""Per-call time of every op at a tiny size: what a call costs above its kernel.

Each op of the op table is called with its table samples (the warm-up calls)
on inputs of ``--n`` elements (default 32: the kernel's own work is a few tens
of nanoseconds, so the figure is the Python-side cost of the call: argument
checks, plan, dispatch). Elementwise ops are also timed writing into ``out=``.
Where PyTorch is installed, ``torch.nn.functional.<op>`` runs the same call
side by side (tensors sharing the arrays' memory, same arguments).

    python tools/measure_overhead.py [--n 32] [--dtype float32] [--ops relu softmax]
    python tools/measure_overhead.py --profile softmax   # where the time goes

Figures are the best of ``--repeat`` timeit runs, in microseconds per call.

The performance table's cells (``asv_bench/benchmarks/every_op.py``, its CASES'
exact arguments), the public call beside the kernel's own time::

    python tools/measure_overhead.py --cases nll_loss prelu --sizes small medium \
        [--dtypes float32 float64] [--rounds 40] [--profile-case]

For each case: ``nbops`` (allocating), ``out=`` (into a preallocated array,
where the op takes it), ``kernel`` (the launches that one call makes, replayed
through their compiled entry points with the serial/parallel choice of
:mod:`nbops._launch`: the call's time without any Python-side work) and
``torch``, in microseconds per call. The four alternate (A B C D, D C B A, ...)
over ``--rounds`` rounds of a batch of calls each (about 10 ms), so a burst of load on the
machine hits them alike; the figures are the medians over the rounds (the
minima in brackets), ``ratio`` is nbops / torch and ``out ratio`` out= / torch
(medians), ``above kernel`` is nbops minus kernel (the Python-side cost).
"""

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
import timeit

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _best(fn, repeat):
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat, number)) / number * 1e6


def _torch_call(name, args, kwargs):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    fn = getattr(F, name, None)
    if fn is None:
        return None
    targs = [torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, np.ndarray) else a
             for a in args]
    tkw = {k: v for k, v in kwargs.items() if k != "rng"}
    if name in ("softmax", "log_softmax", "softmin"):
        tkw.setdefault("dim", -1)
    try:
        fn(*targs, **tkw)
    except Exception:  # a sample PyTorch does not take the same way
        return None
    return lambda: fn(*targs, **tkw)


def calls(dtype, n, ops=None):
    """(label, nbops call, torch call or None) for every sample call of the table."""
    import nbops  # noqa: F401  (registers every op)
    from nbops._ops import table

    d = table.sample_arrays(dtype, n)
    out = []
    for entry in table.entries():
        if entry.samples is None or (ops and entry.name not in ops):
            continue
        for k, (args, kwargs) in enumerate(entry.samples(d)):
            label = entry.name + (f"[{k}]" if k else "")
            fn = entry.function
            out.append((label, lambda f=fn, a=args, kw=kwargs: f(*a, **kw),
                        _torch_call(entry.name, args, kwargs)))
            res = fn(*args, **kwargs)
            if entry.out and isinstance(res, np.ndarray) and res.ndim:
                o = np.empty_like(res)
                out.append((label + " out=", lambda f=fn, a=args, kw=kwargs, o=o:
                            f(*a, out=o, **kw), None))
    return out


def _kernel_replay(fn):
    """A callable that replays the kernel launches of one ``fn()`` call (the
    kernels' own time: their compiled entry points, each launch's serial or
    parallel twin as :func:`nbops._launch.launch` would pick), or None where the
    call launches nothing through ``launch``."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_tune_threads", os.path.join(ROOT, "tools", "tune_threads.py"))
    tune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune)  # its Recorder and launch patching
    from nbops import _config, _launch

    calls = tune.record_launches(fn)
    if not calls:
        return None
    steps = []
    for serial, parallel, key, n, args in calls:
        floor = _config.PARALLEL_THRESHOLD
        if floor == _config.PER_OP_FLOOR:
            wanted = n >= _launch.parallel_from(serial, key) and _config.threads_now() > 1
        else:
            wanted = n >= floor
        kernel = parallel if wanted else serial
        steps.append((_launch.entry_point(kernel, key, args), args))

    def replay():
        for entry, args in steps:
            entry(*args)
    return replay


def _case_calls(op, size, dtype):
    """(nbops, nbops out= or None, kernel replay or None, torch or None) for one
    cell of the performance table, with every_op.py's arguments."""
    sys.path.insert(0, ROOT)
    from asv_bench.benchmarks import every_op

    function, torch_name, build = every_op.CASES[op]
    args, kwargs = build(size, dtype)
    nb = lambda: function(*args, **kwargs)  # noqa: E731
    nb()
    out_fn = None
    if op in every_op.OUT:
        out = np.empty_like(nb())
        out_fn = lambda: function(*args, out=out, **kwargs)  # noqa: E731
        out_fn()
    tfn = None
    try:
        import torch
        import torch.nn.functional as F
        tf = getattr(F, torch_name, None) or getattr(torch, torch_name, None)
    except ImportError:
        tf = None
    if tf is not None:
        targs, tkw = every_op._torch_args(args, kwargs)
        if torch_name in ("dropout", "dropout1d", "dropout2d", "dropout3d"):
            tkw["training"] = True
        tfn = lambda: tf(*targs, **tkw)  # noqa: E731
        tfn()
    return nb, out_fn, _kernel_replay(nb), tfn


def _batch(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number * 1e6


def measure_case(op, size, dtype, rounds):
    """Medians and minima (us per call) of the case's calls, alternated per round."""
    calls = _case_calls(op, size, dtype)
    names = ("nbops", "out", "kernel", "torch")
    live = [(name, fn) for name, fn in zip(names, calls, strict=True) if fn is not None]
    number = max(1, timeit.Timer(calls[0]).autorange()[0] // 20)  # batches of ~10 ms
    times = {name: [] for name, _ in live}
    for r in range(rounds):
        order = live if r % 2 == 0 else live[::-1]
        for name, fn in order:
            times[name].append(_batch(fn, number))
    return {name: (statistics.median(ts), min(ts)) for name, ts in times.items()}


def _cases_table(ops, sizes, dtypes, rounds, profile):
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} "
          f"{os.getloadavg()[2]:.1f}; medians over {rounds} alternated rounds [minima], us")
    head = (f"{'op':<28} {'size':<7} {'dtype':<8} {'nbops':>15} {'out=':>15} {'kernel':>15} "
            f"{'torch':>15} {'ratio':>6} {'out ratio':>9} {'above kernel':>12}")
    print(head)
    for op in ops:
        for size in sizes:
            for dtype in dtypes:
                m = measure_case(op, size, dtype, rounds)

                def cell(name, m=m):
                    if name not in m:
                        return f"{'-':>15}"
                    return f"{m[name][0]:7.2f} [{m[name][1]:6.2f}]"

                t = m.get("torch", (None,))[0]
                ratio = f"{m['nbops'][0] / t:6.2f}" if t else f"{'-':>6}"
                oratio = f"{m['out'][0] / t:9.2f}" if t and "out" in m else f"{'-':>9}"
                above = (f"{m['nbops'][0] - m['kernel'][0]:12.2f}" if "kernel" in m
                         else f"{'-':>12}")
                print(f"{op:<28} {size:<7} {dtype:<8} {cell('nbops')} {cell('out')} "
                      f"{cell('kernel')} {cell('torch')} {ratio} {oratio} {above}", flush=True)
                if profile:
                    fn = _case_calls(op, size, dtype)[0]
                    prof = cProfile.Profile()
                    prof.enable()
                    for _ in range(20000):
                        fn()
                    prof.disable()
                    pstats.Stats(prof).sort_stats("tottime").print_stats(10)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ops", nargs="*")
    parser.add_argument("--profile", metavar="OP", help="cProfile the calls of one op")
    parser.add_argument("--cases", nargs="+", metavar="OP",
                        help="the performance table's cells of these ops (every_op.py)")
    parser.add_argument("--sizes", nargs="+", default=["small", "medium"])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--profile-case", action="store_true",
                        help="with --cases: cProfile each case's allocating call")
    args = parser.parse_args(argv)
    if args.cases:
        _cases_table(args.cases, args.sizes, args.dtypes, args.rounds, args.profile_case)
        return
    rows = calls(np.dtype(args.dtype), args.n, [args.profile] if args.profile else args.ops)
    for _label, fn, tfn in rows:  # compile / load every kernel first
        fn()
        if tfn is not None:
            tfn()
    if args.profile:
        for label, fn, _ in rows:
            print(f"== {label}")
            prof = cProfile.Profile()
            prof.enable()
            for _ in range(20000):
                fn()
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(12)
        return
    print(f"{'call':<42} {'nbops us':>9} {'torch us':>9}")
    for label, fn, tfn in rows:
        t = _best(fn, args.repeat)
        tt = f"{_best(tfn, args.repeat):9.2f}" if tfn is not None else f"{'-':>9}"
        print(f"{label:<42} {t:9.2f} {tt}")


if __name__ == "__main__":
    main()
