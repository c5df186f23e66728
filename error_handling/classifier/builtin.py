"""The built-in rules applied to one exception: the lookups in :mod:`error_handling.rules` (a wrapped
original, a provider's body and the HTTP status, the MRO walk with its message and errno rules)."""

from __future__ import annotations

import re

from error_handling.categories import Category
from error_handling.classifier.subject import Subject
from error_handling.http import body_error_codes, body_message, google_quota_ids, safe_attr
from error_handling.rules import (
    CODE_RULES,
    DETERMINISTIC_RULES,
    ERRNO_BY_NUMBER,
    ERRNO_EXCEPTION,
    EXCEPTION_RULES,
    GOOGLE_LONG_QUOTA,
    HTML_DOCUMENT,
    HTTP_STATUS_CLASS_RULES,
    HTTP_STATUS_RULES,
    MESSAGE_RULES_BY_EXCEPTION,
    NETWORK_CLIENT_MODULES,
    PROVIDER_ERROR_CODES,
    PROVIDER_MESSAGE_RULES,
    PROVIDER_PRIORITY_MESSAGE_RULES,
    UNSCOPED_MESSAGE_RULES,
    WRAPPED_EXCEPTION_ATTRIBUTES,
    Outcome,
    Outcomes,
)

#: An outcome and the name of the rule that gave it.
Verdict = tuple[Outcome, str]


def wrapped(subject: Subject) -> BaseException | None:
    """The original error a wrapper holds (:data:`~error_handling.rules.WRAPPED_EXCEPTION_ATTRIBUTES`)."""
    for name in subject.names:
        attribute = WRAPPED_EXCEPTION_ATTRIBUTES.get(name)
        if attribute is not None:
            inner = safe_attr(subject.exc, attribute)
            return inner if isinstance(inner, BaseException) else None
    return None


def http_outcome(status: int, body: object) -> Verdict | None:
    """The verdict of a provider's error body, else of the status (statuses below 400 give none)."""
    return _body_outcome(status, body) or _status_outcome(status)


def _body_outcome(status: int, body: object) -> Verdict | None:
    message = body_message(body) if status >= 400 else None
    verdict = _body_message_outcome(message, PROVIDER_PRIORITY_MESSAGE_RULES)
    if verdict is not None:
        return verdict
    codes = body_error_codes(body)
    if any(code.casefold() == "resource_exhausted" for code in codes):
        long_quota = next((q for q in google_quota_ids(body) if GOOGLE_LONG_QUOTA.search(q)), None)
        if long_quota is not None:
            return PROVIDER_ERROR_CODES["insufficient_quota"], f"google_quota:{long_quota}"
    for code in codes:
        outcome = PROVIDER_ERROR_CODES.get(code.casefold())
        if outcome is not None:
            return outcome, f"body:{code}"
    return _body_message_outcome(message, PROVIDER_MESSAGE_RULES)


def _body_message_outcome(
    message: str | None, rules: tuple[tuple[str, re.Pattern[str], Outcome], ...]
) -> Verdict | None:
    if message:
        for name, pattern, outcome in rules:
            if pattern.search(message):
                return outcome, f"body_message:{name}"
    return None


def _status_outcome(status: int) -> Verdict | None:
    if status < 400:
        return None
    outcome = HTTP_STATUS_RULES.get(status)
    if outcome is not None:
        return outcome, f"http:{status}"
    digit = status // 100
    outcome = HTTP_STATUS_CLASS_RULES.get(digit)
    return (outcome, f"http:{digit}xx") if outcome is not None else None


def code_outcome(subject: Subject) -> Verdict | None:
    """The verdict of the first code rule (:data:`~error_handling.rules.CODE_RULES`) that finds a code
    with an outcome on ``subject``."""
    for rule in CODE_RULES:
        if rule.exceptions and rule.exceptions.isdisjoint(subject.names):
            continue
        for attribute in rule.attributes:
            code = _code(subject.exc, attribute)
            if isinstance(code, bool) or not isinstance(code, str | int) or code == "":
                continue
            outcome = rule.lookup(str(code))
            if outcome is not None:
                return outcome, f"{rule.name}:{code}"
            break
    return None


def _code(exc: BaseException, attribute: str) -> object:
    """The attribute ``attribute`` of ``exc``; ``args`` means the first argument (DB-API drivers such as
    PyMySQL raise ``OperationalError(number, message)``)."""
    if attribute == "args":
        args = safe_attr(exc, "args")
        first = args[0] if isinstance(args, tuple) and args else None
        return first if type(first) in (int, str) else None  # not a subclass: its __str__ is not run
    return safe_attr(exc, attribute)


def type_outcome(subject: Subject) -> Verdict | None:
    """The code rules, then the MRO walk (scoped message rules, then the class's entry, then ``errno``
    at ``OSError``), then the message rules for any exception."""
    verdict = code_outcome(subject)
    if verdict is not None:
        return verdict
    for name in subject.names:
        verdict = _class_outcome(subject, name)
        if verdict is not None:
            return verdict
    for message_rule in UNSCOPED_MESSAGE_RULES:
        if message_rule.pattern.search(subject.message):
            return message_rule.outcome, f"message:{message_rule.name}"
    return None


def _class_outcome(subject: Subject, name: str) -> Verdict | None:
    for message_rule in MESSAGE_RULES_BY_EXCEPTION.get(name, ()):
        if message_rule.pattern.search(subject.message):
            return message_rule.outcome, f"message:{message_rule.name}"
    outcome = EXCEPTION_RULES.get(name)
    if outcome is not None:
        return outcome, f"exception:{name}"
    if name == ERRNO_EXCEPTION:
        number = safe_attr(subject.exc, "errno")
        entry = ERRNO_BY_NUMBER.get(number) if isinstance(number, int) else None
        if entry is not None:
            return entry[1], f"errno:{entry[0]}"
    return None


def deterministic_outcome(subject: Subject) -> Verdict | None:
    """The verdict of the deterministic rules (:mod:`error_handling.rules.deterministic`) on the class
    of ``subject``: malformed input only when the error carries no HTTP response and no network client
    raised it; a JSON document that is an HTML page is a service's error page."""
    for name in subject.names:
        outcome = DETERMINISTIC_RULES.get(name)
        if outcome is None:
            continue
        if outcome.category is Category.VALIDATION:
            document = safe_attr(subject.exc, "doc")
            if isinstance(document, str) and HTML_DOCUMENT.match(document):
                return Outcomes.UNAVAILABLE, "exception:html_instead_of_json"
            if subject.http is not None or subject.raised_in(NETWORK_CLIENT_MODULES):
                return None
        return outcome, f"exception:{name}"
    return None
