"""What a built-in rule concludes: an :class:`Outcome`, the shared outcomes the tables use, and
:class:`MessageRule` (a rule on an error's message)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

from error_handling.categories import DEFAULT_RESOURCE_FOR_REASON, Category, Reason


@dataclasses.dataclass(frozen=True, slots=True)
class Outcome:
    """The verdict of a built-in rule.

    Attributes:
        category: the route the failure takes.
        reason: the stable reason code.
        resource: for the ``resource`` category, the gate to wait on; ``None`` means the reason's
            default (:data:`~error_handling.categories.DEFAULT_RESOURCE_FOR_REASON`).
    """

    category: Category
    reason: Reason
    resource: str | None = None

    def resource_name(self) -> str | None:
        """Return the resource gate to wait on (``None`` unless the category is ``resource``)."""
        if self.category is not Category.RESOURCE:
            return None
        return self.resource or DEFAULT_RESOURCE_FOR_REASON.get(
            self.reason.value, DEFAULT_RESOURCE_FOR_REASON[Reason.RESOURCE_UNAVAILABLE.value]
        )


@dataclasses.dataclass(frozen=True, slots=True)
class MessageRule:
    """A built-in rule on the message (``str(exc)``) of an error.

    Attributes:
        name: a short name, shown as ``message:<name>`` in a classification's ``rule``.
        pattern: the regular expression searched in the message.
        outcome: the verdict when it matches.
        exceptions: qualified names it is scoped to (matched along the MRO, before the class's own
            entry in :data:`EXCEPTION_RULES`); empty means any exception, tried after the MRO walk.
    """

    name: str
    pattern: re.Pattern[str]
    outcome: Outcome
    exceptions: frozenset[str] = frozenset()


@dataclasses.dataclass(frozen=True, slots=True)
class CodeRule:
    """A built-in rule on a code an error carries in an attribute: a SQLSTATE, a driver's error number,
    an AMQP reply code. More specific than the error's class, it is tried before the walk along the MRO.

    Attributes:
        name: a short name, shown as ``<name>:<code>`` in a classification's ``rule``.
        attributes: the attributes read, in order; the first that holds a code (a non-empty str, or an
            int) is looked up. ``args`` reads the first argument (``exc.args[0]``).
        lookup: the outcome of a code (as text), or None when the code says nothing the class does not.
        exceptions: qualified names (matched along the MRO) whose instances carry the code; empty means
            any exception that has one of ``attributes``.
    """

    name: str
    attributes: tuple[str, ...]
    lookup: Callable[[str], Outcome | None]
    exceptions: frozenset[str] = frozenset()


_T, _R, _V, _P = Category.TRANSIENT, Category.RESOURCE, Category.VALIDATION, Category.PERMANENT


class Outcomes:
    """The outcomes the rule tables share, by name (``Outcomes.TIMEOUT``)."""

    TIMEOUT = Outcome(_T, Reason.TIMEOUT)
    CONNECTION = Outcome(_T, Reason.CONNECTION)
    RATE_LIMITED = Outcome(_T, Reason.RATE_LIMITED)
    UNAVAILABLE = Outcome(_T, Reason.SERVICE_UNAVAILABLE)
    CONFLICT = Outcome(_T, Reason.CONFLICT)
    QUOTA = Outcome(_R, Reason.QUOTA_EXCEEDED)
    OUT_OF_MEMORY = Outcome(_R, Reason.OUT_OF_MEMORY)
    DISK_FULL = Outcome(_R, Reason.DISK_FULL)
    GPU = Outcome(_R, Reason.GPU_UNAVAILABLE)
    OPEN_FILES = Outcome(_R, Reason.TOO_MANY_OPEN_FILES)
    INVALID_INPUT = Outcome(_V, Reason.INVALID_INPUT)
    TOO_LARGE = Outcome(_V, Reason.PAYLOAD_TOO_LARGE)
    CONTENT_POLICY = Outcome(_V, Reason.CONTENT_POLICY)
    AUTH_FAILED = Outcome(_P, Reason.AUTH_FAILED)
    NOT_FOUND = Outcome(_P, Reason.NOT_FOUND)
    NOT_SUPPORTED = Outcome(_P, Reason.NOT_SUPPORTED)
    PERMANENT = Outcome(_P, Reason.PERMANENT_FAILURE)
    PROGRAMMING = Outcome(_P, Reason.PROGRAMMING_ERROR)
    CONFIGURATION = Outcome(_P, Reason.INVALID_CONFIGURATION)
    POOL = Outcome(_R, Reason.POOL_EXHAUSTED)


#: What an error no rule matches becomes (retried with the unclassified budget, then dead-lettered).
UNCLASSIFIED = Outcome(_T, Reason.UNCLASSIFIED)
