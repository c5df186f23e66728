"""Public schemas of failed attempts, task histories and error statistics.

They are built from the rows of :mod:`error_handling.persistence.reads` by the ``*_public``
functions below, which the API and the CLI's ``--json`` output share. A task's stored args, kwargs and
headers hold sealed (encrypted) secrets; they are only ever shown through
:func:`error_handling.sealing.redacted_view`, where each secret is ``[REDACTED]``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Row

from api.params import copy_fields
from error_handling.persistence import models
from error_handling.persistence.reads.counts import ErrorStats, FingerprintGroup, RecoveryStats
from error_handling.persistence.reads.histories import TaskHistory
from error_handling.sealing import redacted_view

__all__ = [
    "AttemptDetailPublic",
    "AttemptPublic",
    "AttemptsPublic",
    "CompensationStepPublic",
    "DeadLetterSummaryPublic",
    "ErrorStatsPublic",
    "FingerprintGroupPublic",
    "RecoveryStatsPublic",
    "ReplayLinkPublic",
    "ScheduledRunPublic",
    "TaskCompensationPublic",
    "TaskHistoryPublic",
    "TaskPublic",
    "attempt_detail_public",
    "attempt_public",
    "attempts_public",
    "error_stats_public",
    "step_public",
    "task_history_public",
    "task_public",
]


class AttemptPublic(BaseModel):
    """One failed execution of a task, its classification and the decision taken about it."""

    id: int
    task_id: str
    attempt: int = Field(description='The attempt number of the policy, from 1 ("attempt 2 of 5").')
    max_attempts: int | None = Field(
        default=None,
        description="The most attempts the policy allows for this kind of failure; null when it is not "
        "retried (or waits on a resource, bounded by time).",
    )
    task_name: str
    queue: str | None
    worker: str | None
    exc_type: str | None
    message: str = Field(description="The technical message, redacted.")
    category: str
    reason: str
    resource: str | None
    retry_after: float | None = Field(description="Seconds the server asked to wait, if it said so.")
    fingerprint: str
    user_message: str | None
    status_code: int | None
    rule: str | None = Field(description="The classifier rule that matched.")
    decision: models.DecisionKind
    decision_reason: str | None
    decision_at: dt.datetime | None = Field(description="For a retry, when it is due; for a wait, its deadline.")
    delay: float | None = Field(description="For a retry, the delay in seconds.")
    started_at: dt.datetime | None = Field(description="Null when the task was not run (a worker_lost verdict).")
    failed_at: dt.datetime
    duration_ms: float | None


class LostDeliveryPublic(BaseModel):
    """A delivery that ended without an outcome: the worker process running the task died, and the
    broker delivered it again. Not an attempt of the policy: it uses no retry."""

    attempt: int = Field(description="The attempt it was a delivery of.")
    delivery: int = Field(description="Which delivery of that attempt, from 1.")
    cause: str = Field(
        description="`worker_lost` (the pool process died), `time_limit` (killed at the hard time limit) "
        "or `redelivered` (delivered again with no report: the whole worker stopped)."
    )
    worker: str | None
    pid: int | None
    signal: str | None = Field(description="The signal that killed the process, e.g. SIGKILL.")
    exit_code: int | None
    memory_limit: str | None = Field(description="Set when the kernel's OOM killer acted, with the limit.")
    detail: str | None
    lost_at: dt.datetime


class AttemptsPublic(BaseModel):
    """A page of failed attempts, newest first."""

    data: list[AttemptPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class TaskPublic(BaseModel):
    """A task that failed at least once: its state and its payload with every secret shown as [REDACTED]."""

    task_id: str
    task_name: str
    queue: str | None
    state: models.TaskState
    attempts: int
    args: Any
    kwargs: Any
    options: Any
    headers: Any
    replayable: bool
    root_id: str | None
    parent_id: str | None
    replay_of: int | None = Field(description="The id of the dead letter this task replays.")
    last_category: str | None
    last_reason: str | None
    user_message: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    terminal_at: dt.datetime | None


class AttemptDetailPublic(AttemptPublic):
    """A failed attempt with its (redacted) traceback and its task."""

    traceback: str | None = Field(description="The traceback, redacted.")
    task: TaskPublic | None


class ScheduledRunPublic(BaseModel):
    """A scheduled retry or resource wait of a task."""

    id: int
    kind: models.RunKind
    attempt: int = Field(description="The execution number this run runs as.")
    resource: str | None
    deadline: dt.datetime | None
    due_at: dt.datetime
    status: models.RunStatus
    dispatch_count: int
    dispatched_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


class CompensationStepPublic(BaseModel):
    """A side effect a task recorded, how to undo it, and what became of the undo."""

    id: int
    task_id: str
    saga_id: str = Field(description="The root id of the task's chain (its own id when alone).")
    task_name: str
    attempt: int = Field(description="The attempt that recorded it.")
    seq: int = Field(description="Its order within the task.")
    name: str
    undo_kind: str = Field(description="`callable` or `signature`.")
    undo: Any = Field(description="How it is undone, secrets shown as [REDACTED].")
    data: Any = Field(description="What the undo is given, secrets shown as [REDACTED].")
    idempotency_key: str
    status: models.StepStatus
    attempts: int = Field(description="How many times the undo was tried.")
    last_error: str | None = Field(description="The undo's last error, redacted.")
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None


class TaskCompensationPublic(BaseModel):
    """A task's compensation steps, and those of its whole saga (undone newest first)."""

    task_id: str
    saga_id: str
    steps: list[CompensationStepPublic] = Field(description="The steps this task recorded, in order.")
    saga_steps: list[CompensationStepPublic] = Field(description="Every step of the saga, in recorded order.")


