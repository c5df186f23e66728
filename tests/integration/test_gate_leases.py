"""Capacity leases of resource gates, in Redis and in the database (SQLite and Postgres): units never
exceed the capacity, a holder keeps its units when it acquires again, expired leases free their units,
renewals and releases; and the built-in probes."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis as redis_lib

from error_handling.exceptions import ConfigurationError
from error_handling.persistence.db import make_engine, make_sessionmaker
from function_runner.gates import (
    CallableProbe,
    DiskFree,
    Gate,
    GpuMemoryFree,
    MemoryAvailable,
    PostgresConnections,
    ProbeResult,
)
from function_runner.gates.leases import LeaseStore, RedisLeaseStore, SqlLeaseStore
from function_runner.migrate import upgrade
from tests.support.waiting import wait_until


@pytest.fixture(params=["redis", "sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LeaseStore]:
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        client = redis_lib.Redis.from_url(url)
        yield RedisLeaseStore(client, prefix="fr:test-gate:")
        client.close()
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'leases.sqlite3'}"
        upgrade(url)
    else:
        url = request.getfixturevalue("pg_url")
    engine = make_engine(url)
    yield SqlLeaseStore(make_sessionmaker(engine))
    engine.dispose()


def test_units_never_exceed_the_capacity_and_a_holder_keeps_its_own(store: LeaseStore) -> None:
    assert store.acquire("gpu", "t1:1", units=1, capacity=2, ttl=30)
    assert store.acquire("gpu", "t2:1", units=1, capacity=2, ttl=30)
    assert not store.acquire("gpu", "t3:1", units=1, capacity=2, ttl=30)
    assert store.acquire("gpu", "t1:1", units=1, capacity=2, ttl=30)  # already its: extended, not doubled
    assert store.used("gpu") == 2
    assert not store.acquire("gpu", "big:1", units=3, capacity=2, ttl=30)
    store.release("gpu", "t1:1")
    assert store.used("gpu") == 1
    assert store.acquire("gpu", "t3:1", units=1, capacity=2, ttl=30)
    assert store.used("other") == 0


def test_an_expired_lease_frees_its_units_and_cannot_be_renewed(store: LeaseStore) -> None:
    assert store.acquire("gpu", "dead:1", units=2, capacity=2, ttl=1.5)
    assert store.renew("gpu", "dead:1", ttl=1.5)
    assert not store.acquire("gpu", "next:1", units=1, capacity=2, ttl=30)
    # the holder died: its lease runs out
    wait_until(lambda: store.used("gpu") == 0, timeout=10, what="the dead holder's lease to run out")
    assert not store.renew("gpu", "dead:1", ttl=30)
    assert store.acquire("gpu", "next:1", units=1, capacity=2, ttl=30)


def test_concurrent_acquisitions_never_overcommit(store: LeaseStore) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        granted = list(pool.map(lambda i: store.acquire("slot", f"t{i}:1", units=1, capacity=3, ttl=30), range(40)))
    assert sum(granted) == 3 and store.used("slot") == 3


def test_probes_say_what_they_read(tmp_path: Path) -> None:
    disk = DiskFree(str(tmp_path), min_bytes=1)
    assert disk().available and "free on" in disk().detail
    assert not DiskFree(str(tmp_path), min_bytes=2**62)().available
    assert MemoryAvailable(min_bytes=1)().available
    assert not MemoryAvailable(min_bytes=2**62)().available
    gpu = Gate("gpu", probe=GpuMemoryFree(min_mib=1)).check()
    assert gpu is not None and (gpu.available or gpu.detail)  # without nvidia-smi or a GPU: unavailable, why
    assert CallableProbe(lambda: False, "flag")() == ProbeResult(False)
    assert CallableProbe(lambda: ProbeResult(True, "3 free", free=3))().free == 3


def test_a_probe_that_raises_says_unavailable_with_the_error_redacted() -> None:
    def broken() -> bool:
        raise OSError("cannot reach http://admin:hunter2secret@license-server/status")

    result = Gate("licence", probe=CallableProbe(broken)).check()
    assert result is not None and not result.available
    assert "OSError" in result.detail and "hunter2secret" not in result.detail
    assert Gate("slot", capacity=1).check() is None
    with pytest.raises(ConfigurationError, match="capacity"):
        Gate("slot", capacity=0)


def test_the_postgres_connections_probe_reads_the_real_server(pg_url: str) -> None:
    result = PostgresConnections(pg_url, min_free=1)()
    assert result.available and result.free is not None and result.free >= 1
    assert "connections free" in result.detail
    assert not PostgresConnections(pg_url, min_free=10**6)().available
