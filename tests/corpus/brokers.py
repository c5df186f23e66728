"""Brokers, caches, Celery and the network: Redis replies as redis-py raises them (parsed from the server's
reply text by redis-py's own parser), AMQP errors as py-amqp builds them from a reply code (the texts are
RabbitMQ's, several of them read from the RabbitMQ that runs next to the tests), Celery's and billiard's
exceptions as the worker raises them, and TLS and redirect failures of the HTTP clients."""

from __future__ import annotations

import datetime as dt
import ssl
import urllib.error
from typing import Any

import amqp.exceptions
import billiard.exceptions
import celery.exceptions
import httpx
import kombu.exceptions
import kombu.serialization
import redis.exceptions
import requests
from redis._parsers.base import BaseParser

from error_handling.categories import Reason
from tests.corpus.shape import P, R, Shape, T, foreign, httpx_status_error, raised, shapes_of, with_attrs

# Redis server reply texts (server.c shared objects, cluster.c, networking.c, acl.c, t_stream.c of 7.0)
REDIS_SERVER = "https://github.com/redis/redis/blob/7.0/src/server.c"
REDIS_CLUSTER = "https://github.com/redis/redis/blob/7.0/src/cluster.c"
REDIS_NETWORKING = "https://github.com/redis/redis/blob/7.0/src/networking.c"
REDIS_ACL = "https://github.com/redis/redis/blob/7.0/src/acl.c"
REDIS_STREAM = "https://github.com/redis/redis/blob/7.0/src/t_stream.c"
REDIS_COMMANDS = "https://github.com/redis/redis/blob/7.0/src/server.c#L3700"
REDISPY_PARSER = "https://github.com/redis/redis-py/blob/master/redis/_parsers/base.py"
REDISPY_CONNECTION = "https://github.com/redis/redis-py/blob/master/redis/connection.py"
REDISPY_CLIENT = "https://github.com/redis/redis-py/blob/master/redis/client.py"
REDISPY_LOCK = "https://github.com/redis/redis-py/blob/master/redis/lock.py"
REDISPY_COMMANDS = "https://github.com/redis/redis-py/blob/master/redis/_parsers/encoders.py"


def reply(text: str) -> BaseException:
    """The exception redis-py raises for a server's error reply (``-`` and ``\\r\\n`` stripped)."""
    return BaseParser.parse_error(text)


def old_reply(text: str) -> BaseException:
    """The same reply as redis-py before 5.3 raised it when it had no subclass for the code: a plain
    ``ResponseError`` with the code at the start of its message and no ``status_code``."""
    exc = redis.exceptions.ResponseError(text)
    del exc.status_code
    return exc


_REDIS_CONNECTION_REFUSED = "Error 111 connecting to {}. Connection refused."

