#!/usr/bin/env python
"""cross_entropy and accuracy over a logits array larger than memory, with Dask.

The logits (float32, ``--rows`` x ``--classes``) and the class-index targets are
generated chunk by chunk from seeds (``da.map_blocks``): no chunk exists before
the task that needs it, and each is freed once reduced, so the peak memory is a
few chunks per worker thread whatever ``--rows`` is. dask's progress bar shows
the computation. Results do not depend on ``--chunk-rows``.

    python examples/dask_cross_entropy.py                          # 0.4 GB of logits
    python examples/dask_cross_entropy.py --rows 80_000_000        # 32 GB of logits

Needs ``pip install "nbops[dask]"``.
"""

import argparse
import time

import dask
import dask.array as da
import numpy as np
from dask.diagnostics import ProgressBar

import nbops

UNIT = 10_000  # rows generated from one seed: the data do not depend on the chunking


def _data(r0, r1, classes, seed):
    """Logits and targets of rows r0 .. r1: a fixed function of the seed and the rows (a
    "model" that puts a bonus on the true class, so that the accuracy is not chance)."""
    xs, ts = [], []
    for unit in range(r0 // UNIT, (r1 - 1) // UNIT + 1):
        rng = np.random.default_rng([seed, unit])
        t = rng.integers(0, classes, UNIT)
        x = rng.standard_normal((UNIT, classes), dtype=np.float32)
        x[np.arange(UNIT), t] += np.float32(2.5)
        xs.append(x)
        ts.append(t)
    a = r0 - r0 // UNIT * UNIT
    return np.concatenate(xs)[a:a + r1 - r0], np.concatenate(ts)[a:a + r1 - r0]


def logits_block(block_info=None, *, classes, seed):
    (r0, r1), _ = block_info[None]["array-location"]
    return _data(r0, r1, classes, seed)[0]


def targets_block(block_info=None, *, classes, seed):
    (r0, r1), = block_info[None]["array-location"]
    return _data(r0, r1, classes, seed)[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=lambda s: int(float(s)), default=1_000_000)
    ap.add_argument("--classes", type=int, default=100)
    ap.add_argument("--chunk-rows", type=lambda s: int(float(s)), default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    chunks = (args.chunk_rows,) * (args.rows // args.chunk_rows)
    if args.rows % args.chunk_rows:
        chunks += (args.rows % args.chunk_rows,)
    logits = da.map_blocks(logits_block, chunks=(chunks, (args.classes,)), dtype=np.float32,
                           meta=np.empty((0, 0), np.float32), classes=args.classes,
                           seed=args.seed)
    target = da.map_blocks(targets_block, chunks=(chunks,), dtype=np.int64,
                           meta=np.empty(0, np.int64), classes=args.classes, seed=args.seed)

    loss = nbops.cross_entropy(logits, target)                 # lazy 0-d float32
    accuracy = (logits.argmax(axis=1) == target).mean()         # lazy 0-d float64
    gb = args.rows * args.classes * 4 / 1e9
    print(f"logits: {args.rows} x {args.classes} float32 ({gb:.1f} GB), "
          f"{len(chunks)} chunks of {args.chunk_rows} rows")
    t0 = time.perf_counter()
    with ProgressBar():
        loss_value, accuracy_value = dask.compute(loss, accuracy)
    seconds = time.perf_counter() - t0
    print(f"cross_entropy {loss_value:.6f} ({loss_value.dtype}), accuracy {accuracy_value:.4f}, "
          f"{seconds:.1f} s ({gb / seconds:.2f} GB/s)")


if __name__ == "__main__":
    main()
