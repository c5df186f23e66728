"""Failures kept in Redis while the database is unreachable (:mod:`function_runner.unrecorded`)."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import fakeredis

from error_handling.categories import Category
from error_handling.classification import Classification
from error_handling.persistence.repository import FailureReport, TaskPayload
from function_runner import unrecorded

REPORT = FailureReport(
    task_id="t-1",
    attempt=2,
    payload=TaskPayload(
        task_name="app.charge",
        args=[1, {"sealed": "gAAAA..."}],
        kwargs={"order": "o-9"},
        options={"routing_key": "celery"},
        headers={},
        queue="celery",
        root_id="t-0",
    ),
    classification=Classification(
        Category.TRANSIENT, "rate_limited", retry_after=1.5, fingerprint="ab12", exc_type="httpx.HTTPStatusError"
    ),
    traceback="Traceback ...",
    failed_at=dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC),
    started_at=dt.datetime(2026, 11, 24, 11, 59, 59, tzinfo=dt.UTC),
    worker="w1@host",
    run_id=7,
    retry_allowed=False,
)


def runtime_with(client: Any) -> Any:
    def no_redis() -> Any:
        raise RuntimeError("no Redis")

    return SimpleNamespace(breakers=SimpleNamespace(client=(lambda: client) if client is not None else no_redis))


def test_a_report_survives_its_json_form_whole() -> None:
    assert unrecorded.decode(unrecorded.encode(REPORT)) == REPORT


def test_a_kept_failure_is_found_by_task_and_attempt_until_forgotten() -> None:
    client = fakeredis.FakeRedis()
    runtime = runtime_with(client)
    assert unrecorded.take(runtime, "t-1", 2) is None
    assert unrecorded.keep(runtime, REPORT)
    assert unrecorded.take(runtime, "t-1", 1) is None  # another attempt
    assert unrecorded.take(runtime, "t-1", 2) == REPORT
    assert 0 < client.ttl("fr:unrecorded:t-1:2") <= unrecorded.TTL
    unrecorded.forget(runtime, "t-1", 2)
    assert unrecorded.take(runtime, "t-1", 2) is None


def test_without_redis_nothing_is_kept_and_nothing_fails() -> None:
    runtime = runtime_with(None)
    assert not unrecorded.keep(runtime, REPORT)
    assert unrecorded.take(runtime, "t-1", 2) is None
    unrecorded.forget(runtime, "t-1", 2)


def test_an_unreadable_kept_failure_is_ignored() -> None:
    client = fakeredis.FakeRedis()
    client.set("fr:unrecorded:t-1:2", b"{not json")
    assert unrecorded.take(runtime_with(client), "t-1", 2) is None
