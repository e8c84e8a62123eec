"""Cold-start costs, each in a fresh process (asv ``timeraw_``).

After the first run of the suite the kernel cache is warm, so the
``FirstCall`` benchmarks measure loading compiled kernels, not compiling; the
``EmptyCache`` ones turn the disk cache off (``NBOPS_DISABLE_CACHE=1``) and
measure compilation. ``tools/measure_startup.py`` prints the same figures
(and their differences) in one run, from the scripts defined here.
"""

_SMALL_INPUTS = """
import numpy as np
x = np.linspace(-2, 2, 64, dtype=np.float32).reshape(8, 8)
labels = np.arange(8) % 8
w = np.ones((4, 8), np.float32)
"""

# one call per op family, as a service would make them
_FAMILY_CALLS = {
    "relu": "nbops.relu(x)",
    "sigmoid": "nbops.sigmoid(x)",
    "softmax": "nbops.softmax(x)",
    "log_softmax": "nbops.log_softmax(x)",
    "cross_entropy": "nbops.cross_entropy(x, labels)",
    "nll_loss": "nbops.nll_loss(x, labels)",
    "batch_norm": "nbops.batch_norm(x, None, None, training=True)",
    "linear": "nbops.linear(x, w, w[0, :4])",
    "mse_loss": "nbops.mse_loss(x, x[::-1])",
    "binary_cross_entropy": "nbops.binary_cross_entropy(abs(x) / 3, abs(x[::-1]) / 3)",
    "kl_div": "nbops.kl_div(x, abs(x[::-1]))",
    "pairwise_distance": "nbops.pairwise_distance(x, x[::-1])",
    "dropout": "nbops.dropout(x, 0.5)",
}
#: The "service start": import, then one call of each of these.
SERVICE_OPS = ("relu", "softmax", "cross_entropy", "batch_norm", "linear")


def timeraw_import_numba():
    return "import numba"


def timeraw_import_nbops():
    return "import nbops"


def timeraw_import_torch():
    return "import torch"


class FirstCall:
    """``import nbops`` plus the first call of one op family (small float32 input)."""

    params = sorted(_FAMILY_CALLS)
    param_names = ["family"]

    def timeraw_first_call(self, family):
        return "import nbops" + _SMALL_INPUTS + _FAMILY_CALLS[family]


def timeraw_service_start_nbops():
    """Import and one call each of relu, softmax, cross_entropy, batch_norm, linear."""
    return "import nbops" + _SMALL_INPUTS + "\n".join(_FAMILY_CALLS[k] for k in SERVICE_OPS)


def timeraw_service_start_torch():
    """The same five calls with PyTorch, for comparison."""
    return TORCH_SERVICE


TORCH_SERVICE = """
import torch
import torch.nn.functional as F
x = torch.linspace(-2, 2, 64).reshape(8, 8)
labels = torch.arange(8) % 8
w = torch.ones(4, 8)
F.relu(x)
F.softmax(x, -1)
F.cross_entropy(x, labels)
F.batch_norm(x, None, None, training=True)
F.linear(x, w, w[0, :4])
"""


_NO_CACHE = "import os\nos.environ['NBOPS_DISABLE_CACHE'] = '1'\n"


class FirstCallEmptyCache:
    """The same as :class:`FirstCall` with the disk cache off: compilation included."""

    params = sorted(_FAMILY_CALLS)
    param_names = ["family"]
    timeout = 120

    def timeraw_first_call(self, family):
        return _NO_CACHE + "import nbops" + _SMALL_INPUTS + _FAMILY_CALLS[family]


def timeraw_service_start_nbops_empty_cache():
    """The service start with every kernel compiled (the disk cache off)."""
    return _NO_CACHE + timeraw_service_start_nbops()


timeraw_service_start_nbops_empty_cache.timeout = 180
