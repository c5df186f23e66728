"""The classifier: built-in tables, HTTP statuses and bodies, user rules, chaining, fingerprints.

Foreign exceptions are stand-ins built with the module and class name of the real ones (the
classifier matches qualified names, never imports a library); where the real library is installed,
a second table checks the names against the real classes.
"""

from __future__ import annotations

import errno
import importlib
import json
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from error_handling import classifier as classifier_module
from error_handling.categories import DEFAULT_RESOURCE_FOR_REASON, Category, Reason
from error_handling.classification import Rule, default_user_message
from error_handling.classifier import MAX_MESSAGE_LENGTH, Classifier, classify, classify_http
from error_handling.exceptions import PermanentError, ResourceError, TransientError, ValidationError
from error_handling.fingerprint import fingerprint, fingerprint_parts, normalise_message
from error_handling.rules import (
    ERRNO_RULES,
    EXCEPTION_RULES,
    HTTP_STATUS_CLASS_RULES,
    HTTP_STATUS_RULES,
    MESSAGE_RULES,
    PROVIDER_ERROR_CODES,
    WRAPPED_EXCEPTION_ATTRIBUTES,
    all_outcomes,
)
from tests.support.public_names import assert_all_lists_the_public_names

T, R, V, P = Category.TRANSIENT, Category.RESOURCE, Category.VALIDATION, Category.PERMANENT
NOW = 1767225600.0  # 2026-01-01T00:00:00Z


def fake(path: str, *bases: type[BaseException], **attrs: Any) -> type[Exception]:
    """A new exception class whose qualified name is ``path`` (``module.Class``)."""
    module, _, name = path.rpartition(".")
    return type(name, bases or (Exception,), {"__module__": module, **attrs})


def raised(exc: BaseException) -> BaseException:
    """``exc`` after it was raised and caught (so it has a traceback)."""
    try:
        raise exc
    except BaseException as caught:
        return caught


class Attrs:
    """An object with exactly the attributes given."""

    def __init__(self, **attrs: Any) -> None:
        self.__dict__.update(attrs)


def with_attrs(exc: BaseException, **attrs: Any) -> BaseException:
    exc.__dict__.update(attrs)
    return exc


# --- the exception table, by qualified name ---------------------------------------------------------

EXCEPTION_CASES: list[tuple[str, Category, Reason]] = [
    ("httpx.ReadTimeout", T, Reason.TIMEOUT),
    ("httpx.ConnectTimeout", T, Reason.TIMEOUT),
    ("httpx.WriteTimeout", T, Reason.TIMEOUT),
    ("httpx.PoolTimeout", T, Reason.TIMEOUT),
    ("httpx.ConnectError", T, Reason.CONNECTION),
    ("httpx.RemoteProtocolError", T, Reason.CONNECTION),
    ("httpx.ReadError", T, Reason.CONNECTION),
    ("requests.exceptions.ConnectTimeout", T, Reason.TIMEOUT),
    ("requests.exceptions.ReadTimeout", T, Reason.TIMEOUT),
    ("requests.exceptions.Timeout", T, Reason.TIMEOUT),
    ("requests.exceptions.ConnectionError", T, Reason.CONNECTION),
    ("urllib3.exceptions.ReadTimeoutError", T, Reason.TIMEOUT),
    ("urllib3.exceptions.NewConnectionError", T, Reason.CONNECTION),
    ("urllib3.exceptions.ProtocolError", T, Reason.CONNECTION),
    ("aiohttp.client_exceptions.ClientConnectionError", T, Reason.CONNECTION),
    ("aiohttp.client_exceptions.ServerTimeoutError", T, Reason.TIMEOUT),
    ("redis.exceptions.ConnectionError", T, Reason.CONNECTION),
    ("redis.exceptions.TimeoutError", T, Reason.TIMEOUT),
    ("redis.exceptions.BusyLoadingError", T, Reason.SERVICE_UNAVAILABLE),
    ("redis.exceptions.AuthenticationError", P, Reason.AUTH_FAILED),
    ("redis.exceptions.OutOfMemoryError", R, Reason.OUT_OF_MEMORY),
    ("redis.exceptions.ResponseError", P, Reason.PERMANENT_FAILURE),
    ("psycopg.errors.DeadlockDetected", T, Reason.CONFLICT),
    ("psycopg.errors.SerializationFailure", T, Reason.CONFLICT),
    ("psycopg.errors.LockNotAvailable", T, Reason.CONFLICT),
    ("psycopg.OperationalError", T, Reason.CONNECTION),
    ("psycopg.errors.DiskFull", R, Reason.DISK_FULL),
    ("psycopg.errors.OutOfMemory", R, Reason.OUT_OF_MEMORY),
    ("psycopg.errors.TooManyConnections", R, Reason.POOL_EXHAUSTED),
    ("psycopg.errors.UniqueViolation", V, Reason.INVALID_INPUT),
    ("psycopg.IntegrityError", V, Reason.INVALID_INPUT),
    ("psycopg.DataError", V, Reason.INVALID_INPUT),
    ("psycopg2.errors.DeadlockDetected", T, Reason.CONFLICT),
    ("psycopg2.OperationalError", T, Reason.CONNECTION),
    ("psycopg2.extensions.QueryCanceledError", T, Reason.TIMEOUT),
    ("psycopg2.errors.InvalidPassword", P, Reason.AUTH_FAILED),
    ("sqlalchemy.exc.OperationalError", T, Reason.CONNECTION),
    ("sqlalchemy.exc.TimeoutError", R, Reason.POOL_EXHAUSTED),
    ("sqlalchemy.exc.IntegrityError", V, Reason.INVALID_INPUT),
    ("openai.APITimeoutError", T, Reason.TIMEOUT),
    ("openai.APIConnectionError", T, Reason.CONNECTION),
    ("openai.RateLimitError", T, Reason.RATE_LIMITED),
    ("openai.InternalServerError", T, Reason.SERVICE_UNAVAILABLE),
    ("openai.AuthenticationError", P, Reason.AUTH_FAILED),
    ("openai.PermissionDeniedError", P, Reason.AUTH_FAILED),
    ("openai.NotFoundError", P, Reason.NOT_FOUND),
    ("openai.BadRequestError", V, Reason.INVALID_INPUT),
    ("openai.UnprocessableEntityError", V, Reason.INVALID_INPUT),
    ("openai.ConflictError", T, Reason.CONFLICT),
    ("anthropic.OverloadedError", T, Reason.SERVICE_UNAVAILABLE),
    ("anthropic.RateLimitError", T, Reason.RATE_LIMITED),
    ("anthropic.RequestTooLargeError", V, Reason.PAYLOAD_TOO_LARGE),
    ("botocore.exceptions.EndpointConnectionError", T, Reason.CONNECTION),
    ("botocore.exceptions.ReadTimeoutError", T, Reason.TIMEOUT),
    ("botocore.exceptions.ConnectTimeoutError", T, Reason.TIMEOUT),
    ("botocore.exceptions.NoCredentialsError", P, Reason.AUTH_FAILED),
    ("google.api_core.exceptions.ResourceExhausted", T, Reason.RATE_LIMITED),
    ("google.api_core.exceptions.ServiceUnavailable", T, Reason.SERVICE_UNAVAILABLE),
    ("google.api_core.exceptions.DeadlineExceeded", T, Reason.TIMEOUT),
    ("kombu.exceptions.OperationalError", T, Reason.CONNECTION),
    ("amqp.exceptions.ConnectionForced", T, Reason.CONNECTION),
    ("celery.exceptions.SoftTimeLimitExceeded", T, Reason.TIMEOUT),
    ("billiard.exceptions.SoftTimeLimitExceeded", T, Reason.TIMEOUT),
    ("billiard.exceptions.TimeLimitExceeded", T, Reason.TIMEOUT),
    ("billiard.exceptions.WorkerLostError", T, Reason.SERVICE_UNAVAILABLE),
    ("torch.cuda.OutOfMemoryError", R, Reason.GPU_UNAVAILABLE),
    ("torch.OutOfMemoryError", R, Reason.GPU_UNAVAILABLE),
    ("ssl.SSLError", T, Reason.CONNECTION),
    ("socket.gaierror", T, Reason.CONNECTION),
]


