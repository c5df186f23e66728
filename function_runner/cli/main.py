"""The ``function-runner`` command line (typer).

Commands:
    demo         every route end to end on the embedded default (no servers)
    worker       a Celery worker for your app (``celery -A APP worker`` with our defaults)
    dispatcher   publishes due retries and released resource waits
    api          the error API (FastAPI, served by uvicorn)
    db           upgrade / downgrade / current: the database schema
    errors, dlq  failed attempts; dead letters (list, show, replay, discard, bulk replay)
    audit        the operator audit (who did what, when)
    keys         generate an encryption key; rotate: re-seal every stored secret under the newest key
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
from types import FrameType
from typing import Annotated

import typer

from error_handling.exceptions import FunctionRunnerError
from function_runner.cli.audit import app as audit_app
from function_runner.cli.common import EXIT_USAGE, fail, load_settings
from function_runner.cli.dlq import app as dlq_app
from function_runner.cli.errors import app as errors_app
from function_runner.cli.keys import app as keys_app

app = typer.Typer(
    name="function-runner",
    help="Make Celery task fleets survive failure: classify, retry, wait, dead-letter, replay.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Manage function-runner's database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(errors_app, name="errors")
app.add_typer(dlq_app, name="dlq")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")


AppOption = Annotated[
    str | None,
    typer.Option(
        "--app", "-A", help="Your Celery app, as 'module' or 'module:attribute' (default: one built from settings)."
    ),
]


def _unreachable(exc: BaseException) -> typer.Exit:
    """The one-line error for a database that cannot be reached (the driver's first line, redacted)."""
    from error_handling.redaction import DEFAULT_REDACTOR

    cause = getattr(exc, "orig", None) or exc
    detail = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    return fail(f"database unavailable: {DEFAULT_REDACTOR.redact_text(detail)}", code=1)


def _first_line(exc: BaseException) -> str:
    """The first line of a driver error, redacted."""
    from error_handling.redaction import DEFAULT_REDACTOR

    cause = getattr(exc, "orig", None) or exc
    return DEFAULT_REDACTOR.redact_text((str(cause).strip().splitlines() or [type(cause).__name__])[0])


def _load_app(spec: str | None):  # type: ignore[no-untyped-def]
    from celery import Celery

    from function_runner.app import create_app

    if not spec:
        return create_app(load_settings())
    module_name, _, attribute = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise fail(f"cannot import {module_name!r}: {exc}") from None
    candidates = [attribute] if attribute else ["app", "celery"]
    for name in candidates:
        found = getattr(module, name, None)
        if isinstance(found, Celery):
            return found
    raise fail(f"no Celery app found in {spec!r} (looked for {', '.join(candidates)})")


def _logging(level: str) -> None:
    from error_handling.redaction import RedactingFilter

    handler = logging.StreamHandler()
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level.upper())


@app.command()
def demo(
    verbose: Annotated[bool, typer.Option("--verbose", help="Show the worker's output too.")] = False,
) -> None:
    """Run every route end to end on the embedded default (SQLite + filesystem broker), no servers."""
    from function_runner.demo.run import run_demo

    raise typer.Exit(run_demo(keep=verbose))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def worker(
    ctx: typer.Context,
    celery_app: AppOption = None,
) -> None:
    """Start a Celery worker; extra arguments go to ``celery worker`` (e.g. --pool, --concurrency, -Q)."""
    celery = _load_app(celery_app)
    celery.worker_main(["worker", *ctx.args])


@app.command()
def dispatcher(
    celery_app: AppOption = None,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "INFO",
    once: Annotated[bool, typer.Option("--once", help="Run one pass and exit.")] = False,
) -> None:
    """Publish due retries and released resource waits; any number may run at once."""
    from function_runner.dispatch.dispatcher import Dispatcher

    _logging(log_level)
    from error_handling.exceptions import ConfigurationError

    celery = _load_app(celery_app)
    try:
        runner = Dispatcher(celery)
    except ConfigurationError as exc:  # no key, or a malformed one
        raise fail(str(exc)) from None
    import sqlalchemy as sa

    try:
        if once:
            runner.check_queues()
            result = runner.run_once()
            typer.echo(f"published={result.published} expired={result.expired}")
            return

        def _stop(signum: int, _frame: FrameType | None) -> None:
            runner.stop()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        runner.run_forever()
    except FunctionRunnerError as exc:
        raise fail(str(exc), code=1) from None
    except sa.exc.DBAPIError as exc:  # e.g. tables missing: the schema was never migrated
        raise fail(_first_line(exc) + " (is the schema migrated? run: function-runner db upgrade)", code=1) from None


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    log_level: Annotated[str, typer.Option(help="Logging level.")] = "info",
) -> None:
    """Serve the error API under /api/v1/errors (OpenAPI at /docs).

    Without FUNCTION_RUNNER_API_KEYS it refuses to listen on an address other than loopback (unless
    FUNCTION_RUNNER_API_ALLOW_OPEN=true). Proxy headers are believed only from
    FUNCTION_RUNNER_API_FORWARDED_ALLOW_IPS; every log line is redacted.
    """
    import uvicorn

    from api.auth import open_bind_refusal
    from api.log_redaction import log_config
    from error_handling.exceptions import ConfigurationError

    settings = load_settings()
    try:
        settings.check_encryption_key()  # the API refuses to start without a valid key (as create_app does)
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    refusal = open_bind_refusal(settings, host)
    if refusal is not None:
        raise fail(refusal, code=EXIT_USAGE)
    proxies = settings.api_forwarded_allow_ips
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=log_config(log_level),
        # uvicorn believes X-Forwarded-For by default (from FORWARDED_ALLOW_IPS, else 127.0.0.1): a client
        # could make itself look local. Only the proxies the operator names are believed.
        proxy_headers=proxies is not None,
        forwarded_allow_ips=proxies,
    )


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Migrate the database up (to the latest schema by default)."""
    from error_handling.persistence.db import UNAVAILABLE_ERRORS
    from function_runner.migrate import upgrade

    settings = load_settings()
    if settings.database_url is None:  # the embedded default: its folder may not exist yet
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        upgrade(settings.effective_database_url, revision)
    except FunctionRunnerError as exc:
        raise fail(str(exc), code=1) from None
    except UNAVAILABLE_ERRORS as exc:
        raise _unreachable(exc) from None
    typer.echo(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "base") -> None:
    """Migrate the database down (removing every function-runner table by default)."""
    from error_handling.persistence.db import UNAVAILABLE_ERRORS
    from function_runner.migrate import downgrade

    try:
        downgrade(load_settings().effective_database_url, revision)
    except FunctionRunnerError as exc:
        raise fail(str(exc), code=1) from None
    except UNAVAILABLE_ERRORS as exc:
        raise _unreachable(exc) from None
    typer.echo(f"database at {revision}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
