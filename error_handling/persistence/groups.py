"""Error groups written with their attempts, and the state rules every reader shares.

:func:`touch_groups` runs in the transaction that records failed attempts, right after the roll-up (one
upsert for all the fingerprints of the transaction, in fingerprint order: the lock order every writer
follows, so writers wait for one another instead of deadlocking). It creates a group as ``new``, moves its
last-seen time and count, turns a ``resolved`` group ``regressed`` when an attempt later than its
resolution arrives, and wakes an ``ignored`` group whose time is up.

The states that time alone changes (``new`` and ``regressed`` become ``ongoing`` after the new period, an
ignored group's time runs out) are read through :func:`effective_state`, so a reader never sees a stale
one; the dispatchers' groups role writes them down too, and sets ``escalating``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence import sanitise
from error_handling.persistence.models import DecisionKind, ErrorGroup, GroupState, UTCDateTime

__all__ = [
    "GROUPS",
    "TITLE_LENGTH",
    "count_dead_lettered",
    "count_recovered",
    "effective_state",
    "title_of",
    "touch_groups",
]

GROUPS: sa.Table = ErrorGroup.__table__  # type: ignore[assignment]
#: The longest group title kept (the exception type and message of its first attempt).
TITLE_LENGTH: Final = 500

_REGRESSES = "fr_error_groups.state = 'resolved' AND excluded.last_seen > fr_error_groups.resolved_at"
_WAKES = "fr_error_groups.state = 'ignored' AND fr_error_groups.ignore_until <= excluded.last_seen"

#: Adds a transaction's attempts to their groups (Postgres and SQLite: both have ``ON CONFLICT ... DO
#: UPDATE``; a later-than comparison by CASE, which both have, instead of GREATEST).
_TOUCH = sa.text(
    "INSERT INTO fr_error_groups (fingerprint, category, reason, exc_type, title, task_name, first_seen, "
    "last_seen, times_seen, recovered, failed_fast, dead_lettered, state, state_changed_at, regressions, "
    "ignore_until_escalating) "
    "VALUES (:fingerprint, :category, :reason, :exc_type, :title, :task_name, :first_seen, :last_seen, "
    ":times_seen, 0, :failed_fast, :dead_lettered, 'new', :first_seen, 0, false) "
    "ON CONFLICT (fingerprint) DO UPDATE SET "
    "category = excluded.category, reason = excluded.reason, "
    "first_seen = CASE WHEN excluded.first_seen < fr_error_groups.first_seen "
    "THEN excluded.first_seen ELSE fr_error_groups.first_seen END, "
    "last_seen = CASE WHEN excluded.last_seen > fr_error_groups.last_seen "
    "THEN excluded.last_seen ELSE fr_error_groups.last_seen END, "
    "times_seen = fr_error_groups.times_seen + excluded.times_seen, "
    "failed_fast = fr_error_groups.failed_fast + excluded.failed_fast, "
    "dead_lettered = fr_error_groups.dead_lettered + excluded.dead_lettered, "
    f"state = CASE WHEN {_REGRESSES} THEN 'regressed' WHEN {_WAKES} THEN 'ongoing' ELSE fr_error_groups.state END, "
    f"state_changed_at = CASE WHEN {_REGRESSES} OR {_WAKES} THEN excluded.last_seen "
    "ELSE fr_error_groups.state_changed_at END, "
    f"regressions = fr_error_groups.regressions + CASE WHEN {_REGRESSES} THEN 1 ELSE 0 END, "
    f"ignore_until = CASE WHEN {_WAKES} THEN NULL ELSE fr_error_groups.ignore_until END"
).bindparams(
    sa.bindparam("first_seen", type_=UTCDateTime()),
    sa.bindparam("last_seen", type_=UTCDateTime()),
)


def title_of(exc_type: str | None, message: str) -> str:
    """A group's title: its exception type and message, shortened to :data:`TITLE_LENGTH`."""
    text = f"{exc_type}: {message}" if exc_type else message
    return text if len(text) <= TITLE_LENGTH else text[: TITLE_LENGTH - 1] + "…"


def touch_groups(session: Session, attempts: Sequence[dict[str, Any]]) -> None:
    """Add the attempts (rows of ``fr_failed_attempts``) to their groups, creating the new ones.

    One statement for all of them, one row per fingerprint in fingerprint order; each group takes the
    category and reason of its latest attempt here, and the title and task of its first one."""
    if not attempts:
        return
    found: dict[str, dict[str, Any]] = {}
    for attempt in sorted(attempts, key=lambda a: a["failed_at"]):
        if attempt["fingerprint"] not in found:
            found[attempt["fingerprint"]] = {
                "fingerprint": attempt["fingerprint"],
                "category": attempt["category"],
                "reason": attempt["reason"],
                "exc_type": attempt["exc_type"],
                "title": title_of(attempt["exc_type"], attempt["message"]),
                "task_name": attempt["task_name"],
                "first_seen": attempt["failed_at"],
                "last_seen": attempt["failed_at"],
                "times_seen": 0,
                "failed_fast": 0,
                "dead_lettered": 0,
            }
        group = found[attempt["fingerprint"]]
        group.update(category=attempt["category"], reason=attempt["reason"], last_seen=attempt["failed_at"])
        group["times_seen"] += 1
        group["failed_fast"] += attempt["decision"] == DecisionKind.FAIL_FAST
        group["dead_lettered"] += attempt["decision"] == DecisionKind.DEAD_LETTER
    rows = [sanitise.row(GROUPS, found[key]) for key in sorted(found)]
    session.execute(_TOUCH, rows)


def effective_state(now: dt.datetime, new_period: dt.timedelta) -> sa.ColumnElement[str]:
    """The state of a group as of ``now``: its stored state with the changes time alone makes applied
    (``new`` and ``regressed`` become ``ongoing`` once ``new_period`` has passed since; an ignored group
    whose ``ignore_until`` has passed is ``ongoing``). A SQL expression over ``fr_error_groups``."""
    column = GROUPS.c
    over = now - new_period
    return sa.case(
        (sa.and_(column.state == GroupState.NEW.value, column.first_seen < over), GroupState.ONGOING.value),
        (sa.and_(column.state == GroupState.REGRESSED.value, column.state_changed_at < over), GroupState.ONGOING.value),
        (sa.and_(column.state == GroupState.IGNORED.value, column.ignore_until <= now), GroupState.ONGOING.value),
        else_=sa.cast(column.state, sa.String(32)),
    )


#: A task that succeeded after failing counts as recovered in the group of its last failed attempt.
_RECOVERED = sa.text(
    "UPDATE fr_error_groups SET recovered = recovered + 1 WHERE fingerprint = ("
    "SELECT fingerprint FROM fr_failed_attempts WHERE task_id = :task_id ORDER BY attempt DESC LIMIT 1)"
)


def count_recovered(session: Session, *, task_id: str) -> None:
    """Count ``task_id`` (which failed before and has now succeeded) as recovered in its last failure's group."""
    session.execute(_RECOVERED, {"task_id": task_id})


def count_dead_lettered(session: Session, *, fingerprint: str) -> None:
    """Count a dead letter made outside a failure (a resource wait found past its deadline) in its group."""
    session.execute(
        sa.update(GROUPS).where(GROUPS.c.fingerprint == fingerprint).values(dead_lettered=GROUPS.c.dead_lettered + 1)
    )
