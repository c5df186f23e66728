"""Compensation steps on SQLite: recording (idempotency keys, secrets sealed), a saga's steps made
pending, claims newest first and one at a time, take-over after a crash, failure and reopening."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from error_handling.persistence import compensation as steps
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import StepStatus
from function_runner.compensation.recorder import undo_reference
from function_runner.migrate import upgrade

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
LEASE = dt.timedelta(minutes=5)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'steps.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


def record(sessions: sessionmaker[Session], task_id: str, name: str, *, saga: str, key: str | None = None) -> int:
    with transaction(sessions) as s:
        return steps.record_step(
            s,
            task_id=task_id,
            saga_id=saga,
            task_name="app.book",
            attempt=1,
            name=name,
            undo_kind="callable",
            undo={"path": "app:undo"},
            data={"n": name},
            idempotency_key=key,
            now=T0,
        ).id


def statuses(sessions: sessionmaker[Session], saga: str) -> dict[str, StepStatus]:
    with sessions() as s:
        return {step.name: step.status for step in steps.saga_steps(s, saga_id=saga)}


def test_a_step_is_recorded_once_per_idempotency_key_and_numbered_within_its_task(
    sessions: sessionmaker[Session],
) -> None:
    first = record(sessions, "t1", "charge", saga="t1", key="charge-42")
    again = record(sessions, "t1", "charge", saga="t1", key="charge-42")
    other = record(sessions, "t1", "reserve", saga="t1")
    assert first == again != other
    with sessions() as s:
        rows = list(steps.task_steps(s, task_id="t1"))
    assert [(r.name, r.seq, r.idempotency_key) for r in rows] == [("charge", 1, "charge-42"), ("reserve", 2, "t1:1:2")]
    assert all(r.status is StepStatus.RECORDED for r in rows)


def test_a_terminal_failure_makes_the_whole_saga_pending_and_only_it(sessions: sessionmaker[Session]) -> None:
    record(sessions, "a", "a1", saga="root")
    record(sessions, "b", "b1", saga="root")
    record(sessions, "x", "x1", saga="other")
    with transaction(sessions) as s:
        assert steps.mark_pending(s, saga_id="root", now=T0) == 2
        assert steps.mark_pending(s, saga_id="root", now=T0) == 0  # already pending
    assert statuses(sessions, "root") == {"a1": StepStatus.PENDING, "b1": StepStatus.PENDING}
    assert statuses(sessions, "other") == {"x1": StepStatus.RECORDED}
    record(sessions, "y", "y1", saga="other2")
    record(sessions, "z", "z1", saga="other2")
    with transaction(sessions) as s:  # compensate_on="every_failure": one task's steps only
        assert steps.mark_pending(s, saga_id="other2", now=T0, task_id="z") == 1


def claim(sessions: sessionmaker[Session], saga: str, token: str, now: dt.datetime = T0) -> steps.Claim | None:
    with transaction(sessions) as s:
        return steps.claim_next(s, saga_id=saga, token=token, now=now, lease=LEASE)


def finish(sessions: sessionmaker[Session], found: steps.Claim, token: str) -> bool:
    with transaction(sessions) as s:
        return steps.finish_step(s, step_id=found.step_id, token=token, status=StepStatus.COMPENSATED, now=T0)


def test_claims_go_newest_first_one_at_a_time(sessions: sessionmaker[Session]) -> None:
    for name in ("s1", "s2", "s3"):
        record(sessions, "t", name, saga="t")
    with transaction(sessions) as s:
        steps.mark_pending(s, saga_id="t", now=T0)
    order = []
    while (found := claim(sessions, "t", "c1")) is not None:
        assert claim(sessions, "t", "c2") is None  # another compensator waits: one undo at a time
        order.append(found.name)
        assert finish(sessions, found, "c1")
    assert order == ["s3", "s2", "s1"]
    assert set(statuses(sessions, "t").values()) == {StepStatus.COMPENSATED}


def test_a_claim_is_taken_over_by_the_same_delivery_or_after_its_lease(sessions: sessionmaker[Session]) -> None:
    record(sessions, "t", "only", saga="t")
    with transaction(sessions) as s:
        steps.mark_pending(s, saga_id="t", now=T0)
    first = claim(sessions, "t", "delivery-1")
    assert first is not None and first.attempts == 1
    again = claim(sessions, "t", "delivery-1")  # the same message, run again after its worker died
    assert again is not None and again.attempts == 2
    assert claim(sessions, "t", "other", now=T0 + LEASE / 2) is None
    late = claim(sessions, "t", "other", now=T0 + LEASE * 2)  # its holder is gone
    assert late is not None and late.attempts == 3
    assert not finish(sessions, first, "delivery-1")  # the old holder's outcome is refused
    assert finish(sessions, late, "other")


def test_a_failed_undo_is_released_then_failed_for_good_then_reopened_by_a_replay(
    sessions: sessionmaker[Session],
) -> None:
    record(sessions, "t", "s1", saga="t")
    record(sessions, "t", "s2", saga="t")
    with transaction(sessions) as s:
        steps.mark_pending(s, saga_id="t", now=T0)
    found = claim(sessions, "t", "c")
    assert found is not None
    with transaction(sessions) as s:
        steps.release_step(s, step_id=found.step_id, token="c", error="ValueError: frozen", now=T0)
        assert steps.fail_open_steps(s, saga_id="t", now=T0) == 2
    assert set(statuses(sessions, "t").values()) == {StepStatus.COMPENSATION_FAILED}
    with sessions() as s:
        assert {r.last_error for r in steps.saga_steps(s, saga_id="t")} == {"ValueError: frozen", None}
    with transaction(sessions) as s:
        assert steps.reopen_failed(s, saga_id="t", now=T0) == 2
    assert set(statuses(sessions, "t").values()) == {StepStatus.PENDING}


def test_the_sweep_finds_pending_steps_left_alone_and_claims_whose_holder_died(
    sessions: sessionmaker[Session],
) -> None:
    record(sessions, "quiet", "q", saga="quiet")
    record(sessions, "busy", "b", saga="busy")
    with transaction(sessions) as s:
        steps.mark_pending(s, saga_id="quiet", now=T0)
        steps.mark_pending(s, saga_id="busy", now=T0)
    assert claim(sessions, "busy", "c", now=T0) is not None
    with sessions() as s:
        found = steps.sagas_to_sweep(s, quiet_since=T0 + dt.timedelta(seconds=30), stale_claims_since=T0 - LEASE)
    assert found == ["quiet"]
    with sessions() as s:
        found = steps.sagas_to_sweep(s, quiet_since=T0, stale_claims_since=T0 + dt.timedelta(seconds=1))
    assert found == ["busy"]


def module_level_undo(data: object) -> None:
    """An undo that can be stored by name."""


def test_only_undos_that_can_be_imported_again_are_accepted() -> None:
    assert undo_reference(module_level_undo) == ("callable", {"path": f"{__name__}:module_level_undo"})
    with pytest.raises(TypeError, match="module-level function"):
        undo_reference(lambda data: None)

    def local(data: object) -> None:
        pass

    with pytest.raises(TypeError, match="module-level function"):
        undo_reference(local)
    with pytest.raises(TypeError):
        undo_reference("not callable")
