"""Poison messages in real ``celery worker`` processes: a task that kills its pool process every time
(``os._exit``, SIGKILL from inside) is dead-lettered as ``worker_lost`` after the limit, while the pool
keeps serving; replayed after the fix it succeeds. A task killed once then succeeding shows the lost
delivery and the success, and uses no retry. Hard and soft time limits. Over many tasks with random
crashes, the recorded executions equal the starts the tasks counted themselves."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from fastapi.testclient import TestClient

from api.main import API_PREFIX
from tests.e2e.conftest import replay_until_it_succeeds, rows, task_state, wait_terminal
from tests.support.processes import Process, cli_args
from tests.support.waiting import wait_until


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_a_task_that_kills_its_worker_is_dead_lettered_after_the_limit_and_replays_after_the_fix(
    how: str,
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    api: TestClient,
) -> None:
    worker = start_worker(concurrency=2)
    task_id = publisher.send_task("e2e.poison", args=[how], kwargs={}).id
    others = [publisher.send_task("e2e.count").id for _ in range(10)]

    assert wait_terminal(engine, [task_id], timeout=90) == {task_id: "dead_lettered"}
    assert state.get(f"started:{task_id}") == "3"  # run three times (the limit), not a fourth
    (letter,) = rows(engine, "fr_dead_letters", task_id=task_id)
    assert letter["reason"] == "worker_lost" and letter["replayable"]
    expected = "SIGKILL" if how == "sigkill" else "exit code 1"
    assert expected in letter["message"] and "last on w0@" in letter["message"]
    lost = rows(engine, "fr_lost_deliveries", task_id=task_id)
    assert sorted(r["delivery"] for r in lost) == [1, 2, 3]
    assert {r["cause"] for r in lost} == {"worker_lost"}
    assert all(r["pid"] and (r["signal"] == "SIGKILL" if how == "sigkill" else r["exit_code"] == 1) for r in lost)
    (verdict,) = rows(engine, "fr_failed_attempts", task_id=task_id)
    assert (verdict["reason"], verdict["started_at"], verdict["attempt"]) == ("worker_lost", None, 1)

    # the pool kept serving the other tasks and is still alive
    wait_until(lambda: all(state.get(f"started:{t}") for t in others), timeout=60, what="the other tasks to run")
    assert worker.alive()

    history = api.get(f"{API_PREFIX}/task/{task_id}/history").json()
    assert history["executions"] == 3 and len(history["lost_deliveries"]) == 3

    state.set("poison-fixed", 1)  # the bug is fixed: the replay succeeds
    new_id = replay_until_it_succeeds(api, state, letter["id"])
    assert state.get(f"started:{new_id}") == "1" and task_state(engine, new_id) is None  # first try, no failure


def test_pool_processes_mark_the_task_they_run_in_the_workers_shared_memory(
    publisher: Celery, start_worker: Callable[..., Process], state: redis_lib.Redis
) -> None:
    start_worker(concurrency=2)
    ids = [publisher.send_task("e2e.own_mark").id for _ in range(4)]
    marked = wait_until(
        lambda: [state.get(f"marked:{t}") for t in ids] if all(state.get(f"marked:{t}") for t in ids) else None,
        timeout=60,
        what="the tasks to look for their marks",
    )
    assert marked == ["1"] * 4


def test_a_task_killed_once_then_succeeding_shows_the_lost_delivery_and_uses_no_retry(
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    api: TestClient,
    service_env: dict[str, str],
) -> None:
    start_worker(concurrency=1)
    task_id = publisher.send_task("e2e.killed_once").id
    assert wait_terminal(engine, [task_id], timeout=60) == {task_id: "succeeded"}
    assert state.get(f"started:{task_id}") == "2"

    history = api.get(f"{API_PREFIX}/task/{task_id}/history").json()
    (lost,) = history["lost_deliveries"]
    assert (lost["attempt"], lost["delivery"], lost["cause"], lost["signal"]) == (1, 1, "worker_lost", "SIGKILL")
    assert history["task"]["state"] == "succeeded" and history["executions"] == 2
    assert history["attempts"] == [] and history["runs"] == []  # no failed attempt, no retry used
    assert rows(engine, "fr_scheduled_runs", task_id=task_id) == []
    assert float(state.get("fr:budget:e2e-kill") or 0) == 10.0  # the bucket is full: the loss took no token

    shown = subprocess.run(
        cli_args("errors", "history", task_id),
        env={**service_env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "succeeded; 0 failed attempt(s), 2 execution(s)" in shown.stdout
    assert "lost deliveries" in shown.stdout and "SIGKILL" in shown.stdout


def test_a_hard_time_limit_counts_as_a_lost_delivery_and_a_soft_one_is_a_transient_timeout(
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    service_env: dict[str, str],
) -> None:
    start_worker(env={**service_env, "FUNCTION_RUNNER_MAX_LOST_DELIVERIES": "2"}, concurrency=1)
    hard = publisher.send_task("e2e.sleeps", args=[30], time_limit=1).id
    soft = publisher.send_task("e2e.sleeps", args=[30], soft_time_limit=0.5, time_limit=20).id

    assert wait_terminal(engine, [hard], timeout=90) == {hard: "dead_lettered"}
    lost = rows(engine, "fr_lost_deliveries", task_id=hard)
    assert [r["cause"] for r in sorted(lost, key=lambda r: r["delivery"])] == ["time_limit", "time_limit"]
    assert "hard time limit" in lost[0]["detail"]
    assert state.get(f"started:{hard}") == "2"  # the limit is the setting, 2

    wait_until(lambda: rows(engine, "fr_failed_attempts", task_id=soft), timeout=60, what="the soft limit's attempt")
    (attempt,) = rows(engine, "fr_failed_attempts", task_id=soft)
    assert (attempt["category"], attempt["reason"], attempt["decision"]) == ("transient", "timeout", "retry")
    assert (attempt["attempt"], attempt["max_attempts"]) == (1, 5)  # "attempt 1 of 5"


def test_recorded_executions_equal_the_starts_of_two_hundred_tasks_with_random_crashes(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    api: TestClient,
) -> None:
    start_worker(concurrency=4)
    start_dispatcher()
    ids = [publisher.send_task("e2e.chaotic", args=[0.2, 0.2]).id for _ in range(200)]

    def settled() -> bool:
        return all(state.get(f"succeeded:{t}") or (task_state(engine, t) or "") == "dead_lettered" for t in ids)

    wait_until(settled, timeout=300, what="every task to succeed or be dead-lettered")
    crashed = with_history = 0
    for task_id in ids:
        starts = int(state.get(f"started:{task_id}") or 0)
        response = api.get(f"{API_PREFIX}/task/{task_id}/history")
        if response.status_code == 404:  # never failed: the success path records nothing
            assert (starts, state.get(f"succeeded:{task_id}")) == (1, "1")
            continue
        with_history += 1
        history = response.json()
        crashed += len(history["lost_deliveries"])
        assert history["executions"] == starts, (task_id, history)
        if history["task"]["state"] == "succeeded":
            assert state.get(f"succeeded:{task_id}") == "1"
    assert crashed > 10 and with_history > 50  # the run did crash workers, many times
