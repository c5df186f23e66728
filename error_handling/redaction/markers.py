"""The placeholders redaction leaves in place of what it hides or cuts, and the guarded descent
into nested containers that puts :data:`CIRCULAR` and :data:`TRUNCATED` in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, TypeVar

T = TypeVar("T")

#: What a secret is replaced with.
REDACTED: Final = "[REDACTED]"
#: What a container that contains itself is replaced with, where it recurs.
CIRCULAR: Final = "[CIRCULAR]"
#: What a container nested deeper than ``max_depth`` is replaced with.
TRUNCATED: Final = "[TRUNCATED]"
#: The start of the marker that ends a text cut at ``max_scanned_chars``.
UNSCANNED: Final = "[UNSCANNED:"


def unscanned_marker(dropped: int) -> str:
    """What replaces the ``dropped`` characters of a text past ``max_scanned_chars``."""
    return f"{UNSCANNED} {dropped} more characters dropped]"


def descend(value: object, depth: int, path: set[int], *, max_depth: int, inside: Callable[[], T]) -> T | str:
    """Walk into the container ``value`` with ``inside()``, guarded: :data:`CIRCULAR` where it is met
    again inside itself (it is on ``path``), :data:`TRUNCATED` at ``max_depth``."""
    if id(value) in path:
        return CIRCULAR
    if depth >= max_depth:
        return TRUNCATED
    path.add(id(value))
    try:
        return inside()
    finally:
        path.discard(id(value))
