"""Who may call the API, and as whom: API keys with ``read`` and ``write`` scopes, or local clients.

- With keys configured (``FUNCTION_RUNNER_API_KEYS="read:KEY,alice=write:KEY"``), every request needs
  ``Authorization: Bearer <key>``; ``GET``/``HEAD``/``OPTIONS`` need ``read``, every other method needs
  ``write`` (which implies ``read``). A missing or unknown key is 401, a read key on a mutation 403.
- With no key configured, the API answers only *local* clients (403 otherwise): the transport address
  of the connection is a loopback address, and the request carries no forwarding header
  (``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``): a request relayed by a proxy on the same machine
  is not a local client. Nothing the client sends can make it local.
- With no key and ``FUNCTION_RUNNER_API_ALLOW_OPEN=true``, every client is served (an open API).

:func:`authorize` sets ``request.state.principal``, the identity the audit trail records, to a string:
the key's name (``alice`` for ``alice=write:KEY``), ``key-`` and the first 8 hex digits of the key's
SHA-256 for an unnamed key, ``local`` for a local client with no keys configured, ``open`` for any client
of an open API. Never the key itself.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging

from fastapi import Request

from api.errors import ApiError
from function_runner.settings import Settings
from function_runner.settings.api_keys import ApiKey, parse_api_keys

logger = logging.getLogger("function_runner.api")

#: Methods that only read.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The principal of a local client when no key is configured.
LOCAL_PRINCIPAL = "local"
#: The principal of every client of an open API.
OPEN_PRINCIPAL = "open"
#: Headers by which a proxy says whom it relays; a request carrying one is not a local client.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip")


def configured_keys(settings: Settings) -> dict[str, ApiKey]:
    """The ``{key: ApiKey}`` map of the settings (empty when no key is set)."""
    return parse_api_keys(settings.api_keys.get_secret_value()) if settings.api_keys else {}


def warn_if_open(settings: Settings) -> None:
    """Log the start-up warning of an API with no keys."""
    if configured_keys(settings):
        return
    if settings.api_allow_open:
        logger.warning("api.open FUNCTION_RUNNER_API_ALLOW_OPEN is set; every client may read and change everything")
    else:
        logger.warning("api.no_keys FUNCTION_RUNNER_API_KEYS is not set; serving local clients only")


def is_loopback_address(host: str | None) -> bool:
    """Whether ``host`` is a loopback IP address (an address, never a name: ``testclient`` is not one)."""
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local_client(request: Request) -> bool:
    """Whether the request comes straight from this machine: a loopback transport address and no proxy."""
    if any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    return is_loopback_address(request.client.host if request.client else None)


def is_loopback_bind(host: str) -> bool:
    """Whether binding ``host`` listens on this machine only (``localhost`` or a loopback address; any
    other name could resolve to a public address, so it counts as public)."""
    return host.strip().lower() == "localhost" or is_loopback_address(host.strip().strip("[]"))


def open_bind_refusal(settings: Settings, host: str) -> str | None:
    """Why the API must not start on ``host`` with these settings, or None when it may.

    No keys on an address other clients can reach would leave every route to the address check alone;
    the operator must configure keys or say the API is meant to be open.
    """
    if configured_keys(settings) or settings.api_allow_open or is_loopback_bind(host):
        return None
    return (
        f"refusing to serve the API on {host} without keys: set FUNCTION_RUNNER_API_KEYS "
        "(or FUNCTION_RUNNER_API_ALLOW_OPEN=true for an API anyone can use)"
    )


def _grant_of(keys: dict[str, ApiKey], presented: str) -> ApiKey | None:
    found = None
    for key, grant in keys.items():  # compare with every key in constant time
        if hmac.compare_digest(key.encode(), presented.encode()):
            found = grant
    return found


def authorize(request: Request) -> None:
    """Refuse the request unless its key (or, with no keys, the client's place) allows the method; set
    ``request.state.principal``.

    Raises:
        ApiError: 401 without a valid key, 403 with a read key on a mutation, or from a client that is
            not local when no key is configured (and the API is not open).
    """
    keys: dict[str, ApiKey] = request.app.state.api_keys
    if not keys:
        if request.app.state.settings.api_allow_open:
            request.state.principal = OPEN_PRINCIPAL
            return
        if not is_local_client(request):
            raise ApiError(
                403,
                "no API keys are configured: the API serves only local clients (set FUNCTION_RUNNER_API_KEYS)",
                code="remote_forbidden",
            )
        request.state.principal = LOCAL_PRINCIPAL
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "an API key is required: send 'Authorization: Bearer <key>'", code="missing_api_key")
    grant = _grant_of(keys, token.strip())
    if grant is None:
        raise ApiError(401, "the API key is not valid", code="invalid_api_key")
    if request.method not in READ_METHODS and grant.scope != "write":
        raise ApiError(
            403, "this API key may only read; changes need a key with the write scope", code="write_scope_required"
        )
    request.state.principal = grant.principal
