"""Optimizer steps, nbops.optim beside torch.optim (CPU).

One step over 10 million float32 parameters (one array) and over the demo MLP's
parameters (``python -m nbops``: Linear(16, 64), BatchNorm1d(64), Linear(64, 4):
six small arrays). PyTorch runs its fused CPU kernel (``fused=True``), its
multi-tensor path (``foreach=True``) and its single-tensor path
(``foreach=False``). ``copy`` is the copy-bandwidth baseline for the 10M size:
``np.copyto`` of as many bytes as the step moves (Adam: reads param, grad,
exp_avg, exp_avg_sq and writes param, exp_avg, exp_avg_sq, 7 x 4 bytes per
parameter; SGD with momentum: 5 x 4 bytes), so ``copy / nbops`` is the share of
copy bandwidth the step reaches.

Targets: Adam at 10M float32 at most 1.0x PyTorch's fastest, and at least 70%
of the copy bandwidth.
"""

import numpy as np

import nbops
from nbops._grad import set_grad
from nbops.data import HIDDEN, N_CLASSES, N_FEATURES

from ._common import built_once, needs_torch, random_array, torch

SIZES = {"10M": [(10_000_000,)],
         "demo_mlp": [(HIDDEN, N_FEATURES), (HIDDEN,), (HIDDEN,), (HIDDEN,),
                      (N_CLASSES, HIDDEN), (N_CLASSES,)]}
OPTIMIZERS = {"adam": ("Adam", dict(lr=1e-3), 7),
              "sgd_momentum": ("SGD", dict(lr=1e-3, momentum=0.9), 5)}
LIBRARIES = ["nbops", "torch_fused", "torch_foreach", "torch_single", "copy"]


@built_once
class OptimizerStep:
    params = (list(SIZES), list(OPTIMIZERS), LIBRARIES)
    param_names = ["size", "optimizer", "library"]
    timeout = 300

    def setup(self, size, optimizer, library):
        name, kwargs, streams = OPTIMIZERS[optimizer]
        shapes = SIZES[size]
        params = [random_array(int(np.prod(s)), "float32", i).reshape(s)
                  for i, s in enumerate(shapes)]
        grads = [random_array(p.size, "float32", 10 + i).reshape(p.shape) * np.float32(1e-3)
                 for i, p in enumerate(params)]
        if library == "copy":
            if size != "10M":
                raise NotImplementedError("the copy baseline is for the 10M size")  # asv: skip
            n = params[0].size * streams // 2  # read + write as many bytes as the step moves
            src, dst = np.ones(n, np.float32), np.empty(n, np.float32)
            self.fn = lambda: np.copyto(dst, src)
        elif library == "nbops":
            for p, g in zip(params, grads, strict=True):
                set_grad(p, g)
            self.fn = getattr(nbops.optim, name)(params, **kwargs).step
        else:
            needs_torch()
            tparams = [torch.from_numpy(p).requires_grad_() for p in params]
            for tp, g in zip(tparams, grads, strict=True):
                tp.grad = torch.from_numpy(g)
            mode = {"torch_fused": dict(fused=True), "torch_foreach": dict(foreach=True),
                    "torch_single": dict(foreach=False)}[library]
            self.fn = getattr(torch.optim, name)(tparams, **kwargs, **mode).step
        self.fn()  # compile / allocate the state

    def time_step(self, size, optimizer, library):
        self.fn()
