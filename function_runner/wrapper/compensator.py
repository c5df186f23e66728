"""The compensate task: undo a saga's pending steps, newest first, each once, every outcome recorded.

A terminal outcome (fail fast, dead letter, an operator's discard) makes the recorded steps of the
task's saga (its chain's root id) ``pending``, and the wrapper publishes ``function_runner.compensate``
(:mod:`~function_runner.compensation.publish`). This task claims the saga's newest open step, runs its
undo, records the outcome, and goes on::

    pending ──claim──▶ running ──undo ok──▶ compensated
                          │  └─nothing to undo─▶ skipped
                          └─undo failed─▶ released (transient: retried) / compensation_failed

An undo that fails with a known transient error is retried by the task's own policy
(:data:`COMPENSATION_POLICY`); any other failure, or retries exhausted, dead-letters the compensation
(reason ``compensation_failed``) and marks the steps left failed; replaying that dead letter reopens them.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from celery import Celery
from celery.canvas import Signature

from error_handling.categories import Category, Reason
from error_handling.exceptions import PermanentError
from error_handling.persistence.compensation import (
    Claim,
    claim_next,
    finish_step,
    release_step,
    reopen_failed,
)
from error_handling.persistence.models import StepStatus, utcnow
from error_handling.persistence.reports import FailureReport
from error_handling.policy import RecoveryPolicy
from error_handling.sealing import unseal_secrets
from function_runner.compensation.publish import CLAIM_LEASE_SECONDS, COMPENSATE_TASK
from function_runner.compensation.recorder import UndoKind
from function_runner.events import log_event
from function_runner.wrapper import headers as H
from function_runner.wrapper.execution import Execution
from function_runner.wrapper.failures import FailureToRecord
from function_runner.wrapper.task import RecoverableTask

__all__ = ["COMPENSATION_POLICY", "CompensationFailed", "Compensator", "register_compensator"]

#: The compensate task's own policy: a few quick retries of a transient undo failure.
COMPENSATION_POLICY: dict[str, Any] = {"transient_max_attempts": 3, "unclassified_max_attempts": 1}
#: The reason of an error nothing classified: not retried by the compensator (a refusal, most likely).
UNCLASSIFIED = Reason.UNCLASSIFIED.value
#: The app attribute that marks the compensate task as registered.
_REGISTERED = "_function_runner_compensator"


class CompensationFailed(PermanentError):
    """An undo failed for a reason a retry will not fix: the compensation is dead-lettered."""

    default_reason = Reason.COMPENSATION_FAILED.value


class Compensator(RecoverableTask):
    """The base of the compensate task: a recoverable task whose saga is its argument, and whose
    terminal failure marks its saga's open steps failed (instead of compensating anything)."""

    recovery_policy = COMPENSATION_POLICY

    def _to_record(self, execution: Execution, report: FailureReport, policy: RecoveryPolicy) -> FailureToRecord:
        args = execution.args
        saga_id = str(args[0]) if args else str(execution.request.root_id or execution.request.id)
        return FailureToRecord(
            report=report, policy=policy, saga_id=saga_id, compensating=True, gates=execution.services.gates
        )


def register_compensator(app: Celery) -> None:
    """Register the compensate task on ``app`` (done by ``install``/``create_app``)."""
    if getattr(app, _REGISTERED, False):
        return
    setattr(app, _REGISTERED, True)
    app.task(shared=False, base=Compensator, bind=True, name=COMPENSATE_TASK)(compensate)


def compensate(self: Compensator, saga_id: str) -> dict[str, int]:
    """Undo the saga's pending steps, newest first, one at a time; return how many ran."""
    services = self.services
    token = f"{self.request.id}:{self.attempt}"
    if (self.request.headers or {}).get(H.REPLAY_OF) is not None and self.attempt == 1:
        # the replay of a compensation that failed for good: its steps are to be undone again
        reopened = services.in_transaction(lambda s: reopen_failed(s, saga_id=saga_id, now=utcnow()))
        log_event("compensation.reopened", saga=saga_id, steps=reopened)
    lease = timedelta(seconds=CLAIM_LEASE_SECONDS)
    done = 0
    while True:
        claim = services.in_transaction(
            lambda s: claim_next(s, saga_id=saga_id, token=token, now=utcnow(), lease=lease)
        )
        if claim is None:
            return {"compensated": done}
        if claim.undo_kind == UndoKind.NONE:  # nothing to undo: recorded for the log
            _finish(self, claim, token, StepStatus.SKIPPED)
            continue
        _undo(self, claim, token, saga_id)
        _finish(self, claim, token, StepStatus.COMPENSATED)
        log_event("compensation.step_done", saga=saga_id, step=claim.name, task_id=claim.task_id)
        done += 1


def _finish(task: Compensator, claim: Claim, token: str, status: StepStatus) -> None:
    task.services.in_transaction(
        functools.partial(finish_step, step_id=claim.step_id, token=token, status=status, now=utcnow())
    )


def _undo(task: Compensator, claim: Claim, token: str, saga_id: str) -> None:
    """Run the claimed step's undo; a failure releases the step and is raised: a known passing one
    as it is (retried by the policy), any other as :class:`CompensationFailed`."""
    services = task.services
    try:
        _run_undo(task.app, claim, sealer=services.sealer)
    except Exception as exc:  # the user's undo may raise anything: recorded, then classified
        error = services.redactor.redact_text(f"{type(exc).__name__}: {exc}")[:2000]
        services.in_transaction(
            functools.partial(release_step, step_id=claim.step_id, token=token, error=error, now=utcnow())
        )
        log_event("compensation.undo_failed", level=logging.WARNING, saga=saga_id, step=claim.name, error=error)
        found = services.classifier.classify(exc)
        if found.category in (Category.TRANSIENT, Category.RESOURCE) and found.reason != UNCLASSIFIED:
            raise  # a known passing failure: retried by the compensate task's policy
        raise CompensationFailed(f"undo of step {claim.name!r} failed: {error}") from exc


def _run_undo(app: Celery, claim: Claim, *, sealer: Any) -> None:
    reference = unseal_secrets(claim.undo, sealer=sealer)
    data = unseal_secrets(claim.data, sealer=sealer)
    if claim.undo_kind == UndoKind.SIGNATURE:
        signature = Signature.from_dict(reference, app=app)
        app.tasks[signature.task].run(*signature.args, **signature.kwargs)
        return
    module_name, _, qualname = str(reference["path"]).partition(":")
    undo: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        undo = getattr(undo, part)
    if _accepts(undo, "idempotency_key"):
        undo(data, idempotency_key=claim.idempotency_key)
    else:
        undo(data)


def _accepts(function: Callable[..., Any], keyword: str) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return keyword in parameters or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