@pytest.mark.parametrize(("path", "category", "reason"), EXCEPTION_CASES, ids=[c[0] for c in EXCEPTION_CASES])
def test_library_exception_by_qualified_name(path: str, category: Category, reason: Reason) -> None:
    c = classify(fake(path)("boom"))
    assert (c.category, c.reason) == (category, reason.value)
    assert c.rule == f"exception:{path}"
    assert c.exc_type == path


@pytest.mark.parametrize(
    ("path", "resource"),
    [
        ("redis.exceptions.OutOfMemoryError", "memory"),
        ("psycopg.errors.DiskFull", "disk"),
        ("torch.cuda.OutOfMemoryError", "gpu"),
        ("httpx.ReadTimeout", None),
    ],
)
def test_resource_of_a_library_exception(path: str, resource: str | None) -> None:
    assert classify(fake(path)("boom")).resource == resource


# --- matching along the MRO --------------------------------------------------------------------------


def _mro_cases() -> list[Any]:
    timeout_base = fake("httpx.TimeoutException")
    pg_operational = fake("psycopg.OperationalError")
    redis_connection = fake("redis.exceptions.ConnectionError")
    requests_connection = fake("requests.exceptions.ConnectionError", OSError)
    requests_timeout = fake("requests.exceptions.Timeout", OSError)
    urllib3_connect_timeout = fake("urllib3.exceptions.ConnectTimeoutError")
    connect_error = fake("httpx.ConnectError")
    return [
        pytest.param(
            fake("mylib.SlowRead", timeout_base),
            T,
            Reason.TIMEOUT,
            "exception:httpx.TimeoutException",
            id="subclass-of-a-mapped-class",
        ),
        pytest.param(
            fake("psycopg.errors.AdminShutdown", pg_operational),
            T,
            Reason.CONNECTION,
            "exception:psycopg.OperationalError",
            id="unmapped-leaf-uses-base",
        ),
        pytest.param(
            fake("psycopg.errors.InvalidPassword", pg_operational),
            P,
            Reason.AUTH_FAILED,
            "exception:psycopg.errors.InvalidPassword",
            id="specific-leaf-beats-base",
        ),
        pytest.param(
            fake("redis.exceptions.AuthenticationError", redis_connection),
            P,
            Reason.AUTH_FAILED,
            "exception:redis.exceptions.AuthenticationError",
            id="redis-auth-is-not-a-connection-error",
        ),
        pytest.param(
            fake("requests.exceptions.ConnectTimeout", requests_connection, requests_timeout),
            T,
            Reason.TIMEOUT,
            "exception:requests.exceptions.ConnectTimeout",
            id="requests-connect-timeout",
        ),
        pytest.param(
            fake("urllib3.exceptions.NewConnectionError", urllib3_connect_timeout),
            T,
            Reason.CONNECTION,
            "exception:urllib3.exceptions.NewConnectionError",
            id="urllib3-new-connection-is-not-a-timeout",
        ),
        pytest.param(
            fake("app.Mixed", ValueError, connect_error),
            T,
            Reason.CONNECTION,
            "exception:httpx.ConnectError",
            id="mapped-class-later-in-mro",
        ),
        pytest.param(
            fake("app.MyReset", ConnectionResetError),
            T,
            Reason.CONNECTION,
            "exception:ConnectionError",
            id="subclass-of-a-builtin",
        ),
        pytest.param(
            requests_connection("x"),
            T,
            Reason.CONNECTION,
            "exception:requests.exceptions.ConnectionError",
            id="library-name-before-oserror",
        ),
    ]


@pytest.mark.parametrize(("exc_or_cls", "category", "reason", "rule"), _mro_cases())
def test_match_along_the_mro(exc_or_cls: Any, category: Category, reason: Reason, rule: str) -> None:
    exc = exc_or_cls("boom") if isinstance(exc_or_cls, type) else exc_or_cls
    c = classify(exc)
    assert (c.category, c.reason, c.rule) == (category, reason.value, rule)


# --- the real libraries, where installed: the names in the tables must be the real ones ---------------

REAL_CASES: list[Any] = [
    pytest.param("httpx", lambda m: m.ReadTimeout("t"), T, Reason.TIMEOUT, id="httpx-ReadTimeout"),
    pytest.param("httpx", lambda m: m.ConnectError("c"), T, Reason.CONNECTION, id="httpx-ConnectError"),
    pytest.param("httpx", lambda m: m.RemoteProtocolError("p"), T, Reason.CONNECTION, id="httpx-RemoteProtocolError"),
    pytest.param(
        "redis.exceptions", lambda m: m.ConnectionError("x"), T, Reason.CONNECTION, id="redis-ConnectionError"
    ),
    pytest.param(
        "redis.exceptions", lambda m: m.AuthenticationError("x"), P, Reason.AUTH_FAILED, id="redis-AuthenticationError"
    ),
    pytest.param(
        "redis.exceptions",
        lambda m: m.BusyLoadingError("x"),
        T,
        Reason.SERVICE_UNAVAILABLE,
        id="redis-BusyLoadingError",
    ),
    pytest.param(
        "redis.exceptions",
        lambda m: m.ResponseError("WRONGTYPE Operation against a key"),
        P,
        Reason.PROGRAMMING_ERROR,
        id="redis-wrongtype-message",
    ),
    pytest.param(
        "redis.exceptions",
        lambda m: m.ResponseError("value is not an integer or out of range", status_code="ERR"),
        P,
        Reason.PERMANENT_FAILURE,
        id="redis-ResponseError",
    ),
    pytest.param(
        "redis.exceptions",
        lambda m: m.ResponseError("OOM command not allowed when used memory > 'maxmemory'."),
        R,
        Reason.OUT_OF_MEMORY,
        id="redis-oom-message",
    ),
    pytest.param(
        "redis.exceptions",
        lambda m: m.ResponseError("READONLY You can't write against a read only replica."),
        T,
        Reason.SERVICE_UNAVAILABLE,
        id="redis-readonly-message",
    ),
    pytest.param(
        "psycopg.errors", lambda m: m.DeadlockDetected("d"), T, Reason.CONFLICT, id="psycopg-DeadlockDetected"
    ),
    pytest.param(
        "psycopg.errors", lambda m: m.InvalidPassword("p"), P, Reason.AUTH_FAILED, id="psycopg-InvalidPassword"
    ),
    pytest.param(
        "psycopg.errors",
        lambda m: m.ForeignKeyViolation("fk"),
        V,
        Reason.INVALID_INPUT,
        id="psycopg-ForeignKeyViolation",
    ),
    pytest.param("psycopg.errors", lambda m: m.AdminShutdown("s"), T, Reason.CONNECTION, id="psycopg-AdminShutdown"),
    pytest.param(
        "psycopg.errors",
        lambda m: m.UndefinedTable("t"),
        P,
        Reason.PROGRAMMING_ERROR,
        id="psycopg-UndefinedTable-is-a-bug",
    ),
    pytest.param(
        "billiard.exceptions",
        lambda m: m.SoftTimeLimitExceeded(),
        T,
        Reason.TIMEOUT,
        id="billiard-SoftTimeLimitExceeded",
    ),
    pytest.param(
        "celery.exceptions", lambda m: m.SoftTimeLimitExceeded(), T, Reason.TIMEOUT, id="celery-SoftTimeLimitExceeded"
    ),
    pytest.param(
        "celery.exceptions", lambda m: m.WorkerLostError(), T, Reason.SERVICE_UNAVAILABLE, id="celery-WorkerLostError"
    ),
    pytest.param(
        "kombu.exceptions", lambda m: m.OperationalError("x"), T, Reason.CONNECTION, id="kombu-OperationalError"
    ),
    pytest.param(
        "amqp.exceptions", lambda m: m.ConnectionForced("x"), T, Reason.CONNECTION, id="amqp-ConnectionForced"
    ),
    pytest.param("amqp.exceptions", lambda m: m.AccessRefused("x"), P, Reason.AUTH_FAILED, id="amqp-AccessRefused"),
    pytest.param(
        "sqlalchemy.exc", lambda m: m.TimeoutError("pool"), R, Reason.POOL_EXHAUSTED, id="sqlalchemy-TimeoutError"
    ),
    pytest.param(
        "http.client", lambda m: m.RemoteDisconnected("x"), T, Reason.CONNECTION, id="http-client-RemoteDisconnected"
    ),
    pytest.param(
        "http.client", lambda m: m.IncompleteRead(b"partial"), T, Reason.CONNECTION, id="http-client-IncompleteRead"
    ),
    pytest.param("ssl", lambda m: m.SSLEOFError(8, "EOF occurred"), T, Reason.CONNECTION, id="ssl-SSLEOFError"),
    pytest.param(
        "ssl",
        lambda m: m.SSLCertVerificationError(1, "certificate verify failed"),
        P,
        Reason.INVALID_CONFIGURATION,
        id="ssl-cert-verification",
    ),
    pytest.param(
        "socket", lambda m: m.gaierror(-2, "Name or service not known"), T, Reason.CONNECTION, id="socket-gaierror"
    ),
    pytest.param("socket", lambda m: m.timeout("timed out"), T, Reason.TIMEOUT, id="socket-timeout"),
    pytest.param("sqlite3", lambda m: m.OperationalError("database is locked"), T, Reason.CONFLICT, id="sqlite-locked"),
    pytest.param(
        "sqlite3", lambda m: m.OperationalError("database or disk is full"), R, Reason.DISK_FULL, id="sqlite-full"
    ),
    pytest.param(
        "sqlite3", lambda m: m.OperationalError("no such table: x"), P, Reason.PROGRAMMING_ERROR, id="sqlite-bug"
    ),
    pytest.param(
        "sqlite3",
        lambda m: m.IntegrityError("UNIQUE constraint failed"),
        V,
        Reason.INVALID_INPUT,
        id="sqlite-IntegrityError",
    ),
    pytest.param("subprocess", lambda m: m.TimeoutExpired("cmd", 5), T, Reason.TIMEOUT, id="subprocess-TimeoutExpired"),
    pytest.param("urllib.error", lambda m: m.URLError("refused"), T, Reason.CONNECTION, id="urllib-URLError"),
]


