"""Redaction of every log line a worker writes, Celery's own included.

Importing this module connects Celery's ``after_setup_logger`` / ``after_setup_task_logger`` signals:
once Celery has set up logging in a worker, each handler of the root, ``celery`` and task loggers gets a
:class:`~error_handling.redaction.RedactingFilter`, so lines such as ``Task ... retry: <exception>``
are redacted like function-runner's own events.
"""

from __future__ import annotations

import logging

from celery import signals

from error_handling.redaction import RedactingFilter


def redact_logger(logger: logging.Logger) -> None:
    """Add a :class:`RedactingFilter` to every handler of ``logger`` (once), so Celery's own log lines
    (``Task ... retry: <exception>``) are redacted like ours."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def _on_logging_set_up(logger: logging.Logger, **_: object) -> None:
    redact_logger(logger)
    redact_logger(logging.getLogger())


signals.after_setup_logger.connect(_on_logging_set_up, weak=False, dispatch_uid="function_runner.redact")
signals.after_setup_task_logger.connect(_on_logging_set_up, weak=False, dispatch_uid="function_runner.redact_task")
