"""The losses of issue 17 beside PyTorch CPU: value (``Loss17``), and value with the
gradient (``Loss17WithGrad``: ``nbops.<loss>_with_grad``, one pass, against
PyTorch's forward plus backward). Reduction ``'mean'``, float32.

soft_margin_loss and hinge_embedding_loss are pointwise losses of the op table,
so asv_bench/benchmarks/losses.py and backward_losses.py time them too; here
they sit beside the hand-written poisson_nll_loss (both ``log_input`` variants)
and gaussian_nll_loss (a variance per element). ``PairLoss17``: the losses of
(65536, 128) arrays with more than one input (margin_ranking_loss,
gaussian_nll_loss with one variance per row) and multilabel_soft_margin_loss
(per-class weight), value and value with the gradients.
"""

import numpy as np

import nbops

from ._common import F, built_once, needs_torch, random_array, torch


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
    "gaussian_nll_loss": ("gaussian_nll_loss", random_array, random_array, {}),
}


def _setup(case, size, dtype):
    name, make_x, make_t, options = CASES[case]
    x, t = make_x(size, dtype, 0), make_t(size, dtype, 1)
    if name == "gaussian_nll_loss":
        return name, x, t, {**options, "var": _rates(size, dtype, 2)}
    return name, x, t, options


def _torch_options(options):
    return {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
            for k, v in options.items()}


@built_once
class Loss17:
    params = (sorted(CASES), [100_000, 10_000_000], ["float32"], ["nbops", "torch"])
    param_names = ["loss", "size", "dtype", "library"]

    def setup(self, case, size, dtype, library):
        name, x, t, options = _setup(case, size, dtype)
        if library == "torch":
            needs_torch()
            fn, tx, tt = getattr(F, name), torch.from_numpy(x), torch.from_numpy(t)
            options = _torch_options(options)
            self.fn = lambda: fn(tx, tt, **options)
        else:
            fn = getattr(nbops, name)
            self.fn = lambda: fn(x, t, **options)

    def time_loss(self, case, size, dtype, library):
        self.fn()


@built_once
class Loss17WithGrad:
    params = (sorted(CASES), [100_000, 10_000_000], ["float32"], ["nbops", "torch"])
    param_names = ["loss", "size", "dtype", "library"]

    def setup(self, case, size, dtype, library):
        name, x, t, options = _setup(case, size, dtype)
        if library == "torch":
            needs_torch()
            fn = getattr(F, name)
            tx, tt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(t)
            options = _torch_options(options)

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


PAIR_SHAPE = (65536, 128)


def _pair_setup(loss, library, dtype="float32"):
    """(function, args) of one (65536, 128) case for ``library``."""
    x = random_array(PAIR_SHAPE, dtype, seed=0)
    if loss == "margin_ranking_loss":
        args = (x, random_array(PAIR_SHAPE, dtype, seed=1), _signs(PAIR_SHAPE, dtype, 2))
    elif loss == "gaussian_nll_loss":
        args = (x, random_array(PAIR_SHAPE, dtype, seed=1), _rates(PAIR_SHAPE[:1], dtype, 2))
    else:  # multilabel_soft_margin_loss
        args = (x, (random_array(PAIR_SHAPE, dtype, seed=1) > 0).astype(dtype),
                _rates(PAIR_SHAPE[1:], dtype, 2))
    if library == "torch":
        needs_torch()
        return getattr(F, loss), tuple(torch.from_numpy(a) for a in args)
    return getattr(nbops, loss), args


#: the arguments PyTorch's autograd differentiates (the targets and weights not)
DIFFERENTIABLE = {"gaussian_nll_loss": (0, 2), "margin_ranking_loss": (0, 1),
                  "multilabel_soft_margin_loss": (0,)}


@built_once
class PairLoss17:
    params = (["gaussian_nll_loss", "margin_ranking_loss", "multilabel_soft_margin_loss"],
              ["value", "with_grad"], ["nbops", "torch"])
    param_names = ["loss", "mode", "library"]

    def setup(self, loss, mode, library):
        fn, args = _pair_setup(loss, library)
        if mode == "value":
            self.fn = lambda: fn(*args)
        elif library == "torch":
            for k in DIFFERENTIABLE[loss]:
                args[k].requires_grad_()

            def run():
                for a in args:
                    a.grad = None
                fn(*args).backward()

            self.fn = run
        else:
            wg = getattr(nbops, f"{loss}_with_grad")
            self.fn = lambda: wg(*args)
        self.fn()

    def time_loss(self, loss, mode, library):
        self.fn()
