"""The operator audit: ``GET /audit`` lists who did what, when, to which target, newest first, with
filters (actor, action, target type and id, time range) and cursor pagination."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

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

TextFilter = Annotated[str | None, Query(min_length=1, max_length=255, pattern=NO_NUL)]


@router.get("", response_model=AuditEventsPublic, responses=error_responses(400, 422, 503))
def list_audit_events(
    session: SessionDep,
    actor: Annotated[
        str | None, Query(min_length=1, max_length=255, pattern=NO_NUL, description="Who acted (exact).")
    ] = None,
    action: Annotated[AuditAction | None, Query(description="What was done.")] = None,
    target_type: Annotated[AuditTarget | None, Query(description="The kind of target.")] = None,
    target_id: TextFilter = None,
    since: Annotated[AwareDatetime | None, Query(description="At or after (ISO 8601 with timezone).")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before (ISO 8601 with timezone).")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> AuditEventsPublic:
    """Operator actions, newest first: replays, bulk replays, discards, job cancels, breaker resets and
    forced opens, each with who did it (the API key's name or ``cli:<user>``) and what it did."""
    page = audit.list_events(
        session,
        actor=actor,
        action=action.value if action else None,
        target_type=target_type.value if target_type else None,
        target_id=target_id,
        since=since,
        until=until,
        cursor=decode_cursor(cursor) if cursor is not None else None,
        limit=limit,
    )
    return AuditEventsPublic.from_page(page)
