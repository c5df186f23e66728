"""The repository on SQLite and on a real Postgres: one transaction per failure, one terminal state,
idempotent redeliveries, and writers of one task racing from several connections."""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from error_handling.categories import Category
from error_handling.classification import Classification
from error_handling.persistence import failure_recording, runs
from error_handling.persistence.db import transaction
from error_handling.persistence.models import (
    DeadLetterRecord,
    FailedAttempt,
    RunKind,
    RunStatus,
    ScheduledRun,
    TaskRecord,
    TaskState,
)
from error_handling.persistence.reports import FailureReport, Recorded, TaskPayload
from error_handling.policy import DeadLetter, FailFast, RecoveryPolicy, Retry, Wait

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
POLICY = RecoveryPolicy()


def payload(name: str = "app.task") -> TaskPayload:
    return TaskPayload(
        task_name=name, args=[1], kwargs={"k": "v"}, options={"routing_key": "celery"}, headers={}, queue="celery"
    )


def report(
    task_id: str,
    attempt: int,
    category: Category,
    reason: str,
    *,
    at: dt.datetime = NOW,
    run_id: int | None = None,
    **kw: object,
) -> FailureReport:
    c = Classification(
        category=category, reason=reason, fingerprint="f" * 16, message="boom", exc_type="builtins.Exception", **kw
    )  # type: ignore[arg-type]
    return FailureReport(
        task_id=task_id,
        attempt=attempt,
        payload=payload(),
        classification=c,
        traceback="tb",
        failed_at=at,
        started_at=at - dt.timedelta(seconds=1),
        worker="w1",
        run_id=run_id,
    )


def record(sessions: sessionmaker[Session], r: FailureReport) -> Recorded:
    with transaction(sessions) as s:
        return failure_recording.record_failure(s, report=r, policy=POLICY)


def count(sessions: sessionmaker[Session], model: type, **where: object) -> int:
    with sessions() as s:
        return int(s.execute(sa.select(sa.func.count()).select_from(model).filter_by(**where)).scalar_one())


def test_transient_failure_writes_attempt_retry_row_and_state_together(sessions: sessionmaker[Session]) -> None:
    result = record(sessions, report("t1", 1, Category.TRANSIENT, "timeout"))
    assert isinstance(result.decision, Retry) and not result.duplicate
    with sessions() as s:
        task = s.get(TaskRecord, "t1")
        assert task is not None and task.state is TaskState.RETRYING and task.attempts == 1
        run = s.execute(sa.select(ScheduledRun)).scalar_one()
        assert (run.kind, run.attempt, run.status, run.id) == (RunKind.RETRY, 2, RunStatus.PENDING, result.run_id)
        assert run.due_at == result.decision.at
        attempt = s.execute(sa.select(FailedAttempt)).scalar_one()
        assert (attempt.decision.value, attempt.delay, attempt.duration_ms) == ("retry", result.decision.delay, 1000.0)


def test_redelivered_attempt_is_recorded_once(sessions: sessionmaker[Session]) -> None:
    first = record(sessions, report("t1", 1, Category.TRANSIENT, "timeout"))
    again = record(sessions, report("t1", 1, Category.TRANSIENT, "timeout"))
    assert again.duplicate and isinstance(again.decision, Retry)
    assert again.decision.at == first.decision.at  # type: ignore[union-attr]
    assert count(sessions, FailedAttempt) == 1
    assert count(sessions, ScheduledRun) == 1


def test_recorded_attempts_tells_which_task_attempts_have_a_failure(sessions: sessionmaker[Session]) -> None:
    record(sessions, report("t1", 1, Category.TRANSIENT, "timeout"))
    record(sessions, report("t1", 2, Category.TRANSIENT, "timeout"))
    record(sessions, report("t2", 1, Category.TRANSIENT, "timeout"))
    asked = [("t1", 2), ("t1", 3), ("t2", 1), ("t3", 1)]
    with sessions() as s:
        assert failure_recording.recorded_attempts(s, asked) == {("t1", 2), ("t2", 1)}
        assert failure_recording.recorded_attempts(s, []) == set()


