"""API keys: ``FUNCTION_RUNNER_API_KEYS`` parsed into grants (a scope and the principal a key acts as)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from error_handling.exceptions import ConfigurationError

#: The scopes an API key may have.
API_SCOPES = ("read", "write")
#: What a key's name may be: letters, digits and ``_ . @ -``, up to 64 characters.
KEY_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: Principals the API gives on its own; no key may be named like them.
RESERVED_KEY_NAMES = frozenset({"local", "open"})


@dataclass(frozen=True)
class ApiKey:
    """One API key's grant: its scope and the principal it acts as."""

    #: ``read`` or ``write``.
    scope: str
    #: Who uses the key: its name, or ``key-`` and the first 8 hex digits of the key's SHA-256.
    principal: str


def key_principal(key: str) -> str:
    """The principal of an unnamed key: ``key-`` and the first 8 hex digits of its SHA-256 (never the key)."""
    return "key-" + hashlib.sha256(key.encode()).hexdigest()[:8]


def parse_api_keys(text: str) -> dict[str, ApiKey]:
    """Parse ``"read:KEY1,alice=write:KEY2"`` into ``{key: ApiKey(scope, principal)}``.

    An entry is ``scope:key`` or ``NAME=scope:key``; the key is everything after the first ``:`` (it may
    hold ``=`` and ``:``).

    Raises:
        ConfigurationError: on an entry without a known scope, with an empty key, or with a name that is not
            allowed (the key is never echoed).
    """
    keys: dict[str, ApiKey] = {}
    for position, entry in enumerate((e.strip() for e in text.split(",")), start=1):
        if not entry:
            continue
        head, sep, key = entry.partition(":")
        name, has_name, scope = head.rpartition("=")
        name, scope, key = name.strip(), scope.strip(), key.strip()
        if not sep or scope not in API_SCOPES or not key:
            raise ConfigurationError(
                f"API key entry #{position} must look like 'read:<key>', 'write:<key>' or 'NAME=write:<key>'"
            )
        if has_name and (not KEY_NAME.match(name) or name in RESERVED_KEY_NAMES or name.lower().startswith("key-")):
            raise ConfigurationError(
                f"API key entry #{position}: a name is 1 to 64 letters, digits or _ . @ -, and not "
                "'local', 'open' or 'key-...'"
            )
        keys[key] = ApiKey(scope=scope, principal=name if has_name else key_principal(key))
    return keys
