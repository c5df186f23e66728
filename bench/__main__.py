"""Every benchmark in one run, one table: ``.venv/bin/python -m bench [--quick]``.

Runs, one after the other on the same Redis broker and the same Postgres server:
:mod:`bench.throughput` (success and failure paths, prefork and threads pools), :mod:`bench.memory`
(worker memory with delayed retries pending), :mod:`bench.recording` (failed attempts recorded per
second, one worker, and the recording layer alone), :mod:`bench.bulk_replay` and
:mod:`bench.api_latency`. Prints each benchmark's progress, then the machine, one Markdown table of
every measure (bare Celery or other baseline, function-runner, ratio, goal, ok/MISSED) and a last
line of JSON with every figure. ``--quick`` runs small counts (a few minutes); the default counts
are the issue's (about half an hour on 2 cores). Exit status 0 unless a benchmark failed to run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import api_latency, bulk_replay, groups_latency, memory, recording, throughput
from bench._support import PG_URL, REDIS_URL, machine, table

BENCHES = ("throughput", "memory", "recording", "bulk_replay", "api_latency", "groups_latency")

#: Counts of the full run (the issue's) and of ``--quick``.
FULL = {
    "count": 20_000,
    "fail_count": 2_000,
    "rounds": 2,
    "memory_count": 50_000,
    "recording_count": 5_000,
    "layer_count": 20_000,
    "threads": "1,2,4,8,16,32,64,128",
    "wide": 32,
    "replay_count": 100_000,
    "api_rows": 1_000_000,
    "api_requests": 200,
}
QUICK = {
    "count": 2_000,
    "fail_count": 300,
    "rounds": 1,
    "memory_count": 5_000,
    "recording_count": 1_000,
    "layer_count": 1_000,
    "threads": "1,16",
    "wide": 16,
    "replay_count": 5_000,
    "api_rows": 200_000,
    "api_requests": 50,
}


def loadavg() -> str:
    """The machine's load averages (1, 5 and 15 minutes), from ``/proc/loadavg``."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line; a count left unset takes its ``FULL`` (or ``--quick``) value."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: the whole run in a few minutes")
    parser.add_argument("--only", default=",".join(BENCHES), help=f"comma-separated subset of {','.join(BENCHES)}")
    parser.add_argument("--pools", default="prefork,threads", help="worker pools of throughput and recording")
    parser.add_argument("--concurrency", type=int, default=None, help="worker concurrency (default: cores)")
    parser.add_argument("--count", type=int, help="throughput: no-op tasks per success-path round (20,000)")
    parser.add_argument("--fail-count", type=int, help="throughput: fail-twice tasks (2,000)")
    parser.add_argument("--rounds", type=int, help="throughput: success-path rounds, best counts (2)")
    parser.add_argument("--memory-count", type=int, help="memory: delayed retries held (50,000)")
    parser.add_argument("--recording-count", type=int, help="recording: failing tasks per worker run (5,000)")
    parser.add_argument("--layer-count", type=int, help="recording: failures per layer-alone run (20,000)")
    parser.add_argument("--threads", help="recording: thread counts of the layer-alone runs (1,2,4,8,16,32,64,128)")
    parser.add_argument("--wide", type=int, help="recording: also a threads worker of this concurrency (32; 0: none)")
    parser.add_argument("--replay-count", type=int, help="bulk_replay: dead letters replayed (100,000)")
    parser.add_argument("--api-rows", type=int, help="api_latency: failed attempts seeded (1,000,000)")
    parser.add_argument("--api-requests", type=int, help="api_latency: measured requests per endpoint (200)")
    parser.add_argument("--redis-url", default=REDIS_URL, help="broker; this Redis db is flushed")
    parser.add_argument("--pg-url", default=PG_URL, help="server for the scratch databases")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    unknown = set(args.only.split(",")) - set(BENCHES)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def plan(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Callable[[], dict[str, Any]]]:
    """The benchmarks to run, each a call returning its figures."""
    pools = tuple(args.pools.split(","))
    common = {"redis_url": args.redis_url, "pg_url": args.pg_url, "log": log}
    calls: dict[str, Callable[[], dict[str, Any]]] = {
        "throughput": lambda: throughput.run(
            count=args.count,
            fail_count=args.fail_count,
            rounds=args.rounds,
            pools=pools,
            concurrency=args.concurrency,
            **common,
        ),
        "memory": lambda: memory.run(count=args.memory_count, concurrency=args.concurrency, **common),
        "recording": lambda: recording.run(
            count=args.recording_count,
            pools=pools + ((f"threads:{args.wide}",) if args.wide and "threads" in pools else ()),
            concurrency=args.concurrency,
            layer_count=args.layer_count,
            threads=tuple(int(n) for n in args.threads.split(",")),
            **common,
        ),
        "bulk_replay": lambda: bulk_replay.run(count=args.replay_count, **common),
        "api_latency": lambda: api_latency.run(
            rows=args.api_rows, requests=args.api_requests, pg_url=args.pg_url, log=log
        ),
        "groups_latency": lambda: groups_latency.run(
            rows=args.api_rows, requests=args.api_requests, pg_url=args.pg_url, log=log
        ),
    }
    chosen = args.only.split(",")
    return {name: call for name, call in calls.items() if name in chosen}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks, print the combined table and a last line of JSON."""
    args = parse(argv)

    def log(line: str) -> None:
        print(f"  {line}", flush=True)

    figures: dict[str, Any] = {}
    failed: dict[str, str] = {}
    began = time.monotonic()
    load_before = loadavg()
    for name, call in plan(args, log).items():
        print(f"== {name}", flush=True)
        started = time.monotonic()
        try:
            figures[name] = call()
        except Exception as exc:  # the other benchmarks still run; the failure is reported
            traceback.print_exc()
            failed[name] = f"{type(exc).__name__}: {exc}"
            continue
        figures[name]["seconds"] = time.monotonic() - started
        print(f"   ({figures[name]['seconds']:.0f} s)", flush=True)
    rows = [r for found in figures.values() for r in found["rows"]]
    print()
    print(machine())
    print(
        f"Redis broker {args.redis_url}; Postgres {args.pg_url.rsplit('@', 1)[-1]}; "
        f"{'--quick' if args.quick else 'full'} run in {time.monotonic() - began:.0f} s; "
        f"load average before {load_before}, after {loadavg()} (1, 5, 15 min)"
    )
    print()
    print(table(rows))
    for name, why in failed.items():
        print(f"\n{name} did not complete: {why}")
    missed = [r["measure"] for r in rows if not r["ok"]]
    summary = {
        "machine": machine(),
        "quick": args.quick,
        "seconds": time.monotonic() - began,
        "load_before": load_before,
        "load_after": loadavg(),
        "missed": missed,
        "failed": failed,
        **{name: {k: v for k, v in found.items() if k != "rows"} for name, found in figures.items()},
        "rows": rows,
    }
    print(json.dumps(summary, default=str))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