def test_budget_exhausted_dead_letters_with_payload(sessions: sessionmaker[Session]) -> None:
    for attempt in range(1, 5):
        assert isinstance(record(sessions, report("t1", attempt, Category.TRANSIENT, "timeout")).decision, Retry)
    result = record(sessions, report("t1", 5, Category.TRANSIENT, "timeout"))
    assert result.decision == DeadLetter("retries_exhausted")
    with sessions() as s:
        letter = s.execute(sa.select(DeadLetterRecord)).scalar_one()
        assert (letter.id, letter.reason, letter.last_reason, letter.attempts) == (
            result.dead_letter_id,
            "retries_exhausted",
            "timeout",
            5,
        )
        assert (letter.args, letter.kwargs, letter.task_name) == ([1], {"k": "v"}, "app.task")
        assert s.get(TaskRecord, "t1").state is TaskState.DEAD_LETTERED  # type: ignore[union-attr]


def test_budgets_are_counted_per_group(sessions: sessionmaker[Session]) -> None:
    # two unclassified failures and two classified transient ones: neither budget is spent
    for attempt, reason in enumerate(["unclassified", "timeout", "unclassified", "timeout"], start=1):
        assert isinstance(record(sessions, report("t1", attempt, Category.TRANSIENT, reason)).decision, Retry)
    assert record(sessions, report("t1", 5, Category.TRANSIENT, "unclassified")).decision == DeadLetter("unclassified")


def test_validation_is_terminal_and_later_failures_change_nothing(sessions: sessionmaker[Session]) -> None:
    result = record(sessions, report("t1", 1, Category.VALIDATION, "invalid_input", user_message="Fix it."))
    assert result.decision == FailFast("invalid_input", "Fix it.")
    late = record(sessions, report("t1", 2, Category.PERMANENT, "auth_failed"))
    assert late.duplicate
    with sessions() as s:
        task = s.get(TaskRecord, "t1")
        assert task is not None and task.state is TaskState.FAILED_FAST and task.user_message == "Fix it."
    assert count(sessions, DeadLetterRecord) == 0
    assert count(sessions, FailedAttempt) == 1


def test_success_after_retry_is_terminal_once(sessions: sessionmaker[Session]) -> None:
    result = record(sessions, report("t1", 1, Category.TRANSIENT, "timeout"))
    with transaction(sessions) as s:
        assert failure_recording.record_success(s, task_id="t1", run_id=result.run_id, now=NOW)
    with transaction(sessions) as s:
        assert not failure_recording.record_success(s, task_id="t1", run_id=result.run_id, now=NOW)
    with sessions() as s:
        assert s.get(TaskRecord, "t1").state is TaskState.SUCCEEDED  # type: ignore[union-attr]
        assert s.get(ScheduledRun, result.run_id).status is RunStatus.DONE  # type: ignore[union-attr]


def test_resource_wait_keeps_its_first_deadline(sessions: sessionmaker[Session]) -> None:
    first = record(sessions, report("t1", 1, Category.RESOURCE, "gpu_unavailable", resource="gpu"))
    assert isinstance(first.decision, Wait)
    later = NOW + dt.timedelta(minutes=10)
    second = record(
        sessions, report("t1", 2, Category.RESOURCE, "gpu_unavailable", resource="gpu", at=later, run_id=first.run_id)
    )
    assert isinstance(second.decision, Wait)
    assert second.decision.deadline == first.decision.deadline == NOW + dt.timedelta(hours=1)
    timeout = record(
        sessions, report("t1", 3, Category.RESOURCE, "gpu_unavailable", resource="gpu", at=NOW + dt.timedelta(hours=1))
    )
    assert timeout.decision == DeadLetter("resource_wait_timeout")


def test_claim_run_admits_one_message_per_run(sessions: sessionmaker[Session]) -> None:
    result = record(sessions, report("t1", 1, Category.TRANSIENT, "timeout"))
    assert result.run_id is not None
    with transaction(sessions) as s:
        assert runs.claim_run(s, run_id=result.run_id, token="a", now=NOW)
    with transaction(sessions) as s:
        assert not runs.claim_run(s, run_id=result.run_id, token="b", now=NOW)  # a duplicate dispatch
    with transaction(sessions) as s:
        assert runs.claim_run(s, run_id=result.run_id, token="a", now=NOW)  # a redelivery of the same message
    record(sessions, report("t1", 2, Category.TRANSIENT, "timeout", run_id=result.run_id))
    with transaction(sessions) as s:
        assert not runs.claim_run(s, run_id=result.run_id, token="a", now=NOW)  # done