@pytest.mark.parametrize(("module", "make", "category", "reason"), REAL_CASES)
def test_real_library_exceptions(
    module: str, make: Callable[[Any], BaseException], category: Category, reason: Reason
) -> None:
    mod = pytest.importorskip(module)
    c = classify(make(mod))
    assert (c.category, c.reason) == (category, reason.value)


def test_real_sqlalchemy_error_is_classified_by_the_driver_error_it_wraps() -> None:
    sa_exc = pytest.importorskip("sqlalchemy.exc")
    pg_errors = pytest.importorskip("psycopg.errors")
    c = classify(sa_exc.OperationalError("UPDATE t SET x = 1", {}, pg_errors.DeadlockDetected("deadlock detected")))
    assert (c.category, c.reason) == (T, Reason.CONFLICT.value)
    assert c.rule == "wrapped:sqlstate:40P01"
    assert c.exc_type == "sqlalchemy.exc.OperationalError"


# --- Python's own exceptions ---------------------------------------------------------------------------

BUILTIN_CASES: list[Any] = [
    pytest.param(
        OSError(errno.ENOSPC, "No space left on device"), R, Reason.DISK_FULL, "errno:ENOSPC", "disk", id="ENOSPC"
    ),
    pytest.param(
        OSError(errno.EDQUOT, "Disk quota exceeded"), R, Reason.DISK_FULL, "errno:EDQUOT", "disk", id="EDQUOT"
    ),
    pytest.param(
        OSError(errno.ENOMEM, "Cannot allocate memory"), R, Reason.OUT_OF_MEMORY, "errno:ENOMEM", "memory", id="ENOMEM"
    ),
    pytest.param(
        OSError(errno.EMFILE, "Too many open files"),
        R,
        Reason.TOO_MANY_OPEN_FILES,
        "errno:EMFILE",
        "file_descriptors",
        id="EMFILE",
    ),
    pytest.param(
        OSError(errno.ENFILE, "Too many open files in system"),
        R,
        Reason.TOO_MANY_OPEN_FILES,
        "errno:ENFILE",
        "file_descriptors",
        id="ENFILE",
    ),
    pytest.param(
        OSError(errno.EHOSTUNREACH, "No route to host"),
        T,
        Reason.CONNECTION,
        "errno:EHOSTUNREACH",
        None,
        id="EHOSTUNREACH",
    ),
    pytest.param(
        OSError(errno.ENETUNREACH, "Network is unreachable"),
        T,
        Reason.CONNECTION,
        "errno:ENETUNREACH",
        None,
        id="ENETUNREACH",
    ),
    pytest.param(
        OSError(errno.EAGAIN, "Resource temporarily unavailable"),
        T,
        Reason.CONNECTION,
        "errno:EAGAIN",
        None,
        id="EAGAIN",
    ),
    pytest.param(
        OSError(errno.ETIMEDOUT, "Connection timed out"),
        T,
        Reason.TIMEOUT,
        "exception:TimeoutError",
        None,
        id="ETIMEDOUT",
    ),
    pytest.param(
        OSError(errno.ECONNREFUSED, "Connection refused"),
        T,
        Reason.CONNECTION,
        "exception:ConnectionError",
        None,
        id="ECONNREFUSED",
    ),
    pytest.param(
        OSError(errno.ECONNRESET, "Connection reset by peer"),
        T,
        Reason.CONNECTION,
        "exception:ConnectionError",
        None,
        id="ECONNRESET",
    ),
    pytest.param(
        OSError(errno.EPIPE, "Broken pipe"), T, Reason.CONNECTION, "exception:ConnectionError", None, id="EPIPE"
    ),
    pytest.param(
        OSError(errno.EINVAL, "Invalid argument"), T, Reason.UNCLASSIFIED, "unclassified", None, id="EINVAL-unmapped"
    ),
    pytest.param(OSError("no errno at all"), T, Reason.UNCLASSIFIED, "unclassified", None, id="no-errno"),
    pytest.param(TimeoutError("timed out"), T, Reason.TIMEOUT, "exception:TimeoutError", None, id="TimeoutError"),
    pytest.param(
        ConnectionAbortedError("aborted"),
        T,
        Reason.CONNECTION,
        "exception:ConnectionError",
        None,
        id="ConnectionAbortedError",
    ),
    pytest.param(MemoryError(), R, Reason.OUT_OF_MEMORY, "exception:MemoryError", "memory", id="MemoryError"),
    pytest.param(
        FileNotFoundError(errno.ENOENT, "No such file", "/data/in.csv"),
        P,
        Reason.NOT_FOUND,
        "exception:FileNotFoundError",
        None,
        id="FileNotFoundError",
    ),
    pytest.param(
        PermissionError(errno.EACCES, "Permission denied"),
        P,
        Reason.AUTH_FAILED,
        "exception:PermissionError",
        None,
        id="PermissionError",
    ),
    # deterministic: a retry cannot help (a bug dead-letters, malformed input fails fast)
    pytest.param(ValueError("bad value"), V, Reason.INVALID_INPUT, "exception:ValueError", None, id="ValueError"),
    pytest.param(TypeError("bad type"), P, Reason.PROGRAMMING_ERROR, "exception:TypeError", None, id="TypeError"),
    pytest.param(KeyError("missing"), P, Reason.PROGRAMMING_ERROR, "exception:LookupError", None, id="KeyError"),
    pytest.param(
        json.JSONDecodeError("Expecting value", "doc", 0),
        V,
        Reason.INVALID_INPUT,
        "exception:ValueError",
        None,
        id="JSONDecodeError",
    ),
    pytest.param(
        json.JSONDecodeError("Expecting value", "<!DOCTYPE html><html><title>502 Bad Gateway</title>", 0),
        T,
        Reason.SERVICE_UNAVAILABLE,
        "exception:html_instead_of_json",
        None,
        id="JSONDecodeError-of-an-error-page",
    ),
    pytest.param(
        ModuleNotFoundError("No module named 'pandas'"),
        P,
        Reason.INVALID_CONFIGURATION,
        "exception:ImportError",
        None,
        id="ModuleNotFoundError",
    ),
    pytest.param(
        ZeroDivisionError("division by zero"),
        P,
        Reason.PROGRAMMING_ERROR,
        "exception:ArithmeticError",
        None,
        id="ZeroDivisionError",
    ),
    pytest.param(RuntimeError("boom"), T, Reason.UNCLASSIFIED, "unclassified", None, id="RuntimeError"),
    pytest.param(
        RuntimeError("CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0)"),
        R,
        Reason.GPU_UNAVAILABLE,
        "message:gpu_out_of_memory",
        "gpu",
        id="cuda-oom-message",
    ),
    pytest.param(
        RuntimeError("CUDA error: out of memory"),
        R,
        Reason.GPU_UNAVAILABLE,
        "message:gpu_out_of_memory",
        "gpu",
        id="cuda-error-oom-message",
    ),
    pytest.param(KeyboardInterrupt(), T, Reason.UNCLASSIFIED, "unclassified", None, id="BaseException"),
]


