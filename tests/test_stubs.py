"""The type stubs name every public function and nn class (tools/gen_stubs.py)."""

import ast
import importlib.util
import os

import nbops
import nbops.nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_stubs", os.path.join(ROOT, "tools", "gen_stubs.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stubs_are_up_to_date():
    """Regenerate with ``python tools/gen_stubs.py`` after adding an op."""
    for rel, text in _generator().stubs().items():
        with open(os.path.join(ROOT, rel)) as f:
            assert f.read() == text, f"{rel} is stale: run python tools/gen_stubs.py"


def _defined(path):
    with open(os.path.join(ROOT, path)) as f:
        tree = ast.parse(f.read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.AnnAssign):
            names.add(node.target.id)
    return names


def test_every_public_name_is_in_the_stubs():
    assert set(nbops.__all__) <= _defined("nbops/__init__.pyi")
    assert set(nbops.nn.__all__) <= _defined("nbops/nn/__init__.pyi")
    assert os.path.exists(os.path.join(ROOT, "nbops", "py.typed"))
