"""Starting a saga's compensation: publish the compensate task for it.

The wrapper publishes it once a failure made a saga's steps pending; the dispatcher's sweep publishes
it again for sagas nobody compensated (a publish that failed, a compensator that died mid-undo).
"""

from __future__ import annotations

import logging

from celery import Celery

from function_runner.events import log_event

__all__ = ["CLAIM_LEASE_SECONDS", "COMPENSATE_TASK", "publish_compensation"]

#: The name of the task that runs a saga's undos.
COMPENSATE_TASK = "function_runner.compensate"
#: How long a compensator's claim on a step holds before another may take it over (it died mid-undo).
CLAIM_LEASE_SECONDS = 300.0


def publish_compensation(app: Celery, saga_id: str) -> bool:
    """Publish the compensate task for a saga; False (logged) if the broker refused: the dispatcher's
    sweep publishes it later."""
    try:
        app.send_task(COMPENSATE_TASK, args=[saga_id])
    except Exception as exc:  # noqa: BLE001 - the steps stay pending for the sweep; never the caller's outcome
        log_event("compensation.publish_failed", level=logging.WARNING, saga=saga_id, error=type(exc).__name__)
        return False
    log_event("compensation.published", saga=saga_id)
    return True
