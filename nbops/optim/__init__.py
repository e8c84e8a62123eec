"""Optimizers and learning-rate schedulers, PyTorch's ``torch.optim`` for nbops' parameters.

:class:`SGD`, :class:`Adam` and :class:`AdamW` update plain parameter arrays
(``model.parameters()``) in place from the gradients that the modules'
backwards leave in nbops' gradient store, with PyTorch's update formulas and
roundings, parameter groups, and ``state_dict()``/``load_state_dict()`` in
PyTorch's layout. Each parameter's update is one fused kernel (multi-threaded
on large arrays; a CUDA kernel for device arrays). Schedulers are in
:mod:`nbops.optim.lr_scheduler`.

The training loop reads as PyTorch's::

    opt = nbops.optim.Adam(model.parameters(), lr=1e-3)
    for x, y in batches:
        opt.zero_grad()
        loss = criterion(model(x), y)
        model.backward(criterion.backward())
        opt.step()
"""

from . import lr_scheduler
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler"]
