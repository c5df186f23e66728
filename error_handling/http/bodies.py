"""Provider error bodies: decoded once, then read for the error codes, the message and Google's
``details`` (retry delay, exceeded quotas). The shapes of OpenAI, Anthropic, AWS and Google bodies are
the field tables below."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any

from error_handling.http.headers import parse_duration

#: At most this many characters of a body are decoded and parsed.
MAX_BODY_CHARS = 65536

#: Keys under which a body nests its error object (OpenAI/Anthropic ``error``, AWS ``Error``).
_ERROR_OBJECT_KEYS: tuple[str, ...] = ("error", "Error")
#: Fields of an error object that hold a provider's error code, most specific first.
_ERROR_CODE_FIELDS: tuple[str, ...] = ("code", "Code", "type", "Type")
#: Fields of an error object that hold its message (``description``: Telegram's Bot API).
_ERROR_MESSAGE_FIELDS: tuple[str, ...] = ("message", "Message", "description")


def decode_body(body: object) -> Any:
    """Return ``body`` decoded: ``bytes`` to text, JSON text to its value; anything else unchanged.

    At most :data:`MAX_BODY_CHARS` characters are decoded; text that is not valid JSON stays text.
    """
    if isinstance(body, bytes | bytearray):
        body = bytes(body[: MAX_BODY_CHARS * 4]).decode("utf-8", "replace")
    if isinstance(body, str):
        text = body[:MAX_BODY_CHARS]
        if text.lstrip().startswith(("{", "[")):
            try:
                return json.loads(text)
            except (ValueError, RecursionError):
                return text
        return text
    return body


def _error_object(body: object) -> Mapping[Any, Any] | None:
    if not isinstance(body, Mapping):
        return None
    for key in _ERROR_OBJECT_KEYS:
        inner = body.get(key)
        if isinstance(inner, Mapping):
            return inner
    return body


def body_error_codes(body: object) -> tuple[str, ...]:
    """Return the provider error codes a (decoded) body states, most specific first.

    The error object is ``body["error"]`` (OpenAI, Anthropic), ``body["Error"]`` (AWS) or the body
    itself (the openai SDK's ``exc.body`` is already the inner object); its ``code`` then ``type``
    fields are read. ``{"error": "some_code"}`` gives ``some_code``.
    """
    codes: list[str] = []
    if isinstance(body, Mapping):
        for key in _ERROR_OBJECT_KEYS:
            if isinstance(body.get(key), str):
                codes.append(body[key])
    error = _error_object(body)
    if error is not None:
        codes.extend(_google_details(error, "ErrorInfo", "reason"))  # e.g. API_KEY_INVALID: the most specific
        codes.extend(error[f] for f in _ERROR_CODE_FIELDS if isinstance(error.get(f), str))
        if isinstance(error.get("status"), str):  # Google: RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ...
            codes.append(error["status"])
    return tuple(code for code in codes if code)


def _google_entries(error: Mapping[Any, Any], kind: str) -> Iterator[Mapping[Any, Any]]:
    """The ``google.rpc.<kind>`` entries of a Google error's ``details``."""
    details = error.get("details")
    if not isinstance(details, list):
        return
    for item in details:
        if isinstance(item, Mapping) and str(item.get("@type", "")).endswith(f"google.rpc.{kind}"):
            yield item


def _google_details(error: Mapping[Any, Any], kind: str, field: str) -> list[str]:
    """The ``field`` of each ``google.rpc.<kind>`` entry of a Google error's ``details``."""
    return [value for item in _google_entries(error, kind) if isinstance(value := item.get(field), str) and value]


def body_retry_delay(body: object) -> float | None:
    """The retry hint a Google error states in its body (``google.rpc.RetryInfo`` ``retryDelay``, e.g.
    ``"31s"``), in seconds; None when there is none."""
    error = _error_object(body)
    if error is None:
        return None
    for delay in _google_details(error, "RetryInfo", "retryDelay"):
        seconds = parse_duration(delay)
        if seconds is not None and math.isfinite(seconds) and seconds >= 0:
            return seconds
    return None


def google_quota_ids(body: object) -> tuple[str, ...]:
    """The quotas a Google ``RESOURCE_EXHAUSTED`` error says were exceeded (``google.rpc.QuotaFailure``
    violations: their ``quotaId``, else ``quotaMetric``)."""
    error = _error_object(body)
    if error is None:
        return ()
    ids: list[str] = []
    for item in _google_entries(error, "QuotaFailure"):
        for violation in item.get("violations") or []:
            if isinstance(violation, Mapping):
                value = violation.get("quotaId") or violation.get("quotaMetric")
                if isinstance(value, str):
                    ids.append(value)
    return tuple(ids)


def body_message(body: object) -> str | None:
    """Return the message a (decoded) body states: its error object's ``message``, or the text itself."""
    error = _error_object(body)
    if error is not None:
        for field in _ERROR_MESSAGE_FIELDS:
            value = error.get(field)
            if isinstance(value, str) and value.strip():
                return value.strip()
        for key in _ERROR_OBJECT_KEYS:
            value = error.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
        return None
    if isinstance(body, str) and body.strip():
        return body.strip()
    return None
