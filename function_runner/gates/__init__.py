"""Resource gates: a named resource that parked tasks wait on, with a probe and/or a capacity.

Declare the gates on the app, and what a task needs::

    app = create_app(settings, gates=[
        Gate("gpu", capacity=2, probe=GpuMemoryFree(min_mib=8000)),
        Gate("disk", probe=DiskFree("/data", min_bytes=10 * 2**30)),
    ])

    @app.task(base=RecoverableTask, resources={"gpu": 1})
    def render(scene): ...

- **Capacity** (``capacity=N``): at most N units are held at once, cluster-wide. A task that declares
  ``resources={"gpu": 1}`` takes a lease before its body runs (renewed while it runs, released after;
  a lease expires if its worker dies) or, when the gate is full, is parked as a resource wait on the
  gate (reason ``capacity_exhausted``) without running. Leases live in Redis when the broker is Redis
  (an atomic script), else in the database (``fr_resource_leases``).
- **Probe**: whether the resource is available now (free disk, memory, GPU memory, Postgres
  connections, or any callable). A task whose body raises ``ResourceError(resource="disk")`` is parked
  on the gate.
- **Monitor** (a role of every ``function-runner dispatcher``): every ``gate_check_interval`` seconds it
  evaluates each gate's probe, records the state (``fr_resource_gates``, shown by ``GET
  /api/v1/errors/resources``) and releases waiting tasks oldest first, never more than the free
  capacity (reserving a unit for each released task, which the task then takes over), or for a gate
  without capacity at most ``release_batch`` per check (or the probe's own count of free units). Waits on
  a gate are not re-run on a timer: at their deadline they become dead letters
  (``resource_wait_timeout``). Any number of monitors is safe: waits are claimed with ``SKIP LOCKED``
  and units taken atomically.

A resource name without a declared gate keeps the timer: the wait is re-run every
``resource_check_interval`` seconds and the re-run is the check.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from error_handling.persistence.models import ResourceGate, ResourceLease, RunKind, RunStatus, ScheduledRun, utcnow
from error_handling.redaction import DEFAULT_REDACTOR
from function_runner.events import log_event

__all__ = [
    "CallableProbe",
    "DiskFree",
    "Gate",
    "GpuMemoryFree",
    "LeaseStore",
    "MemoryAvailable",
    "PostgresConnections",
    "Probe",
    "ProbeResult",
    "RedisLeaseStore",
    "SqlLeaseStore",
    "release_waits",
]


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    """A probe's verdict: available or not, what it read, and optionally how many units are free."""

    available: bool
    detail: str = ""
    free: int | None = None


class Probe(Protocol):
    """Says whether a resource is available now."""

    def __call__(self) -> ProbeResult: ...

    def describe(self) -> str:
        """What the probe checks, e.g. ``disk_free(/data) >= 10.0 GiB``."""
        ...


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


@dataclasses.dataclass(frozen=True)
class DiskFree:
    """Available when the filesystem of ``path`` has at least ``min_bytes`` free."""

    path: str
    min_bytes: int

    def __call__(self) -> ProbeResult:
        free = shutil.disk_usage(self.path).free
        return ProbeResult(free >= self.min_bytes, f"{_gib(free)} free on {self.path}")

    def describe(self) -> str:
        return f"disk_free({self.path}) >= {_gib(self.min_bytes)}"


@dataclasses.dataclass(frozen=True)
class MemoryAvailable:
    """Available when the machine has at least ``min_bytes`` of memory available (``MemAvailable``)."""

    min_bytes: int
    meminfo: str = "/proc/meminfo"

    def __call__(self) -> ProbeResult:
        with open(self.meminfo, encoding="ascii") as handle:
            fields = dict(line.split(":", 1) for line in handle if ":" in line)
        available = int(fields["MemAvailable"].split()[0]) * 1024
        return ProbeResult(available >= self.min_bytes, f"{_gib(available)} available")

    def describe(self) -> str:
        return f"memory_available >= {_gib(self.min_bytes)}"


