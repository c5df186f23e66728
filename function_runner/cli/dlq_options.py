"""The options the ``dlq`` commands share (used as ``opt.Since``): which dead letters a listing or a bulk
replay takes, and the id of one dead letter."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

#: The id argument of the commands on one dead letter.
DeadLetterId = Annotated[int, typer.Argument(metavar="ID", help="The dead letter's id.")]

# The dead-letter filter of `dlq list` and `dlq replay-all`.
TaskName = Annotated[str | None, typer.Option("--task", help="Only this task name.")]
Category = Annotated[str | None, typer.Option(help="Only this error category.")]
Reason = Annotated[str | None, typer.Option(help="Only this dead-letter reason.")]
Fingerprint = Annotated[str | None, typer.Option(help="Only this error fingerprint.")]
Queue = Annotated[str | None, typer.Option(help="Only this queue.")]
Search = Annotated[str | None, typer.Option("--search", "-q", help="Text in the error message.")]
Since = Annotated[dt.datetime | None, typer.Option(help="Created at or after (UTC).")]
Until = Annotated[dt.datetime | None, typer.Option(help="Created before (UTC).")]
