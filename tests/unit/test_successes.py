"""Success counts in a worker process (``function_runner.wrapper.successes``): counted in memory, written
as minute, hour and day rows by one upsert, kept while the database is away (bounded), written by a
background thread and at shutdown, never inherited by a forked child; and the wrapper counts a
successful execution without touching the database on its path."""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import TaskCount
from error_handling.sealing import generate_key
from function_runner.app import create_app
from function_runner.migrate import upgrade
from function_runner.runtime import Runtime, runtime_for
from function_runner.settings import Settings
from function_runner.wrapper import successes
from function_runner.wrapper.successes import SuccessCounter, counter_of, flush_all
from function_runner.wrapper.task import RecoverableTask
from tests.support.waiting import wait_until

#: 2026-06-01 12:34:56 UTC.
NOW = dt.datetime(2026, 6, 1, 12, 34, 56, tzinfo=dt.UTC)
MINUTE = dt.datetime(2026, 6, 1, 12, 34, tzinfo=dt.UTC)
Write = Callable[[Callable[[Session], int]], Any]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'counts.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def write(sessions: sessionmaker[Session]) -> Write:
    def _write(work: Callable[[Session], int]) -> int:
        with transaction(sessions) as session:
            return work(session)

    return _write


def clock_at(moment: dt.datetime) -> Callable[[], float]:
    return lambda: moment.timestamp()


def stored(sessions: sessionmaker[Session]) -> dict[tuple[str, dt.datetime, str, str], int]:
    with sessions() as s:
        rows = s.execute(sa.select(TaskCount)).scalars()
        return {(r.period, r.bucket, r.task_name, r.queue): r.successes for r in rows}


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[dict[str, Any]]:
    return [r.fr_fields for r in caplog.records if getattr(r, "fr_event", None) == name]  # type: ignore[attr-defined]


def test_counts_are_written_as_minute_hour_and_day_rows_by_task_and_queue(
    sessions: sessionmaker[Session], write: Write
) -> None:
    counter = SuccessCounter(write=write, interval=3600, clock=clock_at(NOW))
    for _ in range(3):
        counter.count("app.send", "mail")
    counter.count("app.send", "")
    assert counter.pending() == {(MINUTE, "app.send", "mail"): 3, (MINUTE, "app.send", ""): 1}

    assert counter.flush()

    hour, day = MINUTE.replace(minute=0), MINUTE.replace(hour=0, minute=0)
    assert stored(sessions) == {
        ("minute", MINUTE, "app.send", "mail"): 3,
        ("hour", hour, "app.send", "mail"): 3,
        ("day", day, "app.send", "mail"): 3,
        ("minute", MINUTE, "app.send", ""): 1,
        ("hour", hour, "app.send", ""): 1,
        ("day", day, "app.send", ""): 1,
    }
    assert counter.pending() == {}
    assert counter.flush()  # nothing left: nothing written
    assert stored(sessions)[("day", day, "app.send", "mail")] == 3


def test_later_writes_add_to_the_same_rows(sessions: sessionmaker[Session], write: Write) -> None:
    moment = [NOW]
    counter = SuccessCounter(write=write, interval=3600, clock=lambda: moment[0].timestamp())
    counter.count("t", "q")
    counter.flush()
    counter.count("t", "q")
    moment[0] = NOW + dt.timedelta(minutes=1)  # the next minute, same hour and day
    counter.count("t", "q")
    counter.flush()

    rows = stored(sessions)
    assert rows[("minute", MINUTE, "t", "q")] == 2
    assert rows[("minute", MINUTE + dt.timedelta(minutes=1), "t", "q")] == 1
    assert rows[("hour", MINUTE.replace(minute=0), "t", "q")] == 3
    assert rows[("day", MINUTE.replace(hour=0, minute=0), "t", "q")] == 3


def test_while_the_database_is_away_the_counts_are_kept_and_added_to_the_next_write(
    sessions: sessionmaker[Session], write: Write, caplog: pytest.LogCaptureFixture
) -> None:
    down = [True]

    def flaky(work: Callable[[Session], int]) -> int:
        if down[0]:
            raise StorageUnavailable("database unavailable: OperationalError")
        return int(write(work))

    counter = SuccessCounter(write=flaky, interval=3600, clock=clock_at(NOW))
    caplog.set_level(logging.INFO, logger="function_runner")
    counter.count("t", "q")
    assert not counter.flush()
    counter.count("t", "q")
    assert not counter.flush()
    assert counter.pending() == {(MINUTE, "t", "q"): 2}
    assert stored(sessions) == {}
    assert len(events(caplog, "successes.not_written")) == 1  # once per outage

    down[0] = False
    counter.count("t", "q")
    assert counter.flush()

    assert stored(sessions)[("day", MINUTE.replace(hour=0, minute=0), "t", "q")] == 3
    assert len(events(caplog, "successes.written_again")) == 1


