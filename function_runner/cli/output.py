"""What the ``function-runner`` commands print on stdout: tables and lines, or the API's JSON documents."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

#: Where results go.
out = Console()

#: ``--json`` of the dlq and audit commands.
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def print_json(document: BaseModel) -> None:
    """Print a public document as indented JSON."""
    typer.echo(document.model_dump_json(indent=2))


def print_page(page: Any, *, as_json: bool, columns: Iterable[str], row: Callable[[Any], Iterable[str]]) -> None:
    """A page of a listing (a public document with ``data`` and ``next_cursor``): its JSON, or a table of
    ``columns`` with a ``row`` per item and how to ask for the next page."""
    if as_json:
        print_json(page)
        return
    table = Table(*columns, box=None)
    for item in page.data:
        table.add_row(*row(item))
    out.print(table)
    print_next_page(page.next_cursor)


def print_next_page(cursor: str | None) -> None:
    """Say how to ask for the next page, when there is one."""
    if cursor:
        out.print(f"next page: --cursor {cursor}", highlight=False)


def when(moment: dt.datetime | None) -> str:
    """A time in a table or a line: ``2026-03-01 09:00:00`` (empty when there is none)."""
    return moment.strftime("%Y-%m-%d %H:%M:%S") if moment else ""
