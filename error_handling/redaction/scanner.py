"""The scanner: finds the end of each secret value once per text, so redaction stays linear.

A search for the next closing bracket, quote or newline is remembered and reused by the searches
after it (:class:`_Scan`), instead of reading the same characters again from every candidate.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from error_handling.redaction.markers import REDACTED
from error_handling.redaction.patterns import (
    BRACKETS,
    KEY_SEP,
    PEM_BEGIN,
    PEM_BODY,
    PEM_END,
    QUOTED_VALUE,
    UNQUOTED_VALUE,
    XML_PAIR,
    XML_PAIR_CUT,
    TextRule,
)


class _Scan:
    """One text being redacted, and what was already searched for in it.

    The pairs of a text are visited left to right. A search for the next closing bracket or newline
    remembers where it started and what it found, and a quoted value that finds no closing quote
    remembers where its line ends, so a later search from further on reuses the answer instead of
    reading the same characters again.
    """

    __slots__ = ("_next", "_open_quote", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._next: dict[str, tuple[int, int]] = {}
        self._open_quote: dict[str, int] = {}

    def next_index(self, char: str, start: int) -> int:
        """Index of the first ``char`` at or after ``start`` (``len(text)`` when there is none)."""
        searched_from, found = self._next.get(char, (len(self.text) + 1, -1))
        if not searched_from <= start <= found:
            found = self.text.find(char, start)
            if found < 0:
                found = len(self.text)
            self._next[char] = (start, found)
        return found

    def quoted_end(self, position: int) -> tuple[int, str | None] | None:
        """End and opening quote of the quoted value at ``position``, if it is closed on its line.

        The value ends at the first closing quote that is not escaped; when there is none on the line,
        at the last one that is (what a backtracking pattern would find). A value whose line holds no
        closing quote at all remembers it: any later value of that line opened by the same quote would
        have closed it, so there is none, and the line is not read again.
        """
        text = self.text
        quote = _opening_quote(text, position)
        if not quote.endswith(("'", '"')) or self._open_quote.get(quote, -1) > position:
            return None
        if match := QUOTED_VALUE.match(text, position):
            return match.end(), quote
        content = text.index(quote, position) + len(quote)
        line_end = self.next_index("\n", position)
        last = text.rfind(quote, content, line_end)
        if last >= 0:
            return last + len(quote), quote
        self._open_quote[quote] = line_end
        return None


def _opening_quote(text: str, position: int) -> str:
    """The quote a value at ``position`` opens with: up to 7 backslashes and a quote, after an
    optional string prefix (``b``, ``r``, ``u``)."""
    head = position + 1 if text[position] in "bBrRuU" else position
    end = head
    while end < len(text) and end - head < 7 and text[end] == "\\":
        end += 1
    return text[head : end + 1]


def _value_end(scan: _Scan, position: int) -> tuple[int, str | None] | None:
    """Where the value starting at ``position`` ends, and its opening quote if it is quoted.

    The same values as the pattern ``quoted | (...) | [...] | {...} | [scheme ]unquoted`` (first that
    matches), read once.
    """
    text = scan.text
    if position >= len(text):
        return None
    first = text[position]
    if first in "\"'\\" or (first in "bBrRuU" and position + 1 < len(text) and text[position + 1] in "\"'\\"):
        quoted = scan.quoted_end(position)
        if quoted is not None:
            return quoted
    closer = BRACKETS.get(first)
    if closer is not None:
        close = scan.next_index(closer, position + 1)
        limit = scan.next_index("\n", position + 1)
        if first == "{":
            limit = min(limit, scan.next_index("{", position + 1))
        if close < limit:
            return close + 1, None
    if match := UNQUOTED_VALUE.match(text, position):
        return match.end(), None
    return None


def redact_pem(text: str) -> str:
    """Replace each PEM private key block (up to its END line, or over its body when it has none)."""
    parts: list[str] = []
    position = 0
    end: re.Match[str] | None = None
    no_end_from = len(text) + 1  # no END starts at or after this index
    for begin in PEM_BEGIN.finditer(text):
        if begin.start() < position:
            continue
        if end is None or end.start() < begin.end():
            end = PEM_END.search(text, begin.end()) if begin.end() < no_end_from else None
            if end is None:
                no_end_from = min(no_end_from, begin.end())
        if end is not None:
            stop = end.end()
        else:
            body = PEM_BODY.match(text, begin.end())
            stop = body.end() if body else begin.end()
        parts += (text[position : begin.start()], REDACTED)
        position = stop
    if not parts:
        return text
    parts.append(text[position:])
    return "".join(parts)


def _redact_group(match: re.Match[str], group: str) -> str:
    """The match with only its ``group`` replaced by :data:`REDACTED`."""
    start, end = match.span(group)
    base = match.start()
    whole = match.group(0)
    return whole[: start - base] + REDACTED + whole[end - base :]


def replace_match(match: re.Match[str]) -> str:
    """What a pattern's match becomes: its group named ``secret`` redacted, else the whole match."""
    if "secret" in match.re.groupindex and match.group("secret") is not None:
        return _redact_group(match, "secret")
    return REDACTED


def apply_rules(text: str, rules: Iterable[TextRule], present: set[str]) -> str:
    """Apply each rule whose telltales are ``present`` in the text."""
    for rule in rules:
        if not present.isdisjoint(rule.tells):
            text = rule.pattern.sub(replace_match, text)
    return text


def redact_pairs(text: str, is_secret_key: Callable[[str], bool]) -> str:
    """Redact the value of each ``key=value``-like pair whose key is secret.

    The key is judged first; after a harmless key (``url=https://h/?token=x``) the search goes on right
    after its separator, inside its value; after a secret key it resumes past the value.
    """
    parts: list[str] = []
    position = 0
    scan = _Scan(text)
    while match := KEY_SEP.search(text, position):
        value_at = match.end()
        found = _value_end(scan, value_at) if is_secret_key(match.group("key")) else None
        if found is None:
            parts.append(text[position:value_at])
            position = value_at
            continue
        end, quote = found
        placeholder = f"{quote}{REDACTED}{quote}" if quote and text.startswith(quote, value_at) else REDACTED
        parts += (text[position:value_at], placeholder)
        position = end
    parts.append(text[position:])
    return "".join(parts)


def redact_elements(text: str, is_secret_key: Callable[[str], bool], *, cut: bool) -> str:
    """Redact the value of each ``<key>value</key>`` whose key is secret; in a text ``cut`` short, an
    element left open at its end is hidden to the end."""

    def replace(match: re.Match[str]) -> str:
        return _redact_group(match, "val") if is_secret_key(match.group("key")) else match.group(0)

    return (XML_PAIR_CUT if cut else XML_PAIR).sub(replace, text)
