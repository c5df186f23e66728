"""Circuit breakers shared by every worker: one state per service in Redis, changed only by atomic
scripts; a per-process breaker with the same rules when Redis cannot be reached.

States: ``closed`` (calls flow; outcomes are counted in per-second buckets over a sliding window),
``open`` (calls are refused until ``open_seconds`` have passed: the caller gets the time left as a retry
hint), ``half_open`` (exactly one call, the probe, is admitted cluster-wide under a lease that expires if
its holder dies; its success closes the breaker, its failure opens it again).

The breaker opens when, over the last ``window`` seconds, at least ``min_calls`` calls were made and the
share of failures reached ``failure_ratio`` (defaults from DESIGN.md: 0.5 over 30 s with at least 10
calls, open 30 s). Every transition is returned to the caller exactly once (the script that made it), so
it can be recorded as one row.

This module holds the rules and their two stores; wiring them into tasks, the API and the
``circuit_breaker_events`` table is done by their callers.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from error_handling.exceptions import ConfigurationError

__all__ = ["Admission", "BreakerCause", "BreakerConfig", "BreakerState", "LocalBreaker", "RedisBreaker", "Transition"]


class BreakerState(enum.StrEnum):
    """The state of a breaker (stored in Redis and in ``circuit_breaker_events``)."""

    #: Calls flow; their outcomes are counted.
    CLOSED = "closed"
    #: Calls are refused until the open time has passed.
    OPEN = "open"
    #: One call, the probe, is admitted cluster-wide; its outcome closes or re-opens the breaker.
    HALF_OPEN = "half_open"


class BreakerCause(enum.StrEnum):
    """Why a breaker changed state (the ``cause`` of ``circuit_breaker_events``)."""

    #: The share of failures over the window reached the ratio: closed to open.
    FAILURE_RATIO = "failure_ratio"
    #: The open time passed: open to half-open.
    TIMEOUT = "timeout"
    #: The half-open probe's outcome: half-open to closed or open.
    PROBE = "probe"
    #: A transition of a process's own breaker, while Redis could not be reached.
    LOCAL = "local"
    #: An operator closed the breaker.
    RESET = "reset"
    #: An operator opened the breaker for a while.
    FORCED_OPEN = "forced_open"


@dataclasses.dataclass(frozen=True)
class BreakerConfig:
    """When a breaker opens and for how long (DESIGN.md defaults)."""

    failure_ratio: float = 0.5
    window: float = 30.0
    min_calls: int = 10
    open_seconds: float = 30.0
    #: How long the half-open probe's holder has before another caller may probe instead.
    probe_lease: float = 30.0

    def __post_init__(self) -> None:
        if not 0 < self.failure_ratio <= 1:
            raise ConfigurationError("failure_ratio must be in (0, 1]")
        if self.window <= 0 or self.open_seconds <= 0 or self.probe_lease <= 0:
            raise ConfigurationError("window, open_seconds and probe_lease must be positive")
        if self.min_calls < 1:
            raise ConfigurationError("min_calls must be at least 1")


@dataclasses.dataclass(frozen=True)
class Transition:
    """A change of state, seen by exactly one caller."""

    service: str
    from_state: BreakerState
    to_state: BreakerState
    calls: int = 0
    failures: int = 0


@dataclasses.dataclass(frozen=True)
class Admission:
    """Whether a call may go ahead.

    Attributes:
        allowed: the call may be made.
        state: the breaker's state as seen by this decision.
        retry_after: when refused, seconds until a call may be admitted again.
        probe: the call is the half-open probe (report its outcome with ``probe=True``).
        transition: the transition this decision made (``open`` → ``half_open``), if any.
    """

    allowed: bool
    state: BreakerState
    retry_after: float = 0.0
    probe: bool = False
    transition: Transition | None = None


class LocalBreaker:
    """The breaker's rules in this process only (tests, and the fallback when Redis is unreachable)."""

    def __init__(self, service: str, config: BreakerConfig, *, clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self.config = config
        self.clock = clock
        self._lock = threading.Lock()
        self._state: BreakerState = BreakerState.CLOSED
        self._until = 0.0
        self._probe: str | None = None
        self._probe_until = 0.0
        self._buckets: dict[int, list[int]] = {}  # second -> [calls, failures]

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker past its time still reads ``open`` until a call comes)."""
        return self._state

    def allow(self, token: str) -> Admission:
        """Decide whether the call of ``token`` (unique per call) may go ahead."""
        with self._lock:
            now = self.clock()
            transition = None
            if self._state == BreakerState.CLOSED:
                return Admission(True, BreakerState.CLOSED)
            if self._state == BreakerState.OPEN:
                if now < self._until:
                    return Admission(False, BreakerState.OPEN, retry_after=self._until - now)
                self._state = BreakerState.HALF_OPEN
                self._probe = None
                transition = Transition(self.service, BreakerState.OPEN, BreakerState.HALF_OPEN)
            if self._probe is None or now >= self._probe_until:
                self._probe, self._probe_until = token, now + self.config.probe_lease
                return Admission(True, BreakerState.HALF_OPEN, probe=True, transition=transition)
            return Admission(False, BreakerState.HALF_OPEN, retry_after=self._probe_until - now, transition=transition)

    def record(self, token: str, *, success: bool) -> Transition | None:
        """Report the outcome of an admitted call; returns the transition it caused, if any."""
        with self._lock:
            now = self.clock()
            if self._state == BreakerState.HALF_OPEN:
                if self._probe != token:
                    return None
                self._probe = None
                if success:
                    self._state, self._buckets = BreakerState.CLOSED, {}
                    return Transition(self.service, BreakerState.HALF_OPEN, BreakerState.CLOSED)
                self._state, self._until = BreakerState.OPEN, now + self.config.open_seconds
                return Transition(self.service, BreakerState.HALF_OPEN, BreakerState.OPEN)
            if self._state == BreakerState.OPEN:
                return None
            second = math.floor(now)
            bucket = self._buckets.setdefault(second, [0, 0])
            bucket[0] += 1
            bucket[1] += 0 if success else 1
            horizon = now - self.config.window
            for old in [s for s in self._buckets if s <= horizon]:
                del self._buckets[old]
            calls = sum(b[0] for b in self._buckets.values())
            failures = sum(b[1] for b in self._buckets.values())
            if not success and calls >= self.config.min_calls and failures / calls >= self.config.failure_ratio:
                self._state, self._until, self._buckets = BreakerState.OPEN, now + self.config.open_seconds, {}
                return Transition(self.service, BreakerState.CLOSED, BreakerState.OPEN, calls=calls, failures=failures)
            return None


_ALLOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return {1, 'closed', '0', 0, ''} end
local transition = ''
if state == 'open' then
  local until_ = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
  if now < until_ then return {0, 'open', tostring(until_ - now), 0, ''} end
  redis.call('HSET', KEYS[1], 'state', 'half_open')
  redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
  transition = 'open>half_open'
end
local holder = redis.call('HGET', KEYS[1], 'probe')
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if (not holder) or now >= probe_until then
  redis.call('HSET', KEYS[1], 'probe', ARGV[1], 'probe_until', tostring(now + tonumber(ARGV[2])))
  return {1, 'half_open', '0', 1, transition}
end
return {0, 'half_open', tostring(probe_until - now), 0, transition}
"""

