"""The error groups routes on real Postgres: list (every filter and sort, cursor walks), one group, PATCH
(resolve, ignore, ongoing; audited; read keys refused), the bulk actions' dry runs and jobs, the errors."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from api.celery_dep import close_celery
from api.main import API_PREFIX, create_app
from error_handling.categories import Category
from error_handling.persistence.db import make_engine, make_sessionmaker
from error_handling.persistence.models import AuditEvent, DeadLetterRecord, DeadLetterStatus, ReplayJobRecord
from function_runner.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.api_client import bearer, local_client
from tests.support.failures import fail

BASE = f"{API_PREFIX}/groups"
WRITE_KEY = "sk-groups-write-0123456789abcdef"
READ_KEY = "sk-groups-read-0123456789abcdef0"
FP = [f"{i:x}" * 16 for i in range(10, 16)]


@pytest.fixture
def sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def app_settings(pg_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=pg_url,
        broker_url=redis_url,
        encryption_key=TEST_KEY,
        data_dir=tmp_path,
        api_keys=SecretStr(f"ops=write:{WRITE_KEY},viewer=read:{READ_KEY}"),
    )


@pytest.fixture
def client(app_settings: Settings) -> Iterator[TestClient]:
    app = create_app(app_settings)
    with local_client(app, headers=bearer(WRITE_KEY)) as test_client:
        yield test_client
    close_celery(app)
    engine = getattr(app.state, "engine", None)
    if engine is not None:
        engine.dispose()


@pytest.fixture
def seeded(sessions: sessionmaker[Session]) -> dt.datetime:
    """Six groups with different tasks, queues, kinds and volumes over the last three days; returns now."""
    now = dt.datetime.now(dt.UTC)
    n = 0
    for i, fingerprint in enumerate(FP):
        for k in range(i + 1):
            n += 1
            category = Category.PERMANENT if i % 2 else Category.TRANSIENT
            fail(
                sessions,
                f"task-{n}",
                1,
                at=now - dt.timedelta(hours=3 * i + k * 0.5, minutes=5),
                category=category,
                reason="not_found" if i % 2 else "timeout",
                task_name=f"app.t{i % 3}",
                queue="slow" if i % 3 == 0 else "celery",
                fingerprint=fingerprint,
                message=f"error number {i} in widget",
                exc_type="ValueError" if i == 5 else "builtins.TimeoutError",
            )
    return now


def _walk(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    """Every page of a listing, two at a time."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        response = client.get(BASE, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        found += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return found


@pytest.mark.parametrize("sort", ["last_seen", "first_seen", "count", "growth", "times_seen"])
def test_a_cursor_walk_returns_every_group_once_in_the_sort_order(
    client: TestClient, seeded: dt.datetime, sort: str
) -> None:
    groups = _walk(client, sort=sort, since=(seeded - dt.timedelta(hours=12)).isoformat())
    assert sorted(g["fingerprint"] for g in groups) == sorted(FP)  # no duplicate, no gap
    key = {"growth": "growth"}.get(sort, sort)
    values = [(g[key], g["fingerprint"]) for g in groups]
    assert values == sorted(values, reverse=True)


def test_counts_cover_the_window(client: TestClient, seeded: dt.datetime) -> None:
    body = client.get(BASE, params={"sort": "count", "since": (seeded - dt.timedelta(hours=8)).isoformat()}).json()
    counts = {g["fingerprint"]: g["count"] for g in body["data"]}
    assert counts[FP[0]] == 1 and counts[FP[1]] == 2 and counts[FP[2]] == 3  # attempts in the last 8 hours
    assert counts[FP[3]] == 0 and counts[FP[5]] == 0
    assert all(g["times_seen"] == i + 1 for i, g in enumerate(sorted(body["data"], key=lambda g: g["fingerprint"])))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"state": "new"}, set(FP)),
        ({"state": "resolved"}, set()),
        ({"category": "permanent"}, {FP[1], FP[3], FP[5]}),
        ({"reason": "timeout"}, {FP[0], FP[2], FP[4]}),
        ({"task_name": "app.t1"}, {FP[1], FP[4]}),
        ({"queue": "slow"}, {FP[0], FP[3]}),
        ({"q": "NUMBER 5"}, {FP[5]}),
        ({"q": "%"}, set()),
    ],
)
def test_each_filter(client: TestClient, seeded: dt.datetime, params: dict[str, str], expected: set[str]) -> None:
    assert {g["fingerprint"] for g in _walk(client, **params)} == expected


