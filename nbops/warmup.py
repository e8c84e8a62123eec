"""Compile (or load from the disk cache) nbops' kernels ahead of time.

For services and containers: run it once at build time, so the first request
does not pay for compilation::

    python -m nbops.warmup                      # every op, float32 and float64
    python -m nbops.warmup --ops relu softmax --dtypes float32
    python -m nbops.warmup --backward           # and the backward kernels (training)

or from Python: ``nbops.warmup(ops=["relu", "softmax"], dtypes=["float32"])``.
Each op is called once on a small input (the serial kernels) and once on an
input large enough for every op's multi-threaded kernel; with ``backward=True``
(``--backward``) its backward (and a loss's ``_with_grad``) too. Progress is
printed when the whole run takes more than a second.
"""

import argparse
import sys
import time

import numpy as np

from . import _launch


def _calls(dtype, n, backward=False):
    """op name -> a function running that op (and, if ``backward``, its backward)
    on inputs of about ``n`` elements.

    The calls are the op table's samples and backward samples
    (:mod:`nbops._ops.table`).
    """
    import nbops  # noqa: F401  (registers every op)
    from nbops._ops import table

    d = table.sample_arrays(dtype, n)

    def run(entry):
        for args, kwargs in entry.samples(d):
            entry.function(*args, **kwargs)
        if backward and entry.backward_samples is not None:
            for function, args, kwargs in entry.backward_samples(d):
                function(*args, **kwargs)

    return {e.name: (lambda e=e: run(e)) for e in table.entries() if e.samples is not None}


def available_ops():
    return sorted(_calls(np.float32, 16))


def warmup(ops=None, dtypes=("float32", "float64"), parallel=True, verbose=None,
           backward=False):
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
    backward : bool, default False
        Also prepare each op's backward kernels (``nbops.<op>_backward`` and a
        loss's ``nbops.<loss>_with_grad``, from the op table's backward sample
        calls): for a training job. A service that only runs inference leaves
        it off and compiles (or loads) nothing it does not call.

    Returns
    -------
    dict
        Seconds spent per op (its backward included).

    Notes
    -----
    No PyTorch counterpart: PyTorch ships precompiled kernels, nbops compiles
    each kernel on its first call (then caches it on disk). Call this at the
    start of a service so that the first request does not pay for it (with
    ``backward=True`` at the start of a training job).

    Examples
    --------
    >>> times = nbops.warmup(["relu", "softmax"], dtypes=["float32"], parallel=False,
    ...                      verbose=False)
    >>> sorted(times)
    ['relu', 'softmax']

    A training job prepares the backward kernels too (here ``relu_backward``'s):

    >>> list(nbops.warmup(["relu"], dtypes=["float32"], parallel=False, verbose=False,
    ...                   backward=True))
    ['relu']
    """
    names = available_ops() if ops is None else list(ops)
    unknown = sorted(set(names) - set(available_ops()))
    if unknown:
        raise ValueError(f"ops: unknown op(s) {unknown}; choose from {available_ops()}")
    everywhere = _launch.everywhere_parallel_from()  # None: nothing runs parallel
    # + 15: the sample arrays of rows of 16 (n // 16 rows) then hold at least
    # ``everywhere`` elements too
    sizes = [64] + ([everywhere + 15] if parallel and everywhere else [])
    start = time.perf_counter()
    spent = {}
    total = len(names) * len(dtypes)
    done = 0
    for dt in dtypes:
        dtype = np.dtype(dt)
        tables = [_calls(dtype, n, backward) for n in sizes]
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
    parser.add_argument("--backward", action="store_true",
                        help="also the backward kernels (<op>_backward, <loss>_with_grad)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    spent = warmup(args.ops, args.dtypes, parallel=not args.serial_only,
                   verbose=False if args.quiet else None, backward=args.backward)
    if not args.quiet:
        what = "ops and their backwards" if args.backward else "ops"
        print(f"nbops warmup: {len(spent)} {what} ready in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
