"""Failed attempts: one page at a time, newest first, and one by id.

Failed attempts are listed newest first in ``(failed_at desc, id desc)`` order with keyset pagination:
a page is continued from a :data:`Keyset`, the ``(failed_at, id)`` of its last row, so a walk returns
each row that existed when it started exactly once, however many rows arrive meanwhile. Every filter
is an equality on a column that leads one of ``fr_failed_attempts``' ``(column, failed_at)`` indexes
(or the ``failed_at`` index itself), so Postgres reads a page by walking one index backwards and stops
after ``limit + 1`` rows. The text search (a case-insensitive substring of the message) is a filter on
those rows, not an index lookup: it is as fast as the other filters let it be."""

from __future__ import annotations

import dataclasses
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.cursor import Keyset, Listing, Page, TimeRange
from error_handling.persistence.models import FailedAttempt, TaskRecord

#: The columns of a failed attempt in a list: all of them but the traceback.
SUMMARY_COLUMNS: Final = tuple(c for c in FailedAttempt.__table__.c if c.name != "traceback")

#: Failed attempts, newest first by the time they failed.
ATTEMPTS: Final = Listing(FailedAttempt, FailedAttempt.failed_at, FailedAttempt.message)


@dataclasses.dataclass(frozen=True)
class FailureFilter(TimeRange):
    """Which failures a listing takes (``None`` matches anything): failed attempts (:func:`list_attempts`,
    ``since`` and ``until`` bounding the time of the failure), and dead letters, whose
    :class:`~error_handling.persistence.reads.dlq.DeadLetterFilter` adds what a bulk replay needs."""

    task_name: str | None = None
    category: str | None = None
    reason: str | None = None
    fingerprint: str | None = None
    queue: str | None = None
    #: Case-insensitive text in the (redacted) error message; ``%`` and ``_`` are literal.
    search: str | None = None


#: One page of failed attempts: rows with every column of ``fr_failed_attempts`` but the traceback
#: (:data:`SUMMARY_COLUMNS`), read by attribute like the model.
AttemptPage = Page[sa.Row[Any]]


def list_attempts(session: Session, flt: FailureFilter, *, cursor: Keyset | None = None, limit: int) -> AttemptPage:
    """Return the failed attempts ``flt`` matches, newest first, one page at a time.

    The rows are plain column tuples without the traceback (cheaper than models by half for a page of
    500); :func:`get_attempt` has the whole attempt.

    Args:
        flt: which attempts (every field given must match).
        cursor: continue after this row (the ``next_cursor`` of the previous page).
        limit: the page size, at least 1.

    Raises:
        ValueError: if ``limit`` is less than 1.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    query = sa.select(*SUMMARY_COLUMNS).where(*ATTEMPTS.where(flt))
    return ATTEMPTS.page(session, query, cursor=cursor, limit=limit, models=False)


def get_attempt(session: Session, *, attempt_id: int) -> FailedAttempt | None:
    """Return one failed attempt by id, or None."""
    return session.get(FailedAttempt, attempt_id)


def get_task(session: Session, *, task_id: str) -> TaskRecord | None:
    """Return the record of a task that failed at least once, or None."""
    return session.get(TaskRecord, task_id)
