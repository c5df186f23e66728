"""What every ``function-runner`` command shares: one-line errors, exit codes, settings loading."""

from __future__ import annotations

import typer
from pydantic import ValidationError as SettingsValidationError
from rich.console import Console
from rich.markup import escape

from function_runner.settings import Settings

#: Exit code of a refused or failed operation (not found, database unavailable, ...).
EXIT_FAILED = 1
#: Exit code of a usage error (bad option, bad settings).
EXIT_USAGE = 2

#: Where errors go.
err = Console(stderr=True)


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print ``error: message`` on one line of stderr and return the exit to raise."""
    # escape: the message is text, not markup (``[/x]`` would raise); soft_wrap: one line, never folded
    err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def load_settings() -> Settings:
    """The settings from the environment, or a one-line error naming each bad variable."""
    try:
        return Settings()
    except SettingsValidationError as exc:
        problems = "; ".join(
            f"FUNCTION_RUNNER_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise fail(f"invalid settings: {problems}", EXIT_USAGE) from None


def cli_actor() -> str:
    """Who runs the command, for the audit: ``cli:<os user>`` (``cli:unknown`` when the system cannot
    tell: no login name, no passwd entry)."""
    import getpass

    try:
        user = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no USER/LOGNAME and no passwd entry for the uid
        user = ""
    return f"cli:{user.strip() or 'unknown'}"
