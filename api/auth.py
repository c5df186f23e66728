"""API keys with ``read`` and ``write`` scopes (bearer tokens).

- With keys configured (``FUNCTION_RUNNER_API_KEYS="read:KEY,write:KEY"``), every request needs
  ``Authorization: Bearer <key>``; ``GET``/``HEAD``/``OPTIONS`` need ``read``, every other method needs
  ``write`` (which implies ``read``). A missing or unknown key is 401, a read key on a mutation 403.
- With no key configured, the API answers only requests from the loopback address (403 otherwise) and
  logs a warning at start-up.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from fastapi import Request

from api.errors import ApiError
from function_runner.settings import Settings, parse_api_keys

logger = logging.getLogger("function_runner.api")

#: Methods that only read.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def configured_keys(settings: Settings) -> dict[str, str]:
    """The ``{key: scope}`` map of the settings (empty when no key is set)."""
    return parse_api_keys(settings.api_keys.get_secret_value()) if settings.api_keys else {}


def warn_if_open(settings: Settings) -> None:
    """Log the start-up warning of an API with no keys."""
    if not configured_keys(settings):
        logger.warning("api.no_keys: FUNCTION_RUNNER_API_KEYS is not set; serving loopback clients only")


def _is_loopback(host: str | None) -> bool:
    if host == "testclient":  # Starlette's in-process TestClient
        return True
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _scope_of(keys: dict[str, str], presented: str) -> str | None:
    found = None
    for key, scope in keys.items():  # compare with every key in constant time
        if hmac.compare_digest(key.encode(), presented.encode()):
            found = scope
    return found


def authorize(request: Request) -> None:
    """Refuse the request unless its key (or, with no keys, its address) allows the method.

    Raises:
        ApiError: 401 without a valid key, 403 with a read key on a mutation or from a remote address
            when no key is configured.
    """
    keys: dict[str, str] = request.app.state.api_keys
    if not keys:
        if not _is_loopback(request.client.host if request.client else None):
            raise ApiError(
                403, "no API keys are configured: the API serves only local clients", code="remote_forbidden"
            )
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "an API key is required: send 'Authorization: Bearer <key>'", code="missing_api_key")
    scope = _scope_of(keys, token.strip())
    if scope is None:
        raise ApiError(401, "the API key is not valid", code="invalid_api_key")
    if request.method not in READ_METHODS and scope != "write":
        raise ApiError(
            403, "this API key may only read; changes need a key with the write scope", code="write_scope_required"
        )
