"""Fingerprints: one short digest for "the same error", across tasks, workers and runs.

As Sentry groups events (a parameterised message and the in-app frames), a fingerprint is built from
the exception's qualified type, its message with what varies between occurrences replaced by a
placeholder, and the *in-app* frames of its traceback (module and function, not the line number,
so an unrelated edit to the file does not split a group). An exception that carries an HTTP response
adds the response: its status, the provider's error codes and its normalised body message, so two
different 429s of one SDK class differ while the same 429 for another organisation does not.

What varies (:func:`normalise_message`, in this order): request and trace ids, URLs (the host stays),
e-mail addresses, UUIDs (Celery task ids), ISO timestamps and clock times, IPv6 and IPv4 addresses,
paths, quoted values, identifiers after "for" / "of", and then each word: numbers, Go-style durations
(``6m0s``), hex and random ids (a part of eight or more characters mixing letters and digits,
``req_8f3a9c2e``) are replaced, while a name with numbers glued to it stays (``gpt-4o-2024-08-06``,
``utf8mb4``). Every pattern is linear (bounded repetitions, no nested ambiguity) and at most
:data:`MAX_FINGERPRINT_CHARS` characters are read.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import os
import re
import sys
import sysconfig
import types
from collections.abc import Callable, Iterable
from typing import Final

from error_handling.http import (
    HttpDetails,
    body_error_codes,
    body_message,
    google_quota_ids,
    http_details,
    safe_attr,
)

#: Module prefixes that are never "in-app": this project's own wrapper and the task runtime.
FRAMEWORK_MODULES: tuple[str, ...] = (
    "error_handling.",
    "function_runner.",
    "celery.",
    "kombu.",
    "billiard.",
)

#: At most this many characters of a message are normalised (and so count in a fingerprint).
MAX_FINGERPRINT_CHARS: Final = 2000
#: A part of a word at least this long that mixes letters and digits is a random id.
RANDOM_PART_LENGTH: Final = 8
#: A part of a word at least this long that mixes upper and lower case letters is a random id too.
RANDOM_CASE_PART_LENGTH: Final = 16

#: Words after which an identifier (a word with a digit, ``_`` or ``-``) is a value, not a name:
#: "for user_42", "of task-7", "in organization org-XXX".
IDENTIFIER_LABELS: tuple[str, ...] = (
    "for",
    "of",
    "organization",
    "org",
    "project",
    "account",
    "user",
    "tenant",
    "workspace",
)

_Replacement = str | Callable[[re.Match[str]], str]


def _ip(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return text
    return "<ip>"


def _url(match: re.Match[str]) -> str:
    scheme, host, rest = match.group("scheme"), match.group("host"), match.group("rest")
    try:
        ipaddress.ip_address(host.strip("[]"))
        host = "<ip>"
    except ValueError:
        pass
    return f"{scheme}://{host}{'/<path>' if rest else ''}"


def _request_id(match: re.Match[str]) -> str:
    if any(ch.isdigit() for ch in match.group("id")):
        return f"{match.group('label')}{match.group('sep')}<id>"
    return match.group(0)


def _identifier_after(match: re.Match[str]) -> str:
    word = match.group("word")
    if any(ch.isdigit() or ch in "_-" for ch in word):
        return f"{match.group('lead')}<id>"
    return match.group(0)


_DURATION_WORD = re.compile(r"(?:\d{1,9}(?:\.\d{1,9})?(?:ms|us|µs|ns|h|m|s)){1,6}")
_NUMBER_WORD = re.compile(r"\d{1,64}(?:[.,]\d{1,64}){0,8}")
_HEX_WORD = re.compile(r"0[xX][0-9a-fA-F]{1,64}")
_WORD_PARTS = re.compile(r"[-_.]")


def _is_random(part: str) -> bool:
    if len(part) >= RANDOM_PART_LENGTH and any(c.isdigit() for c in part) and any(c.isalpha() for c in part):
        return True
    if len(part) < RANDOM_CASE_PART_LENGTH:
        return False
    # base62 noise switches case every few letters; a CamelCase name (ServiceQuotaExceededException) rarely
    switches = sum(1 for a, b in itertools.pairwise(part) if a.islower() and b.isupper())
    return switches * 5 >= len(part)


def _word(match: re.Match[str]) -> str:
    word = match.group(0)
    if _NUMBER_WORD.fullmatch(word):
        return "<n>"
    if _DURATION_WORD.fullmatch(word):
        return "<duration>"
    if _HEX_WORD.fullmatch(word):
        return "<hex>"
    if any(_is_random(part) for part in _WORD_PARTS.split(word)):
        return "<id>"
    return word


_NORMALISERS: tuple[tuple[re.Pattern[str], _Replacement], ...] = (
    (
        re.compile(
            r"(?i)\b(?P<label>request[ _-]?id|req[ _-]?id|trace[ _-]?id|correlation[ _-]?id|span[ _-]?id)"
            r"(?P<sep>[\"']?[ \t]{0,3}[:=#]?[ \t]{0,3}[\"']?)(?P<id>[\w-]{1,200})"
        ),
        _request_id,
    ),
    (
        re.compile(
            r"\b(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]{0,15})://(?P<host>[^\s/?#'\"<>()]{1,255})(?P<rest>[^\s'\"<>]{0,1000})"
        ),
        _url,
    ),
    (re.compile(r"\b[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}\b"), "<email>"),
    (re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"), "<uuid>"),
    (
        re.compile(
            r"(?<![\w-])\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?(?!\w)"
        ),
        "<timestamp>",
    ),
    (re.compile(r"(?<![\w:])\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?(?![\w:])"), "<time>"),
    (re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w{1,16})?(?![\w:])"), _ip),
    (re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w)(?!\.\d)"), _ip),
    (re.compile(r"(?<![\w/<])(?:[A-Za-z]:)?(?:[/\\][\w.\-~]{1,255}){2,64}[/\\]?"), "<path>"),
    (
        re.compile(
            r"\bAn error occurred \((?P<code>[\w.]{1,100})\) when calling the \w{1,100} operation(?: \([^)\n]{0,100}\))?: "
        ),
        r"(\g<code>) ",
    ),
    (re.compile(r"\bFailing row contains \([^\n]{0,1000}?\)(?=\.|$|\s)"), "Failing row contains (<row>)"),
    (re.compile(r"\bKey \((?P<columns>[^)\n]{0,200})\)=\([^\n]{0,1000}?\)(?= )"), r"Key (\g<columns>)=(<values>)"),
    (re.compile(r"(?i)\b(?P<label>models?)(?P<sep>:[ \t]{0,3}|/)[`'\"]?[\w.:/-]{1,200}"), r"\g<label>\g<sep><id>"),
    (re.compile(r"(?<!\w)`[^`\n]{0,200}`(?!\w)"), "`<str>`"),
    (re.compile(r"[\w-]{0,40}\*{3,40}[\w-]{0,40}"), "<masked>"),  # a secret shown masked: sk-abc***xyz
    (re.compile(r"(?<![\w~])~(?=\d)"), ""),  # an approximate number (Requested ~4000) is a number
    (re.compile(r"(?<!\w)'[^'\n]{0,200}'(?!\w)"), "'<str>'"),
    (re.compile(r'(?<!\w)"[^"\n]{0,200}"(?!\w)'), '"<str>"'),
    (
        re.compile(
            rf"(?i)(?P<lead>\b(?:{'|'.join(IDENTIFIER_LABELS)})[ \t]{{1,3}}[`'\"]?)"
            r"(?P<word>[A-Za-z_](?:[\w:/-]|\.(?=\w)){0,100})"
        ),
        _identifier_after,
    ),
    (re.compile(r"\w(?:\w|[-.](?=\w)|(?<=\d),(?=\d)){0,200}"), _word),
    (re.compile(r"\s+"), " "),
)


def normalise_message(message: str) -> str:
    """Replace the parts of a message that vary between occurrences of the same error (see the module
    docstring); only the first :data:`MAX_FINGERPRINT_CHARS` characters are read."""
    text = message[:MAX_FINGERPRINT_CHARS]
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


#: The innermost in-app frames a fingerprint keeps (a recursion counts once).
MAX_IN_APP_FRAMES: Final = 8
#: Frames of a traceback looked at, at most (the innermost are kept: the walk stops after this many).
MAX_TRACEBACK_FRAMES: Final = 1000


def in_app_frames(tb: types.TracebackType | None) -> tuple[str, ...]:
    """``module:function`` of the traceback's frames that belong to the application, outermost first: at most
    the :data:`MAX_IN_APP_FRAMES` innermost, a frame that repeats the one before it (a recursion) once."""
    frames: list[str] = []
    for _ in range(MAX_TRACEBACK_FRAMES):
        if tb is None:
            break
        frame = tb.tb_frame
        if _is_in_app(frame):
            name = f"{frame.f_globals.get('__name__', '?')}:{frame.f_code.co_name}"
            if not frames or frames[-1] != name:
                frames.append(name)
        tb = tb.tb_next
    return tuple(frames[-MAX_IN_APP_FRAMES:])


def qualified_name(cls: type) -> str:
    """Return ``module.QualName`` for a class (``builtins.`` is dropped)."""
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def fingerprint_parts(parts: Iterable[str | None]) -> str:
    """Digest already normalised parts into a 16-hex-digit fingerprint."""
    digest = hashlib.sha256("\x1f".join(p or "" for p in parts).encode("utf-8", "replace"))
    return digest.hexdigest()[:16]


def response_parts(status: int | None, body: object) -> tuple[str, ...]:
    """What a response puts in a fingerprint: its status, and in place of the exception's message (which
    SDKs build from the body) the provider's error codes (Google's exceeded quotas too) and the body's
    normalised message when the body states either, as ``(code) message`` (botocore's messages read so once
    normalised)."""
    codes = (*body_error_codes(body)[:4], *google_quota_ids(body)[:4])
    stated = body_message(body)
    head = "" if status is None else str(status)
    if codes or stated:
        return (head, normalise_message(f"({'|'.join(codes)}) {stated or ''}" if codes else stated or ""))
    return (head,)


_READ: Final = object()


def _safe_str(exc: BaseException) -> str | None:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 - a foreign __str__ may raise anything; a fingerprint must not
        return None


def _driver_message(exc: BaseException) -> str | None:
    """``[number] message`` for a database driver's ``(number, 'message')`` arguments (PyMySQL,
    mysqlclient), whose text is the tuple's repr: its quoted message would be a value to parameterise."""
    args = safe_attr(exc, "args")
    if isinstance(args, tuple) and len(args) == 2 and type(args[0]) is int and type(args[1]) is str:
        return f"[{args[0]}] {args[1]}"
    return _safe_str(exc)


def fingerprint(exc: BaseException, *, message: str | None = None, http: HttpDetails | object | None = _READ) -> str:
    """Return the fingerprint of an exception: its qualified type, its normalised message (or, when it
    carries a response whose body states an error, :func:`response_parts`), and its in-app frames.

    Args:
        exc: the exception, with its traceback if it was raised.
        message: the message to use instead of ``str(exc)`` (for example, already redacted).
        http: the HTTP details already read from ``exc`` (read from it when not given).
    """
    details = http_details(exc) if http is _READ else http
    if message is None or message == _safe_str(exc):
        message = _driver_message(exc)
    said: tuple[str, ...] = ()
    if isinstance(details, HttpDetails):
        said = response_parts(details.status, details.body)
        if len(said) == 1:  # the body states nothing: the exception's message does
            said = (*said, normalise_message(message or ""))
    else:
        said = (normalise_message(message or ""),)
    return fingerprint_parts((qualified_name(type(exc)), *said, *in_app_frames(exc.__traceback__)))
