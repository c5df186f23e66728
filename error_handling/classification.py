"""The value a classifier returns, and the rules users add to a classifier."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from typing import Any

from error_handling.categories import Category, Reason
from error_handling.exceptions import ConfigurationError

#: Messages safe to show an end user, by category, when neither the error nor a rule gives one.
DEFAULT_USER_MESSAGES: dict[Category, str] = {
    Category.TRANSIENT: "A service we depend on is temporarily unavailable. We will try again shortly.",
    Category.RESOURCE: "The system is busy. Your request is queued and will run when capacity frees up.",
    Category.VALIDATION: "The request could not be processed because some of its input is invalid.",
    Category.PERMANENT: "The request could not be completed. Our team has been notified.",
}

_WAIT = "It will be retried automatically; no action is needed."

#: User messages by reason code (every built-in reason has one); they win over the category's default.
#: None names internals (hosts, exception types, providers, keys): they say what happened in the user's
#: terms and whether waiting helps. Apps override them with ``install(user_messages=...)``.
REASON_USER_MESSAGES: dict[str, str] = {
    Reason.RATE_LIMITED.value: f"The service is receiving too many requests right now. {_WAIT}",
    Reason.TIMEOUT.value: f"The service took too long to answer. {_WAIT}",
    Reason.CONNECTION.value: f"The service could not be reached. {_WAIT}",
    Reason.SERVICE_UNAVAILABLE.value: f"The service is temporarily unavailable. {_WAIT}",
    Reason.CONFLICT.value: f"The request collided with another one. {_WAIT}",
    Reason.QUOTA_EXCEEDED.value: "The usage limit for this service has been reached. Your request is queued "
    "and will run when capacity is available again.",
    Reason.OUT_OF_MEMORY.value: "The system is short of memory. Your request is queued and will run when memory "
    "is available.",
    Reason.DISK_FULL.value: "The system is short of storage space. Your request is queued and will run when "
    "space is available.",
    Reason.GPU_UNAVAILABLE.value: "No processing capacity is free right now. Your request is queued and will run "
    "as soon as capacity is available.",
    Reason.TOO_MANY_OPEN_FILES.value: "The system is busy. Your request is queued and will run shortly.",
    Reason.POOL_EXHAUSTED.value: "The system is busy. Your request is queued and will run shortly.",
    Reason.RESOURCE_UNAVAILABLE.value: "A resource your request needs is busy. Your request is queued and will "
    "run when it is available.",
    Reason.INVALID_INPUT.value: "The request could not be processed because some of its input is invalid. "
    "Please check it and try again.",
    Reason.PAYLOAD_TOO_LARGE.value: "The request is too large to be processed. Please shorten it and try again.",
    Reason.CONTENT_POLICY.value: "The request could not be processed because its content is not allowed. "
    "Please rephrase it and try again.",
    Reason.AUTH_FAILED.value: "The request could not be completed because of an access problem on our side. "
    "Our team has been notified.",
    Reason.NOT_FOUND.value: "Something your request refers to could not be found.",
    Reason.NOT_SUPPORTED.value: "This operation is not supported.",
    Reason.CIRCUIT_OPEN.value: f"The service is having trouble and is being given a moment to recover. {_WAIT}",
    Reason.PERMANENT_FAILURE.value: "The request could not be completed. Our team has been notified.",
    Reason.PROGRAMMING_ERROR.value: "The request could not be completed because of a problem on our side. Our "
    "team has been notified.",
    Reason.INVALID_CONFIGURATION.value: "The request could not be completed because of a problem on our side. "
    "Our team has been notified.",
    Reason.UNCLASSIFIED.value: "Something went wrong while processing the request. It will be retried; if it "
    "keeps failing our team will look into it.",
    Reason.RETRIES_EXHAUSTED.value: "The request could not be completed after several attempts. Our team has "
    "been notified.",
    Reason.RETRY_BUDGET_EXHAUSTED.value: "The service is failing too often to be retried right now. Our team has "
    "been notified.",
    Reason.BROKER_DEAD_LETTERED.value: "The request could not be completed: it could not be delivered for "
    "processing. Our team has been notified.",
    Reason.WORKER_LOST.value: "The request could not be completed: processing it stopped unexpectedly several "
    "times. Our team has been notified.",
    Reason.RESOURCE_WAIT_TIMEOUT.value: "The request waited too long for the capacity it needs and was stopped. "
    "Our team has been notified.",
    Reason.UNRECORDABLE.value: "The request could not be completed and its details could not be saved. Our "
    "team has been notified.",
    # the category's default, as before these reasons were named
    Reason.CAPACITY_EXHAUSTED.value: DEFAULT_USER_MESSAGES[Category.RESOURCE],
    Reason.COMPENSATION_FAILED.value: DEFAULT_USER_MESSAGES[Category.PERMANENT],
}


def default_user_message(category: Category, reason: str) -> str:
    """Return the built-in end-user message for a category and reason."""
    return REASON_USER_MESSAGES.get(reason, DEFAULT_USER_MESSAGES[category])


@dataclasses.dataclass(frozen=True, slots=True)
class Classification:
    """What went wrong, as far as routing is concerned.

    Attributes:
        category: which route the failure takes.
        reason: a stable reason code (a :class:`~error_handling.categories.Reason` value or a user code).
        retry_after: seconds the server (or the error) asked us to wait, if it said so.
        fingerprint: a short hex digest grouping the same error across tasks and runs.
        user_message: a message safe to show an end user: no internals, no secrets.
        resource: for the ``resource`` category, the name of the resource gate to wait on.
        exc_type: the qualified class name of the exception (``module.Class``), if there was one.
        message: the technical message, already redacted.
        status_code: the HTTP status the error carried, if any.
        rule: a short description of the rule that matched (for operators debugging rules).
    """

    category: Category
    reason: str
    retry_after: float | None = None
    fingerprint: str = ""
    user_message: str = ""
    resource: str | None = None
    exc_type: str | None = None
    message: str = ""
    status_code: int | None = None
    rule: str = ""

    def replace(self, **changes: Any) -> Classification:
        """Return a copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