@pytest.mark.parametrize(("exc", "category", "reason", "rule", "resource"), BUILTIN_CASES)
def test_python_exceptions(
    exc: BaseException, category: Category, reason: Reason, rule: str, resource: str | None
) -> None:
    c = classify(exc)
    assert (c.category, c.reason, c.rule, c.resource) == (category, reason.value, rule, resource)


# --- this project's exception tree ------------------------------------------------------------------


class GpuBusy(ResourceError):
    """A user subclass of the tree."""


TREE_CASES: list[Any] = [
    pytest.param(TransientError("flaky"), T, "service_unavailable", None, None, id="transient-default"),
    pytest.param(
        TransientError("open", reason=Reason.CIRCUIT_OPEN, retry_after=12),
        T,
        "circuit_open",
        12.0,
        None,
        id="transient-with-hint",
    ),
    pytest.param(ResourceError("no gpu", resource="gpu"), R, "resource_unavailable", None, "gpu", id="resource"),
    pytest.param(
        ResourceError("full", resource="scratch", reason=Reason.DISK_FULL),
        R,
        "disk_full",
        None,
        "scratch",
        id="resource-own-name-wins",
    ),
    pytest.param(
        GpuBusy("busy", resource="gpu-a100", retry_after=30),
        R,
        "resource_unavailable",
        30.0,
        "gpu-a100",
        id="user-subclass",
    ),
    pytest.param(ValidationError("bad email"), V, "invalid_input", None, None, id="validation"),
    pytest.param(PermanentError("gone"), P, "permanent_failure", None, None, id="permanent"),
    pytest.param(PermanentError("x", reason="my_code"), P, "my_code", None, None, id="custom-reason"),
]


@pytest.mark.parametrize(("exc", "category", "reason", "retry_after", "resource"), TREE_CASES)
def test_recoverable_errors_state_their_own_classification(
    exc: BaseException, category: Category, reason: str, retry_after: float | None, resource: str | None
) -> None:
    c = classify(exc)
    assert (c.category, c.reason, c.retry_after, c.resource) == (category, reason, retry_after, resource)
    assert c.rule == f"recoverable:{type(exc).__module__}.{type(exc).__qualname__}"
    assert c.user_message == default_user_message(category, reason)


def test_recoverable_error_user_message_is_kept() -> None:
    c = classify(ValidationError("email: no @", user_message="Please give a valid e-mail address."))
    assert c.user_message == "Please give a valid e-mail address."


# --- errors that carry an HTTP status ------------------------------------------------------------------

HttpError = fake("somelib.HTTPError")


def http_error(path: str = "somelib.HTTPError", message: str = "request failed", **attrs: Any) -> BaseException:
    return with_attrs(fake(path)(message), **attrs)


