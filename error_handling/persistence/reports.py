"""What the wrapper hands to persistence about a failed execution, and what it gets back.

TaskPayload ─┐
             ├─► FailureReport ──► failure_recording.record_failures ──► Recorded
Classification ┘
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from error_handling.classification import Classification
from error_handling.policy import Decision


@dataclasses.dataclass(frozen=True)
class TaskPayload:
    """What is needed to run a task again. ``args``, ``kwargs`` and ``headers`` have secrets sealed."""

    task_name: str
    args: Any
    kwargs: Any
    options: dict[str, Any]
    headers: dict[str, Any]
    queue: str | None = None
    replayable: bool = True
    root_id: str | None = None
    parent_id: str | None = None
    replay_of: int | None = None


@dataclasses.dataclass(frozen=True)
class FailureReport:
    """One failed execution, as the wrapper saw it (message and traceback already redacted)."""

    task_id: str
    attempt: int
    payload: TaskPayload
    classification: Classification
    traceback: str | None
    failed_at: dt.datetime
    started_at: dt.datetime | None = None
    worker: str | None = None
    #: The scheduled run this execution came from, if any.
    run_id: int | None = None
    #: False when the service's retry budget is empty (a retry becomes a dead letter).
    retry_allowed: bool = True


@dataclasses.dataclass(frozen=True)
class Recorded:
    """The outcome of :func:`~error_handling.persistence.failure_recording.record_failure`.

    Attributes:
        decision: the decision taken (for a duplicate, rebuilt from the first record).
        duplicate: True when this attempt had already been recorded (a redelivery); nothing was written.
        dead_letter_id: the dead letter created, if the decision was to dead-letter.
        run_id: the scheduled run created for a retry or a wait.
    """

    decision: Decision
    duplicate: bool = False
    dead_letter_id: int | None = None
    run_id: int | None = None
