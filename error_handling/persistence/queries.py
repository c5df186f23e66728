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
from collections import Counter
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from error_handling.persistence import compensation, sanitise
from error_handling.persistence.models import (
    CompensationStep,
    DeadLetterRecord,
    ErrorCount,
    FailedAttempt,
    FallbackEvent,
    LostDelivery,
    ReplayRequestRecord,
    ScheduledRun,
    TaskRecord,
    TaskState,
)
from error_handling.persistence.repository import day_of, hour_of

__all__ = [
    "DEFAULT_TOP",
    "SUMMARY_COLUMNS",
    "AttemptPage",
    "ErrorStats",
    "FallbackSummary",
    "FingerprintGroup",
    "Keyset",
    "RecoveryStats",
    "ReplayLink",
    "ServiceHealthSummary",
    "TaskHistory",
    "WindowPlan",
    "error_stats",
    "escape_like",
    "fallback_summary",
    "get_attempt",
    "list_attempts",
    "plan_window",
    "recovery_stats",
    "service_health",
    "task_history",
]

#: The position of a row in newest-first order: its ``failed_at`` and its id.
Keyset = tuple[dt.datetime, int]

#: How many fingerprint groups and task names :func:`error_stats` returns, largest first.
DEFAULT_TOP: Final = 10

#: The columns of a failed attempt in a list: all of them but the traceback.
SUMMARY_COLUMNS: Final = tuple(c for c in FailedAttempt.__table__.c if c.name != "traceback")

#: The escape character of :func:`escape_like` patterns.
LIKE_ESCAPE: Final = "\\"


