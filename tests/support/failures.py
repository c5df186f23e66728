"""Seeding failed attempts the way a worker records them: through ``failure_recording.record_failure``."""

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

POLICY = RecoveryPolicy()


def fail(
    sessions: sessionmaker[Session],
    task_id: str,
    attempt: int,
    *,
    at: dt.datetime,
    category: Category = Category.TRANSIENT,
    reason: str = "timeout",
    task_name: str = "app.task",
    queue: str | None = "celery",
    message: str = "boom",
    fingerprint: str = "f" * 16,
    exc_type: str = "builtins.TimeoutError",
    worker: str = "w1",
    kwargs: dict[str, Any] | None = None,
    sealer: Sealer | None = None,
    replay_of: int | None = None,
    resource: str | None = None,
) -> reports.Recorded:
    """Record one failed attempt (payload sealed with ``sealer`` when given) in its own transaction."""
    stored_kwargs = kwargs or {}
    if sealer is not None:
        stored_kwargs = seal_secrets(stored_kwargs, redactor=Redactor(), sealer=sealer)
    classification = Classification(
        category=category,
        reason=reason,
        fingerprint=fingerprint,
        message=message,
        exc_type=exc_type,
        user_message="Try again later.",
        resource=resource,
    )
    report = reports.FailureReport(
        task_id=task_id,
        attempt=attempt,
        payload=reports.TaskPayload(
            task_name=task_name,
            args=[1],
            kwargs=stored_kwargs,
            options={"routing_key": queue or "celery"},
            headers={},
            queue=queue,
            replay_of=replay_of,
        ),
        classification=classification,
        traceback=f"Traceback (most recent call last):\n  {exc_type}: {message}",
        failed_at=at,
        started_at=at - dt.timedelta(milliseconds=250),
        worker=worker,
    )
    with transaction(sessions) as session:
        return failure_recording.record_failure(session, report=report, policy=POLICY)
