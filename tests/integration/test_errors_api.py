"""The errors API on real Postgres: filters, text search, time ranges, cursor walks, stats, task history,
and every error in the envelope."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy.orm import Session, sessionmaker

from api.main import API_PREFIX, create_app
from error_handling.categories import Category
from error_handling.persistence.cursor import encode_cursor
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import DeadLetterRecord, DecisionKind, FailedAttempt, utcnow
from error_handling.sealing import Sealer
from function_runner.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.api_client import local_client
from tests.support.failures import fail

pytestmark = pytest.mark.postgres

#: How many attempts the pagination walk goes over (the issue's acceptance figure).
WALK_ROWS = 25_000
SECRET = "hunter2-do-not-show-77"


@pytest.fixture
def engine(pg_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: sa.Engine) -> sessionmaker[Session]:
    return make_sessionmaker(engine)


@pytest.fixture
def app(pg_url: str, tmp_path: Path) -> Iterator[FastAPI]:
    app = create_app(Settings(database_url=pg_url, data_dir=tmp_path, encryption_key=SecretStr(TEST_KEY)))
    yield app
    engine = getattr(app.state, "engine", None)
    if engine is not None:
        engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with local_client(app) as client:
        yield client


def get(client: TestClient, path: str = "", **params: Any) -> Any:
    response = client.get(f"{API_PREFIX}{path}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def error_of(client: TestClient, path: str, status: int, **params: Any) -> dict[str, Any]:
    response = client.get(f"{API_PREFIX}{path}", params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "code", "param"}
    error: dict[str, Any] = body["error"]
    return error


def task_ids(page: dict[str, Any]) -> list[str]:
    return [item["task_id"] for item in page["data"]]


@pytest.fixture
def mixed(sessions: sessionmaker[Session]) -> dt.datetime:
    """Five tasks' first failures, a minute apart (a newest): returns the time of the oldest."""
    t0 = utcnow().replace(microsecond=0) - dt.timedelta(minutes=30)
    seeds: list[tuple[str, dict[str, Any]]] = [
        ("a", {"category": Category.TRANSIENT, "reason": "timeout", "message": "Read timed out after 30s"}),
        (
            "b",
            {
                "category": Category.TRANSIENT,
                "reason": "rate_limited",
                "task_name": "app.other",
                "fingerprint": "b" * 16,
                "message": "HTTP 429: 100% of quota used",
            },
        ),
        (
            "c",
            {
                "category": Category.RESOURCE,
                "reason": "gpu_unavailable",
                "resource": "gpu",
                "queue": "gpu",
                "message": "CUDA out of memory",
            },
        ),
        (
            "d",
            {"category": Category.VALIDATION, "reason": "invalid_input", "message": "field user_id is missing"},
        ),
        (
            "e",
            {
                "category": Category.PERMANENT,
                "reason": "auth_failed",
                "task_name": "app.other",
                "queue": None,
                "fingerprint": "e" * 16,
                "message": "Connection REFUSED by upstream: userXid",
            },
        ),
    ]
    for minute, (task_id, kw) in enumerate(seeds):
        fail(sessions, task_id, 1, at=t0 + dt.timedelta(minutes=minute), **kw)
    return t0


def test_lists_newest_first_with_every_field(client: TestClient, mixed: dt.datetime) -> None:
    page = get(client)
    assert task_ids(page) == ["e", "d", "c", "b", "a"]
    assert page["next_cursor"] is None
    first = page["data"][-1]
    assert (first["category"], first["reason"], first["decision"], first["worker"]) == (
        "transient",
        "timeout",
        "retry",
        "w1",
    )
    assert first["delay"] is not None and first["decision_at"] is not None and first["duration_ms"] == 250.0
    assert dt.datetime.fromisoformat(first["failed_at"]) == mixed
    assert "traceback" not in first  # only the detail carries it


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"task_name": "app.other"}, ["e", "b"]),
        ({"category": "transient"}, ["b", "a"]),
        ({"category": "resource"}, ["c"]),
        ({"reason": "invalid_input"}, ["d"]),
        ({"fingerprint": "b" * 16}, ["b"]),
        ({"queue": "gpu"}, ["c"]),
        ({"queue": "celery", "category": "transient"}, ["b", "a"]),
        ({"task_name": "app.other", "category": "permanent"}, ["e"]),
        ({"reason": "no_such_reason"}, []),
    ],
)
def test_each_filter(client: TestClient, mixed: dt.datetime, params: dict[str, str], expected: list[str]) -> None:
    assert task_ids(get(client, **params)) == expected


