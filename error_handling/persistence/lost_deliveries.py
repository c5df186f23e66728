"""Lost deliveries (``fr_lost_deliveries``): deliveries of a task message that ended without an
outcome (the worker process died, or the whole worker stopped), numbered within their attempt."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence import sanitise
from error_handling.persistence.bulk import insert_ignoring_conflicts
from error_handling.persistence.models import TERMINAL_STATES, LostDelivery, TaskState
from error_handling.persistence.reports import TaskPayload
from error_handling.persistence.task_records import ensure_task

_LOST: sa.Table = LostDelivery.__table__  # type: ignore[assignment]

#: Said of a lost delivery nobody reported: the message simply came back.
UNREPORTED_LOSS = (
    "delivered again with no report from the worker that had it: the whole worker stopped (killed, "
    "crashed, restarted) before the task ended, or gave the message back unstarted"
)


@dataclasses.dataclass(frozen=True)
class LossReport:
    """What is known about a delivery that ended without an outcome (see
    :class:`~error_handling.persistence.models.LostDelivery`)."""

    cause: str
    worker: str | None = None
    pid: int | None = None
    signal: str | None = None
    exit_code: int | None = None
    memory_limit: str | None = None
    detail: str | None = None
    started_at: dt.datetime | None = None


def _lost_rows(session: Session, task_id: str, attempt: int) -> list[LostDelivery]:
    return list(
        session.execute(
            sa.select(LostDelivery)
            .where(LostDelivery.task_id == task_id, LostDelivery.attempt == attempt)
            .order_by(LostDelivery.delivery)
        ).scalars()
    )


def report_lost_delivery(
    session: Session, *, task_id: str, attempt: int, task_name: str | None, report: LossReport, now: dt.datetime
) -> int:
    """Record that a delivery of ``(task_id, attempt)`` ended without an outcome (the worker's main
    process saw its pool process die). Returns the delivery's number within the attempt."""
    task_id = sanitise.task_key(task_id)
    number = len(_lost_rows(session, task_id, attempt)) + 1
    _add_lost(session, task_id, attempt, number, task_name, report, now)
    return number


def _add_lost(
    session: Session,
    task_id: str,
    attempt: int,
    number: int,
    task_name: str | None,
    report: LossReport,
    now: dt.datetime,
) -> None:
    values = {"task_id": task_id, "attempt": attempt, "delivery": number, "task_name": task_name}
    insert_ignoring_conflicts(
        session, _LOST, sanitise.row(_LOST, {**values, **dataclasses.asdict(report), "lost_at": now})
    )


def reconcile_lost_deliveries(
    session: Session, *, task_id: str, attempt: int, payload: TaskPayload, at_least: int, now: dt.datetime
) -> list[LostDelivery]:
    """On a redelivery of ``(task_id, attempt)``: the deliveries before it that ended without an
    outcome, oldest first. ``at_least`` is how many the broker's count says there were; those nobody
    reported are added (cause ``redelivered``). When there are any, the task gets its record (with
    its payload, so it can be dead-lettered and replayed) and, unless it is terminal, is ``retrying``.
    """
    task_id = sanitise.task_key(task_id)
    rows = _lost_rows(session, task_id, attempt)
    if not rows and at_least <= 0:
        return rows
    task = ensure_task(session, task_id=task_id, payload=payload, now=now)
    unreported = LossReport(cause="redelivered", detail=UNREPORTED_LOSS)
    for number in range(len(rows) + 1, at_least + 1):
        _add_lost(session, task_id, attempt, number, payload.task_name, unreported, now)
    if task.state not in TERMINAL_STATES:
        task.state = TaskState.RETRYING
        task.updated_at = now
    return _lost_rows(session, task_id, attempt)
