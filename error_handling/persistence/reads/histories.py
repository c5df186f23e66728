"""Everything recorded about one task, and its replay lineage: attempts, runs, dead letter, replays,
compensation steps, fallbacks and lost deliveries."""

from __future__ import annotations

import dataclasses

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence import compensation, sanitise
from error_handling.persistence.models import (
    CompensationStep,
    DeadLetterRecord,
    FailedAttempt,
    FallbackEvent,
    LostDelivery,
    ReplayRequestRecord,
    ScheduledRun,
    TaskRecord,
    TaskState,
)


@dataclasses.dataclass(frozen=True)
class ReplayLink:
    """A task published as a replay of a dead letter.

    Attributes:
        task_id: the new task's id.
        task: its record, or None when it never failed (it succeeded at once, or has not run yet).
    """

    task_id: str
    task: TaskRecord | None


@dataclasses.dataclass(frozen=True)
class TaskHistory:
    """Everything recorded about one task, and its replay lineage.

    Attributes:
        task_id: the task asked about.
        task: its record; None only for a replay that has not failed (known from its dead letter).
        attempts: every failed attempt, oldest first.
        runs: its scheduled retries and resource waits, oldest first.
        dead_letter: its dead letter, if it was dead-lettered.
        replay_of: the dead letter this task replays, if it is a replay.
        replays: the tasks published as replays of its dead letter, oldest first.
        compensation: the compensation steps it recorded, in order, with their outcomes.
        fallbacks: its calls of fallback chains not answered by the first provider, oldest first.
        lost_deliveries: deliveries that ended without an outcome (its worker process died), in order.
    """

    task_id: str
    task: TaskRecord | None
    attempts: list[FailedAttempt]
    runs: list[ScheduledRun]
    dead_letter: DeadLetterRecord | None
    replay_of: DeadLetterRecord | None
    replays: list[ReplayLink]
    compensation: list[CompensationStep] = dataclasses.field(default_factory=list)
    fallbacks: list[FallbackEvent] = dataclasses.field(default_factory=list)
    lost_deliveries: list[LostDelivery] = dataclasses.field(default_factory=list)

    @property
    def executions(self) -> int:
        """How many deliveries ran the task, as recorded: the lost ones, the failed attempts that ran
        (not a ``worker_lost`` verdict given instead of running it), and the success that ended it."""
        ran = sum(1 for attempt in self.attempts if attempt.started_at is not None)
        succeeded = self.task is not None and self.task.state is TaskState.SUCCEEDED
        return len(self.lost_deliveries) + ran + (1 if succeeded else 0)


def _lost(session: Session, task_id: str) -> list[LostDelivery]:
    return list(
        session.execute(
            sa.select(LostDelivery)
            .where(LostDelivery.task_id == task_id)
            .order_by(LostDelivery.attempt, LostDelivery.delivery)
        ).scalars()
    )


def _fallbacks(session: Session, task_id: str) -> list[FallbackEvent]:
    return list(
        session.execute(
            sa.select(FallbackEvent).where(FallbackEvent.task_id == task_id).order_by(FallbackEvent.id)
        ).scalars()
    )


def task_history(session: Session, *, task_id: str) -> TaskHistory | None:
    """Return the history of a task, or None when nothing is recorded about it.

    A task that never failed has no record; if it is the replay of a dead letter (a replay request
    names it), or it was served by a fallback, its history is that alone. A task id too long to be
    stored as it is is looked up by its key (:func:`~error_handling.persistence.sanitise.task_key`).
    """
    task_id = sanitise.task_key(task_id)
    task = session.get(TaskRecord, task_id)
    if task is None:
        fallbacks = _fallbacks(session, task_id)
        origin = (
            session.execute(
                sa.select(DeadLetterRecord)
                .join(ReplayRequestRecord, ReplayRequestRecord.dead_letter_id == DeadLetterRecord.id)
                .where(ReplayRequestRecord.task_id == task_id)
            ).scalar_one_or_none()
            or session.execute(
                sa.select(DeadLetterRecord).where(DeadLetterRecord.replayed_task_id == task_id).limit(1)
            ).scalar_one_or_none()
        )
        if origin is None and not fallbacks:
            return None
        return TaskHistory(
            task_id=task_id,
            task=None,
            attempts=[],
            runs=[],
            dead_letter=None,
            replay_of=origin,
            replays=[],
            fallbacks=fallbacks,
        )
    attempts = session.execute(
        sa.select(FailedAttempt).where(FailedAttempt.task_id == task_id).order_by(FailedAttempt.attempt)
    ).scalars()
    runs = session.execute(
        sa.select(ScheduledRun).where(ScheduledRun.task_id == task_id).order_by(ScheduledRun.attempt)
    ).scalars()
    letter = session.execute(
        sa.select(DeadLetterRecord).where(DeadLetterRecord.task_id == task_id)
    ).scalar_one_or_none()
    replay_of = session.get(DeadLetterRecord, task.replay_of) if task.replay_of is not None else None
    return TaskHistory(
        task_id=task_id,
        task=task,
        attempts=list(attempts),
        runs=list(runs),
        dead_letter=letter,
        replay_of=replay_of,
        replays=_replays(session, letter) if letter is not None else [],
        compensation=list(compensation.task_steps(session, task_id=task_id)),
        fallbacks=_fallbacks(session, task_id),
        lost_deliveries=_lost(session, task_id),
    )


def _replays(session: Session, letter: DeadLetterRecord) -> list[ReplayLink]:
    """Every task published as a replay of ``letter``, oldest first: those recorded as replay requests
    (each replay, forced ones included), and any task that says it replays the letter."""
    requested = session.execute(
        sa.select(ReplayRequestRecord.task_id, ReplayRequestRecord.created_at)
        .where(ReplayRequestRecord.dead_letter_id == letter.id)
        .order_by(ReplayRequestRecord.created_at, ReplayRequestRecord.id)
    ).all()
    tasks = {
        t.task_id: t
        for t in session.execute(
            sa.select(TaskRecord).where(
                sa.or_(
                    TaskRecord.replay_of == letter.id,
                    TaskRecord.task_id.in_([task_id for task_id, _ in requested]),
                )
            )
        ).scalars()
    }
    order = [task_id for task_id, _ in requested]
    order += sorted((t for t in tasks if t not in set(order)), key=lambda t: tasks[t].created_at)
    if letter.replayed_task_id is not None and letter.replayed_task_id not in order:
        order.append(letter.replayed_task_id)
    return [ReplayLink(task_id=task_id, task=tasks.get(task_id)) for task_id in order]
