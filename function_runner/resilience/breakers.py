"""Circuit breakers for task code: one shared state per service (Redis), a per-process fallback, and
every transition recorded in ``circuit_breaker_events``.

In a task::

    @app.task(base=RecoverableTask, breaker="openai")      # the whole body, or:
    def summarise(text): ...

    with runtime_for(app).breakers.guard("openai"):        # one call
        client.chat.completions.create(...)

A refused call raises :class:`CircuitOpenError`: a transient ``circuit_open`` error whose retry hint
is the time left open, so the wrapper schedules the retry as a row (no busy loop). A call counts as a
failure of the service when its error is classified transient or resource (the service failed or is
overloaded); a validation or permanent error means the service answered, and counts as a success.

When Redis cannot be reached the service's breaker runs in this process only, with the same rules: it
never blocks every call and never lets a storm through unbounded; the fallback is logged
(``breaker.degraded``) and reported by :meth:`Breakers.degraded`. Shared state is used again as soon
as Redis answers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from error_handling.breaker import Admission, BreakerConfig, LocalBreaker, RedisBreaker, Transition
from error_handling.categories import Category, Reason
from error_handling.exceptions import TransientError
from error_handling.persistence.models import CircuitBreakerEvent, utcnow
from function_runner.events import log_event

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from function_runner.runtime import Runtime

__all__ = ["Breakers", "CircuitOpenError", "record_transition"]


class CircuitOpenError(TransientError):
    """The service's circuit breaker is open: the call was not made."""

    default_reason = Reason.CIRCUIT_OPEN.value

    def __init__(self, service: str, retry_after: float) -> None:
        super().__init__(
            f"circuit breaker of {service!r} is open; retry in {retry_after:.1f}s",
            retry_after=max(retry_after, 0.1),
        )
        self.service = service


def _actor() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _cause(transition: Transition, *, local: bool) -> str:
    if local:
        return "local"
    if transition.to_state == "open" and transition.from_state == "closed":
        return "failure_ratio"
    if transition.from_state == "open":
        return "timeout"
    return "probe"


def record_transition(
    runtime: Runtime, transition: Transition, *, cause: str, actor: str | None = None, session: Session | None = None
) -> None:
    """Write a transition as a row of ``circuit_breaker_events`` (logged, never raised, if it cannot).

    With ``session`` the row is added to the caller's transaction instead (an operator's action, audited
    in that transaction), and it commits or fails with it.
    """
    row = CircuitBreakerEvent(
        service=transition.service,
        from_state=transition.from_state,
        to_state=transition.to_state,
        cause=cause,
        calls=transition.calls,
        failures=transition.failures,
        actor=actor or _actor(),
        at=utcnow(),
    )
    log_event(
        "breaker.transition",
        service=transition.service,
        from_state=transition.from_state,
        to_state=transition.to_state,
        cause=cause,
    )
    if session is not None:
        session.add(row)
        return
    try:
        runtime.in_transaction(lambda s: s.add(row), patience=0)
    except Exception as exc:
        log_event("breaker.event_not_recorded", level=logging.WARNING, service=transition.service, error=str(exc))


