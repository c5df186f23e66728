"""Reading stored rows into plain values: a frozen dataclass from a row's same-named attributes, and
every row of a model whose column equals a value, in a given order."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

__all__ = ["copy_fields", "rows_where"]

T = TypeVar("T")


def copy_fields(cls: type[T], source: object, **overrides: Any) -> T:
    """The dataclass ``cls`` built from the same-named attributes of ``source``, but for ``overrides``."""
    names = (field.name for field in dataclasses.fields(cls))  # type: ignore[arg-type]
    values = {name: getattr(source, name) for name in names if name not in overrides}
    return cls(**values, **overrides)


def rows_where(session: Session, column: Any, value: Any, *, order_by: Any) -> Sequence[Any]:
    """Every row of ``column``'s model whose ``column`` equals ``value``, ordered by ``order_by``."""
    model = column.class_
    return session.execute(sa.select(model).where(column == value).order_by(order_by)).scalars().all()
