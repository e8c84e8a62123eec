"""Compile (or load from the disk cache) nbops' kernels ahead of time.

For services and containers: run it once at build time, so the first request
does not pay for compilation::

    python -m nbops.warmup                      # every op, float32 and float64
    python -m nbops.warmup --ops relu softmax --dtypes float32

or from Python: ``nbops.warmup(ops=["relu", "softmax"], dtypes=["float32"])``.
Each op is called once on a small input (the serial kernels) and once on an
input large enough for every op's multi-threaded kernel. Progress is
printed when the whole run takes more than a second.
"""

import argparse
import sys
import time

import numpy as np

from . import _launch


def _calls(dtype, n):
    """op name -> a function running that op on inputs of about ``n`` elements.

    The calls are the op table's samples (:mod:`nbops._ops.table`).
    """
    import nbops  # noqa: F401  (registers every op)
    from nbops._ops import table

    d = table.sample_arrays(dtype, n)

    def run(entry):
        for args, kwargs in entry.samples(d):
            entry.function(*args, **kwargs)

    return {e.name: (lambda e=e: run(e)) for e in table.entries() if e.samples is not None}


def available_ops():
    return sorted(_calls(np.float32, 16))


def warmup(ops=None, dtypes=("float32", "float64"), parallel=True, verbose=None):
    """Compile or load the kernels of ``ops`` (default: all) for ``dtypes``.

    Parameters
    ----------
    ops : iterable of str, optional
        Names of functional ops (``python -m nbops.warmup --help``); default all.
    dtypes : iterable of str or dtype
    parallel : bool
        Also prepare the multi-threaded kernels (none when Numba has one thread).
    verbose : bool, optional
        Print progress to stderr; by default only once the run has taken 1 s.

    Returns
    -------
    dict
        Seconds spent per op.

    Notes
    -----
    No PyTorch counterpart: PyTorch ships precompiled kernels, nbops compiles
    each kernel on its first call (then caches it on disk). Call this at the
    start of a service so that the first request does not pay for it.

    Examples
    --------
    >>> times = nbops.warmup(["relu", "softmax"], dtypes=["float32"], parallel=False,
    ...                      verbose=False)
    >>> sorted(times)
    ['relu', 'softmax']
    """
    names = available_ops() if ops is None else list(ops)
    unknown = sorted(set(names) - set(available_ops()))
    if unknown:
        raise ValueError(f"ops: unknown op(s) {unknown}; choose from {available_ops()}")
    everywhere = _launch.everywhere_parallel_from()  # None: nothing runs parallel
    sizes = [64] + ([everywhere] if parallel and everywhere else [])
    start = time.perf_counter()
    spent = {}
    total = len(names) * len(dtypes)
    done = 0
    for dt in dtypes:
        dtype = np.dtype(dt)
        tables = [_calls(dtype, n) for n in sizes]
        for name in names:
            t0 = time.perf_counter()
            for table in tables:
                table[name]()
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
            done += 1
            show = verbose if verbose is not None else time.perf_counter() - start > 1.0
            if show:
                print(f"nbops warmup [{done}/{total}] {name} {dtype}: "
                      f"{time.perf_counter() - t0:.2f} s", file=sys.stderr, flush=True)
    return spent


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nbops.warmup",
                                     description="Compile or load nbops' kernels ahead of time.")
    parser.add_argument("--ops", nargs="*", default=None, help="op names (default: all)")
    parser.add_argument("--dtypes", nargs="*", default=["float32", "float64"])
    parser.add_argument("--serial-only", action="store_true",
                        help="skip the multi-threaded kernels")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    spent = warmup(args.ops, args.dtypes, parallel=not args.serial_only,
                   verbose=False if args.quiet else None)
    if not args.quiet:
        print(f"nbops warmup: {len(spent)} ops ready in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
