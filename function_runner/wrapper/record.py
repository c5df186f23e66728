"""The record step: one failed execution is recorded with the others of its process (group commit,
:mod:`~function_runner.wrapper.group_commit`, writing :mod:`~function_runner.wrapper.failures`).

If the database is unreachable, the report is kept in Redis (:mod:`~function_runner.wrapper.unrecorded`)
and the message given back: its redelivery records the kept report instead of running the body again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from celery.exceptions import Reject

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence import failure_recording
from error_handling.persistence.models import utcnow
from error_handling.policy import max_attempts
from function_runner.events import log_event
from function_runner.wrapper import outcome, unrecorded
from function_runner.wrapper.execution import Execution
from function_runner.wrapper.failures import FailureRecorded, FailureToRecord, record_batch
from function_runner.wrapper.group_commit import GroupCommit

if TYPE_CHECKING:
    from function_runner.wrapper.services import Services

__all__ = ["group_commit", "record", "record_success"]


def group_commit(services: Services) -> GroupCommit[FailureToRecord, FailureRecorded]:
    """This process's group commit for ``services``: the failed executions of its tasks that fail at the
    same time are recorded in one transaction, retried while the database is unavailable
    (:meth:`~function_runner.wrapper.services.Services.in_transaction`)."""
    return services.per_process(
        "wrapper.group_commit",
        lambda: GroupCommit(lambda items: services.in_transaction(lambda s: record_batch(s, items))),
    )


def record(execution: Execution, item: FailureToRecord, *, keep: bool = True) -> FailureRecorded:
    """Record one failure with the others of this process (one transaction: group commit), and log it.

    ``keep``: if the database is unreachable, keep the report in Redis so the redelivery records it
    instead of running the body again (False for a report that is itself a kept or a minimal one).

    Raises:
        Reject: the database is unreachable (the message goes back, unacked).
        Exception: recording failed otherwise (a refusal: the caller decides).
    """
    report = item.report
    try:
        recorded = group_commit(execution.services).submit(item)
    except StorageUnavailable as exc:
        if keep:
            unrecorded.keep(execution.services, report, token=execution.token)
        outcome.requeue(execution, step="record_failure", why=f"failure not recorded: {exc}")
    classification = report.classification
    execution.log(
        "task.failed",
        level=logging.WARNING,
        attempt=report.attempt,
        of=max_attempts(item.policy, classification),
        category=classification.category.value,
        reason=classification.reason,
        decision=type(recorded.recorded.decision).__name__,
        duplicate=recorded.recorded.duplicate,
    )
    return recorded


def record_success(execution: Execution) -> None:
    """Record that a scheduled run (or a task whose deliveries were lost before) succeeded. A refused
    record is logged: the body succeeded, and that must not turn into a loss.

    Raises:
        Reject: the database is unreachable (the message goes back).
    """
    task_id, run_id = execution.request.id, execution.run_id
    now = utcnow()
    try:
        execution.services.in_transaction(
            lambda s: failure_recording.record_success(s, task_id=task_id, run_id=run_id, now=now)
        )
    except StorageUnavailable as exc:
        log_event("task.storage_unavailable", level=logging.WARNING, task_id=task_id, step="success")
        raise Reject(str(exc), requeue=True) from None
    except Exception as error:  # noqa: BLE001 - the body succeeded: a refused record must not make that a loss
        execution.log("task.success_not_recorded", level=logging.ERROR, exc_info=True, error=type(error).__name__)
        return
    execution.log("task.recovered")
