"""Dead-letter operations on SQLite: newest-first keyset pages, filters, discard as a terminal state."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from error_handling.persistence import dead_letters as dl
from error_handling.persistence.cursor import Keyset
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import (
    DeadLetterRecord,
    DeadLetterStatus,
    RunStatus,
    ScheduledRun,
    TaskRecord,
    TaskState,
)
from error_handling.persistence.reads import dlq
from error_handling.sealing import Sealer, generate_key
from function_runner.migrate import upgrade
from tests.support.dead_letter_seed import seed_dead_letter

NOW = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
SEALER = Sealer(generate_key())


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path / 'dl.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


def seed(sessions: sessionmaker[Session], task_id: str, *, minutes: float = 0, **kw: object) -> int:
    return seed_dead_letter(sessions, task_id, sealer=SEALER, at=NOW + dt.timedelta(minutes=minutes), **kw)  # type: ignore[arg-type]


def walk(
    sessions: sessionmaker[Session], *, limit: int, status: DeadLetterStatus | None = None, **filters: object
) -> list[list[str]]:
    pages: list[list[str]] = []
    cursor: Keyset | None = None
    while True:
        with sessions() as s:
            flt = dlq.DeadLetterFilter(**filters)  # type: ignore[arg-type]
            page = dlq.list_dead_letters(s, flt, status=status, cursor=cursor, limit=limit)
        pages.append([letter.task_id for letter in page.items])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_list_is_newest_first_and_a_cursor_walk_returns_each_once_with_ties(sessions: sessionmaker[Session]) -> None:
    for n in range(7):
        seed(sessions, f"t{n}", minutes=n // 2)  # pairs share a timestamp: ties are broken by id
    pages = walk(sessions, limit=3)
    assert pages == [["t6", "t5", "t4"], ["t3", "t2", "t1"], ["t0"]]


def test_a_walk_does_not_see_rows_added_after_it_started(sessions: sessionmaker[Session]) -> None:
    for n in range(4):
        seed(sessions, f"old{n}", minutes=n)
    with sessions() as s:
        first = dlq.list_dead_letters(s, limit=2)
    seed(sessions, "new", minutes=10)
    with sessions() as s:
        second = dlq.list_dead_letters(s, cursor=first.next_cursor, limit=10)
    assert [x.task_id for x in first.items] == ["old3", "old2"]
    assert [x.task_id for x in second.items] == ["old1", "old0"]
    assert second.next_cursor is None


def test_filters(sessions: sessionmaker[Session]) -> None:
    a = seed(sessions, "a", task_name="app.a", reason="auth_failed", queue="q1", message="Token REVOKED for 100%")
    seed(sessions, "b", minutes=1, task_name="app.b", reason="not_found", queue="q2", fingerprint="b" * 16)
    seed(sessions, "c", minutes=2, task_name="app.a", reason="not_found", queue="q1")
    with transaction(sessions) as s:
        dl.discard(s, dead_letter_id=a, reason="obsolete", now=NOW)

    def ids(status: DeadLetterStatus | None = None, **filters: object) -> list[str]:
        return [task for page in walk(sessions, limit=50, status=status, **filters) for task in page]

    assert ids(task_name="app.a") == ["c", "a"]
    assert ids(reason="not_found") == ["c", "b"]
    assert ids(queue="q2") == ["b"]
    assert ids(fingerprint="b" * 16) == ["b"]
    assert ids(category="permanent") == ["c", "b", "a"]
    assert ids(status=DeadLetterStatus.DISCARDED) == ["a"]
    assert ids(status=DeadLetterStatus.PENDING) == ["c", "b"]
    assert ids(search="revoked for 100%") == ["a"]
    assert ids(search="100_") == []  # LIKE wildcards are matched literally
    assert ids(since=NOW + dt.timedelta(minutes=1)) == ["c", "b"]
    assert ids(until=NOW + dt.timedelta(minutes=1)) == ["a"]


def test_get_and_not_found(sessions: sessionmaker[Session]) -> None:
    letter_id = seed(sessions, "t1", kwargs={"password": "pw-secret-1"})
    with sessions() as s:
        letter = dl.get_dead_letter(s, dead_letter_id=letter_id)
        assert (letter.task_id, letter.status) == ("t1", DeadLetterStatus.PENDING)
        assert [a.attempt for a in dlq.attempts_of(s, task_id="t1")] == [1]
        with pytest.raises(dl.DeadLetterNotFound, match="dead letter 999 does not exist"):
            dl.get_dead_letter(s, dead_letter_id=999)


def test_discard_makes_the_letter_and_its_task_discarded(sessions: sessionmaker[Session]) -> None:
    letter_id = seed(sessions, "t1")
    later = NOW + dt.timedelta(hours=1)
    with transaction(sessions) as s:
        dl.discard(s, dead_letter_id=letter_id, reason="customer cancelled", now=later)
    with sessions() as s:
        letter = s.get(DeadLetterRecord, letter_id)
        task = s.get(TaskRecord, "t1")
        assert letter is not None and task is not None
        assert (letter.status, letter.discarded_reason, letter.discarded_at) == (
            DeadLetterStatus.DISCARDED,
            "customer cancelled",
            later,
        )
        assert (task.state, task.terminal_at) == (TaskState.DISCARDED, later)
        assert task.state.terminal


def test_discard_cancels_runs_still_scheduled(sessions: sessionmaker[Session]) -> None:
    letter_id = seed(sessions, "t1")
    with transaction(sessions) as s:  # a stray run of the task (e.g. left by an older version)
        s.add(
            ScheduledRun(
                kind="retry",
                task_id="t1",
                attempt=2,
                due_at=NOW,
                status=RunStatus.PENDING,
                dispatch_count=0,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    with transaction(sessions) as s:
        dl.discard(s, dead_letter_id=letter_id, reason="x", now=NOW)
    with sessions() as s:
        run = s.query(ScheduledRun).filter_by(task_id="t1").one()
        assert run.status is RunStatus.CANCELLED


def test_discard_is_refused_when_already_discarded_or_replayed(sessions: sessionmaker[Session]) -> None:
    discarded = seed(sessions, "t1")
    replayed = seed(sessions, "t2")
    with transaction(sessions) as s:
        dl.discard(s, dead_letter_id=discarded, reason="first", now=NOW)
        letter = dl.lock_dead_letter(s, dead_letter_id=replayed)
        dl.mark_replayed(s, letter=letter, task_id="new-1", now=NOW)
    with pytest.raises(dl.AlreadyDiscarded), transaction(sessions) as s:
        dl.discard(s, dead_letter_id=discarded, reason="second", now=NOW)
    with pytest.raises(dl.AlreadyReplayed, match="already replayed as task new-1"), transaction(sessions) as s:
        dl.discard(s, dead_letter_id=replayed, reason="late", now=NOW)
    with pytest.raises(dl.DeadLetterNotFound), transaction(sessions) as s:
        dl.discard(s, dead_letter_id=12345, reason="x", now=NOW)
    with sessions() as s:
        first = s.get(DeadLetterRecord, discarded)
        assert first is not None and first.discarded_reason == "first"
        task = s.get(TaskRecord, "t2")
        assert task is not None and task.state is TaskState.DEAD_LETTERED


def test_mark_replayed_records_every_replay_and_refuses_a_reused_key(sessions: sessionmaker[Session]) -> None:
    one = seed(sessions, "t1")
    two = seed(sessions, "t2")
    with transaction(sessions) as s:
        letter = dl.lock_dead_letter(s, dead_letter_id=one)
        first = dl.mark_replayed(s, letter=letter, task_id="r1", now=NOW, idempotency_key="k1")
        assert not first.forced
        again = dl.mark_replayed(s, letter=letter, task_id="r2", now=NOW, queue="urgent")
        assert again.forced
    with pytest.raises(dl.IdempotencyKeyReused), transaction(sessions) as s:
        letter = dl.lock_dead_letter(s, dead_letter_id=two)
        dl.mark_replayed(s, letter=letter, task_id="r3", now=NOW, idempotency_key="k1")
    with sessions() as s:
        assert [(r.task_id, r.queue, r.forced) for r in dlq.replays_of(s, dead_letter_id=one)] == [
            ("r1", None, False),
            ("r2", "urgent", True),
        ]
        found = dl.find_replay_request(s, idempotency_key="k1")
        assert found is not None and found.task_id == "r1"
        letter = s.get(DeadLetterRecord, one)
        assert letter is not None and (letter.status, letter.replayed_task_id) == (DeadLetterStatus.REPLAYED, "r2")
        untouched = s.get(DeadLetterRecord, two)
        assert untouched is not None and untouched.status is DeadLetterStatus.PENDING


def test_check_replayable(sessions: sessionmaker[Session]) -> None:
    letter_id = seed(sessions, "t1", replayable=False)
    with sessions() as s:
        letter = dl.get_dead_letter(s, dead_letter_id=letter_id)
        with pytest.raises(dl.NotReplayable, match="send both args and kwargs"):
            dl.check_replayable(letter)
        dl.check_replayable(letter, edits_complete=True)
        letter.status = DeadLetterStatus.REPLAYED
        with pytest.raises(dl.AlreadyReplayed):
            dl.check_replayable(letter, edits_complete=True)
        dl.check_replayable(letter, force=True, edits_complete=True)
        letter.status = DeadLetterStatus.DISCARDED
        with pytest.raises(dl.AlreadyDiscarded):
            dl.check_replayable(letter, force=True, edits_complete=True)
        s.rollback()


def test_exception_tree() -> None:
    from error_handling.exceptions import FunctionRunnerError

    for cls in (dl.AlreadyReplayed, dl.AlreadyDiscarded, dl.BeingReplayed, dl.NotReplayable, dl.IdempotencyKeyReused):
        assert issubclass(cls, dl.DeadLetterConflict)
    assert issubclass(dl.DeadLetterConflict, dl.DeadLetterError)
    assert issubclass(dl.DeadLetterNotFound, dl.DeadLetterError)
    assert issubclass(dl.DeadLetterError, FunctionRunnerError)
    assert sorted(dl.__all__) == dl.__all__
