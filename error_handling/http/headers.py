"""Retry hints in response headers: which headers carry one (:data:`RETRY_HINT_HEADERS`, a table:
a new rate-limit header is a new row), how each writes its value, and :func:`parse_retry_after`,
which returns the largest hint in seconds."""

from __future__ import annotations

import datetime as dt
import email.utils
import enum
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

#: A reset value above this is a Unix timestamp in seconds, not a delay (1e9 s is about 31 years).
EPOCH_SECONDS_THRESHOLD = 1e9
#: A reset value above this is a Unix timestamp in milliseconds.
EPOCH_MILLISECONDS_THRESHOLD = 1e12


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
#: Bounded repetitions only (a duration has at most 12 parts of at most 20 digits): linear by construction.
_DURATION_PART = re.compile(rf"(\d{{1,20}}(?:\.\d{{0,20}})?|\.\d{{1,20}})({_UNIT_ALTERNATION})")
_DURATION = re.compile(rf"(?:(?:\d{{1,20}}(?:\.\d{{0,20}})?|\.\d{{1,20}})(?:{_UNIT_ALTERNATION})){{1,12}}")
_NUMBER = re.compile(r"\+?(?:\d+(?:\.\d*)?|\.\d+)")


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
    except Exception:  # noqa: BLE001 - a foreign container may raise anything while iterated: no hints from it
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
