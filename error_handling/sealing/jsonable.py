"""Values made JSON-friendly, the way the module :mod:`error_handling.sealing` describes: tuples and
sets become lists, dates ISO 8601 strings, bytes text (or base64), other objects their ``repr``."""

from __future__ import annotations

import base64
import datetime
import enum
import fractions
import math
import uuid
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Final

from error_handling.redaction import safe_repr
from error_handling.redaction.markers import descend

#: How deep the stored form goes; deeper containers become :data:`~error_handling.redaction.TRUNCATED`.
MAX_DEPTH: Final = 100
#: What :func:`scalar` returns for an object that has no JSON form of its own.
MISSING: Final[Any] = object()


def scalar(value: Any) -> Any:
    """The JSON form of a non-container, or :data:`MISSING` for objects without one."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, enum.Enum):
        return scalar(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return _as_text(value)


def _as_text(value: Any) -> Any:
    """The JSON form of dates, times, durations, numbers written as text, paths and bytes."""
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal | PurePath | complex | fractions.Fraction):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(data).decode("ascii")
    return MISSING


def json_key(key: Any) -> str:
    """A dict key as a JSON object key."""
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, bytes | bytearray):
        return bytes(key).decode("utf-8", "backslashreplace")
    return str(key)


def is_container(value: Any) -> bool:
    """Whether ``value`` is walked into (a mapping, list, tuple, set or frozenset)."""
    return isinstance(value, Mapping | list | tuple | set | frozenset)


def jsonable(value: Any) -> Any:
    """The JSON-friendly form of ``value``, in full (what a sealed token holds)."""
    return _jsonable(value, 0, set())


def _jsonable(value: Any, depth: int, path: set[int]) -> Any:
    found = scalar(value)
    if found is not MISSING:
        return found
    if not is_container(value):
        return safe_repr(value)  # encrypted: it need not be redacted
    return descend(value, depth, path, max_depth=MAX_DEPTH, inside=lambda: _jsonable_inside(value, depth, path))


def _jsonable_inside(value: Any, depth: int, path: set[int]) -> Any:
    if isinstance(value, Mapping):
        return {json_key(key): _jsonable(item, depth + 1, path) for key, item in value.items()}
    return [_jsonable(item, depth + 1, path) for item in value]
