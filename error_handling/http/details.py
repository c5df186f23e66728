"""The HTTP response behind an error, read by duck typing through attributes only (no HTTP library
is imported): the status at ``exc.status_code``, ``exc.status``, ``exc.response.status_code``,
``exc.response.status`` or botocore's ``ResponseMetadata``; the headers at ``exc.headers`` or
``exc.response.headers``; the body at ``exc.body`` or what the response has already read (a property
is never called). Reading a foreign attribute that raises reads as "absent": this never raises."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Mapping
from typing import Any

from error_handling.http.bodies import MAX_BODY_CHARS, decode_body
from error_handling.http.headers import iter_headers

#: Attributes that may hold an HTTP status, in the order they are tried.
_STATUS_ATTRIBUTES: tuple[str, ...] = ("status_code", "status")


def safe_attr(obj: object, name: str) -> Any:
    """Return ``obj.name``, or ``None`` if it is missing or reading it raises.

    Reading an attribute of a foreign object may run a property that raises anything (httpx raises
    ``ResponseNotRead``); a hint that cannot be read is treated as absent.
    """
    try:
        return getattr(obj, name, None)
    except Exception:  # noqa: BLE001 - a foreign property may raise anything: the attribute counts as absent
        return None


def is_http_status(value: object) -> bool:
    """Return whether ``value`` is an ``int`` (not a ``bool``) in the HTTP status range 100..599."""
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


@dataclasses.dataclass(frozen=True, slots=True)
class HttpDetails:
    """What an error says about the HTTP response behind it.

    Attributes:
        status: the HTTP status (100..599), if one was found.
        headers: the response headers as ``(lower-cased name, value)`` pairs.
        body: the decoded body (see :func:`decode_body`), or ``None``.
    """

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None


def _status_of(obj: object) -> int | None:
    for name in _STATUS_ATTRIBUTES:
        value = safe_attr(obj, name)
        if is_http_status(value):
            return int(value)
    return None


def _response_text(response: object) -> str | None:
    """The body a response object has already read, without running any of its code."""
    try:
        text = inspect.getattr_static(response, "text", None)
        if isinstance(text, str):
            return text
        content = inspect.getattr_static(response, "_content", None)
    except Exception:  # noqa: BLE001 - getattr_static may still meet a foreign __dict__ or __mro__ that raises
        return None
    if isinstance(content, bytes | bytearray):
        return bytes(content[: MAX_BODY_CHARS * 4]).decode("utf-8", "replace")
    return None


def _metadata(response: Mapping[Any, Any]) -> Mapping[Any, Any]:
    metadata = response.get("ResponseMetadata")
    return metadata if isinstance(metadata, Mapping) else {}


def http_details(exc: BaseException) -> HttpDetails | None:
    """Return the HTTP status, headers and body an exception carries, or ``None`` if it carries none.

    See the module docstring for where each is looked for.
    """
    response = safe_attr(exc, "response")
    status = _status_of(exc)
    headers = safe_attr(exc, "headers")
    body = safe_attr(exc, "body")
    if isinstance(response, Mapping):  # botocore ClientError: a parsed response dict
        metadata = _metadata(response)
        if status is None and is_http_status(metadata.get("HTTPStatusCode")):
            status = int(metadata["HTTPStatusCode"])
        if headers is None:
            headers = metadata.get("HTTPHeaders")
        if body is None:
            body = response
    elif response is not None:
        if status is None:
            status = _status_of(response)
        if headers is None:
            headers = safe_attr(response, "headers")
        if body is None:
            body = _response_text(response)
    pairs = tuple(iter_headers(headers))
    decoded = decode_body(body)
    if status is None and not pairs and decoded is None:
        return None
    return HttpDetails(status=status, headers=pairs, body=decoded)
