"""Bulk replay of 10,000 dead letters by filter on real Postgres and Redis, with real dispatcher
processes: a dry run publishes nothing; a job is published exactly once per dead letter even when the
dispatcher is SIGKILLed halfway and another one finishes the job.

No worker runs: the replayed messages stay in their Redis queue, where the test reads every one of them.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis as redis_lib
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import API_PREFIX
from error_handling.persistence.models import DeadLetterRecord, DeadLetterStatus, ReplayJobRecord, utcnow
from tests.support.processes import Process
from tests.support.waiting import wait_until

BASE = f"{API_PREFIX}/dead-letters"
#: A queue no worker consumes: what the replay publishes stays there to be counted.
QUEUE = "fr_bulk_replay"
COUNT = 10_000


def seed(engine: sa.Engine, count: int, *, task_name: str) -> list[int]:
    """Insert ``count`` pending dead letters in one statement (plain JSON payloads: nothing to seal)."""
    start = utcnow() - dt.timedelta(hours=1)
    rows: list[dict[str, Any]] = [
        {
            "task_id": uuid.uuid4().hex,
            "task_name": task_name,
            "queue": QUEUE,
            "reason": "auth_failed",
            "category": "permanent",
            "last_reason": "auth_failed",
            "exc_type": "error_handling.exceptions.PermanentError",
            "message": "credentials revoked",
            "fingerprint": "b" * 16,
            "attempts": 1,
            "args": [],
            "kwargs": {"n": i},
            "options": {"queue": QUEUE},
            "headers": {},
            "replayable": True,
            "status": DeadLetterStatus.PENDING,
            "created_at": start + dt.timedelta(milliseconds=i),
            "updated_at": start,
        }
        for i in range(count)
    ]
    with engine.begin() as conn:
        conn.execute(sa.insert(DeadLetterRecord), rows)
        return list(
            conn.execute(sa.select(DeadLetterRecord.id).where(DeadLetterRecord.task_name == task_name)).scalars()
        )


def job_row(engine: sa.Engine, job_id: int) -> dict[str, Any]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(ReplayJobRecord.__table__).where(ReplayJobRecord.id == job_id)).one()
        return dict(row._mapping)


def queued(redis_url: str) -> list[dict[str, Any]]:
    """Every message waiting in the replay queue, decoded."""
    client = redis_lib.Redis.from_url(redis_url)
    try:
        return [json.loads(raw) for raw in client.lrange(QUEUE, 0, -1)]
    finally:
        client.close()


def test_bulk_replay_of_10000_publishes_each_exactly_once_across_a_sigkilled_dispatcher(
    api: TestClient,
    engine: sa.Engine,
    redis_url: str,
    start_dispatcher: Callable[..., Process],
) -> None:
    ids = seed(engine, COUNT, task_name="e2e.bulk_target")
    seed(engine, 50, task_name="e2e.bulk_other")  # pending too, but outside the filter

    dry = api.post(f"{BASE}/replay", json={"task_name": "e2e.bulk_target", "dry_run": True, "sample_size": 3})
    assert dry.status_code == 200, dry.text
    assert dry.json()["count"] == COUNT
    assert [item["id"] for item in dry.json()["sample"]] == sorted(ids)[:3]
    assert queued(redis_url) == []  # the dry run published nothing

    created = api.post(f"{BASE}/replay", json={"task_name": "e2e.bulk_target"})
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    assert created.json()["total"] == COUNT

    first = start_dispatcher()
    wait_until(lambda: job_row(engine, job_id)["published"] >= 4000, timeout=60, what="4,000 published")
    first.kill()  # SIGKILL, most likely in the middle of a batch
    at_kill = job_row(engine, job_id)
    assert at_kill["published"] < COUNT, "the dispatcher finished before it could be killed"

    second = start_dispatcher()
    done = wait_until(
        lambda: (row := job_row(engine, job_id))["status"] == "done" and row, timeout=60, what="the job to finish"
    )
    second.stop()

    messages = queued(redis_url)
    replay_of = Counter(int(m["headers"]["fr_replay_of"]) for m in messages)
    duplicates = {letter: n for letter, n in replay_of.items() if n > 1}
    assert not duplicates, f"{len(duplicates)} dead letters published more than once"
    assert set(replay_of) == set(ids) and len(messages) == COUNT
    assert {m["headers"]["task"] for m in messages} == {"e2e.bulk_target"}
    assert (done["published"], done["skipped"], done["failed"], done["total"]) == (COUNT, 0, 0, COUNT)
    assert done["inflight_until_id"] is None

    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                sa.select(DeadLetterRecord.task_name, sa.func.count())
                .where(DeadLetterRecord.status == DeadLetterStatus.REPLAYED)
                .group_by(DeadLetterRecord.task_name)
            ).all()
        )
        replay_task_ids = set(conn.execute(sa.text("SELECT task_id FROM fr_replay_requests")).scalars())
    assert statuses == {"e2e.bulk_target": COUNT}
    assert {m["headers"]["id"] for m in messages} == replay_task_ids  # the recorded task ids are the published ones


def test_three_dispatchers_at_once_publish_each_dead_letter_of_a_job_exactly_once(
    api: TestClient,
    engine: sa.Engine,
    redis_url: str,
    start_dispatcher: Callable[..., Process],
    service_env: dict[str, str],
) -> None:
    ids = seed(engine, 3000, task_name="e2e.bulk_target")
    created = api.post(f"{BASE}/replay", json={"task_name": "e2e.bulk_target"})
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    env = {**service_env, "FUNCTION_RUNNER_DISPATCHER_BATCH_SIZE": "100"}  # many batches to compete for
    dispatchers = [start_dispatcher(env=env) for _ in range(3)]
    done = wait_until(
        lambda: (row := job_row(engine, job_id))["status"] == "done" and row, timeout=60, what="the job to finish"
    )
    for process in dispatchers:
        process.stop()

    replay_of = Counter(int(m["headers"]["fr_replay_of"]) for m in queued(redis_url))
    assert replay_of == Counter(ids)  # each exactly once
    assert (done["published"], done["total"]) == (3000, 3000)
    batches = [sum("replay_job.batch" in line for line in p.log().splitlines()) for p in dispatchers]
    assert sum(batches) == 30  # 3000 / 100: no batch was done twice
