#!/usr/bin/env python
"""Cold-start figures of issue #5, each in fresh processes, in one run.

* ``import numba``, ``import nbops``, ``import torch`` (if installed);
* the "service start" script (import, then one small float32 call each of relu,
  softmax, cross_entropy, batch_norm and linear) with nbops and a warm kernel
  cache, the same with an empty cache, and the same five calls with torch;
* per op family: the first call in a fresh process with an empty cache minus
  the same with a warm cache (= compilation time of that op).

``--first-call OP [OP ...]`` measures only the compile time of single ops,
more precisely: each op's first call timed inside a fresh process with the disk
cache off (``NBOPS_DISABLE_CACHE=1``), after a ``relu`` call (so the process
start, the imports and Numba's own first-compile set-up are not counted). OP is
a family name below or one of ``EXTRA_CALLS``. ``--tree DIR`` (repeatable) runs
the same in each source tree (``PYTHONPATH=DIR``; e.g. a ``git worktree`` of an
older commit), the trees' processes interleaved so that a busy machine slows
them alike.

Every figure is the best of ``--repeat`` fresh processes (wall time of the
whole process, interpreter start included), with Python's bytecode caches
written and used (``PYTHONDONTWRITEBYTECODE`` is dropped), as after a pip install. The
empty-cache runs use a new ``NBOPS_CACHE_DIR`` each time; the warm runs share one that is
filled first.

    python tools/measure_startup.py [--repeat 5] [--no-families]
    python tools/measure_startup.py --first-call batch_norm batch_norm_eval \
        pairwise_distance [--tree /tmp/base --tree .] [--repeat 5]
"""

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "asv_bench"))

# the scripts of the asv cold-start benchmarks (one definition of each)
from benchmarks.runtime import _FAMILY_CALLS as FAMILIES  # noqa: E402
from benchmarks.runtime import _SMALL_INPUTS as INPUTS  # noqa: E402
from benchmarks.runtime import SERVICE_OPS as SERVICE  # noqa: E402
from benchmarks.runtime import TORCH_SERVICE  # noqa: E402

#: Calls that ``--first-call`` measures besides the families (same inputs).
EXTRA_CALLS = {
    "batch_norm_eval": "nbops.batch_norm(x, np.zeros(8), np.ones(8))",
}

FIRST_CALL = """
import time
import nbops
{inputs}
{warmup}
t0 = time.perf_counter()
{call}
print(time.perf_counter() - t0)
"""


def run(code, env_extra=None):
    env = dict(os.environ)
    env.pop("NBOPS_DISABLE_CACHE", None)
    # bytecode caches as after a pip install (else every import compiles the sources)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(env_extra or {})
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - t0


def best(code, repeat, cache=None, fresh_cache=False):
    times = []
    for _ in range(repeat):
        if fresh_cache:
            d = tempfile.mkdtemp(prefix="nbops-empty-")
            try:
                times.append(run(code, {"NBOPS_CACHE_DIR": d}))
            finally:
                shutil.rmtree(d, ignore_errors=True)
        else:
            times.append(run(code, {"NBOPS_CACHE_DIR": cache} if cache else None))
    return min(times)


def first_calls(names, trees, repeat):
    """Print the best of ``repeat`` in-process timings of each op's first call
    (disk cache off, after a relu call) in each tree."""
    calls = {**FAMILIES, **EXTRA_CALLS}
    unknown = [n for n in names if n not in calls]
    if unknown:
        raise SystemExit(f"unknown op {unknown}; known: {', '.join(calls)}")
    times = {(n, t): [] for n in names for t in trees}
    for _ in range(repeat):
        for name in names:
            code = FIRST_CALL.format(inputs=INPUTS, call=calls[name],
                                     warmup="" if name == "relu" else "nbops.relu(x)")
            for tree in trees:
                env = dict(os.environ, NBOPS_DISABLE_CACHE="1")
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                cwd = None
                if tree is not None:  # run in the tree: ``python -c`` imports from the cwd first
                    cwd = os.path.abspath(tree)
                    env["PYTHONPATH"] = os.pathsep.join(
                        p for p in (cwd, env.get("PYTHONPATH")) if p)
                out = subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=cwd,
                                     capture_output=True, text=True).stdout
                times[name, tree].append(float(out.split()[-1]))
    print(f"# {time.strftime('%Y-%m-%d %H:%M')}, load {os.getloadavg()[0]:.2f}; first call "
          f"with the disk cache off, after a relu call: best of {repeat} fresh processes, "
          "seconds")
    print(f"{'op':22s}" + "".join(f" {tree or '(this tree)':>18s}" for tree in trees))
    for name in names:
        print(f"{name:22s}" + "".join(f" {min(times[name, t]):18.3f}" for t in trees))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-families", action="store_true", help="skip the per-op figures")
    ap.add_argument("--first-call", nargs="+", metavar="OP",
                    help="only the compile time of these ops' first calls "
                         "(see this file's docstring)")
    ap.add_argument("--tree", action="append", metavar="DIR",
                    help="with --first-call: measure in this source tree (repeatable)")
    args = ap.parse_args()
    r = args.repeat
    if args.first_call:
        first_calls(args.first_call, args.tree or [None], r)
        return
    have_torch = importlib.util.find_spec("torch") is not None
    warm = tempfile.mkdtemp(prefix="nbops-warm-")
    try:
        service = "import nbops" + INPUTS + "\n".join(FAMILIES[k] for k in SERVICE)
        run(service, {"NBOPS_CACHE_DIR": warm})  # fill the warm cache
        out = {}
        out["import numba"] = best("import numba", r)
        out["import nbops"] = best("import nbops", r)
        if have_torch:
            out["import torch"] = best("import torch", r)
        out["service, nbops, warm cache"] = best(service, r, warm)
        if have_torch:
            out["service, torch"] = best(TORCH_SERVICE, r)
        out["service, nbops, empty cache"] = best(service, max(1, r // 2), fresh_cache=True)

        print(f"# {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} CPUs, "
              f"load {os.getloadavg()[0]:.2f}; best of {r} fresh processes, seconds")
        for k, v in out.items():
            print(f"{k:34s} {v:7.3f}")
        n = out["import numba"]
        print(f"{'import nbops - import numba':34s} {out['import nbops'] - n:7.3f}   "
              "(target <= 0.15)")
        s = out["service, nbops, warm cache"]
        print(f"{'service (warm) - import numba':34s} {s - n:7.3f}   (target <= 0.3)")
        if have_torch:
            print(f"{'service (warm) / service torch':34s} "
                  f"{s / out['service, torch']:7.2f}x  (target <= 0.5x)")
        comp = out["service, nbops, empty cache"] - s
        print(f"{'compilation, 5 service ops':34s} {comp:7.3f}   "
              f"= {comp / len(SERVICE):.2f} s per op (target <= 1)")
        if args.no_families:
            return
        print("\n# first call, empty cache minus warm cache (= compile time), seconds")
        for name, call in FAMILIES.items():
            code = "import nbops" + INPUTS + call
            run(code, {"NBOPS_CACHE_DIR": warm})
            t_warm = best(code, max(1, r // 2), warm)
            t_cold = best(code, max(1, r // 2), fresh_cache=True)
            print(f"{name:22s} {t_cold - t_warm:6.2f}   (warm {t_warm:.2f})")
    finally:
        shutil.rmtree(warm, ignore_errors=True)


if __name__ == "__main__":
    main()
