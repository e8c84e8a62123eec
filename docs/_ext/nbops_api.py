"""Write the API reference pages from the packages' ``__all__`` at build time.

Called from ``conf.py`` before Sphinx reads any source, so that autosummary
sees a page listing every public name that exists *now*: a function added to
``nbops.__all__`` (or a class added to ``nbops.nn.__all__``) by a later commit
appears in the reference without editing the docs, and a subpackage that does
not exist yet (``nbops.nn``, ``nbops.dropout``) is left out instead of failing
the build.
"""

import importlib
import inspect
import os

#: Section of the functional reference for each defining module, in page order
#: (an op's module is its family's in the op table, ``nbops/_ops/table.py``).
FAMILIES = [
    ("nbops._ops.activation", "Activations", "Elementwise activations."),
    ("nbops._ops.softmax", "Softmax family", "Normalizations along an axis (default ``axis=-1``)."),
    ("nbops._ops.normalization", "Normalization", ""),
    ("nbops._ops.linear", "Linear", ""),
    ("nbops._ops.dropout", "Dropout",
     "Counter-based, reproducible masks (see :doc:`/guides/semantics`)."),
    ("nbops._ops.distance", "Distance", ""),
    ("nbops._ops.losses", "Losses", "Elementwise losses."),
    ("nbops._ops.classification", "Classification losses", ""),
    ("nbops.warmup", "Runtime", "Ahead-of-time compilation of the kernels."),
]

NN_GROUPS = [
    ("nbops.nn._module", "Containers and base classes"),
    ("nbops.nn.linear", "Linear"),
    ("nbops.nn.activation", "Activations"),
    ("nbops.nn.normalization", "Normalization"),
    ("nbops.nn.dropout", "Dropout"),
    ("nbops.nn.distance", "Distance"),
    ("nbops.nn.loss", "Losses"),
    ("nbops._grad", "Gradients"),
]


def _try_import(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _title(text, char):
    return f"{text}\n{char * len(text)}\n"


def _block(names, template=None):
    lines = [".. autosummary::", "   :toctree: generated", "   :nosignatures:"]
    if template:
        lines.append(f"   :template: {template}")
    lines.append("")
    lines += [f"   {n}" for n in names]
    return "\n".join(lines) + "\n"


def _module_of(qual, obj):
    """The family module of an op of the op table, else the module defining ``obj``."""
    from nbops._ops import table

    entry = table.TABLE.get(qual)
    if entry is not None:
        return f"nbops._ops.{entry.family}"
    return getattr(obj, "__module__", "") or ""


def _group(objs, groups, fallback):
    """``{section: [qualified names]}`` by the module each object is defined in."""
    out = {title: [] for _, title, *rest in groups}
    out[fallback] = []
    by_mod = {g[0]: g[1] for g in groups}
    for qual, obj in objs:
        out[by_mod.get(_module_of(qual, obj), fallback)].append(qual)
    return {k: v for k, v in out.items() if v}


def functional_page():
    import nbops
    public = [n for n in nbops.__all__ if not inspect.ismodule(getattr(nbops, n, None))]
    objs = [(n, getattr(nbops, n)) for n in public]
    # Public functions of nbops.dropout that are not (yet) re-exported at the top.
    drop = _try_import("nbops._ops.dropout")
    if drop is not None:
        for n in getattr(drop, "__all__", []):
            if n not in public and callable(getattr(drop, n, None)):
                objs.append((f"~nbops.dropout.{n}", getattr(drop, n)))
    groups = _group(objs, FAMILIES, "Other")
    text = [_title("Functional API: ``nbops``", "="),
            ".. currentmodule:: nbops\n",
            "Every name below is importable from the top-level package and callable from "
            "Python on NumPy arrays (or CUDA device arrays), and by the same name inside a "
            "user's ``@numba.njit`` function on NumPy arrays and scalars.\n",
            "This page is generated from ``nbops.__all__`` when the documentation is built.\n"]
    intro = {g[1]: g[2] for g in FAMILIES}
    for title, names in groups.items():
        text.append(_title(title, "-"))
        if intro.get(title):
            text.append(intro[title] + "\n")
        text.append(_block(names))
    if drop is None:
        text.append(_title("Dropout", "-"))
        text.append("``nbops.dropout``, ``dropout2d`` and ``dropout3d`` are planned "
                    "(see :doc:`/guides/semantics`); they are not in this build.\n")
    return "\n".join(text)


def scalar_page():
    import nbops.scalar as scalar
    names = list(scalar.__all__)
    return "\n".join([
        _title("Scalar cores: ``nbops.scalar``", "="),
        ".. automodule:: nbops.scalar\n   :no-members:\n",
        ".. currentmodule:: nbops.scalar\n",
        "One element in, one element out: ``@njit(inline='always')`` functions, the single "
        "source of each op's math, compiled into the CPU kernels, the ``@njit`` overloads "
        "and the CUDA kernels. Call them inside your own Numba loops to fuse several ops "
        "into one pass (see :doc:`/guides/njit`). Hyperparameters take the element's "
        "float type (a Python float next to a float32 element computes in float32). "
        "They can also be called from Python on scalars (each call "
        "compiles once per argument type).\n",
        "This page is generated from ``nbops.scalar.__all__``.\n",
        _block(names, "core.rst"),
    ])


def nn_page():
    nn = _try_import("nbops.nn")
    text = [_title("Layer objects: ``nbops.nn``", "=")]
    if nn is None:
        text.append("``nbops.nn`` (PyTorch-style layer objects) is not part of this build.\n")
        return "\n".join(text)
    text.append(".. automodule:: nbops.nn\n   :no-members:\n")
    text.append(".. currentmodule:: nbops.nn\n")
    text.append("This page is generated from ``nbops.nn.__all__``.\n")
    objs = [(n, getattr(nn, n)) for n in nn.__all__]
    groups = _group(objs, [(m, t, "") for m, t in NN_GROUPS], "Other")
    for title, names in groups.items():
        text.append(_title(title, "-"))
        classes = [n for n in names if inspect.isclass(getattr(nn, n))]
        functions = [n for n in names if n not in classes]  # get_grad, set_grad
        if classes:
            text.append(_block(classes, "autosummary/nnclass.rst"))
        if functions:
            text.append(_block(functions))
    return "\n".join(text)


def write_api_pages(srcdir):
    """(Re)write ``api/functional.rst``, ``api/scalar.rst`` and ``api/nn.rst``;
    a page is only rewritten when its text changed (keeps incremental builds quick)."""
    out = os.path.join(srcdir, "api")
    os.makedirs(out, exist_ok=True)
    for name, make in [("functional", functional_page), ("scalar", scalar_page),
                       ("nn", nn_page)]:
        path = os.path.join(out, name + ".rst")
        text = make()
        old = None
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                old = f.read()
        if text != old:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
