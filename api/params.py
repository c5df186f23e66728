"""Types of request parameters and bodies shared by the routers and schemas, the statistics window,
and the copy of a stored record's fields into its public schema."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Final, TypeVar

from fastapi import Query
from pydantic import AwareDatetime as _PydanticAwareDatetime
from pydantic import BaseModel, BeforeValidator

__all__ = [
    "DEFAULT_WINDOW_MINUTES",
    "MAX_WINDOW_MINUTES",
    "AwareDatetime",
    "WindowMinutes",
    "copy_fields",
    "window",
]

M = TypeVar("M", bound=BaseModel)

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


#: The default and largest statistics window, in minutes (an hour; a week).
DEFAULT_WINDOW_MINUTES: Final = 60
MAX_WINDOW_MINUTES: Final = 10_080

#: How far back a statistics endpoint counts (``?window_minutes=``).
WindowMinutes = Annotated[int, Query(ge=1, le=MAX_WINDOW_MINUTES, description="How far back to count, in minutes.")]


def window(window_minutes: int) -> tuple[dt.datetime, dt.datetime]:
    """The ``(since, until)`` of the last ``window_minutes``, ending now."""
    until = dt.datetime.now(dt.UTC)
    return until - dt.timedelta(minutes=window_minutes), until


def copy_fields(model: type[M], source: object, **overrides: Any) -> M:
    """``model`` built from the same-named attributes of ``source``, but for ``overrides``."""
    values = {name: getattr(source, name) for name in model.model_fields if name not in overrides}
    return model(**values, **overrides)
