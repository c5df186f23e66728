"""``function-runner dlq`` on SQLite and the in-memory broker: list, show, replay (and dry run), discard;
one-line errors with exit codes 1 (refused) and 2 (usage)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery
from kombu import Message
from typer.testing import CliRunner

from error_handling.persistence.db import make_engine, make_sessionmaker
from error_handling.sealing import Sealer, generate_key
from function_runner.app import create_app
from function_runner.cli.dlq import app as dlq
from function_runner.migrate import upgrade
from function_runner.settings import Settings
from tests.support.dead_letter_seed import seed_dead_letter

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
PASSWORD = "pw-cli-secret-0042"
KEY = generate_key()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Settings in the environment, a migrated SQLite database; yields its URL."""
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    upgrade(url)
    for name, value in {
        "DATABASE_URL": url,
        "BROKER_URL": "memory://",
        "ENCRYPTION_KEY": KEY,
        "DATA_DIR": str(tmp_path),
    }.items():
        monkeypatch.setenv(f"FUNCTION_RUNNER_{name}", value)
    yield url


@pytest.fixture
def reader(env: str, tmp_path: Path) -> Iterator[Celery]:
    """A Celery app on the same in-memory broker, to read what the CLI published."""
    celery = create_app(Settings(broker_url="memory://", data_dir=tmp_path, encryption_key=KEY), main="fr_cli_reader")
    with celery.connection_for_read() as connection:
        queue = connection.SimpleQueue("celery")
        queue.clear()
        celery.conf.reader_queue = queue
        yield celery
        queue.close()
    celery.close()


def published(reader: Celery) -> list[Message]:
    queue = reader.conf.reader_queue
    found = []
    while queue.qsize():
        message = queue.get(timeout=1)
        message.ack()
        found.append(message)
    return found


