"""The ``function-runner`` command line (typer): the commands that run a process, and the groups.

Commands:
    demo         every route end to end on the embedded default (no servers)
    worker       a Celery worker for your app (``celery -A APP worker`` with our defaults)
    dispatcher   publishes due retries and released resource waits
    api          the error API (FastAPI, served by uvicorn)
    db           upgrade / downgrade: the database schema
    errors, dlq  failed attempts; dead letters (list, show, replay, discard, bulk replay)
    analyze      what went wrong in the last minutes, what changed, and what to do about it
    audit        the operator audit (who did what, when)
    keys         generate an encryption key; rotate: re-seal every stored secret under the newest key
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType
from typing import Annotated

import sqlalchemy as sa
import typer

from error_handling.exceptions import ConfigurationError, FunctionRunnerError
from function_runner.cli.analyze import analyze
from function_runner.cli.audit import app as audit_app
from function_runner.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    AppOption,
    fail,
    first_line,
    load_celery_app,
    load_settings,
)
from function_runner.cli.db import app as db_app
from function_runner.cli.dlq import app as dlq_app
from function_runner.cli.errors import app as errors_app
from function_runner.cli.groups import app as groups_app
from function_runner.cli.keys import app as keys_app

app = typer.Typer(
    name="function-runner",
    help="Make Celery task fleets survive failure: classify, retry, wait, dead-letter, replay.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db_app, name="db")
app.add_typer(errors_app, name="errors")
app.add_typer(dlq_app, name="dlq")
app.add_typer(groups_app, name="groups")
app.add_typer(audit_app, name="audit")
app.add_typer(keys_app, name="keys")
app.command("analyze")(analyze)


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
    celery = load_celery_app(celery_app)
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
    celery = load_celery_app(celery_app)
    try:
        runner = Dispatcher(celery)
    except ConfigurationError as exc:  # no key, or a malformed one
        raise fail(str(exc)) from None
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
        raise fail(str(exc), code=EXIT_FAILED) from None
    except sa.exc.DBAPIError as exc:  # e.g. tables missing: the schema was never migrated
        raise fail(
            first_line(exc) + " (is the schema migrated? run: function-runner db upgrade)", code=EXIT_FAILED
        ) from None


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


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
