"""Secret key names: a key is split into lowercase words, trailing numbers and neutral words are
dropped, and the last word left (the head) decides, in these tables (``api_key`` and ``DBPASSWORD``
are secret; ``token_count``, ``routing_key`` and ``max_tokens`` are not)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

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
KEY_STEMS: Final = (
    "pass", "pw", "pin", "secret", "token", "cred", "cookie", "auth", "bearer", "signature", "hmac", "dsn",
    "session", "jwt", "key", "otp", "cvv", "cvc", "ssn", "database", "db", "conn", "verification", "mfa",
    "security", "card", "hook",
)  # fmt: skip


def key_words(key: str) -> tuple[str, ...]:
    """``key`` split into lowercase words (at separators, camelCase and digits)."""
    return tuple(word.lower() for word in _WORD.findall(key))


def builtin_secret(words: tuple[str, ...]) -> bool:
    """Whether the built-in tables make a key of these (stripped) words secret."""
    if not words:
        return False
    head, before = words[-1], words[-2] if len(words) > 1 else ""
    if head in _SECRET_HEADS or head.endswith(_FUSED_ENDINGS):
        return True
    if head in ("key", "keys"):
        return bool(before) and before not in _HARMLESS_KEY_QUALIFIERS
    return before in _QUALIFIED_HEADS.get(head, ())


def strip_neutral(words: tuple[str, ...]) -> tuple[str, ...]:
    """``words`` without trailing numbers and trailing neutral words (``password_hash`` -> ``password``)."""
    while words and words[-1].isdigit():
        words = words[:-1]
    while len(words) > 1 and words[-1] in _NEUTRAL_SUFFIXES:
        words = words[:-1]
    return words
