"""``function-runner errors``: inspect failed attempts from the command line.

Commands:
    list       failed attempts, newest first, with the API's filters and cursor pagination
    show       one failed attempt, its traceback and its task (secrets shown as [REDACTED])
    history    everything recorded about a task, and its replay lineage

The commands read the database of the settings (``FUNCTION_RUNNER_DATABASE_URL``, or the embedded SQLite
file) through the same query functions as the API, and ``--json`` prints the API's JSON documents.
Times are ISO 8601 (``2026-03-01T09:00:00Z``; without a timezone, UTC) or an age such as ``90s``,
``15m``, ``2h`` or ``7d``. Exit codes: 0 done, 1 not found or the database cannot be read, 2 the command
line or the settings are wrong. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Final, TypeVar

import sqlalchemy as sa
import typer
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from api.schemas.errors import (
    AttemptDetailPublic,
    AttemptPublic,
    TaskHistoryPublic,
    attempt_detail_public,
    attempts_public,
    task_history_public,
)
from error_handling.categories import Category
from error_handling.exceptions import ConfigurationError, InvalidCursor
from error_handling.persistence.cursor import decode_cursor, encode_cursor
from error_handling.persistence.db import UNAVAILABLE_ERRORS, make_engine, normalise_url
from error_handling.persistence.reads.attempts import FailureFilter, get_attempt, get_task, list_attempts
from error_handling.persistence.reads.histories import task_history
from function_runner.cli.common import EXIT_FAILED, EXIT_USAGE, fail, first_line, load_settings
from function_runner.cli.output import out, print_json
from function_runner.settings import Settings

app = typer.Typer(
    help="Inspect failed attempts: list them, show one, or a task's whole history.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: A public document ``--json`` prints.
DocumentT = TypeVar("DocumentT", bound=BaseModel)

#: Longest message shown in a table cell.
MESSAGE_WIDTH: Final = 60

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (the API's documents) instead of tables.")]


def parse_time(text: str, *, option: str, now: dt.datetime | None = None) -> dt.datetime:
    """Parse an ISO 8601 time (naive means UTC) or an age (``15m`` ago) into an aware UTC datetime.

    Raises:
        typer.Exit: with :data:`EXIT_USAGE` and a one-line message when ``text`` is neither.
    """
    age = _AGE.match(text)
    if age:
        seconds = float(age.group(1)) * _UNITS[age.group(2)]
        try:
            return (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=seconds)
        except OverflowError:
            raise fail(f"{option}: {text!r} is too long ago", EXIT_USAGE) from None
    try:
        moment = dt.datetime.fromisoformat(text.strip())
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise fail(
            f"{option}: {text!r} is not a time: use ISO 8601 (2026-03-01T09:00:00Z) or an age (90s, 15m, 2h, 7d)",
            EXIT_USAGE,
        ) from None


@contextlib.contextmanager
def reading(settings: Settings) -> Iterator[Session]:
    """A read-only session on the settings' database, translating its failures into one-line exits.

    Raises:
        typer.Exit: :data:`EXIT_USAGE` for a bad database URL, :data:`EXIT_FAILED` when the database is
            missing, unreachable or not migrated.
    """
    url = settings.effective_database_url
    try:
        parsed = sa.engine.make_url(normalise_url(url))
    except sa.exc.ArgumentError:
        raise fail("invalid database URL (FUNCTION_RUNNER_DATABASE_URL)", EXIT_USAGE) from None
    database = parsed.database
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:" and not Path(database).exists():
        raise fail(
            f"no database at {parsed.database}: set FUNCTION_RUNNER_DATABASE_URL, or create it with "
            "'function-runner db upgrade'",
            EXIT_FAILED,
        )
    try:
        engine = make_engine(url)
    except ConfigurationError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    try:
        with Session(engine) as session:
            yield session
    except UNAVAILABLE_ERRORS as exc:
        raise fail(f"cannot read the database: {first_line(exc)}", EXIT_FAILED) from None
    except sa.exc.ProgrammingError as exc:  # Postgres: a table is missing (not migrated)
        raise fail(
            f"cannot read the database: {first_line(exc)} (run 'function-runner db upgrade')", EXIT_FAILED
        ) from None
    finally:
        engine.dispose()


def _when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z" if moment else "-"


def _short(text: str | None, width: int = MESSAGE_WIDTH) -> str:
    line = (text or "").replace("\n", " ")
    return line if len(line) <= width else line[: width - 1] + "…"


def _decision(attempt: AttemptPublic) -> str:
    text = attempt.decision.value
    if attempt.delay is not None:
        text += f" in {attempt.delay:.1f}s"
    if attempt.decision_reason:
        text += f" ({attempt.decision_reason})"
    return text


def _attempt_of(attempt: AttemptPublic) -> str:
    """``2/5``: the attempt and the most the policy allows for such a failure (when it retries it)."""
    return f"{attempt.attempt}/{attempt.max_attempts}" if attempt.max_attempts else str(attempt.attempt)


def _attempts_table(attempts: list[AttemptPublic], *, title: str | None = None, worker: bool = False) -> Table:
    """A table of attempts; the task id and the worker (for a history) only when there is room."""
    table = Table(title=title, show_lines=False)
    for column in ("id", "failed at (UTC)", "#"):
        table.add_column(column, no_wrap=True)
    for column in ("task", "category/reason", "decision", *(["worker"] if worker else [])):
        table.add_column(column, overflow="fold")
    table.add_column("message", overflow="fold", ratio=1)
    for a in attempts:
        table.add_row(
            str(a.id),
            a.failed_at.strftime("%Y-%m-%d %H:%M:%S"),
            _attempt_of(a),
            escape(f"{a.task_name}\n{a.task_id}"),
            escape(f"{a.category}/{a.reason}"),
            escape(_decision(a)),
            *([escape(a.worker or "-")] if worker else []),
            escape(_short(a.message)),
        )
    return table


@app.command("list")
def list_command(
    task_name: Annotated[str | None, typer.Option("--task-name", "-t", help="Exact task name.")] = None,
    category: Annotated[Category | None, typer.Option("--category", "-c", help="Failure category.")] = None,
    reason: Annotated[str | None, typer.Option("--reason", "-r", help="Reason code, e.g. timeout.")] = None,
    fingerprint: Annotated[str | None, typer.Option("--fingerprint", help="Error group fingerprint.")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="Queue the task was sent to.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Failed at or after: ISO 8601 or an age (2h).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Failed before: ISO 8601 or an age.")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Case-insensitive text in the message.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=MAX_LIMIT, help="Page size.")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue after a previous page.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List failed attempts, newest first (one page; the next page's --cursor is printed)."""
    now = dt.datetime.now(dt.UTC)
    start = parse_time(since, option="--since", now=now) if since is not None else None
    end = parse_time(until, option="--until", now=now) if until is not None else None
    if start is not None and end is not None and start > end:
        raise fail("--since must not be later than --until", EXIT_USAGE)
    try:
        keyset = decode_cursor(cursor) if cursor is not None else None
    except InvalidCursor as exc:
        raise fail(f"--cursor {str(exc).removeprefix('cursor ')}", EXIT_USAGE) from None
    flt = FailureFilter(
        task_name=task_name,
        category=category.value if category else None,
        reason=reason,
        fingerprint=fingerprint,
        queue=queue,
        search=search or None,
        since=start,
        until=end,
    )
    with reading(load_settings()) as session:
        page = list_attempts(session, flt, cursor=keyset, limit=limit)
        document = attempts_public(page.items, encode_cursor(*page.next_cursor) if page.next_cursor else None)
    if as_json:
        print_json(document)
        return
    if not document.data:
        out.print("no failed attempts match")
        return
    out.print(_attempts_table(document.data))
    if document.next_cursor:
        out.print(f"more: --cursor {document.next_cursor}", soft_wrap=True, highlight=False)


