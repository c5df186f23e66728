"""Rules on HTTP statuses: statuses with a meaning of their own, then every other error status by
its class (4xx, 5xx). Statuses below 400 classify nothing."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.outcome import (
    AUTH_FAILED,
    CONFLICT,
    DISK_FULL,
    INVALID_INPUT,
    NOT_FOUND,
    NOT_SUPPORTED,
    PERMANENT,
    QUOTA,
    RATE_LIMITED,
    TIMEOUT,
    TOO_LARGE,
    UNAVAILABLE,
    Outcome,
)

__all__ = ["HTTP_STATUS_CLASS_RULES", "HTTP_STATUS_RULES"]

#: HTTP statuses with a meaning of their own.
HTTP_STATUS_RULES: Mapping[int, Outcome] = MappingProxyType(
    {
        400: INVALID_INPUT,
        401: AUTH_FAILED,
        402: QUOTA,
        403: AUTH_FAILED,
        404: NOT_FOUND,
        405: NOT_SUPPORTED,
        408: TIMEOUT,
        409: CONFLICT,
        410: NOT_FOUND,
        413: TOO_LARGE,
        414: TOO_LARGE,
        415: INVALID_INPUT,
        422: INVALID_INPUT,
        423: CONFLICT,
        425: UNAVAILABLE,
        429: RATE_LIMITED,
        431: TOO_LARGE,
        500: UNAVAILABLE,
        501: NOT_SUPPORTED,
        502: UNAVAILABLE,
        503: UNAVAILABLE,
        504: TIMEOUT,
        507: DISK_FULL,
        529: UNAVAILABLE,  # Anthropic: overloaded
    }
)

#: Every other error status, by its hundreds digit (``4`` for 4xx, ``5`` for 5xx).
HTTP_STATUS_CLASS_RULES: Mapping[int, Outcome] = MappingProxyType({4: PERMANENT, 5: UNAVAILABLE})
