"""Redacted copies of the exceptions that end a task, for everything Celery does with them.

What ends a task's execution is handed to Celery, which stores it in the result backend (the
exception's type, module and arguments, and the formatted traceback), sends it in the ``task-failed`` /
``task-retried`` events (its ``repr`` and the traceback; Flower shows both), logs it and passes it to
``task_failure`` / ``task_retry`` receivers. :class:`~function_runner.wrapper.task.RecoverableTask` therefore
raises :func:`redacted_error` of it instead of the original: an exception of the same type (so
``type(exc).__name__``, ``isinstance`` and the stored ``exc_type`` are unchanged) whose arguments,
notes and string attributes are redacted, whose cause and context are redacted copies in turn, and
which keeps the original traceback (the frames; their source lines are code, not data). Celery's
``Retry`` gets a copy whose ``exc`` (and message, and cause) are redacted.

An exception is copied without calling its ``__init__`` (``cls.__new__`` then ``args`` and the
attributes), so types with required arguments copy too. Attributes holding other objects (a response,
a request) are kept as they are: with the default JSON result serializer Celery stores only the type,
the module and the arguments, but a *pickle* result serializer would store those objects whole.

If ``str()`` or ``repr()`` of the copy still shows a secret (a ``__str__`` that formats attributes the
redactor cannot see into), the copy is a *stand-in* instead: a subclass of the original type with the
same name, module and qualified name, whose text is the redacted text of the original and which
pickles (to the worker's main process, to a pickle backend) as such.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from celery.exceptions import Retry
from celery.utils.imports import symbol_by_name

from error_handling.redaction import REDACTED, Redactor, safe_repr

__all__ = ["StandIn", "redacted_error"]

#: How many links of cause and context are copied; the rest of a chain is cut.
MAX_CHAIN: Final = 20

_TEXT_TYPES: Final = (str, bytes, bytearray, Mapping, list, tuple, set, frozenset)


def redacted_error(error: BaseException, redactor: Redactor) -> BaseException:
    """Return a copy of ``error`` with secrets redacted (see the module's documentation)."""
    return _Copier(redactor).copy(error, 0)


class StandIn:
    """Mixed into the subclass that stands in for an exception whose text cannot be redacted otherwise."""

    #: The redacted text of the original exception.
    _fr_text: str = ""
    #: Where the original type is defined: its module and qualified name.
    _fr_origin: tuple[str, str] = ("builtins", "Exception")

    def __str__(self) -> str:
        return self._fr_text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._fr_text!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        state = {"__cause__": self.__cause__, "__context__": self.__context__}  # type: ignore[attr-defined]
        return (_rebuild_stand_in, (*self._fr_origin, self._fr_text), state)

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)


_STAND_IN_TYPES: dict[type[BaseException], type[BaseException]] = {}


def _stand_in_type(original: type[BaseException]) -> type[BaseException]:
    found = _STAND_IN_TYPES.get(original)
    if found is None:
        namespace = {
            "__module__": original.__module__,
            "__qualname__": original.__qualname__,
            "_fr_origin": (original.__module__, original.__qualname__),
        }
        try:
            found = type(original.__name__, (StandIn, original), namespace)
        except TypeError:  # a type that cannot be subclassed: an Exception of the same name
            found = type(original.__name__, (StandIn, Exception), namespace)
        _STAND_IN_TYPES[original] = found
    return found


def _stand_in(original: type[BaseException], text: str) -> BaseException:
    kind = _stand_in_type(original)
    error: BaseException = BaseException.__new__(kind, text)
    error.args = (text,)
    error._fr_text = text  # type: ignore[attr-defined]
    return error


def _rebuild_stand_in(module: str, qualname: str, text: str) -> BaseException:
    try:
        original = symbol_by_name(f"{module}:{qualname}")
    except (ImportError, AttributeError, ValueError):
        original = Exception
    if not (isinstance(original, type) and issubclass(original, BaseException)):
        original = Exception
    return _stand_in(original, text)


class _Copier:
    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.copies: dict[int, BaseException] = {}

    def copy(self, error: BaseException, depth: int) -> BaseException:
        done = self.copies.get(id(error))
        if done is not None:
            return done
        if isinstance(error, Retry):
            return self._retry(error, depth)
        redacted = self._same_type(error)
        if self._leaks(redacted):
            redacted = _stand_in(type(error), self.redactor.redact_text(_text_of(error)))
        self.copies[id(error)] = redacted
        self._chain(error, redacted, depth)
        return redacted.with_traceback(error.__traceback__)

    def _retry(self, retry: Retry, depth: int) -> BaseException:
        cause = retry.exc if isinstance(retry.exc, BaseException) else None
        exc = self.copy(cause, depth + 1) if cause is not None else None
        message = self.redactor.redact_text(retry.message) if isinstance(retry.message, str) else retry.message
        copied: BaseException = Retry(message, exc=exc, when=retry.when, is_eager=retry.is_eager, sig=retry.sig)
        self.copies[id(retry)] = copied
        self._chain(retry, copied, depth)
        return copied.with_traceback(retry.__traceback__)

    def _same_type(self, error: BaseException) -> BaseException:
        kind = type(error)
        args = tuple(self._value(arg) for arg in error.args)
        try:
            copied: BaseException = kind.__new__(kind, *args)
            copied.args = args
            for name, value in vars(error).items():
                setattr(copied, name, self._attribute(name, value))
        except (TypeError, ValueError, AttributeError):  # an unusual __new__ or a read-only attribute
            return _stand_in(kind, self.redactor.redact_text(_text_of(error)))
        return copied

    def _value(self, value: object) -> object:
        if isinstance(value, _TEXT_TYPES):
            return self.redactor.redact(value)
        if self.redactor.contains_secret(safe_repr(value)) or self.redactor.contains_secret(_str_of(value)):
            return self.redactor.redact_text(_str_of(value))
        return value

    def _attribute(self, name: str, value: object) -> object:
        if name == "__notes__" and isinstance(value, list):
            return [self.redactor.redact_text(note) if isinstance(note, str) else note for note in value]
        if self.redactor.hides(name, value):
            return self.redactor.redact(value) if isinstance(value, Mapping) else REDACTED
        return self._value(value)

    def _leaks(self, error: BaseException) -> bool:
        return self.redactor.contains_secret(_text_of(error)) or self.redactor.contains_secret(safe_repr(error))

    def _chain(self, error: BaseException, copied: BaseException, depth: int) -> None:
        if depth >= MAX_CHAIN:
            copied.__cause__ = copied.__context__ = None
            return
        copied.__cause__ = self.copy(error.__cause__, depth + 1) if error.__cause__ is not None else None
        copied.__context__ = self.copy(error.__context__, depth + 1) if error.__context__ is not None else None
        copied.__suppress_context__ = error.__suppress_context__


def _str_of(value: object) -> str:
    try:
        return str(value)
    except Exception:  # noqa: BLE001 - a broken __str__: its repr stands for it
        return safe_repr(value)


def _text_of(error: BaseException) -> str:
    return _str_of(error)
