"""Redaction: keep secrets out of everything function-runner writes or logs (invariant 6).

Two mechanisms, applied together by :class:`Redactor`:

**By key name** (:meth:`Redactor.is_secret_key`). A key is split into lowercase words at ``-``,
``_``, ``.``, spaces and camelCase boundaries (``stripeSecretKey`` -> ``stripe secret key``,
``X-API-Key`` -> ``x api key``). Trailing numbers are dropped (``x-hub-signature-256``), then trailing
*neutral* words (``value``, ``header``, ``id``, ``hash``, ``data``, ``pem``, ...: ``password_hash`` is a
password, ``session_id`` a session). The last remaining word, the **head**, decides, because in a
compound name the last word says what the thing is (``token_count`` is a count, ``max_tokens`` a number
of tokens, ``auth_failed`` a flag, ``password_length`` a length):

- heads that are always secret: ``password``, ``passwd``, ``pwd``, ``pw``, ``pass``, ``passphrase``,
  ``passcode``, ``pin``, ``secret(s)``, ``token`` (singular only: ``tokens`` counts things),
  ``credential(s)``, ``creds``, ``cookie(s)``, ``authorization``, ``auth``, ``oauth``, ``bearer``,
  ``signature``, ``hmac``, ``dsn``, ``session``, ``jwt``, ``otp``, ``totp``, ``hotp``, ``cvv``, ``cvc``,
  ``ssn`` (so ``PWD``, the shell's working directory, is hidden too: a harmless false
  positive); and single fused words ending in ``password``, ``secret``, ``token``,
  ``apikey``, ``privatekey``, ``cookie``, ``auth``... (``DBPASSWORD``, ``accesstoken``);
- ``key``/``keys`` is secret after any word except a list of harmless ones (``cache``, ``routing``,
  ``idempotency``, ``partition``, ``primary``, ``public``, ...): ``openai_key`` and ``api_key`` are
  secret, ``routing_key`` is not; a bare ``key`` is not;
- ``url``/``uri`` after ``database``/``db``/``connection``/``conn`` (``DATABASE_URL``) and after
  ``webhook``/``hook`` (``SLACK_WEBHOOK_URL``), ``string``/``str`` after ``connection``/``conn``,
  ``code`` after ``auth``/``authorization``/``verification``/``otp``/``mfa``/``pin``/``security``,
  ``number``/``num``/``no`` after ``card``/``credit`` (``card_number``), ``card`` after
  ``credit``/``debit``.

Keys given as ``extra_keys`` match any key whose words end with theirs (``ssn`` matches ``SSN``,
``user_ssn`` and ``userSsn``). Under a secret key, a value becomes :data:`REDACTED` whatever its type,
except values that carry nothing: ``None``, booleans, and empty strings, bytes and containers.

**By pattern** (:meth:`Redactor.redact_text`), inside any string: PEM private key blocks;
``Authorization``/``Cookie`` header lines; ``key=value``, ``key: value``, ``"key": "value"`` and
``<key>value</key>`` pairs whose key is secret by the rule above; credentials in URLs
(``scheme://user:[REDACTED]@host``, and a bare token of 20+ characters as the user part);
``Bearer``/``Basic`` credentials; OpenAI and Anthropic keys (``sk-``, ``sk-proj-``, ``sk-ant-``), Stripe
secret keys, AWS access key ids, GitHub and GitLab tokens, Slack tokens and webhook URLs, Google API keys
and OAuth tokens, Hugging Face tokens, SendGrid keys, and JWTs. Known limits: a secret that follows
its key after a plain space (``--password hunter2``) or that has no recognisable shape is not found by
pattern; put such values under a secret key instead. Patterns err on the side of redacting: in prose,
``token: expired`` becomes ``token: [REDACTED]``.

Every regular expression is compiled once, at import or when a :class:`Redactor` is built, and runs
only on text holding one of its telltale substrings (``sk-``, ``://``, a key-name stem, ...): text with
nothing to redact costs a lowercase copy and a few substring tests.

**Linear and bounded.** Redaction runs on every failure and every log line, so no input may make it
slow: no pattern backtracks over what it read (runs are matched possessively or bounded, matches start
only where a run of their characters starts), and what would be searched for from every candidate
again and again (the END of a PEM block, the closing bracket or quote of a value) is searched for once
per text. The work grows with the length of the text, and stops at ``max_scanned_chars``
(:data:`MAX_SCANNED_CHARS`): a longer text is cut at the end of the last whole line within the limit,
the kept part is redacted, and the rest is replaced by a marker (:func:`unscanned_marker`); what was
not scanned is never returned. ``tests/unit/test_redaction_linear.py`` grows adversarial inputs tenfold
and checks the work grows about tenfold.
"""

