"""Structured log events: a stable event name plus fields, rendered ``event key=value ...``.

Every event is logged through the ``function_runner`` logger with the event name in
``record.fr_event`` and the fields in ``record.fr_fields``, so handlers (and tests) can read them
without parsing text. Field values are redacted before they are logged.
"""

from __future__ import annotations

import logging
from typing import Any

from error_handling.redaction import DEFAULT_REDACTOR

logger = logging.getLogger("function_runner")


def log_event(event: str, *, level: int = logging.INFO, exc_info: bool = False, **fields: Any) -> None:
    """Log ``event`` with ``fields`` (redacted) on the ``function_runner`` logger."""
    if not logger.isEnabledFor(level):
        return
    safe: dict[str, Any] = DEFAULT_REDACTOR.redact(fields)  # as a mapping, so secret key names hide values
    text = " ".join(f"{key}={value}" for key, value in safe.items())
    logger.log(level, "%s %s", event, text, exc_info=exc_info, extra={"fr_event": event, "fr_fields": safe})
