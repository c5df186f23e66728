"""Success counts on a real Postgres: counters of many threads and "processes" (one counter each)
writing the same minute, hour and day rows at once lose nothing and never deadlock (one upsert, rows in
one order); the read function sums them by task and queue; retention deletes old minute rows only."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import TaskCount
from error_handling.persistence.reads.executions import success_counts
from error_handling.persistence.task_counts import add_successes
from function_runner.dispatch.retention import RetentionRole
from function_runner.settings import Settings
from function_runner.wrapper.successes import SuccessCounter
from tests.conftest import TEST_KEY

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
KEYS = [("app.a", "celery"), ("app.a", "high"), ("app.b", "")]


@pytest.fixture
def sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url, pool_size=10)
    yield make_sessionmaker(engine)
    engine.dispose()


def write_with(sessions: sessionmaker[Session]) -> Callable[[Callable[[Session], int]], int]:
    def _write(work: Callable[[Session], int]) -> int:
        with transaction(sessions) as s:
            s.execute(sa.text("SET LOCAL lock_timeout = '20s'"))  # a deadlock or a hang fails, not waits
            return work(s)

    return _write


def test_counters_of_many_threads_and_processes_write_the_same_rows_without_losing_any(
    sessions: sessionmaker[Session],
) -> None:
    write = write_with(sessions)
    shared = SuccessCounter(write=write, interval=3600, clock=lambda: NOW.timestamp())
    own: list[SuccessCounter] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker(index: int) -> None:
        # each "process" counts over 26 hours of minutes (two days), in its own order
        moments = [NOW + dt.timedelta(minutes=i + index) for i in range(0, 60 * 26, 37)]
        counter = SuccessCounter(write=write, interval=3600, clock=lambda: moments[0].timestamp())
        own.append(counter)
        start.wait()
        try:
            for round_ in range(5):
                for moment in moments[index % 3 :] + moments[: index % 3]:
                    counter.clock = moment.timestamp
                    for task, queue in KEYS:
                        counter.count(task, queue)
                        shared.count(task, queue)
                counter.flush()
                if round_ % 2 == index % 2:
                    shared.flush()
        except BaseException as exc:  # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors and not any(t.is_alive() for t in threads)
    assert all(c.pending() == {} for c in own)
    shared.flush()

    per_worker = len(range(0, 60 * 26, 37)) * 5
    expected = {key: 2 * 8 * per_worker for key in KEYS}  # each count once in its own and once in the shared
    with sessions() as s:
        assert success_counts(s, since=NOW - dt.timedelta(days=1), until=NOW + dt.timedelta(days=3)) == expected
        by_period = dict(
            s.execute(sa.select(TaskCount.period, sa.func.sum(TaskCount.successes)).group_by(TaskCount.period)).all()
        )
    assert by_period == {
        "minute": sum(expected.values()),
        "hour": sum(expected.values()),
        "day": sum(expected.values()),
    }


def test_the_read_function_splits_a_window_into_days_hours_and_minutes(sessions: sessionmaker[Session]) -> None:
    minute = dt.timedelta(minutes=1)
    counts = {
        (NOW - dt.timedelta(days=1, minutes=1), "app.a", "celery"): 1,  # before the window
        (NOW + 5 * minute, "app.a", "celery"): 2,  # a partial hour at the start
        (NOW + dt.timedelta(hours=3), "app.a", "celery"): 4,  # a whole hour
        (NOW + dt.timedelta(days=1, hours=2), "app.a", "celery"): 8,  # a whole day
        (NOW + dt.timedelta(days=2, hours=13, minutes=2), "app.b", ""): 16,  # the partial hour at the end
        (NOW + dt.timedelta(days=2, hours=13, minutes=30), "app.b", ""): 32,  # after the window
    }
    with transaction(sessions) as s:
        add_successes(s, counts)
    since = NOW + dt.timedelta(minutes=4, seconds=30)  # its minute counts whole
    until = NOW + dt.timedelta(days=2, hours=13, minutes=2, seconds=1)
    with sessions() as s:
        assert success_counts(s, since=since, until=until) == {("app.a", "celery"): 14, ("app.b", ""): 16}
        assert success_counts(s, since=until, until=until) == {}


def test_retention_deletes_old_minute_rows_and_keeps_hours_and_days(
    sessions: sessionmaker[Session], pg_url: str, tmp_path: Path
) -> None:
    with transaction(sessions) as s:
        add_successes(
            s, {(NOW - dt.timedelta(days=9), "app.a", "celery"): 3, (NOW - dt.timedelta(days=7), "app.a", "celery"): 5}
        )
    settings = Settings(database_url=pg_url, broker_url="memory://", encryption_key=TEST_KEY, data_dir=tmp_path)
    assert settings.retention_success_minutes_days == 8.0

    def in_transaction(work: Callable[[Session], object], *, patience: float | None = None) -> object:
        with transaction(sessions) as s:
            return work(s)

    totals = RetentionRole(in_transaction=in_transaction, settings=settings, runner="dispatcher@test:1").run(now=NOW)

    assert totals is not None and totals.deleted.get("fr_task_counts") == 1
    with sessions() as s:
        left = sorted(s.execute(sa.select(TaskCount.period, TaskCount.bucket)).all())
        assert success_counts(s, since=NOW - dt.timedelta(days=10), until=NOW) == {("app.a", "celery"): 8}
    assert [period for period, _ in left].count("minute") == 1
    assert {period for period, _ in left} == {"minute", "hour", "day"}
