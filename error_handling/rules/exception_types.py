"""Rules on exception types: qualified class names (matched along the MRO), wrappers whose original
is classified first, and ``OSError`` by errno. Names only: this module imports no library.

To support a library, add its rows to :data:`EXCEPTION_RULES` (under a comment naming it).
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.outcome import (
    AUTH_FAILED,
    CONFLICT,
    CONNECTION,
    CONTENT_POLICY,
    DISK_FULL,
    GPU,
    INVALID_INPUT,
    NOT_FOUND,
    OPEN_FILES,
    OUT_OF_MEMORY,
    PERMANENT,
    RATE_LIMITED,
    TIMEOUT,
    TOO_LARGE,
    UNAVAILABLE,
    Outcome,
)

__all__ = ["ERRNO_BY_NUMBER", "ERRNO_EXCEPTION", "ERRNO_RULES", "EXCEPTION_RULES", "WRAPPED_EXCEPTION_ATTRIBUTES"]

#: Errors of the official OpenAI and Anthropic SDKs (both export these names from the package root).
_LLM_SDK_ERRORS: Mapping[str, Outcome] = {
    "APITimeoutError": TIMEOUT,
    "APIConnectionError": CONNECTION,
    "RateLimitError": RATE_LIMITED,
    "InternalServerError": UNAVAILABLE,
    "AuthenticationError": AUTH_FAILED,
    "PermissionDeniedError": AUTH_FAILED,
    "NotFoundError": NOT_FOUND,
    "BadRequestError": INVALID_INPUT,
    "UnprocessableEntityError": INVALID_INPUT,
    "ConflictError": CONFLICT,
}

#: PostgreSQL errors by class name; psycopg 3 and psycopg2 both define them in their ``errors`` module.
_POSTGRES_ERRORS: Mapping[str, Outcome] = {
    "DeadlockDetected": CONFLICT,
    "SerializationFailure": CONFLICT,
    "LockNotAvailable": CONFLICT,
    "TransactionRollback": CONFLICT,
    "QueryCanceled": TIMEOUT,
    "TooManyConnections": CONNECTION,
    "DiskFull": DISK_FULL,
    "OutOfMemory": OUT_OF_MEMORY,
    "InvalidPassword": AUTH_FAILED,
    "InvalidAuthorizationSpecification": AUTH_FAILED,
    "InsufficientPrivilege": AUTH_FAILED,
    "UniqueViolation": INVALID_INPUT,
}

#: The DB-API base classes of both PostgreSQL drivers (exported by ``psycopg`` and ``psycopg2``).
_DBAPI_ERRORS: Mapping[str, Outcome] = {
    "OperationalError": CONNECTION,
    "InterfaceError": CONNECTION,
    "IntegrityError": INVALID_INPUT,
    "DataError": INVALID_INPUT,
}

#: Exceptions by qualified name. The most specific class of an error's MRO that has an entry wins.
EXCEPTION_RULES: Mapping[str, Outcome] = MappingProxyType(
    {
        # Python
        "TimeoutError": TIMEOUT,  # also socket.timeout, asyncio.TimeoutError
        "ConnectionError": CONNECTION,  # refused, reset, aborted, broken pipe
        "MemoryError": OUT_OF_MEMORY,
        "FileNotFoundError": NOT_FOUND,
        "PermissionError": AUTH_FAILED,
        "socket.gaierror": CONNECTION,  # DNS resolution
        "socket.herror": CONNECTION,
        "ssl.SSLError": CONNECTION,
        "ssl.SSLCertVerificationError": PERMANENT,
        "http.client.RemoteDisconnected": CONNECTION,
        "http.client.IncompleteRead": CONNECTION,
        "http.client.BadStatusLine": CONNECTION,
        "urllib.error.URLError": CONNECTION,
        "subprocess.TimeoutExpired": TIMEOUT,
        # Celery, billiard (celery.exceptions re-exports billiard's classes), kombu, amqp
        "billiard.exceptions.SoftTimeLimitExceeded": TIMEOUT,
        "celery.exceptions.SoftTimeLimitExceeded": TIMEOUT,
        "billiard.exceptions.TimeLimitExceeded": TIMEOUT,
        "celery.exceptions.TimeLimitExceeded": TIMEOUT,
        "billiard.exceptions.WorkerLostError": UNAVAILABLE,
        "celery.exceptions.WorkerLostError": UNAVAILABLE,
        "celery.exceptions.TimeoutError": TIMEOUT,
        "kombu.exceptions.OperationalError": CONNECTION,
        "amqp.exceptions.RecoverableConnectionError": CONNECTION,
        "amqp.exceptions.ConnectionForced": CONNECTION,
        "amqp.exceptions.AccessRefused": AUTH_FAILED,
        # redis-py
        "redis.exceptions.ConnectionError": CONNECTION,
        "redis.exceptions.TimeoutError": TIMEOUT,
        "redis.exceptions.BusyLoadingError": UNAVAILABLE,
        "redis.exceptions.ReadOnlyError": UNAVAILABLE,
        "redis.exceptions.ClusterError": UNAVAILABLE,
        "redis.exceptions.TryAgainError": UNAVAILABLE,
        "redis.exceptions.OutOfMemoryError": OUT_OF_MEMORY,
        "redis.exceptions.AuthenticationError": AUTH_FAILED,  # a ConnectionError subclass
        "redis.exceptions.AuthorizationError": AUTH_FAILED,  # a ConnectionError subclass
        "redis.exceptions.NoPermissionError": AUTH_FAILED,
        "redis.exceptions.ResponseError": PERMANENT,
        # PostgreSQL: psycopg 3, psycopg2, the psycopg pool
        **{f"{driver}.errors.{name}": o for driver in ("psycopg", "psycopg2") for name, o in _POSTGRES_ERRORS.items()},
        **{f"{driver}.{name}": o for driver in ("psycopg", "psycopg2") for name, o in _DBAPI_ERRORS.items()},
        "psycopg2.extensions.TransactionRollbackError": CONFLICT,
        "psycopg2.extensions.QueryCanceledError": TIMEOUT,
        "psycopg_pool.PoolTimeout": TIMEOUT,
        "psycopg_pool.errors.PoolTimeout": TIMEOUT,
        # SQLite (the embedded default); "database is locked" and "disk is full" are message rules
        "sqlite3.IntegrityError": INVALID_INPUT,
        "sqlite3.DataError": INVALID_INPUT,
        # SQLAlchemy (its DBAPIError wraps the driver's error, which is classified first)
        "sqlalchemy.exc.OperationalError": CONNECTION,
        "sqlalchemy.exc.InterfaceError": CONNECTION,
        "sqlalchemy.exc.DisconnectionError": CONNECTION,
        "sqlalchemy.exc.TimeoutError": TIMEOUT,  # connection pool exhausted
        "sqlalchemy.exc.IntegrityError": INVALID_INPUT,
        "sqlalchemy.exc.DataError": INVALID_INPUT,
        # httpx (HTTPStatusError is classified by its response's status)
        "httpx.TimeoutException": TIMEOUT,
        "httpx.ReadTimeout": TIMEOUT,
        "httpx.ConnectTimeout": TIMEOUT,
        "httpx.WriteTimeout": TIMEOUT,
        "httpx.PoolTimeout": TIMEOUT,
        "httpx.NetworkError": CONNECTION,
        "httpx.ConnectError": CONNECTION,
        "httpx.ReadError": CONNECTION,
        "httpx.WriteError": CONNECTION,
        "httpx.RemoteProtocolError": CONNECTION,
        "httpx.ProxyError": CONNECTION,
        # requests (HTTPError is classified by its response's status)
        "requests.exceptions.Timeout": TIMEOUT,
        "requests.exceptions.ReadTimeout": TIMEOUT,
        "requests.exceptions.ConnectTimeout": TIMEOUT,  # also a ConnectionError: listed to win
        "requests.exceptions.ConnectionError": CONNECTION,
        "requests.exceptions.ChunkedEncodingError": CONNECTION,
        # urllib3 (MaxRetryError's reason is classified first)
        "urllib3.exceptions.TimeoutError": TIMEOUT,
        "urllib3.exceptions.ReadTimeoutError": TIMEOUT,
        "urllib3.exceptions.ConnectTimeoutError": TIMEOUT,
        "urllib3.exceptions.NewConnectionError": CONNECTION,  # a ConnectTimeoutError subclass
        "urllib3.exceptions.ProtocolError": CONNECTION,
        "urllib3.exceptions.SSLError": CONNECTION,
        "urllib3.exceptions.ProxyError": CONNECTION,
        "urllib3.exceptions.MaxRetryError": CONNECTION,
        "urllib3.exceptions.ResponseError": UNAVAILABLE,  # "too many error responses"
        # aiohttp (ClientResponseError is classified by its status)
        "aiohttp.client_exceptions.ClientConnectionError": CONNECTION,
        "aiohttp.client_exceptions.ServerTimeoutError": TIMEOUT,
        "aiohttp.client_exceptions.ClientPayloadError": CONNECTION,
        # OpenAI and Anthropic SDKs (a status and body, when present, are more specific)
        **{f"{sdk}.{name}": outcome for sdk in ("openai", "anthropic") for name, outcome in _LLM_SDK_ERRORS.items()},
        "openai.ContentFilterFinishReasonError": CONTENT_POLICY,
        "anthropic.OverloadedError": UNAVAILABLE,
        "anthropic.ServiceUnavailableError": UNAVAILABLE,
        "anthropic.DeadlineExceededError": TIMEOUT,
        "anthropic.RequestTooLargeError": TOO_LARGE,
        # botocore (ClientError is classified by its response's status and error code)
        "botocore.exceptions.ConnectionError": CONNECTION,
        "botocore.exceptions.EndpointConnectionError": CONNECTION,
        "botocore.exceptions.ConnectionClosedError": CONNECTION,
        "botocore.exceptions.ReadTimeoutError": TIMEOUT,
        "botocore.exceptions.ConnectTimeoutError": TIMEOUT,
        "botocore.exceptions.NoCredentialsError": AUTH_FAILED,
        "botocore.exceptions.PartialCredentialsError": AUTH_FAILED,
        # google-api-core (gRPC errors carry no HTTP response, so their names are mapped)
        "google.api_core.exceptions.ResourceExhausted": RATE_LIMITED,
        "google.api_core.exceptions.TooManyRequests": RATE_LIMITED,
        "google.api_core.exceptions.ServiceUnavailable": UNAVAILABLE,
        "google.api_core.exceptions.InternalServerError": UNAVAILABLE,
        "google.api_core.exceptions.BadGateway": UNAVAILABLE,
        "google.api_core.exceptions.DeadlineExceeded": TIMEOUT,
        "google.api_core.exceptions.GatewayTimeout": TIMEOUT,
        "google.api_core.exceptions.RetryError": TIMEOUT,
        "google.api_core.exceptions.Aborted": CONFLICT,
        "google.api_core.exceptions.Unauthorized": AUTH_FAILED,
        "google.api_core.exceptions.Forbidden": AUTH_FAILED,
        "google.api_core.exceptions.NotFound": NOT_FOUND,
        "google.api_core.exceptions.BadRequest": INVALID_INPUT,
        # PyTorch (torch.cuda.OutOfMemoryError became an alias of torch.OutOfMemoryError)
        "torch.OutOfMemoryError": GPU,
        "torch.cuda.OutOfMemoryError": GPU,
    }
)

#: Wrapper exceptions and the attribute holding the original error, which is classified first (with
#: every rule); only if nothing matches the original does the wrapper's own entry apply.
WRAPPED_EXCEPTION_ATTRIBUTES: Mapping[str, str] = MappingProxyType(
    {
        "sqlalchemy.exc.StatementError": "orig",  # DBAPIError and its subclasses
        "urllib3.exceptions.MaxRetryError": "reason",
    }
)

#: The class whose ``errno`` is looked up in :data:`ERRNO_RULES` when the MRO walk reaches it.
ERRNO_EXCEPTION = "OSError"

#: ``OSError`` by errno name. Python raises most of the network ones as ``ConnectionError`` or
#: ``TimeoutError`` subclasses already (matched by name first); the rest arrive as plain ``OSError``.
ERRNO_RULES: Mapping[str, Outcome] = MappingProxyType(
    {
        "ENOSPC": DISK_FULL,
        "EDQUOT": DISK_FULL,
        "ENOMEM": OUT_OF_MEMORY,
        "EMFILE": OPEN_FILES,
        "ENFILE": OPEN_FILES,
        "ETIMEDOUT": TIMEOUT,
        "ECONNREFUSED": CONNECTION,
        "ECONNRESET": CONNECTION,
        "ECONNABORTED": CONNECTION,
        "EHOSTUNREACH": CONNECTION,
        "EHOSTDOWN": CONNECTION,
        "ENETUNREACH": CONNECTION,
        "ENETDOWN": CONNECTION,
        "ENETRESET": CONNECTION,
        "EPIPE": CONNECTION,
        "EAGAIN": CONNECTION,
    }
)


def _errno_by_number() -> Mapping[int, tuple[str, Outcome]]:
    table: dict[int, tuple[str, Outcome]] = {}
    for name, outcome in ERRNO_RULES.items():
        number = getattr(errno, name, None)
        if isinstance(number, int):
            table.setdefault(number, (name, outcome))
    return MappingProxyType(table)


#: :data:`ERRNO_RULES` keyed by this platform's errno numbers (names the platform lacks are skipped).
ERRNO_BY_NUMBER: Mapping[int, tuple[str, Outcome]] = _errno_by_number()
