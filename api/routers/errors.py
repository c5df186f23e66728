"""Failed attempts: list with filters and cursor pagination, one attempt, a task's history, statistics.

Mounted under ``/api/v1/errors``. Times in query parameters are ISO 8601 with a timezone
(``2026-03-01T09:00:00Z`` or ``...+02:00``); a time without one is refused with 422 rather than
guessed. ``since`` is inclusive, ``until`` exclusive.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import SessionDep
from api.errors import ApiError, error_responses, found
from api.pagination import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT
from api.params import DEFAULT_WINDOW_MINUTES, AwareDatetime, WindowMinutes, window
from api.schemas.errors import (
    AttemptDetailPublic,
    AttemptsPublic,
    ErrorStatsPublic,
    TaskHistoryPublic,
    attempt_detail_public,
    attempts_public,
    error_stats_public,
    task_history_public,
)
from error_handling.categories import Category
from error_handling.persistence.cursor import decode_cursor, encode_cursor
from error_handling.persistence.reads import attempts, counts, histories

router = APIRouter(tags=["errors"])

#: Longest text search accepted.
MAX_SEARCH_LENGTH: Final = 200
#: Text parameters may hold anything but NUL, which no database column can store.
NO_NUL: Final = r"^[^\x00]*$"
#: The largest id of a row (ids are signed 64-bit integers).
MAX_ID: Final = 2**63 - 1


def _utc(value: dt.datetime | None, param: str) -> dt.datetime | None:
    """``value`` in UTC.

    Raises:
        ApiError: 422 when the time cannot be expressed in UTC (beyond year 1 to 9999 once converted).
    """
    if value is None:
        return None
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ApiError(
            422, f"{param}: the time is out of range once converted to UTC", code="validation_failed", param=param
        ) from None


class AttemptQuery(BaseModel):
    """The filters of ``GET /`` as query parameters (the text search is spelled ``q``)."""

    model_config = ConfigDict(use_enum_values=True)

    task_name: str | None = Field(default=None, max_length=255, pattern=NO_NUL, description="Exact task name.")
    category: Category | None = Field(default=None, description="Failure category.")
    reason: str | None = Field(default=None, max_length=64, pattern=NO_NUL, description="Reason code, e.g. `timeout`.")
    fingerprint: str | None = Field(default=None, max_length=32, pattern=NO_NUL, description="Error group fingerprint.")
    queue: str | None = Field(default=None, max_length=255, pattern=NO_NUL, description="Queue the task was sent to.")
    since: AwareDatetime | None = Field(default=None, description="Failed at or after (ISO 8601 with timezone).")
    until: AwareDatetime | None = Field(default=None, description="Failed before (ISO 8601 with timezone).")
    search: str | None = Field(
        default=None,
        alias="q",
        min_length=1,
        max_length=MAX_SEARCH_LENGTH,
        pattern=NO_NUL,
        description="Case-insensitive text in the message.",
    )


@router.get("", response_model=AttemptsPublic, responses=error_responses(400, 422, 503))
def list_errors(
    *,
    session: SessionDep,
    query: Annotated[AttemptQuery, Query()],
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_LENGTH, description="The `next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
) -> AttemptsPublic:
    """List failed attempts, newest first, filtered by every parameter given.

    Pages are linked by `next_cursor`: a walk returns each attempt that existed when it started exactly
    once, even while new failures are recorded. An invalid cursor is a 400; a time without a timezone,
    or `since` after `until`, a 422.
    """
    since, until = _utc(query.since, "since"), _utc(query.until, "until")
    if since is not None and until is not None and since > until:
        raise ApiError(422, "since must not be later than until", code="invalid_time_range", param="since")
    flt = attempts.FailureFilter(**query.model_dump() | {"since": since, "until": until})
    page = attempts.list_attempts(
        session, flt, cursor=decode_cursor(cursor) if cursor is not None else None, limit=limit
    )
    return attempts_public(page.items, encode_cursor(*page.next_cursor) if page.next_cursor else None)


@router.get("/stats", response_model=ErrorStatsPublic, responses=error_responses(422, 503))
def error_stats(
    session: SessionDep,
    window_minutes: WindowMinutes = DEFAULT_WINDOW_MINUTES,
) -> ErrorStatsPublic:
    """Count the failed attempts of the last `window_minutes` by category, reason, task name and
    fingerprint group (the largest groups, each with its first and last occurrence and a sample message)."""
    since, until = window(window_minutes)
    return error_stats_public(counts.error_stats(session, since=since, until=until))


@router.get("/task/{task_id}/history", response_model=TaskHistoryPublic, responses=error_responses(404, 422, 503))
def task_history(
    session: SessionDep,
    task_id: Annotated[str, Path(max_length=255, pattern=NO_NUL, description="The Celery task id.")],
) -> TaskHistoryPublic:
    """Show everything recorded about a task: each failed attempt with its decision, delay and worker,
    its scheduled runs, its terminal state, its dead letter, and its replay lineage (the dead letter it
    replays, and the tasks that replayed its own dead letter). 404 when nothing is recorded about it."""
    history = found(
        histories.task_history(session, task_id=task_id),
        f"no failure is recorded for task {task_id!r}",
        code="task_not_found",
        param="task_id",
    )
    return task_history_public(history)


@router.get("/{attempt_id:int}", response_model=AttemptDetailPublic, responses=error_responses(404, 422, 503))
def get_error(
    session: SessionDep,
    attempt_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The failed attempt's id.")],
) -> AttemptDetailPublic:
    """Show one failed attempt, with its redacted traceback and its task (secrets shown as [REDACTED])."""
    row = found(
        attempts.get_attempt(session, attempt_id=attempt_id),
        f"no failed attempt has id {attempt_id}",
        code="attempt_not_found",
        param="attempt_id",
    )
    return attempt_detail_public(row, attempts.get_task(session, task_id=row.task_id))
