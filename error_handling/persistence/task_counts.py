"""Success counts written (``fr_task_counts``): what a worker process counted in memory, added to the
minute, hour and day rows of each task and queue in one upsert.

The read side is :mod:`error_handling.persistence.reads.executions`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence import sanitise
from error_handling.persistence.models import TaskCount, UTCDateTime
from error_handling.persistence.rollup import Period

__all__ = ["SuccessKey", "add_successes"]

#: What a process counts successes by: the start of their UTC minute, the task's name, its queue.
SuccessKey = tuple[dt.datetime, str, str]

#: Adds successes to a row: the same statement on Postgres and SQLite (both have ``ON CONFLICT ... DO
#: UPDATE``), compiled once, run for every row at once.
_ADD_SUCCESSES = sa.text(
    "INSERT INTO fr_task_counts (period, bucket, task_name, queue, successes) "
    "VALUES (:period, :bucket, :task_name, :queue, :successes) "
    "ON CONFLICT (period, bucket, task_name, queue) "
    "DO UPDATE SET successes = fr_task_counts.successes + excluded.successes"
).bindparams(sa.bindparam("bucket", type_=UTCDateTime()))

_TABLE: sa.Table = TaskCount.__table__  # type: ignore[assignment]
_ORDER = {Period.MINUTE: 0, Period.HOUR: 1, Period.DAY: 2}


def add_successes(session: Session, counts: Mapping[SuccessKey, int]) -> int:
    """Add ``counts`` (successes by minute, task and queue) to their minute, hour and day rows, in the
    caller's transaction. Returns how many rows were written.

    Every writer locks the rows in the same order (minute rows, then hour rows, then day rows, each in
    key order), so processes flushing at the same moment wait for one another instead of deadlocking."""
    rows: dict[tuple[Period, dt.datetime, str, str], int] = {}
    for (minute, task_name, queue), successes in counts.items():
        if successes <= 0:
            continue
        for period in Period:
            key = (period, period.start_of(minute), task_name, queue)
            rows[key] = rows.get(key, 0) + successes
    if not rows:
        return 0
    ordered = sorted(rows.items(), key=lambda item: (_ORDER[item[0][0]], item[0][1:]))
    session.execute(_ADD_SUCCESSES, [_row(key, successes) for key, successes in ordered])
    return len(ordered)


def _row(key: tuple[Period, dt.datetime, str, str], successes: int) -> dict[str, Any]:
    period, bucket, task_name, queue = key
    values = {"period": period.value, "bucket": bucket, "task_name": task_name, "queue": queue}
    return sanitise.row(_TABLE, {**values, "successes": successes})
