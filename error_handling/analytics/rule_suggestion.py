"""A ready-to-paste classification :class:`~error_handling.classification.Rule` for an unclassified group,
built from its exception type and (redacted) sample message.

The rule matches by type alone when the type is an app's or a library's (a dotted name: it says what
went wrong); by type and message when it is a built-in one (``RuntimeError``, ``Exception``: raised for
many different errors). The message becomes a regular expression anchored at its start: its first line,
at most :data:`MAX_PATTERN_CHARS` characters, regex metacharacters escaped, every run of digits
generalised to ``\\d+`` and every ``[REDACTED]`` (what redaction hid) to ``.+?``. The category is a guess
from the words of the type and message (the operator checks it); the reason is the type's name in
snake case (or the message's first words for a built-in type).
"""

from __future__ import annotations

import json
import re

from error_handling.categories import Category
from error_handling.redaction.markers import REDACTED

#: The longest message prefix a suggested pattern keeps (``re.search`` needs no more to match).
MAX_PATTERN_CHARS = 100
#: Built-in types that say little: a rule on them also matches by message.
GENERIC_TYPES = frozenset({"Exception", "BaseException", "RuntimeError", "OSError", "IOError", "EnvironmentError"})

_METACHARACTERS = re.compile(r"([.^$*+?{}\[\]\\|()])")
_DIGITS = re.compile(r"\d+")
_TRANSIENT_WORDS = re.compile(
    r"time[ d]?out|timed out|temporar|unavailable|try again|connection|throttl|overload|busy", re.I
)
_VALIDATION_WORDS = re.compile(r"invalid|must be|required|malformed|missing|not allowed|schema|unexpected value", re.I)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z]+")


def message_pattern(message: str) -> str:
    """The regular expression a suggested rule searches the message with (see the module's docstring)."""
    line = message.splitlines()[0] if message else ""
    pieces = line[:MAX_PATTERN_CHARS].split(REDACTED)
    escaped = [_DIGITS.sub(r"\\d+", _METACHARACTERS.sub(r"\\\1", piece)) for piece in pieces]
    return "^" + ".+?".join(escaped)


def guessed_category(exc_type: str | None, message: str) -> Category:
    """The category a suggested rule proposes: transient or validation when the words say so, else
    permanent (the safe choice: dead-lettered, replayable)."""
    text = f"{exc_type or ''} {message}"
    if _TRANSIENT_WORDS.search(text):
        return Category.TRANSIENT
    if _VALIDATION_WORDS.search(text):
        return Category.VALIDATION
    return Category.PERMANENT


def guessed_reason(exc_type: str | None, message: str) -> str:
    """The reason code a suggested rule proposes (see the module's docstring)."""
    name = (exc_type or "").rsplit(".", 1)[-1]
    if name and name not in GENERIC_TYPES:
        words = _CAMEL.sub("_", name).lower().split("_")
        while len(words) > 1 and words[-1] in {"error", "exception"}:
            words.pop()
        return "_".join(word for word in words if word) or "custom"
    return "_".join(_WORD.findall(message.lower())[:3]) or "custom"


def suggested_rule(exc_type: str | None, message: str) -> str:
    """Python source that constructs the rule (one line, ``Rule`` and ``Category`` imported from
    ``error_handling``)."""
    arguments = []
    if exc_type:
        arguments.append(f"exception={_string(exc_type)}")
    if not exc_type or exc_type in GENERIC_TYPES:
        arguments.append(f"message={_pattern_literal(message_pattern(message))}")
    category = guessed_category(exc_type, message)
    arguments.append(f"category=Category.{category.name}")
    arguments.append(f"reason={_string(guessed_reason(exc_type, message))}")
    return f"Rule({', '.join(arguments)})"


def _string(text: str) -> str:
    """A double-quoted Python literal of ``text``."""
    return json.dumps(text, ensure_ascii=False)


def _pattern_literal(pattern: str) -> str:
    """A raw string literal of ``pattern`` when one can hold it (printable, no double quote, no odd
    backslash at its end), else an ordinary literal (``repr`` escapes what is not printable)."""
    trailing = len(pattern) - len(pattern.rstrip("\\"))
    if '"' in pattern or not pattern.isprintable() or trailing % 2:
        return repr(pattern)
    return f'r"{pattern}"'
