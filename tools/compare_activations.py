"""Issue #2 figures in one run: every activation at 1e7 float32 (nbops allocating,
nbops out=, torch, NumPy one-liner), the copy bandwidth, and 100-element call times.

    python tools/compare_activations.py      (needs torch==2.13.0)
"""
import time, os, numpy as np, torch, torch.nn.functional as F, nbops
import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'asv_bench'))
from benchmarks.activations import NUMPY, TORCH, NBOPS_ARGS
print('load', os.getloadavg(), 'torch threads', torch.get_num_threads())
def best(f, n=7):
    f(); b = 1e9
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b
N = 10**7
x = np.random.default_rng(0).standard_normal(N).astype(np.float32)
out = np.empty_like(x); t = torch.from_numpy(x)
copy = best(lambda: np.copyto(out, x)); bw = 2 * x.nbytes / copy
print(f'copy {copy*1e3:.2f} ms = {bw/1e9:.1f} GB/s')
ops = ["relu","relu6","elu","prelu","leaky_relu","threshold","hardtanh","sigmoid","tanh","logsigmoid","softplus","softshrink","softsign"]
print(f"{'op':<11}{'nbops':>8}{'nb out':>8}{'torch':>8}{'numpy':>8}{'nb/torch':>9}{'nb/np':>7}{'out/torch':>10}{'bw(out)':>8}")
for op in ops:
    nb = getattr(nbops, op); args = NBOPS_ARGS.get(op, ())
    a = best(lambda: nb(x, *args)); ao = best(lambda: nb(x, *args, out=out))
    tt = best(lambda: TORCH[op](t)); nn = best(lambda: NUMPY[op](x), 3)
    print(f"{op:<11}{a*1e3:8.2f}{ao*1e3:8.2f}{tt*1e3:8.2f}{nn*1e3:8.2f}{a/tt:9.2f}{a/nn:7.2f}{ao/tt:10.2f}{(2*x.nbytes/ao)/bw:8.2f}")
xs = x[:100].copy()
import timeit
def small(f): f(); return min(timeit.repeat(f, number=20000, repeat=5))/20000*1e6
for op in ["relu", "sigmoid", "softplus", "logsigmoid"]:
    nb = getattr(nbops, op)
    print(f"100 elems {op}: nbops {small(lambda: nb(xs)):.2f} us, numpy {small(lambda: NUMPY[op](xs)):.2f} us")
