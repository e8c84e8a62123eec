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
"""

import argparse
import cProfile
import pstats
import timeit

import numpy as np


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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--ops", nargs="*")
    parser.add_argument("--profile", metavar="OP", help="cProfile the calls of one op")
    args = parser.parse_args(argv)
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
