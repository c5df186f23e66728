"""The claim step: may this delivery run the task at all?

- a message the dispatcher published for a scheduled run claims the run with its dispatch token; a
  second message for the same run (a duplicate dispatch) is ignored;
- a redelivery (or the dispatcher's copy of a lost message) whose attempt is already recorded is
  a duplicate and ignored; one whose failure was kept in Redis while the database was away
  (:mod:`~function_runner.wrapper.unrecorded`) records that failure instead of running again.

Lost deliveries and poison messages are the next step (:mod:`~function_runner.wrapper.poison`).
"""

from __future__ import annotations

import logging

from celery.exceptions import Ignore, Reject

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence import failure_recording, reports, runs
from error_handling.persistence.models import utcnow
from function_runner.events import log_event
from function_runner.wrapper import unrecorded
from function_runner.wrapper.execution import Execution

__all__ = ["claim_run", "kept_failure", "skip_duplicate"]


def claim_run(execution: Execution) -> None:
    """Claim the scheduled run this message executes (nothing to claim without a run and a token).

    Raises:
        Ignore: another message claimed the run (a duplicate dispatch).
        Reject: the database is unreachable (the message goes back).
    """
    run_id, token = execution.run_id, execution.token
    if run_id is None or not token:
        return
    now = utcnow()
    try:
        claimed = execution.services.in_transaction(lambda s: runs.claim_run(s, run_id=run_id, token=token, now=now))
    except StorageUnavailable as exc:
        log_event("task.storage_unavailable", level=logging.WARNING, task_id=execution.request.id, step="claim")
        raise Reject(str(exc), requeue=True) from None
    if not claimed:
        execution.log("task.duplicate_skipped", run=run_id)
        raise Ignore()


def may_be_duplicate(execution: Execution) -> bool:
    """A redelivery, or the dispatcher's copy of a lost message: it may have been handled before."""
    return execution.redelivered or execution.kept_copy


def kept_failure(execution: Execution) -> reports.FailureReport | None:
    """The failure of this attempt kept in Redis while the database was away, if any."""
    kept = unrecorded.take(execution.services, execution.task_id, execution.attempt)
    if kept is not None:
        execution.log("task.recording_kept_failure")
    return kept


def skip_duplicate(execution: Execution) -> None:
    """Ignore a delivery whose attempt is already recorded (a message not from a scheduled run: a
    run's own claim tells duplicates apart).

    Raises:
        Ignore: it is a duplicate.
        Reject: the database is unreachable (the message goes back).
    """
    if execution.run_id is None and _already_recorded(execution):
        execution.log("task.duplicate_skipped")
        raise Ignore()


def _already_recorded(execution: Execution) -> bool:
    task_id, attempt = execution.task_id, execution.attempt
    try:
        return execution.services.in_transaction(
            lambda s: failure_recording.attempt_recorded(s, task_id=task_id, attempt=attempt)
        )
    except StorageUnavailable as exc:
        raise Reject(str(exc), requeue=True) from None
