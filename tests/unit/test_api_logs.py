"""The API process redacts its log lines, uvicorn's and the app's, like a worker does."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

from api.log_redaction import SERVER_LOGGERS, redact_server_logs
from error_handling.redaction import RedactingFilter
from tests.support.processes import ROOT

SECRET = "sk-proj-logSECRETvalue0123456789abcdef"

#: A process configured as ``function-runner api`` configures uvicorn, logging what the API logs.
SCRIPT = textwrap.dedent(
    f"""
    import logging, logging.config
    from api.log_redaction import log_config
    logging.config.dictConfig(log_config("info"))
    logging.getLogger("function_runner.api").warning("calling with api_key=%s", "{SECRET}")
    logging.getLogger("function_runner").info("event token={SECRET}")
    access = logging.getLogger("uvicorn.access")
    access.info('%s - "%s %s HTTP/%s" %d', "203.0.113.7:5000", "GET", "/x?q=token%3D{SECRET}", "1.1", 200)
    access.info('%s - "%s %s HTTP/%s" %d', "203.0.113.7:5000", "GET", "/x?token={SECRET}", "1.1", 200)
    access.info("%s%s", "token=", "{SECRET}")  # a secret split across arguments: the line is rewritten whole
    try:
        raise RuntimeError("failed with password={SECRET}")
    except RuntimeError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    """
)


def test_every_line_of_the_api_process_is_redacted() -> None:
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    assert SECRET not in output
    assert "Logging error" not in output  # every line could be formatted
    assert "calling with api_key=[REDACTED]" in result.stderr  # the app's loggers are written, redacted
    assert "event token=[REDACTED]" in result.stderr
    assert result.stdout.count('"GET /x?') == 2 and "[REDACTED]" in result.stdout  # uvicorn's access lines
    assert "Exception in ASGI application" in result.stderr and "password=[REDACTED]" in result.stderr


def test_the_app_adds_the_filter_to_handlers_uvicorn_set_up() -> None:
    handler = logging.NullHandler()
    logger = logging.getLogger(SERVER_LOGGERS[0])
    logger.addHandler(handler)
    try:
        redact_server_logs()
        redact_server_logs()
        assert [type(f) for f in handler.filters] == [RedactingFilter]
    finally:
        logger.removeHandler(handler)
