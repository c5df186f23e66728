"""Counts over a window: failed attempts by category, reason, task and fingerprint (read mostly from
the roll-up), and what recovery did."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from error_handling.persistence import compensation
from error_handling.persistence.models import (
    CompensationStep,
    DeadLetterRecord,
    DecisionKind,
    FailedAttempt,
    ReplayRequestRecord,
    RunKind,
    RunStatus,
    ScheduledRun,
    StepStatus,
    TaskRecord,
    TaskState,
    aware_utc,
)
from error_handling.persistence.projection import copy_fields
from error_handling.persistence.reads.window_counts import WindowQuery, count_window

#: How many fingerprint groups and task names :func:`error_stats` returns, largest first.
DEFAULT_TOP: Final = 10


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
    (:func:`~error_handling.persistence.reads.window.plan_window`), so the cost grows with the number of distinct kinds of error in the window,
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
    for task_name, category, reason, fingerprint, count in count_kinds(session, since, until):
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


def count_kinds(session: Session, since: dt.datetime, until: dt.datetime) -> list[tuple[str, str, str, str, int]]:
    """How many attempts of each kind (task, category, reason, fingerprint) failed in ``[since, until)``;
    see :func:`~error_handling.persistence.reads.window_counts.count_window` for where each part is read."""
    query = WindowQuery(since=since, until=until, keys=("task_name", "category", "reason", "fingerprint"))
    return [(t, c, r, f, n) for _, (t, c, r, f), n in count_window(session, query)]


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
        group = copy_fields(
            FingerprintGroup,
            sample,
            fingerprint=fingerprint,
            count=count,
            first_seen=aware_utc(first_seen),
            last_seen=sample.failed_at,
        )
        result.append(group)
    return result


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

    def count(model: Any, column: Any, *conditions: Any) -> int:
        query = sa.select(sa.func.count()).select_from(model).where(column >= since, column < until, *conditions)
        return int(session.execute(query).scalar_one())

    def count_by(key: Any, column: Any) -> dict[Any, int]:
        query = sa.select(key, sa.func.count()).where(column >= since, column < until).group_by(key)
        return {value: int(n) for value, n in session.execute(query).all()}

    decisions = count_by(FailedAttempt.decision, FailedAttempt.failed_at)
    step_outcomes = count_by(CompensationStep.status, CompensationStep.finished_at)
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
