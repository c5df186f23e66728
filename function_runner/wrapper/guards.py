"""The run step's guards: the circuit breaker the body runs through (``breaker=``) and the retry
budget its transient failures draw on (``retry_budget=``, default: the breaker's service); and what a
success does: it is counted (:mod:`~function_runner.wrapper.successes`) and credits the budget.

An open breaker refuses the call before the body runs (its error is classified like any other); a
budget's bookkeeping that fails is logged and never the task's outcome (a retry is then allowed).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

from error_handling.categories import Category
from error_handling.classification import Classification
from function_runner.events import log_event
from function_runner.wrapper import successes

if TYPE_CHECKING:
    from function_runner.wrapper.execution import Execution
    from function_runner.wrapper.services import Services

__all__ = ["breaker_guard", "retry_allowed", "succeeded"]


def breaker_guard(services: Services, service: str | None) -> contextlib.AbstractContextManager[object]:
    """The breaker of ``service`` around the block (nothing without one)."""
    return services.breakers.guard(service) if service else contextlib.nullcontext()


def succeeded(execution: Execution, budget: str | None) -> None:
    """The body succeeded: count it (in memory) and credit the budget of ``budget`` (a service), if any."""
    successes.count_success(execution)
    if not budget:
        return
    try:
        execution.services.budgets.on_success(budget)
    except Exception as exc:  # noqa: BLE001 - a budget only shapes retries: never the task's outcome
        log_event("budget.failed", level=logging.WARNING, error=type(exc).__name__)


def retry_allowed(services: Services, budget: str | None, classification: Classification) -> bool | None:
    """Draw a transient failure on the budget of ``budget``: whether a retry is allowed; None when no
    budget applies (no budget, or not a transient failure)."""
    if not budget or classification.category is not Category.TRANSIENT:
        return None
    try:
        return services.budgets.on_failure(budget)
    except Exception as exc:  # noqa: BLE001 - a budget only shapes retries: never the task's outcome
        log_event("budget.failed", level=logging.WARNING, error=type(exc).__name__)
        return True
