"""Fallback chains: an ordered list of providers for one logical service, and an optional degraded
result as the last link::

    chat = runtime_for(app).fallbacks.chain(
        "chat",
        [Provider("openai:gpt-4o", ask_openai), Provider("anthropic:claude", ask_claude)],
        degraded=lambda prompt: cached_answer(prompt),
    )
    answer = chat.call(prompt)       # answer.value, answer.provider, answer.degraded

A call goes down the chain when a provider fails with a transient or resource error, or its circuit
breaker is open; never on a validation error (the request itself is wrong: every provider would refuse
it) nor on a permanent one other than an auth/not-found of that provider (those move on too: the next
provider has its own key and models). A provider that answered with a retry hint (a 429 with
``retry-after``) is not called again until the hint has passed, cluster-wide (a key in Redis with the
hint as its lifetime; per process without Redis). Each provider call goes through its breaker
(``runtime.breakers``), named after the provider. A chain declared in the settings
(``FUNCTION_RUNNER_FALLBACKS``) is built with :meth:`Fallbacks.from_settings`. When every provider failed, the degraded result (if
any) is returned marked ``degraded``; otherwise the last error is raised (so the task's wrapper
classifies it and decides).

A call not answered by its first provider is recorded: a row of ``ai_fallback_events`` with the
provider that answered (none when degraded), the providers passed over and why, and the task that made
the call. The API shows them in the task's history and, per service, in ``GET /health``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis
from sqlalchemy.exc import SQLAlchemyError

from error_handling.categories import Category, Reason
from error_handling.classification import Classification
from error_handling.exceptions import ConfigurationError, StorageUnavailable, TransientError
from error_handling.persistence.fallbacks import add_fallback_event
from error_handling.persistence.models import utcnow
from function_runner.events import log_event
from function_runner.resilience.breakers import Breakers, CircuitOpenError
from function_runner.resilience.shared_redis import SharedRedis

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["AllProvidersFailed", "FallbackChain", "FallbackResult", "Fallbacks", "Provider"]

#: Permanent reasons that belong to one provider (its key, its models): the next provider may work.
_PROVIDER_SPECIFIC = frozenset({Reason.AUTH_FAILED.value, Reason.NOT_FOUND.value})


@dataclasses.dataclass(frozen=True)
class Provider:
    """One link of a chain: a name (also its breaker's) and the function that calls it."""

    name: str
    call: Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class FallbackResult:
    """What a chain returned: the value, the provider that gave it (None when degraded), whether it is
    the degraded result, and the providers skipped or failed on the way with why."""

    value: Any
    provider: str | None
    degraded: bool
    passed_over: tuple[tuple[str, str], ...] = ()


class AllProvidersFailed(TransientError):
    """Every provider of a chain failed or was passed over, and there is no degraded result."""

    default_reason = Reason.SERVICE_UNAVAILABLE.value


@dataclasses.dataclass(kw_only=True, eq=False)
class Fallbacks:
    """What the fallback chains of one app share (``runtime.fallbacks``): the breakers, the classifier,
    the providers' cool-downs and the record of calls served by a fallback.

    Args:
        breakers: each provider call goes through the provider's breaker.
        classify: classifies a provider's error.
        shared_redis: where cool-downs are kept cluster-wide (per process without Redis).
        write: runs work in one transaction, once (no retry).
        declared: the chains the settings declare (``FUNCTION_RUNNER_FALLBACKS``), by service.
    """

    breakers: Breakers
    classify: Callable[[BaseException], Classification]
    shared_redis: SharedRedis
    write: Callable[[Callable[[Session], None]], None]
    declared: Mapping[str, Sequence[str]]
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False, repr=False)
    _local_cooldown: dict[str, float] = dataclasses.field(default_factory=dict, init=False, repr=False)

    def chain(
        self, service: str, providers: Sequence[Provider], *, degraded: Callable[..., Any] | None = None
    ) -> FallbackChain:
        """A chain of ``providers`` for ``service``, with an optional degraded result as the last link.

        Raises:
            ConfigurationError: no provider.
        """
        return FallbackChain(service, providers, fallbacks=self, degraded=degraded)

    def from_settings(
        self,
        service: str,
        *,
        providers: Mapping[str, Callable[..., Any]],
        degraded: Mapping[str, Callable[..., Any]] | None = None,
    ) -> FallbackChain:
        """The chain of ``service`` as the settings declare it (``FUNCTION_RUNNER_FALLBACKS``): each name
        is one of ``providers``, and the last may be one of ``degraded``.

        Raises:
            ConfigurationError: the service has no chain, or a name is not registered (or a degraded
                result is not last).
        """
        names = self.declared.get(service)
        if not names:
            raise ConfigurationError(f"no fallback chain is declared for {service!r} (FUNCTION_RUNNER_FALLBACKS)")
        degraded = degraded or {}
        links: list[Provider] = []
        last: Callable[..., Any] | None = None
        for position, name in enumerate(names):
            if name in degraded:
                if position != len(names) - 1:
                    raise ConfigurationError(f"degraded result {name!r} must be the last link of {service!r}")
                last = degraded[name]
            elif name in providers:
                links.append(Provider(name, providers[name]))
            else:
                raise ConfigurationError(f"fallback chain {service!r} names {name!r}, which is not registered")
        return self.chain(service, links, degraded=last)

    # -- cool-downs (a provider's retry hint, cluster-wide) ----------------------------------------------

    def cooling(self, provider: str) -> float:
        """Seconds left before ``provider`` may be called again (0 when it may)."""
        client = self.shared_redis.client()
        if client is not None:
            try:
                ttl = client.pttl(f"fr:cooldown:{provider}")
                return max(0.0, ttl / 1000) if ttl and ttl > 0 else 0.0
            except redis.RedisError:
                pass
        with self._lock:
            return max(0.0, self._local_cooldown.get(provider, 0.0) - time.monotonic())

    def cool_down(self, provider: str, seconds: float) -> None:
        """Call ``provider`` again only after ``seconds``."""
        client = self.shared_redis.client()
        if client is not None:
            try:
                client.set(f"fr:cooldown:{provider}", "1", px=max(1, int(seconds * 1000)))
                return
            except redis.RedisError:
                pass
        with self._lock:
            self._local_cooldown[provider] = time.monotonic() + seconds

    def record(self, service: str, provider: str | None, passed: Sequence[tuple[str, str]]) -> None:
        """Write the row of a call served by a fallback (logged, not raised, if the database is down:
        the answer matters more than its record)."""
        from celery import current_task

        request = current_task.request if current_task else None
        task_id = getattr(request, "id", None)
        task_name = getattr(current_task, "name", None) if request is not None else None
        at = utcnow()
        try:
            self.write(
                lambda session: add_fallback_event(
                    session,
                    service=service,
                    provider=provider,
                    passed_over=passed,
                    task_id=task_id,
                    task_name=task_name,
                    at=at,
                )
            )
        except (StorageUnavailable, SQLAlchemyError) as exc:
            log_event("fallback.not_recorded", level=logging.WARNING, service=service, error=type(exc).__name__)


