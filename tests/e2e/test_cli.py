"""The ``function-runner`` command line as a user runs it: a real process, its output and exit code.

A user's mistake (a bad setting, an unsupported or unreachable database, an app that cannot be loaded)
gets one clear ``error:`` line and a non-zero exit code, never a Python traceback.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from error_handling.persistence.db import VERSION_TABLE, make_engine
from tests.conftest import TEST_KEY
from tests.support import services
from tests.support.processes import ROOT, cli_args

#: The installed console script (what the Docker image's ENTRYPOINT runs), or the module as a fallback.
SCRIPT = Path(sys.executable).with_name("function-runner")
#: How long one command may take (the demo has its own, longer, limit).
TIMEOUT = 60.0
#: The demo runs a worker and a dispatcher to the end of every route.
DEMO_TIMEOUT = 120.0
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"
COMMANDS = ("demo", "worker", "dispatcher", "api", "db")
#: A few of the tables the migrations create.
TABLES = {"fr_tasks", "fr_failed_attempts", "fr_scheduled_runs", "fr_dead_letters"}


def command(*words: str) -> list[str]:
    """The command line of ``function-runner WORDS...``."""
    return [str(SCRIPT), *words] if SCRIPT.exists() else cli_args(*words)


def run(*words: str, env: dict[str, str], cwd: Path, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run ``function-runner WORDS...`` to completion."""
    return subprocess.run(command(*words), env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def without_our_settings() -> dict[str, str]:
    """This process's environment without any ``FUNCTION_RUNNER_*`` variable or terminal width."""
    drop = ("FUNCTION_RUNNER_", "COLUMNS", "LINES")
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """The embedded default (SQLite and the filesystem broker) in this test's folder: no server needed."""
    env = without_our_settings()
    env["FUNCTION_RUNNER_DATA_DIR"] = str(tmp_path / "data")
    return env


def fr_tables(url: str) -> set[str]:
    """The function-runner tables of a database that still hold a schema (the version table aside)."""
    engine = make_engine(url)
    try:
        names = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    return {name for name in names if name.startswith("fr_") and name != VERSION_TABLE}


def assert_clean_error(result: subprocess.CompletedProcess[str], *fragments: str, code: int) -> None:
    """One ``error:`` line holding every fragment, the exit code, and no traceback anywhere."""
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert "Traceback" not in output, output
    assert result.stdout == "", output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], result.stderr


