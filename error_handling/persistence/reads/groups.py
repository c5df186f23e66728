"""Error groups listed: a filter, a sort and keyset pages (one row of ``fr_error_groups`` per fingerprint).

A group's counts in a window come from the roll-up through
:func:`~error_handling.persistence.reads.window_counts.count_window` (exact: the partial hours at the two
ends from the attempts), its state through :func:`~error_handling.persistence.groups.effective_state`
(the changes time alone makes applied). Sorting by a stored column (last seen, first seen, times seen)
walks the groups' own order in SQL; sorting by a count in the window (count, growth) counts every
matching group in one statement, sorts in memory and pages that order (bounded by the number of groups,
not of attempts). A page's groups are read in one statement and counted in two, whatever its size.

A cursor is opaque: ``(sort, value, fingerprint)`` of the page's last group, base64 of JSON; the next
page holds the groups strictly after it in ``(value desc, fingerprint desc)`` order::

    ("last_seen", "2026-11-20T10:00:00+00:00", "3f2a...") ──encode──► "WyJsYXN0X3NlZW4iLC..." ──decode──► the same
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Collection, Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.exceptions import InvalidCursor
from error_handling.persistence.groups import GROUPS, effective_state
from error_handling.persistence.models import ErrorCount, GroupState, aware_utc
from error_handling.persistence.reads.window_counts import WindowQuery, count_window

__all__ = [
    "DEFAULT_WINDOW",
    "GroupFilter",
    "GroupPage",
    "GroupSort",
    "GroupSummary",
    "decode_group_cursor",
    "encode_group_cursor",
    "list_groups",
    "summaries",
]

#: The window counted when none is given: the last 24 hours.
DEFAULT_WINDOW: Final = dt.timedelta(hours=24)


class GroupSort(enum.StrEnum):
    """The order of a list of groups, largest first."""

    #: The latest attempt's time (the default).
    LAST_SEEN = "last_seen"
    #: The first attempt's time.
    FIRST_SEEN = "first_seen"
    #: Attempts in the window.
    COUNT = "count"
    #: Attempts in the window minus those of the window of the same length before it.
    GROWTH = "growth"
    #: Every attempt ever recorded in the group.
    TIMES_SEEN = "times_seen"


#: The sorts by a column of the group's row, and that column.
_COLUMN_SORTS: Final = {
    GroupSort.LAST_SEEN: GROUPS.c.last_seen,
    GroupSort.FIRST_SEEN: GROUPS.c.first_seen,
    GroupSort.TIMES_SEEN: GROUPS.c.times_seen,
}


@dataclasses.dataclass(frozen=True)
class GroupFilter:
    """Which groups a list takes (None: anything) and the window ``[since, until)`` their counts cover.

    ``state`` is the effective state; ``category`` and ``reason`` are those of the group's latest attempt;
    ``task_name`` and ``queue`` take the groups that ever failed in that task or queue; ``search`` is a
    case-insensitive substring of the title (``%`` and ``_`` match themselves). The window defaults to
    the :data:`DEFAULT_WINDOW` before ``until``, which defaults to now.
    """

    state: GroupState | None = None
    category: str | None = None
    reason: str | None = None
    task_name: str | None = None
    queue: str | None = None
    search: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def window(self, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
        """The window the counts cover, as of ``now``."""
        until = self.until or now
        return self.since or _earlier(until, DEFAULT_WINDOW), until


@dataclasses.dataclass(frozen=True)
class GroupSummary:
    """A group as a list shows it: its row with the effective state, and its counts in the window.

    Attributes:
        count: attempts in the window.
        previous_count: attempts in the window of the same length just before it.
    """

    fingerprint: str
    title: str
    exc_type: str | None
    category: str
    reason: str
    task_name: str
    state: GroupState
    state_changed_at: dt.datetime
    first_seen: dt.datetime
    last_seen: dt.datetime
    times_seen: int
    recovered: int
    failed_fast: int
    dead_lettered: int
    regressions: int
    resolved_at: dt.datetime | None
    ignore_until: dt.datetime | None
    ignore_until_escalating: bool
    count: int
    previous_count: int

    @property
    def growth(self) -> int:
        """Attempts in the window minus those of the window before it."""
        return self.count - self.previous_count


@dataclasses.dataclass(frozen=True)
class GroupPage:
    """One page of groups in the sort's order, and the cursor of the next page (None on the last)."""

    items: list[GroupSummary]
    next_cursor: str | None
    since: dt.datetime
    until: dt.datetime


