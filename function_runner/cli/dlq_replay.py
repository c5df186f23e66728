"""``function-runner dlq replay``, ``replay-all``, ``replay-status``, ``replay-cancel``: publish dead
letters again, one now or all matching a filter as a job the dispatchers run (registered on the ``dlq``
group by :mod:`.dlq`)::

    replay ID ────────► published now, linked to its dead letter (or --dry-run: shown, not published)
    replay-all ───────► a replay job; each dispatcher publishes its batches, each letter exactly once
    replay-status JOB   its progress (--wait: a progress bar until it ends)
    replay-cancel JOB   no new batch starts
"""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from error_handling.exceptions import ConfigurationError, FunctionRunnerError
from error_handling.persistence import replay_jobs
from error_handling.persistence.db import transaction
from error_handling.persistence.models import utcnow
from function_runner.cli import dlq_options as opt
from function_runner.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    AppOption,
    cli_actor,
    database_session,
    err,
    fail,
    load_celery_app,
)
from function_runner.cli.output import JsonOption, out, print_json, when

if TYPE_CHECKING:
    from celery import Celery

    from api.schemas.dead_letters import ReplayJobPublic
    from function_runner.replay.single import ReplayPreview, ReplayResult
    from function_runner.runtime import Runtime

#: How often --wait reads the job's progress, in seconds.
FOLLOW_INTERVAL = 0.25

WaitOption = Annotated[bool, typer.Option("--wait", help="Follow the job with a progress bar until it ends.")]
TimeoutOption = Annotated[
    float | None, typer.Option("--timeout", min=0.1, help="With --wait: give up after this many seconds.")
]


