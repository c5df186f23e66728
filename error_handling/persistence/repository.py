"""Keyword-only repository functions: the only code that writes function-runner's tables.

The wrapper, the dispatcher, the API and the CLI all go through these functions, each called inside
one transaction (:func:`error_handling.persistence.db.transaction`). The functions that change a task
lock its ``fr_tasks`` row first (``SELECT ... FOR UPDATE`` on Postgres; SQLite serialises writers), so
redeliveries, duplicate dispatches and racing processes see one another's writes and cannot record a
second terminal state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.categories import Category, Reason
from error_handling.classification import Classification
from error_handling.persistence import compensation, sanitise
from error_handling.persistence.models import (
    TERMINAL_STATES,
    DeadLetterRecord,
    DeadLetterStatus,
    DecisionKind,
    ErrorCount,
    FailedAttempt,
    LostDelivery,
    RunKind,
    RunStatus,
    ScheduledRun,
    TaskRecord,
    TaskState,
    UTCDateTime,
)
from error_handling.policy import (
    DeadLetter,
    Decision,
    FailFast,
    RandomSource,
    RecoveryPolicy,
    Retry,
    Wait,
    budget_group,
    decide,
)


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
    """The outcome of :func:`record_failure`.

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


def _lock_task(session: Session, task_id: str) -> TaskRecord | None:
    return session.execute(
        sa.select(TaskRecord).where(TaskRecord.task_id == task_id).with_for_update()
    ).scalar_one_or_none()


