"""Latency of the error groups and the analysis with a million failed attempts in 10,000 groups.

What is measured: the time a real ``function-runner api`` process takes to answer ``GET /api/v1/errors/groups``
(sorted by last seen, by count and by growth in the default day, and by count over a week),
``GET /api/v1/errors/groups/{fingerprint}`` (the largest group, and a small one over a week) and
``GET /api/v1/errors/analysis`` (5 minutes, an hour, a day), over keep-alive HTTP from one client,
sequentially, timed end to end; p50, p95 and p99 per endpoint. The goal stated by the issue is p95 <= 100 ms.

The rows are those of :mod:`bench.api_latency` (``--rows`` attempts evenly over ``--days`` days, Zipf-like
weights) with ``--kinds`` (default 10,000) fingerprints, each its own group (the migration that creates
the groups fills them from the attempts).

Run: ``.venv/bin/python -m bench.groups_latency [--rows 1000000] [--days 7] [--kinds 10000]
[--requests 200] [--port 8766] [--pg-url URL]``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from bench._support import PG_URL
from bench.api_latency import command, figures_of, serving, timed

GOAL_MS = 100.0


def run(
    *,
    rows: int = 1_000_000,
    days: float = 7.0,
    kinds: int = 10_000,
    requests: int = 200,
    port: int = 8766,
    pg_url: str = PG_URL,
    log: Any = print,
) -> dict[str, Any]:
    """Run the benchmark; return its figures (``results`` per endpoint) and its table ``rows``."""
    with serving(rows=rows, days=days, kinds=kinds, port=port, pg_url=pg_url, log=log) as client:
        week = (dt.datetime.now(dt.UTC) - dt.timedelta(days=7)).isoformat()
        largest = f"{0:016x}"  # kind 0 has the largest weight
        page = client.get("/api/v1/errors/groups", params={"sort": "times_seen", "limit": 500}).json()
        small = page["data"][-1]["fingerprint"]  # among the smallest
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("GET /groups (last seen, page of 50)", "/api/v1/errors/groups", {"limit": 50}),
            ("GET /groups?sort=count (a day)", "/api/v1/errors/groups", {"sort": "count", "limit": 50}),
            ("GET /groups?sort=growth (a day)", "/api/v1/errors/groups", {"sort": "growth", "limit": 50}),
            ("GET /groups?sort=count (a week)", "/api/v1/errors/groups", {"sort": "count", "since": week}),
            ("GET /groups?state=new", "/api/v1/errors/groups", {"state": "new", "limit": 50}),
            ("GET /groups/{largest} (a day)", f"/api/v1/errors/groups/{largest}", {}),
            ("GET /groups/{largest} (a week)", f"/api/v1/errors/groups/{largest}", {"since": week}),
            ("GET /groups/{small} (a week)", f"/api/v1/errors/groups/{small}", {"since": week}),
            ("GET /analysis (5 minutes)", "/api/v1/errors/analysis", {"window_minutes": 5}),
            ("GET /analysis?window_minutes=60", "/api/v1/errors/analysis", {"window_minutes": 60}),
            ("GET /analysis?window_minutes=1440", "/api/v1/errors/analysis", {"window_minutes": 1440}),
        ]
        results = timed(client, cases, requests)
    return figures_of(
        "groups_latency",
        title=f"API p95 at {rows:,} attempts, {kinds:,} groups",
        results=results,
        goal_ms=GOAL_MS,
        seeded={"rows_seeded": rows, "days": days, "kinds": kinds, "requests": requests},
        log=log,
    )


def main(argv: list[str] | None = None) -> int:
    """The command line: run, print p50/p95/p99 per endpoint and a last line of JSON."""
    return command(__doc__, run, kinds=10_000, port=8766, goal_ms=GOAL_MS, argv=argv)


if __name__ == "__main__":
    raise SystemExit(main())
