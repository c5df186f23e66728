"""Fingerprints: one short digest for "the same error", across tasks, workers and runs.

A fingerprint is built from the exception's qualified type, its message with the parts that vary
between occurrences stripped (ids, numbers, uuids, hex, paths, quoted values, e-mail addresses, URLs'
query strings), and the first *in-app* frame of its traceback (module and function, not the line
number, so an unrelated edit to the file does not split a group).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import sysconfig
import types
from collections.abc import Iterable

#: Module prefixes that are never "in-app": this project's own wrapper and the task runtime.
FRAMEWORK_MODULES: tuple[str, ...] = (
    "error_handling.",
    "function_runner.",
    "celery.",
    "kombu.",
    "billiard.",
)

_NORMALISERS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "<uuid>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b"), "<email>"),
    (re.compile(r"(https?://[^\s?#'\"]+)\?[^\s'\"]*"), r"\1?<query>"),
    (re.compile(r"(?<![\w/])(?:[A-Za-z]:)?(?:[/\\][\w.\-~]+){2,}[/\\]?"), "<path>"),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    (re.compile(r"\b[0-9a-fA-F]{12,}\b"), "<hex>"),
    (re.compile(r"'[^']{0,200}'"), "'<str>'"),
    (re.compile(r'"[^"]{0,200}"'), '"<str>"'),
    (re.compile(r"\d+(?:\.\d+)?"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalise_message(message: str) -> str:
    """Strip the parts of a message that vary between occurrences of the same error."""
    text = message[:2000]
    for pattern, replacement in _NORMALISERS:
        text = pattern.sub(replacement, text)
    return text.strip()


def _library_dirs() -> tuple[str, ...]:
    paths = sysconfig.get_paths()
    dirs = {paths.get("stdlib"), paths.get("platstdlib"), paths.get("purelib"), paths.get("platlib")}
    dirs.update(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    return tuple(os.path.realpath(d) + os.sep for d in dirs if d)


_LIBRARY_DIRS = _library_dirs()


def _is_in_app(frame: types.FrameType) -> bool:
    module = frame.f_globals.get("__name__", "")
    if module.startswith(FRAMEWORK_MODULES) or module in ("error_handling", "function_runner"):
        return False
    filename = os.path.realpath(frame.f_code.co_filename)
    return not filename.startswith(_LIBRARY_DIRS) and not filename.startswith("<")


def first_in_app_frame(tb: types.TracebackType | None) -> str | None:
    """Return ``module:function`` of the first traceback frame that belongs to the application."""
    while tb is not None:
        frame = tb.tb_frame
        if _is_in_app(frame):
            return f"{frame.f_globals.get('__name__', '?')}:{frame.f_code.co_name}"
        tb = tb.tb_next
    return None


def qualified_name(cls: type) -> str:
    """Return ``module.QualName`` for a class (``builtins.`` is dropped)."""
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def fingerprint_parts(parts: Iterable[str | None]) -> str:
    """Digest already normalised parts into a 16-hex-digit fingerprint."""
    digest = hashlib.sha256("\x1f".join(p or "" for p in parts).encode("utf-8", "replace"))
    return digest.hexdigest()[:16]


def fingerprint(exc: BaseException, *, message: str | None = None) -> str:
    """Return the fingerprint of an exception.

    Args:
        exc: the exception, with its traceback if it was raised.
        message: the message to use instead of ``str(exc)`` (for example, already redacted).
    """
    text = str(exc) if message is None else message
    return fingerprint_parts(
        (qualified_name(type(exc)), normalise_message(text), first_in_app_frame(exc.__traceback__))
    )
