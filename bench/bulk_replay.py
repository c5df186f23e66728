"""Bulk replay rate against raw Celery publishing, on the same Redis broker, in the same run.

What is measured:

- **raw**: ``app.send_task`` of ``--count`` messages (the same task name, kwargs ``{"n": i}``) through
  one producer to a queue no worker consumes: what a script calling ``apply_async`` in a loop achieves.
  It records nothing anywhere.
- **replay**: a bulk replay job of ``--count`` pending dead letters (created as the API creates it),
  driven to the end by the dispatcher's replay pass (:class:`~function_runner.dispatch.replay_jobs.BulkReplayer`)
  in this process, one batch after another, unthrottled. For every dead letter it reads the letter,
  unseals its payload, publishes it with its replay headers under a deterministic task id, and records
  the replay (the letter becomes ``replayed``, a replay request row, the job's progress) in Postgres:
  two transactions per batch around the publishes. Timed from the job's creation to ``done``.

Both queues are counted at the end (each must hold exactly ``--count`` messages), and the script prints
both rates and the ratio replay / raw (the project's goal: at least 0.5). The dead letters live in a
scratch database that the script creates, migrates and drops; the Redis queues it used are deleted.

Run: ``.venv/bin/python -m bench.bulk_replay [--count 100000] [--batch-size 500]
[--redis-url redis://127.0.0.1:6379/11] [--pg-url URL]``.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from pydantic import SecretStr

from bench._support import PG_URL, REDIS_URL, command_line, machine, print_json, row, say, scratch_database, table
from error_handling.persistence import replay_jobs
from error_handling.persistence.models import DeadLetterRecord, DeadLetterStatus, ReplayJobStatus, utcnow
from error_handling.sealing import generate_key
from function_runner.app import create_app
from function_runner.dispatch.replay_jobs import BulkReplayer
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
    replayer = BulkReplayer(
        app,
        in_transaction=runtime.in_transaction,
        engine=lambda: runtime.engine,
        sealer=runtime.sealer,
        batch_size=batch_size,
        pass_interval=1.0,
    )
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


GOAL = 0.5


def run(
    *,
    count: int = 100_000,
    batch_size: int = Settings.model_fields["dispatcher_batch_size"].default,
    redis_url: str = REDIS_URL,
    pg_url: str = PG_URL,
    log: Any = print,
) -> dict[str, Any]:
    """Run the benchmark; return its figures and its table ``rows``.

    Raises:
        RuntimeError: if a queue does not hold exactly the messages published.
    """
    client = redis.Redis.from_url(redis_url)
    client.delete(RAW_QUEUE, REPLAY_QUEUE)
    with scratch_database(pg_url) as url, tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            database_url=url,
            broker_url=redis_url,
            encryption_key=SecretStr(generate_key()),
            data_dir=Path(data_dir),
        )
        app = create_app(settings, main="fr_bench_bulk_replay")
        try:
            log(f"seeding {count:,} dead letters ...")
            seed(runtime_for(app).engine, count)
            raw_seconds = raw_publish(app, count)
            replay_seconds, batches = bulk_replay(app, count, batch_size)
            counts = {queue: int(client.llen(queue)) for queue in (RAW_QUEUE, REPLAY_QUEUE)}
        finally:
            runtime_for(app).close()
            app.close()
            client.delete(RAW_QUEUE, REPLAY_QUEUE)
            client.close()
    if counts != {RAW_QUEUE: count, REPLAY_QUEUE: count}:
        raise RuntimeError(f"a queue does not hold exactly the {count:,} messages published: {counts}")
    raw_rate, replay_rate = count / raw_seconds, count / replay_seconds
    ratio = replay_rate / raw_rate
    log(f"bulk replay: raw send_task {raw_rate:,.0f} msg/s, replay job {replay_rate:,.0f} msg/s")
    return {
        "bench": "bulk_replay",
        "count": count,
        "batch_size": batch_size,
        "batches": batches,
        "raw_seconds": raw_seconds,
        "replay_seconds": replay_seconds,
        "raw_per_s": raw_rate,
        "replay_per_s": replay_rate,
        "ratio": ratio,
        "rows": [
            row(
                f"bulk replay of {count:,} dead letters vs raw send_task (one producer)",
                baseline=raw_rate,
                ours=replay_rate,
                unit="msg/s",
                goal=f">= {GOAL}x",
                ok=ratio >= GOAL,
            )
        ],
    }


def main(argv: list[str] | None = None) -> int:
    """The command line: run, print the figures and a last line of JSON."""
    parser = command_line(__doc__, redis_help="broker (only the benchmark's two queues are touched)")
    parser.add_argument("--count", type=int, default=100_000, help="dead letters (and raw messages)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=Settings.model_fields["dispatcher_batch_size"].default,
        help="dead letters per replay batch (default: the dispatcher's batch size)",
    )
    args = parser.parse_args(argv)
    figures = run(
        count=args.count,
        batch_size=args.batch_size,
        redis_url=args.redis_url,
        pg_url=args.pg_url,
        log=say,
    )
    print()
    print(machine())
    print(f"{args.count:,} messages each, Redis broker {args.redis_url}, replay batches of {args.batch_size}")
    print(f"{'path':<32} {'seconds':>9} {'msg/s':>10}")
    print(f"{'raw send_task (one producer)':<32} {figures['raw_seconds']:9.2f} {figures['raw_per_s']:10,.0f}")
    label = f"bulk replay job ({figures['batches']} batches)"
    print(f"{label:<32} {figures['replay_seconds']:9.2f} {figures['replay_per_s']:10,.0f}")
    print(table(figures["rows"]))
    print(f"queued: raw {args.count:,}, replay {args.count:,}")
    print_json(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
