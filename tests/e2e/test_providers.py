"""Provider resilience inside real ``celery worker`` processes, against local fake providers (real HTTP
servers on loopback): a fallback chain serves from the second provider while the first cools down, a
degraded answer is recorded and shown; a breaker declared on a task opens once for the whole worker
pool and stops the calls; a retry budget keeps retries under a tenth of the calls at full failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from fastapi.testclient import TestClient

from api.main import API_PREFIX
from tests.e2e.conftest import rows, wait_terminal
from tests.support.fake_provider import FakeProvider
from tests.support.processes import Process
from tests.support.waiting import wait_until

OVERLOADED = {
    "error": {"message": "The engine is currently overloaded, please try again later", "type": "server_error"}
}


def result_of(state: redis_lib.Redis, task_id: str) -> dict[str, Any]:
    found: str = wait_until(lambda: state.get(f"result:{task_id}"), timeout=60, what=f"the result of {task_id}")
    answer: dict[str, Any] = json.loads(found)
    return answer


def test_a_fallback_chain_in_a_worker_serves_from_the_next_provider_and_records_it(
    start_worker: Callable[..., Process],
    publisher: Celery,
    state: redis_lib.Redis,
    api: TestClient,
    engine: sa.Engine,
    providers: list[FakeProvider],
) -> None:
    limited = FakeProvider(
        429,
        {"error": {"message": "Rate limit reached for gpt-4o", "type": "requests", "code": "rate_limit_exceeded"}},
        {"retry-after": "30"},
    )
    healthy = FakeProvider(200, {"answer": "from the second provider"})
    down = FakeProvider(503, OVERLOADED)
    providers += [limited, healthy, down]
    start_worker()

    publisher.send_task("e2e.chat", args=["hello", [limited.url, healthy.url]], task_id="chat-1")
    assert result_of(state, "chat-1") == {"value": "from the second provider", "provider": "e2e-p1", "degraded": False}
    publisher.send_task("e2e.chat", args=["again", [limited.url, healthy.url]], task_id="chat-2")
    assert result_of(state, "chat-2")["provider"] == "e2e-p1"
    assert (limited.calls, healthy.calls) == (1, 2)  # the first is not called again within its 30 s hint
    assert state.get("started:chat-1") == "1"  # served in the same attempt: no retry

    publisher.send_task("e2e.chat", args=["q", [down.url]], kwargs={"degraded": True}, task_id="chat-3")
    assert result_of(state, "chat-3") == {"value": "cached answer to q", "provider": None, "degraded": True}

    events = {row["task_id"]: row for row in rows(engine, "ai_fallback_events")}
    assert events["chat-1"]["passed_over"] == [{"provider": "e2e-p0", "reason": "rate_limited"}]
    assert events["chat-2"]["passed_over"][0]["reason"].startswith("cooling down")
    assert (events["chat-3"]["provider"], events["chat-3"]["degraded"]) == (None, True)
    assert {row["task_name"] for row in events.values()} == {"e2e.chat"}

    history = api.get(f"{API_PREFIX}/task/chat-1/history")
    assert history.status_code == 200, history.text
    assert history.json()["task"] is None  # it never failed
    (served,) = history.json()["fallbacks"]
    assert (served["service"], served["provider"], served["degraded"]) == ("e2e-chat", "e2e-p1", False)
    (chain,) = api.get(f"{API_PREFIX}/health").json()["fallbacks"]
    assert (chain["service"], chain["served_by"], chain["degraded"]) == ("e2e-chat", {"e2e-p1": 2}, 1)
    assert chain["passed_over"]["e2e-p0"]["rate_limited"] == 1


def test_a_breaker_declared_on_a_task_opens_once_for_the_pool_and_stops_the_calls(
    start_worker: Callable[..., Process],
    publisher: Celery,
    service_env: dict[str, str],
    engine: sa.Engine,
    providers: list[FakeProvider],
) -> None:
    down = FakeProvider(503, OVERLOADED)
    providers.append(down)
    env = {**service_env, "FUNCTION_RUNNER_BREAKER_MIN_CALLS": "5", "FUNCTION_RUNNER_BREAKER_OPEN_SECONDS": "600"}
    start_worker(env=env, concurrency=4)

    ids = [f"guarded-{i}" for i in range(30)]
    for task_id in ids:
        publisher.send_task("e2e.ask_guarded", args=[down.url], task_id=task_id)

    def attempted() -> list[dict[str, Any]] | None:
        found = rows(engine, "fr_failed_attempts")
        return found if {r["task_id"] for r in found} >= set(ids) else None

    attempts = wait_until(attempted, timeout=60, what="a failed attempt of every task")
    refused = [a for a in attempts if a["reason"] == "circuit_open"]
    assert len(refused) >= 30 - down.calls > 0  # once open, tasks were refused without calling
    assert down.calls < 30  # the breaker stopped the calls (four processes, one shared state)
    assert all(500 < a["retry_after"] <= 600 for a in refused)  # their retries wait for the breaker
    transitions = rows(engine, "circuit_breaker_events", service="e2e-llm")
    assert [(t["from_state"], t["to_state"], t["cause"]) for t in transitions] == [("closed", "open", "failure_ratio")]


def test_at_full_failure_the_retry_budget_keeps_retries_under_a_tenth_of_the_calls(
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    publisher: Celery,
    state: redis_lib.Redis,
    engine: sa.Engine,
    providers: list[FakeProvider],
) -> None:
    down = FakeProvider(503, OVERLOADED)
    providers.append(down)
    start_worker(concurrency=4)
    start_dispatcher()

    ids = [f"budgeted-{i}" for i in range(60)]
    for task_id in ids:
        publisher.send_task("e2e.ask_budgeted", args=[down.url], task_id=task_id)
    states = wait_terminal(engine, ids, timeout=120)
    assert set(states.values()) == {"dead_lettered"}

    attempts = rows(engine, "fr_failed_attempts")
    starts = sum(int(state.get(f"started:{task_id}") or 0) for task_id in ids)
    assert len(attempts) == starts == down.calls  # every call recorded, every recorded call made
    retries = down.calls - len(ids)
    assert 0 < retries <= 0.1 * down.calls  # retries were made while the bucket was full, then stopped
    reasons = [r["reason"] for r in rows(engine, "fr_dead_letters")]
    assert reasons.count("retry_budget_exhausted") >= len(ids) - retries
