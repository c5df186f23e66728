"""Sealing: the one copy of a secret that is kept (to replay a dead letter) is encrypted.

A task's args, kwargs and headers are stored by :func:`seal_secrets`: every value redaction would hide
is replaced by ``{"$sealed": "<Fernet token>"}`` holding the original, encrypted with the key from the
settings; everything else is stored as JSON, in clear. Then:

- :func:`redacted_view` shows a stored structure with :data:`REDACTED` in place of each sealed value
  (no key needed);
- :func:`unseal_secrets` gives the original back, to publish a replay;
- :func:`restore_redacted` takes what an operator edited from the redacted view, puts the originals
  back where the placeholder was left, and keeps the edits.

The stored form, exactly::

    {"$sealed": "<token>"}      a sealed value: the JSON of the original, encrypted
    {"$literal": {...}}         a dict of the task's own that has a "$sealed" or "$literal" key,
                                escaped so it is never taken for a marker; its values are sealed as usual

Values are made JSON-friendly on the way in: tuples and sets become lists (sets in iteration order),
non-string dict keys become ``str(key)``, datetimes, dates and times become ISO 8601 strings,
timedeltas seconds (a float), UUIDs, Decimals, Fractions, complex numbers and paths strings, enum members their value, bytes their
UTF-8 text (standard base64 when they are not UTF-8), non-finite floats ``"NaN"``, ``"Infinity"`` or
``"-Infinity"``, and any other object its ``repr``, redacted. A string with a secret pattern in it is
sealed whole; a dict key with one is redacted (a key cannot be sealed).

Keys: ``Sealer("k1,k2")`` encrypts with ``k1`` and decrypts with either, so a new key goes first and an
old one stays until :func:`reseal_secrets` (``function-runner keys rotate``) has re-encrypted what it
sealed. :func:`purge_secrets` drops the sealed values of a structure for good (retention).

Errors: a bad key raises :class:`~error_handling.exceptions.ConfigurationError`; a value that cannot be
unsealed raises :class:`SealedValueError`, a :class:`~error_handling.exceptions.FunctionRunnerError`::

    FunctionRunnerError
    └── SealedValueError                a sealed value cannot be opened (wrong key, or damaged)
        └── UnknownPlaceholderError     an edited structure has [REDACTED] where nothing is sealed
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import enum
import fractions
import json
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from error_handling.exceptions import ConfigurationError, FunctionRunnerError
from error_handling.redaction import CIRCULAR, REDACTED, TRUNCATED, Redactor, safe_repr

__all__ = [
    "LITERAL_KEY",
    "MAX_DEPTH",
    "SEALED_KEY",
    "Resealed",
    "SealedValueError",
    "Sealer",
    "UnknownPlaceholderError",
    "generate_key",
    "is_sealed",
    "purge_secrets",
    "redacted_view",
    "reseal_secrets",
    "restore_redacted",
    "rotate_secrets",
    "seal_secrets",
    "unseal_secrets",
]

#: The key of a sealed value's marker: ``{"$sealed": "<token>"}``.
SEALED_KEY: Final = "$sealed"
#: The key that escapes a dict of the task's own holding :data:`SEALED_KEY` or itself.
LITERAL_KEY: Final = "$literal"
#: How deep the stored form goes; deeper containers become :data:`~error_handling.redaction.TRUNCATED`.
MAX_DEPTH: Final = 100

_RESERVED: Final = frozenset({SEALED_KEY, LITERAL_KEY})
_MISSING: Final[Any] = object()


class SealedValueError(FunctionRunnerError):
    """A sealed value cannot be opened: sealed with a key that is not configured, or damaged."""


class UnknownPlaceholderError(SealedValueError):
    """An edited structure holds :data:`REDACTED` at a path where no sealed value is stored.

    Args:
        path: where the placeholder is, as dict keys and list indexes from the top.
    """

    def __init__(self, path: tuple[str | int, ...]) -> None:
        where = "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path) or "the top level"
        super().__init__(
            f"{REDACTED} at {where} stands for no stored secret (a list's length changed, or the value "
            "was never secret): send the real value instead"
        )
        self.path = path


def generate_key() -> str:
    """Return a new random Fernet key (url-safe base64, 32 bytes), for ``FUNCTION_RUNNER_ENCRYPTION_KEY``."""
    return Fernet.generate_key().decode("ascii")


class Sealer:
    """Encrypts and decrypts JSON-friendly values with one or more Fernet keys.

    Args:
        keys: a key, a comma-separated string of keys, or a sequence of them (str or bytes). The first
            encrypts; every one decrypts.

    Raises:
        ConfigurationError: no key is given, or one is not a Fernet key. The message says which one
            (by position), never what it is.
    """

    generate_key = staticmethod(generate_key)

    def __init__(self, keys: str | bytes | Sequence[str | bytes]) -> None:
        items: list[object] = [keys] if isinstance(keys, str | bytes) else list(keys)
        texts: list[str] = []
        for item in items:
            if isinstance(item, bytes):
                item = item.decode("ascii", "replace")
            if not isinstance(item, str):
                raise ConfigurationError(f"an encryption key must be a string, not {type(item).__name__}")
            texts += (part.strip() for part in item.split(",") if part.strip())
        if not texts:
            raise ConfigurationError("no encryption key given: make one with error_handling.sealing.generate_key()")
        fernets: list[Fernet] = []
        for position, text in enumerate(texts, start=1):
            try:
                fernets.append(Fernet(text))
            except ValueError:  # binascii.Error included
                # from None: the original error must not carry any part of the key into a log
                raise ConfigurationError(
                    f"encryption key #{position} of {len(texts)} is not a Fernet key (32 url-safe base64-encoded "
                    "bytes); make one with error_handling.sealing.generate_key()"
                ) from None
        self._fernet = MultiFernet(fernets)
        self._first = fernets[0]
        self._count = len(fernets)

    def __repr__(self) -> str:
        return f"<Sealer with {self._count} key{'s' if self._count > 1 else ''}>"

    def seal(self, value: Any) -> str:
        """Encrypt the JSON of ``value`` (made JSON-friendly as the module says) with the first key."""
        payload = json.dumps(_jsonable(value, 0, set()), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        # surrogatepass: a lone surrogate (which JSON and Python strings allow) comes back as it was
        return self._fernet.encrypt(payload.encode("utf-8", "surrogatepass")).decode("ascii")

    def unseal(self, token: str) -> Any:
        """Decrypt ``token`` with whichever key sealed it and return the value.

        Raises:
            SealedValueError: no configured key opens it, or it is damaged.
        """
        return json.loads(self._decrypt(token))

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` with the first key.

        Raises:
            SealedValueError: no configured key opens it, or it is damaged.
        """
        try:
            return self._fernet.rotate(_token_bytes(token)).decode("ascii")
        except InvalidToken as exc:
            raise SealedValueError(_WRONG_KEY) from exc

    def sealed_with_first_key(self, token: str) -> bool:
        """Whether ``token`` opens with the first key (the one that encrypts): a rotation skips it."""
        try:
            self._first.decrypt(_token_bytes(token))
        except InvalidToken:
            return False
        return True

    def _decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(_token_bytes(token)).decode("utf-8", "surrogatepass")
        except InvalidToken as exc:
            raise SealedValueError(_WRONG_KEY) from exc
        except UnicodeDecodeError as exc:  # pragma: no cover - only a foreign token with our key
            raise SealedValueError("a sealed value is not UTF-8 JSON: it was not sealed by function-runner") from exc


