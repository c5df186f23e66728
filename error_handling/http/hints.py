"""The one retry hint a response or an error states, wherever it states it.

Headers win (they are what the server computed for this very request), then the body's structured
fields (Google's ``RetryInfo``, Hugging Face's ``estimated_time``), then a wait written in the body's
message, then one written in the error's own message (:mod:`error_handling.http.prose`)."""

from __future__ import annotations

from error_handling.http.bodies import body_message, body_retry_delay
from error_handling.http.headers import parse_retry_after
from error_handling.http.prose import body_field_hint, prose_retry_hint


def stated_retry_hint(
    *, headers: object = None, body: object = None, message: str | None = None, now: float | None = None
) -> float | None:
    """The retry hint in seconds stated by ``headers``, else the (decoded) ``body``, else ``message``;
    None when none states one.

    Args:
        headers: the response headers (anything :func:`~error_handling.http.iter_headers` reads).
        body: the decoded body (see :func:`~error_handling.http.decode_body`).
        message: the error's own message.
        now: the current time as a Unix timestamp, for hints given as dates.
    """
    hint = parse_retry_after(headers, now=now) if headers else None
    if hint is None and body is not None:
        hint = body_retry_delay(body)
        if hint is None:
            hint = body_field_hint(body)
        if hint is None:
            hint = prose_retry_hint(body_message(body))
    if hint is None and message:
        hint = prose_retry_hint(message)
    return hint
