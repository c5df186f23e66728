"""How the statistics split a window: partial hours from the attempts, whole hours and days from the
roll-up (a day that is mostly inside read as the day minus the hours it lacks); the signed sum of the
parts is exactly the window."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from error_handling.persistence.reads.window import WindowPlan, plan_window

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 20, tzinfo=UTC)
HOUR = dt.timedelta(hours=1)

moments = st.integers(min_value=0, max_value=10 * 86_400 * 1000).map(lambda ms: T0 + dt.timedelta(milliseconds=ms))
aligned = st.integers(min_value=0, max_value=10 * 24).map(lambda h: T0 + dt.timedelta(hours=h))


def _hours(start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    assert start < end and start.minute == start.second == start.microsecond == 0 and end.minute == 0
    return [start + HOUR * i for i in range(int((end - start) / HOUR))]


@settings(max_examples=1000)
@given(a=st.one_of(moments, aligned), b=st.one_of(moments, aligned))
def test_the_signed_parts_are_exactly_the_window(a: dt.datetime, b: dt.datetime) -> None:
    since, until = min(a, b), max(a, b)
    plan = plan_window(since, until)
    if since == until:
        assert plan == WindowPlan([], [], [], [])
        return
    covered: Counter[dt.datetime] = Counter()
    for start, end in plan.hours:
        covered.update(_hours(start, end))
    for start, end in plan.days:
        assert (start.hour, start.minute, end.hour, end.minute) == (0, 0, 0, 0)
        covered.update(_hours(start, end))
    for start, end in plan.minus_hours:
        covered.subtract(_hours(start, end))
    whole = {hour: n for hour, n in covered.items() if n != 0}
    assert set(whole.values()) <= {1}, "an hour counted twice or subtracted more than added"
    for start, end in plan.attempts:  # only partial hours from the attempts: no whole hour inside
        first_whole = start.replace(minute=0, second=0, microsecond=0)
        if first_whole < start:
            first_whole += HOUR
        assert first_whole + HOUR > end
    # the partial ranges and the whole hours tile the window
    pieces = sorted(plan.attempts + [(hour, hour + HOUR) for hour in whole])
    assert pieces[0][0] == since and pieces[-1][1] == until
    assert all(left[1] == right[0] for left, right in itertools.pairwise(pieces))
    assert sum((end - start for start, end in plan.attempts), dt.timedelta()) < 2 * HOUR
    # never more than half a day of hourly rows per day touched
    assert sum(len(_hours(s, e)) for s, e in plan.hours + plan.minus_hours) <= 12 * 2 * (len(plan.days) + 2)


def test_an_hour_long_window_off_the_hour_reads_only_attempts() -> None:
    since = T0 + dt.timedelta(minutes=10)
    until = since + HOUR
    assert plan_window(since, until) == WindowPlan(attempts=[(since, until)], hours=[], days=[], minus_hours=[])


def test_a_day_long_window_reads_two_days_minus_the_hours_outside() -> None:
    until = T0 + dt.timedelta(days=1, hours=20, minutes=30)  # a day back from 20:30 reaches 20:30 the day before
    plan = plan_window(until - dt.timedelta(days=1), until)
    day1, day2 = T0, T0 + dt.timedelta(days=1)
    assert plan.attempts == [
        (day1 + dt.timedelta(hours=20, minutes=30), day1 + dt.timedelta(hours=21)),
        (day2 + dt.timedelta(hours=20), until),
    ]
    assert plan.hours == [(day1 + dt.timedelta(hours=21), day2)]  # 3 hours: cheaper as hours
    assert plan.days == [(day2, day2 + dt.timedelta(days=1))]  # 20 hours: the day minus 4 hours
    assert plan.minus_hours == [(day2 + dt.timedelta(hours=20), day2 + dt.timedelta(days=1))]


def test_a_week_reads_whole_days_and_the_hours_around_them() -> None:
    until = T0 + dt.timedelta(days=7, hours=5, minutes=30)
    plan = plan_window(until - dt.timedelta(days=7), until)
    assert plan.days == [(T0, T0 + dt.timedelta(days=7))]  # 18 of the first day's hours: the day minus 6
    assert plan.minus_hours == [(T0, T0 + dt.timedelta(hours=6))]
    assert plan.hours == [(T0 + dt.timedelta(days=7), T0 + dt.timedelta(days=7, hours=5))]
    assert plan.attempts == [
        (T0 + dt.timedelta(hours=5, minutes=30), T0 + dt.timedelta(hours=6)),
        (T0 + dt.timedelta(days=7, hours=5), until),
    ]
