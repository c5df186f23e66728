"""docker-compose.yml runs real ``function-runner`` command lines.

Every service built from this repository (``build: .``) runs the image's ENTRYPOINT, ``function-runner``,
with its ``command`` as arguments. Each command line must name a real command (and sub-command), and
every option it passes must be one that command accepts, so ``docker compose up`` cannot fail on a typo.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from celery.bin.worker import worker as celery_worker
from typer.testing import CliRunner

from function_runner.cli import app

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"

#: Wide enough that no option name is folded in the help table.
HELP_ENV = {"COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def _built_here(service: dict[str, Any]) -> bool:
    build = service.get("build")
    context = build.get("context") if isinstance(build, dict) else build
    return context is not None and Path(ROOT, str(context)).resolve() == ROOT


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command")
    if isinstance(command, str):
        return shlex.split(command)
    assert isinstance(command, list), f"command must be a list or a string, not {command!r}"
    return [str(word) for word in command]


SERVICES = {name: service for name, service in _compose()["services"].items() if _built_here(service)}


def _resolve(words: list[str]) -> tuple[list[str], Any, list[str]]:
    """Walk the CLI's command groups along ``words``: (the command path, the command, the arguments)."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    rest = list(words)
    while hasattr(command, "commands"):  # a group: the next word must be one of its commands
        assert rest, f"{' '.join(['function-runner', *path])} needs a sub-command"
        name = rest.pop(0)
        assert name in command.commands, (
            f"{name!r} is not a command of {' '.join(['function-runner', *path])} (has {sorted(command.commands)})"
        )
        path.append(name)
        command = command.commands[name]
    return path, command, rest


def _options(args: list[str]) -> list[str]:
    return [arg.split("=", 1)[0] for arg in args if re.match(r"^--?[A-Za-z]", arg)]


def _help(path: list[str]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], env=HELP_ENV)
    assert result.exit_code == 0, result.output
    return result.output


def test_the_image_runs_the_function_runner_cli() -> None:
    entrypoints = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith("ENTRYPOINT")]
    assert entrypoints == ['ENTRYPOINT ["function-runner"]']
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["function-runner"] == "function_runner.cli:main"


def test_the_fleet_has_its_services_built_from_this_repository() -> None:
    assert {"migrate", "worker", "dispatcher", "api"} <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_command_is_a_real_cli_command_with_accepted_options(name: str) -> None:
    words = _command(SERVICES[name])
    path, command, args = _resolve(words)
    assert path, f"service {name}: empty command"

    # the options appear in the command's own help, or (for a command that hands its extra arguments to
    # ``celery worker``) are options of ``celery worker``
    help_text = _help(path)
    passes_extra = bool((command.context_settings or {}).get("allow_extra_args"))
    celery_options = {opt for param in celery_worker.params for opt in param.opts}
    for option in _options(args):
        if re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", help_text):
            continue
        assert passes_extra and option in celery_options, (
            f"service {name}: {option} is not an option of `function-runner {' '.join(path)}`"
        )

    # and the whole command line parses: values have the right types and ranges, nothing is left over
    context = command.make_context(" ".join(path), list(args))
    if not passes_extra:
        assert context.args == []


def test_the_option_check_catches_an_unknown_option() -> None:
    path, command, _ = _resolve(["api", "--hots", "0.0.0.0"])
    assert path == ["api"]
    assert not re.search(r"(?<![\w-])--hots(?![\w-])", _help(path))
    with pytest.raises(Exception, match="--hots"):
        command.make_context("api", ["--hots", "0.0.0.0"])


def test_the_command_check_catches_an_unknown_command() -> None:
    with pytest.raises(AssertionError, match="not a command"):
        _resolve(["db", "migrate"])
    with pytest.raises(AssertionError, match="not a command"):
        _resolve(["serve"])