REDIS: list[Shape] = [
    *shapes_of(
        "redis",
        REDIS_SERVER,
        [
            (
                "redis:loading",
                lambda: reply("LOADING Redis is loading the dataset in memory"),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "redis:readonly",
                lambda: reply("READONLY You can't write against a read only replica."),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "redis:masterdown",
                lambda: reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "redis:busy_script",
                lambda: reply("BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "redis:busy_function",
                lambda: reply(
                    "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
                ),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "redis:busy_module",
                lambda: reply("BUSY Redis is busy running a module command."),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "redis:misconf",
                lambda: reply(
                    "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. "
                    "Commands that may modify the data set are disabled, because this instance is configured to report "
                    "errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check "
                    "the Redis logs for details about the RDB error."
                ),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "redis:noreplicas",
                lambda: reply("NOREPLICAS Not enough good replicas to write."),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "redis:oom",
                lambda: reply("OOM command not allowed when used memory > 'maxmemory'."),
                R,
                Reason.OUT_OF_MEMORY,
            ),
            (
                "redis:noscript",
                lambda: reply("NOSCRIPT No matching script. Please use EVAL."),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
            # WRONGTYPE has no subclass: before 5.3 redis-py left the code in the message, with no status_code
            (
                "redis:wrongtype",
                lambda: reply("WRONGTYPE Operation against a key holding the wrong kind of value"),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
            (
                "redis:wrongtype",
                lambda: old_reply("WRONGTYPE Operation against a key holding the wrong kind of value"),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
            (
                "redis:execabort",
                lambda: reply("EXECABORT Transaction discarded because of previous errors."),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
            ("redis:noauth", lambda: reply("NOAUTH Authentication required."), P, Reason.AUTH_FAILED),
        ],
    ),
    *shapes_of(
        "redis",
        REDIS_CLUSTER,
        [
            ("redis:clusterdown", lambda: reply("CLUSTERDOWN The cluster is down"), T, Reason.SERVICE_UNAVAILABLE),
            (
                "redis:clusterdown_slot",
                lambda: reply("CLUSTERDOWN Hash slot not served"),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "redis:tryagain",
                lambda: reply("TRYAGAIN Multiple keys request during rehashing of slot"),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "redis:crossslot",
                lambda: reply("CROSSSLOT Keys in request don't hash to the same slot"),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
            ("redis:moved", lambda: reply("MOVED 3999 127.0.0.1:6381"), P, Reason.INVALID_CONFIGURATION),
            ("redis:moved", lambda: reply("MOVED 12182 10.0.4.17:7002"), P, Reason.INVALID_CONFIGURATION),
            ("redis:ask", lambda: reply("ASK 3999 127.0.0.1:6381"), P, Reason.INVALID_CONFIGURATION),
            ("redis:ask", lambda: reply("ASK 866 10.0.4.12:7000"), P, Reason.INVALID_CONFIGURATION),
        ],
    ),
    *shapes_of(
        "redis",
        REDIS_NETWORKING,
        [("redis:max_clients", lambda: reply("ERR max number of clients reached"), R, Reason.POOL_EXHAUSTED)],
    ),
    *shapes_of(
        "redis",
        REDIS_ACL,
        [
            (
                "redis:wrongpass",
                lambda: reply("WRONGPASS invalid username-password pair or user is disabled."),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "redis:noperm",
                lambda: reply("NOPERM User alice has no permissions to run the 'set' command"),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "redis:noperm",
                lambda: reply("NOPERM User alice has no permissions to run the 'flushdb' command"),
                P,
                Reason.AUTH_FAILED,
            ),
        ],
    ),
    *shapes_of(
        "redis",
        REDIS_STREAM,
        [
            (
                "redis:nogroup",
                lambda: reply(
                    "NOGROUP No such key 'events' or consumer group 'workers' in XREADGROUP with GROUP option"
                ),
                P,
                Reason.NOT_FOUND,
            ),
            (
                "redis:nogroup",
                lambda: reply("NOGROUP No such key 'jobs:17' or consumer group 'g2' in XREADGROUP with GROUP option"),
                P,
                Reason.NOT_FOUND,
            ),
        ],
    ),
    *shapes_of(
        "redis",
        REDIS_COMMANDS,
        [
            (
                "redis:unknown_command",
                lambda: reply("ERR unknown command 'JSON.SET', with args beginning with: 'doc' '$' "),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
            (
                "redis:unknown_command",
                lambda: reply("ERR unknown command 'FT.SEARCH', with args beginning with: 'idx' '*' "),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
            (
                "redis:arity",
                lambda: reply("ERR wrong number of arguments for 'set' command"),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
            (
                "redis:arity",
                lambda: reply("ERR wrong number of arguments for 'hset' command"),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
            ("redis:syntax", lambda: reply("ERR syntax error"), P, Reason.PROGRAMMING_ERROR),
        ],
    ),
    *shapes_of(
        "redis",
        REDISPY_CLIENT,
        [
            (
                "redis:pipeline_unknown_command",
                lambda: with_attrs(
                    redis.exceptions.ResponseError(
                        "Command # 2 (FOO) of pipeline caused error: unknown command 'FOO', with args beginning with: "
                    ),
                    status_code="ERR",
                ),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
            ("redis:watch", lambda: redis.exceptions.WatchError("Watched variable changed."), T, Reason.CONFLICT),
        ],
    ),
    *shapes_of(
        "redis",
        REDISPY_CONNECTION,
        [
            (
                "redis:pool_too_many",
                lambda: redis.exceptions.MaxConnectionsError("Too many connections"),
                R,
                Reason.POOL_EXHAUSTED,
            ),
            # redis-py before MaxConnectionsError raised the base class with the same text
            (
                "redis:pool_too_many_old",
                lambda: redis.exceptions.ConnectionError("Too many connections"),
                R,
                Reason.POOL_EXHAUSTED,
            ),
            (
                "redis:pool_blocking",
                lambda: redis.exceptions.ConnectionError("No connection available."),
                R,
                Reason.POOL_EXHAUSTED,
            ),
            (
                "redis:refused",
                lambda: redis.exceptions.ConnectionError(_REDIS_CONNECTION_REFUSED.format("10.0.0.7:6379")),
                T,
                Reason.CONNECTION,
            ),
            (
                "redis:refused",
                lambda: redis.exceptions.ConnectionError(_REDIS_CONNECTION_REFUSED.format("10.0.3.21:6380")),
                T,
                Reason.CONNECTION,
            ),
            (
                "redis:closed",
                lambda: redis.exceptions.ConnectionError("Connection closed by server."),
                T,
                Reason.CONNECTION,
            ),
            (
                "redis:read_timeout",
                lambda: redis.exceptions.TimeoutError("Timeout reading from socket"),
                T,
                Reason.TIMEOUT,
            ),
            (
                "redis:connect_timeout",
                lambda: redis.exceptions.TimeoutError("Timeout connecting to server"),
                T,
                Reason.TIMEOUT,
            ),
            (
                "redis:auth_unset",
                lambda: reply(
                    "ERR AUTH <password> called without any password configured for the default user. "
                    "Are you sure your configuration is correct?"
                ),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "redis:data_error",
                lambda: redis.exceptions.DataError(
                    "Invalid input of type: 'dict'. Convert to a bytes, string, int or float first."
                ),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
        ],
    ),
    *shapes_of(
        "redis",
        REDISPY_LOCK,
        [
            (
                "redis:lock_timeout",
                lambda: redis.exceptions.LockError(
                    "Unable to acquire lock within the time specified", lock_name="report:17"
                ),
                T,
                Reason.CONFLICT,
            ),
            (
                "redis:lock_not_owned",
                lambda: redis.exceptions.LockNotOwnedError(
                    "Cannot release a lock that's no longer owned", lock_name="sync:3"
                ),
                T,
                Reason.CONFLICT,
            ),
            (
                "redis:lock_no_timeout",
                lambda: redis.exceptions.LockError("Cannot extend a lock with no timeout", lock_name="sync:3"),
                P,
                Reason.PROGRAMMING_ERROR,
            ),
        ],
    ),
]

# AMQP: py-amqp builds the error from the reply code (amqp.exceptions.error_for_code); the texts are
# RabbitMQ's (rabbit_amqqueue, rabbit_exchange, rabbit_reader, rabbit_channel)
AMQP_CONSTANTS = "https://www.rabbitmq.com/amqp-0-9-1-reference.html#constants"
PY_AMQP = "https://github.com/celery/py-amqp/blob/main/amqp/exceptions.py"
RABBIT_CHANNEL = "https://github.com/rabbitmq/rabbitmq-server/blob/main/deps/rabbit/src/rabbit_channel.erl"
RABBIT_QUEUE = "https://github.com/rabbitmq/rabbitmq-server/blob/main/deps/rabbit/src/rabbit_amqqueue.erl"
RABBIT_READER = "https://github.com/rabbitmq/rabbitmq-server/blob/main/deps/rabbit/src/rabbit_reader.erl"
CONSUMER_TIMEOUT = "https://www.rabbitmq.com/docs/consumers#acknowledgement-timeout"
CELERY_UNEXPECTED_FRAME = "https://github.com/celery/celery/issues/3377"
PIKA = "https://github.com/pika/pika/blob/main/pika/exceptions.py"
KOMBU_CONNECTION = "https://github.com/celery/kombu/blob/main/kombu/connection.py"
KOMBU_SERIALIZATION = "https://github.com/celery/kombu/blob/main/kombu/serialization.py"


def amqp_error(
    code: int, text: str, method: tuple[int, int], default: type[Exception] = amqp.exceptions.ChannelError
) -> BaseException:
    """What py-amqp raises when the broker closes a channel or connection with ``code``."""
    return amqp.exceptions.error_for_code(code, text, method, default)


_QUEUE_DECLARE, _EXCHANGE_DECLARE, _BASIC_PUBLISH, _NO_METHOD = (50, 10), (40, 10), (60, 40), (0, 0)


def pika_closed(code: int, text: str, *, connection: bool = False) -> BaseException:
    """pika's ``ChannelClosedByBroker(reply_code, reply_text)`` (``ConnectionClosedByBroker`` for the
    connection); its message is the args tuple."""
    kind = "Connection" if connection else "Channel"
    cls = foreign(f"pika.exceptions.{kind}ClosedByBroker", foreign(f"pika.exceptions.{kind}Closed"))
    return with_attrs(cls(code, text), reply_code=code, reply_text=text)


def kombu_wrapped(cause: BaseException) -> BaseException:
    """kombu's ``_reraise_as_library_errors``: ``raise OperationalError(str(exc)) from exc``."""
    return raised(kombu.exceptions.OperationalError(str(cause)), cause=cause)


def kombu_encode_error() -> BaseException:
    try:
        kombu.serialization.dumps({"report": object()}, serializer="json")
    except kombu.exceptions.EncodeError as exc:
        return exc
    raise AssertionError("encoded")


def kombu_untrusted() -> BaseException:
    try:
        kombu.serialization.loads(
            b"\x80\x04K\x01.", "application/x-python-serialize", "binary", accept={"application/json"}
        )
    except kombu.exceptions.ContentDisallowed as exc:
        return exc
    raise AssertionError("decoded")


AMQP: list[Shape] = [
    *shapes_of(
        "amqp",
        RABBIT_QUEUE,
        [
            (
                "amqp:no_queue",
                lambda: amqp_error(404, "NOT_FOUND - no queue 'celery' in vhost '/'", _QUEUE_DECLARE),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "amqp:no_queue",
                lambda: amqp_error(404, "NOT_FOUND - no queue 'reports.high' in vhost 'prod'", _QUEUE_DECLARE),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "amqp:inequivalent_arg",
                lambda: amqp_error(
                    406,
                    "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'celery' in vhost '/': received 'true' but current is 'false'",
                    _QUEUE_DECLARE,
                ),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "amqp:inequivalent_arg",
                lambda: amqp_error(
                    406,
                    "PRECONDITION_FAILED - inequivalent arg 'durable' for queue 'emails' in vhost 'prod': received 'false' but current is 'true'",
                    _QUEUE_DECLARE,
                ),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "amqp:exclusive_locked",
                lambda: amqp_error(
                    405,
                    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'replies' in vhost '/'. It could be "
                    "originally declared on another connection or the exclusive property value does not match that of "
                    "the original declaration.",
                    _QUEUE_DECLARE,
                ),
                T,
                Reason.CONFLICT,
            ),
            (
                "amqp:exclusive_locked",
                lambda: amqp_error(
                    405,
                    "RESOURCE_LOCKED - cannot obtain exclusive access to locked queue 'amq.gen-JzTY20BRgKO' in vhost 'prod'. "
                    "It could be originally declared on another connection or the exclusive property value does not match "
                    "that of the original declaration.",
                    _QUEUE_DECLARE,
                ),
                T,
                Reason.CONFLICT,
            ),
        ],
    ),
    *shapes_of(
        "amqp",
        RABBIT_CHANNEL,
        [
            (
                "amqp:no_exchange",
                lambda: amqp_error(404, "NOT_FOUND - no exchange 'events' in vhost '/'", _EXCHANGE_DECLARE),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "amqp:no_exchange",
                lambda: amqp_error(404, "NOT_FOUND - no exchange 'billing.dlx' in vhost 'prod'", _EXCHANGE_DECLARE),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "amqp:publish_no_exchange",
                lambda: amqp_error(404, "NOT_FOUND - no exchange 'events' in vhost '/'", _BASIC_PUBLISH),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "amqp",
        RABBIT_READER,
        [
            (
                "amqp:login_refused",
                lambda: amqp_error(
                    403,
                    "ACCESS_REFUSED - Login was refused using authentication mechanism AMQPLAIN. For details see the broker logfile.",
                    _NO_METHOD,
                    amqp.exceptions.ConnectionError,
                ),
                P,
                Reason.AUTH_FAILED,
            ),
            (
                "amqp:vhost_not_found",
                lambda: amqp_error(
                    530, "NOT_ALLOWED - vhost reports not found", (10, 40), amqp.exceptions.ConnectionError
                ),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "amqp:connection_forced",
                lambda: amqp_error(
                    320,
                    "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'",
                    _NO_METHOD,
                    amqp.exceptions.ConnectionError,
                ),
                T,
                Reason.CONNECTION,
            ),
            (
                "amqp:connection_closed_by_operator",
                lambda: amqp_error(
                    320, "CONNECTION_FORCED - Closed via management plugin", _NO_METHOD, amqp.exceptions.ConnectionError
                ),
                T,
                Reason.CONNECTION,
            ),
        ],
    ),
    *shapes_of(
        "amqp",
        CONSUMER_TIMEOUT,
        [
            (
                "amqp:consumer_timeout",
                lambda: amqp_error(
                    406,
                    "PRECONDITION_FAILED - delivery acknowledgement on channel 1 timed out. Timeout value used: 1800000 ms. "
                    "This timeout value can be configured, see consumers doc guide to learn more",
                    _NO_METHOD,
                ),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "amqp:consumer_timeout",
                lambda: amqp_error(
                    406,
                    "PRECONDITION_FAILED - delivery acknowledgement on channel 3 timed out. Timeout value used: 900000 ms. "
                    "This timeout value can be configured, see consumers doc guide to learn more",
                    _NO_METHOD,
                ),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "amqp",
        CELERY_UNEXPECTED_FRAME,
        [
            (
                "amqp:unexpected_frame",
                lambda: amqp_error(
                    505,
                    "UNEXPECTED_FRAME - expected content header for class 60, got non content header frame instead",
                    _NO_METHOD,
                    amqp.exceptions.ConnectionError,
                ),
                T,
                Reason.CONNECTION,
            ),
        ],
    ),
    *shapes_of(
        "amqp",
        PIKA,
        [
            (
                "amqp:pika_no_queue",
                lambda: pika_closed(404, "NOT_FOUND - no queue 'hello' in vhost '/'"),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "amqp:pika_no_queue",
                lambda: pika_closed(404, "NOT_FOUND - no queue 'task_queue' in vhost '/'"),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "amqp:pika_login_refused",
                lambda: pika_closed(
                    403,
                    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see the broker logfile.",
                    connection=True,
                ),
                P,
                Reason.AUTH_FAILED,
            ),
        ],
    ),
    *shapes_of(
        "amqp",
        KOMBU_CONNECTION,
        [
            (
                "amqp:kombu_refused",
                lambda: kombu_wrapped(ConnectionRefusedError(111, "Connection refused")),
                T,
                Reason.CONNECTION,
            ),
            (
                "amqp:kombu_redis_refused",
                lambda: kombu_wrapped(
                    redis.exceptions.ConnectionError(_REDIS_CONNECTION_REFUSED.format("10.0.0.7:6379"))
                ),
                T,
                Reason.CONNECTION,
            ),
            (
                "amqp:kombu_redis_wrongpass",
                lambda: kombu_wrapped(reply("WRONGPASS invalid username-password pair or user is disabled.")),
                P,
                Reason.AUTH_FAILED,
            ),
        ],
    ),
    *shapes_of(
        "amqp",
        KOMBU_SERIALIZATION,
        [
            ("amqp:kombu_encode", kombu_encode_error, P, Reason.PROGRAMMING_ERROR),
            ("amqp:kombu_untrusted", kombu_untrusted, P, Reason.INVALID_CONFIGURATION),
        ],
    ),
]

# Celery and billiard: the worker's own exceptions
CELERY_TASK = "https://github.com/celery/celery/blob/main/celery/app/task.py"
CELERY_EXCEPTIONS = "https://github.com/celery/celery/blob/main/celery/exceptions.py"
CELERY_REQUEST = "https://github.com/celery/celery/blob/main/celery/worker/request.py"
CELERY_RESULT = "https://github.com/celery/celery/blob/main/celery/result.py"
CELERY_REGISTRY = "https://github.com/celery/celery/blob/main/celery/app/registry.py"
CELERY_ROUTES = "https://github.com/celery/celery/blob/main/celery/app/routes.py"
CELERY_REDIS_BACKEND = "https://github.com/celery/celery/blob/main/celery/backends/redis.py"
BILLIARD_POOL = "https://github.com/celery/billiard/blob/main/billiard/pool.py"
OOM_KILLED_WORKER = "https://github.com/celery/celery/issues/6279"


def retry(exc: BaseException | None, when: Any) -> BaseException:
    """What ``Task.retry(exc=..., countdown=...)`` raises (``Retry(exc=exc, when=eta or countdown)``)."""
    return raised(celery.exceptions.Retry(exc=exc, when=when, is_eager=False))


def max_retries(name: str, task_id: str, args: tuple[Any, ...]) -> BaseException:
    return celery.exceptions.MaxRetriesExceededError(
        f"Can't retry {name}[{task_id}] args:{args} kwargs:{{}}", task_args=args, task_kwargs={}
    )


def worker_lost(status: str, job: int) -> BaseException:
    return billiard.exceptions.WorkerLostError(f"Worker exited prematurely: {status} Job: {job}.")


def chord_error(task_id: str, exc: BaseException) -> BaseException:
    error = celery.exceptions.ChordError(f"Dependency {task_id} raised {exc!r}")
    error.__cause__ = exc
    return error


CELERY: list[Shape] = [
    *shapes_of(
        "celery",
        CELERY_TASK,
        [
            (
                "celery:retry_connection",
                lambda: retry(httpx.ConnectError("[Errno 111] Connection refused"), 30),
                T,
                Reason.CONNECTION,
                30.0,
            ),
            (
                "celery:retry_connection",
                lambda: retry(httpx.ConnectError("[Errno 111] Connection refused"), 120),
                T,
                Reason.CONNECTION,
                120.0,
            ),
            (
                "celery:retry_value",
                lambda: retry(ValueError("page 3 not ready"), 5),
                T,
                Reason.SERVICE_UNAVAILABLE,
                5.0,
            ),
            ("celery:retry_plain", lambda: retry(None, 180), T, Reason.SERVICE_UNAVAILABLE, 180.0),
            ("celery:retry_plain", lambda: retry(None, 2.5), T, Reason.SERVICE_UNAVAILABLE, 2.5),
            (
                "celery:retry_eta",
                lambda: retry(None, dt.datetime(2026, 1, 1, 0, 10, tzinfo=dt.UTC)),
                T,
                Reason.SERVICE_UNAVAILABLE,
                600.0,
            ),
            (
                "celery:retry_eta",
                lambda: retry(None, dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.UTC)),
                T,
                Reason.SERVICE_UNAVAILABLE,
                3600.0,
            ),
            (
                "celery:max_retries",
                lambda: max_retries("tasks.fetch_page", "3f0d6f3e-5c1a-4c55-9a51-0f5b8d2b0d7e", (17,)),
                P,
                Reason.RETRIES_EXHAUSTED,
            ),
            (
                "celery:max_retries",
                lambda: max_retries("tasks.fetch_page", "b1e2c3d4-0000-4a1b-8c9d-123456789abc", (4312,)),
                P,
                Reason.RETRIES_EXHAUSTED,
            ),
        ],
    ),
    *shapes_of(
        "celery",
        CELERY_EXCEPTIONS,
        [
            (
                "celery:reject_requeue",
                lambda: celery.exceptions.Reject("payload not ready", requeue=True),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "celery:reject_requeue",
                lambda: celery.exceptions.Reject("lease held by worker 3", requeue=True),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
            (
                "celery:reject_drop",
                lambda: celery.exceptions.Reject("unknown tenant 'acme'", requeue=False),
                P,
                Reason.PERMANENT_FAILURE,
            ),
            (
                "celery:reject_publish_failed",
                lambda: celery.exceptions.Reject(
                    kombu.exceptions.OperationalError("[Errno 111] Connection refused"), requeue=False
                ),
                T,
                Reason.CONNECTION,
            ),
            ("celery:soft_time_limit", lambda: raised(billiard.exceptions.SoftTimeLimitExceeded()), T, Reason.TIMEOUT),
        ],
    ),
    *shapes_of(
        "celery",
        CELERY_REQUEST,
        [
            (
                "celery:revoked_id",
                lambda: celery.exceptions.TaskRevokedError("9c1b2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"),
                P,
                Reason.PERMANENT_FAILURE,
            ),
            (
                "celery:revoked_id",
                lambda: celery.exceptions.TaskRevokedError("0a9b8c7d-6e5f-4a3b-9c1d-2e3f4a5b6c7d"),
                P,
                Reason.PERMANENT_FAILURE,
            ),
            ("celery:hard_time_limit", lambda: billiard.exceptions.TimeLimitExceeded(300), T, Reason.TIMEOUT),
            ("celery:hard_time_limit", lambda: billiard.exceptions.TimeLimitExceeded(60.0), T, Reason.TIMEOUT),
            (
                "celery:worker_exit_systemexit",
                lambda: celery.exceptions.WorkerLostError("Worker exited prematurely: exitcode 1."),
                T,
                Reason.SERVICE_UNAVAILABLE,
            ),
        ],
    ),
    *shapes_of(
        "celery",
        CELERY_RESULT,
        [
            ("celery:revoked", lambda: celery.exceptions.TaskRevokedError("revoked"), P, Reason.PERMANENT_FAILURE),
            (
                "celery:result_timeout",
                lambda: celery.exceptions.TimeoutError("The operation timed out."),
                T,
                Reason.TIMEOUT,
            ),
        ],
    ),
    *shapes_of(
        "celery",
        BILLIARD_POOL,
        [
            ("celery:worker_sigterm", lambda: worker_lost("signal 15 (SIGTERM)", 4), T, Reason.SERVICE_UNAVAILABLE),
            ("celery:worker_sigsegv", lambda: worker_lost("signal 11 (SIGSEGV)", 9), T, Reason.SERVICE_UNAVAILABLE),
            ("celery:worker_exitcode", lambda: worker_lost("exitcode 70", 2), T, Reason.SERVICE_UNAVAILABLE),
            ("celery:worker_exitcode", lambda: worker_lost("exitcode 1", 31), T, Reason.SERVICE_UNAVAILABLE),
        ],
    ),
    *shapes_of(
        "celery",
        OOM_KILLED_WORKER,
        [
            ("celery:worker_sigkill", lambda: worker_lost("signal 9 (SIGKILL)", 3), R, Reason.OUT_OF_MEMORY),
            ("celery:worker_sigkill", lambda: worker_lost("signal 9 (SIGKILL)", 148), R, Reason.OUT_OF_MEMORY),
        ],
    ),
    *shapes_of(
        "celery",
        CELERY_REGISTRY,
        [
            (
                "celery:not_registered",
                lambda: celery.exceptions.NotRegistered("tasks.add"),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "celery:not_registered",
                lambda: celery.exceptions.NotRegistered("reports.tasks.render_pdf"),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "celery",
        CELERY_ROUTES,
        [
            (
                "celery:queue_not_found",
                lambda: celery.exceptions.QueueNotFound("Queue 'gpu' missing from task_queues"),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "celery",
        CELERY_REDIS_BACKEND,
        [
            (
                "celery:chord_dependency",
                lambda: chord_error("97de6f3f-ea67-4517-a21c-d867c61fcb47", ValueError("Something went wrong")),
                P,
                Reason.PERMANENT_FAILURE,
            ),
        ],
    ),
]

# TLS verification, redirect loops, 511
PYTHON_SSL = "https://docs.python.org/3/library/ssl.html#ssl.SSLCertVerificationError"
HTTPX_TLS_ISSUE = "https://github.com/encode/httpx/discussions/2185"
REQUESTS_SSL = "https://github.com/psf/requests/blob/main/src/requests/adapters.py"
URLLIB_REQUEST = "https://github.com/python/cpython/blob/main/Lib/urllib/request.py"
AIOHTTP_CLIENT = "https://github.com/aio-libs/aiohttp/blob/master/aiohttp/client_exceptions.py"
HTTPX_CLIENT = "https://github.com/encode/httpx/blob/master/httpx/_client.py"
REQUESTS_SESSIONS = "https://github.com/psf/requests/blob/main/src/requests/sessions.py"
RFC_6585 = "https://www.rfc-editor.org/rfc/rfc6585#section-6"

_VERIFY = "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {} (_ssl.c:1006)"


def cert_error(detail: str, code: int) -> ssl.SSLCertVerificationError:
    """``ssl.SSLCertVerificationError`` as the ssl module raises it (with ``verify_code``/``verify_message``)."""
    exc = ssl.SSLCertVerificationError(1, _VERIFY.format(detail))
    exc.verify_code, exc.verify_message = code, detail
    exc.reason, exc.library = "CERTIFICATE_VERIFY_FAILED", "SSL"
    return exc


def httpx_tls(detail: str, code: int) -> BaseException:
    """httpx's ``ConnectError`` mapped from httpcore's, itself raised from the ssl error."""
    inner = raised(foreign("httpcore.ConnectError")(_VERIFY.format(detail)), cause=cert_error(detail, code))
    return raised(httpx.ConnectError(_VERIFY.format(detail)), cause=inner)


def requests_tls(host: str, detail: str, code: int) -> BaseException:
    text = f"HTTPSConnectionPool(host='{host}', port=443): Max retries exceeded with url: / (Caused by SSLError({cert_error(detail, code)!r}))"
    return raised(requests.exceptions.SSLError(text))


def redirect_loop(url: str) -> BaseException:
    """A real ``httpx.TooManyRedirects``: a server that always redirects to itself."""
    client = httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(302, headers={"Location": str(r.url)})),
        follow_redirects=True,
    )
    try:
        client.get(url)
    except httpx.TooManyRedirects as exc:
        return exc
    finally:
        client.close()
    raise AssertionError("no redirect loop")


def requests_redirect_loop(limit: int) -> BaseException:
    resp = requests.Response()
    resp.status_code, resp.headers["Location"] = 302, "https://login.example.net/"
    return requests.exceptions.TooManyRedirects(f"Exceeded {limit} redirects.", response=resp)


_PORTAL = (
    "<html><head><title>Network Authentication Required</title>"
    '<meta http-equiv="refresh" content="0; url=https://login.example.net/"></head>'
    '<body><p>You need to <a href="https://login.example.net/">authenticate with the local network</a> '
    "in order to gain access.</p></body></html>"
)

NETWORK: list[Shape] = [
    *shapes_of(
        "network",
        PYTHON_SSL,
        [
            (
                "network:ssl_self_signed",
                lambda: cert_error("self-signed certificate", 18),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            ("network:ssl_expired", lambda: cert_error("certificate has expired", 10), P, Reason.INVALID_CONFIGURATION),
            (
                "network:ssl_hostname",
                lambda: cert_error("Hostname mismatch, certificate is not valid for 'api.example.com'.", 62),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "network:ssl_hostname",
                lambda: cert_error("Hostname mismatch, certificate is not valid for 'files.internal'.", 62),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "network",
        HTTPX_TLS_ISSUE,
        [
            (
                "network:httpx_issuer",
                lambda: httpx_tls("unable to get local issuer certificate", 20),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "network:httpx_self_signed_chain",
                lambda: httpx_tls("self-signed certificate in certificate chain", 19),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "network",
        REQUESTS_SSL,
        [
            (
                "network:requests_expired",
                lambda: requests_tls("expired.badssl.com", "certificate has expired", 10),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "network:requests_expired",
                lambda: requests_tls("api.partner.example", "certificate has expired", 10),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "network",
        URLLIB_REQUEST,
        [
            (
                "network:urllib_issuer",
                lambda: urllib.error.URLError(cert_error("unable to get local issuer certificate", 20)),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "network",
        REDISPY_CONNECTION,
        [
            (
                "network:redis_tls",
                lambda: redis.exceptions.ConnectionError(
                    "Error 1 connecting to 10.0.0.7:6380. "
                    + _VERIFY.format("self-signed certificate in certificate chain")
                    + "."
                ),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "network",
        AIOHTTP_CLIENT,
        [
            (
                "network:aiohttp_certificate",
                lambda: foreign(
                    "aiohttp.client_exceptions.ClientConnectorCertificateError",
                    foreign(
                        "aiohttp.client_exceptions.ClientSSLError",
                        foreign("aiohttp.client_exceptions.ClientConnectorError"),
                    ),
                )(
                    "Cannot connect to host expired.badssl.com:443 ssl:True "
                    f"[SSLCertVerificationError: (1, '{_VERIFY.format('certificate has expired')}')]"
                ),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "network",
        HTTPX_CLIENT,
        [
            (
                "network:httpx_redirect_loop",
                lambda: redirect_loop("https://app.example.com/login"),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "network:httpx_redirect_loop",
                lambda: redirect_loop("https://api.example.org/v2/items?page=3"),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
    *shapes_of(
        "network",
        REQUESTS_SESSIONS,
        [
            ("network:requests_redirect_loop", lambda: requests_redirect_loop(30), P, Reason.INVALID_CONFIGURATION),
            ("network:requests_redirect_loop", lambda: requests_redirect_loop(5), P, Reason.INVALID_CONFIGURATION),
        ],
    ),
    *shapes_of(
        "network",
        RFC_6585,
        [
            (
                "network:http_511",
                lambda: httpx_status_error(
                    511, _PORTAL, {"Content-Type": "text/html"}, url="https://api.example.com/v1/items"
                ),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
            (
                "network:http_511",
                lambda: httpx_status_error(
                    511, _PORTAL, {"Content-Type": "text/html"}, url="https://api.example.com/v1/orders/42"
                ),
                P,
                Reason.INVALID_CONFIGURATION,
            ),
        ],
    ),
]

SHAPES: list[Shape] = [*REDIS, *AMQP, *CELERY, *NETWORK]
