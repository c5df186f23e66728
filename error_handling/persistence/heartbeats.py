"""Heartbeats: long-running processes (dispatchers) record that they are alive; health reads them."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import Heartbeat

#: How often a process beats, in seconds.
HEARTBEAT_EVERY = 5.0
#: A process not seen for this long is presumed dead, in seconds.
HEARTBEAT_STALE = 30.0


def beat(
    session: Session, *, name: str, kind: str, hostname: str, pid: int, started_at: dt.datetime, now: dt.datetime
) -> None:
    """Record that the process ``name`` is alive at ``now``."""
    row = session.get(Heartbeat, name)
    if row is None:
        session.add(Heartbeat(name=name, kind=kind, hostname=hostname, pid=pid, started_at=started_at, last_seen=now))
    else:
        row.last_seen = now


def forget(session: Session, *, name: str) -> None:
    """Remove a process that stopped cleanly."""
    session.execute(sa.delete(Heartbeat).where(Heartbeat.name == name))


def alive(session: Session, *, kind: str, now: dt.datetime, stale_after: float = HEARTBEAT_STALE) -> int:
    """How many processes of ``kind`` were seen within ``stale_after`` seconds."""
    since = now - dt.timedelta(seconds=stale_after)
    count = session.execute(
        sa.select(sa.func.count()).select_from(Heartbeat).where(Heartbeat.kind == kind, Heartbeat.last_seen >= since)
    ).scalar_one()
    return int(count)
