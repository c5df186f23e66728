"""Types of request parameters and bodies shared by the routers and schemas."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from pydantic import AwareDatetime as _PydanticAwareDatetime
from pydantic import BeforeValidator

__all__ = ["AwareDatetime"]

#: What an ISO 8601 date-time starts with: a four-digit year and a dash.
_ISO_START = re.compile(r"^\d{4}-")


def _iso_8601_only(value: Any) -> Any:
    """Refuse what is not written as an ISO 8601 date-time.

    Pydantic would read ``until=0.5`` or ``until=1700000000`` (or a JSON number) as a Unix timestamp,
    which the schema (``type: string, format: date-time``) does not allow and a client could not guess.
    """
    if isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_START.match(value):
        raise ValueError("expected an ISO 8601 date-time with a timezone, e.g. 2026-03-01T09:00:00Z")
    return value


#: A date-time with a timezone, written in ISO 8601 (``2026-03-01T09:00:00Z`` or ``...+02:00``).
AwareDatetime = Annotated[_PydanticAwareDatetime, BeforeValidator(_iso_8601_only)]