def seed(url: str, task_id: str, *, minutes: int = 0) -> int:
    engine = make_engine(url)
    try:
        return seed_dead_letter(
            make_sessionmaker(engine),
            task_id,
            sealer=Sealer(KEY),
            at=NOW + dt.timedelta(minutes=minutes),
            kwargs={"password": PASSWORD, "amount": 5},
        )
    finally:
        engine.dispose()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(dlq, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_list_and_show(env: str) -> None:
    first = seed(env, "t1")
    seed(env, "t2", minutes=1)
    code, stdout, _ = run("list", "--json", "--limit", "1")
    assert code == 0
    page = json.loads(stdout)
    assert [item["task_id"] for item in page["data"]] == ["t2"]
    code, stdout, _ = run("list", "--json", "--cursor", page["next_cursor"])
    assert [item["task_id"] for item in json.loads(stdout)["data"]] == ["t1"]
    code, stdout, _ = run("list", "--status", "pending")
    assert code == 0 and "t1" not in stdout and "app.charge" in stdout  # the table shows ids and names

    code, stdout, _ = run("show", str(first), "--json")
    detail = json.loads(stdout)
    assert detail["kwargs"] == {"password": "[REDACTED]", "amount": 5}
    assert [a["attempt"] for a in detail["failed_attempts"]] == [1]
    code, stdout, _ = run("show", str(first))
    assert code == 0 and "[REDACTED]" in stdout and PASSWORD not in stdout


def test_replay_dry_run_publishes_nothing_then_replay_publishes(env: str, reader: Celery) -> None:
    letter = seed(env, "t1")
    code, stdout, _ = run("replay", str(letter), "--dry-run", "--kwargs", '{"password": "[REDACTED]", "amount": 6}')
    assert code == 0 and "nothing was published" in stdout and PASSWORD not in stdout
    assert published(reader) == []

    code, stdout, _ = run("replay", str(letter), "--kwargs", '{"password": "[REDACTED]", "amount": 6}', "--json")
    assert code == 0, stdout
    result = json.loads(stdout)
    (message,) = published(reader)
    assert message.headers["id"] == result["task_id"]
    assert message.payload[1] == {"password": PASSWORD, "amount": 6}

    code, _, stderr = run("replay", str(letter))
    assert code == 1 and "already replayed" in stderr and "Traceback" not in stderr
    code, stdout, _ = run("replay", str(letter), "--force")
    assert code == 0 and "(forced)" in stdout
    assert len(published(reader)) == 1


def test_discard_and_errors(env: str, reader: Celery) -> None:
    letter = seed(env, "t1")
    code, stdout, _ = run("discard", str(letter), "--reason", "order cancelled")
    assert code == 0 and "discarded dead letter" in stdout
    code, stdout, _ = run("show", str(letter), "--json")
    assert json.loads(stdout)["status"] == "discarded"

    for args, exit_code, text in [
        (("discard", str(letter), "--reason", "again"), 1, "was discarded"),
        (("replay", str(letter), "--force"), 1, "was discarded"),
        (("show", "999"), 1, "dead letter 999 does not exist"),
        (("discard", str(letter), "--reason", " "), 2, "--reason"),
        (("replay", str(letter), "--args", "[1,"), 2, "--args is not valid JSON"),
        (("replay", str(letter), "--kwargs", "[1]"), 2, "--kwargs must be a JSON object"),
        (("list", "--cursor", "garbage"), 2, "cursor is invalid"),
        (("replay", str(letter), "--app", "no.such.module"), 2, "cannot import 'no.such.module'"),
        (("replay", str(letter), "--app", "json"), 2, "no Celery app found in 'json' (looked for app, celery)"),
    ]:
        code, _, stderr = run(*args)
        assert (code, text in stderr, "Traceback" in stderr) == (exit_code, True, False), (args, stderr)
    other = seed(env, "t2", minutes=1)
    code, _, stderr = run("replay", str(other), "--kwargs", '{"amount": "[REDACTED]"}')
    assert code == 2 and "--kwargs" in stderr and ".amount" in stderr
    assert published(reader) == []


def test_cli_actions_are_audited_as_the_os_user_and_listed_by_audit_list(
    env: str, reader: Celery, monkeypatch: pytest.MonkeyPatch
) -> None:
    from function_runner.cli import app as cli

    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    replayed, discarded = seed(env, "t1"), seed(env, "t2", minutes=1)
    for args, exit_code, text in [  # refused: nothing is audited
        (("replay", str(replayed), "--queue", "nowhere"), 1, "queue 'nowhere' is not declared"),
        (("replay", str(replayed), "--kwargs", '{"password": "x", "amount": "[REDACTED]"}'), 2, "--kwargs:"),
        (("replay", str(replayed), "--args", "[" * 40 + "]" * 40), 2, "deeper than 32 levels"),
    ]:
        code, _, stderr = run(*args)
        assert (code, stderr.count("\n")) == (exit_code, 1) and text in stderr, stderr
    assert published(reader) == []
    assert run("replay", str(replayed), "--kwargs", '{"password": "[REDACTED]", "amount": 6}')[0] == 0
    assert run("discard", str(discarded), "--reason", "duplicate order")[0] == 0
    assert run("replay-all", "--task", "app.none")[0] == 0
    published(reader)

    result = CliRunner().invoke(cli, ["audit", "list", "--json"])
    assert result.exit_code == 0, result.stderr
    events = json.loads(result.stdout)["data"]
    assert [(e["actor"], e["action"]) for e in events] == [
        ("cli:alice", "replay_job.create"),
        ("cli:alice", "dead_letter.discard"),
        ("cli:alice", "dead_letter.replay"),
    ]
    assert events[2]["detail"]["edits"]["changes"] == [{"path": "kwargs.amount", "op": "changed", "from": 5, "to": 6}]
    only = CliRunner().invoke(cli, ["audit", "list", "--json", "--action", "dead_letter.discard", "--limit", "1"])
    assert [e["target_id"] for e in json.loads(only.stdout)["data"]] == [str(discarded)]
    table = CliRunner().invoke(cli, ["audit", "list", "--actor", "cli:alice", "--limit", "2"])
    assert table.exit_code == 0 and "cli:alice" in table.stdout and "next page: --cursor" in table.stdout
    bad = CliRunner().invoke(cli, ["audit", "list", "--cursor", "garbage"])
    assert bad.exit_code == 2 and "cursor is invalid" in bad.stderr and "Traceback" not in bad.stderr
    assert PASSWORD not in result.stdout