from __future__ import annotations

import datetime
import enum
import fractions
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Final, NamedTuple

from error_handling.exceptions import ConfigurationError

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
    "redact_traceback",
    "safe_repr",
    "unscanned_marker",
]

#: What a secret is replaced with.
REDACTED: Final = "[REDACTED]"
#: What a container that contains itself is replaced with, where it recurs.
CIRCULAR: Final = "[CIRCULAR]"
#: What a container nested deeper than ``max_depth`` is replaced with.
TRUNCATED: Final = "[TRUNCATED]"

#: How deep :meth:`Redactor.redact` descends into nested containers by default.
DEFAULT_MAX_DEPTH: Final = 20
#: How many characters of one text :meth:`Redactor.redact_text` scans by default. A longer text is
#: cut back to the end of the last whole line within them, and the rest is replaced by
#: :func:`unscanned_marker`: text that was not scanned is never returned, so it cannot leak a secret.
#: (A failure message, a formatted traceback or a log line is rarely longer.)
MAX_SCANNED_CHARS: Final = 65_536
#: The start of the marker that ends a text cut at ``max_scanned_chars``.
UNSCANNED: Final = "[UNSCANNED:"
#: How many key names a redactor remembers the verdict for.
_KEY_CACHE_SIZE: Final = 4096

# --- key names ------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

#: Heads that make a key secret on their own.
_SECRET_HEADS: Final = frozenset(
    {
        "password", "passwords", "passwd", "pwd", "pw", "pass", "passphrase", "passcode", "pin",
        "secret", "secrets", "token", "credential", "credentials", "creds",
        "cookie", "cookies", "authorization", "auth", "oauth", "bearer", "signature", "hmac", "dsn",
        "session", "sessionid", "jwt", "otp", "totp", "hotp", "cvv", "cvc", "ssn",
    }
)  # fmt: skip
#: Endings that make a single fused word secret (``dbpassword``, ``accesstoken``, ``xapikey``).
_FUSED_ENDINGS: Final = (
    "password", "passwd", "passphrase", "secret", "token", "apikey", "privatekey", "secretkey",
    "accesskey", "credential", "credentials", "cookie", "auth",
)  # fmt: skip
#: Trailing words that do not change what a key holds (``password_hash``, ``api_key_value``).
_NEUTRAL_SUFFIXES: Final = frozenset(
    {"value", "val", "header", "id", "hash", "data", "raw", "plain", "plaintext", "encoded", "b64",
     "base64", "hex", "pem", "bytes"}
)  # fmt: skip
#: Words before ``key``/``keys`` that name a harmless key (a lookup key, not a credential).
_HARMLESS_KEY_QUALIFIERS: Final = frozenset(
    {
        "cache", "routing", "idempotency", "idempotent", "dedup", "dedupe", "deduplication", "sort",
        "partition", "primary", "foreign", "composite", "natural", "unique", "object", "s3", "bucket",
        "blob", "storage", "file", "path", "lookup", "group", "message", "task", "job", "redis", "hash",
        "map", "dict", "index", "row", "column", "field", "item", "entry", "record", "event", "metric",
        "config", "setting", "settings", "public", "pub", "range", "shard", "translation", "i18n",
        "label", "name", "lock", "queue", "stream", "result", "request", "trace", "span", "correlation",
        "hot",
    }
)  # fmt: skip
#: Heads that are secret only after one of the given words.
_QUALIFIED_HEADS: Final[Mapping[str, frozenset[str]]] = {
    # the URL of a webhook carries its secret (Slack, Discord, Teams)
    "url": frozenset({"database", "db", "connection", "conn", "webhook", "hook"}),
    "uri": frozenset({"database", "db", "connection", "conn", "webhook", "hook"}),
    "string": frozenset({"connection", "conn"}),
    "str": frozenset({"connection", "conn"}),
    "code": frozenset({"auth", "authorization", "oauth", "verification", "otp", "mfa", "totp", "pin", "security"}),
    "number": frozenset({"card", "credit"}),
    "num": frozenset({"card", "credit"}),
    "no": frozenset({"card", "credit"}),
    "card": frozenset({"credit", "debit"}),
}
#: Substrings one of which every secret key name contains, lowercased (a quick test before the
#: search for ``key=value`` pairs): each head above, or the word that qualifies it.
_KEY_STEMS: Final = (
    "pass", "pw", "pin", "secret", "token", "cred", "cookie", "auth", "bearer", "signature", "hmac", "dsn",
    "session", "jwt", "key", "otp", "cvv", "cvc", "ssn", "database", "db", "conn", "verification", "mfa",
    "security", "card", "hook",
)  # fmt: skip


