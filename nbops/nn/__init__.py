"""nbops.nn: PyTorch-compatible layer objects over the nbops functional ops.

Each class has ``torch.nn``'s constructor signature, defaults, validation,
parameter and buffer names and repr; parameters and buffers are NumPy arrays
(float32 by default, as PyTorch), so a PyTorch checkpoint converted with
``{k: v.numpy() for k, v in model.state_dict().items()}`` loads with
``load_state_dict``. Layers hold hyperparameters and state only: ``forward``
calls the functional op (documented on ``nbops.<op>``). Random initialization
and dropout masks are driven by an ``rng=`` argument (None, an int seed or a
``numpy.random.Generator``). ``model.to("cuda")`` / ``model.cuda()`` move every
parameter and buffer to the GPU as Numba device arrays (the module then runs
the CUDA kernels on device inputs), ``model.to("cpu")`` / ``model.cpu()``
bring them back; see :class:`Module`.

>>> import numpy as np, nbops.nn as nn
>>> model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 2, rng=1))
>>> model.eval()(np.ones((3, 4), np.float32)).shape
(3, 2)
"""

from . import activation as _activation
from . import loss as _loss
from ._module import Module, Parameter, Sequential
from .distance import PairwiseDistance
from .dropout import Dropout, Dropout2d, Dropout3d
from .linear import Identity, Linear
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d, LayerNorm, RMSNorm

# the activation and loss classes: those generated from the op table and the
# hand-written ones
globals().update({_name: getattr(_activation, _name) for _name in _activation.__all__})
globals().update({_name: getattr(_loss, _name) for _name in _loss.__all__})

__all__ = ["Module", "Parameter", "Sequential", "Identity", *_activation.__all__,
           "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "RMSNorm", "Linear", "Dropout",
           "Dropout2d", "Dropout3d", "PairwiseDistance", *_loss.__all__]
