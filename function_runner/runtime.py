"""The per-app runtime, the composition root: it builds each collaborator from one :class:`Settings`
and hands it only what it uses (config values, the one shared Redis client, callbacks such as "run this
in a transaction")::

    Runtime ─┬─ settings, classifier, policy, redactor, sealer, user messages
             ├─ engine / sessions / in_transaction (per process) ── failures (group commit)
             ├─ shared_redis ─┬─ breakers ── health, transitions
             │                ├─ budgets, fallbacks
             │                └─ lease_store ── renewer
             └─ gates (declared)

A :class:`Runtime` is attached to a Celery app by :func:`function_runner.install` (or lazily, from the
environment, the first time a :class:`~function_runner.wrapper.task.RecoverableTask` of the app fails). Its
engine is created on first use *in each process*: a prefork child never reuses its parent's
connections.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from error_handling.breaker import BreakerConfig
from error_handling.classification import Rule
from error_handling.classifier import Classifier
from error_handling.exceptions import StorageUnavailable
from error_handling.messages import UserMessages
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.policy import RecoveryPolicy
from error_handling.redaction import Redactor
from error_handling.sealing import Sealer
from function_runner.gates.gate import Gate, declared
from function_runner.gates.leases import LeaseRenewer, LeaseStore, RedisLeaseStore, SqlLeaseStore
from function_runner.resilience.breakers import Breakers, TransitionLog
from function_runner.resilience.budgets import RetryBudgets
from function_runner.resilience.fallbacks import Fallbacks
from function_runner.resilience.service_health import ServiceHealthRecorder
from function_runner.resilience.shared_redis import SharedRedis
from function_runner.settings import Settings

if TYPE_CHECKING:
    from celery import Celery

T = TypeVar("T")

#: Attribute under which the runtime hangs on a Celery app.
APP_ATTRIBUTE = "function_runner"


class Runtime:
    """Everything the wrapper and the dispatcher need, built once per app from one :class:`Settings`."""

    def __init__(
        self,
        settings: Settings,
        *,
        rules: Sequence[Rule] = (),
        policy: RecoveryPolicy | None = None,
        gates: Sequence[Gate] = (),
        user_messages: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        #: What end users are told about failures, per reason (see :mod:`error_handling.messages`).
        self.user_messages = UserMessages(user_messages)
        #: The resource gates declared on the app, by name.
        self.gates: dict[str, Gate] = declared(gates)
        self.classifier = Classifier(rules)
        self.policy = policy or settings.recovery_policy()
        self.redactor = Redactor(extra_keys=settings.redact_keys)
        self._sealer: Sealer | None = None
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._engine: Engine | None = None
        self._sessions: sessionmaker[Session] | None = None
        self._per_process: dict[str, tuple[int, Any]] = {}
        self._lease_store: LeaseStore | None = None
        self._renewer: LeaseRenewer | None = None
        #: The one client of the shared-state Redis (``redis_url``, or a Redis broker), if there is one.
        self.shared_redis = SharedRedis(settings.shared_state_url)
        #: Calls made through breakers, counted per service (see :mod:`~function_runner.resilience.service_health`).
        self.health = ServiceHealthRecorder(redact=self.redactor.redact_text, write=self.write_once)
        #: The circuit breakers of this app's services (see :mod:`~function_runner.resilience.breakers`).
        self.breakers = Breakers(
            BreakerConfig(
                failure_ratio=settings.breaker_failure_ratio,
                window=settings.breaker_window,
                min_calls=settings.breaker_min_calls,
                open_seconds=settings.breaker_open_seconds,
            ),
            shared_redis=self.shared_redis,
            classify=self.classifier.classify,
            health=self.health,
            transitions=TransitionLog(self.write_once),
        )
        #: The cluster-wide retry budgets of this app's services (see :mod:`~function_runner.resilience.budgets`).
        self.budgets = RetryBudgets(self.shared_redis)
        #: The fallback chains of this app's services (see :mod:`~function_runner.resilience.fallbacks`).
        self.fallbacks = Fallbacks(
            breakers=self.breakers,
            classify=self.classifier.classify,
            shared_redis=self.shared_redis,
            write=self.write_once,
            declared=settings.fallbacks,
        )

    @property
    def sealer(self) -> Sealer:
        """The sealer for secret values (loaded on first use)."""
        if self._sealer is None:
            self._sealer = self.settings.sealer()
        return self._sealer

    @property
    def lease_store(self) -> LeaseStore:
        """Where capacity leases are counted: the shared-state Redis (``redis_url``, or a Redis broker), else the database."""
        if self._lease_store is None:
            client = self.shared_redis.client()
            self._lease_store = RedisLeaseStore(client) if client is not None else SqlLeaseStore(self.sessions)
        return self._lease_store

    @property
    def renewer(self) -> LeaseRenewer:
        """Renews the capacity leases this process holds."""
        if self._renewer is None:
            self._renewer = LeaseRenewer(self.lease_store, self.settings.gate_lease_seconds)
        return self._renewer

    def per_process(self, key: str, make: Callable[[], T]) -> T:
        """The value ``make()`` returned for ``key`` in this process, made on first use and again in a
        forked child (a pool process must not share its parent's threads or connections). The wrapper
        keeps its group commit here, so the runtime does not need to know it."""
        pid = os.getpid()
        found = self._per_process.get(key)
        if found is not None and found[0] == pid:
            return cast(T, found[1])
        with self._lock:
            found = self._per_process.get(key)
            if found is None or found[0] != pid:
                found = (pid, make())
                self._per_process[key] = found
            return cast(T, found[1])

    @property
    def engine(self) -> Engine:
        """This process's engine (created on first use, again after a fork)."""
        self._ensure_engine()
        assert self._engine is not None
        return self._engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        """This process's session factory."""
        self._ensure_engine()
        assert self._sessions is not None
        return self._sessions

    def _ensure_engine(self) -> None:
        pid = os.getpid()
        if self._pid == pid and self._sessions is not None:
            return
        with self._lock:
            if self._pid != pid or self._sessions is None:
                if self._engine is not None and self._pid != pid:
                    self._engine.dispose(close=False)  # the parent's connections stay the parent's
                self._engine = make_engine(self.settings.effective_database_url)
                self._sessions = make_sessionmaker(self._engine)
                self._pid = pid

    def in_transaction(self, work: Callable[[Session], T], *, patience: float | None = None) -> T:
        """Run ``work`` in one transaction, retrying while the database is unavailable.

        Args:
            work: called with the session; it must be safe to run again after a rollback.
            patience: seconds to keep retrying (default: ``storage_retry_timeout``); 0 tries once.

        Raises:
            StorageUnavailable: if the database is still unreachable when patience runs out.
        """
        patience = self.settings.storage_retry_timeout if patience is None else patience
        deadline = time.monotonic() + patience
        delay = 0.1
        while True:
            try:
                with transaction(self.sessions) as session:
                    return work(session)
            except StorageUnavailable:
                if time.monotonic() + delay > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 2.0)

    def write_once(self, work: Callable[[Session], None]) -> None:
        """Run ``work`` in one transaction, trying once (telemetry and history that is logged, not
        retried, when the database cannot take it).

        Raises:
            StorageUnavailable: if the database cannot be reached.
        """
        self.in_transaction(work, patience=0)

    def close(self) -> None:
        """Close this process's per-process values that can be closed (its success counter writes what
        it counted and stops its thread), then dispose of this process's engine."""
        pid = os.getpid()
        with self._lock:
            mine = {key: value for key, (owner, value) in self._per_process.items() if owner == pid}
            for key in mine:
                del self._per_process[key]
        for value in mine.values():
            closer = getattr(value, "close", None)
            if callable(closer):
                closer()
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
            self._engine = None
            self._sessions = None
            self._pid = None


def runtime_for(app: Celery) -> Runtime:
    """Return the runtime attached to ``app``, attaching one built from the environment if needed."""
    found: Any = getattr(app, APP_ATTRIBUTE, None)
    if isinstance(found, Runtime):
        return found
    runtime = Runtime(Settings())
    setattr(app, APP_ATTRIBUTE, runtime)
    return runtime
