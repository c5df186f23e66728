"""Worker throughput through :class:`~function_runner.wrapper.task.RecoverableTask` against bare Celery doing the
same work, on the same Redis broker, in the same run.

What is measured, for each pool (``prefork`` and ``threads``):

- **success path**: ``--count`` no-op tasks are queued, then a real ``celery worker`` is started on
  the queue; the clock runs from the first message taken off the queue to the queue and its unacked
  set being empty (worker start-up is not timed), and every task must have run. Three drains,
  alternating, ``--rounds`` times, the best round of each counting: a plain Celery task on kombu's own
  Redis transport (bare Celery), a plain task on function-runner's reliable transport
  (``function_runner.broker.redis_transport``, what ``create_app`` gives a ``redis://`` broker), and a
  ``RecoverableTask`` on the reliable transport; same app, same settings otherwise (acks late,
  prefetch 1, JSON). Rows: the wrapper alone (recoverable vs plain, both on the reliable transport;
  goal >= 0.98), the transport alone, and both together against bare Celery.
- **failure path**: ``--fail-count`` tasks that fail twice and then succeed (3 attempts each). Bare
  Celery: ``autoretry_for`` with ``countdown=0`` (republished at once, recorded nowhere), on kombu's
  transport. This project, on its reliable transport:
  each failed attempt is classified and recorded in Postgres with its decision, each retry is a row
  that one ``function-runner dispatcher`` publishes when due (backoff set to 1 ms and the dispatcher
  polling every 100 ms, so both do the same work; polling every 10 ms costs the dispatcher ~20 % of a
  core and was no faster), and the recovery is recorded too. Attempts per second from the first
  message taken to the last success. Goal: >= 1.0.

- **the wrapper's own cost per call**, in-process: Celery's eager ``apply`` of a plain no-op task and
  of a ``RecoverableTask`` no-op on one app (SQLite, in-memory broker: the success path touches
  neither), best of 5 loops of 20,000 calls each, in microseconds per call. It is what the wrapper adds
  to each task, without a worker's run-to-run spread.

Each fail-twice task counts its starts in Redis (both kinds alike); the worker runs with
``--concurrency`` (default: the number of cores). Prints a table and a last line of JSON.

Run: ``.venv/bin/python -m bench.throughput [--count 20000] [--fail-count 2000] [--rounds 2]
[--pools prefork,threads] [--concurrency N] [--redis-url redis://127.0.0.1:6379/11] [--pg-url URL]``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench._support import (
    PG_URL,
    RAN,
    REDIS_URL,
    SUCCEEDED,
    check_alive,
    command_line,
    machine,
    print_json,
    row,
    say,
    stop,
    table,
    until,
)
from bench._workers import Services, services, transport_env
from error_handling.sealing import generate_key
from function_runner.app import create_app
from function_runner.runtime import runtime_for
from function_runner.settings import Settings
from function_runner.wrapper.task import RecoverableTask

SUCCESS_GOAL = 0.98
FAILURE_GOAL = 1.0

#: Worker settings for this benchmark: retries due at once, a dispatcher that polls every 100 ms.
SETTINGS = {"retry_base_delay": "0.001", "retry_max_delay": "0.001", "dispatcher_interval": "0.1"}


def drain_rate(
    bench: Services, task: str, count: int, pool: str, concurrency: int, *, reliable: bool | None = None
) -> float:
    """Queue ``count`` no-op tasks, start a worker, time the drain; tasks per second."""
    bench.reset()
    bench.publish(task, count)
    worker = bench.worker(pool, concurrency, label=f"{task}-{pool}", env=transport_env(task, reliable=reliable))
    try:

        def started() -> bool:
            check_alive(worker)
            return bench.queued() < count

        began = until(started, timeout=120, what="the worker to take its first message")
        ended = until(lambda: bench.pending() == 0, timeout=900, what="the queue to drain", every=0.01)
    finally:
        stop(worker)
    ran = bench.counter(RAN)  # every message ran, none was dropped on the way
    if ran != count:
        raise RuntimeError(f"{ran} of {count} no-op tasks ran")
    return count / (ended - began)


def failure_rate(bench: Services, task: str, count: int, pool: str, concurrency: int) -> float:
    """Queue ``count`` fail-twice tasks, start a worker (and a dispatcher for ours), time until every
    task succeeded on its third start; attempts per second."""
    bench.reset()
    bench.publish(task, count)
    ours = task.startswith("bench.recoverable")
    helpers = [bench.dispatcher(label=pool)] if ours else []
    worker = bench.worker(pool, concurrency, label=f"{task}-{pool}", env=transport_env(task))
    try:

        def started() -> bool:
            check_alive(worker, *helpers)
            return bench.queued() < count

        def done() -> bool:
            check_alive(worker, *helpers)
            return bench.counter(SUCCEEDED) >= count

        began = until(started, timeout=120, what="the worker to take its first message")
        ended = until(done, timeout=900, what="every task to succeed", every=0.01)
        until(lambda: bench.pending() == 0, timeout=60, what="the last acks")
    finally:
        stop(worker)
        for helper in helpers:
            stop(helper)
    if ours:  # every failed attempt and every recovery is in the database
        failed = bench.scalar(
            "SELECT count(*) FROM fr_failed_attempts WHERE task_name = 'bench.recoverable_fail_twice'"
        )
        if failed != 2 * count:
            raise RuntimeError(f"{failed} failed attempts recorded, expected {2 * count}")
        bench.truncate("fr_tasks", "fr_failed_attempts", "fr_scheduled_runs", "fr_error_counts")
    return 3 * count / (ended - began)


def call_cost(calls: int = 20_000, loops: int = 5) -> dict[str, float]:
    """Microseconds per eager call of a plain no-op task and of a ``RecoverableTask`` no-op (best loop)."""
    with tempfile.TemporaryDirectory(prefix="fr_bench_calls_") as folder:
        data = Path(folder)
        settings = Settings(
            data_dir=data,
            database_url=f"sqlite:///{data / 'calls.sqlite3'}",
            broker_url="memory://",
            encryption_key=SecretStr(generate_key()),
        )
        app = create_app(settings, main="fr_bench_calls")
        try:
            tasks = {
                "plain": app.task(name="bench.calls.plain")(_nothing),
                "recoverable": app.task(base=RecoverableTask, name="bench.calls.recoverable")(_nothing),
            }
            best = dict.fromkeys(tasks, float("inf"))
            for _ in range(loops):
                for kind, task in tasks.items():
                    began = time.perf_counter()
                    for i in range(calls):
                        task.apply(task_id=f"c{i}")
                    best[kind] = min(best[kind], (time.perf_counter() - began) / calls * 1e6)
        finally:
            runtime_for(app).close()
            app.close()
    return best


def _nothing() -> None:
    """A no-op task body."""


def run(
    *,
    count: int = 20_000,
    fail_count: int = 2_000,
    rounds: int = 2,
    pools: tuple[str, ...] = ("prefork", "threads"),
    concurrency: int | None = None,
    redis_url: str = REDIS_URL,
    pg_url: str = PG_URL,
    log: Any = print,
) -> dict[str, Any]:
    """Run the benchmark; return its figures (``results`` per path and pool) and its table ``rows``."""
    concurrency = concurrency or os.cpu_count() or 2
    results: dict[str, dict[str, float]] = {}
    calls = call_cost()
    log(f"per call, in-process: plain {calls['plain']:.1f} us, recoverable {calls['recoverable']:.1f} us")
    with services(redis_url, pg_url, SETTINGS) as bench, bench.analyzing():
        for pool in pools:
            best: dict[str, float] = {}
            for _ in range(rounds):
                for kind, task, reliable in (
                    ("plain", "bench.plain_noop", False),
                    ("recoverable", "bench.recoverable_noop", True),
                    ("plain_reliable", "bench.plain_noop", True),
                ):
                    rate = drain_rate(bench, task, count, pool, concurrency, reliable=reliable)
                    best[kind] = max(best.get(kind, 0.0), rate)
                    log(f"success path, {pool}, {kind.replace('_', ' on the ')} transport: {rate:,.0f} tasks/s")
            # the wrapper alone (both tasks on the reliable transport), the transport alone (a plain task
            # on each), and what create_app gives against bare Celery (both together)
            for name, ours, theirs in (
                ("success", "recoverable", "plain_reliable"),
                ("transport", "plain_reliable", "plain"),
                ("together", "recoverable", "plain"),
            ):
                results[f"{name}_{pool}"] = {
                    "plain": best[theirs],
                    "recoverable": best[ours],
                    "ratio": best[ours] / best[theirs],
                }
            if fail_count:
                fail: dict[str, float] = {}
                for kind in ("plain", "recoverable"):
                    rate = failure_rate(bench, f"bench.{kind}_fail_twice", fail_count, pool, concurrency)
                    fail[kind] = rate
                    log(f"failure path, {pool}, {kind}: {rate:,.0f} attempts/s")
                results[f"failure_{pool}"] = {**fail, "ratio": fail["recoverable"] / fail["plain"]}
    rows = [
        row(
            "the wrapper's own cost per call, in-process (eager apply of a no-op, best of 5 x 20,000)",
            baseline=calls["plain"],
            ours=calls["recoverable"],
            unit="us/call",
            goal="(what the rows below include)",
            ok=True,
        )
    ]
    for name, figures in results.items():
        path, pool = name.split("_", 1)
        if path == "success":
            measure = (
                f"success path, {pool} pool: RecoverableTask vs plain task, same transport "
                f"({count:,} no-op tasks, best of {rounds})"
            )
            unit, goal = "tasks/s", SUCCESS_GOAL
        elif path == "transport":
            measure = f"success path, {pool} pool: reliable Redis transport vs kombu's (plain no-op tasks)"
            unit, goal = "tasks/s", SUCCESS_GOAL
        elif path == "together":
            measure = f"success path, {pool} pool: both (create_app's worker) vs bare Celery on kombu's transport"
            unit, goal = "tasks/s", SUCCESS_GOAL
        else:
            measure = f"failure path, {pool} pool ({fail_count:,} tasks failing twice)"
            unit, goal = "attempts/s", FAILURE_GOAL
        rows.append(
            row(
                measure,
                baseline=figures["plain"],
                ours=figures["recoverable"],
                unit=unit,
                goal=f">= {goal}x",
                ok=figures["ratio"] >= goal,
            )
        )
    return {
        "bench": "throughput",
        "count": count,
        "fail_count": fail_count,
        "rounds": rounds,
        "concurrency": concurrency,
        "results": results,
        "calls_us": calls,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """The command line: run, print the table and a last line of JSON."""
    parser = command_line(__doc__)
    parser.add_argument("--count", type=int, default=20_000, help="no-op tasks per success-path round")
    parser.add_argument("--fail-count", type=int, default=2_000, help="fail-twice tasks (0: skip the failure path)")
    parser.add_argument("--rounds", type=int, default=2, help="success-path rounds per kind (the best counts)")
    parser.add_argument("--pools", default="prefork,threads", help="comma-separated worker pools")
    parser.add_argument("--concurrency", type=int, default=None, help="worker concurrency (default: cores)")
    args = parser.parse_args(argv)
    figures = run(
        count=args.count,
        fail_count=args.fail_count,
        rounds=args.rounds,
        pools=tuple(args.pools.split(",")),
        concurrency=args.concurrency,
        redis_url=args.redis_url,
        pg_url=args.pg_url,
        log=say,
    )
    print()
    print(machine())
    print(f"Redis broker {args.redis_url}, worker concurrency {figures['concurrency']}")
    print(table(figures["rows"]))
    print_json(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
