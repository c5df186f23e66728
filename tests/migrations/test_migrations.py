"""Migrations go up and down on Postgres and SQLite, and the migrated schema equals the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from error_handling.persistence.db import make_engine
from error_handling.persistence.models import Base
from function_runner.migrate import VERSION_TABLE, downgrade, upgrade
from tests.support import services


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    services.require("PostgreSQL", services.PG_HOST, services.PG_PORT)
    with services.temporary_database() as url:
        yield url


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_the_models(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    expected = set(Base.metadata.tables)
    upgrade(database_url)
    assert expected <= _tables(database_url)
    downgrade(database_url)
    assert not (expected & _tables(database_url))
    upgrade(database_url)
    assert expected <= _tables(database_url)
