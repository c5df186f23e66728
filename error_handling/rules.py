"""The built-in classification rules, as data tables.

Every table maps something an error shows to an :class:`Outcome` (a category, a reason and, for the
``resource`` category, optionally the resource gate to wait on). Foreign exceptions are named by
their qualified class name (``module.QualName`` as :func:`error_handling.fingerprint.qualified_name`
spells it, so builtins have no module) and matched along the MRO, so this module imports no library.

Tables, in the order the classifier consults them (see :mod:`error_handling.classifier`):

- :data:`WRAPPED_EXCEPTION_ATTRIBUTES`: wrappers whose wrapped original is classified first;
- :data:`PROVIDER_ERROR_CODES`, :data:`HTTP_STATUS_RULES`, :data:`HTTP_STATUS_CLASS_RULES`: for errors
  that carry an HTTP status (or a provider error body);
- :data:`MESSAGE_RULES` scoped to an exception name, :data:`EXCEPTION_RULES`, :data:`ERRNO_RULES`: the
  walk along the MRO;
- :data:`MESSAGE_RULES` for any exception: after the walk found nothing.

Decisions worth knowing (each is a row below, easy to change):

- ``billiard.exceptions.WorkerLostError`` (the child process died, often killed) is transient
  ``service_unavailable``: the infrastructure running the task failed, not a network connection.
- Redis ``ResponseError`` (wrong type, bad syntax, script error) is permanent: the server will refuse
  the same command again. Its retryable forms (``LOADING``, ``READONLY``, ``TRYAGAIN``, ``CLUSTERDOWN``,
  ``MASTERDOWN``) are transient, and ``OOM command not allowed`` waits on ``memory``; newer redis-py
  raises dedicated subclasses for these, older ones only the message, so both are matched.
- Database integrity and data errors (``UniqueViolation``, ``ForeignKeyViolation``, ``DataError``: a
  value too long, out of range or malformed) are ``validation``: retrying the same input cannot help.
  Deadlocks, serialization failures and lock timeouts are transient ``conflict``. Generic
  ``OperationalError`` / ``InterfaceError`` are transient ``connection``, but authentication failures
  (SQLSTATE class 28, ``InsufficientPrivilege``) are permanent ``auth_failed`` and ``DiskFull`` /
  ``OutOfMemory`` are resources. ``ProgrammingError`` (syntax, undefined table) is left unclassified:
  it is a bug, and unclassified failures get a small retry budget then the dead-letter queue.
- ``FileNotFoundError`` is permanent ``not_found`` and ``PermissionError`` permanent ``auth_failed``,
  like HTTP 404 and 403. ``ValueError``, ``TypeError``, ``KeyError`` and ``json.JSONDecodeError`` are
  not classified: they are usually bugs.
- HTTP 4xx statuses not listed are permanent ``permanent_failure`` (the server understood and refused;
  sending the same request again will not change its mind). 501 is permanent ``not_supported``; every
  other 5xx is transient ``service_unavailable``. 409 and 423 are transient ``conflict``; 414 and 431
  are ``payload_too_large``; 402 waits on the ``quota`` resource; 507 on ``disk``.
- AWS answers throttling with HTTP 400 and an error code; those codes are transient ``rate_limited``
  so a throttled call is not failed as invalid input.
- Resource errors of a remote server (Redis OOM, Postgres ``DiskFull``) wait on the generic ``memory``
  / ``disk`` gates: the wait is bounded by the resource-wait timeout, and a task whose error names its
  own resource (:class:`~error_handling.exceptions.ResourceError`) waits on that one instead.
"""

from __future__ import annotations

import dataclasses
import errno
import re
from collections.abc import Mapping
from types import MappingProxyType

from error_handling.categories import DEFAULT_RESOURCE_FOR_REASON, Category, Reason

