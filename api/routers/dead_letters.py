"""Dead letters: list, show, replay one, discard (``/dead-letters`` under ``/api/v1/errors``).

- ``GET /dead-letters``: filters (status, task name, category, reason, fingerprint, queue, text in the
  message, time range), newest first, cursor pagination; without payloads (args, kwargs, headers).
- ``GET /dead-letters/{id}``: the redacted payload, its failed attempts and its replays.
- ``POST /dead-letters/{id}/replay``: publish it again as a new task (optional body: edits of args,
  kwargs, queue, ``force``); an ``Idempotency-Key`` header makes retries of the request safe. 202.
- ``POST /dead-letters/replay``: bulk replay of the pending dead letters matching a filter: a dry run
  (200: the count and a sample, nothing published) or a replay job the dispatcher processes in batches
  (202), rate limited; ``GET /dead-letters/replays/{job_id}``: its progress;
  ``POST /dead-letters/replays/{job_id}/cancel``: stop it (the batch in flight, if any, is finished).
- ``DELETE /dead-letters/{id}?reason=...``: discard it (terminal). The reason is a query parameter, not
  a body: a body on ``DELETE`` has no defined meaning in HTTP and some clients and proxies drop it.

Replays, discards, bulk replays and cancels are audited as the caller's principal
(:mod:`error_handling.persistence.audit`), in the transaction of the action.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query, Response, status

from api.celery_dep import CeleryDep, RuntimeDep
from api.deps import PrincipalDep, SessionDep
from api.errors import ApiError, error_responses
from api.pagination import DEFAULT_LIMIT, MAX_CURSOR_LENGTH, MAX_LIMIT
from api.params import copy_fields
from api.schemas.dead_letters import (
    BulkReplayPreview,
    BulkReplayRequest,
    DeadLetterDetailPublic,
    DeadLetterPublic,
    DeadLetterQuery,
    DeadLettersPublic,
    DiscardRequest,
    ReplayJobPublic,
    ReplayPublic,
    ReplayRequest,
)
from error_handling.persistence import dead_letters, replay_jobs
from error_handling.persistence.cursor import decode_cursor, encode_cursor
from error_handling.persistence.models import DeadLetterStatus, utcnow
from error_handling.persistence.reads import dlq
from error_handling.sealing import SealedValueError
from function_runner.events import log_event
from function_runner.replay.errors import (
    InvalidReplayEdit,
    QueueNotAllowed,
    ReplayPublishFailed,
    ReservedIdempotencyKey,
)
from function_runner.replay.single import ReplayOrder, replay_in_session

router = APIRouter(prefix="/dead-letters", tags=["dead-letters"])

#: The largest id a dead letter can have (a signed 64-bit integer).
MAX_ID = 2**63 - 1


DeadLetterId = Annotated[int, Path(ge=1, le=MAX_ID, description="The dead letter's id.")]


#: Refusals of a dead-letter operation and the API error of each, in the order they are matched.
_REFUSALS: tuple[tuple[type[Exception], Callable[[Any], ApiError]], ...] = (
    (
        dead_letters.DeadLetterNotFound,
        lambda e: ApiError(404, e.message, code="dead_letter_not_found", param="dead_letter_id"),
    ),
    (dead_letters.AlreadyReplayed, lambda e: ApiError(409, e.message, code="already_replayed", param="force")),
    (dead_letters.AlreadyDiscarded, lambda e: ApiError(409, e.message, code="discarded")),
    (dead_letters.BeingReplayed, lambda e: ApiError(409, e.message, code="being_replayed")),
    (dead_letters.PayloadPurged, lambda e: ApiError(409, e.message, code="payload_purged")),
    (dead_letters.NotReplayable, lambda e: ApiError(409, e.message, code="not_replayable")),
    (
        dead_letters.IdempotencyKeyReused,
        lambda e: ApiError(422, e.message, code="idempotency_key_reused", param="Idempotency-Key"),
    ),
    (InvalidReplayEdit, lambda e: ApiError(422, e.message, code=e.code, param=e.param)),
    (QueueNotAllowed, lambda e: ApiError(422, e.message, code="queue_not_allowed", param="queue")),
    (
        ReservedIdempotencyKey,
        lambda e: ApiError(400, e.message, code="reserved_idempotency_key", param="Idempotency-Key"),
    ),
    (SealedValueError, lambda e: ApiError(409, str(e), code="cannot_unseal")),
    (
        ReplayPublishFailed,
        lambda e: ApiError(503, f"{e}; nothing was changed, try again shortly", code="broker_unavailable"),
    ),
)


def api_error(exc: Exception) -> ApiError:
    """The API error for a refused dead-letter operation (the mapping the CLI's exit codes mirror).

    Raises:
        The exception itself when it is not a refusal this API knows.
    """
    for kind, error in _REFUSALS:
        if isinstance(exc, kind):
            return error(exc)
    raise exc


@router.get("", response_model=DeadLettersPublic, responses=error_responses(400, 422, 503))
def list_dead_letters(
    *,
    session: SessionDep,
    status_: Annotated[DeadLetterStatus | None, Query(alias="status")] = None,
    query: Annotated[DeadLetterQuery, Query()],
    cursor: Annotated[
        str | None, Query(max_length=MAX_CURSOR_LENGTH, description="next_cursor of the previous page.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> DeadLettersPublic:
    """Dead letters, newest first, with filters and cursor pagination. Payloads (args, kwargs, headers)
    are left out: `GET /dead-letters/{id}` shows one letter's."""
    page = dlq.list_dead_letters(
        session,
        query.to_filter(),
        status=status_,
        cursor=decode_cursor(cursor) if cursor is not None else None,
        limit=limit,
    )
    return DeadLettersPublic(
        data=[DeadLetterPublic.from_record(letter) for letter in page.items],
        next_cursor=encode_cursor(*page.next_cursor) if page.next_cursor else None,
    )


@router.post(
    "/replay",
    response_model=ReplayJobPublic | BulkReplayPreview,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: {"model": BulkReplayPreview, "description": "Dry run: what would be replayed; nothing was published."},
        202: {"model": ReplayJobPublic, "description": "The replay job, to follow at /dead-letters/replays/{id}."},
        **error_responses(422, 503),
    },
)
def bulk_replay(
    session: SessionDep, principal: PrincipalDep, request: BulkReplayRequest, response: Response
) -> ReplayJobPublic | BulkReplayPreview:
    """Replay every pending dead letter matching the filter, oldest first, as a job the dispatcher runs.

    With ``dry_run`` the answer is the count and a sample, and nothing is published. Each dead letter is
    published exactly once by a job, even when a dispatcher dies halfway; ``rate_per_second`` caps the pace.
    """
    flt = request.to_filter()
    if request.dry_run:
        count = replay_jobs.count_matching(session, flt)
        sample = replay_jobs.sample_matching(session, flt, limit=request.sample_size)
        response.status_code = status.HTTP_200_OK
        return BulkReplayPreview(count=count, sample=[DeadLetterPublic.from_record(letter) for letter in sample])
    with session.begin():
        job = replay_jobs.create_job(
            session, flt=flt, rate_per_second=request.rate_per_second, now=utcnow(), actor=principal
        )
        public = ReplayJobPublic.from_record(job)
    log_event("replay_job.created", job=public.id, total=public.total, rate=public.rate_per_second)
    return public


