"""Error recording rate: failed attempts durably recorded per second by one worker, against bare Celery
running the same failing tasks (which records nothing), on the same Redis broker, in the same run; and
the recording layer alone, without Celery.

What is measured:

- **one worker** (a real ``celery worker``, each of ``--pools`` with ``--concurrency``, or the
  concurrency a pool names after a colon, ``threads:32``): ``--count``
  tasks that each raise the same error of a kind (``--kinds``: ``validation`` fails fast,
  ``transient`` schedules a retry due in an hour, ``permanent`` dead-letters). Bare Celery: a plain
  task raising it; Celery logs it and acks (no result backend): failed tasks per second, from the
  first message taken to the queue drained. function-runner: the ``RecoverableTask`` records each
  failed attempt with its decision before the ack (invariant 1), failures of tasks that fail at the
  same time in one process in one transaction (:mod:`function_runner.wrapper.group_commit`): committed
  ``fr_failed_attempts`` rows per second, from the first message taken to the last row. Goal:
  >= 5,000 rows/s.
- **the recording layer alone**: what the wrapper does for each failure (``group_commit(runtime).submit``:
  the group commit running :func:`function_runner.wrapper.failures.record_batch`, the failed attempts with
  their decisions and the compensation update of terminal outcomes), called in a loop by
  ``--threads`` threads of this process, each thread one failure at a time, as the threads of a
  worker's pool, on reports built beforehand the way the wrapper builds them (classified, traceback
  redacted, payload sealed). Against the floor of any unbatched durable record: one ``INSERT`` into
  ``fr_failed_attempts`` and a ``COMMIT`` per failure, same engine, same threads. The best thread
  count of each is shown. Also the rate at which one thread builds the reports (classification,
  traceback, redaction, sealing: the wrapper's CPU outside the database).

Every failure of a run has the same task name and error, so the same fingerprint: a burst of one
error, the common case in production (``--spread N`` spreads the layer's failures over N task names).

Run: ``.venv/bin/python -m bench.recording [--count 5000] [--kinds validation,transient]
[--pools prefork,threads,threads:32] [--concurrency N] [--layer-count 20000]
[--threads 1,2,4,8,16,32,64,128] [--spread 1]
[--redis-url redis://127.0.0.1:6379/11] [--pg-url URL]``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from bench._support import (
    PG_URL,
    QUEUE,
    REDIS_URL,
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
from error_handling.exceptions import PermanentError, TransientError, ValidationError
from error_handling.persistence.models import FailedAttempt, utcnow
from error_handling.persistence.reports import FailureReport, TaskPayload
from error_handling.policy import RecoveryPolicy
from error_handling.sealing import seal_secrets
from function_runner.runtime import Runtime, runtime_for
from function_runner.wrapper.failures import FailureToRecord
from function_runner.wrapper.record import group_commit

GOAL = 5_000.0
#: Retries scheduled by transient failures are due in an hour (nothing is dispatched during the run).
DELAY = 3600.0
TABLES = ("fr_tasks", "fr_failed_attempts", "fr_scheduled_runs", "fr_dead_letters", "fr_error_counts")


# -- one worker --------------------------------------------------------------------------------------


def worker_rate(bench: Services, *, ours: bool, kind: str, count: int, pool: str, concurrency: int) -> float:
    """Run ``count`` failing tasks of ``kind`` through one worker; failures (bare) or committed failed
    attempts (ours) per second."""
    bench.reset()
    bench.truncate(*TABLES)
    task = "bench.recoverable_fail" if ours else "bench.plain_fail"
    bench.publish(task, count, args=[kind])
    worker = bench.worker(pool, concurrency, label=f"recording-{task}-{kind}-{pool}", env=transport_env(task))
    try:

        def started() -> bool:
            check_alive(worker)
            return bench.queued() < count

        def recorded() -> bool:
            check_alive(worker)
            return bench.scalar("SELECT count(*) FROM fr_failed_attempts") >= count

        began = until(started, timeout=120, what="the worker to take its first message")
        if ours:
            ended = until(recorded, timeout=1800, what=f"{count:,} failed attempts recorded", every=0.02)
        ended_drain = until(lambda: bench.pending() == 0, timeout=1800, what="the queue to drain", every=0.01)
        if not ours:
            ended = ended_drain
    finally:
        stop(worker)
    if ours and bench.scalar("SELECT count(*) FROM fr_failed_attempts") != count:
        raise RuntimeError("more failed attempts recorded than tasks run")
    return count / (ended - began)


# -- the recording layer alone -----------------------------------------------------------------------


def _raised(kind: str) -> Exception:
    """The exception of ``kind``, raised and caught (so it has a traceback, as in a worker)."""
    try:
        if kind == "validation":
            raise ValidationError("invalid input: field 'amount' must be positive", reason="invalid_input")
        if kind == "permanent":
            raise PermanentError("account 4711 was closed", reason="not_found")
        raise TransientError("upstream 503", reason="service_unavailable", retry_after=DELAY)
    except Exception as exc:
        return exc


def build_report(runtime: Runtime, kind: str, task_name: str) -> FailureReport:
    """A failure report as :class:`~function_runner.wrapper.task.RecoverableTask` builds it for one failure."""
    exc = _raised(kind)
    classification = runtime.classifier.classify(exc)
    redact = runtime.redactor.redact_text
    classification = classification.replace(
        message=redact(classification.message),
        user_message=redact(runtime.user_messages.for_classification(classification)),
    )
    task_id = uuid.uuid4().hex

    def seal(value: Any) -> Any:
        return seal_secrets(value, redactor=runtime.redactor, sealer=runtime.sealer)

    now = utcnow()
    return FailureReport(
        task_id=task_id,
        attempt=1,
        payload=TaskPayload(
            task_name=task_name,
            args=seal([kind]),
            kwargs=seal({}),
            options={"routing_key": QUEUE, "priority": 0},
            headers=seal({}),
            queue=QUEUE,
            root_id=task_id,
        ),
        classification=classification,
        traceback=redact("".join(traceback.format_exception(exc))),
        failed_at=now,
        started_at=now,
        worker="bench@localhost",
    )


def record_one(runtime: Runtime, report: FailureReport, policy: RecoveryPolicy) -> None:
    """What the wrapper does for one failure (``RecoverableTask._conclude``): hand it to the process's
    group commit (:func:`function_runner.wrapper.record.group_commit`), which records it, with the failures other threads hand in
    meanwhile, in one transaction (the failed attempt with its decision, and for a terminal outcome
    the saga's compensation steps made pending), and returns once that transaction has committed."""
    group_commit(runtime).submit(FailureToRecord(report=report, policy=policy, saga_id=report.task_id))


def insert_one(runtime: Runtime, report: FailureReport, policy: RecoveryPolicy) -> None:
    """The floor of an unbatched durable record: one row into ``fr_failed_attempts``, its own
    transaction."""
    c = report.classification
    statement = sa.insert(FailedAttempt).values(
        task_id=report.task_id,
        attempt=report.attempt,
        task_name=report.payload.task_name,
        queue=report.payload.queue,
        worker=report.worker,
        exc_type=c.exc_type,
        message=c.message,
        traceback=report.traceback,
        category=c.category.value,
        reason=c.reason,
        fingerprint=c.fingerprint,
        decision="fail_fast",
        failed_at=report.failed_at,
        started_at=report.started_at,
    )
    runtime.in_transaction(lambda s: s.execute(statement))


Writer = Callable[[Runtime, FailureReport, RecoveryPolicy], None]


def in_threads(runtime: Runtime, reports: Sequence[FailureReport], threads: int, write: Writer) -> float:
    """Write every report from ``threads`` threads, each thread one report at a time; reports per
    second."""
    policy = runtime.policy
    shares = [reports[i::threads] for i in range(threads)]
    errors: list[BaseException] = []
    ready = threading.Barrier(threads + 1)

    def work(share: Sequence[FailureReport]) -> None:
        ready.wait()
        try:
            for report in share:
                write(runtime, report, policy)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(share,)) for share in shares]
    for thread in workers:
        thread.start()
    ready.wait()
    began = time.perf_counter()
    for thread in workers:
        thread.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return len(reports) / elapsed


