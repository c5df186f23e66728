"""Error groups (one per fingerprint) under ``/api/v1/errors/groups``.

- ``GET /groups``: filters (state, category, reason, task, queue, text in the title), a window for the
  counts (``since``/``until``, default the last 24 hours), a sort (``last_seen``, ``first_seen``,
  ``count``, ``growth``, ``times_seen``; largest first) and cursor pagination.
- ``GET /groups/{fingerprint}``: the group with its trend, tasks and queues in the window, its latest
  attempts (the newest with its traceback), its dead letters and how its tasks ended.
- ``PATCH /groups/{fingerprint}``: resolve, ignore (forever, until a time, until it escalates), or set
  back to ongoing; audited as ``group.update``.
- ``POST /groups/{fingerprint}/dead-letters/replay`` and ``.../discard``: the group's pending dead
  letters replayed or discarded by a job the dispatcher runs in batches (its ``total`` is fixed when it is
  created: the letters that existed then), followed at ``GET /dead-letters/replays/{job_id}``; with
  ``dry_run``, the count and a sample. Audited as ``replay_job.create``.

States are read as of the request: ``new`` lasts ``FUNCTION_RUNNER_GROUPS_NEW_PERIOD`` seconds after the
first attempt (``regressed`` as long after it came back).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, status

from api.deps import PrincipalDep, SessionDep, SettingsDep
from api.errors import ApiError, error_responses, found
from api.pagination import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT
from api.params import AwareDatetime
from api.schemas.dead_letters import NO_NUL, BulkReplayPreview, DeadLetterPublic, ReplayJobPublic
from api.schemas.groups import (
    GroupDeadLettersRequest,
    GroupDetailPublic,
    GroupPublic,
    GroupQuery,
    GroupsPublic,
    GroupUpdate,
    group_detail_public,
    group_public,
    groups_public,
)
from error_handling.persistence import group_states, replay_jobs
from error_handling.persistence.models import ErrorGroup, JobAction, utcnow
from error_handling.persistence.reads import group_detail, groups
from error_handling.persistence.reads.dlq import DeadLetterFilter
from function_runner.events import log_event

router = APIRouter(prefix="/groups", tags=["groups"])

Fingerprint = Annotated[str, Path(min_length=1, max_length=32, pattern=NO_NUL, description="The group's fingerprint.")]


def _window(since: dt.datetime | None, until: dt.datetime | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The window in UTC.

    Raises:
        ApiError: 422 when a time is out of range in UTC, or ``since`` is not before ``until``.
    """
    try:
        since, until = (t.astimezone(dt.UTC) if t else None for t in (since, until))
    except OverflowError:
        raise ApiError(422, "the time is out of range once converted to UTC", code="validation_failed") from None
    if since is not None and until is not None and since >= until:
        raise ApiError(422, "since must be before until", code="invalid_time_range", param="since")
    return since, until


def _new_period(settings: SettingsDep) -> dt.timedelta:
    return dt.timedelta(seconds=settings.groups_new_period)


@router.get("", response_model=GroupsPublic, responses=error_responses(400, 422, 503))
def list_groups(
    *,
    session: SessionDep,
    settings: SettingsDep,
    query: Annotated[GroupQuery, Query()],
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_LENGTH, description="The `next_cursor` of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size.")] = DEFAULT_LIMIT,
) -> GroupsPublic:
    """Error groups matching every filter given, largest first by `sort`, each with its counts in the
    window. A cursor belongs to its sort: another sort's cursor, or a damaged one, is a 400."""
    since, until = _window(query.since, query.until)
    page = groups.list_groups(
        session,
        dataclasses.replace(query.to_filter(), since=since, until=until),
        sort=query.sort,
        cursor=cursor,
        limit=limit,
        now=utcnow(),
        new_period=_new_period(settings),
    )
    return groups_public(page)