#: Types a rule's ``exception`` may be given as.
ExceptionSpec = str | type[BaseException]


@dataclasses.dataclass(frozen=True)
class Rule:
    """A user rule: when every given condition matches, the failure gets this category and reason.

    Conditions (all optional, all given ones must match):
        exception: qualified class names (``"openai.RateLimitError"``) or classes, matched along the MRO.
        message: a regular expression searched in ``str(exc)``.
        status: HTTP statuses (an int, a range or a collection of ints) found on the exception.
        predicate: any callable ``exc -> bool``.

    Result:
        category, reason, and optionally resource, retry_after, user_message.

    Raises:
        ConfigurationError: ``category`` is not a :class:`Category`, or ``message`` does not compile.
    """

    category: Category
    reason: str
    exception: ExceptionSpec | tuple[ExceptionSpec, ...] | None = None
    message: str | re.Pattern[str] | None = None
    status: int | range | Collection[int] | None = None
    predicate: Callable[[BaseException], bool] | None = None
    resource: str | None = None
    retry_after: float | None = None
    user_message: str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "category", Category(self.category))
        except ValueError:
            raise ConfigurationError(
                f"{self.category!r} is not a category: use one of {', '.join(c.value for c in Category)}"
            ) from None
        object.__setattr__(self, "reason", str(self.reason))
        if isinstance(self.message, str):
            try:
                object.__setattr__(self, "message", re.compile(self.message))
            except re.error as exc:
                raise ConfigurationError(f"a rule's message pattern {self.message!r} is invalid: {exc}") from None
        if self.exception is not None and not isinstance(self.exception, tuple):
            object.__setattr__(self, "exception", (self.exception,))
        if isinstance(self.status, int):
            object.__setattr__(self, "status", (self.status,))
