"""The :class:`Redactor`: hides secrets by key name (:mod:`.keys`) and by pattern (:mod:`.patterns`,
run by :mod:`.scanner`) in text and in any structure, without changing its input; and the module
functions that use the built-in rules (:data:`DEFAULT_REDACTOR`)."""

from __future__ import annotations

import datetime
import enum
import fractions
import re
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final

from error_handling.exceptions import ConfigurationError
from error_handling.redaction.keys import KEY_STEMS, builtin_secret, key_words, strip_neutral
from error_handling.redaction.markers import REDACTED, descend, unscanned_marker
from error_handling.redaction.patterns import LEADING_RULES, PEM_TELLS, SHAPE_RULES
from error_handling.redaction.scanner import apply_rules, redact_elements, redact_pairs, redact_pem, replace_match

#: How deep :meth:`Redactor.redact` descends into nested containers by default.
DEFAULT_MAX_DEPTH: Final = 20
#: How many characters of one text :meth:`Redactor.redact_text` scans by default. A longer text is
#: cut back to the end of the last whole line within them, and the rest is replaced by
#: :func:`unscanned_marker`: text that was not scanned is never returned, so it cannot leak a secret.
#: (A failure message, a formatted traceback or a log line is rarely longer.)
MAX_SCANNED_CHARS: Final = 65_536
#: How many key names a redactor remembers the verdict for.
_KEY_CACHE_SIZE: Final = 4096

#: Values :meth:`Redactor.redact` keeps as they are: numbers, times, UUIDs and enum members hold no secret.
_SAFE_SCALARS: Final = (
    int, float, complex, Decimal, fractions.Fraction, datetime.date, datetime.time, datetime.timedelta,
    uuid.UUID, enum.Enum,
)  # fmt: skip


def safe_repr(value: object) -> str:
    """``repr(value)``, or a placeholder naming its type when ``repr`` itself fails."""
    try:
        return repr(value)
    except (TypeError, ValueError, AttributeError, LookupError, RuntimeError, NotImplementedError):
        return f"<{type(value).__qualname__} object (repr failed)>"


def _is_blank(value: object) -> bool:
    if value is None or isinstance(value, bool):
        return True
    if isinstance(value, str | bytes | bytearray | Mapping | list | tuple | set | frozenset):
        return len(value) == 0
    return False


