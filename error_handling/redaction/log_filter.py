"""A logging filter that redacts every record it sees (message, arguments, exception, stack)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from error_handling.redaction.markers import REDACTED
from error_handling.redaction.redactor import DEFAULT_REDACTOR, Redactor


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message, arguments, exception and stack text.

    Attach it to a handler (``handler.addFilter(RedactingFilter())``) so it sees records propagated
    from every logger. It never drops a record. In place, on the record:

    - a container logged as the message, and container and string arguments, are redacted
      (:meth:`Redactor.redact`, which knows secret keys); then, if the message
      they format into still contains a secret (one split between the format string and an argument,
      or found in ``str()`` of an argument), ``msg`` becomes the redacted message and ``args`` ``()``;
    - the exception is formatted into ``exc_text`` now, redacted, and ``exc_info`` is cleared, so no
      formatter or handler after this filter can format the raw exception again (handlers that need
      the exception object must come before it); ``stack_info`` is redacted.

    Custom attributes passed with ``extra=`` are not touched: redact them before logging.

    Args:
        redactor: the rules to apply; :data:`DEFAULT_REDACTOR` if not given.
    """

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor if redactor is not None else DEFAULT_REDACTOR
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; always keep it."""
        redactor = self.redactor
        if isinstance(record.msg, Mapping | list | tuple | set | frozenset):  # logged as str() of itself
            record.msg = redactor.redact(record.msg)
        if record.args:
            record.args = self._redact_args(record.args)
        try:
            message = record.getMessage()
        except (TypeError, ValueError, KeyError):  # a broken format string: logging reports it later
            record.msg = redactor.redact_text(str(record.msg))
        else:
            redacted = redactor.redact_text(message)
            if redacted != message:
                record.msg, record.args = redacted, ()
                if "message" in record.__dict__:
                    record.message = redacted
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.redact_text(record.exc_text)
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redactor.redact_text(record.stack_info)
        return True

    def _redact_args(self, args: tuple[object, ...] | Mapping[str, object]) -> Any:
        # Only strings, bytes and containers are replaced: anything else keeps its type for "%d" or
        # "%.2f"; its str() is checked with the formatted message.
        if isinstance(args, Mapping):
            return {
                key: REDACTED if self.redactor.hides(key, arg) else self._redact_arg(arg) for key, arg in args.items()
            }
        return tuple(self._redact_arg(arg) for arg in args)

    def _redact_arg(self, arg: object) -> object:
        if isinstance(arg, str | bytes | bytearray | Mapping | list | tuple | set | frozenset):
            return self.redactor.redact(arg)
        return arg
