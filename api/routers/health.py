"""``GET /api/v1/errors/health``: is the system of record reachable, and how big is the backlog."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from fastapi import APIRouter, Request
from pydantic import BaseModel

from error_handling.persistence.db import UNAVAILABLE_ERRORS, make_engine
from error_handling.persistence.models import RunStatus, ScheduledRun, utcnow

router = APIRouter(tags=["health"])

#: A database that is down, or not migrated yet, is reported as unhealthy rather than raised.
_UNHEALTHY: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, sa.exc.ProgrammingError)


class HealthPublic(BaseModel):
    """Health of the error-handling system."""

    status: str
    database: bool
    due_runs: int | None = None
    checked_at: dt.datetime


@router.get("/health", response_model=HealthPublic)
def health(request: Request) -> HealthPublic:
    """Report whether the database answers and how many scheduled runs are due but not yet published."""
    settings = request.app.state.settings
    engine = getattr(request.app.state, "engine", None)
    if engine is None:
        engine = request.app.state.engine = make_engine(settings.effective_database_url)
    now = utcnow()
    try:
        with engine.connect() as conn:
            due = conn.execute(
                sa.select(sa.func.count())
                .select_from(ScheduledRun)
                .where(ScheduledRun.status == RunStatus.PENDING, ScheduledRun.due_at <= now)
            ).scalar_one()
    except _UNHEALTHY:
        return HealthPublic(status="unavailable", database=False, checked_at=now)
    return HealthPublic(status="ok", database=True, due_runs=int(due), checked_at=now)
