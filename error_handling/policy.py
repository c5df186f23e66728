"""Policies: from a classification to a decision, changing nothing.

:func:`decide` is a pure function. It takes what went wrong (a
:class:`~error_handling.classification.Classification`), how far the task has come (its attempt number,
how many times it failed in this budget, since when it waits for a resource) and a
:class:`RecoveryPolicy`, and returns a frozen decision:

- :class:`Retry` ``(at, delay)``: run again at ``at`` (a scheduled-retry row, never a broker ETA);
- :class:`Wait` ``(resource, deadline, check_at)``: park until the resource is available or ``deadline``;
- :class:`FailFast` ``(reason, user_message)``: terminal, the input is wrong, tell the user;
- :class:`DeadLetter` ``(reason)``: terminal, keep everything needed to replay it.

A server's retry hint (a header, a body field or a wait stated in the message) is waited for when it is
longer than the backoff, up to ``max_retry_after`` (hours of a daily token limit included); a transient
failure whose hint is longer than that becomes a :class:`Wait` on the quota, looked at again when the cap
has passed, not a retry in seconds. A resource wait's deadline stretches to a stated hint, up to the cap.

Carrying a decision out (writing rows, publishing messages) is the router's job, not this module's.

Budgets are counted per *budget group*: failures of a task classified ``transient`` with a known reason
count against ``transient_max_attempts``; unclassified ones against ``unclassified_max_attempts``. A task
that has failed ``n`` times in a group has been executed at least ``n`` times, so a budget of 5 means
"at most 5 executions that failed this way".
"""

from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import math
import random
from typing import Any, Protocol

from error_handling.categories import DEFAULT_RESOURCE_FOR_REASON, Category, Reason
from error_handling.classification import Classification
from error_handling.exceptions import ConfigurationError

#: Default first backoff step, in seconds.
DEFAULT_BASE_DELAY = 1.0
#: Default ceiling of a computed backoff delay, in seconds (10 minutes).
DEFAULT_MAX_DELAY = 600.0
#: Default number of executions allowed to fail transiently before dead-lettering.
DEFAULT_TRANSIENT_MAX_ATTEMPTS = 5
#: Default number of executions allowed to fail unclassified before dead-lettering.
DEFAULT_UNCLASSIFIED_MAX_ATTEMPTS = 3
#: Default time a task may wait for a resource before it is dead-lettered, in seconds (1 hour).
DEFAULT_RESOURCE_WAIT_TIMEOUT = 3600.0
#: Default interval between two checks of a resource a task waits on, in seconds.
DEFAULT_RESOURCE_CHECK_INTERVAL = 15.0
#: Server hints longer than this (seconds) are capped: a day is long enough for any rate limit.
DEFAULT_MAX_RETRY_AFTER = 86400.0


class RandomSource(Protocol):
    """What a backoff needs from a random generator (``random.Random`` fits)."""

    def uniform(self, a: float, b: float) -> float: ...


class Backoff(abc.ABC):
    """A backoff strategy: how long to wait before the ``failures``-th retry."""

    @abc.abstractmethod
    def delay(self, failures: int, rng: RandomSource) -> float:
        """Return the delay in seconds after ``failures`` failures (1 for the first)."""


@dataclasses.dataclass(frozen=True)
class FullJitterBackoff(Backoff):
    """Full-jitter exponential backoff: ``U(0, min(max_delay, base * 2**(failures - 1)))``."""

    base: float = DEFAULT_BASE_DELAY
    max_delay: float = DEFAULT_MAX_DELAY

    def __post_init__(self) -> None:
        if self.base < 0 or self.max_delay < 0:
            raise ConfigurationError("backoff delays must not be negative")

    def ceiling(self, failures: int) -> float:
        """Return the upper bound of the delay after ``failures`` failures."""
        exponent = min(max(failures - 1, 0), 63)
        return min(self.max_delay, self.base * math.pow(2, exponent))

    def delay(self, failures: int, rng: RandomSource) -> float:
        return rng.uniform(0.0, self.ceiling(failures))