@dataclasses.dataclass(frozen=True)
class AttemptPage:
    """One page of failed attempts, newest first.

    Attributes:
        items: at most ``limit`` attempts: rows with every column of ``fr_failed_attempts`` but the
            traceback (:data:`SUMMARY_COLUMNS`), read by attribute like the model.
        next_keyset: where the next page starts, or None when this page is the last.
    """

    items: list[sa.Row[Any]]
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

    The rows are plain column tuples without the traceback (cheaper than models by half for a page of
    500); :func:`get_attempt` has the whole attempt.

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
    query = sa.select(*SUMMARY_COLUMNS)
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
    rows = list(session.execute(query).all())
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
        compensation: the compensation steps it recorded, in order, with their outcomes.
        fallbacks: its calls of fallback chains not answered by the first provider, oldest first.
        lost_deliveries: deliveries that ended without an outcome (its worker process died), in order.
    """

    task_id: str
    task: TaskRecord | None
    attempts: list[FailedAttempt]
    runs: list[ScheduledRun]
    dead_letter: DeadLetterRecord | None
    replay_of: DeadLetterRecord | None
    replays: list[ReplayLink]
    compensation: list[CompensationStep] = dataclasses.field(default_factory=list)
    fallbacks: list[FallbackEvent] = dataclasses.field(default_factory=list)
    lost_deliveries: list[LostDelivery] = dataclasses.field(default_factory=list)

    @property
    def executions(self) -> int:
        """How many deliveries ran the task, as recorded: the lost ones, the failed attempts that ran
        (not a ``worker_lost`` verdict given instead of running it), and the success that ended it."""
        ran = sum(1 for attempt in self.attempts if attempt.started_at is not None)
        succeeded = self.task is not None and self.task.state is TaskState.SUCCEEDED
        return len(self.lost_deliveries) + ran + (1 if succeeded else 0)


def _lost(session: Session, task_id: str) -> list[LostDelivery]:
    return list(
        session.execute(
            sa.select(LostDelivery)
            .where(LostDelivery.task_id == task_id)
            .order_by(LostDelivery.attempt, LostDelivery.delivery)
        ).scalars()
    )


def _fallbacks(session: Session, task_id: str) -> list[FallbackEvent]:
    return list(
        session.execute(
            sa.select(FallbackEvent).where(FallbackEvent.task_id == task_id).order_by(FallbackEvent.id)
        ).scalars()
    )


def task_history(session: Session, *, task_id: str) -> TaskHistory | None:
    """Return the history of a task, or None when nothing is recorded about it.

    A task that never failed has no record; if it is the replay of a dead letter (a replay request
    names it), or it was served by a fallback, its history is that alone. A task id too long to be
    stored as it is is looked up by its key (:func:`~error_handling.persistence.sanitise.task_key`).
    """
    task_id = sanitise.task_key(task_id)
    task = session.get(TaskRecord, task_id)
    if task is None:
        fallbacks = _fallbacks(session, task_id)
        origin = (
            session.execute(
                sa.select(DeadLetterRecord)
                .join(ReplayRequestRecord, ReplayRequestRecord.dead_letter_id == DeadLetterRecord.id)
                .where(ReplayRequestRecord.task_id == task_id)
            ).scalar_one_or_none()
            or session.execute(
                sa.select(DeadLetterRecord).where(DeadLetterRecord.replayed_task_id == task_id).limit(1)
            ).scalar_one_or_none()
        )
        if origin is None and not fallbacks:
            return None
        return TaskHistory(
            task_id=task_id,
            task=None,
            attempts=[],
            runs=[],
            dead_letter=None,
            replay_of=origin,
            replays=[],
            fallbacks=fallbacks,
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
        compensation=list(compensation.task_steps(session, task_id=task_id)),
        fallbacks=_fallbacks(session, task_id),
        lost_deliveries=_lost(session, task_id),
    )


def _replays(session: Session, letter: DeadLetterRecord) -> list[ReplayLink]:
    """Every task published as a replay of ``letter``, oldest first: those recorded as replay requests
    (each replay, forced ones included), and any task that says it replays the letter."""
    requested = session.execute(
        sa.select(ReplayRequestRecord.task_id, ReplayRequestRecord.created_at)
        .where(ReplayRequestRecord.dead_letter_id == letter.id)
        .order_by(ReplayRequestRecord.created_at, ReplayRequestRecord.id)
    ).all()
    tasks = {
        t.task_id: t
        for t in session.execute(
            sa.select(TaskRecord).where(
                sa.or_(
                    TaskRecord.replay_of == letter.id,
                    TaskRecord.task_id.in_([task_id for task_id, _ in requested]),
                )
            )
        ).scalars()
    }
    order = [task_id for task_id, _ in requested]
    order += sorted((t for t in tasks if t not in set(order)), key=lambda t: tasks[t].created_at)
    if letter.replayed_task_id is not None and letter.replayed_task_id not in order:
        order.append(letter.replayed_task_id)
    return [ReplayLink(task_id=task_id, task=tasks.get(task_id)) for task_id in order]


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

    Whole days of the window are read from the daily roll-up (``fr_error_counts``), the other whole
    hours from the hourly one, and only the partial hours at its two ends from the attempts themselves
    (:func:`plan_window`), so the cost grows with the number of distinct kinds of error in the window,
    not with the number of attempts.

    Raises:
        ValueError: if ``top`` is less than 1.
    """
    if top < 1:
        raise ValueError("top must be at least 1")
    until = until or dt.datetime.now(dt.UTC)
    if session.get_bind().dialect.name == "postgresql":
        # The queries read a few thousand rows: starting parallel workers costs more than it saves.
        session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))
    by_category: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    by_task: Counter[str] = Counter()
    by_fingerprint: Counter[str] = Counter()
    for task_name, category, reason, fingerprint, count in _kinds(session, since, until):
        by_category[category] += int(count)
        by_reason[reason] += int(count)
        by_task[task_name] += int(count)
        by_fingerprint[fingerprint] += int(count)
    largest = _largest_first(by_fingerprint, top)
    return ErrorStats(
        since=since,
        until=until,
        total=sum(by_category.values()),
        by_category=_largest_first(by_category),
        by_reason=_largest_first(by_reason),
        by_task=_largest_first(by_task, top),
        top_fingerprints=_fingerprint_groups(session, largest, since=since, until=until),
    )