@router.get("/replays/{job_id}", response_model=ReplayJobPublic, responses=error_responses(404, 422, 503))
def get_replay_job(
    session: SessionDep, job_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The replay job's id.")]
) -> ReplayJobPublic:
    """A bulk replay job and its progress."""
    try:
        job = replay_jobs.get_job(session, job_id=job_id)
    except replay_jobs.ReplayJobNotFound as exc:
        raise ApiError(404, exc.message, code="replay_job_not_found", param="job_id") from None
    return ReplayJobPublic.from_record(job)


@router.post("/replays/{job_id}/cancel", response_model=ReplayJobPublic, responses=error_responses(404, 409, 422, 503))
def cancel_replay_job(
    session: SessionDep,
    principal: PrincipalDep,
    job_id: Annotated[int, Path(ge=1, le=MAX_ID, description="The replay job's id.")],
) -> ReplayJobPublic:
    """Cancel a pending or running bulk replay job: no new batch starts. A batch already in flight is
    finished (its letters end up replayed), the rest stay pending. 409 when the job has already ended."""
    try:
        with session.begin():
            job = replay_jobs.cancel_job(session, job_id=job_id, now=utcnow(), actor=principal)
            public = ReplayJobPublic.from_record(job)
    except replay_jobs.ReplayJobNotFound as exc:
        raise ApiError(404, exc.message, code="replay_job_not_found", param="job_id") from None
    except replay_jobs.ReplayJobFinished as exc:
        raise ApiError(409, exc.message, code="replay_job_finished", param="job_id") from None
    log_event("replay_job.cancelled", job=public.id, published=public.published, total=public.total)
    return public


