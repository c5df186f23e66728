"""Exactly-once replay under contention, on real Postgres and a real broker (Redis, and RabbitMQ in a
vhost of the test's own): two bulk replay jobs over the same dead letters, processed at once by two
real dispatcher processes, while four threads replay the same letters one by one (oldest first, the
jobs' order). Every dead letter is published exactly once: counted by consuming the queue (no worker
runs) and by the replay-request rows.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from celery import Celery
from fastapi.testclient import TestClient

from api.main import API_PREFIX
from error_handling.persistence import dead_letters
from error_handling.persistence.models import DeadLetterRecord, DeadLetterStatus, ReplayRequestRecord
from function_runner.replay.single import replay_dead_letter
from function_runner.runtime import runtime_for
from tests.e2e.conftest import BROKERS, on_broker
from tests.e2e.test_bulk_replay import QUEUE, job_row, seed
from tests.support.processes import Process
from tests.support.waiting import wait_until

BASE = f"{API_PREFIX}/dead-letters"
COUNT = 600


@pytest.fixture(params=BROKERS)
def service_env(service_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """This test runs with Redis and with RabbitMQ as the broker."""
    with on_broker(service_env, request.param) as env:
        yield env


def consume(publisher: Celery) -> list[dict[str, Any]]:
    """The headers of every message waiting in the replay queue, taken off it (Redis or RabbitMQ)."""
    with publisher.connection_for_write() as connection:
        channel: Any = connection.default_channel
        if connection.transport.driver_type == "redis":
            with channel.conn_or_acquire() as client:
                return [json.loads(raw)["headers"] for raw in client.lrange(QUEUE, 0, -1)]
        found = []
        while (message := channel.basic_get(queue=QUEUE, no_ack=True)) is not None:
            found.append(dict(message.headers))
        return found


def test_two_jobs_and_single_replays_over_the_same_letters_publish_each_exactly_once(
    api: TestClient,
    engine: sa.Engine,
    publisher: Celery,
    start_dispatcher: Callable[..., Process],
    service_env: dict[str, str],
) -> None:
    ids = sorted(seed(engine, COUNT, task_name="e2e.contended"))
    runtime = runtime_for(publisher)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    go = threading.Event()

    def replay_one_by_one(seed_value: int) -> None:
        order = list(ids)
        random.Random(seed_value).shuffle(order[len(order) // 2 :])  # oldest first, then in any order
        go.wait()
        for letter_id in order:
            try:
                replay_dead_letter(publisher, runtime, dead_letter_id=letter_id, actor=f"thread-{seed_value}")
                outcome = "published"
            except dead_letters.BeingReplayed:
                outcome = "being_replayed"
            except dead_letters.AlreadyReplayed:
                outcome = "already_replayed"
            with lock:
                outcomes[outcome] += 1

    threads = [threading.Thread(target=replay_one_by_one, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    env = {**service_env, "FUNCTION_RUNNER_DISPATCHER_BATCH_SIZE": "25"}
    dispatchers = [start_dispatcher(env=env) for _ in range(2)]
    jobs = []
    for _ in range(2):
        created = api.post(f"{BASE}/replay", json={"task_name": "e2e.contended"})
        assert created.status_code == 202, created.text
        jobs.append(created.json()["id"])
    go.set()
    for thread in threads:
        thread.join(timeout=300)
        assert not thread.is_alive(), "a replay thread did not finish"
    done = [
        wait_until(
            lambda j=job: (row := job_row(engine, j))["status"] == "done" and row, timeout=120, what=f"job {job}"
        )
        for job in jobs
    ]
    for process in dispatchers:
        process.stop()

    messages = consume(publisher)
    replay_of = Counter(int(m["fr_replay_of"]) for m in messages)
    twice = {letter: n for letter, n in replay_of.items() if n > 1}
    assert not twice, f"{len(twice)} dead letters published more than once"
    assert set(replay_of) == set(ids) and len(messages) == COUNT
    with engine.connect() as conn:
        requests = conn.execute(sa.select(ReplayRequestRecord.dead_letter_id, ReplayRequestRecord.task_id)).all()
        statuses = Counter(conn.execute(sa.select(DeadLetterRecord.status)).scalars())
    assert Counter(letter for letter, _ in requests) == Counter(ids)  # one replay recorded per letter
    assert {task for _, task in requests} == {m["id"] for m in messages}  # the recorded ones were sent
    assert statuses == {DeadLetterStatus.REPLAYED: COUNT}  # none left claimed
    by_jobs = sum(row["published"] for row in done)
    assert by_jobs + outcomes["published"] == COUNT
    assert outcomes.total() == 4 * COUNT
    print(f"jobs published {[row['published'] for row in done]}, single replays {dict(outcomes)}")
