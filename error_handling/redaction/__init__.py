"""Redaction: keep secrets out of everything function-runner writes or logs (invariant 6).

Two mechanisms, applied together by :class:`Redactor`::

    by key name   keys.py       password=, api_key:, "DBPASSWORD": ... -> the value is hidden
    by pattern    patterns.py   sk-..., Bearer ..., JWTs, user:pw@host, PEM blocks, ...
                  scanner.py    finds each value's end once per text: linear, bounded
    placeholders  markers.py    [REDACTED], [CIRCULAR], [TRUNCATED], [UNSCANNED: ...]
    logging       log_filter.py RedactingFilter for any handler

A text longer than ``max_scanned_chars`` is cut at its last whole line within the limit and the rest
is replaced by a marker: what was not scanned is never returned.
"""

from __future__ import annotations

from error_handling.redaction.log_filter import RedactingFilter
from error_handling.redaction.markers import CIRCULAR, REDACTED, TRUNCATED, UNSCANNED, unscanned_marker
from error_handling.redaction.redactor import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_REDACTOR,
    MAX_SCANNED_CHARS,
    Redactor,
    contains_secret,
    is_secret_key,
    redact,
    redact_text,
    safe_repr,
)

__all__ = [
    "CIRCULAR",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_REDACTOR",
    "MAX_SCANNED_CHARS",
    "REDACTED",
    "TRUNCATED",
    "UNSCANNED",
    "RedactingFilter",
    "Redactor",
    "contains_secret",
    "is_secret_key",
    "redact",
    "redact_text",
    "safe_repr",
    "unscanned_marker",
]
