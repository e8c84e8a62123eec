"""multi_margin_loss and multilabel_margin_loss (issue 17) beside PyTorch CPU, on
(65536, 128) float32 scores, reduction 'mean': the value (``time_loss``
'value'), the value with the input's gradient (``'with_grad'``:
``nbops.<loss>_with_grad``, one pass, against PyTorch's forward plus backward)
and the backward alone (``'backward'``: ``nbops.<loss>_backward`` against
autograd over a graph kept from one forward).

multi_margin_loss: one class index per row (p=1, and p=2 with a per-class
weight); multilabel_margin_loss: four class indices per row, then -1.
"""

import numpy as np

import nbops

from ._common import F, built_once, needs_torch, random_array, torch

SHAPE = (65536, 128)

#: case -> (function name, options)
CASES = {"multi_margin_loss": ("multi_margin_loss", {}),
         "multi_margin_loss-p2-weight": ("multi_margin_loss", {"p": 2, "weight": True}),
         "multilabel_margin_loss": ("multilabel_margin_loss", {})}


def _arrays(case):
    name, options = CASES[case]
    rng = np.random.default_rng(1)
    x = random_array(SHAPE, "float32", seed=0)
    if name == "multi_margin_loss":
        t = rng.integers(0, SHAPE[1], SHAPE[0])
    else:
        t = np.full(SHAPE, -1)
        t[:, :4] = rng.integers(0, SHAPE[1], (SHAPE[0], 4))
    if options.get("weight"):
        options = {**options, "weight": rng.uniform(0.5, 2.0, SHAPE[1]).astype(np.float32)}
    return name, x, t, options


@built_once
class ClassMarginLoss:
    params = (sorted(CASES), ["value", "with_grad", "backward"], ["nbops", "torch"])
    param_names = ["loss", "mode", "library"]

    def setup(self, case, mode, library):
        name, x, t, options = _arrays(case)
        if library == "torch":
            needs_torch()
            fn, tt = getattr(F, name), torch.from_numpy(t)
            options = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                       for k, v in options.items()}
            tx = torch.from_numpy(x).requires_grad_(mode != "value")
            if mode == "value":
                self.fn = lambda: fn(tx, tt, **options)
            elif mode == "with_grad":
                def run():
                    tx.grad = None
                    fn(tx, tt, **options).backward()

                self.fn = run
            else:
                loss = fn(tx, tt, **options)
                self.fn = lambda: torch.autograd.grad(loss, tx, retain_graph=True)
        elif mode == "value":
            fn = getattr(nbops, name)
            self.fn = lambda: fn(x, t, **options)
        elif mode == "with_grad":
            fn = getattr(nbops, f"{name}_with_grad")
            self.fn = lambda: fn(x, t, **options)
        else:
            fn = getattr(nbops, f"{name}_backward")
            self.fn = lambda: fn(1.0, x, t, **options)

    def time_loss(self, case, mode, library):
        self.fn()
