"""One exception being classified (what is read from it, once) and how a match becomes a
:class:`~error_handling.classification.Classification`: retry hint, user message and resource, the
error's own first, then the rule's."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from typing import Final

from error_handling.categories import DEFAULT_RESOURCE_FOR_REASON, Category, Reason
from error_handling.classification import Classification, Rule, default_user_message
from error_handling.exceptions import RecoverableError, ResourceError
from error_handling.fingerprint import qualified_name
from error_handling.http import HttpDetails, http_details, safe_attr, stated_retry_hint
from error_handling.rules import CELERY_HINT_ATTRIBUTES, Outcome

#: Characters of ``str(exc)`` kept in a classification's ``message``.
MAX_MESSAGE_LENGTH: Final = 2000
#: Frames of a traceback looked at, at most.
MAX_FRAMES: Final = 200


@dataclasses.dataclass(frozen=True, slots=True)
class Match:
    """What matched, before it becomes a classification."""

    category: Category
    reason: str
    rule: str
    resource: str | None = None
    retry_after: float | None = None
    user_message: str | None = None
    status_code: int | None = None

    def via(self, prefix: str) -> Match:
        """The same match, reached through a cause or a wrapped original (``prefix:rule``)."""
        return dataclasses.replace(self, rule=f"{prefix}:{self.rule}")


@dataclasses.dataclass(slots=True)
class Subject:
    """One exception being looked at, with what was read from it (read once)."""

    exc: BaseException
    message: str
    http: HttpDetails | None
    names: tuple[str, ...]

    @property
    def status(self) -> int | None:
        """The HTTP status the exception carries, if any."""
        return self.http.status if self.http is not None else None

    def raised_in(self, modules: tuple[str, ...]) -> bool:
        """Whether a frame of the traceback (at most :data:`MAX_FRAMES`) runs in one of ``modules`` or
        their submodules."""
        tb = self.exc.__traceback__
        for _ in range(MAX_FRAMES):
            if tb is None:
                return False
            name = tb.tb_frame.f_globals.get("__name__")
            if isinstance(name, str) and any(name == m or name.startswith(f"{m}.") for m in modules):
                return True
            tb = tb.tb_next
        return False


def _safe_message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - a foreign __str__ may raise anything; classification must not
        text = f"<unprintable {qualified_name(type(exc))}>"
    return text[:MAX_MESSAGE_LENGTH]


def subject(exc: BaseException) -> Subject:
    """Read ``exc`` once: its message (cut), HTTP details and the qualified names of its MRO."""
    names = tuple(qualified_name(klass) for klass in type(exc).__mro__)
    return Subject(exc=exc, message=_safe_message(exc), http=http_details(exc), names=names)


def valid_hint(value: object) -> float | None:
    """``value`` as seconds to wait, if it is a finite, non-negative number."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None


def attribute_hint(subject: Subject, now: float) -> float | None:
    """The retry hint an exception states in an attribute (:data:`~error_handling.rules.CELERY_HINT_ATTRIBUTES`:
    Celery's ``Retry.when``), as seconds from ``now``: a number of seconds, or a datetime (naive is UTC)."""
    for name in subject.names:
        attribute = CELERY_HINT_ATTRIBUTES.get(name)
        if attribute is None:
            continue
        value = safe_attr(subject.exc, attribute)
        if isinstance(value, dt.datetime):
            moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
            return max(0.0, moment.timestamp() - now)
        return valid_hint(value)
    return None


def _own_text(exc: BaseException, name: str) -> str | None:
    """A text attribute of a :class:`RecoverableError` (``reason``, ``resource``, ``user_message``), or None
    when a subclass that never ran ``__init__`` (or a property that raises) leaves it unset."""
    value = safe_attr(exc, name)
    return value if isinstance(value, str) and value else None


def _error_hint(subject: Subject, now: float) -> float | None:
    """The retry hint the error states itself: a RecoverableError's, else one in an attribute
    (:func:`attribute_hint`), else its response's headers, its body (fields, then the wait its message
    states) and last the wait its own message states."""
    if isinstance(subject.exc, RecoverableError):
        own = valid_hint(safe_attr(subject.exc, "retry_after"))
        if own is not None:
            return own
    stated = attribute_hint(subject, now)
    if stated is not None:
        return stated
    http = subject.http
    return stated_retry_hint(
        headers=http.headers if http is not None else None,
        body=http.body if http is not None else None,
        message=subject.message,
        now=now,
    )


def _own_user_message(exc: BaseException) -> str | None:
    return _own_text(exc, "user_message") if isinstance(exc, RecoverableError) else None


def from_outcome(outcome: Outcome, rule: str, *, subject: Subject, now: float) -> Match:
    """The match of a built-in rule (the error's own hint and user message win)."""
    return Match(
        outcome.category,
        outcome.reason.value,
        rule,
        resource=outcome.resource,
        retry_after=_error_hint(subject, now),
        user_message=_own_user_message(subject.exc),
        status_code=subject.status,
    )


def from_recoverable(exc: RecoverableError, category: Category, *, subject: Subject, now: float) -> Match:
    """The match of a :class:`RecoverableError`: what it states about itself."""
    default = getattr(type(exc), "default_reason", None)
    return Match(
        category,
        _own_text(exc, "reason") or (default if isinstance(default, str) else Reason.UNCLASSIFIED.value),
        f"recoverable:{subject.names[0]}",
        resource=_own_text(exc, "resource") if isinstance(exc, ResourceError) else None,
        retry_after=_error_hint(subject, now),
        user_message=_own_user_message(exc),
        status_code=subject.status,
    )


def from_rule(rule: Rule, label: str, *, subject: Subject, now: float) -> Match:
    """The match of a user rule (the error's own resource, hint and user message win)."""
    own_resource = _own_text(subject.exc, "resource") if isinstance(subject.exc, ResourceError) else None
    hint = _error_hint(subject, now)
    return Match(
        rule.category,
        rule.reason,
        label,
        resource=own_resource or rule.resource,
        retry_after=hint if hint is not None else valid_hint(rule.retry_after),
        user_message=_own_user_message(subject.exc) or rule.user_message,
        status_code=subject.status,
    )


def _resource_for(match: Match) -> str | None:
    if match.category is not Category.RESOURCE:
        return None
    return (
        match.resource
        or DEFAULT_RESOURCE_FOR_REASON.get(match.reason)
        or DEFAULT_RESOURCE_FOR_REASON[Reason.RESOURCE_UNAVAILABLE.value]
    )


def classification(match: Match, *, fingerprint: str, exc_type: str | None, message: str) -> Classification:
    """The classification of ``match``, with the default user message and resource filled in."""
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