def test_a_bad_cursor_is_a_400_and_a_bad_sort_a_422(client: TestClient, seeded: dt.datetime) -> None:
    response = client.get(BASE, params={"cursor": "not-a-cursor"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
    first = client.get(BASE, params={"limit": 1, "sort": "count"}).json()["next_cursor"]
    other = client.get(BASE, params={"cursor": first, "sort": "last_seen"})
    assert other.status_code == 400 and other.json()["error"]["code"] == "invalid_cursor"
    bad = client.get(BASE, params={"sort": "loudest"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "sort"
    backwards = client.get(
        BASE, params={"since": seeded.isoformat(), "until": (seeded - dt.timedelta(hours=1)).isoformat()}
    )
    assert backwards.status_code == 422 and backwards.json()["error"]["code"] == "invalid_time_range"
    ages = client.get(f"{BASE}/{FP[0]}", params={"since": "1013-01-01T00:00:00Z"})  # 367,000 daily buckets: refused
    assert ages.status_code == 422 and ages.json()["error"]["code"] == "window_too_long"
    assert client.get(BASE, params={"since": "0001-01-01T00:00:00Z", "sort": "growth"}).status_code == 200


def test_one_group_in_detail(client: TestClient, seeded: dt.datetime) -> None:
    body = client.get(f"{BASE}/{FP[2]}").json()
    assert body["group"]["fingerprint"] == FP[2] and body["group"]["count"] == 3
    assert body["resolution"] == "hour" and len(body["trend"]) in (24, 25)
    assert sum(bucket["count"] for bucket in body["trend"]) == 3
    assert body["tasks"] == {"app.t2": 3} and body["queues"] == {"celery": 3}
    assert len(body["samples"]) == 3 and body["latest"]["traceback"].startswith("Traceback")
    assert body["samples"][0]["id"] == body["latest"]["id"]
    assert body["shares"] == {"recovered": 0.0, "failed_fast": 0.0, "dead_lettered": 0.0}
    weekly = client.get(f"{BASE}/{FP[2]}", params={"since": (seeded - dt.timedelta(days=7)).isoformat()}).json()
    assert weekly["resolution"] == "day" and sum(b["count"] for b in weekly["trend"]) == 3
    dead = client.get(f"{BASE}/{FP[1]}").json()  # permanent: dead-lettered
    assert dead["pending_dead_letters"] == 2 and len(dead["dead_letters"]) == 2
    assert dead["shares"]["dead_lettered"] == 1.0


def test_unknown_groups_are_404s_in_the_envelope(client: TestClient, seeded: dt.datetime) -> None:
    for response in (
        client.get(f"{BASE}/{'0' * 32}"),
        client.patch(f"{BASE}/{'0' * 32}", json={"state": "resolved"}),
        client.post(f"{BASE}/{'0' * 32}/dead-letters/replay", json={"dry_run": True}),
        client.post(f"{BASE}/{'0' * 32}/dead-letters/discard"),
    ):
        assert response.status_code == 404
        assert response.json()["error"] == {
            "message": f"no error group has fingerprint {'0' * 32!r}",
            "type": "not_found",
            "code": "group_not_found",
            "param": "fingerprint",
        }


def test_patch_resolves_ignores_and_sets_ongoing_audited(
    client: TestClient, seeded: dt.datetime, sessions: sessionmaker[Session]
) -> None:
    resolved = client.patch(f"{BASE}/{FP[0]}", json={"state": "resolved"})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["state"] == "resolved" and resolved.json()["resolved_at"] is not None
    assert {g["fingerprint"] for g in _walk(client, state="resolved")} == {FP[0]}
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    ignored = client.patch(
        f"{BASE}/{FP[0]}", json={"state": "ignored", "ignore_until": until, "ignore_until_escalating": True}
    ).json()
    assert ignored["state"] == "ignored" and ignored["ignore_until_escalating"] is True
    assert dt.datetime.fromisoformat(ignored["ignore_until"]) == dt.datetime.fromisoformat(until)
    ongoing = client.patch(f"{BASE}/{FP[0]}", json={"state": "ongoing"}).json()
    assert ongoing["state"] == "ongoing" and ongoing["ignore_until"] is None
    with sessions() as session:
        events = (
            session.execute(sa.select(AuditEvent).where(AuditEvent.action == "group.update").order_by(AuditEvent.id))
            .scalars()
            .all()
        )
    assert [(e.actor, e.target_type, e.target_id, e.detail["from"], e.detail["to"]) for e in events] == [
        ("ops", "group", FP[0], "new", "resolved"),
        ("ops", "group", FP[0], "resolved", "ignored"),
        ("ops", "group", FP[0], "ignored", "ongoing"),
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"state": "resolved", "ignore_until": "2099-01-01T00:00:00Z"}, None),
        ({"state": "ongoing", "ignore_until_escalating": True}, None),
        ({"state": "new"}, None),
        ({"state": "escalating"}, None),
        ({"state": "sleeping"}, "state"),
        ({"state": "ignored", "ignore_until": "2001-01-01T00:00:00Z"}, "ignore_until"),
        ({"state": "ignored", "ignore_until": "2099-01-01T00:00:00"}, "ignore_until"),
        ({"state": "ignored", "until": "2099-01-01T00:00:00Z"}, "until"),
    ],
)
def test_patch_refuses_what_cannot_be_set_with_a_422(
    client: TestClient, seeded: dt.datetime, body: dict[str, Any], param: str | None
) -> None:
    response = client.patch(f"{BASE}/{FP[0]}", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["param"] == param
    assert client.get(f"{BASE}/{FP[0]}").json()["group"]["state"] == "new"


def test_a_read_key_may_read_but_not_change(app_settings: Settings, seeded: dt.datetime) -> None:
    app = create_app(app_settings)
    with local_client(app, headers=bearer(READ_KEY)) as viewer:
        assert viewer.get(BASE).status_code == 200
        for response in (
            viewer.patch(f"{BASE}/{FP[0]}", json={"state": "resolved"}),
            viewer.post(f"{BASE}/{FP[1]}/dead-letters/replay"),
            viewer.post(f"{BASE}/{FP[1]}/dead-letters/discard"),
        ):
            assert response.status_code == 403
            assert response.json()["error"]["code"] == "write_scope_required"
    close_celery(app)


def test_bulk_actions_preview_then_create_a_job_with_that_total(
    client: TestClient, seeded: dt.datetime, sessions: sessionmaker[Session]
) -> None:
    preview = client.post(f"{BASE}/{FP[3]}/dead-letters/replay", json={"dry_run": True, "sample_size": 1})
    assert preview.status_code == 200
    assert preview.json()["count"] == 4 and len(preview.json()["sample"]) == 1
    assert preview.json()["sample"][0]["fingerprint"] == FP[3]
    job = client.post(f"{BASE}/{FP[3]}/dead-letters/discard", json={"reason": "known outage"})
    assert job.status_code == 202, job.text
    body = job.json()
    assert body["action"] == "discard" and body["total"] == 4 and body["reason"] == "known outage"
    assert body["filter"]["fingerprint"] == FP[3]
    progress = client.get(f"{API_PREFIX}/dead-letters/replays/{body['id']}").json()
    assert progress["status"] == "pending" and progress["discarded"] == 0
    with sessions() as session:
        pending = session.execute(
            sa.select(sa.func.count()).where(
                DeadLetterRecord.fingerprint == FP[3], DeadLetterRecord.status == DeadLetterStatus.PENDING
            )
        ).scalar_one()
        assert pending == 4  # the dispatcher discards them, not the request
        assert session.get(ReplayJobRecord, body["id"]) is not None
    replay = client.post(f"{BASE}/{FP[5]}/dead-letters/replay", json={"rate_per_second": 5})
    assert replay.status_code == 202 and replay.json()["action"] == "replay" and replay.json()["total"] == 6
