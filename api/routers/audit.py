"""The operator audit: ``GET /audit`` lists who did what, when, to which target, newest first, with
filters (actor, action, target type and id, time range) and cursor pagination."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import SessionDep
from api.errors import error_responses
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT
from api.params import AwareDatetime
from api.schemas.audit import AuditEventsPublic
from api.schemas.dead_letters import NO_NUL
from error_handling.persistence import audit
from error_handling.persistence.audit import AuditAction, AuditTarget
from error_handling.persistence.cursor import decode_cursor

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditQuery(BaseModel):
    """The filters of ``GET /audit`` as query parameters."""

    model_config = ConfigDict(use_enum_values=True)

    actor: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=NO_NUL, description="Who acted (exact)."
    )
    action: AuditAction | None = Field(default=None, description="What was done.")
    target_type: AuditTarget | None = Field(default=None, description="The kind of target.")
    target_id: str | None = Field(default=None, min_length=1, max_length=255, pattern=NO_NUL)
    since: AwareDatetime | None = Field(default=None, description="At or after (ISO 8601 with timezone).")
    until: AwareDatetime | None = Field(default=None, description="Before (ISO 8601 with timezone).")


@router.get("", response_model=AuditEventsPublic, responses=error_responses(400, 422, 503))
def list_audit_events(
    *,
    session: SessionDep,
    query: Annotated[AuditQuery, Query()],
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> AuditEventsPublic:
    """Operator actions, newest first: replays, bulk replays, discards, job cancels, breaker resets and
    forced opens, each with who did it (the API key's name or ``cli:<user>``) and what it did."""
    page = audit.list_events(
        session,
        audit.AuditFilter(**query.model_dump()),
        cursor=decode_cursor(cursor) if cursor is not None else None,
        limit=limit,
    )
    return AuditEventsPublic.from_page(page)
