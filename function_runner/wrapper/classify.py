"""The classify step: what a failure is (category, reason, safe messages) and which policy decides it.

The classifier's rules are the task's (``recovery_rules``) before the app's and the built-ins; the
message and the user message are redacted before anything records them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from error_handling.classification import Classification, Rule
from error_handling.exceptions import ConfigurationError
from error_handling.policy import RecoveryPolicy
from function_runner.events import log_event

if TYPE_CHECKING:
    from function_runner.wrapper.services import Services

__all__ = ["classify", "policy_of"]


def classify(services: Services, exc: BaseException, *, rules: Sequence[Rule] = ()) -> Classification:
    """Classify ``exc`` (``rules`` first), its messages redacted."""
    found = services.classifier.classify(exc, rules=rules)
    redact = services.redactor.redact_text
    return found.replace(
        message=redact(found.message), user_message=redact(services.user_messages.for_classification(found))
    )


def policy_of(
    services: Services, overrides: RecoveryPolicy | dict[str, Any] | None, *, task_name: str
) -> RecoveryPolicy:
    """The task's policy (the app's with the task's ``recovery_policy``); one that is invalid is logged
    and the app's policy used."""
    try:
        return services.policy.merged(overrides)
    except ConfigurationError as problem:
        log_event("task.invalid_policy", level=logging.ERROR, task=task_name, error=str(problem))
        return services.policy