_WRONG_KEY: Final = (
    "cannot unseal a stored secret: it was sealed with a key that is not among the configured ones "
    "(FUNCTION_RUNNER_ENCRYPTION_KEY; keep the old key after the new one while rotating), or it is damaged"
)


def _token_bytes(token: str) -> bytes:
    if not isinstance(token, str):
        raise SealedValueError(f"a sealed value must be a string token, not {type(token).__name__}")
    return token.encode("ascii", "replace")


# --- JSON-friendly values ---------------------------------------------------------------------------


def _scalar(value: Any) -> Any:
    """The JSON form of a non-container, or ``_MISSING`` for objects without one."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, enum.Enum):
        return _scalar(value.value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if math.isfinite(value):
            return float(value)
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal | PurePath | complex | fractions.Fraction):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(data).decode("ascii")
    return _MISSING


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, bytes | bytearray):
        return bytes(key).decode("utf-8", "backslashreplace")
    return str(key)


def _is_container(value: Any) -> bool:
    return isinstance(value, Mapping | list | tuple | set | frozenset)


def _jsonable(value: Any, depth: int, path: set[int]) -> Any:
    """The JSON-friendly form of ``value``, in full (what a sealed token holds)."""
    scalar = _scalar(value)
    if scalar is not _MISSING:
        return scalar
    if not _is_container(value):
        return safe_repr(value)  # encrypted: it need not be redacted
    if id(value) in path:
        return CIRCULAR
    if depth >= MAX_DEPTH:
        return TRUNCATED
    path.add(id(value))
    try:
        if isinstance(value, Mapping):
            return {_key(key): _jsonable(item, depth + 1, path) for key, item in value.items()}
        return [_jsonable(item, depth + 1, path) for item in value]
    finally:
        path.discard(id(value))


# --- stored form ------------------------------------------------------------------------------------


def is_sealed(value: Any) -> bool:
    """Whether ``value`` (from a stored structure) is a sealed value's marker."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(SEALED_KEY), str)


