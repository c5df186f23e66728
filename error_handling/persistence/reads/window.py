"""How the statistics read a window ``[since, until)``: partial hours from the attempts (the error
roll-up, ``fr_error_counts``) or from minute rows (the success counts, ``fr_task_counts``), whole hours
and days from hour and day rows. Pure functions."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

from error_handling.persistence.rollup import Period, day_of, hour_of

#: A half-open time range ``[start, end)``.
Span = tuple[dt.datetime, dt.datetime]


#: Past this many whole hours of one day, the day's row minus the other hours is read instead (fewer rows).
_HOURS_BEFORE_DAY: Final = 12


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """How :func:`error_stats` reads a window: ranges whose signed sum is exactly the window.

    ``attempts + hours + days - minus_hours`` covers each instant of the window once and nothing else.

    Attributes:
        attempts: the partial hours at the two ends, counted from the attempts themselves.
        hours: whole hours, read from the hourly roll-up rows.
        days: whole days, read from the daily roll-up rows.
        minus_hours: whole hours of those days that are outside the window, subtracted (hourly rows).
    """

    attempts: list[Span]
    hours: list[Span]
    days: list[Span]
    minus_hours: list[Span] = dataclasses.field(default_factory=list)


def plan_window(since: dt.datetime, until: dt.datetime) -> WindowPlan:
    """Split ``[since, until)`` into partial hours, whole hours and whole days (UTC).

    A day of which the window holds more than :data:`_HOURS_BEFORE_DAY` whole hours is read as the
    day minus the hours it lacks. Empty ranges are left out.
    """
    if since >= until:
        return WindowPlan([], [], [])
    first_hour, last_hour = _ceil_hour(since), hour_of(until)
    if first_hour >= last_hour:
        return WindowPlan([(since, until)], [], [])
    plan = WindowPlan(_nonempty([(since, first_hour), (last_hour, until)]), [], [], [])
    one_day = dt.timedelta(days=1)
    start = first_hour
    while start < last_hour:  # one segment per day touched, each within that day
        day = day_of(start)
        end = min(day + one_day, last_hour)
        if end - start == one_day:
            _extend(plan.days, (day, end))
        elif end - start > dt.timedelta(hours=_HOURS_BEFORE_DAY):
            _extend(plan.days, (day, day + one_day))
            plan.minus_hours.extend(_nonempty([(day, start), (end, day + one_day)]))
        else:
            plan.hours.append((start, end))
        start = end
    return plan


def signed_spans(plan: WindowPlan, *, partial: Period) -> list[tuple[int, Period, Span]]:
    """The plan as roll-up rows to add (+1) or subtract (-1): its partial hours as rows of ``partial``
    (which must cover them exactly: minute rows for a window aligned on minutes), its hours and days as
    hour and day rows, and the hours it subtracts as hour rows."""
    added = [(partial, span) for span in plan.attempts]
    added += [(Period.HOUR, span) for span in plan.hours] + [(Period.DAY, span) for span in plan.days]
    return [(1, period, span) for period, span in added] + [(-1, Period.HOUR, span) for span in plan.minus_hours]


def _extend(spans: list[Span], span: Span) -> None:
    """Append ``span``, merged into the last one when they touch."""
    if spans and spans[-1][1] == span[0]:
        spans[-1] = (spans[-1][0], span[1])
    else:
        spans.append(span)


def _ceil_hour(moment: dt.datetime) -> dt.datetime:
    start = hour_of(moment)
    return start if start == moment else start + dt.timedelta(hours=1)


def _nonempty(spans: list[Span]) -> list[Span]:
    return [(a, b) for a, b in spans if a < b]