class FallbackChain:
    """An ordered chain of providers for one logical service (see the module's documentation); made by
    :meth:`Fallbacks.chain` or :meth:`Fallbacks.from_settings`."""

    def __init__(
        self,
        service: str,
        providers: Sequence[Provider],
        *,
        fallbacks: Fallbacks,
        degraded: Callable[..., Any] | None = None,
    ) -> None:
        if not providers:
            raise ConfigurationError("a fallback chain needs at least one provider")
        self.service = service
        self.providers = tuple(providers)
        self.fallbacks = fallbacks
        self.degraded = degraded

    def _moves_on(self, exc: Exception) -> Classification | None:
        """The error's classification if the chain moves on to the next provider, else None."""
        c = self.fallbacks.classify(exc)
        if c.category in (Category.TRANSIENT, Category.RESOURCE):
            return c
        if c.category is Category.PERMANENT and c.reason in _PROVIDER_SPECIFIC:
            return c
        return None

    def _try(self, provider: Provider, passed: list[tuple[str, str]], args: Any, kwargs: Any) -> tuple[bool, Any]:
        """Call one provider through its breaker: (True, value), or (False, its error) having noted in
        ``passed`` why it was passed over.

        Raises:
            the provider's error when the chain must not move on (see :meth:`_moves_on`).
        """
        name = provider.name
        left = self.fallbacks.cooling(name)
        if left > 0:
            passed.append((name, f"cooling down {left:.1f}s"))
            return False, None
        try:
            with self.fallbacks.breakers.guard(name):
                return True, provider.call(*args, **kwargs)
        except CircuitOpenError as exc:
            passed.append((name, Reason.CIRCUIT_OPEN.value))
            return False, exc
        except Exception as exc:
            c = self._moves_on(exc)
            if c is None:
                raise
            if c.retry_after:
                self.fallbacks.cool_down(name, c.retry_after)
            passed.append((name, c.reason))
            log_event(
                "fallback.provider_failed", level=logging.WARNING, service=self.service, provider=name, reason=c.reason
            )
            return False, exc

    def call(self, *args: Any, **kwargs: Any) -> FallbackResult:
        """Call the first provider that answers; see the module's documentation.

        Raises:
            the provider's error, unchanged, on a validation error (or a permanent one of the request);
            AllProvidersFailed: every provider failed or was passed over and there is no degraded result.
        """
        passed: list[tuple[str, str]] = []
        last: BaseException | None = None
        for provider in self.providers:
            answered, value = self._try(provider, passed, args, kwargs)
            if not answered:
                last = value if value is not None else last
                continue
            if passed:
                log_event("fallback.used", service=self.service, provider=provider.name, passed_over=len(passed))
                self.fallbacks.record(self.service, provider.name, passed)
            return FallbackResult(value, provider.name, False, tuple(passed))
        if self.degraded is not None:
            log_event("fallback.degraded", level=logging.WARNING, service=self.service, passed_over=len(passed))
            value = self.degraded(*args, **kwargs)
            self.fallbacks.record(self.service, None, passed)
            return FallbackResult(value, None, True, tuple(passed))
        summary = ", ".join(f"{name}: {why}" for name, why in passed)
        hint = min((self.fallbacks.cooling(p.name) for p in self.providers), default=0.0) or None
        raise AllProvidersFailed(f"every provider of {self.service!r} failed ({summary})", retry_after=hint) from last
