"""Public scalar cores: one element in, one element out, usable inside ``@njit``."""

from .activations import (elu, hardtanh, leaky_relu, logsigmoid, prelu, relu, relu6,
                          sigmoid, softplus, softshrink, softsign, tanh, threshold)

__all__ = ["relu", "relu6", "elu", "prelu", "leaky_relu", "threshold", "hardtanh",
           "sigmoid", "tanh", "logsigmoid", "softplus", "softshrink", "softsign"]
