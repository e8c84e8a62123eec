"""The driver of the bit-for-bit checks across source trees
(``tools/check_product_bits.py``, ``tools/check_task_bits.py``): run a child
script that prints ``[nbops.__file__, {output name: hash}]`` as its last line in
fresh processes per tree (``PYTHONPATH``), on 1 and 2 threads, each with the
default thresholds and with ``NBOPS_PARALLEL_THRESHOLD=1``, and compare the
hashes across trees and across thread settings."""

import argparse
import json
import os
import subprocess
import sys

#: The start of every child script: its imports, the thread count from its
#: argument, and ``put(name, *arrays)``, which hashes arrays (tuples of arrays
#: and None too) into ``out``; the child prints ``[nbops.__file__, out]`` last.
CHILD_PRELUDE = r"""
import hashlib, json, sys
import numpy as np, numba
numba.set_num_threads(int(sys.argv[1]))
import nbops

out = {}

def flat(arrays):
    for a in arrays:
        if isinstance(a, tuple):
            yield from flat(a)
        else:
            yield a

def put(name, *arrays):
    h = hashlib.sha256()
    for a in flat(arrays):
        if a is None:
            h.update(b"None")
        else:
            a = np.ascontiguousarray(a)
            h.update(str((a.dtype, a.shape)).encode())
            h.update(a.tobytes())
    out[name] = h.hexdigest()
"""


def compare_trees(child, description):
    """Parse ``--tree`` arguments, run :data:`CHILD_PRELUDE` + ``child`` (Python
    source; its argument: the thread count) in each tree and setting, print
    every mismatch and exit 1 on one (0 otherwise)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--tree", action="append", required=True)
    args = ap.parse_args()
    trees = [os.path.abspath(t) for t in args.tree]
    runs = {}
    bad = 0
    for threads in (1, 2):
        for threshold in ("", "1"):
            setting = f"threads={threads} NBOPS_PARALLEL_THRESHOLD={threshold or 'unset'}"
            results = []
            for tree in trees:
                env = dict(os.environ, PYTHONPATH=tree)
                env.pop("NBOPS_PARALLEL_THRESHOLD", None)
                if threshold:
                    env["NBOPS_PARALLEL_THRESHOLD"] = threshold
                text = subprocess.run([sys.executable, "-c", CHILD_PRELUDE + child,
                                       str(threads)], env=env, cwd=tree, check=True,
                                      capture_output=True, text=True).stdout
                path, hashes = json.loads(text.strip().splitlines()[-1])
                print(f"# {setting}: {len(hashes)} outputs from {path}")
                results.append(hashes)
            runs[setting] = results
            for name, digest in results[0].items():
                for other in results[1:]:
                    if other.get(name) != digest:
                        bad += 1
                        print(f"MISMATCH {setting}: {name}")
    first = next(iter(runs.values()))[0]
    for setting, results in runs.items():  # the same bits on any thread count too
        for name, digest in results[0].items():
            if first[name] != digest:
                bad += 1
                print(f"THREAD-COUNT MISMATCH {setting}: {name}")
    total = sum(len(r[0]) for r in runs.values()) * (len(trees) - 1)
    print(f"{total} outputs compared across {len(trees)} trees, {bad} mismatches")
    sys.exit(1 if bad else 0)