@pytest.mark.parametrize(
    "q, expected",
    [
        ("refused", ["e"]),  # case-insensitive
        ("TIMED OUT", ["a"]),
        ("%", ["b"]),  # a literal percent sign, not a wildcard
        ("_", ["d"]),  # a literal underscore: "userXid" does not match "user_id"
        ("user_id", ["d"]),
        ("no such text", []),
        ("\\", []),  # the escape character itself is literal too
    ],
)
def test_text_search_is_a_case_insensitive_literal_substring(
    client: TestClient, mixed: dt.datetime, q: str, expected: list[str]
) -> None:
    assert task_ids(get(client, q=q)) == expected


def test_time_range_is_since_inclusive_until_exclusive(client: TestClient, mixed: dt.datetime) -> None:
    at = [mixed + dt.timedelta(minutes=m) for m in range(5)]
    assert task_ids(get(client, since=at[1].isoformat(), until=at[3].isoformat())) == ["c", "b"]
    assert task_ids(get(client, since=at[3].isoformat())) == ["e", "d"]
    assert task_ids(get(client, until=at[1].isoformat())) == ["a"]
    # another timezone names the same instant
    plus2 = at[2].astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert task_ids(get(client, since=plus2.isoformat(), until=plus2.isoformat())) == []
    assert task_ids(get(client, since=plus2.isoformat(), until=at[3].isoformat())) == ["c"]
    assert task_ids(get(client, since=at[4].strftime("%Y-%m-%dT%H:%M:%SZ"))) == ["e"]


@pytest.mark.parametrize(
    "params, param",
    [
        ({"since": "2026-03-01T09:00:00"}, "since"),  # no timezone
        ({"until": "yesterday"}, "until"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "since"),
        ({"since": "0001-01-01T00:00:00+05:00"}, "since"),  # before year 1 in UTC
        ({"category": "catastrophic"}, "category"),
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"q": ""}, "q"),
        ({"q": "x" * 201}, "q"),
        ({"task_name": "a\x00b"}, "task_name"),
        ({"cursor": "x" * 201}, "cursor"),  # bounded before it is decoded
    ],
)
def test_invalid_parameters_are_422_in_the_envelope(client: TestClient, params: dict[str, Any], param: str) -> None:
    error = error_of(client, "", 422, **params)
    assert error["param"] == param and error["type"] == "invalid_request"
    assert error["message"]


def test_limit_bounds_are_inclusive(client: TestClient, mixed: dt.datetime) -> None:
    assert len(get(client, limit=1)["data"]) == 1
    assert len(get(client, limit=500)["data"]) == 5


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "bm90LWpzb24",  # base64 of "not-json"
        encode_cursor(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), 1).replace("M", "Q"),
        "WyIyMDI2LTAzLTAxVDA5OjAwOjAwIiwxXQ",  # ["2026-03-01T09:00:00",1]: no timezone
        encode_cursor(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), 2**63),  # not a 64-bit id
        encode_cursor(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), -1),
    ],
)
def test_invalid_cursor_is_400_with_param_cursor(client: TestClient, cursor: str) -> None:
    error = error_of(client, "", 400, cursor=cursor)
    assert (error["code"], error["param"], error["type"]) == ("invalid_cursor", "cursor", "invalid_request")