def replay_command(
    dead_letter_id: opt.DeadLetterId,
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
    from function_runner.replay.single import ReplayOrder, preview_replay, replay_in_session

    order = ReplayOrder(
        dead_letter_id=dead_letter_id,
        args=_json_option("--args", args, list),
        kwargs=_json_option("--kwargs", kwargs, dict),
        queue=queue,
        force=force,
    )
    celery, runtime = _publisher(celery_app, dry_run=dry_run)
    try:
        if dry_run:
            with transaction(runtime.sessions) as session:
                preview = preview_replay(session, order, runtime, app=celery)
            _print_preview(preview, as_json=as_json)
            return
        with transaction(runtime.sessions) as session:
            result = replay_in_session(session, order, runtime, app=celery, actor=cli_actor())
    except InvalidReplayEdit as exc:
        raise fail(f"--{exc.param}: {exc.message}", EXIT_USAGE) from None
    except FunctionRunnerError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    finally:
        runtime.close()
        celery.close()
    _print_replayed(result, as_json=as_json)


def _json_option(name: str, text: str | None, kind: type) -> Any:
    """``--args``/``--kwargs``: JSON of the given kind, or a one-line usage error."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"{name} is not valid JSON: {exc.msg} at position {exc.pos}", EXIT_USAGE) from None
    if not isinstance(value, kind):
        raise fail(f"{name} must be a JSON {'array' if kind is list else 'object'}", EXIT_USAGE)
    return value


def _publisher(spec: str | None, *, dry_run: bool) -> tuple[Celery, Runtime]:
    """The Celery app and runtime a replay publishes through, checked before anything is read.

    Raises:
        typer.Exit: :data:`EXIT_USAGE` for a missing or malformed key, :data:`EXIT_FAILED` for a task
            queue the broker refuses (both closed first).
    """
    from function_runner.runtime import runtime_for

    celery = load_celery_app(spec, main="function_runner_dlq")
    runtime = runtime_for(celery)
    try:
        _check_key(runtime)
        if spec is None and not dry_run:
            _use_queues_as_found(celery)
    except typer.Exit:
        runtime.close()
        celery.close()
        raise
    return celery, runtime


def _check_key(runtime: Runtime) -> None:
    """A missing or malformed encryption key is a settings error (exit 2)."""
    try:
        runtime.settings.check_encryption_key()
    except ConfigurationError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


def _use_queues_as_found(celery: Celery) -> None:
    """RabbitMQ: publish to a task queue a user's app declared without function-runner's arguments as it
    is, as the dispatcher and the API do (see ``function_runner.broker.queues.use_queues_as_found``); a
    queue the broker refuses for another reason is one line and exit 1. An unreachable broker is left to
    the publish, which says so."""
    from kombu.exceptions import OperationalError as BrokerError

    from function_runner.broker import queues

    try:
        queues.use_queues_as_found(celery)
    except (BrokerError, ConnectionError, OSError):
        return
    except ConfigurationError as exc:
        raise fail(str(exc), EXIT_FAILED) from None


def _print_preview(preview: ReplayPreview, *, as_json: bool) -> None:
    """What a dry run would publish."""
    if as_json:
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
        typer.echo(json.dumps(shown, indent=2, default=str))
        return
    out.print(
        f"dry run: would publish {preview.task_name} to {preview.queue or 'its original route'} "
        f"with args={json.dumps(preview.args, default=str)} "
        f"kwargs={json.dumps(preview.kwargs, default=str)}; nothing was published",
        highlight=False,
        markup=False,
    )


def _print_replayed(result: ReplayResult, *, as_json: bool) -> None:
    """The task a replay published."""
    if as_json:
        shown = {
            "dead_letter_id": result.dead_letter_id,
            "task_id": result.task_id,
            "task_name": result.task_name,
            "queue": result.queue,
            "replayed_at": result.replayed_at.isoformat(),
            "forced": result.forced,
        }
        typer.echo(json.dumps(shown, indent=2))
        return
    out.print(
        f"replayed dead letter {result.dead_letter_id} as task {result.task_id}{' (forced)' if result.forced else ''}",
        highlight=False,
    )


@opt.takes_filter
def replay_all_command(
    flt: replay_jobs.DeadLetterFilter = opt.NO_FILTER,
    rate: Annotated[
        float | None, typer.Option("--rate", min=0.001, max=10_000, help="At most this many publishes per second.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show how many match and a sample; publish nothing.")
    ] = False,
    sample: Annotated[int, typer.Option("--sample", min=0, max=100, help="How many matches a dry run shows.")] = 10,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Replay every pending dead letter matching the filters, oldest first, as a job the dispatcher runs.

    Each dead letter is published exactly once by the job (a dispatcher must be running:
    'function-runner dispatcher').
    """
    from api.schemas.dead_letters import ReplayJobPublic

    if dry_run:
        _print_matching(flt, sample=sample, as_json=as_json)
        return
    with database_session() as session:
        job = ReplayJobPublic.from_record(
            replay_jobs.create_job(session, flt=flt, rate_per_second=rate, now=utcnow(), actor=cli_actor())
        )
    if wait:
        job = _follow(job.id, timeout=timeout, quiet=as_json)
    if as_json:
        print_json(job)
        return
    out.print(
        f"replay job {job.id}: {job.status.value}, {job.published}/{job.total} published"
        + (f", {job.skipped} skipped, {job.failed} failed" if job.skipped or job.failed else ""),
        highlight=False,
    )
    if job.status.value == "failed":
        raise fail(f"replay job {job.id} failed: {job.error}", EXIT_FAILED)


def _print_matching(flt: replay_jobs.DeadLetterFilter, *, sample: int, as_json: bool) -> None:
    """A bulk replay's dry run: how many pending dead letters match, and the first few."""
    from api.schemas.dead_letters import BulkReplayPreview, DeadLetterPublic

    with database_session() as session:
        preview = BulkReplayPreview(
            count=replay_jobs.count_matching(session, flt),
            sample=[DeadLetterPublic.from_record(x) for x in replay_jobs.sample_matching(session, flt, limit=sample)],
        )
    if as_json:
        print_json(preview)
        return
    out.print(f"dry run: {preview.count} pending dead letters match; nothing was published", highlight=False)
    for item in preview.sample:
        out.print(f"  {item.id}  {when(item.created_at)}  {item.task_name}  {item.reason}", highlight=False)


def replay_status_command(
    job_id: Annotated[int, typer.Argument(metavar="JOB", help="The replay job's id.")],
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the progress of a bulk replay job."""
    job = _follow(job_id, timeout=timeout, quiet=as_json) if wait else _job(job_id)
    if as_json:
        print_json(job)
        return
    out.print(
        f"replay job {job.id}: {job.status.value}, {job.published}/{job.total} published, "
        f"{job.skipped} skipped, {job.failed} failed",
        highlight=False,
    )


def replay_cancel_command(
    job_id: Annotated[int, typer.Argument(metavar="JOB", help="The replay job's id.")],
    as_json: JsonOption = False,
) -> None:
    """Cancel a bulk replay job: no new batch starts (a batch in flight is finished)."""
    from api.schemas.dead_letters import ReplayJobPublic

    with database_session() as session:  # not found or already ended: one line, exit 1
        job = ReplayJobPublic.from_record(
            replay_jobs.cancel_job(session, job_id=job_id, now=utcnow(), actor=cli_actor())
        )
    if as_json:
        print_json(job)
        return
    out.print(f"replay job {job.id} cancelled after {job.published}/{job.total} published", highlight=False)


def _job(job_id: int) -> ReplayJobPublic:
    """The job as the API shows it (not found: one line, exit 1)."""
    from api.schemas.dead_letters import ReplayJobPublic

    with database_session() as session:
        return ReplayJobPublic.from_record(replay_jobs.get_job(session, job_id=job_id))


def _follow(job_id: int, *, timeout: float | None, quiet: bool) -> ReplayJobPublic:
    """Poll the job until it is no longer pending or running, showing a progress bar (unless quiet)."""
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
