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
import datetime as dt
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.cursor import Keyset, narrowed, newest_first
from error_handling.persistence.models import (
    FailedAttempt,
    TaskRecord,
)

#: The columns of a failed attempt in a list: all of them but the traceback.
SUMMARY_COLUMNS: Final = tuple(c for c in FailedAttempt.__table__.c if c.name != "traceback")

#: The escape character of :func:`escape_like` patterns.
LIKE_ESCAPE: Final = "\\"


@dataclasses.dataclass(frozen=True)
class AttemptPage:
    """One page of failed attempts, newest first.

    Attributes:
        items: at most ``limit`` attempts: rows with every column of ``fr_failed_attempts`` but the
            traceback (:data:`SUMMARY_COLUMNS`), read by attribute like the model.
        next_keyset: where the next page starts, or None when this page is the last.
    """

    items: list[sa.Row[Any]]
    next_keyset: Keyset | None


def escape_like(text: str) -> str:
    """Escape ``text`` for a LIKE pattern (with :data:`LIKE_ESCAPE`), so ``%`` and ``_`` match themselves."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def list_attempts(
    session: Session,
    *,
    task_name: str | None = None,
    category: str | None = None,
    reason: str | None = None,
    fingerprint: str | None = None,
    queue: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    search: str | None = None,
    cursor: Keyset | None = None,
    limit: int,
) -> AttemptPage:
    """Return failed attempts matching every given filter, newest first, one page at a time.

    The rows are plain column tuples without the traceback (cheaper than models by half for a page of
    500); :func:`get_attempt` has the whole attempt.

    Args:
        since: only attempts that failed at or after this time (timezone-aware).
        until: only attempts that failed before this time (timezone-aware).
        search: a case-insensitive substring of the (redacted) message; ``%`` and ``_`` are literal.
        cursor: continue after this row (the ``next_keyset`` of the previous page).
        limit: the page size, at least 1.

    Raises:
        ValueError: if ``limit`` is less than 1.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    equal = (
        (FailedAttempt.task_name, task_name),
        (FailedAttempt.category, category),
        (FailedAttempt.reason, reason),
        (FailedAttempt.fingerprint, fingerprint),
        (FailedAttempt.queue, queue),
    )
    query = narrowed(
        sa.select(*SUMMARY_COLUMNS), equal=equal, time_column=FailedAttempt.failed_at, since=since, until=until
    )
    if search:
        query = query.where(FailedAttempt.message.ilike(f"%{escape_like(search)}%", escape=LIKE_ESCAPE))
    items, next_keyset = newest_first(
        session,
        query,
        time_column=FailedAttempt.failed_at,
        id_column=FailedAttempt.id,
        cursor=cursor,
        limit=limit,
        models=False,
    )
    return AttemptPage(items=items, next_keyset=next_keyset)


def get_attempt(session: Session, *, attempt_id: int) -> FailedAttempt | None:
    """Return one failed attempt by id, or None."""
    return session.get(FailedAttempt, attempt_id)


def get_task(session: Session, *, task_id: str) -> TaskRecord | None:
    """Return the record of a task that failed at least once, or None."""
    return session.get(TaskRecord, task_id)
