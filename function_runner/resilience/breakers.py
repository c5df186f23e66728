"""Circuit breakers for task code: one shared state per service (Redis), a per-process fallback, and
every transition recorded in ``circuit_breaker_events``.

In a task::

    @app.task(base=RecoverableTask, breaker="openai")      # the whole body, or:
    def summarise(text): ...

    with runtime_for(app).breakers.guard("openai"):        # one call
        client.chat.completions.create(...)

A refused call raises :class:`CircuitOpenError` (transient ``circuit_open``, retry hint = time left open).
Without Redis, or while it does not answer, each service's breaker runs in this process only
(``breaker.degraded``) until Redis answers again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import redis
from sqlalchemy.exc import SQLAlchemyError

from error_handling.breaker import (
    Admission,
    BreakerCause,
    BreakerConfig,
    BreakerState,
    LocalBreaker,
    RedisBreaker,
    Transition,
)
from error_handling.categories import Category, Reason
from error_handling.classification import Classification
from error_handling.exceptions import StorageUnavailable, TransientError
from error_handling.persistence.breakers import add_transition
from error_handling.persistence.models import utcnow
from function_runner.events import log_event
from function_runner.resilience.service_health import ServiceHealthRecorder
from function_runner.resilience.shared_redis import SharedRedis

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = ["Breakers", "CircuitOpenError", "TransitionLog"]

#: Runs work in one transaction, once (no retry).
WriteOnce = Callable[[Callable[["Session"], None]], None]


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


def _cause(transition: Transition, *, local: bool) -> BreakerCause:
    if local:
        return BreakerCause.LOCAL
    if transition.to_state == BreakerState.OPEN and transition.from_state == BreakerState.CLOSED:
        return BreakerCause.FAILURE_RATIO
    if transition.from_state == BreakerState.OPEN:
        return BreakerCause.TIMEOUT
    return BreakerCause.PROBE


class TransitionLog:
    """Writes each transition as a row of ``circuit_breaker_events`` and logs it (``breaker.transition``)."""

    def __init__(self, write: WriteOnce) -> None:
        self.write = write

    def record(
        self, transition: Transition, *, cause: BreakerCause, actor: str | None = None, session: Session | None = None
    ) -> None:
        """Record a transition (logged, never raised, if it cannot be written).

        With ``session`` the row is added to the caller's transaction instead (an operator's action,
        audited in that transaction), and it commits or fails with it.
        """
        log_event(
            "breaker.transition",
            service=transition.service,
            from_state=transition.from_state,
            to_state=transition.to_state,
            cause=cause,
        )
        at, who = utcnow(), actor or _actor()
        if session is not None:
            add_transition(session, transition, cause=cause, actor=who, at=at)
            return
        try:
            self.write(lambda s: add_transition(s, transition, cause=cause, actor=who, at=at))
        except (StorageUnavailable, SQLAlchemyError) as exc:
            log_event("breaker.event_not_recorded", level=logging.WARNING, service=transition.service, error=str(exc))


@dataclasses.dataclass(eq=False)
class Breakers:
    """The circuit breakers of one app (``runtime.breakers``)."""

    config: BreakerConfig
    _: dataclasses.KW_ONLY
    shared_redis: SharedRedis
    classify: Callable[[BaseException], Classification]
    health: ServiceHealthRecorder
    transitions: TransitionLog
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, init=False, repr=False)
    _local: dict[str, LocalBreaker] = dataclasses.field(default_factory=dict, init=False, repr=False)
    _degraded: set[str] = dataclasses.field(default_factory=set, init=False, repr=False)

    def shared(self, service: str) -> RedisBreaker | None:
        """The shared breaker of a service, or None without Redis."""
        client = self.shared_redis.client()
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
            except redis.RedisError as exc:
                self._on_redis_error(service, exc)
            else:
                self._on_redis_ok(service)
                if admission.transition is not None:
                    self.transitions.record(admission.transition, cause=BreakerCause.TIMEOUT)
                return admission, False
        admission = self.local(service).allow(token)
        if admission.transition is not None:
            self.transitions.record(admission.transition, cause=BreakerCause.LOCAL)
        return admission, True

    def record(self, service: str, token: str, *, success: bool, local: bool) -> None:
        """Report the outcome of an admitted call to the breaker that admitted it."""
        transition: Transition | None = None
        if not local:
            shared = self.shared(service)
            try:
                transition = shared.record(token, success=success) if shared is not None else None
            except redis.RedisError as exc:
                self._on_redis_error(service, exc)
                local = True
        if local:
            transition = self.local(service).record(token, success=success)
        if transition is not None:
            self.transitions.record(transition, cause=_cause(transition, local=local))

    @contextlib.contextmanager
    def guard(self, service: str) -> Iterator[None]:
        """Make one call through the service's breaker. A call counts as a failure of the service when
        its error is classified transient or resource; a validation or permanent error means the service
        answered, and counts as a success.

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
            found = self.classify(exc)
            success = found.category not in (Category.TRANSIENT, Category.RESOURCE)
            self.record(service, token, success=success, local=local)
            self.health.observe(service, latency_ms=latency, ok=success, classification=found)
            raise
        self.record(service, token, success=True, local=local)
        self.health.observe(service, latency_ms=(time.monotonic() - started) * 1000, ok=True)

    def reset(self, service: str, *, actor: str, session: Session | None = None) -> BreakerState:
        """Close a service's breaker (an operator's reset), shared and local; the state it had.

        With ``session`` the transition's row joins the caller's transaction (see :meth:`TransitionLog.record`).
        """
        before = self.state(service)
        shared = self.shared(service)
        if shared is not None:
            shared.reset()
        with self._lock:
            self._local.pop(service, None)
        self.transitions.record(
            Transition(service, before, BreakerState.CLOSED), cause=BreakerCause.RESET, actor=actor, session=session
        )
        return before

    def force_open(self, service: str, *, seconds: float, actor: str, session: Session | None = None) -> BreakerState:
        """Open a service's breaker for ``seconds`` (an operator's decision), cluster-wide; the state it had.

        Raises:
            RuntimeError: there is no Redis to share the state.
        """
        before = self.state(service)
        shared = self.shared(service)
        if shared is None:
            raise RuntimeError("forcing a breaker open needs Redis (a Redis broker, or FUNCTION_RUNNER_REDIS_URL)")
        shared.force_open(seconds)
        self.transitions.record(
            Transition(service, before, BreakerState.OPEN), cause=BreakerCause.FORCED_OPEN, actor=actor, session=session
        )
        return before

    def state(self, service: str) -> BreakerState:
        """The shared state of a service's breaker (the local one without Redis, or while it does not answer)."""
        shared = self.shared(service)
        if shared is not None:
            try:
                return shared.state()
            except redis.RedisError:
                pass
        return self.local(service).state
