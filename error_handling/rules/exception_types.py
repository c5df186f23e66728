"""Rules on exception types: qualified class names (matched along the MRO), wrappers whose original
is classified first, and ``OSError`` by errno. Names only: this module imports no library.

To support a library, add its rows to :data:`EXCEPTION_RULES` (under a comment naming it).
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.rules.brokers import BROKER_EXCEPTION_RULES, BROKER_WRAPPED_ATTRIBUTES
from error_handling.rules.celery import CELERY_EXCEPTION_RULES, CELERY_WRAPPED_ATTRIBUTES
from error_handling.rules.databases import DATABASE_EXCEPTION_RULES
from error_handling.rules.network import NETWORK_EXCEPTION_RULES
from error_handling.rules.outcome import Outcome, Outcomes
from error_handling.rules.providers_aws import AWS_EXCEPTION_RULES

#: Errors of the official OpenAI and Anthropic SDKs (both export these names from the package root).
_LLM_SDK_ERRORS: Mapping[str, Outcome] = {
    "APITimeoutError": Outcomes.TIMEOUT,
    "APIConnectionError": Outcomes.CONNECTION,
    "RateLimitError": Outcomes.RATE_LIMITED,
    "InternalServerError": Outcomes.UNAVAILABLE,
    "AuthenticationError": Outcomes.AUTH_FAILED,
    "PermissionDeniedError": Outcomes.AUTH_FAILED,
    "NotFoundError": Outcomes.NOT_FOUND,
    "BadRequestError": Outcomes.INVALID_INPUT,
    "UnprocessableEntityError": Outcomes.INVALID_INPUT,
    "ConflictError": Outcomes.CONFLICT,
}

#: Exceptions by qualified name. The most specific class of an error's MRO that has an entry wins.
EXCEPTION_RULES: Mapping[str, Outcome] = MappingProxyType(
    {
        # Python
        "TimeoutError": Outcomes.TIMEOUT,  # also socket.timeout, asyncio.TimeoutError
        "ConnectionError": Outcomes.CONNECTION,  # refused, reset, aborted, broken pipe
        "MemoryError": Outcomes.OUT_OF_MEMORY,
        "FileNotFoundError": Outcomes.NOT_FOUND,
        "PermissionError": Outcomes.AUTH_FAILED,
        "socket.gaierror": Outcomes.CONNECTION,  # DNS resolution
        "socket.herror": Outcomes.CONNECTION,
        "ssl.SSLError": Outcomes.CONNECTION,
        "http.client.RemoteDisconnected": Outcomes.CONNECTION,
        "http.client.IncompleteRead": Outcomes.CONNECTION,
        "http.client.BadStatusLine": Outcomes.CONNECTION,
        "urllib.error.URLError": Outcomes.CONNECTION,
        "subprocess.TimeoutExpired": Outcomes.TIMEOUT,
        **NETWORK_EXCEPTION_RULES,  # TLS verification, redirect loops
        **BROKER_EXCEPTION_RULES,  # redis-py, py-amqp, kombu
        **CELERY_EXCEPTION_RULES,  # Celery, billiard
        # databases: drivers, pools and SQLAlchemy (their codes are code rules)
        **DATABASE_EXCEPTION_RULES,
        # httpx (HTTPStatusError is classified by its response's status)
        "httpx.TimeoutException": Outcomes.TIMEOUT,
        "httpx.ReadTimeout": Outcomes.TIMEOUT,
        "httpx.ConnectTimeout": Outcomes.TIMEOUT,
        "httpx.WriteTimeout": Outcomes.TIMEOUT,
        "httpx.PoolTimeout": Outcomes.TIMEOUT,
        "httpx.NetworkError": Outcomes.CONNECTION,
        "httpx.ConnectError": Outcomes.CONNECTION,
        "httpx.ReadError": Outcomes.CONNECTION,
        "httpx.WriteError": Outcomes.CONNECTION,
        "httpx.RemoteProtocolError": Outcomes.CONNECTION,
        "httpx.ProxyError": Outcomes.CONNECTION,
        # requests (HTTPError is classified by its response's status)
        "requests.exceptions.Timeout": Outcomes.TIMEOUT,
        "requests.exceptions.ReadTimeout": Outcomes.TIMEOUT,
        "requests.exceptions.ConnectTimeout": Outcomes.TIMEOUT,  # also a ConnectionError: listed to win
        "requests.exceptions.ConnectionError": Outcomes.CONNECTION,
        "requests.exceptions.ChunkedEncodingError": Outcomes.CONNECTION,
        # urllib3 (MaxRetryError's reason is classified first)
        "urllib3.exceptions.TimeoutError": Outcomes.TIMEOUT,
        "urllib3.exceptions.ReadTimeoutError": Outcomes.TIMEOUT,
        "urllib3.exceptions.ConnectTimeoutError": Outcomes.TIMEOUT,
        "urllib3.exceptions.NewConnectionError": Outcomes.CONNECTION,  # a ConnectTimeoutError subclass
        "urllib3.exceptions.ProtocolError": Outcomes.CONNECTION,
        "urllib3.exceptions.SSLError": Outcomes.CONNECTION,
        "urllib3.exceptions.ProxyError": Outcomes.CONNECTION,
        "urllib3.exceptions.MaxRetryError": Outcomes.CONNECTION,
        "urllib3.exceptions.ResponseError": Outcomes.UNAVAILABLE,  # "too many error responses"
        # aiohttp (ClientResponseError is classified by its status)
        "aiohttp.client_exceptions.ClientConnectionError": Outcomes.CONNECTION,
        "aiohttp.client_exceptions.ServerTimeoutError": Outcomes.TIMEOUT,
        "aiohttp.client_exceptions.ClientPayloadError": Outcomes.CONNECTION,
        # OpenAI and Anthropic SDKs (a status and body, when present, are more specific)
        **{f"{sdk}.{name}": outcome for sdk in ("openai", "anthropic") for name, outcome in _LLM_SDK_ERRORS.items()},
        "openai.ContentFilterFinishReasonError": Outcomes.CONTENT_POLICY,
        "anthropic.OverloadedError": Outcomes.UNAVAILABLE,
        "anthropic.ServiceUnavailableError": Outcomes.UNAVAILABLE,
        "anthropic.DeadlineExceededError": Outcomes.TIMEOUT,
        "anthropic.RequestTooLargeError": Outcomes.TOO_LARGE,
        # botocore (ClientError is classified by its response's status and error code)
        "botocore.exceptions.ConnectionError": Outcomes.CONNECTION,
        "botocore.exceptions.EndpointConnectionError": Outcomes.CONNECTION,
        "botocore.exceptions.ConnectionClosedError": Outcomes.CONNECTION,
        "botocore.exceptions.ReadTimeoutError": Outcomes.TIMEOUT,
        "botocore.exceptions.ConnectTimeoutError": Outcomes.TIMEOUT,
        "botocore.exceptions.NoCredentialsError": Outcomes.AUTH_FAILED,
        "botocore.exceptions.PartialCredentialsError": Outcomes.AUTH_FAILED,
        **AWS_EXCEPTION_RULES,  # botocore.errorfactory.<Code>: the generated class is named after the code
        # google-api-core (gRPC errors carry no HTTP response, so their names are mapped)
        "google.api_core.exceptions.ResourceExhausted": Outcomes.RATE_LIMITED,
        "google.api_core.exceptions.TooManyRequests": Outcomes.RATE_LIMITED,
        "google.api_core.exceptions.ServiceUnavailable": Outcomes.UNAVAILABLE,
        "google.api_core.exceptions.InternalServerError": Outcomes.UNAVAILABLE,
        "google.api_core.exceptions.BadGateway": Outcomes.UNAVAILABLE,
        "google.api_core.exceptions.DeadlineExceeded": Outcomes.TIMEOUT,
        "google.api_core.exceptions.GatewayTimeout": Outcomes.TIMEOUT,
        "google.api_core.exceptions.RetryError": Outcomes.TIMEOUT,
        "google.api_core.exceptions.Aborted": Outcomes.CONFLICT,
        "google.api_core.exceptions.Unauthorized": Outcomes.AUTH_FAILED,
        "google.api_core.exceptions.Forbidden": Outcomes.AUTH_FAILED,
        "google.api_core.exceptions.NotFound": Outcomes.NOT_FOUND,
        "google.api_core.exceptions.BadRequest": Outcomes.INVALID_INPUT,
        # python-telegram-bot (https://docs.python-telegram-bot.org/en/stable/telegram.error.html)
        "telegram.error.RetryAfter": Outcomes.RATE_LIMITED,  # flood control; the wait is in its message
        "telegram.error.TimedOut": Outcomes.TIMEOUT,
        "telegram.error.NetworkError": Outcomes.CONNECTION,
        # PyTorch (torch.cuda.OutOfMemoryError became an alias of torch.OutOfMemoryError)
        "torch.OutOfMemoryError": Outcomes.GPU,
        "torch.cuda.OutOfMemoryError": Outcomes.GPU,
    }
)

#: Wrapper exceptions and the attribute holding the original error, which is classified first (with
#: every rule); only if nothing matches the original does the wrapper's own entry apply.
WRAPPED_EXCEPTION_ATTRIBUTES: Mapping[str, str] = MappingProxyType(
    {
        "sqlalchemy.exc.StatementError": "orig",  # DBAPIError and its subclasses
        "urllib3.exceptions.MaxRetryError": "reason",
        **BROKER_WRAPPED_ATTRIBUTES,
        **CELERY_WRAPPED_ATTRIBUTES,
    }
)

#: The class whose ``errno`` is looked up in :data:`ERRNO_RULES` when the MRO walk reaches it.
ERRNO_EXCEPTION = "OSError"

#: ``OSError`` by errno name. Python raises most of the network ones as ``ConnectionError`` or
#: ``TimeoutError`` subclasses already (matched by name first); the rest arrive as plain ``OSError``.
ERRNO_RULES: Mapping[str, Outcome] = MappingProxyType(
    {
        "ENOSPC": Outcomes.DISK_FULL,
        "EDQUOT": Outcomes.DISK_FULL,
        "ENOMEM": Outcomes.OUT_OF_MEMORY,
        "EMFILE": Outcomes.OPEN_FILES,
        "ENFILE": Outcomes.OPEN_FILES,
        "ETIMEDOUT": Outcomes.TIMEOUT,
        "ECONNREFUSED": Outcomes.CONNECTION,
        "ECONNRESET": Outcomes.CONNECTION,
        "ECONNABORTED": Outcomes.CONNECTION,
        "EHOSTUNREACH": Outcomes.CONNECTION,
        "EHOSTDOWN": Outcomes.CONNECTION,
        "ENETUNREACH": Outcomes.CONNECTION,
        "ENETDOWN": Outcomes.CONNECTION,
        "ENETRESET": Outcomes.CONNECTION,
        "EPIPE": Outcomes.CONNECTION,
        "EAGAIN": Outcomes.CONNECTION,
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
