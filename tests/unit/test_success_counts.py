"""Reading success counts over a window (``success_counts``): whole days from day rows, whole hours from
hour rows, the rest from minute rows, a partial minute at an end counted whole. Property-style: over
random counts and random windows, the answer is the direct sum of the per-minute counts inserted."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import TaskCount
from error_handling.persistence.reads.executions import success_counts, widened_to_minutes
from error_handling.persistence.task_counts import SuccessKey, add_successes
from function_runner.migrate import upgrade

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 20, tzinfo=UTC)
SPAN_MINUTES = 3 * 24 * 60  # counts over three days
MINUTE = dt.timedelta(minutes=1)

counts_strategy = st.dictionaries(
    st.tuples(
        st.integers(min_value=0, max_value=SPAN_MINUTES - 1),
        st.sampled_from(["app.a", "app.b"]),
        st.sampled_from(["celery", ""]),
    ),
    st.integers(min_value=1, max_value=1000),
    max_size=60,
)
# moments from a day before the counts to a day after them, to the millisecond or on a minute or an hour
moments = st.one_of(
    st.integers(min_value=-86_400_000, max_value=4 * 86_400_000).map(lambda ms: T0 + dt.timedelta(milliseconds=ms)),
    st.integers(min_value=-24 * 60, max_value=4 * 24 * 60).map(lambda m: T0 + m * MINUTE),
    st.integers(min_value=-24, max_value=4 * 24).map(lambda h: T0 + dt.timedelta(hours=h)),
)


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('counts')) / 'counts.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


def insert(sessions: sessionmaker[Session], counts: dict[tuple[int, str, str], int]) -> None:
    keyed: dict[SuccessKey, int] = {
        (T0 + minute * MINUTE, task, queue): n for (minute, task, queue), n in counts.items()
    }
    with transaction(sessions) as s:
        s.execute(sa.delete(TaskCount))
        add_successes(s, keyed)


def direct_sum(
    counts: dict[tuple[int, str, str], int], since: dt.datetime, until: dt.datetime
) -> dict[tuple[str, str], int]:
    if since >= until:
        return {}
    start, end = widened_to_minutes(since, until)
    total: Counter[tuple[str, str]] = Counter()
    for (minute, task, queue), n in counts.items():
        if start <= T0 + minute * MINUTE < end:
            total[(task, queue)] += n
    return dict(total)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(counts=counts_strategy, a=moments, b=moments)
def test_success_counts_equal_the_direct_sum_of_the_minutes_in_the_window(
    sessions: sessionmaker[Session], counts: dict[tuple[int, str, str], int], a: dt.datetime, b: dt.datetime
) -> None:
    insert(sessions, counts)
    since, until = min(a, b), max(a, b)
    with sessions() as s:
        assert success_counts(s, since=since, until=until) == direct_sum(counts, since, until)


def test_a_partial_minute_at_either_end_counts_whole(sessions: sessionmaker[Session]) -> None:
    insert(sessions, {(0, "app.a", "celery"): 2, (1, "app.a", "celery"): 3, (2, "app.a", "celery"): 5})
    with sessions() as s:
        inside_first = success_counts(s, since=T0 + dt.timedelta(seconds=59), until=T0 + dt.timedelta(seconds=61))
        one_minute = success_counts(s, since=T0 + MINUTE, until=T0 + 2 * MINUTE)
        empty = success_counts(s, since=T0 + 1.5 * MINUTE, until=T0 + 1.5 * MINUTE)
    assert inside_first == {("app.a", "celery"): 5}  # minutes 0 and 1, each touched
    assert one_minute == {("app.a", "celery"): 3}  # aligned ends: exactly minute 1
    assert empty == {}
    assert widened_to_minutes(T0 + dt.timedelta(seconds=1), T0 + MINUTE) == (T0, T0 + MINUTE)


def test_whole_days_and_hours_are_read_from_their_rows_not_minute_rows(sessions: sessionmaker[Session]) -> None:
    insert(sessions, {(60 * 24 + 90, "app.b", ""): 7, (10, "app.b", ""): 1})  # day 2 01:30, day 1 00:10
    with transaction(sessions) as s:  # as retention leaves it: minute rows gone, hours and days kept
        s.execute(sa.delete(TaskCount).where(TaskCount.period == "minute"))
    with sessions() as s:
        three_days = success_counts(s, since=T0, until=T0 + dt.timedelta(days=3))
        partial_hour = success_counts(
            s, since=T0 + dt.timedelta(hours=25, minutes=15), until=T0 + dt.timedelta(hours=26)
        )
    assert three_days == {("app.b", ""): 8}
    assert partial_hour == {}  # a partial hour is read from minute rows, which are gone
