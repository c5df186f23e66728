"""Dead-letter operations: show, discard, and the bookkeeping of a replay (lists and a letter's
attempts and replays are read by :mod:`error_handling.persistence.reads.dlq`).

Keyword-only functions called inside the caller's transaction, by the API and the CLI alike. The
functions that change a dead letter lock its row first (``SELECT ... FOR UPDATE`` on Postgres; SQLite
serialises writers), so two operators acting on one dead letter at once see each other's change: one
replays or discards it, the other is refused.

A dead letter is ``pending`` until an operator replays it (``replayed``; again only with ``force``) or
discards it (``discarded``, terminal: its task's state becomes ``discarded`` too). A bulk replay job
claims the letters of the batch it publishes (``replaying``, with the job's id): while claimed, a letter
can be neither replayed nor discarded. Every change is audited in the same transaction
(:mod:`error_handling.persistence.audit`). The refusals::

    FunctionRunnerError
    └── DeadLetterError                     a dead-letter operation was refused
        ├── DeadLetterNotFound              no dead letter has this id
        └── DeadLetterConflict              the dead letter's state forbids the operation
            ├── AlreadyReplayed             replayed before (replay again with force)
            ├── AlreadyDiscarded            discarded: terminal
            ├── BeingReplayed               claimed by a bulk replay job publishing it
            ├── NotReplayable               its payload could not be stored faithfully
            ├── PayloadPurged               retention purged its secrets: it cannot be replayed
            └── IdempotencyKeyReused        the Idempotency-Key was used for another dead letter
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.exceptions import FunctionRunnerError
from error_handling.persistence import audit, compensation
from error_handling.persistence.models import (
    DeadLetterRecord,
    DeadLetterStatus,
    ReplayRequestRecord,
    RunStatus,
    ScheduledRun,
    TaskRecord,
    TaskState,
)
from error_handling.redaction import redact_text

__all__ = [
    "AlreadyDiscarded",
    "AlreadyReplayed",
    "BeingReplayed",
    "DeadLetterConflict",
    "DeadLetterError",
    "DeadLetterNotFound",
    "IdempotencyKeyReused",
    "NotReplayable",
    "PayloadPurged",
    "check_replayable",
    "discard",
    "find_replay_request",
    "get_dead_letter",
    "lock_dead_letter",
    "mark_replayed",
]


class DeadLetterError(FunctionRunnerError):
    """A dead-letter operation was refused."""

    def __init__(self, message: str, *, dead_letter_id: int) -> None:
        super().__init__(message)
        self.message = message
        self.dead_letter_id = dead_letter_id


class DeadLetterNotFound(DeadLetterError):
    """No dead letter has this id."""

    def __init__(self, dead_letter_id: int) -> None:
        super().__init__(f"dead letter {dead_letter_id} does not exist", dead_letter_id=dead_letter_id)


class DeadLetterConflict(DeadLetterError):
    """The dead letter's state forbids the operation."""

    #: The message, formatted with ``dead_letter_id`` and the subclass's :attr:`details`.
    template: ClassVar[str] = "dead letter {dead_letter_id} cannot be changed in its state"
    #: The names of the attributes a subclass takes after the dead letter's id, in order.
    details: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dead_letter_id: int, *values: Any, message: str | None = None) -> None:
        for name, value in zip(self.details, values, strict=True):
            setattr(self, name, value)
        if message is None:
            message = self.template.format_map({**vars(self), "dead_letter_id": dead_letter_id})
        super().__init__(message, dead_letter_id=dead_letter_id)


class AlreadyReplayed(DeadLetterConflict):
    """The dead letter was replayed before; replaying it again needs ``force``."""

    template = (
        "dead letter {dead_letter_id} was already replayed as task {replayed_task_id}; pass force to replay it again"
    )
    details = ("replayed_task_id",)
    replayed_task_id: str | None


class AlreadyDiscarded(DeadLetterConflict):
    """The dead letter was discarded: a terminal state."""

    template = (
        "dead letter {dead_letter_id} was discarded; a discarded dead letter cannot be replayed or discarded again"
    )


