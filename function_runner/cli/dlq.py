"""``function-runner dlq``: list, show, replay and discard dead letters from the command line.

Every change is audited as ``cli:<os user>`` (see ``function-runner audit list``). Listing, showing and
discarding live here; replaying one dead letter or many (bulk replay jobs) in :mod:`.dlq_replay`.

The same functions as the API (:mod:`error_handling.persistence.dead_letters`,
:mod:`function_runner.replay`) and the same public shapes for ``--json`` (:mod:`api.schemas.dead_letters`).
Errors are one line on stderr, never a traceback; exit codes: 1 when the operation was refused or failed
(not found, already replayed, discarded, database or broker unavailable), 2 for a usage error (bad JSON,
bad cursor, invalid settings).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from error_handling.persistence import dead_letters
from error_handling.persistence.models import DeadLetterStatus, utcnow
from error_handling.persistence.reads import dlq
from function_runner.cli import dlq_options as opt
from function_runner.cli import dlq_replay
from function_runner.cli.common import (
    EXIT_USAGE,
    CursorOption,
    PageSizeOption,
    cli_actor,
    database_session,
    fail,
    page_reading,
)
from function_runner.cli.output import JsonOption, out, print_json, print_page, when

if TYPE_CHECKING:
    from api.schemas.dead_letters import DeadLetterDetailPublic

app = typer.Typer(
    help="Dead letters: list, show, replay (one, or all matching a filter) and discard them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@opt.takes_filter
def list_command(
    status: Annotated[DeadLetterStatus | None, typer.Option(help="Only dead letters in this state.")] = None,
    flt: dlq.DeadLetterFilter = opt.NO_FILTER,
    limit: PageSizeOption = 50,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
) -> None:
    """List dead letters, newest first."""
    from api.schemas.dead_letters import DeadLetterPublic, DeadLettersPublic
    from error_handling.persistence.cursor import encode_cursor

    with page_reading(cursor) as (session, position):
        page = dlq.list_dead_letters(session, flt, status=status, cursor=position, limit=limit)
        public = DeadLettersPublic(
            data=[DeadLetterPublic.from_record(letter) for letter in page.items],
            next_cursor=encode_cursor(*page.next_cursor) if page.next_cursor else None,
        )
    print_page(
        public,
        as_json=as_json,
        columns=("id", "created", "task", "queue", "reason", "status", "message"),
        row=lambda item: (
            str(item.id),
            when(item.created_at),
            item.task_name,
            item.queue or "",
            item.reason,
            item.status.value,
            (item.message or "")[:60],
        ),
    )


def show_command(dead_letter_id: opt.DeadLetterId, as_json: JsonOption = False) -> None:
    """Show a dead letter: its redacted payload, its failed attempts and its replays."""
    from api.schemas.dead_letters import DeadLetterDetailPublic

    with database_session() as session:
        letter = dead_letters.get_dead_letter(session, dead_letter_id=dead_letter_id)
        detail = DeadLetterDetailPublic.from_records(
            letter,
            attempts=dlq.attempts_of(session, task_id=letter.task_id),
            replays=dlq.replays_of(session, dead_letter_id=letter.id),
        )
    if as_json:
        print_json(detail)
        return
    out.print("\n".join(_detail_lines(detail)), highlight=False, markup=False)


def _detail_lines(detail: DeadLetterDetailPublic) -> list[str]:
    """``dlq show``'s text: the dead letter, what happened to it, its attempts and its replays."""
    lines = [
        f"dead letter {detail.id}: {detail.task_name} [{detail.status.value}]",
        f"  task id:   {detail.task_id}",
        f"  queue:     {detail.queue or ''}",
        f"  reason:    {detail.reason} ({detail.category or '?'}; last: {detail.last_reason or '?'})",
        f"  error:     {detail.exc_type or ''}: {detail.message or ''}",
        f"  attempts:  {detail.attempts}",
        f"  args:      {json.dumps(detail.args)}",
        f"  kwargs:    {json.dumps(detail.kwargs)}",
        f"  created:   {when(detail.created_at)}",
    ]
    if detail.replayed_task_id:
        lines.append(f"  replayed:  as {detail.replayed_task_id} at {when(detail.replayed_at)}")
    if detail.discarded_at:
        lines.append(f"  discarded: {when(detail.discarded_at)}: {detail.discarded_reason}")
    if detail.purged_at:
        lines.append(f"  purged:    {when(detail.purged_at)} (secrets removed by retention: not replayable)")
    for attempt in detail.failed_attempts:
        lines.append(
            f"  attempt {attempt.attempt}: {when(attempt.failed_at)} {attempt.category}/{attempt.reason} "
            f"-> {attempt.decision} on {attempt.worker or '?'}"
        )
    for replay in detail.replays:
        lines.append(f"  replay: {replay.task_id} at {when(replay.created_at)}{' (forced)' if replay.forced else ''}")
    return lines


def discard_command(
    dead_letter_id: opt.DeadLetterId,
    reason: Annotated[str, typer.Option("--reason", help="Why it is discarded (kept with it).")],
    as_json: JsonOption = False,
) -> None:
    """Discard a dead letter with a reason: it and its task become 'discarded' (terminal)."""
    from api.schemas.dead_letters import MAX_DISCARD_REASON, DeadLetterPublic

    if not reason.strip() or len(reason) > MAX_DISCARD_REASON or "\x00" in reason:
        raise fail(f"--reason must be 1 to {MAX_DISCARD_REASON} characters of text", EXIT_USAGE)
    with database_session() as session:
        letter = dead_letters.discard(
            session, dead_letter_id=dead_letter_id, reason=reason, now=utcnow(), actor=cli_actor()
        )
        public = DeadLetterPublic.from_record(letter)
    if as_json:
        print_json(public)
        return
    out.print(f"discarded dead letter {public.id} ({public.task_name})", highlight=False)


# Registered in this order: it is the order of `function-runner dlq --help`.
app.command("list")(list_command)
app.command("show")(show_command)
app.command("replay")(dlq_replay.replay_command)
app.command("discard")(discard_command)
app.command("replay-all")(dlq_replay.replay_all_command)
app.command("replay-status")(dlq_replay.replay_status_command)
app.command("replay-cancel")(dlq_replay.replay_cancel_command)
