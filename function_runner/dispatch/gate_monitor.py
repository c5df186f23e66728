"""The gate monitor role: evaluate each declared resource gate and release its waiting tasks.

Each pass runs :class:`~function_runner.gates.monitor.GateMonitor` over every declared gate: its probe,
its recorded state, and its waits released oldest first, never more than its free capacity (their
units reserved); the due-runs role then publishes them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from error_handling.persistence.models import utcnow
from function_runner.dispatch.role import Role
from function_runner.gates.gate import Gate
from function_runner.gates.leases import LeaseStore
from function_runner.gates.monitor import GateMonitor
from function_runner.services import InTransaction

__all__ = ["GateMonitorRole"]


@dataclasses.dataclass(kw_only=True, eq=False)
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

    gates: Mapping[str, Gate]
    lease_store: Callable[[], LeaseStore]
    in_transaction: InTransaction
    tasks: Mapping[str, Any]
    reservation: float
    interval: float
    monitor: str

    def run_once(self) -> bool:
        """One check of every gate; never busy."""
        self.check_gates()
        return False

    def check_gates(self, *, now: dt.datetime | None = None) -> int:
        """Evaluate each gate, record its state and release its waits. Returns how many were released.

        Raises:
            StorageUnavailable: if the database is unreachable.
        """
        if not self.gates:
            return 0
        moment = now or utcnow()
        checker = GateMonitor(
            name=self.monitor,
            store=self.lease_store(),
            in_transaction=lambda work: self.in_transaction(work, patience=0),
            resources_of=self._resources_of,
            reservation=self.reservation,
        )
        return sum(checker.check(gate, moment) for gate in self.gates.values())

    def _resources_of(self, task_name: str) -> Mapping[str, int]:
        return getattr(self.tasks.get(task_name), "resources", None) or {}
