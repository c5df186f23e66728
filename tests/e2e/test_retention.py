"""Retention run by real ``function-runner dispatcher`` processes: two of them trim the same database,
each old row is deleted once, what is still needed stays, and ``/health`` shows the run."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from api.main import API_PREFIX
from api.main import create_app as create_api
from error_handling.categories import Category
from error_handling.persistence import dead_letters
from error_handling.persistence.db import make_sessionmaker, transaction
from error_handling.persistence.models import FailedAttempt, RetentionRun, utcnow
from function_runner.app import create_app
from function_runner.dispatch.retention import RetentionRole
from function_runner.runtime import runtime_for
from tests.e2e.conftest import settings_of
from tests.e2e.test_cli import command
from tests.support.api_client import local_client
from tests.support.dead_letter_seed import seed_dead_letter
from tests.support.failures import fail
from tests.support.processes import Process
from tests.support.waiting import wait_until

OLD_DAYS = 40
#: Old attempts of settled (terminal) tasks: deleted, in batches of 7.
SETTLED = 50


def test_dispatchers_run_retention_and_health_shows_the_last_run(
    engine: sa.Engine,
    service_env: dict[str, str],
    start_dispatcher: Callable[..., Process],
    tmp_path: Path,
) -> None:
    sessions = make_sessionmaker(engine)
    old = utcnow() - dt.timedelta(days=OLD_DAYS)
    for index in range(SETTLED):
        fail(sessions, f"settled-{index}", 1, at=old, category=Category.VALIDATION, reason="invalid_input")
    fail(sessions, "still-retrying", 1, at=old)  # a transient failure: the task is not terminal
    fail(sessions, "recent", 1, at=utcnow(), category=Category.VALIDATION, reason="invalid_input")
    env = {**service_env, "FUNCTION_RUNNER_RETENTION_BATCH_SIZE": "7", "FUNCTION_RUNNER_RETENTION_INTERVAL": "3600"}

    start_dispatcher(env=env)
    start_dispatcher(env=env)

    def all_finished() -> list[RetentionRun]:
        """The runs, once there is one and every run started is finished (both may have started one)."""
        with Session(engine) as s:
            runs = list(s.execute(sa.select(RetentionRun)).scalars())
        return runs if runs and all(run.finished_at is not None for run in runs) else []

    runs = wait_until(all_finished, timeout=60, what="finished retention runs")
    with Session(engine) as s:
        left = set(s.execute(sa.select(FailedAttempt.task_id)).scalars())
    assert left == {"still-retrying", "recent"}
    # each old attempt deleted once, whichever dispatcher took it
    assert sum(run.deleted.get("fr_failed_attempts", 0) for run in runs) == SETTLED
    with local_client(create_api(settings_of(env))) as client:
        health = client.get(f"{API_PREFIX}/health").json()
    shown = health["retention"]
    assert shown is not None
    assert shown["runner"] in {run.runner for run in runs}
    assert shown["runner"].startswith("dispatcher@")
    assert shown["finished_at"] is not None


def test_the_cli_shows_a_purged_dead_letter_and_refuses_to_replay_it(
    engine: sa.Engine, service_env: dict[str, str], tmp_path: Path
) -> None:
    settings = settings_of(service_env)
    app = create_app(settings, main="fr_e2e_retention_cli")
    runtime = runtime_for(app)
    try:
        sessions = make_sessionmaker(engine)
        old = utcnow() - dt.timedelta(days=OLD_DAYS)
        letter_id = seed_dead_letter(sessions, "replayed", sealer=runtime.sealer, at=old, kwargs={"password": "pw-x"})
        with transaction(sessions) as s:
            letter = dead_letters.lock_dead_letter(s, dead_letter_id=letter_id)
            dead_letters.mark_replayed(s, letter=letter, task_id="replay-1", now=old)
        totals = RetentionRole(
            in_transaction=runtime.in_transaction, settings=runtime.settings, runner="dispatcher@e2e:1"
        ).run()
        assert totals is not None and totals.purged == 1
    finally:
        runtime.close()
        app.close()

    shown = subprocess.run(
        command("dlq", "show", str(letter_id)),
        env=service_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "purged:" in shown.stdout and "not replayable" in shown.stdout
    assert '"password": "[REDACTED]"' in shown.stdout
    replayed = subprocess.run(
        command("dlq", "replay", str(letter_id), "--force"),
        env=service_env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert replayed.returncode == 1
    lines = replayed.stderr.strip().splitlines()
    assert len(lines) == 1 and "its secrets were purged by retention" in lines[0], replayed.stderr
