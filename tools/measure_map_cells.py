#!/usr/bin/env python
"""The cheap elementwise maps at 1e5 elements: where a call's time goes, beside PyTorch.

    python tools/measure_map_cells.py [--ops relu6 hardsigmoid ...] \
        [--dtypes float32 float64] [--threads 2 1] [--rounds 40] [--n 100000]

For each op and dtype, one process alternates (A B C D E, E D C B A, ...) over
``--rounds`` rounds, each a batch of calls (``--batch-ms``, 2 ms) after a 2 ms pause
(Numba's and PyTorch's OpenMP pools both spin for a while after a parallel
call; a pool that starts while the other spins on the same cores can stall):

* ``nbops``: the public call, allocating (``asv_bench/benchmarks/every_op.py``'s
  arguments, as the performance table times it);
* ``out=``: the same into a preallocated array;
* ``serial`` and ``parallel``: the op's two compiled kernels called directly
  through their entry points (no Python-side work: the kernels' own time);
* ``torch``: ``torch.nn.functional`` on tensors sharing the arrays' memory.

Figures are medians over the rounds [minima], us per call. ``pick`` is the
kernel ``nbops._launch`` chooses at this size (``S`` serial, ``P`` parallel)
and its threshold in elements; ``py`` is ``out=`` minus the chosen kernel's
median (the Python path from the call to the kernel); ``ratio`` and ``out``
are nbops / torch and out= / torch (medians). The thread counts of
``--threads`` are set with ``numba.set_num_threads`` and
``torch.set_num_threads`` in turn, in the same process; an ``empty launch``
line per thread count times the parallel and serial kernels of relu on 64
elements (their difference: the fixed cost of a parallel launch). The load
average is printed before and after each thread count.

``--path`` times instead, per op and dtype, the Python path above the parallel
kernel: its entry point called directly, inside the parallel guard
(``acquire_parallel``/``release_parallel``), through ``nbops._launch.launch``,
and the public call into ``out=``.

To compare with another checkout, run this file from that checkout's root with
``PYTHONPATH`` set to it.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

DEFAULT_OPS = ["hardsigmoid", "relu6", "leaky_relu", "hardshrink", "softshrink", "hardtanh",
               "silu", "gelu", "relu"]
NAMES = ("nbops", "out=", "serial", "parallel", "torch")


def _batch(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number * 1e6


def _load():
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def _kernels(fn):
    """(serial call, parallel call, key, n) of the one launch that ``fn()`` makes,
    with the kernels' compiled entry points (tools/tune_threads.py's recorder)."""
    import importlib.util

    from nbops import _launch

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tune_threads.py")
    spec = importlib.util.spec_from_file_location("_tune_threads", path)
    tune = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tune)
    (serial, parallel, key, n, args), = tune.record_launches(fn)
    s = _launch.entry_point(serial, key, args)
    p = _launch.entry_point(parallel, key, args)
    return (lambda: s(*args)), (lambda: p(*args)), (serial, key), n, args


def _calls(every_op, torch, op, n, dtype):
    function, torch_name, build = every_op.CASES[op]
    args, kwargs = build("medium", dtype)
    if n != args[0].size:
        args = (np.resize(args[0], n),) + tuple(args[1:])
    out = np.empty_like(function(*args, **kwargs))
    calls = {"nbops": lambda: function(*args, **kwargs),
             "out=": lambda: function(*args, out=out, **kwargs)}
    calls["serial"], calls["parallel"], choice, size, _ = _kernels(calls["out="])
    if torch is not None:
        tf = getattr(torch.nn.functional, torch_name, None) or getattr(torch, torch_name)
        targs, tkw = every_op._torch_args(args, kwargs)
        calls["torch"] = lambda: tf(*targs, **tkw)
    for fn in calls.values():
        fn()  # compile / load from the cache outside the timing
    return calls, choice, size


def measure(calls, rounds, batch_ms=2.0):
    """{name: (median, minimum)} in us per call, the calls alternated per round."""
    names = list(calls)
    first = calls[names[0]]
    t0 = time.perf_counter()
    first()
    number = max(1, int(batch_ms * 1e-3 / max(time.perf_counter() - t0, 1e-7)))
    times = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            time.sleep(2e-3)
            times[name].append(_batch(calls[name], number))
    return {name: (statistics.median(ts), min(ts)) for name, ts in times.items()}


def _empty_launch(rounds, batch_ms):
    import nbops
    from nbops import _launch
    from nbops._ops import elementwise

    x = np.linspace(-1, 1, 64).astype(np.float32)
    args = (elementwise.Op.registry["relu"], x, np.empty_like(x), ())
    nbops.relu(x)
    key = args[0], x.dtype
    s = _launch.entry_point(elementwise.map_serial, key, args)
    p = _launch.entry_point(elementwise.map_parallel, key, args)
    return measure({"serial": lambda: s(*args), "parallel": lambda: p(*args)}, rounds, batch_ms)


def _path(every_op, op, n, dtype, rounds, batch_ms):
    """The Python path above the parallel kernel: its entry point called directly,
    inside the parallel guard (``acquire_parallel``), through ``launch`` and the
    public call into ``out=``."""
    from nbops import _config, _launch

    calls, (serial, key), size = _calls(every_op, None, op, n, dtype)
    args = _kernels(calls["out="])[4]
    p = _launch.entry_point(_launch_parallel(serial), key, args)

    def guarded():
        if _config.acquire_parallel(size):
            try:
                p(*args)
            finally:
                _config.release_parallel()

    return measure({"parallel": lambda: p(*args), "guarded": guarded,
                    "launch()": lambda: _launch.launch(serial, _launch_parallel(serial), key,
                                                       size, *args),
                    "out=": calls["out="]}, rounds, batch_ms)


def _launch_parallel(serial):
    from nbops._ops import elementwise

    return {elementwise.map_serial: elementwise.map_parallel}[serial]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", nargs="+", default=DEFAULT_OPS)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"])
    parser.add_argument("--threads", nargs="+", type=int, default=[2, 1])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--n", type=int, default=100_000, help="elements (the table's medium)")
    parser.add_argument("--batch-ms", type=float, default=2.0,
                        help="length of a batch of calls (shorter: fewer batches hit by load)")
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--path", action="store_true",
                        help="time the Python path above the parallel kernel instead")
    opts = parser.parse_args(argv)

    sys.path.insert(0, os.getcwd())
    if opts.no_torch:  # every_op.py imports PyTorch where it is installed
        sys.modules["torch"] = None
    import numba

    import nbops
    from asv_bench.benchmarks import every_op
    from nbops import _launch

    torch = None if opts.no_torch else every_op.torch
    if opts.path:
        numba.set_num_threads(max(opts.threads))
        print(f"load {_load()}; {max(opts.threads)} threads; medians [minima], us per call")
        for op in opts.ops:
            for dtype in opts.dtypes:
                m = _path(every_op, op, opts.n, dtype, opts.rounds, opts.batch_ms)
                print(f"{op:<12} {dtype:<8} " + "  ".join(
                    f"{k} {v[0]:.2f} [{v[1]:.2f}]" for k, v in m.items()), flush=True)
        print(f"load after {_load()}")
        return
    print(f"nbops from {os.path.dirname(nbops.__file__)}; n = {opts.n}; medians over "
          f"{opts.rounds} rounds [minima], us per call")
    cells = {(op, dtype): _calls(every_op, torch, op, opts.n, dtype)
             for op in opts.ops for dtype in opts.dtypes}
    for threads in opts.threads:
        numba.set_num_threads(threads)
        if torch is not None:
            torch.set_num_threads(threads)
        print(f"\n== {threads} thread(s) each (numba, torch); load {_load()}")
        print(f"{'op':<12} {'dtype':<8} " + " ".join(f"{n:>15}" for n in NAMES)
              + f" {'pick':>9} {'py':>5} {'ratio':>5} {'out':>5}")
        e = _empty_launch(opts.rounds, opts.batch_ms)
        print(f"{'empty launch (relu, 64 elements): serial':<52} {e['serial'][0]:6.2f} "
              f"[{e['serial'][1]:5.2f}], parallel {e['parallel'][0]:6.2f} "
              f"[{e['parallel'][1]:5.2f}]")
        for (op, dtype), (calls, (serial, key), size) in cells.items():
            m = measure(calls, opts.rounds, opts.batch_ms)
            limit = _launch.parallel_from(serial, key)
            par = size >= limit and threads > 1
            pick = f"{'P' if par else 'S'} {min(limit, 9999999):>7}"
            kernel = m["parallel" if par else "serial"][0]
            row = " ".join(f"{m[n][0]:7.2f} [{m[n][1]:5.2f}]" if n in m else f"{'-':>15}"
                           for n in NAMES)
            t = m["torch"][0] if "torch" in m else float("nan")
            print(f"{op:<12} {dtype:<8} {row} {pick:>9} {m['out='][0] - kernel:5.2f} "
                  f"{m['nbops'][0] / t:5.2f} {m['out='][0] / t:5.2f}", flush=True)
        print(f"load after {_load()}")


if __name__ == "__main__":
    main()
