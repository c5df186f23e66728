"""Fixtures of the unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from error_handling.persistence.db import make_engine, make_sessionmaker
from function_runner.migrate import upgrade


@pytest.fixture(params=["sqlite", "postgres"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on an empty, migrated database: SQLite, then a real Postgres."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'unit.sqlite3'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()
