"""Public schemas of dead letters: what the API (and ``function-runner dlq --json``) shows and accepts.

Payloads are shown through :func:`~error_handling.sealing.redacted_view`: each secret is ``[REDACTED]``,
never its sealed token and never its value; and only for one dead letter (:class:`DeadLetterDetailPublic`):
a list, a dry-run sample or a discard answers with :class:`DeadLetterPublic`, which leaves the payload
(args, kwargs, headers) out, as the attempts list leaves out tracebacks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.params import AwareDatetime, copy_fields
from error_handling.persistence.models import (
    DeadLetterRecord,
    DeadLetterStatus,
    FailedAttempt,
    JobAction,
    ReplayJobRecord,
    ReplayJobStatus,
    ReplayRequestRecord,
)
from error_handling.persistence.replay_jobs import DeadLetterFilter
from error_handling.sealing import redacted_view

__all__ = [
    "BulkReplayPreview",
    "BulkReplayRequest",
    "DeadLetterAttemptPublic",
    "DeadLetterDetailPublic",
    "DeadLetterPublic",
    "DeadLetterQuery",
    "DeadLetterSelection",
    "DeadLettersPublic",
    "DiscardRequest",
    "ReplayJobPublic",
    "ReplayPublic",
    "ReplayRecordPublic",
    "ReplayRequest",
]

#: Longest accepted discard reason.
MAX_DISCARD_REASON = 1000
#: Text the database can store: anything but NUL.
NO_NUL = r"^[^\x00]*$"


class DeadLetterPublic(BaseModel):
    """A dead letter without its payload (``GET /dead-letters/{id}`` shows it)."""

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
    options: Any = Field(description="Delivery options (exchange, routing_key, priority, time limits).")
    replayable: bool = Field(description="False when the arguments could not be stored faithfully.")
    replayed_task_id: str | None = Field(description="The task its latest replay published.")
    replayed_at: dt.datetime | None
    discarded_reason: str | None
    discarded_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    purged_at: dt.datetime | None = Field(
        default=None,
        description="When retention purged its secrets (a grace period after a replay or a discard): "
        "it can no longer be replayed.",
    )

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
        "options": letter.options,
        "replayable": letter.replayable,
        "replayed_task_id": letter.replayed_task_id,
        "replayed_at": letter.replayed_at,
        "discarded_reason": letter.discarded_reason,
        "discarded_at": letter.discarded_at,
        "created_at": letter.created_at,
        "updated_at": letter.updated_at,
        "purged_at": letter.purged_at,
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
    """A dead letter with its redacted payload, its failed attempts and its replays."""

    args: Any = Field(description="Positional arguments; each secret is [REDACTED].")
    kwargs: Any = Field(description="Keyword arguments; each secret is [REDACTED].")
    headers: Any = Field(description="Custom message headers; each secret is [REDACTED].")
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
            args=redacted_view(letter.args),
            kwargs=redacted_view(letter.kwargs),
            headers=redacted_view(letter.headers),
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
    force: bool = Field(default=False, strict=True, description="Replay even if it was replayed before.")


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


#: The highest accepted bulk-replay rate (messages per second).
MAX_REPLAY_RATE = 10_000.0
#: The largest dry-run sample.
MAX_SAMPLE_SIZE = 100


#: A text field of the dead-letter filter: not empty, at most 255 characters, no NUL.
FilterText = Annotated[str | None, Field(min_length=1, max_length=255, pattern=NO_NUL)]


class DeadLetterSelection(BaseModel):
    """Which dead letters a listing or a bulk replay takes (unset fields match anything)."""

    task_name: FilterText = None
    category: FilterText = None
    reason: FilterText = None
    fingerprint: FilterText = None
    queue: FilterText = None
    search: FilterText = Field(default=None, description="Text in the error message.")
    since: AwareDatetime | None = Field(default=None, description="Created at or after (ISO 8601 with timezone).")
    until: AwareDatetime | None = Field(default=None, description="Created before (ISO 8601 with timezone).")

    def to_filter(self) -> DeadLetterFilter:
        """The dead-letter filter of the selection."""
        return DeadLetterFilter(**self.model_dump(include=set(DeadLetterSelection.model_fields)))


class DeadLetterQuery(DeadLetterSelection):
    """The filter of ``GET /dead-letters`` as query parameters, where ``search`` is spelled ``q``."""

    model_config = ConfigDict(alias_generator=lambda name: "q" if name == "search" else name)


class BulkReplayRequest(DeadLetterSelection):
    """Replay every pending dead letter matching a filter (unset fields match anything)."""

    model_config = ConfigDict(extra="forbid")

    dry_run: bool = Field(default=False, strict=True, description="Return the count and a sample; publish nothing.")
    rate_per_second: float | None = Field(
        default=None,
        gt=0,
        le=MAX_REPLAY_RATE,
        strict=True,
        description="At most this many publishes per second (default: no limit).",
    )
    sample_size: int = Field(
        default=10, strict=True, ge=0, le=MAX_SAMPLE_SIZE, description="How many matches a dry run shows."
    )

    @field_validator("since", "until")
    @classmethod
    def _in_utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is None:
            return None
        try:
            return value.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError("date-time out of range") from None


class BulkReplayPreview(BaseModel):
    """What a bulk replay would take (a dry run: nothing was published)."""

    dry_run: bool = True
    count: int = Field(description="How many pending dead letters match.")
    sample: list[DeadLetterPublic] = Field(description="The first matches, oldest first (the order of the replay).")


class ReplayJobPublic(BaseModel):
    """A bulk replay (or discard) job and its progress."""

    id: int
    status: ReplayJobStatus
    action: JobAction = Field(default=JobAction.REPLAY, description="What the job does with each letter.")
    filter: dict[str, Any] = Field(description="The dead-letter filter (only pending dead letters are replayed).")
    rate_per_second: float | None = Field(description="Publishes per second at most; null: no limit.")
    total: int = Field(description="How many dead letters matched when the job was created.")
    published: int
    skipped: int = Field(description="Not replayable as stored.")
    failed: int = Field(description="Could not be published (their secrets could not be unsealed).")
    discarded: int = Field(default=0, description="Discarded by a discard job.")
    reason: str | None = Field(default=None, description="A discard job's reason, given to each letter.")
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    error: str | None

    @classmethod
    def from_record(cls, job: ReplayJobRecord) -> ReplayJobPublic:
        """The public view of a stored job."""
        return copy_fields(cls, job, filter=dict(job.filter or {}))
