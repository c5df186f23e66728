"""HTTP hints: the status, headers and body an error carries, and the server's retry hint.

Nothing here imports an HTTP library; errors are read by duck typing, and a foreign attribute that
raises reads as absent, so looking for hints never raises::

    details.py   http_details(exc): status, headers, body of the response behind an error
    headers.py   parse_retry_after(headers): the largest hint of RETRY_HINT_HEADERS, in seconds
    bodies.py    provider error bodies: error codes, message, Google's retry delay and quotas
    prose.py     waits stated in words ("try again in 20s") or in a body field (``estimated_time``)
    hints.py     stated_retry_hint: the one hint of headers, body and message, headers first
"""

from __future__ import annotations

from error_handling.http.bodies import (
    MAX_BODY_CHARS,
    body_error_codes,
    body_message,
    body_retry_delay,
    decode_body,
    google_quota_ids,
)
from error_handling.http.details import HttpDetails, http_details, is_http_status, safe_attr
from error_handling.http.headers import (
    EPOCH_MILLISECONDS_THRESHOLD,
    EPOCH_SECONDS_THRESHOLD,
    RETRY_HINT_HEADERS,
    HintForm,
    iter_headers,
    parse_duration,
    parse_retry_after,
)
from error_handling.http.hints import stated_retry_hint
from error_handling.http.prose import MAX_PROSE_CHARS, body_field_hint, prose_retry_hint

__all__ = [
    "EPOCH_MILLISECONDS_THRESHOLD",
    "EPOCH_SECONDS_THRESHOLD",
    "MAX_BODY_CHARS",
    "MAX_PROSE_CHARS",
    "RETRY_HINT_HEADERS",
    "HintForm",
    "HttpDetails",
    "body_error_codes",
    "body_field_hint",
    "body_message",
    "body_retry_delay",
    "decode_body",
    "google_quota_ids",
    "http_details",
    "is_http_status",
    "iter_headers",
    "parse_duration",
    "parse_retry_after",
    "prose_retry_hint",
    "safe_attr",
    "stated_retry_hint",
]