HTTP_EXCEPTION_CASES: list[Any] = [
    pytest.param(
        http_error(status_code=503), T, Reason.SERVICE_UNAVAILABLE, "http:503", None, 503, id="status_code-503"
    ),
    pytest.param(
        http_error(status=429, headers={"Retry-After": "30"}),
        T,
        Reason.RATE_LIMITED,
        "http:429",
        30.0,
        429,
        id="aiohttp-style-status",
    ),
    pytest.param(
        http_error(response=Attrs(status_code=404, headers={})),
        P,
        Reason.NOT_FOUND,
        "http:404",
        None,
        404,
        id="response-404",
    ),
    pytest.param(
        http_error(response=Attrs(status=502)),
        T,
        Reason.SERVICE_UNAVAILABLE,
        "http:502",
        None,
        502,
        id="response-status-502",
    ),
    pytest.param(http_error(status_code=418), P, Reason.PERMANENT_FAILURE, "http:4xx", None, 418, id="other-4xx"),
    pytest.param(http_error(status_code=599), T, Reason.SERVICE_UNAVAILABLE, "http:5xx", None, 599, id="other-5xx"),
    pytest.param(
        http_error(
            response=Attrs(
                status_code=429,
                headers={"x-ratelimit-reset-tokens": "6m0s"},
                text=json.dumps({"error": {"code": "insufficient_quota"}}),
            )
        ),
        R,
        Reason.QUOTA_EXCEEDED,
        "body:insufficient_quota",
        360.0,
        429,
        id="response-text-quota",
    ),
    pytest.param(
        http_error(
            "botocore.exceptions.ClientError",
            response={
                "Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {"retry-after": "2"}},
            },
        ),
        T,
        Reason.RATE_LIMITED,
        "body:ThrottlingException",
        2.0,
        400,
        id="aws-throttling-is-not-a-bad-request",
    ),
    pytest.param(
        http_error(
            "botocore.exceptions.ClientError",
            response={"Error": {"Code": "AccessDenied"}, "ResponseMetadata": {"HTTPStatusCode": 403}},
        ),
        P,
        Reason.AUTH_FAILED,
        "http:403",
        None,
        403,
        id="aws-access-denied",
    ),
    pytest.param(
        http_error(
            "openai.RateLimitError",
            status_code=429,
            body={
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            },
        ),
        R,
        Reason.QUOTA_EXCEEDED,
        "body:insufficient_quota",
        None,
        429,
        id="openai-insufficient-quota",
    ),
    pytest.param(
        http_error(
            "openai.RateLimitError",
            status_code=429,
            headers={"retry-after-ms": "1500", "x-ratelimit-reset-requests": "1s"},
            body={"code": "rate_limit_exceeded", "type": "requests"},
        ),
        T,
        Reason.RATE_LIMITED,
        "body:rate_limit_exceeded",
        1.5,
        429,
        id="openai-rate-limit",
    ),
    pytest.param(
        http_error(
            "openai.BadRequestError",
            status_code=400,
            body={"code": "context_length_exceeded", "type": "invalid_request_error"},
        ),
        V,
        Reason.PAYLOAD_TOO_LARGE,
        "body:context_length_exceeded",
        None,
        400,
        id="openai-context-length",
    ),
    pytest.param(
        http_error("openai.BadRequestError", status_code=400, body={"code": "content_policy_violation"}),
        V,
        Reason.CONTENT_POLICY,
        "body:content_policy_violation",
        None,
        400,
        id="openai-content-policy",
    ),
    pytest.param(
        http_error("openai.BadRequestError", status_code=400, body={"code": None, "type": "invalid_request_error"}),
        V,
        Reason.INVALID_INPUT,
        "http:400",
        None,
        400,
        id="openai-plain-bad-request",
    ),
    pytest.param(
        http_error(
            "anthropic.InternalServerError",
            status_code=529,
            body={"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
        ),
        T,
        Reason.SERVICE_UNAVAILABLE,
        "body:overloaded_error",
        None,
        529,
        id="anthropic-overloaded",
    ),
    pytest.param(
        http_error("openai.AuthenticationError", status_code=401),
        P,
        Reason.AUTH_FAILED,
        "http:401",
        None,
        401,
        id="status-before-name",
    ),
    pytest.param(
        http_error("httpx.HTTPStatusError", status_code=302),
        T,
        Reason.UNCLASSIFIED,
        "unclassified",
        None,
        302,
        id="redirect-classifies-nothing",
    ),
    pytest.param(
        http_error("openai.InternalServerError", status_code=True),
        T,
        Reason.SERVICE_UNAVAILABLE,
        "exception:openai.InternalServerError",
        None,
        None,
        id="bool-status-ignored",
    ),
    pytest.param(
        http_error(status_code=1503),
        T,
        Reason.UNCLASSIFIED,
        "unclassified",
        None,
        None,
        id="out-of-range-status-ignored",
    ),
    pytest.param(
        http_error(status_code="503"), T, Reason.UNCLASSIFIED, "unclassified", None, None, id="string-status-ignored"
    ),
]


@pytest.mark.parametrize(("exc", "category", "reason", "rule", "retry_after", "status"), HTTP_EXCEPTION_CASES)
def test_http_carrying_exceptions(
    exc: BaseException, category: Category, reason: Reason, rule: str, retry_after: float | None, status: int | None
) -> None:
    c = Classifier(clock=lambda: NOW).classify(exc)
    assert (c.category, c.reason, c.rule, c.retry_after, c.status_code) == (
        category,
        reason.value,
        rule,
        retry_after,
        status,
    )


@pytest.mark.parametrize(
    ("attrs", "rule", "reason"),
    [
        pytest.param({}, "exception:openai.RateLimitError", Reason.RATE_LIMITED, id="name-only"),
        pytest.param(
            {"status_code": 429, "body": {"code": "rate_limit_exceeded"}},
            "body:rate_limit_exceeded",
            Reason.RATE_LIMITED,
            id="status-and-body",
        ),
        pytest.param({"status_code": 429, "body": None}, "http:429", Reason.RATE_LIMITED, id="status-only"),
        pytest.param(
            {"status_code": 429, "body": {"code": "insufficient_quota"}},
            "body:insufficient_quota",
            Reason.QUOTA_EXCEEDED,
            id="quota-body-wins",
        ),
    ],
)
def test_precedence_body_then_status_then_name(attrs: dict[str, Any], rule: str, reason: Reason) -> None:
    c = classify(http_error("openai.RateLimitError", **attrs))
    assert (c.rule, c.reason) == (rule, reason.value)


def test_real_httpx_status_error_with_quota_body_and_hints() -> None:
    httpx = pytest.importorskip("httpx")
    request = httpx.Request("POST", "https://api.example.test/v1/chat")
    response = httpx.Response(
        429,
        headers={"retry-after": "20", "x-ratelimit-reset-tokens": "1m30s"},
        json={
            "error": {
                "message": "You exceeded your current quota",
                "type": "insufficient_quota",
                "code": "insufficient_quota",
            }
        },
        request=request,
    )
    c = classify(httpx.HTTPStatusError("Client error '429 Too Many Requests'", request=request, response=response))
    assert (c.category, c.reason, c.resource) == (R, Reason.QUOTA_EXCEEDED.value, "quota")
    assert c.retry_after == 90.0
    assert c.status_code == 429


def test_real_urllib_http_error() -> None:
    import email.message
    import urllib.error

    headers = email.message.Message()
    headers["Retry-After"] = "5"
    c = classify(urllib.error.HTTPError("https://example.test/", 503, "Service Unavailable", headers, None))
    assert (c.category, c.reason, c.retry_after, c.status_code) == (T, Reason.SERVICE_UNAVAILABLE.value, 5.0, 503)


class ExplodingResponse:
    status_code = 503

    @property
    def headers(self) -> dict[str, str]:
        raise RuntimeError("ResponseNotRead")

    @property
    def text(self) -> str:
        raise AssertionError("must not read the body from the network")


def test_a_response_whose_properties_raise_is_still_classified_by_status() -> None:
    c = classify(http_error(response=ExplodingResponse()))
    assert (c.category, c.reason, c.status_code, c.retry_after) == (T, Reason.SERVICE_UNAVAILABLE.value, 503, None)


# --- classify_http ---------------------------------------------------------------------------------------

STATUS_CASES: list[tuple[int, Category, Reason, str]] = [
    (400, V, Reason.INVALID_INPUT, "http:400"),
    (401, P, Reason.AUTH_FAILED, "http:401"),
    (402, R, Reason.QUOTA_EXCEEDED, "http:402"),
    (403, P, Reason.AUTH_FAILED, "http:403"),
    (404, P, Reason.NOT_FOUND, "http:404"),
    (405, P, Reason.NOT_SUPPORTED, "http:405"),
    (408, T, Reason.TIMEOUT, "http:408"),
    (409, T, Reason.CONFLICT, "http:409"),
    (410, P, Reason.NOT_FOUND, "http:410"),
    (413, V, Reason.PAYLOAD_TOO_LARGE, "http:413"),
    (414, V, Reason.PAYLOAD_TOO_LARGE, "http:414"),
    (415, V, Reason.INVALID_INPUT, "http:415"),
    (418, P, Reason.PERMANENT_FAILURE, "http:4xx"),
    (422, V, Reason.INVALID_INPUT, "http:422"),
    (423, T, Reason.CONFLICT, "http:423"),
    (425, T, Reason.SERVICE_UNAVAILABLE, "http:425"),
    (429, T, Reason.RATE_LIMITED, "http:429"),
    (431, V, Reason.PAYLOAD_TOO_LARGE, "http:431"),
    (451, P, Reason.PERMANENT_FAILURE, "http:4xx"),
    (500, T, Reason.SERVICE_UNAVAILABLE, "http:500"),
    (501, P, Reason.NOT_SUPPORTED, "http:501"),
    (502, T, Reason.SERVICE_UNAVAILABLE, "http:502"),
    (503, T, Reason.SERVICE_UNAVAILABLE, "http:503"),
    (504, T, Reason.TIMEOUT, "http:504"),
    (507, R, Reason.DISK_FULL, "http:507"),
    (508, T, Reason.SERVICE_UNAVAILABLE, "http:5xx"),
    (529, T, Reason.SERVICE_UNAVAILABLE, "http:529"),
    (200, T, Reason.UNCLASSIFIED, "unclassified"),
    (304, T, Reason.UNCLASSIFIED, "unclassified"),
]


@pytest.mark.parametrize(("status", "category", "reason", "rule"), STATUS_CASES, ids=[str(c[0]) for c in STATUS_CASES])
def test_classify_http_status(status: int, category: Category, reason: Reason, rule: str) -> None:
    c = classify_http(status)
    assert (c.category, c.reason, c.rule, c.status_code, c.exc_type) == (category, reason.value, rule, status, None)
    assert c.resource == (DEFAULT_RESOURCE_FOR_REASON[reason.value] if category is R else None)


BODY_CASES: list[Any] = [
    pytest.param(
        429, {"error": {"code": "insufficient_quota", "message": "quota"}}, R, Reason.QUOTA_EXCEEDED, id="quota-by-code"
    ),
    pytest.param(
        429, {"error": {"type": "insufficient_quota", "message": "quota"}}, R, Reason.QUOTA_EXCEEDED, id="quota-by-type"
    ),
    pytest.param(
        429,
        {"error": {"code": "rate_limit_exceeded", "message": "slow down"}},
        T,
        Reason.RATE_LIMITED,
        id="plain-rate-limit",
    ),
    pytest.param(400, {"error": {"code": "context_length_exceeded"}}, V, Reason.PAYLOAD_TOO_LARGE, id="context-length"),
    pytest.param(400, {"error": {"code": "content_policy_violation"}}, V, Reason.CONTENT_POLICY, id="content-policy"),
    pytest.param(400, {"error": {"code": "content_filter"}}, V, Reason.CONTENT_POLICY, id="azure-content-filter"),
    pytest.param(
        529,
        {"type": "error", "error": {"type": "overloaded_error"}},
        T,
        Reason.SERVICE_UNAVAILABLE,
        id="anthropic-overloaded",
    ),
    pytest.param(429, json.dumps({"error": {"code": "insufficient_quota"}}), R, Reason.QUOTA_EXCEEDED, id="json-text"),
    pytest.param(
        429, json.dumps({"error": {"code": "insufficient_quota"}}).encode(), R, Reason.QUOTA_EXCEEDED, id="json-bytes"
    ),
    pytest.param(400, {"Error": {"Code": "ThrottlingException"}}, T, Reason.RATE_LIMITED, id="aws-throttling"),
    pytest.param(400, {"Error": {"Code": "SLOWDOWN"}}, T, Reason.RATE_LIMITED, id="code-case-insensitive"),
    pytest.param(502, "<html><body>Bad Gateway</body></html>", T, Reason.SERVICE_UNAVAILABLE, id="html-body"),
    pytest.param(400, {"error": {"code": "some_unknown_code"}}, V, Reason.INVALID_INPUT, id="unknown-code-uses-status"),
    pytest.param(200, {"error": {"code": "content_filter"}}, V, Reason.CONTENT_POLICY, id="error-body-on-200"),
]


@pytest.mark.parametrize(("status", "body", "category", "reason"), BODY_CASES)
def test_classify_http_body(status: int, body: object, category: Category, reason: Reason) -> None:
    c = classify_http(status, body=body)
    assert (c.category, c.reason) == (category, reason.value)


def test_classify_http_retry_hint_message_and_fingerprint() -> None:
    classifier = Classifier(clock=lambda: NOW)
    c = classifier.classify_http(
        429,
        {"Retry-After": "3", "X-RateLimit-Reset-Requests": "12s"},
        {"error": {"code": "rate_limit_exceeded", "message": "Rate limit reached for org-123 on requests"}},
    )
    assert c.retry_after == 12.0
    assert c.message == "Rate limit reached for org-123 on requests"
    assert c.fingerprint == fingerprint_parts(
        ("http", "429", normalise_message("(rate_limit_exceeded) Rate limit reached for org-123 on requests"))
    )
    assert c.user_message == default_user_message(T, Reason.RATE_LIMITED.value)


def test_classify_http_without_body_message() -> None:
    c = classify_http(503)
    assert c.message == "HTTP 503"
    assert c.fingerprint == fingerprint_parts(("http", "503"))


@pytest.mark.parametrize("status", [99, 600, -1, True, "429", 429.0])
def test_classify_http_rejects_what_is_not_a_status(status: Any) -> None:
    with pytest.raises(ValueError, match="HTTP status"):
        classify_http(status)


# --- user rules -------------------------------------------------------------------------------------------

FlakyVendorError = fake("vendor.FlakyVendorError")


def test_user_rules_come_before_builtins_and_task_rules_before_app_rules() -> None:
    exc = TimeoutError("vendor timed out")
    app_rule = Rule(category=P, reason="vendor_down", exception=TimeoutError)
    task_rule = Rule(category=R, reason="vendor_quota", exception="TimeoutError", resource="vendor")
    classifier = Classifier([app_rule])
    assert (classify(exc).reason, classify(exc).rule) == ("timeout", "exception:TimeoutError")
    assert (classifier.classify(exc).reason, classifier.classify(exc).rule) == ("vendor_down", "user:0")
    with_task = classifier.classify(exc, rules=[task_rule])
    assert (with_task.category, with_task.reason, with_task.rule, with_task.resource) == (
        R,
        "vendor_quota",
        "task:0",
        "vendor",
    )


def test_first_matching_user_rule_wins() -> None:
    classifier = Classifier(
        [
            Rule(category=V, reason="first", message="never matches this"),
            Rule(category=P, reason="second", exception="vendor.FlakyVendorError"),
            Rule(category=T, reason="third", exception="vendor.FlakyVendorError"),
        ]
    )
    c = classifier.classify(FlakyVendorError("x"))
    assert (c.reason, c.rule) == ("second", "user:1")


USER_RULE_CASES: list[Any] = [
    pytest.param(
        Rule(category=V, reason="bad_sku", message=r"SKU-\d+ not found"),
        FlakyVendorError("SKU-42 not found"),
        True,
        id="message-regex",
    ),
    pytest.param(
        Rule(category=V, reason="bad_sku", message=re.compile("sku", re.I)),
        FlakyVendorError("SKU-42"),
        True,
        id="compiled-regex",
    ),
    pytest.param(
        Rule(category=V, reason="bad_sku", message=r"SKU-\d+ not found"),
        FlakyVendorError("SKU missing"),
        False,
        id="message-regex-no-match",
    ),
    pytest.param(
        Rule(category=T, reason="vendor_busy", status=503), http_error(status_code=503), True, id="status-int"
    ),
    pytest.param(
        Rule(category=T, reason="vendor_busy", status=503), http_error(status_code=502), False, id="status-int-other"
    ),
    pytest.param(
        Rule(category=T, reason="vendor_5xx", status=range(500, 600)),
        http_error(status_code=502),
        True,
        id="status-range",
    ),
    pytest.param(
        Rule(category=T, reason="vendor_busy", status={502, 503}), http_error(status_code=503), True, id="status-set"
    ),
    pytest.param(
        Rule(category=T, reason="vendor_busy", status=503), FlakyVendorError("no status"), False, id="status-absent"
    ),
    pytest.param(
        Rule(category=P, reason="mine", predicate=lambda e: "tenant-7" in str(e)),
        FlakyVendorError("tenant-7 locked"),
        True,
        id="predicate",
    ),
    pytest.param(
        Rule(category=P, reason="mine", predicate=lambda e: False), FlakyVendorError("x"), False, id="predicate-false"
    ),
    pytest.param(
        Rule(category=P, reason="mine", exception=FlakyVendorError), FlakyVendorError("x"), True, id="exception-class"
    ),
    pytest.param(
        Rule(category=P, reason="mine", exception="vendor.FlakyVendorError"),
        FlakyVendorError("x"),
        True,
        id="exception-name",
    ),
    pytest.param(
        Rule(category=P, reason="mine", exception="builtins.ValueError"), ValueError("x"), True, id="builtins-prefix"
    ),
    pytest.param(
        Rule(category=P, reason="mine", exception=("a.B", "ValueError")),
        json.JSONDecodeError("x", "d", 0),
        True,
        id="name-along-mro",
    ),
    pytest.param(Rule(category=P, reason="mine", exception=KeyError), ValueError("x"), False, id="exception-other"),
    pytest.param(
        Rule(category=P, reason="mine", exception=ValueError, message="tenant"),
        ValueError("other"),
        False,
        id="all-conditions-must-match",
    ),
    pytest.param(
        Rule(category=P, reason="mine", exception=ValueError, message="tenant"),
        ValueError("tenant 9"),
        True,
        id="all-conditions-match",
    ),
]


@pytest.mark.parametrize(("rule", "exc", "matches"), USER_RULE_CASES)
def test_user_rule_conditions(rule: Rule, exc: BaseException, matches: bool) -> None:
    c = Classifier([rule]).classify(exc)
    assert (c.rule == "user:0") is matches
    if matches:
        assert (c.category, c.reason) == (rule.category, rule.reason)


def test_user_rule_can_reclassify_a_recoverable_error() -> None:
    rule = Rule(category=P, reason="no_retry", exception=TransientError)
    c = Classifier([rule]).classify(TransientError("flaky", retry_after=4, user_message="Try later."))
    assert (c.category, c.reason, c.rule) == (P, "no_retry", "user:0")
    assert c.retry_after == 4.0  # the error's own hint and message win over the rule's
    assert c.user_message == "Try later."


def test_rule_user_message_resource_and_retry_after() -> None:
    rule = Rule(
        category=R,
        reason="licence",
        exception=FlakyVendorError,
        resource="licences",
        retry_after=60,
        user_message="Waiting for a licence.",
    )
    c = Classifier([rule]).classify(FlakyVendorError("no licence"))
    assert (c.resource, c.retry_after, c.user_message) == ("licences", 60.0, "Waiting for a licence.")


def test_resource_error_resource_wins_over_rule_resource() -> None:
    rule = Rule(category=R, reason="gpu_unavailable", exception=ResourceError, resource="any-gpu")
    c = Classifier([rule]).classify(ResourceError("busy", resource="gpu-a100"))
    assert c.resource == "gpu-a100"


def test_rule_resource_defaults_by_reason() -> None:
    c = Classifier([Rule(category=R, reason=Reason.DISK_FULL, exception=FlakyVendorError)]).classify(
        FlakyVendorError("x")
    )
    assert c.resource == "disk"
    c = Classifier([Rule(category=R, reason="my_own_reason", exception=FlakyVendorError)]).classify(
        FlakyVendorError("x")
    )
    assert c.resource == "resource"


def test_server_hint_wins_over_rule_retry_after() -> None:
    rule = Rule(category=T, reason="vendor_busy", status=503, retry_after=5)
    c = Classifier([rule], clock=lambda: NOW).classify(http_error(status_code=503, headers={"Retry-After": "40"}))
    assert c.retry_after == 40.0


def test_predicate_that_raises_does_not_match_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(exc: BaseException) -> bool:
        raise KeyError("oops")

    classifier = Classifier([Rule(category=P, reason="broken", predicate=broken)])
    with caplog.at_level(logging.WARNING, logger="error_handling.classifier"):
        c = classifier.classify(TimeoutError("t"))
    assert (c.reason, c.rule) == ("timeout", "exception:TimeoutError")
    events = [getattr(r, "fr_event", None) for r in caplog.records]
    assert events == ["classifier.predicate_failed"]
    assert caplog.records[0].fr_fields["rule"] == "user:0"  # type: ignore[attr-defined]


def test_with_rules_returns_a_new_classifier_equivalent_to_call_time_rules() -> None:
    app = Classifier([Rule(category=P, reason="app", exception=FlakyVendorError)])
    task_rules = [Rule(category=V, reason="task", message="bad")]
    derived = app.with_rules(task_rules)
    assert derived is not app
    assert app.rules == (app.rules[0],)
    assert derived.rules == (task_rules[0], app.rules[0])
    for exc in (FlakyVendorError("bad input"), FlakyVendorError("other"), TimeoutError("bad")):
        a, b = derived.classify(exc), app.classify(exc, rules=task_rules)
        assert (a.category, a.reason) == (b.category, b.reason)


def test_classify_http_applies_status_and_message_rules_only() -> None:
    classifier = Classifier(
        [
            Rule(category=P, reason="needs_exception", exception=ValueError),
            Rule(category=P, reason="needs_predicate", predicate=lambda e: True),
            Rule(category=V, reason="bad_model", status=404, message="model .* does not exist"),
        ]
    )
    c = classifier.classify_http(404, body={"error": {"message": "The model gpt-9 does not exist"}})
    assert (c.reason, c.rule) == ("bad_model", "user:2")
    c = classifier.classify_http(404, body={"error": {"message": "no such file"}})
    assert (c.reason, c.rule) == ("not_found", "http:404")
    c = classifier.classify_http(503, rules=[Rule(category=P, reason="task_rule", status=range(500, 600))])
    assert (c.reason, c.rule) == ("task_rule", "task:0")


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        pytest.param({"category": "flaky", "reason": "x"}, "not a category", id="category"),
        pytest.param({"category": T, "reason": "x", "message": "(unclosed"}, "message pattern", id="pattern"),
    ],
)
def test_an_invalid_rule_is_a_configuration_error(fields: dict[str, Any], match: str) -> None:
    from error_handling.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match=match) as caught:
        Rule(**fields)
    assert isinstance(caught.value, ValueError)  # what it raised before, still caught by `except ValueError`


