"""Checks that a package's ``__all__`` is its public API: exactly the public names it offers, each
defined in one of its modules (the modules themselves keep no ``__all__``: the package's is the list)."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from types import ModuleType


def defined_public_names(module: ModuleType) -> set[str]:
    """Public names the module's own source binds at top level (classes, functions, assignments)."""
    tree = ast.parse(inspect.getsource(module))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


def assert_all_lists_the_public_names(package_name: str) -> None:
    """The package's ``__all__`` lists exactly its public names (modules and ``annotations`` aside),
    and each is defined by the package or one of its modules."""
    package = importlib.import_module(package_name)
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert set(package.__all__) == public
    defined = defined_public_names(package)
    for info in pkgutil.iter_modules(package.__path__, prefix=f"{package_name}."):
        defined |= defined_public_names(importlib.import_module(info.name))
    assert public <= defined, sorted(public - defined)