__all__ = [
    "ERRNO_BY_NUMBER",
    "ERRNO_EXCEPTION",
    "ERRNO_RULES",
    "EXCEPTION_RULES",
    "HTTP_STATUS_CLASS_RULES",
    "HTTP_STATUS_RULES",
    "MESSAGE_RULES",
    "MESSAGE_RULES_BY_EXCEPTION",
    "PROVIDER_ERROR_CODES",
    "UNCLASSIFIED",
    "UNSCOPED_MESSAGE_RULES",
    "WRAPPED_EXCEPTION_ATTRIBUTES",
    "MessageRule",
    "Outcome",
    "all_outcomes",
]


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """The verdict of a built-in rule.

    Attributes:
        category: the route the failure takes.
        reason: the stable reason code.
        resource: for the ``resource`` category, the gate to wait on; ``None`` means the reason's
            default (:data:`~error_handling.categories.DEFAULT_RESOURCE_FOR_REASON`).
    """

    category: Category
    reason: Reason
    resource: str | None = None

    def resource_name(self) -> str | None:
        """Return the resource gate to wait on (``None`` unless the category is ``resource``)."""
        if self.category is not Category.RESOURCE:
            return None
        return self.resource or DEFAULT_RESOURCE_FOR_REASON.get(
            self.reason.value, DEFAULT_RESOURCE_FOR_REASON[Reason.RESOURCE_UNAVAILABLE.value]
        )


@dataclasses.dataclass(frozen=True, slots=True)
class MessageRule:
    """A built-in rule on the message (``str(exc)``) of an error.

    Attributes:
        name: a short name, shown as ``message:<name>`` in a classification's ``rule``.
        pattern: the regular expression searched in the message.
        outcome: the verdict when it matches.
        exceptions: qualified names it is scoped to (matched along the MRO, before the class's own
            entry in :data:`EXCEPTION_RULES`); empty means any exception, tried after the MRO walk.
    """

    name: str
    pattern: re.Pattern[str]
    outcome: Outcome
    exceptions: frozenset[str] = frozenset()


_T, _R, _V, _P = Category.TRANSIENT, Category.RESOURCE, Category.VALIDATION, Category.PERMANENT

_TIMEOUT = Outcome(_T, Reason.TIMEOUT)
_CONNECTION = Outcome(_T, Reason.CONNECTION)
_RATE_LIMITED = Outcome(_T, Reason.RATE_LIMITED)
_UNAVAILABLE = Outcome(_T, Reason.SERVICE_UNAVAILABLE)
_CONFLICT = Outcome(_T, Reason.CONFLICT)
_QUOTA = Outcome(_R, Reason.QUOTA_EXCEEDED)
_OUT_OF_MEMORY = Outcome(_R, Reason.OUT_OF_MEMORY)
_DISK_FULL = Outcome(_R, Reason.DISK_FULL)
_GPU = Outcome(_R, Reason.GPU_UNAVAILABLE)
_OPEN_FILES = Outcome(_R, Reason.TOO_MANY_OPEN_FILES)
_INVALID_INPUT = Outcome(_V, Reason.INVALID_INPUT)
_TOO_LARGE = Outcome(_V, Reason.PAYLOAD_TOO_LARGE)
_CONTENT_POLICY = Outcome(_V, Reason.CONTENT_POLICY)
_AUTH_FAILED = Outcome(_P, Reason.AUTH_FAILED)
_NOT_FOUND = Outcome(_P, Reason.NOT_FOUND)
_NOT_SUPPORTED = Outcome(_P, Reason.NOT_SUPPORTED)
_PERMANENT = Outcome(_P, Reason.PERMANENT_FAILURE)

#: What an error no rule matches becomes (retried with the unclassified budget, then dead-lettered).
UNCLASSIFIED = Outcome(_T, Reason.UNCLASSIFIED)

#: Errors of the official OpenAI and Anthropic SDKs (both export these names from the package root).
_LLM_SDK_ERRORS: Mapping[str, Outcome] = {
    "APITimeoutError": _TIMEOUT,
    "APIConnectionError": _CONNECTION,
    "RateLimitError": _RATE_LIMITED,
    "InternalServerError": _UNAVAILABLE,
    "AuthenticationError": _AUTH_FAILED,
    "PermissionDeniedError": _AUTH_FAILED,
    "NotFoundError": _NOT_FOUND,
    "BadRequestError": _INVALID_INPUT,
    "UnprocessableEntityError": _INVALID_INPUT,
    "ConflictError": _CONFLICT,
}

#: PostgreSQL errors by class name; psycopg 3 and psycopg2 both define them in their ``errors`` module.
_POSTGRES_ERRORS: Mapping[str, Outcome] = {
    "DeadlockDetected": _CONFLICT,
    "SerializationFailure": _CONFLICT,
    "LockNotAvailable": _CONFLICT,
    "TransactionRollback": _CONFLICT,
    "QueryCanceled": _TIMEOUT,
    "TooManyConnections": _CONNECTION,
    "DiskFull": _DISK_FULL,
    "OutOfMemory": _OUT_OF_MEMORY,
    "InvalidPassword": _AUTH_FAILED,
    "InvalidAuthorizationSpecification": _AUTH_FAILED,
    "InsufficientPrivilege": _AUTH_FAILED,
    "UniqueViolation": _INVALID_INPUT,
}

