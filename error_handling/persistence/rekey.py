"""Re-sealing stored secrets under the newest key, table by table, in short batches.

Every column that holds sealed values (:data:`SEALED_COLUMNS`) is walked in primary-key order, a
batch per transaction (:func:`reseal_batch`): the rows of the batch that hold a sealed value are
locked (``FOR UPDATE``, in key order like every writer), each sealed value not opened by the first key
is re-encrypted with it (:func:`~error_handling.sealing.reseal_secrets`), and only rows that changed
are written. A value already sealed with the first key is left alone, so the walk is resumable: run it
again after an interruption and it only does what is left. A value no configured key opens is kept as
it is and reported (its row's id), never dropped.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import CompensationStep, DeadLetterRecord, TaskRecord
from error_handling.sealing import SEALED_KEY, Sealer, reseal_secrets

__all__ = ["SEALED_COLUMNS", "BatchOutcome", "SealedColumns", "reseal_batch"]


@dataclasses.dataclass(frozen=True)
class SealedColumns:
    """A table whose JSON columns hold sealed values.

    Attributes:
        table: the table.
        key: its primary-key column (the walk's order and position).
        columns: the JSON columns that may hold sealed values.
    """

    table: sa.Table
    key: sa.Column[Any]
    columns: tuple[sa.Column[Any], ...]

    @property
    def name(self) -> str:
        """The table's name."""
        return self.table.name


def _sealed(table: Any, key: str, *columns: str) -> SealedColumns:
    t: sa.Table = table.__table__
    return SealedColumns(t, t.c[key], tuple(t.c[name] for name in columns))


#: Every table and column that holds sealed values: task payloads, dead letters, compensation steps.
SEALED_COLUMNS: tuple[SealedColumns, ...] = (
    _sealed(TaskRecord, "task_id", "args", "kwargs", "headers"),
    _sealed(DeadLetterRecord, "id", "args", "kwargs", "headers"),
    _sealed(CompensationStep, "id", "undo", "data"),
)


@dataclasses.dataclass
class ResealCounts:
    """What re-sealing a table saw and did.

    Attributes:
        rows: rows (or kept failures) holding sealed values.
        rows_changed: rows written (at least one value re-sealed).
        rotated: values re-sealed with the first key.
        current: values already sealed with the first key.
        unopened: values no configured key opens (kept as they are).
        unopened_ids: the ids of the rows holding them.
    """

    rows: int = 0
    rows_changed: int = 0
    rotated: int = 0
    current: int = 0
    unopened: int = 0
    unopened_ids: list[str] = dataclasses.field(default_factory=list)

    def add(self, other: ResealCounts) -> None:
        """Add ``other``'s counts and ids to these."""
        for field in dataclasses.fields(ResealCounts):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))


@dataclasses.dataclass
class BatchOutcome(ResealCounts):
    """What one batch of :func:`reseal_batch` saw and did (``unopened_ids``: the rows' primary keys, as
    text).

    Attributes:
        last_key: the primary key of the batch's last row (the next batch starts after it); None when
            the table has no more rows holding sealed values.
    """

    last_key: Any = None


def _holds_sealed(column: sa.Column[Any]) -> sa.ColumnElement[bool]:
    # the JSON text of a sealed marker; a cheap filter, the walk of each row decides
    return sa.cast(column, sa.Text).contains(f'"{SEALED_KEY}"')


def reseal_batch(
    session: Session,
    *,
    target: SealedColumns,
    sealer: Sealer,
    after: Any = None,
    limit: int,
    dry_run: bool = False,
) -> BatchOutcome:
    """Re-seal the sealed values of up to ``limit`` rows of ``target`` after the key ``after`` (in the
    caller's transaction, one per batch). With ``dry_run`` nothing is locked or written: the outcome
    says what a real run would do."""
    query = (
        sa.select(target.key, *target.columns)
        .where(sa.or_(*(_holds_sealed(column) for column in target.columns)))
        .order_by(target.key)
        .limit(limit)
    )
    if after is not None:
        query = query.where(target.key > after)
    if not dry_run:
        query = query.with_for_update()
    outcome = BatchOutcome()
    for row in session.execute(query).all():
        key, *values = row
        outcome.last_key = key
        outcome.rows += 1
        changes: dict[str, Any] = {}
        unopened = 0
        for column, value in zip(target.columns, values, strict=True):
            resealed = reseal_secrets(value, sealer=sealer)
            outcome.rotated += resealed.rotated
            outcome.current += resealed.current
            unopened += resealed.unopened
            if resealed.rotated:
                changes[column.name] = resealed.value
        if unopened:
            outcome.unopened += unopened
            outcome.unopened_ids.append(str(key))
        if changes:
            outcome.rows_changed += 1
            if not dry_run:
                session.execute(sa.update(target.table).where(target.key == key).values(**changes))
    return outcome
