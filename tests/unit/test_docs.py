"""The documentation site builds in strict mode, offline, with references generated from the code.

``mkdocs build --strict`` (mkdocs.yml, docs/) fails on any warning: a broken link, an anchor no page has,
a page missing from the navigation. The settings, CLI and API references are written by
``docs/hooks/reference.py`` at build time; here they must name every setting, command and route. The
built HTML may link to other sites but must load nothing from them (no CDN fonts, scripts or styles).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: An element that loads a remote resource: a stylesheet, script, image, frame or font.
REMOTE_LOAD = re.compile(r"<(?:link|script|img|iframe|source)\b[^>]*\b(?:src|href)=[\"']?(?:https?:)?//", re.I)
#: A stylesheet that imports or loads something remote.
REMOTE_CSS = re.compile(r"(?:@import\s+(?:url\()?|url\()\s*[\"']?(?:https?:)?//", re.I)


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference_hook", ROOT / "docs" / "hooks" / "reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built once for this module with ``mkdocs build --strict``."""
    target = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{output}"
    assert "WARNING" not in output, output
    return target


def _page(site: Path, name: str) -> str:
    return (site / name / "index.html").read_text()


def test_the_site_builds_strict_with_every_page(site: Path) -> None:
    for page in ("quickstart", "concepts", "operations", "architecture", "benchmarks"):
        assert (site / page / "index.html").is_file(), page
    assert "install(app)" in _page(site, "quickstart")


def test_the_settings_reference_names_every_setting(site: Path) -> None:
    from function_runner.settings import Settings

    page = _page(site, "reference/settings")
    hook = _hook()
    undescribed = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undescribed == [], f"give these settings a description (the reference shows it): {undescribed}"
    for name, field in Settings.model_fields.items():
        for env in hook._env_names(name, field, Settings.model_config):
            assert f"<code>{env}</code>" in page, f"{env} is missing from the settings reference"
    assert "<code>FUNCTION_RUNNER_DATABASE_URL</code>" in page
    assert "<code>FUNCTION_RUNNER_ENCRYPTION_KEY</code>" in page


def test_the_cli_reference_names_every_command_and_option(site: Path) -> None:
    import typer.main

    from function_runner.cli import app

    page = _page(site, "reference/cli")
    root = typer.main.get_command(app)
    commands = list(_hook()._commands(root, root.context_class(root, info_name="function-runner")))
    assert len(commands) > 10
    for command, ctx in commands:
        assert ctx.command_path in page, f"{ctx.command_path} is missing from the CLI reference"
        for param in command.get_params(ctx):
            for opt in param.opts if getattr(param, "param_type_name", "") == "option" else []:
                assert opt in page, f"{ctx.command_path} {opt} is missing from the CLI reference"
    assert "dlq replay-all" in page and "--dry-run" in page


def test_the_api_reference_names_every_route(site: Path) -> None:
    page = _page(site, "reference/api")
    paths = _hook().openapi_schema()["paths"]
    assert len(paths) > 10
    for path, methods in paths.items():
        for method in methods:
            assert f"{method.upper()} {path}" in page, f"{method.upper()} {path} is missing from the API reference"
    assert 'id="schema-ErrorEnvelope"' in page


def test_the_site_loads_nothing_from_the_internet(site: Path) -> None:
    for html in site.rglob("*.html"):
        found = REMOTE_LOAD.search(html.read_text())
        assert not found, f"{html.relative_to(site)} loads a remote resource: {found.group(0)}"
    for css in site.rglob("*.css"):
        found = REMOTE_CSS.search(css.read_text())
        assert not found, f"{css.relative_to(site)} loads a remote resource: {found.group(0)}"
