"""What the benchmarks share: a scratch Postgres database, waiting for a server, the machine's description."""

from __future__ import annotations

import os
import platform
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from function_runner.migrate import upgrade


@contextmanager
def scratch_database(admin_url: str, *, migrate: bool = True) -> Iterator[str]:
    """A new database on the server of ``admin_url``, migrated to head, dropped afterwards; yields its URL."""
    name = f"fr_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        try:
            if migrate:
                upgrade(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        admin.dispose()


def wait_for_http(url: str, *, timeout: float) -> None:
    """Wait until ``url`` answers 200, or raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return
            last = response.status_code
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {timeout} s (last: {last})")


def machine() -> str:
    """One line naming the machine and the versions that matter to the figures."""
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("celery", "kombu", "redis", "sqlalchemy", "psycopg", "fastapi")
    )
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; {versions}"
