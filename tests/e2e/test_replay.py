"""Replay end to end: a task dead-letters, the cause is fixed, ``POST .../replay`` runs it to success in
a real worker, and the lineage is recorded; a second replay is refused unless forced; discard is terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from fastapi.testclient import TestClient

from api.main import API_PREFIX
from tests.e2e.conftest import BROKERS, on_broker, rows, task_state, wait_terminal
from tests.support.processes import Process
from tests.support.waiting import wait_until


@pytest.fixture(params=BROKERS)
def service_env(service_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """These tests run with Redis and with RabbitMQ as the broker."""
    with on_broker(service_env, request.param) as env:
        yield env


CANARY_KEY = "sk-replay0123456789abcdefCANARY"
BASE = f"{API_PREFIX}/dead-letters"


def dead_letter_of(engine: sa.Engine, task_id: str) -> dict[str, Any]:
    (letter,) = rows(engine, "fr_dead_letters", task_id=task_id)
    return letter


def replay(api: TestClient, letter_id: int, **body: Any) -> dict[str, Any]:
    response = api.post(f"{BASE}/{letter_id}/replay", json=body or None)
    assert response.status_code == 202, response.text
    assert CANARY_KEY not in response.text
    result: dict[str, Any] = response.json()
    return result


def test_a_fixed_dead_letter_replays_to_success_with_its_lineage(
    publisher: Celery,
    start_worker: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    api: TestClient,
) -> None:
    worker = start_worker()
    original = publisher.send_task("e2e.fails_until_fixed", args=["A-1"], kwargs={"api_key": CANARY_KEY}).id
    assert wait_terminal(engine, [original]) == {original: "dead_lettered"}
    first_letter = dead_letter_of(engine, original)

    # Replayed before the cause is fixed: the replay fails again and is dead-lettered, linked to the first.
    retry = replay(api, first_letter["id"])["task_id"]
    assert wait_terminal(engine, [retry]) == {retry: "dead_lettered"}
    (retry_task,) = rows(engine, "fr_tasks", task_id=retry)
    assert retry_task["replay_of"] == first_letter["id"]
    second_letter = dead_letter_of(engine, retry)
    shown = api.get(f"{BASE}/{second_letter['id']}").json()
    assert shown["kwargs"] == {"api_key": "[REDACTED]"}  # the secret came back sealed, shown redacted

    # The cause is fixed; the replay runs to success with the original arguments, secret included.
    state.set("fixed", "1")
    fixed = replay(api, second_letter["id"])["task_id"]
    done = wait_until(lambda: state.hgetall(f"done:{fixed}"), what="the replayed task to succeed")
    assert done == {"order": "A-1", "api_key": CANARY_KEY}
    assert state.get(f"started:{fixed}") == "1"
    assert task_state(engine, fixed) is None  # a first attempt that succeeds costs no database write
    shown = api.get(f"{BASE}/{second_letter['id']}").json()
    assert (shown["status"], shown["replayed_task_id"]) == ("replayed", fixed)
    assert [r["task_id"] for r in shown["replays"]] == [fixed]
    assert api.get(f"{BASE}/{first_letter['id']}").json()["replayed_task_id"] == retry

    # The history shows the whole lineage: original -> dead letter -> replay -> dead letter -> replay.
    history = api.get(f"/api/v1/errors/task/{original}/history").json()
    assert history["dead_letter"]["id"] == first_letter["id"]
    assert [r["task_id"] for r in history["replays"]] == [retry]
    history = api.get(f"/api/v1/errors/task/{retry}/history").json()
    assert [(a["attempt"], a["decision"]) for a in history["attempts"]] == [(1, "dead_letter")]
    assert history["replay_of"]["id"] == first_letter["id"]
    assert history["dead_letter"]["id"] == second_letter["id"]
    assert [(r["task_id"], r["state"]) for r in history["replays"]] == [(fixed, None)]
    history = api.get(f"/api/v1/errors/task/{fixed}/history").json()
    assert history["replay_of"]["id"] == second_letter["id"]

    # Replaying again is refused; forced, it publishes a new task that runs too.
    again = api.post(f"{BASE}/{second_letter['id']}/replay")
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_replayed"
    forced = replay(api, second_letter["id"], force=True)
    assert forced["forced"] and forced["task_id"] not in (fixed, retry)
    wait_until(lambda: state.hgetall(f"done:{forced['task_id']}"), what="the forced replay to succeed")
    assert state.get(f"started:{fixed}") == "1"  # the earlier replay did not run twice

    # Discarding another dead letter is terminal for it and for its task.
    doomed = publisher.send_task("e2e.permanent", kwargs={"note": "obsolete"}).id
    assert wait_terminal(engine, [doomed]) == {doomed: "dead_lettered"}
    doomed_letter = dead_letter_of(engine, doomed)
    response = api.delete(f"{BASE}/{doomed_letter['id']}", params={"reason": "order cancelled"})
    assert response.status_code == 200, response.text
    assert dead_letter_of(engine, doomed)["status"] == "discarded"
    assert task_state(engine, doomed) == "discarded"
    refused = api.post(f"{BASE}/{doomed_letter['id']}/replay", json={"force": True})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "discarded"
    assert state.get(f"started:{doomed}") == "1"

    assert CANARY_KEY not in worker.log()
