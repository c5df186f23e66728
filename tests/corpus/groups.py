"""Family ``groups``: the same real error occurring again with other ids, numbers, addresses, task ids,
request ids and values (each group must get one fingerprint), next to near-misses: other errors of the
same exception type or SDK class that must get another.

Errors of installed libraries are made with their real classes and the exact text they produce (taken
from a real run here, or from the line of the library's source that formats it); Python's own errors are
raised for real. Every error is raised through :func:`_raised_here`, so its first in-app frame is this
module's."""

from __future__ import annotations

import datetime as dt
import errno
import ipaddress
import json
import os
from collections.abc import Callable
from typing import Any

import psycopg
import psycopg.errors
import pydantic
import redis.exceptions
import requests.exceptions
import sqlalchemy.exc
from celery.exceptions import MaxRetriesExceededError
from urllib3.connection import HTTPConnection
from urllib3.connectionpool import HTTPConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError

from error_handling.categories import Reason
from tests.corpus.shape import P, R, Shape, T, V, sdk_status_error

REDIS_SRC = "https://github.com/redis/redis-py/blob/master/redis/connection.py"
LIBPQ_SRC = "https://github.com/postgres/postgres/blob/master/src/interfaces/libpq/fe-connect.c"
PG_ERRORS = "https://www.postgresql.org/docs/current/errcodes-appendix.html"
POOL_SRC = "https://github.com/sqlalchemy/sqlalchemy/blob/main/lib/sqlalchemy/pool/impl.py"
ERRNO_DOC = "https://docs.python.org/3/library/errno.html"
CELERY_TASK_SRC = "https://github.com/celery/celery/blob/main/celery/app/task.py"
JSON_SRC = "https://github.com/python/cpython/blob/main/Lib/json/decoder.py"
URLLIB3_SRC = "https://github.com/urllib3/urllib3/blob/main/src/urllib3/connection.py"
PYDANTIC_SRC = "https://docs.pydantic.dev/latest/errors/validation_errors/#int_parsing"


def _raised_here(fn: Callable[[], Any]) -> BaseException:
    """What ``fn`` raises, raised from this module (its first in-app frame)."""
    try:
        fn()
    except BaseException as exc:
        return exc
    raise AssertionError("did not raise")


def _throw(exc: BaseException) -> Callable[[], BaseException]:
    def make() -> BaseException:
        def fail() -> None:
            raise exc

        return _raised_here(fail)

    return make


def _redis(errno: int, address: str, text: str) -> Callable[[], BaseException]:
    return lambda: _throw(redis.exceptions.ConnectionError(f"Error {errno} connecting to {address}. {text}."))()


def _pg_refused(host: str, port: int) -> Callable[[], BaseException]:
    message = (
        f'connection failed: connection to server at "{host}", port {port} failed: Connection refused\n'
        "\tIs the server running on that host and accepting TCP/IP connections?"
    )
    return lambda: _throw(psycopg.OperationalError(message))()


def _pg_line(cls: type[psycopg.Error], message: str, query: str, caret: int) -> Callable[[], BaseException]:
    text = f"{message}\nLINE 1: {query}\n{' ' * caret}^"
    return lambda: _throw(cls(text))()


def _queue_pool(size: int, overflow: int, timeout: float) -> Callable[[], BaseException]:
    message = (
        f"QueuePool limit of size {size} overflow {overflow} reached, connection timed out, timeout {timeout:0.2f}"
    )
    return lambda: _throw(sqlalchemy.exc.TimeoutError(message, code="3o7r"))()


def _os_error(code: int, path: str) -> Callable[[], BaseException]:
    return lambda: _throw(OSError(code, os.strerror(code), path))()


def _max_retries(name: str, task_id: str, args: tuple[Any, ...]) -> Callable[[], BaseException]:
    text = f"Can't retry {name}[{task_id}] args:{args} kwargs:{{}}"
    return lambda: _throw(MaxRetriesExceededError(text, task_args=args, task_kwargs={}))()