class Redactor:
    """Redacts secrets by key name and by pattern; see :mod:`error_handling.redaction` for the rules.

    Args:
        extra_keys: more key names whose values are secret (matched like the built-in ones).
        extra_patterns: more regular expressions to redact inside strings; the match is replaced,
            or only its group named ``secret`` when the pattern has one.
        max_depth: how deep :meth:`redact` descends into nested containers; deeper ones become
            :data:`TRUNCATED`.
        max_scanned_chars: how many characters of one text :meth:`redact_text` scans; the rest is
            dropped (see :data:`MAX_SCANNED_CHARS`).

    Raises:
        ConfigurationError: a pattern does not compile, or ``max_depth`` or ``max_scanned_chars`` is
            below 1.
    """

    def __init__(
        self,
        *,
        extra_keys: Iterable[str] = (),
        extra_patterns: Iterable[str | re.Pattern[str]] = (),
        max_depth: int = DEFAULT_MAX_DEPTH,
        max_scanned_chars: int = MAX_SCANNED_CHARS,
    ) -> None:
        if max_depth < 1:
            raise ConfigurationError(f"max_depth must be at least 1, not {max_depth}")
        if max_scanned_chars < 1:
            raise ConfigurationError(f"max_scanned_chars must be at least 1, not {max_scanned_chars}")
        self.max_depth = max_depth
        self.max_scanned_chars = max_scanned_chars
        self._extra_keys = tuple({key_words(key) for key in extra_keys} - {()})
        extra_stems = {words[-1] for words in self._extra_keys}
        patterns: list[re.Pattern[str]] = []
        for pattern in extra_patterns:
            try:
                patterns.append(re.compile(pattern) if isinstance(pattern, str) else pattern)
            except re.error as exc:
                raise ConfigurationError(f"invalid redaction pattern {pattern!r}: {exc}") from exc
        self._extra_patterns = tuple(patterns)
        stems = tuple(sorted({*KEY_STEMS, *extra_stems}))
        self._stems = frozenset(stems)
        self._tells = tuple(
            {*stems, *PEM_TELLS, *(tell for rule in (*LEADING_RULES, *SHAPE_RULES) for tell in rule.tells)}
        )
        self._key_cache: dict[str, bool] = {}

    def __repr__(self) -> str:
        return f"Redactor(extra_keys={len(self._extra_keys)}, extra_patterns={len(self._extra_patterns)})"

    # --- keys ---

    def is_secret_key(self, key: str) -> bool:
        """Whether values under ``key`` are secret (case and separators do not matter)."""
        verdict = self._key_cache.get(key)
        if verdict is None:
            verdict = self._judge_key(key)
            if len(self._key_cache) >= _KEY_CACHE_SIZE:
                self._key_cache.clear()
            self._key_cache[key] = verdict
        return verdict

    def _judge_key(self, key: str) -> bool:
        words = key_words(key)
        stripped = strip_neutral(words)
        if builtin_secret(stripped):
            return True
        return any(form[-len(extra) :] == extra for extra in self._extra_keys for form in (words, stripped) if form)

    def hides(self, key: object, value: object) -> bool:
        """Whether ``value``, found under ``key`` in a mapping, is a secret to hide.

        True when the key is secret (:meth:`is_secret_key`; non-string keys never are, bytes are
        decoded) and the value carries something: not ``None``, a boolean, or empty.
        """
        if isinstance(key, bytes | bytearray):
            key = bytes(key).decode("utf-8", "replace")
        return isinstance(key, str) and self.is_secret_key(key) and not _is_blank(value)

    # --- text ---

    def redact_text(self, text: str) -> str:
        """Return ``text`` with every secret pattern replaced by :data:`REDACTED`.

        Each pattern runs only on text that holds one of its telltale substrings, so text with
        nothing to redact costs one lowercase copy and a few substring tests. The work is linear in
        the length of ``text`` and bounded: only the first ``max_scanned_chars`` characters are
        scanned, cut back to the end of their last whole line, and everything after is dropped for a
        marker (:func:`unscanned_marker`), so no character that was not scanned is ever returned.
        """
        if len(text) > self.max_scanned_chars:
            kept = text[: text.rfind("\n", 0, self.max_scanned_chars) + 1]
            return self._redact_scanned(kept, cut=True) + unscanned_marker(len(text) - len(kept))
        return self._redact_scanned(text, cut=False)

    def _redact_scanned(self, text: str, *, cut: bool) -> str:
        lower = text.lower()  # replacing spans with "[REDACTED]" creates no telltale: look once
        present = {tell for tell in self._tells if tell in lower}
        result = text
        if present:
            if not present.isdisjoint(PEM_TELLS):
                result = redact_pem(result)
            result = apply_rules(result, LEADING_RULES, present)
            if not present.isdisjoint(self._stems):
                if "=" in text or ":" in text:
                    result = redact_pairs(result, self.is_secret_key)
                if "<" in text:
                    result = redact_elements(result, self.is_secret_key, cut=cut)
            result = apply_rules(result, SHAPE_RULES, present)
        for pattern in self._extra_patterns:
            result = pattern.sub(replace_match, result)
        return result

    def contains_secret(self, text: str) -> bool:
        """Whether :meth:`redact_text` would change ``text``."""
        return self.redact_text(text) != text

    # --- structures ---

    def redact(self, value: Any) -> Any:
        """Return a redacted copy of ``value``; the input is never changed.

        Mappings become dicts (a value under a secret key becomes :data:`REDACTED`, see
        :meth:`hides`; string keys holding a secret pattern are redacted too); lists, tuples, sets
        and frozensets keep their type (named tuples become plain tuples); strings are
        pattern-redacted; bytes are redacted as UTF-8 (Latin-1 if not UTF-8) and stay bytes; ``None``,
        booleans, numbers (``Decimal`` and ``Fraction`` too), dates, times, timedeltas, UUIDs and enum
        members are kept; any other object becomes its ``repr``, redacted. A container
        met again inside itself becomes :data:`CIRCULAR`, one nested deeper than ``max_depth``
        :data:`TRUNCATED`. Unchanged strings and bytes are returned as they are.
        """
        return self._redact(value, 0, set())

    def _redact(self, value: Any, depth: int, path: set[int]) -> Any:
        if value is None or isinstance(value, _SAFE_SCALARS):
            return value
        if isinstance(value, str):
            return self.redact_text(value)
        if isinstance(value, bytes | bytearray):
            return self._redact_bytes(value)
        if not isinstance(value, Mapping | list | tuple | set | frozenset):
            return self.redact_text(safe_repr(value))
        return descend(
            value, depth, path, max_depth=self.max_depth, inside=lambda: self._redact_inside(value, depth, path)
        )

    def _redact_inside(self, value: Any, depth: int, path: set[int]) -> Any:
        if isinstance(value, Mapping):
            return {
                self._redact_key(key): REDACTED if self.hides(key, item) else self._redact(item, depth + 1, path)
                for key, item in value.items()
            }
        items = [self._redact(item, depth + 1, path) for item in value]
        if isinstance(value, list):
            return items
        if isinstance(value, tuple):
            return tuple(items)
        return frozenset(items) if isinstance(value, frozenset) else set(items)

    def _redact_key(self, key: Any) -> Any:
        return self.redact_text(key) if isinstance(key, str) else key

    def _redact_bytes(self, value: bytes | bytearray) -> bytes | bytearray:
        try:
            text, encoding = bytes(value).decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = bytes(value).decode("latin-1"), "latin-1"
        redacted = self.redact_text(text)
        if redacted == text:
            return value
        return type(value)(redacted.encode(encoding, "replace"))


#: The redactor with the built-in rules only.
DEFAULT_REDACTOR: Final = Redactor()


def redact(value: Any) -> Any:
    """:meth:`Redactor.redact` with the built-in rules."""
    return DEFAULT_REDACTOR.redact(value)


def redact_text(text: str) -> str:
    """:meth:`Redactor.redact_text` with the built-in rules."""
    return DEFAULT_REDACTOR.redact_text(text)


def is_secret_key(key: str) -> bool:
    """:meth:`Redactor.is_secret_key` with the built-in rules."""
    return DEFAULT_REDACTOR.is_secret_key(key)


def contains_secret(text: str) -> bool:
    """:meth:`Redactor.contains_secret` with the built-in rules."""
    return DEFAULT_REDACTOR.contains_secret(text)