_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local ok = ARGV[2] == '1'
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'half_open' then
  if redis.call('HGET', KEYS[1], 'probe') ~= ARGV[1] then return {'', 0, 0} end
  redis.call('HDEL', KEYS[1], 'probe', 'probe_until')
  if ok then
    redis.call('HSET', KEYS[1], 'state', 'closed')
    redis.call('DEL', KEYS[2])
    return {'half_open>closed', 0, 0}
  end
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', tostring(now + tonumber(ARGV[6])))
  return {'half_open>open', 0, 0}
end
if state == 'open' then return {'', 0, 0} end
local second = math.floor(now)
redis.call('HINCRBY', KEYS[2], 'c:' .. second, 1)
if not ok then redis.call('HINCRBY', KEYS[2], 'f:' .. second, 1) end
redis.call('EXPIRE', KEYS[2], math.ceil(tonumber(ARGV[3])) + 60)
local horizon = now - tonumber(ARGV[3])
local calls, failures = 0, 0
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local field, value = all[i], tonumber(all[i + 1])
  if tonumber(string.sub(field, 3)) <= horizon then
    redis.call('HDEL', KEYS[2], field)
  elseif string.sub(field, 1, 1) == 'c' then
    calls = calls + value
  else
    failures = failures + value
  end
end
if (not ok) and calls >= tonumber(ARGV[4]) and failures / calls >= tonumber(ARGV[5]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', tostring(now + tonumber(ARGV[6])))
  redis.call('DEL', KEYS[2])
  return {'closed>open', calls, failures}
end
return {'', calls, failures}
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _transition(service: str, spec: Any, calls: int = 0, failures: int = 0) -> Transition | None:
    text = _text(spec)
    if not text:
        return None
    before, _, after = text.partition(">")
    return Transition(service, BreakerState(before), BreakerState(after), calls=calls, failures=failures)


class RedisBreaker:
    """The breaker's rules on one Redis state per service, shared by every process (Lua scripts on the
    server's clock).

    Raises:
        redis errors from every method when Redis cannot be reached: the caller falls back to a
        :class:`LocalBreaker`.
    """

    def __init__(self, service: str, config: BreakerConfig, client: Any, *, prefix: str = "fr:breaker:") -> None:
        self.service = service
        self.config = config
        self.client = client
        self.keys = [f"{prefix}{service}", f"{prefix}{service}:calls"]
        self._allow = client.register_script(_ALLOW)
        self._record = client.register_script(_RECORD)

    def allow(self, token: str) -> Admission:
        """Decide whether the call of ``token`` (unique per call) may go ahead."""
        allowed, state, retry_after, probe, transition = self._allow(
            keys=self.keys, args=[token, self.config.probe_lease]
        )
        return Admission(
            bool(allowed),
            BreakerState(_text(state)),
            retry_after=float(_text(retry_after)),
            probe=bool(probe),
            transition=_transition(self.service, transition),
        )

    def record(self, token: str, *, success: bool) -> Transition | None:
        """Report the outcome of an admitted call; returns the transition it caused, if any."""
        c = self.config
        spec, calls, failures = self._record(
            keys=self.keys,
            args=[token, "1" if success else "0", c.window, c.min_calls, c.failure_ratio, c.open_seconds],
        )
        return _transition(self.service, spec, int(calls), int(failures))

    def state(self) -> BreakerState:
        """The stored state."""
        return BreakerState(_text(self.client.hget(self.keys[0], "state") or BreakerState.CLOSED))

    def reset(self) -> None:
        """Close the breaker and forget its counts (an operator's reset)."""
        self.client.delete(*self.keys)

    def force_open(self, seconds: float) -> None:
        """Open the breaker for ``seconds`` from now (Redis' clock), whatever its state."""
        whole, micro = self.client.time()
        until = float(whole) + float(micro) / 1e6 + seconds
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys[0], mapping={"state": BreakerState.OPEN.value, "until": repr(until)})
            pipe.hdel(self.keys[0], "probe", "probe_until")
            pipe.delete(self.keys[1])
            pipe.execute()
