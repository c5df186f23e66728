"""The names a module defines at its top level, to check its ``__all__`` against."""

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
    """Each module of the package lists in ``__all__`` exactly the public names it defines, and the
    package lists exactly the public names it takes from its modules (none but these are public)."""
    package = importlib.import_module(package_name)
    exported: set[str] = set()
    for info in pkgutil.iter_modules(package.__path__, prefix=f"{package_name}."):
        module = importlib.import_module(info.name)
        assert set(module.__all__) == defined_public_names(module), info.name
        exported |= set(module.__all__)
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, ModuleType) and name != "annotations"
    }
    assert set(package.__all__) == public
    assert public <= exported | defined_public_names(package)