class Breakers:
    """The circuit breakers of one app (``runtime.breakers``)."""

    def __init__(self, runtime: Runtime, config: BreakerConfig | None = None) -> None:
        self.runtime = runtime
        settings = runtime.settings
        self.config = config or BreakerConfig(
            failure_ratio=settings.breaker_failure_ratio,
            window=settings.breaker_window,
            min_calls=settings.breaker_min_calls,
            open_seconds=settings.breaker_open_seconds,
        )
        self._lock = threading.Lock()
        self._local: dict[str, LocalBreaker] = {}
        self._client: Any = None
        self._degraded: set[str] = set()

    def _redis(self) -> Any | None:
        url = self.runtime.settings.shared_state_url
        if url is None:
            return None
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        return self._client

    def client(self) -> Any:
        """The Redis client breakers and budgets share.

        Raises:
            RuntimeError: no shared-state Redis (the broker is not Redis and ``redis_url`` is unset).
        """
        client = self._redis()
        if client is None:
            raise RuntimeError("no Redis: the broker is not Redis and FUNCTION_RUNNER_REDIS_URL is unset")
        return client

    def shared(self, service: str) -> RedisBreaker | None:
        """The shared breaker of a service, or None without Redis."""
        client = self._redis()
        return RedisBreaker(service, self.config, client) if client is not None else None

    def local(self, service: str) -> LocalBreaker:
        """This process's breaker of a service (the fallback)."""
        with self._lock:
            return self._local.setdefault(service, LocalBreaker(service, self.config))

    def degraded(self) -> set[str]:
        """Services whose breaker runs per process now because Redis could not be reached."""
        return set(self._degraded)

    def _on_redis_error(self, service: str, exc: Exception) -> None:
        if service not in self._degraded:
            self._degraded.add(service)
            log_event("breaker.degraded", level=logging.WARNING, service=service, error=type(exc).__name__)

    def _on_redis_ok(self, service: str) -> None:
        if service in self._degraded:
            self._degraded.discard(service)
            log_event("breaker.shared_again", service=service)

    def allow(self, service: str, token: str) -> tuple[Admission, bool]:
        """Ask the service's breaker; returns the admission and whether it came from the local fallback."""
        shared = self.shared(service)
        if shared is not None:
            try:
                admission = shared.allow(token)
            except Exception as exc:
                self._on_redis_error(service, exc)
            else:
                self._on_redis_ok(service)
                if admission.transition is not None:
                    record_transition(self.runtime, admission.transition, cause="timeout")
                return admission, False
        admission = self.local(service).allow(token)
        if admission.transition is not None:
            record_transition(self.runtime, admission.transition, cause="local")
        return admission, True

    def record(self, service: str, token: str, *, success: bool, local: bool) -> None:
        """Report the outcome of an admitted call to the breaker that admitted it."""
        transition: Transition | None = None
        if not local:
            shared = self.shared(service)
            try:
                transition = shared.record(token, success=success) if shared is not None else None
            except Exception as exc:
                self._on_redis_error(service, exc)
                local = True
        if local:
            transition = self.local(service).record(token, success=success)
        if transition is not None:
            record_transition(self.runtime, transition, cause=_cause(transition, local=local))

    @contextlib.contextmanager
    def guard(self, service: str) -> Iterator[None]:
        """Make one call through the service's breaker.

        Raises:
            CircuitOpenError: the breaker refused the call (it was not made).
        """
        token = uuid.uuid4().hex
        admission, local = self.allow(service, token)
        if not admission.allowed:
            raise CircuitOpenError(service, admission.retry_after)
        started = time.monotonic()
        try:
            yield
        except Exception as exc:
            latency = (time.monotonic() - started) * 1000
            found = self.runtime.classifier.classify(exc)
            success = found.category not in (Category.TRANSIENT, Category.RESOURCE)
            self.record(service, token, success=success, local=local)
            self.runtime.health.observe(service, latency_ms=latency, ok=success, classification=found)
            raise
        self.record(service, token, success=True, local=local)
        self.runtime.health.observe(service, latency_ms=(time.monotonic() - started) * 1000, ok=True)

    def reset(self, service: str, *, actor: str, session: Session | None = None) -> str:
        """Close a service's breaker (an operator's reset), shared and local; the state it had.

        With ``session`` the transition's row joins the caller's transaction (see :func:`record_transition`).
        """
        before = self.state(service)
        shared = self.shared(service)
        if shared is not None:
            shared.reset()
        with self._lock:
            self._local.pop(service, None)
        record_transition(
            self.runtime, Transition(service, before, "closed"), cause="reset", actor=actor, session=session
        )
        return before

    def force_open(self, service: str, *, seconds: float, actor: str, session: Session | None = None) -> str:
        """Open a service's breaker for ``seconds`` (an operator's decision), cluster-wide; the state it had.

        Raises:
            RuntimeError: there is no Redis to share the state.
        """
        before = self.state(service)
        shared = self.shared(service)
        if shared is None:
            raise RuntimeError("forcing a breaker open needs Redis (a Redis broker, or FUNCTION_RUNNER_REDIS_URL)")
        shared.force_open(seconds)
        record_transition(
            self.runtime, Transition(service, before, "open"), cause="forced_open", actor=actor, session=session
        )
        return before

    def state(self, service: str) -> str:
        """The shared state of a service's breaker (the local one without Redis)."""
        shared = self.shared(service)
        if shared is not None:
            try:
                return shared.state()
            except Exception:
                pass
        return self.local(service).state
