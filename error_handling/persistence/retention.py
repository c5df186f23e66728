"""Retention: delete what is older than its configured age, in short batches, and purge the sealed
secrets of dead letters that were replayed or discarded a grace period ago.

Keyword-only functions called inside the caller's transaction, one batch per transaction. A batch
selects at most ``limit`` rows by their key with ``FOR UPDATE SKIP LOCKED`` and deletes those, so the
tables are never locked for long and several dispatchers running retention at once take different
rows (SQLite has one writer at a time anyway). What a live task or an open dead letter still needs is
never deleted (:data:`RULES`):

- failed attempts and lost deliveries of a task that is not terminal (``retrying``, ``waiting``: its
  retry budget and its poison-message count read them), and of a task whose dead letter is still
  ``pending`` (the operator deciding about it reads its history), are kept whatever their age;
- the latest transition of each circuit breaker is kept (the breakers' view shows it);
- roll-up rows, service minutes and errors, and fallback events are deleted by age alone;
- of the success counts (``fr_task_counts``) only the minute rows are deleted: hour and day rows are
  kept, so the counts of whole hours and days never go backwards.

Purging (:func:`purge_batch`) replaces every sealed value of a dead letter, and of its task's record,
with ``[REDACTED]`` and sets ``purged_at``: the letter can no longer be replayed
(:class:`~error_handling.persistence.dead_letters.PayloadPurged`). Only ``replayed`` and ``discarded``
letters are purged; a ``pending`` one keeps its secrets until an operator decides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from error_handling.persistence.models import (
    CircuitBreakerEvent,
    DeadLetterRecord,
    DeadLetterStatus,
    ErrorCount,
    FailedAttempt,
    FallbackEvent,
    LostDelivery,
    RetentionRun,
    ServiceError,
    ServiceHealth,
    TaskCount,
    TaskRecord,
    TaskState,
)
from error_handling.persistence.rollup import Period
from error_handling.sealing import purge_secrets

__all__ = [
    "PURGED",
    "RULES",
    "RUNS_KEPT_DAYS",
    "Rule",
    "delete_batch",
    "finish_run",
    "last_finished_run",
    "last_started_run",
    "purge_batch",
    "start_run",
    "update_run",
]

#: The name :class:`RetentionRun` counts purged dead letters under, in what a run reports.
PURGED = "purged_dead_letters"
#: Runs of the retention role are themselves kept this long (days).
RUNS_KEPT_DAYS = 30.0


@dataclasses.dataclass(frozen=True)
class Rule:
    """How one table is trimmed.

    Attributes:
        table: the table.
        setting: the setting that gives its age in days (None: a fixed age, ``days``).
        age: the column compared with the cutoff.
        keep: rows to keep whatever their age (a condition on the table), or None.
        days: the fixed age, for a rule without a setting.
    """

    table: sa.Table
    setting: str | None
    age: sa.Column[Any]
    keep: Callable[[], sa.ColumnElement[bool]] | None = None
    days: float | None = None

    @property
    def name(self) -> str:
        """The table's name."""
        return self.table.name

    def key(self) -> tuple[sa.Column[Any], ...]:
        """The table's primary key."""
        return tuple(self.table.primary_key.columns)


def _still_needed(task_id: sa.Column[Any]) -> sa.ColumnElement[bool]:
    """The task is not terminal yet, or its dead letter is still pending."""
    live = sa.exists().where(
        TaskRecord.task_id == task_id, TaskRecord.state.in_([TaskState.RETRYING, TaskState.WAITING])
    )
    open_letter = sa.exists().where(
        DeadLetterRecord.task_id == task_id, DeadLetterRecord.status == DeadLetterStatus.PENDING
    )
    return sa.or_(live, open_letter)


def _latest_of_its_service() -> sa.ColumnElement[bool]:
    """No later transition of the same breaker exists: it is the one its view shows."""
    later = aliased(CircuitBreakerEvent)
    events = CircuitBreakerEvent.__table__.c
    return ~sa.exists().where(
        later.service == events.service,
        sa.or_(later.at > events.at, sa.and_(later.at == events.at, later.id > events.id)),
    )


def _t(model: Any) -> sa.Table:
    table: sa.Table = model.__table__
    return table