def test_kept_counts_are_bounded_and_the_oldest_minutes_go_first(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def away(work: Callable[[Session], int]) -> int:
        raise StorageUnavailable("database unavailable: OperationalError")

    monkeypatch.setattr(successes, "MAX_PENDING_KEYS", 3)
    moment = [NOW]
    counter = SuccessCounter(write=away, interval=3600, clock=lambda: moment[0].timestamp())
    for minute in range(5):
        moment[0] = NOW + dt.timedelta(minutes=minute)
        counter.count("t", "q")
    counter.flush()

    assert sorted(counter.pending()) == [(MINUTE + dt.timedelta(minutes=m), "t", "q") for m in (2, 3, 4)]
    assert events(caplog, "successes.dropped") == [{"dropped": 2, "kept": 3}]


def test_a_write_the_database_refuses_is_dropped_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    def refuses(work: Callable[[Session], int]) -> int:
        raise sa.exc.DataError("INSERT", {}, ValueError("refused"))

    counter = SuccessCounter(write=refuses, interval=3600, clock=clock_at(NOW))
    counter.count("t", "q")
    assert not counter.flush()
    assert counter.pending() == {}
    assert events(caplog, "successes.refused") == [{"error": "DataError", "dropped": 1}]


def test_the_thread_writes_every_interval_and_close_writes_what_is_left(
    sessions: sessionmaker[Session], write: Write
) -> None:
    counter = SuccessCounter(write=write, interval=0.05, clock=clock_at(NOW))
    counter.count("t", "q")
    day_row = ("day", MINUTE.replace(hour=0, minute=0), "t", "q")
    wait_until(lambda: stored(sessions).get(day_row) == 1, timeout=10, what="the thread's write")

    assert counter.close()
    counter.count("t", "q")  # counted after the thread stopped: written by the next flush only
    assert counter.flush()
    assert stored(sessions)[day_row] == 2


def test_flush_all_writes_this_process_counters(sessions: sessionmaker[Session], write: Write) -> None:
    counter = SuccessCounter(write=write, interval=3600, clock=clock_at(NOW))
    counter.count("t", "q")

    flush_all(sender=None, pid=os.getpid(), exitcode=0)  # as Celery's worker_process_shutdown sends it

    assert counter.pending() == {}
    assert stored(sessions)[("minute", MINUTE, "t", "q")] == 1


@pytest.fixture
def runtime(database_url: str, tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(database_url=database_url, data_dir=tmp_path, encryption_key=generate_key())
    found = Runtime(settings)
    yield found
    found.close()


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_starts_with_an_empty_counter_of_its_own(runtime: Runtime) -> None:
    parent = counter_of(runtime)
    parent.count("t", "q")  # the parent's thread runs and it holds a count
    assert counter_of(runtime) is parent

    pid = os.fork()
    if pid == 0:  # the child: a counter of its own, empty, with no thread yet
        child = counter_of(runtime)
        ok = child is not parent and child.pending() == {} and child.pid == os.getpid()
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert sum(parent.pending().values()) == 1  # the parent's count is untouched


def test_the_default_interval_is_the_setting(runtime: Runtime) -> None:
    assert counter_of(runtime).interval == runtime.settings.success_flush_interval == 10.0


def test_a_successful_execution_is_counted_without_a_database_round_trip_and_written_when_the_app_closes(
    database_url: str, tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    app = create_app(
        Settings(database_url=database_url, data_dir=tmp_path, encryption_key=generate_key()), main="fr_successes"
    )
    try:

        @app.task(base=RecoverableTask, name="unit.ok")
        def ok() -> str:
            return "ok"

        runtime = runtime_for(app)
        statements: list[str] = []
        sa.event.listen(runtime.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        assert ok.apply().get() == "ok"
        assert ok.apply().get() == "ok"
        assert statements == []  # invariant 7

        counter = counter_of(runtime)
        assert sum(n for (_, task, _), n in counter.pending().items() if task == "unit.ok") == 2
        runtime.close()  # an app closing writes what its process counted
        assert counter.pending() == {}
        assert counter_of(runtime) is not counter  # a later success starts a new counter and thread
        with sessions() as s:
            days = s.execute(sa.select(TaskCount.successes).where(TaskCount.period == "day")).scalars().all()
        assert days == [2]
    finally:
        runtime_for(app).close()
        app.close()
