"""Worker memory while ``--count`` retries wait an hour: Celery's ETA messages against this project's
scheduled runs, on the same Redis broker, in the same run.

What is measured (a real ``celery worker``, ``--pool`` with ``--concurrency``, for each side):

- **bare Celery**: ``--count`` tasks that fail on their first run with ``autoretry_for`` and
  ``countdown=--delay`` (an hour by default). Each retry is an ETA message, which a Celery 5 worker
  fetches at once and keeps in its memory (and in Redis' ``unacked`` hash) until it is due: every ETA
  message it holds raises its prefetch limit by one, so ``worker_prefetch_multiplier`` does not bound
  them (only ``worker_eta_task_limit``, unset by default, would). Measured once every retry was
  published (signal ``task_retry``), the queue is empty and the worker holds all ``--count`` of them
  unacked.
- **function-runner**: ``--count`` ``RecoverableTask`` tasks that fail on their first run with a
  ``TransientError`` whose retry hint is ``--delay`` (the policy's base and maximum delays are set to
  ``--delay`` too): each failed attempt is recorded with its retry, a row in ``fr_scheduled_runs`` due
  in an hour, and the message is acked. A ``function-runner dispatcher`` runs alongside (the process
  that publishes delayed work when it is due). Measured once ``--count`` runs are pending in Postgres
  and the broker holds nothing (queue empty, nothing unacked).

For each worker: the resident memory (VmRSS from ``/proc``) of its main process, of the whole tree
(main + pool children; pages shared by forked children count in each) and the tree's PSS (shared
pages divided among the processes), idle (after one warm-up task) and holding the delayed work; the
dispatcher's too. The ratio is function-runner's worker tree / bare Celery's worker tree (lower is
better; goal: at most 1.0). The pool children grow with the failures they ran, on both sides alike (a
Celery 5.7 worker's children grow by up to ~180 MiB each over their first few thousand failed tasks,
then stay there), so whether the delayed work itself is held is read on the main process (where
Celery keeps ETA messages) and the dispatcher: their growth must stay under 5 % of Celery's.

Run: ``.venv/bin/python -m bench.memory [--count 50000] [--delay 3600] [--pool prefork]
[--concurrency N] [--redis-url redis://127.0.0.1:6379/11] [--pg-url URL]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from bench._support import (
    PG_URL,
    REDIS_URL,
    RETRIED,
    check_alive,
    command_line,
    machine,
    print_json,
    row,
    rss_mib,
    say,
    stop,
    table,
    until,
)
from bench._workers import KOMBU_TRANSPORT, Services, services

GOAL = 1.0
#: "Holds nothing": a process's growth under this share of what Celery's worker needed for the same work.
SMALL = 0.05


def _warm(bench: Services, task: str, *processes: subprocess.Popen[bytes]) -> None:
    """Run one ``task`` through the worker and wait for its ack (the worker is up and warm)."""
    bench.publish(task, 1)

    def done() -> bool:
        check_alive(*processes)
        return bench.pending() == 0

    until(done, timeout=120, what=f"the worker to run {task}", every=0.05)


def bare_celery(bench: Services, count: int, pool: str, concurrency: int, log: Any) -> dict[str, Any]:
    """Celery's ETA retries: worker memory idle and holding ``count`` of them."""
    bench.reset()
    worker = bench.worker(pool, concurrency, label=f"memory-plain-{pool}", env=KOMBU_TRANSPORT)
    try:
        _warm(bench, "bench.plain_noop", worker)
        idle = rss_mib(worker.pid)
        log(f"bare Celery worker idle: {idle['tree']:.1f} MiB (main {idle['main']:.1f} MiB)")
        bench.publish("bench.plain_fail_once", count)

        def holding() -> bool:
            check_alive(worker)
            return bench.counter(RETRIED) >= count and bench.queued() == 0 and bench.unacked() == count

        until(holding, timeout=max(600, count / 20), what=f"the worker to hold {count:,} ETA retries", every=0.5)
        held = rss_mib(worker.pid)
        log(f"bare Celery worker holding {count:,} ETA retries: {held['tree']:.1f} MiB (main {held['main']:.1f} MiB)")
        unacked = bench.unacked()
    finally:
        stop(worker, grace=60)
    return {"idle": idle, "held": held, "unacked": unacked}


