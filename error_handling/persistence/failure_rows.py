"""The rows a failure writes, built from its report and its decision: the attempt, the scheduled
run, the dead letter, and the task's new state. Pure functions; nothing here talks to the database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from error_handling.persistence import sanitise
from error_handling.persistence.models import (
    DeadLetterRecord,
    DeadLetterStatus,
    DecisionKind,
    FailedAttempt,
    RunKind,
    RunStatus,
    ScheduledRun,
    TaskState,
)
from error_handling.persistence.reports import FailureReport
from error_handling.policy import DeadLetter, Decision, FailFast, RecoveryPolicy, Retry, Wait, max_attempts

ATTEMPTS: sa.Table = FailedAttempt.__table__  # type: ignore[assignment]
RUNS: sa.Table = ScheduledRun.__table__  # type: ignore[assignment]
LETTERS: sa.Table = DeadLetterRecord.__table__  # type: ignore[assignment]

#: Where a task goes after a failure, by the decision taken.
_STATE_AFTER = {
    DecisionKind.RETRY: TaskState.RETRYING,
    DecisionKind.WAIT: TaskState.WAITING,
    DecisionKind.FAIL_FAST: TaskState.FAILED_FAST,
    DecisionKind.DEAD_LETTER: TaskState.DEAD_LETTERED,
}


def delays(decision: Decision) -> bool:
    """Whether the decision leaves the task waiting for a scheduled run (a retry or a resource wait)."""
    return isinstance(decision, Retry | Wait)


def decision_kind(decision: Decision) -> DecisionKind:
    """The kind stored with an attempt for ``decision``."""
    if isinstance(decision, Retry):
        return DecisionKind.RETRY
    if isinstance(decision, Wait):
        return DecisionKind.WAIT
    if isinstance(decision, FailFast):
        return DecisionKind.FAIL_FAST
    return DecisionKind.DEAD_LETTER


def _decision_at(decision: Decision) -> dt.datetime | None:
    if isinstance(decision, Retry):
        return decision.at
    if isinstance(decision, Wait):
        return decision.deadline
    return None


def decision_from_attempt(row: FailedAttempt) -> Decision:
    """Rebuild the decision stored with an attempt (for answering a redelivery)."""
    at = row.decision_at or row.failed_at
    if row.decision is DecisionKind.RETRY:
        return Retry(at=at, delay=row.delay or 0.0)
    if row.decision is DecisionKind.WAIT:
        return Wait(resource=row.resource or "", deadline=at, check_at=at)
    if row.decision is DecisionKind.FAIL_FAST:
        return FailFast(reason=row.decision_reason or row.reason, user_message=row.user_message or "")
    return DeadLetter(reason=row.decision_reason or row.reason)


def state_after(report: FailureReport, decision: Decision, attempts: int) -> dict[str, Any]:
    """What a failure changes in its task's record (``attempts``: the record's count before it)."""
    c = report.classification
    return {
        "attempts": max(attempts, report.attempt),
        "last_category": c.category.value,
        "last_reason": c.reason,
        "updated_at": report.failed_at,
        "state": _STATE_AFTER[decision_kind(decision)],
        "user_message": decision.user_message if isinstance(decision, FailFast) else None,
        "terminal_at": None if delays(decision) else report.failed_at,
    }


def attempt_row(report: FailureReport, decision: Decision, policy: RecoveryPolicy) -> dict[str, Any]:
    """The ``fr_failed_attempts`` row of a failure."""
    c = report.classification
    now = report.failed_at
    row = {
        "task_id": report.task_id,
        "attempt": report.attempt,
        "task_name": report.payload.task_name,
        "queue": report.payload.queue,
        "worker": report.worker,
        "exc_type": c.exc_type,
        "message": c.message,
        "traceback": report.traceback,
        "category": c.category.value,
        "reason": c.reason,
        "resource": c.resource,
        "retry_after": c.retry_after,
        "fingerprint": c.fingerprint,
        "user_message": c.user_message,
        "status_code": c.status_code,
        "rule": c.rule[:255] if c.rule else None,
        "decision": decision_kind(decision),
        "decision_reason": getattr(decision, "reason", None),
        "decision_at": _decision_at(decision),
        "delay": decision.delay if isinstance(decision, Retry) else None,
        "started_at": report.started_at,
        "failed_at": now,
        "duration_ms": (now - report.started_at).total_seconds() * 1000 if report.started_at else None,
        "max_attempts": max_attempts(policy, c),
    }
    return sanitise.row(ATTEMPTS, row)


def run_row(report: FailureReport, decision: Decision) -> dict[str, Any]:
    """The ``fr_scheduled_runs`` row of a retry or a resource wait."""
    now = report.failed_at
    row = {
        "kind": RunKind.RETRY if isinstance(decision, Retry) else RunKind.RESOURCE_WAIT,
        "task_id": report.task_id,
        "attempt": report.attempt + 1,
        "resource": decision.resource if isinstance(decision, Wait) else None,
        "deadline": decision.deadline if isinstance(decision, Wait) else None,
        "due_at": decision.at if isinstance(decision, Retry) else decision.check_at,  # type: ignore[union-attr]
        "status": RunStatus.PENDING,
        "dispatch_count": 0,
        "created_at": now,
        "updated_at": now,
    }
    return sanitise.row(RUNS, row)


def letter_row(
    *, task_id: str, task: Any, reason: str, last: dict[str, Any], attempts: int, now: dt.datetime
) -> dict[str, Any]:
    """A task's dead letter. ``task``: its record (payload and name, as the ORM object or a row),
    ``last``: what is known of its last failure (category, reason, exc_type, message, fingerprint)."""
    row = {
        "task_id": task_id,
        "task_name": task.task_name,
        "queue": task.queue,
        "reason": reason,
        "category": last["category"],
        "last_reason": last["reason"],
        "exc_type": last["exc_type"],
        "message": last["message"],
        "fingerprint": last["fingerprint"],
        "attempts": attempts,
        "args": task.args,
        "kwargs": task.kwargs,
        "options": task.options,
        "headers": task.headers,
        "replayable": task.replayable,
        "status": DeadLetterStatus.PENDING,
        "created_at": now,
        "updated_at": now,
    }
    return sanitise.row(LETTERS, row)
