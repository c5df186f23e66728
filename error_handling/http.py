"""HTTP hints: the status, headers and body an error carries, and the server's retry hint.

Nothing here imports an HTTP library. Errors are read by duck typing, through attributes only:

- the **status** is the first ``int`` in 100..599 found at ``exc.status_code``, ``exc.status``,
  ``exc.response.status_code``, ``exc.response.status`` or, for botocore's ``ClientError`` whose
  ``response`` is a dict, ``exc.response["ResponseMetadata"]["HTTPStatusCode"]``;
- the **headers** are ``exc.headers``, else ``exc.response.headers`` (else botocore's
  ``ResponseMetadata.HTTPHeaders``), in any container :func:`iter_headers` understands;
- the **body** is ``exc.body`` (openai, anthropic), else the text the response has *already read*:
  a ``text`` attribute that is a plain ``str``, or the ``_content`` bytes httpx and requests keep
  once a body was read. A ``text`` *property* is never called (on a streamed ``requests`` response
  it would read from the network), and neither is ``json()``. A botocore response dict is itself
  the body (its ``Error.Code`` is the provider's error code).

Any attribute access on a foreign object may run foreign code (a property) and raise anything; such a
failure reads as "absent" (:func:`safe_attr`), so looking for hints never raises.

:func:`parse_retry_after` turns the hint headers into seconds to wait; see :data:`RETRY_HINT_HEADERS`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import enum
import inspect
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

__all__ = [
    "EPOCH_MILLISECONDS_THRESHOLD",
    "EPOCH_SECONDS_THRESHOLD",
    "MAX_BODY_CHARS",
    "RETRY_HINT_HEADERS",
    "HintForm",
    "HttpDetails",
    "body_error_codes",
    "body_message",
    "body_retry_delay",
    "decode_body",
    "google_quota_ids",
    "http_details",
    "is_http_status",
    "iter_headers",
    "parse_duration",
    "parse_retry_after",
    "safe_attr",
]

#: A reset value above this is a Unix timestamp in seconds, not a delay (1e9 s is about 31 years).
EPOCH_SECONDS_THRESHOLD = 1e9
#: A reset value above this is a Unix timestamp in milliseconds.
EPOCH_MILLISECONDS_THRESHOLD = 1e12
#: At most this many characters of a body are decoded and parsed.
MAX_BODY_CHARS = 65536


class HintForm(enum.StrEnum):
    """How a retry-hint header writes its value."""

    #: ``Retry-After``: delta-seconds (``"120"``) or an HTTP-date (``"Wed, 21 Oct 2026 07:28:00 GMT"``).
    DELAY_OR_DATE = "delay_or_date"
    #: ``retry-after-ms``: milliseconds (``"1500"``).
    MILLISECONDS = "milliseconds"
    #: Rate-limit reset: a duration (``"6m0s"``, ``"1.5s"``, ``"20ms"``), plain seconds (``"30"``) or,
    #: above :data:`EPOCH_SECONDS_THRESHOLD`, a Unix timestamp (milliseconds above
    #: :data:`EPOCH_MILLISECONDS_THRESHOLD`).
    RESET = "reset"


#: Headers that carry a retry hint (lower-cased names) and the form of their values. When several are
#: present, the largest hint wins: waiting for the latest reset is what makes the next call succeed.
RETRY_HINT_HEADERS: Mapping[str, HintForm] = MappingProxyType(
    {
        "retry-after": HintForm.DELAY_OR_DATE,
        "retry-after-ms": HintForm.MILLISECONDS,
        "x-ratelimit-reset-requests": HintForm.RESET,
        "x-ratelimit-reset-tokens": HintForm.RESET,
        "x-ratelimit-reset": HintForm.RESET,
        "ratelimit-reset": HintForm.RESET,
    }
)

#: Seconds per unit of a Go-style duration (the form OpenAI's ``x-ratelimit-reset-*`` headers use).
_DURATION_UNITS: Mapping[str, float] = MappingProxyType(
    {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ns": 1e-9}
)
_UNIT_ALTERNATION = "|".join(sorted(map(re.escape, _DURATION_UNITS), key=len, reverse=True))
_DURATION_PART = re.compile(rf"(\d+(?:\.\d*)?|\.\d+)({_UNIT_ALTERNATION})")
_DURATION = re.compile(rf"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:{_UNIT_ALTERNATION}))+")
_NUMBER = re.compile(r"\+?(?:\d+(?:\.\d*)?|\.\d+)")

#: Attributes that may hold an HTTP status, in the order they are tried.
_STATUS_ATTRIBUTES: tuple[str, ...] = ("status_code", "status")
#: Keys under which a body nests its error object (OpenAI/Anthropic ``error``, AWS ``Error``).
_ERROR_OBJECT_KEYS: tuple[str, ...] = ("error", "Error")
#: Fields of an error object that hold a provider's error code, most specific first.
_ERROR_CODE_FIELDS: tuple[str, ...] = ("code", "Code", "type", "Type")
#: Fields of an error object that hold its message.
_ERROR_MESSAGE_FIELDS: tuple[str, ...] = ("message", "Message")


def safe_attr(obj: object, name: str) -> Any:
    """Return ``obj.name``, or ``None`` if it is missing or reading it raises.

    Reading an attribute of a foreign object may run a property that raises anything (httpx raises
    ``ResponseNotRead``); a hint that cannot be read is treated as absent.
    """
    try:
        return getattr(obj, name, None)
    except Exception:  # a foreign property may raise anything: the attribute counts as absent
        return None


def is_http_status(value: object) -> bool:
    """Return whether ``value`` is an ``int`` (not a ``bool``) in the HTTP status range 100..599."""
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


def iter_headers(headers: object) -> list[tuple[str, str]]:
    """Return ``(lower-cased name, value)`` pairs from any header container.

    Understands a ``dict`` or other mapping (httpx ``Headers``, requests' ``CaseInsensitiveDict``), any
    object with an ``items()`` method (``email.message.Message``), and an iterable of ``(name, value)``
    pairs (ASGI-style ``bytes`` pairs too). Anything else, or a container that fails while read, gives
    no pairs.
    """
    if headers is None or isinstance(headers, str | bytes):
        return []
    try:
        items_method = getattr(headers, "items", None)
        if callable(items_method):
            raw: Iterable[Any] = items_method()
        elif isinstance(headers, Iterable):
            raw = headers
        else:
            return []
        pairs: list[tuple[str, str]] = []
        for item in raw:
            if not isinstance(item, tuple | list) or len(item) != 2:
                continue
            name, value = _header_text(item[0]), _header_text(item[1])
            if name is not None and value is not None:
                pairs.append((name.strip().lower(), value))
        return pairs
    except Exception:  # a foreign container may raise anything while iterated: no hints from it
        return []


def _header_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def parse_duration(text: str) -> float | None:
    """Parse a duration into seconds: Go style (``"6m0s"``, ``"1.5s"``, ``"20ms"``, ``"1h2m3s"``) or a
    plain number of seconds (``"30"``, ``"0.5"``). Return ``None`` if ``text`` is neither."""
    value = text.strip()
    if _NUMBER.fullmatch(value):
        return float(value)
    if not _DURATION.fullmatch(value):
        return None
    return sum(float(number) * _DURATION_UNITS[unit] for number, unit in _DURATION_PART.findall(value))


def _parse_delay_or_date(value: str, now: float) -> float | None:
    if _NUMBER.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no zone information (RFC 5322)
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp() - now


def _parse_milliseconds(value: str, now: float) -> float | None:
    return float(value) / 1000.0 if _NUMBER.fullmatch(value) else None


def _parse_reset(value: str, now: float) -> float | None:
    seconds = parse_duration(value)
    if seconds is None or not _NUMBER.fullmatch(value):
        return seconds
    if seconds > EPOCH_MILLISECONDS_THRESHOLD:
        return seconds / 1000.0 - now
    if seconds > EPOCH_SECONDS_THRESHOLD:
        return seconds - now
    return seconds


_HINT_PARSERS: Mapping[HintForm, Callable[[str, float], float | None]] = MappingProxyType(
    {
        HintForm.DELAY_OR_DATE: _parse_delay_or_date,
        HintForm.MILLISECONDS: _parse_milliseconds,
        HintForm.RESET: _parse_reset,
    }
)


def parse_retry_after(headers: object, *, now: float | None = None) -> float | None:
    """Return the server's retry hint in seconds, or ``None`` if the headers give none.

    Reads every header named in :data:`RETRY_HINT_HEADERS` (names are case-insensitive; ``headers`` is
    anything :func:`iter_headers` understands) and returns the largest hint. A hint that is negative
    (a date or reset time in the past), not finite or unparsable is ignored.

    Args:
        headers: the response headers.
        now: the current time as a Unix timestamp, for HTTP-dates and epoch resets (default: now).
    """
    current = time.time() if now is None else now
    best: float | None = None
    for name, value in iter_headers(headers):
        form = RETRY_HINT_HEADERS.get(name)
        if form is None:
            continue
        seconds = _HINT_PARSERS[form](value.strip(), current)
        if seconds is None or not math.isfinite(seconds) or seconds < 0:
            continue
        best = seconds if best is None else max(best, seconds)
    return best


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


def _google_details(error: Mapping[Any, Any], kind: str, field: str) -> list[str]:
    """The ``field`` of each ``google.rpc.<kind>`` entry of a Google error's ``details``."""
    found: list[str] = []
    details = error.get("details")
    if not isinstance(details, list):
        return found
    for item in details:
        if isinstance(item, Mapping) and str(item.get("@type", "")).endswith(f"google.rpc.{kind}"):
            value = item.get(field)
            if isinstance(value, str) and value:
                found.append(value)
    return found


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
    if error is None or not isinstance(error.get("details"), list):
        return ()
    ids: list[str] = []
    for item in error["details"]:
        if isinstance(item, Mapping) and str(item.get("@type", "")).endswith("google.rpc.QuotaFailure"):
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


@dataclasses.dataclass(frozen=True, slots=True)
class HttpDetails:
    """What an error says about the HTTP response behind it.

    Attributes:
        status: the HTTP status (100..599), if one was found.
        headers: the response headers as ``(lower-cased name, value)`` pairs.
        body: the decoded body (see :func:`decode_body`), or ``None``.
    """

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None


def _status_of(obj: object) -> int | None:
    for name in _STATUS_ATTRIBUTES:
        value = safe_attr(obj, name)
        if is_http_status(value):
            return int(value)
    return None


def _response_text(response: object) -> str | None:
    """The body a response object has already read, without running any of its code."""
    try:
        text = inspect.getattr_static(response, "text", None)
        if isinstance(text, str):
            return text
        content = inspect.getattr_static(response, "_content", None)
    except Exception:  # getattr_static may still meet a foreign __dict__ or __mro__ that raises
        return None
    if isinstance(content, bytes | bytearray):
        return bytes(content[: MAX_BODY_CHARS * 4]).decode("utf-8", "replace")
    return None


def _metadata(response: Mapping[Any, Any]) -> Mapping[Any, Any]:
    metadata = response.get("ResponseMetadata")
    return metadata if isinstance(metadata, Mapping) else {}


def http_details(exc: BaseException) -> HttpDetails | None:
    """Return the HTTP status, headers and body an exception carries, or ``None`` if it carries none.

    See the module docstring for where each is looked for.
    """
    response = safe_attr(exc, "response")
    status = _status_of(exc)
    headers = safe_attr(exc, "headers")
    body = safe_attr(exc, "body")
    if isinstance(response, Mapping):  # botocore ClientError: a parsed response dict
        metadata = _metadata(response)
        if status is None and is_http_status(metadata.get("HTTPStatusCode")):
            status = int(metadata["HTTPStatusCode"])
        if headers is None:
            headers = metadata.get("HTTPHeaders")
        if body is None:
            body = response
    elif response is not None:
        if status is None:
            status = _status_of(response)
        if headers is None:
            headers = safe_attr(response, "headers")
        if body is None:
            body = _response_text(response)
    pairs = tuple(iter_headers(headers))
    decoded = decode_body(body)
    if status is None and not pairs and decoded is None:
        return None
    return HttpDetails(status=status, headers=pairs, body=decoded)
