"""Values the database would refuse, made storable at the write boundary: pure functions, no I/O.

Postgres refuses, and a failure report must never be refused (invariant 1):

- a NUL character (``\\x00``) in ``text`` and ``varchar`` values and in ``jsonb`` strings and keys
  (``\\u0000 cannot be converted to text``): each becomes the four characters ``\\x00``
  (:data:`NUL_TEXT`), readable and unambiguous in a message or a traceback;
- a lone surrogate (``"\\ud800"``: not UTF-8, refused by the driver and by the JSON parser): each
  becomes U+FFFD (:data:`REPLACEMENT`);
- a string longer than its ``varchar(n)`` column (an application's ``reason`` or ``resource``, a
  worker name): cut to the column's length, read from the models, with ``…`` as its last character;
- a task id longer than its column (a client's ``apply_async(task_id=...)``): it is the task's key,
  so it is not cut but replaced by :func:`task_key`, the same for the same id (a redelivery finds its
  record), distinct for distinct ids;
- in ``jsonb``: ``NaN`` and infinities (not JSON), integers too long for Python's JSON encoder
  (:data:`MAX_INT_BITS`): replaced by strings; any other object by its type's name;
- in ``integer`` and ``float`` columns: a number out of range, or not finite: ``NULL`` where the
  column allows it.

Messages and tracebacks are cut to :data:`MESSAGE_LIMIT` and :data:`TRACEBACK_LIMIT` characters. This
module runs where rows are written, after the wrapper redacted them: a secret is redacted whole before
anything is cut, so no part of one survives a cut. Args, kwargs and headers that hold NUL or lone
surrogates are sealed whole by the wrapper first (see ``RecoverableTask._payload``), so a replay
publishes the original values; what reaches this module still unstorable is cleaned here, lossily.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from typing import Any, Final

import sqlalchemy as sa

from error_handling.persistence.models import TaskRecord

__all__ = [
    "MAX_INTEGER",
    "MAX_INT_BITS",
    "MESSAGE_LIMIT",
    "NUL_TEXT",
    "REPLACEMENT",
    "TASK_ID_LENGTH",
    "TRACEBACK_LIMIT",
    "clamp",
    "clean_text",
    "cut",
    "json_value",
    "needs_cleaning",
    "row",
    "task_key",
    "unstorable",
]

#: What a NUL character becomes.
NUL_TEXT: Final = "\\x00"
#: What a lone surrogate becomes (U+FFFD REPLACEMENT CHARACTER).
REPLACEMENT: Final = "\ufffd"
#: The most characters of a message (technical or for the user) or a lost delivery's detail stored.
MESSAGE_LIMIT: Final = 16_384
#: The most characters of a traceback stored.
TRACEBACK_LIMIT: Final = 65_536
#: Integers wider than this (in bits, about 3,900 decimal digits) are stored as a string: Python's JSON
#: encoder refuses more than 4,300 digits.
MAX_INT_BITS: Final = 13_000
#: The longest task id stored as it is (the length of ``fr_tasks.task_id``).
TASK_ID_LENGTH: Final[int] = TaskRecord.__table__.c.task_id.type.length  # type: ignore[attr-defined]

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: The largest value of an ``integer`` column (an attempt number, for one).
MAX_INTEGER: Final = 2**31 - 1
_INT32 = (-(2**31), MAX_INTEGER)
_INT64 = (-(2**63), 2**63 - 1)
#: Columns that hold task ids: replaced by :func:`task_key`, never cut.
_ID_COLUMNS = frozenset({"task_id", "root_id", "parent_id", "replayed_task_id"})
_TRACEBACK_COLUMNS = frozenset({"traceback"})


def needs_cleaning(text: str) -> bool:
    """Whether ``text`` holds a NUL or a lone surrogate."""
    return _UNSTORABLE.search(text) is not None


def clean_text(text: str) -> str:
    """``text`` with each NUL as :data:`NUL_TEXT` and each lone surrogate as :data:`REPLACEMENT`."""
    if _UNSTORABLE.search(text) is None:
        return text
    return _UNSTORABLE.sub(lambda m: NUL_TEXT if m.group() == "\x00" else REPLACEMENT, text)


def cut(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, saying how many were cut."""
    if len(text) <= limit:
        return text
    marker = f"… [{len(text) - limit} more characters cut]"
    keep = max(0, limit - len(marker))
    marker = f"… [{len(text) - keep} more characters cut]"
    return (text[:keep] + marker)[:limit]


def clamp(text: str, length: int) -> str:
    """``text`` cut to a ``varchar(length)`` column: ``…`` as the last character when cut."""
    return text if len(text) <= length else text[: length - 1] + "…"


