"""What every ``function-runner`` command shares: one-line errors and exit codes, settings, the Celery
app to use, a database session, and who the operator is."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import importlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError as SettingsValidationError
from rich.console import Console
from rich.markup import escape
from sqlalchemy.orm import Session

from error_handling.exceptions import FunctionRunnerError
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.redaction import DEFAULT_REDACTOR
from function_runner.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

    from error_handling.persistence.cursor import Keyset

#: Exit code of a refused or failed operation (not found, database unavailable, ...).
EXIT_FAILED = 1
#: Exit code of a usage error (bad option, bad settings).
EXIT_USAGE = 2

#: Where errors go.
err = Console(stderr=True)

#: The ``--app`` option of the commands that publish or run tasks.
AppOption = Annotated[
    str | None,
    typer.Option(
        "--app", "-A", help="Your Celery app, as 'module' or 'module:attribute' (default: one built from settings)."
    ),
]


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on one line of stderr and return the exit to raise."""
    # escape: the message is text, not markup (``[/x]`` would raise); soft_wrap: one line, never folded
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def first_line(exc: BaseException) -> str:
    """The first line of a (driver) error, redacted: what a one-line error may say about it."""
    cause = getattr(exc, "orig", None) or exc
    return DEFAULT_REDACTOR.redact_text((str(cause).strip().splitlines() or [type(cause).__name__])[0])


def load_settings() -> Settings:
    """The settings from the environment, or a one-line error naming each bad variable."""
    try:
        return Settings()
    except SettingsValidationError as exc:
        problems = "; ".join(
            f"FUNCTION_RUNNER_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"invalid settings: {problems}", EXIT_USAGE) from None


def load_celery_app(spec: str | None, *, main: str = "function_runner") -> Celery:
    """The Celery app ``--app`` names (``module`` or ``module:attribute``), or one built from the settings.

    Raises:
        typer.Exit: :data:`EXIT_USAGE` when the module cannot be imported or holds no Celery app.
    """
    from celery import Celery

    from function_runner.app import create_app

    if not spec:
        return create_app(load_settings(), main=main)
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise fail(f"cannot import {module_name!r}: {exc}", EXIT_USAGE) from None
    candidates = [attribute] if attribute else ["app", "celery"]
    for name in candidates:
        found = getattr(module, name, None)
        if isinstance(found, Celery):
            return found
    raise fail(f"no Celery app found in {spec!r} (looked for {', '.join(candidates)})", EXIT_USAGE)


@contextlib.contextmanager
def database_session() -> Iterator[Session]:
    """One transaction on the settings' database; a refused or failed operation is one line, exit 1."""
    engine = make_engine(load_settings().effective_database_url)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            yield session
    except FunctionRunnerError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    finally:
        engine.dispose()


#: ``--limit`` and ``--cursor`` of the listings (``dlq list``, ``audit list``).
PageSizeOption = Annotated[int, typer.Option(min=1, max=500, help="Page size.")]
CursorOption = Annotated[str | None, typer.Option(help="next_cursor printed by the previous page.")]


@contextlib.contextmanager
def page_reading(cursor: str | None) -> Iterator[tuple[Session, Keyset | None]]:
    """A listing's transaction and where its page starts (None: the first page). A bad ``--cursor`` is a
    usage error, said before the database is opened."""
    from error_handling.exceptions import InvalidCursor
    from error_handling.persistence.cursor import decode_cursor

    try:
        position = decode_cursor(cursor) if cursor else None
    except InvalidCursor as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    with database_session() as session:
        yield session, position


def utc(moment: dt.datetime | None) -> dt.datetime | None:
    """A time typed on the command line: without a timezone it is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=dt.UTC)


def cli_actor() -> str:
    """Who runs the command, for the audit: ``cli:<os user>`` (``cli:unknown`` when the system cannot
    tell: no login name, no passwd entry)."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no USER/LOGNAME and no passwd entry for the uid
        user = ""
    return f"cli:{user.strip() or 'unknown'}"
