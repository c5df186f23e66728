"""The operator audit: who did what, when, to which target (``fr_audit_events``).

Keyword-only functions called inside the caller's transaction, by the API and the CLI alike. An action
records its event in the SAME transaction that carries it out, so a rolled-back action leaves no event
and a committed one always has its event. Who: the API key's name (``key-<sha256 prefix>`` for an
unnamed key, ``local`` for a loopback client of an API without keys) or ``cli:<os user>``.

A replay's edits are audited as a sha256 of their canonical JSON (:func:`edit_digest`) and a redacted
diff against the stored payload's redacted view (:func:`edit_diff`): values under secret keys and
secret-looking text are shown as ``[REDACTED]``, never in clear.

Events are listed newest first, ``(at desc, id desc)``, with keyset pagination like the other lists.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.cursor import Keyset, Listing, Page, TimeRange
from error_handling.persistence.models import AuditEvent
from error_handling.redaction import REDACTED, Redactor

__all__ = [
    "EVENTS",
    "MAX_DIFF_CHANGES",
    "UNKNOWN_ACTOR",
    "AuditAction",
    "AuditFilter",
    "AuditPage",
    "AuditTarget",
    "canonical_json",
    "edit_diff",
    "edit_digest",
    "list_events",
    "record",
]

#: The actor recorded when a caller did not say who acts (library use without an operator).
UNKNOWN_ACTOR = "unknown"
#: The most changes a replay's audited diff lists (the rest are counted in ``truncated``).
MAX_DIFF_CHANGES = 200
#: The events, newest first.
EVENTS = Listing(AuditEvent, AuditEvent.at)


class AuditAction(enum.StrEnum):
    """What an operator did."""

    #: Replayed one dead letter (``detail``: new task id, queue, forced, edits' digest and diff).
    DEAD_LETTER_REPLAY = "dead_letter.replay"
    #: Discarded a dead letter (``detail``: the reason).
    DEAD_LETTER_DISCARD = "dead_letter.discard"
    #: Started a bulk replay job (``detail``: filter, rate, how many matched).
    REPLAY_JOB_CREATE = "replay_job.create"
    #: Cancelled a bulk replay job (``detail``: how many it had published).
    REPLAY_JOB_CANCEL = "replay_job.cancel"
    #: Changed an error group's state: resolved, ignored or set back to ongoing (``detail``: the state
    #: before and after, the ignore condition).
    GROUP_UPDATE = "group.update"
    #: Closed a service's circuit breaker (``detail``: the state before).
    BREAKER_RESET = "breaker.reset"
    #: Forced a service's circuit breaker open (``detail``: the state before, for how long).
    BREAKER_OPEN = "breaker.open"

    @property
    def target(self) -> AuditTarget:
        """What the action is done to: the part of its name before the dot."""
        return AuditTarget(self.value.partition(".")[0])


class AuditTarget(enum.StrEnum):
    """What an action was done to."""

    #: A dead letter (``target_id``: its id).
    DEAD_LETTER = "dead_letter"
    #: A bulk replay job (``target_id``: its id).
    REPLAY_JOB = "replay_job"
    #: An error group (``target_id``: its fingerprint).
    GROUP = "group"
    #: A service's circuit breaker (``target_id``: the service).
    BREAKER = "breaker"


@dataclasses.dataclass(frozen=True)
class AuditFilter(TimeRange):
    """Which events a listing takes (``since <= at < until``): exact matches (``None`` matches anything)."""

    actor: str | None = None
    #: An :class:`AuditAction`'s value.
    action: str | None = None
    #: An :class:`AuditTarget`'s value.
    target_type: str | None = None
    target_id: str | None = None


#: One page of events.
AuditPage = Page[AuditEvent]


def record(
    session: Session,
    action: AuditAction,
    target_id: str | int | None,
    *,
    actor: str,
    now: dt.datetime,
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add ``actor``'s ``action`` on ``target_id`` (of the action's target type) to the caller's
    transaction (it commits or rolls back with the action) and flush.

    ``detail`` must already be redacted: it is stored as given.
    """
    event = AuditEvent(
        at=now,
        actor=(actor or UNKNOWN_ACTOR)[:255],
        action=AuditAction(action).value,
        target_type=AuditAction(action).target.value,
        target_id=None if target_id is None else str(target_id)[:255],
        detail=detail or {},
    )
    session.add(event)
    session.flush()
    return event


