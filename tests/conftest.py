"""Fixtures shared by every tier: real Postgres databases, a Redis database, real processes.

- ``pg_template``: one migrated database per test run; ``pg_url`` clones it for each test
  (``CREATE DATABASE ... TEMPLATE``), so each test starts from an empty, migrated schema.
- ``redis_url``: a Redis database number of our own, flushed before and after each test.
- ``spawn``: starts real processes (workers, dispatchers) and always stops them.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_lib

from error_handling.sealing import generate_key
from tests.support import services
from tests.support.fake_provider import FakeProvider
from tests.support.processes import Process

# A COLUMNS in the test process's environment (pytest-xdist gives its processes the terminal's) would fix the
# CLI's rich console at that width when it is imported: the CLI tests set a wide COLUMNS for each command.
os.environ.pop("COLUMNS", None)

#: The Redis database number the tests own (the machine's other users keep db 0): ``FR_TEST_REDIS_DB``
#: (default 13) for the first test process, the next numbers for the others of a parallel run (pytest-xdist's
#: ``gw1``, ``gw2``, ...), so that no two processes flush each other's.
TEST_REDIS_DB = int(os.environ.get("FR_TEST_REDIS_DB", "13")) + int(
    os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0
)
if not 0 < TEST_REDIS_DB < 16:
    raise RuntimeError(f"the tests' Redis db {TEST_REDIS_DB} is not one of 1-15: lower FR_TEST_REDIS_DB or -n")
#: One encryption key for the whole run, shared by the test process and its workers.
TEST_KEY = generate_key()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated template database (its name)."""
    services.require("PostgreSQL", services.PG_HOST, services.PG_PORT)
    from function_runner.migrate import upgrade

    name = services.create_database()
    try:
        upgrade(services.pg_url(name))
        yield name
    finally:
        services.drop_database(name)


@pytest.fixture
def pg_url(pg_template: str) -> Iterator[str]:
    """URL of a fresh, migrated Postgres database for this test."""
    name = services.create_database(template=pg_template)
    try:
        yield services.pg_url(name)
    finally:
        services.drop_database(name)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """URL of the tests' own Redis database, empty at the start and the end of the test."""
    services.require("Redis", services.REDIS_HOST, services.REDIS_PORT)
    url = f"redis://{services.REDIS_HOST}:{services.REDIS_PORT}/{TEST_REDIS_DB}"
    client = redis_lib.Redis.from_url(url)
    client.flushdb()
    try:
        yield url
    finally:
        with contextlib.suppress(redis_lib.ConnectionError):
            client.flushdb()
        client.close()


@pytest.fixture
def service_env(pg_url: str, redis_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for processes that use the real services (settings tuned for fast tests)."""
    return process_env(database_url=pg_url, broker_url=redis_url, state_url=redis_url, data_dir=tmp_path / "data")


def process_env(
    *, database_url: str, broker_url: str, state_url: str, data_dir: Path, **settings: str
) -> dict[str, str]:
    """The environment of a worker, dispatcher or API process of a test: this process's environment
    without its ``FUNCTION_RUNNER_*`` variables, then the test's services and settings tuned for fast
    tests (``settings``: more ``FUNCTION_RUNNER_*`` values, by lower-case name)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTION_RUNNER_")}
    tuned = {
        "retry_base_delay": "0.2",
        "retry_max_delay": "1",
        "resource_check_interval": "0.5",
        "dispatcher_interval": "0.2",
        "storage_retry_timeout": "1",
        "visibility_timeout": "10",
        **settings,
    }
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parents[1]),
        FUNCTION_RUNNER_DATABASE_URL=database_url,
        FUNCTION_RUNNER_BROKER_URL=broker_url,
        FUNCTION_RUNNER_ENCRYPTION_KEY=TEST_KEY,
        FUNCTION_RUNNER_DATA_DIR=str(data_dir),
        FR_TEST_STATE_URL=state_url,
    )
    env.update({f"FUNCTION_RUNNER_{name.upper()}": value for name, value in tuned.items()})
    return env


@pytest.fixture
def spawn(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Process]]:
    """Start real processes; every one is stopped at the end of the test, whatever happens."""
    started: list[Process] = []

    def _spawn(args: list[str], *, env: dict[str, str], name: str) -> Process:
        process = Process(args, env=env, log_path=tmp_path / f"{name}-{len(started)}.log", name=name)
        started.append(process)
        return process

    yield _spawn
    for process in reversed(started):
        process.stop(timeout=10)
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        for process in started:
            sys.stderr.write(f"\n----- log of {process.name} -----\n{process.log()[-6000:]}\n")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def providers() -> Iterator[list[FakeProvider]]:
    """Fake providers the test makes (append them); each is closed at the end of the test."""
    made: list[FakeProvider] = []
    yield made
    for provider in made:
        provider.close()