def function_runner(bench: Services, count: int, pool: str, concurrency: int, log: Any) -> dict[str, Any]:
    """This project's retries as rows: worker and dispatcher memory idle and with ``count`` pending."""
    bench.reset()
    dispatcher = bench.dispatcher(label="memory")
    worker = bench.worker(pool, concurrency, label=f"memory-recoverable-{pool}")
    try:
        _warm(bench, "bench.recoverable_noop", worker, dispatcher)
        idle, dispatcher_idle = rss_mib(worker.pid), rss_mib(dispatcher.pid)
        log(f"function-runner worker idle: {idle['tree']:.1f} MiB; dispatcher {dispatcher_idle['tree']:.1f} MiB")
        bench.publish("bench.recoverable_fail_once", count)
        sql = "SELECT count(*) FROM fr_scheduled_runs WHERE status = 'pending'"

        def recorded() -> bool:
            check_alive(worker, dispatcher)
            return bench.pending() == 0 and bench.scalar(sql) >= count

        until(recorded, timeout=max(600, count / 20), what=f"{count:,} retries to be scheduled", every=0.5)
        held, dispatcher_held = rss_mib(worker.pid), rss_mib(dispatcher.pid)
        log(
            f"function-runner with {count:,} scheduled retries: worker {held['tree']:.1f} MiB, "
            f"dispatcher {dispatcher_held['tree']:.1f} MiB"
        )
        unacked = bench.unacked()
        pending = bench.scalar(sql)
        soonest = bench.scalar(
            "SELECT coalesce(extract(epoch FROM min(due_at) - now()), 0)::int FROM fr_scheduled_runs "
            "WHERE status = 'pending'"
        )
    finally:
        stop(worker, grace=60)
        stop(dispatcher)
    return {
        "idle": idle,
        "held": held,
        "dispatcher_idle": dispatcher_idle,
        "dispatcher_held": dispatcher_held,
        "unacked": unacked,
        "pending_runs": pending,
        "soonest_due_in_s": soonest,
    }


def run(
    *,
    count: int = 50_000,
    delay: float = 3600.0,
    pool: str = "prefork",
    concurrency: int | None = None,
    redis_url: str = REDIS_URL,
    pg_url: str = PG_URL,
    log: Any = print,
) -> dict[str, Any]:
    """Run the benchmark; return its figures (``bare``, ``ours``, ``ratio``) and its table ``rows``."""
    concurrency = concurrency or os.cpu_count() or 2
    settings = {"retry_base_delay": str(delay), "retry_max_delay": str(delay)}
    with services(redis_url, pg_url, settings, env={"FR_BENCH_DELAY": str(delay)}) as bench, bench.analyzing():
        bare = bare_celery(bench, count, pool, concurrency, log)
        ours = function_runner(bench, count, pool, concurrency, log)
    ratio = ours["held"]["tree"] / bare["held"]["tree"]
    bare_grown = bare["held"]["main"] - bare["idle"]["main"]  # Celery keeps ETA messages in the main process
    ours_grown = ours["held"]["main"] - ours["idle"]["main"]
    dispatcher_grown = ours["dispatcher_held"]["main"] - ours["dispatcher_idle"]["main"]
    small = SMALL * max(bare_grown, 1.0)
    rows = [
        row(
            f"worker RSS, {count:,} retries due in {delay:,.0f} s ({pool}: main + {concurrency} children)",
            baseline=bare["held"]["tree"],
            ours=ours["held"]["tree"],
            unit="MiB",
            goal=f"<= {GOAL}x",
            ok=ratio <= GOAL,
        ),
        row(
            "worker main process: growth while they wait (where Celery keeps ETA messages)",
            baseline=bare_grown,
            ours=ours_grown,
            unit="MiB",
            goal=f"< {SMALL:.0%} of Celery's",
            ok=ours_grown < small,
        ),
        row(
            "dispatcher: growth while they wait (it publishes them when due)",
            baseline=None,
            ours=dispatcher_grown,
            unit="MiB",
            goal=f"< {SMALL:.0%} of Celery's",
            ok=dispatcher_grown < small,
        ),
    ]
    return {
        "bench": "memory",
        "count": count,
        "delay": delay,
        "pool": pool,
        "concurrency": concurrency,
        "bare": bare,
        "ours": ours,
        "ratio": ratio,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """The command line: run, print the table and a last line of JSON."""
    parser = command_line(__doc__)
    parser.add_argument("--count", type=int, default=50_000, help="delayed retries")
    parser.add_argument("--delay", type=float, default=3600.0, help="retry delay (s)")
    parser.add_argument("--pool", default="prefork", help="worker pool")
    parser.add_argument("--concurrency", type=int, default=None, help="worker concurrency (default: cores)")
    args = parser.parse_args(argv)
    figures = run(
        count=args.count,
        delay=args.delay,
        pool=args.pool,
        concurrency=args.concurrency,
        redis_url=args.redis_url,
        pg_url=args.pg_url,
        log=say,
    )
    print()
    print(machine())
    bare, ours = figures["bare"], figures["ours"]
    print(f"{'process':<44} {'main MiB':>9} {'tree MiB':>9} {'tree PSS':>9}")
    for label, m in (
        ("bare Celery worker, idle", bare["idle"]),
        (f"bare Celery worker, {args.count:,} ETA retries held", bare["held"]),
        ("function-runner worker, idle", ours["idle"]),
        (f"function-runner worker, {args.count:,} runs pending", ours["held"]),
        ("function-runner dispatcher, idle", ours["dispatcher_idle"]),
        (f"function-runner dispatcher, {args.count:,} pending", ours["dispatcher_held"]),
    ):
        print(f"{label:<44} {m['main']:9.1f} {m['tree']:9.1f} {m['pss']:9.1f}")
    print(table(figures["rows"]))
    print_json(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
