"""The error roll-up: failed attempts counted per hour and per day, task, queue and kind (``fr_error_counts``).

Written in the transaction that records the attempts (:func:`count_errors`); the error statistics read
it (:mod:`error_handling.persistence.reads.counts`).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence import sanitise
from error_handling.persistence.models import ErrorCount, UTCDateTime


class Period(enum.StrEnum):
    """The length of a roll-up bucket (``fr_error_counts.period``, ``fr_task_counts.period``).

    The error roll-up has hour and day rows; the success counts have minute rows too."""

    #: A UTC minute (success counts only).
    MINUTE = "minute"
    #: A UTC hour.
    HOUR = "hour"
    #: A UTC day.
    DAY = "day"

    def start_of(self, moment: dt.datetime) -> dt.datetime:
        """The start of the UTC minute, hour or day ``moment`` falls in."""
        if self is Period.MINUTE:
            return minute_of(moment)
        return hour_of(moment) if self is Period.HOUR else day_of(moment)


def minute_of(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC minute ``moment`` falls in."""
    return moment.astimezone(dt.UTC).replace(second=0, microsecond=0)


def hour_of(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC hour ``moment`` falls in."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def day_of(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC day ``moment`` falls in."""
    return hour_of(moment).replace(hour=0)


#: Adds attempts to a roll-up row: the same statement on Postgres and SQLite (both have ``ON CONFLICT
#: ... DO UPDATE``), compiled once, run for many rows at once.
_COUNT_ERRORS = sa.text(
    "INSERT INTO fr_error_counts (period, bucket, task_name, queue, category, reason, fingerprint, count) "
    "VALUES (:period, :bucket, :task_name, :queue, :category, :reason, :fingerprint, :count) "
    "ON CONFLICT (period, bucket, task_name, queue, category, reason, fingerprint) "
    "DO UPDATE SET count = fr_error_counts.count + excluded.count"
).bindparams(sa.bindparam("bucket", type_=UTCDateTime()))

_COUNTS: sa.Table = ErrorCount.__table__  # type: ignore[assignment]


def count_errors(session: Session, attempts: Sequence[dict[str, Any]]) -> None:
    """Add the attempts (rows of ``fr_failed_attempts``) to their hours' and days' roll-up rows.

    Every transaction locks these rows in the same order (all its hour rows, then all its day rows,
    each in key order), so writers of overlapping rows wait for one another instead of deadlocking; the
    rows stay locked only until the commit."""
    if not attempts:
        return
    counts: dict[tuple[Period, dt.datetime, str, str, str, str, str], int] = {}
    for attempt in attempts:
        kind = (
            attempt["task_name"],
            attempt["queue"] or "",
            attempt["category"],
            attempt["reason"],
            attempt["fingerprint"],
        )
        for period in (Period.HOUR, Period.DAY):
            key = (period, period.start_of(attempt["failed_at"]), *kind)
            counts[key] = counts.get(key, 0) + 1
    ordered = sorted(counts.items(), key=lambda item: (item[0][0] is not Period.HOUR, item[0][1:]))
    session.execute(_COUNT_ERRORS, [_count_row(key, count) for key, count in ordered])


def _count_row(key: tuple[Period, dt.datetime, str, str, str, str, str], count: int) -> dict[str, Any]:
    period, bucket, task_name, queue, category, reason, fingerprint = key
    return sanitise.row(
        _COUNTS,
        {
            "period": period.value,
            "bucket": bucket,
            "task_name": task_name,
            "queue": queue,
            "category": category,
            "reason": reason,
            "fingerprint": fingerprint,
            "count": count,
        },
    )
