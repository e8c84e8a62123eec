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

Training: every module has ``backward(grad_output)`` (there is no autograd).
``forward`` keeps what the backward needs (nothing inside
``nbops.no_grad()``); ``backward`` returns the gradient of the input and adds
the parameters' gradients (``+=``, as PyTorch) into a store beside the
parameters, keyed by the parameter array: :func:`get_grad` (PyTorch's
``param.grad``), :func:`set_grad`, ``model.named_grads()`` by ``state_dict``
name, ``model.zero_grad()``. Loss modules' ``backward(grad_output=1.0)`` start
the chain: ``model.backward(criterion.backward())``.

>>> import numpy as np, nbops.nn as nn
>>> model = nn.Sequential(nn.Linear(4, 8, rng=0), nn.ReLU(), nn.Linear(8, 2, rng=1))
>>> model.eval()(np.ones((3, 4), np.float32)).shape
(3, 2)
>>> criterion = nn.MSELoss()
>>> loss = criterion(model(np.ones((3, 4), np.float32)), np.zeros((3, 2), np.float32))
>>> model.backward(criterion.backward()).shape
(3, 4)
>>> nn.get_grad(model[0].weight).shape
(8, 4)
"""

from .._grad import get_grad, set_grad
from . import activation as _activation
from . import loss as _loss
from ._module import Module, Parameter, Sequential
from .distance import CosineSimilarity, PairwiseDistance
from .dropout import AlphaDropout, Dropout, Dropout1d, Dropout2d, Dropout3d, FeatureAlphaDropout
from .linear import Bilinear, Identity, Linear
from .normalization import (
    BatchNorm1d,
    BatchNorm2d,
    BatchNorm3d,
    GroupNorm,
    InstanceNorm1d,
    InstanceNorm2d,
    InstanceNorm3d,
    LayerNorm,
    LocalResponseNorm,
    RMSNorm,
)

# the activation and loss classes: those generated from the op table and the
# hand-written ones
globals().update({_name: getattr(_activation, _name) for _name in _activation.__all__})
globals().update({_name: getattr(_loss, _name) for _name in _loss.__all__})

__all__ = ["Module", "Parameter", "Sequential", "get_grad", "set_grad", "Identity",
           *_activation.__all__,
           "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "RMSNorm", "Linear",
           "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
           "LocalResponseNorm", "Bilinear",
           "Dropout",
           "Dropout1d", "AlphaDropout", "FeatureAlphaDropout",
           "Dropout2d", "Dropout3d", "PairwiseDistance", "CosineSimilarity", *_loss.__all__]
