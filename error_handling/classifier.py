"""The classifier: from an exception, or an HTTP response, to a :class:`Classification`.

Rules are data (:mod:`error_handling.rules`); foreign exceptions are matched by qualified class name
along the MRO, so this module imports no library. :meth:`Classifier.classify` tries, first match wins:

1. **Rules passed at call time** (a task's own rules), in order; rule ``"task:<i>"``.
2. **The classifier's rules** (the app's), in order; rule ``"user:<i>"``.
3. **This project's exception tree**: a :class:`~error_handling.exceptions.RecoverableError` states its
   category, reason, retry hint, user message (and a ``ResourceError`` its resource);
   rule ``"recoverable:<class>"``.
4. **Wrappers** (:data:`~error_handling.rules.WRAPPED_EXCEPTION_ATTRIBUTES`): SQLAlchemy's
   ``StatementError.orig`` and urllib3's ``MaxRetryError.reason`` are classified first, with every
   rule; rule ``"wrapped:<rule of the original>"``. Only if nothing matches the original does the
   wrapper's own entry apply.
5. **HTTP**: an error that carries an HTTP status (see :mod:`error_handling.http`): a provider error
   code in its body (``"body:insufficient_quota"``), else the status (``"http:429"``), else the status
   class (``"http:5xx"``). This comes before the class name because it is more specific: an
   ``openai.RateLimitError`` whose body says ``insufficient_quota`` waits on the quota instead of being
   retried as a rate limit. Statuses below 400 classify nothing unless the body names a code.
6. **The MRO walk**, from the error's own class up: at each class, message rules scoped to it
   (``"message:redis_oom"``), then its entry in the exception table (``"exception:httpx.ReadTimeout"``,
   Celery's and billiard's too), and at ``OSError`` its ``errno`` (``"errno:ENOSPC"``).
7. **Message rules for any exception** (``"message:gpu_out_of_memory"`` for "CUDA out of memory").
8. **The cause**: if nothing above matched and the error was raised ``from`` another
   (``__cause__``), the cause is classified with every rule (recursively, up to
   :data:`MAX_CHAIN_DEPTH` links); rule ``"cause:<rule of the cause>"``. The implicit context
   (``__context__``, an error raised while handling another) is not followed: it is often a different
   failure, such as a bug in the handler, while ``raise ... from`` states what caused what.
9. Otherwise ``transient`` / ``unclassified`` (rule ``"unclassified"``): retried with the unclassified
   budget, then dead-lettered.

The fields of the result:

- ``retry_after``: the error's own hint (a ``RecoverableError``'s ``retry_after``, else the largest
  hint in its response headers, :func:`~error_handling.http.parse_retry_after`), else the matching
  rule's ``retry_after``. What the error says about itself wins over what a rule says about errors
  like it; the same order holds for ``user_message`` and ``resource``.
- ``user_message``: the ``RecoverableError``'s, else the rule's, else
  :func:`~error_handling.classification.default_user_message`.
- ``resource`` (``resource`` category only): the ``ResourceError``'s, else the rule's, else
  :data:`~error_handling.categories.DEFAULT_RESOURCE_FOR_REASON` for the reason, else ``"resource"``.
- ``fingerprint``, ``exc_type`` and ``message`` always describe the exception given, even when the
  match came from its cause or wrapped original; ``status_code`` and ``retry_after`` come from the
  exception that matched. ``message`` is ``str(exc)`` cut to :data:`MAX_MESSAGE_LENGTH` characters,
  not yet redacted.

A rule's ``message`` pattern is searched in that cut message. A rule's ``predicate`` that raises counts
as not matching and is logged (event ``classifier.predicate_failed``): a broken rule must not stop a
failure from being recorded. Classifying an exception never raises (only rules that are not
:class:`Rule` instances raise :class:`~error_handling.exceptions.ConfigurationError`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Final

from error_handling.categories import DEFAULT_RESOURCE_FOR_REASON, Category, Reason
from error_handling.classification import Classification, ExceptionSpec, Rule, default_user_message
from error_handling.exceptions import ConfigurationError, RecoverableError, ResourceError
from error_handling.fingerprint import fingerprint, fingerprint_parts, normalise_message, qualified_name
from error_handling.http import (
    HttpDetails,
    body_error_codes,
    body_message,
    body_retry_delay,
    decode_body,
    google_quota_ids,
    http_details,
    is_http_status,
    parse_retry_after,
    safe_attr,
)
from error_handling.rules import (
    ERRNO_BY_NUMBER,
    ERRNO_EXCEPTION,
    EXCEPTION_RULES,
    GOOGLE_LONG_QUOTA,
    HTTP_STATUS_CLASS_RULES,
    HTTP_STATUS_RULES,
    MESSAGE_RULES_BY_EXCEPTION,
    PROVIDER_ERROR_CODES,
    PROVIDER_MESSAGE_RULES,
    UNCLASSIFIED,
    UNSCOPED_MESSAGE_RULES,
    WRAPPED_EXCEPTION_ATTRIBUTES,
    Outcome,
)

__all__ = [
    "DEFAULT_CLASSIFIER",
    "MAX_CHAIN_DEPTH",
    "MAX_MESSAGE_LENGTH",
    "Classifier",
    "classify",
    "classify_http",
]

#: Characters of ``str(exc)`` kept in a classification's ``message``.
MAX_MESSAGE_LENGTH: Final = 2000
#: How many ``__cause__`` / wrapped links are followed from the exception given.
MAX_CHAIN_DEPTH: Final = 5
#: The rule name of the fallback.
_FALLBACK_RULE = "unclassified"

_logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class _Match:
    """What matched, before it becomes a classification."""

    category: Category
    reason: str
    rule: str
    resource: str | None = None
    retry_after: float | None = None
    user_message: str | None = None
    status_code: int | None = None

    def via(self, prefix: str) -> _Match:
        return dataclasses.replace(self, rule=f"{prefix}:{self.rule}")


@dataclasses.dataclass(slots=True)
class _Subject:
    """One exception being looked at, with what was read from it (read once)."""

    exc: BaseException
    message: str
    http: HttpDetails | None
    names: tuple[str, ...]

    @property
    def status(self) -> int | None:
        return self.http.status if self.http is not None else None


class Classifier:
    """Classifies failures: user rules first, in order, then the built-in rules.

    A classifier is immutable and holds no shared state; build one per app (with the app's rules) and
    use it from any thread.

    Args:
        rules: the app's rules, evaluated in order before the built-ins.
        clock: the current time as a Unix timestamp, for retry hints given as dates (for tests).

    Raises:
        ConfigurationError: if an element of ``rules`` is not a :class:`Rule`.
    """

    __slots__ = ("_clock", "_rules")

    def __init__(self, rules: Sequence[Rule] = (), *, clock: Callable[[], float] = time.time) -> None:
        self._rules: tuple[Rule, ...] = _checked_rules(rules)
        self._clock = clock

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The classifier's own rules, in evaluation order."""
        return self._rules

    def with_rules(self, rules: Sequence[Rule]) -> Classifier:
        """Return a new classifier that evaluates ``rules`` first, then this classifier's rules.

        ``c.with_rules(r).classify(exc)`` classifies like ``c.classify(exc, rules=r)``.

        Raises:
            ConfigurationError: if an element of ``rules`` is not a :class:`Rule`.
        """
        return Classifier((*_checked_rules(rules), *self._rules), clock=self._clock)

    def classify(self, exc: BaseException, *, rules: Sequence[Rule] = ()) -> Classification:
        """Classify an exception (see the module docstring for the order rules are tried in).

        Args:
            exc: the exception, with its traceback if it was raised (the fingerprint uses it).
            rules: extra rules for this call (a task's own), evaluated before the classifier's.

        Raises:
            ConfigurationError: if an element of ``rules`` is not a :class:`Rule`.
        """
        call_rules = _checked_rules(rules)
        subject = _subject(exc)
        match = self._match(subject, call_rules, depth=0, seen={id(exc)})
        if match is None:
            match = _from_outcome(UNCLASSIFIED, _FALLBACK_RULE, subject=subject, now=self._clock())
        return _classification(
            match,
            fingerprint=fingerprint(exc, message=subject.message),
            exc_type=qualified_name(type(exc)),
            message=subject.message,
        )

    def classify_http(
        self,
        status: int,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: Any = None,
        *,
        rules: Sequence[Rule] = (),
    ) -> Classification:
        """Classify an HTTP response that was not raised as an exception.

        The body's provider error code, then the status, decide (as for an exception carrying them);
        the retry hint is parsed from ``headers``. User rules apply when their only conditions are
        ``status`` and ``message`` (searched in the body's message); rules on an exception class or a
        predicate need an exception and never match here.

        Args:
            status: the HTTP status.
            headers: the response headers (a mapping, pairs, or an object with ``items()``).
            body: the response body: parsed JSON, JSON text or bytes, or plain text.
            rules: extra rules for this call, evaluated before the classifier's.

        Raises:
            ValueError: if ``status`` is not an HTTP status (an int in 100..599).
            ConfigurationError: if an element of ``rules`` is not a :class:`Rule`.
        """
        if not is_http_status(status):
            raise ValueError(f"status must be an HTTP status (100..599), not {status!r}")
        call_rules = _checked_rules(rules)
        decoded = decode_body(body)
        stated = body_message(decoded) or ""
        message = (stated or f"HTTP {status}")[:MAX_MESSAGE_LENGTH]
        retry_after = parse_retry_after(headers, now=self._clock())
        match = _first_http_rule(call_rules, "task", status, message) or _first_http_rule(
            self._rules, "user", status, message
        )
        if match is None:
            verdict = _http_outcome(status, decoded)
            outcome, rule = verdict if verdict is not None else (UNCLASSIFIED, _FALLBACK_RULE)
            match = _Match(outcome.category, outcome.reason.value, rule, resource=outcome.resource_name())
        match = dataclasses.replace(
            match,
            retry_after=retry_after if retry_after is not None else match.retry_after,
            status_code=status,
        )
        return _classification(
            match,
            fingerprint=fingerprint_parts(("http", str(status), normalise_message(stated))),
            exc_type=None,
            message=message,
        )

    def _match(self, subject: _Subject, call_rules: tuple[Rule, ...], *, depth: int, seen: set[int]) -> _Match | None:
        now = self._clock()
        for prefix, rules in (("task", call_rules), ("user", self._rules)):
            for index, rule in enumerate(rules):
                label = f"{prefix}:{index}"
                if _rule_matches(rule, label, subject):
                    return _from_rule(rule, label, subject=subject, now=now)
        builtin = self._builtin(subject, call_rules, depth=depth, seen=seen, now=now)
        if builtin is not None:
            return builtin
        cause = subject.exc.__cause__
        if cause is not None:
            inner = self._follow(cause, call_rules, depth=depth, seen=seen)
            if inner is not None:
                return inner.via("cause")
        return None

    def _follow(
        self, linked: BaseException, call_rules: tuple[Rule, ...], *, depth: int, seen: set[int]
    ) -> _Match | None:
        if depth >= MAX_CHAIN_DEPTH or id(linked) in seen:
            return None
        seen.add(id(linked))
        return self._match(_subject(linked), call_rules, depth=depth + 1, seen=seen)

    def _builtin(
        self, subject: _Subject, call_rules: tuple[Rule, ...], *, depth: int, seen: set[int], now: float
    ) -> _Match | None:
        exc = subject.exc
        if isinstance(exc, RecoverableError):
            category = getattr(type(exc), "category", None)
            if isinstance(category, Category):
                return _Match(
                    category,
                    exc.reason,
                    f"recoverable:{subject.names[0]}",
                    resource=exc.resource if isinstance(exc, ResourceError) else None,
                    retry_after=_error_hint(subject, now),
                    user_message=exc.user_message,
                    status_code=subject.status,
                )
        wrapped = _wrapped(subject)
        if wrapped is not None:
            inner = self._follow(wrapped, call_rules, depth=depth, seen=seen)
            if inner is not None:
                return inner.via("wrapped")
        if subject.http is not None and subject.status is not None:
            verdict = _http_outcome(subject.status, subject.http.body)
            if verdict is not None:
                return _from_outcome(verdict[0], verdict[1], subject=subject, now=now)
        verdict = _type_outcome(subject)
        if verdict is not None:
            return _from_outcome(verdict[0], verdict[1], subject=subject, now=now)
        return None


def _checked_rules(rules: Sequence[Rule]) -> tuple[Rule, ...]:
    checked = tuple(rules)
    for rule in checked:
        if not isinstance(rule, Rule):
            raise ConfigurationError(f"classifier rules must be Rule instances, not {type(rule).__name__}")
    return checked


def _mro_names(cls: type[BaseException]) -> tuple[str, ...]:
    return tuple(qualified_name(klass) for klass in cls.__mro__)


def _safe_message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # a foreign __str__ may raise anything; classification must not
        text = f"<unprintable {qualified_name(type(exc))}>"
    return text[:MAX_MESSAGE_LENGTH]


def _subject(exc: BaseException) -> _Subject:
    return _Subject(exc=exc, message=_safe_message(exc), http=http_details(exc), names=_mro_names(type(exc)))


def _wrapped(subject: _Subject) -> BaseException | None:
    for name in subject.names:
        attribute = WRAPPED_EXCEPTION_ATTRIBUTES.get(name)
        if attribute is not None:
            inner = safe_attr(subject.exc, attribute)
            return inner if isinstance(inner, BaseException) else None
    return None


def _http_outcome(status: int, body: object) -> tuple[Outcome, str] | None:
    codes = body_error_codes(body)
    if any(code.casefold() == "resource_exhausted" for code in codes):
        long_quota = next((q for q in google_quota_ids(body) if GOOGLE_LONG_QUOTA.search(q)), None)
        if long_quota is not None:
            return PROVIDER_ERROR_CODES["insufficient_quota"], f"google_quota:{long_quota}"
    for code in codes:
        outcome = PROVIDER_ERROR_CODES.get(code.casefold())
        if outcome is not None:
            return outcome, f"body:{code}"
    if status >= 400:
        message = body_message(body)
        if message:
            for name, pattern, outcome in PROVIDER_MESSAGE_RULES:
                if pattern.search(message):
                    return outcome, f"body_message:{name}"
    if status < 400:
        return None
    outcome = HTTP_STATUS_RULES.get(status)
    if outcome is not None:
        return outcome, f"http:{status}"
    digit = status // 100
    outcome = HTTP_STATUS_CLASS_RULES.get(digit)
    return (outcome, f"http:{digit}xx") if outcome is not None else None


def _type_outcome(subject: _Subject) -> tuple[Outcome, str] | None:
    for name in subject.names:
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
    for message_rule in UNSCOPED_MESSAGE_RULES:
        if message_rule.pattern.search(subject.message):
            return message_rule.outcome, f"message:{message_rule.name}"
    return None


def _valid_hint(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def _error_hint(subject: _Subject, now: float) -> float | None:
    """The retry hint the error states itself: a RecoverableError's, else its response headers'."""
    if isinstance(subject.exc, RecoverableError):
        own = _valid_hint(subject.exc.retry_after)
        if own is not None:
            return own
    if subject.http is not None:
        if subject.http.headers:
            hint = parse_retry_after(subject.http.headers, now=now)
            if hint is not None:
                return hint
        return body_retry_delay(subject.http.body)
    return None


def _own_user_message(exc: BaseException) -> str | None:
    return exc.user_message if isinstance(exc, RecoverableError) and exc.user_message else None


def _from_outcome(outcome: Outcome, rule: str, *, subject: _Subject, now: float) -> _Match:
    return _Match(
        outcome.category,
        outcome.reason.value,
        rule,
        resource=outcome.resource,
        retry_after=_error_hint(subject, now),
        user_message=_own_user_message(subject.exc),
        status_code=subject.status,
    )


def _from_rule(rule: Rule, label: str, *, subject: _Subject, now: float) -> _Match:
    own_resource = subject.exc.resource if isinstance(subject.exc, ResourceError) else None
    hint = _error_hint(subject, now)
    return _Match(
        rule.category,
        rule.reason,
        label,
        resource=own_resource or rule.resource,
        retry_after=hint if hint is not None else _valid_hint(rule.retry_after),
        user_message=_own_user_message(subject.exc) or rule.user_message,
        status_code=subject.status,
    )


def _exception_matches(specs: ExceptionSpec | tuple[ExceptionSpec, ...], subject: _Subject) -> bool:
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


def _rule_matches(rule: Rule, label: str, subject: _Subject) -> bool:
    if rule.exception is not None and not _exception_matches(rule.exception, subject):
        return False
    if rule.status is not None and not _status_matches(rule.status, subject.status):
        return False
    if rule.message is not None and re.search(rule.message, subject.message) is None:
        return False
    return rule.predicate is None or _predicate_holds(rule.predicate, rule, label, subject.exc)


def _first_http_rule(rules: tuple[Rule, ...], prefix: str, status: int, message: str) -> _Match | None:
    for index, rule in enumerate(rules):
        if rule.exception is not None or rule.predicate is not None:
            continue
        if rule.status is not None and not _status_matches(rule.status, status):
            continue
        if rule.message is not None and re.search(rule.message, message) is None:
            continue
        return _Match(
            rule.category,
            rule.reason,
            f"{prefix}:{index}",
            resource=rule.resource,
            retry_after=_valid_hint(rule.retry_after),
            user_message=rule.user_message,
        )
    return None


def _resource_for(match: _Match) -> str | None:
    if match.category is not Category.RESOURCE:
        return None
    return (
        match.resource
        or DEFAULT_RESOURCE_FOR_REASON.get(match.reason)
        or DEFAULT_RESOURCE_FOR_REASON[Reason.RESOURCE_UNAVAILABLE.value]
    )


def _classification(match: _Match, *, fingerprint: str, exc_type: str | None, message: str) -> Classification:
    return Classification(
        category=match.category,
        reason=match.reason,
        retry_after=match.retry_after,
        fingerprint=fingerprint,
        user_message=match.user_message or default_user_message(match.category, match.reason),
        resource=_resource_for(match),
        exc_type=exc_type,
        message=message,
        status_code=match.status_code,
        rule=match.rule,
    )


#: The classifier with no user rules that :func:`classify` and :func:`classify_http` use.
DEFAULT_CLASSIFIER: Final = Classifier()


def classify(exc: BaseException, *, rules: Sequence[Rule] = ()) -> Classification:
    """Classify an exception with the built-in rules (and ``rules``, tried first).

    See :meth:`Classifier.classify`.
    """
    return DEFAULT_CLASSIFIER.classify(exc, rules=rules)


def classify_http(
    status: int,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    body: Any = None,
    *,
    rules: Sequence[Rule] = (),
) -> Classification:
    """Classify an HTTP response with the built-in rules (and ``rules``, tried first).

    See :meth:`Classifier.classify_http`.

    Raises:
        ValueError: if ``status`` is not an HTTP status (an int in 100..599).
    """
    return DEFAULT_CLASSIFIER.classify_http(status, headers, body, rules=rules)
