"""Public scalar cores: one element in, one element out, usable inside ``@njit``."""

from . import activations as _activations
from . import losses as _losses
from .random import philox4x32_10

# every activation core (nbops/scalar/activations.py lists them in its __all__) and
# every loss core (nbops/scalar/losses.py's __all__, less its re-exported math helpers)
_LOSS_CORES = [_n for _n in _losses.__all__ if _n not in ("log", "log1p", "select")]
globals().update({_name: getattr(_activations, _name) for _name in _activations.__all__})
globals().update({_name: getattr(_losses, _name) for _name in _LOSS_CORES})

__all__ = [*_activations.__all__, *_LOSS_CORES, "philox4x32_10"]
