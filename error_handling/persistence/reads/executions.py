"""Successful executions over a window, per task and queue (``fr_task_counts``).

An error rate is failures over executions; executions are these successes plus the failed attempts
(exact, from the error roll-up and the attempts). Successes are counted per minute by the worker
processes and written every ``success_flush_interval`` seconds, so the last interval of a window may
not be counted yet, and a worker killed loses what it had not written (at most one interval).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import TaskCount, aware_utc
from error_handling.persistence.reads.window import plan_window, signed_spans
from error_handling.persistence.rollup import Period, hour_of, minute_of

__all__ = ["hourly_successes", "success_counts", "widened_to_minutes"]


def widened_to_minutes(since: dt.datetime, until: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """``[since, until)`` widened to whole UTC minutes: a partial minute at either end counts whole."""
    start, end = minute_of(since), minute_of(until)
    return start, end if end == until else end + dt.timedelta(minutes=1)


def success_counts(session: Session, *, since: dt.datetime, until: dt.datetime) -> dict[tuple[str, str], int]:
    """How many executions succeeded in ``[since, until)``, by ``(task_name, queue)`` (queue ``''`` when
    unknown); pairs with none are left out, and an empty window (``since >= until``) has none.

    The window is read in whole minutes (a partial minute at either end counts whole:
    :func:`widened_to_minutes`), split as the error statistics split theirs
    (:func:`~error_handling.persistence.reads.window.plan_window`): whole days from day rows, the other
    whole hours from hour rows, the partial hours at the two ends from minute rows. Minute rows are kept
    ``retention_success_minutes_days`` (8 days): past that age the partial hours at the ends of a window
    are no longer counted; whole hours and days always are.
    """
    if since >= until:
        return {}
    start, end = widened_to_minutes(since, until)
    parts = signed_spans(plan_window(start, end), partial=Period.MINUTE)
    if not parts:
        return {}

    def rows_of(sign: int) -> sa.ColumnElement[bool]:
        return sa.or_(
            sa.false(),
            *(
                sa.and_(TaskCount.period == period.value, TaskCount.bucket >= a, TaskCount.bucket < b)
                for s, period, (a, b) in parts
                if s == sign
            ),
        )

    added, subtracted = rows_of(1), rows_of(-1)
    signed = sa.case((subtracted, -TaskCount.successes), else_=TaskCount.successes)
    query = (
        sa.select(TaskCount.task_name, TaskCount.queue, sa.func.sum(signed))
        .where(sa.or_(added, subtracted))
        .group_by(TaskCount.task_name, TaskCount.queue)
    )
    return {(str(task), str(queue)): int(n) for task, queue, n in session.execute(query) if n}


def hourly_successes(
    session: Session, *, task_names: Sequence[str], spans: Sequence[tuple[dt.datetime, dt.datetime]]
) -> dict[str, dict[dt.datetime, int]]:
    """The successes of each of ``task_names`` per UTC hour (all queues), in the hours ``spans`` touch: an
    hourly history for a baseline (one query on the hour rows)."""
    found: dict[str, dict[dt.datetime, int]] = defaultdict(dict)
    if not task_names or not spans:
        return found
    query = (
        sa.select(TaskCount.task_name, TaskCount.bucket, sa.func.sum(TaskCount.successes))
        .where(
            TaskCount.period == Period.HOUR.value,
            TaskCount.task_name.in_(list(task_names)),
            sa.or_(*(sa.and_(TaskCount.bucket >= hour_of(a), TaskCount.bucket < b) for a, b in spans)),
        )
        .group_by(TaskCount.task_name, TaskCount.bucket)
    )
    for task_name, bucket, n in session.execute(query):
        found[str(task_name)][aware_utc(bucket)] = int(n)
    return found