@pytest.mark.parametrize("bad", [["not a rule"], [None], [{"category": "transient"}]])
def test_rules_must_be_rules(bad: list[Any]) -> None:
    from error_handling.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError):
        Classifier(bad)
    with pytest.raises(ConfigurationError):
        Classifier().classify(ValueError("x"), rules=bad)


# --- chained and wrapped exceptions ---------------------------------------------------------------------


def chained(top: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException as inner:
            raise top from inner
    except BaseException as outer:
        return outer


def test_unclassified_error_takes_its_cause_classification_but_keeps_its_identity() -> None:
    exc = chained(
        ValueError("could not load profile 91"), fake("redis.exceptions.ConnectionError")("Connection refused")
    )
    c = classify(exc)
    assert (c.category, c.reason, c.rule) == (
        T,
        Reason.CONNECTION.value,
        "cause:exception:redis.exceptions.ConnectionError",
    )
    assert c.exc_type == "ValueError"
    assert c.message == "could not load profile 91"
    assert c.fingerprint == fingerprint(exc)


def test_classified_error_ignores_its_cause() -> None:
    c = classify(chained(TimeoutError("t"), MemoryError()))
    assert (c.reason, c.rule) == (Reason.TIMEOUT.value, "exception:TimeoutError")


def test_cause_of_a_cause_and_status_of_the_cause() -> None:
    deepest = http_error(status_code=429, headers={"Retry-After": "9"})
    exc = chained(RuntimeError("job failed"), chained(KeyError("k"), deepest))
    c = Classifier(clock=lambda: NOW).classify(exc)
    assert (c.reason, c.rule, c.status_code, c.retry_after) == ("rate_limited", "cause:cause:http:429", 429, 9.0)


def test_user_rules_apply_to_the_cause() -> None:
    exc = chained(RuntimeError("wrapper"), FlakyVendorError("x"))
    c = Classifier([Rule(category=P, reason="vendor", exception=FlakyVendorError)]).classify(exc)
    assert (c.reason, c.rule) == ("vendor", "cause:user:0")


def test_a_suppressed_context_is_not_followed() -> None:
    try:
        try:
            raise TimeoutError("t")
        except TimeoutError:
            raise RuntimeError("bug in the handler") from None
    except RuntimeError as exc:
        assert exc.__context__ is not None
        assert classify(exc).reason == Reason.UNCLASSIFIED.value


def test_an_error_raised_while_handling_another_is_judged_by_it_first() -> None:
    try:
        try:
            raise TimeoutError("t")
        except TimeoutError:
            raise ValueError("no data")  # noqa: B904 - the implicit context is the point
    except ValueError as exc:
        c = classify(exc)
    assert (c.reason, c.rule, c.exc_type) == (Reason.TIMEOUT.value, "context:exception:TimeoutError", "ValueError")


def test_a_deterministic_error_is_the_weakest_verdict_along_the_chain() -> None:
    # the bug of the cause decides only when nothing recognises the error itself
    c = classify(chained(RuntimeError("job failed"), KeyError("user_id")))
    assert (c.category, c.reason, c.rule) == (P, Reason.PROGRAMMING_ERROR.value, "cause:exception:LookupError")
    # its own deterministic class comes before the cause's
    c = classify(chained(ValueError("bad quantity"), AttributeError("x")))
    assert (c.reason, c.rule) == (Reason.INVALID_INPUT.value, "exception:ValueError")


def test_malformed_input_carrying_a_response_or_raised_by_a_network_client_is_not_the_inputs() -> None:
    carried = with_attrs(ValueError("Expecting value"), status_code=200, response=Attrs(status_code=200, headers={}))
    assert classify(carried).reason == Reason.UNCLASSIFIED.value
    import httpx

    try:
        httpx.Response(200, content=b"upstream connect error").json()
    except ValueError as exc:
        by_client = exc
    c = classify(by_client)
    assert (c.category, c.reason) == (T, Reason.UNCLASSIFIED.value)
    # a bug raised inside a client (a wrong argument's type) is still a bug
    try:
        httpx.Request("GET", 123)  # type: ignore[arg-type]
    except TypeError as exc:
        wrong_call = exc
    assert classify(wrong_call).reason == Reason.PROGRAMMING_ERROR.value


def test_cycles_in_the_cause_chain_end() -> None:
    a, b = RuntimeError("a"), OSError("b")
    a.__cause__, b.__cause__ = b, a
    assert classify(a).reason == Reason.UNCLASSIFIED.value


def test_chain_depth_is_bounded() -> None:
    exc: BaseException = TimeoutError("root")
    for i in range(classifier_module.MAX_CHAIN_DEPTH + 1):
        wrapper = RuntimeError(f"level {i}")
        wrapper.__cause__ = exc
        exc = wrapper
    assert classify(exc).reason == Reason.UNCLASSIFIED.value
    shallow = RuntimeError("top")
    shallow.__cause__ = TimeoutError("root")
    assert classify(shallow).reason == Reason.TIMEOUT.value


def test_wrapper_is_classified_by_what_it_wraps() -> None:
    sa_operational = fake("sqlalchemy.exc.OperationalError", fake("sqlalchemy.exc.StatementError"))
    disk_full = fake("psycopg.errors.DiskFull")("could not extend file: No space left on device")
    c = classify(with_attrs(sa_operational("(psycopg.errors.DiskFull) ..."), orig=disk_full))
    assert (c.category, c.reason, c.resource, c.rule) == (
        R,
        Reason.DISK_FULL.value,
        "disk",
        "wrapped:exception:psycopg.errors.DiskFull",
    )
    assert c.exc_type == "sqlalchemy.exc.OperationalError"


def test_wrapper_falls_back_to_its_own_entry() -> None:
    sa_operational = fake("sqlalchemy.exc.OperationalError", fake("sqlalchemy.exc.StatementError"))
    c = classify(with_attrs(sa_operational("no such table"), orig=fake("somedb.Weird")("?")))
    assert c.rule == "exception:sqlalchemy.exc.OperationalError"


def test_max_retry_error_is_classified_by_its_reason() -> None:
    max_retry = fake("urllib3.exceptions.MaxRetryError")
    c = classify(
        with_attrs(
            max_retry("Max retries exceeded"),
            reason=fake("urllib3.exceptions.ResponseError")("too many 503 error responses"),
        )
    )
    assert (c.reason, c.rule) == (
        Reason.SERVICE_UNAVAILABLE.value,
        "wrapped:exception:urllib3.exceptions.ResponseError",
    )


# --- the result's fields ---------------------------------------------------------------------------------


def make_error(cls: type[BaseException], message: str) -> BaseException:
    return raised(cls(message))


def test_same_error_with_different_ids_has_the_same_fingerprint() -> None:
    a = make_error(
        fake("redis.exceptions.ConnectionError"), "Error 111 connecting to 10.0.0.7:6379. Connection refused."
    )
    b = make_error(type(a), "Error 111 connecting to 10.0.0.9:6380. Connection refused.")
    assert classify(a).fingerprint == classify(b).fingerprint
    assert classify(a).fingerprint == fingerprint(a)


def test_different_types_have_different_fingerprints() -> None:
    a = make_error(TimeoutError, "operation timed out after 30s")
    b = make_error(ConnectionError, "operation timed out after 30s")
    assert classify(a).fingerprint != classify(b).fingerprint


def test_different_messages_have_different_fingerprints() -> None:
    assert (
        classify(make_error(ValueError, "missing field name")).fingerprint
        != classify(make_error(ValueError, "missing field email")).fingerprint
    )


def test_http_fingerprints_group_by_status_and_normalised_message() -> None:
    one = classify_http(429, body={"error": {"message": "Rate limit reached for org-123, retry in 20 seconds"}})
    two = classify_http(429, body={"error": {"message": "Rate limit reached for org-456, retry in 35 seconds"}})
    other = classify_http(503, body={"error": {"message": "Rate limit reached for org-123, retry in 20 seconds"}})
    assert one.fingerprint == two.fingerprint != other.fingerprint


def test_message_is_cut_and_unprintable_errors_are_classified() -> None:
    long = classify(ValueError("x" * 10_000))
    assert len(long.message) == MAX_MESSAGE_LENGTH

    class Unprintable(TimeoutError):
        def __str__(self) -> str:
            raise RuntimeError("no __str__ today")

    c = classify(Unprintable())
    assert (c.reason, c.message) == (Reason.TIMEOUT.value, f"<unprintable {__name__}.{Unprintable.__qualname__}>")


def test_unclassified_error_keeps_a_server_hint() -> None:
    c = Classifier(clock=lambda: NOW).classify(http_error(headers={"Retry-After": "15"}))
    assert (c.reason, c.retry_after) == (Reason.UNCLASSIFIED.value, 15.0)


def test_default_user_messages_and_no_resource_outside_the_resource_category() -> None:
    c = classify(TimeoutError("t"))
    assert c.user_message == default_user_message(T, Reason.TIMEOUT.value)
    assert c.resource is None


# --- completeness ------------------------------------------------------------------------------------------


def test_every_category_has_a_builtin_rule() -> None:
    assert {outcome.category for _, outcome in all_outcomes()} == set(Category)


def test_every_builtin_outcome_is_valid() -> None:
    reasons = {r.value for r in Reason}
    for description, outcome in all_outcomes():
        assert isinstance(outcome.category, Category), description
        assert outcome.reason.value in reasons, description
        if outcome.category is Category.RESOURCE:
            assert outcome.resource_name(), description
        else:
            assert outcome.resource_name() is None, description


def test_exception_table_names_are_qualified_and_map_to_a_category() -> None:
    for name, outcome in EXCEPTION_RULES.items():
        module, _, cls = name.rpartition(".")
        assert cls.isidentifier() and not name.startswith("builtins."), name
        if not module:  # a builtin: it must exist
            assert isinstance(getattr(__import__("builtins"), cls), type), name
        assert isinstance(outcome.category, Category), name
    for name in WRAPPED_EXCEPTION_ATTRIBUTES:
        assert name in EXCEPTION_RULES or any(n.startswith(name.rpartition(".")[0]) for n in EXCEPTION_RULES), name


def test_other_tables_are_well_formed() -> None:
    assert all(400 <= status <= 599 for status in HTTP_STATUS_RULES)
    assert set(HTTP_STATUS_CLASS_RULES) == {4, 5}
    assert all(code == code.casefold() for code in PROVIDER_ERROR_CODES)
    assert all(name.startswith("E") and hasattr(errno, name) for name in ERRNO_RULES)
    assert len({rule.name for rule in MESSAGE_RULES}) == len(MESSAGE_RULES)


def test_public_api() -> None:
    assert sorted(classifier_module.__all__) == sorted(
        ["Classifier", "DEFAULT_CLASSIFIER", "MAX_CHAIN_DEPTH", "MAX_MESSAGE_LENGTH", "classify", "classify_http"]
    )
    for name in ("Classifier", "classify", "classify_http"):
        assert getattr(classifier_module, name).__doc__, name
    for module_name in ("error_handling.classifier", "error_handling.rules", "error_handling.http"):
        module = importlib.import_module(module_name)
        for name in module.__all__:
            assert hasattr(module, name), f"{module_name}.{name}"
    for package_name in ("error_handling.classifier", "error_handling.rules", "error_handling.http"):
        assert_all_lists_the_public_names(package_name)