def _words(key: str) -> tuple[str, ...]:
    return tuple(word.lower() for word in _WORD.findall(key))


def _builtin_secret(words: tuple[str, ...]) -> bool:
    if not words:
        return False
    head, before = words[-1], words[-2] if len(words) > 1 else ""
    if head in _SECRET_HEADS or head.endswith(_FUSED_ENDINGS):
        return True
    if head in ("key", "keys"):
        return bool(before) and before not in _HARMLESS_KEY_QUALIFIERS
    return before in _QUALIFIED_HEADS.get(head, ())


def _strip(words: tuple[str, ...]) -> tuple[str, ...]:
    while words and words[-1].isdigit():
        words = words[:-1]
    while len(words) > 1 and words[-1] in _NEUTRAL_SUFFIXES:
        words = words[:-1]
    return words


# --- value patterns -------------------------------------------------------------------------------

_KEY_CHARS = r"[A-Za-z0-9_.\-]"
_UNQUOTED = r"""[^\s,;&"'\\<>(){}\[\]]+"""

# Every pattern below is written so that no input makes it backtrack far: runs are matched possessively
# (``*+``, ``++``) or bounded, a match may only start where a run of its characters starts, and what
# would have to be searched for again and again (the end of a PEM block, a closing bracket or quote) is
# searched for once per text by :class:`_Scan`. Together with :data:`MAX_SCANNED_CHARS` this makes
# :meth:`Redactor.redact_text` linear in the length of its input, and bounded.

