"""Public scalar cores: one element in, one element out, usable inside ``@njit``."""

from .activations import (
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
from .losses import (
                          binary_cross_entropy,
                          binary_cross_entropy_with_logits,
                          binary_cross_entropy_with_logits_pos_weight,
                          kl_div,
                          kl_div_log_target,
                          l1_loss,
                          mse_loss,
                          smooth_l1_loss,
)
from .random import philox4x32_10

__all__ = ["relu", "relu6", "elu", "prelu", "leaky_relu", "threshold", "hardtanh",
           "sigmoid", "tanh", "logsigmoid", "softplus", "softshrink", "softsign",
           "l1_loss", "mse_loss", "smooth_l1_loss", "kl_div", "kl_div_log_target",
           "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "binary_cross_entropy_with_logits_pos_weight", "philox4x32_10"]