#: The DB-API base classes of both PostgreSQL drivers (exported by ``psycopg`` and ``psycopg2``).
_DBAPI_ERRORS: Mapping[str, Outcome] = {
    "OperationalError": _CONNECTION,
    "InterfaceError": _CONNECTION,
    "IntegrityError": _INVALID_INPUT,
    "DataError": _INVALID_INPUT,
}

#: Exceptions by qualified name. The most specific class of an error's MRO that has an entry wins.
EXCEPTION_RULES: Mapping[str, Outcome] = MappingProxyType(
    {
        # Python
        "TimeoutError": _TIMEOUT,  # also socket.timeout, asyncio.TimeoutError
        "ConnectionError": _CONNECTION,  # refused, reset, aborted, broken pipe
        "MemoryError": _OUT_OF_MEMORY,
        "FileNotFoundError": _NOT_FOUND,
        "PermissionError": _AUTH_FAILED,
        "socket.gaierror": _CONNECTION,  # DNS resolution
        "socket.herror": _CONNECTION,
        "ssl.SSLError": _CONNECTION,
        "ssl.SSLCertVerificationError": _PERMANENT,
        "http.client.RemoteDisconnected": _CONNECTION,
        "http.client.IncompleteRead": _CONNECTION,
        "http.client.BadStatusLine": _CONNECTION,
        "urllib.error.URLError": _CONNECTION,
        "subprocess.TimeoutExpired": _TIMEOUT,
        # Celery, billiard (celery.exceptions re-exports billiard's classes), kombu, amqp
        "billiard.exceptions.SoftTimeLimitExceeded": _TIMEOUT,
        "celery.exceptions.SoftTimeLimitExceeded": _TIMEOUT,
        "billiard.exceptions.TimeLimitExceeded": _TIMEOUT,
        "celery.exceptions.TimeLimitExceeded": _TIMEOUT,
        "billiard.exceptions.WorkerLostError": _UNAVAILABLE,
        "celery.exceptions.WorkerLostError": _UNAVAILABLE,
        "celery.exceptions.TimeoutError": _TIMEOUT,
        "kombu.exceptions.OperationalError": _CONNECTION,
        "amqp.exceptions.RecoverableConnectionError": _CONNECTION,
        "amqp.exceptions.ConnectionForced": _CONNECTION,
        "amqp.exceptions.AccessRefused": _AUTH_FAILED,
        # redis-py
        "redis.exceptions.ConnectionError": _CONNECTION,
        "redis.exceptions.TimeoutError": _TIMEOUT,
        "redis.exceptions.BusyLoadingError": _UNAVAILABLE,
        "redis.exceptions.ReadOnlyError": _UNAVAILABLE,
        "redis.exceptions.ClusterError": _UNAVAILABLE,
        "redis.exceptions.TryAgainError": _UNAVAILABLE,
        "redis.exceptions.OutOfMemoryError": _OUT_OF_MEMORY,
        "redis.exceptions.AuthenticationError": _AUTH_FAILED,  # a ConnectionError subclass
        "redis.exceptions.AuthorizationError": _AUTH_FAILED,  # a ConnectionError subclass
        "redis.exceptions.NoPermissionError": _AUTH_FAILED,
        "redis.exceptions.ResponseError": _PERMANENT,
        # PostgreSQL: psycopg 3, psycopg2, the psycopg pool
        **{f"{driver}.errors.{name}": o for driver in ("psycopg", "psycopg2") for name, o in _POSTGRES_ERRORS.items()},
        **{f"{driver}.{name}": o for driver in ("psycopg", "psycopg2") for name, o in _DBAPI_ERRORS.items()},
        "psycopg2.extensions.TransactionRollbackError": _CONFLICT,
        "psycopg2.extensions.QueryCanceledError": _TIMEOUT,
        "psycopg_pool.PoolTimeout": _TIMEOUT,
        "psycopg_pool.errors.PoolTimeout": _TIMEOUT,
        # SQLite (the embedded default); "database is locked" and "disk is full" are message rules
        "sqlite3.IntegrityError": _INVALID_INPUT,
        "sqlite3.DataError": _INVALID_INPUT,
        # SQLAlchemy (its DBAPIError wraps the driver's error, which is classified first)
        "sqlalchemy.exc.OperationalError": _CONNECTION,
        "sqlalchemy.exc.InterfaceError": _CONNECTION,
        "sqlalchemy.exc.DisconnectionError": _CONNECTION,
        "sqlalchemy.exc.TimeoutError": _TIMEOUT,  # connection pool exhausted
        "sqlalchemy.exc.IntegrityError": _INVALID_INPUT,
        "sqlalchemy.exc.DataError": _INVALID_INPUT,
        # httpx (HTTPStatusError is classified by its response's status)
        "httpx.TimeoutException": _TIMEOUT,
        "httpx.ReadTimeout": _TIMEOUT,
        "httpx.ConnectTimeout": _TIMEOUT,
        "httpx.WriteTimeout": _TIMEOUT,
        "httpx.PoolTimeout": _TIMEOUT,
        "httpx.NetworkError": _CONNECTION,
        "httpx.ConnectError": _CONNECTION,
        "httpx.ReadError": _CONNECTION,
        "httpx.WriteError": _CONNECTION,
        "httpx.RemoteProtocolError": _CONNECTION,
        "httpx.ProxyError": _CONNECTION,
        # requests (HTTPError is classified by its response's status)
        "requests.exceptions.Timeout": _TIMEOUT,
        "requests.exceptions.ReadTimeout": _TIMEOUT,
        "requests.exceptions.ConnectTimeout": _TIMEOUT,  # also a ConnectionError: listed to win
        "requests.exceptions.ConnectionError": _CONNECTION,
        "requests.exceptions.ChunkedEncodingError": _CONNECTION,
        # urllib3 (MaxRetryError's reason is classified first)
        "urllib3.exceptions.TimeoutError": _TIMEOUT,
        "urllib3.exceptions.ReadTimeoutError": _TIMEOUT,
        "urllib3.exceptions.ConnectTimeoutError": _TIMEOUT,
        "urllib3.exceptions.NewConnectionError": _CONNECTION,  # a ConnectTimeoutError subclass
        "urllib3.exceptions.ProtocolError": _CONNECTION,
        "urllib3.exceptions.SSLError": _CONNECTION,
        "urllib3.exceptions.ProxyError": _CONNECTION,
        "urllib3.exceptions.MaxRetryError": _CONNECTION,
        "urllib3.exceptions.ResponseError": _UNAVAILABLE,  # "too many error responses"
        # aiohttp (ClientResponseError is classified by its status)
        "aiohttp.client_exceptions.ClientConnectionError": _CONNECTION,
        "aiohttp.client_exceptions.ServerTimeoutError": _TIMEOUT,
        "aiohttp.client_exceptions.ClientPayloadError": _CONNECTION,
        # OpenAI and Anthropic SDKs (a status and body, when present, are more specific)
        **{f"{sdk}.{name}": outcome for sdk in ("openai", "anthropic") for name, outcome in _LLM_SDK_ERRORS.items()},
        "openai.ContentFilterFinishReasonError": _CONTENT_POLICY,
        "anthropic.OverloadedError": _UNAVAILABLE,
        "anthropic.ServiceUnavailableError": _UNAVAILABLE,
        "anthropic.DeadlineExceededError": _TIMEOUT,
        "anthropic.RequestTooLargeError": _TOO_LARGE,
        # botocore (ClientError is classified by its response's status and error code)
        "botocore.exceptions.ConnectionError": _CONNECTION,
        "botocore.exceptions.EndpointConnectionError": _CONNECTION,
        "botocore.exceptions.ConnectionClosedError": _CONNECTION,
        "botocore.exceptions.ReadTimeoutError": _TIMEOUT,
        "botocore.exceptions.ConnectTimeoutError": _TIMEOUT,
        "botocore.exceptions.NoCredentialsError": _AUTH_FAILED,
        "botocore.exceptions.PartialCredentialsError": _AUTH_FAILED,
        # google-api-core (gRPC errors carry no HTTP response, so their names are mapped)
        "google.api_core.exceptions.ResourceExhausted": _RATE_LIMITED,
        "google.api_core.exceptions.TooManyRequests": _RATE_LIMITED,
        "google.api_core.exceptions.ServiceUnavailable": _UNAVAILABLE,
        "google.api_core.exceptions.InternalServerError": _UNAVAILABLE,
        "google.api_core.exceptions.BadGateway": _UNAVAILABLE,
        "google.api_core.exceptions.DeadlineExceeded": _TIMEOUT,
        "google.api_core.exceptions.GatewayTimeout": _TIMEOUT,
        "google.api_core.exceptions.RetryError": _TIMEOUT,
        "google.api_core.exceptions.Aborted": _CONFLICT,
        "google.api_core.exceptions.Unauthorized": _AUTH_FAILED,
        "google.api_core.exceptions.Forbidden": _AUTH_FAILED,
        "google.api_core.exceptions.NotFound": _NOT_FOUND,
        "google.api_core.exceptions.BadRequest": _INVALID_INPUT,
        # PyTorch (torch.cuda.OutOfMemoryError became an alias of torch.OutOfMemoryError)
        "torch.OutOfMemoryError": _GPU,
        "torch.cuda.OutOfMemoryError": _GPU,
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
        "ENOSPC": _DISK_FULL,
        "EDQUOT": _DISK_FULL,
        "ENOMEM": _OUT_OF_MEMORY,
        "EMFILE": _OPEN_FILES,
        "ENFILE": _OPEN_FILES,
        "ETIMEDOUT": _TIMEOUT,
        "ECONNREFUSED": _CONNECTION,
        "ECONNRESET": _CONNECTION,
        "ECONNABORTED": _CONNECTION,
        "EHOSTUNREACH": _CONNECTION,
        "EHOSTDOWN": _CONNECTION,
        "ENETUNREACH": _CONNECTION,
        "ENETDOWN": _CONNECTION,
        "ENETRESET": _CONNECTION,
        "EPIPE": _CONNECTION,
        "EAGAIN": _CONNECTION,
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

#: HTTP statuses with a meaning of their own.
HTTP_STATUS_RULES: Mapping[int, Outcome] = MappingProxyType(
    {
        400: _INVALID_INPUT,
        401: _AUTH_FAILED,
        402: _QUOTA,
        403: _AUTH_FAILED,
        404: _NOT_FOUND,
        405: _NOT_SUPPORTED,
        408: _TIMEOUT,
        409: _CONFLICT,
        410: _NOT_FOUND,
        413: _TOO_LARGE,
        414: _TOO_LARGE,
        415: _INVALID_INPUT,
        422: _INVALID_INPUT,
        423: _CONFLICT,
        425: _UNAVAILABLE,
        429: _RATE_LIMITED,
        431: _TOO_LARGE,
        500: _UNAVAILABLE,
        501: _NOT_SUPPORTED,
        502: _UNAVAILABLE,
        503: _UNAVAILABLE,
        504: _TIMEOUT,
        507: _DISK_FULL,
        529: _UNAVAILABLE,  # Anthropic: overloaded
    }
)

#: Every other error status, by its hundreds digit (``4`` for 4xx, ``5`` for 5xx).
HTTP_STATUS_CLASS_RULES: Mapping[int, Outcome] = MappingProxyType({4: _PERMANENT, 5: _UNAVAILABLE})

#: Error codes (or types) providers put in error bodies, compared case-insensitively. They are more
#: specific than the status: OpenAI answers an exhausted quota with 429 ``insufficient_quota``, which
#: must wait on the quota, not be retried as a rate limit.
PROVIDER_ERROR_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        # OpenAI (and Azure OpenAI)
        "insufficient_quota": _QUOTA,
        "billing_hard_limit_reached": _QUOTA,
        "context_length_exceeded": _TOO_LARGE,
        "content_policy_violation": _CONTENT_POLICY,
        "content_filter": _CONTENT_POLICY,
        "rate_limit_exceeded": _RATE_LIMITED,
        # Anthropic
        "overloaded_error": _UNAVAILABLE,
        "rate_limit_error": _RATE_LIMITED,
        # Anthropic: billing problems (402)
        "billing_error": _QUOTA,
        # Google (Gemini API, Vertex AI): google.rpc status names and ErrorInfo reasons
        "api_key_invalid": _AUTH_FAILED,
        "api_key_expired": _AUTH_FAILED,
        "failed_precondition": _PERMANENT,  # e.g. the free tier is not available here: enable billing
        "deadline_exceeded": _TIMEOUT,
        # AWS Bedrock runtime (https://docs.aws.amazon.com/bedrock/latest/APIReference/)
        "servicequotaexceededexception": _QUOTA,
        "modelnotreadyexception": _UNAVAILABLE,
        "modeltimeoutexception": _TIMEOUT,
        "modelerrorexception": _UNAVAILABLE,
        "modelstreamerrorexception": _UNAVAILABLE,
        "expiredtokenexception": _AUTH_FAILED,
        "unrecognizedclientexception": _AUTH_FAILED,
        "accessdeniedexception": _AUTH_FAILED,
        # AWS (throttling comes as HTTP 400)
        "throttling": _RATE_LIMITED,
        "throttlingexception": _RATE_LIMITED,
        "toomanyrequestsexception": _RATE_LIMITED,
        "requestlimitexceeded": _RATE_LIMITED,
        "slowdown": _RATE_LIMITED,
        "provisionedthroughputexceededexception": _RATE_LIMITED,
    }
)

