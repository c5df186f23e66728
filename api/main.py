"""The FastAPI app factory. Routers per resource slot in under ``/api/v1/errors``."""

from __future__ import annotations

from fastapi import FastAPI

from api.errors import install_error_handlers
from api.routers import health
from function_runner.settings import Settings

#: Every route of the error API lives under this prefix.
API_PREFIX = "/api/v1/errors"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API app. Nothing connects until a request needs the database."""
    app = FastAPI(title="function-runner error API", version="0.1.0")
    app.state.settings = settings or Settings()
    install_error_handlers(app)
    app.include_router(health.router, prefix=API_PREFIX)
    return app
