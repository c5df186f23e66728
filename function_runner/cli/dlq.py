"""``function-runner dlq``: list, show, replay and discard dead letters from the command line.

Every change is audited as ``cli:<os user>`` (see ``function-runner audit list``).

The same functions as the API (:mod:`error_handling.persistence.dead_letters`,
:mod:`function_runner.replay`) and the same public shapes for ``--json`` (:mod:`api.schemas.dead_letters`).
Errors are one line on stderr, never a traceback; exit codes: 1 when the operation was refused or failed
(not found, already replayed, discarded, database or broker unavailable), 2 for a usage error (bad JSON,
bad cursor, invalid settings).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from error_handling.exceptions import ConfigurationError, FunctionRunnerError
from error_handling.persistence import dead_letters
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import DeadLetterStatus, utcnow
from function_runner.cli.common import EXIT_FAILED, EXIT_USAGE, cli_actor, err, fail, load_settings

app = typer.Typer(
    help="Dead letters: list, show, replay (one, or all matching a filter) and discard them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

out = Console()


AppOption = Annotated[
    str | None,
    typer.Option(
        "--app", "-A", help="Your Celery app, as 'module' or 'module:attribute' (default: one built from settings)."
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


@contextlib.contextmanager
def _session() -> Iterator[Session]:
    """One transaction on the settings' database; every error is one line."""
    engine = make_engine(load_settings().effective_database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            yield session
    except dead_letters.DeadLetterError as exc:
        raise fail(exc.message, EXIT_FAILED) from None
    except FunctionRunnerError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    finally:
        engine.dispose()


def _print_json(model: BaseModel) -> None:
    typer.echo(model.model_dump_json(indent=2))


def _json_option(name: str, text: str | None, kind: type) -> Any:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"{name} is not valid JSON: {exc.msg} at position {exc.pos}", EXIT_USAGE) from None
    if not isinstance(value, kind):
        raise fail(f"{name} must be a JSON {'array' if kind is list else 'object'}", EXIT_USAGE)
    return value


