"""API latency with a million failed attempts in Postgres.

What is measured: the time a real ``function-runner api`` process (uvicorn, one worker, on this
machine) takes to answer ``GET /api/v1/errors`` (unfiltered; filtered by task name; filtered by
category; a page deep in a cursor walk; a text search) and ``GET /api/v1/errors/stats`` (the default
hour, a day, the largest window of a week), over keep-alive HTTP from one client, sequentially.
Each request is timed end to end by the client; the script prints p50, p95 and p99 per endpoint.
The goal stated by the project is p95 <= 50 ms.

The rows: ``--rows`` failed attempts (default 1,000,000) spread evenly over the last ``--days`` days
(default 7, so the week-long statistics window covers all of them: the worst case). They are of
``--kinds`` kinds of error (default 500: a kind is a task name among 200, a category, a reason among
20 and its own fingerprint, as a fingerprint names one error of one task), drawn with Zipf-like
weights (a few kinds make most of the failures, as in a real fleet). They are written with COPY into
a scratch database migrated to 0004, then the database is migrated to head, so the hourly roll-up is
filled by the real migration; then ``ANALYZE``.

Run: ``.venv/bin/python -m bench.api_latency [--rows 1000000] [--days 7] [--kinds 500] [--requests 200]
[--port 8765] [--pg-url URL]``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench._support import (
    PG_URL,
    command_line,
    machine,
    print_json,
    row,
    say,
    scratch_database,
    spawn,
    stop,
    wait_for_http,
)
from error_handling.sealing import generate_key
from function_runner.migrate import upgrade

CATEGORIES = ("transient", "resource", "validation", "permanent")
DECISIONS = {"transient": "retry", "resource": "wait", "validation": "fail_fast", "permanent": "dead_letter"}
COLUMNS = (
    "task_id",
    "attempt",
    "task_name",
    "queue",
    "worker",
    "exc_type",
    "message",
    "category",
    "reason",
    "fingerprint",
    "decision",
    "failed_at",
    "started_at",
    "duration_ms",
)


def rows(count: int, days: float, kinds: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """``count`` failed attempts of ``kinds`` kinds, oldest first, evenly spread over the last ``days`` days."""
    rng = random.Random(seed)
    table = [
        (f"app.task_{rng.randrange(200):03d}", CATEGORIES[rng.randrange(4)], f"reason_{rng.randrange(20):02d}", k)
        for k in range(kinds)
    ]
    # cumulative once (choices would sum them on every draw): the same draws as with plain weights
    weights = list(itertools.accumulate(1 / (rank + 1) for rank in range(kinds)))
    end = dt.datetime.now(dt.UTC)
    step = dt.timedelta(days=days) / count
    start = end - dt.timedelta(days=days)
    for i in range(count):
        task_name, category, reason, kind = rng.choices(table, cum_weights=weights)[0]
        failed_at = start + step * i
        yield (
            f"bench-{i:08d}",
            1,
            task_name,
            "celery",
            "worker@bench",
            "openai.RateLimitError",
            f"Error code: 429 - request {i} was rate limited, try again later",
            category,
            reason,
            f"{kind:016x}",
            DECISIONS[category],
            failed_at,
            failed_at - dt.timedelta(milliseconds=40),
            40.0,
        )


def seed(url: str, count: int, days: float, kinds: int) -> float:
    """Migrate to 0004, COPY ``count`` attempts, migrate to head (which fills the roll-up), ANALYZE.

    Returns the seconds it took.
    """
    import psycopg

    began = time.perf_counter()
    upgrade(url, "0004")
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with (
        psycopg.connect(dsn) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY fr_failed_attempts ({', '.join(COLUMNS)}) FROM STDIN") as copy,
    ):
        for row in rows(count, days, kinds):
            copy.write_row(row)
    upgrade(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE")
    return time.perf_counter() - began


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p95 and p99 of ``samples`` (seconds), in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000, cuts[98] * 1000


def measure(client: httpx.Client, path: str, params: dict[str, Any], requests: int) -> list[float]:
    """Time ``requests`` sequential GETs (after 5 unmeasured ones); every answer must be 200."""
    samples = []
    for i in range(requests + 5):
        began = time.perf_counter()
        response = client.get(path, params=params)
        elapsed = time.perf_counter() - began
        if response.status_code != 200:
            raise SystemExit(f"GET {path} {params} answered {response.status_code}: {response.text[:300]}")
        if i >= 5:
            samples.append(elapsed)
    return samples


def deep_cursor(client: httpx.Client, pages: int) -> str:
    """The cursor of the page after ``pages`` pages of 500 (a walk well into the table)."""
    cursor = None
    for _ in range(pages):
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        body = client.get("/api/v1/errors", params=params).json()
        cursor = body["next_cursor"]
    assert cursor, "the table is smaller than the walk"
    return str(cursor)


GOAL_MS = 50.0


@contextlib.contextmanager
def serving(*, rows: int, days: float, kinds: int, port: int, pg_url: str, log: Any = print) -> Iterator[httpx.Client]:
    """A real ``function-runner api`` over a scratch database seeded with ``rows`` attempts of ``kinds``
    kinds (:func:`seed`), and a keep-alive client of it; both stopped and dropped at the end."""
    with scratch_database(pg_url, migrate=False) as url, tempfile.TemporaryDirectory(prefix="fr_bench_") as folder:
        log(f"seeding {rows:,} failed attempts of {kinds:,} kinds over {days:g} days ...")
        log(f"seeded in {seed(url, rows, days, kinds):.1f} s")
        env = {
            **os.environ,
            "FUNCTION_RUNNER_DATABASE_URL": url,
            "FUNCTION_RUNNER_BROKER_URL": "memory://",
            "FUNCTION_RUNNER_DATA_DIR": folder,
            "FUNCTION_RUNNER_LOG_LEVEL": "WARNING",
            # a server database needs the key every process seals with (the API refuses to start without it)
            "FUNCTION_RUNNER_ENCRYPTION_KEY": generate_key(),
        }
        args = [sys.executable, "-m", "function_runner.cli", "api", "--host", "127.0.0.1", "--port", str(port)]
        server = spawn([*args, "--log-level", "warning"], env=env, log=Path(folder) / "api.log")
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for_http(f"{base}/api/v1/errors?limit=1", timeout=60)
            with httpx.Client(base_url=base, timeout=30) as client:
                yield client
        finally:
            stop(server)


def timed(client: httpx.Client, cases: list[tuple[str, str, dict[str, Any]]], requests: int) -> list[dict[str, Any]]:
    """p50, p95 and p99 of each case ``(label, path, params)``."""
    results: list[dict[str, Any]] = []
    for label, path, params in cases:
        p50, p95, p99 = percentiles(measure(client, path, params, requests))
        results.append({"endpoint": label, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99})
    return results


def run(
    *,
    rows: int = 1_000_000,
    days: float = 7.0,
    kinds: int = 500,
    requests: int = 200,
    port: int = 8765,
    pg_url: str = PG_URL,
    log: Any = print,
) -> dict[str, Any]:
    """Run the benchmark; return its figures (``results`` per endpoint) and its table ``rows``."""
    with serving(rows=rows, days=days, kinds=kinds, port=port, pg_url=pg_url, log=log) as client:
        cursor = deep_cursor(client, 20)
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("GET /errors (newest page of 50)", "/api/v1/errors", {"limit": 50}),
            ("GET /errors?limit=500", "/api/v1/errors", {"limit": 500}),
            ("GET /errors?task_name=", "/api/v1/errors", {"task_name": "app.task_042", "limit": 50}),
            ("GET /errors?category=", "/api/v1/errors", {"category": "resource", "limit": 50}),
            ("GET /errors, page 21 of a cursor walk", "/api/v1/errors", {"limit": 50, "cursor": cursor}),
            ("GET /errors?q= (text search)", "/api/v1/errors", {"q": "request 99", "limit": 50}),
            ("GET /errors/stats (last hour)", "/api/v1/errors/stats", {}),
            ("GET /errors/stats?window_minutes=1440", "/api/v1/errors/stats", {"window_minutes": 1440}),
            ("GET /errors/stats?window_minutes=10080", "/api/v1/errors/stats", {"window_minutes": 10080}),
        ]
        results = timed(client, cases, requests)
    return figures_of(
        "api_latency",
        title=f"API p95 at {rows:,} failed attempts",
        results=results,
        goal_ms=GOAL_MS,
        seeded={"rows_seeded": rows, "days": days, "kinds": kinds, "requests": requests},
        log=log,
    )


def figures_of(
    bench: str, *, title: str, results: list[dict[str, Any]], goal_ms: float, seeded: dict[str, Any], log: Any
) -> dict[str, Any]:
    """A latency benchmark's figures: what was seeded, each endpoint's percentiles, the worst p95, and
    its table rows (``title: endpoint``, against ``p95 <= goal_ms``)."""
    worst = max(r["p95_ms"] for r in results)
    log(f"{bench}: worst p95 {worst:.1f} ms")
    return {
        "bench": bench,
        **seeded,
        "worst_p95_ms": worst,
        "results": results,
        "rows": [
            row(
                f"{title}: {r['endpoint']}",
                baseline=None,
                ours=r["p95_ms"],
                unit="ms",
                goal=f"p95 <= {goal_ms:.0f} ms",
                ok=r["p95_ms"] <= goal_ms,
            )
            for r in results
        ],
    }


def command(doc: str | None, run: Any, *, kinds: int, port: int, goal_ms: float, argv: list[str] | None) -> int:
    """A latency benchmark's command line: parse, ``run``, print p50/p95/p99 per endpoint and a last
    line of JSON."""
    parser = command_line(doc, redis_help=None)
    parser.add_argument("--rows", type=int, default=1_000_000, help="failed attempts seeded")
    parser.add_argument("--days", type=float, default=7.0, help="the rows span the last N days")
    parser.add_argument("--kinds", type=int, default=kinds, help="distinct kinds of error (fingerprints, groups)")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per endpoint")
    parser.add_argument("--port", type=int, default=port, help="port of the API server")
    args = parser.parse_args(argv)
    figures = run(
        rows=args.rows,
        days=args.days,
        kinds=args.kinds,
        requests=args.requests,
        port=args.port,
        pg_url=args.pg_url,
        log=say,
    )
    print()
    print(machine())
    print(
        f"{args.rows:,} failed attempts of {args.kinds:,} kinds over {args.days:g} days; {args.requests} requests each"
    )
    print(f"{'endpoint':<42} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}  goal p95 <= {goal_ms:.0f} ms")
    for r in figures["results"]:
        verdict = "ok" if r["p95_ms"] <= goal_ms else "MISSED"
        print(f"{r['endpoint']:<42} {r['p50_ms']:8.1f} {r['p95_ms']:8.1f} {r['p99_ms']:8.1f}  {verdict}")
    print_json(figures)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The command line: run, print p50/p95/p99 per endpoint and a last line of JSON."""
    return command(__doc__, run, kinds=500, port=8765, goal_ms=GOAL_MS, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