#: What recovery did in the window: the counts as persistence reads them (a frozen dataclass, served as it
#: is; its docstring describes each count).
RecoveryStatsPublic = RecoveryStats


class DeadLetterSummaryPublic(BaseModel):
    """A dead letter, without its payload."""

    id: int
    task_id: str
    task_name: str
    reason: str
    category: str | None
    last_reason: str | None
    status: models.DeadLetterStatus
    attempts: int
    replayed_task_id: str | None
    replayed_at: dt.datetime | None
    discarded_reason: str | None
    discarded_at: dt.datetime | None
    created_at: dt.datetime


class ReplayLinkPublic(BaseModel):
    """A task published as a replay of a dead letter (the replay itself is
    :class:`api.schemas.dead_letters.ReplayPublic`)."""

    task_id: str
    state: models.TaskState | None = Field(description="Null when the replay has recorded no failure (yet).")


class FallbackPassPublic(BaseModel):
    """A provider a fallback chain passed over, and why (a reason, or ``cooling down 12.0s``)."""

    provider: str
    reason: str


class FallbackEventPublic(BaseModel):
    """A call of a fallback chain not answered by its first provider."""

    service: str = Field(description="The logical service of the chain.")
    provider: str | None = Field(description="The provider that answered; null when the degraded result did.")
    degraded: bool
    passed_over: list[FallbackPassPublic] = Field(description="The providers passed over, in chain order.")
    at: dt.datetime


class TaskHistoryPublic(BaseModel):
    """Everything recorded about a task: attempts, scheduled runs, outcome and replay lineage."""

    task_id: str
    task: TaskPublic | None = Field(description="Null for a task that has not failed (a replay, a fallback).")
    attempts: list[AttemptPublic] = Field(description="Every failed attempt, oldest first.")
    runs: list[ScheduledRunPublic]
    dead_letter: DeadLetterSummaryPublic | None
    replay_of: DeadLetterSummaryPublic | None = Field(description="The dead letter this task replays.")
    replays: list[ReplayLinkPublic] = Field(description="Tasks published as replays of this task's dead letter.")
    compensation: list[CompensationStepPublic] = Field(
        default_factory=list, description="The compensation steps it recorded and their outcomes."
    )
    fallbacks: list[FallbackEventPublic] = Field(
        default_factory=list, description="Its calls served by a fallback provider or a degraded result."
    )
    lost_deliveries: list[LostDeliveryPublic] = Field(
        default_factory=list, description="Deliveries that ended without an outcome (its worker process died)."
    )
    executions: int = Field(
        default=0,
        description="How many deliveries ran the task, as recorded: lost ones, failed attempts that ran, "
        "and the success that ended it.",
    )