#: ``key=``, ``key: ``, ``"key": ``, ``key => ``: a key and its separator. The key is judged first;
#: only after a secret key is the value looked for (:func:`_value_end`).
_KEY_SEP: Final = re.compile(
    rf"""
    (?<!{_KEY_CHARS})
    (?P<kq>(?<!\\)\\*+["']?|["']?)                          # a run of backslashes is taken whole
    (?P<key>{_KEY_CHARS}++)
    (?P=kq)
    (?P<sep>[ \t]*+(?:=>|[:=])[ \t]*+)
    """,
    re.VERBOSE,
)
#: A quoted value: ``"..."``, ``'...'``, ``b'...'``, ``\\"...\\"`` (escaped up to 7 times), on one line.
_QUOTED_VALUE: Final = re.compile(r"""[bBrRuU]?(?P<vq>\\{0,7}["'])(?:(?!(?P=vq))(?:\\.|.))*+(?P=vq)""")
#: An unquoted value, after an optional authorization scheme.
_UNQUOTED_VALUE: Final = re.compile(
    rf"""(?i:(?:bearer|basic|token|digest|negotiate|bot)[ \t]++)?\\*+["']?{_UNQUOTED}""",
)
#: Brackets a value may be written in (a tuple, a list, a flat dict), with their closing character.
_BRACKETS: Final = {"(": ")", "[": "]", "{": "}"}
#: ``<key>value</key>``; the key is judged afterwards. With ``\Z``: a value cut short by the end of the text.
_XML_PAIR: Final = re.compile(r"<(?P<key>[\w.:\-]++)>(?P<val>[^<]*+)</(?P=key)>")
_XML_PAIR_CUT: Final = re.compile(r"<(?P<key>[\w.:\-]++)>(?P<val>[^<]*+)(?:</(?P=key)>|\Z)")
#: PEM private key blocks (RSA, EC, DSA, OpenSSH, encrypted, PGP's ``PRIVATE KEY BLOCK``).
_PEM_BEGIN: Final = re.compile(r"-----BEGIN[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END: Final = re.compile(r"-----END[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----")
#: What follows a BEGIN line with no END after it: the key's body, also with escaped newlines.
_PEM_BODY: Final = re.compile(r"[A-Za-z0-9+/=\s\\]*+")


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
        if match := _QUOTED_VALUE.match(text, position):
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
    closer = _BRACKETS.get(first)
    if closer is not None:
        close = scan.next_index(closer, position + 1)
        limit = scan.next_index("\n", position + 1)
        if first == "{":
            limit = min(limit, scan.next_index("{", position + 1))
        if close < limit:
            return close + 1, None
    if match := _UNQUOTED_VALUE.match(text, position):
        return match.end(), None
    return None


def _redact_pem(text: str) -> str:
    """Replace each PEM private key block (up to its END line, or over its body when it has none)."""
    parts: list[str] = []
    position = 0
    end: re.Match[str] | None = None
    no_end_from = len(text) + 1  # no END starts at or after this index
    for begin in _PEM_BEGIN.finditer(text):
        if begin.start() < position:
            continue
        if end is None or end.start() < begin.end():
            end = _PEM_END.search(text, begin.end()) if begin.end() < no_end_from else None
            if end is None:
                no_end_from = min(no_end_from, begin.end())
        if end is not None:
            stop = end.end()
        else:
            body = _PEM_BODY.match(text, begin.end())
            stop = body.end() if body else begin.end()
        parts += (text[position : begin.start()], REDACTED)
        position = stop
    if not parts:
        return text
    parts.append(text[position:])
    return "".join(parts)


class _Rule(NamedTuple):
    """A pattern, and lowercase substrings (``tells``) one of which any text it matches contains."""

    pattern: re.Pattern[str]
    tells: tuple[str, ...]


def _rule(source: str, *tells: str) -> _Rule:
    return _Rule(re.compile(source), tells)


#: Telltales of a PEM private key block (redacted first: it spans ``key=value`` pairs).
_PEM_TELLS: Final = ("-----begin",)
#: Patterns that go before ``key=value`` pairs are looked for: they span such pairs.
_LEADING_RULES: Final = (
    # header lines whose whole value is a credential: inside quotes up to the closing quote,
    # elsewhere up to the end of the line
    _rule(
        r"(?P<q>[\"'])(?i:(?:set-)?cookie|(?:proxy-)?authorization)[ \t]*+:[ \t]*+(?P<secret>[^\r\n]+?)(?=(?P=q)|[\r\n]|$)",
        "cookie",
        "authorization",
    ),
    _rule(
        r"(?<![\w\"'-])(?i:(?:set-)?cookie|(?:proxy-)?authorization)[ \t]*+:[ \t]*+(?P<secret>[^\s\"'][^\r\n]*+)",
        "cookie",
        "authorization",
    ),
)
#: Patterns that go after: secrets recognisable by their shape. The match, or only its group named
#: ``secret`` when there is one, is replaced.
_SHAPE_RULES: Final = (
    # credentials in URLs: scheme://user:password@host, scheme://<long token>@host (a scheme has at
    # most 32 characters: a longer run is not read again from each of its dots)
    _rule(r"\b[A-Za-z][A-Za-z0-9+.\-]{0,31}+://[^\s:/?#@\[\]\"']*+:(?P<secret>[^\s/?#\"']+)@", "://"),
    _rule(r"\b[A-Za-z][A-Za-z0-9+.\-]{0,31}+://(?P<secret>[A-Za-z0-9_\-.~%]{20,}+)@", "://"),
    # Slack incoming webhooks carry their secret in the path
    _rule(r"hooks\.slack\.com/services/(?P<secret>[A-Za-z0-9/_\-]++)", "hooks.slack.com"),
    # Authorization schemes (a credential of 8+ characters with a digit or a symbol, or 20+ letters)
    _rule(
        r"\b(?i:bearer|basic)\s++(?P<secret>(?=[A-Za-z]*+[0-9+/=_.~\-]|[A-Za-z]{20})[A-Za-z0-9+/=_.~\-]{8,}+)",
        "bearer",
        "basic",
    ),
    # OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-) keys
    _rule(r"\bsk-[A-Za-z0-9_\-]{16,}+", "sk-"),
    _rule(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{10,}+", "sk_", "rk_"),  # Stripe secret and restricted keys
    _rule(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "akia", "asia"),  # AWS access key ids
    _rule(r"\bgh[pousr]_[A-Za-z0-9]{20,}+", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"),  # GitHub
    _rule(r"\bgithub_pat_[A-Za-z0-9_]{20,}+", "github_pat_"),
    _rule(r"\bglpat-[A-Za-z0-9_\-]{20,}+", "glpat-"),  # GitLab
    _rule(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}+", "xox"),  # Slack
    _rule(r"\bAIza[0-9A-Za-z_\-]{35}", "aiza"),  # Google API keys
    _rule(r"\bya29\.[0-9A-Za-z_\-]{20,}+", "ya29."),  # Google OAuth access tokens
    _rule(r"\bhf_[A-Za-z0-9]{30,}+", "hf_"),  # Hugging Face
    _rule(r"\bSG\.[A-Za-z0-9_\-]{16,}+\.[A-Za-z0-9_\-]{16,}+", "sg."),  # SendGrid
    # JWTs (starting where a run of their characters starts, so that ``eyJ-eyJ-...`` is read once)
    _rule(r"(?<![A-Za-z0-9_\-])eyJ[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]{8,}+\.[A-Za-z0-9_\-]*+", "eyj"),
)


def unscanned_marker(dropped: int) -> str:
    """What replaces the ``dropped`` characters of a text past ``max_scanned_chars``."""
    return f"{UNSCANNED} {dropped} more characters dropped]"


def _replace(match: re.Match[str]) -> str:
    if "secret" in match.re.groupindex and match.group("secret") is not None:
        start, end = match.span("secret")
        base = match.start()
        whole = match.group(0)
        return whole[: start - base] + REDACTED + whole[end - base :]
    return REDACTED


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
    """Redacts secrets by key name and by pattern; see the module docstring for the rules.

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
        self._extra_keys = tuple({_words(key) for key in extra_keys} - {()})
        extra_stems = {words[-1] for words in self._extra_keys}
        patterns: list[re.Pattern[str]] = []
        for pattern in extra_patterns:
            try:
                patterns.append(re.compile(pattern) if isinstance(pattern, str) else pattern)
            except re.error as exc:
                raise ConfigurationError(f"invalid redaction pattern {pattern!r}: {exc}") from exc
        self._extra_patterns = tuple(patterns)
        stems = tuple(sorted({*_KEY_STEMS, *extra_stems}))
        self._stems = frozenset(stems)
        self._tells = tuple(
            {*stems, *_PEM_TELLS, *(tell for rule in (*_LEADING_RULES, *_SHAPE_RULES) for tell in rule.tells)}
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
        words = _words(key)
        stripped = _strip(words)
        if _builtin_secret(stripped):
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
            if not present.isdisjoint(_PEM_TELLS):
                result = _redact_pem(result)
            for rule in _LEADING_RULES:
                if not present.isdisjoint(rule.tells):
                    result = rule.pattern.sub(_replace, result)
            if not present.isdisjoint(self._stems):
                if "=" in text or ":" in text:
                    result = self._redact_pairs(result)
                if "<" in text:
                    # a text cut short may end inside a secret element: its value is hidden to the end
                    result = (_XML_PAIR_CUT if cut else _XML_PAIR).sub(self._replace_element, result)
            for rule in _SHAPE_RULES:
                if not present.isdisjoint(rule.tells):
                    result = rule.pattern.sub(_replace, result)
        for pattern in self._extra_patterns:
            result = pattern.sub(_replace, result)
        return result

    def _redact_pairs(self, text: str) -> str:
        # The key is judged first; after a harmless key (``url=https://h/?token=x``) the search goes
        # on right after its separator, inside its value; after a secret key it resumes past the value.
        parts: list[str] = []
        position = 0
        scan = _Scan(text)
        while match := _KEY_SEP.search(text, position):
            value_at = match.end()
            found = _value_end(scan, value_at) if self.is_secret_key(match.group("key")) else None
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

    def _replace_element(self, match: re.Match[str]) -> str:
        if not self.is_secret_key(match.group("key")):
            return match.group(0)
        start, end = match.span("val")
        base = match.start()
        whole = match.group(0)
        return whole[: start - base] + REDACTED + whole[end - base :]

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
        if id(value) in path:
            return CIRCULAR
        if depth >= self.max_depth:
            return TRUNCATED
        path.add(id(value))
        try:
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
        finally:
            path.discard(id(value))

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


def redact_traceback(text: str) -> str:
    """Redact a formatted traceback (it is text like any other: same as :func:`redact_text`)."""
    return DEFAULT_REDACTOR.redact_text(text)


def is_secret_key(key: str) -> bool:
    """:meth:`Redactor.is_secret_key` with the built-in rules."""
    return DEFAULT_REDACTOR.is_secret_key(key)


def contains_secret(text: str) -> bool:
    """:meth:`Redactor.contains_secret` with the built-in rules."""
    return DEFAULT_REDACTOR.contains_secret(text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message, arguments, exception and stack text.

    Attach it to a handler (``handler.addFilter(RedactingFilter())``) so it sees records propagated
    from every logger. It never drops a record. In place, on the record:

    - a container logged as the message, and container and string arguments, are redacted
      (:meth:`Redactor.redact`, which knows secret keys); then, if the message
      they format into still contains a secret (one split between the format string and an argument,
      or found in ``str()`` of an argument), ``msg`` becomes the redacted message and ``args`` ``()``;
    - the exception is formatted into ``exc_text`` now, redacted, and ``exc_info`` is cleared, so no
      formatter or handler after this filter can format the raw exception again (handlers that need
      the exception object must come before it); ``stack_info`` is redacted.

    Custom attributes passed with ``extra=`` are not touched: redact them before logging.

    Args:
        redactor: the rules to apply; :data:`DEFAULT_REDACTOR` if not given.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor if redactor is not None else DEFAULT_REDACTOR
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always keep it."""
        redactor = self.redactor
        if isinstance(record.msg, Mapping | list | tuple | set | frozenset):  # logged as str() of itself
            record.msg = redactor.redact(record.msg)
        if record.args:
            record.args = self._redact_args(record.args)
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a broken format string: logging reports it later
            record.msg = redactor.redact_text(str(record.msg))
        else:
            redacted = redactor.redact_text(message)
            if redacted != message:
                record.msg, record.args = redacted, ()
                if "message" in record.__dict__:
                    record.message = redacted
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.redact_text(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redactor.redact_text(record.stack_info)
        return True

    def _redact_args(self, args: tuple[object, ...] | Mapping[str, object]) -> Any:
        # Only strings, bytes and containers are replaced: anything else keeps its type for "%d" or
        # "%.2f"; its str() is checked with the formatted message.
        if isinstance(args, Mapping):
            return {
                key: REDACTED if self.redactor.hides(key, arg) else self._redact_arg(arg) for key, arg in args.items()
            }
        return tuple(self._redact_arg(arg) for arg in args)

    def _redact_arg(self, arg: object) -> object:
        if isinstance(arg, str | bytes | bytearray | Mapping | list | tuple | set | frozenset):
            return self.redactor.redact(arg)
        return arg
