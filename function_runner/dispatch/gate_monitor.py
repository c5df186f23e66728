"""The gate monitor role: evaluate each declared resource gate and release its waiting tasks.

For each gate (see :mod:`function_runner.gates`) the role runs its probe, records the gate's state, and
releases its waits oldest first, never more than its free capacity (reserving their units); the
due-runs role then publishes them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from sqlalchemy.orm import Session

from error_handling.persistence import repository
from error_handling.persistence.models import utcnow
from function_runner import gates
from function_runner.dispatch.role import InTransaction, Role
from function_runner.events import log_event

__all__ = ["GateMonitorRole"]


class GateMonitorRole(Role):
    """Checks the declared gates and releases their waits.

    Args:
        gates: the declared gates, by name.
        lease_store: gives where capacity leases are counted (built when first used).
        in_transaction: runs work in a transaction of the database.
        tasks: the app's task registry (a task's ``resources`` says how many units it takes).
        reservation: seconds a released wait's units stay reserved until its run takes them.
        interval: seconds between two checks.
        monitor: this dispatcher's name, recorded with each gate's state.
    """

    name = "gates"
    failed_event = "dispatcher.gates_failed"
    broker_errors: ClassVar[tuple[type[BaseException], ...]] = ()  # e.g. Redis down: checked again next time

    def __init__(
        self,
        *,
        gates: Mapping[str, gates.Gate],
        lease_store: Callable[[], gates.LeaseStore],
        in_transaction: InTransaction,
        tasks: Mapping[str, Any],
        reservation: float,
        interval: float,
        monitor: str,
    ) -> None:
        self.gates = gates
        self.lease_store = lease_store
        self.in_transaction = in_transaction
        self.tasks = tasks
        self.reservation = reservation
        self.interval = interval
        self.monitor = monitor

    def run_once(self) -> bool:
        """One check of every gate; never busy."""
        self.check_gates()
        return False

    def check_gates(self, *, now: dt.datetime | None = None) -> int:
        """Evaluate each gate, record its state and release its waits. Returns how many were released.

        Raises:
            StorageUnavailable: if the database is unreachable.
        """
        moment = now or utcnow()
        return sum(self._check_gate(gate, moment) for gate in self.gates.values())

    def _room(self, gate: gates.Gate, result: gates.ProbeResult | None) -> int:
        """How many waits ``gate`` may release now."""
        free = None if result is None else result.free
        room = gate.release_batch if free is None else free
        if gate.capacity is not None:
            room = gate.capacity - self.lease_store().used(gate.name)
            if free is not None:
                room = min(room, free)
        if result is not None and not result.available:
            room = 0
        return room

    def _units(self, task_name: str, gate: str) -> int:
        declared = getattr(self.tasks.get(task_name), "resources", None) or {}
        return int(declared.get(gate, 1))

    def _check_gate(self, gate: gates.Gate, now: dt.datetime) -> int:
        result = gate.check()
        room = self._room(gate, result)

        def release(session: Session) -> int:
            runs = gates.release_waits(session, gate=gate.name, limit=room, now=now)
            names = repository.task_names(session, task_ids=[run.task_id for run in runs])
            count = 0
            for run in runs:
                if gate.capacity is not None:
                    units = self._units(names.get(run.task_id, ""), gate.name)
                    holder = gates.holder_of(run.task_id, run.attempt)
                    if not self.lease_store().acquire(
                        gate.name, holder, units=units, capacity=gate.capacity, ttl=self.reservation
                    ):
                        break  # no room left for the oldest: do not let a younger one overtake it
                run.due_at = now
                run.updated_at = now
                count += 1
            gates.save_state(session, gate=gate, result=result, monitor=self.monitor, now=now)
            return count

        count = self.in_transaction(release, patience=0)
        if count:
            log_event("gate.released", gate=gate.name, released=count)
        return count
