"""The gate monitor's check (a role of every dispatcher): evaluate a gate's probe, record what it saw,
and release the tasks waiting on it, oldest first, never more than there is room for::

    probe ──▶ room = min(capacity - used, probe's free units) (0 if unavailable)
          ──▶ ONE transaction: lock up to `room` waits (SKIP LOCKED), reserve each one's units,
              make them due now, save the gate's state
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping

from sqlalchemy.orm import Session

from error_handling.persistence import gates as persistence
from error_handling.persistence import task_records
from error_handling.persistence.models import ScheduledRun
from function_runner.events import log_event
from function_runner.gates.gate import Gate
from function_runner.gates.leases import LeaseStore, holder_of
from function_runner.gates.probes import ProbeResult

__all__ = ["GateMonitor"]


@dataclasses.dataclass(frozen=True)
class GateMonitor:
    """Checks gates for one dispatcher.

    Attributes:
        name: the monitor's name, recorded with each gate's state.
        store: where capacity leases are counted.
        in_transaction: runs work in one transaction, once (no retry).
        resources_of: the units a task (by name) declares per gate.
        reservation: seconds a released task's units are reserved for it.
    """

    name: str
    store: LeaseStore
    in_transaction: Callable[[Callable[[Session], int]], int]
    resources_of: Callable[[str], Mapping[str, int]]
    reservation: float

    def room(self, gate: Gate, result: ProbeResult | None) -> int:
        """How many waits on ``gate`` may be released now."""
        if result is not None and not result.available:
            return 0
        room = gate.release_batch if result is None or result.free is None else result.free
        if gate.capacity is not None:
            room = gate.capacity - self.store.used(gate.name)
            if result is not None and result.free is not None:
                room = min(room, result.free)
        return room

    def check(self, gate: Gate, now: dt.datetime) -> int:
        """Check one gate and release what fits; how many waits were released.

        Raises:
            StorageUnavailable: if the database is unreachable.
        """
        result = gate.check()
        room = self.room(gate, result)
        state = persistence.GateState(
            name=gate.name,
            capacity=gate.capacity,
            probe=gate.probe.describe() if gate.probe is not None else None,
            available=result.available if result is not None else None,
            detail=result.detail if result is not None else None,
        )

        def release(session: Session) -> int:
            runs = persistence.pending_waits(session, gate=gate.name, limit=room, now=now)
            count = self._reserve(session, gate, runs, now)
            persistence.save_gate_state(session, state, monitor=self.name, now=now)
            return count

        count = self.in_transaction(release)
        if count:
            log_event("gate.released", gate=gate.name, released=count)
        return count

    def _reserve(self, session: Session, gate: Gate, runs: list[ScheduledRun], now: dt.datetime) -> int:
        """Reserve the units of ``runs`` in order and make them due; stop at the first that does not fit
        (a younger wait never overtakes an older one)."""
        names = task_records.task_names(session, task_ids=[run.task_id for run in runs])
        count = 0
        for run in runs:
            if gate.capacity is not None:
                units = int(self.resources_of(names.get(run.task_id, "")).get(gate.name, 1))
                holder = holder_of(run.task_id, run.attempt)
                if not self.store.acquire(gate.name, holder, units=units, capacity=gate.capacity, ttl=self.reservation):
                    break
            persistence.make_due(run, now=now)
            count += 1
        return count
