"""Fallback chains: an ordered list of providers for one logical service, and an optional degraded
result as the last link::

    chat = FallbackChain(
        "chat",
        [Provider("openai:gpt-4o", ask_openai), Provider("anthropic:claude", ask_claude)],
        degraded=lambda prompt: cached_answer(prompt),
        runtime=runtime_for(app),
    )
    answer = chat.call(prompt)       # answer.value, answer.provider, answer.degraded

A call goes down the chain when a provider fails with a transient or resource error, or its circuit
breaker is open; never on a validation error (the request itself is wrong: every provider would refuse
it) nor on a permanent one other than an auth/not-found of that provider (those move on too: the next
provider has its own key and models). A provider that answered with a retry hint (a 429 with
``retry-after``) is not called again until the hint has passed, cluster-wide (a key in Redis with the
hint as its lifetime; per process without Redis). Each provider call goes through its breaker
(``runtime.breakers``), named after the provider. When every provider failed, the degraded result (if
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
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from error_handling.categories import Category, Reason
from error_handling.exceptions import TransientError
from error_handling.persistence.models import FallbackEvent, utcnow
from function_runner.events import log_event
from function_runner.resilience.breakers import CircuitOpenError

if TYPE_CHECKING:
    from function_runner.runtime import Runtime

__all__ = ["AllProvidersFailed", "FallbackChain", "FallbackResult", "Provider", "chain_from_settings"]

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


class FallbackChain:
    """An ordered chain of providers for one logical service (see the module's documentation)."""

    def __init__(
        self,
        service: str,
        providers: Sequence[Provider],
        *,
        runtime: Runtime,
        degraded: Callable[..., Any] | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a fallback chain needs at least one provider")
        self.service = service
        self.providers = tuple(providers)
        self.runtime = runtime
        self.degraded = degraded
        self._lock = threading.Lock()
        self._local_cooldown: dict[str, float] = {}

    # -- cool-downs (a provider's retry hint, cluster-wide) ----------------------------------------------

    def _cooling(self, provider: str) -> float:
        """Seconds left before ``provider`` may be called again (0 when it may)."""
        try:
            client = self.runtime.breakers.client()
            ttl = client.pttl(f"fr:cooldown:{provider}")
            return max(0.0, ttl / 1000) if ttl and ttl > 0 else 0.0
        except Exception:
            with self._lock:
                return max(0.0, self._local_cooldown.get(provider, 0.0) - time.monotonic())

    def _cool_down(self, provider: str, seconds: float) -> None:
        try:
            client = self.runtime.breakers.client()
            client.set(f"fr:cooldown:{provider}", "1", px=max(1, int(seconds * 1000)))
        except Exception:
            with self._lock:
                self._local_cooldown[provider] = time.monotonic() + seconds

    def _record(self, provider: str | None, passed: list[tuple[str, str]]) -> None:
        """Write the row of a call served by a fallback (logged, not raised, if the database is down:
        the answer matters more than its record)."""
        from celery import current_task

        request = current_task.request if current_task else None
        event = FallbackEvent(
            service=self.service,
            provider=provider,
            degraded=provider is None,
            passed_over=[{"provider": name, "reason": why} for name, why in passed],
            task_id=getattr(request, "id", None),
            task_name=getattr(current_task, "name", None) if request is not None else None,
            at=utcnow(),
        )
        try:
            self.runtime.in_transaction(lambda session: session.add(event), patience=0)
        except Exception as exc:
            log_event("fallback.not_recorded", level=logging.WARNING, service=self.service, error=type(exc).__name__)

    # -- the call -----------------------------------------------------------------------------------------

    def call(self, *args: Any, **kwargs: Any) -> FallbackResult:
        """Call the first provider that answers; see the module's documentation.

        Raises:
            the provider's error, unchanged, on a validation error (or a permanent one of the request);
            AllProvidersFailed: every provider failed or was passed over and there is no degraded result.
        """
        passed: list[tuple[str, str]] = []
        last: BaseException | None = None
        for provider in self.providers:
            left = self._cooling(provider.name)
            if left > 0:
                passed.append((provider.name, f"cooling down {left:.1f}s"))
                continue
            try:
                with self.runtime.breakers.guard(provider.name):
                    value = provider.call(*args, **kwargs)
            except CircuitOpenError as exc:
                passed.append((provider.name, Reason.CIRCUIT_OPEN.value))
                last = exc
                continue
            except Exception as exc:
                c = self.runtime.classifier.classify(exc)
                moves_on = c.category in (Category.TRANSIENT, Category.RESOURCE) or (
                    c.category is Category.PERMANENT and c.reason in _PROVIDER_SPECIFIC
                )
                if not moves_on:
                    raise
                if c.retry_after:
                    self._cool_down(provider.name, c.retry_after)
                passed.append((provider.name, c.reason))
                log_event(
                    "fallback.provider_failed",
                    level=logging.WARNING,
                    service=self.service,
                    provider=provider.name,
                    reason=c.reason,
                )
                last = exc
                continue
            if passed:
                log_event("fallback.used", service=self.service, provider=provider.name, passed_over=len(passed))
                self._record(provider.name, passed)
            return FallbackResult(value, provider.name, False, tuple(passed))
        if self.degraded is not None:
            log_event("fallback.degraded", level=logging.WARNING, service=self.service, passed_over=len(passed))
            value = self.degraded(*args, **kwargs)
            self._record(None, passed)
            return FallbackResult(value, None, True, tuple(passed))
        summary = ", ".join(f"{name}: {why}" for name, why in passed)
        hint = min((self._cooling(p.name) for p in self.providers), default=0.0) or None
        raise AllProvidersFailed(f"every provider of {self.service!r} failed ({summary})", retry_after=hint) from last


def chain_from_settings(
    runtime: Runtime,
    service: str,
    *,
    providers: dict[str, Callable[..., Any]],
    degraded: dict[str, Callable[..., Any]] | None = None,
) -> FallbackChain:
    """The chain of ``service`` as the settings declare it (``FUNCTION_RUNNER_FALLBACKS``): each name
    is one of ``providers``, and the last may be one of ``degraded``.

    Raises:
        ConfigurationError: the service has no chain, or a name is not registered (or a degraded
            result is not last).
    """
    from error_handling.exceptions import ConfigurationError

    names = runtime.settings.fallbacks.get(service)
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
    return FallbackChain(service, links, runtime=runtime, degraded=last)