def _is_literal(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(LITERAL_KEY), dict)


def seal_secrets(value: Any, *, redactor: Redactor, sealer: Sealer) -> Any:
    """Return the stored form of ``value``: JSON-ready, with each secret sealed.

    Sealed (``{"$sealed": token}`` of the original value): the values under secret keys that
    ``redactor`` would hide, and strings in which it finds a secret pattern (the whole string). The
    rest is converted as the module docstring says and kept in clear. ``value`` is not changed.
    """
    return _Sealing(redactor, sealer).walk(value, 0, set())


class _Sealing:
    def __init__(self, redactor: Redactor, sealer: Sealer) -> None:
        self.redactor = redactor
        self.sealer = sealer

    def sealed(self, value: Any) -> dict[str, str]:
        return {SEALED_KEY: self.sealer.seal(value)}

    def walk(self, value: Any, depth: int, path: set[int]) -> Any:
        scalar = _scalar(value)
        if scalar is _MISSING and not _is_container(value):
            scalar = self.redactor.redact_text(safe_repr(value))  # any other object: its repr, redacted
        if scalar is not _MISSING:
            if isinstance(scalar, str) and self.redactor.contains_secret(scalar):
                return self.sealed(scalar)
            return scalar
        if id(value) in path:
            return CIRCULAR
        if depth >= MAX_DEPTH:
            return TRUNCATED
        path.add(id(value))
        try:
            if isinstance(value, Mapping):
                return self.walk_mapping(value, depth, path)
            return [self.walk(item, depth + 1, path) for item in value]
        finally:
            path.discard(id(value))

    def walk_mapping(self, value: Mapping[Any, Any], depth: int, path: set[int]) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        for key, item in value.items():
            name = self.redactor.redact_text(_key(key))
            stored[name] = self.sealed(item) if self.redactor.hides(key, item) else self.walk(item, depth + 1, path)
        return {LITERAL_KEY: stored} if _RESERVED.intersection(stored) else stored


def unseal_secrets(stored: Any, *, sealer: Sealer) -> Any:
    """Return the value :func:`seal_secrets` stored, with every sealed value opened.

    Tuples and sets come back as lists, and other types in their JSON-friendly form.

    Raises:
        SealedValueError: a sealed value cannot be opened with ``sealer``'s keys.
    """
    return _map_markers(stored, sealer.unseal)


def redacted_view(stored: Any) -> Any:
    """Return a stored structure for display: each sealed value becomes :data:`REDACTED` (no key needed)."""
    return _map_markers(stored, lambda _token: REDACTED)


def rotate_secrets(stored: Any, *, sealer: Sealer) -> Any:
    """Return a stored structure with every sealed value re-encrypted with ``sealer``'s first key.

    Raises:
        SealedValueError: a sealed value cannot be opened with ``sealer``'s keys.
    """
    return _map_markers(stored, lambda token: {SEALED_KEY: sealer.rotate(token)}, keep_escapes=True)


