"""Rules on HTTP statuses: statuses with a meaning of their own, then every other error status by
its class (4xx, 5xx). Statuses below 400 classify nothing."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.outcome import Outcome, Outcomes

#: HTTP statuses with a meaning of their own.
HTTP_STATUS_RULES: Mapping[int, Outcome] = MappingProxyType(
    {
        400: Outcomes.INVALID_INPUT,
        401: Outcomes.AUTH_FAILED,
        402: Outcomes.QUOTA,
        403: Outcomes.AUTH_FAILED,
        404: Outcomes.NOT_FOUND,
        405: Outcomes.NOT_SUPPORTED,
        408: Outcomes.TIMEOUT,
        409: Outcomes.CONFLICT,
        410: Outcomes.NOT_FOUND,
        413: Outcomes.TOO_LARGE,
        414: Outcomes.TOO_LARGE,
        415: Outcomes.INVALID_INPUT,
        422: Outcomes.INVALID_INPUT,
        423: Outcomes.CONFLICT,
        425: Outcomes.UNAVAILABLE,
        429: Outcomes.RATE_LIMITED,
        431: Outcomes.TOO_LARGE,
        500: Outcomes.UNAVAILABLE,
        501: Outcomes.NOT_SUPPORTED,
        502: Outcomes.UNAVAILABLE,
        503: Outcomes.UNAVAILABLE,
        504: Outcomes.TIMEOUT,
        507: Outcomes.DISK_FULL,
        511: Outcomes.CONFIGURATION,  # network authentication required: a captive portal or proxy login
        529: Outcomes.UNAVAILABLE,  # Anthropic: overloaded
    }
)

#: Every other error status, by its hundreds digit (``4`` for 4xx, ``5`` for 5xx).
HTTP_STATUS_CLASS_RULES: Mapping[int, Outcome] = MappingProxyType({4: Outcomes.PERMANENT, 5: Outcomes.UNAVAILABLE})
