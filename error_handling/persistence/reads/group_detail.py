"""One error group in detail: its counts in a window (trend buckets, tasks, queues), its latest
attempts, its dead letters and how its tasks ended.

The trend is read hour by hour for a window up to :data:`HOURLY_UP_TO` long, day by day beyond (UTC
buckets; those at the two ends cover only the part inside the window), from the roll-up; every count is
exact (:mod:`~error_handling.persistence.reads.window_counts`). The samples are found by the
``(fingerprint, failed_at)`` index of the attempts, the dead letters by their ``fingerprint`` index.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import DeadLetterRecord, DeadLetterStatus, FailedAttempt
from error_handling.persistence.reads.attempts import SUMMARY_COLUMNS
from error_handling.persistence.reads.groups import GroupFilter, GroupSummary, summaries
from error_handling.persistence.reads.window_counts import Resolution, WindowQuery, count_window
from error_handling.persistence.rollup import day_of, hour_of

__all__ = ["HOURLY_UP_TO", "MAX_WINDOW", "GroupDetail", "OutcomeShares", "get_group"]

#: The longest window whose trend is read hour by hour (longer: day by day).
HOURLY_UP_TO: Final = dt.timedelta(days=3)
#: The longest window a group's detail reads (its trend then holds at most 367 daily buckets).
MAX_WINDOW: Final = dt.timedelta(days=366)
#: How many of the latest attempts and dead letters a group's detail shows.
DEFAULT_SAMPLES: Final = 5


@dataclasses.dataclass(frozen=True)
class OutcomeShares:
    """How the group's attempts ended, each a share of ``times_seen`` (0 when it has none)."""

    recovered: float
    failed_fast: float
    dead_lettered: float


@dataclasses.dataclass(frozen=True)
class GroupDetail:
    """A group and what was recorded about it.

    Attributes:
        resolution: the trend's buckets (``hour`` or ``day``).
        trend: ``(bucket start, attempts)`` for every bucket the window touches, oldest first.
        tasks, queues: attempts in the window per task and per queue (``''``: unknown), largest first.
        samples: its latest attempts, newest first, without tracebacks (rows of the summary columns).
        latest: the newest attempt, with its redacted traceback (None when retention removed them all).
        pending_dead_letters: its dead letters waiting for an operator.
        dead_letters: its newest dead letters, in any state.
    """

    group: GroupSummary
    since: dt.datetime
    until: dt.datetime
    resolution: Resolution
    trend: list[tuple[dt.datetime, int]]
    tasks: dict[str, int]
    queues: dict[str, int]
    samples: list[sa.Row[Any]]
    latest: FailedAttempt | None
    pending_dead_letters: int
    dead_letters: list[DeadLetterRecord]
    shares: OutcomeShares


def get_group(
    session: Session,
    *,
    fingerprint: str,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    now: dt.datetime,
    new_period: dt.timedelta,
    samples: int = DEFAULT_SAMPLES,
) -> GroupDetail | None:
    """The group of ``fingerprint`` with its counts in ``[since, until)`` (default: the day before
    ``until``, which defaults to ``now``), or None when no such group exists.

    Raises:
        ValueError: the window is longer than :data:`MAX_WINDOW`.
    """
    window = GroupFilter(since=since, until=until).window(now)
    if window[1] - window[0] > MAX_WINDOW:
        raise ValueError(f"a group's window may be {MAX_WINDOW.days} days long at most")
    group = summaries(session, [fingerprint], now=now, new_period=new_period, window=window).get(fingerprint)
    if group is None:
        return None
    resolution = Resolution.HOUR if window[1] - window[0] <= HOURLY_UP_TO else Resolution.DAY
    tasks, queues = _affected(session, fingerprint, window)
    recent = _samples(session, fingerprint, samples)
    pending = sa.select(sa.func.count()).where(
        DeadLetterRecord.fingerprint == fingerprint, DeadLetterRecord.status == DeadLetterStatus.PENDING
    )
    letters = sa.select(DeadLetterRecord).where(DeadLetterRecord.fingerprint == fingerprint)
    return GroupDetail(
        group=group,
        since=window[0],
        until=window[1],
        resolution=resolution,
        trend=_trend(session, fingerprint, window, resolution),
        tasks=tasks,
        queues=queues,
        samples=recent,
        latest=session.get(FailedAttempt, recent[0].id) if recent else None,
        pending_dead_letters=int(session.execute(pending).scalar_one()),
        dead_letters=list(
            session.execute(
                letters.order_by(DeadLetterRecord.created_at.desc(), DeadLetterRecord.id.desc()).limit(samples)
            )
            .scalars()
            .all()
        ),
        shares=_shares(group),
    )


def _trend(
    session: Session, fingerprint: str, window: tuple[dt.datetime, dt.datetime], resolution: Resolution
) -> list[tuple[dt.datetime, int]]:
    since, until = window
    query = WindowQuery(since=since, until=until, fingerprints=[fingerprint], resolution=resolution)
    counted = {bucket: n for bucket, _, n in count_window(session, query) if bucket is not None}
    step = dt.timedelta(hours=1) if resolution is Resolution.HOUR else dt.timedelta(days=1)
    bucket = hour_of(since) if resolution is Resolution.HOUR else day_of(since)
    trend = []
    while bucket < until:
        trend.append((bucket, counted.get(bucket, 0)))
        bucket += step
    return trend


def _affected(
    session: Session, fingerprint: str, window: tuple[dt.datetime, dt.datetime]
) -> tuple[dict[str, int], dict[str, int]]:
    since, until = window
    query = WindowQuery(since=since, until=until, keys=("task_name", "queue"), fingerprints=[fingerprint])
    tasks: Counter[str] = Counter()
    queues: Counter[str] = Counter()
    for _, (task_name, queue), n in count_window(session, query):
        tasks[task_name] += n
        queues[queue] += n
    return dict(tasks.most_common()), dict(queues.most_common())


def _samples(session: Session, fingerprint: str, limit: int) -> list[sa.Row[Any]]:
    query = (
        sa.select(*SUMMARY_COLUMNS)
        .where(FailedAttempt.fingerprint == fingerprint)
        .order_by(FailedAttempt.failed_at.desc(), FailedAttempt.id.desc())
        .limit(max(1, limit))
    )
    return list(session.execute(query).all())


def _shares(group: GroupSummary) -> OutcomeShares:
    seen = group.times_seen
    return OutcomeShares(
        recovered=group.recovered / seen if seen else 0.0,
        failed_fast=group.failed_fast / seen if seen else 0.0,
        dead_lettered=group.dead_lettered / seen if seen else 0.0,
    )
