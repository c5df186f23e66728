"""Retention on a real Postgres: rows older than their age are deleted in batches that skip locked rows,
newer rows are kept, and so is what a live task or an open dead letter still needs; the secrets of
dead letters settled a grace period ago are purged (the letter then refuses a replay); ``/health``
shows the last run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from api.main import API_PREFIX
from api.main import create_app as create_api
from error_handling.categories import Category
from error_handling.persistence import dead_letters, retention
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import (
    CircuitBreakerEvent,
    DeadLetterRecord,
    ErrorCount,
    FailedAttempt,
    FallbackEvent,
    LostDelivery,
    RetentionRun,
    ServiceError,
    ServiceHealth,
    TaskRecord,
)
from error_handling.redaction import REDACTED
from error_handling.sealing import is_sealed
from function_runner.app import create_app
from function_runner.dispatch.retention import RetentionRole
from function_runner.replay.single import replay_dead_letter
from function_runner.runtime import Runtime, runtime_for
from function_runner.settings import Settings
from tests.conftest import TEST_KEY
from tests.support.api_client import local_client
from tests.support.dead_letter_seed import seed_dead_letter
from tests.support.failures import fail

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
OLD = NOW - 40 * DAY  # older than every default age but the roll-up's
SECRET_KWARGS = {"password": "pw-retention-secret", "amount": 3}


def settings_for(pg_url: str, tmp_path: Path, **more: Any) -> Settings:
    return Settings(
        database_url=pg_url,
        broker_url="memory://",
        encryption_key=TEST_KEY,
        data_dir=tmp_path,
        retention_batch_size=2,
        **more,
    )


@pytest.fixture
def sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def app(pg_url: str, tmp_path: Path) -> Iterator[Celery]:
    celery = create_app(settings_for(pg_url, tmp_path), main="fr_retention")
    yield celery
    runtime_for(celery).close()
    celery.close()


@pytest.fixture
def runtime(app: Celery) -> Runtime:
    return runtime_for(app)


def letter(sessions: sessionmaker[Session], task_id: str, at: dt.datetime, runtime: Runtime) -> int:
    return seed_dead_letter(sessions, task_id, sealer=runtime.sealer, at=at, kwargs=SECRET_KWARGS)


def discard(sessions: sessionmaker[Session], letter_id: int, at: dt.datetime) -> None:
    with transaction(sessions) as s:
        dead_letters.discard(s, dead_letter_id=letter_id, reason="obsolete", now=at)


def mark_replayed(sessions: sessionmaker[Session], letter_id: int, at: dt.datetime) -> None:
    with transaction(sessions) as s:
        found = dead_letters.lock_dead_letter(s, dead_letter_id=letter_id)
        dead_letters.mark_replayed(s, letter=found, task_id=f"replay-of-{letter_id}", now=at)


def add(sessions: sessionmaker[Session], *rows: Any) -> None:
    with transaction(sessions) as s:
        s.add_all(rows)


def lost(task_id: str, at: dt.datetime) -> LostDelivery:
    return LostDelivery(task_id=task_id, attempt=1, delivery=1, cause="worker_lost", lost_at=at)


def breaker(service: str, at: dt.datetime) -> CircuitBreakerEvent:
    return CircuitBreakerEvent(service=service, from_state="closed", to_state="open", cause="failure_ratio", at=at)


def seed_everything(sessions: sessionmaker[Session], runtime: Runtime) -> dict[str, int]:
    """Old and new rows of every table retention trims, and rows it must keep whatever their age."""
    ids = {
        "settled": letter(sessions, "settled", OLD, runtime),  # discarded long ago: attempts go, secrets purged
        "replayed": letter(sessions, "replayed", OLD, runtime),  # replayed 10 days ago: same
        "open": letter(sessions, "open", OLD, runtime),  # pending: attempts kept, secrets kept
        "fresh": letter(sessions, "fresh", NOW - DAY, runtime),  # discarded yesterday: within the grace
    }
    discard(sessions, ids["settled"], OLD)
    mark_replayed(sessions, ids["replayed"], NOW - 10 * DAY)
    discard(sessions, ids["fresh"], NOW - DAY)
    fail(sessions, "retrying", 1, at=OLD)  # a transient failure: the task still retries
    fail(sessions, "done-old", 1, at=OLD, category=Category.VALIDATION, reason="invalid_input")  # terminal
    fail(sessions, "done-new", 1, at=NOW - DAY, category=Category.VALIDATION, reason="invalid_input")
    add(
        sessions,
        ErrorCount(
            period="day",
            bucket=NOW - 500 * DAY,
            task_name="t",
            category="transient",
            reason="r",
            fingerprint="f",
            count=1,
        ),
        breaker("a", NOW - 60 * DAY),
        breaker("a", NOW - 50 * DAY),  # a's latest: kept although old
        breaker("b", NOW - 60 * DAY),
        breaker("b", NOW - DAY),
        ServiceHealth(service="s", minute=NOW - 20 * DAY, actor="w:1", calls=1, failures=0, latency_histogram={}),
        ServiceHealth(service="s", minute=NOW - DAY, actor="w:1", calls=1, failures=0, latency_histogram={}),
        ServiceError(service="s", category="transient", reason="timeout", message="m", at=NOW - 20 * DAY),
        ServiceError(service="s", category="transient", reason="timeout", message="m", at=NOW - DAY),
        FallbackEvent(service="chat", provider="b", degraded=False, passed_over=[], at=NOW - 20 * DAY),
        FallbackEvent(service="chat", provider="b", degraded=False, passed_over=[], at=NOW - DAY),
        lost("retrying", OLD),  # its task still retries: counts towards its poison limit
        lost("open", OLD),  # its dead letter is open
        lost("settled", OLD),
        lost("never-failed", OLD),  # a task with no record
        lost("done-new", NOW - DAY),
    )
    return ids


def count(sessions: sessionmaker[Session], model: Any, *where: Any) -> int:
    with sessions() as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(model).where(*where)).scalar_one())


def task_ids(sessions: sessionmaker[Session], model: Any) -> set[str]:
    with sessions() as s:
        return set(s.execute(sa.select(model.task_id)).scalars())


def test_a_run_deletes_what_is_older_than_its_age_and_keeps_what_is_newer_or_still_needed(
    sessions: sessionmaker[Session], runtime: Runtime
) -> None:
    ids = seed_everything(sessions, runtime)

    totals = RetentionRole(
        in_transaction=runtime.in_transaction, settings=runtime.settings, runner="dispatcher@test:1"
    ).run(now=NOW)

    assert totals is not None and totals.finished
    assert task_ids(sessions, FailedAttempt) == {"open", "fresh", "retrying", "done-new"}
    assert task_ids(sessions, LostDelivery) == {"retrying", "open", "done-new"}
    assert count(sessions, ErrorCount, ErrorCount.bucket < NOW - 400 * DAY) == 0
    assert count(sessions, ErrorCount) > 0  # the attempts' own hour and day rows are younger than 400 days
    with sessions() as s:
        events = s.execute(sa.select(CircuitBreakerEvent.service, CircuitBreakerEvent.at)).all()
    assert sorted(events) == [("a", NOW - 50 * DAY), ("b", NOW - DAY)]
    for model in (ServiceHealth, ServiceError, FallbackEvent):
        assert count(sessions, model) == 1
    assert totals.deleted == {
        "fr_failed_attempts": 3,  # settled, replayed, done-old
        "fr_error_counts": 1,
        "circuit_breaker_events": 2,
        "ai_service_health": 1,
        "ai_service_errors": 1,
        "ai_fallback_events": 1,
        "fr_lost_deliveries": 2,  # settled, never-failed
    }
    assert totals.purged == 2
    with sessions() as s:
        purged = {d.id for d in s.execute(sa.select(DeadLetterRecord)).scalars() if d.purged_at is not None}
        assert purged == {ids["settled"], ids["replayed"]}
        for name in ("settled", "replayed"):
            found = s.get(DeadLetterRecord, ids[name])
            assert found is not None
            assert found.kwargs == {"password": REDACTED, "amount": 3}
            task = s.get(TaskRecord, name)
            assert task is not None and task.kwargs == {"password": REDACTED, "amount": 3}
        for name in ("open", "fresh"):
            kept = s.get(DeadLetterRecord, ids[name])
            assert kept is not None and kept.purged_at is None and is_sealed(kept.kwargs["password"])
        run = s.execute(sa.select(RetentionRun)).scalar_one()
        assert run.finished_at is not None and run.runner == "dispatcher@test:1"
        assert run.deleted == totals.deleted and run.purged == 2


def test_a_run_is_not_repeated_within_the_interval_and_the_next_one_finds_nothing_left(
    sessions: sessionmaker[Session], runtime: Runtime
) -> None:
    seed_everything(sessions, runtime)
    role = RetentionRole(in_transaction=runtime.in_transaction, settings=runtime.settings, runner="dispatcher@test:1")
    assert role.run(now=NOW) is not None
    other = RetentionRole(in_transaction=runtime.in_transaction, settings=runtime.settings, runner="dispatcher@test:2")
    assert other.run(now=NOW + dt.timedelta(minutes=5)) is None  # another dispatcher ran it just now
    again = other.run(now=NOW + dt.timedelta(seconds=runtime.settings.retention_interval))
    assert again is not None and again.deleted == {} and again.purged == 0


def test_delete_batch_takes_at_most_its_limit_and_skips_rows_another_transaction_holds(
    sessions: sessionmaker[Session], runtime: Runtime
) -> None:
    for index in range(5):
        fail(sessions, f"done-{index}", 1, at=OLD, category=Category.VALIDATION, reason="invalid_input")
    rule = next(r for r in retention.RULES if r.name == "fr_failed_attempts")
    cutoff = NOW - 30 * DAY
    with sessions() as holder:
        holder.execute(sa.text("SET lock_timeout = '10s'"))  # a regression errors out instead of hanging
        held = holder.execute(
            sa.select(FailedAttempt).where(FailedAttempt.task_id == "done-0").with_for_update()
        ).scalar_one()
        batches = []
        while True:
            with transaction(sessions) as s:
                s.execute(sa.text("SET LOCAL lock_timeout = '10s'"))
                deleted = retention.delete_batch(s, rule=rule, cutoff=cutoff, limit=2)
            batches.append(deleted)
            if deleted < 2:
                break
        assert batches == [2, 2, 0]  # four deleted two at a time; the held row skipped, not waited for
        assert task_ids(sessions, FailedAttempt) == {held.task_id}
        holder.rollback()
    with transaction(sessions) as s:
        assert retention.delete_batch(s, rule=rule, cutoff=cutoff, limit=2) == 1  # released: deleted now


def test_a_purged_dead_letter_refuses_a_replay_in_the_api_with_a_409(
    sessions: sessionmaker[Session], app: Celery, runtime: Runtime, pg_url: str, tmp_path: Path
) -> None:
    letter_id = letter(sessions, "replayed", OLD, runtime)
    mark_replayed(sessions, letter_id, NOW - 10 * DAY)
    RetentionRole(in_transaction=runtime.in_transaction, settings=runtime.settings, runner="dispatcher@test:1").run(
        now=NOW
    )

    with pytest.raises(dead_letters.PayloadPurged, match="purged by retention"):
        replay_dead_letter(app, runtime, dead_letter_id=letter_id, force=True)
    with local_client(create_api(settings_for(pg_url, tmp_path))) as client:
        answer = client.post(f"{API_PREFIX}/dead-letters/{letter_id}/replay", json={"force": True})
        assert answer.status_code == 409
        assert answer.json()["error"]["code"] == "payload_purged"
        shown = client.get(f"{API_PREFIX}/dead-letters/{letter_id}").json()
        assert shown["purged_at"] is not None and shown["kwargs"]["password"] == REDACTED
        health = client.get(f"{API_PREFIX}/health").json()
    assert health["retention"]["runner"] == "dispatcher@test:1"
    assert health["retention"]["purged"] == 1
    assert health["retention"]["deleted"] == {"fr_failed_attempts": 1}


def test_retention_off_deletes_nothing(sessions: sessionmaker[Session], pg_url: str, tmp_path: Path) -> None:
    ages = [rule.setting for rule in retention.RULES if rule.setting] + ["retention_purge_replayed_after_days"]
    off: dict[str, Any] = dict.fromkeys(ages)
    app = create_app(settings_for(pg_url, tmp_path, **off), main="fr_retention_off")
    try:
        fail(sessions, "done-old", 1, at=OLD, category=Category.VALIDATION, reason="invalid_input")
        role = RetentionRole(
            in_transaction=runtime_for(app).in_transaction,
            settings=runtime_for(app).settings,
            runner="dispatcher@test:1",
        )
        assert not role.enabled
        assert role.run(now=NOW) is None
        assert count(sessions, FailedAttempt) == 1
    finally:
        runtime_for(app).close()
        app.close()


def test_inside_a_dispatcher_a_run_goes_a_batch_at_a_time_and_resumes_at_the_next_pass(
    sessions: sessionmaker[Session], runtime: Runtime
) -> None:
    for index in range(5):
        fail(sessions, f"done-{index}", 1, at=OLD, category=Category.VALIDATION, reason="invalid_input")
    role = RetentionRole(in_transaction=runtime.in_transaction, settings=runtime.settings, runner="dispatcher@test:1")
    seen: list[int] = []
    while True:
        totals = role.step(now=NOW, budget=0)  # one batch (of 2) per pass
        assert totals is not None
        with sessions() as s:
            run = s.execute(sa.select(RetentionRun)).scalar_one()
        seen.append(run.deleted.get("fr_failed_attempts", 0))
        if totals.finished:
            assert run.finished_at is not None
            break
        assert run.finished_at is None  # under way: its totals so far are recorded
    assert seen[:3] == [2, 4, 5]
    assert count(sessions, FailedAttempt) == 0
    assert role.run(now=NOW) is None  # the next run is due only once the interval has passed