def _requests_refused(host: str, port: int, url: str) -> Callable[[], BaseException]:
    def make() -> BaseException:
        reason = NewConnectionError(
            HTTPConnection(host, port), "Failed to establish a new connection: [Errno 111] Connection refused"
        )
        return _throw(requests.exceptions.ConnectionError(MaxRetryError(HTTPConnectionPool(host, port), url, reason)))()

    return make


class Job(pydantic.BaseModel):
    """A task's input, validated as the task receives it."""

    count: int
    start: dt.date


def _job(**data: Any) -> Callable[[], BaseException]:
    return lambda: _raised_here(lambda: Job.model_validate(data))


def _openai_overloaded(request_id: str) -> Callable[[], BaseException]:
    message = (
        "That model is currently overloaded with other requests. You can retry your request, or contact us through "
        "our help center at help.openai.com if the error persists. (Please include the request ID "
        f"{request_id} in your message.)"
    )
    body = {"error": {"message": message, "type": "server_error", "param": None, "code": None}}
    return lambda: sdk_status_error("openai.RateLimitError", 429, body)


def _openai_quota(request_id: str) -> Callable[[], BaseException]:
    body = {
        "error": {
            "message": "You exceeded your current quota, please check your plan and billing details. For more "
            "information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "type": "insufficient_quota",
            "param": None,
            "code": "insufficient_quota",
        }
    }
    return lambda: sdk_status_error("openai.RateLimitError", 429, body, {"x-request-id": request_id})


def _anthropic_overloaded(request_id: str) -> Callable[[], BaseException]:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    return lambda: sdk_status_error("anthropic.InternalServerError", 529, body, {"request-id": request_id})


RL, CONN, INPUT = Reason.RATE_LIMITED, Reason.CONNECTION, Reason.INVALID_INPUT