def list_events(session: Session, flt: AuditFilter, *, cursor: Keyset | None = None, limit: int) -> AuditPage:
    """A page of the events ``flt`` matches, newest first (keyset pagination on ``(at, id)``).

    Args:
        flt: which events (every field given must match).
        cursor: the ``next_cursor`` of the previous page; the page holds the events strictly after it.
        limit: at most this many events (at least 1).
    """
    query = sa.select(AuditEvent).where(*EVENTS.where(flt))
    return EVENTS.page(session, query, cursor=cursor, limit=max(1, limit))


def canonical_json(value: Any) -> str:
    """``value`` as canonical JSON: sorted keys, no spaces, UTF-8 text kept as is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def edit_digest(edits: dict[str, Any]) -> str:
    """The sha256 (hex) of the canonical JSON of a replay's edits, as the operator sent them
    (``[REDACTED]`` placeholders included): the same edits always give the same digest."""
    return hashlib.sha256(canonical_json(edits).encode("utf-8")).hexdigest()


def edit_diff(before: Any, after: Any, *, redactor: Redactor, root: str) -> tuple[list[dict[str, Any]], int]:
    """The changes from ``before`` (the stored payload's redacted view) to ``after`` (the edit), redacted.

    Each change is ``{"path", "op": "added" | "removed" | "changed", "from"?, "to"?}``; dicts are
    compared by key, lists by position. A value under a secret key, and secret-looking text, is shown
    as ``[REDACTED]``. Returns the first :data:`MAX_DIFF_CHANGES` changes and how many more there were.
    """
    differ = _Differ(redactor)
    differ.walk(before, after, root, None)
    changes = differ.changes
    return changes[:MAX_DIFF_CHANGES], max(0, len(changes) - MAX_DIFF_CHANGES)


class _Differ:
    """The redacted changes between two JSON documents, in document order (see :func:`edit_diff`)."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor
        self.changes: list[dict[str, Any]] = []

    def show(self, key: Any, value: Any) -> Any:
        if isinstance(key, str) and self.redactor.hides(key, value):
            return REDACTED
        return self.redactor.redact(value)

    def step(self, path: str, key: Any) -> str:
        return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{self.redactor.redact_text(str(key))}"

    def walk(self, old: Any, new: Any, path: str, key: Any) -> None:
        if isinstance(old, dict) and isinstance(new, dict):
            self._dicts(old, new, path)
        elif isinstance(old, list) and isinstance(new, list):
            self._lists(old, new, path, key)
        elif canonical_json(old) != canonical_json(new):
            self.changes.append({"path": path, "op": "changed", "from": self.show(key, old), "to": self.show(key, new)})

    def _dicts(self, old: dict[Any, Any], new: dict[Any, Any], path: str) -> None:
        for name, value in old.items():
            if name not in new:
                self.changes.append({"path": self.step(path, name), "op": "removed", "from": self.show(name, value)})
        for name, value in new.items():
            if name in old:
                self.walk(old[name], value, self.step(path, name), name)
            else:
                self.changes.append({"path": self.step(path, name), "op": "added", "to": self.show(name, value)})

    def _lists(self, old: list[Any], new: list[Any], path: str, key: Any) -> None:
        for index in range(max(len(old), len(new))):
            if index >= len(new):
                self.changes.append(
                    {"path": self.step(path, index), "op": "removed", "from": self.show(key, old[index])}
                )
            elif index >= len(old):
                self.changes.append({"path": self.step(path, index), "op": "added", "to": self.show(key, new[index])})
            else:
                self.walk(old[index], new[index], self.step(path, index), key)
