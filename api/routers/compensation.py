"""Compensation and recovery: a task's compensation steps (``GET /task/{task_id}/compensation``) and
what recovery did over a window (``GET /recovery/stats``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import SessionDep
from api.errors import ApiError, error_responses
from api.params import DEFAULT_WINDOW_MINUTES, WindowMinutes, window
from api.schemas.errors import RecoveryStatsPublic, TaskCompensationPublic, step_public
from error_handling.persistence import compensation
from error_handling.persistence.reads import counts
from error_handling.persistence.reads.attempts import get_task

router = APIRouter(tags=["recovery"])


@router.get(
    "/task/{task_id}/compensation", response_model=TaskCompensationPublic, responses=error_responses(404, 422, 503)
)
def task_compensation(
    session: SessionDep,
    task_id: Annotated[str, Path(max_length=255, pattern=r"^[^\x00]*$", description="The Celery task id.")],
) -> TaskCompensationPublic:
    """The compensation steps a task recorded, and every step of its saga (its Celery chain), each with
    its undo's outcome (`recorded`, `pending`, `running`, `compensated`, `compensation_failed`,
    `skipped`). Secrets in a step's data are shown as [REDACTED]. 404 when the task recorded no step
    and belongs to no saga that did."""
    own = list(compensation.task_steps(session, task_id=task_id))
    if own:
        saga_id = own[0].saga_id
    else:
        task = get_task(session, task_id=task_id)
        saga_id = (task.root_id if task else None) or task_id
    saga = list(compensation.saga_steps(session, saga_id=saga_id))
    if not own and not saga:
        raise ApiError(
            404, f"no compensation step is recorded for task {task_id!r}", code="task_not_found", param="task_id"
        )
    return TaskCompensationPublic(
        task_id=task_id,
        saga_id=saga_id,
        steps=[step_public(step) for step in own],
        saga_steps=[step_public(step) for step in saga],
    )


@router.get("/recovery/stats", response_model=RecoveryStatsPublic, responses=error_responses(422, 503))
def recovery_stats(
    session: SessionDep,
    window_minutes: WindowMinutes = DEFAULT_WINDOW_MINUTES,
) -> RecoveryStatsPublic:
    """What recovery did in the last `window_minutes`: retries scheduled and succeeded, resource waits
    started, released and timed out, fail-fasts, dead letters, replays, and compensation steps undone or
    failed (and open now)."""
    since, until = window(window_minutes)
    return counts.recovery_stats(session, since=since, until=until)
