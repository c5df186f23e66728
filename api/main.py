"""The FastAPI app factory. Routers per resource slot in under ``/api/v1/errors``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse

from api.auth import authorize, configured_keys, warn_if_open
from api.celery_dep import close_celery
from api.errors import error_responses, install_error_handlers
from api.guards import RequestGuard
from api.log_redaction import redact_server_logs
from api.routers import analysis, audit, breakers, compensation, dead_letters, errors, groups, health, resources
from function_runner.settings import Settings

#: Every route of the error API lives under this prefix.
API_PREFIX = "/api/v1/errors"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API app. Nothing connects until a request needs the database.

    Every route, ``/docs`` and ``/openapi.json`` included, requires an API key (see :mod:`api.auth`), or a
    local client when none is configured; every request passes :class:`api.guards.RequestGuard` first
    (allowed ``Host``, no cross-site change, a bounded body). The app cannot see the address it is bound
    to (``function-runner api`` refuses a public one without keys): with no keys it refuses every client
    that is not local, whatever server runs it.

    Raises:
        ConfigurationError: the encryption key is missing (with a database or broker on a server) or
            malformed; see :mod:`function_runner.keys`.
    """
    settings = settings or Settings()
    settings.check_encryption_key()  # a missing or malformed key refuses to start the API (never a 500 per request)
    redact_server_logs()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        close_celery(app)
        engine = getattr(app.state, "engine", None)
        if engine is not None:
            engine.dispose()

    app = FastAPI(
        lifespan=lifespan,
        title="function-runner error API",
        version="0.1.0",
        description="Inspect failed attempts and dead letters of Celery tasks run by function-runner, and replay them.",
        # served below, behind the same keys as the routes
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.api_keys = configured_keys(settings)
    warn_if_open(settings)
    install_error_handlers(app)
    app.add_middleware(
        RequestGuard,
        allowed_hosts=settings.api_allowed_hosts,
        check_host=bool(settings.api_allowed_hosts) or not app.state.api_keys,
        max_body_bytes=settings.api_max_body_bytes,
    )
    protected = [Depends(authorize)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=protected)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=protected)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    # Every protected route may refuse the caller (401, 403), or a request whose Host is not served or
    # whose body cannot be parsed at all (400), or is too large (413). Documented once here, in the
    # envelope, so routers added later get them.
    auth_errors = error_responses(400, 401, 403, 413)
    app.include_router(health.router, prefix=API_PREFIX, dependencies=protected, responses=auth_errors)
    app.include_router(dead_letters.router, prefix=API_PREFIX, dependencies=protected, responses=auth_errors)
    app.include_router(breakers.router, prefix=API_PREFIX, dependencies=protected, responses=auth_errors)
    app.include_router(resources.router, prefix=API_PREFIX, dependencies=protected, responses=auth_errors)
    app.include_router(compensation.router, prefix=API_PREFIX, dependencies=protected, responses=auth_errors)
    app.include_router(groups.router, prefix=API_PREFIX, dependencies=protected, responses=auth_errors)
    app.include_router(errors.router, prefix=API_PREFIX, dependencies=protected, responses=auth_errors)
    app.include_router(audit.router, prefix=API_PREFIX, dependencies=protected, responses=auth_errors)
    app.include_router(analysis.router, prefix=API_PREFIX, dependencies=protected, responses=auth_errors)
    return app