#: Rules on the message of a provider's error body, for codes too generic to tell (Anthropic and AWS
#: answer an over-long prompt with the generic ``invalid_request_error`` / ``ValidationException``).
PROVIDER_MESSAGE_RULES: tuple[tuple[str, re.Pattern[str], Outcome], ...] = (
    (
        "context_too_long",
        re.compile(r"prompt is too long|input is too long|maximum context length|too many (?:input )?tokens", re.I),
        _TOO_LARGE,
    ),
    ("credit_balance_too_low", re.compile(r"credit balance is too low", re.I), _QUOTA),
)

#: A Google quota that resets daily (or later) is exhausted: waiting on the quota, not a quick retry.
GOOGLE_LONG_QUOTA = re.compile(r"per_?day|perday|per_?month|permonth", re.I)

_REDIS_RESPONSE = frozenset({"redis.exceptions.ResponseError"})
_SQLITE_OPERATIONAL = frozenset({"sqlite3.OperationalError"})

#: Rules on messages, for errors whose class says too little.
MESSAGE_RULES: tuple[MessageRule, ...] = (
    MessageRule("redis_oom", re.compile(r"^OOM command not allowed"), _OUT_OF_MEMORY, _REDIS_RESPONSE),
    MessageRule(
        "redis_unavailable",
        re.compile(r"^(?:LOADING|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b"),
        _UNAVAILABLE,
        _REDIS_RESPONSE,
    ),
    MessageRule("redis_auth", re.compile(r"^(?:NOAUTH|WRONGPASS|NOPERM)\b"), _AUTH_FAILED, _REDIS_RESPONSE),
    MessageRule("sqlite_locked", re.compile(r"database (?:table |schema )?is locked"), _CONFLICT, _SQLITE_OPERATIONAL),
    MessageRule("sqlite_full", re.compile(r"database or disk is full"), _DISK_FULL, _SQLITE_OPERATIONAL),
    MessageRule(
        "gpu_out_of_memory",
        re.compile(
            r"CUDA out of memory|CUDA error: out of memory|CUBLAS_STATUS_ALLOC_FAILED|MPS backend out of memory"
            r"|No CUDA GPUs are available|CUDA-capable device\(s\) is/are busy or unavailable",
        ),
        _GPU,
    ),
)


