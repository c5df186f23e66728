"""Resource gates end to end, on real Postgres and Redis with real ``celery worker`` processes and a
real dispatcher (the monitor role): a probe gate releases its parked tasks when the resource comes
back, a capacity gate is never held by more tasks than its capacity, and a wait past its deadline
becomes a dead letter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from fastapi.testclient import TestClient

from tests.e2e.conftest import rows, wait_terminal
from tests.support.processes import Process
from tests.support.waiting import wait_until


def gate_env(service_env: dict[str, str], tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **service_env,
        "FR_TEST_GATE_FILE": str(tmp_path / "licence"),
        "FUNCTION_RUNNER_GATE_CHECK_INTERVAL": "0.5",
        **extra,
    }


def pending_waits(engine: sa.Engine, resource: str) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM fr_scheduled_runs WHERE kind = 'resource_wait' AND resource = :r"
                    " AND status = 'pending'"
                ),
                {"r": resource},
            ).scalar_one()
        )


def test_twenty_tasks_park_on_a_probe_gate_and_are_released_when_it_flips(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    service_env: dict[str, str],
    tmp_path: Path,
    api: TestClient,
) -> None:
    env = gate_env(service_env, tmp_path)
    start_worker(env=env, concurrency=2)
    start_dispatcher(env=env)
    ids = [publisher.send_task("e2e.needs_licence").id for _ in range(20)]
    wait_until(lambda: pending_waits(engine, "licence") == 20, timeout=60, what="20 parked waits")

    gates = wait_until(
        lambda: (
            (found := api.get("/api/v1/errors/resources").json()["data"])
            and any(g["name"] == "licence" and g["available"] is False for g in found)
            and found
        ),
        what="the monitor to report the gate closed",
    )
    licence = next(g for g in gates if g["name"] == "licence")
    assert licence["waiting"] == 20 and licence["oldest_wait"] is not None
    assert licence["probe"] == "licence file present"
    assert state.get("licensed") is None  # still parked: not re-run on a timer

    (tmp_path / "licence").write_text("ok")  # the resource comes back
    assert set(wait_terminal(engine, ids, timeout=90).values()) == {"succeeded"}
    assert int(state.get("licensed") or 0) == 20
    history = api.get(f"/api/v1/errors/task/{ids[0]}/history").json()
    assert [run["resource"] for run in history["runs"]] == ["licence"]


def test_a_capacity_gate_is_never_held_by_more_tasks_than_its_capacity(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    env = gate_env(service_env, tmp_path)
    start_worker(env=env, concurrency=2)
    start_worker(env=env, concurrency=2)  # four execution slots for a gate of capacity 2
    start_dispatcher(env=env)
    start_dispatcher(env=env)  # two monitors releasing the same waits
    for _ in range(12):
        publisher.send_task("e2e.uses_slot")
    wait_until(lambda: int(state.get("slot:done") or 0) == 12, timeout=120, what="the 12 tasks to finish")
    assert int(state.get("slot:max") or 0) == 2  # used to the full, never beyond (checked by the tasks)
    parked = [r for r in rows(engine, "fr_failed_attempts") if r["reason"] == "capacity_exhausted"]
    assert parked, "with four slots for two units some tasks must have waited"
    assert {r["resource"] for r in parked} == {"slot"}
    waited = sorted({r["task_id"] for r in parked})
    assert set(wait_terminal(engine, waited).values()) == {"succeeded"}  # released, then ran


def test_a_wait_on_a_gate_past_its_deadline_is_dead_lettered(
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    service_env: dict[str, str],
    tmp_path: Path,
) -> None:
    env = gate_env(service_env, tmp_path, FUNCTION_RUNNER_RESOURCE_WAIT_TIMEOUT="2")
    start_worker(env=env, concurrency=1)
    start_dispatcher(env=env)
    task_id = publisher.send_task("e2e.needs_licence").id
    assert wait_terminal(engine, [task_id], timeout=60) == {task_id: "dead_lettered"}
    (letter,) = rows(engine, "fr_dead_letters", task_id=task_id)
    assert letter["reason"] == "resource_wait_timeout"
    assert len(rows(engine, "fr_failed_attempts", task_id=task_id)) == 1  # parked once, never re-run
