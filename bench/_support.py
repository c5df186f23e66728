"""What the benchmarks share: a scratch Postgres database, child processes that never outlive the
benchmark, polling with a deadline, the memory of a process tree, the machine's description."""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from function_runner.migrate import upgrade

#: The Redis the benchmarks use by default: db 11, which they FLUSH; give them a db nobody else uses.
REDIS_URL = "redis://127.0.0.1:6379/11"
#: The Postgres server the benchmarks create their scratch databases on.
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
#: The queue the worker benchmarks' tasks are routed to.
QUEUE = "fr_bench"
#: Redis counter of the fail-twice tasks that succeeded (on their third start).
SUCCEEDED = "fr_bench:succeeded"
#: Redis counter of the retries bare Celery published for the fail-once tasks (signal ``task_retry``).
RETRIED = "fr_bench:retried"
#: Redis counter of the no-op tasks that ran: each worker process counts in memory and adds its count
#: once, when it shuts down (so counting costs the timed drain nothing).
RAN = "fr_bench:ran"
#: Repository root (the benchmarks' child processes run from here, with it on PYTHONPATH).
ROOT = Path(__file__).resolve().parents[1]
#: ``prctl`` option: the signal a process receives when its parent dies.
_PR_SET_PDEATHSIG = 1


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


def _die_with_parent() -> None:
    """In a child, before exec: receive SIGTERM if the benchmark dies (Linux), so a benchmark killed
    mid-run leaves no worker or dispatcher behind."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: stop() in a finally still applies
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(args: Sequence[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start ``args`` in its own process group (so :func:`stop` reaches its pool children), output
    appended to ``log``, terminated by the kernel if this process dies first."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(args),
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )


def stop(process: subprocess.Popen[bytes], *, grace: float = 30.0) -> None:
    """Stop a process started by :func:`spawn` and its process group: SIGTERM (a Celery worker's warm
    shutdown), SIGKILL to the whole group after ``grace`` seconds."""
    if process.poll() is None:
        with contextlib.suppress(subprocess.TimeoutExpired, ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):  # whatever is left of the group (pool children)
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def until(condition: Callable[[], bool], *, timeout: float, what: str, every: float = 0.005) -> float:
    """Poll ``condition`` every ``every`` seconds; return the moment (``time.perf_counter()``) it held.

    Raises:
        TimeoutError: if it did not hold within ``timeout`` seconds.
    """
    deadline = time.perf_counter() + timeout
    while True:
        if condition():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def check_alive(*processes: subprocess.Popen[bytes]) -> None:
    """Raise if one of ``processes`` has exited (a benchmark would otherwise wait for its deadline)."""
    for process in processes:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with code {process.returncode}")


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def descendants(pid: int) -> list[int]:
    """The pids of every process below ``pid`` (from ``/proc/<pid>/task/*/children``)."""
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found.extend(children)
            pending.extend(children)
    return found


def rss_mib(pid: int) -> dict[str, float]:
    """Resident memory of ``pid`` and its descendants, in MiB: ``main`` (VmRSS of ``pid``), ``tree``
    (the sum of VmRSS over the tree: pages shared by forked children are counted in each) and ``pss``
    (the sum of proportional set sizes, shared pages divided among their users)."""
    pids = [pid, *descendants(pid)]
    tree = pss = 0
    for each in pids:
        try:
            tree += _status_kib(each, "VmRSS")
            for line in Path(f"/proc/{each}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:  # a child that just exited
            continue
    return {"main": _status_kib(pid, "VmRSS") / 1024, "tree": tree / 1024, "pss": pss / 1024, "processes": len(pids)}


def row(
    measure: str,
    *,
    baseline: float | None,
    ours: float,
    unit: str,
    goal: str,
    ok: bool,
    ratio: float | None = None,
) -> dict[str, Any]:
    """One line of the combined table: ``measure`` for bare Celery (or another baseline) and for
    function-runner, their ratio (ours / baseline unless given), the goal and whether it was met."""
    if ratio is None and baseline:
        ratio = ours / baseline
    return {
        "measure": measure,
        "unit": unit,
        "baseline": baseline,
        "ours": ours,
        "ratio": ratio,
        "goal": goal,
        "ok": ok,
    }


def _figure(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.1f}"


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The rows of :func:`row` as a Markdown table."""
    lines = [
        "| measure | unit | bare Celery / baseline | function-runner | ratio | goal | |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for r in rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}"
        verdict = "ok" if r["ok"] else "**MISSED**"
        lines.append(
            f"| {r['measure']} | {r['unit']} | {_figure(r['baseline'])} | {_figure(r['ours'])} | {ratio} | {r['goal']} | {verdict} |"
        )
    return "\n".join(lines)


#: What ``--redis-url`` says of the benchmarks that flush their Redis db.
FLUSHED = "broker; this Redis db is flushed"


def command_line(doc: str | None, *, redis_help: str | None = FLUSHED) -> argparse.ArgumentParser:
    """A benchmark's argument parser: described by the first paragraph of ``doc``, with ``--pg-url``
    and, unless ``redis_help`` is None, ``--redis-url``; the benchmark adds its own options."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    if redis_help is not None:
        parser.add_argument("--redis-url", default=REDIS_URL, help=redis_help)
    parser.add_argument("--pg-url", default=PG_URL, help="server for the scratch database")
    return parser


def say(line: str) -> None:
    """Print a progress line at once (the benchmarks' ``log``)."""
    print(line, flush=True)


def print_json(figures: dict[str, Any]) -> None:
    """The last line of a benchmark's output: the machine and every figure but the table's rows."""
    print(json.dumps({"machine": machine(), **{k: v for k, v in figures.items() if k != "rows"}}))
