"""Sealing: the one copy of a secret that is kept (to replay a dead letter) is encrypted.

A task's args, kwargs and headers are stored by :func:`seal_secrets`: every value redaction would hide
is replaced by ``{"$sealed": "<Fernet token>"}`` holding the original, encrypted with the key from the
settings; everything else is stored as JSON, in clear::

    sealer.py     Sealer (keys "k1,k2": k1 encrypts, both decrypt), generate_key, the errors
    jsonable.py   values made JSON-friendly (tuples -> lists, dates -> ISO 8601, bytes -> text, ...)
    stored.py     the stored form and its uses: seal_secrets, unseal_secrets, redacted_view,
                  restore_redacted, reseal_secrets, purge_secrets
"""

from __future__ import annotations

from error_handling.sealing.jsonable import MAX_DEPTH
from error_handling.sealing.sealer import SealedValueError, Sealer, UnknownPlaceholderError, generate_key
from error_handling.sealing.stored import (
    LITERAL_KEY,
    SEALED_KEY,
    Resealed,
    is_sealed,
    purge_secrets,
    redacted_view,
    reseal_secrets,
    restore_redacted,
    seal_secrets,
    unseal_secrets,
)

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
    "seal_secrets",
    "unseal_secrets",
]