def _largest_first(counts: Counter[str], limit: int | None = None) -> dict[str, int]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ordered[:limit] if limit is not None else ordered)


#: A half-open time range ``[start, end)``.
Span = tuple[dt.datetime, dt.datetime]


#: Past this many whole hours of one day, the day's row minus the other hours is read instead (fewer rows).
_HOURS_BEFORE_DAY: Final = 12


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """How :func:`error_stats` reads a window: ranges whose signed sum is exactly the window.

    ``attempts + hours + days - minus_hours`` covers each instant of the window once and nothing else.

    Attributes:
        attempts: the partial hours at the two ends, counted from the attempts themselves.
        hours: whole hours, read from the hourly roll-up rows.
        days: whole days, read from the daily roll-up rows.
        minus_hours: whole hours of those days that are outside the window, subtracted (hourly rows).
    """

    attempts: list[Span]
    hours: list[Span]
    days: list[Span]
    minus_hours: list[Span] = dataclasses.field(default_factory=list)


def plan_window(since: dt.datetime, until: dt.datetime) -> WindowPlan:
    """Split ``[since, until)`` into partial hours, whole hours and whole days (UTC).

    A day of which the window holds more than :data:`_HOURS_BEFORE_DAY` whole hours is read as the
    day minus the hours it lacks. Empty ranges are left out.
    """
    if since >= until:
        return WindowPlan([], [], [])
    first_hour, last_hour = _ceil_hour(since), hour_of(until)
    if first_hour >= last_hour:
        return WindowPlan([(since, until)], [], [])
    plan = WindowPlan(_nonempty([(since, first_hour), (last_hour, until)]), [], [], [])
    one_day = dt.timedelta(days=1)
    start = first_hour
    while start < last_hour:  # one segment per day touched, each within that day
        day = day_of(start)
        end = min(day + one_day, last_hour)
        if end - start == one_day:
            _extend(plan.days, (day, end))
        elif end - start > dt.timedelta(hours=_HOURS_BEFORE_DAY):
            _extend(plan.days, (day, day + one_day))
            plan.minus_hours.extend(_nonempty([(day, start), (end, day + one_day)]))
        else:
            plan.hours.append((start, end))
        start = end
    return plan


def _extend(spans: list[Span], span: Span) -> None:
    """Append ``span``, merged into the last one when they touch."""
    if spans and spans[-1][1] == span[0]:
        spans[-1] = (spans[-1][0], span[1])
    else:
        spans.append(span)


def _ceil_hour(moment: dt.datetime) -> dt.datetime:
    start = hour_of(moment)
    return start if start == moment else start + dt.timedelta(hours=1)


def _ceil_day(moment: dt.datetime) -> dt.datetime:
    start = day_of(moment)
    return start if start == moment else start + dt.timedelta(days=1)


def _nonempty(spans: list[Span]) -> list[Span]:
    return [(a, b) for a, b in spans if a < b]