@app.command("show")
def show_command(
    attempt_id: Annotated[int, typer.Argument(help="The failed attempt's id.", min=1, max=2**63 - 1)],
    as_json: JsonOption = False,
) -> None:
    """Show one failed attempt: classification, decision, traceback, and its task (secrets [REDACTED])."""

    def detail(session: Session) -> AttemptDetailPublic | None:
        row = get_attempt(session, attempt_id=attempt_id)
        return None if row is None else attempt_detail_public(row, get_task(session, task_id=row.task_id))

    _show_one(detail, missing=f"no failed attempt has id {attempt_id}", as_json=as_json, text=_print_detail)


def _show_one(
    read: Callable[[Session], DocumentT | None], *, missing: str, as_json: bool, text: Callable[[DocumentT], None]
) -> None:
    """Read one document (None: not found, the ``missing`` line and exit 1), then print its JSON or ``text``."""
    with reading(load_settings()) as session:
        document = read(session)
    if document is None:
        raise fail(missing, EXIT_FAILED)
    if as_json:
        print_json(document)
        return
    text(document)


def _print_detail(detail: AttemptDetailPublic) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    rows: list[tuple[str, object]] = [
        ("id", detail.id),
        (
            "task",
            f"{detail.task_name} {detail.task_id} (attempt {detail.attempt}"
            + (f" of {detail.max_attempts})" if detail.max_attempts else ")"),
        ),
        ("queue / worker", f"{detail.queue or '-'} / {detail.worker or '-'}"),
        ("failed at", f"{_when(detail.failed_at)} after {detail.duration_ms or 0:.0f} ms"),
        ("category / reason", f"{detail.category} / {detail.reason}"),
        ("exception", detail.exc_type or "-"),
        ("message", detail.message),
        ("user message", detail.user_message or "-"),
        ("fingerprint", detail.fingerprint),
        ("rule", detail.rule or "-"),
        ("decision", _decision(detail) + (f" at {_when(detail.decision_at)}" if detail.decision_at else "")),
    ]
    if detail.task is not None:
        task = detail.task
        rows += [
            ("task state", task.state.value),
            ("args", task.args),
            ("kwargs", task.kwargs),
            ("headers", task.headers),
        ]
    for label, value in rows:
        table.add_row(label, escape(str(value)))
    out.print(table)
    if detail.traceback:
        out.print("[bold]traceback[/]")
        out.print(escape(detail.traceback), highlight=False, soft_wrap=True)


