"""``function-runner keys``: make an encryption key, and re-seal every stored secret under the newest one.

Rotating from key A to key B:

1. ``function-runner keys generate`` prints B;
2. set ``FUNCTION_RUNNER_ENCRYPTION_KEY="B,A"`` on every process and restart them (B seals, both open);
3. ``function-runner keys rotate`` re-seals what A sealed (``--dry-run`` counts it first); run it again
   if it was interrupted: it resumes, skipping what B already seals;
4. once it reports nothing left under another key, set ``FUNCTION_RUNNER_ENCRYPTION_KEY="B"``.

Exit codes: 0 done; 1 some values open with no configured key (listed; kept, not dropped) or the
database or Redis failed; 2 bad settings (no key, a malformed key).
"""

from __future__ import annotations

from typing import Annotated

import typer

from error_handling.exceptions import ConfigurationError, FunctionRunnerError
from error_handling.sealing import generate_key
from function_runner.cli.common import EXIT_FAILED, EXIT_USAGE, fail, load_settings

app = typer.Typer(
    help="The encryption key of stored secrets: generate one, rotate to a new one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: How many ids of rows no key opens are listed per table.
SHOWN_IDS = 20


@app.command("generate")
def generate_command() -> None:
    """Print a new random key, for FUNCTION_RUNNER_ENCRYPTION_KEY (put it first to rotate to it)."""
    typer.echo(generate_key())


@app.command("rotate")
def rotate_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would be re-sealed; change nothing.")] = False,
    batch_size: Annotated[int, typer.Option(help="Rows per transaction.", min=1, max=10_000)] = 500,
) -> None:
    """Re-seal every stored secret with the first key of FUNCTION_RUNNER_ENCRYPTION_KEY, resumably.

    Covers task payloads, dead letters, compensation steps and the failures kept in the shared Redis.
    Values no configured key opens are reported (ids listed) and kept.
    """
    import redis

    from function_runner.keys import TableRotation, rotate_keys
    from function_runner.runtime import Runtime

    settings = load_settings()
    runtime = Runtime(settings)
    try:
        settings.check_encryption_key()  # before any work
    except ConfigurationError as exc:
        raise fail(str(exc), EXIT_USAGE) from None

    def progress(table: TableRotation) -> None:
        typer.echo(f"{table.table}: {table.rows} rows read, {table.rotated} values re-sealed so far", err=True)

    try:
        rotation = rotate_keys(runtime, batch_size=batch_size, dry_run=dry_run, progress=progress)
    except FunctionRunnerError as exc:
        raise fail(f"{exc} (nothing is lost: run it again to resume)", EXIT_FAILED) from None
    except redis.RedisError as exc:
        raise fail(f"shared Redis failed: {type(exc).__name__} (run it again to resume)", EXIT_FAILED) from None
    finally:
        runtime.close()
    verb = "would re-seal" if dry_run else "re-sealed"
    for table in rotation.tables:
        typer.echo(
            f"{table.table}: {table.rows} rows with secrets, {verb} {table.rotated} values in "
            f"{table.rows_changed} rows, {table.current} already under the newest key, "
            f"{table.unopened} no key opens"
        )
    typer.echo(f"{'dry run: ' if dry_run else ''}{verb} {rotation.rotated} values; {rotation.unopened} no key opens")
    if rotation.unopened:
        for table in rotation.tables:
            if table.unopened_ids:
                shown = ", ".join(table.unopened_ids[:SHOWN_IDS])
                more = f" and {len(table.unopened_ids) - SHOWN_IDS} more" if len(table.unopened_ids) > SHOWN_IDS else ""
                typer.echo(f"no configured key opens secrets of {table.table} ids: {shown}{more}", err=True)
        raise fail(
            f"{rotation.unopened} sealed values open with no configured key; they were kept: add the key that "
            "sealed them (after the first) and run it again before removing any key",
            EXIT_FAILED,
        )