def _bulk_rows(count: int, *, start: dt.datetime, prefix: str, rng: random.Random) -> list[dict[str, Any]]:
    """``count`` attempts, five to an instant, shuffled so ids do not follow time."""
    rows = [
        {
            "task_id": f"{prefix}-{i}",
            "attempt": 1,
            "task_name": "bulk.task" if i % 3 else "bulk.other",
            "queue": "celery",
            "worker": "w1",
            "exc_type": "builtins.TimeoutError",
            "message": f"timeout #{i}",
            "traceback": None,
            "category": "transient" if i % 2 else "resource",
            "reason": "timeout" if i % 2 else "disk_full",
            "fingerprint": "0" * 16,
            "decision": DecisionKind.RETRY,
            "failed_at": start + dt.timedelta(milliseconds=i // 5),
        }
        for i in range(count)
    ]
    rng.shuffle(rows)
    return rows


def _walk(client: TestClient, sessions: sessionmaker[Session], *, limit: int, **filters: Any) -> list[dict[str, Any]]:
    """Walk every page; between pages insert rows that are newer than the walk's position."""
    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {**filters, "limit": limit, **({"cursor": cursor} if cursor else {})}
        page = get(client, **params)
        assert len(page["data"]) <= limit
        seen += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        assert len(page["data"]) == limit
        pages += 1
        last = dt.datetime.fromisoformat(page["data"][-1]["failed_at"])
        with transaction(sessions) as session:  # new errors arrive: now, and at the very instant of the cursor
            new = _bulk_rows(2, start=utcnow(), prefix=f"late-{pages}", rng=random.Random(pages))
            new.append({**new[0], "task_id": f"tie-{pages}", "failed_at": last})
            session.execute(sa.insert(FailedAttempt), new)
        fail(sessions, f"live-{pages}", 1, at=utcnow(), category=Category.TRANSIENT, reason="timeout")


def test_cursor_walk_returns_each_existing_row_once_while_new_ones_arrive(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    rows = _bulk_rows(WALK_ROWS, start=utcnow() - dt.timedelta(days=1), prefix="bulk", rng=random.Random(7))
    with transaction(sessions) as session:
        session.execute(sa.insert(FailedAttempt), rows)
    with sessions() as session:
        existing = set(session.execute(sa.select(FailedAttempt.id)).scalars())
    assert len(existing) == WALK_ROWS

    seen = _walk(client, sessions, limit=500)

    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)) == WALK_ROWS
    assert set(ids) == existing
    keys = [(dt.datetime.fromisoformat(item["failed_at"]), item["id"]) for item in seen]
    assert keys == sorted(keys, reverse=True)
    assert len(set(keys)) == len(keys)
    with sessions() as session:  # the arrivals really happened, and none of them was returned
        total = session.execute(sa.select(sa.func.count()).select_from(FailedAttempt)).scalar_one()
    assert total == WALK_ROWS + 4 * (WALK_ROWS // 500 - 1)


def test_filtered_cursor_walk_returns_each_matching_row_once(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    rows = _bulk_rows(3_000, start=utcnow() - dt.timedelta(days=1), prefix="bulk", rng=random.Random(3))
    with transaction(sessions) as session:
        session.execute(sa.insert(FailedAttempt), rows)
    with sessions() as session:
        expected = set(
            session.execute(
                sa.select(FailedAttempt.id).where(
                    FailedAttempt.category == "resource", FailedAttempt.task_name == "bulk.task"
                )
            ).scalars()
        )
    seen = _walk(client, sessions, limit=97, category="resource", task_name="bulk.task")
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)) == len(expected) == 1_000
    assert set(ids) == expected


