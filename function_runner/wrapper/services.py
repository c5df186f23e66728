"""What the wrapper's steps use of the app's services, as protocols the runtime satisfies by its shape.

The steps never import the runtime (the composition root): an :class:`~function_runner.wrapper.execution.Execution`
carries an object with these attributes, and each step reads only the ones it needs::

    SharedState ── shared_redis                       (deliveries, unrecorded)
    Services ─┬─ settings, classifier, policy, redactor, sealer, user_messages
              ├─ breakers, budgets                    (guards)
              ├─ gates, lease_store, renewer          (leases)
              └─ in_transaction, per_process          (claim, record, poison)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from error_handling.classifier import Classifier
    from error_handling.messages import UserMessages
    from error_handling.policy import RecoveryPolicy
    from error_handling.redaction import Redactor
    from error_handling.sealing import Sealer
    from function_runner.gates.gate import Gate
    from function_runner.gates.leases import LeaseRenewer, LeaseStore
    from function_runner.resilience.breakers import Breakers
    from function_runner.resilience.budgets import RetryBudgets
    from function_runner.resilience.shared_redis import SharedRedis
    from function_runner.settings import Settings

__all__ = ["Services", "SharedState"]

T = TypeVar("T")


class SharedState(Protocol):
    """The shared-state Redis (the delivery counters and the failures kept during an outage)."""

    @property
    def shared_redis(self) -> SharedRedis: ...


class Services(SharedState, Protocol):
    """Everything one execution's steps read of the app's services."""

    @property
    def settings(self) -> Settings: ...
    @property
    def classifier(self) -> Classifier: ...
    @property
    def policy(self) -> RecoveryPolicy: ...
    @property
    def redactor(self) -> Redactor: ...
    @property
    def sealer(self) -> Sealer: ...
    @property
    def user_messages(self) -> UserMessages: ...
    @property
    def breakers(self) -> Breakers: ...
    @property
    def budgets(self) -> RetryBudgets: ...
    @property
    def gates(self) -> Mapping[str, Gate]: ...
    @property
    def lease_store(self) -> LeaseStore: ...
    @property
    def renewer(self) -> LeaseRenewer: ...

    def in_transaction(self, work: Callable[[Session], T], *, patience: float | None = None) -> T:
        """Run ``work`` in one transaction, retrying while the database is unavailable."""
        ...

    def per_process(self, key: str, make: Callable[[], T]) -> T:
        """The value ``make()`` returned for ``key`` in this process (made again in a forked child)."""
        ...
