"""Dependencies of the API's routes: settings, a database session, the caller's principal (for the
audit), and the Celery app for publishing.

Nothing connects at import time: the engine is created on the first request that needs it and kept on
``app.state``. Routes take them through the ``SettingsDep`` / ``SessionDep`` aliases.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from error_handling.persistence.db import make_engine, make_sessionmaker
from function_runner.settings import Settings


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    settings: Settings = request.app.state.settings
    return settings


def get_engine(request: Request) -> Engine:
    """The app's engine (created on first use)."""
    state = request.app.state
    engine: Engine | None = getattr(state, "engine", None)
    if engine is None:
        engine = state.engine = make_engine(state.settings.effective_database_url)
        state.sessions = make_sessionmaker(engine)
    return engine


def get_session(request: Request) -> Iterator[Session]:
    """A session for one request; a route that writes commits it. A database that cannot be reached is
    answered 503 in the error envelope (see :mod:`api.errors`)."""
    get_engine(request)
    sessions: sessionmaker[Session] = request.app.state.sessions
    with sessions() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_session)]


def get_principal(request: Request) -> str:
    """Who makes the request, for the audit: the API key's name (``key-<sha256 prefix>`` for an unnamed
    key), or ``local`` for a loopback client of an API without keys (set by :func:`api.auth.authorize`
    as ``request.state.principal``)."""
    principal = getattr(request.state, "principal", None)
    return str(principal) if principal else "local"


PrincipalDep = Annotated[str, Depends(get_principal)]