@dataclasses.dataclass(frozen=True)
class ConstantBackoff(Backoff):
    """The same delay before every retry."""

    seconds: float

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ConfigurationError("backoff delays must not be negative")

    def delay(self, failures: int, rng: RandomSource) -> float:
        return self.seconds


def get_backoff(spec: Backoff | float | int | None) -> Backoff:
    """Turn shorthand into a backoff: ``None`` is the default full jitter, a number a constant delay."""
    if spec is None:
        return FullJitterBackoff()
    if isinstance(spec, Backoff):
        return spec
    if isinstance(spec, bool) or not isinstance(spec, int | float):
        raise ConfigurationError(f"backoff must be a Backoff, a number of seconds or None, not {spec!r}")
    return ConstantBackoff(float(spec))


@dataclasses.dataclass(frozen=True)
class RecoveryPolicy:
    """How a task's failures are handled. Every field has the DESIGN.md default.

    Attributes:
        backoff: the delay strategy for transient failures.
        transient_max_attempts: executions allowed to fail transiently (known reason).
        unclassified_max_attempts: executions allowed to fail with an unclassified error.
        resource_wait_timeout: seconds a task may wait for a resource before it is dead-lettered.
        resource_check_interval: seconds between two checks of the resource a task waits on.
        max_retry_after: cap on a server's retry hint, in seconds.
    """

    backoff: Backoff = dataclasses.field(default_factory=FullJitterBackoff)
    transient_max_attempts: int = DEFAULT_TRANSIENT_MAX_ATTEMPTS
    unclassified_max_attempts: int = DEFAULT_UNCLASSIFIED_MAX_ATTEMPTS
    resource_wait_timeout: float = DEFAULT_RESOURCE_WAIT_TIMEOUT
    resource_check_interval: float = DEFAULT_RESOURCE_CHECK_INTERVAL
    max_retry_after: float = DEFAULT_MAX_RETRY_AFTER

    def __post_init__(self) -> None:
        object.__setattr__(self, "backoff", get_backoff(self.backoff))
        for name in ("transient_max_attempts", "unclassified_max_attempts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"{name} must be a whole number >= 1, not {value!r}")
        for name in ("resource_wait_timeout", "resource_check_interval", "max_retry_after"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds, not {value!r}")

    def merged(self, overrides: RecoveryPolicy | dict[str, Any] | None) -> RecoveryPolicy:
        """Return this policy with a task's overrides applied (a policy replaces it whole)."""
        if overrides is None:
            return self
        if isinstance(overrides, RecoveryPolicy):
            return overrides
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigurationError(f"unknown recovery policy option(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **overrides)


@dataclasses.dataclass(frozen=True, slots=True)
class Retry:
    """Run the task again at ``at`` (``delay`` seconds after the failure)."""

    at: dt.datetime
    delay: float


@dataclasses.dataclass(frozen=True, slots=True)
class Wait:
    """Park the task until ``resource`` is available; give up at ``deadline``; look again at ``check_at``."""

    resource: str
    deadline: dt.datetime
    check_at: dt.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class FailFast:
    """Stop now: the input is wrong. ``user_message`` says what to fix."""

    reason: str
    user_message: str


@dataclasses.dataclass(frozen=True, slots=True)
class DeadLetter:
    """Stop retrying; keep the task in the dead-letter queue for inspection and replay."""

    reason: str


Decision = Retry | Wait | FailFast | DeadLetter


def budget_group(classification: Classification) -> str:
    """Return the name of the budget a failure counts against (``transient``, ``unclassified``, ...)."""
    return recorded_budget_group(category=classification.category.value, reason=classification.reason)


def recorded_budget_group(*, category: str, reason: str) -> str:
    """The budget group of a failure as it is recorded (its category's and reason's values): an
    unclassified failure counts against its own budget, any other against its category's."""
    if reason == Reason.UNCLASSIFIED.value:
        return "unclassified"
    return category


def max_attempts(policy: RecoveryPolicy, classification: Classification) -> int | None:
    """The most attempts ``policy`` allows for a failure like ``classification`` ("attempt i of N"):
    None when such a failure is never retried, or waits on a resource (bounded by time, not count)."""
    if classification.category is not Category.TRANSIENT:
        return None
    return _transient_budget(policy, unclassified=classification.reason == Reason.UNCLASSIFIED.value)


def _transient_budget(policy: RecoveryPolicy, *, unclassified: bool) -> int:
    return policy.unclassified_max_attempts if unclassified else policy.transient_max_attempts


def decide(
    classification: Classification,
    *,
    failures: int,
    now: dt.datetime,
    policy: RecoveryPolicy,
    waiting_since: dt.datetime | None = None,
    rng: RandomSource | None = None,
    retry_allowed: bool = True,
) -> Decision:
    """Decide what to do about a failure.

    Args:
        classification: what went wrong.
        failures: how many executions of this task failed in this failure's budget group, this one
            included (so at least 1).
        now: the time of the failure (timezone-aware).
        policy: the task's effective policy.
        waiting_since: for a resource failure, when the task started waiting for this resource
            (``None`` if it is the first time).
        rng: the random source for jitter (``random`` by default; pass a seeded one in tests).
        retry_allowed: False when the service's retry budget is empty: a failure that would be retried
            is dead-lettered as ``retry_budget_exhausted`` instead.

    Raises:
        ConfigurationError: if ``failures`` is less than 1.
    """
    if failures < 1:
        raise ConfigurationError(f"failures counts this failure too and must be >= 1, not {failures}")
    category = classification.category
    if category is Category.VALIDATION:
        return FailFast(reason=classification.reason, user_message=classification.user_message)
    if category is Category.PERMANENT:
        return DeadLetter(reason=classification.reason)
    if category is Category.RESOURCE:
        since = waiting_since or now
        hint = min(classification.retry_after or 0.0, policy.max_retry_after)
        # A stated reset later than the timeout (a quota back in 3 hours) is waited for, up to the cap.
        deadline = since + dt.timedelta(seconds=max(policy.resource_wait_timeout, hint))
        if now >= deadline:
            return DeadLetter(reason=Reason.RESOURCE_WAIT_TIMEOUT.value)
        check_at = min(now + dt.timedelta(seconds=max(policy.resource_check_interval, hint)), deadline)
        resource = classification.resource or Reason.RESOURCE_UNAVAILABLE.value
        return Wait(resource=resource, deadline=deadline, check_at=check_at)
    # Transient, classified or not.
    unclassified = classification.reason == Reason.UNCLASSIFIED.value
    budget = _transient_budget(policy, unclassified=unclassified)
    if failures >= budget:
        return DeadLetter(reason=Reason.UNCLASSIFIED.value if unclassified else Reason.RETRIES_EXHAUSTED.value)
    if not retry_allowed:
        return DeadLetter(reason=Reason.RETRY_BUDGET_EXHAUSTED.value)
    stated = classification.retry_after
    if stated is not None and stated > policy.max_retry_after:
        return _wait_past_the_cap(classification, now=now, policy=policy, waiting_since=waiting_since)
    delay = policy.backoff.delay(failures, rng or random)
    if stated is not None:
        delay = max(delay, stated)
    return Retry(at=now + dt.timedelta(seconds=delay), delay=delay)


def _wait_past_the_cap(
    classification: Classification, *, now: dt.datetime, policy: RecoveryPolicy, waiting_since: dt.datetime | None
) -> Wait | DeadLetter:
    """A transient failure whose server hint is longer than ``policy.max_retry_after`` (a daily token
    limit that resets in hours, past a shorter cap): not a retry in seconds, but a wait on the quota it
    exhausted, looked at again when the cap has passed and given up at the later of the cap and the
    resource wait timeout."""
    since = waiting_since or now
    deadline = since + dt.timedelta(seconds=max(policy.resource_wait_timeout, policy.max_retry_after))
    if now >= deadline:
        return DeadLetter(reason=Reason.RESOURCE_WAIT_TIMEOUT.value)
    check_at = min(now + dt.timedelta(seconds=policy.max_retry_after), deadline)
    resource = classification.resource or DEFAULT_RESOURCE_FOR_REASON[Reason.QUOTA_EXCEEDED.value]
    return Wait(resource=resource, deadline=deadline, check_at=check_at)
