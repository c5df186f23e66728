"""The :class:`Sealer`: encrypts and decrypts JSON-friendly values with one or more Fernet keys (the
first encrypts, every one decrypts, so keys can be rotated), and the errors of unsealing::

    FunctionRunnerError
    └── SealedValueError                a sealed value cannot be opened (wrong key, or damaged)
        └── UnknownPlaceholderError     an edited structure has [REDACTED] where nothing is sealed
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from error_handling.exceptions import ConfigurationError, FunctionRunnerError
from error_handling.redaction import REDACTED
from error_handling.sealing.jsonable import jsonable


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
        payload = json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
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
