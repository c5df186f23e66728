"""What the ``function-runner`` commands print on stdout: tables and lines, or the API's JSON documents."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from pydantic import BaseModel
from rich.console import Console

#: Where results go.
out = Console()

#: ``--json`` of the dlq and audit commands.
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def print_json(document: BaseModel) -> None:
    """Print a public document as indented JSON."""
    typer.echo(document.model_dump_json(indent=2))


def print_next_page(cursor: str | None) -> None:
    """Say how to ask for the next page, when there is one."""
    if cursor:
        out.print(f"next page: --cursor {cursor}", highlight=False)


def when(moment: dt.datetime | None) -> str:
    """A time in a table or a line: ``2026-03-01 09:00:00`` (empty when there is none)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""
