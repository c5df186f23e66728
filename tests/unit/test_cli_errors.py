"""``function-runner errors`` on SQLite: the API's JSON documents, tables for humans, one-line errors."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from error_handling.categories import Category
from error_handling.persistence.cursor import encode_cursor
from error_handling.persistence.db import make_engine, make_sessionmaker
from error_handling.persistence.models import FailedAttempt, utcnow
from error_handling.sealing import Sealer, generate_key
from function_runner.cli.errors import app, parse_time
from function_runner.migrate import upgrade
from tests.support.failures import fail

KEY = generate_key()
SECRET = "hunter2-cli-secret-42"
NOW = utcnow().replace(microsecond=0)


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "FUNCTION_RUNNER_DATABASE_URL": db_url,
        "FUNCTION_RUNNER_DATA_DIR": str(tmp_path / "data"),
        "FUNCTION_RUNNER_ENCRYPTION_KEY": KEY,
        "COLUMNS": "200",  # rich tables: wide enough that no cell is folded
    }


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Task ``a`` fails twice (transient), ``b`` once (permanent, dead-lettered), with a sealed secret."""
    fail(sessions, "a", 1, at=NOW - dt.timedelta(hours=3), message="Read timed out", worker="w1")
    fail(sessions, "a", 2, at=NOW - dt.timedelta(hours=2), message="Read timed out again", worker="w2")
    fail(
        sessions,
        "b",
        1,
        at=NOW - dt.timedelta(minutes=30),
        category=Category.PERMANENT,
        reason="auth_failed",
        task_name="app.other",
        message="401 Unauthorized [/bold] 100%_done",
        kwargs={"password": SECRET},
        sealer=Sealer(KEY),
    )
    return sessions


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(app, list(args), env=env)