#: Every table retention trims, in the order a run visits them.
RULES: tuple[Rule, ...] = (
    Rule(
        _t(FailedAttempt),
        "retention_attempts_days",
        _t(FailedAttempt).c.failed_at,
        keep=lambda: _still_needed(_t(FailedAttempt).c.task_id),
    ),
    Rule(_t(ErrorCount), "retention_counts_days", _t(ErrorCount).c.bucket),
    Rule(
        _t(TaskCount),
        "retention_success_minutes_days",
        _t(TaskCount).c.bucket,
        keep=lambda: _t(TaskCount).c.period != Period.MINUTE.value,
    ),
    Rule(
        _t(CircuitBreakerEvent),
        "retention_breaker_events_days",
        _t(CircuitBreakerEvent).c.at,
        keep=_latest_of_its_service,
    ),
    Rule(_t(ServiceHealth), "retention_service_days", _t(ServiceHealth).c.minute),
    Rule(_t(ServiceError), "retention_service_days", _t(ServiceError).c.at),
    Rule(_t(FallbackEvent), "retention_service_days", _t(FallbackEvent).c.at),
    Rule(
        _t(LostDelivery),
        "retention_lost_deliveries_days",
        _t(LostDelivery).c.lost_at,
        keep=lambda: _still_needed(_t(LostDelivery).c.task_id),
    ),
    Rule(_t(RetentionRun), None, _t(RetentionRun).c.started_at, days=RUNS_KEPT_DAYS),
)


def delete_batch(session: Session, *, rule: Rule, cutoff: dt.datetime, limit: int) -> int:
    """Delete up to ``limit`` rows of ``rule``'s table older than ``cutoff`` (and not kept by the
    rule); rows another transaction holds are skipped. Returns how many were deleted."""
    key = rule.key()
    where = [rule.age < cutoff]
    if rule.keep is not None:
        where.append(~rule.keep())
    # correlate(None): the rows are chosen from the table itself, not from the DELETE's target
    chosen = sa.select(*key).where(*where).limit(limit).with_for_update(skip_locked=True).correlate(None)
    target = key[0] if len(key) == 1 else sa.tuple_(*key)
    result = session.execute(
        sa.delete(rule.table).where(target.in_(chosen)).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def purge_batch(session: Session, *, replayed_before: dt.datetime, limit: int, now: dt.datetime) -> int:
    """Purge the sealed secrets of up to ``limit`` dead letters replayed or discarded before
    ``replayed_before`` and not purged yet, and of their tasks' records. Returns how many letters."""
    letters = session.execute(
        sa.select(DeadLetterRecord)
        .where(
            DeadLetterRecord.purged_at.is_(None),
            sa.or_(
                sa.and_(
                    DeadLetterRecord.status == DeadLetterStatus.REPLAYED,
                    DeadLetterRecord.replayed_at < replayed_before,
                ),
                sa.and_(
                    DeadLetterRecord.status == DeadLetterStatus.DISCARDED,
                    DeadLetterRecord.discarded_at < replayed_before,
                ),
            ),
        )
        .order_by(DeadLetterRecord.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).scalars()
    count = 0
    for letter in letters:
        letter.args = purge_secrets(letter.args)
        letter.kwargs = purge_secrets(letter.kwargs)
        letter.headers = purge_secrets(letter.headers)
        letter.purged_at = now
        letter.updated_at = now
        task = session.get(TaskRecord, letter.task_id, with_for_update={"skip_locked": True})
        if task is not None and task.state.terminal:
            task.args = purge_secrets(task.args)
            task.kwargs = purge_secrets(task.kwargs)
            task.headers = purge_secrets(task.headers)
        count += 1
    session.flush()
    return count


def start_run(session: Session, *, runner: str, now: dt.datetime) -> int:
    """Record that ``runner`` starts a retention run; return the run's id."""
    run = RetentionRun(runner=runner, started_at=now, finished_at=None, deleted={}, purged=0)
    session.add(run)
    session.flush()
    return run.id


def update_run(session: Session, *, run_id: int, deleted: dict[str, int], purged: int) -> None:
    """Record a run's totals so far."""
    session.execute(
        sa.update(RetentionRun).where(RetentionRun.id == run_id).values(deleted=dict(deleted), purged=purged)
    )


def finish_run(session: Session, *, run_id: int, deleted: dict[str, int], purged: int, now: dt.datetime) -> None:
    """Record a run's totals and its end."""
    session.execute(
        sa.update(RetentionRun)
        .where(RetentionRun.id == run_id)
        .values(deleted=dict(deleted), purged=purged, finished_at=now)
    )


def last_started_run(session: Session) -> RetentionRun | None:
    """The latest run started by any dispatcher, finished or not."""
    return session.execute(
        sa.select(RetentionRun).order_by(RetentionRun.started_at.desc(), RetentionRun.id.desc()).limit(1)
    ).scalar_one_or_none()


def last_finished_run(session: Session) -> RetentionRun | None:
    """The latest run that finished."""
    return session.execute(
        sa.select(RetentionRun)
        .where(RetentionRun.finished_at.is_not(None))
        .order_by(RetentionRun.finished_at.desc(), RetentionRun.id.desc())
        .limit(1)
    ).scalar_one_or_none()
