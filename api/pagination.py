"""Keyset (cursor) pagination, newest first, stable while new rows arrive.

A cursor is an opaque token that encodes the ``(time, id)`` of the last row of a page; the next page
holds the rows strictly older than it (ties broken by id). Rows added after the walk started are newer
than every cursor, so a walk returns each row that existed when it started exactly once.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from typing import Any

from api.errors import ApiError

#: Default and maximum page sizes.
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
#: The largest row id a cursor may carry (ids are signed 64-bit integers).
MAX_ROW_ID = 2**63 - 1
#: The longest cursor accepted (one this API issues is under 100 characters).
MAX_CURSOR_LENGTH = 200


def encode_cursor(moment: dt.datetime, row_id: int) -> str:
    """The cursor that continues after the row ``(moment, row_id)``."""
    raw = json.dumps([moment.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """Decode a cursor.

    Raises:
        ApiError: 400 when the cursor was not produced by this API.
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
        raise ApiError(
            400, "cursor is invalid: pass the next_cursor of a previous page", code="invalid_cursor", param="cursor"
        ) from None
    return moment, row_id


def keyset_after(time_column: Any, id_column: Any, cursor: str | None) -> Any:
    """The SQL condition selecting rows after ``cursor`` in (time desc, id desc) order, or None."""
    if cursor is None:
        return None
    import sqlalchemy as sa

    moment, row_id = decode_cursor(cursor)
    return sa.or_(time_column < moment, sa.and_(time_column == moment, id_column < row_id))