@dataclasses.dataclass(frozen=True)
class GpuMemoryFree:
    """Available when a GPU (any, or ``index``) has at least ``min_mib`` MiB free, read with ``nvidia-smi``.

    ``free`` is how many GPUs have that much free. Without ``nvidia-smi`` the GPU is unavailable.
    """

    min_mib: int
    index: int | None = None
    timeout: float = 10.0

    def __call__(self) -> ProbeResult:
        command = ["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits"]
        if self.index is not None:
            command.append(f"--id={self.index}")
        if shutil.which(command[0]) is None:
            return ProbeResult(False, "nvidia-smi not found")
        output = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout, check=True).stdout
        free = [int(line.strip()) for line in output.splitlines() if line.strip()]
        enough = sum(1 for mib in free if mib >= self.min_mib)
        return ProbeResult(enough > 0, f"free MiB per GPU: {free}", free=enough)

    def describe(self) -> str:
        where = f"gpu {self.index}" if self.index is not None else "any gpu"
        return f"gpu_memory_free({where}) >= {self.min_mib} MiB"


@dataclasses.dataclass(frozen=True)
class PostgresConnections:
    """Available when a Postgres server has at least ``min_free`` connections left."""

    url: str
    min_free: int = 5

    def __call__(self) -> ProbeResult:
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                limit = int(conn.exec_driver_sql("SHOW max_connections").scalar_one())
                used = int(conn.exec_driver_sql("SELECT count(*) FROM pg_stat_activity").scalar_one())
        finally:
            engine.dispose()
        free = limit - used
        return ProbeResult(free >= self.min_free, f"{free} of {limit} connections free", free=free)

    def describe(self) -> str:
        return f"postgres_free_connections >= {self.min_free}"


@dataclasses.dataclass(frozen=True)
class CallableProbe:
    """Any function: it returns a bool, or a :class:`ProbeResult`."""

    function: Callable[[], bool | ProbeResult]
    description: str = ""

    def __call__(self) -> ProbeResult:
        value = self.function()
        return value if isinstance(value, ProbeResult) else ProbeResult(bool(value))

    def describe(self) -> str:
        return self.description or getattr(self.function, "__qualname__", repr(self.function))


@dataclasses.dataclass(frozen=True)
class Gate:
    """A named resource: a probe and/or a capacity (see the module's documentation).

    Attributes:
        name: the resource name tasks and ``ResourceError(resource=...)`` use.
        probe: whether the resource is available now (None: only the capacity counts).
        capacity: at most this many units held at once, cluster-wide (None: no limit).
        release_batch: for a gate without capacity, at most this many waits released per check.
    """

    name: str
    probe: Probe | None = None
    capacity: int | None = None
    release_batch: int = 10

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > 64:
            raise ValueError("a gate's name must have 1 to 64 characters")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError("a gate's capacity must be at least 1")
        if self.release_batch < 1:
            raise ValueError("release_batch must be at least 1")

    def check(self) -> ProbeResult | None:
        """Evaluate the probe (None without one); a probe that raises says unavailable, with the error."""
        if self.probe is None:
            return None
        try:
            return self.probe()
        except Exception as exc:
            return ProbeResult(False, DEFAULT_REDACTOR.redact_text(f"probe failed: {type(exc).__name__}: {exc}"))


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


_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
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
local keep = math.ceil(ttl) + 60
redis.call('EXPIRE', KEYS[1], keep, 'GT')
redis.call('EXPIRE', KEYS[1], keep, 'NX')
redis.call('EXPIRE', KEYS[2], keep, 'GT')
redis.call('EXPIRE', KEYS[2], keep, 'NX')
return 1
"""

_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not score) or tonumber(score) <= now then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local keep = math.ceil(tonumber(ARGV[2])) + 60
redis.call('EXPIRE', KEYS[1], keep, 'GT')
redis.call('EXPIRE', KEYS[2], keep, 'GT')
return 1
"""

_USED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local used = 0
for _, holder in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')) do
  used = used + tonumber(redis.call('HGET', KEYS[2], holder) or '0')
