"""Real ``celery worker`` processes count their successes per task and queue and write them to
``fr_task_counts`` every ``success_flush_interval`` (kept here at its production default, 10 s), and a
worker stopped gracefully writes what it counted since its last write (prefork and threads pools)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from sqlalchemy.orm import Session

from error_handling.persistence.reads.executions import success_counts
from function_runner.settings import Settings
from tests.support.processes import Process
from tests.support.waiting import wait_until

TASKS = 6
KEY = ("e2e.flaky", "celery")  # the task, and the queue its messages are delivered from (Celery's default)


def counted(engine: sa.Engine, since: dt.datetime) -> int:
    """The successes of e2e.flaky from the default queue written since ``since``."""
    with Session(engine) as s:
        return success_counts(s, since=since, until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)).get(KEY, 0)


def run_tasks(publisher: Celery, state: redis_lib.Redis) -> None:
    """Send TASKS tasks that succeed at once and wait until each body ran."""
    ids = [publisher.send_task("e2e.flaky", args=[0]).id for _ in range(TASKS)]
    wait_until(lambda: all(state.get(f"started:{i}") for i in ids), timeout=60, what="every body to run")


def test_successes_are_written_within_the_default_interval(
    publisher: Celery, start_worker: Callable[..., Process], engine: sa.Engine, state: redis_lib.Redis
) -> None:
    interval = Settings().success_flush_interval
    assert interval == 10.0  # the production default: the worker's environment does not set it
    since = dt.datetime.now(dt.UTC)
    start_worker(pool="prefork", concurrency=2)

    run_tasks(publisher, state)
    ran = time.monotonic()
    wait_until(lambda: counted(engine, since) == TASKS, timeout=interval + 15, what=f"{TASKS} successes written")

    assert time.monotonic() - ran < interval + 15
    assert counted(engine, since) == TASKS  # counted once each, not again by a later write


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_a_worker_stopped_gracefully_writes_what_it_counted(
    pool: str,
    publisher: Celery,
    start_worker: Callable[..., Process],
    service_env: dict[str, str],
    engine: sa.Engine,
    state: redis_lib.Redis,
) -> None:
    since = dt.datetime.now(dt.UTC)
    worker = start_worker(env={**service_env, "FUNCTION_RUNNER_SUCCESS_FLUSH_INTERVAL": "3600"}, pool=pool)

    run_tasks(publisher, state)
    assert counted(engine, since) == 0  # an hour to the first write: nothing yet
    worker.stop(timeout=30)  # SIGTERM: a warm shutdown

    assert counted(engine, since) == TASKS
    assert "successes.not_written" not in worker.log()


def test_the_error_rate_is_failures_over_executions(
    publisher: Celery, start_worker: Callable[..., Process], engine: sa.Engine, state: redis_lib.Redis
) -> None:
    """A real worker fails 4 tasks (dead-lettered, recorded at once) and runs 8 of the same task that
    succeed: once the successes are written, the analysis counts 12 executions and a rate of 4 / 12."""
    from error_handling.persistence.models import DeadLetterRecord
    from error_handling.persistence.reads.analysis import analyse

    since = dt.datetime.now(dt.UTC)
    start_worker(pool="prefork", concurrency=2)
    failing = [publisher.send_task("e2e.fails_until_fixed", args=[f"o{i}"]).id for i in range(4)]

    def letters() -> int:
        with Session(engine) as s:
            found = s.execute(sa.select(sa.func.count()).where(DeadLetterRecord.task_id.in_(failing))).scalar_one()
            return int(found)

    wait_until(lambda: letters() == 4, timeout=60, what="4 dead letters")
    state.set("fixed", "1")
    ok = [publisher.send_task("e2e.fails_until_fixed", args=[f"p{i}"]).id for i in range(8)]
    wait_until(lambda: all(state.exists(f"done:{i}") for i in ok), timeout=60, what="8 successes")

    def successes() -> int:
        with Session(engine) as s:
            found = success_counts(s, since=since, until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
            return found.get(("e2e.fails_until_fixed", "celery"), 0)

    wait_until(lambda: successes() == 8, timeout=Settings().success_flush_interval + 15, what="8 successes written")
    with Session(engine) as s:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
        analysis = analyse(s, since=since, until=until, new_period=dt.timedelta(days=1))
    assert (analysis.window.total_errors, analysis.window.executions) == (4, 12)
    assert analysis.window.error_rate == pytest.approx(4 / 12)
    assert analysis.window.error_distribution == {"permanent": 4}
