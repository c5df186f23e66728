"""Failure recording: the wrapper's failed attempts and successes, written before the message is
acknowledged, each call in the caller's transaction.

    reports ──► rounds (one report per task) ──► upsert+lock tasks ──► read histories ──► decide
        ──► attempts, finished runs, new runs, dead letters, tasks' states ──► error roll-up ──► groups

A redelivery of an attempt already recorded, or a failure of a task already terminal, writes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.categories import Category
from error_handling.persistence import sanitise
from error_handling.persistence.bulk import insert_many, insert_returning_ids, is_postgres
from error_handling.persistence.failure_rows import (
    ATTEMPTS,
    LETTERS,
    RUNS,
    attempt_row,
    decision_from_attempt,
    delays,
    letter_row,
    run_row,
    state_after,
)
from error_handling.persistence.groups import count_recovered, touch_groups
from error_handling.persistence.models import TERMINAL_STATES, FailedAttempt, TaskState
from error_handling.persistence.reports import FailureReport, Recorded
from error_handling.persistence.rollup import count_errors
from error_handling.persistence.runs import finish_runs, waiting_since
from error_handling.persistence.task_records import TaskRead, lock_task, payloads, task_row, update_tasks, upsert_tasks
from error_handling.policy import (
    DeadLetter,
    Decision,
    RandomSource,
    RecoveryPolicy,
    budget_group,
    decide,
    recorded_budget_group,
)


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
    letters and the tasks' new state, and the roll-up and the error groups last (their rows are locked
    only until the commit: hour rows, day rows, then groups, each in key order).
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
    count_errors(session, written)
    touch_groups(session, written)
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


@dataclasses.dataclass(frozen=True)
class _Written:
    """A failure of a round that is written: its place in the round, its decision and attempt row."""

    index: int
    report: FailureReport
    decision: Decision
    row: dict[str, Any]


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
    firsts = _first_decisions(session, reports, policies, rng)
    tasks = upsert_tasks(
        session, [task_row(r.task_id, r.payload, r.failed_at, r, d) for r, d in zip(reports, firsts, strict=True)]
    )
    history = _histories(
        session, [r.task_id for r in reports if tasks[r.task_id].attempts and not tasks[r.task_id].inserted]
    )
    outcomes: list[Recorded | None] = [None] * len(reports)
    written: list[_Written] = []
    changes: list[dict[str, Any]] = []
    for index, (report, policy) in enumerate(zip(reports, policies, strict=True)):
        task, first = tasks[report.task_id], firsts[index]
        if task.inserted and first is not None:
            written.append(_Written(index, report, first, attempt_row(report, first, policy)))
            continue
        found = _decide_again(session, report, policy, task, history.get(report.task_id, []), rng)
        if isinstance(found, Recorded):
            outcomes[index] = found
            continue
        written.append(_Written(index, report, found, attempt_row(report, found, policy)))
        changes.append({"task_id": report.task_id, **state_after(report, found, task.attempts)})
    if written:
        for index, outcome in _write(session, written, tasks).items():
            outcomes[index] = outcome
        update_tasks(session, changes)
    return [o for o in outcomes if o is not None], [w.row for w in written]


def _first_decisions(
    session: Session, reports: Sequence[FailureReport], policies: Sequence[RecoveryPolicy], rng: RandomSource | None
) -> list[Decision | None]:
    """On Postgres, each report's decision were it its task's first failure (see :func:`_record_round`)."""
    if not is_postgres(session):
        return [None] * len(reports)
    return [
        decide(r.classification, failures=1, now=r.failed_at, policy=p, rng=rng, retry_allowed=r.retry_allowed)
        for r, p in zip(reports, policies, strict=True)
    ]


def _decide_again(
    session: Session,
    report: FailureReport,
    policy: RecoveryPolicy,
    task: TaskRead,
    past: list[tuple[int, str]],
    rng: RandomSource | None,
) -> Decision | Recorded:
    """The decision for a task that had a record, given its ``past`` attempts; or the outcome of a
    report that writes nothing (a redelivery of a recorded attempt, a task already terminal)."""
    if any(attempt == report.attempt for attempt, _group in past):
        existing = session.execute(
            sa.select(FailedAttempt).where(
                FailedAttempt.task_id == report.task_id, FailedAttempt.attempt == report.attempt
            )
        ).scalar_one()
        return Recorded(decision=decision_from_attempt(existing), duplicate=True)
    if task.state in TERMINAL_STATES:
        return Recorded(decision=DeadLetter(reason=f"already_{task.state.value}"), duplicate=True)
    c = report.classification
    group = budget_group(c)
    since = waiting_since(session, report.task_id, c.resource) if past and c.category is Category.RESOURCE else None
    return decide(
        c,
        failures=sum(1 for _attempt, past_group in past if past_group == group) + 1,
        now=report.failed_at,
        policy=policy,
        waiting_since=since,
        rng=rng,
        retry_allowed=report.retry_allowed,
    )


def _write(session: Session, written: list[_Written], tasks: dict[str, TaskRead]) -> dict[int, Recorded]:
    """Write the attempts, finish their runs, add the new runs and dead letters; return the outcomes
    by index in the round."""
    insert_many(session, ATTEMPTS, [w.row for w in written])
    finish_runs(
        session,
        [w.report.run_id for w in written if w.report.run_id is not None],
        max(w.report.failed_at for w in written),
    )
    runs = insert_returning_ids(session, RUNS, [run_row(w.report, w.decision) for w in written if delays(w.decision)])
    letters = _add_dead_letters(session, [w for w in written if isinstance(w.decision, DeadLetter)], tasks)
    return {
        w.index: Recorded(
            decision=w.decision, run_id=runs.get(w.report.task_id), dead_letter_id=letters.get(w.report.task_id)
        )
        for w in written
    }


def _add_dead_letters(session: Session, ending: list[_Written], tasks: dict[str, TaskRead]) -> dict[str, int]:
    """Dead-letter the tasks of these failures (one statement); return the letters' ids by task id."""
    if not ending:
        return {}
    found = payloads(session, [w.report.task_id for w in ending])
    rows = [
        letter_row(
            task_id=w.report.task_id,
            task=found[w.report.task_id],
            reason=w.decision.reason,  # type: ignore[union-attr]
            last=w.row,
            attempts=max(tasks[w.report.task_id].attempts, w.report.attempt),
            now=w.report.failed_at,
        )
        for w in ending
    ]
    return insert_returning_ids(session, LETTERS, rows)


