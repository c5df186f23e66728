"""A group's dead letters replayed and discarded from the API by real dispatcher processes, on real
Postgres and Redis: the preview's count is what the job takes, each letter replayed exactly once (read
from the broker's queue, which no worker consumes) or discarded once, and the progress is reported.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from typing import Any

import redis as redis_lib
import sqlalchemy as sa
from fastapi.testclient import TestClient

from api.main import API_PREFIX
from error_handling.categories import Category
from error_handling.persistence.db import make_sessionmaker
from error_handling.persistence.models import AuditEvent, DeadLetterRecord, DeadLetterStatus, TaskRecord, utcnow
from tests.support.failures import fail
from tests.support.processes import Process
from tests.support.waiting import wait_until

GROUPS = f"{API_PREFIX}/groups"
JOBS = f"{API_PREFIX}/dead-letters/replays"
#: A queue no worker consumes: what the replay publishes stays there to be counted.
QUEUE = "fr_group_replay"
REPLAYED, DISCARDED = "a" * 16, "c" * 16


def seed(engine: sa.Engine, fingerprint: str, count: int) -> list[int]:
    """``count`` tasks of one group dead-lettered as a worker records them; their letters route to QUEUE."""
    sessions = make_sessionmaker(engine)
    start = utcnow() - dt.timedelta(minutes=30)
    for n in range(count):
        fail(
            sessions,
            f"{fingerprint[:4]}-{n}",
            1,
            at=start + dt.timedelta(seconds=n),
            category=Category.PERMANENT,
            reason="not_found",
            fingerprint=fingerprint,
            queue=QUEUE,
        )
    with engine.begin() as conn:
        conn.execute(
            sa.update(DeadLetterRecord)
            .where(DeadLetterRecord.fingerprint == fingerprint)
            .values(options={"queue": QUEUE})
        )
        return list(
            conn.execute(sa.select(DeadLetterRecord.id).where(DeadLetterRecord.fingerprint == fingerprint)).scalars()
        )


def queued(redis_url: str) -> list[dict[str, Any]]:
    client = redis_lib.Redis.from_url(redis_url)
    try:
        return [json.loads(raw) for raw in client.lrange(QUEUE, 0, -1)]
    finally:
        client.close()


def finished(api: TestClient, job_id: int) -> dict[str, Any] | None:
    body: dict[str, Any] = api.get(f"{JOBS}/{job_id}").json()
    return body if body["status"] == "done" else None


def test_a_groups_dead_letters_replayed_from_the_api_are_the_previewed_ones_each_once(
    api: TestClient,
    engine: sa.Engine,
    redis_url: str,
    start_dispatcher: Callable[..., Process],
    service_env: dict[str, str],
) -> None:
    ids = seed(engine, REPLAYED, 60)
    seed(engine, DISCARDED, 5)  # another group's letters: not taken

    preview = api.post(f"{GROUPS}/{REPLAYED}/dead-letters/replay", json={"dry_run": True})
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 60 and queued(redis_url) == []

    created = api.post(f"{GROUPS}/{REPLAYED}/dead-letters/replay", json={})
    assert created.status_code == 202, created.text
    assert created.json()["total"] == preview.json()["count"]
    dispatcher = start_dispatcher(env={**service_env, "FUNCTION_RUNNER_DISPATCHER_BATCH_SIZE": "25"})
    done = wait_until(lambda: finished(api, created.json()["id"]), timeout=60, what="the replay job to finish")
    dispatcher.stop()

    replay_of = Counter(int(m["headers"]["fr_replay_of"]) for m in queued(redis_url))
    assert replay_of == Counter(ids)  # exactly the previewed letters, each once
    assert (done["published"], done["total"], done["action"]) == (60, 60, "replay")


def test_a_groups_dead_letters_discarded_from_the_api_each_once_with_progress(
    api: TestClient,
    engine: sa.Engine,
    redis_url: str,
    start_dispatcher: Callable[..., Process],
    service_env: dict[str, str],
) -> None:
    ids = seed(engine, DISCARDED, 45)
    kept = seed(engine, REPLAYED, 5)

    preview = api.post(f"{GROUPS}/{DISCARDED}/dead-letters/discard", json={"dry_run": True}).json()
    created = api.post(f"{GROUPS}/{DISCARDED}/dead-letters/discard", json={"reason": "fixed upstream"})
    assert created.status_code == 202, created.text
    assert created.json()["total"] == preview["count"] == 45
    dispatcher = start_dispatcher(env={**service_env, "FUNCTION_RUNNER_DISPATCHER_BATCH_SIZE": "20"})
    done = wait_until(lambda: finished(api, created.json()["id"]), timeout=60, what="the discard job to finish")
    dispatcher.stop()

    assert (done["discarded"], done["total"], done["published"], done["action"]) == (45, 45, 0, "discard")
    assert queued(redis_url) == []  # nothing published
    with engine.connect() as conn:
        letters = dict(conn.execute(sa.select(DeadLetterRecord.id, DeadLetterRecord.status)).all())
        reasons = set(
            conn.execute(sa.select(DeadLetterRecord.discarded_reason).where(DeadLetterRecord.id.in_(ids))).scalars()
        )
        tasks = Counter(conn.execute(sa.select(TaskRecord.state).where(TaskRecord.task_id.like("cccc-%"))).scalars())
        audited = Counter(
            conn.execute(sa.select(AuditEvent.target_id).where(AuditEvent.action == "dead_letter.discard")).scalars()
        )
    assert {letters[i] for i in ids} == {DeadLetterStatus.DISCARDED} and reasons == {"fixed upstream"}
    assert {letters[i] for i in kept} == {DeadLetterStatus.PENDING}
    assert tasks == Counter({"discarded": 45})
    assert audited == Counter({str(i): 1 for i in ids})  # each discarded once
    assert sum("replay_job.batch" in line for line in dispatcher.log().splitlines()) >= 3  # 45 / 20: in batches
