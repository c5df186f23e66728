"""Dependencies: every runtime one is bounded above, and the lock file pins what CI and the image install.

``constraints.txt`` is written by ``scripts/lock.sh``; ``scripts/test.sh`` (which CI runs) and the
Dockerfile install with it as pip constraints. A dependency added to pyproject.toml without running the
script, or a bound the pin no longer meets, fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
#: ``name==version`` (pip freeze's form).
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)$")


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line.strip())
        assert match, f"constraints.txt: {line!r} is not an exact pin"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_every_runtime_dependency_has_an_upper_bound() -> None:
    for text in PROJECT["dependencies"]:
        requirement = Requirement(text)
        assert any(spec.operator in {"<", "<=", "==", "~="} for spec in requirement.specifier), (
            f"{text}: add an upper bound"
        )


def test_the_lock_pins_every_dependency_within_its_bounds() -> None:
    pins = _pins()
    declared = [*PROJECT["dependencies"], *PROJECT["optional-dependencies"]["dev"]]
    for text in declared:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in constraints.txt: run bash scripts/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {requirement.name}=={pins[name]}, outside {requirement.specifier}: "
            "run bash scripts/lock.sh"
        )


def test_ci_and_the_image_install_with_the_lock() -> None:
    test_script = (ROOT / "scripts" / "test.sh").read_text()
    assert re.search(r"pip install [^\n]*-c constraints\.txt -e '\.\[dev\]'", test_script)
    assert "bash scripts/test.sh" in (ROOT / ".ci" / "run").read_text()
    assert "pip install -c constraints.txt ." in (ROOT / "Dockerfile").read_text()
    assert "COPY" in (ROOT / "Dockerfile").read_text() and "constraints.txt" in (ROOT / "Dockerfile").read_text()
    lock_script = (ROOT / "scripts" / "lock.sh").read_text()
    assert "pip freeze --exclude-editable" in lock_script and '> "$work/constraints.txt"' in lock_script