def test_claim_due_runs_dispatches_due_ones_and_expires_waits(sessions: sessionmaker[Session]) -> None:
    retry = record(sessions, report("r", 1, Category.TRANSIENT, "timeout"))
    wait = record(sessions, report("w", 1, Category.RESOURCE, "disk_full", resource="disk"))
    with transaction(sessions) as s:
        dispatches, expired = runs.claim_due_runs(s, now=NOW, limit=10, redispatch_after=dt.timedelta(minutes=10))
    assert (dispatches, expired) == ([], [])  # nothing due yet
    later = NOW + dt.timedelta(seconds=30)
    with transaction(sessions) as s:
        dispatches, expired = runs.claim_due_runs(s, now=later, limit=10, redispatch_after=dt.timedelta(minutes=10))
    assert {(d.task_id, d.attempt, d.kind) for d in dispatches} == {
        ("r", 2, RunKind.RETRY),
        ("w", 2, RunKind.RESOURCE_WAIT),
    }
    assert all(d.token and d.task_name == "app.task" and d.args == [1] for d in dispatches)
    with transaction(sessions) as s:  # dispatched ones are not due again until redispatch_after
        assert runs.claim_due_runs(s, now=later, limit=10, redispatch_after=dt.timedelta(minutes=10)) == ([], [])
    with transaction(sessions) as s:  # ... after which a lost message is published again
        again, _ = runs.claim_due_runs(
            s, now=later + dt.timedelta(minutes=11), limit=10, redispatch_after=dt.timedelta(minutes=10)
        )
    assert len(again) == 2 and {d.token for d in again}.isdisjoint({d.token for d in dispatches})
    # a wait past its deadline is expired into a dead letter
    with transaction(sessions) as s:
        s.execute(sa.update(ScheduledRun).where(ScheduledRun.id == wait.run_id).values(status=RunStatus.PENDING))
    past = NOW + dt.timedelta(hours=2)
    with transaction(sessions) as s:
        _, expired = runs.claim_due_runs(s, now=past, limit=10, redispatch_after=dt.timedelta(hours=10))
        assert [r.task_id for r in expired] == ["w"]
        letter_id = runs.expire_wait(s, run=expired[0], now=past)
    with sessions() as s:
        letter = s.get(DeadLetterRecord, letter_id)
        assert letter is not None and letter.reason == "resource_wait_timeout" and letter.last_reason == "disk_full"
        assert s.get(TaskRecord, "w").state is TaskState.DEAD_LETTERED  # type: ignore[union-attr]
    assert retry.run_id is not None


def race(sessions: sessionmaker[Session], reports: list[FailureReport]) -> list[Recorded]:
    """Record every report at once, each from its own thread and connection."""
    start = threading.Barrier(len(reports))

    def one(r: FailureReport) -> Recorded:
        start.wait()
        return record(sessions, r)

    with ThreadPoolExecutor(len(reports)) as pool:
        return list(pool.map(one, reports))


def test_a_redelivery_racing_the_first_delivery_is_recorded_once(sessions: sessionmaker[Session]) -> None:
    results = race(sessions, [report("t1", 1, Category.TRANSIENT, "timeout") for _ in range(6)])
    assert sorted(r.duplicate for r in results) == [False] + [True] * 5
    first = next(r for r in results if not r.duplicate)
    assert all(r.decision == first.decision for r in results)
    assert (count(sessions, FailedAttempt), count(sessions, ScheduledRun), count(sessions, TaskRecord)) == (1, 1, 1)


def test_racing_failures_of_one_task_end_in_one_terminal_state(sessions: sessionmaker[Session]) -> None:
    # attempts 1..6 of one task, all at once: each is recorded; the fifth transient failure in the
    # order they took the task's lock exhausts the budget, and after it nothing more is written
    results = race(sessions, [report("t1", n, Category.TRANSIENT, "timeout") for n in range(1, 7)])
    letters = [r for r in results if r.dead_letter_id is not None]
    assert len(letters) == 1
    assert sum(not r.duplicate for r in results) == 5 == count(sessions, FailedAttempt)
    assert count(sessions, DeadLetterRecord) == 1
    with sessions() as s:
        task = s.get(TaskRecord, "t1")
        assert task is not None and task.state is TaskState.DEAD_LETTERED
        assert task.attempts == max(r.attempt for r in s.execute(sa.select(FailedAttempt)).scalars())
