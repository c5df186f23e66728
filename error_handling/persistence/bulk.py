"""Set-based SQL machinery: many rows in one statement, on Postgres and SQLite.

    rows ──► insert_many ──► Postgres: INSERT ... SELECT FROM json_populate_recordset(:rows)
                         └─► SQLite:   the dialect's multi-row INSERT ... ON CONFLICT

The failure recording and the lost deliveries write through these helpers; nothing here knows a table.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import Base


def is_postgres(session: Session) -> bool:
    """Whether ``session`` talks to Postgres (else SQLite)."""
    return session.get_bind().dialect.name == "postgresql"


def upsert(session: Session) -> Any:
    """The dialect's ``INSERT`` with ``ON CONFLICT`` (Postgres and SQLite)."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:  # pragma: no cover - the two supported databases
        raise NotImplementedError(f"no upsert for {dialect}")
    return insert


def insert_ignoring_conflicts(session: Session, table: sa.Table, values: dict[str, Any]) -> None:
    """``INSERT ... ON CONFLICT DO NOTHING`` on Postgres and SQLite."""
    session.execute(upsert(session)(table).values(**values).on_conflict_do_nothing())


def insert_returning_ids(session: Session, table: sa.Table, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert rows of distinct tasks (one statement); return each new row's id by its task id."""
    return {task_id: int(row_id) for row_id, task_id in insert_many(session, table, rows, returning=("id", "task_id"))}


def insert_many(
    session: Session,
    table: sa.Table,
    rows: Sequence[dict[str, Any]],
    *,
    returning: tuple[str, ...] = (),
    lock_existing: bool = False,
) -> list[Any]:
    """Insert rows (every one with the same keys) in one statement; return the ``returning`` columns of
    each. ``lock_existing``: a row whose key exists already is locked and returned instead (its
    ``updated_at`` set to itself, which locks it as ``SELECT ... FOR UPDATE`` does).

    On Postgres the rows travel as one JSON document, expanded by ``json_populate_recordset``: the
    statement's text is the same whatever the number of rows, so the driver parses it once and the
    server prepares it once, and the rows are encoded by the C JSON encoder (a multi-row ``VALUES``
    list is a new statement for every batch size, and parsing it costs more than running it).
    Elsewhere: the dialect's multi-row insert.
    """
    if not rows:
        return []
    if not is_postgres(session):
        statement = upsert(session)(table)
        if lock_existing:
            key = [c for c in table.primary_key.columns]
            statement = statement.on_conflict_do_update(index_elements=key, set_={"updated_at": table.c.updated_at})
        if returning:
            statement = statement.returning(*(table.c[name] for name in returning))
        result = session.execute(statement, list(rows))
        return list(result.all()) if returning else []
    statement = _json_insert(table.name, tuple(rows[0]), returning, lock_existing)
    result = session.connection().execute(statement, {"rows": json_rows(rows)})
    return list(result.all()) if returning else []


def json_rows(rows: Sequence[dict[str, Any]]) -> str:
    """Rows as the one JSON document ``json_populate_recordset`` expands."""
    return json.dumps(rows, default=_json_value)


def _json_value(value: Any) -> Any:
    """A value the JSON encoder does not know, as ``json_populate_recordset`` reads it."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC times")
        return (value if value.tzinfo is dt.UTC else value.astimezone(dt.UTC)).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


@functools.cache
def _json_insert(table: str, columns: tuple[str, ...], returning: tuple[str, ...], lock_existing: bool) -> Any:
    """``INSERT INTO table (columns) SELECT columns FROM json_populate_recordset(...) [ON CONFLICT]
    [RETURNING]``."""
    names = ", ".join(columns)
    sql = (
        f"INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, CAST(:rows AS json))"
    )
    if lock_existing:
        key = ", ".join(c.name for c in Base.metadata.tables[table].primary_key.columns)
        sql += f" ON CONFLICT ({key}) DO UPDATE SET updated_at = {table}.updated_at"
    if returning:
        sql += f" RETURNING {', '.join(returning)}"
    return sa.text(sql)
