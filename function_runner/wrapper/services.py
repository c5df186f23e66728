"""What the wrapper's steps use of the app's services, as protocols the runtime satisfies by its shape.

The steps never import the runtime (the composition root): an :class:`~function_runner.wrapper.execution.Execution`
carries an object with these attributes, and each step reads only the ones it needs::

    Services ─┬─ Recording, SharedState               (see function_runner.services)
              ├─ classifier
              ├─ breakers, budgets                    (guards)
              ├─ gates, lease_store, renewer          (leases)
              └─ in_transaction, per_process          (claim, record, poison)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, TypeVar

from function_runner.services import Recording, SharedState

if TYPE_CHECKING:
    from error_handling.classifier import Classifier
    from function_runner.gates.gate import Gate
    from function_runner.gates.leases import LeaseRenewer, LeaseStore
    from function_runner.resilience.breakers import Breakers
    from function_runner.resilience.budgets import RetryBudgets

__all__ = ["Services"]

T = TypeVar("T")


class Services(Recording, SharedState, Protocol):
    """Everything one execution's steps read of the app's services."""

    @property
    def classifier(self) -> Classifier: ...
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

    def per_process(self, key: str, make: Callable[[], T]) -> T:
        """The value ``make()`` returned for ``key`` in this process (made again in a forked child)."""
        ...
