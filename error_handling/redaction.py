"""Redaction: keep secrets out of everything function-runner writes or logs (invariant 6).

Two mechanisms, applied together by :class:`Redactor`:

**By key name** (:meth:`Redactor.is_secret_key`). A key is split into lowercase words at ``-``,
``_``, ``.``, spaces and camelCase boundaries (``stripeSecretKey`` -> ``stripe secret key``,
``X-API-Key`` -> ``x api key``). Trailing numbers are dropped (``x-hub-signature-256``), then trailing
*neutral* words (``value``, ``header``, ``id``, ``hash``, ``data``, ``pem``, ...: ``password_hash`` is a
password, ``session_id`` a session). The last remaining word, the **head**, decides, because in a
compound name the last word says what the thing is (``token_count`` is a count, ``max_tokens`` a number
of tokens, ``auth_failed`` a flag, ``password_length`` a length):

- heads that are always secret: ``password``, ``passwd``, ``pwd``, ``pass``, ``passphrase``,
  ``passcode``, ``secret(s)``, ``token`` (singular only: ``tokens`` counts things), ``credential(s)``,
  ``creds``, ``cookie(s)``, ``authorization``, ``auth``, ``oauth``, ``signature``, ``dsn``,
  ``session``, ``jwt`` (so ``PWD``, the shell's working directory, is hidden too: a harmless false
  positive); and single fused words ending in ``password``, ``secret``, ``token``,
  ``apikey``, ``privatekey``, ``cookie``, ``auth``... (``DBPASSWORD``, ``accesstoken``);
- ``key``/``keys`` is secret after any word except a list of harmless ones (``cache``, ``routing``,
  ``idempotency``, ``partition``, ``primary``, ``public``, ...): ``openai_key`` and ``api_key`` are
  secret, ``routing_key`` is not; a bare ``key`` is not;
- ``url``/``uri`` after ``database``/``db``/``connection``/``conn`` (``DATABASE_URL``), ``string``/``str``
  after ``connection``/``conn``, ``code`` after ``auth``/``authorization``/``verification``/``otp``/``mfa``.

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
    "REDACTED",
    "TRUNCATED",
    "RedactingFilter",
    "Redactor",
    "contains_secret",
    "is_secret_key",
    "redact",
    "redact_text",
    "redact_traceback",
    "safe_repr",
]

#: What a secret is replaced with.
REDACTED: Final = "[REDACTED]"
#: What a container that contains itself is replaced with, where it recurs.
CIRCULAR: Final = "[CIRCULAR]"
#: What a container nested deeper than ``max_depth`` is replaced with.
TRUNCATED: Final = "[TRUNCATED]"

#: How deep :meth:`Redactor.redact` descends into nested containers by default.
DEFAULT_MAX_DEPTH: Final = 20
#: How many key names a redactor remembers the verdict for.
_KEY_CACHE_SIZE: Final = 4096

# --- key names ------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

#: Heads that make a key secret on their own.
_SECRET_HEADS: Final = frozenset(
    {
        "password", "passwords", "passwd", "pwd", "pass", "passphrase", "passcode",
        "secret", "secrets", "token", "credential", "credentials", "creds",
        "cookie", "cookies", "authorization", "auth", "oauth", "signature", "dsn",
        "session", "sessionid", "jwt",
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
    "url": frozenset({"database", "db", "connection", "conn"}),
    "uri": frozenset({"database", "db", "connection", "conn"}),
    "string": frozenset({"connection", "conn"}),
    "str": frozenset({"connection", "conn"}),
    "code": frozenset({"auth", "authorization", "oauth", "verification", "otp", "mfa", "totp"}),
}
#: Substrings one of which every secret key name contains, lowercased (a quick test before the
#: search for ``key=value`` pairs): each head above, or the word that qualifies it.
_KEY_STEMS: Final = (
    "pass", "pwd", "secret", "token", "cred", "cookie", "auth", "signature", "dsn", "session", "jwt", "key",
    "database", "db", "conn", "verification", "otp", "mfa",
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


#: ``key=value``, ``key: value``, ``"key": "value"``, ``key => value``; the key is judged afterwards.
_KEY_VALUE: Final = re.compile(
    rf"""
    (?<!{_KEY_CHARS})
    (?P<kq>\\*["']?)
    (?P<key>{_KEY_CHARS}+)
    (?P=kq)
    (?P<sep>[ \t]*(?:=>|[:=])[ \t]*)
    (?=(?P<val>                                             # looked at, not consumed: see _redact_pairs
        [bBrRuU]?(?P<vq>\\*["'])(?:(?!(?P=vq))(?:\\.|.))*(?P=vq)  # a quoted value
      | \([^)\n]*\) | \[[^\]\n]*\] | \{{[^{{}}\n]*\}}          # a tuple, a list, a flat dict
      | (?i:(?:bearer|basic|token|digest|negotiate|bot)[ \t]+)?\\*["']?{_UNQUOTED}
    ))
    """,
    re.VERBOSE,
)


def _xml_pattern(stems: Iterable[str]) -> re.Pattern[str]:
    alternation = "|".join(re.escape(stem) for stem in sorted(set(stems), key=len, reverse=True))
    return re.compile(rf"<(?P<key>[\w.:\-]*?(?i:{alternation})[\w.:\-]*)>(?P<val>[^<]*)</(?P=key)>")


class _Rule(NamedTuple):
    """A pattern, and lowercase substrings (``tells``) one of which any text it matches contains."""

    pattern: re.Pattern[str]
    tells: tuple[str, ...]


def _rule(source: str, *tells: str) -> _Rule:
    return _Rule(re.compile(source), tells)


#: Patterns that go before ``key=value`` pairs are looked for: they span such pairs.
_LEADING_RULES: Final = (
    # PEM private key blocks, also cut short or with escaped newlines
    _rule(
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?:[\s\S]*?-----END[A-Z0-9 ]*PRIVATE KEY-----|[A-Za-z0-9+/=\s\\]*)",
        "-----begin",
    ),
    # header lines whose whole value is a credential: inside quotes up to the closing quote,
    # elsewhere up to the end of the line
    _rule(
        r"(?P<q>[\"'])(?i:(?:set-)?cookie|(?:proxy-)?authorization)[ \t]*:[ \t]*(?P<secret>[^\r\n]+?)(?=(?P=q)|[\r\n]|$)",
        "cookie",
        "authorization",
    ),
    _rule(
        r"(?<![\w\"'-])(?i:(?:set-)?cookie|(?:proxy-)?authorization)[ \t]*:[ \t]*(?P<secret>[^\s\"'][^\r\n]*)",
        "cookie",
        "authorization",
    ),
)
#: Patterns that go after: secrets recognisable by their shape. The match, or only its group named
#: ``secret`` when there is one, is replaced.
_SHAPE_RULES: Final = (
    # credentials in URLs: scheme://user:password@host, scheme://<long token>@host
    _rule(r"\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/?#@\[\]\"']*:(?P<secret>[^\s/?#\"']+)@", "://"),
    _rule(r"\b[A-Za-z][A-Za-z0-9+.\-]*://(?P<secret>[A-Za-z0-9_\-.~%]{20,})@", "://"),
    # Slack incoming webhooks carry their secret in the path
    _rule(r"hooks\.slack\.com/services/(?P<secret>[A-Za-z0-9/_\-]+)", "hooks.slack.com"),
    # Authorization schemes (a credential of 8+ characters with a digit or a symbol, or 20+ letters)
    _rule(
        r"\b(?i:bearer|basic)\s+(?P<secret>(?=[A-Za-z]*[0-9+/=_.~\-]|[A-Za-z]{20})[A-Za-z0-9+/=_.~\-]{8,})",
        "bearer",
        "basic",
    ),
    # OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-) keys
    _rule(r"\bsk-[A-Za-z0-9_\-]{16,}", "sk-"),
    _rule(r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{10,}", "sk_", "rk_"),  # Stripe secret and restricted keys
    _rule(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", "akia", "asia"),  # AWS access key ids
    _rule(r"\bgh[pousr]_[A-Za-z0-9]{20,}", "ghp_", "gho_", "ghu_", "ghs_", "ghr_"),  # GitHub
    _rule(r"\bgithub_pat_[A-Za-z0-9_]{20,}", "github_pat_"),
    _rule(r"\bglpat-[A-Za-z0-9_\-]{20,}", "glpat-"),  # GitLab
    _rule(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", "xox"),  # Slack
    _rule(r"\bAIza[0-9A-Za-z_\-]{35}", "aiza"),  # Google API keys
    _rule(r"\bya29\.[0-9A-Za-z_\-]{20,}", "ya29."),  # Google OAuth access tokens
    _rule(r"\bhf_[A-Za-z0-9]{30,}", "hf_"),  # Hugging Face
    _rule(r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}", "sg."),  # SendGrid
    _rule(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", "eyj"),  # JWTs
)


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

    Raises:
        ConfigurationError: a pattern does not compile, or ``max_depth`` is below 1.
    """

    def __init__(
        self,
        *,
        extra_keys: Iterable[str] = (),
        extra_patterns: Iterable[str | re.Pattern[str]] = (),
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        if max_depth < 1:
            raise ConfigurationError(f"max_depth must be at least 1, not {max_depth}")
        self.max_depth = max_depth
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
        self._tells = tuple({*stems, *(tell for rule in (*_LEADING_RULES, *_SHAPE_RULES) for tell in rule.tells)})
        self._xml = _xml_pattern(stems)
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
        nothing to redact costs one lowercase copy and a few substring tests.
        """
        lower = text.lower()  # replacing spans with "[REDACTED]" creates no telltale: look once
        present = {tell for tell in self._tells if tell in lower}
        result = text
        if present:
            for rule in _LEADING_RULES:
                if not present.isdisjoint(rule.tells):
                    result = rule.pattern.sub(_replace, result)
            if not present.isdisjoint(self._stems):
                if "=" in text or ":" in text:
                    result = self._redact_pairs(result)
                if "<" in text:
                    result = self._xml.sub(self._replace_pair, result)
            for rule in _SHAPE_RULES:
                if not present.isdisjoint(rule.tells):
                    result = rule.pattern.sub(_replace, result)
        for pattern in self._extra_patterns:
            result = pattern.sub(_replace, result)
        return result

    def _redact_pairs(self, text: str) -> str:
        # A value is only looked at, so that after a harmless key (``url=https://h/?token=x``) the
        # search goes on inside its value; after a secret key it resumes past the value.
        parts: list[str] = []
        position = 0
        while match := _KEY_VALUE.search(text, position):
            if self.is_secret_key(match.group("key")):
                parts += (text[position : match.start("val")], self._placeholder(match))
                position = match.end("val")
            else:
                parts.append(text[position : match.end()])
                position = match.end()
        parts.append(text[position:])
        return "".join(parts)

    def _replace_pair(self, match: re.Match[str]) -> str:
        if not self.is_secret_key(match.group("key")):
            return match.group(0)
        start, end = match.span("val")
        base = match.start()
        whole = match.group(0)
        return whole[: start - base] + self._placeholder(match) + whole[end - base :]

    @staticmethod
    def _placeholder(match: re.Match[str]) -> str:
        value = match.group("val")
        quote = match.group("vq") if "vq" in match.re.groupindex else None
        return f"{quote}{REDACTED}{quote}" if quote and value.startswith(quote) else REDACTED

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
