"""Alembic environment for function-runner.

The URL is, in order: ``config.attributes["connection"]`` (a connection handed in by code),
the ``sqlalchemy.url`` main option (set by :mod:`function_runner.migrate`), then the settings
(``FUNCTION_RUNNER_DATABASE_URL`` or the embedded SQLite default).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from error_handling.persistence.db import VERSION_TABLE, make_engine
from error_handling.persistence.models import Base

config = context.config
target_metadata = Base.metadata
version_table = config.get_main_option("version_table") or VERSION_TABLE


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from function_runner.settings import Settings

    return Settings().effective_database_url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=version_table,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it."""
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, version_table=version_table)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the migrations against a live database."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
