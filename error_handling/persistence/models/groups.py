"""Error groups (``fr_error_groups``): one row per fingerprint, the same error across tasks, with the state
an operator gives it (resolved, ignored) and the state its traffic gives it (new, ongoing, escalating,
regressed)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from error_handling.analytics.inputs import GroupState
from error_handling.persistence.models.base import Base, enum_type


class ErrorGroup(Base):
    """One fingerprint's group: when it was first and last seen, how often, and its state.

    Written in the transaction that records its attempts (one upsert per fingerprint, after the roll-up's
    rows, in fingerprint order: :func:`~error_handling.persistence.groups.touch_groups`); counts per
    window, tasks and queues come from the roll-up (``fr_error_counts``), samples from the attempts.
    """

    __tablename__ = "fr_error_groups"
    __table_args__ = (
        sa.Index("ix_fr_error_groups_last_seen", "last_seen"),
        sa.Index("ix_fr_error_groups_first_seen", "first_seen"),
        sa.Index("ix_fr_error_groups_state_last_seen", "state", "last_seen"),
    )

    fingerprint: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    #: The category and reason of its latest attempt.
    category: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.String(64))
    #: The exception type and (redacted, shortened) message of its first attempt: the group's title.
    exc_type: Mapped[str | None] = mapped_column(sa.String(255))
    title: Mapped[str] = mapped_column(sa.String(500))
    #: The task of its first attempt.
    task_name: Mapped[str] = mapped_column(sa.String(255))
    first_seen: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]
    #: Every attempt ever recorded in the group (never decreases, retention included).
    times_seen: Mapped[int] = mapped_column(sa.BigInteger)
    #: Tasks whose last failure was in this group and that then succeeded.
    recovered: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Attempts of the group that failed fast (validation: the task ended there).
    failed_fast: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Attempts of the group that were dead-lettered (the task ended there).
    dead_lettered: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    state: Mapped[GroupState] = mapped_column(enum_type(GroupState, "fr_group_state"))
    state_changed_at: Mapped[dt.datetime]
    #: When an operator last resolved it.
    resolved_at: Mapped[dt.datetime | None]
    #: How many times it came back after being resolved.
    regressions: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: An ignored group becomes ``ongoing`` again at this time (None: not until a time).
    ignore_until: Mapped[dt.datetime | None]
    #: An ignored group becomes ``escalating`` when its volume escalates.
    ignore_until_escalating: Mapped[bool] = mapped_column(sa.Boolean, default=False)