@router.get("/{fingerprint}", response_model=GroupDetailPublic, responses=error_responses(404, 422, 503))
def get_group(
    session: SessionDep,
    settings: SettingsDep,
    fingerprint: Fingerprint,
    since: Annotated[AwareDatetime | None, Query(description="Counts from (default: 24 h before until).")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Counts until (default: now).")] = None,
) -> GroupDetailPublic:
    """One group: its trend (hourly up to 3 days, daily beyond), tasks and queues in the window, its
    latest attempts, its dead letters and the share of its attempts that recovered, failed fast or were
    dead-lettered. 404 when no group has this fingerprint; 422 `window_too_long` past 366 days."""
    since, until = _window(since, until)
    try:
        detail = group_detail.get_group(
            session, fingerprint=fingerprint, since=since, until=until, now=utcnow(), new_period=_new_period(settings)
        )
    except ValueError as exc:
        raise ApiError(422, str(exc), code="window_too_long", param="since") from None
    public = found(
        detail,
        f"no error group has fingerprint {fingerprint!r}",
        code="group_not_found",
        param="fingerprint",
    )
    return group_detail_public(public)


@router.patch("/{fingerprint}", response_model=GroupPublic, responses=error_responses(404, 422, 503))
def update_group(
    session: SessionDep, settings: SettingsDep, principal: PrincipalDep, fingerprint: Fingerprint, body: GroupUpdate
) -> GroupPublic:
    """Resolve a group (its next attempt makes it `regressed`), ignore it (forever, until `ignore_until`,
    or until it escalates with `ignore_until_escalating`), or set it back to `ongoing`. 422 for an ignore
    condition without `ignored`, or an `ignore_until` in the past. Audited as `group.update`."""
    now, period = utcnow(), _new_period(settings)
    try:
        with session.begin():
            group_states.change_group(
                session, fingerprint=fingerprint, change=body.to_change(), now=now, new_period=period, actor=principal
            )
            summary = groups.summaries(
                session, [fingerprint], now=now, new_period=period, window=groups.GroupFilter().window(now)
            )[fingerprint]
    except group_states.GroupNotFound as exc:
        raise ApiError(404, exc.message, code="group_not_found", param="fingerprint") from None
    except group_states.InvalidGroupChange as exc:
        raise ApiError(422, exc.message, code="invalid_group_change", param=exc.param) from None
    log_event("group.updated", fingerprint=fingerprint, state=summary.state.value, actor=principal)
    return group_public(summary)


def _group_job(
    session: SessionDep,
    principal: str,
    fingerprint: str,
    request: GroupDeadLettersRequest,
    response: Response,
    action: JobAction,
) -> ReplayJobPublic | BulkReplayPreview:
    """A job over the group's pending dead letters created until now, or its dry run."""
    found(
        session.get(ErrorGroup, fingerprint),
        f"no error group has fingerprint {fingerprint!r}",
        code="group_not_found",
        param="fingerprint",
    )
    now = utcnow()
    flt = DeadLetterFilter(fingerprint=fingerprint, until=now)
    if request.dry_run:
        count = replay_jobs.count_matching(session, flt)
        sample = replay_jobs.sample_matching(session, flt, limit=request.sample_size)
        response.status_code = status.HTTP_200_OK
        return BulkReplayPreview(count=count, sample=[DeadLetterPublic.from_record(letter) for letter in sample])
    session.rollback()  # the lookup's transaction; the job is created in its own
    with session.begin():
        job = replay_jobs.create_job(
            session,
            flt=flt,
            rate_per_second=request.rate_per_second if action is JobAction.REPLAY else None,
            now=now,
            actor=principal,
            action=action,
            reason=request.reason if action is JobAction.DISCARD else None,
        )
        public = ReplayJobPublic.from_record(job)
    log_event("replay_job.created", job=public.id, action=action.value, fingerprint=fingerprint, total=public.total)
    return public


_JOB_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": BulkReplayPreview, "description": "Dry run: the count and a sample; nothing was changed."},
    202: {"model": ReplayJobPublic, "description": "The job, to follow at /dead-letters/replays/{id}."},
    **error_responses(404, 422, 503),
}


@router.post(
    "/{fingerprint}/dead-letters/replay",
    response_model=ReplayJobPublic | BulkReplayPreview,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_JOB_RESPONSES,
)
def replay_group_dead_letters(
    session: SessionDep,
    principal: PrincipalDep,
    fingerprint: Fingerprint,
    response: Response,
    body: Annotated[GroupDeadLettersRequest | None, Body()] = None,
) -> ReplayJobPublic | BulkReplayPreview:
    """Replay the group's pending dead letters (those created until now), oldest first, as a job the
    dispatcher runs: each published exactly once; its `total` is fixed now. `dry_run`: the count and a
    sample. 404 when no group has this fingerprint."""
    return _group_job(session, principal, fingerprint, body or GroupDeadLettersRequest(), response, JobAction.REPLAY)


@router.post(
    "/{fingerprint}/dead-letters/discard",
    response_model=ReplayJobPublic | BulkReplayPreview,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_JOB_RESPONSES,
)
def discard_group_dead_letters(
    session: SessionDep,
    principal: PrincipalDep,
    fingerprint: Fingerprint,
    response: Response,
    body: Annotated[GroupDeadLettersRequest | None, Body()] = None,
) -> ReplayJobPublic | BulkReplayPreview:
    """Discard the group's pending dead letters (those created until now) as a job the dispatcher runs in
    batches, each as `DELETE /dead-letters/{id}` would (its task discarded, its saga compensated, audited);
    its `total` is fixed now. `dry_run`: the count and a sample. 404 when no group has this fingerprint."""
    return _group_job(session, principal, fingerprint, body or GroupDeadLettersRequest(), response, JobAction.DISCARD)