def encode_group_cursor(sort: GroupSort, value: dt.datetime | int, fingerprint: str) -> str:
    """The cursor that continues after the group ``fingerprint`` whose sort value is ``value``."""
    shown = value.isoformat() if isinstance(value, dt.datetime) else value
    raw = json.dumps([sort.value, shown, fingerprint], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_group_cursor(cursor: str, sort: GroupSort) -> tuple[dt.datetime | int, str]:
    """The ``(value, fingerprint)`` a cursor of a list in ``sort`` order continues after.

    Raises:
        InvalidCursor: the cursor was not produced by :func:`encode_group_cursor` for this sort.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sort_name, value, fingerprint = json.loads(raw)
        if sort_name != sort.value or not isinstance(fingerprint, str):
            raise ValueError("another sort's cursor")
        return _cursor_value(sort, value), fingerprint
    except (ValueError, TypeError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor(
            f"cursor is invalid for sort {sort.value}: pass the next_cursor of a previous page with the same sort"
        ) from None


def _cursor_value(sort: GroupSort, value: Any) -> dt.datetime | int:
    if sort in (GroupSort.LAST_SEEN, GroupSort.FIRST_SEEN):
        moment = dt.datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("a cursor's time has a timezone")
        return moment.astimezone(dt.UTC)
    if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 2**63:
        raise ValueError("a cursor's count is an integer")
    return value


def list_groups(
    session: Session,
    flt: GroupFilter,
    *,
    sort: GroupSort = GroupSort.LAST_SEEN,
    cursor: str | None = None,
    limit: int,
    now: dt.datetime,
    new_period: dt.timedelta,
) -> GroupPage:
    """A page of the groups ``flt`` matches in ``sort`` order, each with its counts in the window.

    Raises:
        InvalidCursor: ``cursor`` is not a cursor of this sort.
        ValueError: ``limit`` is less than 1.
    """
    if limit < 1:
        raise ValueError("limit must be at least 1")
    after = decode_group_cursor(cursor, sort) if cursor is not None else None
    since, until = flt.window(now)
    _no_parallel_workers(session)
    conditions = _conditions(flt, now=now, new_period=new_period)
    if sort in _COLUMN_SORTS:
        ordered = _by_column(session, sort, conditions, after=after, limit=limit)
    else:
        ordered = _by_count(session, sort, conditions, after=after, limit=limit, window=(since, until))
    page = ordered[:limit]
    found = summaries(session, [fp for _, fp in page], now=now, new_period=new_period, window=(since, until))
    items = [found[fp] for _, fp in page if fp in found]
    next_cursor = encode_group_cursor(sort, *page[-1]) if len(ordered) > limit else None
    return GroupPage(items=items, next_cursor=next_cursor, since=since, until=until)


def _no_parallel_workers(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        # The queries read a few thousand rows: starting parallel workers costs more than it saves.
        session.execute(sa.text("SET LOCAL max_parallel_workers_per_gather = 0"))


def _conditions(flt: GroupFilter, *, now: dt.datetime, new_period: dt.timedelta) -> list[Any]:
    found: list[Any] = []
    if flt.state is not None:
        found.append(effective_state(now, new_period) == flt.state.value)
    for name in ("category", "reason"):
        if getattr(flt, name) is not None:
            found.append(GROUPS.c[name] == getattr(flt, name))
    if flt.search:
        found.append(GROUPS.c.title.icontains(flt.search, autoescape=True))
    for name in ("task_name", "queue"):
        value = getattr(flt, name)
        if value is not None:  # groups that ever failed there: the daily roll-up rows say so
            affected = sa.select(ErrorCount.fingerprint).where(
                ErrorCount.period == "day", getattr(ErrorCount, name) == value
            )
            found.append(GROUPS.c.fingerprint.in_(affected))
    return found


def _by_column(
    session: Session, sort: GroupSort, conditions: list[Any], *, after: tuple[Any, str] | None, limit: int
) -> list[tuple[Any, str]]:
    """``(value, fingerprint)`` of the page's groups (and one more) in a column's order."""
    column = _COLUMN_SORTS[sort]
    query = sa.select(column, GROUPS.c.fingerprint).where(*conditions)
    if after is not None:
        value, fingerprint = after
        query = query.where(sa.or_(column < value, sa.and_(column == value, GROUPS.c.fingerprint < fingerprint)))
    rows = session.execute(query.order_by(column.desc(), GROUPS.c.fingerprint.desc()).limit(limit + 1))
    return [(aware_utc(value) if isinstance(value, dt.datetime) else int(value), str(fp)) for value, fp in rows]


def _by_count(
    session: Session,
    sort: GroupSort,
    conditions: list[Any],
    *,
    after: tuple[Any, str] | None,
    limit: int,
    window: tuple[dt.datetime, dt.datetime],
) -> list[tuple[Any, str]]:
    """``(value, fingerprint)`` of the page's groups (and one more) in the order of a count in the window."""
    matching = set(session.execute(sa.select(GROUPS.c.fingerprint).where(*conditions)).scalars())
    counts = _counts(session, matching if conditions else None, window)
    values = {fp: counts.get(fp, 0) for fp in matching}
    if sort is GroupSort.GROWTH:
        previous = _counts(session, matching if conditions else None, _before(window))
        values = {fp: value - previous.get(fp, 0) for fp, value in values.items()}
    ordered = sorted(((value, fp) for fp, value in values.items()), reverse=True)
    if after is not None:
        ordered = [item for item in ordered if item < after]
    return ordered[: limit + 1]


def _before(window: tuple[dt.datetime, dt.datetime]) -> tuple[dt.datetime, dt.datetime]:
    since, until = window
    return _earlier(since, until - since), since


#: The earliest time a window may start (a window that would start before it starts there).
_EARLIEST: Final = dt.datetime.min.replace(tzinfo=dt.UTC)


def _earlier(moment: dt.datetime, span: dt.timedelta) -> dt.datetime:
    """``moment - span``, or :data:`_EARLIEST` when that is before year 1."""
    try:
        return moment - span
    except OverflowError:
        return _EARLIEST


def _counts(
    session: Session, fingerprints: Collection[str] | None, window: tuple[dt.datetime, dt.datetime]
) -> dict[str, int]:
    """Attempts per fingerprint in ``window`` (only these fingerprints; None: all)."""
    since, until = window
    query = WindowQuery(since=since, until=until, keys=("fingerprint",), fingerprints=fingerprints)
    return {key[0]: n for _, key, n in count_window(session, query)}


def summaries(
    session: Session,
    fingerprints: Sequence[str],
    *,
    now: dt.datetime,
    new_period: dt.timedelta,
    window: tuple[dt.datetime, dt.datetime],
) -> dict[str, GroupSummary]:
    """These groups (those that exist), with their effective state and counts in ``window``, by
    fingerprint: one statement for the rows, one count for the window, one for the window before."""
    if not fingerprints:
        return {}
    state = effective_state(now, new_period).label("effective_state")
    rows = session.execute(sa.select(GROUPS, state).where(GROUPS.c.fingerprint.in_(list(fingerprints)))).mappings()
    counts = _counts(session, fingerprints, window)
    previous = _counts(session, fingerprints, _before(window))
    found: dict[str, GroupSummary] = {}
    for row in rows:
        values = {field.name: row[field.name] for field in dataclasses.fields(GroupSummary) if field.name in row}
        values.update(
            {name: aware_utc(value) for name, value in values.items() if isinstance(value, dt.datetime)},
            state=GroupState(row["effective_state"]),
            count=counts.get(row["fingerprint"], 0),
            previous_count=previous.get(row["fingerprint"], 0),
        )
        found[row["fingerprint"]] = GroupSummary(**values)
    return found
