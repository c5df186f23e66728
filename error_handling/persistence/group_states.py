"""An operator's change of an error group's state: resolve it, ignore it (forever, until a time, or until
it escalates), or set it back to ``ongoing`` (unresolve, unignore). Audited in the same transaction.

The refusals::

    FunctionRunnerError
    └── GroupError                  a change of a group was refused
        ├── GroupNotFound           no group has this fingerprint
        └── InvalidGroupChange      the change itself is not valid (its ``param`` says which part)
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.exceptions import FunctionRunnerError
from error_handling.persistence import audit
from error_handling.persistence.groups import effective_state
from error_handling.persistence.models import ErrorGroup, GroupState

__all__ = ["SETTABLE", "GroupChange", "GroupError", "GroupNotFound", "InvalidGroupChange", "change_group"]

#: The states an operator may set.
SETTABLE = (GroupState.RESOLVED, GroupState.IGNORED, GroupState.ONGOING)


class GroupError(FunctionRunnerError):
    """A change of an error group was refused."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class GroupNotFound(GroupError):
    """No error group has this fingerprint."""

    def __init__(self, fingerprint: str) -> None:
        super().__init__(f"no error group has fingerprint {fingerprint!r}", param="fingerprint")
        self.fingerprint = fingerprint


class InvalidGroupChange(GroupError):
    """The change is not valid: a state an operator cannot set, or an ignore condition without ``ignored``."""


@dataclasses.dataclass(frozen=True)
class GroupChange:
    """The state an operator sets, and for ``ignored`` its condition.

    Attributes:
        ignore_until: it becomes ``ongoing`` again at this time (None: not at a time).
        ignore_until_escalating: it becomes ``escalating`` when its volume escalates.
    """

    state: GroupState
    ignore_until: dt.datetime | None = None
    ignore_until_escalating: bool = False

    def check(self, now: dt.datetime) -> None:
        """Refuse a change that cannot be made.

        Raises:
            InvalidGroupChange: the state is not one of :data:`SETTABLE`, an ignore condition comes with
                another state, or ``ignore_until`` is not in the future.
        """
        if self.state not in SETTABLE:
            allowed = ", ".join(state.value for state in SETTABLE)
            raise InvalidGroupChange(f"state: an operator may set {allowed}, not {self.state.value}", param="state")
        conditional = self.ignore_until is not None or self.ignore_until_escalating
        if conditional and self.state is not GroupState.IGNORED:
            raise InvalidGroupChange(
                "ignore_until and ignore_until_escalating go with state 'ignored' only", param="ignore_until"
            )
        if self.ignore_until is not None and self.ignore_until <= now:
            raise InvalidGroupChange("ignore_until must be in the future", param="ignore_until")


def change_group(
    session: Session, *, fingerprint: str, change: GroupChange, now: dt.datetime, new_period: dt.timedelta, actor: str
) -> ErrorGroup:
    """Set the state of the group of ``fingerprint`` (its row locked) and flush; audited as ``actor``'s
    ``group.update`` with the state before (effective, as of ``now``) and after.

    ``resolved`` sets ``resolved_at`` (its next attempt makes it ``regressed``); ``ignored`` keeps its
    condition; ``ongoing`` clears any ignore condition (``resolved_at`` stays, as history).

    Raises:
        InvalidGroupChange: see :meth:`GroupChange.check`.
        GroupNotFound: no group has this fingerprint.
    """
    change.check(now)
    before = session.execute(
        sa.select(ErrorGroup, effective_state(now, new_period))
        .where(ErrorGroup.fingerprint == fingerprint)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if before is None:
        raise GroupNotFound(fingerprint)
    group, previous = before
    group.state = change.state
    group.state_changed_at = now
    group.ignore_until = change.ignore_until
    group.ignore_until_escalating = change.ignore_until_escalating
    if change.state is GroupState.RESOLVED:
        group.resolved_at = now
    session.flush()
    detail = {
        "from": str(previous),
        "to": change.state.value,
        "ignore_until": change.ignore_until.isoformat() if change.ignore_until else None,
        "ignore_until_escalating": change.ignore_until_escalating,
    }
    audit.record(session, audit.AuditAction.GROUP_UPDATE, fingerprint, actor=actor, now=now, detail=detail)
    return group
