"""``function-runner groups``: error groups (one per fingerprint) from the command line: list, show,
resolve, ignore, unresolve, and replay or discard a group's dead letters as a job.

The same reads and changes as the API (:mod:`error_handling.persistence.reads.groups`,
:mod:`error_handling.persistence.group_states`) and the same public shapes for ``--json``
(:mod:`api.schemas.groups`). Changes are audited as ``cli:<os user>``. Exit codes: 1 when refused (no
such group, a past ``--until``), 2 for a usage error (bad cursor, bad settings).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from error_handling.persistence import group_states, replay_jobs
from error_handling.persistence.models import ErrorGroup, GroupState, JobAction, utcnow
from error_handling.persistence.reads import group_detail, groups
from error_handling.persistence.reads.dlq import DeadLetterFilter
from function_runner.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    CursorOption,
    PageSizeOption,
    cli_actor,
    database_session,
    fail,
    load_settings,
    utc,
)
from function_runner.cli.output import JsonOption, out, print_json, print_page, when

app = typer.Typer(
    help="Error groups: list, show, resolve, ignore, unresolve; replay or discard a group's dead letters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

FingerprintArgument = Annotated[str, typer.Argument(help="The group's fingerprint.")]
SinceOption = Annotated[dt.datetime | None, typer.Option(help="Count from (UTC unless given; default: 24 h ago).")]


def _new_period() -> dt.timedelta:
    return dt.timedelta(seconds=load_settings().groups_new_period)


@app.command("list")
def list_command(
    state: Annotated[GroupState | None, typer.Option(help="Only groups in this state now.")] = None,
    category: Annotated[str | None, typer.Option(help="Category of the latest attempt.")] = None,
    reason: Annotated[str | None, typer.Option(help="Reason code of the latest attempt.")] = None,
    task_name: Annotated[str | None, typer.Option("--task", help="Groups that ever failed in this task.")] = None,
    queue: Annotated[str | None, typer.Option(help="Groups that ever failed in this queue.")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Text in the title.")] = None,
    since: SinceOption = None,
    sort: Annotated[groups.GroupSort, typer.Option(help="Largest first.")] = groups.GroupSort.LAST_SEEN,
    limit: PageSizeOption = 50,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
) -> None:
    """List error groups with their counts in the window, largest first by --sort."""
    from api.schemas.groups import groups_public

    flt = groups.GroupFilter(
        state=state, category=category, reason=reason, task_name=task_name, queue=queue, search=search, since=utc(since)
    )
    with database_session() as session:
        page = groups.list_groups(
            session, flt, sort=sort, cursor=cursor, limit=limit, now=utcnow(), new_period=_new_period()
        )
        public = groups_public(page)
    print_page(
        public,
        as_json=as_json,
        columns=("fingerprint", "state", "count", "seen", "last seen", "task", "title"),
        row=lambda g: (
            g.fingerprint,
            g.state.value,
            str(g.count),
            str(g.times_seen),
            when(g.last_seen),
            g.task_name,
            g.title[:60],
        ),
    )


@app.command("show")
def show_command(fingerprint: FingerprintArgument, since: SinceOption = None, as_json: JsonOption = False) -> None:
    """Show a group: its counts, trend, tasks and queues in the window, latest attempt and dead letters."""
    from api.schemas.groups import group_detail_public

    with database_session() as session:
        try:
            detail = group_detail.get_group(
                session, fingerprint=fingerprint, since=utc(since), now=utcnow(), new_period=_new_period()
            )
        except ValueError as exc:
            raise fail(str(exc), EXIT_USAGE) from None
        if detail is None:
            raise fail(f"no error group has fingerprint {fingerprint!r}", EXIT_FAILED)
        public = group_detail_public(detail)
    if as_json:
        print_json(public)
        return
    g = public.group
    lines = [
        f"group {g.fingerprint} [{g.state.value}]: {g.title}",
        f"  {g.category}/{g.reason}, first seen {when(g.first_seen)}, last seen {when(g.last_seen)}",
        f"  {g.count} in the window (before: {g.previous_count}), {g.times_seen} in all",
        f"  recovered {public.shares.recovered:.0%}, failed fast {public.shares.failed_fast:.0%}, "
        f"dead-lettered {public.shares.dead_lettered:.0%}; {public.pending_dead_letters} dead letters pending",
        "  tasks:  " + ", ".join(f"{name} {n}" for name, n in public.tasks.items()),
        "  queues: " + ", ".join(f"{name or '?'} {n}" for name, n in public.queues.items()),
        "  trend:  " + " ".join(str(bucket.count) for bucket in public.trend) + f" (per {public.resolution.value})",
    ]
    if public.latest is not None:
        lines.append(
            f"  latest: attempt {public.latest.id} of {public.latest.task_id} at {when(public.latest.failed_at)}"
        )
    out.print("\n".join(lines), highlight=False, markup=False)


def _change(fingerprint: str, change: group_states.GroupChange, *, as_json: bool) -> None:
    from api.schemas.groups import group_public

    now, period = utcnow(), _new_period()
    with database_session() as session:
        group_states.change_group(
            session, fingerprint=fingerprint, change=change, now=now, new_period=period, actor=cli_actor()
        )
        window = groups.GroupFilter().window(now)
        public = group_public(
            groups.summaries(session, [fingerprint], now=now, new_period=period, window=window)[fingerprint]
        )
    if as_json:
        print_json(public)
        return
    out.print(f"group {fingerprint}: {public.state.value}", highlight=False)


@app.command("resolve")
def resolve_command(fingerprint: FingerprintArgument, as_json: JsonOption = False) -> None:
    """Resolve a group: its next attempt makes it 'regressed'."""
    _change(fingerprint, group_states.GroupChange(GroupState.RESOLVED), as_json=as_json)


@app.command("ignore")
def ignore_command(
    fingerprint: FingerprintArgument,
    until: Annotated[dt.datetime | None, typer.Option(help="Until this time (UTC unless given).")] = None,
    until_escalating: Annotated[bool, typer.Option("--until-escalating", help="Until it escalates.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Ignore a group: forever, until a time, or until it escalates."""
    change = group_states.GroupChange(
        GroupState.IGNORED, ignore_until=utc(until), ignore_until_escalating=until_escalating
    )
    _change(fingerprint, change, as_json=as_json)