@app.command("history")
def history_command(
    task_id: Annotated[str, typer.Argument(help="The Celery task id.")],
    as_json: JsonOption = False,
) -> None:
    """Show everything recorded about a task: attempts, decisions, scheduled runs, dead letter, replays."""

    def document(session: Session) -> TaskHistoryPublic | None:
        history = task_history(session, task_id=task_id)
        return None if history is None else task_history_public(history)

    _show_one(document, missing=f"no failure is recorded for task {task_id!r}", as_json=as_json, text=_print_history)


def _print_history(history: TaskHistoryPublic) -> None:
    task = history.task
    if task is None:
        out.print(escape(f"task {history.task_id}: no failure recorded"))
    else:
        out.print(
            escape(
                f"task {task.task_id} ({task.task_name}): {task.state.value}; {task.attempts} failed attempt(s), "
                f"{history.executions} execution(s)"
            )
        )
    if history.replay_of is not None:
        letter = history.replay_of
        out.print(escape(f"replay of dead letter {letter.id} (task {letter.task_id}, {letter.reason})"))
    if history.lost_deliveries:
        out.print(_lost_deliveries_table(history))
    if history.attempts:
        out.print(_attempts_table(history.attempts, title="failed attempts", worker=True))
    if history.runs:
        out.print(_runs_table(history))
    if history.dead_letter is not None:
        letter = history.dead_letter
        out.print(escape(f"dead letter {letter.id}: {letter.reason}, {letter.status.value}"))
    for replay in history.replays:
        state = replay.state.value if replay.state else "no failure recorded"
        out.print(escape(f"replayed as {replay.task_id}: {state}"))


def _lost_deliveries_table(history: TaskHistoryPublic) -> Table:
    """The task's deliveries whose worker process died."""
    lost = Table(title="lost deliveries (the worker process died; no retry used)")
    for column in ("attempt", "delivery", "lost at (UTC)", "cause", "worker / pid", "signal / exit"):
        lost.add_column(column)
    lost.add_column("detail", overflow="fold", ratio=1)
    for row in history.lost_deliveries:
        ending = row.signal or (f"exit {row.exit_code}" if row.exit_code is not None else "-")
        lost.add_row(
            str(row.attempt),
            str(row.delivery),
            row.lost_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.cause,
            escape(f"{row.worker or '-'} / {row.pid or '-'}"),
            escape(ending),
            escape(_short(" ".join(filter(None, [row.memory_limit, row.detail])) or "-")),
        )
    return lost


def _runs_table(history: TaskHistoryPublic) -> Table:
    """The task's scheduled runs (retries and resource waits)."""
    runs = Table(title="scheduled runs")
    for column in ("attempt", "kind", "status", "due at", "resource", "dispatched"):
        runs.add_column(column)
    for run in history.runs:
        runs.add_row(
            str(run.attempt),
            run.kind.value,
            run.status.value,
            _when(run.due_at),
            escape(run.resource or "-"),
            str(run.dispatch_count),
        )
    return runs
