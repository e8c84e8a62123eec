#!/usr/bin/env python
"""Elementwise activations at 1e7 float32, forward and backward, beside PyTorch CPU.

For each op: nbops allocating and into ``out=``, ``torch.nn.functional.<op>``, then
nbops' ``<op>_backward`` (allocating and into ``out=``) beside
``torch.ops.aten.<op>_backward`` (``aten.elu_backward`` for selu and celu; autograd
with the forward excluded where PyTorch's backward is composite: tanhshrink). Best
of ``--repeat`` calls, ms, and the ratios nbops / PyTorch; the machine's load
(``os.getloadavg``) before and after. ``gelu_tanh`` is gelu with
``approximate='tanh'``; ``--float64`` adds gelu in float64.

    python tools/measure_activations_1e7.py gelu gelu_tanh mish --float64
"""

import argparse
import os
import time

import numpy as np
import torch

import nbops

F = torch.nn.functional
ATEN = torch.ops.aten
SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)
#: op -> (nbops name, keyword arguments, torch forward, torch backward (g, x) or None)
CASES = {
    "gelu": ("gelu", {}, F.gelu, ATEN.gelu_backward),
    "gelu_tanh": ("gelu", {"approximate": "tanh"}, lambda t: F.gelu(t, approximate="tanh"),
                  lambda g, x: ATEN.gelu_backward(g, x, approximate="tanh")),
    "mish": ("mish", {}, F.mish, ATEN.mish_backward),
    "hardsigmoid": ("hardsigmoid", {}, F.hardsigmoid, ATEN.hardsigmoid_backward),
    "selu": ("selu", {}, F.selu, lambda g, x: ATEN.elu_backward(g, *SELU, 1.0, False, x)),
    "celu": ("celu", {}, F.celu, lambda g, x: ATEN.elu_backward(g, 1.0, 1.0, 1.0, False, x)),
    "hardshrink": ("hardshrink", {}, F.hardshrink,
                   lambda g, x: ATEN.hardshrink_backward(g, x, 0.5)),
    "tanhshrink": ("tanhshrink", {}, F.tanhshrink, None),
}


def best(fn, repeat):
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times) * 1e3


def autograd_backward(forward, x, g):
    """torch's backward alone: autograd with the graph retained, the forward excluded."""
    xr = x.clone().requires_grad_()
    y = forward(xr)

    def run():
        xr.grad = None
        y.backward(g, retain_graph=True)

    return run


def measure(op, dtype, n, repeat):
    name, kw, tforward, tbackward = CASES[op]
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(n) * 3).astype(dtype)
    g = rng.standard_normal(n).astype(dtype)
    out = np.empty_like(x)
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    fn, bfn = getattr(nbops, name), getattr(nbops, f"{name}_backward")
    tb = ((lambda: tbackward(tg, tx)) if tbackward is not None
          else autograd_backward(tforward, tx, tg))
    f, fo, tf = (best(lambda: fn(x, **kw), repeat), best(lambda: fn(x, **kw, out=out), repeat),
                 best(lambda: tforward(tx), repeat))
    b, bo, tbt = (best(lambda: bfn(g, x, **kw), repeat),
                  best(lambda: bfn(g, x, **kw, out=out), repeat), best(tb, repeat))
    print(f"{op:12s} {np.dtype(dtype).name:8s} forward {f:7.2f} (out= {fo:7.2f}) torch {tf:7.2f}"
          f" ratio {f / tf:5.2f} ({fo / tf:5.2f}) | backward {b:7.2f} (out= {bo:7.2f})"
          f" torch {tbt:7.2f} ratio {b / tbt:5.2f} ({bo / tbt:5.2f})", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ops", nargs="*", help=f"some of {', '.join(CASES)} (default: all)")
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--float64", action="store_true", help="gelu in float64 too")
    args = parser.parse_args()
    print(f"load {os.getloadavg()}, torch threads {torch.get_num_threads()}")
    unknown = set(args.ops) - set(CASES)
    if unknown:
        parser.error(f"unknown ops {sorted(unknown)}; choose from {list(CASES)}")
    for op in args.ops or list(CASES):
        measure(op, np.float32, args.n, args.repeat)
    if args.float64:
        measure("gelu", np.float64, args.n, args.repeat)
    print(f"load {os.getloadavg()}")


if __name__ == "__main__":
    main()