def layer(bench: Services, *, kind: str, count: int, threads: Sequence[int], spread: int, log: Any) -> dict[str, Any]:
    """The recording layer alone and the single-INSERT floor, at each thread count; their rates."""
    runtime = runtime_for(bench.app)
    runtime.engine.dispose()
    build_began = time.perf_counter()
    names = [f"bench.recoverable_fail_{i:03d}" if spread > 1 else "bench.recoverable_fail" for i in range(spread)]
    warm = [build_report(runtime, kind, names[i % spread]) for i in range(50)]
    build_began = time.perf_counter()
    reports = [build_report(runtime, kind, names[i % spread]) for i in range(count)]
    build_rate = count / (time.perf_counter() - build_began)
    found: dict[str, Any] = {"build_per_s": build_rate, "record": {}, "insert": {}}
    for n in threads:
        for name, write in (("insert", insert_one), ("record", record_one)):
            bench.truncate(*TABLES)
            in_threads(runtime, warm, 1, write)  # connections opened, statements compiled
            bench.truncate(*TABLES)
            rate = in_threads(runtime, reports, n, write)
            found[name][n] = rate
            log(f"layer alone, {kind}, {n} thread(s), {name}: {rate:,.0f}/s")
    bench.truncate(*TABLES)
    return found


def run(
    *,
    count: int = 5_000,
    kinds: tuple[str, ...] = ("validation", "transient"),
    pools: tuple[str, ...] = ("prefork", "threads", "threads:32"),
    concurrency: int | None = None,
    layer_count: int = 20_000,
    threads: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128),
    spread: int = 1,
    redis_url: str = REDIS_URL,
    pg_url: str = PG_URL,
    log: Any = print,
) -> dict[str, Any]:
    """Run the benchmark; return its figures (``worker``, ``layer``) and its table ``rows``."""
    concurrency = concurrency or os.cpu_count() or 2
    settings = {"retry_base_delay": str(DELAY), "retry_max_delay": str(DELAY)}
    workers: dict[str, dict[str, float]] = {}
    layers: dict[str, dict[str, Any]] = {}
    with services(redis_url, pg_url, settings, env={"FR_BENCH_DELAY": str(DELAY)}) as bench, bench.analyzing():
        for spec in pools:
            pool, _, wide = spec.partition(":")
            for kind in kinds:
                figures: dict[str, float] = {}
                for side in ("plain", "recoverable"):
                    rate = worker_rate(
                        bench,
                        ours=side == "recoverable",
                        kind=kind,
                        count=count,
                        pool=pool,
                        concurrency=int(wide) if wide else concurrency,
                    )
                    figures[side] = rate
                    log(f"one worker, {spec}, {kind}, {side}: {rate:,.0f}/s")
                workers[f"{spec}_{kind}"] = {**figures, "ratio": figures["recoverable"] / figures["plain"]}
        if layer_count:
            for kind in kinds:
                layers[kind] = layer(bench, kind=kind, count=layer_count, threads=threads, spread=spread, log=log)
    rows = []
    for name, figures in workers.items():
        spec, kind = name.split("_", 1)
        pool, _, wide = spec.partition(":")
        rows.append(
            row(
                f"failed attempts recorded, one worker ({pool}, c={wide or concurrency}, {count:,} {kind} errors)",
                baseline=figures["plain"],
                ours=figures["recoverable"],
                unit="per s",
                goal=f">= {GOAL:,.0f}/s",
                ok=figures["recoverable"] >= GOAL,
            )
        )
    for kind, found in layers.items():
        best_record = max(found["record"].items(), key=lambda item: item[1])
        best_insert = max(found["insert"].items(), key=lambda item: item[1])
        rows.append(
            row(
                f"recording layer alone, {kind} (one process, best of {'/'.join(map(str, threads))} threads: "
                f"{best_record[0]}; baseline: one INSERT + COMMIT each, {best_insert[0]})",
                baseline=best_insert[1],
                ours=best_record[1],
                unit="per s",
                goal=f">= {GOAL:,.0f}/s",
                ok=best_record[1] >= GOAL,
            )
        )
    return {
        "bench": "recording",
        "count": count,
        "concurrency": concurrency,
        "layer_count": layer_count,
        "spread": spread,
        "worker": workers,
        "layer": layers,
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """The command line: run, print the table and a last line of JSON."""
    parser = command_line(__doc__)
    parser.add_argument("--count", type=int, default=5_000, help="failing tasks per worker run (0: skip)")
    parser.add_argument("--kinds", default="validation,transient", help="validation, transient, permanent")
    parser.add_argument(
        "--pools", default="prefork,threads,threads:32", help="comma-separated worker pools (pool[:concurrency])"
    )
    parser.add_argument("--concurrency", type=int, default=None, help="worker concurrency (default: cores)")
    parser.add_argument("--layer-count", type=int, default=20_000, help="failures per layer-alone run (0: skip)")
    parser.add_argument("--threads", default="1,2,4,8,16,32,64,128", help="thread counts of the layer-alone runs")
    parser.add_argument("--spread", type=int, default=1, help="task names the layer's failures are spread over")
    args = parser.parse_args(argv)
    figures = run(
        count=args.count,
        kinds=tuple(args.kinds.split(",")),
        pools=tuple(args.pools.split(",")) if args.count else (),
        concurrency=args.concurrency,
        layer_count=args.layer_count,
        threads=tuple(int(n) for n in args.threads.split(",")),
        spread=args.spread,
        redis_url=args.redis_url,
        pg_url=args.pg_url,
        log=say,
    )
    print()
    print(machine())
    for kind, found in figures["layer"].items():
        print(f"building one {kind} failure report (classify, redact, seal), one thread: {found['build_per_s']:,.0f}/s")
    print(table(figures["rows"]))
    print_json(figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