def test_one_attempt_with_traceback_and_redacted_task(client: TestClient, sessions: sessionmaker[Session]) -> None:
    fail(
        sessions,
        "s1",
        1,
        at=utcnow(),
        kwargs={"password": SECRET, "note": "hello"},
        sealer=Sealer(TEST_KEY),
        message="Read timed out",
    )
    with sessions() as session:
        attempt_id = session.execute(sa.select(FailedAttempt.id)).scalar_one()
    response = client.get(f"{API_PREFIX}/{attempt_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["id"], body["task_id"], body["message"]) == (attempt_id, "s1", "Read timed out")
    assert body["traceback"].startswith("Traceback")
    assert body["task"]["kwargs"] == {"password": "[REDACTED]", "note": "hello"}
    assert body["task"]["state"] == "retrying" and body["task"]["args"] == [1]
    assert SECRET not in response.text and "$sealed" not in response.text


def test_unknown_attempt_is_404_and_other_paths_are_not_swallowed(client: TestClient) -> None:
    error = error_of(client, "/424242", 404)
    assert (error["code"], error["param"], error["type"]) == ("attempt_not_found", "attempt_id", "not_found")
    assert error_of(client, f"/{2**63}", 422)["param"] == "attempt_id"
    assert error_of(client, "/no-such-route", 404)["code"] == "http_404"
    assert get(client, "/health")["database"] is True  # the health route is not taken for an attempt id


def test_stats_count_the_window(client: TestClient, sessions: sessionmaker[Session]) -> None:
    now = utcnow()
    old = now - dt.timedelta(hours=3)
    fail(sessions, "old", 1, at=old, category=Category.PERMANENT, reason="auth_failed", fingerprint="9" * 16)
    for i in range(3):
        fail(
            sessions,
            f"t{i}",
            1,
            at=now - dt.timedelta(minutes=40 - i),
            message=f"timeout {i}",
            fingerprint="a" * 16,
            exc_type="builtins.TimeoutError",
        )
    fail(
        sessions,
        "r1",
        1,
        at=now - dt.timedelta(minutes=5),
        category=Category.TRANSIENT,
        reason="rate_limited",
        task_name="app.other",
        fingerprint="b" * 16,
        message="429",
    )
    fail(
        sessions,
        "v1",
        1,
        at=now - dt.timedelta(minutes=4),
        category=Category.VALIDATION,
        reason="invalid_input",
        task_name="app.other",
        fingerprint="b" * 16,
        message="bad input",
        exc_type="builtins.ValueError",
    )

    stats = get(client, "/stats")
    assert stats["total"] == 5
    assert stats["by_category"] == {"transient": 4, "validation": 1}
    assert stats["by_reason"] == {"timeout": 3, "invalid_input": 1, "rate_limited": 1}
    assert stats["by_task"] == {"app.task": 3, "app.other": 2}
    groups = stats["top_fingerprints"]
    assert [(g["fingerprint"], g["count"]) for g in groups] == [("a" * 16, 3), ("b" * 16, 2)]
    assert (groups[0]["message"], groups[0]["exc_type"]) == ("timeout 2", "builtins.TimeoutError")
    assert dt.datetime.fromisoformat(groups[0]["first_seen"]) == now - dt.timedelta(minutes=40)
    assert dt.datetime.fromisoformat(groups[0]["last_seen"]) == now - dt.timedelta(minutes=38)
    assert (groups[1]["message"], groups[1]["task_name"], groups[1]["reason"]) == (
        "bad input",
        "app.other",
        "invalid_input",
    )

    wide = get(client, "/stats", window_minutes=240)
    assert wide["total"] == 6 and wide["by_category"]["permanent"] == 1
    narrow = get(client, "/stats", window_minutes=10)
    assert narrow["total"] == 2 and narrow["by_task"] == {"app.other": 2}


@pytest.mark.parametrize("window", [0, 10_081, "hour"])
def test_stats_window_bounds(client: TestClient, window: object) -> None:
    assert error_of(client, "/stats", 422, window_minutes=window)["param"] == "window_minutes"


def test_task_history_shows_attempts_runs_dead_letter_and_replays(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    start = utcnow() - dt.timedelta(minutes=10)
    for attempt in range(1, 6):  # five transient failures: four retries, then the budget is spent
        result = fail(sessions, "orig", attempt, at=start + dt.timedelta(seconds=attempt), worker=f"w{attempt}")
    letter_id = result.dead_letter_id
    assert letter_id is not None
    # replayed twice: one replay failed (so it has a record), the other has not failed (only the link)
    fail(sessions, "replay-1", 1, at=start + dt.timedelta(minutes=1), replay_of=letter_id)
    with transaction(sessions) as session:
        session.execute(
            sa.update(DeadLetterRecord).where(DeadLetterRecord.id == letter_id).values(replayed_task_id="replay-2")
        )

    history = get(client, "/task/orig/history")
    assert history["task"]["state"] == "dead_lettered" and history["task"]["attempts"] == 5
    attempts = history["attempts"]
    assert [a["attempt"] for a in attempts] == [1, 2, 3, 4, 5]
    assert [a["decision"] for a in attempts] == ["retry"] * 4 + ["dead_letter"]
    assert [a["worker"] for a in attempts] == ["w1", "w2", "w3", "w4", "w5"]
    assert all(a["delay"] is not None for a in attempts[:4]) and attempts[4]["delay"] is None
    assert attempts[4]["decision_reason"] == "retries_exhausted"
    assert [(r["kind"], r["attempt"], r["status"]) for r in history["runs"]] == [
        ("retry", n, "pending") for n in range(2, 6)
    ]
    assert history["dead_letter"]["id"] == letter_id and history["dead_letter"]["reason"] == "retries_exhausted"
    assert history["replay_of"] is None
    assert history["replays"] == [
        {"task_id": "replay-1", "state": "retrying"},
        {"task_id": "replay-2", "state": None},
    ]

    replay = get(client, "/task/replay-1/history")
    assert replay["replay_of"]["id"] == letter_id and replay["replay_of"]["task_id"] == "orig"
    assert replay["task"]["replay_of"] == letter_id and replay["dead_letter"] is None
    unrecorded = get(client, "/task/replay-2/history")
    assert unrecorded["task"] is None and unrecorded["attempts"] == []
    assert unrecorded["replay_of"]["id"] == letter_id


def test_unknown_task_history_is_404_in_the_envelope(client: TestClient) -> None:
    error = error_of(client, "/task/nope/history", 404)
    assert (error["code"], error["param"], error["type"]) == ("task_not_found", "task_id", "not_found")
    assert "nope" in error["message"]


def test_openapi_documents_the_routes_and_the_envelope(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    for path in ("", "/stats", "/task/{task_id}/history", "/{attempt_id}"):
        operation = paths[f"{API_PREFIX}{path}"]["get"]
        assert operation["description"] and operation["tags"] == ["errors"]
        assert "422" in operation["responses"]
        assert operation["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("ErrorEnvelope")


def test_history_lists_every_replay_of_a_dead_letter_even_forced_ones_that_never_failed(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    from error_handling.persistence.models import ReplayRequestRecord

    start = utcnow() - dt.timedelta(minutes=10)
    letter_id = fail(sessions, "orig", 1, at=start, category=Category.PERMANENT, reason="auth_failed").dead_letter_id
    assert letter_id is not None
    with transaction(sessions) as session:  # replayed, then replayed again with force: neither failed
        for i, task_id in enumerate(["replay-a", "replay-b"]):
            session.add(
                ReplayRequestRecord(
                    dead_letter_id=letter_id,
                    task_id=task_id,
                    forced=i > 0,
                    created_at=start + dt.timedelta(minutes=i + 1),
                )
            )
        session.execute(
            sa.update(DeadLetterRecord).where(DeadLetterRecord.id == letter_id).values(replayed_task_id="replay-b")
        )
    fail(sessions, "replay-c", 1, at=start + dt.timedelta(minutes=5), replay_of=letter_id)  # a third, failing

    history = get(client, "/task/orig/history")
    assert [r["task_id"] for r in history["replays"]] == ["replay-a", "replay-b", "replay-c"]
    first = get(client, "/task/replay-a/history")  # never failed: known by its replay request alone
    assert first["task"] is None and first["replay_of"]["id"] == letter_id
