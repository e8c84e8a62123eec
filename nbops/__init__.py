"""nbops: PyTorch's neural-network ops as Numba kernels for NumPy and Numba users.

``import nbops`` compiles nothing: each kernel compiles (or loads from the
on-disk cache) on its first call.

The public functions (``nbops.relu``, ``nbops.softmax``, ...) are the op
table's (:mod:`nbops._ops.table`): the elementwise activations are declared in
:mod:`nbops._ops.activation`, the pointwise losses in :mod:`nbops._ops.losses`,
the other ops in :mod:`nbops._ops.registry`.
"""

from . import nn, optim, scalar
from ._grad import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from ._memory import empty_cache
from ._ops import activation as _activation  # noqa: F401  (registers the activations)
from ._ops import registry as _registry  # noqa: F401  (registers the other ops)
from ._ops import table as _table
from .warmup import warmup

__version__ = "0.1.0"

globals().update({_entry.name: _entry.function for _entry in _table.entries()})
globals().update(_table.backward_functions())  # nbops.relu_backward, ...

__all__ = ["scalar", "warmup", "empty_cache", *_table.public_names(), "nn", "optim", "no_grad",
           "enable_grad", "set_grad_enabled", "is_grad_enabled"]
