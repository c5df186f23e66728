"""Retry budgets: a cluster-wide token bucket per service, so that retries cannot multiply the load on
a service that is failing (the rule of gRPC's retry throttling).

Each service's bucket holds up to ``max_tokens`` (10) and starts full. A failed call of the service
takes one token, a successful call gives back ``token_ratio`` (0.1). A retry is allowed only while more
than half the bucket is left. At 100 % failure the bucket empties after a handful of failures and no
more retries are made, so retries add almost nothing to the load; while calls mostly succeed, retries
flow as usual. A failure refused a retry goes to its next route: a dead letter
``retry_budget_exhausted``, recorded like any other.

A task opts in with ``retry_budget="openai"`` (or ``breaker="openai"``, which uses the same service
name). The bucket lives in Redis (one atomic script) when the broker is Redis, else per process.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from typing import Any

import redis

from function_runner.events import log_event
from function_runner.resilience.shared_redis import SharedRedis

__all__ = ["BudgetConfig", "RetryBudgets"]


@dataclasses.dataclass(frozen=True)
class BudgetConfig:
    """The bucket of each service (gRPC's defaults)."""

    max_tokens: float = 10.0
    token_ratio: float = 0.1


_CHANGE = """
local tokens = tonumber(redis.call('GET', KEYS[1]) or ARGV[2])
tokens = math.max(0, math.min(tonumber(ARGV[2]), tokens + tonumber(ARGV[1])))
redis.call('SET', KEYS[1], tostring(tokens), 'EX', 86400)
return tostring(tokens)
"""


class RetryBudgets:
    """The retry budgets of one app (``runtime.budgets``)."""

    def __init__(
        self, shared_redis: SharedRedis, config: BudgetConfig | None = None, *, prefix: str = "fr:budget:"
    ) -> None:
        self.shared_redis = shared_redis
        self.config = config or BudgetConfig()
        self.prefix = prefix
        self._lock = threading.Lock()
        self._local: dict[str, float] = {}
        self._script: Any = None

    def _change(self, service: str, delta: float) -> float:
        client = self.shared_redis.client()
        if client is not None:
            try:
                if self._script is None:
                    self._script = client.register_script(_CHANGE)
                return float(self._script(keys=[self.prefix + service], args=[delta, self.config.max_tokens]))
            except redis.RedisError as exc:
                log_event("budget.degraded", level=logging.WARNING, service=service, error=type(exc).__name__)
        with self._lock:
            tokens = self._local.get(service, self.config.max_tokens)
            tokens = max(0.0, min(self.config.max_tokens, tokens + delta))
            self._local[service] = tokens
            return tokens

    def on_success(self, service: str) -> None:
        """A call of the service succeeded: give back part of a token."""
        self._change(service, self.config.token_ratio)

    def on_failure(self, service: str) -> bool:
        """A call of the service failed: take a token; whether a retry is still allowed."""
        tokens = self._change(service, -1.0)
        allowed = tokens > self.config.max_tokens / 2
        if not allowed:
            log_event("budget.exhausted", level=logging.WARNING, service=service, tokens=round(tokens, 2))
        return allowed