def _when(moment: dt.datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""


@app.command("list")
def list_command(
    status: Annotated[DeadLetterStatus | None, typer.Option(help="Only dead letters in this state.")] = None,
    task_name: Annotated[str | None, typer.Option("--task", help="Only this task name.")] = None,
    category: Annotated[str | None, typer.Option(help="Only this error category.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this dead-letter reason.")] = None,
    fingerprint: Annotated[str | None, typer.Option(help="Only this error fingerprint.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Text in the error message.")] = None,
    since: Annotated[dt.datetime | None, typer.Option(help="Created at or after (UTC).")] = None,
    until: Annotated[dt.datetime | None, typer.Option(help="Created before (UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Page size.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="next_cursor printed by the previous page.")] = None,
    as_json: JsonOption = False,
) -> None:
    """List dead letters, newest first."""
    from api.errors import ApiError
    from api.pagination import decode_cursor, encode_cursor
    from api.schemas.dead_letters import DeadLetterPublic, DeadLettersPublic

    try:
        position = decode_cursor(cursor) if cursor else None
    except ApiError as exc:
        raise fail(exc.message, EXIT_USAGE) from None
    with _session() as session:
        page = dead_letters.list_dead_letters(
            session,
            status=status,
            task_name=task_name,
            category=category,
            reason=reason,
            fingerprint=fingerprint,
            queue=queue,
            search=search,
            since=_utc(since),
            until=_utc(until),
            cursor=position,
            limit=limit,
        )
        public = DeadLettersPublic(
            data=[DeadLetterPublic.from_record(letter) for letter in page.items],
            next_cursor=encode_cursor(*page.next_cursor) if page.next_cursor else None,
        )
    if as_json:
        _print_json(public)
        return
    table = Table("id", "created", "task", "queue", "reason", "status", "message", box=None)
    for item in public.data:
        table.add_row(
            str(item.id),
            _when(item.created_at),
            item.task_name,
            item.queue or "",
            item.reason,
            item.status.value,
            (item.message or "")[:60],
        )
    out.print(table)
    if public.next_cursor:
        out.print(f"next page: --cursor {public.next_cursor}", highlight=False)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


@app.command("show")
def show_command(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", help="The dead letter's id.")],
    as_json: JsonOption = False,
) -> None:
    """Show a dead letter: its redacted payload, its failed attempts and its replays."""
    from api.schemas.dead_letters import DeadLetterDetailPublic

    with _session() as session:
        letter = dead_letters.get_dead_letter(session, dead_letter_id=dead_letter_id)
        detail = DeadLetterDetailPublic.from_records(
            letter,
            attempts=dead_letters.attempts_of(session, task_id=letter.task_id),
            replays=dead_letters.replays_of(session, dead_letter_id=letter.id),
        )
    if as_json:
        _print_json(detail)
        return
    lines = [
        f"dead letter {detail.id}: {detail.task_name} [{detail.status.value}]",
        f"  task id:   {detail.task_id}",
        f"  queue:     {detail.queue or ''}",
        f"  reason:    {detail.reason} ({detail.category or '?'}; last: {detail.last_reason or '?'})",
        f"  error:     {detail.exc_type or ''}: {detail.message or ''}",
        f"  attempts:  {detail.attempts}",
        f"  args:      {json.dumps(detail.args)}",
        f"  kwargs:    {json.dumps(detail.kwargs)}",
        f"  created:   {_when(detail.created_at)}",
    ]
    if detail.replayed_task_id:
        lines.append(f"  replayed:  as {detail.replayed_task_id} at {_when(detail.replayed_at)}")
    if detail.discarded_at:
        lines.append(f"  discarded: {_when(detail.discarded_at)}: {detail.discarded_reason}")
    if detail.purged_at:
        lines.append(f"  purged:    {_when(detail.purged_at)} (secrets removed by retention: not replayable)")
    for attempt in detail.failed_attempts:
        lines.append(
            f"  attempt {attempt.attempt}: {_when(attempt.failed_at)} {attempt.category}/{attempt.reason} "
            f"-> {attempt.decision} on {attempt.worker or '?'}"
        )
    for replay in detail.replays:
        lines.append(f"  replay: {replay.task_id} at {_when(replay.created_at)}{' (forced)' if replay.forced else ''}")
    out.print("\n".join(lines), highlight=False, markup=False)


@app.command("replay")
def replay_command(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", help="The dead letter's id.")],
    force: Annotated[bool, typer.Option("--force", help="Replay even if it was replayed before.")] = False,
    queue: Annotated[str | None, typer.Option(help="Publish to this queue instead of the original route.")] = None,
    args: Annotated[
        str | None, typer.Option("--args", help='New args as a JSON array; keep "[REDACTED]" to reuse a secret.')
    ] = None,
    kwargs: Annotated[
        str | None,
        typer.Option("--kwargs", help='New kwargs as a JSON object; keep "[REDACTED]" to reuse a secret.'),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be published; publish nothing.")] = False,
    celery_app: AppOption = None,
    as_json: JsonOption = False,
) -> None:
    """Publish a dead letter again as a new task linked to it."""
    from function_runner.replay.errors import InvalidReplayEdit
    from function_runner.replay.single import preview_replay, replay_dead_letter
    from function_runner.runtime import runtime_for

    new_args = _json_option("--args", args, list)
    new_kwargs = _json_option("--kwargs", kwargs, dict)
    celery = _load_app(celery_app)
    runtime = runtime_for(celery)
    try:
        runtime.settings.check_encryption_key()  # a missing or malformed key is a settings error (exit 2)
    except ConfigurationError as exc:
        runtime.close()
        celery.close()
        raise fail(str(exc), EXIT_USAGE) from None
    if celery_app is None and not dry_run:
        try:
            _use_queues_as_found(celery)
        except typer.Exit:
            runtime.close()
            celery.close()
            raise
    try:
        if dry_run:
            with transaction(runtime.sessions) as session:
                preview = preview_replay(
                    session,
                    sealer=runtime.sealer,
                    redactor=runtime.redactor,
                    dead_letter_id=dead_letter_id,
                    args=new_args,
                    kwargs=new_kwargs,
                    queue=queue,
                    force=force,
                    app=celery,
                    settings=runtime.settings,
                )
            shown = {
                "dry_run": True,
                "dead_letter_id": preview.dead_letter_id,
                "task_name": preview.task_name,
                "args": preview.args,
                "kwargs": preview.kwargs,
                "headers": preview.headers,
                "options": preview.options,
                "queue": preview.queue,
            }
            if as_json:
                typer.echo(json.dumps(shown, indent=2, default=str))
            else:
                out.print(
                    f"dry run: would publish {preview.task_name} to {preview.queue or 'its original route'} "
                    f"with args={json.dumps(preview.args, default=str)} "
                    f"kwargs={json.dumps(preview.kwargs, default=str)}; nothing was published",
                    highlight=False,
                    markup=False,
                )
            return
        result = replay_dead_letter(
            celery,
            runtime,
            dead_letter_id=dead_letter_id,
            args=new_args,
            kwargs=new_kwargs,
            queue=queue,
            force=force,
            actor=cli_actor(),
        )
    except InvalidReplayEdit as exc:
        raise fail(f"--{exc.param}: {exc.message}", EXIT_USAGE) from None
    except dead_letters.DeadLetterError as exc:
        raise fail(exc.message, EXIT_FAILED) from None
    except FunctionRunnerError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    finally:
        runtime.close()
        celery.close()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "dead_letter_id": result.dead_letter_id,
                    "task_id": result.task_id,
                    "task_name": result.task_name,
                    "queue": result.queue,
                    "replayed_at": result.replayed_at.isoformat(),
                    "forced": result.forced,
                },
                indent=2,
            )
        )
        return
    out.print(
        f"replayed dead letter {result.dead_letter_id} as task {result.task_id}{' (forced)' if result.forced else ''}",
        highlight=False,
    )


@app.command("discard")
def discard_command(
    dead_letter_id: Annotated[int, typer.Argument(metavar="ID", help="The dead letter's id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why it is discarded (kept with it).")],
    as_json: JsonOption = False,
) -> None:
    """Discard a dead letter with a reason: it and its task become 'discarded' (terminal)."""
    from api.schemas.dead_letters import MAX_DISCARD_REASON, DeadLetterPublic

    if not reason.strip() or len(reason) > MAX_DISCARD_REASON or "\x00" in reason:
        raise fail(f"--reason must be 1 to {MAX_DISCARD_REASON} characters of text", EXIT_USAGE)
    with _session() as session:
        letter = dead_letters.discard(
            session, dead_letter_id=dead_letter_id, reason=reason, now=utcnow(), actor=cli_actor()
        )
        public = DeadLetterPublic.from_record(letter)
    if as_json:
        _print_json(public)
        return
    out.print(f"discarded dead letter {public.id} ({public.task_name})", highlight=False)


@app.command("replay-all")
def replay_all_command(
    task_name: Annotated[str | None, typer.Option("--task", help="Only this task name.")] = None,
    category: Annotated[str | None, typer.Option(help="Only this error category.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this dead-letter reason.")] = None,
    fingerprint: Annotated[str | None, typer.Option(help="Only this error fingerprint.")] = None,
    queue: Annotated[str | None, typer.Option(help="Only this queue.")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Text in the error message.")] = None,
    since: Annotated[dt.datetime | None, typer.Option(help="Created at or after (UTC).")] = None,
    until: Annotated[dt.datetime | None, typer.Option(help="Created before (UTC).")] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", min=0.001, max=10_000, help="At most this many publishes per second.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show how many match and a sample; publish nothing.")
    ] = False,
    sample: Annotated[int, typer.Option("--sample", min=0, max=100, help="How many matches a dry run shows.")] = 10,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job with a progress bar until it ends.")] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.1, help="With --wait: give up after this many seconds.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Replay every pending dead letter matching the filters, oldest first, as a job the dispatcher runs.

    Each dead letter is published exactly once by the job (a dispatcher must be running:
    'function-runner dispatcher').
    """
    from api.schemas.dead_letters import BulkReplayPreview, DeadLetterPublic, ReplayJobPublic
    from error_handling.persistence import replay_jobs

    flt = replay_jobs.DeadLetterFilter(
        task_name=task_name,
        category=category,
        reason=reason,
        fingerprint=fingerprint,
        queue=queue,
        search=search,
        since=_utc(since),
        until=_utc(until),
    )
    with _session() as session:
        if dry_run:
            preview = BulkReplayPreview(
                count=replay_jobs.count_matching(session, flt),
                sample=[
                    DeadLetterPublic.from_record(x) for x in replay_jobs.sample_matching(session, flt, limit=sample)
                ],
            )
        else:
            job = ReplayJobPublic.from_record(
                replay_jobs.create_job(session, flt=flt, rate_per_second=rate, now=utcnow(), actor=cli_actor())
            )
    if dry_run:
        if as_json:
            _print_json(preview)
            return
        out.print(f"dry run: {preview.count} pending dead letters match; nothing was published", highlight=False)
        for item in preview.sample:
            out.print(f"  {item.id}  {_when(item.created_at)}  {item.task_name}  {item.reason}", highlight=False)
        return
    if wait:
        job = _follow(job.id, timeout=timeout, quiet=as_json)
    if as_json:
        _print_json(job)
        return
    out.print(
        f"replay job {job.id}: {job.status.value}, {job.published}/{job.total} published"
        + (f", {job.skipped} skipped, {job.failed} failed" if job.skipped or job.failed else ""),
        highlight=False,
    )
    if job.status.value == "failed":
        raise fail(f"replay job {job.id} failed: {job.error}", EXIT_FAILED)


@app.command("replay-status")
def replay_status_command(
    job_id: Annotated[int, typer.Argument(metavar="JOB", help="The replay job's id.")],
    wait: Annotated[bool, typer.Option("--wait", help="Follow the job with a progress bar until it ends.")] = False,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0.1, help="With --wait: give up after this many seconds.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the progress of a bulk replay job."""
    job = _follow(job_id, timeout=timeout, quiet=as_json) if wait else _job(job_id)
    if as_json:
        _print_json(job)
        return
    out.print(
        f"replay job {job.id}: {job.status.value}, {job.published}/{job.total} published, "
        f"{job.skipped} skipped, {job.failed} failed",
        highlight=False,
    )


@app.command("replay-cancel")
def replay_cancel_command(
    job_id: Annotated[int, typer.Argument(metavar="JOB", help="The replay job's id.")],
    as_json: JsonOption = False,
) -> None:
    """Cancel a bulk replay job: no new batch starts (a batch in flight is finished)."""
    from api.schemas.dead_letters import ReplayJobPublic
    from error_handling.persistence import replay_jobs

    with _session() as session:  # not found or already ended: one line, exit 1
        job = ReplayJobPublic.from_record(
            replay_jobs.cancel_job(session, job_id=job_id, now=utcnow(), actor=cli_actor())
        )
    if as_json:
        _print_json(job)
        return
    out.print(f"replay job {job.id} cancelled after {job.published}/{job.total} published", highlight=False)


def _job(job_id: int) -> Any:
    from api.schemas.dead_letters import ReplayJobPublic
    from error_handling.persistence import replay_jobs

    try:
        with _session() as session:
            return ReplayJobPublic.from_record(replay_jobs.get_job(session, job_id=job_id))
    except replay_jobs.ReplayJobNotFound as exc:
        raise fail(exc.message, EXIT_FAILED) from None


#: How often --wait reads the job's progress, in seconds.
FOLLOW_INTERVAL = 0.25


def _follow(job_id: int, *, timeout: float | None, quiet: bool) -> Any:
    """Poll the job until it is no longer pending or running, showing a progress bar (unless quiet)."""
    import threading
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    deadline = None if timeout is None else time.monotonic() + timeout
    pause = threading.Event()  # never set: an interruptible sleep
    job = _job(job_id)
    with Progress(
        TextColumn("replay job {task.fields[job]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet,
        transient=False,
    ) as progress:
        bar = progress.add_task("replay", total=max(job.total, 1), job=job_id)
        while True:
            done = job.published + job.skipped + job.failed
            progress.update(bar, completed=done, total=max(job.total, done, 1))
            if job.status.value not in ("pending", "running"):
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise fail(
                    f"replay job {job_id} is still {job.status.value} after {timeout} s ({done}/{job.total})",
                    EXIT_FAILED,
                )
            pause.wait(FOLLOW_INTERVAL)
            job = _job(job_id)


def _load_app(spec: str | None) -> Any:
    """The Celery app to publish through: ``--app``, or one built from the settings."""
    import importlib

    from celery import Celery

    from function_runner.app import create_app

    if not spec:
        return create_app(load_settings(), main="function_runner_dlq")
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise fail(f"cannot import {module_name!r}: {exc}", EXIT_USAGE) from None
    for name in [attribute] if attribute else ["app", "celery"]:
        found = getattr(module, name, None)
        if isinstance(found, Celery):
            return found
    raise fail(f"no Celery app found in {spec!r}", EXIT_USAGE)


def _use_queues_as_found(celery: Any) -> None:
    """RabbitMQ: publish to a task queue a user's app declared without function-runner's arguments as it
    is, as the dispatcher and the API do (see ``function_runner.queues.use_queues_as_found``); a queue
    the broker refuses for another reason is one line and exit 1. An unreachable broker is left to the
    publish, which says so."""
    from kombu.exceptions import OperationalError as BrokerError

    from function_runner.broker import queues

    try:
        queues.use_queues_as_found(celery)
    except (BrokerError, ConnectionError, OSError):
        return
    except ConfigurationError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
