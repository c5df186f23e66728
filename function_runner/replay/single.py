"""Replaying one dead letter on an operator's request (the API and ``dlq replay``).

In ONE transaction: lock the dead letter, check it may be replayed, record the replay (dead letter
``replayed`` with the new task id, a row in ``fr_replay_requests``, the ``dead_letter.replay`` audit
event), publish, commit. A publish that fails rolls everything back: nothing is marked. An
``Idempotency-Key`` makes retries of a request safe. :func:`preview_replay` is the dry run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any, Protocol

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.orm import Session

from error_handling.persistence import audit, dead_letters
from error_handling.persistence.db import transaction
from error_handling.persistence.models import DeadLetterRecord, DeadLetterStatus, utcnow
from error_handling.persistence.replay_jobs import IDEMPOTENCY_PREFIX
from error_handling.redaction import Redactor
from error_handling.sealing import Sealer, redacted_view
from function_runner.events import log_event
from function_runner.replay.edits import check_edits
from function_runner.replay.errors import ReplayPublishFailed, ReservedIdempotencyKey
from function_runner.replay.message import ReplayMessage, build_message, check_queue, publish_message
from function_runner.services import HasSessions, HasSettings, Sealing
from function_runner.settings import Settings

__all__ = [
    "ReplayOrder",
    "ReplayPreview",
    "ReplayResult",
    "ReplayServices",
    "ReplayTools",
    "preview_replay",
    "replay_dead_letter",
    "replay_in_session",
]


@dataclasses.dataclass(frozen=True)
class ReplayOrder:
    """Which dead letter to replay and how: new ``args``/``kwargs`` (None: the stored ones), another
    ``queue`` (None: the original route), and ``force`` to replay one that was replayed before."""

    dead_letter_id: int
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    queue: str | None = None
    force: bool = False


class ReplayTools(HasSettings, Sealing, Protocol):
    """What a replay in the caller's transaction uses: the settings (queues, edit limits), the sealer
    (the stored secrets) and the redactor (the audited edits, the preview)."""


class ReplayServices(ReplayTools, HasSessions, Protocol):
    """What :func:`replay_dead_letter` uses of the app's services (the runtime has them)."""


@dataclasses.dataclass(frozen=True)
class ReplayResult:
    """A replay that was published.

    Attributes:
        repeated: True when an earlier request with the same ``Idempotency-Key`` made this replay;
            nothing was published by this call.
    """

    dead_letter_id: int
    task_id: str
    task_name: str
    queue: str | None
    replayed_at: dt.datetime
    forced: bool
    repeated: bool = False


@dataclasses.dataclass(frozen=True)
class ReplayPreview:
    """What a replay would publish, with every secret shown as ``[REDACTED]`` (a dry run)."""

    dead_letter_id: int
    task_name: str
    args: Any
    kwargs: Any
    headers: Any
    options: dict[str, Any]
    queue: str | None


def _audit_edits(letter: DeadLetterRecord, *, args: Any, kwargs: Any, redactor: Redactor) -> dict[str, Any] | None:
    if args is None and kwargs is None:
        return None
    changes: list[dict[str, Any]] = []
    truncated = 0
    for param, edited, stored in (("args", args, letter.args), ("kwargs", kwargs, letter.kwargs)):
        if edited is not None:
            found, more = audit.edit_diff(redacted_view(stored), edited, redactor=redactor, root=param)
            changes.extend(found)
            truncated += more
    return {
        "sha256": audit.edit_digest({"args": args, "kwargs": kwargs}),
        "changes": changes[: audit.MAX_DIFF_CHANGES],
        "truncated": truncated + max(0, len(changes) - audit.MAX_DIFF_CHANGES),
    }


def _check_limits(settings: Settings, order: ReplayOrder) -> None:
    check_edits(
        args=order.args,
        kwargs=order.kwargs,
        max_bytes=settings.replay_edit_max_bytes,
        max_depth=settings.replay_edit_max_depth,
    )


def _checked_message(
    letter: DeadLetterRecord, order: ReplayOrder, *, sealer: Sealer, app: Celery | None, settings: Settings
) -> ReplayMessage:
    """The message that replays ``letter``, once it may be replayed (the queue checked with ``app``)."""
    edits_complete = order.args is not None and order.kwargs is not None
    dead_letters.check_replayable(letter, force=order.force, edits_complete=edits_complete)
    if app is not None:
        check_queue(order.queue, letter=letter, app=app, settings=settings)
    return build_message(letter, sealer=sealer, args=order.args, kwargs=order.kwargs, queue=order.queue)