def task_key(task_id: str) -> str:
    """The key a task id is stored under: the id itself when it fits its column and holds nothing
    the database refuses; else its cleaned start, ``~`` and a digest of the whole id (the same for
    the same id). A key is its own key."""
    if len(task_id) <= TASK_ID_LENGTH and not needs_cleaning(task_id):
        return task_id
    digest = hashlib.blake2b(task_id.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    head = clean_text(task_id)[: TASK_ID_LENGTH - len(digest) - 1]
    if len(head) + len(digest) + 1 > TASK_ID_LENGTH:  # pragma: no cover - NUL_TEXT made it longer
        head = head[: TASK_ID_LENGTH - len(digest) - 1]
    return f"{head}~{digest}"


def unstorable(value: Any) -> bool:
    """Whether a JSON-like value holds a string or a key the database refuses (NUL, lone surrogate)."""
    if isinstance(value, str):
        return needs_cleaning(value)
    if isinstance(value, dict):
        return any((isinstance(k, str) and needs_cleaning(k)) or unstorable(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(unstorable(item) for item in value)
    return False


def json_value(value: Any) -> Any:
    """``value`` as ``jsonb`` takes it (see the module's documentation); the same object when
    nothing in it needed a change."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, int):
        return value if value.bit_length() <= MAX_INT_BITS else f"<integer of {value.bit_length()} bits>"
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        changed = False
        out: dict[str, Any] = {}
        for key, item in value.items():
            new_key = clean_text(key) if isinstance(key, str) else str(key)
            new_item = json_value(item)
            changed = changed or new_key is not key or new_item is not item
            out[new_key] = new_item
        return out if changed else value
    if isinstance(value, list | tuple):
        items = [json_value(item) for item in value]
        if isinstance(value, list) and all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items
    return f"<{type(value).__name__}>"


#: How a column is made storable: its kind and, for strings, the most characters it keeps.
_ID, _BOUNDED, _TEXT, _JSON, _FLOAT, _INT32_KIND, _INT64_KIND = range(7)


@functools.cache
def _columns(table: sa.Table) -> dict[str, tuple[int, int, bool]]:
    """How each column of ``table`` is made storable: ``(kind, length or limit, nullable)``."""
    found: dict[str, tuple[int, int, bool]] = {}
    for column in table.columns:
        kind = column.type
        nullable = bool(column.nullable)
        if isinstance(kind, sa.JSON):
            found[column.name] = (_JSON, 0, nullable)
        elif column.name in _ID_COLUMNS:
            found[column.name] = (_ID, TASK_ID_LENGTH, nullable)
        elif isinstance(kind, sa.String) and kind.length:
            found[column.name] = (_BOUNDED, kind.length, nullable)
        elif isinstance(kind, sa.String):  # Text
            limit = TRACEBACK_LIMIT if column.name in _TRACEBACK_COLUMNS else MESSAGE_LIMIT
            found[column.name] = (_TEXT, limit, nullable)
        elif isinstance(kind, sa.Float):
            found[column.name] = (_FLOAT, 0, nullable)
        elif isinstance(kind, sa.BigInteger):
            found[column.name] = (_INT64_KIND, 0, nullable)
        elif isinstance(kind, sa.Integer):
            found[column.name] = (_INT32_KIND, 0, nullable)
    return found


def _storable_json(value: Any) -> Any:
    """:func:`json_value`, after a check in C that finds nothing to change in most values."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):  # NaN, infinities, integers too long, objects: walk it
        return json_value(value)
    if "\\u0000" in text or _UNSTORABLE.search(text) is not None:
        return json_value(value)
    return value


def _fixed(kind: int, limit: int, value: Any) -> Any:
    """The storable form of ``value`` for a column of ``kind`` (the same object when it is)."""
    if kind == _JSON:
        return _storable_json(value)
    if kind <= _TEXT:
        if not isinstance(value, str) or (len(value) <= limit and _UNSTORABLE.search(value) is None):
            return value
        if kind == _ID:
            return task_key(value)
        return clamp(clean_text(value), limit) if kind == _BOUNDED else cut(clean_text(value), limit)
    if kind == _FLOAT:
        return value if not isinstance(value, float) or math.isfinite(value) else None
    if isinstance(value, bool) or not isinstance(value, int):
        return value
    low, high = _INT32 if kind == _INT32_KIND else _INT64
    return value if low <= value <= high else None


def row(table: sa.Table, values: dict[str, Any]) -> dict[str, Any]:
    """A row for ``table`` with every value made storable (see the module's documentation); the
    same dict when nothing needed a change. A nullable column's number out of range becomes None; a
    non-nullable one is kept (the database refuses it, and the wrapper dead-letters the task)."""
    columns = _columns(table)
    out: dict[str, Any] | None = None
    for name, value in values.items():
        spec = columns.get(name)
        if spec is None or value is None:
            continue
        kind, limit, nullable = spec
        fixed = _fixed(kind, limit, value)
        if fixed is value or (fixed is None and not nullable):
            continue
        if out is None:
            out = dict(values)
        out[name] = fixed
    return values if out is None else out
