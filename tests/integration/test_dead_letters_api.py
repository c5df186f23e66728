"""The dead-letter routes on real Postgres and a real Redis broker: list, show, replay, discard.

Replays are read back from the broker (the Redis list Celery publishes to), so what the test sees is
what a worker would receive.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from kombu import Connection, Message
from sqlalchemy.orm import Session, sessionmaker

from api.celery_dep import close_celery
from api.main import API_PREFIX, create_app
from error_handling.persistence.db import make_engine, make_sessionmaker
from error_handling.persistence.models import TaskRecord, TaskState
from error_handling.sealing import SEALED_KEY, Sealer
from function_runner.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.api_client import local_client
from tests.support.dead_letter_seed import seed_dead_letter

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
PASSWORD = "pw-integration-secret-42"
API_KEY = "sk-integ0123456789abcdefREPLAY"
BASE = f"{API_PREFIX}/dead-letters"


@pytest.fixture
def sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def build_app(pg_url: str, broker_url: str, data_dir: Path) -> FastAPI:
    settings = Settings(
        database_url=pg_url,
        broker_url=broker_url,
        encryption_key=TEST_KEY,
        data_dir=data_dir,
        replay_allowed_queues=["urgent"],
    )
    app = create_app(settings)
    return app


def close_app(app: FastAPI) -> None:
    close_celery(app)
    engine: sa.Engine | None = getattr(app.state, "engine", None)
    if engine is not None:
        engine.dispose()


@pytest.fixture
def client(pg_url: str, redis_url: str, tmp_path: Path) -> Iterator[TestClient]:
    app = build_app(pg_url, redis_url, tmp_path)
    with local_client(app) as test_client:
        yield test_client
    close_app(app)


@pytest.fixture
def published(redis_url: str) -> Iterator[Any]:
    """Reads the messages published to a queue of the test's Redis broker."""
    with Connection(redis_url) as connection:
        queues: list[Any] = []

        def read(queue: str = "celery") -> list[Message]:
            simple = connection.SimpleQueue(queue)
            queues.append(simple)
            found = []
            while True:  # (qsize fails on Redis once a queue's list is gone)
                try:
                    message = simple.get_nowait()
                except simple.Empty:
                    return found
                message.ack()
                found.append(message)

        yield read
        for simple in queues:
            simple.close()


def seed(sessions: sessionmaker[Session], task_id: str, *, minutes: int = 0, **kw: Any) -> int:
    kw.setdefault("kwargs", {"password": PASSWORD, "note": "nightly", "amount": 10})
    kw.setdefault("args", [f"key={API_KEY}"])
    return seed_dead_letter(sessions, task_id, sealer=Sealer(TEST_KEY), at=NOW + dt.timedelta(minutes=minutes), **kw)


