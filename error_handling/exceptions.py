"""Exceptions of function-runner.

Two families hang from one root, so callers can catch at any level::

    FunctionRunnerError                 anything this project raises
    ├── RecoverableError                raised BY task code to say how a failure should be handled
    │   ├── TransientError              retry later (backoff, honouring retry_after)
    │   ├── ResourceError               wait until ``resource`` is available again
    │   ├── ValidationError             bad input: fail fast, tell the user, no retry
    │   └── PermanentError              will never work: dead-letter queue
    ├── ConfigurationError              a setting, rule or task option is invalid (also a ValueError)
    ├── InvalidCursor                   a page cursor this project did not issue (also a ValueError)
    └── StorageError                    the system of record could not be used
        └── StorageUnavailable          the database is unreachable (the message must not be acked)
"""

from __future__ import annotations

from typing import ClassVar

from error_handling.categories import Category, Reason


class FunctionRunnerError(Exception):
    """Root of every exception function-runner raises."""


class RecoverableError(FunctionRunnerError):
    """An error task code raises to state its category, reason, retry hint and user message.

    Args:
        message: the technical message (redacted before it is stored or logged).
        reason: a stable reason code; defaults to the class's default reason.
        retry_after: seconds the caller should wait before trying again, if known.
        user_message: a message safe to show an end user; defaults to a generic one per category.
    """

    category: ClassVar[Category]
    default_reason: ClassVar[str]

    def __init__(
        self,
        message: str = "",
        *,
        reason: str | Reason | None = None,
        retry_after: float | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = str(reason) if reason is not None else self.default_reason
        self.retry_after = float(retry_after) if retry_after is not None else None
        self.user_message = user_message


class TransientError(RecoverableError):
    """A failure that is likely to go away: retry after a delay."""

    category = Category.TRANSIENT
    default_reason = Reason.SERVICE_UNAVAILABLE.value


class ResourceError(RecoverableError):
    """A resource is missing; park the task until ``resource`` is available again.

    Args:
        resource: the name of the resource gate to wait on (``gpu``, ``memory``, ``disk`` or your own).
    """

    category = Category.RESOURCE
    default_reason = Reason.RESOURCE_UNAVAILABLE.value

    def __init__(
        self,
        message: str = "",
        *,
        resource: str,
        reason: str | Reason | None = None,
        retry_after: float | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(message, reason=reason, retry_after=retry_after, user_message=user_message)
        self.resource = resource


class ValidationError(RecoverableError):
    """The input is wrong: fail fast without retrying and tell the user what to fix."""

    category = Category.VALIDATION
    default_reason = Reason.INVALID_INPUT.value


class PermanentError(RecoverableError):
    """The task can never succeed as it is: send it to the dead-letter queue."""

    category = Category.PERMANENT
    default_reason = Reason.PERMANENT_FAILURE.value


class WorkerLost(PermanentError):
    """The task's worker process died on too many of its deliveries; raised instead of running it
    again (the message is a poison message: it would crash the next worker too)."""

    default_reason = Reason.WORKER_LOST.value


class ConfigurationError(FunctionRunnerError, ValueError):
    """A setting, rule or task option is invalid.

    Also a :class:`ValueError`, so code that caught ``ValueError`` for these still does, and a pydantic
    validator that raises it reports a validation error.
    """


class InvalidCursor(FunctionRunnerError, ValueError):
    """A page cursor that was not produced by this project (the API answers 400 ``invalid_cursor``)."""


class StorageError(FunctionRunnerError):
    """The system of record could not be used."""


class StorageUnavailable(StorageError):
    """The database is unreachable; whatever was being recorded was not, and must be retried."""
