"""Lost deliveries: what a pool process's death tells (signal, exit code, hard time limit), and their
rows on SQLite: reported by the worker's main process, completed at the next delivery when nobody
reported them, numbered per attempt; "attempt i of N"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from billiard.exceptions import WorkerLostError
from celery.exceptions import TimeLimitExceeded
from sqlalchemy.orm import Session, sessionmaker

from error_handling.categories import Category
from error_handling.classification import Classification
from error_handling.persistence import failure_recording, lost_deliveries, reports
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import LostDelivery, TaskRecord, TaskState
from error_handling.policy import RecoveryPolicy, max_attempts
from function_runner.migrate import upgrade
from function_runner.wrapper.deliveries import loss_report

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'lost.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


PAYLOAD = reports.TaskPayload(task_name="app.render", args=[1], kwargs={}, options={}, headers={}, queue="celery")


@pytest.mark.parametrize(
    ("message", "signal", "exit_code"),
    [
        ("Worker exited prematurely: signal 9 (SIGKILL) Job: 3.", "SIGKILL", None),
        ("Worker exited prematurely: signal 11 (SIGSEGV) Job: 0.", "SIGSEGV", None),
        ("Worker exited prematurely: exitcode 1 Job: 12.", None, 1),
        ("Worker exited prematurely: exitcode 0.", None, 0),
        ("Worker exited prematurely: signal 6.", "signal 6", None),
        ("Worker exited prematurely: Terminated.", None, None),
    ],
)
def test_a_dead_pool_process_tells_its_signal_or_exit_code(
    message: str, signal: str | None, exit_code: int | None
) -> None:
    report = loss_report(WorkerLostError(message), worker="w1@host", pid=42)
    assert (report.cause, report.signal, report.exit_code, report.worker, report.pid) == (
        "worker_lost",
        signal,
        exit_code,
        "w1@host",
        42,
    )


def test_a_hard_time_limit_is_its_own_cause() -> None:
    report = loss_report(TimeLimitExceeded(5.0), worker="w", pid=1)
    assert report.cause == "time_limit" and "hard time limit (5.0 s)" in (report.detail or "")


def rows(sessions: sessionmaker[Session], task_id: str) -> list[tuple[int, int, str]]:
    with sessions() as s:
        return [
            (r.attempt, r.delivery, r.cause)
            for r in s.execute(
                sa.select(LostDelivery).where(LostDelivery.task_id == task_id).order_by(LostDelivery.id)
            ).scalars()
        ]


def test_reported_losses_are_numbered_and_the_next_delivery_adds_those_nobody_reported(
    sessions: sessionmaker[Session],
) -> None:
    killed = lost_deliveries.LossReport(cause="worker_lost", worker="w1", pid=7, signal="SIGKILL")
    with transaction(sessions) as s:
        assert (
            lost_deliveries.report_lost_delivery(
                s, task_id="t1", attempt=1, task_name="app.render", report=killed, now=NOW
            )
            == 1
        )
    with transaction(sessions) as s:  # the broker counts 3 lost deliveries: two nobody reported
        lost = lost_deliveries.reconcile_lost_deliveries(
            s, task_id="t1", attempt=1, payload=PAYLOAD, at_least=3, now=NOW
        )
        assert [(r.delivery, r.cause) for r in lost] == [(1, "worker_lost"), (2, "redelivered"), (3, "redelivered")]
    with transaction(sessions) as s:  # the same delivery handled again (it was redelivered): nothing added
        assert (
            len(
                lost_deliveries.reconcile_lost_deliveries(
                    s, task_id="t1", attempt=1, payload=PAYLOAD, at_least=2, now=NOW
                )
            )
            == 3
        )
        assert (
            lost_deliveries.report_lost_delivery(
                s, task_id="t1", attempt=2, task_name="app.render", report=killed, now=NOW
            )
            == 1
        )
    assert rows(sessions, "t1") == [
        (1, 1, "worker_lost"),
        (1, 2, "redelivered"),
        (1, 3, "redelivered"),
        (2, 1, "worker_lost"),
    ]
    with sessions() as s:
        task = s.get(TaskRecord, "t1")
        assert task is not None and task.state is TaskState.RETRYING and task.args == [1]  # kept for replay


def test_a_first_delivery_or_one_with_no_loss_writes_nothing(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        assert (
            lost_deliveries.reconcile_lost_deliveries(s, task_id="t2", attempt=1, payload=PAYLOAD, at_least=0, now=NOW)
            == []
        )
    with sessions() as s:
        assert s.get(TaskRecord, "t2") is None


def test_a_terminal_task_keeps_its_state(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as s:
        lost_deliveries.reconcile_lost_deliveries(s, task_id="t3", attempt=1, payload=PAYLOAD, at_least=1, now=NOW)
        failure_recording.record_success(s, task_id="t3", run_id=None, now=NOW)
    with transaction(sessions) as s:
        lost_deliveries.reconcile_lost_deliveries(s, task_id="t3", attempt=1, payload=PAYLOAD, at_least=2, now=NOW)
    with sessions() as s:
        task = s.get(TaskRecord, "t3")
        assert task is not None and task.state is TaskState.SUCCEEDED


@pytest.mark.parametrize(
    ("category", "reason", "expected"),
    [
        (Category.TRANSIENT, "timeout", 7),
        (Category.TRANSIENT, "unclassified", 2),
        (Category.RESOURCE, "gpu_unavailable", None),
        (Category.VALIDATION, "invalid_input", None),
        (Category.PERMANENT, "worker_lost", None),
    ],
)
def test_attempt_i_of_n(category: Category, reason: str, expected: int | None) -> None:
    policy = RecoveryPolicy(transient_max_attempts=7, unclassified_max_attempts=2)
    assert max_attempts(policy, Classification(category=category, reason=reason)) == expected


def test_an_oom_kill_in_the_cgroup_is_named_with_its_memory_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from function_runner.wrapper import deliveries

    events = tmp_path / "memory.events"
    (tmp_path / "memory.max").write_text("536870912\n")
    events.write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    monkeypatch.setattr(deliveries, "_CGROUP", tmp_path)
    monkeypatch.setattr(deliveries, "_oom_seen", 1)
    killed = WorkerLostError("Worker exited prematurely: signal 9 (SIGKILL) Job: 1.")
    assert loss_report(killed, worker="w", pid=1).memory_limit is None  # no new OOM kill
    events.write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n")  # the kernel killed one more
    assert (
        loss_report(killed, worker="w", pid=1).memory_limit
        == "OOM killer acted in the worker's cgroup (memory.max=536870912)"
    )
    assert loss_report(killed, worker="w", pid=1).memory_limit is None  # counted once
