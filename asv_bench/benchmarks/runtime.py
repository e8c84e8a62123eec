"""Cold-start costs, each in a fresh process (asv ``timeraw_``)."""


def timeraw_import_numba():
    return "import numba"


def timeraw_import_nbops():
    return "import nbops"


def timeraw_import_torch():
    return "import torch"


def timeraw_first_relu_call():
    # warm cache after the first run: measures loading, not compiling
    return """
import numpy as np
import nbops
nbops.relu(np.ones(100, dtype=np.float32))
"""


def timeraw_first_sigmoid_call():
    return """
import numpy as np
import nbops
nbops.sigmoid(np.ones(100, dtype=np.float32))
"""
