"""What the worker benchmarks share: a scratch database, a Redis db, a publisher, and real ``celery
worker`` and ``function-runner dispatcher`` processes running :mod:`bench.tasks_app`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.pool import NullPool

from bench._support import QUEUE, ROOT, scratch_database, spawn
from error_handling.sealing import generate_key
from function_runner.app import create_app
from function_runner.runtime import runtime_for
from function_runner.settings import Settings

__all__ = ["QUEUE", "Services", "services"]

#: Seconds between two ``ANALYZE`` of :meth:`Services.analyzing`.
ANALYZE_EVERY = 10.0


class Services:
    """The services and the environment of one worker benchmark.

    Args:
        redis_url: the broker and the tasks' counters; this Redis db is flushed by :meth:`reset`.
        database_url: the scratch database the workers record into.
        data_dir: a private folder (logs, nothing else).
        settings: ``FUNCTION_RUNNER_*`` settings of the workers and dispatchers, by field name
            (e.g. ``{"retry_base_delay": "3600"}``).
        env: more environment variables of the workers and dispatchers (e.g. ``FR_BENCH_DELAY``).
    """

    def __init__(
        self,
        redis_url: str,
        database_url: str,
        data_dir: Path,
        settings: dict[str, str],
        env: dict[str, str] | None = None,
    ) -> None:
        self.redis_url, self.database_url, self.logs = redis_url, database_url, data_dir
        self.client = redis.Redis.from_url(redis_url)
        key = generate_key()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("FUNCTION_RUNNER_", "FR_BENCH_"))}
        self.env.update(
            PYTHONPATH=str(ROOT),
            FUNCTION_RUNNER_DATABASE_URL=database_url,
            FUNCTION_RUNNER_BROKER_URL=redis_url,
            FUNCTION_RUNNER_ENCRYPTION_KEY=key,
            FUNCTION_RUNNER_DATA_DIR=str(data_dir),
            FR_BENCH_STATE_URL=redis_url,
        )
        self.env.update({f"FUNCTION_RUNNER_{name.upper()}": value for name, value in settings.items()})
        self.env.update(env or {})
        self.app = create_app(
            Settings(
                database_url=database_url,
                broker_url=redis_url,
                encryption_key=SecretStr(key),
                data_dir=data_dir,
            ),
            main="fr_bench_publisher",
        )

    def publish(self, task: str, count: int, *, args: Sequence[Any] = ()) -> list[str]:
        """Put ``count`` messages of ``task`` on :data:`QUEUE` through one producer; return their ids."""
        ids = [uuid.uuid4().hex for _ in range(count)]
        with self.app.producer_or_acquire() as producer:
            for task_id in ids:
                self.app.send_task(task, args=list(args), queue=QUEUE, task_id=task_id, producer=producer)
        return ids

    def queued(self) -> int:
        """Messages waiting on :data:`QUEUE`."""
        return int(self.client.llen(QUEUE))

    def unacked(self) -> int:
        """Messages taken by a worker and not acked yet (held, running, or ETA messages held)."""
        return int(self.client.hlen("unacked"))

    def pending(self) -> int:
        """Messages queued or taken but not acked."""
        return self.queued() + self.unacked()

    def counter(self, key: str) -> int:
        """An integer the tasks count in Redis (0 when absent)."""
        value = self.client.get(key)
        return int(value) if value is not None else 0

    def worker(
        self, pool: str, concurrency: int, *, label: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start ``celery -A bench.tasks_app worker`` on :data:`QUEUE` (log in the data folder; ``env``:
        more environment, e.g. settings)."""
        args = [sys.executable, "-m", "celery", "-A", "bench.tasks_app", "worker", "--pool", pool]
        args += ["--concurrency", str(concurrency), "-Q", QUEUE, "--loglevel", "WARNING"]
        args += [
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{label}-{uuid.uuid4().hex[:6]}@%h",
        ]
        return spawn(args, env={**self.env, **(env or {})}, log=self.logs / f"worker-{label}.log")

    def dispatcher(self, *, label: str) -> subprocess.Popen[bytes]:
        """Start ``function-runner dispatcher --app bench.tasks_app``."""
        args = [sys.executable, "-m", "function_runner.cli", "dispatcher", "--app", "bench.tasks_app"]
        args += ["--log-level", "WARNING"]
        return spawn(args, env=self.env, log=self.logs / f"dispatcher-{label}.log")

    def reset(self) -> None:
        """Empty the benchmark's Redis db (queue, unacked messages, counters)."""
        self.client.flushdb()

    def truncate(self, *tables: str) -> None:
        """Empty ``tables`` of the scratch database (and what references them)."""
        with runtime_for(self.app).engine.begin() as conn:
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")

    def scalar(self, sql: str) -> int:
        """One integer from the scratch database."""
        with runtime_for(self.app).engine.connect() as conn:
            return int(conn.exec_driver_sql(sql).scalar_one())

    @contextmanager
    def analyzing(self, every: float = ANALYZE_EVERY) -> Iterator[None]:
        """Run ``ANALYZE`` on the scratch database every ``every`` seconds while the block runs.

        It stands in for autovacuum, which the test server runs without (``autovacuum = off``): its
        defaults would analyze these growing tables within a minute, and without statistics the
        planner may pick plans whose cost grows with the table (see bench/README.md).
        """
        stopping = threading.Event()
        engine = sa.create_engine(self.database_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)

        def loop() -> None:
            while not stopping.wait(every):
                with engine.connect() as conn:
                    conn.exec_driver_sql("ANALYZE")

        thread = threading.Thread(target=loop, name="fr-bench-analyze", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stopping.set()
            thread.join()
            engine.dispose()

    def close(self) -> None:
        """Release the publisher's connections and empty the Redis db."""
        try:
            self.reset()
        finally:
            runtime_for(self.app).close()
            self.app.close()
            self.client.close()


@contextmanager
def services(
    redis_url: str, pg_url: str, settings: dict[str, str], env: dict[str, str] | None = None
) -> Iterator[Services]:
    """A scratch database on ``pg_url`` and :class:`Services` over it, all released afterwards."""
    guard_redis(redis_url)
    with scratch_database(pg_url) as url, tempfile.TemporaryDirectory(prefix="fr_bench_") as folder:
        found = Services(redis_url, url, Path(folder), settings, env)
        try:
            found.reset()
            yield found
        finally:
            found.close()


def guard_redis(redis_url: str) -> None:
    """Refuse Redis db 0 (the default everyone shares): the benchmarks flush their db."""
    db = redis.Redis.from_url(redis_url).connection_pool.connection_kwargs.get("db", 0)
    if int(db) == 0:
        raise SystemExit(f"refusing to flush Redis db 0 ({redis_url}); pass --redis-url with a db of your own")


#: The environment of a bare Celery worker: kombu's own Redis transport.
KOMBU_TRANSPORT = {"FUNCTION_RUNNER_RELIABLE_FETCH": "false"}


def transport_env(task: str, *, reliable: bool | None = None) -> dict[str, str]:
    """The worker environment of ``task``: kombu's Redis transport for bare Celery's tasks,
    function-runner's reliable one (``function_runner.broker.redis_transport``) for ours; ``reliable``
    overrides."""
    if reliable is None:
        reliable = task.startswith("bench.recoverable")
    return {} if reliable else KOMBU_TRANSPORT
