"""The queue check role (RabbitMQ): publish to task queues that exist with other arguments as they are,
instead of failing every publish on ``PRECONDITION_FAILED`` (see
:func:`function_runner.broker.queues.use_queues_as_found`). Runs at every pass until the broker answered
once, then never again."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from function_runner.dispatch.role import Role

__all__ = ["QueueCheckRole"]


class QueueCheckRole(Role):
    """Checks the app's task queues once.

    Args:
        check: looks at the queues and adapts the app's routing to them.
    """

    name = "queue_check"

    def __init__(self, *, check: Callable[[], Any]) -> None:
        self.check = check
        #: Whether the broker answered (the check is done).
        self.done = False

    def run_once(self) -> bool:
        """Check the queues unless that is done; never busy.

        Raises:
            kombu OperationalError, ConnectionError, OSError: the broker did not answer (checked again).
        """
        if not self.done:
            self.check()
            self.done = True
        return False
