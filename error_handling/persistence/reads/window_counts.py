"""Exact counts of failed attempts in a window, by any of the kinds the roll-up keeps, read by the
window's plan (:func:`~error_handling.persistence.reads.window.plan_window`): partial hours from the
attempts, whole hours and days from the roll-up (``fr_error_counts``), in one statement.

The kinds are the columns the two tables share: ``task_name``, ``queue`` (``''`` for an attempt without
one, as the roll-up keeps it), ``category``, ``reason`` and ``fingerprint``. Counts may be split by the
bucket each part was read from (:class:`Resolution`): the error statistics sum a whole window, a group's
trend reads it hour by hour or day by day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Collection, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import ErrorCount, FailedAttempt, UTCDateTime
from error_handling.persistence.reads.window import Span, WindowPlan, plan_window
from error_handling.persistence.rollup import Period, day_of, hour_of

__all__ = ["KINDS", "Counted", "Resolution", "WindowQuery", "count_window"]

#: The kinds a window's counts can be split by.
KINDS: Final = ("task_name", "queue", "category", "reason", "fingerprint")


class Resolution(enum.StrEnum):
    """How a window's counts are split in time."""

    #: One count per kind for the whole window.
    WINDOW = "window"
    #: One count per kind and hour (whole hours read from the hourly rows only).
    HOUR = "hour"
    #: One count per kind and day (UTC).
    DAY = "day"


@dataclasses.dataclass(frozen=True)
class WindowQuery:
    """What :func:`count_window` counts in ``[since, until)``.

    Attributes:
        keys: the kinds (of :data:`KINDS`) the counts are split by (none: one total).
        fingerprints: only these fingerprints (None: all).
        equal: only the attempts whose kind (of :data:`KINDS`) equals the value.
        resolution: split in time too (see :class:`Resolution`).
    """

    since: dt.datetime
    until: dt.datetime
    keys: Sequence[str] = ()
    fingerprints: Collection[str] | None = None
    equal: dict[str, str] = dataclasses.field(default_factory=dict)
    resolution: Resolution = Resolution.WINDOW


#: One count: its bucket (the start of its hour or day; None at :attr:`Resolution.WINDOW`), the values of
#: the query's keys in order, and how many attempts.
Counted = tuple[dt.datetime | None, tuple[str, ...], int]


def count_window(session: Session, query: WindowQuery) -> list[Counted]:
    """How many attempts of each kind failed in the query's window, exactly (zero counts left out).

    Raises:
        ValueError: a key or an ``equal`` name is not one of :data:`KINDS`.
    """
    unknown = (set(query.keys) | set(query.equal)) - set(KINDS)
    if unknown:
        raise ValueError(f"not a kind of the roll-up: {', '.join(sorted(unknown))}")
    if query.fingerprints is not None and not query.fingerprints:
        return []
    plan = _plan(query)
    parts: list[Any] = []
    for sign, rolled in (
        (1, [(Period.HOUR, span) for span in plan.hours] + [(Period.DAY, span) for span in plan.days]),
        (-1, [(Period.HOUR, span) for span in plan.minus_hours]),
    ):
        if rolled:
            parts.append(_rolled(query, sign, rolled))
    parts.extend(_partial(query, span) for span in plan.attempts)
    if not parts:
        return []
    both = sa.union_all(*parts).subquery() if len(parts) > 1 else parts[0].subquery()
    split = [both.c.bucket] if query.resolution is not Resolution.WINDOW else []
    split += [both.c[key] for key in query.keys]
    statement = sa.select(*split, sa.func.sum(both.c.n)).group_by(*split) if split else sa.select(sa.func.sum(both.c.n))
    counted: dict[tuple[dt.datetime | None, tuple[str, ...]], int] = {}
    for row in session.execute(statement):
        values = list(row)
        bucket = _in_resolution(values.pop(0), query.resolution) if query.resolution is not Resolution.WINDOW else None
        key = (bucket, tuple(str(value) for value in values[:-1]))
        counted[key] = counted.get(key, 0) + int(values[-1] or 0)
    return [(bucket, key, n) for (bucket, key), n in counted.items() if n]


def _plan(query: WindowQuery) -> WindowPlan:
    """The window's plan; hour by hour, its whole hours are all read from the hourly rows."""
    if query.resolution is not Resolution.HOUR:
        return plan_window(query.since, query.until)
    plan = plan_window(query.since, query.until)
    if not plan.hours and not plan.days:
        return plan
    first = (
        hour_of(query.since) if hour_of(query.since) == query.since else hour_of(query.since) + dt.timedelta(hours=1)
    )
    return WindowPlan(attempts=plan.attempts, hours=[(first, hour_of(query.until))], days=[])


def _in_resolution(bucket: Any, resolution: Resolution) -> dt.datetime:
    """A part's bucket (a roll-up row's, or the hour of partial attempts) in the query's resolution."""
    moment = bucket if bucket.tzinfo is not None else bucket.replace(tzinfo=dt.UTC)
    moment = moment.astimezone(dt.UTC)
    return day_of(moment) if resolution is Resolution.DAY else hour_of(moment)


def _conditions(model: Any, query: WindowQuery) -> list[Any]:
    found = [_kind(model, name) == value for name, value in query.equal.items()]
    if query.fingerprints is not None:
        found.append(model.fingerprint.in_(list(query.fingerprints)))
    return found


def _kind(model: Any, name: str) -> Any:
    """A kind's column; an attempt without a queue counts as the roll-up counts it (``''``)."""
    if model is FailedAttempt and name == "queue":
        return sa.func.coalesce(FailedAttempt.queue, "")
    return getattr(model, name)


def _rolled(query: WindowQuery, sign: int, rolled: list[tuple[Period, Span]]) -> Any:
    """The roll-up rows of these periods' spans, each count times ``sign``."""
    columns = [ErrorCount.bucket.label("bucket")] if query.resolution is not Resolution.WINDOW else []
    columns += [getattr(ErrorCount, key).label(key) for key in query.keys]
    spans = sa.or_(
        *(
            sa.and_(ErrorCount.period == period, ErrorCount.bucket >= a, ErrorCount.bucket < b)
            for period, (a, b) in rolled
        )
    )
    return sa.select(*columns, (ErrorCount.count * sign).label("n")).where(spans, *_conditions(ErrorCount, query))


def _partial(query: WindowQuery, span: Span) -> Any:
    """The attempts of one partial hour, counted by kind (the span lies within one hour: its bucket)."""
    start, end = span
    keys = [_kind(FailedAttempt, key).label(key) for key in query.keys]
    columns: list[Any] = []
    if query.resolution is not Resolution.WINDOW:
        columns.append(sa.literal(hour_of(start), UTCDateTime()).label("bucket"))
    statement = sa.select(*columns, *keys, sa.func.count().label("n")).where(
        FailedAttempt.failed_at >= start, FailedAttempt.failed_at < end, *_conditions(FailedAttempt, query)
    )
    return statement.group_by(*keys) if keys else statement