def _kinds(session: Session, since: dt.datetime, until: dt.datetime) -> list[tuple[str, str, str, str, int]]:
    """How many attempts of each kind (task, category, reason, fingerprint) failed in ``[since, until)``;
    see :func:`plan_window` for where each part is read."""
    plan = plan_window(since, until)
    parts: list[Any] = []
    for sign, rolled in (
        (1, [("hour", span) for span in plan.hours] + [("day", span) for span in plan.days]),
        (-1, [("hour", span) for span in plan.minus_hours]),
    ):
        if rolled:
            parts.append(
                sa.select(
                    ErrorCount.task_name,
                    ErrorCount.category,
                    ErrorCount.reason,
                    ErrorCount.fingerprint,
                    (ErrorCount.count * sign).label("n"),
                ).where(
                    sa.or_(
                        *(
                            sa.and_(ErrorCount.period == period, ErrorCount.bucket >= a, ErrorCount.bucket < b)
                            for period, (a, b) in rolled
                        )
                    )
                )
            )
    if plan.attempts:
        keys = (FailedAttempt.task_name, FailedAttempt.category, FailedAttempt.reason, FailedAttempt.fingerprint)
        parts.append(
            sa.select(
                *keys,
                sa.func.count().label("n"),
            )
            .where(
                sa.or_(*(sa.and_(FailedAttempt.failed_at >= a, FailedAttempt.failed_at < b) for a, b in plan.attempts))
            )
            .group_by(*keys)
        )
    if not parts:
        return []
    both = sa.union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    kind = (both.c.task_name, both.c.category, both.c.reason, both.c.fingerprint)
    rows = session.execute(sa.select(*kind, sa.func.sum(both.c.n)).group_by(*kind))
    return [(str(t), str(c), str(r), str(f), int(n)) for t, c, r, f, n in rows if n]


