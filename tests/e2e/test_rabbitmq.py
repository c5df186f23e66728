"""RabbitMQ as the broker (a vhost of the test's own): a task that kills its worker ends in the
dead-letter queue as ``worker_lost`` on a classic queue; on a quorum queue whose delivery limit is
lower than ours, the broker dead-letters the message itself, to function-runner's exchange, and the
dispatcher collects it into the dead-letter queue with its payload (nothing dropped), and it replays."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery
from fastapi.testclient import TestClient

from tests.e2e.conftest import on_broker, replay_until_it_succeeds, rows, wait_terminal
from tests.support.processes import Process
from tests.support.waiting import wait_until


@pytest.fixture(params=["classic", "quorum"])
def queue_type(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def service_env(service_env: dict[str, str], queue_type: str) -> Iterator[dict[str, str]]:
    """The e2e environment with RabbitMQ as the broker (the tasks' ground truth stays in Redis)."""
    settings = {"queue_type": queue_type}
    if queue_type == "quorum":  # the broker's limit (2 redeliveries) comes before ours (10)
        settings |= {"broker_delivery_limit": "2", "max_lost_deliveries": "10"}
    with on_broker(service_env, "rabbitmq", **settings) as env:
        yield env


def test_a_task_that_kills_its_worker_reaches_the_dead_letter_queue_and_replays_on_rabbitmq(
    queue_type: str,
    publisher: Celery,
    start_worker: Callable[..., Process],
    start_dispatcher: Callable[..., Process],
    engine: sa.Engine,
    state: redis_lib.Redis,
    api: TestClient,
) -> None:
    start_worker(concurrency=2)
    start_dispatcher()
    task_id = publisher.send_task("e2e.poison", args=["sigkill"], kwargs={"after": 0.05}, task_id="rabbit-poison").id
    healthy = [publisher.send_task("e2e.count").id for _ in range(5)]

    assert wait_terminal(engine, [task_id], timeout=120) == {task_id: "dead_lettered"}
    (letter,) = rows(engine, "fr_dead_letters", task_id=task_id)
    starts = int(state.get(f"started:{task_id}") or 0)
    lost = rows(engine, "fr_lost_deliveries", task_id=task_id)
    if queue_type == "classic":
        assert (letter["reason"], starts, len(lost)) == ("worker_lost", 3, 3)
    else:  # the broker gave up first: collected, not dropped
        assert letter["reason"] == "broker_dead_lettered" and "delivery_limit" in (letter["message"] or "")
        assert starts == 3 and len(lost) >= 2  # delivered three times (the limit allows two redeliveries)
    assert letter["args"] == ["sigkill"] and letter["kwargs"] == {"after": 0.05}  # the payload, for replay
    wait_until(lambda: all(state.get(f"started:{t}") for t in healthy), timeout=60, what="the other tasks")

    state.set("poison-fixed", 1)
    replay_until_it_succeeds(api, state, letter["id"])
