"""``function-runner db``: migrate the database schema up or down (Alembic, see :mod:`function_runner.migrate`)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer

from error_handling.exceptions import FunctionRunnerError
from error_handling.persistence.db import UNAVAILABLE_ERRORS
from function_runner.cli.common import EXIT_FAILED, fail, first_line, load_settings

app = typer.Typer(help="Manage function-runner's database schema.", no_args_is_help=True)


@contextlib.contextmanager
def _migrating() -> Iterator[None]:
    """A migration's failure as one line, exit 1 (an unreachable database names the driver's error)."""
    try:
        yield
    except FunctionRunnerError as exc:
        raise fail(str(exc), code=EXIT_FAILED) from None
    except UNAVAILABLE_ERRORS as exc:
        raise fail(f"database unavailable: {first_line(exc)}", code=EXIT_FAILED) from None


@app.command("upgrade")
def upgrade_command(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database up (to the latest schema by default)."""
    from function_runner.migrate import upgrade

    settings = load_settings()
    if settings.database_url is None:  # the embedded default: its folder may not exist yet
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    with _migrating():
        upgrade(settings.effective_database_url, revision)
    typer.echo(f"database at {revision}")


@app.command("downgrade")
def downgrade_command(revision: Annotated[str, typer.Argument(help="Target revision.")] = "base") -> None:
    """Migrate the database down (removing every function-runner table by default)."""
    from function_runner.migrate import downgrade

    with _migrating():
        downgrade(load_settings().effective_database_url, revision)
    typer.echo(f"database at {revision}")
