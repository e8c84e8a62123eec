"""The losses of issue 17 beside PyTorch CPU: value (``Loss17``), and value with the
gradient (``Loss17WithGrad``: ``nbops.<loss>_with_grad``, one pass, against
PyTorch's forward plus backward). Reduction ``'mean'``, float32.

soft_margin_loss and hinge_embedding_loss are pointwise losses of the op table,
so asv_bench/benchmarks/losses.py and backward_losses.py time them too; here
they sit beside the hand-written poisson_nll_loss (both ``log_input`` variants).
"""

import numpy as np

import nbops

from ._common import F, needs_torch, random_array, torch


def _signs(size, dtype, seed):
    return np.where(np.random.default_rng(seed).uniform(size=size) < 0.5, -1, 1).astype(dtype)


def _counts(size, dtype, seed):
    return np.random.default_rng(seed).poisson(2.0, size).astype(dtype)


def _rates(size, dtype, seed):
    return np.random.default_rng(seed).uniform(0.1, 3.0, size).astype(dtype)


#: name -> (function name, input maker, target maker, options)
CASES = {
    "soft_margin_loss": ("soft_margin_loss", random_array, _signs, {}),
    "hinge_embedding_loss": ("hinge_embedding_loss", random_array, _signs, {}),
    "poisson_nll_loss": ("poisson_nll_loss", random_array, _counts, {}),
    "poisson_nll_loss-rate-full": ("poisson_nll_loss", _rates, _counts,
                                   {"log_input": False, "full": True}),
}


def _setup(case, size, dtype):
    name, make_x, make_t, options = CASES[case]
    return name, make_x(size, dtype, 0), make_t(size, dtype, 1), options


class Loss17:
    params = (sorted(CASES), [100_000, 10_000_000], ["float32"], ["nbops", "torch"])
    param_names = ["loss", "size", "dtype", "library"]

    def setup(self, case, size, dtype, library):
        name, x, t, options = _setup(case, size, dtype)
        if library == "torch":
            needs_torch()
            fn, tx, tt = getattr(F, name), torch.from_numpy(x), torch.from_numpy(t)
            self.fn = lambda: fn(tx, tt, **options)
        else:
            fn = getattr(nbops, name)
            self.fn = lambda: fn(x, t, **options)
        self.fn()  # compile / load from the cache outside the timing

    def time_loss(self, case, size, dtype, library):
        self.fn()


class Loss17WithGrad:
    params = (sorted(CASES), [100_000, 10_000_000], ["float32"], ["nbops", "torch"])
    param_names = ["loss", "size", "dtype", "library"]

    def setup(self, case, size, dtype, library):
        name, x, t, options = _setup(case, size, dtype)
        if library == "torch":
            needs_torch()
            fn = getattr(F, name)
            tx, tt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(t)

            def run():
                tx.grad = None
                fn(tx, tt, **options).backward()

            self.fn = run
        else:
            fn = getattr(nbops, f"{name}_with_grad")
            self.fn = lambda: fn(x, t, **options)
        self.fn()

    def time_with_grad(self, case, size, dtype, library):
        self.fn()
