"""What one shape of the corpus is, and the builders that raise errors the way libraries do.

A library that is installed here (httpx, redis, psycopg, sqlalchemy, celery, kombu, pydantic) gives its
real exception classes; one that is not gets a class of the same qualified name, bases and attributes
(:func:`foreign`), which is all the classifier reads of it."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from error_handling.categories import Category, Reason

T, R, V, P = Category.TRANSIENT, Category.RESOURCE, Category.VALIDATION, Category.PERMANENT


@dataclasses.dataclass(frozen=True)
class Shape:
    """One real error shape.

    Attributes:
        family: the family it is reported in (``python``, ``postgres``, ``redis``, ``openai``, ...).
        group: which error it is: every shape of a group must get one fingerprint, and no two groups
            the same one (the same error with other ids, numbers and values is the same group).
        source: where the shape is documented: the library's docs or source, the provider's docs, a
            public issue (a URL).
        make: builds the error as the library raises it (called once per check).
        category: the category it must get.
        reason: the reason it must get.
        hint: the retry hint (seconds) it states, in a header, its body or its message; None: none.
    """

    family: str
    group: str
    source: str
    make: Callable[[], BaseException]
    category: Category
    reason: str | Reason
    hint: float | None = None

    @property
    def reason_code(self) -> str:
        """The reason as its code."""
        return self.reason.value if isinstance(self.reason, Reason) else self.reason


@functools.cache
def foreign(path: str, *bases: type[BaseException], **class_attrs: Any) -> type[Exception]:
    """The exception class ``path`` (``package.module.Class``) of a library not installed here: a class of
    that qualified name and bases (the same class for the same arguments)."""
    module, _, name = path.rpartition(".")
    return type(name, bases or (Exception,), {"__module__": module, **class_attrs})


def with_attrs(exc: BaseException, **attrs: Any) -> BaseException:
    """``exc`` with instance attributes set (as the library's constructor sets them)."""
    for key, value in attrs.items():
        setattr(exc, key, value)
    return exc


def raised(
    exc: BaseException, *, cause: BaseException | None = None, context: BaseException | None = None
) -> BaseException:
    """``exc`` after it was raised (so it has a traceback): ``raise exc from cause``, inside ``except``
    of ``context`` when given (so ``context`` is its ``__context__``)."""

    def throw() -> None:
        if cause is not None:
            raise exc from cause
        raise exc

    try:
        if context is None:
            throw()
        try:
            raise context
        except BaseException:
            throw()
    except BaseException as caught:
        return caught
    raise AssertionError("unreachable")


def response(
    status: int,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    url: str = "https://api.provider.test/v1/generate",
    method: str = "POST",
) -> httpx.Response:
    """An httpx response (read) with a JSON body (a str body is sent as text)."""
    request = httpx.Request(method, url)
    kwargs: dict[str, Any] = {"headers": dict(headers or {}), "request": request}
    if isinstance(body, str | bytes):
        kwargs["content"] = body.encode() if isinstance(body, str) else body
    elif body is not None:
        kwargs["json"] = body
    reply = httpx.Response(status, **kwargs)
    reply.read()
    return reply


def httpx_status_error(
    status: int, body: Any = None, headers: Mapping[str, str] | None = None, **kw: Any
) -> BaseException:
    """What ``response.raise_for_status()`` raises in httpx (the openai and anthropic SDKs are built on it),
    with httpx's own message."""
    reply = response(status, body, headers, **kw)
    try:
        reply.raise_for_status()
    except httpx.HTTPStatusError as exc:
        return exc
    raise AssertionError(f"status {status} is not an error")


def sdk_status_error(
    path: str,
    status: int,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    message: str | None = None,
    inner_body: bool = True,
    **kw: Any,
) -> BaseException:
    """An SDK's status error built the way the openai/anthropic-style (Stainless) SDKs build it:
    ``message`` (default ``Error code: <status> - <body>``), ``response``, ``status_code`` and ``body``
    (the body's inner ``error`` object when ``inner_body``)."""
    reply = response(status, body, headers, **kw)
    cls = foreign(path, foreign(path.rpartition(".")[0] + ".APIStatusError"))
    text = message if message is not None else f"Error code: {status} - {body!r}"
    inner = body.get("error", body) if inner_body and isinstance(body, dict) else body
    return with_attrs(
        cls(text), response=reply, status_code=status, body=inner, request_id=reply.headers.get("x-request-id")
    )


def botocore_client_error(
    code: str, message: str, status: int, operation: str = "InvokeModel", headers: Mapping[str, str] | None = None
) -> BaseException:
    """botocore's ``ClientError``: its message names the code and operation, ``response`` is the parsed
    error dict with its metadata."""
    cls = foreign("botocore.exceptions.ClientError")
    exc = cls(f"An error occurred ({code}) when calling the {operation} operation: {message}")
    return with_attrs(
        exc,
        response={
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": dict(headers or {})},
        },
        operation_name=operation,
    )


def shapes_of(family: str, source: str, rows: list[tuple[Any, ...]]) -> list[Shape]:
    """Shapes of one family and source from rows ``(group, make, category, reason[, hint])``."""
    return [Shape(family, row[0], source, row[1], row[2], row[3], *row[4:]) for row in rows]
