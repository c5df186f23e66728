"""Executions counted without a failure: successes per task and queue, per minute, hour and day
(``fr_task_counts``)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from error_handling.persistence.models.base import Base


class TaskCount(Base):
    """How many executions of one task from one queue succeeded in one minute, hour or day.

    One row per ``(period, bucket, task_name, queue)``: ``period`` is a
    :class:`~error_handling.persistence.rollup.Period` value (``minute``, ``hour``, ``day``), ``bucket``
    the start (UTC) of that minute, hour or day, ``queue`` the queue the task was delivered from (``''``
    when unknown). Each worker process counts its successes in memory and adds them to their minute, hour
    and day rows every ``success_flush_interval`` seconds, in one upsert
    (:func:`~error_handling.persistence.task_counts.add_successes`): no database round trip on the success
    path. Minute rows are deleted by retention after ``retention_success_minutes_days``; hour and day rows
    are kept.
    """

    __tablename__ = "fr_task_counts"

    period: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    queue: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    successes: Mapped[int] = mapped_column(sa.BigInteger)
