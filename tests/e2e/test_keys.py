"""The encryption key as a fleet meets it: real processes refuse to start without it, and
``function-runner keys rotate`` moves every stored secret to a new key so the old one can be removed.

The rotation test seals dead letters (and a task's compensation step, and a failure kept in Redis)
under key A, rotates with keys "B,A" (a real ``function-runner`` process), then, with key B alone,
replays each dead letter through the real replay path and reads the published messages back from
the broker: they carry the original secrets.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from sqlalchemy.orm import Session

from error_handling.categories import Category
from error_handling.classification import Classification
from error_handling.persistence import reports
from error_handling.persistence.db import transaction
from error_handling.persistence.models import CompensationStep, DeadLetterRecord, StepStatus, TaskRecord
from error_handling.redaction import Redactor
from error_handling.sealing import Sealer, generate_key, seal_secrets, unseal_secrets
from function_runner.app import create_app
from function_runner.replay.single import replay_dead_letter
from function_runner.runtime import Runtime, runtime_for
from function_runner.settings import Settings
from function_runner.settings.storage import MISSING_KEY
from function_runner.wrapper import unrecorded
from tests.e2e.test_cli import command, without_our_settings
from tests.support.dead_letter_seed import seed_dead_letter
from tests.support.processes import ROOT, celery_worker_args

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
KEY_A, KEY_B, KEY_C = generate_key(), generate_key(), generate_key()
TIMEOUT = 120.0
#: The secrets of each dead letter: a token in the args, a password in the kwargs, a header.
SECRETS = [
    (f"sk-letter{i}abcdefghijklmnopqrst", f"pw-{i}-hunter2", f"Bearer tok{i}abcdefghijklmnopqrs") for i in range(3)
]


def env_with(**settings: str) -> dict[str, str]:
    """This process's environment without our settings, plus ``settings`` (lower-case names)."""
    env = without_our_settings()
    env.update({f"FUNCTION_RUNNER_{name.upper()}": value for name, value in settings.items()})
    return env


def run_cli(*words: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*words), env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)


# --- refusing to start --------------------------------------------------------------------------------


