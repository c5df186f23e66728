"""docker-compose.yml runs real ``function-runner`` command lines, with generated secrets; the image is safe.

Every service built from this repository (``build: .``) runs the image's ENTRYPOINT, ``function-runner``,
with its ``command`` as arguments. Each command line must name a real command (and sub-command), and
every option it passes must be one that command accepts, so ``docker compose up`` cannot fail on a typo.
No secret is written in the file: each is a variable compose requires, which ``scripts/compose-env.sh``
generates, and with them the API starts on its container's public address and answers the host. Docker
cannot run here: the files are parsed, and the API app is built from the compose service's environment.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
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


# --- deployment defaults: secrets, the API from the host, the image ----------------------------------------

#: A compose interpolation: ``${NAME}``, ``${NAME:?message}``, ``${NAME:-default}``...
INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[?-][^}]*)?\}")
#: A compose interpolation that refuses to start without the variable.
REQUIRED = re.compile(r"\$\{(\w+):\?[^}]+\}")
#: Environment names that hold a secret.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEYS?$")
#: A client on the host, as the API container sees it through the published port (the bridge's gateway).
DOCKER_GATEWAY = ("172.17.0.1", 40000)


def _environments() -> list[tuple[str, dict[str, Any]]]:
    found = [(name, service.get("environment") or {}) for name, service in _compose()["services"].items()]
    return [(name, env) for name, env in found if isinstance(env, dict)]


def _interpolate(value: str, variables: dict[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        assert match.group(1) in variables, f"{match.group(1)} is not set"
        return variables[match.group(1)]

    return INTERPOLATION.sub(substitute, value.replace("$$", "\0")).replace("\0", "$")


def _generated_env(tmp_path: Path) -> dict[str, str]:
    """The variables scripts/compose-env.sh writes (as docker compose reads .env: NAME=value lines)."""
    target = tmp_path / "compose.env"
    subprocess.run(["bash", str(ROOT / "scripts" / "compose-env.sh"), str(target)], check=True, capture_output=True)
    lines = [line for line in target.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_the_compose_file_holds_no_secret_and_requires_each() -> None:
    for name, env in _environments():
        for variable, value in env.items():
            text = str(value)
            if SECRET_NAME.search(variable):
                assert REQUIRED.fullmatch(text), f"{name}: {variable} must be ${{VAR:?...}}, not a value"
            if "://" in text and "@" in text:  # a URL with credentials: its password is a required variable
                credentials = text.split("://", 1)[1].split("@", 1)[0]
                assert REQUIRED.search(credentials), f"{name}: {variable} carries a fixed password"
    assert "postgres:postgres" not in COMPOSE.read_text()


def test_redis_requires_a_password_and_the_fleet_presents_it() -> None:
    services = _compose()["services"]
    redis = services["redis"]
    assert "--requirepass" in " ".join(_command(redis)) and "$$REDIS_PASSWORD" in " ".join(_command(redis))
    assert REQUIRED.fullmatch(redis["environment"]["REDIS_PASSWORD"])
    for name in ("worker", "dispatcher", "api"):
        broker = services[name]["environment"]["FUNCTION_RUNNER_BROKER_URL"]
        assert broker.startswith("redis://:${REDIS_PASSWORD:?"), name


def test_the_generated_secrets_fill_every_required_variable(tmp_path: Path) -> None:
    generated = _generated_env(tmp_path)
    required = set(REQUIRED.findall(COMPOSE.read_text()))
    assert required == set(generated)
    assert len(set(generated.values())) == len(generated)  # each one its own
    assert (tmp_path / "compose.env").stat().st_mode & 0o077 == 0  # readable by its owner only
    again = subprocess.run(["bash", str(ROOT / "scripts" / "compose-env.sh"), str(tmp_path / "compose.env")])
    assert again.returncode == 1  # never overwrites the encryption key of existing dead letters
    (tmp_path / "second").mkdir()
    assert _generated_env(tmp_path / "second") != generated  # generated, not fixed


def test_the_compose_api_starts_and_answers_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from api.auth import open_bind_refusal
    from api.main import create_app
    from function_runner.settings import Settings
    from function_runner.settings.api_keys import parse_api_keys

    generated = _generated_env(tmp_path)
    api = _compose()["services"]["api"]
    for variable in [v for v in os.environ if v.startswith("FUNCTION_RUNNER_")]:
        monkeypatch.delenv(variable)
    for variable, value in api["environment"].items():
        monkeypatch.setenv(variable, _interpolate(str(value), generated))
    monkeypatch.setenv("FUNCTION_RUNNER_DATA_DIR", str(tmp_path))
    settings = Settings()
    settings.sealer()  # the generated encryption key is a real Fernet key

    words = _command(api)
    host, port = words[words.index("--host") + 1], words[words.index("--port") + 1]
    assert open_bind_refusal(settings, host) is None  # `function-runner api --host 0.0.0.0` starts
    assert api["ports"] == [f"127.0.0.1:8000:{port}"]  # published on the host's loopback only

    keys = {grant.principal: key for key, grant in parse_api_keys(generated["FUNCTION_RUNNER_API_KEYS"]).items()}
    with TestClient(create_app(settings), base_url="http://localhost:8000", client=DOCKER_GATEWAY) as client:
        assert client.get("/openapi.json").status_code == 401
        response = client.get("/openapi.json", headers={"Authorization": f"Bearer {keys['viewer']}"})
        assert response.status_code == 200 and response.json()["info"]["title"]


def test_the_image_runs_as_an_unprivileged_user_on_a_pinned_base() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines() if line.strip() and not line.startswith("#")]
    (base,) = [line.split()[1] for line in lines if line.startswith("FROM ")]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base), base
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert [line.startswith("USER ") for line in lines].index(True) < [
        line.startswith("ENTRYPOINT") for line in lines
    ].index(True)
    install = " ".join(line for line in lines if "pip install" in line)
    assert "-c constraints.txt" in install
