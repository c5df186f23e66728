"""Keyword-only read functions over the system of record, shared by the API and the CLI.

Nothing here writes. Each function takes an open session and returns ORM rows or small frozen values;
turning them into public schemas is the caller's job.

Failed attempts are listed newest first in ``(failed_at desc, id desc)`` order with keyset pagination:
a page is continued from a :data:`Keyset`, the ``(failed_at, id)`` of its last row, so a walk returns
each row that existed when it started exactly once, however many rows arrive meanwhile. Every filter
is an equality on a column that leads one of ``fr_failed_attempts``' ``(column, failed_at)`` indexes
(or the ``failed_at`` index itself), so Postgres reads a page by walking one index backwards and stops
after ``limit + 1`` rows. The text search (a case-insensitive substring of the message) is a filter on
those rows, not an index lookup: it is as fast as the other filters let it be.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import DeadLetterRecord, FailedAttempt, ScheduledRun, TaskRecord

__all__ = [
    "DEFAULT_TOP",
    "AttemptPage",
    "ErrorStats",
    "FingerprintGroup",
    "Keyset",
    "ReplayLink",
    "TaskHistory",
    "error_stats",
    "escape_like",
    "get_attempt",
    "list_attempts",
    "task_history",
]

#: The position of a row in newest-first order: its ``failed_at`` and its id.
Keyset = tuple[dt.datetime, int]

#: How many fingerprint groups and task names :func:`error_stats` returns, largest first.
DEFAULT_TOP: Final = 10

#: The escape character of :func:`escape_like` patterns.
LIKE_ESCAPE: Final = "\\"


@dataclasses.dataclass(frozen=True)
class AttemptPage:
    """One page of failed attempts, newest first.

    Attributes:
        items: at most ``limit`` attempts.
        next_keyset: where the next page starts, or None when this page is the last.
    """

    items: list[FailedAttempt]
    next_keyset: Keyset | None


def escape_like(text: str) -> str:
    """Escape ``text`` for a LIKE pattern (with :data:`LIKE_ESCAPE`), so ``%`` and ``_`` match themselves."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def list_attempts(
    session: Session,
    *,
    task_name: str | None = None,
    category: str | None = None,
    reason: str | None = None,
    fingerprint: str | None = None,
    queue: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    search: str | None = None,
    cursor: Keyset | None = None,
    limit: int,
) -> AttemptPage:
    """Return failed attempts matching every given filter, newest first, one page at a time.

    Args:
        since: only attempts that failed at or after this time (timezone-aware).
        until: only attempts that failed before this time (timezone-aware).
        search: a case-insensitive substring of the (redacted) message; ``%`` and ``_`` are literal.
        cursor: continue after this row (the ``next_keyset`` of the previous page).
        limit: the page size, at least 1.

    Raises:
        ValueError: if ``limit`` is less than 1.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = sa.select(FailedAttempt)
    for column, value in (
        (FailedAttempt.task_name, task_name),
        (FailedAttempt.category, category),
        (FailedAttempt.reason, reason),
        (FailedAttempt.fingerprint, fingerprint),
        (FailedAttempt.queue, queue),
    ):
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(FailedAttempt.failed_at >= since)
    if until is not None:
        query = query.where(FailedAttempt.failed_at < until)
    if search:
        query = query.where(FailedAttempt.message.ilike(f"%{escape_like(search)}%", escape=LIKE_ESCAPE))
    if cursor is not None:
        moment, row_id = cursor
        # "failed_at <= moment" bounds the index range; the OR breaks ties on the same instant by id.
        query = query.where(
            FailedAttempt.failed_at <= moment,
            sa.or_(FailedAttempt.failed_at < moment, FailedAttempt.id < row_id),
        )
    query = query.order_by(FailedAttempt.failed_at.desc(), FailedAttempt.id.desc()).limit(limit + 1)
    rows = list(session.execute(query).scalars().all())
    if len(rows) <= limit:
        return AttemptPage(items=rows, next_keyset=None)
    items = rows[:limit]
    return AttemptPage(items=items, next_keyset=(items[-1].failed_at, items[-1].id))


def get_attempt(session: Session, *, attempt_id: int) -> FailedAttempt | None:
    """Return one failed attempt by id, or None."""
    return session.get(FailedAttempt, attempt_id)


def get_task(session: Session, *, task_id: str) -> TaskRecord | None:
    """Return the record of a task that failed at least once, or None."""
    return session.get(TaskRecord, task_id)


@dataclasses.dataclass(frozen=True)
class ReplayLink:
    """A task published as a replay of a dead letter.

    Attributes:
        task_id: the new task's id.
        task: its record, or None when it never failed (it succeeded at once, or has not run yet).
    """

    task_id: str
    task: TaskRecord | None


@dataclasses.dataclass(frozen=True)
class TaskHistory:
    """Everything recorded about one task, and its replay lineage.

    Attributes:
        task_id: the task asked about.
        task: its record; None only for a replay that has not failed (known from its dead letter).
        attempts: every failed attempt, oldest first.
        runs: its scheduled retries and resource waits, oldest first.
        dead_letter: its dead letter, if it was dead-lettered.
        replay_of: the dead letter this task replays, if it is a replay.
        replays: the tasks published as replays of its dead letter, oldest first.
    """

    task_id: str
    task: TaskRecord | None
    attempts: list[FailedAttempt]
    runs: list[ScheduledRun]
    dead_letter: DeadLetterRecord | None
    replay_of: DeadLetterRecord | None
    replays: list[ReplayLink]


def task_history(session: Session, *, task_id: str) -> TaskHistory | None:
    """Return the history of a task, or None when nothing is recorded about it.

    A task that never failed has no record; if it is the replay of a dead letter (the dead letter names
    it as ``replayed_task_id``), its history is that link alone.
    """
    task = session.get(TaskRecord, task_id)
    if task is None:
        origin = session.execute(
            sa.select(DeadLetterRecord).where(DeadLetterRecord.replayed_task_id == task_id).limit(1)
        ).scalar_one_or_none()
        if origin is None:
            return None
        return TaskHistory(
            task_id=task_id, task=None, attempts=[], runs=[], dead_letter=None, replay_of=origin, replays=[]
        )
    attempts = session.execute(
        sa.select(FailedAttempt).where(FailedAttempt.task_id == task_id).order_by(FailedAttempt.attempt)
    ).scalars()
    runs = session.execute(
        sa.select(ScheduledRun).where(ScheduledRun.task_id == task_id).order_by(ScheduledRun.attempt)
    ).scalars()
    letter = session.execute(
        sa.select(DeadLetterRecord).where(DeadLetterRecord.task_id == task_id)
    ).scalar_one_or_none()
    replay_of = session.get(DeadLetterRecord, task.replay_of) if task.replay_of is not None else None
    return TaskHistory(
        task_id=task_id,
        task=task,
        attempts=list(attempts),
        runs=list(runs),
        dead_letter=letter,
        replay_of=replay_of,
        replays=_replays(session, letter) if letter is not None else [],
    )


def _replays(session: Session, letter: DeadLetterRecord) -> list[ReplayLink]:
    tasks = session.execute(
        sa.select(TaskRecord).where(TaskRecord.replay_of == letter.id).order_by(TaskRecord.created_at)
    ).scalars()
    links = [ReplayLink(task_id=t.task_id, task=t) for t in tasks]
    known = {link.task_id for link in links}
    if letter.replayed_task_id is not None and letter.replayed_task_id not in known:
        links.append(ReplayLink(task_id=letter.replayed_task_id, task=None))
    return links


@dataclasses.dataclass(frozen=True)
class FingerprintGroup:
    """Failed attempts sharing one fingerprint (the same error across tasks) within a window.

    ``message``, ``exc_type`` and ``task_name`` are those of the group's latest attempt.
    """

    fingerprint: str
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    message: str
    exc_type: str | None
    task_name: str
    category: str
    reason: str


@dataclasses.dataclass(frozen=True)
class ErrorStats:
    """Counts of failed attempts in the window ``[since, until)``.

    Attributes:
        total: every attempt in the window.
        by_category: attempts per category, largest first.
        by_reason: attempts per reason code, largest first.
        by_task: attempts per task name, the ``top`` largest.
        top_fingerprints: the ``top`` largest fingerprint groups.
    """

    since: dt.datetime
    until: dt.datetime
    total: int
    by_category: dict[str, int]
    by_reason: dict[str, int]
    by_task: dict[str, int]
    top_fingerprints: list[FingerprintGroup]


def error_stats(
    session: Session,
    *,
    since: dt.datetime,
    until: dt.datetime | None = None,
    top: int = DEFAULT_TOP,
) -> ErrorStats:
    """Count the failed attempts of ``[since, until)`` (until: now) by category, reason, task and fingerprint.

    Raises:
        ValueError: if ``top`` is less than 1.
    """
    if top < 1:
        raise ValueError("top must be at least 1")
    until = until or dt.datetime.now(dt.UTC)
    window = sa.and_(FailedAttempt.failed_at >= since, FailedAttempt.failed_at < until)

    def counts(column: Any, limit: int | None = None) -> dict[str, int]:
        number = sa.func.count().label("n")
        query = sa.select(column, number).where(window).group_by(column).order_by(number.desc(), column).limit(limit)
        return {str(key): int(n) for key, n in session.execute(query).all()}

    by_category = counts(FailedAttempt.category)
    number = sa.func.count().label("n")
    groups = session.execute(
        sa.select(
            FailedAttempt.fingerprint,
            number,
            sa.func.min(FailedAttempt.failed_at),
            sa.func.max(FailedAttempt.failed_at),
            sa.func.max(FailedAttempt.id),
        )
        .where(window)
        .group_by(FailedAttempt.fingerprint)
        .order_by(number.desc(), FailedAttempt.fingerprint)
        .limit(top)
    ).all()
    return ErrorStats(
        since=since,
        until=until,
        total=sum(by_category.values()),
        by_category=by_category,
        by_reason=counts(FailedAttempt.reason),
        by_task=counts(FailedAttempt.task_name, top),
        top_fingerprints=_fingerprint_groups(session, [tuple(row) for row in groups]),
    )


def _fingerprint_groups(session: Session, groups: Sequence[tuple[Any, ...]]) -> list[FingerprintGroup]:
    latest_ids = [int(row[4]) for row in groups]
    samples = {
        row.id: row
        for row in session.execute(sa.select(FailedAttempt).where(FailedAttempt.id.in_(latest_ids))).scalars()
    }
    result = []
    for fingerprint, count, first_seen, last_seen, latest_id in groups:
        sample = samples[int(latest_id)]
        result.append(
            FingerprintGroup(
                fingerprint=str(fingerprint),
                count=int(count),
                first_seen=_aware(first_seen),
                last_seen=_aware(last_seen),
                message=sample.message,
                exc_type=sample.exc_type,
                task_name=sample.task_name,
                category=sample.category,
                reason=sample.reason,
            )
        )
    return result


def _aware(value: Any) -> dt.datetime:
    """A min/max of a timestamp column as an aware UTC datetime (SQLite returns text, Postgres an aware one)."""
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        raise TypeError(f"expected a timestamp, got {type(value).__name__}")
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
