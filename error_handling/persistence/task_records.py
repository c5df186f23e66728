"""Task records (``fr_tasks``): created, locked and read in one statement, and updated in bulk.

Every writer locks a task's row before changing anything of the task (``SELECT ... FOR UPDATE`` on
Postgres; SQLite serialises writers), in task id order, so racing processes see one another's writes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence import sanitise
from error_handling.persistence.bulk import insert_many, is_postgres, json_rows
from error_handling.persistence.failure_rows import state_after
from error_handling.persistence.models import TaskRecord, TaskState
from error_handling.persistence.reports import FailureReport, TaskPayload
from error_handling.policy import Decision

TASKS: sa.Table = TaskRecord.__table__  # type: ignore[assignment]


@dataclasses.dataclass(frozen=True)
class TaskRead:
    """A task's record as :func:`upsert_tasks` read it."""

    state: TaskState
    attempts: int
    #: Inserted by this statement (Postgres tells; elsewhere always False).
    inserted: bool


def lock_task(session: Session, task_id: str) -> TaskRecord | None:
    """The task's record, locked for the transaction, or None."""
    return session.execute(
        sa.select(TaskRecord).where(TaskRecord.task_id == task_id).with_for_update()
    ).scalar_one_or_none()


def ensure_task(session: Session, *, task_id: str, payload: TaskPayload, now: dt.datetime) -> TaskRecord:
    """The task's record, created if it has none, locked, as an ORM object."""
    upsert_tasks(session, [task_row(task_id, payload, now)])
    task = lock_task(session, task_id)  # this transaction holds its lock already: no wait
    assert task is not None
    return task


def task_row(
    task_id: str,
    payload: TaskPayload,
    now: dt.datetime,
    report: FailureReport | None = None,
    decision: Decision | None = None,
) -> dict[str, Any]:
    """A new task record: with a failure ``report`` and its ``decision``, already in the state they lead
    to (see :func:`~error_handling.persistence.failure_recording.record_failures`); else ``retrying`` with no
    attempt."""
    row = {
        "task_id": task_id,
        "task_name": payload.task_name,
        "queue": payload.queue,
        "state": TaskState.RETRYING,
        "attempts": 0,
        "last_category": None,
        "last_reason": None,
        "user_message": None,
        "terminal_at": None,
        "args": payload.args,
        "kwargs": payload.kwargs,
        "options": payload.options,
        "headers": payload.headers,
        "replayable": payload.replayable,
        "root_id": payload.root_id,
        "parent_id": payload.parent_id,
        "replay_of": payload.replay_of,
        "created_at": now,
        "updated_at": now,
    }
    if report is not None and decision is not None:
        row.update(state_after(report, decision, 0))
    return sanitise.row(TASKS, row)


def upsert_tasks(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, TaskRead]:
    """Create the records of tasks (:func:`task_row`\\ s of distinct tasks, in task id order) where they
    have none, lock them, and read their state and attempts: one statement; returns them by task id. A
    concurrent writer of the same task waits for this transaction."""
    returning: tuple[str, ...] = ("task_id", "state", "attempts")
    postgres = is_postgres(session)
    if postgres:
        returning += ("xmax = 0 AS inserted",)  # the row is new (not an existing one locked)
    found = insert_many(session, TASKS, rows, returning=returning, lock_existing=True)
    return {row.task_id: TaskRead(TaskState(row.state), row.attempts, postgres and row.inserted) for row in found}


#: :func:`update_tasks` on Postgres: the new states travel as one JSON document.
_UPDATE_TASKS_PG = sa.text(
    "UPDATE fr_tasks AS t SET state = v.state, attempts = v.attempts, last_category = v.last_category, "
    "last_reason = v.last_reason, updated_at = v.updated_at, "
    "user_message = coalesce(v.user_message, t.user_message), terminal_at = v.terminal_at "
    "FROM json_populate_recordset(NULL::fr_tasks, CAST(:rows AS json)) AS v WHERE t.task_id = v.task_id"
)
#: A task's new state after a failure, for many tasks at once (``executemany``).
_UPDATE_TASK = (
    sa.update(TASKS)
    .where(TASKS.c.task_id == sa.bindparam("b_task_id"))
    .values(
        attempts=sa.bindparam("b_attempts"),
        last_category=sa.bindparam("b_last_category"),
        last_reason=sa.bindparam("b_last_reason"),
        updated_at=sa.bindparam("b_updated_at", type_=TASKS.c.updated_at.type),
        state=sa.bindparam("b_state", type_=TASKS.c.state.type),
        user_message=sa.func.coalesce(
            sa.bindparam("b_user_message", type_=TASKS.c.user_message.type), TASKS.c.user_message
        ),
        terminal_at=sa.bindparam("b_terminal_at", type_=TASKS.c.terminal_at.type),
    )
)


def update_tasks(session: Session, changes: list[dict[str, Any]]) -> None:
    """Write the new states of tasks (:func:`~error_handling.persistence.failure_rows.state_after` with
    their ``task_id``): one statement. A ``user_message`` of None keeps the record's."""
    if not changes:
        return
    changes = [sanitise.row(TASKS, change) for change in changes]
    if is_postgres(session):
        session.connection().execute(_UPDATE_TASKS_PG, {"rows": json_rows(changes)})
    else:
        session.execute(_UPDATE_TASK, [{f"b_{key}": value for key, value in change.items()} for change in changes])


def payloads(session: Session, task_ids: Sequence[str]) -> dict[str, Any]:
    """What a dead letter copies of its task's record, by task id (one query)."""
    columns = ("task_id", "task_name", "queue", "args", "kwargs", "options", "headers", "replayable")
    rows = session.execute(sa.select(*(TASKS.c[name] for name in columns)).where(TASKS.c.task_id.in_(task_ids)))
    return {row.task_id: row for row in rows}


def task_names(session: Session, *, task_ids: Sequence[str]) -> dict[str, str]:
    """The task names of these recorded tasks, by task id."""
    if not task_ids:
        return {}
    rows = session.execute(sa.select(TaskRecord.task_id, TaskRecord.task_name).where(TaskRecord.task_id.in_(task_ids)))
    return {task_id: name for task_id, name in rows}


def existing_task_ids(session: Session, task_ids: Collection[str]) -> set[str]:
    """Which of ``task_ids`` have a task record (``fr_tasks``)."""
    if not task_ids:
        return set()
    return set(session.execute(sa.select(TaskRecord.task_id).where(TaskRecord.task_id.in_(task_ids))).scalars())
