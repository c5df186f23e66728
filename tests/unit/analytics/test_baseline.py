"""Baselines: which past windows are read (weekly, daily, recent), windows of any length, no
self-counting, median and MAD with their floors."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from error_handling.analytics import AnalysisConfig, BaselineKind, baseline_for, count_between, sample_spans
from error_handling.analytics.baseline import hour_start

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
T0 = dt.datetime(2025, 3, 3, tzinfo=UTC)


def flat(hours: int, count: int = 6, *, start: dt.datetime = T0) -> dict[dt.datetime, int]:
    return {start + h * HOUR: count for h in range(hours)}


def test_a_partly_covered_hour_counts_in_proportion() -> None:
    history = {T0: 12, T0 + HOUR: 60}
    assert count_between(
        history, start=T0 + dt.timedelta(minutes=30), end=T0 + dt.timedelta(minutes=75)
    ) == pytest.approx(6 + 15)


def test_two_weeks_of_history_give_the_same_hour_of_the_week() -> None:
    history = flat(24 * 21)
    # the same Monday hour in each week is busier: a weekly baseline sees it, a daily one would not
    for week in range(3):
        history[T0 + dt.timedelta(weeks=week, hours=10)] = 60
    since = T0 + dt.timedelta(weeks=3, hours=10)
    baseline = baseline_for(history, since=since, until=since + HOUR)
    assert (baseline.kind, baseline.samples, baseline.expected) == (BaselineKind.SEASONAL_WEEK, 3, 60)


def test_three_days_give_the_same_hour_of_the_day() -> None:
    history = {T0 + dt.timedelta(days=d, hours=h): (40 if h == 15 else 4) for d in range(3) for h in range(24)}
    since = T0 + dt.timedelta(days=3, hours=15)
    baseline = baseline_for(history, since=since, until=since + HOUR)
    assert (baseline.kind, baseline.samples, baseline.expected) == (BaselineKind.SEASONAL_DAY, 3, 40)


def test_less_history_gives_the_windows_just_before() -> None:
    history = flat(30, 6)
    since = T0 + 30 * HOUR
    baseline = baseline_for(history, since=since, until=since + HOUR)
    assert (baseline.kind, baseline.samples, baseline.expected) == (BaselineKind.RECENT, 24, 6)


def test_a_five_minute_window_is_scaled_from_whole_hours_before_its_own() -> None:
    history = flat(5, 60)
    since = T0 + 5 * HOUR + dt.timedelta(minutes=20)
    history[T0 + 5 * HOUR] = 10_000  # the window's own hour: never part of its baseline
    baseline = baseline_for(history, since=since, until=since + dt.timedelta(minutes=5))
    assert (baseline.kind, baseline.samples, baseline.expected) == (BaselineKind.RECENT, 5, pytest.approx(5))


def test_a_three_day_window_reads_past_windows_that_end_before_it() -> None:
    history = flat(24 * 9, 2)
    since = T0 + dt.timedelta(days=9)
    baseline = baseline_for(history, since=since, until=since + dt.timedelta(days=3))
    # one week back fits once (two needed); one and two days back reach into the window: days 3 to 7 back
    assert (baseline.kind, baseline.samples, baseline.expected) == (BaselineKind.SEASONAL_DAY, 5, 144)


def test_missing_hours_inside_the_observed_span_are_zero() -> None:
    since = T0 + dt.timedelta(days=4)
    history = {since - HOUR * 24 * 4: 50}  # one busy hour 4 days ago, nothing since
    baseline = baseline_for(history, since=since, until=since + HOUR, observed_since=T0)
    assert (baseline.kind, baseline.samples, baseline.expected, baseline.mean) == (
        BaselineKind.SEASONAL_DAY,
        4,
        0,
        12.5,
    )


def test_no_history_is_an_empty_baseline() -> None:
    baseline = baseline_for({}, since=T0, until=T0 + HOUR)
    assert (baseline.samples, baseline.expected) == (0, 0)


def test_the_mad_is_floored_absolutely_and_relative_to_the_median() -> None:
    since = T0 + dt.timedelta(days=7)
    assert baseline_for(flat(24 * 7, 3), since=since, until=since + HOUR).mad == 1.0
    assert baseline_for(flat(24 * 7, 300), since=since, until=since + HOUR).mad == pytest.approx(30)
    config = AnalysisConfig(mad_floor=0.0, mad_floor_ratio=0.0)
    assert baseline_for(flat(24 * 7, 3), since=since, until=since + HOUR, config=config).mad == 0.0


def test_a_window_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ValueError, match="end after"):
        baseline_for({}, since=T0, until=T0)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(0, 500), min_size=1, max_size=24 * 16),
    offset=st.integers(0, 24 * 20),
    minutes=st.sampled_from([5, 15, 60, 90, 24 * 60, 3 * 24 * 60]),
)
def test_the_window_itself_never_counts_in_its_baseline(counts: list[int], offset: int, minutes: int) -> None:
    history = {T0 + h * HOUR: n for h, n in enumerate(counts)}
    since = T0 + offset * HOUR + dt.timedelta(minutes=minutes % 60)
    until = since + dt.timedelta(minutes=minutes)
    spiked = dict(history)
    hour = since.replace(minute=0)
    while hour < until:
        spiked[hour] = 10**6
        hour += HOUR
    assert baseline_for(spiked, since=since, until=until, observed_since=T0) == baseline_for(
        history, since=since, until=until, observed_since=T0
    )


@pytest.mark.parametrize("days_of_history", [0.5, 2, 5, 20, 40])
@pytest.mark.parametrize("window_minutes", [5, 60, 150, 1440])
def test_the_sampled_spans_are_all_a_baseline_reads(days_of_history: float, window_minutes: int) -> None:
    """A history cut down to the hours of :func:`sample_spans` gives the same baseline as the whole one, so a
    reader of the roll-up needs no other hour."""
    rng = random.Random(f"{days_of_history}-{window_minutes}")
    until = dt.datetime(2026, 11, 30, 14, 23, tzinfo=dt.UTC)
    since = until - dt.timedelta(minutes=window_minutes)
    observed = hour_start(until - dt.timedelta(days=days_of_history))
    hours = int((until - observed) / HOUR) + 1
    history = {observed + k * HOUR: rng.randrange(0, 30) for k in range(hours)}
    spans = sample_spans(since=since, until=until, observed_since=observed)
    kept = {hour: n for hour, n in history.items() if any(hour + HOUR > begin and hour < end for begin, end in spans)}
    whole = baseline_for(history, since=since, until=until, observed_since=observed)
    cut = baseline_for(kept, since=since, until=until, observed_since=observed)
    assert cut == whole
    assert len(kept) <= len(history)