def _rows() -> list[tuple[str, str, Callable[[], BaseException], Any, Any]]:
    return [
        # redis-py: the address varies; refused and unreachable are two errors.
        ("groups:redis-refused", REDIS_SRC, _redis(111, "10.0.0.7:6379", "Connection refused"), T, CONN),
        ("groups:redis-refused", REDIS_SRC, _redis(111, "10.0.0.9:6380", "Connection refused"), T, CONN),
        ("groups:redis-refused", REDIS_SRC, _redis(111, "127.0.0.1:1", "Connection refused"), T, CONN),
        ("groups:redis-no-route", REDIS_SRC, _redis(113, "10.0.3.12:6379", "No route to host"), T, CONN),
        ("groups:redis-no-route", REDIS_SRC, _redis(113, "172.16.0.4:6379", "No route to host"), T, CONN),
        # psycopg (libpq): the server's host (v4, v6, a name) and port vary.
        ("groups:pg-refused", LIBPQ_SRC, _pg_refused("127.0.0.1", 1), T, CONN),
        ("groups:pg-refused", LIBPQ_SRC, _pg_refused("10.0.0.5", 5432), T, CONN),
        ("groups:pg-refused", LIBPQ_SRC, _pg_refused("2001:db8::5", 6432), T, CONN),
        # Postgres echoes the statement: the values in it vary, the column is the error.
        (
            "groups:pg-undefined-column",
            PG_ERRORS,
            _pg_line(
                psycopg.errors.UndefinedColumn,
                'column "nosuchcol" does not exist',
                "SELECT nosuchcol FROM pg_class WHERE oid = 42",
                15,
            ),
            P,
            Reason.PROGRAMMING_ERROR,
        ),
        (
            "groups:pg-undefined-column",
            PG_ERRORS,
            _pg_line(
                psycopg.errors.UndefinedColumn,
                'column "nosuchcol" does not exist',
                "SELECT nosuchcol FROM pg_class WHERE oid = 16384",
                15,
            ),
            P,
            Reason.PROGRAMMING_ERROR,
        ),
        (
            "groups:pg-invalid-integer",
            PG_ERRORS,
            _pg_line(
                psycopg.errors.InvalidTextRepresentation,
                'invalid input syntax for type integer: "abc"',
                "SELECT 'abc'::int",
                15,
            ),
            V,
            INPUT,
        ),
        (
            "groups:pg-invalid-integer",
            PG_ERRORS,
            _pg_line(
                psycopg.errors.InvalidTextRepresentation,
                'invalid input syntax for type integer: "12x4"',
                "SELECT '12x4'::int",
                15,
            ),
            V,
            INPUT,
        ),
        (
            "groups:pg-invalid-integer",
            PG_ERRORS,
            _pg_line(
                psycopg.errors.InvalidTextRepresentation,
                'invalid input syntax for type integer: "seven"',
                "SELECT 'seven'::int",
                15,
            ),
            V,
            INPUT,
        ),
        # SQLAlchemy's pool: its size, overflow and timeout vary.
        ("groups:sqlalchemy-queuepool", POOL_SRC, _queue_pool(5, 10, 30.0), R, Reason.POOL_EXHAUSTED),
        ("groups:sqlalchemy-queuepool", POOL_SRC, _queue_pool(20, 0, 10.0), R, Reason.POOL_EXHAUSTED),
        ("groups:sqlalchemy-queuepool", POOL_SRC, _queue_pool(1, 2, 0.5), R, Reason.POOL_EXHAUSTED),
        # OSError by errno: the path varies; a full disk and too many open files are two errors.
        (
            "groups:disk-full",
            ERRNO_DOC,
            _os_error(errno.ENOSPC, "/var/lib/app/out/part-00017.parquet"),
            R,
            Reason.DISK_FULL,
        ),
        ("groups:disk-full", ERRNO_DOC, _os_error(errno.ENOSPC, "/tmp/tmpa8f3k2qz/chunk-4.bin"), R, Reason.DISK_FULL),
        (
            "groups:disk-full",
            ERRNO_DOC,
            _os_error(errno.ENOSPC, "/data/exports/2026-01-01/report.csv"),
            R,
            Reason.DISK_FULL,
        ),
        (
            "groups:open-files",
            ERRNO_DOC,
            _os_error(errno.EMFILE, "/srv/app/cache/item-991.json"),
            R,
            Reason.TOO_MANY_OPEN_FILES,
        ),
        ("groups:open-files", ERRNO_DOC, _os_error(errno.EMFILE, "/proc/self/fd/12"), R, Reason.TOO_MANY_OPEN_FILES),
        # Celery: the task id (a uuid) and the arguments vary.
        (
            "groups:celery-max-retries",
            CELERY_TASK_SRC,
            _max_retries("tasks.fetch_page", "1b4e28ba-2fa1-11d2-883f-0016d3cca427", (42,)),
            P,
            Reason.RETRIES_EXHAUSTED,
        ),
        (
            "groups:celery-max-retries",
            CELERY_TASK_SRC,
            _max_retries("tasks.fetch_page", "9f0c1d2e-3a4b-4c5d-8e6f-708192a3b4c5", (7,)),
            P,
            Reason.RETRIES_EXHAUSTED,
        ),
        # json: the position varies; a missing property name and a missing value are two errors.
        ("groups:json-property-name", JSON_SRC, lambda: _raised_here(lambda: json.loads('{"a": 1,}')), V, INPUT),
        (
            "groups:json-property-name",
            JSON_SRC,
            lambda: _raised_here(lambda: json.loads('{"items": [1, 2], }')),
            V,
            INPUT,
        ),
        ("groups:json-expecting-value", JSON_SRC, lambda: _raised_here(lambda: json.loads('{"a": }')), V, INPUT),
        ("groups:json-expecting-value", JSON_SRC, lambda: _raised_here(lambda: json.loads("[1, 2, ")), V, INPUT),
        # Python's own parsers: the quoted input varies.
        (
            "groups:int-literal",
            "https://docs.python.org/3/library/functions.html#int",
            lambda: _raised_here(lambda: int("abc")),
            V,
            INPUT,
        ),
        (
            "groups:int-literal",
            "https://docs.python.org/3/library/functions.html#int",
            lambda: _raised_here(lambda: int("12a")),
            V,
            INPUT,
        ),
        (
            "groups:float-literal",
            "https://docs.python.org/3/library/functions.html#float",
            lambda: _raised_here(lambda: float("1,5")),
            V,
            INPUT,
        ),
        (
            "groups:float-literal",
            "https://docs.python.org/3/library/functions.html#float",
            lambda: _raised_here(lambda: float("n/a")),
            V,
            INPUT,
        ),
        (
            "groups:strptime",
            "https://docs.python.org/3/library/datetime.html#datetime.datetime.strptime",
            lambda: _raised_here(lambda: dt.datetime.strptime("2026-13-01", "%Y-%m-%d")),
            V,
            INPUT,
        ),
        (
            "groups:strptime",
            "https://docs.python.org/3/library/datetime.html#datetime.datetime.strptime",
            lambda: _raised_here(lambda: dt.datetime.strptime("31/12/2025", "%Y-%m-%d")),
            V,
            INPUT,
        ),
        (
            "groups:ip-address",
            "https://docs.python.org/3/library/ipaddress.html#ipaddress.ip_address",
            lambda: _raised_here(lambda: ipaddress.ip_address("999.1.1.1")),
            V,
            INPUT,
        ),
        (
            "groups:ip-address",
            "https://docs.python.org/3/library/ipaddress.html#ipaddress.ip_address",
            lambda: _raised_here(lambda: ipaddress.ip_address("fe80::zz")),
            V,
            INPUT,
        ),
        # requests over urllib3: host, port and URL path vary.
        ("groups:requests-refused", URLLIB3_SRC, _requests_refused("10.0.0.5", 8080, "/v1/items/123"), T, CONN),
        (
            "groups:requests-refused",
            URLLIB3_SRC,
            _requests_refused("10.0.0.6", 8081, "/v1/items/98765/children"),
            T,
            CONN,
        ),
        # pydantic: the rejected value varies; an integer and a date are two errors.
        ("groups:pydantic-int", PYDANTIC_SRC, _job(count="abc", start="2026-01-01"), V, INPUT),
        ("groups:pydantic-int", PYDANTIC_SRC, _job(count="12 items", start="2025-06-30"), V, INPUT),
        ("groups:pydantic-date", PYDANTIC_SRC, _job(count=3, start="yesterday"), V, INPUT),
        ("groups:pydantic-date", PYDANTIC_SRC, _job(count=40, start="today"), V, INPUT),
        # One SDK class, one status, two errors: overloaded (request ids vary) vs an exhausted quota.
        (
            "groups:openai-overloaded",
            "https://github.com/agi-merge/waggle-dance/issues/53",
            _openai_overloaded("ba26ecc19b891d51c802fd1bf379d34a"),
            T,
            RL,
        ),
        (
            "groups:openai-overloaded",
            "https://github.com/openai/openai-python/issues/414",
            _openai_overloaded("fac8b65ed1c009c456a00410c4f6c376"),
            T,
            RL,
        ),
        (
            "groups:openai-insufficient-quota",
            "https://platform.openai.com/docs/guides/error-codes/api-errors",
            _openai_quota("req_8f3a9c2e1b7d4f6a9e0c"),
            R,
            Reason.QUOTA_EXCEEDED,
        ),
        (
            "groups:openai-insufficient-quota",
            "https://platform.openai.com/docs/guides/error-codes/api-errors",
            _openai_quota("req_0d41b7aa93c2e5f8d16b"),
            R,
            Reason.QUOTA_EXCEEDED,
        ),
        (
            "groups:anthropic-overloaded",
            "https://docs.anthropic.com/en/api/errors",
            _anthropic_overloaded("req_011CSHoEeqs5C35K2UUqR7Fy"),
            T,
            Reason.SERVICE_UNAVAILABLE,
        ),
        (
            "groups:anthropic-overloaded",
            "https://docs.anthropic.com/en/api/errors",
            _anthropic_overloaded("req_018EeWyXxfu5pfWkrYcMdjWG"),
            T,
            Reason.SERVICE_UNAVAILABLE,
        ),
    ]


SHAPES: list[Shape] = [
    Shape("groups", group, source, make, category, reason) for group, source, make, category, reason in _rows()
]