end
return used
"""


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
    """Leases in the database (``fr_resource_leases``), for setups without Redis. On Postgres a
    transaction-scoped advisory lock per gate serialises acquisitions; SQLite serialises its writers."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @contextmanager
    def _gate(self, gate: str) -> Iterator[Session]:
        with self.sessions.begin() as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(sa.text("SELECT pg_advisory_xact_lock(26211, hashtext(:g))"), {"g": gate})
            yield session

    def acquire(self, gate: str, holder: str, *, units: int, capacity: int, ttl: float) -> bool:
        now = utcnow()
        expires = now + dt.timedelta(seconds=ttl)
        with self._gate(gate) as session:
            session.execute(sa.delete(ResourceLease).where(ResourceLease.gate == gate, ResourceLease.expires_at <= now))
            mine = session.get(ResourceLease, (gate, holder))
            if mine is not None:
                mine.expires_at = expires
                return True
            used = session.execute(
                sa.select(sa.func.coalesce(sa.func.sum(ResourceLease.units), 0)).where(ResourceLease.gate == gate)
            ).scalar_one()
            if int(used) + units > capacity:
                return False
            session.add(ResourceLease(gate=gate, holder=holder, units=units, expires_at=expires))
            return True

    def renew(self, gate: str, holder: str, *, ttl: float) -> bool:
        now = utcnow()
        with self._gate(gate) as session:
            mine = session.get(ResourceLease, (gate, holder))
            if mine is None or mine.expires_at <= now:
                return False
            mine.expires_at = now + dt.timedelta(seconds=ttl)
            return True

    def release(self, gate: str, holder: str) -> None:
        with self.sessions.begin() as session:
            session.execute(sa.delete(ResourceLease).where(ResourceLease.gate == gate, ResourceLease.holder == holder))

    def used(self, gate: str) -> int:
        with self.sessions() as session:
            return int(
                session.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(ResourceLease.units), 0)).where(
                        ResourceLease.gate == gate, ResourceLease.expires_at > utcnow()
                    )
                ).scalar_one()
            )


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
        with self._lock:
            self._held[(gate, holder)] = None
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="fr-lease-renewer", daemon=True)
                self._thread.start()

    def drop(self, gate: str, holder: str) -> None:
        with self._lock:
            self._held.pop((gate, holder), None)

    def _run(self) -> None:
        while True:
            threading.Event().wait(self.ttl / 3)
            with self._lock:
                held = list(self._held)
            for gate, holder in held:
                try:
                    if not self.store.renew(gate, holder, ttl=self.ttl):
                        log_event("gate.lease_lost", level=logging.WARNING, gate=gate, holder=holder)
                except Exception as exc:
                    log_event("gate.renew_failed", level=logging.WARNING, gate=gate, error=type(exc).__name__)


def release_waits(session: Session, *, gate: str, limit: int, now: dt.datetime) -> list[ScheduledRun]:
    """Lock up to ``limit`` pending waits on ``gate``, oldest first (``SKIP LOCKED``); the caller
    reserves their units and sets their ``due_at``."""
    if limit < 1:
        return []
    return list(
        session.execute(
            sa.select(ScheduledRun)
            .where(
                ScheduledRun.kind == RunKind.RESOURCE_WAIT,
                ScheduledRun.resource == gate,
                ScheduledRun.status == RunStatus.PENDING,
                ScheduledRun.due_at > now,
            )
            .order_by(ScheduledRun.created_at, ScheduledRun.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).scalars()
    )


def save_state(session: Session, *, gate: Gate, result: ProbeResult | None, monitor: str, now: dt.datetime) -> None:
    """Record what the monitor saw of a gate (for the API)."""
    row = session.get(ResourceGate, gate.name)
    if row is None:
        row = ResourceGate(name=gate.name, updated_at=now)
        session.add(row)
    row.capacity = gate.capacity
    row.probe = gate.probe.describe()[:255] if gate.probe is not None else None
    row.available = result.available if result is not None else None
    row.detail = result.detail if result is not None else None
    row.checked_at = now
    row.monitor = monitor
    row.updated_at = now


def holder_of(task_id: str, attempt: int) -> str:
    """The lease holder name of one execution of a task."""
    return f"{task_id}:{attempt}"


def declared(gates: Iterable[Gate]) -> dict[str, Gate]:
    """Gates by name.

    Raises:
        ValueError: two gates share a name.
    """
    found: dict[str, Gate] = {}
    for gate in gates:
        if gate.name in found:
            raise ValueError(f"two gates are named {gate.name!r}")
        found[gate.name] = gate
    return found
