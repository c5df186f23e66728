"""What a window's count is expected to be, from an hourly history of the same series.

The samples are windows of the same length in the past, counted from the hour buckets (a bucket that a
sample covers in part counts in proportion, so a 5-minute window and a 3-day one are both served):

- ``seasonal_week``: the same hours of the week in the previous weeks, when 3 or more fit in the history (a spike needs 3 samples);
- ``seasonal_day``: else the same hours of the day in the previous days, when 3 or more fit;
- ``recent``: else the windows just before (at least an hour long each, scaled to the window's length).

Only whole hours before the hour the window starts in are read, so the window never counts in its own
baseline. The expected count is the median of the samples, the spread their MAD (median absolute
deviation), floored so that a flat history still tolerates some noise; their mean is kept too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import math
import statistics
from collections.abc import Callable
from typing import Any, TypeVar

from error_handling.analytics.config import DEFAULT_CONFIG, AnalysisConfig
from error_handling.analytics.inputs import Hourly

T = TypeVar("T")

HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
WEEK = dt.timedelta(weeks=1)
#: The weekly and daily baselines need this many samples; fewer and the next kind is tried.
MIN_WEEKS = 3
MIN_DAYS = 3


class BaselineKind(enum.StrEnum):
    """Which past windows a baseline was built from."""

    #: The same hours of the week, in previous weeks.
    SEASONAL_WEEK = "seasonal_week"
    #: The same hours of the day, in previous days.
    SEASONAL_DAY = "seasonal_day"
    #: The windows just before.
    RECENT = "recent"


@dataclasses.dataclass(frozen=True)
class Baseline:
    """The expected count of one series in one window."""

    #: Which past windows it was built from.
    kind: BaselineKind
    #: The count expected in the window (the median of the samples).
    expected: float
    #: The samples' median (equal to ``expected`` until scaled).
    median: float
    #: The samples' median absolute deviation, floored (see :class:`AnalysisConfig`).
    mad: float
    #: The samples' mean (the rate of the spike test's Poisson condition when above the median).
    mean: float
    #: How many past windows were read (0: no history).
    samples: int

    def scaled(self, factor: float) -> Baseline:
        """The same baseline with its expected count and spread multiplied by ``factor`` (a traffic ratio)."""
        return dataclasses.replace(
            self, expected=self.expected * factor, mad=self.mad * factor, mean=self.mean * factor
        )

    def evidence(self) -> dict[str, Any]:
        """The baseline as JSON-able evidence."""
        return {
            "kind": self.kind.value,
            "expected": round(self.expected, 3),
            "median": round(self.median, 3),
            "mad": round(self.mad, 3),
            "mean": round(self.mean, 3),
            "samples": self.samples,
        }


def hour_start(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC hour ``moment`` falls in."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def count_between(history: Hourly, *, start: dt.datetime, end: dt.datetime) -> float:
    """The count of ``history`` in ``[start, end)``: hour buckets it covers in part count in proportion.

    Walks the hours of the span or the buckets of the history, whichever are fewer."""
    first = hour_start(start)
    if len(history) < (end - first) / HOUR:
        buckets = ((hour, n) for hour, n in history.items() if first <= hour < end)
    else:
        buckets = ((first + k * HOUR, history.get(first + k * HOUR, 0)) for k in range(math.ceil((end - first) / HOUR)))
    total = 0.0
    for hour, count in buckets:
        if not count:
            continue
        if hour >= start and hour + HOUR <= end:
            total += count
        else:
            total += count * ((min(end, hour + HOUR) - max(start, hour)) / HOUR)
    return total


def baseline_for(
    history: Hourly,
    *,
    since: dt.datetime,
    until: dt.datetime,
    observed_since: dt.datetime | None = None,
    config: AnalysisConfig = DEFAULT_CONFIG,
) -> Baseline:
    """The baseline of ``history`` for the window ``[since, until)``.

    Args:
        history: counts per hour (start of a UTC hour); a missing hour inside the observed span is 0.
        since: the window's start; until: its end.
        observed_since: where the history starts (hours before it are unknown, not 0); by default the
            oldest hour of ``history`` (or ``since`` when it is empty: no history).
        config: the floors of the spread and how many samples of each kind are read.

    Raises:
        ValueError: ``until`` is not after ``since``.
    """
    if until <= since:
        raise ValueError("a window must end after it starts")
    start = observed_since if observed_since is not None else min(history, default=since)
    kind, spans = _chosen_spans(since=since, until=until, observed_since=start, config=config)
    samples = [count_between(history, start=begin, end=end) * ((until - since) / (end - begin)) for begin, end in spans]
    return _baseline(kind, samples, config=config)


def sample_spans(
    *,
    since: dt.datetime,
    until: dt.datetime,
    observed_since: dt.datetime | None,
    config: AnalysisConfig = DEFAULT_CONFIG,
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The past spans whose counts the baseline of ``[since, until)`` samples, given where the history
    starts (None: no history): what a reader of the roll-up has to read, and nothing more."""
    if until <= since or observed_since is None:
        return []
    return _chosen_spans(since=since, until=until, observed_since=observed_since, config=config)[1]


def _chosen_spans(
    *, since: dt.datetime, until: dt.datetime, observed_since: dt.datetime, config: AnalysisConfig
) -> tuple[BaselineKind, list[tuple[dt.datetime, dt.datetime]]]:
    """Which kind of baseline ``[since, until)`` gets, and the spans it samples (see the module's docstring)."""
    anchor = hour_start(since)

    def span(offset: dt.timedelta, length: dt.timedelta) -> tuple[dt.datetime, dt.datetime] | None:
        # the window shifted back by offset, as long as length (>= the window's), or None outside the history
        end = until - offset
        begin = end - length
        return None if begin < observed_since or end > anchor else (begin, end)

    weekly = _samples(lambda k: span(k * WEEK, until - since), config.seasonal_weeks)
    if len(weekly) >= MIN_WEEKS:
        return BaselineKind.SEASONAL_WEEK, weekly
    daily = _samples(lambda k: span(k * DAY, until - since), config.seasonal_days)
    if len(daily) >= MIN_DAYS:
        return BaselineKind.SEASONAL_DAY, daily
    length = max(until - since, HOUR)
    first = until - anchor  # the first recent sample ends where the window's hour starts
    return BaselineKind.RECENT, _samples(lambda k: span(first + (k - 1) * length, length), config.recent_samples)


def _samples(take: Callable[[int], T | None], limit: int) -> list[T]:
    """The samples ``take(1)``, ``take(2)``, ... ``take(limit)`` that fall inside the history."""
    found: list[T] = []
    for k in range(1, limit + 1):
        value = take(k)
        if value is not None:
            found.append(value)
    return found


def _baseline(kind: BaselineKind, samples: list[float], *, config: AnalysisConfig) -> Baseline:
    if not samples:
        return Baseline(kind=kind, expected=0.0, median=0.0, mad=config.mad_floor, mean=0.0, samples=0)
    median = statistics.median(samples)
    mad = statistics.median(abs(value - median) for value in samples)
    floored = max(mad, config.mad_floor, config.mad_floor_ratio * median)
    mean = statistics.fmean(samples)
    return Baseline(kind=kind, expected=median, median=median, mad=floored, mean=mean, samples=len(samples))
