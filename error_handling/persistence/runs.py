"""Scheduled runs (``fr_scheduled_runs``): delayed retries and resource waits as rows (invariant 3).

pending ──claim_due_runs──► dispatched ──claim_run──► running ──finish──► done
   │                            └── (never started, redispatch_after) ──► dispatched again
   └── wait past its deadline ──expire_wait──► expired (the task is dead-lettered)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.categories import Reason
from error_handling.persistence import compensation
from error_handling.persistence.bulk import insert_returning_ids
from error_handling.persistence.failure_rows import LETTERS, RUNS, letter_row
from error_handling.persistence.groups import count_dead_lettered
from error_handling.persistence.models import (
    TERMINAL_STATES,
    FailedAttempt,
    RunKind,
    RunStatus,
    ScheduledRun,
    TaskRecord,
    TaskState,
)
from error_handling.persistence.task_records import lock_task

#: The statuses of a run whose execution has not finished.
UNFINISHED_RUNS = (RunStatus.DISPATCHED, RunStatus.RUNNING, RunStatus.PENDING)


@dataclasses.dataclass(frozen=True)
class Dispatch:
    """A due run, ready to publish: the task's payload (still sealed) plus the run's identity."""

    run_id: int
    kind: RunKind
    task_id: str
    attempt: int
    token: str
    task_name: str
    args: Any
    kwargs: Any
    options: dict[str, Any]
    headers: dict[str, Any]
    root_id: str | None
    parent_id: str | None


def finish_runs(session: Session, run_ids: Sequence[int], now: dt.datetime) -> None:
    """Mark these runs done (those not finished yet): their execution ended."""
    if run_ids:
        session.execute(
            sa.update(RUNS)
            .where(RUNS.c.id.in_(run_ids), RUNS.c.status.in_(UNFINISHED_RUNS))
            .values(status=RunStatus.DONE, updated_at=now)
        )


def waiting_since(session: Session, task_id: str, resource: str | None) -> dt.datetime | None:
    """When the task started waiting on ``resource`` (its first wait's creation), or None."""
    return session.execute(
        sa.select(sa.func.min(ScheduledRun.created_at)).where(
            ScheduledRun.task_id == task_id,
            ScheduledRun.kind == RunKind.RESOURCE_WAIT,
            ScheduledRun.resource == resource,
        )
    ).scalar_one_or_none()


def claim_run(session: Session, *, run_id: int, token: str, now: dt.datetime) -> bool:
    """Claim a scheduled run for execution by the message carrying ``token``.

    The first message of a run to arrive claims it; a redelivery of that same message (a worker lost
    mid-run) may claim it again; any other copy (a duplicate dispatch) is refused, so each
    ``(task_id, attempt)`` runs once.
    """
    result = session.execute(
        sa.update(ScheduledRun)
        .where(
            ScheduledRun.id == run_id,
            sa.or_(
                ScheduledRun.status.in_([RunStatus.PENDING, RunStatus.DISPATCHED]),
                sa.and_(ScheduledRun.status == RunStatus.RUNNING, ScheduledRun.dispatch_token == token),
            ),
        )
        .values(status=RunStatus.RUNNING, dispatch_token=token, updated_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


def claim_due_runs(
    session: Session,
    *,
    now: dt.datetime,
    limit: int,
    redispatch_after: dt.timedelta,
) -> tuple[list[Dispatch], list[ScheduledRun]]:
    """Lock due runs (``FOR UPDATE SKIP LOCKED``) and mark them dispatched in the caller's transaction.

    Returns the runs to publish, and the resource waits that passed their deadline (to be
    dead-lettered with :func:`expire_wait`). A run dispatched more than ``redispatch_after`` ago whose
    message never started (lost with a broker restart) is due again; its copies are harmless because
    only one message per run may claim it.
    """
    due = sa.or_(
        sa.and_(ScheduledRun.status == RunStatus.PENDING, ScheduledRun.due_at <= now),
        sa.and_(ScheduledRun.status == RunStatus.DISPATCHED, ScheduledRun.dispatched_at <= now - redispatch_after),
    )
    runs = (
        session.execute(
            sa.select(ScheduledRun)
            .where(due)
            .order_by(ScheduledRun.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not runs:
        return [], []
    tasks = {
        t.task_id: t
        for t in session.execute(
            sa.select(TaskRecord).where(TaskRecord.task_id.in_({r.task_id for r in runs}))
        ).scalars()
    }
    dispatches: list[Dispatch] = []
    expired: list[ScheduledRun] = []
    for run in runs:
        task = tasks.get(run.task_id)
        if task is None or task.state in TERMINAL_STATES:
            run.status = RunStatus.CANCELLED
            run.updated_at = now
        elif run.kind is RunKind.RESOURCE_WAIT and run.deadline is not None and run.deadline <= now:
            expired.append(run)
        else:
            dispatches.append(_dispatch(run, task, now))
    return dispatches, expired


def _dispatch(run: ScheduledRun, task: TaskRecord, now: dt.datetime) -> Dispatch:
    """Mark ``run`` dispatched under a new token; return what to publish."""
    token = uuid.uuid4().hex
    run.status = RunStatus.DISPATCHED
    run.dispatch_token = token
    run.dispatch_count += 1
    run.dispatched_at = now
    run.updated_at = now
    return Dispatch(
        run_id=run.id,
        kind=run.kind,
        task_id=run.task_id,
        attempt=run.attempt,
        token=token,
        task_name=task.task_name,
        args=task.args,
        kwargs=task.kwargs,
        options=dict(task.options or {}),
        headers=dict(task.headers or {}),
        root_id=task.root_id,
        parent_id=task.parent_id,
    )


def postpone_run(session: Session, *, run_id: int, due_at: dt.datetime) -> None:
    """Set when a pending scheduled run is due (a wait on a gate: its deadline, until a monitor
    releases it earlier)."""
    session.execute(
        sa.update(ScheduledRun)
        .where(ScheduledRun.id == run_id, ScheduledRun.status == RunStatus.PENDING)
        .values(due_at=due_at)
    )


def expire_wait(session: Session, *, run: ScheduledRun, now: dt.datetime) -> int | None:
    """Dead-letter a task whose resource wait passed its deadline; its saga's recorded compensation
    steps become pending (the dispatcher's sweep publishes the compensation). Returns the dead letter's id."""
    task = lock_task(session, run.task_id)
    run.status = RunStatus.EXPIRED
    run.updated_at = now
    if task is None or task.state in TERMINAL_STATES:
        return None
    last = session.execute(
        sa.select(FailedAttempt)
        .where(FailedAttempt.task_id == run.task_id)
        .order_by(FailedAttempt.attempt.desc())
        .limit(1)
    ).scalar_one_or_none()
    task.state = TaskState.DEAD_LETTERED
    task.terminal_at = now
    task.updated_at = now
    fields = ("category", "reason", "exc_type", "message", "fingerprint")
    if last is not None:
        known = {name: getattr(last, name) for name in fields}
    else:  # no attempt recorded: what the task's record says of its last failure
        known = dict.fromkeys(fields) | {"category": task.last_category, "reason": task.last_reason}
    row = letter_row(
        task_id=task.task_id,
        task=task,
        reason=Reason.RESOURCE_WAIT_TIMEOUT.value,
        last=known,
        attempts=task.attempts,
        now=now,
    )
    letter_id = insert_returning_ids(session, LETTERS, [row])[task.task_id]
    if known["fingerprint"] is not None:
        count_dead_lettered(session, fingerprint=known["fingerprint"])
    compensation.mark_pending(session, saga_id=task.root_id or task.task_id, now=now)
    return letter_id
