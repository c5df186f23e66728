"""The hold-gates step: the units of capacity gates a task declares (``resources={"gpu": 1}``) are
taken before its body runs and given back when it ends.

A full gate parks the task before the body runs: ``ResourceError`` with reason
``capacity_exhausted``, which the policy turns into a wait on the gate (released by its monitor). A
unit the monitor reserved for this execution is taken over. Leases are renewed while the body runs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping

from error_handling.categories import Reason
from error_handling.exceptions import ResourceError
from function_runner.events import log_event
from function_runner.gates.leases import holder_of
from function_runner.wrapper.execution import Execution

__all__ = ["holding_gates"]


@contextlib.contextmanager
def holding_gates(execution: Execution, resources: Mapping[str, int]) -> Iterator[None]:
    """Hold ``resources`` (units by gate name; gates the app does not declare with a capacity are
    ignored) for the block.

    Raises:
        ResourceError: a gate is at capacity (nothing is held then).
    """
    if not resources:
        yield
        return
    services = execution.services
    holder = holder_of(execution.task_id, execution.attempt)
    store = services.lease_store
    held: list[str] = []
    try:
        for name, units in resources.items():
            gate = services.gates.get(name)
            if gate is None or gate.capacity is None:
                continue
            ttl = services.settings.gate_lease_seconds
            if not store.acquire(name, holder, units=units, capacity=gate.capacity, ttl=ttl):
                raise ResourceError(
                    f"resource gate {name!r} is at capacity ({gate.capacity})",
                    resource=name,
                    reason=Reason.CAPACITY_EXHAUSTED,
                )
            held.append(name)
            services.renewer.hold(name, holder)
        yield
    finally:
        for name in held:
            services.renewer.drop(name, holder)
            try:
                store.release(name, holder)
            except Exception as exc:  # noqa: BLE001 - a lease left behind expires; never the task's outcome
                log_event("gate.release_failed", level=logging.WARNING, gate=name, error=type(exc).__name__)
