"""A real threads-pool ``celery worker`` records the failures of tasks that fail at the same time in
shared transactions (group commit), and still every failure exactly once, before its message's ack."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from celery import Celery

from tests.e2e.conftest import wait_terminal
from tests.support.processes import Process

TASKS = 300


def test_concurrent_failures_share_transactions_and_are_each_recorded_once(
    publisher: Celery, start_worker: Callable[..., Process], engine: sa.Engine
) -> None:
    # the messages wait in the queue, so sixteen threads fail at once from the first moment
    ids = [publisher.send_task("e2e.validate", args=[-n]).id for n in range(1, TASKS + 1)]
    worker = start_worker(pool="threads", concurrency=16)
    states = wait_terminal(engine, ids, timeout=120)
    assert set(states.values()) == {"failed_fast"}
    with engine.connect() as c:
        recorded, tasks, transactions = c.execute(
            sa.text("SELECT count(*), count(DISTINCT task_id), count(DISTINCT xmin::text) FROM fr_failed_attempts")
        ).one()
        counted = c.execute(sa.text("SELECT sum(count) FROM fr_error_counts WHERE period = 'hour'")).scalar_one()
    assert recorded == tasks == counted == TASKS
    assert transactions < TASKS  # some of them were recorded together
    assert "task.record_failed" not in worker.log()
