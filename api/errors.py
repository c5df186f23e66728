"""The one error envelope: ``{"error": {"message", "type", "code", "param"}}`` for every error response."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence.db import UNAVAILABLE_ERRORS


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
    422: "invalid_request",
    429: "rate_limited",
}


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

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail: Any = exc.detail
        response = envelope(
            exc.status_code,
            message=str(detail) if detail else "error",
            type_=_TYPES.get(exc.status_code, "api_error"),
            code=f"http_{exc.status_code}",
        )
        if exc.headers:  # e.g. the Allow header a 405 must carry
            response.headers.update(exc.headers)
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
