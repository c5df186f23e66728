"""Compensation logs end to end, on real Postgres and Redis with real ``celery worker`` processes: the
undos run newest first and once (even when the worker running them is killed), across a chain, and a
failing undo ends as a dead letter whose replay completes the rollback."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from fastapi.testclient import TestClient

from tests.e2e.conftest import BROKERS, on_broker, rows, wait_terminal
from tests.support.processes import Process
from tests.support.waiting import wait_until


@pytest.fixture(params=BROKERS)
def service_env(service_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """These tests run with Redis and with RabbitMQ as the broker."""
    with on_broker(service_env, request.param) as env:
        yield env


CANARY = "pw-compensation-canary-3141"


def steps_of(engine: sa.Engine, saga_id: str) -> list[dict[str, object]]:
    with engine.connect() as conn:
        return [
            dict(r._mapping)
            for r in conn.execute(
                sa.text("SELECT * FROM fr_compensation_steps WHERE saga_id = :s ORDER BY id"), {"s": saga_id}
            )
        ]


def test_three_steps_are_undone_newest_first_once_even_when_the_compensating_worker_is_killed(
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    api: TestClient,
) -> None:
    worker = start_worker(concurrency=1)
    task_id = publisher.send_task("e2e.books_three", kwargs={"block_step": 2}).id
    assert wait_terminal(engine, [task_id]) == {task_id: "failed_fast"}

    # the undo of step 3 ran; the undo of step 2 blocks: kill the pool process running it
    key = wait_until(lambda: next((k for k in state.keys("undoing:*")), None), what="the undo of step 2 to start")
    pid = int(state.get(key) or 0)
    assert pid in worker.children()
    os.kill(pid, signal.SIGKILL)

    wait_until(lambda: state.llen(f"undone:{task_id}") == 3, timeout=60, what="the three undos")
    assert [int(s) for s in state.lrange(f"undone:{task_id}", 0, -1)] == [3, 2, 1]  # newest first, each once
    steps = wait_until(
        lambda: (found := steps_of(engine, task_id)) and all(s["status"] == "compensated" for s in found) and found,
        what="every step compensated",
    )
    runs = {s["name"]: int(state.get(f"undo-runs:{s['idempotency_key']}") or 0) for s in steps}
    assert runs == {"step-1": 1, "step-2": 2, "step-3": 1}  # step 2 again after the kill, its effect once
    assert [s["attempts"] for s in steps] == [1, 2, 1]
    assert all(CANARY not in str(s["data"]) for s in steps)  # sealed in the table

    shown = api.get(f"/api/v1/errors/task/{task_id}/compensation")
    assert shown.status_code == 200, shown.text
    assert CANARY not in shown.text
    body = shown.json()
    assert body["saga_id"] == task_id
    assert [(s["name"], s["status"], s["attempts"]) for s in body["steps"]] == [
        ("step-1", "compensated", 1),
        ("step-2", "compensated", 2),
        ("step-3", "compensated", 1),
    ]
    assert body["steps"][0]["data"]["password"] == "[REDACTED]"
    history = api.get(f"/api/v1/errors/task/{task_id}/history").json()
    assert [s["name"] for s in history["compensation"]] == ["step-1", "step-2", "step-3"]
    recovery = api.get("/api/v1/errors/recovery/stats").json()
    assert (recovery["compensations_run"], recovery["failed_fast"], recovery["compensations_open"]) == (3, 1, 0)


def test_a_chain_whose_third_task_dead_letters_undoes_the_steps_of_the_first_two(
    publisher: Celery, start_worker: Callable[..., Process], engine: sa.Engine, state: redis_lib.Redis
) -> None:
    start_worker(concurrency=2)
    step = "e2e.saga_step"
    chain = (
        publisher.signature(step, args=[None, 1, False])
        | publisher.signature(step, args=[2, False])
        | publisher.signature(step, args=[3, True])
    )
    last = chain.apply_async()
    root = last.parent.parent.id
    wait_until(lambda: state.llen(f"undone:{root}") == 3, timeout=60, what="the saga's undos")
    assert [int(s) for s in state.lrange(f"done:{root}", 0, -1)] == [1, 2, 3]
    assert [int(s) for s in state.lrange(f"undone:{root}", 0, -1)] == [3, 2, 1]
    steps = steps_of(engine, root)
    assert [(s["name"], s["status"]) for s in steps] == [(f"step-{i}", "compensated") for i in (1, 2, 3)]
    assert len({s["task_id"] for s in steps}) == 3  # three tasks, one saga
    assert len(rows(engine, "fr_dead_letters", task_id=last.id)) == 1


def test_a_failing_undo_is_a_dead_letter_whose_replay_completes_the_rollback(
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    api: TestClient,
) -> None:
    start_worker(concurrency=1)
    task_id = publisher.send_task("e2e.books_three", kwargs={"undo": "until_fixed"}).id
    letter = wait_until(
        lambda: next(iter(rows(engine, "fr_dead_letters", task_name="function_runner.compensate")), None),
        timeout=60,
        what="the compensation's dead letter",
    )
    assert letter["reason"] == "compensation_failed" and letter["args"] == [task_id]
    statuses = [s["status"] for s in steps_of(engine, task_id)]
    assert statuses == ["compensation_failed"] * 3
    assert state.llen(f"undone:{task_id}") == 0

    state.set("undo-fixed", 1)  # the cause is fixed
    replay = api.post(f"/api/v1/errors/dead-letters/{letter['id']}/replay")
    assert replay.status_code == 202, replay.text
    wait_until(
        lambda: all(s["status"] == "compensated" for s in steps_of(engine, task_id)),
        timeout=60,
        what="the rollback to complete",
    )
    assert [int(s) for s in state.lrange(f"undone:{task_id}", 0, -1)] == [3, 2, 1]


def test_a_task_may_compensate_after_every_failed_attempt(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
) -> None:
    start_worker(concurrency=1)
    start_dispatcher()
    task_id = publisher.send_task("e2e.retried_booking").id
    assert wait_terminal(engine, [task_id]) == {task_id: "succeeded"}
    wait_until(lambda: state.llen(f"undone:{task_id}") == 1, what="the first attempt's hold to be undone")
    assert [int(s) for s in state.lrange(f"undone:{task_id}", 0, -1)] == [1]
    steps = wait_until(
        lambda: (found := steps_of(engine, task_id)) and len(found) == 4 and found, what="both attempts' steps"
    )
    assert [(s["attempt"], s["name"], s["status"]) for s in steps] == [
        (1, "hold", "compensated"),
        (1, "notify", "skipped"),  # nothing to undo: recorded for the log
        (2, "hold", "recorded"),  # the attempt that succeeded keeps its effects
        (2, "notify", "recorded"),
    ]
