"""The SQL of resource gates: capacity leases (``fr_resource_leases``, for setups without Redis), the
waits a monitor releases, the state it saw (``fr_resource_gates``), and a Postgres server's free
connections (for the probe)."""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import ResourceGate, ResourceLease, RunKind, RunStatus, ScheduledRun

__all__ = [
    "GateState",
    "acquire_lease",
    "free_connections",
    "lock_gate",
    "make_due",
    "pending_waits",
    "release_lease",
    "renew_lease",
    "save_gate_state",
    "used_units",
]


def lock_gate(session: Session, gate: str) -> None:
    """Serialise the lease changes of ``gate`` until the transaction ends (Postgres: an advisory lock;
    SQLite serialises its writers anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(26211, hashtext(:g))"), {"g": gate})


def _units_held(session: Session, gate: str, *conditions: sa.ColumnElement[bool]) -> int:
    total = session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(ResourceLease.units), 0)).where(ResourceLease.gate == gate, *conditions)
    ).scalar_one()
    return int(total)


def acquire_lease(
    session: Session, *, gate: str, holder: str, units: int, capacity: int, expires: dt.datetime, now: dt.datetime
) -> bool:
    """Take ``units`` of ``gate`` for ``holder`` until ``expires`` if they fit (a holder that has its
    units already keeps them, until ``expires``); expired leases are dropped first."""
    session.execute(sa.delete(ResourceLease).where(ResourceLease.gate == gate, ResourceLease.expires_at <= now))
    mine = session.get(ResourceLease, (gate, holder))
    if mine is not None:
        mine.expires_at = expires
        return True
    if _units_held(session, gate) + units > capacity:
        return False
    session.add(ResourceLease(gate=gate, holder=holder, units=units, expires_at=expires))
    return True


def renew_lease(session: Session, *, gate: str, holder: str, expires: dt.datetime, now: dt.datetime) -> bool:
    """Extend a lease to ``expires``; False if it is gone (expired)."""
    mine = session.get(ResourceLease, (gate, holder))
    if mine is None or mine.expires_at <= now:
        return False
    mine.expires_at = expires
    return True


def release_lease(session: Session, *, gate: str, holder: str) -> None:
    """Give a holder's units back."""
    session.execute(sa.delete(ResourceLease).where(ResourceLease.gate == gate, ResourceLease.holder == holder))


def used_units(session: Session, *, gate: str, now: dt.datetime) -> int:
    """Units of ``gate`` held now (expired leases not counted)."""
    return _units_held(session, gate, ResourceLease.expires_at > now)


def pending_waits(session: Session, *, gate: str, limit: int, now: dt.datetime) -> list[ScheduledRun]:
    """Lock up to ``limit`` pending waits on ``gate``, oldest first (``SKIP LOCKED``); the caller
    reserves their units and sets their ``due_at``."""
    if limit < 1:
        return []
    return list(
        session.execute(
            sa.select(ScheduledRun)
            .where(
                ScheduledRun.kind == RunKind.RESOURCE_WAIT,
                ScheduledRun.resource == gate,
                ScheduledRun.status == RunStatus.PENDING,
                ScheduledRun.due_at > now,
            )
            .order_by(ScheduledRun.created_at, ScheduledRun.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def make_due(run: ScheduledRun, *, now: dt.datetime) -> None:
    """Release a wait locked by :func:`pending_waits`: due now (the next dispatch pass publishes it)."""
    run.due_at = now
    run.updated_at = now


@dataclasses.dataclass(frozen=True)
class GateState:
    """What a monitor saw of a gate: its capacity, its probe's description, and the probe's verdict
    (None without a probe)."""

    name: str
    capacity: int | None
    probe: str | None
    available: bool | None
    detail: str | None


def save_gate_state(session: Session, state: GateState, *, monitor: str, now: dt.datetime) -> None:
    """Record what ``monitor`` saw of a gate (for the API)."""
    row = session.get(ResourceGate, state.name)
    if row is None:
        row = ResourceGate(name=state.name, updated_at=now)
        session.add(row)
    row.capacity = state.capacity
    row.probe = state.probe[:255] if state.probe is not None else None
    row.available = state.available
    row.detail = state.detail
    row.checked_at = now
    row.monitor = monitor
    row.updated_at = now


def free_connections(url: str) -> tuple[int, int]:
    """How many connections the Postgres server at ``url`` has left, and its limit (one short
    connection, not pooled)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            limit = int(conn.exec_driver_sql("SHOW max_connections").scalar_one())
            used = int(conn.exec_driver_sql("SELECT count(*) FROM pg_stat_activity").scalar_one())
    finally:
        engine.dispose()
    return limit - used, limit
