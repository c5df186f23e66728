"""Recording many failures in one transaction (``failure_recording.record_failures``), on SQLite and on a real
Postgres: the same rows as recording them one by one, reports of one task in order, the roll-up summed,
and batches racing over the same tasks and roll-up rows without deadlocking."""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from error_handling.categories import Category
from error_handling.persistence import bulk, failure_recording, task_records
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import (
    DeadLetterRecord,
    ErrorCount,
    FailedAttempt,
    ScheduledRun,
    TaskRecord,
    TaskState,
)
from error_handling.persistence.reports import FailureReport, Recorded
from error_handling.policy import DeadLetter, FailFast, RecoveryPolicy, Retry, Wait
from function_runner.migrate import upgrade
from tests.support import services
from tests.unit.test_repository import NOW, POLICY, payload, report


class Fixed:
    """A random source that always draws the middle of the range (decisions do not depend on order)."""

    def uniform(self, a: float, b: float) -> float:
        return (a + b) / 2


def database(request: pytest.FixtureRequest, tmp_path: Path, name: str) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / f'{name}.sqlite3'}"
        upgrade(url)
        return url
    if name == "one":
        return str(request.getfixturevalue("pg_url"))
    created = services.create_database(template=request.getfixturevalue("pg_template"))
    request.addfinalizer(lambda: services.drop_database(created))
    return services.pg_url(created)


@pytest.fixture(params=["sqlite", "postgres"])
def two(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[sessionmaker[Session], sessionmaker[Session]]]:
    """Two empty databases of the same kind."""
    engines = [make_engine(database(request, tmp_path, name)) for name in ("one", "two")]
    yield make_sessionmaker(engines[0]), make_sessionmaker(engines[1])
    for engine in engines:
        engine.dispose()


def one_by_one(sessions: sessionmaker[Session], reports: list[FailureReport]) -> list[Recorded]:
    out = []
    for r in reports:
        with transaction(sessions) as s:
            out.append(failure_recording.record_failure(s, report=r, policy=POLICY, rng=Fixed()))
    return out


def together(sessions: sessionmaker[Session], reports: list[FailureReport]) -> list[Recorded]:
    with transaction(sessions) as s:
        return failure_recording.record_failures(s, reports=reports, policy=POLICY, rng=Fixed())


