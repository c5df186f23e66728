"""``GET /api/v1/errors/health`` on a real Postgres, and the error envelope of requests the API has no
route for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis as redis_lib
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.celery_dep import close_celery
from api.main import create_app
from error_handling.persistence import heartbeats
from error_handling.persistence.db import make_engine
from error_handling.persistence.models import RunKind, RunStatus, ScheduledRun, utcnow
from function_runner.broker.liveness import Keys
from function_runner.settings import Settings
from tests.conftest import TEST_KEY
from tests.support import services
from tests.support.api_client import local_client

HEALTH = "/api/v1/errors/health"
UNREACHABLE = "postgresql://postgres@127.0.0.1:1/x"

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[ClientFactory]:
    """Test clients of API apps on a given database; the apps' engines are disposed afterwards."""
    apps: list[FastAPI] = []
    clients: list[TestClient] = []

    def _make(database_url: str, **settings: Any) -> TestClient:
        app = create_app(Settings(database_url=database_url, data_dir=tmp_path, encryption_key=TEST_KEY, **settings))
        apps.append(app)
        client = local_client(app)
        clients.append(client)
        return client

    yield _make
    for client in clients:
        client.close()
    for app in apps:
        close_celery(app)
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            engine.dispose()


def _envelope(body: Any) -> dict[str, Any]:
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"message", "type", "code", "param"}, error
    return error


def _schedule(database_url: str, *, task_id: str, due_in: float) -> None:
    engine = make_engine(database_url)
    try:
        now = utcnow()
        with Session(engine) as session, session.begin():
            session.add(
                ScheduledRun(
                    kind=RunKind.RETRY,
                    task_id=task_id,
                    attempt=2,
                    due_at=now + dt.timedelta(seconds=due_in),
                    status=RunStatus.PENDING,
                    dispatch_count=0,
                    created_at=now,
                    updated_at=now,
                )
            )
    finally:
        engine.dispose()


def test_health_on_a_fresh_database_is_ok_with_no_due_runs(make_client: ClientFactory, pg_url: str) -> None:
    response = make_client(pg_url).get(HEALTH)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["due_runs"]) == ("ok", True, 0)
    checked_at = dt.datetime.fromisoformat(body["checked_at"].replace("Z", "+00:00"))
    assert abs((utcnow() - checked_at).total_seconds()) < 60


def test_health_counts_only_runs_that_are_due(make_client: ClientFactory, pg_url: str) -> None:
    _schedule(pg_url, task_id="due-1", due_in=-5)
    _schedule(pg_url, task_id="due-2", due_in=-1)
    _schedule(pg_url, task_id="later-1", due_in=3600)
    body = make_client(pg_url).get(HEALTH).json()
    # runs are due and no dispatcher is alive to publish them: no retry will ever go out
    assert (body["status"], body["due_runs"], body["dispatchers_alive"]) == ("unavailable", 2, 0)
    assert body["oldest_due_seconds"] >= 5


def test_health_is_ok_with_due_runs_when_a_dispatcher_is_alive(make_client: ClientFactory, pg_url: str) -> None:
    _schedule(pg_url, task_id="due-1", due_in=-1)
    engine = make_engine(pg_url)
    try:
        now = utcnow()
        with Session(engine) as session, session.begin():
            heartbeats.beat(
                session, name="dispatcher@h:1", kind="dispatcher", hostname="h", pid=1, started_at=now, now=now
            )
            old = now - dt.timedelta(minutes=5)
            heartbeats.beat(
                session, name="dispatcher@h:2", kind="dispatcher", hostname="h", pid=2, started_at=old, now=old
            )
    finally:
        engine.dispose()
    body = make_client(pg_url).get(HEALTH).json()
    assert (body["status"], body["due_runs"], body["dispatchers_alive"], body["broker"]) == ("ok", 1, 1, True)
    assert body["breakers"] == "none"  # the embedded broker: breakers are per process by design


def test_health_counts_live_and_lapsed_workers_on_a_redis_broker(
    make_client: ClientFactory, pg_url: str, redis_url: str
) -> None:
    keys = Keys("unacked")
    client = redis_lib.Redis.from_url(redis_url)
    try:
        client.sadd(keys.consumers, "host:1:a", "host:2:b", "host:3:c")
        client.set(keys.alive("host:1:a"), 1, px=60_000)
        client.set(keys.restored, 7)
    finally:
        client.close()
    body = make_client(pg_url, broker_url=redis_url).get(HEALTH).json()
    assert (body["status"], body["workers_alive"], body["workers_lapsed"], body["messages_restored"]) == (
        "ok",
        1,
        2,
        7,
    )
    # other brokers have no such census
    assert make_client(pg_url).get(HEALTH).json()["workers_alive"] is None


def test_health_reports_an_unreachable_broker_as_degraded(make_client: ClientFactory, pg_url: str) -> None:
    body = make_client(pg_url, broker_url="redis://127.0.0.1:1/0").get(HEALTH).json()
    assert (body["status"], body["database"], body["broker"]) == ("degraded", True, False)
    assert body["breakers"] == "per_process"  # the workers' breakers cannot share their state now


def test_breakers_are_shared_while_the_redis_broker_answers(
    make_client: ClientFactory, pg_url: str, redis_url: str
) -> None:
    body = make_client(pg_url, broker_url=redis_url).get(HEALTH).json()
    assert (body["broker"], body["breakers"]) == (True, "shared")


def test_an_unreachable_database_is_reported_not_raised(make_client: ClientFactory) -> None:
    response = make_client(UNREACHABLE).get(HEALTH)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["database"], body["due_runs"]) == ("unavailable", False, None)


def test_a_database_without_the_schema_is_reported_unavailable(make_client: ClientFactory) -> None:
    services.require("PostgreSQL", services.PG_HOST, services.PG_PORT)
    with services.temporary_database() as url:
        client = make_client(url)
        response = client.get(HEALTH)
        client.app.state.engine.dispose()  # type: ignore[attr-defined]  # before the database is dropped
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["database"]) == ("unavailable", False)


def test_an_unknown_path_is_a_404_in_the_envelope(make_client: ClientFactory) -> None:
    client = make_client(UNREACHABLE)
    for path in ("/api/v1/errors/no-such-thing", "/nowhere"):
        response = client.get(path)
        assert response.status_code == 404
        error = _envelope(response.json())
        assert (error["type"], error["code"], error["param"]) == ("not_found", "http_404", None)
        assert error["message"]


def test_a_wrong_method_is_a_405_in_the_envelope(make_client: ClientFactory) -> None:
    response = make_client(UNREACHABLE).post(HEALTH)
    assert response.status_code == 405
    error = _envelope(response.json())
    assert (error["type"], error["code"], error["param"]) == ("invalid_request", "http_405", None)
    assert error["message"]
    assert response.headers["allow"] == "GET"
