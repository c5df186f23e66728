"""Public schemas of the operator audit: what ``GET /audit`` (and ``function-runner audit list --json``)
shows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from api.params import copy_fields
from error_handling.persistence.audit import AuditPage
from error_handling.persistence.cursor import encode_cursor
from error_handling.persistence.models import AuditEvent

__all__ = ["AuditEventPublic", "AuditEventsPublic"]


class AuditEventPublic(BaseModel):
    """An operator action: who did what, when, to which target."""

    id: int
    at: dt.datetime
    actor: str = Field(description="The API key's name, key-<sha256 prefix>, local, or cli:<os user>.")
    action: str = Field(
        description="dead_letter.replay, dead_letter.discard, replay_job.create, replay_job.cancel, "
        "breaker.reset or breaker.open."
    )
    target_type: str = Field(description="dead_letter, replay_job or breaker.")
    target_id: str | None = Field(description="The dead letter's or job's id, or the breaker's service.")
    detail: dict[str, Any] = Field(
        description="What the action did, redacted; a replay's edits as their sha256 and a redacted diff."
    )

    @classmethod
    def from_record(cls, event: AuditEvent) -> AuditEventPublic:
        """The public view of a stored event."""
        return copy_fields(cls, event, detail=dict(event.detail or {}))


class AuditEventsPublic(BaseModel):
    """A page of audit events, newest first."""

    data: list[AuditEventPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")

    @classmethod
    def from_page(cls, page: AuditPage) -> AuditEventsPublic:
        """The public view of a page of :func:`~error_handling.persistence.audit.list_events`."""
        return cls(
            data=[AuditEventPublic.from_record(event) for event in page.items],
            next_cursor=encode_cursor(*page.next_cursor) if page.next_cursor else None,
        )
