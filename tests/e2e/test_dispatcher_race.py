"""Many dispatchers, one database: every due run is published exactly once; duplicates never run twice."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Callable

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery

from error_handling.persistence.db import make_engine
from error_handling.persistence.models import RunKind, RunStatus, ScheduledRun, TaskRecord, TaskState, utcnow
from tests.e2e.conftest import rows
from tests.support.processes import Process, cli_args
from tests.support.waiting import wait_until

QUEUE = "celery"


def _insert_due_runs(pg_url: str, n: int, *, task_name: str = "e2e.count") -> list[str]:
    engine = make_engine(pg_url)
    now = utcnow()
    ids = [uuid.uuid4().hex for _ in range(n)]
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(TaskRecord),
                [
                    dict(
                        task_id=t,
                        task_name=task_name,
                        queue=QUEUE,
                        state=TaskState.RETRYING,
                        attempts=1,
                        args=[],
                        kwargs={},
                        options={"routing_key": QUEUE},
                        headers={},
                        replayable=True,
                        created_at=now,
                        updated_at=now,
                    )
                    for t in ids
                ],
            )
            conn.execute(
                sa.insert(ScheduledRun),
                [
                    dict(
                        kind=RunKind.RETRY,
                        task_id=t,
                        attempt=2,
                        due_at=now - dt.timedelta(seconds=1),
                        status=RunStatus.PENDING,
                        dispatch_count=0,
                        created_at=now,
                        updated_at=now,
                    )
                    for t in ids
                ],
            )
    finally:
        engine.dispose()
    return ids


def _published(client: redis_lib.Redis) -> Counter[tuple[str, int]]:
    messages = client.lrange(QUEUE, 0, -1)
    return Counter((m["headers"]["id"], int(m["headers"]["fr_attempt"])) for m in map(json.loads, messages))


def test_two_dispatchers_publish_each_of_1000_due_retries_exactly_once(
    pg_url: str, redis_url: str, service_env: dict[str, str], spawn: Callable[..., Process]
) -> None:
    env = dict(service_env, FUNCTION_RUNNER_DISPATCHER_BATCH_SIZE="50")
    ids = _insert_due_runs(pg_url, 1000)
    first = spawn(cli_args("dispatcher"), env=env, name="dispatcher-a")
    second = spawn(cli_args("dispatcher"), env=env, name="dispatcher-b")
    engine = make_engine(pg_url)
    try:

        def all_dispatched() -> bool:
            with engine.connect() as conn:
                left = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(ScheduledRun)
                    .where(ScheduledRun.status != RunStatus.DISPATCHED)
                ).scalar_one()
            return left == 0

        wait_until(all_dispatched, timeout=120, what="every run to be dispatched")
        # both dispatchers say they are alive, for the health endpoint
        beats = rows(engine, "fr_heartbeats", kind="dispatcher")
        assert {b["pid"] for b in beats} == {first.pid, second.pid}
    finally:
        engine.dispose()
    with redis_lib.Redis.from_url(redis_url) as client:
        published = _published(client)
    assert len(published) == 1000
    assert set(published) == {(t, 2) for t in ids}
    assert set(published.values()) == {1}  # each exactly once
    # both dispatchers took part (SKIP LOCKED let them share the work rather than queue up)
    assert "dispatcher.pass" in first.log() and "dispatcher.pass" in second.log()


def test_a_run_published_twice_executes_once(
    pg_url: str,
    redis_url: str,
    service_env: dict[str, str],
    spawn: Callable[..., Process],
    publisher: Celery,
    request: pytest.FixtureRequest,
) -> None:
    """A dispatcher that dies after publishing but before committing: another publishes the run again."""
    from function_runner.dispatch.dispatcher import Dispatcher
    from function_runner.runtime import runtime_for

    (task_id,) = _insert_due_runs(pg_url, 1)
    dispatcher = Dispatcher(publisher, runtime_for(publisher))
    assert dispatcher.run_once().published == 1
    engine = make_engine(pg_url)
    with engine.begin() as conn:  # as if that pass had rolled back after publishing
        conn.execute(sa.update(ScheduledRun).values(status=RunStatus.PENDING, dispatched_at=None))
    assert dispatcher.run_once().published == 1
    client = redis_lib.Redis.from_url(redis_url, decode_responses=True)
    request.addfinalizer(client.close)
    assert _published(client)[(task_id, 2)] == 2  # two copies of the same (task id, attempt) in the queue

    from tests.support.processes import celery_worker_args

    worker = spawn(celery_worker_args("tests.e2e.tasks_app", name="dup", concurrency=2), env=service_env, name="worker")
    worker.wait_for_log(" ready.")
    wait_until(
        lambda: client.llen(QUEUE) == 0 and "task.duplicate_skipped" in worker.log(),
        timeout=60,
        what="both copies consumed",
    )
    wait_until(
        lambda: rows(engine, "fr_scheduled_runs", task_id=task_id)[0]["status"] == "done", what="the run to be done"
    )
    assert client.get(f"started:{task_id}") == "1"
    assert rows(engine, "fr_tasks", task_id=task_id)[0]["state"] == "succeeded"
    engine.dispose()
