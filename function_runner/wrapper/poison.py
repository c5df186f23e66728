"""The lost-deliveries step: record the deliveries of this attempt that ended without an outcome, and
tell a poison message (its worker died on too many of them) from one to run again.

Runs on a redelivery, or when the execution found the marks of dead pool processes that had started
this task (see :mod:`~function_runner.wrapper.deliveries`). Lost deliveries are not attempts of the
policy: they use no retry and no retry budget.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from celery.exceptions import Reject

from error_handling.exceptions import StorageUnavailable, WorkerLost
from error_handling.persistence import lost_deliveries
from error_handling.persistence.models import LostDelivery, utcnow
from function_runner.events import log_event
from function_runner.wrapper import deliveries
from function_runner.wrapper.deliveries import LossCause
from function_runner.wrapper.execution import Execution
from function_runner.wrapper.payload import safe_payload

__all__ = ["Losses", "lost_deliveries"]


@dataclasses.dataclass(frozen=True)
class Losses:
    """What the lost deliveries of this attempt mean.

    Attributes:
        count: how many deliveries of this attempt were lost before this one.
        poison: set when they reached the task's limit: the failure to dead-letter the task with,
            instead of running it.
    """

    count: int = 0
    poison: WorkerLost | None = None


def record_losses(execution: Execution, *, put_back: list[int], limit: int | None) -> Losses:
    """Record the deliveries of this attempt that ended without an outcome (``put_back``: pids of
    dead pool processes found by the marks). ``limit``: the task's ``max_lost_deliveries`` (default:
    the setting).

    Raises:
        Reject: the database is unreachable (the message goes back, counted as the wrapper's requeue).
    """
    services, task_id, attempt = execution.services, execution.task_id, execution.attempt
    seen = deliveries.count_redelivery(services, task_id, attempt, execution.request) if execution.redelivered else 0
    found = _found_by_marks(execution, put_back)
    lost = _reconcile(execution, found, at_least=seen + len(found))
    if not lost:
        return Losses()
    limit = limit or services.settings.max_lost_deliveries
    last = lost[-1]
    execution.log(
        "task.redelivered",
        level=logging.WARNING,
        delivery=len(lost) + 1,
        lost=len(lost),
        limit=limit,
        cause=last.cause,
    )
    if len(lost) < limit:
        return Losses(count=len(lost))
    poison = WorkerLost(
        f"the worker process died on {len(lost)} deliveries of this task ({_how(last) or last.cause}); "
        f"not run again (limit {limit})"
    )
    return Losses(count=len(lost), poison=poison)


def _found_by_marks(execution: Execution, put_back: list[int]) -> list[lost_deliveries.LossReport]:
    found = [
        lost_deliveries.LossReport(
            cause=LossCause.WORKER_LOST, worker=execution.request.hostname, pid=pid, detail=deliveries.PUT_BACK
        )
        for pid in put_back
    ]
    if found:
        execution.log("delivery.lost", level=logging.WARNING, pids=put_back)
    return found


def _reconcile(execution: Execution, found: list[lost_deliveries.LossReport], *, at_least: int) -> list[LostDelivery]:
    """Record ``found`` and the losses nobody reported; return every lost delivery of this attempt."""
    services, task_id, attempt = execution.services, execution.task_id, execution.attempt
    payload = safe_payload(execution)
    now = utcnow()

    def record(session: Any) -> list[LostDelivery]:
        for report in found:
            lost_deliveries.report_lost_delivery(
                session, task_id=task_id, attempt=attempt, task_name=execution.task_name, report=report, now=now
            )
        return lost_deliveries.reconcile_lost_deliveries(
            session, task_id=task_id, attempt=attempt, payload=payload, at_least=at_least, now=now
        )

    try:
        return services.in_transaction(record)
    except StorageUnavailable as exc:
        deliveries.count_requeue(services, task_id, attempt)
        log_event("task.storage_unavailable", level=logging.WARNING, task_id=task_id, step="redelivery")
        raise Reject(str(exc), requeue=True) from None


def _how(last: LostDelivery) -> str:
    """How the last lost delivery ended, as far as it is known."""
    parts = (
        f"last on {last.worker}" if last.worker else "",
        f"pid {last.pid}" if last.pid else "",
        last.signal or (f"exit code {last.exit_code}" if last.exit_code is not None else ""),
        last.memory_limit or "",
        last.detail if last.cause == LossCause.TIME_LIMIT else "",
    )
    return ", ".join(part for part in parts if part)
