"""The broker dead-letters role (RabbitMQ): move what the broker dead-lettered itself into the
dead-letter queue of the system of record (see :mod:`function_runner.broker.queues`)."""

from __future__ import annotations

from collections.abc import Callable

from function_runner.dispatch.role import Role
from function_runner.events import log_event

__all__ = ["COLLECT_EVERY", "BrokerDeadLettersRole"]

#: Seconds between two collections of the broker's own dead letters.
COLLECT_EVERY = 5.0


class BrokerDeadLettersRole(Role):
    """Collects the broker's own dead letters.

    Args:
        collect: moves them into the dead-letter queue; returns how many were recorded (0 on other brokers).
    """

    name = "broker_dead_letters"
    interval = COLLECT_EVERY

    def __init__(self, *, collect: Callable[[], int]) -> None:
        self.collect = collect

    def run_once(self) -> bool:
        """One collection; never busy."""
        moved = self.collect()
        if moved:
            log_event("dispatcher.broker_dead_letters", recorded=moved)
        return False
