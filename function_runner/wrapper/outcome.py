"""The carry-out step (DESIGN's "router"): a recorded decision becomes what Celery understands.

::

    Retry / Wait         ──▶ celery.exceptions.Retry   (state RETRY; the run is a row, not an ETA)
    FailFast / DeadLetter ──▶ the task's own exception  (state FAILURE)
    database unreachable ──▶ Reject(requeue=True)       (the message goes back, unacked)

A :class:`Verdict` carries the error out of the wrapper's handlers to ``RecoverableTask.__call__``,
which raises it (redacted) from its own frame, so Celery sees the body's traceback, not the wrapper's.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import NoReturn

from celery.exceptions import Reject, Retry

from error_handling.policy import DeadLetter, Decision, FailFast
from error_handling.policy import Retry as RetryDecision
from error_handling.policy import Wait as WaitDecision
from function_runner.wrapper import deliveries
from function_runner.wrapper.execution import Execution

__all__ = ["Verdict", "carry_out", "requeue"]


class Verdict(BaseException):
    """How a recorded failure ends the execution: ``error`` (Celery's ``Retry`` for a retry or a wait,
    the task's exception for a terminal decision), raised by ``RecoverableTask.__call__`` with
    ``traceback``. A BaseException, so no ``except Exception`` on the way catches it."""

    def __init__(self, error: BaseException, traceback: TracebackType | None) -> None:
        super().__init__(error)
        self.error = error
        self.traceback = traceback


def carry_out(decision: Decision, exc: Exception) -> NoReturn:
    """End the execution as ``decision`` says (raises a :class:`Verdict`)."""
    if isinstance(decision, RetryDecision | WaitDecision):
        if isinstance(decision, RetryDecision):
            retry = Retry(f"retry scheduled in {decision.delay:.2f}s", exc=exc, when=decision.at)
        else:
            retry = Retry(f"waiting for resource {decision.resource!r}", exc=exc, when=decision.check_at)
        retry.__cause__ = exc
        raise Verdict(retry, None)
    if isinstance(decision, FailFast | DeadLetter):
        # the body's frames, without the wrapper's frame that caught the exception
        tb = exc.__traceback__
        raise Verdict(exc, tb.tb_next if tb is not None and tb.tb_next is not None else tb)
    raise AssertionError(f"unknown decision {decision!r}")  # pragma: no cover


def requeue(execution: Execution, *, step: str, why: str) -> NoReturn:
    """The database is unreachable: give the message back to the broker, unacked (the wrapper's own
    requeue, counted so its redelivery is not taken for a lost delivery)."""
    deliveries.count_requeue(execution.services, execution.task_id, execution.attempt)
    execution.log("task.storage_unavailable", level=logging.ERROR, step=step)
    raise Reject(f"{why}, message requeued", requeue=True) from None
