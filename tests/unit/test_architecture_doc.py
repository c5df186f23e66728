"""docs/architecture.md matches the tree: every package and module of ``error_handling/``,
``function_runner/`` and ``api/``, and every table of the models' metadata, is mentioned there.

A module counts as mentioned by its slashed path (``function_runner/wrapper/task.py``) or its dotted name
(``function_runner.wrapper.task``); a package by ``function_runner/wrapper/``, its ``__init__.py`` or its
dotted name; a table by its name. A module added, moved or split without a line in the document fails
here, naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

from error_handling.persistence.models import Base

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("error_handling", "function_runner", "api")
DOC = (ROOT / "docs" / "architecture.md").read_text()


def _mentioned(*spellings: str) -> bool:
    """Whether the document names any of ``spellings`` as a whole path or name (not inside a longer one)."""
    return any(re.search(rf"(?<![\w./]){re.escape(text)}(?![\w/])", DOC) for text in spellings)


def _modules() -> list[Path]:
    found = []
    for package in PACKAGES:
        found += [path.relative_to(ROOT) for path in sorted((ROOT / package).rglob("*.py"))]
    return [path for path in found if "__pycache__" not in path.parts]


def test_the_walk_finds_the_tree() -> None:
    modules = {path.as_posix() for path in _modules()}
    assert {"function_runner/wrapper/task.py", "error_handling/policy.py", "api/main.py"} <= modules


def test_every_package_and_module_is_documented() -> None:
    missing = []
    for path in _modules():
        dotted = ".".join(path.with_suffix("").parts)
        if path.name == "__init__.py":
            package = path.parent.as_posix()
            spellings = (f"{package}/", path.as_posix(), dotted.removesuffix(".__init__"))
        else:
            spellings = (path.as_posix(), dotted)
        if not _mentioned(*spellings):
            missing.append(spellings[0])
    assert not missing, "docs/architecture.md does not mention: " + ", ".join(missing)


def test_every_table_is_documented() -> None:
    tables = sorted(Base.metadata.tables)
    assert "fr_tasks" in tables
    missing = [table for table in tables if not _mentioned(table)]
    assert not missing, "docs/architecture.md does not mention the tables: " + ", ".join(missing)
