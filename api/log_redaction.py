"""The API process logs like a worker: every line redacted (:class:`~error_handling.redaction.RedactingFilter`).

``function-runner api`` hands uvicorn :func:`log_config`: uvicorn's own configuration with the redacting
filter on each handler, and the root logger on uvicorn's ``default`` handler, so the app's loggers
(``function_runner``, ``function_runner.api``) are written, redacted, next to uvicorn's. :func:`create_app`
also calls :func:`redact_server_logs`, which adds the filter to the handlers uvicorn's loggers already have
when another command started uvicorn. Under another server, add ``RedactingFilter`` to its handlers.
"""

from __future__ import annotations

import copy
import logging
from typing import Any
from urllib.parse import unquote

from uvicorn.config import LOGGING_CONFIG
from uvicorn.logging import AccessFormatter as UvicornAccessFormatter

from function_runner.wrapper.logs import redact_logger

__all__ = ["AccessFormatter", "DecodeAccessPath", "log_config", "redact_server_logs"]

#: uvicorn's loggers.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class DecodeAccessPath(logging.Filter):
    """Percent-decode the path of an access line, so the redacting filter after it sees
    ``?q=token=...`` and not ``?q=token%3D...``, which it could not recognise."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Decode the path argument in place; always keep the record."""
        if isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            if isinstance(path, str):
                record.args = (client, method, unquote(path), version, status)
        return True


class AccessFormatter(UvicornAccessFormatter):
    """uvicorn's access-line formatter, which also formats a line the redacting filter rewrote whole.

    uvicorn's expects the five arguments of an access line; when redaction replaces the message (a secret
    split across arguments), the record has none, and the line is written as the redacted message.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The access line, or the redacted message when the record's arguments were redacted away."""
        if isinstance(record.args, tuple) and len(record.args) == 5:
            return super().formatMessage(record)
        rewritten = copy.copy(record)
        rewritten.__dict__.update(client_addr="-", request_line=record.getMessage(), status_code="-")
        return super(UvicornAccessFormatter, self).formatMessage(rewritten)


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration with every handler redacting, and the root logger on stderr at
    ``level`` (for the app's own loggers)."""
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {
        "redact": {"()": "error_handling.redaction.RedactingFilter"},
        "decode_path": {"()": f"{__name__}.DecodeAccessPath"},
    }
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    config["handlers"]["access"]["filters"] = ["decode_path", "redact"]
    config["formatters"]["access"]["()"] = f"{__name__}.AccessFormatter"
    config["root"] = {"handlers": ["default"], "level": level.upper()}
    return config


def redact_server_logs() -> None:
    """Add a redacting filter to each handler of uvicorn's loggers (once)."""
    for name in SERVER_LOGGERS:
        redact_logger(logging.getLogger(name))