@router.get("/{dead_letter_id:int}", response_model=DeadLetterDetailPublic, responses=error_responses(404, 422, 503))
def get_dead_letter(session: SessionDep, dead_letter_id: DeadLetterId) -> DeadLetterDetailPublic:
    """A dead letter with its redacted payload, its failed attempts and its replays."""
    try:
        letter = dead_letters.get_dead_letter(session, dead_letter_id=dead_letter_id)
    except dead_letters.DeadLetterError as exc:
        raise api_error(exc) from None
    return DeadLetterDetailPublic.from_records(
        letter,
        attempts=dlq.attempts_of(session, task_id=letter.task_id),
        replays=dlq.replays_of(session, dead_letter_id=letter.id),
    )


@router.post(
    "/{dead_letter_id}/replay",
    response_model=ReplayPublic,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(404, 409, 422, 503),
)
def replay_dead_letter(
    session: SessionDep,
    celery: CeleryDep,
    runtime: RuntimeDep,
    principal: PrincipalDep,
    dead_letter_id: DeadLetterId,
    body: Annotated[ReplayRequest | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            pattern=r"^[!-~]+$",
            description="Repeat a request with the same key to get its first replay back, never a second one.",
        ),
    ] = None,
) -> ReplayPublic:
    """Publish the dead letter again as a new task linked to it; it becomes ``replayed``.

    Secret values come back from their encrypted copies: leave ``[REDACTED]`` where the view showed it
    (a placeholder elsewhere is refused: 422 ``secret_moved``). Refused (409) when it was replayed before
    (unless ``force``), discarded, claimed by a bulk replay job (``being_replayed``), or not replayable;
    422 for a queue the app does not declare, or edits past the size and depth limits; 400 for an
    ``Idempotency-Key`` starting with ``replay-job:``; 409 ``payload_purged`` when retention purged its
    secrets. Audited as ``dead_letter.replay``.
    """
    request = body or ReplayRequest()
    try:
        with session.begin():
            order = ReplayOrder(
                dead_letter_id=dead_letter_id,
                args=request.args,
                kwargs=request.kwargs,
                queue=request.queue,
                force=request.force,
            )
            result = replay_in_session(
                session, order, runtime, app=celery, idempotency_key=idempotency_key, actor=principal
            )
    except (
        dead_letters.DeadLetterError,
        InvalidReplayEdit,
        QueueNotAllowed,
        ReservedIdempotencyKey,
        SealedValueError,
        ReplayPublishFailed,
    ) as exc:
        raise api_error(exc) from None
    return copy_fields(ReplayPublic, result)


@router.delete("/{dead_letter_id:int}", response_model=DeadLetterPublic, responses=error_responses(404, 409, 422, 503))
def discard_dead_letter(
    session: SessionDep,
    principal: PrincipalDep,
    dead_letter_id: DeadLetterId,
    discard: Annotated[DiscardRequest, Query()],
) -> DeadLetterPublic:
    """Discard a dead letter with a reason: it and its task become ``discarded`` (terminal). 409 when it
    was replayed, discarded, or is claimed by a bulk replay job. Audited as ``dead_letter.discard``."""
    try:
        with session.begin():
            letter = dead_letters.discard(
                session, dead_letter_id=dead_letter_id, reason=discard.reason, now=utcnow(), actor=principal
            )
    except dead_letters.DeadLetterError as exc:
        raise api_error(exc) from None
    log_event("dead_letter.discarded", dead_letter=letter.id, task=letter.task_name, task_id=letter.task_id)
    return DeadLetterPublic.from_record(letter)