class BeingReplayed(DeadLetterConflict):
    """A bulk replay job has claimed the dead letter and is publishing it (status ``replaying``)."""

    template = (
        "dead letter {dead_letter_id} is being replayed by replay job {job_id}; it cannot be replayed or "
        "discarded until the job's batch ends"
    )
    details = ("job_id",)
    job_id: int | None


class NotReplayable(DeadLetterConflict):
    """The dead letter's arguments could not be stored faithfully, so it cannot be published as it was."""

    template = (
        "dead letter {dead_letter_id} is not replayable as stored: its arguments were not JSON-serialisable; "
        "send both args and kwargs in full to replay it with arguments you provide"
    )


class PayloadPurged(DeadLetterConflict):
    """Retention purged the dead letter's sealed secrets (a grace period after it was replayed or
    discarded), so it cannot be published again."""

    template = (
        "dead letter {dead_letter_id} cannot be replayed: its secrets were purged by retention at "
        "{purged_at} (FUNCTION_RUNNER_RETENTION_PURGE_REPLAYED_AFTER_DAYS)"
    )

    def __init__(self, dead_letter_id: int, purged_at: dt.datetime) -> None:
        self.purged_at = purged_at
        super().__init__(
            dead_letter_id, message=self.template.format(dead_letter_id=dead_letter_id, purged_at=purged_at.isoformat())
        )


class IdempotencyKeyReused(DeadLetterConflict):
    """The ``Idempotency-Key`` was already used to replay a different dead letter."""

    def __init__(self, dead_letter_id: int, other_dead_letter_id: int | None = None) -> None:
        other = f"dead letter {other_dead_letter_id}" if other_dead_letter_id is not None else "another dead letter"
        super().__init__(
            dead_letter_id,
            message=f"this Idempotency-Key was already used to replay {other}; use a new key for dead letter {dead_letter_id}",
        )
        self.other_dead_letter_id = other_dead_letter_id


def get_dead_letter(session: Session, *, dead_letter_id: int) -> DeadLetterRecord:
    """Return a dead letter.

    Raises:
        DeadLetterNotFound: no dead letter has this id.
    """
    letter = session.get(DeadLetterRecord, dead_letter_id)
    if letter is None:
        raise DeadLetterNotFound(dead_letter_id)
    return letter


