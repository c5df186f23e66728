"""The one Redis client of the resilience features (breakers, budgets, cool-downs, gate leases, the
failures kept while the database is down, redelivery counts), made on first use.

The shared state lives in ``redis_url``, or in the broker when the broker is Redis; with neither there
is no client and each feature keeps its state per process (or in the database).
"""

from __future__ import annotations

import threading

import redis

__all__ = ["SharedRedis"]

#: Seconds a shared-state call may take before it counts as Redis being unreachable.
SOCKET_TIMEOUT = 1.0


class SharedRedis:
    """A lazily made client of the shared-state Redis at ``url`` (None: there is none)."""

    def __init__(self, url: str | None) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None

    def client(self) -> redis.Redis | None:
        """The client, or None without a shared-state Redis (nothing connects until a command is sent)."""
        if self.url is None:
            return None
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = redis.Redis.from_url(
                        self.url, socket_timeout=SOCKET_TIMEOUT, socket_connect_timeout=SOCKET_TIMEOUT
                    )
        return self._client

    def require(self) -> redis.Redis:
        """The client.

        Raises:
            RuntimeError: no shared-state Redis (the broker is not Redis and ``redis_url`` is unset).
        """
        client = self.client()
        if client is None:
            raise RuntimeError("no Redis: the broker is not Redis and FUNCTION_RUNNER_REDIS_URL is unset")
        return client
