"""The operator audit through the API on real Postgres and a real Redis broker: every action type
leaves one event with the caller's principal, ``GET /audit`` filters and pages them; refused replays
(a moved secret, an undeclared queue, oversized or deep edits, a reserved key, a claimed letter) answer
in the envelope and write and publish nothing."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from api.celery_dep import close_celery
from api.main import API_PREFIX, create_app
from error_handling.persistence import replay_batches, replay_jobs
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import AuditEvent, DeadLetterRecord, DeadLetterStatus, ReplayRequestRecord
from error_handling.redaction import REDACTED
from error_handling.sealing import Sealer
from function_runner.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.api_client import bearer, local_client
from tests.support.dead_letter_seed import seed_dead_letter

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
PASSWORD = "pw-audit-integration-secret-7"
BASE = f"{API_PREFIX}/dead-letters"
PRINCIPAL = "ops-key"
#: A named write key (its principal is PRINCIPAL) and an unnamed one (its principal is key-<digest>).
OPS_KEY = "ops-key-secret-0123456789"
OTHER_KEY = "unnamed-key-secret-9876543210"
OTHER = "key-" + hashlib.sha256(OTHER_KEY.encode()).hexdigest()[:8]


@pytest.fixture
def sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def app(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[FastAPI]:
    settings = Settings(
        database_url=pg_url,
        broker_url=redis_url,
        encryption_key=TEST_KEY,
        data_dir=tmp_path,
        api_keys=SecretStr(f"{PRINCIPAL}=write:{OPS_KEY},write:{OTHER_KEY}"),
    )
    api = create_app(settings)
    yield api
    close_celery(api)
    engine: sa.Engine | None = getattr(api.state, "engine", None)
    if engine is not None:
        engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with local_client(app, headers=bearer(OPS_KEY)) as test_client:
        yield test_client


def seed(sessions: sessionmaker[Session], task_id: str, *, minutes: int = 0) -> int:
    return seed_dead_letter(
        sessions,
        task_id,
        sealer=Sealer(TEST_KEY),
        at=NOW + dt.timedelta(minutes=minutes),
        kwargs={"password": PASSWORD, "amount": 10},
    )


def assert_error(response: Any, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"} and error["code"] == code and error["message"]
    if param is not None:
        assert error["param"] == param


def counts(sessions: sessionmaker[Session]) -> tuple[int, int]:
    with sessions() as s:
        return (
            s.execute(sa.select(sa.func.count()).select_from(AuditEvent)).scalar_one(),
            s.execute(sa.select(sa.func.count()).select_from(ReplayRequestRecord)).scalar_one(),
        )


def queued(redis_url: str) -> int:
    client = redis_lib.Redis.from_url(redis_url)
    try:
        return sum(int(client.llen(key)) for key in ("celery", "elsewhere"))
    finally:
        client.close()


def test_every_action_type_is_audited_with_its_principal_and_listed_with_filters_and_a_cursor(
    client: TestClient, sessions: sessionmaker[Session], redis_url: str
) -> None:
    one, two, _pending = (seed(sessions, f"t{n}", minutes=n) for n in range(3))
    replayed = client.post(f"{BASE}/{one}/replay", json={"kwargs": {"password": REDACTED, "amount": 11}})
    assert replayed.status_code == 202, replayed.text
    assert client.delete(f"{BASE}/{two}", params={"reason": "obsolete"}).status_code == 200
    job = client.post(f"{BASE}/replay", json={"task_name": "app.charge"}, headers=bearer(OTHER_KEY))
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    assert client.post(f"{BASE}/replays/{job_id}/cancel").status_code == 200
    assert client.post(f"{API_PREFIX}/circuit-breakers/openai/open", params={"seconds": 60}).status_code == 200
    assert client.post(f"{API_PREFIX}/circuit-breakers/openai/reset").status_code == 200

    body = client.get(f"{API_PREFIX}/audit").json()
    events = [(e["action"], e["actor"], e["target_type"], e["target_id"]) for e in body["data"]]
    assert events == [
        ("breaker.reset", PRINCIPAL, "breaker", "openai"),
        ("breaker.open", PRINCIPAL, "breaker", "openai"),
        ("replay_job.cancel", PRINCIPAL, "replay_job", str(job_id)),
        ("replay_job.create", OTHER, "replay_job", str(job_id)),
        ("dead_letter.discard", PRINCIPAL, "dead_letter", str(two)),
        ("dead_letter.replay", PRINCIPAL, "dead_letter", str(one)),
    ]
    details = {e["action"]: e["detail"] for e in body["data"]}
    assert details["dead_letter.replay"]["task_id"] == replayed.json()["task_id"]
    assert details["dead_letter.replay"]["edits"]["changes"] == [
        {"path": "kwargs.amount", "op": "changed", "from": 10, "to": 11}
    ]
    assert details["dead_letter.discard"]["reason"] == "obsolete"
    assert details["replay_job.create"]["total"] == 1 and details["replay_job.create"]["filter"] == {
        "task_name": "app.charge"
    }
    assert details["breaker.open"] == {"from_state": "closed", "seconds": 60.0}
    assert details["breaker.reset"] == {"from_state": "open"}
    assert PASSWORD not in str(body)
    with sessions() as s:  # the breaker's own transition rows name the same principal
        actors = s.execute(sa.text("SELECT cause, actor FROM circuit_breaker_events ORDER BY id")).all()
    assert [tuple(row) for row in actors] == [("forced_open", PRINCIPAL), ("reset", PRINCIPAL)]

    walked: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = client.get(f"{API_PREFIX}/audit", params=params).json()
        walked += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == [e["id"] for e in body["data"]]

    def targets(**params: Any) -> list[str]:
        return [e["target_id"] for e in client.get(f"{API_PREFIX}/audit", params=params).json()["data"]]

    assert targets(action="dead_letter.discard") == [str(two)]
    assert targets(actor=OTHER) == [str(job_id)]
    assert targets(target_type="dead_letter", target_id=str(one)) == [str(one)]
    assert targets(since=dt.datetime.now(dt.UTC).isoformat()) == []
    assert_error(client.get(f"{API_PREFIX}/audit", params={"cursor": "nonsense"}), 400, "invalid_cursor", "cursor")
    assert_error(client.get(f"{API_PREFIX}/audit", params={"action": "delete_everything"}), 422, "validation_failed")
    assert_error(client.get(f"{API_PREFIX}/audit", params={"since": "2026-03-01T09:00:00"}), 422, "validation_failed")


@pytest.mark.parametrize(
    "body, headers, status, code, param",
    [
        ({"kwargs": {"password": "x", "amount": REDACTED}}, {}, 422, "secret_moved", "kwargs"),
        ({"queue": "elsewhere"}, {}, 422, "queue_not_allowed", "queue"),
        ({"kwargs": {"deep": json.loads("[" * 40 + "]" * 40)}}, {}, 422, "edit_too_deep", "kwargs"),
        ({"args": ["x" * 300_000]}, {}, 422, "edit_too_large", "args"),
        (None, {"Idempotency-Key": "replay-job:1:1"}, 400, "reserved_idempotency_key", "Idempotency-Key"),
    ],
)
def test_a_refused_replay_answers_in_the_envelope_and_writes_and_publishes_nothing(
    client: TestClient,
    sessions: sessionmaker[Session],
    redis_url: str,
    body: dict[str, Any] | None,
    headers: dict[str, str],
    status: int,
    code: str,
    param: str,
) -> None:
    letter_id = seed(sessions, "t0")
    response = client.post(f"{BASE}/{letter_id}/replay", json=body, headers=headers)
    assert_error(response, status, code, param)
    assert PASSWORD not in response.text
    assert counts(sessions) == (0, 0) and queued(redis_url) == 0
    with sessions() as s:
        assert s.get(DeadLetterRecord, letter_id).status is DeadLetterStatus.PENDING  # type: ignore[union-attr]


def test_a_letter_claimed_by_a_job_cannot_be_replayed_or_discarded(
    client: TestClient, sessions: sessionmaker[Session], redis_url: str
) -> None:
    letter_id = seed(sessions, "t0")
    with transaction(sessions) as s:
        job = replay_jobs.create_job(s, flt=replay_jobs.DeadLetterFilter(), rate_per_second=None, now=NOW)
        replay_batches.begin_batch(s, job=job, limit=10, now=NOW)  # claimed; the publish has not happened yet
    before = counts(sessions)
    assert_error(client.post(f"{BASE}/{letter_id}/replay", json={"force": True}), 409, "being_replayed")
    assert_error(client.delete(f"{BASE}/{letter_id}", params={"reason": "x"}), 409, "being_replayed")
    assert counts(sessions) == before and queued(redis_url) == 0
    shown = client.get(f"{BASE}/{letter_id}").json()
    assert shown["status"] == "replaying"
    listed = client.get(BASE, params={"status": "replaying"}).json()["data"]
    assert [item["id"] for item in listed] == [letter_id]


def test_a_breaker_action_redis_refuses_is_503_in_the_envelope_and_recorded_nowhere(
    pg_url: str, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    settings = Settings(
        database_url=pg_url,
        broker_url="memory://",
        redis_url="redis://127.0.0.1:1/0",  # nothing listens there
        encryption_key=TEST_KEY,
        data_dir=tmp_path,
    )
    api = create_app(settings)
    try:
        with local_client(api) as client:
            for path in ("reset", "open"):
                response = client.post(f"{API_PREFIX}/circuit-breakers/openai/{path}")
                assert_error(response, 503, "shared_state_unavailable")
    finally:
        close_celery(api)
        engine: sa.Engine | None = getattr(api.state, "engine", None)
        if engine is not None:
            engine.dispose()
    with sessions() as s:
        assert s.execute(sa.text("SELECT count(*) FROM circuit_breaker_events")).scalar_one() == 0
    assert counts(sessions) == (0, 0)
