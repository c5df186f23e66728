"""The placeholders redaction leaves in place of what it hides or cuts."""

from __future__ import annotations

from typing import Final

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
