"""The vocabulary of failure: categories and stable reason codes.

A *category* says which route a failure takes (see ``docs/architecture.md``); a *reason* is a stable,
machine-readable code that operators filter and alert on. Both are ``str`` enums so they serialise as
their value in JSON, SQL and logs.
"""

from __future__ import annotations

import enum


class Category(enum.StrEnum):
    """What kind of failure this is, which decides its route."""

    #: Worth retrying after a delay (timeouts, 429, 5xx, dropped connections).
    TRANSIENT = "transient"
    #: A resource (GPU, memory, disk, quota) is missing; park the task until it is available again.
    RESOURCE = "resource"
    #: The input is wrong; retrying cannot help. Fail fast with a message for the user.
    VALIDATION = "validation"
    #: Will never succeed as is (auth, not found, a bug); straight to the dead-letter queue.
    PERMANENT = "permanent"

    def __str__(self) -> str:
        return self.value


class Reason(enum.StrEnum):
    """Stable reason codes. User rules may use their own codes too; these are the built-in ones."""

    #: The server asked us to slow down (HTTP 429, provider rate limits).
    RATE_LIMITED = "rate_limited"
    #: The operation took too long (socket, HTTP, Celery soft time limit).
    TIMEOUT = "timeout"
    #: The connection failed or dropped (refused, reset, DNS, broken pipe).
    CONNECTION = "connection"
    #: The remote service failed or is overloaded (HTTP 5xx, 529).
    SERVICE_UNAVAILABLE = "service_unavailable"
    #: A database conflict that is safe to retry (deadlock, serialization failure, lock timeout).
    CONFLICT = "conflict"
    #: A paid or metered quota is used up; waiting (not a quick retry) is what helps.
    QUOTA_EXCEEDED = "quota_exceeded"
    #: The process ran out of memory.
    OUT_OF_MEMORY = "out_of_memory"
    #: The disk (or a filesystem quota) is full.
    DISK_FULL = "disk_full"
    #: No GPU, or not enough GPU memory.
    GPU_UNAVAILABLE = "gpu_unavailable"
    #: Too many open files or processes.
    TOO_MANY_OPEN_FILES = "too_many_open_files"
    #: Some other named resource is unavailable.
    RESOURCE_UNAVAILABLE = "resource_unavailable"
    #: The input was rejected (HTTP 400/422, ValueError-like errors raised as ValidationError).
    INVALID_INPUT = "invalid_input"
    #: The request or payload is too large (HTTP 413, context length exceeded).
    PAYLOAD_TOO_LARGE = "payload_too_large"
    #: The input was refused by a content policy.
    CONTENT_POLICY = "content_policy"
    #: Credentials were missing, wrong or lack permission (HTTP 401/403).
    AUTH_FAILED = "auth_failed"
    #: The target does not exist (HTTP 404/410).
    NOT_FOUND = "not_found"
    #: The operation is not allowed (HTTP 405, 501).
    NOT_SUPPORTED = "not_supported"
    #: A bug in the task's code (``AttributeError``, ``TypeError``, ``NameError``, ``AssertionError``,
    #: ...): retrying runs the same code on the same input, so it is dead-lettered at once (replay it after
    #: the fix).
    PROGRAMMING_ERROR = "programming_error"
    #: The deployment is wrong (a missing module, a certificate that does not verify, a redirect loop):
    #: nothing changes until someone fixes it.
    INVALID_CONFIGURATION = "invalid_configuration"
    #: Every connection of a pool is in use (SQLAlchemy's ``QueuePool limit ... reached``,
    #: ``psycopg_pool.PoolTimeout``, the server's ``too many connections``): the task waits for one.
    POOL_EXHAUSTED = "pool_exhausted"
    #: A circuit breaker is open for the service.
    CIRCUIT_OPEN = "circuit_open"
    #: A failure the task itself declared permanent, or a programming error.
    PERMANENT_FAILURE = "permanent_failure"
    #: No rule matched; retried with a small budget, then dead-lettered.
    UNCLASSIFIED = "unclassified"
    #: A retry budget ran out (recorded on the dead letter).
    RETRIES_EXHAUSTED = "retries_exhausted"
    #: A resource wait passed its deadline (recorded on the dead letter).
    RESOURCE_WAIT_TIMEOUT = "resource_wait_timeout"
    #: The service's cluster-wide retry budget was empty: no retry (recorded on the dead letter).
    RETRY_BUDGET_EXHAUSTED = "retry_budget_exhausted"
    #: The worker process running the task died on too many of its deliveries (a crash, a kill, an
    #: OOM kill, a hard time limit): it is not run again (a poison message).
    WORKER_LOST = "worker_lost"
    #: The broker dead-lettered the message itself (RabbitMQ: a quorum queue's delivery limit, a
    #: message TTL, a queue length limit); function-runner collected it into its dead-letter queue.
    BROKER_DEAD_LETTERED = "broker_dead_lettered"
    #: The database kept refusing what the wrapper records about a failure (or its bookkeeping kept
    #: failing) past ``max_unrecordable_requeues``: dead-lettered with a minimal record.
    UNRECORDABLE = "unrecordable"
    #: A capacity gate the task declares (``resources={"gpu": 1}``) was full when it was to run: the
    #: task is parked on the gate until a unit frees up.
    CAPACITY_EXHAUSTED = "capacity_exhausted"
    #: An undo of a saga's compensation failed for a reason a retry will not fix (or its retries ran
    #: out): the compensation is dead-lettered and its open steps marked failed.
    COMPENSATION_FAILED = "compensation_failed"

    def __str__(self) -> str:
        return self.value


#: The resource a resource reason waits on when the error does not name one.
DEFAULT_RESOURCE_FOR_REASON: dict[str, str] = {
    Reason.OUT_OF_MEMORY.value: "memory",
    Reason.DISK_FULL.value: "disk",
    Reason.GPU_UNAVAILABLE.value: "gpu",
    Reason.QUOTA_EXCEEDED.value: "quota",
    Reason.TOO_MANY_OPEN_FILES.value: "file_descriptors",
    Reason.POOL_EXHAUSTED.value: "connection_pool",
    Reason.RESOURCE_UNAVAILABLE.value: "resource",
}