@app.command("unresolve")
def unresolve_command(fingerprint: FingerprintArgument, as_json: JsonOption = False) -> None:
    """Set a resolved or ignored group back to 'ongoing'."""
    _change(fingerprint, group_states.GroupChange(GroupState.ONGOING), as_json=as_json)


def _job(fingerprint: str, action: JobAction, *, dry_run: bool, reason: str | None, as_json: bool) -> None:
    from api.schemas.dead_letters import BulkReplayPreview, DeadLetterPublic, ReplayJobPublic

    with database_session() as session:
        if session.get(ErrorGroup, fingerprint) is None:
            raise fail(f"no error group has fingerprint {fingerprint!r}", EXIT_FAILED)
        now = utcnow()
        flt = DeadLetterFilter(fingerprint=fingerprint, until=now)
        if dry_run:
            sample = replay_jobs.sample_matching(session, flt, limit=10)
            document: BulkReplayPreview | ReplayJobPublic = BulkReplayPreview(
                count=replay_jobs.count_matching(session, flt),
                sample=[DeadLetterPublic.from_record(letter) for letter in sample],
            )
        else:
            job = replay_jobs.create_job(
                session, flt=flt, rate_per_second=None, now=now, actor=cli_actor(), action=action, reason=reason
            )
            document = ReplayJobPublic.from_record(job)
    if as_json:
        print_json(document)
    elif isinstance(document, BulkReplayPreview):
        out.print(f"{document.count} pending dead letters would be {action.value}ed", highlight=False)
    else:
        out.print(
            f"{action.value} job {document.id}: {document.total} dead letters "
            f"(follow it: function-runner dlq replay-status {document.id})",
            highlight=False,
        )


DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show how many would be taken; change nothing.")]


@app.command("replay")
def replay_command(
    fingerprint: FingerprintArgument, dry_run: DryRunOption = False, as_json: JsonOption = False
) -> None:
    """Replay the group's pending dead letters as a job the dispatcher runs (each published once)."""
    _job(fingerprint, JobAction.REPLAY, dry_run=dry_run, reason=None, as_json=as_json)


@app.command("discard")
def discard_command(
    fingerprint: FingerprintArgument,
    reason: Annotated[str | None, typer.Option(help="Why (kept with each letter).")] = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
) -> None:
    """Discard the group's pending dead letters as a job the dispatcher runs."""
    _job(fingerprint, JobAction.DISCARD, dry_run=dry_run, reason=reason, as_json=as_json)
