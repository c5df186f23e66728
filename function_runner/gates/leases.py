"""Capacity leases: at most a gate's capacity of units held at once, cluster-wide.

A task that declares ``resources={"gpu": 1}`` takes a lease before its body runs, renewed while it runs
(:class:`LeaseRenewer`), released after; a lease expires if its worker dies. Leases live in Redis
(:class:`RedisLeaseStore`, atomic scripts on the server's clock) when there is a shared-state Redis,
else in the database (:class:`SqlLeaseStore`, ``fr_resource_leases``)::

    holder "task-id:attempt" ──acquire──▶ store ◀──renew every ttl/3── LeaseRenewer
                                          └──release (after the body)
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from error_handling.persistence import gates as persistence
from error_handling.persistence.models import utcnow
from function_runner.events import log_event

__all__ = ["LeaseRenewer", "LeaseStore", "RedisLeaseStore", "SqlLeaseStore", "holder_of"]


def holder_of(task_id: str, attempt: int) -> str:
    """The lease holder name of one execution of a task."""
    return f"{task_id}:{attempt}"


class LeaseStore(Protocol):
    """Where capacity leases are counted, cluster-wide."""

    def acquire(self, gate: str, holder: str, *, units: int, capacity: int, ttl: float) -> bool:
        """Take ``units`` for ``holder`` if they fit (a holder that has them already keeps them and
        extends its lease). Expired leases are dropped first."""
        ...

    def renew(self, gate: str, holder: str, *, ttl: float) -> bool:
        """Extend a lease; False if it is gone (expired)."""
        ...

    def release(self, gate: str, holder: str) -> None:
        """Give the units back."""
        ...

    def used(self, gate: str) -> int:
        """Units held now (expired leases not counted)."""
        ...


# What every script starts with: the server's clock (never a worker's), and how the gate's two keys
# (KEYS) outlive the longest lease by a minute: GT only ever extends them; NX gives new keys an expiry.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local function keep_keys(ttl, new_keys_too)
  local keep = math.ceil(ttl) + 60
  for _, key in ipairs(KEYS) do
    redis.call('EXPIRE', key, keep, 'GT')
    if new_keys_too then redis.call('EXPIRE', key, keep, 'NX') end
  end
end
"""

_ACQUIRE = (
    _PRELUDE
    + """
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
for _, holder in ipairs(expired) do
  redis.call('ZREM', KEYS[1], holder)
  redis.call('HDEL', KEYS[2], holder)
end
local ttl = tonumber(ARGV[4])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  return 1
end
local used = 0
for _, units in ipairs(redis.call('HVALS', KEYS[2])) do used = used + tonumber(units) end
if used + tonumber(ARGV[2]) > tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
keep_keys(ttl, true)
return 1
"""
)

_RENEW = (
    _PRELUDE
    + """
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not score) or tonumber(score) <= now then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
keep_keys(tonumber(ARGV[2]), false)
return 1
"""
)

_USED = (
    _PRELUDE
    + """
local used = 0
for _, holder in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  used = used + tonumber(redis.call('HGET', KEYS[2], holder) or '0')
end
return used
"""
)


class RedisLeaseStore:
    """Leases in Redis: a sorted set of holders by expiry and a hash of their units, per gate, changed
    only by atomic scripts on the server's clock."""

    def __init__(self, client: Any, *, prefix: str = "fr:gate:") -> None:
        self.client = client
        self.prefix = prefix
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._used = client.register_script(_USED)

    def _keys(self, gate: str) -> list[str]:
        return [f"{self.prefix}{gate}:expiry", f"{self.prefix}{gate}:units"]

    def acquire(self, gate: str, holder: str, *, units: int, capacity: int, ttl: float) -> bool:
        return bool(self._acquire(keys=self._keys(gate), args=[holder, units, capacity, ttl]))

    def renew(self, gate: str, holder: str, *, ttl: float) -> bool:
        return bool(self._renew(keys=self._keys(gate), args=[holder, ttl]))

    def release(self, gate: str, holder: str) -> None:
        expiry, units = self._keys(gate)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(expiry, holder)
            pipe.hdel(units, holder)
            pipe.execute()

    def used(self, gate: str) -> int:
        return int(self._used(keys=self._keys(gate)))


class SqlLeaseStore:
    """Leases in the database (``fr_resource_leases``), for setups without Redis: each change of a gate's
    leases is one transaction holding the gate's lock (see :func:`~error_handling.persistence.gates.lock_gate`)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @contextmanager
    def _gate(self, gate: str) -> Iterator[Session]:
        with self.sessions.begin() as session:
            persistence.lock_gate(session, gate)
            yield session

    def acquire(self, gate: str, holder: str, *, units: int, capacity: int, ttl: float) -> bool:
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl)
        with self._gate(gate) as session:
            return persistence.acquire_lease(
                session, gate=gate, holder=holder, units=units, capacity=capacity, expires=expires, now=now
            )

    def renew(self, gate: str, holder: str, *, ttl: float) -> bool:
        now = utcnow()
        with self._gate(gate) as session:
            return persistence.renew_lease(
                session, gate=gate, holder=holder, expires=now + dt.timedelta(seconds=ttl), now=now
            )

    def release(self, gate: str, holder: str) -> None:
        with self.sessions.begin() as session:
            persistence.release_lease(session, gate=gate, holder=holder)

    def used(self, gate: str) -> int:
        with self.sessions() as session:
            return persistence.used_units(session, gate=gate, now=utcnow())


class LeaseRenewer:
    """Renews the leases this process holds, from one background thread, every ``ttl / 3`` seconds."""

    def __init__(self, store: LeaseStore, ttl: float) -> None:
        self.store = store
        self.ttl = ttl
        self._held: dict[tuple[str, str], None] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def hold(self, gate: str, holder: str) -> None:
        """Renew this lease until it is dropped."""
        with self._lock:
            self._held[(gate, holder)] = None
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="fr-lease-renewer", daemon=True)
                self._thread.start()

    def drop(self, gate: str, holder: str) -> None:
        """Stop renewing this lease."""
        with self._lock:
            self._held.pop((gate, holder), None)

    def _run(self) -> None:
        while True:
            threading.Event().wait(self.ttl / 3)
            with self._lock:
                held = list(self._held)
            for gate, holder in held:
                self._renew(gate, holder)

    def _renew(self, gate: str, holder: str) -> None:
        try:
            if not self.store.renew(gate, holder, ttl=self.ttl):
                log_event("gate.lease_lost", level=logging.WARNING, gate=gate, holder=holder)
        except Exception as exc:  # noqa: BLE001 - the renewing thread must outlive any store error
            log_event("gate.renew_failed", level=logging.WARNING, gate=gate, error=type(exc).__name__)