def lock_dead_letter(session: Session, *, dead_letter_id: int) -> DeadLetterRecord:
    """Return a dead letter, its row locked until the transaction ends.

    Raises:
        DeadLetterNotFound: no dead letter has this id.
    """
    letter = session.execute(
        sa.select(DeadLetterRecord)
        .where(DeadLetterRecord.id == dead_letter_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if letter is None:
        raise DeadLetterNotFound(dead_letter_id)
    return letter


def find_replay_request(session: Session, *, idempotency_key: str) -> ReplayRequestRecord | None:
    """The replay made by an earlier request with this ``Idempotency-Key``, if any."""
    return session.execute(
        sa.select(ReplayRequestRecord).where(ReplayRequestRecord.idempotency_key == idempotency_key)
    ).scalar_one_or_none()


def check_replayable(letter: DeadLetterRecord, *, force: bool = False, edits_complete: bool = False) -> None:
    """Refuse a replay the dead letter's state forbids.

    Args:
        letter: the dead letter (locked, for a replay about to happen).
        force: allow replaying a dead letter that was replayed before.
        edits_complete: the operator sends both args and kwargs, so a payload that could not be stored
            faithfully is not needed.

    Raises:
        AlreadyDiscarded: it was discarded.
        BeingReplayed: a bulk replay job claimed it (even with ``force``).
        AlreadyReplayed: it was replayed before and ``force`` is false.
        PayloadPurged: retention purged its secrets.
        NotReplayable: its payload could not be stored faithfully and the edits do not replace it.
    """
    if letter.status is DeadLetterStatus.DISCARDED:
        raise AlreadyDiscarded(letter.id)
    if letter.status is DeadLetterStatus.REPLAYING:
        raise BeingReplayed(letter.id, letter.replay_job_id)
    if letter.status is DeadLetterStatus.REPLAYED and not force:
        raise AlreadyReplayed(letter.id, letter.replayed_task_id)
    if letter.purged_at is not None:
        raise PayloadPurged(letter.id, letter.purged_at)
    if not letter.replayable and not edits_complete:
        raise NotReplayable(letter.id)


def mark_replayed(
    session: Session,
    *,
    letter: DeadLetterRecord,
    task_id: str,
    now: dt.datetime,
    queue: str | None = None,
    idempotency_key: str | None = None,
) -> ReplayRequestRecord:
    """Record that ``letter`` (locked) was published again as ``task_id``, and flush.

    The flush makes a racing request with the same ``Idempotency-Key`` fail here, before anything is
    published: publish after this call, inside the same transaction, and commit after publishing.

    Raises:
        IdempotencyKeyReused: another replay holds ``idempotency_key`` (the transaction must be rolled back).
    """
    forced = letter.status is DeadLetterStatus.REPLAYED
    dead_letter_id = letter.id  # read now: after a failed flush the row cannot be loaded again
    request = ReplayRequestRecord(
        idempotency_key=idempotency_key,
        dead_letter_id=dead_letter_id,
        task_id=task_id,
        queue=queue,
        forced=forced,
        created_at=now,
    )
    letter.status = DeadLetterStatus.REPLAYED
    letter.replayed_task_id = task_id
    letter.replayed_at = now
    letter.updated_at = now
    session.add(request)
    try:
        session.flush()
    except sa.exc.IntegrityError:
        if idempotency_key is None:
            raise
        raise IdempotencyKeyReused(dead_letter_id) from None
    return request


def discard(
    session: Session,
    *,
    dead_letter_id: int,
    reason: str,
    now: dt.datetime,
    actor: str = audit.UNKNOWN_ACTOR,
) -> DeadLetterRecord:
    """Discard a dead letter: it and its task reach the terminal state ``discarded``; audited as
    ``actor``'s ``dead_letter.discard`` in the same transaction.

    Any run of the task still scheduled is cancelled; compensation steps its saga still has recorded
    become pending (the dispatcher's sweep publishes the compensation).

    Raises:
        DeadLetterNotFound: no dead letter has this id.
        AlreadyReplayed: it was replayed (its replay is a task of its own now).
        AlreadyDiscarded: it was discarded before.
        BeingReplayed: a bulk replay job claimed it.
    """
    letter = lock_dead_letter(session, dead_letter_id=dead_letter_id)
    if letter.status is DeadLetterStatus.DISCARDED:
        raise AlreadyDiscarded(letter.id)
    if letter.status is DeadLetterStatus.REPLAYING:
        raise BeingReplayed(letter.id, letter.replay_job_id)
    if letter.status is DeadLetterStatus.REPLAYED:
        raise AlreadyReplayed(letter.id, letter.replayed_task_id)
    letter.status = DeadLetterStatus.DISCARDED
    letter.discarded_reason = reason
    letter.discarded_at = now
    letter.updated_at = now
    task = session.execute(
        sa.select(TaskRecord).where(TaskRecord.task_id == letter.task_id).with_for_update()
    ).scalar_one_or_none()
    if task is not None:
        task.state = TaskState.DISCARDED
        task.terminal_at = now
        task.updated_at = now
    compensation.mark_pending(session, saga_id=(task.root_id if task else None) or letter.task_id, now=now)
    session.execute(
        sa.update(ScheduledRun)
        .where(
            ScheduledRun.task_id == letter.task_id,
            ScheduledRun.status.in_([RunStatus.PENDING, RunStatus.DISPATCHED]),
        )
        .values(status=RunStatus.CANCELLED, updated_at=now)
    )
    detail = {"task_id": letter.task_id, "task_name": letter.task_name, "reason": redact_text(reason)}
    audit.record(session, audit.AuditAction.DEAD_LETTER_DISCARD, letter.id, actor=actor, now=now, detail=detail)
    return letter
