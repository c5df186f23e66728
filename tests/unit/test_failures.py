"""What the wrapper writes for a batch of failures (``failures.record_batch``), on SQLite and on a real
Postgres: the compensation each outcome calls for, once per saga, and gated waits postponed."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from error_handling.categories import Category
from error_handling.persistence import compensation as steps
from error_handling.persistence.db import transaction
from error_handling.persistence.models import CompensationStep, ScheduledRun, StepStatus
from error_handling.policy import RecoveryPolicy
from function_runner.wrapper.failures import FailureRecorded, FailureToRecord, record_batch
from tests.unit.test_repository import NOW, report

POLICY = RecoveryPolicy()


def step(sessions: sessionmaker[Session], *, saga_id: str, task_id: str, name: str) -> None:
    with transaction(sessions) as s:
        steps.record_step(
            s,
            task_id=task_id,
            saga_id=saga_id,
            task_name="app.task",
            attempt=1,
            name=name,
            undo_kind="task",
            undo="app.undo",
            data={"n": name},
            idempotency_key=None,
            now=NOW - dt.timedelta(minutes=1),
        )


def statuses(sessions: sessionmaker[Session]) -> dict[str, StepStatus]:
    with sessions() as s:
        return {row.name: row.status for row in s.execute(sa.select(CompensationStep)).scalars()}


def batch(sessions: sessionmaker[Session], items: list[FailureToRecord]) -> list[FailureRecorded]:
    with transaction(sessions) as s:
        return record_batch(s, items)


def test_terminal_outcomes_make_each_saga_pending_once(sessions: sessionmaker[Session]) -> None:
    step(sessions, saga_id="s1", task_id="a", name="a1")
    step(sessions, saga_id="s1", task_id="b", name="b1")
    step(sessions, saga_id="s2", task_id="c", name="c1")
    step(sessions, saga_id="s3", task_id="d", name="d1")
    got = batch(
        sessions,
        [
            FailureToRecord(report("a", 1, Category.VALIDATION, "invalid_input"), POLICY, "s1"),
            FailureToRecord(report("b", 1, Category.PERMANENT, "not_found"), POLICY, "s1"),
            FailureToRecord(report("c", 1, Category.PERMANENT, "not_found"), POLICY, "s2"),
            FailureToRecord(report("d", 1, Category.TRANSIENT, "timeout"), POLICY, "s3"),
        ],
    )
    assert [r.to_compensate for r in got] == [2, 0, 1, 0]  # the saga's steps go to its first terminal item
    assert statuses(sessions) == {
        "a1": StepStatus.PENDING,
        "b1": StepStatus.PENDING,
        "c1": StepStatus.PENDING,
        "d1": StepStatus.RECORDED,  # a retry compensates nothing
    }


def test_every_failure_compensations_and_failed_compensators(sessions: sessionmaker[Session]) -> None:
    step(sessions, saga_id="s1", task_id="a", name="a1")
    step(sessions, saga_id="s1", task_id="other", name="other1")
    step(sessions, saga_id="s2", task_id="x", name="x1")
    with transaction(sessions) as s:  # s2 is being compensated
        steps.mark_pending(s, saga_id="s2", now=NOW)
    got = batch(
        sessions,
        [
            FailureToRecord(report("a", 1, Category.TRANSIENT, "timeout"), POLICY, "s1", compensate_on="every_failure"),
            FailureToRecord(report("comp", 1, Category.PERMANENT, "not_found"), POLICY, "s2", compensating=True),
        ],
    )
    assert [r.to_compensate for r in got] == [1, 0]
    assert statuses(sessions) == {
        "a1": StepStatus.PENDING,  # its own steps only
        "other1": StepStatus.RECORDED,
        "x1": StepStatus.COMPENSATION_FAILED,  # the compensation of s2 failed for good
    }


def test_a_wait_on_a_declared_gate_is_postponed_to_its_deadline(sessions: sessionmaker[Session]) -> None:
    gpu = report("g", 1, Category.RESOURCE, "gpu_unavailable", resource="gpu")
    disk = report("h", 1, Category.RESOURCE, "disk_full", resource="disk")
    got = batch(sessions, [FailureToRecord(gpu, POLICY, "g", gates={"gpu"}), FailureToRecord(disk, POLICY, "h")])
    with sessions() as s:
        due = {run.task_id: run.due_at for run in s.execute(sa.select(ScheduledRun)).scalars()}
    assert due["g"] == got[0].recorded.decision.deadline  # type: ignore[union-attr]
    assert due["h"] == got[1].recorded.decision.check_at < due["g"]  # type: ignore[union-attr]


def test_a_redelivered_failure_changes_nothing(sessions: sessionmaker[Session]) -> None:
    step(sessions, saga_id="s1", task_id="a", name="a1")
    first = FailureToRecord(report("a", 1, Category.PERMANENT, "not_found"), POLICY, "s1")
    assert batch(sessions, [first])[0].to_compensate == 1
    with transaction(sessions) as s:
        s.execute(sa.update(CompensationStep).values(status=StepStatus.RECORDED))
    again = batch(sessions, [first])[0]
    assert again.recorded.duplicate and again.to_compensate == 0
    assert statuses(sessions) == {"a1": StepStatus.RECORDED}