def _histories(session: Session, task_ids: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
    """The recorded failed attempts of the tasks: for each task, its attempts' numbers with their
    retry budget group (one query)."""
    if not task_ids:
        return {}
    found: dict[str, list[tuple[int, str]]] = {}
    rows = session.execute(
        sa.select(ATTEMPTS.c.task_id, ATTEMPTS.c.attempt, ATTEMPTS.c.category, ATTEMPTS.c.reason).where(
            ATTEMPTS.c.task_id.in_(task_ids)
        )
    )
    for task_id, attempt, category, reason in rows:
        found.setdefault(task_id, []).append((attempt, recorded_budget_group(category=category, reason=reason)))
    return found


def record_success(session: Session, *, task_id: str, run_id: int | None, now: dt.datetime) -> bool:
    """Record that a task which had failed before has now succeeded. Returns False if already terminal."""
    if run_id is not None:
        finish_runs(session, [run_id], now)
    task = lock_task(session, sanitise.task_key(task_id))
    if task is None or task.state in TERMINAL_STATES:
        return False
    task.state = TaskState.SUCCEEDED
    task.terminal_at = now
    task.updated_at = now
    count_recovered(session, task_id=task.task_id)
    return True


def attempt_recorded(session: Session, *, task_id: str, attempt: int) -> bool:
    """Whether a failed attempt ``(task_id, attempt)`` is recorded (one indexed lookup; an attempt number
    the column cannot hold is refused by the database, as writing it would be)."""
    found = session.execute(
        sa.select(FailedAttempt.id).where(
            FailedAttempt.task_id == sanitise.task_key(task_id), FailedAttempt.attempt == attempt
        )
    ).first()
    return found is not None


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
