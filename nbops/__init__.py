"""nbops: PyTorch's neural-network ops as Numba kernels for NumPy and Numba users.

``import nbops`` compiles nothing: each kernel compiles (or loads from the
on-disk cache) on its first call.
"""

from . import nn, scalar
from ._ops.activation import (
                          elu,
                          hardtanh,
                          leaky_relu,
                          logsigmoid,
                          prelu,
                          relu,
                          relu6,
                          sigmoid,
                          softplus,
                          softshrink,
                          softsign,
                          tanh,
                          threshold,
)
from ._ops.classification import cross_entropy, nll_loss
from ._ops.distance import pairwise_distance
from ._ops.dropout import dropout, dropout2d, dropout3d, dropout_mask
from ._ops.linear import linear
from ._ops.losses import (
                          binary_cross_entropy,
                          binary_cross_entropy_with_logits,
                          kl_div,
                          l1_loss,
                          mse_loss,
                          smooth_l1_loss,
)
from ._ops.normalization import batch_norm
from ._ops.softmax import log_softmax, softmax, softmin
from .warmup import warmup

__version__ = "0.1.0"

__all__ = ["scalar", "warmup", "relu", "relu6", "elu", "prelu", "leaky_relu", "threshold",
           "hardtanh", "sigmoid", "tanh", "logsigmoid", "softplus", "softshrink",
           "softsign", "batch_norm", "linear", "pairwise_distance",
           "l1_loss", "mse_loss", "smooth_l1_loss", "kl_div", "binary_cross_entropy",
           "binary_cross_entropy_with_logits",
           "softmax", "log_softmax", "softmin", "cross_entropy", "nll_loss", "nn",
           "dropout", "dropout2d", "dropout3d", "dropout_mask"]