@dataclasses.dataclass
class Resealed:
    """What :func:`reseal_secrets` did to one stored structure.

    Attributes:
        value: the structure with every value it could open sealed with the first key.
        rotated: sealed values re-encrypted with the first key.
        current: sealed values already sealed with the first key (left as they were).
        unopened: sealed values no configured key opens (left as they were).
    """

    value: Any
    rotated: int = 0
    current: int = 0
    unopened: int = 0


def reseal_secrets(stored: Any, *, sealer: Sealer) -> Resealed:
    """Re-encrypt with ``sealer``'s first key every sealed value of a stored structure that another
    configured key sealed; count those already current and those no key opens (kept unchanged, never
    dropped). Unlike :func:`rotate_secrets` it never raises for one bad value, and a value already sealed
    with the first key is not touched, so running it again changes nothing."""
    result = Resealed(value=None)

    def one(token: str) -> dict[str, str]:
        if sealer.sealed_with_first_key(token):
            result.current += 1
            return {SEALED_KEY: token}
        try:
            rotated = sealer.rotate(token)
        except SealedValueError:
            result.unopened += 1
            return {SEALED_KEY: token}
        result.rotated += 1
        return {SEALED_KEY: rotated}

    result.value = _map_markers(stored, one, keep_escapes=True)
    return result


def purge_secrets(stored: Any) -> Any:
    """Return a stored structure with every sealed value replaced by :data:`REDACTED` (escapes kept):
    what retention leaves of a dead letter that can no longer be replayed. No key needed."""
    return _map_markers(stored, lambda _token: REDACTED, keep_escapes=True)


def _map_markers(stored: Any, on_sealed: Callable[[str], Any], *, keep_escapes: bool = False) -> Any:
    if is_sealed(stored):
        return on_sealed(stored[SEALED_KEY])
    if _is_literal(stored):
        inner = {
            key: _map_markers(item, on_sealed, keep_escapes=keep_escapes) for key, item in stored[LITERAL_KEY].items()
        }
        return {LITERAL_KEY: inner} if keep_escapes else inner
    if isinstance(stored, dict):
        return {key: _map_markers(item, on_sealed, keep_escapes=keep_escapes) for key, item in stored.items()}
    if isinstance(stored, list):
        return [_map_markers(item, on_sealed, keep_escapes=keep_escapes) for item in stored]
    return stored


def restore_redacted(edited: Any, stored: Any, *, sealer: Sealer) -> Any:
    """Merge an operator's edits of :func:`redacted_view` with the sealed originals, for a replay.

    Where ``edited`` holds :data:`REDACTED` and ``stored`` a sealed value at the same path, the original
    is put back; everywhere else the edited value is taken. Dicts are matched by key and lists by
    position, only while the list keeps its length (otherwise which secret belongs where is a guess).

    Raises:
        UnknownPlaceholderError: ``edited`` holds :data:`REDACTED` where ``stored`` has no sealed value
            (and not the string ``"[REDACTED]"`` itself).
        SealedValueError: a sealed value cannot be opened with ``sealer``'s keys.
    """
    return _restore(edited, stored, (), sealer)


def _restore(edited: Any, stored: Any, path: tuple[str | int, ...], sealer: Sealer) -> Any:
    if _is_literal(stored):
        stored = stored[LITERAL_KEY]
    if isinstance(edited, str) and edited == REDACTED:
        if is_sealed(stored):
            return sealer.unseal(stored[SEALED_KEY])
        if stored == REDACTED:
            return edited
        raise UnknownPlaceholderError(path)
    if isinstance(edited, Mapping):
        inner = stored if isinstance(stored, dict) and not is_sealed(stored) else {}
        return {key: _restore(item, inner.get(key, _MISSING), (*path, key), sealer) for key, item in edited.items()}
    if isinstance(edited, list | tuple):
        same_shape = isinstance(stored, list) and len(stored) == len(edited)
        return [
            _restore(item, stored[index] if same_shape else _MISSING, (*path, index), sealer)
            for index, item in enumerate(edited)
        ]
    return edited
