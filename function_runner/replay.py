"""Replay: publish a dead letter again as a new Celery task, linked to the dead letter it came from.

A replay publishes the dead letter's task under a NEW task id, with its original headers plus
``fr_replay_of: <dead letter id>`` (the wrapper records it as ``replay_of`` if the new task fails), and
its original delivery options, or the queue the operator chose. Secrets come back from their sealed
copies: the stored payload is unsealed, or, when the operator edited the redacted view, each
``[REDACTED]`` left in place gets its sealed original back (:func:`~error_handling.sealing.restore_redacted`).

In ONE transaction: lock the dead letter, check it may be replayed, record the replay (dead letter
``replayed`` with the new task id, a row in ``fr_replay_requests``), publish, commit. A publish that
fails rolls everything back: nothing is marked. (A commit that fails after the publish leaves a task
published and the dead letter ``pending``: at least once, never lost.)

An ``Idempotency-Key`` makes retries of a request safe: the same key for the same dead letter returns the
first replay without publishing again; the same key for another dead letter is refused.

Errors, besides :mod:`error_handling.persistence.dead_letters`' refusals::

    FunctionRunnerError
    └── ReplayError                     a replay could not be carried out
        ├── InvalidReplayEdit           the operator's args/kwargs edits cannot be used
        └── ReplayPublishFailed         the broker did not take the message; nothing was marked
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.orm import Session

from error_handling.exceptions import FunctionRunnerError
from error_handling.persistence import dead_letters
from error_handling.persistence.db import transaction
from error_handling.persistence.models import DeadLetterRecord, DeadLetterStatus, utcnow
from error_handling.redaction import Redactor
from error_handling.sealing import Sealer, UnknownPlaceholderError, restore_redacted, unseal_secrets
from function_runner import headers as H
from function_runner.events import log_event
from function_runner.runtime import Runtime

__all__ = [
    "InvalidReplayEdit",
    "ReplayError",
    "ReplayMessage",
    "ReplayPreview",
    "ReplayPublishFailed",
    "ReplayResult",
    "build_message",
    "preview_replay",
    "replay_dead_letter",
    "replay_in_session",
]

#: Delivery options that route a message; a queue chosen by the operator replaces them.
_ROUTING_OPTIONS = ("exchange", "routing_key")
#: Headers a transport adds to a delivered message (kombu's Redis transport marks restored messages);
#: a replay is a new message, so they are not carried over.
_TRANSPORT_HEADERS = frozenset({"redelivered"})


class ReplayError(FunctionRunnerError):
    """A replay could not be carried out."""


class InvalidReplayEdit(ReplayError):
    """The operator's edits of args or kwargs cannot be used (the message says what to fix).

    Args:
        message: what is wrong.
        param: ``"args"`` or ``"kwargs"``.
    """

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class ReplayPublishFailed(ReplayError):
    """The broker did not take the replayed message; the dead letter was left as it was."""


@dataclasses.dataclass(frozen=True)
class ReplayMessage:
    """What a replay publishes. ``args``, ``kwargs`` and ``headers`` hold secrets in clear: never log them."""

    task_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    headers: dict[str, Any]
    #: Delivery options for ``send_task`` (exchange, routing_key, priority, time limits), or ``queue``.
    options: dict[str, Any]
    queue: str | None


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


def build_message(
    letter: DeadLetterRecord,
    *,
    sealer: Sealer,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    queue: str | None = None,
) -> ReplayMessage:
    """The message that replays ``letter``, with secrets unsealed and the operator's edits applied.

    Raises:
        InvalidReplayEdit: an edit is not a list (args) / an object (kwargs), or holds ``[REDACTED]``
            where no secret is stored.
        SealedValueError: a stored secret cannot be opened with the configured keys.
    """
    final_args = _merge("args", args, letter.args, sealer=sealer, kind=list)
    final_kwargs = _merge("kwargs", kwargs, letter.kwargs, sealer=sealer, kind=dict)
    headers = dict(unseal_secrets(letter.headers, sealer=sealer) or {})
    headers = {key: value for key, value in headers.items() if key not in H.ALL and key not in _TRANSPORT_HEADERS}
    headers[H.REPLAY_OF] = letter.id
    options = dict(letter.options or {})
    if queue:
        for key in _ROUTING_OPTIONS:
            options.pop(key, None)
        options["queue"] = queue
    return ReplayMessage(
        task_name=letter.task_name,
        args=final_args,
        kwargs=final_kwargs,
        headers=headers,
        options=options,
        queue=queue or letter.queue,
    )


def _merge(param: str, edited: Any, stored: Any, *, sealer: Sealer, kind: type) -> Any:
    if edited is None:
        value = unseal_secrets(stored, sealer=sealer)
        return value if value is not None else kind()
    if not isinstance(edited, kind):
        wanted = "a JSON array" if kind is list else "a JSON object"
        raise InvalidReplayEdit(f"{param} must be {wanted}", param=param)
    try:
        return restore_redacted(edited, stored, sealer=sealer)
    except UnknownPlaceholderError as exc:
        raise InvalidReplayEdit(f"{param}: {exc}", param=param) from exc


def replay_in_session(
    session: Session,
    *,
    app: Celery,
    sealer: Sealer,
    dead_letter_id: int,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    queue: str | None = None,
    force: bool = False,
    idempotency_key: str | None = None,
    now: dt.datetime | None = None,
) -> ReplayResult:
    """Replay a dead letter in the caller's transaction: record the replay, then publish.

    The caller commits after this returns (and rolls back if it raises): then a failed publish marks
    nothing.

    Raises:
        DeadLetterNotFound: no dead letter has this id.
        AlreadyReplayed: it was replayed before and ``force`` is false.
        AlreadyDiscarded: it was discarded.
        NotReplayable: its payload could not be stored faithfully and args and kwargs were not both given.
        IdempotencyKeyReused: the key was used to replay another dead letter.
        InvalidReplayEdit: the edits cannot be used.
        SealedValueError: a stored secret cannot be opened with the configured keys.
        ReplayPublishFailed: the broker did not take the message.
    """
    letter = dead_letters.lock_dead_letter(session, dead_letter_id=dead_letter_id)
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
    dead_letters.check_replayable(letter, force=force, edits_complete=args is not None and kwargs is not None)
    message = build_message(letter, sealer=sealer, args=args, kwargs=kwargs, queue=queue)
    moment = now or utcnow()
    forced = letter.status is DeadLetterStatus.REPLAYED
    task_id = str(uuid.uuid4())
    dead_letters.mark_replayed(
        session, letter=letter, task_id=task_id, now=moment, queue=queue, idempotency_key=idempotency_key
    )
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
    options = dict(message.options)
    time_limit = options.pop("time_limit", None)
    soft_time_limit = options.pop("soft_time_limit", None)
    try:
        app.send_task(
            message.task_name,
            args=message.args,
            kwargs=message.kwargs,
            task_id=task_id,
            headers=message.headers,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            **options,
        )
    except (BrokerError, ConnectionError) as exc:
        raise ReplayPublishFailed(f"the broker did not take the replayed task: {type(exc).__name__}") from exc


def replay_dead_letter(
    app: Celery,
    runtime: Runtime,
    *,
    dead_letter_id: int,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    queue: str | None = None,
    force: bool = False,
    idempotency_key: str | None = None,
) -> ReplayResult:
    """Replay a dead letter in a transaction of its own on ``runtime``'s database; publish through ``app``.

    Raises:
        Everything :func:`replay_in_session` raises, and StorageUnavailable when the database is
        unreachable (tried once: a replay is never retried blindly).
    """
    with transaction(runtime.sessions) as session:
        return replay_in_session(
            session,
            app=app,
            sealer=runtime.sealer,
            dead_letter_id=dead_letter_id,
            args=args,
            kwargs=kwargs,
            queue=queue,
            force=force,
            idempotency_key=idempotency_key,
        )


def preview_replay(
    session: Session,
    *,
    sealer: Sealer,
    redactor: Redactor,
    dead_letter_id: int,
    args: list[Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    queue: str | None = None,
    force: bool = False,
) -> ReplayPreview:
    """What :func:`replay_in_session` would publish, checked the same way, publishing nothing.

    Secrets are shown as ``[REDACTED]``.

    Raises:
        The refusals of :func:`replay_in_session`, except ReplayPublishFailed.
    """
    letter = dead_letters.get_dead_letter(session, dead_letter_id=dead_letter_id)
    dead_letters.check_replayable(letter, force=force, edits_complete=args is not None and kwargs is not None)
    message = build_message(letter, sealer=sealer, args=args, kwargs=kwargs, queue=queue)
    return ReplayPreview(
        dead_letter_id=letter.id,
        task_name=message.task_name,
        args=redactor.redact(message.args),
        kwargs=redactor.redact(message.kwargs),
        headers=redactor.redact(message.headers),
        options=dict(message.options),
        queue=message.queue,
    )
