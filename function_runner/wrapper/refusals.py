"""Refusals: the database refused a record of this delivery, or a bookkeeping step failed for another
reason than an outage. Never ack a failure nobody recorded, never loop::

    refusal ──count (shared Redis)──▶ ≤ max_unrecordable_requeues: give the message back, unacked
                                   └▶ past it (or nothing counts): dead-letter with a minimal record
                                                                    (reason ``unrecordable``)

If even the minimal record fails, the message is given back, loudly (never acked unrecorded).
"""

from __future__ import annotations

import hashlib
import logging
from typing import NoReturn

from celery.exceptions import Reject

from error_handling.categories import Category, Reason
from error_handling.classification import Classification
from error_handling.persistence import reports
from function_runner.wrapper import deliveries
from function_runner.wrapper.execution import Execution
from function_runner.wrapper.payload import minimal_report

__all__ = ["UnrecordableFailure", "not_recorded", "past_limit", "unrecordable_report"]


class UnrecordableFailure(Exception):
    """Stands for a failure the database kept refusing to record, on the delivery that dead-letters
    its task with a minimal record (reason ``unrecordable``)."""


def past_limit(execution: Execution, error: BaseException, *, step: str) -> UnrecordableFailure:
    """Count the refusal ``error`` at ``step``; give the message back while the count allows, else
    return the failure to dead-letter the task with.

    Raises:
        Reject: the message is given back (counted as a refusal and a requeue).
    """
    refusals = deliveries.count_refusal(execution.services, execution.task_id, execution.attempt)
    limit = execution.services.settings.max_unrecordable_requeues
    execution.log(
        "task.record_refused",
        level=logging.ERROR,
        exc_info=True,
        step=step,
        error=type(error).__name__,
        refusals=refusals,
        limit=limit,
    )
    if refusals is not None and refusals <= limit:
        raise Reject(f"{step} not recorded ({type(error).__name__}), message requeued", requeue=True) from None
    return UnrecordableFailure(
        f"the database refused the record of this task {refusals or 1} time(s) at {step} ({_refusal(error)}); "
        f"dead-lettered with a minimal record (limit {limit})"
    )


def unrecordable_report(execution: Execution, failure: UnrecordableFailure) -> reports.FailureReport:
    """The minimal record of ``failure``: values sure to store, the payload as sealed blobs only."""
    name = execution.task_name
    classification = Classification(
        category=Category.PERMANENT,
        reason=Reason.UNRECORDABLE.value,
        fingerprint=hashlib.blake2b(f"{name}:unrecordable".encode(), digest_size=16).hexdigest(),
        exc_type=f"{UnrecordableFailure.__module__}.{UnrecordableFailure.__qualname__}",
        message=str(failure),
        user_message=execution.services.user_messages.for_classification(
            Classification(category=Category.PERMANENT, reason=Reason.UNRECORDABLE.value)
        ),
        rule="unrecordable",
    )
    return minimal_report(execution, classification)


def not_recorded(execution: Execution, bug: BaseException, *, step: str | None, attempt: int | None = None) -> NoReturn:
    """Even dead-lettering the refused record failed (``step``; None: the minimal record itself was
    refused, for ``attempt``): give the message back, loudly, never acked unrecorded."""
    attempt = execution.attempt if attempt is None else attempt
    deliveries.count_requeue(execution.services, execution.task_id, attempt)
    fields = {"attempt": attempt} | ({} if step is None else {"step": step}) | {"error": type(bug).__name__}
    execution.log("task.unrecordable_not_recorded", level=logging.CRITICAL, exc_info=True, **fields)
    what = "minimal record refused" if step is None else f"{step} not recorded"
    raise Reject(f"{what} ({type(bug).__name__}), message requeued", requeue=True) from None


def _refusal(error: BaseException) -> str:
    """What refused a record, without the values: the error's type, and Postgres' SQLSTATE if any
    (the database's message may quote the refused value, which may hold anything)."""
    state = getattr(getattr(error, "orig", None), "sqlstate", None)
    name = type(error).__name__
    return f"{name}, SQLSTATE {state}" if isinstance(state, str) and state else name
