"""Reaching the real services of the test suite: Postgres, Redis, and the ``require`` rule.

A real-service test skips when the service is absent on a developer's machine, and FAILS when ``CI``
is set: CI always has the services, so a skip there would hide a broken set-up.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

PG_HOST = os.environ.get("FR_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("FR_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("FR_TEST_PG_USER", "postgres")
RABBIT_HOST = os.environ.get("FR_TEST_RABBIT_HOST", "127.0.0.1")
RABBIT_PORT = int(os.environ.get("FR_TEST_RABBIT_PORT", "5672"))
REDIS_HOST = os.environ.get("FR_TEST_REDIS_HOST", "127.0.0.1")
REDIS_PORT = int(os.environ.get("FR_TEST_REDIS_PORT", "6379"))
IN_CI = bool(os.environ.get("CI"))


def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections at ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port nothing listens on now (on 127.0.0.1)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require(name: str, host: str, port: int) -> None:
    """Skip (locally) or fail (in CI) when a service is not reachable."""
    if port_open(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{message}; CI must provide it", pytrace=False)
    pytest.skip(message)


def pg_url(database: str) -> str:
    """SQLAlchemy URL of a database on the test server."""
    return f"postgresql+psycopg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


def _admin() -> sa.Engine:
    return sa.create_engine(pg_url("postgres"), isolation_level="AUTOCOMMIT")


def create_database(*, template: str | None = None) -> str:
    """Create a uniquely named database (optionally cloned from ``template``); return its name."""
    name = f"fr_test_{uuid.uuid4().hex[:12]}"
    engine = _admin()
    try:
        with engine.connect() as conn:
            clause = f" TEMPLATE {template}" if template else ""
            conn.exec_driver_sql(f"CREATE DATABASE {name}{clause}")
    finally:
        engine.dispose()
    return name


def drop_database(name: str) -> None:
    """Drop a test database, disconnecting whoever still uses it."""
    engine = _admin()
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        engine.dispose()


@contextmanager
def temporary_database(*, template: str | None = None) -> Iterator[str]:
    """A database that exists for the block; yields its URL."""
    name = create_database(template=template)
    try:
        yield pg_url(name)
    finally:
        drop_database(name)


def rabbitmqctl(*words: str) -> None:
    """Run ``rabbitmqctl`` on the machine's RabbitMQ."""
    subprocess.run(["rabbitmqctl", "-q", *words], check=True, capture_output=True, timeout=120)


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A RabbitMQ vhost of the caller's own (guest may use it), deleted afterwards; yields its name."""
    require("RabbitMQ", RABBIT_HOST, RABBIT_PORT)
    name = f"fr_test_{uuid.uuid4().hex[:10]}"
    rabbitmqctl("add_vhost", name)
    try:
        rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        yield name
    finally:
        rabbitmqctl("delete_vhost", name)


POSTGRES_START = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
REDIS_START = (
    'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
    "--dir /var/lib/redis --logfile /var/log/redis/ci.log"
)


def start_service(command: str) -> None:
    """Start a service the way the machine does (used by tests that stop one)."""
    subprocess.run(command, shell=True, check=False, capture_output=True, timeout=60)


class PrivateRedis:
    """A real ``redis-server`` of the test's own, on a free port, that the test may stop and start
    again (on the same port) without touching the machine's shared Redis."""

    def __init__(self, directory: str, *, persistent: bool = False) -> None:
        import shutil

        binary = shutil.which("redis-server")
        if binary is None:
            if IN_CI:
                pytest.fail("redis-server is not installed; CI must provide it", pytrace=False)
            pytest.skip("redis-server is not installed")
        self.binary, self.directory, self.persistent = binary, directory, persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        from tests.support.waiting import wait_until

        # persistent: an append-only file, as a broker in production keeps (a restart loses no message)
        # (never rewritten, so the file holds every command since the start: see tests/chaos/broker_log.py)
        appendonly = (
            ["--appendonly", "yes", "--appendfsync", "always", "--auto-aof-rewrite-percentage", "0"]
            if self.persistent
            else ["--appendonly", "no"]
        )
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *appendonly],
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: port_open("127.0.0.1", self.port), timeout=30, what=f"redis-server on {self.port}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, as a service manager would) and wait until it is gone."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def close(self) -> None:
        self.stop()


class PrivatePostgres:
    """A real PostgreSQL server of the test's own (``initdb`` in a temporary directory, a free port), that
    the test may stop and start again without touching the machine's shared server.

    Postgres refuses to run as root: as root, its commands run as the ``postgres`` user.
    """

    def __init__(self) -> None:
        import glob
        import shutil
        import tempfile

        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
        initdb = versions[-1] if versions else shutil.which("initdb")
        if initdb is None:
            if IN_CI:
                pytest.fail("PostgreSQL's initdb is not installed; CI must provide it", pytrace=False)
            pytest.skip("PostgreSQL's initdb is not installed")
        self.bin = os.path.dirname(initdb)
        self.directory = tempfile.mkdtemp(prefix="fr-pg-")
        self.data = os.path.join(self.directory, "data")
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            import pwd

            user = pwd.getpwnam("postgres")
            os.chmod(self.directory, 0o755)
            os.chown(self.directory, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", self.data, "-U", PG_USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self._as, os.path.join(self.bin, program), *args], check=True, capture_output=True, timeout=120
        )

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL of a database on this server."""
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.directory} -c max_connections=200"
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", os.path.join(self.directory, "log"), "-w", "start")

    def stop(self) -> None:
        """Stop the server the way an operator does (fast shutdown: clients are disconnected)."""
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def close(self) -> None:
        """Stop the server if it runs and remove its files."""
        import shutil

        subprocess.run(
            [*self._as, os.path.join(self.bin, "pg_ctl"), "-D", self.data, "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(self.directory, ignore_errors=True)
