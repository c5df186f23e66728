"""Retry hints written in prose: the wait a provider states only in its message or body.

Providers often say how long to wait in words rather than in a header: OpenAI and Groq "Please try
again in 20s" / "in 7.66s" / "in 6m0s", Azure OpenAI "Please retry after 21 seconds", Gemini "Please
retry in 37.5s", Telegram "retry after 5". A body may state it as a field instead: Hugging Face's
``estimated_time`` (seconds a model needs to load), Discord's and Telegram's ``retry_after``.

Only a wait that is *stated* is read: a number counts when it follows a phrase that announces a wait
(:data:`WAIT_PHRASES`) and is a duration (a number with a unit, or a Go-style duration). Every pattern
is a literal phrase followed by bounded repetitions, and at most :data:`MAX_PROSE_CHARS` characters
are scanned, so reading a hint is linear in the text and bounded.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from error_handling.http.headers import parse_duration

#: At most this many characters of a message are scanned for a stated wait.
MAX_PROSE_CHARS: Final = 4096

#: Phrases that announce a wait, before ``in``/``after``/``for`` and the duration.
WAIT_PHRASES: tuple[str, ...] = (
    "try again",
    "trying again",
    "retry",
    "retrying",
    "wait",
    "waiting",
    "resets",
    "reset",
    "available again",
)

#: Seconds per unit word of a duration written in words ("20 seconds", "250 ms", "2 hours").
UNIT_WORDS: Mapping[str, float] = MappingProxyType(
    {
        "ms": 1e-3,
        "msec": 1e-3,
        "msecs": 1e-3,
        "millisecond": 1e-3,
        "milliseconds": 1e-3,
        "s": 1.0,
        "sec": 1.0,
        "secs": 1.0,
        "second": 1.0,
        "seconds": 1.0,
        "min": 60.0,
        "mins": 60.0,
        "minute": 60.0,
        "minutes": 60.0,
        "h": 3600.0,
        "hr": 3600.0,
        "hrs": 3600.0,
        "hour": 3600.0,
        "hours": 3600.0,
        "day": 86400.0,
        "days": 86400.0,
    }
)

#: Phrases whose number needs no unit: Telegram's "retry after 5" means seconds.
_UNITLESS_SECONDS: tuple[str, ...] = ("retry after",)

_NUMBER = r"\d{1,9}(?:\.\d{1,9})?"
_GO_DURATION = rf"(?:{_NUMBER}(?:ms|us|µs|ns|h|m|s)){{1,6}}"
_WORDS = "|".join(sorted(map(re.escape, UNIT_WORDS), key=len, reverse=True))
_PHRASES = "|".join(sorted(map(re.escape, WAIT_PHRASES), key=len, reverse=True))
#: A wait phrase, an optional preposition and qualifier, then a duration: Go style, or number + unit.
_STATED_WAIT = re.compile(
    rf"\b(?P<phrase>{_PHRASES})[ \t]{{1,3}}(?:(?P<prep>in|after|for)[ \t]{{1,3}})?"
    rf"(?:about[ \t]{{1,3}}|approximately[ \t]{{1,3}}|roughly[ \t]{{1,3}}|~)?"
    rf"(?:(?P<go>{_GO_DURATION})|(?P<number>{_NUMBER})(?:[ \t]?(?P<unit>{_WORDS}))?)(?!\w)(?!\.\d)",
    re.IGNORECASE,
)

#: Body fields that state a wait, and seconds per unit of their value.
BODY_HINT_FIELDS: Mapping[str, float] = MappingProxyType(
    {
        "estimated_time": 1.0,  # Hugging Face Inference API / TGI: a model is loading
        "retry_after": 1.0,  # Discord, Telegram (under "parameters")
        "retry_after_ms": 1e-3,
    }
)
#: Where in a body such a field is looked for: the body itself, then these nested objects.
_BODY_HINT_CONTAINERS: tuple[str, ...] = ("error", "parameters")


def _finite(seconds: float | None) -> float | None:
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


#: What may not follow a number without a unit for it to be a wait ("retry after 3 times" is none).
_WORD_AFTER = re.compile(r"[ \t]{0,3}[^\W\d_]")


def _seconds(match: re.Match[str], text: str) -> float | None:
    go = match.group("go")
    if go is not None:
        return parse_duration(go)
    number, unit = match.group("number"), match.group("unit")
    if unit is not None:
        return float(number) * UNIT_WORDS[unit.lower()]
    phrase = f"{match.group('phrase')} {match.group('prep') or ''}".strip().lower()
    if phrase not in _UNITLESS_SECONDS or _WORD_AFTER.match(text, match.end()):
        return None
    return float(number)


def prose_retry_hint(text: object) -> float | None:
    """The first wait ``text`` states in words ("try again in 20s", "retry after 21 seconds"), in
    seconds; None when it states none. Only the first :data:`MAX_PROSE_CHARS` characters are read."""
    if not isinstance(text, str) or not text:
        return None
    scanned = text[:MAX_PROSE_CHARS]
    for match in _STATED_WAIT.finditer(scanned):
        seconds = _finite(_seconds(match, scanned))
        if seconds is not None:
            return seconds
    return None


def _field_hint(container: Mapping[Any, Any]) -> float | None:
    for field, unit in BODY_HINT_FIELDS.items():
        value = container.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = _finite(float(value) * unit)
            if seconds is not None:
                return seconds
    return None


def body_field_hint(body: object) -> float | None:
    """The wait a (decoded) body states in a field (:data:`BODY_HINT_FIELDS`): Hugging Face's
    ``{"error": "Model ... is currently loading", "estimated_time": 20.0}``; None when none."""
    if not isinstance(body, Mapping):
        return None
    hint = _field_hint(body)
    for key in _BODY_HINT_CONTAINERS:
        if hint is not None:
            break
        inner = body.get(key)
        hint = _field_hint(inner) if isinstance(inner, Mapping) else None
    return hint