def _insert_ignoring_conflicts(session: Session, table: sa.Table, values: dict[str, Any]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` on Postgres and SQLite."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())


def _ensure_task(session: Session, *, task_id: str, payload: TaskPayload, now: dt.datetime) -> TaskRecord:
    """The task's record, created if it has none, locked, as an ORM object."""
    _upsert_tasks(session, [_task_row(task_id, payload, now)])
    task = _lock_task(session, task_id)  # this transaction holds its lock already: no wait
    assert task is not None
    return task


def _decision_from_attempt(row: FailedAttempt) -> Decision:
    """Rebuild the decision stored with an attempt (for answering a redelivery)."""
    at = row.decision_at or row.failed_at
    if row.decision is DecisionKind.RETRY:
        return Retry(at=at, delay=row.delay or 0.0)
    if row.decision is DecisionKind.WAIT:
        return Wait(resource=row.resource or "", deadline=at, check_at=at)
    if row.decision is DecisionKind.FAIL_FAST:
        return FailFast(reason=row.decision_reason or row.reason, user_message=row.user_message or "")
    return DeadLetter(reason=row.decision_reason or row.reason)


def _waiting_since(session: Session, task_id: str, resource: str | None) -> dt.datetime | None:
    return session.execute(
        sa.select(sa.func.min(ScheduledRun.created_at)).where(
            ScheduledRun.task_id == task_id,
            ScheduledRun.kind == RunKind.RESOURCE_WAIT,
            ScheduledRun.resource == resource,
        )
    ).scalar_one_or_none()


def _finish_run(session: Session, run_id: int | None, now: dt.datetime) -> None:
    if run_id is not None:
        session.execute(
            sa.update(ScheduledRun)
            .where(
                ScheduledRun.id == run_id,
                ScheduledRun.status.in_([RunStatus.DISPATCHED, RunStatus.RUNNING, RunStatus.PENDING]),
            )
            .values(status=RunStatus.DONE, updated_at=now)
        )


def _add_dead_letter(
    session: Session, *, task_id: str, task: Any, reason: str, last: dict[str, Any], attempts: int, now: dt.datetime
) -> int:
    """Insert the task's dead letter; return its id (see :func:`_letter_row`)."""
    row = _letter_row(task_id=task_id, task=task, reason=reason, last=last, attempts=attempts, now=now)
    return _insert_returning_ids(session, _LETTERS, [row])[task_id]


def record_failure(
    session: Session,
    *,
    report: FailureReport,
    policy: RecoveryPolicy,
    rng: RandomSource | None = None,
) -> Recorded:
    """Record a failed attempt and carry out the policy's decision, in the caller's transaction.

    Writes the attempt, the decision's entry (scheduled retry, resource wait, fail-fast outcome or dead
    letter) and the task's new state. A redelivered attempt that was already recorded writes nothing
    and returns the first decision with ``duplicate=True``. A task already in a terminal state also
    writes nothing. The same as :func:`record_failures` with one report.
    """
    return record_failures(session, reports=[report], policy=policy, rng=rng)[0]


def record_failures(
    session: Session,
    *,
    reports: Sequence[FailureReport],
    policy: RecoveryPolicy | Sequence[RecoveryPolicy],
    rng: RandomSource | None = None,
) -> list[Recorded]:
    """Record several failed attempts in the caller's transaction, each as :func:`record_failure`
    would, with a handful of set-based statements for all of them. Returns one outcome per report, in
    the order of ``reports``.

    ``policy`` is the policy of every report, or one per report. Reports of the same task are
    recorded one after the other, in their order (the second sees the first: a redelivery of an
    attempt recorded earlier in the same call is a duplicate).

    Every failure of a worker goes through here before its message is acknowledged, so the statements
    are few and set-based: the tasks' rows are created or locked and read by one upsert (in task id
    order, the order every writer locks them in); the history of the tasks that failed before is read
    by one query; then one statement each for the attempts, the finished runs, the new runs, the dead
    letters and the tasks' new state, and the roll-up last (its rows are locked only until the commit,
    hour rows before day rows, each in key order).
    """
    policies = [policy] * len(reports) if isinstance(policy, RecoveryPolicy) else list(policy)
    if len(policies) != len(reports):
        raise ValueError(f"{len(reports)} reports but {len(policies)} policies")
    reports = [_keyed(report) for report in reports]
    results: list[Recorded | None] = [None] * len(reports)
    written: list[dict[str, Any]] = []
    for indices in _rounds(reports):
        outcomes, attempts = _record_round(session, [reports[i] for i in indices], [policies[i] for i in indices], rng)
        for index, outcome in zip(indices, outcomes, strict=True):
            results[index] = outcome
        written.extend(attempts)
    _count_errors(session, written)
    return [result for result in results if result is not None]


def _keyed(report: FailureReport) -> FailureReport:
    """``report`` under the key its task is stored by (:func:`~error_handling.persistence.sanitise.task_key`)."""
    key = sanitise.task_key(report.task_id)
    return report if key == report.task_id else dataclasses.replace(report, task_id=key)


def _rounds(reports: Sequence[FailureReport]) -> list[list[int]]:
    """Split the reports' indices into rounds in which every task appears once (a task's n-th report
    goes in round n), each round in task id order."""
    rounds: list[list[int]] = []
    seen: dict[str, int] = {}
    for index, report in enumerate(reports):
        number = seen.get(report.task_id, 0)
        seen[report.task_id] = number + 1
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(index)
    for indices in rounds:
        indices.sort(key=lambda i: reports[i].task_id)
    return rounds


def _record_round(
    session: Session,
    reports: Sequence[FailureReport],
    policies: Sequence[RecoveryPolicy],
    rng: RandomSource | None,
) -> tuple[list[Recorded], list[dict[str, Any]]]:
    """Record reports of distinct tasks; return their outcomes and the attempts written.

    On Postgres a task's first failure needs no second statement for its task: its decision cannot
    depend on a history it does not have, so the upsert inserts the task's record already in the state
    that decision leads to, and tells which records it inserted (``xmax = 0``). A task that had a
    record goes the general way: its history is read, its decision taken, its record updated.
    """
    speculate = session.get_bind().dialect.name == "postgresql"
    firsts = [
        decide(r.classification, failures=1, now=r.failed_at, policy=p, rng=rng, retry_allowed=r.retry_allowed)
        if speculate
        else None
        for r, p in zip(reports, policies, strict=True)
    ]
    tasks = _upsert_tasks(
        session, [_task_row(r.task_id, r.payload, r.failed_at, r, d) for r, d in zip(reports, firsts, strict=True)]
    )
    history = _histories(
        session, [r.task_id for r in reports if tasks[r.task_id].attempts and not tasks[r.task_id].inserted]
    )
    outcomes: list[Recorded | None] = [None] * len(reports)
    written: list[tuple[int, FailureReport, Decision, dict[str, Any]]] = []
    changes: list[dict[str, Any]] = []
    for index, (report, policy) in enumerate(zip(reports, policies, strict=True)):
        task = tasks[report.task_id]
        first = firsts[index]
        if task.inserted and first is not None:
            written.append((index, report, first, _attempt_row(report, first, policy)))
            continue
        c = report.classification
        past = history.get(report.task_id, [])
        if any(attempt == report.attempt for attempt, _group in past):
            existing = session.execute(
                sa.select(FailedAttempt).where(
                    FailedAttempt.task_id == report.task_id, FailedAttempt.attempt == report.attempt
                )
            ).scalar_one()
            outcomes[index] = Recorded(decision=_decision_from_attempt(existing), duplicate=True)
            continue
        if task.state in TERMINAL_STATES:
            outcomes[index] = Recorded(decision=DeadLetter(reason=f"already_{task.state.value}"), duplicate=True)
            continue
        group = budget_group(c)
        waiting_since = None
        if past and c.category is Category.RESOURCE:
            waiting_since = _waiting_since(session, report.task_id, c.resource)
        decision = decide(
            c,
            failures=sum(1 for _attempt, past_group in past if past_group == group) + 1,
            now=report.failed_at,
            policy=policy,
            waiting_since=waiting_since,
            rng=rng,
            retry_allowed=report.retry_allowed,
        )
        written.append((index, report, decision, _attempt_row(report, decision, policy)))
        changes.append({"task_id": report.task_id, **_state_after(report, decision, task.attempts)})
    if not written:
        return [o for o in outcomes if o is not None], []

    _insert_many(session, _ATTEMPTS, [row for _i, _r, _d, row in written])
    finished = [report.run_id for _i, report, _d, _row in written if report.run_id is not None]
    if finished:
        session.execute(
            sa.update(_RUNS)
            .where(_RUNS.c.id.in_(finished), _RUNS.c.status.in_(_UNFINISHED_RUNS))
            .values(status=RunStatus.DONE, updated_at=max(r.failed_at for _i, r, _d, _row in written))
        )
    runs = _insert_returning_ids(session, _RUNS, [_run_row(r, d) for _i, r, d, _row in written if _delays(d)])
    ending = [r.task_id for _i, r, d, _row in written if isinstance(d, DeadLetter)]
    payloads = _payloads(session, ending) if ending else {}
    letters = _insert_returning_ids(
        session,
        _LETTERS,
        [
            _letter_row(
                task_id=r.task_id,
                task=payloads[r.task_id],
                reason=d.reason,
                last=row,
                attempts=max(tasks[r.task_id].attempts, r.attempt),
                now=r.failed_at,
            )
            for _i, r, d, row in written
            if isinstance(d, DeadLetter)
        ],
    )
    for index, report, decision, _row in written:
        outcomes[index] = Recorded(
            decision=decision, run_id=runs.get(report.task_id), dead_letter_id=letters.get(report.task_id)
        )
    _update_tasks(session, changes)
    return [o for o in outcomes if o is not None], [row for _i, _r, _d, row in written]


def _state_after(report: FailureReport, decision: Decision, attempts: int) -> dict[str, Any]:
    """What a failure changes in its task's record (``attempts``: the record's count before it)."""
    c = report.classification
    return {
        "attempts": max(attempts, report.attempt),
        "last_category": c.category.value,
        "last_reason": c.reason,
        "updated_at": report.failed_at,
        "state": _STATE_AFTER[_decision_kind(decision)],
        "user_message": decision.user_message if isinstance(decision, FailFast) else None,
        "terminal_at": None if _delays(decision) else report.failed_at,
    }


def _update_tasks(session: Session, changes: list[dict[str, Any]]) -> None:
    """Write the new states of tasks (``_state_after`` with their ``task_id``): one statement. A
    ``user_message`` of None keeps the record's."""
    if not changes:
        return
    changes = [sanitise.row(_TASKS, change) for change in changes]
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(_UPDATE_TASKS_PG, {"rows": json.dumps(changes, default=_json_value)})
    else:
        session.execute(_UPDATE_TASK, [{f"b_{key}": value for key, value in change.items()} for change in changes])


def _delays(decision: Decision) -> bool:
    return isinstance(decision, Retry | Wait)


def _attempt_row(report: FailureReport, decision: Decision, policy: RecoveryPolicy) -> dict[str, Any]:
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
        "decision": _decision_kind(decision),
        "decision_reason": getattr(decision, "reason", None),
        "decision_at": _decision_at(decision),
        "delay": decision.delay if isinstance(decision, Retry) else None,
        "started_at": report.started_at,
        "failed_at": now,
        "duration_ms": (now - report.started_at).total_seconds() * 1000 if report.started_at else None,
        "max_attempts": max_attempts(policy, c),
    }
    return sanitise.row(_ATTEMPTS, row)


def _run_row(report: FailureReport, decision: Decision) -> dict[str, Any]:
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
    return sanitise.row(_RUNS, row)


def _letter_row(
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
    return sanitise.row(_LETTERS, row)


def _insert_returning_ids(session: Session, table: sa.Table, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert rows of distinct tasks (one statement); return each new row's id by its task id."""
    return {task_id: int(row_id) for row_id, task_id in _insert_many(session, table, rows, returning=("id", "task_id"))}


def _insert_many(
    session: Session,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: tuple[str, ...] = (),
    lock_existing: bool = False,
) -> list[Any]:
    """Insert rows (every one with the same keys) in one statement; return the ``returning`` columns of
    each. ``lock_existing``: a row whose key exists already is locked and returned instead (its
    ``updated_at`` set to itself, which locks it as ``SELECT ... FOR UPDATE`` does).

    On Postgres the rows travel as one JSON document, expanded by ``json_populate_recordset``: the
    statement's text is the same whatever the number of rows, so the driver parses it once and the
    server prepares it once, and the rows are encoded by the C JSON encoder (a multi-row ``VALUES``
    list is a new statement for every batch size, and parsing it costs more than running it).
    Elsewhere: the dialect's multi-row insert.
    """
    if not rows:
        return []
    if session.get_bind().dialect.name != "postgresql":
        statement = _upsert(session)(table)
        if lock_existing:
            key = [c for c in table.primary_key.columns]
            statement = statement.on_conflict_do_update(index_elements=key, set_={"updated_at": table.c.updated_at})
        if returning:
            statement = statement.returning(*(table.c[name] for name in returning))
        result = session.execute(statement, list(rows))
        return list(result.all()) if returning else []
    statement = _json_insert(table.name, tuple(rows[0]), returning, lock_existing)
    result = session.connection().execute(statement, {"rows": json.dumps(rows, default=_json_value)})
    return list(result.all()) if returning else []


def _json_value(value: Any) -> Any:
    """A value the JSON encoder does not know, as ``json_populate_recordset`` reads it."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC times")
        return (value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@functools.cache
def _json_insert(table: str, columns: tuple[str, ...], returning: tuple[str, ...], lock_existing: bool) -> Any:
    """``INSERT INTO table (columns) SELECT columns FROM json_populate_recordset(...) [ON CONFLICT]
    [RETURNING]``."""
    names = ", ".join(columns)
    sql = (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, CAST(:rows AS json))"
    )
    if lock_existing:
        key = ", ".join(c.name for c in _TABLES[table].primary_key.columns)
        sql += f" ON CONFLICT ({key}) DO UPDATE SET updated_at = {table}.updated_at"
    if returning:
        sql += f" RETURNING {', '.join(returning)}"
    return sa.text(sql)


_TASKS: sa.Table = TaskRecord.__table__  # type: ignore[assignment]
_ATTEMPTS: sa.Table = FailedAttempt.__table__  # type: ignore[assignment]
_RUNS: sa.Table = ScheduledRun.__table__  # type: ignore[assignment]
_LETTERS: sa.Table = DeadLetterRecord.__table__  # type: ignore[assignment]
_TABLES = {table.name: table for table in (_TASKS, _ATTEMPTS, _RUNS, _LETTERS)}
#: Where a task goes after a failure, by the decision taken.
_STATE_AFTER = {
    DecisionKind.RETRY: TaskState.RETRYING,
    DecisionKind.WAIT: TaskState.WAITING,
    DecisionKind.FAIL_FAST: TaskState.FAILED_FAST,
    DecisionKind.DEAD_LETTER: TaskState.DEAD_LETTERED,
}
_UNFINISHED_RUNS = (RunStatus.DISPATCHED, RunStatus.RUNNING, RunStatus.PENDING)
#: :func:`_update_tasks` on Postgres: the new states travel as one JSON document.
_UPDATE_TASKS_PG = sa.text(
    "UPDATE fr_tasks AS t SET state = v.state, attempts = v.attempts, last_category = v.last_category, "
    "last_reason = v.last_reason, updated_at = v.updated_at, "
    "user_message = coalesce(v.user_message, t.user_message), terminal_at = v.terminal_at "
    "FROM json_populate_recordset(NULL::fr_tasks, CAST(:rows AS json)) AS v WHERE t.task_id = v.task_id"
)
#: A task's new state after a failure, for many tasks at once (``executemany``).
_UPDATE_TASK = (
    sa.update(_TASKS)
    .where(_TASKS.c.task_id == sa.bindparam("b_task_id"))
    .values(
        attempts=sa.bindparam("b_attempts"),
        last_category=sa.bindparam("b_last_category"),
        last_reason=sa.bindparam("b_last_reason"),
        updated_at=sa.bindparam("b_updated_at", type_=_TASKS.c.updated_at.type),
        state=sa.bindparam("b_state", type_=_TASKS.c.state.type),
        user_message=sa.func.coalesce(
            sa.bindparam("b_user_message", type_=_TASKS.c.user_message.type), _TASKS.c.user_message
        ),
        terminal_at=sa.bindparam("b_terminal_at", type_=_TASKS.c.terminal_at.type),
    )
)


def _upsert(session: Session) -> Any:
    """The dialect's ``INSERT`` with ``ON CONFLICT`` (Postgres and SQLite)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:  # pragma: no cover - the two supported databases
        raise NotImplementedError(f"no upsert for {dialect}")
    return insert


def _task_row(
    task_id: str,
    payload: TaskPayload,
    now: dt.datetime,
    report: FailureReport | None = None,
    decision: Decision | None = None,
) -> dict[str, Any]:
    """A new task record: with a failure ``report`` and its ``decision``, already in the state they lead
    to (see :func:`_record_round`); else ``retrying`` with no attempt."""
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
        row.update(_state_after(report, decision, 0))
    return sanitise.row(_TASKS, row)


def _upsert_tasks(session: Session, rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Create the records of tasks (``_task_row``s of distinct tasks, in task id order) where they have
    none, lock them, and read their state and attempts: one statement; returns them by task id. A
    concurrent writer of the same task waits for this transaction."""
    returning: tuple[str, ...] = ("task_id", "state", "attempts")
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        returning += ("xmax = 0 AS inserted",)  # the row is new (not an existing one locked)
    found = _insert_many(session, _TASKS, rows, returning=returning, lock_existing=True)
    return {row.task_id: _TaskRead(TaskState(row.state), row.attempts, postgres and row.inserted) for row in found}


@dataclasses.dataclass(frozen=True)
class _TaskRead:
    state: TaskState
    attempts: int
    #: Inserted by this statement (Postgres tells; elsewhere always False).
    inserted: bool


def _payloads(session: Session, task_ids: Sequence[str]) -> dict[str, Any]:
    """What a dead letter copies of its task's record, by task id (one query)."""
    columns = ("task_id", "task_name", "queue", "args", "kwargs", "options", "headers", "replayable")
    rows = session.execute(sa.select(*(_TASKS.c[name] for name in columns)).where(_TASKS.c.task_id.in_(task_ids)))
    return {row.task_id: row for row in rows}


def _histories(session: Session, task_ids: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
    """The recorded failed attempts of the tasks: for each task, its attempts' numbers with their
    retry budget group (one query)."""
    if not task_ids:
        return {}
    found: dict[str, list[tuple[int, str]]] = {}
    rows = session.execute(
        sa.select(_ATTEMPTS.c.task_id, _ATTEMPTS.c.attempt, _ATTEMPTS.c.category, _ATTEMPTS.c.reason).where(
            _ATTEMPTS.c.task_id.in_(task_ids)
        )
    )
    for task_id, attempt, category, reason in rows:
        group = "unclassified" if reason == Reason.UNCLASSIFIED.value else category
        found.setdefault(task_id, []).append((attempt, group))
    return found


def max_attempts(policy: RecoveryPolicy, classification: Classification) -> int | None:
    """The most attempts ``policy`` allows for a failure like ``classification`` ("attempt i of N"):
    None when such a failure is never retried, or waits on a resource (bounded by time, not count)."""
    if classification.category is Category.TRANSIENT:
        if classification.reason == Reason.UNCLASSIFIED.value:
            return policy.unclassified_max_attempts
        return policy.transient_max_attempts
    return None


def hour_of(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC hour ``moment`` falls in."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC day ``moment`` falls in."""
    return hour_of(moment).replace(hour=0)


#: Adds attempts to a roll-up row: the same statement on Postgres and SQLite (both have ``ON CONFLICT
#: ... DO UPDATE``), compiled once, run for many rows at once.
_COUNT_ERRORS = sa.text(
    "INSERT INTO fr_error_counts (period, bucket, task_name, category, reason, fingerprint, count) "
    "VALUES (:period, :bucket, :task_name, :category, :reason, :fingerprint, :count) "
    "ON CONFLICT (period, bucket, task_name, category, reason, fingerprint) "
    "DO UPDATE SET count = fr_error_counts.count + excluded.count"
).bindparams(sa.bindparam("bucket", type_=UTCDateTime()))


def _count_errors(session: Session, attempts: Sequence[dict[str, Any]]) -> None:
    """Add the attempts to their hours' and days' roll-up rows. Every transaction locks these rows in
    the same order (all its hour rows, then all its day rows, each in key order), so writers of
    overlapping rows wait for one another instead of deadlocking; the rows stay locked only until the
    commit."""
    if not attempts:
        return
    counts: dict[tuple[str, dt.datetime, str, str, str, str], int] = {}
    for attempt in attempts:
        kind = (attempt["task_name"], attempt["category"], attempt["reason"], attempt["fingerprint"])
        for period, bucket in (("hour", hour_of(attempt["failed_at"])), ("day", day_of(attempt["failed_at"]))):
            key = (period, bucket, *kind)
            counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (item[0][0] != "hour", item[0][1:]))
    counts_table: sa.Table = ErrorCount.__table__  # type: ignore[assignment]
    session.execute(
        _COUNT_ERRORS,
        [
            sanitise.row(
                counts_table,
                {
                    "period": period,
                    "bucket": bucket,
                    "task_name": task_name,
                    "category": category,
                    "reason": reason,
                    "fingerprint": fingerprint,
                    "count": count,
                },
            )
            for (period, bucket, task_name, category, reason, fingerprint), count in ordered
        ],
    )


def _decision_kind(decision: Decision) -> DecisionKind:
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


def record_success(session: Session, *, task_id: str, run_id: int | None, now: dt.datetime) -> bool:
    """Record that a task which had failed before has now succeeded. Returns False if already terminal."""
    _finish_run(session, run_id, now)
    task = _lock_task(session, sanitise.task_key(task_id))
    if task is None or task.state in TERMINAL_STATES:
        return False
    task.state = TaskState.SUCCEEDED
    task.terminal_at = now
    task.updated_at = now
    return True


@dataclasses.dataclass(frozen=True)
class LossReport:
    """What is known about a delivery that ended without an outcome (see
    :class:`~error_handling.persistence.models.LostDelivery`)."""

    cause: str
    worker: str | None = None
    pid: int | None = None
    signal: str | None = None
    exit_code: int | None = None
    memory_limit: str | None = None
    detail: str | None = None
    started_at: dt.datetime | None = None


#: Said of a lost delivery nobody reported: the message simply came back.
UNREPORTED_LOSS = (
    "delivered again with no report from the worker that had it: the whole worker stopped (killed, "
    "crashed, restarted) before the task ended, or gave the message back unstarted"
)


def _lost_rows(session: Session, task_id: str, attempt: int) -> list[LostDelivery]:
    return list(
        session.execute(
            sa.select(LostDelivery)
            .where(LostDelivery.task_id == task_id, LostDelivery.attempt == attempt)
            .order_by(LostDelivery.delivery)
        ).scalars()
    )


def report_lost_delivery(
    session: Session, *, task_id: str, attempt: int, task_name: str | None, report: LossReport, now: dt.datetime
) -> int:
    """Record that a delivery of ``(task_id, attempt)`` ended without an outcome (the worker's main
    process saw its pool process die). Returns the delivery's number within the attempt."""
    task_id = sanitise.task_key(task_id)
    number = len(_lost_rows(session, task_id, attempt)) + 1
    _add_lost(session, task_id, attempt, number, task_name, report, now)
    return number


def _add_lost(
    session: Session,
    task_id: str,
    attempt: int,
    number: int,
    task_name: str | None,
    report: LossReport,
    now: dt.datetime,
) -> None:
    values = {"task_id": task_id, "attempt": attempt, "delivery": number, "task_name": task_name}
    table: sa.Table = LostDelivery.__table__  # type: ignore[assignment]
    _insert_ignoring_conflicts(
        session, table, sanitise.row(table, {**values, **dataclasses.asdict(report), "lost_at": now})
    )


def reconcile_lost_deliveries(
    session: Session, *, task_id: str, attempt: int, payload: TaskPayload, at_least: int, now: dt.datetime
) -> list[LostDelivery]:
    """On a redelivery of ``(task_id, attempt)``: the deliveries before it that ended without an
    outcome, oldest first. ``at_least`` is how many the broker's count says there were; those nobody
    reported are added (cause ``redelivered``). When there are any, the task gets its record (with
    its payload, so it can be dead-lettered and replayed) and, unless it is terminal, is ``retrying``.
    """
    task_id = sanitise.task_key(task_id)
    rows = _lost_rows(session, task_id, attempt)
    if not rows and at_least <= 0:
        return rows
    task = _ensure_task(session, task_id=task_id, payload=payload, now=now)
    unreported = LossReport(cause="redelivered", detail=UNREPORTED_LOSS)
    for number in range(len(rows) + 1, at_least + 1):
        _add_lost(session, task_id, attempt, number, payload.task_name, unreported, now)
    if task.state not in TERMINAL_STATES:
        task.state = TaskState.RETRYING
        task.updated_at = now
    return _lost_rows(session, task_id, attempt)


def claim_run(session: Session, *, run_id: int, token: str, now: dt.datetime) -> bool:
    """Claim a scheduled run for execution by the message carrying ``token``.

    The first message of a run to arrive claims it; a redelivery of that same message (a worker lost
    mid-run) may claim it again; any other copy (a duplicate dispatch) is refused, so each
    ``(task_id, attempt)`` runs once.
    """
    result = session.execute(
        sa.update(ScheduledRun)
        .where(
            ScheduledRun.id == run_id,
            sa.or_(
                ScheduledRun.status.in_([RunStatus.PENDING, RunStatus.DISPATCHED]),
                sa.and_(ScheduledRun.status == RunStatus.RUNNING, ScheduledRun.dispatch_token == token),
            ),
        )
        .values(status=RunStatus.RUNNING, dispatch_token=token, updated_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


@dataclasses.dataclass(frozen=True)
class Dispatch:
    """A due run, ready to publish: the task's payload (still sealed) plus the run's identity."""

    run_id: int
    kind: RunKind
    task_id: str
    attempt: int
    token: str
    task_name: str
    args: Any
    kwargs: Any
    options: dict[str, Any]
    headers: dict[str, Any]
    root_id: str | None
    parent_id: str | None


def claim_due_runs(
    session: Session,
    *,
    now: dt.datetime,
    limit: int,
    redispatch_after: dt.timedelta,
) -> tuple[list[Dispatch], list[ScheduledRun]]:
    """Lock due runs (``FOR UPDATE SKIP LOCKED``) and mark them dispatched in the caller's transaction.

    Returns the runs to publish, and the resource waits that passed their deadline (to be
    dead-lettered with :func:`expire_wait`). A run dispatched more than ``redispatch_after`` ago whose
    message never started (lost with a broker restart) is due again; its copies are harmless because
    only one message per run may claim it.
    """
    due = sa.or_(
        sa.and_(ScheduledRun.status == RunStatus.PENDING, ScheduledRun.due_at <= now),
        sa.and_(ScheduledRun.status == RunStatus.DISPATCHED, ScheduledRun.dispatched_at <= now - redispatch_after),
    )
    runs = (
        session.execute(
            sa.select(ScheduledRun)
            .where(due)
            .order_by(ScheduledRun.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    if not runs:
        return [], []
    tasks = {
        t.task_id: t
        for t in session.execute(
            sa.select(TaskRecord).where(TaskRecord.task_id.in_({r.task_id for r in runs}))
        ).scalars()
    }
    dispatches: list[Dispatch] = []
    expired: list[ScheduledRun] = []
    for run in runs:
        task = tasks.get(run.task_id)
        if task is None or task.state in TERMINAL_STATES:
            run.status = RunStatus.CANCELLED
            run.updated_at = now
            continue
        if run.kind is RunKind.RESOURCE_WAIT and run.deadline is not None and run.deadline <= now:
            expired.append(run)
            continue
        token = uuid.uuid4().hex
        run.status = RunStatus.DISPATCHED
        run.dispatch_token = token
        run.dispatch_count += 1
        run.dispatched_at = now
        run.updated_at = now
        dispatches.append(
            Dispatch(
                run_id=run.id,
                kind=run.kind,
                task_id=run.task_id,
                attempt=run.attempt,
                token=token,
                task_name=task.task_name,
                args=task.args,
                kwargs=task.kwargs,
                options=dict(task.options or {}),
                headers=dict(task.headers or {}),
                root_id=task.root_id,
                parent_id=task.parent_id,
            )
        )
    return dispatches, expired


def task_names(session: Session, *, task_ids: Sequence[str]) -> dict[str, str]:
    """The task names of these recorded tasks, by task id."""
    if not task_ids:
        return {}
    rows = session.execute(sa.select(TaskRecord.task_id, TaskRecord.task_name).where(TaskRecord.task_id.in_(task_ids)))
    return {task_id: name for task_id, name in rows}


def recorded_attempts(session: Session, attempts: Sequence[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of these ``(task_id, attempt)`` pairs have a failed attempt recorded."""
    if not attempts:
        return set()
    keys = {(sanitise.task_key(task_id), attempt): (task_id, attempt) for task_id, attempt in attempts}
    wanted = set(keys)
    rows = session.execute(
        sa.select(FailedAttempt.task_id, FailedAttempt.attempt).where(
            FailedAttempt.task_id.in_({task_id for task_id, _ in wanted})
        )
    )
    return {keys[(task_id, attempt)] for task_id, attempt in rows if (task_id, attempt) in wanted}


def postpone_run(session: Session, *, run_id: int, due_at: dt.datetime) -> None:
    """Set when a pending scheduled run is due (a wait on a gate: its deadline, until a monitor
    releases it earlier)."""
    session.execute(
        sa.update(ScheduledRun)
        .where(ScheduledRun.id == run_id, ScheduledRun.status == RunStatus.PENDING)
        .values(due_at=due_at)
    )


def expire_wait(session: Session, *, run: ScheduledRun, now: dt.datetime) -> int | None:
    """Dead-letter a task whose resource wait passed its deadline; its saga's recorded compensation
    steps become pending (the dispatcher's sweep publishes the compensation). Returns the dead letter's id."""
    task = _lock_task(session, run.task_id)
    run.status = RunStatus.EXPIRED
    run.updated_at = now
    if task is None or task.state in TERMINAL_STATES:
        return None
    last = session.execute(
        sa.select(FailedAttempt)
        .where(FailedAttempt.task_id == run.task_id)
        .order_by(FailedAttempt.attempt.desc())
        .limit(1)
    ).scalar_one_or_none()
    task.state = TaskState.DEAD_LETTERED
    task.terminal_at = now
    task.updated_at = now
    fields = ("category", "reason", "exc_type", "message", "fingerprint")
    if last is not None:
        known = {name: getattr(last, name) for name in fields}
    else:  # no attempt recorded: what the task's record says of its last failure
        known = dict.fromkeys(fields) | {"category": task.last_category, "reason": task.last_reason}
    letter_id = _add_dead_letter(
        session,
        task_id=task.task_id,
        task=task,
        reason=Reason.RESOURCE_WAIT_TIMEOUT.value,
        last=known,
        attempts=task.attempts,
        now=now,
    )
    compensation.mark_pending(session, saga_id=task.root_id or task.task_id, now=now)
    return letter_id


def task_history(
    session: Session, *, task_id: str
) -> tuple[TaskRecord | None, Sequence[FailedAttempt], Sequence[ScheduledRun]]:
    """Return a task's record, its failed attempts and its scheduled runs, oldest first (a task id
    too long to be stored as it is is looked up by its key: :func:`~error_handling.persistence.sanitise.task_key`)."""
    task_id = sanitise.task_key(task_id)
    task = session.get(TaskRecord, task_id)
    attempts = (
        session.execute(
            sa.select(FailedAttempt).where(FailedAttempt.task_id == task_id).order_by(FailedAttempt.attempt)
        )
        .scalars()
        .all()
    )
    runs = (
        session.execute(sa.select(ScheduledRun).where(ScheduledRun.task_id == task_id).order_by(ScheduledRun.attempt))
        .scalars()
        .all()
    )
    return task, attempts, runs
