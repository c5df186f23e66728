"""The stored form of a task's args, kwargs and headers: each secret sealed as
``{"$sealed": "<token>"}``, a dict of the task's own that looks like a marker escaped as
``{"$literal": {...}}``, the rest JSON in clear; and what is done with it (unseal, show redacted,
rotate, reseal, purge, restore an operator's edits)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Final

from error_handling.redaction import REDACTED, Redactor, safe_repr
from error_handling.redaction.markers import descend
from error_handling.sealing.jsonable import MAX_DEPTH, MISSING, is_container, json_key, scalar
from error_handling.sealing.sealer import SealedValueError, Sealer, UnknownPlaceholderError

#: The key of a sealed value's marker: ``{"$sealed": "<token>"}``.
SEALED_KEY: Final = "$sealed"
#: The key that escapes a dict of the task's own holding :data:`SEALED_KEY` or itself.
LITERAL_KEY: Final = "$literal"

_RESERVED: Final = frozenset({SEALED_KEY, LITERAL_KEY})


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
        found = scalar(value)
        if found is MISSING and not is_container(value):
            found = self.redactor.redact_text(safe_repr(value))  # any other object: its repr, redacted
        if found is not MISSING:
            if isinstance(found, str) and self.redactor.contains_secret(found):
                return self.sealed(found)
            return found
        return descend(value, depth, path, max_depth=MAX_DEPTH, inside=lambda: self.walk_inside(value, depth, path))

    def walk_inside(self, value: Any, depth: int, path: set[int]) -> Any:
        if isinstance(value, Mapping):
            return self.walk_mapping(value, depth, path)
        return [self.walk(item, depth + 1, path) for item in value]

    def walk_mapping(self, value: Mapping[Any, Any], depth: int, path: set[int]) -> dict[str, Any]:
        stored: dict[str, Any] = {}
        for key, item in value.items():
            name = self.redactor.redact_text(json_key(key))
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
    dropped). It never raises for one bad value, and a value already sealed
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
        return {key: _restore(item, inner.get(key, MISSING), (*path, key), sealer) for key, item in edited.items()}
    if isinstance(edited, list | tuple):
        same_shape = isinstance(stored, list) and len(stored) == len(edited)
        return [
            _restore(item, stored[index] if same_shape else MISSING, (*path, index), sealer)
            for index, item in enumerate(edited)
        ]
    return edited
