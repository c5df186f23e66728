"""Bulk replay rate against raw Celery publishing, on the same Redis broker, in the same run.

What is measured:

- **raw**: ``app.send_task`` of ``--count`` messages (the same task name, kwargs ``{"n": i}``) through
  one producer to a queue no worker consumes: what a script calling ``apply_async`` in a loop achieves.
  It records nothing anywhere.
- **replay**: a bulk replay job of ``--count`` pending dead letters (created as the API creates it),
  driven to the end by the dispatcher's replay pass (:class:`~function_runner.bulk_replay.BulkReplayer`)
  in this process, one batch after another, unthrottled. For every dead letter it reads the letter,
  unseals its payload, publishes it with its replay headers under a deterministic task id, and records
  the replay (the letter becomes ``replayed``, a replay request row, the job's progress) in Postgres:
  two transactions per batch around the publishes. Timed from the job's creation to ``done``.

Both queues are counted at the end (each must hold exactly ``--count`` messages), and the script prints
both rates and the ratio replay / raw (the project's goal: at least 0.5). The dead letters live in a
scratch database that the script creates, migrates and drops; the Redis queues it used are deleted.

Run: ``.venv/bin/python -m bench.bulk_replay [--count 100000]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from pydantic import SecretStr

from bench._support import machine, scratch_database
from error_handling.persistence import replay_jobs
from error_handling.persistence.models import DeadLetterRecord, DeadLetterStatus, ReplayJobStatus, utcnow
from error_handling.sealing import generate_key
from function_runner.app import create_app
from function_runner.bulk_replay import BulkReplayer
from function_runner.runtime import runtime_for
from function_runner.settings import Settings

RAW_QUEUE = "fr_bench_raw"
REPLAY_QUEUE = "fr_bench_replay"
TASK_NAME = "bench.charge"


def seed(engine: sa.Engine, count: int) -> None:
    """Insert ``count`` pending dead letters (plain JSON payloads), 10,000 rows per statement."""
    start = utcnow() - dt.timedelta(hours=1)
    with engine.begin() as conn:
        for offset in range(0, count, 10_000):
            conn.execute(
                sa.insert(DeadLetterRecord),
                [
                    {
                        "task_id": uuid.uuid4().hex,
                        "task_name": TASK_NAME,
                        "queue": REPLAY_QUEUE,
                        "reason": "auth_failed",
                        "category": "permanent",
                        "last_reason": "auth_failed",
                        "exc_type": "error_handling.exceptions.PermanentError",
                        "message": "credentials revoked",
                        "fingerprint": "b" * 16,
                        "attempts": 1,
                        "args": [],
                        "kwargs": {"n": i},
                        "options": {"queue": REPLAY_QUEUE},
                        "headers": {},
                        "replayable": True,
                        "status": DeadLetterStatus.PENDING,
                        "created_at": start + dt.timedelta(microseconds=i),
                        "updated_at": start,
                    }
                    for i in range(offset, min(count, offset + 10_000))
                ],
            )
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE fr_dead_letters")


def raw_publish(app: Any, count: int) -> float:
    """Publish ``count`` messages with ``send_task`` through one producer; return the seconds it took."""
    began = time.perf_counter()
    with app.producer_or_acquire() as producer:
        for i in range(count):
            app.send_task(TASK_NAME, kwargs={"n": i}, queue=RAW_QUEUE, task_id=uuid.uuid4().hex, producer=producer)
    return time.perf_counter() - began


def bulk_replay(app: Any, count: int, batch_size: int) -> tuple[float, int]:
    """Create a job for every pending dead letter and run it to the end; return (seconds, batches)."""
    runtime = runtime_for(app)
    replayer = BulkReplayer(app, runtime, batch_size=batch_size, interval=1.0)
    began = time.perf_counter()
    job_id = runtime.in_transaction(
        lambda s: (
            replay_jobs.create_job(
                s, flt=replay_jobs.DeadLetterFilter(task_name=TASK_NAME), rate_per_second=None, now=utcnow()
            ).id
        )
    )
    batches = 0
    while True:
        result = replayer.process_batch()
        batches += 1
        if result is None or result.done:
            break
    elapsed = time.perf_counter() - began
    job = runtime.in_transaction(lambda s: replay_jobs.get_job(s, job_id=job_id))
    if job.status is not ReplayJobStatus.DONE or job.published != count:
        raise SystemExit(f"the replay job ended {job.status.value} with {job.published}/{count} published")
    return elapsed, batches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=Settings.model_fields["dispatcher_batch_size"].default)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)

    client = redis.Redis.from_url(args.redis_url)
    client.delete(RAW_QUEUE, REPLAY_QUEUE)
    with scratch_database(args.pg_url) as url, tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            database_url=url,
            broker_url=args.redis_url,
            encryption_key=SecretStr(generate_key()),
            data_dir=Path(data_dir),
        )
        app = create_app(settings, main="fr_bench_bulk_replay")
        try:
            print(f"seeding {args.count:,} dead letters ...", flush=True)
            seed(runtime_for(app).engine, args.count)
            raw_seconds = raw_publish(app, args.count)
            replay_seconds, batches = bulk_replay(app, args.count, args.batch_size)
            counts = {queue: int(client.llen(queue)) for queue in (RAW_QUEUE, REPLAY_QUEUE)}
        finally:
            runtime_for(app).close()
            app.close()
            client.delete(RAW_QUEUE, REPLAY_QUEUE)
            client.close()

    raw_rate, replay_rate = args.count / raw_seconds, args.count / replay_seconds
    ratio = replay_rate / raw_rate
    print()
    print(machine())
    print(f"{args.count:,} messages each, Redis broker {args.redis_url}, replay batches of {args.batch_size}")
    print(f"{'path':<32} {'seconds':>9} {'msg/s':>10}")
    print(f"{'raw send_task (one producer)':<32} {raw_seconds:9.2f} {raw_rate:10,.0f}")
    print(f"{f'bulk replay job ({batches} batches)':<32} {replay_seconds:9.2f} {replay_rate:10,.0f}")
    print(f"ratio replay/raw: {ratio:.2f} (goal >= 0.5: {'ok' if ratio >= 0.5 else 'MISSED'})")
    print(f"queued: raw {counts[RAW_QUEUE]:,}, replay {counts[REPLAY_QUEUE]:,}")
    summary = {
        "bench": "bulk_replay",
        "count": args.count,
        "raw_per_s": round(raw_rate),
        "replay_per_s": round(replay_rate),
        "ratio": round(ratio, 3),
    }
    print(json.dumps(summary))
    if counts != {RAW_QUEUE: args.count, REPLAY_QUEUE: args.count}:
        print("ERROR: a queue does not hold exactly the messages published")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
