"""``function-runner audit``: read the operator audit (who did what, when, to which target).

The same function as the API (:func:`error_handling.persistence.audit.list_events`) and the same public
shape for ``--json`` (:mod:`api.schemas.audit`). Errors are one line on stderr; exit codes: 1 when the
database is unavailable, 2 for a usage error (bad cursor, unknown action, invalid settings).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated

import typer

from error_handling.persistence import audit
from error_handling.persistence.audit import AuditAction, AuditTarget
from function_runner.cli.common import CursorOption, PageSizeOption, page_reading, utc
from function_runner.cli.output import JsonOption, print_page, when

app = typer.Typer(
    help="The operator audit: who replayed, discarded, cancelled, reset or opened what, and when.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def main() -> None:
    """The operator audit: who replayed, discarded, cancelled, reset or opened what, and when."""


@app.command("list")
def list_command(
    actor: Annotated[str | None, typer.Option(help="Only this actor (an API key's name, or cli:<user>).")] = None,
    action: Annotated[AuditAction | None, typer.Option(help="Only this action.")] = None,
    target_type: Annotated[AuditTarget | None, typer.Option("--target-type", help="Only this kind of target.")] = None,
    target_id: Annotated[str | None, typer.Option("--target", help="Only this target (id or service).")] = None,
    since: Annotated[dt.datetime | None, typer.Option(help="At or after (UTC).")] = None,
    until: Annotated[dt.datetime | None, typer.Option(help="Before (UTC).")] = None,
    limit: PageSizeOption = 50,
    cursor: CursorOption = None,
    as_json: JsonOption = False,
) -> None:
    """List operator actions, newest first."""
    from api.schemas.audit import AuditEventsPublic

    flt = audit.AuditFilter(
        actor=actor,
        action=action.value if action else None,
        target_type=target_type.value if target_type else None,
        target_id=target_id,
        since=utc(since),
        until=utc(until),
    )
    with page_reading(cursor) as (session, position):
        page = audit.list_events(session, flt, cursor=position, limit=limit)
        public = AuditEventsPublic.from_page(page)
    print_page(
        public,
        as_json=as_json,
        columns=("id", "at", "actor", "action", "target", "detail"),
        row=lambda event: (
            str(event.id),
            when(event.at),
            event.actor,
            event.action,
            f"{event.target_type}:{event.target_id or ''}",
            json.dumps(event.detail, default=str)[:80],
        ),
    )
