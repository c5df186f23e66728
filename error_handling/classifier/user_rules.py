"""User rules (:class:`~error_handling.classification.Rule`, an app's or a task's) matched against an
exception or an HTTP response. A predicate that raises counts as not matching and is logged (event
``classifier.predicate_failed``): a broken rule must not stop a failure from being recorded."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Sequence

from error_handling.classification import ExceptionSpec, Rule
from error_handling.classifier.subject import Match, Subject, valid_hint
from error_handling.exceptions import ConfigurationError
from error_handling.fingerprint import qualified_name

# the logger of the classifier, whichever of its modules logs
_logger = logging.getLogger("error_handling.classifier")


def checked_rules(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    """``rules`` as a tuple.

    Raises:
        ConfigurationError: if an element is not a :class:`Rule`.
    """
    checked = tuple(rules)
    for rule in checked:
        if not isinstance(rule, Rule):
            raise ConfigurationError(f"classifier rules must be Rule instances, not {type(rule).__name__}")
    return checked


def _exception_matches(specs: ExceptionSpec | tuple[ExceptionSpec, ...], subject: Subject) -> bool:
    for spec in specs if isinstance(specs, tuple) else (specs,):
        if isinstance(spec, str):
            if spec.removeprefix("builtins.") in subject.names:
                return True
        elif isinstance(subject.exc, spec):
            return True
    return False


def _status_matches(allowed: int | range | Collection[int], status: int | None) -> bool:
    if status is None:
        return False
    if isinstance(allowed, int):
        return status == allowed
    return status in allowed


def _predicate_holds(predicate: Callable[[BaseException], bool], rule: Rule, label: str, exc: BaseException) -> bool:
    try:
        return bool(predicate(exc))
    except Exception:  # a user predicate is foreign code: a broken rule must not stop the failure being recorded
        fields = {"rule": label, "reason": rule.reason, "exc_type": qualified_name(type(exc))}
        _logger.warning(
            "classifier.predicate_failed rule=%s reason=%s exc_type=%s",
            label,
            rule.reason,
            fields["exc_type"],
            exc_info=True,
            extra={"fr_event": "classifier.predicate_failed", "fr_fields": fields},
        )
        return False


def rule_matches(rule: Rule, label: str, subject: Subject) -> bool:
    """Whether every condition ``rule`` gives holds for the exception."""
    if rule.exception is not None and not _exception_matches(rule.exception, subject):
        return False
    if rule.status is not None and not _status_matches(rule.status, subject.status):
        return False
    if rule.message is not None and re.search(rule.message, subject.message) is None:
        return False
    return rule.predicate is None or _predicate_holds(rule.predicate, rule, label, subject.exc)


def first_http_rule(rules: tuple[Rule, ...], prefix: str, status: int, message: str) -> Match | None:
    """The first rule that matches an HTTP response: only rules on ``status`` and ``message``."""
    for index, rule in enumerate(rules):
        if rule.exception is not None or rule.predicate is not None:
            continue
        if rule.status is not None and not _status_matches(rule.status, status):
            continue
        if rule.message is not None and re.search(rule.message, message) is None:
            continue
        return Match(
            rule.category,
            rule.reason,
            f"{prefix}:{index}",
            resource=rule.resource,
            retry_after=valid_hint(rule.retry_after),
            user_message=rule.user_message,
        )
    return None
