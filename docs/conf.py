"""Sphinx configuration of the nbops documentation.

Build (no network needed; the plots and the API pages are generated here):

    python -m sphinx -W -b html docs docs/_build/html
    python -m sphinx -W -b doctest docs docs/_build/doctest
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))

os.environ.setdefault("MPLBACKEND", "Agg")

import nbops_api  # noqa: E402
import nbops_plots  # noqa: E402

import nbops  # noqa: E402
import nbops.nn  # noqa: E402

# -- project -------------------------------------------------------------------
project = "nbops"
author = "the nbops developers"
copyright = "the nbops developers"
version = release = nbops.__version__

# -- generated sources: API pages from __all__, plots, the benchmark table -----
nbops_api.write_api_pages(HERE)
_gen = os.path.join(HERE, "_generated")
_plots = os.path.join(_gen, "plots")
ACTIVATION_PLOTS = nbops_plots.activation_plots(_plots)
nbops_plots.benchmark_plot(os.path.join(HERE, "benchmarks.csv"), _plots)
nbops_plots.benchmark_table(os.path.join(HERE, "benchmarks.csv"),
                            os.path.join(_gen, "benchmark_table.rst"))
nbops_plots.machine_block(os.path.join(HERE, "benchmarks.csv"),
                          os.path.join(_gen, "benchmark_machine.rst"))
nbops_plots.fusion_table(os.path.join(HERE, "fusion.csv"),
                         os.path.join(_gen, "fusion_table.rst"))
nbops_plots.machine_block(os.path.join(HERE, "fusion.csv"),
                          os.path.join(_gen, "fusion_machine.rst"))
nbops_plots.perf_table(os.path.join(HERE, "perf_table.csv"),
                       os.path.join(_gen, "perf_table.rst"))
nbops_plots.perf_table(os.path.join(HERE, "perf_table_backward.csv"),
                       os.path.join(_gen, "perf_table_backward.rst"), columns=("dtype",))

# Tags for ``.. only::`` blocks that depend on what exists in this build.
if callable(getattr(nbops, "dropout", None)):
    tags.add("nbops_dropout")  # noqa: F821 (Sphinx defines ``tags`` in conf.py)
if nbops_api._try_import("nbops.nn") is not None:
    tags.add("nbops_nn")  # noqa: F821

# -- extensions ----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "_generated/*.rst", "Thumbs.db", ".DS_Store"]
root_doc = "index"

autosummary_generate = True
autosummary_generate_overwrite = True
autosummary_imported_members = True
autosummary_context = {"activation_plots": ACTIVATION_PLOTS}
autodoc_default_options = {}
autodoc_typehints = "none"

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# numpydoc validation: every docstring autodoc renders is checked, and a failure is
# a warning, so an error with -W. The checks: a summary that starts with a capital
# and ends with a period (SS01-SS04); every parameter of the signature
# documented and no unknown ones (PR01, PR02), with a space before the type's colon
# (PR10); a Returns section where the function returns a value (RT01) or Yields for
# a generator (YD01); known section names in numpydoc's order (GL06, GL07); reST
# directives with two colons (GL10). Parameter order (PR03) is not checked: the
# losses document PyTorch's deprecated ``size_average``/``reduce`` last although the
# signature (PyTorch's) has them in the middle.
numpydoc_validation_checks = {"SS01", "SS02", "SS03", "SS04", "PR01", "PR02", "PR10",
                              "RT01", "YD01", "GL06", "GL07", "GL10"}


# Not validated: members Python or numpydoc generate (private names, dunder methods).
numpydoc_validation_exclude = {
    r"\._[^.]*$",  # private and dunder members
}

# Doctests: every ``>>>`` example in the docstrings (pulled in by autodoc) and
# in the guides runs with these names defined.
doctest_global_setup = """
import numpy as np
import nbops
try:
    import nbops.nn
    nbops_nn_missing = False
except ImportError:
    nbops_nn_missing = True
nbops_dropout_missing = not callable(getattr(nbops, "dropout", None))
"""
import doctest  # noqa: E402

doctest_default_flags = (doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
                         | doctest.DONT_ACCEPT_TRUE_FOR_1)

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"nbops {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False
