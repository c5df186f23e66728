"""Checks every HTTP request passes before any route sees it, as one ASGI middleware.

In order, each refusal in the error envelope with a stable code:

1. **Host** (400 ``host_not_allowed``): the ``Host`` header must name an allowed host (any port): the
   loopback names ``localhost``, ``127.0.0.1`` and ``[::1]``, plus ``FUNCTION_RUNNER_API_ALLOWED_HOSTS``.
   The check is made when no API key is configured (the client's address is then its credential, and a
   page whose name resolves to 127.0.0.1, DNS rebinding, must not reach the API) or when the operator
   listed hosts. With keys and no list, any host is accepted: every request carries a bearer key, which a
   browser never adds on its own.
2. **Cross-site requests** (403 ``cross_site_request``): a request that changes something (any method but
   ``GET``, ``HEAD``, ``OPTIONS``) must say ``Content-Type: application/json`` or carry an
   ``X-Requested-By`` header. A browser sends neither cross-site without a CORS preflight, which this API
   never approves, so a page cannot make the operator's browser replay a dead letter or open a breaker
   (a form or ``text/plain`` POST, or a ``fetch`` of a Blob without a type, is refused).
3. **Body size** (413 ``body_too_large``): the body is read whole, counted as it streams in, before the
   app sees it; a ``Content-Length`` above ``FUNCTION_RUNNER_API_MAX_BODY_BYTES`` is refused before a
   byte is read. The app then reads the buffered body.

A WebSocket handshake must name an allowed ``Host`` and, when it has one, an ``Origin`` on an allowed host
(a browser opens a WebSocket to any site without a preflight); otherwise it is closed before it is
accepted, which the server answers 403. Nothing behind a refusal runs: no route, no database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from api.auth import READ_METHODS
from api.errors import envelope

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Host names always allowed: this machine's.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
#: The header a non-browser client may send instead of a JSON content type.
REQUESTED_BY_HEADER = "x-requested-by"
#: The close code of a refused WebSocket handshake (the server answers it 403).
WS_POLICY_VIOLATION = 1008


def host_name(header: str) -> str:
    """The host of a ``Host`` header without its port, lower-case (``[::1]:8000`` gives ``[::1]``)."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[: end + 1] if end != -1 else header
    return header.partition(":")[0].rstrip(".")


def media_type(content_type: str) -> str:
    """The media type of a ``Content-Type`` value, without parameters, lower-case."""
    return content_type.partition(";")[0].strip().lower()


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}


class _BodyTooLarge(Exception):
    """The request body passed the cap."""


class RequestGuard:
    """The ASGI middleware that makes the checks above; other scopes (lifespan) pass through.

    Args:
        app: the application behind it.
        allowed_hosts: extra host names (``*`` for any); the loopback names are always allowed.
        check_host: whether to check ``Host`` at all.
        max_body_bytes: the largest body read.
    """

    def __init__(self, app: ASGIApp, *, allowed_hosts: list[str], check_host: bool, max_body_bytes: int) -> None:
        self.app = app
        self.any_host = "*" in allowed_hosts or not check_host
        self.allowed_hosts = LOOPBACK_HOSTS | {host.lower() for host in allowed_hosts}
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        refusal = self._refusal(scope["method"], headers)
        if refusal is None:
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body_bytes:
                refusal = self._too_large()
            else:
                try:
                    receive = await self._buffered(receive)
                except _BodyTooLarge:
                    refusal = self._too_large()
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake: an allowed ``Host``, and an ``Origin`` (which a browser always sends, and
        never asks permission for) naming an allowed host too; else closed before it is accepted (403)."""
        headers = _headers(scope)
        origin = headers.get("origin")
        if not self.any_host and (
            not self._host_allowed(headers.get("host", ""))
            or (origin is not None and not self._host_allowed(origin.partition("://")[2]))
        ):
            await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
            return
        await self.app(scope, receive, send)

    def _host_allowed(self, host: str) -> bool:
        return self.any_host or host_name(host) in self.allowed_hosts

    def _refusal(self, method: str, headers: dict[str, str]) -> Any:
        if not self._host_allowed(headers.get("host", "")):
            return envelope(
                400,
                message="this host name is not served: add it to FUNCTION_RUNNER_API_ALLOWED_HOSTS",
                type_="invalid_request",
                code="host_not_allowed",
                param="Host",
            )
        if method not in READ_METHODS:
            is_json = media_type(headers.get("content-type", "")) == "application/json"
            if not is_json and not headers.get(REQUESTED_BY_HEADER, "").strip():
                return envelope(
                    403,
                    message="a change must be sent with 'Content-Type: application/json' or an 'X-Requested-By' "
                    "header (cross-site requests are refused)",
                    type_="permission_error",
                    code="cross_site_request",
                    param="Content-Type",
                )
        return None

    def _too_large(self) -> Any:
        return envelope(
            413,
            message=f"the request body is larger than {self.max_body_bytes} bytes (FUNCTION_RUNNER_API_MAX_BODY_BYTES)",
            type_="invalid_request",
            code="body_too_large",
        )

    async def _buffered(self, receive: Receive) -> Receive:
        """Read the whole body, counting it; a ``receive`` that hands it over in one message, then waits on
        the connection as the original does.

        Raises:
            _BodyTooLarge: as soon as more than the cap has arrived.
        """
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                first: Message | None = message
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                first = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
                break

        async def replay() -> Message:
            nonlocal first
            if first is not None:
                message, first = first, None
                return message
            return await receive()

        return replay
