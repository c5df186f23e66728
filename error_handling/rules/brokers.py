"""Rules for brokers and caches: Redis replies by their code, AMQP 0-9-1 reply codes, and the exceptions
of redis-py (and its fork valkey-py), py-amqp and kombu. Names only: this module imports no library.

A Redis error reply starts with its code (``-WRONGTYPE Operation against a key ...``). redis-py keeps it
as ``status_code`` (and, for the codes it maps to a subclass, strips it from the message:
``BusyLoadingError("Redis is loading the dataset in memory")``); older versions leave an unmapped code at
the start of the message, which :data:`BROKER_MESSAGE_RULES` read. An AMQP error carries its reply code
(``reply_code``: py-amqp, pika). The decisions:

- ``OOM`` waits on memory; the server's ``max number of clients reached`` and the client pool's
  ``Too many connections`` wait for a connection (``pool_exhausted``), like PostgreSQL's.
- ``NOSCRIPT`` is a programming error: redis-py's ``Script`` objects reload a script the server lost and
  retry on their own, so a ``NOSCRIPT`` that reaches the task comes from a raw ``EVALSHA`` with no ``EVAL``
  fallback, and a retry sends the same ``EVALSHA`` to the same empty script cache.
- ``MOVED`` / ``ASK`` reach the task only when a plain client talks to a cluster (a cluster client
  follows them): the deployment's mistake.
- AMQP ``NOT_FOUND`` (a queue or exchange that was never declared), ``PRECONDITION_FAILED`` (a
  declaration that differs from the existing one, RabbitMQ's consumer timeout) and ``NOT_ALLOWED`` (a
  virtual host that does not exist) are configuration; ``CONNECTION_FORCED`` and the frame and channel
  errors end one connection (a new one works); ``RESOURCE_LOCKED`` is a conflict.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from error_handling.categories import Category, Reason
from error_handling.rules.outcome import CodeRule, MessageRule, Outcome, Outcomes

#: Redis error reply codes (the first word of the reply).
REDIS_REPLY_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        "LOADING": Outcomes.UNAVAILABLE,  # the server is loading its dataset after a restart
        "READONLY": Outcomes.UNAVAILABLE,  # a replica: a failover is under way
        "MASTERDOWN": Outcomes.UNAVAILABLE,  # a replica lost its master (replica-serve-stale-data no)
        "TRYAGAIN": Outcomes.UNAVAILABLE,  # a multi-key command during resharding
        "CLUSTERDOWN": Outcomes.UNAVAILABLE,  # a hash slot is not served
        "BUSY": Outcomes.UNAVAILABLE,  # a script or function is running past its time limit
        "MISCONF": Outcomes.UNAVAILABLE,  # the server cannot persist, so it refuses writes
        "NOREPLICAS": Outcomes.UNAVAILABLE,  # min-replicas-to-write not met
        "UNBLOCKED": Outcomes.CONNECTION,  # a blocked command was unblocked (CLIENT UNBLOCK, failover)
        "OOM": Outcomes.OUT_OF_MEMORY,  # used memory > maxmemory
        "NOSCRIPT": Outcomes.PROGRAMMING,
        "WRONGTYPE": Outcomes.PROGRAMMING,
        "CROSSSLOT": Outcomes.PROGRAMMING,
        "EXECABORT": Outcomes.PROGRAMMING,  # a command of the transaction was refused when queued
        "MOVED": Outcomes.CONFIGURATION,
        "ASK": Outcomes.CONFIGURATION,
        "NOAUTH": Outcomes.AUTH_FAILED,
        "WRONGPASS": Outcomes.AUTH_FAILED,
        "NOPERM": Outcomes.AUTH_FAILED,
        "NOGROUP": Outcomes.NOT_FOUND,  # a stream consumer group that was never created
    }
)

#: AMQP 0-9-1 reply codes (https://www.rabbitmq.com/amqp-0-9-1-reference.html#constants).
AMQP_REPLY_CODES: Mapping[str, Outcome] = MappingProxyType(
    {
        "311": Outcomes.TOO_LARGE,  # CONTENT_TOO_LARGE
        "312": Outcomes.CONFIGURATION,  # NO_ROUTE: a mandatory message no queue is bound for
        "313": Outcomes.UNAVAILABLE,  # NO_CONSUMERS
        "320": Outcomes.CONNECTION,  # CONNECTION_FORCED: an operator or a broker shutdown closed it
        "402": Outcomes.CONFIGURATION,  # INVALID_PATH: the virtual host
        "403": Outcomes.AUTH_FAILED,  # ACCESS_REFUSED
        "404": Outcomes.CONFIGURATION,  # NOT_FOUND: a queue or exchange that was never declared
        "405": Outcomes.CONFLICT,  # RESOURCE_LOCKED: an exclusive queue held by another connection
        "406": Outcomes.CONFIGURATION,  # PRECONDITION_FAILED: inequivalent declarations, consumer timeout
        "501": Outcomes.CONNECTION,  # FRAME_ERROR
        "502": Outcomes.CONNECTION,  # SYNTAX_ERROR
        "503": Outcomes.CONNECTION,  # COMMAND_INVALID
        "504": Outcomes.CONNECTION,  # CHANNEL_ERROR
        "505": Outcomes.CONNECTION,  # UNEXPECTED_FRAME
        "506": Outcome(Category.RESOURCE, Reason.RESOURCE_UNAVAILABLE, "broker"),  # RESOURCE_ERROR
        "530": Outcomes.CONFIGURATION,  # NOT_ALLOWED: a virtual host that does not exist
        "540": Outcomes.NOT_SUPPORTED,  # NOT_IMPLEMENTED
        "541": Outcomes.UNAVAILABLE,  # INTERNAL_ERROR
    }
)

_REDIS_LIBRARIES = ("redis", "valkey")

#: The code rules of this module (listed in :data:`~error_handling.rules.codes.CODE_RULES`).
BROKER_CODE_RULES: tuple[CodeRule, ...] = (
    CodeRule(
        "redis",
        ("status_code",),
        REDIS_REPLY_CODES.get,
        frozenset(f"{lib}.exceptions.RedisError" for lib in _REDIS_LIBRARIES),
    ),
    CodeRule(
        "amqp",
        ("reply_code", "code"),
        AMQP_REPLY_CODES.get,
        frozenset(
            {
                "amqp.exceptions.AMQPError",
                "pika.exceptions.ChannelClosedByBroker",
                "pika.exceptions.ConnectionClosedByBroker",
            }
        ),
    ),
)

_REDIS_ERRORS: Mapping[str, Outcome] = {
    "ConnectionError": Outcomes.CONNECTION,
    "TimeoutError": Outcomes.TIMEOUT,
    "InvalidResponse": Outcomes.CONNECTION,  # a protocol error: the connection is dropped
    "BusyLoadingError": Outcomes.UNAVAILABLE,
    "ReadOnlyError": Outcomes.UNAVAILABLE,
    "ClusterError": Outcomes.UNAVAILABLE,  # also "TTL exhausted." after too many redirections
    "TryAgainError": Outcomes.UNAVAILABLE,
    "SlotNotCoveredError": Outcomes.UNAVAILABLE,
    "RedisClusterUnreachableError": Outcomes.CONNECTION,
    "OutOfMemoryError": Outcomes.OUT_OF_MEMORY,
    "MaxConnectionsError": Outcomes.POOL,  # the client's pool: "Too many connections"
    "MaxClientsReachedError": Outcomes.POOL,  # the server's maxclients
    "AuthenticationError": Outcomes.AUTH_FAILED,  # a ConnectionError subclass
    "AuthorizationError": Outcomes.AUTH_FAILED,  # a ConnectionError subclass
    "NoPermissionError": Outcomes.AUTH_FAILED,
    "NoScriptError": Outcomes.PROGRAMMING,
    "ExecAbortError": Outcomes.PROGRAMMING,
    "ClusterCrossSlotError": Outcomes.PROGRAMMING,
    "CrossSlotTransactionError": Outcomes.PROGRAMMING,
    "DataError": Outcomes.PROGRAMMING,  # "Invalid input of type: 'dict'": the code passed a wrong type
    "AskError": Outcomes.CONFIGURATION,  # also MovedError
    "ModuleError": Outcomes.CONFIGURATION,
    "WatchError": Outcomes.CONFLICT,  # a watched key changed: the transaction is to be run again
    "LockError": Outcomes.CONFLICT,  # "Unable to acquire lock within the time specified"
    "ResponseError": Outcomes.PERMANENT,
}

#: Exceptions of redis-py, valkey-py, py-amqp and kombu by qualified name.
BROKER_EXCEPTION_RULES: Mapping[str, Outcome] = MappingProxyType(
    {
        **{f"{lib}.exceptions.{name}": o for lib in _REDIS_LIBRARIES for name, o in _REDIS_ERRORS.items()},
        # py-amqp (an error with a reply code is decided by its code first)
        "amqp.exceptions.ConnectionError": Outcomes.CONNECTION,
        "amqp.exceptions.RecoverableConnectionError": Outcomes.CONNECTION,
        "amqp.exceptions.RecoverableChannelError": Outcomes.CONNECTION,
        "amqp.exceptions.ConnectionForced": Outcomes.CONNECTION,
        "amqp.exceptions.AccessRefused": Outcomes.AUTH_FAILED,
        "amqp.exceptions.NotFound": Outcomes.CONFIGURATION,
        "amqp.exceptions.PreconditionFailed": Outcomes.CONFIGURATION,
        "amqp.exceptions.NotAllowed": Outcomes.CONFIGURATION,
        "amqp.exceptions.MessageNacked": Outcomes.UNAVAILABLE,  # a publisher confirm came back negative
        # kombu (OperationalError's cause, when it has one, is classified first)
        "kombu.exceptions.OperationalError": Outcomes.CONNECTION,
        "kombu.exceptions.InconsistencyError": Outcomes.UNAVAILABLE,  # a binding key vanished from Redis
        "kombu.exceptions.LimitExceeded": Outcomes.POOL,  # ConnectionLimitExceeded, ChannelLimitExceeded
        "kombu.exceptions.ContentDisallowed": Outcomes.CONFIGURATION,  # a serializer not in accept_content
        "kombu.exceptions.SerializerNotInstalled": Outcomes.CONFIGURATION,
        "kombu.exceptions.EncodeError": Outcomes.PROGRAMMING,  # "Object of type X is not JSON serializable"
        "kombu.exceptions.DecodeError": Outcomes.INVALID_INPUT,
        "kombu.exceptions.MessageStateError": Outcomes.PROGRAMMING,  # acked twice
        "kombu.exceptions.NotBoundError": Outcomes.PROGRAMMING,
    }
)

#: Wrappers of this module and the attribute holding the original error (classified first).
BROKER_WRAPPED_ATTRIBUTES: Mapping[str, str] = MappingProxyType(
    {"kombu.exceptions.OperationalError": "__cause__"}  # raise OperationalError(str(exc)) from exc
)


def _starting(texts: Iterable[str], *, anywhere: bool = False) -> re.Pattern[str]:
    """A pattern for a message that starts with (or, ``anywhere``, contains) one of ``texts``."""
    alternatives = "|".join(re.escape(text) for text in texts)
    return re.compile(f"(?:{alternatives})" if anywhere else rf"^(?:{alternatives})\b")


def _by_outcome(codes: Mapping[str, Outcome]) -> list[tuple[Outcome, tuple[str, ...]]]:
    grouped: dict[Outcome, tuple[str, ...]] = {}
    for code, outcome in codes.items():
        grouped[outcome] = (*grouped.get(outcome, ()), code)
    return list(grouped.items())


_RESPONSE = frozenset(f"{lib}.exceptions.ResponseError" for lib in _REDIS_LIBRARIES)
_CONNECTION = frozenset(f"{lib}.exceptions.ConnectionError" for lib in _REDIS_LIBRARIES)
_LOCK = frozenset(f"{lib}.exceptions.LockError" for lib in _REDIS_LIBRARIES)

#: Rules on messages: the reply code at the start of a ``ResponseError``'s message (redis-py before it kept
#: ``status_code``), the server's and the pool's connection limits, and misuse of a lock.
BROKER_MESSAGE_RULES: tuple[MessageRule, ...] = (
    *(
        MessageRule(f"redis_reply_{o.reason.value}", _starting(codes), o, _RESPONSE)
        for o, codes in _by_outcome(REDIS_REPLY_CODES)
    ),
    MessageRule("redis_max_clients", _starting(("max number of clients reached",)), Outcomes.POOL, _RESPONSE),
    MessageRule(
        "redis_command_misuse",
        _starting(("unknown command", "wrong number of arguments", "syntax error"), anywhere=True),
        Outcomes.PROGRAMMING,
        _RESPONSE,
    ),
    MessageRule(
        "redis_pool_exhausted",
        _starting(("Too many connections", "No connection available", "max number of clients reached")),
        Outcomes.POOL,
        _CONNECTION,
    ),
    MessageRule(
        "redis_lock_misuse",
        _starting(
            (
                "Cannot release an unlocked lock",
                "Cannot extend a lock with no timeout",
                "Cannot reacquire a lock with no timeout",
                "Cannot extend an unlocked lock",
                "Cannot reacquire an unlocked lock",
            )
        ),
        Outcomes.PROGRAMMING,
        _LOCK,
    ),
)
