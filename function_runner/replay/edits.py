"""The operator's edits of a replay: their limits, and secrets that stay where they were.

- limits: at most ``replay_edit_max_depth`` levels of lists and objects and ``replay_edit_max_bytes`` of
  canonical JSON, each of args and kwargs (:func:`check_edits`);
- a ``[REDACTED]`` placeholder is restored only at the path its sealed original is stored at, and an edit
  may not carry a sealed marker (``{"$sealed": ...}``) the stored payload does not hold at the same path
  (:func:`merge_edit`).
"""

from __future__ import annotations

from typing import Any

from error_handling.persistence import audit
from error_handling.redaction import REDACTED
from error_handling.sealing import (
    LITERAL_KEY,
    SEALED_KEY,
    Sealer,
    UnknownPlaceholderError,
    is_sealed,
    restore_redacted,
    unseal_secrets,
)
from function_runner.replay.errors import EditTooDeep, EditTooLarge, InvalidReplayEdit, SecretMoved

__all__ = ["check_edits", "merge_edit"]


def merge_edit(param: str, edited: Any, stored: Any, *, sealer: Sealer, kind: type) -> Any:
    """``param``'s value to publish: the stored one unsealed, or the operator's edit with each
    ``[REDACTED]`` left in place given its sealed original back.

    Raises:
        InvalidReplayEdit: the edit is not of ``kind``, or holds ``[REDACTED]`` where no secret is stored
            (SecretMoved: it moves a sealed secret).
        SealedValueError: a stored secret cannot be opened with the configured keys.
    """
    if edited is None:
        value = unseal_secrets(stored, sealer=sealer)
        return value if value is not None else kind()
    if not isinstance(edited, kind):
        wanted = "a JSON array" if kind is list else "a JSON object"
        raise InvalidReplayEdit(f"{param} must be {wanted}", param=param)
    _check_secrets_in_place(param, edited, stored)
    try:
        return restore_redacted(edited, stored, sealer=sealer)
    except UnknownPlaceholderError as exc:
        raise InvalidReplayEdit(f"{param}: {exc}", param=param) from exc


def _where(param: str, path: tuple[str | int, ...]) -> str:
    return param + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)


def _sealed_paths(stored: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Where ``stored`` holds sealed values (dict keys and list indexes from the top)."""
    if is_sealed(stored):
        return [path]
    if isinstance(stored, dict):
        inner = (
            stored[LITERAL_KEY] if set(stored) == {LITERAL_KEY} and isinstance(stored[LITERAL_KEY], dict) else stored
        )
        return [found for key, item in inner.items() for found in _sealed_paths(item, (*path, key))]
    if isinstance(stored, list):
        return [found for index, item in enumerate(stored) for found in _sealed_paths(item, (*path, index))]
    return []


def _check_secrets_in_place(param: str, edited: Any, stored: Any) -> None:
    """Refuse an edit that puts a sealed secret at another path than its own.

    A ``[REDACTED]`` placeholder stands for the secret stored at the same path (dicts by key, lists by
    position while they keep their length, as :func:`~error_handling.sealing.restore_redacted` matches
    them); a placeholder where no secret is stored, while the payload has secrets elsewhere, would move
    one. A sealed marker (``{"$sealed": ...}``) in an edit is refused unless the stored payload holds
    the task's own identical dict at that path.

    Raises:
        SecretMoved: the message names the path and where the payload's secrets are.
    """
    secrets = _sealed_paths(stored)
    if not secrets:
        return  # nothing sealed to move; restore_redacted refuses a stray placeholder itself
    _SecretWalk(param, secrets).walk(edited, stored, ())


class _SecretWalk:
    """Walks an edit next to the stored payload, refusing a secret found at another path than its own."""

    def __init__(self, param: str, secrets: list[tuple[str | int, ...]]) -> None:
        self.param = param
        self.secrets = secrets

    def refuse(self, path: tuple[str | int, ...], what: str) -> SecretMoved:
        param = self.param
        if path in self.secrets:  # the right path, but a list on the way changed length: positions moved
            return SecretMoved(
                f"{what} at {_where(param, path)}: a list holding it changed length, so which secret goes "
                "where is a guess; keep the list's length, or send the real value instead",
                param=param,
            )
        kept = ", ".join(_where(param, p) for p in self.secrets[:10])
        return SecretMoved(
            f"{what} at {_where(param, path)}, where no secret is stored: a secret can only be kept at its "
            f"own path ({kept}); send the real value instead",
            param=param,
        )

    def placeholder(self, new: Any, old: Any, own_dict: bool, path: tuple[str | int, ...]) -> bool:
        """Check ``new`` if it is a placeholder or a sealed marker; whether it was one."""
        if isinstance(new, str) and new == REDACTED:
            if not is_sealed(old) and old != REDACTED:
                raise self.refuse(path, REDACTED)
            return True
        if is_sealed(new) and new[SEALED_KEY] != REDACTED:
            if not (own_dict and new == old):
                raise self.refuse(path, f"a sealed value ({{{SEALED_KEY!r}: ...}})")
            return True
        return False

    def walk(self, new: Any, old: Any, path: tuple[str | int, ...]) -> None:
        own_dict = isinstance(old, dict) and set(old) == {LITERAL_KEY} and isinstance(old[LITERAL_KEY], dict)
        if own_dict:  # the task's own dict that has a "$sealed" or "$literal" key, escaped when stored
            old = old[LITERAL_KEY]
        if self.placeholder(new, old, own_dict, path):
            return
        if isinstance(new, dict):
            inner = old if isinstance(old, dict) and not is_sealed(old) else {}
            for key, item in new.items():
                self.walk(item, inner.get(key, _ABSENT), (*path, key))
        elif isinstance(new, list):
            same_shape = isinstance(old, list) and len(old) == len(new)
            for index, item in enumerate(new):
                self.walk(item, old[index] if same_shape else _ABSENT, (*path, index))


_ABSENT: Any = object()


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects deeper than ``limit`` (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1 if isinstance(value, dict | list) else 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def check_edits(*, args: Any = None, kwargs: Any = None, max_bytes: int, max_depth: int) -> None:
    """Refuse edits nested deeper than ``max_depth`` or larger than ``max_bytes`` of canonical JSON.

    Raises:
        EditTooDeep: args or kwargs nest deeper than ``max_depth`` levels.
        EditTooLarge: args or kwargs take more than ``max_bytes`` bytes as canonical JSON (UTF-8).
    """
    for param, value in (("args", args), ("kwargs", kwargs)):
        if value is None:
            continue
        if _depth_exceeds(value, max_depth):
            raise EditTooDeep(f"{param} nests lists and objects deeper than {max_depth} levels", param=param)
        try:
            size = len(audit.canonical_json(value).encode("utf-8"))
        except (TypeError, ValueError) as exc:
            raise InvalidReplayEdit(f"{param} is not JSON: {exc}", param=param) from None
        if size > max_bytes:
            raise EditTooLarge(f"{param} is {size} bytes of JSON; at most {max_bytes} are accepted", param=param)
