"""``python -m nbops``: a short tour of nbops on this machine.

Shows every activation on a sample array, the same ops called from inside a
user's ``@njit`` function, and a speed comparison with NumPy one-liners.
"""

import argparse
import time

import numpy as np

import nbops

SAMPLE = np.array([-3.0, -1.0, -0.1, 0.0, 0.1, 1.0, 3.0, np.inf, np.nan], dtype=np.float32)

# nbops op -> NumPy one-liner computing the same thing (the baseline to beat)
NUMPY_EQUIVALENTS = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "softplus": lambda x: np.logaddexp(x, 0),
    "logsigmoid": lambda x: -np.logaddexp(-x, 0),
    "elu": lambda x: np.where(x > 0, x, np.expm1(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
}


def _best_time(fn, repeat):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def show_activations():
    print(f"input: {SAMPLE}")
    print("(float32 in, float32 out; NaN and inf follow PyTorch)\n")
    for name in nbops.activations.__all__:
        fn = getattr(nbops, name)
        if name == "prelu":
            y = fn(SAMPLE, np.array([0.25], dtype=np.float32))
        elif name == "threshold":
            y = fn(SAMPLE, 0.5, -1.0)
        else:
            y = fn(SAMPLE)
        print(f"  {name:<11} {np.array2string(y, precision=3, max_line_width=200)}")


def show_njit():
    from numba import njit

    @njit
    def two_layer(x):  # nbops ops called by name inside user code
        return nbops.tanh(nbops.leaky_relu(x, 0.1))

    print("\ninside @njit: tanh(leaky_relu(x, 0.1)) =",
          np.array2string(two_layer(SAMPLE[:7]), precision=3))


def show_speed(size, repeat):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(size).astype(np.float32)
    print(f"\nspeed on {size:,} float32 elements (best of {repeat}):")
    print(f"  {'op':<11} {'nbops ms':>9} {'NumPy ms':>9} {'speed-up':>9}")
    for name, np_fn in NUMPY_EQUIVALENTS.items():
        fn = getattr(nbops, name)
        fn(x)  # compile or load from the cache
        t_nb = _best_time(lambda: fn(x), repeat)
        t_np = _best_time(lambda: np_fn(x), repeat)
        print(f"  {name:<11} {t_nb * 1e3:9.2f} {t_np * 1e3:9.2f} {t_np / t_nb:8.1f}x")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nbops", description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000,
                        help="elements in the speed comparison (default 1e6)")
    parser.add_argument("--repeat", type=int, default=5, help="timing repeats (default 5)")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed comparison")
    args = parser.parse_args(argv)
    print(f"nbops {nbops.__version__}: PyTorch's NN ops as Numba kernels\n")
    show_activations()
    show_njit()
    if not args.no_speed:
        show_speed(args.size, args.repeat)


if __name__ == "__main__":
    main()