def test_help_lists_every_command(clean_env: dict[str, str], tmp_path: Path) -> None:
    result = run("--help", env=clean_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in COMMANDS:
        assert re.search(rf"(?m)^\W*{name}\s{{2,}}\w", result.stdout), f"{name} not listed:\n{result.stdout}"


def test_an_unknown_command_is_a_usage_error(clean_env: dict[str, str], tmp_path: Path) -> None:
    result = run("serve", env=clean_env, cwd=tmp_path)
    assert result.returncode == 2
    assert "No such command 'serve'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_db_upgrade_and_downgrade_on_postgres(clean_env: dict[str, str], tmp_path: Path) -> None:
    services.require("PostgreSQL", services.PG_HOST, services.PG_PORT)
    with services.temporary_database() as url:
        env = {**clean_env, "FUNCTION_RUNNER_DATABASE_URL": url}
        assert fr_tables(url) == set()

        up = run("db", "upgrade", env=env, cwd=tmp_path)
        assert (up.returncode, up.stdout.strip()) == (0, "database at head"), up.stderr
        assert fr_tables(url) >= TABLES

        down = run("db", "downgrade", env=env, cwd=tmp_path)
        assert (down.returncode, down.stdout.strip()) == (0, "database at base"), down.stderr
        assert fr_tables(url) == set()


def test_db_upgrade_and_downgrade_on_the_embedded_sqlite(clean_env: dict[str, str], tmp_path: Path) -> None:
    database = tmp_path / "data" / "function-runner.sqlite3"
    url = f"sqlite:///{database}"

    up = run("db", "upgrade", env=clean_env, cwd=tmp_path)
    assert (up.returncode, up.stdout.strip()) == (0, "database at head"), up.stderr
    assert database.is_file()
    assert fr_tables(url) >= TABLES

    down = run("db", "downgrade", env=clean_env, cwd=tmp_path)
    assert (down.returncode, down.stdout.strip()) == (0, "database at base"), down.stderr
    assert fr_tables(url) == set()


def test_dispatcher_once_on_an_empty_database(service_env: dict[str, str], tmp_path: Path) -> None:
    result = run("dispatcher", "--once", env=service_env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "published=0 expired=0"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("words", "settings", "fragments", "code"),
    [
        pytest.param(
            ("db", "upgrade"),
            {"FUNCTION_RUNNER_TRANSIENT_MAX_ATTEMPTS": "zero"},
            ("invalid settings", "FUNCTION_RUNNER_TRANSIENT_MAX_ATTEMPTS", "unable to parse string as an integer"),
            2,
            id="invalid-setting-db",
        ),
        pytest.param(
            ("dispatcher", "--once"),
            {"FUNCTION_RUNNER_TRANSIENT_MAX_ATTEMPTS": "zero"},
            ("invalid settings", "FUNCTION_RUNNER_TRANSIENT_MAX_ATTEMPTS", "unable to parse string as an integer"),
            2,
            id="invalid-setting-dispatcher",
        ),
        pytest.param(
            ("db", "upgrade"),
            {"FUNCTION_RUNNER_DATABASE_URL": "mysql://x"},
            ("unsupported database 'mysql'", "use postgresql or sqlite"),
            1,
            id="unsupported-database-db",
        ),
        pytest.param(
            ("dispatcher", "--once"),
            {"FUNCTION_RUNNER_DATABASE_URL": "mysql://x", "FUNCTION_RUNNER_ENCRYPTION_KEY": TEST_KEY},
            ("unsupported database 'mysql'", "use postgresql or sqlite"),
            1,
            id="unsupported-database-dispatcher",
        ),
        pytest.param(
            ("dispatcher", "--once", "--app", "no.such.module"),
            {},
            ("cannot import 'no.such.module'", "No module named"),
            2,
            id="missing-module-dispatcher",
        ),
        pytest.param(
            ("worker", "--app", "no.such.module"),
            {},
            ("cannot import 'no.such.module'", "No module named"),
            2,
            id="missing-module-worker",
        ),
        pytest.param(
            ("worker", "--app", "json"),
            {},
            ("no Celery app found in 'json'", "looked for app, celery"),
            2,
            id="module-without-app",
        ),
        pytest.param(
            ("worker", "--app", "json:dumps"),
            {},
            ("no Celery app found in 'json:dumps'", "looked for dumps"),
            2,
            id="attribute-not-an-app",
        ),
        pytest.param(
            ("worker", "--app", "tasks[/x]"),
            {},
            ("cannot import 'tasks[/x]'",),  # shown as typed, not taken for console markup
            2,
            id="name-with-brackets",
        ),
        pytest.param(
            ("dispatcher", "--once"),
            {"FUNCTION_RUNNER_DATABASE_URL": UNREACHABLE, "FUNCTION_RUNNER_ENCRYPTION_KEY": TEST_KEY},
            ("database unavailable",),
            1,
            id="unreachable-database-dispatcher",
        ),
        pytest.param(
            ("db", "upgrade"),
            {"FUNCTION_RUNNER_DATABASE_URL": UNREACHABLE},
            ("database unavailable", "Connection refused"),
            1,
            id="unreachable-database-upgrade",
        ),
        pytest.param(
            ("db", "downgrade"),
            {"FUNCTION_RUNNER_DATABASE_URL": UNREACHABLE},
            ("database unavailable", "Connection refused"),
            1,
            id="unreachable-database-downgrade",
        ),
    ],
)
def test_a_users_mistake_is_one_clear_line_without_a_traceback(
    clean_env: dict[str, str],
    tmp_path: Path,
    words: tuple[str, ...],
    settings: dict[str, str],
    fragments: tuple[str, ...],
    code: int,
) -> None:
    result = run(*words, env={**clean_env, **settings}, cwd=tmp_path)
    assert_clean_error(result, *fragments, code=code)


def test_the_demo_ends_every_route_as_expected(tmp_path: Path) -> None:
    env = without_our_settings()
    env["TMPDIR"] = str(tmp_path)  # the demo's data directory is made here, and removed with it
    result = run("demo", env=env, cwd=tmp_path, timeout=DEMO_TIMEOUT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every route ended as expected" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
