"""Reads of the scheduled runs for monitoring: the backlog of due runs, and the tasks parked on each
resource."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import RunKind, RunStatus, ScheduledRun, aware_utc


def due_backlog(session: Session, *, now: dt.datetime) -> tuple[int, dt.datetime | None]:
    """How many scheduled runs are due but not yet published, and when the oldest of them was due."""
    due, oldest = session.execute(
        sa.select(sa.func.count(), sa.func.min(ScheduledRun.due_at)).where(
            ScheduledRun.status == RunStatus.PENDING, ScheduledRun.due_at <= now
        )
    ).one()
    return int(due), oldest


def resource_waits(session: Session) -> dict[str, tuple[int, dt.datetime]]:
    """Per resource with tasks parked on it now: how many, and when the longest-waiting was parked."""
    rows = session.execute(
        sa.select(ScheduledRun.resource, sa.func.count(), sa.func.min(ScheduledRun.created_at))
        .where(ScheduledRun.kind == RunKind.RESOURCE_WAIT, ScheduledRun.status == RunStatus.PENDING)
        .group_by(ScheduledRun.resource)
    )
    return {name: (int(count), aware_utc(oldest)) for name, count, oldest in rows if name is not None}
