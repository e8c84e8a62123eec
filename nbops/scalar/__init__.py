"""Public scalar cores: one element in, one element out, usable inside ``@njit``."""

from . import activations as _activations
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

# every activation core (nbops/scalar/activations.py lists them in its __all__)
globals().update({_name: getattr(_activations, _name) for _name in _activations.__all__})

__all__ = [*_activations.__all__,
           "l1_loss", "mse_loss", "smooth_l1_loss", "kl_div", "kl_div_log_target",
           "binary_cross_entropy", "binary_cross_entropy_with_logits",
           "binary_cross_entropy_with_logits_pos_weight", "philox4x32_10"]
