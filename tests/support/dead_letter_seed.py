"""Seeding dead letters the way a worker makes them: a permanent failure through ``record_failure``."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from error_handling.categories import Category
from error_handling.classification import Classification
from error_handling.persistence import failure_recording, reports
from error_handling.persistence.db import transaction
from error_handling.policy import RecoveryPolicy
from error_handling.redaction import Redactor
from error_handling.sealing import Sealer, seal_secrets


def seed_dead_letter(
    sessions: sessionmaker[Session],
    task_id: str,
    *,
    sealer: Sealer,
    at: dt.datetime,
    task_name: str = "app.charge",
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    headers: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
    queue: str | None = "celery",
    reason: str = "auth_failed",
    message: str = "credentials revoked",
    fingerprint: str = "a" * 16,
    replayable: bool = True,
) -> int:
    """Record one permanent failure of ``task_id`` (its payload sealed); return the dead letter's id."""
    redactor = Redactor()

    def seal(value: Any) -> Any:
        return seal_secrets(value, redactor=redactor, sealer=sealer)

    payload = reports.TaskPayload(
        task_name=task_name,
        args=seal(args or []),
        kwargs=seal(kwargs or {}),
        options=options if options is not None else {"routing_key": queue or "celery"},
        headers=seal(headers or {}),
        queue=queue,
        replayable=replayable,
    )
    classification = Classification(
        category=Category.PERMANENT,
        reason=reason,
        fingerprint=fingerprint,
        message=message,
        exc_type="error_handling.exceptions.PermanentError",
    )
    report = reports.FailureReport(
        task_id=task_id,
        attempt=1,
        payload=payload,
        classification=classification,
        traceback="Traceback: PermanentError",
        failed_at=at,
        started_at=at - dt.timedelta(milliseconds=5),
        worker="w1",
    )
    with transaction(sessions) as session:
        recorded = failure_recording.record_failure(session, report=report, policy=RecoveryPolicy())
    assert recorded.dead_letter_id is not None
    return recorded.dead_letter_id
