"""The :class:`Classifier`: user rules first, in order, then the built-in rules (the order is drawn in
:mod:`error_handling.classifier`), and :func:`classify` / :func:`classify_http` with no user rules."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from error_handling.categories import Category
from error_handling.classification import Classification, Rule
from error_handling.classifier.builtin import deterministic_outcome, http_outcome, type_outcome, wrapped
from error_handling.classifier.subject import (
    MAX_MESSAGE_LENGTH,
    Match,
    Subject,
    attribute_hint,
    classification,
    from_outcome,
    from_recoverable,
    from_rule,
    subject,
)
from error_handling.classifier.user_rules import checked_rules, first_http_rule, rule_matches
from error_handling.exceptions import RecoverableError
from error_handling.fingerprint import fingerprint, fingerprint_parts, qualified_name, response_parts
from error_handling.http import body_message, decode_body, is_http_status, stated_retry_hint
from error_handling.rules import UNCLASSIFIED

#: How many ``__cause__`` / wrapped links are followed from the exception given.
MAX_CHAIN_DEPTH: Final = 5
#: The rule name of the fallback.
_FALLBACK_RULE = "unclassified"


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
        self._rules: tuple[Rule, ...] = checked_rules(rules)
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
        return Classifier((*checked_rules(rules), *self._rules), clock=self._clock)

    def classify(self, exc: BaseException, *, rules: Sequence[Rule] = ()) -> Classification:
        """Classify an exception (see :mod:`error_handling.classifier` for the order rules are tried in).

        ``fingerprint``, ``exc_type`` and ``message`` describe ``exc`` even when the match came from its
        cause or wrapped original; ``message`` is ``str(exc)`` cut to ``MAX_MESSAGE_LENGTH`` characters,
        not yet redacted. Never raises for the exception itself.

        Args:
            exc: the exception, with its traceback if it was raised (the fingerprint uses it).
            rules: extra rules for this call (a task's own), evaluated before the classifier's.

        Raises:
            ConfigurationError: if an element of ``rules`` is not a :class:`Rule`.
        """
        call_rules = checked_rules(rules)
        first = subject(exc)
        now = self._clock()
        match = self._match(first, call_rules, depth=0, seen={id(exc)}, now=now) or self._deterministic(
            first, depth=0, seen={id(exc)}, now=now
        )
        if match is None:
            match = from_outcome(UNCLASSIFIED, _FALLBACK_RULE, subject=first, now=now)
        return classification(
            match,
            fingerprint=fingerprint(exc, message=first.message, http=first.http),
            exc_type=qualified_name(type(exc)),
            message=first.message,
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
        call_rules = checked_rules(rules)
        decoded = decode_body(body)
        stated = body_message(decoded) or ""
        message = (stated or f"HTTP {status}")[:MAX_MESSAGE_LENGTH]
        retry_after = stated_retry_hint(headers=headers, body=decoded, now=self._clock())
        match = first_http_rule(call_rules, "task", status, message) or first_http_rule(
            self._rules, "user", status, message
        )
        if match is None:
            verdict = http_outcome(status, decoded)
            outcome, rule = verdict if verdict is not None else (UNCLASSIFIED, _FALLBACK_RULE)
            match = Match(outcome.category, outcome.reason.value, rule, resource=outcome.resource_name())
        match = dataclasses.replace(
            match,
            retry_after=retry_after if retry_after is not None else match.retry_after,
            status_code=status,
        )
        return classification(
            match,
            fingerprint=fingerprint_parts(("http", *response_parts(status, decoded))),
            exc_type=None,
            message=message,
        )

    def _match(
        self, subj: Subject, call_rules: tuple[Rule, ...], *, depth: int, seen: set[int], now: float
    ) -> Match | None:
        """The rules, then the built-ins, on ``subj`` and then along its chain (deterministic errors
        aside: see :meth:`_deterministic`)."""
        for prefix, rules in (("task", call_rules), ("user", self._rules)):
            for index, rule in enumerate(rules):
                label = f"{prefix}:{index}"
                if rule_matches(rule, label, subj):
                    return from_rule(rule, label, subject=subj, now=now)
        builtin = self._builtin(subj, call_rules, depth=depth, seen=seen, now=now)
        if builtin is not None:
            return builtin
        for label, linked in chain_links(subj.exc):
            inner = self._follow(linked, call_rules, depth=depth, seen=seen, now=now)
            if inner is not None:
                return inner.via(label)
        return None

    def _follow(
        self, linked: BaseException, call_rules: tuple[Rule, ...], *, depth: int, seen: set[int], now: float
    ) -> Match | None:
        if depth >= MAX_CHAIN_DEPTH or id(linked) in seen:
            return None
        seen.add(id(linked))
        return self._match(subject(linked), call_rules, depth=depth + 1, seen=seen, now=now)

    def _deterministic(self, subj: Subject, *, depth: int, seen: set[int], now: float) -> Match | None:
        """The weakest rules, once nothing else recognised the error nor its chain: a bug, a missing
        module or malformed input (:mod:`error_handling.rules.deterministic`), of ``subj`` first, then of
        what it wraps and its chain."""
        verdict = deterministic_outcome(subj)
        if verdict is not None:
            return from_outcome(verdict[0], verdict[1], subject=subj, now=now)
        original = wrapped(subj)
        links = ((("wrapped", original),) if original is not None else ()) + chain_links(subj.exc)
        for label, linked in links:
            if depth >= MAX_CHAIN_DEPTH or id(linked) in seen:
                continue
            seen.add(id(linked))
            inner = self._deterministic(subject(linked), depth=depth + 1, seen=seen, now=now)
            if inner is not None:
                return inner.via(label)
        return None

    def _builtin(
        self, subj: Subject, call_rules: tuple[Rule, ...], *, depth: int, seen: set[int], now: float
    ) -> Match | None:
        exc = subj.exc
        if isinstance(exc, RecoverableError):
            category = getattr(type(exc), "category", None)
            if isinstance(category, Category):
                return from_recoverable(exc, category, subject=subj, now=now)
        original = wrapped(subj)
        if original is not None:
            inner = self._follow(original, call_rules, depth=depth, seen=seen, now=now)
            if inner is not None:
                # a wrapper's own countdown (Celery's Retry) is the earliest; the original's hint wins when later
                stated = attribute_hint(subj, now)
                if stated is not None and (inner.retry_after is None or inner.retry_after < stated):
                    return dataclasses.replace(inner.via("wrapped"), retry_after=stated)
                return inner.via("wrapped")
        verdict = (
            http_outcome(subj.status, subj.http.body) if subj.http is not None and subj.status is not None else None
        )
        verdict = verdict or type_outcome(subj)
        return from_outcome(verdict[0], verdict[1], subject=subj, now=now) if verdict is not None else None


def chain_links(exc: BaseException) -> tuple[tuple[str, BaseException], ...]:
    """The exceptions ``exc`` was raised from: its ``__cause__`` (``raise ... from``), and its
    ``__context__`` (raised while handling it) unless ``raise ... from None`` suppressed it."""
    links: list[tuple[str, BaseException]] = []
    if isinstance(exc.__cause__, BaseException):
        links.append(("cause", exc.__cause__))
    context = exc.__context__
    if isinstance(context, BaseException) and not exc.__suppress_context__ and context is not exc.__cause__:
        links.append(("context", context))
    return tuple(links)


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
