"""Keyset (cursor) pagination, newest first, stable while new rows arrive.

A page ends at a :data:`Keyset`, the ``(time, id)`` of its last row; the next page holds the rows
strictly older (ties broken by id), so a walk returns each row that existed when it started exactly
once. A cursor is that keyset as an opaque URL-safe token::

    (2026-11-20T10:00:00+00:00, 42) ──encode_cursor──► "WyIyMDI2LTEx..." ──decode_cursor──► keyset

A :class:`Listing` is a table listed this way, and how a filter (a frozen :class:`TimeRange` with the
values the rows must match) selects its rows: the failed attempts, the dead letters and the audit events.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import json
from typing import Any, Final, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.exceptions import InvalidCursor

#: The position of a row in newest-first order: its time and its id.
Keyset = tuple[dt.datetime, int]

#: What a page holds: ORM objects or column rows.
RowT = TypeVar("RowT")

#: The largest row id a cursor may carry (ids are signed 64-bit integers).
MAX_ROW_ID: Final = 2**63 - 1


def encode_cursor(moment: dt.datetime, row_id: int) -> str:
    """The cursor that continues after the row ``(moment, row_id)``."""
    raw = json.dumps([moment.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Keyset:
    """Decode a cursor.

    Raises:
        InvalidCursor: when the cursor was not produced by :func:`encode_cursor`.
    """
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment_text, row_id = json.loads(raw)
        moment = dt.datetime.fromisoformat(moment_text)
        if moment.tzinfo is None or not isinstance(row_id, int) or isinstance(row_id, bool):
            raise ValueError("bad cursor")
        if not 0 <= row_id <= MAX_ROW_ID:
            raise ValueError("bad cursor")
        moment = moment.astimezone(dt.UTC)
    except (ValueError, TypeError, OverflowError, binascii.Error, json.JSONDecodeError):
        raise InvalidCursor("cursor is invalid: pass the next_cursor of a previous page") from None
    return moment, row_id


def keyset_after(time_column: Any, id_column: Any, keyset: Keyset) -> Any:
    """The SQL condition selecting the rows after ``keyset`` in ``(time desc, id desc)`` order.

    ``time <= moment`` bounds the range of a ``(…, time)`` index; the OR breaks ties on the same
    instant by id."""
    moment, row_id = keyset
    return sa.and_(time_column <= moment, sa.or_(time_column < moment, id_column < row_id))


@dataclasses.dataclass(frozen=True)
class Page(Generic[RowT]):
    """One page of a :class:`Listing`, newest first, and where the next page starts (None on the last)."""

    items: list[RowT]
    next_cursor: Keyset | None


@dataclasses.dataclass(frozen=True)
class TimeRange:
    """A filter of a :class:`Listing`: the rows of ``since <= time < until`` (a bound of None: open;
    timezone-aware). Each filter adds its fields (None: anything)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclasses.dataclass(frozen=True)
class Listing:
    """A table listed newest first, in ``(time desc, id desc)`` order, and how a filter selects its rows.

    A filter is a :class:`TimeRange` whose other fields say what the rows must match (a field of None:
    anything): ``search`` is a case-insensitive substring of the ``text_column`` (``%`` and ``_`` match
    themselves; an empty one: anything), and every other field is an equality on the model's column of
    the same name.
    """

    #: The mapped class listed; its ``id`` breaks ties between rows of the same time.
    model: Any
    time_column: Any
    #: The column ``search`` looks in (None: the filters of this listing have no ``search``).
    text_column: Any = None

    def where(self, flt: TimeRange) -> list[Any]:
        """The SQL conditions selecting the rows that ``flt`` matches."""
        bounds = {"since", "until"}
        values = {field.name: getattr(flt, field.name) for field in dataclasses.fields(flt) if field.name not in bounds}
        search = values.pop("search", None)
        found = [getattr(self.model, name) == value for name, value in values.items() if value is not None]
        if search:
            found.append(self.text_column.icontains(search, autoescape=True))
        if flt.since is not None:
            found.append(self.time_column >= flt.since)
        if flt.until is not None:
            found.append(self.time_column < flt.until)
        return found

    def page(
        self, session: Session, query: Any, *, cursor: Keyset | None, limit: int, models: bool = True
    ) -> Page[Any]:
        """One page of ``query``'s rows of this table (see :func:`newest_first`)."""
        items, next_cursor = newest_first(
            session,
            query,
            time_column=self.time_column,
            id_column=self.model.id,
            cursor=cursor,
            limit=limit,
            models=models,
        )
        return Page(items, next_cursor)


def newest_first(
    session: Session,
    query: Any,
    *,
    time_column: Any,
    id_column: Any,
    cursor: Keyset | None,
    limit: int,
    models: bool = True,
) -> tuple[list[Any], Keyset | None]:
    """One page of ``query``'s rows in ``(time desc, id desc)`` order after ``cursor``: at most ``limit``
    rows (ORM objects, or column rows when ``models`` is False), and the keyset the next page starts
    after (None on the last page). One row more than the page is read to know whether one follows."""
    if cursor is not None:
        query = query.where(keyset_after(time_column, id_column, cursor))
    result = session.execute(query.order_by(time_column.desc(), id_column.desc()).limit(limit + 1))
    rows = list(result.scalars().all() if models else result.all())
    if len(rows) <= limit:
        return rows, None
    items = rows[:limit]
    return items, (getattr(items[-1], time_column.key), getattr(items[-1], id_column.key))