def _scoped(rules: tuple[MessageRule, ...]) -> Mapping[str, tuple[MessageRule, ...]]:
    table: dict[str, tuple[MessageRule, ...]] = {}
    for rule in rules:
        for name in rule.exceptions:
            table[name] = (*table.get(name, ()), rule)
    return MappingProxyType(table)


#: :data:`MESSAGE_RULES` that are scoped, by the exception name they are scoped to.
MESSAGE_RULES_BY_EXCEPTION: Mapping[str, tuple[MessageRule, ...]] = _scoped(MESSAGE_RULES)
#: :data:`MESSAGE_RULES` for any exception, tried when the MRO walk found nothing.
UNSCOPED_MESSAGE_RULES: tuple[MessageRule, ...] = tuple(r for r in MESSAGE_RULES if not r.exceptions)


def all_outcomes() -> list[tuple[str, Outcome]]:
    """Return every built-in rule as ``(description, outcome)``, for completeness checks and docs."""
    return [
        *((f"exception:{name}", o) for name, o in EXCEPTION_RULES.items()),
        *((f"errno:{name}", o) for name, o in ERRNO_RULES.items()),
        *((f"http:{status}", o) for status, o in HTTP_STATUS_RULES.items()),
        *((f"http:{digit}xx", o) for digit, o in HTTP_STATUS_CLASS_RULES.items()),
        *((f"body:{code}", o) for code, o in PROVIDER_ERROR_CODES.items()),
        *((f"body_message:{name}", o) for name, _, o in PROVIDER_MESSAGE_RULES),
        ("google_quota:per_day", _QUOTA),
        *((f"message:{rule.name}", rule.outcome) for rule in MESSAGE_RULES),
    ]
