"""The liveness role (Redis broker): put back in their queues the messages held by worker consumers whose
heartbeat lapsed (killed, OOM-killed, frozen); see :mod:`function_runner.broker.liveness`. Safe with any
number of dispatchers."""

from __future__ import annotations

from typing import Any, ClassVar

from kombu.transport import redis as kombu_redis

from function_runner.broker import liveness
from function_runner.dispatch.role import Role
from function_runner.events import log_event

__all__ = ["LIVENESS_CHECK_EVERY", "LapsedConsumersRole"]

#: Seconds between two looks for lapsed worker consumers.
LIVENESS_CHECK_EVERY = 1.0


class LapsedConsumersRole(Role):
    """Restores the messages of lapsed worker consumers.

    Args:
        connections: the app's broker connection pool (``app.pool``).
        timeout: the workers' ``liveness_timeout`` when the transport does not say its own.
    """

    name = "liveness"
    interval = LIVENESS_CHECK_EVERY
    failed_event = "dispatcher.liveness_failed"
    broker_errors: ClassVar[tuple[type[BaseException], ...]] = ()  # Redis or the broker: the next look tries again

    def __init__(self, *, connections: Any, timeout: float) -> None:
        self.connections = connections
        self.timeout = timeout

    def run_once(self) -> bool:
        """One look; never busy."""
        result = self.restore_lapsed()
        if result is not None and result.lapsed:
            log_event("dispatcher.lapsed_restored", consumers=len(result.lapsed), restored=result.restored)
        return False

    def restore_lapsed(self) -> liveness.RestoreResult | None:
        """Restore what lapsed consumers held. None when the broker is not Redis.

        Raises:
            redis.RedisError, kombu OperationalError: the broker failed (tried again next time).
        """
        with self.connections.acquire(block=True) as connection:
            channel = connection.default_channel
            if not isinstance(channel, kombu_redis.Channel):
                return None
            timeout = float(getattr(channel, "liveness_timeout", self.timeout))
            return liveness.restore_lapsed(channel, timeout=timeout or self.timeout)
