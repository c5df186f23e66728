"""Engines and transactions for the system of record (Postgres, or SQLite for the embedded default).

Nothing connects at import time: :func:`make_engine` is called by whoever owns the settings.
Database errors that mean "the database is not reachable right now" are translated at this boundary
into :class:`~error_handling.exceptions.StorageUnavailable`, so callers can leave the message unacked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from error_handling.exceptions import ConfigurationError, StorageUnavailable

#: The table that records which migration a database is at (Alembic's version table).
VERSION_TABLE = "fr_alembic_version"
#: How long SQLite waits for another writer before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str) -> str:
    """Pick the psycopg 3 driver for plain ``postgresql://`` / ``postgres://`` URLs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``url`` with the settings function-runner relies on.

    SQLite gets WAL journaling, a busy timeout and ``BEGIN IMMEDIATE`` transactions (writers queue up
    instead of failing on lock upgrades, which also makes one dispatcher at a time the rule there).

    Raises:
        ConfigurationError: if the URL cannot be parsed or names an unsupported database.
    """
    try:
        parsed = sa.engine.make_url(normalise_url(url))
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError(f"invalid database URL: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        kwargs.setdefault("connect_args", {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        engine = sa.create_engine(parsed, **kwargs)
        _configure_sqlite(engine)
        return engine
    if backend == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("connect_args", {"connect_timeout": 5})
        return sa.create_engine(parsed, **kwargs)
    raise ConfigurationError(f"unsupported database {backend!r}: use postgresql or sqlite")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Return a session factory whose objects stay readable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


#: Errors that mean the database could not be reached or the connection broke.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,
)


@contextlib.contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Run a block in one transaction: commit on success, roll back on error.

    Raises:
        StorageUnavailable: if the database could not be reached or the connection broke.
    """
    try:
        with factory() as session, session.begin():
            yield session
    except UNAVAILABLE_ERRORS as exc:
        raise StorageUnavailable(
            f"database unavailable: {type(exc.orig if hasattr(exc, 'orig') else exc).__name__}"
        ) from exc