def contents(sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Every row the recording writes, without generated ids (the two sides number them differently)."""

    def rows(model: Any, *skip: str) -> list[tuple[Any, ...]]:
        table = model.__table__
        columns = [c for c in table.c if c.name not in {"id", *skip}]
        with sessions() as s:
            found = s.execute(sa.select(*columns)).all()
        return sorted(tuple(repr(v) for v in row) for row in found)

    return {
        "tasks": rows(TaskRecord),
        "attempts": rows(FailedAttempt),
        "runs": rows(ScheduledRun),
        "letters": rows(DeadLetterRecord),
        "counts": rows(ErrorCount),
    }


def history() -> list[FailureReport]:
    """Failures recorded before the batch: a task four transient failures in, a waiting task, a task
    that failed fast, a task whose first attempt is recorded."""
    earlier = NOW - dt.timedelta(minutes=5)
    return [
        *(report("worn", n, Category.TRANSIENT, "timeout", at=earlier) for n in range(1, 5)),
        report("waiting", 1, Category.RESOURCE, "gpu_unavailable", resource="gpu", at=earlier),
        report("done", 1, Category.VALIDATION, "invalid_input", at=earlier, user_message="Fix it."),
        report("seen", 1, Category.TRANSIENT, "rate_limited", at=earlier),
    ]


def batch() -> list[FailureReport]:
    """Every case at once: new tasks of each category, an exhausted budget, a second wait, a failure
    after a terminal state, a redelivery of a recorded attempt, and one task twice (a redelivery of an
    attempt of this very batch, then its next attempt)."""
    later = NOW + dt.timedelta(minutes=1)
    return [
        report("z-new", 1, Category.TRANSIENT, "timeout"),
        report("a-fast", 1, Category.VALIDATION, "invalid_input", user_message="Bad amount."),
        report("m-perm", 1, Category.PERMANENT, "not_found"),
        report("worn", 5, Category.TRANSIENT, "timeout"),
        report("waiting", 2, Category.RESOURCE, "gpu_unavailable", resource="gpu"),
        report("done", 2, Category.PERMANENT, "auth_failed"),
        report("seen", 1, Category.TRANSIENT, "rate_limited"),
        report("twice", 1, Category.TRANSIENT, "timeout"),
        report("twice", 1, Category.TRANSIENT, "timeout"),
        report("twice", 2, Category.TRANSIENT, "timeout", at=later),
        report("b-gpu", 1, Category.RESOURCE, "out_of_memory", resource="memory"),
    ]


def test_a_batch_writes_what_recording_one_by_one_writes(
    two: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    single, batched = two
    one_by_one(single, history())
    one_by_one(batched, history())
    expected = one_by_one(single, batch())
    got = together(batched, batch())
    assert contents(batched) == contents(single)
    strip = [(r.decision, r.duplicate, r.run_id is None, r.dead_letter_id is None) for r in expected]
    assert [(r.decision, r.duplicate, r.run_id is None, r.dead_letter_id is None) for r in got] == strip


def test_each_outcome_belongs_to_its_own_report(sessions: sessionmaker[Session]) -> None:
    one_by_one(sessions, history())
    reports = batch()
    got = together(sessions, reports)
    by_task = dict(zip([r.task_id for r in reports], got, strict=False))  # the first of each task
    assert isinstance(by_task["z-new"].decision, Retry)
    assert by_task["a-fast"].decision == FailFast("invalid_input", "Bad amount.")
    assert by_task["m-perm"].decision == DeadLetter("not_found")
    assert got[3].decision == DeadLetter("retries_exhausted")
    assert isinstance(by_task["waiting"].decision, Wait) and by_task["waiting"].decision.deadline == (
        NOW - dt.timedelta(minutes=5) + dt.timedelta(hours=1)
    )
    assert got[5].duplicate and got[6].duplicate  # after a terminal state; a recorded attempt
    assert [(r.duplicate, type(r.decision)) for r in got[7:10]] == [(False, Retry), (True, Retry), (False, Retry)]
    assert got[8].decision == got[7].decision
    with sessions() as s:
        runs = {run.id: run for run in s.execute(sa.select(ScheduledRun)).scalars()}
        letters = {letter.id: letter for letter in s.execute(sa.select(DeadLetterRecord)).scalars()}
        for r, outcome in zip(reports, got, strict=True):
            if outcome.run_id is not None and not outcome.duplicate:
                run = runs[outcome.run_id]
                assert (run.task_id, run.attempt) == (r.task_id, r.attempt + 1)
            if outcome.dead_letter_id is not None:
                assert letters[outcome.dead_letter_id].task_id == r.task_id
        task = s.get(TaskRecord, "twice")
        assert task is not None and task.attempts == 2 and task.state is TaskState.RETRYING
        fast = s.get(TaskRecord, "a-fast")
        assert fast is not None and fast.user_message == "Bad amount." and fast.terminal_at == NOW
        waiting = s.get(TaskRecord, "waiting")
        assert waiting is not None and waiting.state is TaskState.WAITING and waiting.terminal_at is None


def test_the_roll_up_adds_every_attempt_of_a_batch(sessions: sessionmaker[Session]) -> None:
    hour_later = NOW + dt.timedelta(hours=1)
    reports = [report(f"t{n}", 1, Category.TRANSIENT, "timeout", at=NOW if n < 7 else hour_later) for n in range(10)]
    together(sessions, reports)
    together(sessions, [report("t0", 2, Category.TRANSIENT, "timeout"), report("t1", 2, Category.TRANSIENT, "timeout")])
    with sessions() as s:
        counts = {(c.period, c.bucket, c.count) for c in s.execute(sa.select(ErrorCount)).scalars()}
    assert counts == {("hour", NOW, 9), ("hour", hour_later, 3), ("day", NOW.replace(hour=0), 12)}


def test_nothing_to_record_writes_nothing(sessions: sessionmaker[Session]) -> None:
    assert together(sessions, []) == []
    with pytest.raises(ValueError, match="2 reports but 1 policies"), transaction(sessions) as s:
        failure_recording.record_failures(s, reports=batch()[:2], policy=[RecoveryPolicy()])
    assert contents(sessions)["attempts"] == []


def test_racing_batches_over_the_same_tasks_and_roll_up_rows_finish(pg_url: str) -> None:
    # eight writers on Postgres (SQLite serialises writers), each a batch of the same twelve tasks'
    # first attempt (a random two thirds of them) spanning an hour boundary, in its own order: every attempt is recorded once, and
    # no writer deadlocks with another
    engine = make_engine(pg_url, pool_size=8)
    sessions = make_sessionmaker(engine)
    tasks = [f"task-{n:02}" for n in range(12)]
    start = threading.Barrier(8)

    def writer(seed: int) -> list[Recorded]:
        chosen = random.Random(seed)
        mine = [
            report(t, 1, Category.TRANSIENT, "timeout", at=NOW - dt.timedelta(minutes=30 * (n % 2)))
            for n, t in enumerate(tasks)
            if chosen.random() < 0.7
        ]
        chosen.shuffle(mine)
        start.wait()
        return together(sessions, mine)

    with ThreadPoolExecutor(8) as pool:
        results = [r for batch_results in pool.map(writer, range(8)) for r in batch_results]
    with sessions() as s:
        recorded = s.execute(sa.select(sa.func.count()).select_from(FailedAttempt)).scalar_one()
        total = s.execute(sa.select(sa.func.sum(ErrorCount.count)).where(ErrorCount.period == "hour")).scalar_one()
    assert sum(not r.duplicate for r in results) == recorded == total > 0
    engine.dispose()


def test_rows_written_in_bulk_read_back_as_written_one_by_one(sessions: sessionmaker[Session]) -> None:
    # Postgres writes a batch's rows as one JSON document: every value must come back as the plain
    # insert stores it (text with quotes and braces, floats, other time zones, JSON documents)
    tricky = 'it\'s "quoted" {braces} \\back\\slash\nnew line, ünïcödé ✓, null, \t tab'
    other_zone = dt.timezone(dt.timedelta(hours=5, minutes=30))
    letter = {
        "task_name": "app.task",
        "queue": None,
        "reason": "not_found",
        "category": "permanent",
        "last_reason": "not_found",
        "exc_type": "builtins.KeyError",
        "message": tricky,
        "fingerprint": "f" * 16,
        "attempts": 3,
        "args": [1, 0.1, 1e-300, 2**53 + 1, None, "null", tricky, {"nested": [True, False, {}]}],
        "kwargs": {"key": tricky, "ünï": [], "n": -0.5},
        "options": {},
        "headers": {"x": None},
        "replayable": False,
        "status": "pending",
        "created_at": dt.datetime(2026, 3, 1, 14, 30, 15, 123456, tzinfo=other_zone),
        "updated_at": NOW,
    }
    with transaction(sessions) as s:
        s.execute(sa.insert(DeadLetterRecord), [{**letter, "task_id": "plain"}])
        bulk.insert_many(s, DeadLetterRecord.__table__, [{**letter, "task_id": "bulk"}])  # type: ignore[arg-type]
    with sessions() as s:
        rows = {r.task_id: r for r in s.execute(sa.select(DeadLetterRecord)).scalars()}
    columns = [c.name for c in DeadLetterRecord.__table__.c if c.name not in {"id", "task_id"}]
    assert {c: getattr(rows["bulk"], c) for c in columns} == {c: getattr(rows["plain"], c) for c in columns}
    assert rows["bulk"].args == letter["args"] and rows["bulk"].message == tricky
    assert rows["bulk"].created_at == letter["created_at"]


@pytest.mark.parametrize(
    ("category", "reason", "extra"),
    [
        (Category.TRANSIENT, "timeout", {}),
        (Category.RESOURCE, "gpu_unavailable", {"resource": "gpu"}),
        (Category.VALIDATION, "invalid_input", {"user_message": "Fix it."}),
        (Category.PERMANENT, "not_found", {}),
    ],
)
def test_a_first_failure_leaves_the_same_record_whether_or_not_the_task_had_one(
    sessions: sessionmaker[Session], category: Category, reason: str, extra: dict[str, Any]
) -> None:
    # On Postgres a new task's record is inserted already in its final state; a task with a record
    # (here made by a lost delivery before any failure) is updated: both must end the same
    with transaction(sessions) as s:
        task_records.ensure_task(s, task_id="known", payload=payload(), now=NOW - dt.timedelta(minutes=1))
    got = together(sessions, [report(t, 1, category, reason, **extra) for t in ("known", "new")])
    assert got[0].decision == got[1].decision and not any(r.duplicate for r in got)
    with sessions() as s:
        records = {t.task_id: t for t in s.execute(sa.select(TaskRecord)).scalars()}
    columns = [c.name for c in TaskRecord.__table__.c if c.name not in {"task_id", "created_at"}]
    assert {c: getattr(records["new"], c) for c in columns} == {c: getattr(records["known"], c) for c in columns}
    assert records["new"].attempts == 1 and records["new"].last_reason == reason
