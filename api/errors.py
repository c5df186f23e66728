"""The one error envelope: ``{"error": {"message", "type", "code", "param"}}`` for every error response."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from error_handling.exceptions import InvalidCursor, StorageUnavailable
from error_handling.persistence.db import UNAVAILABLE_ERRORS

T = TypeVar("T")


class ErrorBody(BaseModel):
    """What went wrong, for a client to show or act on."""

    message: str
    type: str
    code: str
    param: str | None = None


class ErrorEnvelope(BaseModel):
    """Every error response of the API."""

    error: ErrorBody


class ApiError(StarletteHTTPException):
    """An error a route raises on purpose: its status, message, stable code and the parameter at fault."""

    def __init__(self, status_code: int, message: str, *, code: str, param: str | None = None) -> None:
        super().__init__(status_code=status_code, detail=message)
        self.message = message
        self.code = code
        self.param = param


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for a route's error responses, all in the envelope."""
    return {status: {"model": ErrorEnvelope, "description": "Error, in the envelope."} for status in statuses}


def found(value: T | None, message: str, *, code: str, param: str) -> T:
    """``value``, or a 404 :class:`ApiError` with ``message`` when there is none."""
    if value is None:
        raise ApiError(404, message, code=code, param=param)
    return value


def envelope(status: int, *, message: str, type_: str, code: str, param: str | None = None) -> JSONResponse:
    """Build an error response in the envelope."""
    body = ErrorEnvelope(error=ErrorBody(message=message, type=type_, code=code, param=param))
    return JSONResponse(status_code=status, content=body.model_dump())


_TYPES = {
    400: "invalid_request",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found",
    405: "invalid_request",
    409: "conflict",
    413: "invalid_request",
    422: "invalid_request",
    429: "rate_limited",
}


#: The methods an ``Allow`` header may list.
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """The ``Allow`` header of a 405: every method some route of the app serves at this path.

    Starlette answers a 405 with the methods of the first route whose path matches only, but a path
    served by several routes (``GET`` and ``DELETE /dead-letters/{id}``) allows all of theirs. Each
    method is asked of the app's routes as they match a request, so included routers count too.
    """
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


def install_error_handlers(app: FastAPI) -> None:
    """Route every error the app can raise through the envelope."""

    @app.exception_handler(ApiError)
    async def _api(_request: Request, exc: ApiError) -> JSONResponse:
        return envelope(
            exc.status_code,
            message=exc.message,
            type_=_TYPES.get(exc.status_code, "api_error"),
            code=exc.code,
            param=exc.param,
        )

    @app.exception_handler(InvalidCursor)
    async def _cursor(_request: Request, exc: InvalidCursor) -> JSONResponse:
        return envelope(400, message=str(exc), type_=_TYPES[400], code="invalid_cursor", param="cursor")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail: Any = exc.detail
        response = envelope(
            exc.status_code,
            message=str(detail) if detail else "error",
            type_=_TYPES.get(exc.status_code, "api_error"),
            code=f"http_{exc.status_code}",
        )
        if exc.headers:  # e.g. the Allow header a 405 must carry
            response.headers.update(exc.headers)
        if exc.status_code == 405:
            response.headers["Allow"] = _allowed_methods(request)
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "header")]
        param = ".".join(location) or None
        message = f"{param}: {first.get('msg', 'invalid value')}" if param else str(first.get("msg", "invalid request"))
        return envelope(422, message=message, type_="invalid_request", code="validation_failed", param=param)

    async def _storage(_request: Request, _exc: Exception) -> JSONResponse:
        return envelope(
            503, message="the database is unavailable; try again shortly", type_="api_error", code="storage_unavailable"
        )

    unavailable: tuple[type[Exception], ...] = (StorageUnavailable, *UNAVAILABLE_ERRORS)  # type: ignore[arg-type]
    for exc_class in unavailable:
        app.add_exception_handler(exc_class, _storage)