def run_json(env: dict[str, str], *args: str) -> Any:
    result = run(env, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_list_json_is_the_api_document_newest_first(env: dict[str, str], seeded: sessionmaker[Session]) -> None:
    page = run_json(env, "list")
    assert [(a["task_id"], a["attempt"]) for a in page["data"]] == [("b", 1), ("a", 2), ("a", 1)]
    assert page["next_cursor"] is None
    assert page["data"][0]["decision"] == "dead_letter" and page["data"][1]["decision"] == "retry"
    assert dt.datetime.fromisoformat(page["data"][0]["failed_at"]) == NOW - dt.timedelta(minutes=30)


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--task-name", "app.other"], [("b", 1)]),
        (["--category", "transient"], [("a", 2), ("a", 1)]),
        (["--reason", "auth_failed"], [("b", 1)]),
        (["--queue", "celery", "--reason", "timeout"], [("a", 2), ("a", 1)]),
        (["--fingerprint", "f" * 16, "--task-name", "nope"], []),
        (["-q", "AGAIN"], [("a", 2)]),
        (["-q", "%_"], [("b", 1)]),
        (["--since", "150m"], [("b", 1), ("a", 2)]),
        (["--until", (NOW - dt.timedelta(hours=2)).isoformat()], [("a", 1)]),
        (["--since", (NOW - dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")], [("b", 1), ("a", 2)]),
    ],
)
def test_list_filters(
    env: dict[str, str], seeded: sessionmaker[Session], args: list[str], expected: list[tuple[str, int]]
) -> None:
    page = run_json(env, "list", *args)
    assert [(a["task_id"], a["attempt"]) for a in page["data"]] == expected


def test_list_pages_with_the_printed_cursor(env: dict[str, str], seeded: sessionmaker[Session]) -> None:
    first = run_json(env, "list", "--limit", "2")
    assert [a["task_id"] for a in first["data"]] == ["b", "a"] and first["next_cursor"]
    second = run_json(env, "list", "--limit", "2", "--cursor", first["next_cursor"])
    assert [(a["task_id"], a["attempt"]) for a in second["data"]] == [("a", 1)]
    assert second["next_cursor"] is None
    human = run(env, "list", "--limit", "2")
    assert human.exit_code == 0
    assert f"--cursor {first['next_cursor']}" in human.stdout


def test_list_table_for_humans(env: dict[str, str], seeded: sessionmaker[Session]) -> None:
    result = run(env, "list")
    assert result.exit_code == 0, result.output
    for text in ("app.other", "permanent/auth_failed", "retry in", "Read timed out", "[/bold]"):
        assert text in result.stdout
    assert SECRET not in result.stdout
    empty = run(env, "list", "--reason", "nothing")
    assert (empty.exit_code, empty.stdout.strip()) == (0, "no failed attempts match")


def test_show_json_and_table_never_reveal_sealed_secrets(env: dict[str, str], seeded: sessionmaker[Session]) -> None:
    with seeded() as session:
        attempt_id = session.execute(sa.select(FailedAttempt.id).where(FailedAttempt.task_id == "b")).scalar_one()
    detail = run_json(env, "show", str(attempt_id))
    assert (detail["id"], detail["reason"], detail["task"]["state"]) == (attempt_id, "auth_failed", "dead_lettered")
    assert detail["task"]["kwargs"] == {"password": "[REDACTED]"}
    assert detail["traceback"].startswith("Traceback")
    human = run(env, "show", str(attempt_id))
    assert human.exit_code == 0, human.output
    assert "[REDACTED]" in human.stdout and "Traceback" in human.stdout and "auth_failed" in human.stdout
    for output in (json.dumps(detail), human.stdout):
        assert SECRET not in output and "$sealed" not in output


def test_history(env: dict[str, str], seeded: sessionmaker[Session]) -> None:
    history = run_json(env, "history", "a")
    assert history["task"]["state"] == "retrying"
    assert [(a["attempt"], a["worker"], a["decision"]) for a in history["attempts"]] == [
        (1, "w1", "retry"),
        (2, "w2", "retry"),
    ]
    assert [(r["attempt"], r["status"]) for r in history["runs"]] == [(2, "pending"), (3, "pending")]
    dead = run_json(env, "history", "b")
    assert dead["dead_letter"]["reason"] == "auth_failed" and dead["replays"] == []
    human = run(env, "history", "b")
    assert human.exit_code == 0
    assert "dead_lettered" in human.stdout and "dead letter 1: auth_failed, pending" in human.stdout


@pytest.mark.parametrize(
    "args, code, fragment",
    [
        (["show", "999"], 1, "no failed attempt has id 999"),
        (["history", "nope"], 1, "no failure is recorded for task 'nope'"),
        (["list", "--since", "last tuesday"], 2, "--since: 'last tuesday' is not a time"),
        (["list", "--until", "2026-13-01"], 2, "--until"),
        (["list", "--since", "1h", "--until", "2h"], 2, "--since must not be later than --until"),
        (["list", "--cursor", "garbage"], 2, "--cursor is invalid"),
        (["list", "--cursor", encode_cursor(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), -5)], 2, "--cursor is invalid"),
        (["list", "--since", "99999999d"], 2, "too long ago"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    env: dict[str, str], seeded: sessionmaker[Session], args: list[str], code: int, fragment: str
) -> None:
    assert_one_line_error(run(env, *args), code, fragment)


@pytest.mark.parametrize("args", [["list", "--limit", "0"], ["list", "--limit", "501"], ["list", "-c", "bogus"]])
def test_bad_options_are_usage_errors(env: dict[str, str], args: list[str]) -> None:
    result = run(env, *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output and result.stdout == ""


def test_missing_sqlite_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "absent.sqlite3"
    env = {"FUNCTION_RUNNER_DATABASE_URL": f"sqlite:///{path}", "FUNCTION_RUNNER_DATA_DIR": str(tmp_path)}
    assert_one_line_error(run(env, "list"), 1, f"no database at {path}", "db upgrade")
    assert not path.exists()  # reading does not create an empty database


def test_unmigrated_sqlite_database_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    sa.create_engine(f"sqlite:///{path}").dispose()
    path.touch()
    env = {"FUNCTION_RUNNER_DATABASE_URL": f"sqlite:///{path}", "FUNCTION_RUNNER_DATA_DIR": str(tmp_path)}
    assert_one_line_error(run(env, "show", "1"), 1, "cannot read the database", "no such table")


def test_unreachable_postgres_is_reported_without_the_password(tmp_path: Path) -> None:
    # port 9 (discard) on loopback: nothing listens there, the connection is refused at once
    env = {
        "FUNCTION_RUNNER_DATABASE_URL": "postgresql://fr:s3cret-pw-99@127.0.0.1:9/fr",
        "FUNCTION_RUNNER_DATA_DIR": str(tmp_path),
    }
    result = run(env, "list")
    assert_one_line_error(result, 1, "cannot read the database")
    assert "s3cret-pw-99" not in result.output


@pytest.mark.parametrize(
    "env_extra, fragment",
    [
        ({"FUNCTION_RUNNER_DATABASE_URL": "mysql://x@h/db"}, "unsupported database 'mysql'"),
        ({"FUNCTION_RUNNER_DATABASE_URL": "::not a url::"}, "invalid database URL"),
        ({"FUNCTION_RUNNER_DISPATCHER_BATCH_SIZE": "-1"}, "FUNCTION_RUNNER_DISPATCHER_BATCH_SIZE"),
    ],
)
def test_bad_settings_are_usage_errors(tmp_path: Path, env_extra: dict[str, str], fragment: str) -> None:
    env = {"FUNCTION_RUNNER_DATA_DIR": str(tmp_path), **env_extra}
    assert_one_line_error(run(env, "list"), 2, fragment)


def test_parse_time_accepts_iso_and_ages() -> None:
    now = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    assert parse_time("90s", option="--since", now=now) == now - dt.timedelta(seconds=90)
    assert parse_time("1.5h", option="--since", now=now) == now - dt.timedelta(minutes=90)
    assert parse_time("7d", option="--since", now=now) == now - dt.timedelta(days=7)
    assert parse_time("2026-03-01T09:00:00", option="--since") == dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    assert parse_time("2026-03-01T11:00:00+02:00", option="--since") == dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
    assert parse_time("2026-03-01T09:00:00Z", option="--since") == dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC)