@pytest.mark.parametrize("app", ["tests.e2e.tasks_app", "tests.e2e.bare_app"], ids=["create_app", "no_install"])
@pytest.mark.parametrize("key", [None, "not-a-fernet-key"], ids=["missing", "malformed"])
def test_a_worker_without_a_valid_key_refuses_to_start_with_one_line(
    pg_url: str, redis_url: str, tmp_path: Path, key: str | None, app: str
) -> None:
    settings = {"database_url": pg_url, "broker_url": redis_url, "data_dir": str(tmp_path / "data")}
    if key is not None:
        settings["encryption_key"] = key
    done = subprocess.run(
        celery_worker_args(app, name="nokey", pool="solo"),
        env=env_with(**settings),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    expected = MISSING_KEY if key is None else "invalid FUNCTION_RUNNER_ENCRYPTION_KEY: encryption key #1 of 1"
    assert len(errors) == 1 and expected in errors[0], done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert " ready." not in done.stdout + done.stderr
    assert not (tmp_path / "data" / "encryption.key").exists()  # no key of its own was made up


@pytest.mark.parametrize(
    "words", [("dispatcher", "--once"), ("api", "--port", "1"), ("keys", "rotate"), ("dlq", "replay", "1")]
)
@pytest.mark.parametrize("key", [None, "not-a-fernet-key"], ids=["missing", "malformed"])
def test_the_dispatcher_api_and_the_commands_that_unseal_refuse_to_start_without_a_valid_key(
    pg_url: str, redis_url: str, tmp_path: Path, key: str | None, words: tuple[str, ...]
) -> None:
    settings = {"database_url": pg_url, "broker_url": redis_url, "data_dir": str(tmp_path / "data")}
    if key is not None:
        settings["encryption_key"] = key
    done = run_cli(*words, env=env_with(**settings), cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert ("not set" if key is None else "invalid FUNCTION_RUNNER_ENCRYPTION_KEY") in lines[0]
    assert "not-a-fernet-key" not in done.stderr  # the key is never echoed


def test_keys_generate_prints_a_key_that_settings_accept(tmp_path: Path) -> None:
    done = run_cli("keys", "generate", env=without_our_settings(), cwd=tmp_path)
    assert done.returncode == 0
    key = done.stdout.strip()
    assert Sealer(key).unseal(Sealer(key).seal("x")) == "x"


# --- rotation -------------------------------------------------------------------------------------------


def published(redis_url: str, queue: str = "celery") -> list[dict[str, Any]]:
    """Take the task messages published to the test's Redis broker (kombu's JSON envelope)."""
    client = redis_lib.Redis.from_url(redis_url)
    try:
        found = []
        while (raw := client.rpop(queue)) is not None:
            envelope = json.loads(raw)
            args, kwargs, _ = json.loads(base64.b64decode(envelope["body"]))
            found.append({"args": args, "kwargs": kwargs, "headers": envelope["headers"]})
        return found
    finally:
        client.close()


@pytest.fixture
def app_with_key(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[Any]:
    """Make a Celery app on the test's Postgres and Redis with the given keys (closed at the end)."""
    made: list[Celery] = []

    def make(keys: str) -> Celery:
        settings = Settings(database_url=pg_url, broker_url=redis_url, encryption_key=keys, data_dir=tmp_path / "data")
        app = create_app(settings, main=f"fr_keys_{len(made)}")
        made.append(app)
        return app

    yield make
    for app in made:
        runtime_for(app).close()
        app.close()


def seed_letters(runtime: Runtime) -> list[int]:
    ids = []
    for index, (token, password, bearer) in enumerate(SECRETS):
        ids.append(
            seed_dead_letter(
                runtime.sessions,
                f"rot-{index}",
                sealer=runtime.sealer,
                at=NOW + dt.timedelta(seconds=index),
                args=[index, {"api_key": token}],
                kwargs={"password": password, "amount": index},
                headers={"authorization": bearer, "tenant": "acme"},
            )
        )
    return ids


def add_compensation_step(runtime: Runtime, *, task_id: str, secret: str) -> None:
    redactor = Redactor()
    with transaction(runtime.sessions) as session:
        session.add(
            CompensationStep(
                task_id=task_id,
                saga_id=task_id,
                task_name="app.charge",
                attempt=1,
                seq=1,
                name="charge",
                undo_kind="callable",
                undo={"path": "app:refund"},
                data=seal_secrets({"charge_id": "ch_1", "api_key": secret}, redactor=redactor, sealer=runtime.sealer),
                idempotency_key=f"{task_id}:charge",
                status=StepStatus.RECORDED,
                created_at=NOW,
                updated_at=NOW,
            )
        )


def kept_failure(runtime: Runtime, task_id: str, *, password: str) -> reports.FailureReport:
    """A failure report as the wrapper keeps it in Redis while the database is away (payload sealed)."""
    sealed = seal_secrets({"password": password}, redactor=Redactor(), sealer=runtime.sealer)
    return reports.FailureReport(
        task_id=task_id,
        attempt=2,
        payload=reports.TaskPayload(task_name="app.charge", args=[], kwargs=sealed, options={}, headers={}, queue=None),
        classification=Classification(
            category=Category.TRANSIENT, reason="timeout", fingerprint="f" * 16, message="boom", exc_type="TimeoutError"
        ),
        traceback=None,
        failed_at=NOW,
        started_at=None,
        worker="w1",
    )


def sealed_tokens(value: Any) -> list[str]:
    """Every sealed token of a stored structure."""
    text = json.dumps(value)
    return [part.split('"')[0] for part in text.split('{"$sealed": "')[1:]]


def test_after_rotating_and_removing_the_old_key_every_dead_letter_still_replays_with_its_secrets(
    app_with_key: Any, engine: sa.Engine, pg_url: str, redis_url: str, tmp_path: Path
) -> None:
    # sealed under key A: three dead letters, a compensation step, a failure kept in Redis
    old = runtime_for(app_with_key(KEY_A))
    letters = seed_letters(old)
    add_compensation_step(old, task_id="rot-0", secret="sk-compensation0123456789abcdef")
    assert unrecorded.keep(old, kept_failure(old, "kept-1", password="pw-kept-secret"))
    # and one letter under a key nobody configures: reported, kept, never dropped
    stray = seed_dead_letter(
        old.sessions,
        "rot-stray",
        sealer=Sealer(KEY_C),
        at=NOW + dt.timedelta(minutes=1),
        kwargs={"password": "pw-stray"},
    )
    with Session(engine) as s:
        stray_before = s.get(DeadLetterRecord, stray).kwargs  # type: ignore[union-attr]

    env = env_with(database_url=pg_url, broker_url=redis_url, encryption_key=f"{KEY_B},{KEY_A}")
    dry = run_cli("keys", "rotate", "--dry-run", "--batch-size", "2", env=env, cwd=tmp_path)
    assert dry.returncode == 1, dry.stderr  # the stray letter's secret opens with no key
    assert "dry run: would re-seal" in dry.stdout
    with Session(engine) as s:  # nothing changed
        assert all(
            Sealer(KEY_A).sealed_with_first_key(t) for t in sealed_tokens(s.get(DeadLetterRecord, letters[0]).kwargs)
        )  # type: ignore[union-attr]

    first = run_cli("keys", "rotate", "--batch-size", "2", env=env, cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    assert f"fr_dead_letters ids: {stray}" in first.stderr
    assert "fr_tasks ids: rot-stray" in first.stderr
    summary = first.stdout.strip().splitlines()[-1]
    # per letter: the api_key, the password, the authorization header, in the letter and in its task;
    # the step's api_key; the kept failure's password. The stray letter's password, in both, opens with no key.
    assert summary == "re-sealed 20 values; 2 no key opens", first.stdout
    assert "redis:fr:unrecorded: 1 rows with secrets, re-sealed 1 values" in first.stdout

    again = run_cli("keys", "rotate", env=env, cwd=tmp_path)  # resumable: nothing is left to do
    assert again.stdout.strip().splitlines()[-1] == "re-sealed 0 values; 2 no key opens", again.stdout

    # key B alone from now on
    new = runtime_for(app_with_key(KEY_B))
    sealer_b = Sealer(KEY_B)
    with Session(engine) as s:
        step = s.execute(sa.select(CompensationStep)).scalar_one()
        assert unseal_secrets(step.data, sealer=sealer_b)["api_key"] == "sk-compensation0123456789abcdef"
        task = s.get(TaskRecord, "rot-1")
        assert task is not None
        assert unseal_secrets(task.kwargs, sealer=sealer_b)["password"] == SECRETS[1][1]
        assert s.get(DeadLetterRecord, stray).kwargs == stray_before  # type: ignore[union-attr]
    taken = unrecorded.take(new, "kept-1", 2)
    assert taken is not None
    assert unseal_secrets(taken.payload.kwargs, sealer=sealer_b) == {"password": "pw-kept-secret"}

    celery = app_with_key(KEY_B)
    for letter_id in letters:
        replay_dead_letter(celery, runtime_for(celery), dead_letter_id=letter_id)
    messages = sorted(published(redis_url), key=lambda m: m["args"][0])
    assert len(messages) == len(SECRETS)
    for index, (message, (token, password, bearer)) in enumerate(zip(messages, SECRETS, strict=True)):
        assert message["args"] == [index, {"api_key": token}]
        assert message["kwargs"] == {"password": password, "amount": index}
        assert message["headers"]["authorization"] == bearer