def replay_in_session(
    session: Session,
    order: ReplayOrder,
    tools: ReplayTools,
    *,
    app: Celery,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
    actor: str = audit.UNKNOWN_ACTOR,
) -> ReplayResult:
    """Replay a dead letter in the caller's transaction: record the replay and its audit event
    (``actor``'s ``dead_letter.replay``), then publish.

    The caller commits after this returns (and rolls back if it raises): then a failed publish marks
    nothing. ``tools`` give the queues and the edit limits, open the stored secrets and redact the audited
    edits.

    Raises:
        ReservedIdempotencyKey: the key starts with ``replay-job:``.
        EditTooDeep, EditTooLarge: the edits pass the limits of the settings.
        DeadLetterNotFound: no dead letter has this id.
        BeingReplayed: a bulk replay job claimed it.
        AlreadyReplayed: it was replayed before and ``force`` is false.
        AlreadyDiscarded: it was discarded.
        NotReplayable: its payload could not be stored faithfully and args and kwargs were not both given.
        IdempotencyKeyReused: the key was used to replay another dead letter.
        QueueNotAllowed: the queue is not declared by the app nor allowed by the settings.
        InvalidReplayEdit: the edits cannot be used (SecretMoved: they move a sealed secret).
        SealedValueError: a stored secret cannot be opened with the configured keys.
        ReplayPublishFailed: the broker did not take the message.
    """
    if idempotency_key is not None and idempotency_key.startswith(IDEMPOTENCY_PREFIX):
        raise ReservedIdempotencyKey()
    _check_limits(tools.settings, order)
    letter = dead_letters.lock_dead_letter(session, dead_letter_id=order.dead_letter_id)
    if idempotency_key is not None:
        prior = dead_letters.find_replay_request(session, idempotency_key=idempotency_key)
        if prior is not None:
            if prior.dead_letter_id != letter.id:
                raise dead_letters.IdempotencyKeyReused(letter.id, prior.dead_letter_id)
            return ReplayResult(
                dead_letter_id=letter.id,
                task_id=prior.task_id,
                task_name=letter.task_name,
                queue=prior.queue or letter.queue,
                replayed_at=prior.created_at,
                forced=prior.forced,
                repeated=True,
            )
    message = _checked_message(letter, order, sealer=tools.sealer, app=app, settings=tools.settings)
    moment = now or utcnow()
    forced = letter.status is DeadLetterStatus.REPLAYED
    task_id = str(uuid.uuid4())
    edits = _audit_edits(letter, args=order.args, kwargs=order.kwargs, redactor=tools.redactor)
    dead_letters.mark_replayed(
        session, letter=letter, task_id=task_id, now=moment, queue=order.queue, idempotency_key=idempotency_key
    )
    detail: dict[str, Any] = {
        "task_id": task_id,
        "task_name": message.task_name,
        "queue": message.queue,
        "forced": forced,
    }
    if edits is not None:
        detail["edits"] = edits
    audit.record(session, audit.AuditAction.DEAD_LETTER_REPLAY, letter.id, actor=actor, now=moment, detail=detail)
    _publish(app, message, task_id)
    log_event(
        "dead_letter.replayed",
        dead_letter=letter.id,
        task=letter.task_name,
        task_id=task_id,
        forced=forced,
        queue=message.queue,
    )
    return ReplayResult(
        dead_letter_id=letter.id,
        task_id=task_id,
        task_name=letter.task_name,
        queue=message.queue,
        replayed_at=moment,
        forced=forced,
    )


def _publish(app: Celery, message: ReplayMessage, task_id: str) -> None:
    try:
        publish_message(app, message, task_id=task_id)
    except (BrokerError, ConnectionError) as exc:
        raise ReplayPublishFailed(f"the broker did not take the replayed task: {type(exc).__name__}") from exc


def replay_dead_letter(
    app: Celery,
    services: ReplayServices,
    *,
    dead_letter_id: int,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    queue: str | None = None,
    force: bool = False,
    idempotency_key: str | None = None,
    actor: str = audit.UNKNOWN_ACTOR,
) -> ReplayResult:
    """Replay a dead letter in a transaction of its own on ``services``' database; publish through ``app``;
    audited as ``actor``'s.

    Raises:
        Everything :func:`replay_in_session` raises, and StorageUnavailable when the database is
        unreachable (tried once: a replay is never retried blindly).
    """
    with transaction(services.sessions) as session:
        return replay_in_session(
            session,
            ReplayOrder(dead_letter_id=dead_letter_id, args=args, kwargs=kwargs, queue=queue, force=force),
            services,
            app=app,
            idempotency_key=idempotency_key,
            actor=actor,
        )


def preview_replay(
    session: Session, order: ReplayOrder, tools: ReplayTools, *, app: Celery | None = None
) -> ReplayPreview:
    """What :func:`replay_in_session` would publish, checked the same way, publishing nothing.

    Secrets are shown as ``[REDACTED]``. The edit limits are checked; with ``app`` the queue too.

    Raises:
        The refusals of :func:`replay_in_session`, except ReplayPublishFailed.
    """
    _check_limits(tools.settings, order)
    letter = dead_letters.get_dead_letter(session, dead_letter_id=order.dead_letter_id)
    message = _checked_message(letter, order, sealer=tools.sealer, app=app, settings=tools.settings)
    redactor = tools.redactor
    return ReplayPreview(
        dead_letter_id=letter.id,
        task_name=message.task_name,
        args=redactor.redact(message.args),
        kwargs=redactor.redact(message.kwargs),
        headers=redactor.redact(message.headers),
        options=dict(message.options),
        queue=message.queue,
    )
