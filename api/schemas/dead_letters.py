"""Public schemas of dead letters: what the API (and ``function-runner dlq --json``) shows and accepts.

Payloads are shown through :func:`~error_handling.sealing.redacted_view`: each secret is ``[REDACTED]``,
never its sealed token and never its value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from error_handling.persistence.models import (
    DeadLetterRecord,
    DeadLetterStatus,
    FailedAttempt,
    ReplayRequestRecord,
)
from error_handling.sealing import redacted_view

__all__ = [
    "DeadLetterAttemptPublic",
    "DeadLetterDetailPublic",
    "DeadLetterPublic",
    "DeadLettersPublic",
    "DiscardRequest",
    "ReplayPublic",
    "ReplayRecordPublic",
    "ReplayRequest",
]

#: Longest accepted discard reason.
MAX_DISCARD_REASON = 1000
#: Text the database can store: anything but NUL.
NO_NUL = r"^[^\x00]*$"


class DeadLetterPublic(BaseModel):
    """A dead letter, its payload redacted."""

    id: int
    task_id: str
    task_name: str
    queue: str | None
    status: DeadLetterStatus
    reason: str = Field(description="Why it was dead-lettered (retries_exhausted, resource_wait_timeout, ...).")
    category: str | None
    last_reason: str | None = Field(description="The reason code of the last failure.")
    exc_type: str | None
    message: str | None = Field(description="The last error's technical message, redacted.")
    fingerprint: str | None
    attempts: int = Field(description="How many executions failed.")
    args: Any = Field(description="Positional arguments; each secret is [REDACTED].")
    kwargs: Any = Field(description="Keyword arguments; each secret is [REDACTED].")
    headers: Any = Field(description="Custom message headers; each secret is [REDACTED].")
    options: Any = Field(description="Delivery options (exchange, routing_key, priority, time limits).")
    replayable: bool = Field(description="False when the arguments could not be stored faithfully.")
    replayed_task_id: str | None = Field(description="The task its latest replay published.")
    replayed_at: dt.datetime | None
    discarded_reason: str | None
    discarded_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @classmethod
    def from_record(cls, letter: DeadLetterRecord) -> DeadLetterPublic:
        """The public view of a stored dead letter."""
        return cls(**_letter_fields(letter))


def _letter_fields(letter: DeadLetterRecord) -> dict[str, Any]:
    return {
        "id": letter.id,
        "task_id": letter.task_id,
        "task_name": letter.task_name,
        "queue": letter.queue,
        "status": letter.status,
        "reason": letter.reason,
        "category": letter.category,
        "last_reason": letter.last_reason,
        "exc_type": letter.exc_type,
        "message": letter.message,
        "fingerprint": letter.fingerprint,
        "attempts": letter.attempts,
        "args": redacted_view(letter.args),
        "kwargs": redacted_view(letter.kwargs),
        "headers": redacted_view(letter.headers),
        "options": letter.options,
        "replayable": letter.replayable,
        "replayed_task_id": letter.replayed_task_id,
        "replayed_at": letter.replayed_at,
        "discarded_reason": letter.discarded_reason,
        "discarded_at": letter.discarded_at,
        "created_at": letter.created_at,
        "updated_at": letter.updated_at,
    }


class DeadLettersPublic(BaseModel):
    """A page of dead letters, newest first."""

    data: list[DeadLetterPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


class DeadLetterAttemptPublic(BaseModel):
    """One failed execution of a dead letter's task (message and traceback redacted)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    attempt: int
    worker: str | None
    exc_type: str | None
    message: str
    traceback: str | None
    category: str
    reason: str
    resource: str | None
    retry_after: float | None
    fingerprint: str
    status_code: int | None
    decision: str
    decision_reason: str | None
    delay: float | None
    started_at: dt.datetime | None
    failed_at: dt.datetime
    duration_ms: float | None


class ReplayRecordPublic(BaseModel):
    """One replay of a dead letter: the task it published."""

    model_config = ConfigDict(from_attributes=True)

    task_id: str
    queue: str | None
    forced: bool
    created_at: dt.datetime


class DeadLetterDetailPublic(DeadLetterPublic):
    """A dead letter with its failed attempts and its replays."""

    failed_attempts: list[DeadLetterAttemptPublic]
    replays: list[ReplayRecordPublic]

    @classmethod
    def from_records(
        cls,
        letter: DeadLetterRecord,
        *,
        attempts: Sequence[FailedAttempt],
        replays: Sequence[ReplayRequestRecord],
    ) -> DeadLetterDetailPublic:
        """The public view of a dead letter, its attempts and its replays."""
        return cls(
            **_letter_fields(letter),
            failed_attempts=[DeadLetterAttemptPublic.model_validate(a) for a in attempts],
            replays=[ReplayRecordPublic.model_validate(r) for r in replays],
        )


class ReplayRequest(BaseModel):
    """Optional edits for a replay. Leave ``[REDACTED]`` where a secret was shown: its original is restored."""

    model_config = ConfigDict(extra="forbid")

    args: list[Any] | None = Field(default=None, description="New positional arguments (default: as stored).")
    kwargs: dict[str, Any] | None = Field(default=None, description="New keyword arguments (default: as stored).")
    queue: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=NO_NUL,
        description="Publish to this queue instead of the original route.",
    )
    force: bool = Field(default=False, description="Replay even if it was replayed before.")


class ReplayPublic(BaseModel):
    """A replay that was published."""

    dead_letter_id: int
    task_id: str = Field(description="The id of the new task.")
    task_name: str
    queue: str | None
    replayed_at: dt.datetime
    forced: bool = Field(description="Whether the dead letter had been replayed before.")
    repeated: bool = Field(
        description="True when an earlier request with the same Idempotency-Key made this replay; "
        "nothing was published again."
    )


class DiscardRequest(BaseModel):
    """Why a dead letter is discarded (sent as the ``reason`` query parameter of ``DELETE``)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_DISCARD_REASON, pattern=NO_NUL, description="Why it is discarded.")