def assert_error(response: Any, status: int, code: str, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["code"] == code and error["message"]
    if param is not None:
        assert error["param"] == param
    return error


def test_list_filters_pages_and_redacts(client: TestClient, sessions: sessionmaker[Session]) -> None:
    for n in range(5):
        seed(sessions, f"t{n}", minutes=n, task_name="app.a" if n % 2 else "app.b")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, "status": "pending"}
        if cursor:
            params["cursor"] = cursor
        body = client.get(BASE, params=params).json()
        seen += [item["task_id"] for item in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["t4", "t3", "t2", "t1", "t0"]

    only_a = client.get(BASE, params={"task_name": "app.a"}).json()["data"]
    assert [item["task_id"] for item in only_a] == ["t3", "t1"]
    since = client.get(BASE, params={"since": (NOW + dt.timedelta(minutes=3)).isoformat()}).json()["data"]
    assert [item["task_id"] for item in since] == ["t4", "t3"]
    until = client.get(BASE, params={"until": "2026-03-01T10:01:00+01:00"}).json()["data"]
    assert [item["task_id"] for item in until] == ["t0"]
    assert_error(client.get(BASE, params={"until": "2026-03-01T09:01:00"}), 422, "validation_failed", "until")

    response = client.get(BASE, params={"q": "credentials"})
    item = response.json()["data"][0]
    assert not {"args", "kwargs", "headers"} & set(item)  # payloads only for one letter
    for secret in (PASSWORD, API_KEY, SEALED_KEY, "nightly"):
        assert secret not in response.text
    shown = client.get(f"{BASE}/{item['id']}").json()
    assert shown["kwargs"] == {"password": "[REDACTED]", "note": "nightly", "amount": 10}
    assert shown["args"] == ["[REDACTED]"]

    assert_error(client.get(BASE, params={"cursor": "nonsense"}), 400, "invalid_cursor", "cursor")
    assert_error(client.get(BASE, params={"limit": 501}), 422, "validation_failed", "limit")
    assert_error(client.get(BASE, params={"status": "lost"}), 422, "validation_failed", "status")
    assert client.get(BASE, params={"task_name": "nothing"}).json() == {"data": [], "next_cursor": None}


def test_show_has_the_redacted_payload_and_its_attempts(client: TestClient, sessions: sessionmaker[Session]) -> None:
    letter_id = seed(sessions, "t1", headers={"tenant": "acme", "authorization": f"Bearer {API_KEY}"})
    response = client.get(f"{BASE}/{letter_id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["task_id"], body["status"], body["reason"]) == (letter_id, "t1", "pending", "auth_failed")
    assert body["headers"] == {"tenant": "acme", "authorization": "[REDACTED]"}
    assert [(a["attempt"], a["category"], a["decision"]) for a in body["failed_attempts"]] == [
        (1, "permanent", "dead_letter")
    ]
    assert body["replays"] == []
    for secret in (PASSWORD, API_KEY, SEALED_KEY):
        assert secret not in response.text

    assert_error(client.get(f"{BASE}/999"), 404, "dead_letter_not_found", "dead_letter_id")
    assert_error(client.get(f"{BASE}/abc"), 404, "http_404")  # like /errors/abc: no such resource
    assert_error(client.get(f"{BASE}/{2**70}"), 422, "validation_failed", "dead_letter_id")


def test_replay_publishes_once_then_conflicts_unless_forced(
    client: TestClient, sessions: sessionmaker[Session], published: Any
) -> None:
    letter_id = seed(sessions, "t1")
    response = client.post(f"{BASE}/{letter_id}/replay")
    assert response.status_code == 202, response.text
    first = response.json()
    assert (first["dead_letter_id"], first["task_name"], first["forced"], first["repeated"]) == (
        letter_id,
        "app.charge",
        False,
        False,
    )
    (message,) = published()
    assert message.headers["id"] == first["task_id"] != "t1"
    assert message.headers["fr_replay_of"] == letter_id
    assert message.payload[:2] == [[f"key={API_KEY}"], {"password": PASSWORD, "note": "nightly", "amount": 10}]

    shown = client.get(f"{BASE}/{letter_id}").json()
    assert (shown["status"], shown["replayed_task_id"]) == ("replayed", first["task_id"])
    assert [r["task_id"] for r in shown["replays"]] == [first["task_id"]]

    error = assert_error(client.post(f"{BASE}/{letter_id}/replay"), 409, "already_replayed", "force")
    assert first["task_id"] in error["message"]
    assert published() == []

    forced = client.post(f"{BASE}/{letter_id}/replay", json={"force": True})
    assert forced.status_code == 202 and forced.json()["forced"] is True
    (message,) = published()
    assert message.headers["id"] == forced.json()["task_id"] != first["task_id"]


def test_replay_with_edits_restores_redacted_secrets(
    client: TestClient, sessions: sessionmaker[Session], published: Any
) -> None:
    letter_id = seed(sessions, "t1")
    shown = client.get(f"{BASE}/{letter_id}").json()
    edited = {**shown["kwargs"], "amount": 11}  # the operator edits the redacted view
    response = client.post(f"{BASE}/{letter_id}/replay", json={"kwargs": edited, "queue": "urgent"})
    assert response.status_code == 202, response.text
    assert response.json()["queue"] == "urgent"
    assert published("celery") == []
    (message,) = published("urgent")
    assert message.payload[:2] == [[f"key={API_KEY}"], {"password": PASSWORD, "note": "nightly", "amount": 11}]
    assert PASSWORD not in response.text

    other = seed(sessions, "t2")
    bad = client.post(f"{BASE}/{other}/replay", json={"kwargs": {"note": "[REDACTED]"}})
    error = assert_error(bad, 422, "secret_moved", "kwargs")
    assert ".note" in error["message"]
    assert_error(client.post(f"{BASE}/{other}/replay", json={"args": {"x": 1}}), 422, "validation_failed", "args")
    assert_error(client.post(f"{BASE}/{other}/replay", json={"surprise": 1}), 422, "validation_failed")
    assert_error(client.post(f"{BASE}/999/replay"), 404, "dead_letter_not_found")
    assert published() == []
    assert client.get(f"{BASE}/{other}").json()["status"] == "pending"


def test_idempotency_key(client: TestClient, sessions: sessionmaker[Session], published: Any) -> None:
    one = seed(sessions, "t1")
    two = seed(sessions, "t2")
    key = {"Idempotency-Key": "3f1c7d2e-request-1"}
    first = client.post(f"{BASE}/{one}/replay", headers=key)
    again = client.post(f"{BASE}/{one}/replay", headers=key)
    assert first.status_code == again.status_code == 202
    assert again.json()["task_id"] == first.json()["task_id"]
    assert (first.json()["repeated"], again.json()["repeated"]) == (False, True)
    assert len(published()) == 1

    assert_error(client.post(f"{BASE}/{two}/replay", headers=key), 422, "idempotency_key_reused", "Idempotency-Key")
    assert_error(client.post(f"{BASE}/{two}/replay", headers={"Idempotency-Key": "x" * 256}), 422, "validation_failed")
    assert published() == []
    assert client.get(f"{BASE}/{two}").json()["status"] == "pending"


def test_discard_is_terminal(client: TestClient, sessions: sessionmaker[Session], published: Any) -> None:
    letter_id = seed(sessions, "t1")
    response = client.delete(f"{BASE}/{letter_id}", params={"reason": "customer cancelled the order"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["discarded_reason"]) == ("discarded", "customer cancelled the order")
    with sessions() as s:
        task = s.get(TaskRecord, "t1")
        assert task is not None and task.state is TaskState.DISCARDED

    assert_error(client.delete(f"{BASE}/{letter_id}", params={"reason": "again"}), 409, "discarded")
    assert_error(client.post(f"{BASE}/{letter_id}/replay", json={"force": True}), 409, "discarded")
    assert published() == []

    other = seed(sessions, "t2")
    assert_error(client.delete(f"{BASE}/{other}"), 422, "validation_failed", "reason")
    assert_error(client.delete(f"{BASE}/{other}", params={"reason": ""}), 422, "validation_failed", "reason")
    assert_error(client.delete(f"{BASE}/{other}", params={"reason": "x" * 1001}), 422, "validation_failed", "reason")
    assert_error(client.delete(f"{BASE}/999", params={"reason": "x"}), 404, "dead_letter_not_found")
    replayed = client.post(f"{BASE}/{other}/replay")
    assert replayed.status_code == 202
    assert_error(client.delete(f"{BASE}/{other}", params={"reason": "late"}), 409, "already_replayed")


def test_replay_with_the_broker_down_is_503_and_marks_nothing(
    pg_url: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    letter_id = seed(sessions, "t1")
    app = build_app(pg_url, "redis://127.0.0.1:1/0", tmp_path)
    try:
        with local_client(app) as client:
            assert_error(client.post(f"{BASE}/{letter_id}/replay"), 503, "broker_unavailable")
            assert client.get(f"{BASE}/{letter_id}").json()["status"] == "pending"
    finally:
        close_app(app)
