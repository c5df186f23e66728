"""Retention run by real ``function-runner dispatcher`` processes: two of them trim the same database,
each old row is deleted once, what is still needed stays, and ``/health`` shows the run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.main import API_PREFIX
from api.main import create_app as create_api
from error_handling.categories import Category
from error_handling.persistence.db import make_sessionmaker
from error_handling.persistence.models import FailedAttempt, RetentionRun, utcnow
from tests.e2e.conftest import settings_of
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
    with TestClient(create_api(settings_of(env))) as client:
        health = client.get(f"{API_PREFIX}/health").json()
    shown = health["retention"]
    assert shown is not None
    assert shown["runner"] in {run.runner for run in runs}
    assert shown["runner"].startswith("dispatcher@")
    assert shown["finished_at"] is not None