class FingerprintGroupPublic(BaseModel):
    """The same error across tasks: a fingerprint's count and its latest occurrence."""

    fingerprint: str
    count: int
    first_seen: dt.datetime
    last_seen: dt.datetime
    message: str = Field(description="The message of the latest attempt in the group.")
    exc_type: str | None
    task_name: str
    category: str
    reason: str


class ErrorStatsPublic(BaseModel):
    """Counts of failed attempts in a window, largest first."""

    since: dt.datetime
    until: dt.datetime
    total: int
    by_category: dict[str, int]
    by_reason: dict[str, int]
    by_task: dict[str, int] = Field(description="The task names with the most failed attempts.")
    top_fingerprints: list[FingerprintGroupPublic]


_PAYLOAD_FIELDS = frozenset({"args", "kwargs", "options", "headers"})


def attempt_public(row: models.FailedAttempt) -> AttemptPublic:
    """The public form of a failed attempt."""
    return AttemptPublic.model_validate(row, from_attributes=True)


def attempts_public(rows: Sequence[Row[Any]], next_cursor: str | None) -> AttemptsPublic:
    """A page of failed attempts (rows of :func:`~error_handling.persistence.reads.attempts.list_attempts`),
    validated in one call (a page of 500 in a few milliseconds)."""
    return AttemptsPublic.model_validate({"data": [row._asdict() for row in rows], "next_cursor": next_cursor})


def task_public(task: models.TaskRecord) -> TaskPublic:
    """The public form of a task record: sealed secrets become ``[REDACTED]``."""
    return copy_fields(TaskPublic, task, **{name: redacted_view(getattr(task, name)) for name in _PAYLOAD_FIELDS})


def attempt_detail_public(row: models.FailedAttempt, task: models.TaskRecord | None) -> AttemptDetailPublic:
    """The public form of one failed attempt with its traceback and its task."""
    return copy_fields(AttemptDetailPublic, row, task=task_public(task) if task else None)


def _run_public(run: models.ScheduledRun) -> ScheduledRunPublic:
    return copy_fields(ScheduledRunPublic, run)


def _letter_public(letter: models.DeadLetterRecord) -> DeadLetterSummaryPublic:
    return copy_fields(DeadLetterSummaryPublic, letter)


def task_history_public(history: TaskHistory) -> TaskHistoryPublic:
    """The public form of a task's history."""
    return TaskHistoryPublic(
        task_id=history.task_id,
        task=task_public(history.task) if history.task else None,
        attempts=[attempt_public(a) for a in history.attempts],
        runs=[_run_public(r) for r in history.runs],
        dead_letter=_letter_public(history.dead_letter) if history.dead_letter else None,
        replay_of=_letter_public(history.replay_of) if history.replay_of else None,
        replays=[ReplayLinkPublic(task_id=r.task_id, state=r.task.state if r.task else None) for r in history.replays],
        compensation=[step_public(step) for step in history.compensation],
        fallbacks=[FallbackEventPublic.model_validate(event, from_attributes=True) for event in history.fallbacks],
        lost_deliveries=[
            LostDeliveryPublic.model_validate(row, from_attributes=True) for row in history.lost_deliveries
        ],
        executions=history.executions,
    )


def step_public(step: models.CompensationStep) -> CompensationStepPublic:
    """The public form of a compensation step: sealed secrets become ``[REDACTED]``."""
    return copy_fields(CompensationStepPublic, step, undo=redacted_view(step.undo), data=redacted_view(step.data))


def _group_public(group: FingerprintGroup) -> FingerprintGroupPublic:
    return copy_fields(FingerprintGroupPublic, group)


def error_stats_public(stats: ErrorStats) -> ErrorStatsPublic:
    """The public form of error statistics."""
    return copy_fields(ErrorStatsPublic, stats, top_fingerprints=[_group_public(g) for g in stats.top_fingerprints])