def _fingerprint_groups(
    session: Session, counts: dict[str, int], *, since: dt.datetime, until: dt.datetime
) -> list[FingerprintGroup]:
    """The groups of these fingerprints in ``[since, until)``: each one's first occurrence and latest
    attempt are found by the ``(fingerprint, failed_at)`` index (a min or a max is one index probe),
    all groups in one query."""
    if not counts:
        return []

    # One row per fingerprint (a UNION of literals: cheap to plan, and SQLite has no named VALUES), and
    # per row two correlated lookups planned once: the first attempt, and the latest one.
    wanted = sa.union_all(*(sa.select(sa.literal(fp, sa.String(32)).label("fp")) for fp in counts)).subquery("v")
    inner = aliased(FailedAttempt)  # the latest instant's lookup, inside the lookup of its attempts
    first = sa.select(sa.func.min(FailedAttempt.failed_at)).where(
        FailedAttempt.fingerprint == wanted.c.fp, FailedAttempt.failed_at >= since, FailedAttempt.failed_at < until
    )
    last = sa.select(sa.func.max(inner.failed_at)).where(
        inner.fingerprint == wanted.c.fp, inner.failed_at >= since, inner.failed_at < until
    )
    newest = sa.select(sa.func.max(FailedAttempt.id)).where(  # the last recorded among that instant's
        FailedAttempt.fingerprint == wanted.c.fp, FailedAttempt.failed_at == last.correlate(wanted).scalar_subquery()
    )
    found = {
        str(fp): (first_seen, int(latest) if latest is not None else None)
        for fp, first_seen, latest in session.execute(
            sa.select(wanted.c.fp, first.scalar_subquery(), newest.scalar_subquery())
        )
    }
    firsts = [found.get(fp, (None, None))[0] for fp in counts]
    latest_ids = [found.get(fp, (None, None))[1] for fp in counts]
    samples = {
        row.id: row
        for row in session.execute(
            sa.select(FailedAttempt).where(FailedAttempt.id.in_([i for i in latest_ids if i is not None]))
        ).scalars()
    }
    result = []
    for (fingerprint, count), first_seen, latest_id in zip(counts.items(), firsts, latest_ids, strict=True):
        sample = samples.get(latest_id) if latest_id is not None else None
        if sample is None or first_seen is None:
            continue  # counted, but its attempts were deleted since
        result.append(
            FingerprintGroup(
                fingerprint=fingerprint,
                count=count,
                first_seen=_aware(first_seen),
                last_seen=sample.failed_at,
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


@dataclasses.dataclass(frozen=True)
class RecoveryStats:
    """What recovery did in the window ``[since, until)``.

    Attributes:
        retries_scheduled: failed attempts whose decision was a retry.
        retries_succeeded: tasks that failed before and then succeeded.
        waits_started: failed attempts whose decision was a resource wait.
        waits_released: resource waits published again (released or re-checked).
        waits_timed_out: dead letters of tasks whose wait passed its deadline.
        failed_fast: tasks that failed validation (terminal).
        dead_lettered: dead letters created.
        replays: dead letters replayed (of which ``forced_replays`` replayed again).
        compensations_run: compensation steps undone.
        compensations_failed: compensation steps whose undo failed for good.
        compensations_open: compensation steps waiting for their undo now (any age).
    """

    since: dt.datetime
    until: dt.datetime
    retries_scheduled: int
    retries_succeeded: int
    waits_started: int
    waits_released: int
    waits_timed_out: int
    failed_fast: int
    dead_lettered: int
    replays: int
    forced_replays: int
    compensations_run: int
    compensations_failed: int
    compensations_open: int


def recovery_stats(session: Session, *, since: dt.datetime, until: dt.datetime) -> RecoveryStats:
    """Count what recovery did in ``[since, until)`` (see :class:`RecoveryStats`)."""
    from error_handling.persistence.models import (
        DecisionKind,
        ReplayRequestRecord,
        RunKind,
        RunStatus,
        StepStatus,
        TaskState,
    )

    def count(model: Any, column: Any, *conditions: Any) -> int:
        query = sa.select(sa.func.count()).select_from(model).where(column >= since, column < until, *conditions)
        return int(session.execute(query).scalar_one())

    decisions = dict(
        session.execute(
            sa.select(FailedAttempt.decision, sa.func.count())
            .where(FailedAttempt.failed_at >= since, FailedAttempt.failed_at < until)
            .group_by(FailedAttempt.decision)
        ).all()
    )
    step_outcomes = dict(
        session.execute(
            sa.select(CompensationStep.status, sa.func.count())
            .where(CompensationStep.finished_at >= since, CompensationStep.finished_at < until)
            .group_by(CompensationStep.status)
        ).all()
    )
    return RecoveryStats(
        since=since,
        until=until,
        retries_scheduled=int(decisions.get(DecisionKind.RETRY, 0)),
        retries_succeeded=count(TaskRecord, TaskRecord.terminal_at, TaskRecord.state == TaskState.SUCCEEDED),
        waits_started=int(decisions.get(DecisionKind.WAIT, 0)),
        waits_released=count(
            ScheduledRun,
            ScheduledRun.updated_at,
            ScheduledRun.kind == RunKind.RESOURCE_WAIT,
            ScheduledRun.status.in_([RunStatus.DISPATCHED, RunStatus.RUNNING, RunStatus.DONE]),
        ),
        waits_timed_out=count(
            DeadLetterRecord, DeadLetterRecord.created_at, DeadLetterRecord.reason == "resource_wait_timeout"
        ),
        failed_fast=count(TaskRecord, TaskRecord.terminal_at, TaskRecord.state == TaskState.FAILED_FAST),
        dead_lettered=count(DeadLetterRecord, DeadLetterRecord.created_at),
        replays=count(ReplayRequestRecord, ReplayRequestRecord.created_at),
        forced_replays=count(ReplayRequestRecord, ReplayRequestRecord.created_at, ReplayRequestRecord.forced),
        compensations_run=int(step_outcomes.get(StepStatus.COMPENSATED, 0)),
        compensations_failed=int(step_outcomes.get(StepStatus.COMPENSATION_FAILED, 0)),
        compensations_open=int(
            session.execute(
                sa.select(sa.func.count())
                .select_from(CompensationStep)
                .where(CompensationStep.status.in_(compensation.OPEN_STATUSES))
            ).scalar_one()
        ),
    )


@dataclasses.dataclass(frozen=True)
class ServiceHealthSummary:
    """How one service's calls went in a window, across every process.

    Attributes:
        success_rate: successful calls / calls (None without calls).
        p50_ms, p95_ms, p99_ms: latency percentiles, as the upper bound of their histogram bucket.
        errors_by_reason: failed calls kept in the window, by reason.
        last_error: the latest failed call: (reason, redacted message, when).
    """

    service: str
    calls: int
    failures: int
    success_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors_by_reason: dict[str, int]
    last_error: tuple[str, str, dt.datetime] | None


def _percentile(histogram: Counter[int], total: int, q: float) -> float | None:
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for bound in sorted(histogram):
        seen += histogram[bound]
        if seen >= rank:
            return float(bound)
    return float(max(histogram))


def service_health(session: Session, *, since: dt.datetime) -> list[ServiceHealthSummary]:
    """Every service called since ``since``: counts, success rate, latency percentiles, errors."""
    from error_handling.persistence.models import ServiceError, ServiceHealth

    merged: dict[str, list[Any]] = {}
    for row in session.execute(sa.select(ServiceHealth).where(ServiceHealth.minute >= since)).scalars():
        entry = merged.setdefault(row.service, [0, 0, Counter()])
        entry[0] += row.calls
        entry[1] += row.failures
        for bound, count in (row.latency_histogram or {}).items():
            entry[2][int(bound)] += int(count)
    reasons: dict[str, Counter[str]] = {}
    latest: dict[str, tuple[str, str, dt.datetime]] = {}
    for error in session.execute(
        sa.select(ServiceError).where(ServiceError.at >= since).order_by(ServiceError.at, ServiceError.id)
    ).scalars():
        reasons.setdefault(error.service, Counter())[error.reason] += 1
        latest[error.service] = (error.reason, error.message, error.at)
    result = []
    for service in sorted(set(merged) | set(reasons)):
        calls, failures, histogram = merged.get(service, [0, 0, Counter()])
        result.append(
            ServiceHealthSummary(
                service=service,
                calls=calls,
                failures=failures,
                success_rate=(calls - failures) / calls if calls else None,
                p50_ms=_percentile(histogram, calls, 0.50),
                p95_ms=_percentile(histogram, calls, 0.95),
                p99_ms=_percentile(histogram, calls, 0.99),
                errors_by_reason=dict(reasons.get(service, Counter())),
                last_error=latest.get(service),
            )
        )
    return result


@dataclasses.dataclass(frozen=True)
class FallbackSummary:
    """How one logical service's fallback chain served calls in a window.

    Attributes:
        served_by: calls answered by a later provider, by provider.
        degraded: calls answered by the degraded result.
        passed_over: providers passed over, by provider and reason (``{"openai": {"rate_limited": 3}}``).
        last_at: the latest such call.
    """

    service: str
    served_by: dict[str, int]
    degraded: int
    passed_over: dict[str, dict[str, int]]
    last_at: dt.datetime


def fallback_summary(session: Session, *, since: dt.datetime) -> list[FallbackSummary]:
    """Every logical service whose chain was not answered by its first provider since ``since``."""
    served: dict[str, Counter[str]] = {}
    degraded: Counter[str] = Counter()
    passed: dict[str, dict[str, Counter[str]]] = {}
    last: dict[str, dt.datetime] = {}
    rows = session.execute(
        sa.select(FallbackEvent.service, FallbackEvent.provider, FallbackEvent.passed_over, FallbackEvent.at)
        .where(FallbackEvent.at >= since)
        .order_by(FallbackEvent.at)
    )
    for service, provider, passed_over, at in rows:
        served.setdefault(service, Counter())
        if provider is None:
            degraded[service] += 1
        else:
            served[service][provider] += 1
        for item in passed_over or []:
            passed.setdefault(service, {}).setdefault(item["provider"], Counter())[item["reason"]] += 1
        last[service] = at
    return [
        FallbackSummary(
            service=service,
            served_by=dict(served[service]),
            degraded=degraded[service],
            passed_over={name: dict(reasons) for name, reasons in passed.get(service, {}).items()},
            last_at=last[service],
        )
        for service in sorted(served)
    ]
