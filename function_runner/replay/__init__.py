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
first replay without publishing again; the same key for another dead letter is refused. Keys starting
with ``replay-job:`` are the bulk replay jobs' own and are refused.

Limits, checked before anything is written (a dry run checks them too):

- edits: at most ``replay_edit_max_depth`` levels of lists and objects and ``replay_edit_max_bytes`` of
  canonical JSON, each of args and kwargs;
- secrets stay where they were: a ``[REDACTED]`` placeholder is restored only at the path its sealed
  original is stored at, and an edit may not carry a sealed marker (``{"$sealed": ...}``) the stored
  payload does not hold at the same path;
- the queue: one the app declares (:func:`declared_queues`), the dead letter's own, or one listed in
  ``replay_allowed_queues``.

Each replay is audited (``dead_letter.replay``) in its transaction, with the digest and redacted diff of
its edits (:mod:`error_handling.persistence.audit`).

Errors, besides :mod:`error_handling.persistence.dead_letters`' refusals::

    FunctionRunnerError
    └── ReplayError                     a replay could not be carried out
        ├── InvalidReplayEdit           the operator's args/kwargs edits cannot be used
        │   ├── EditTooLarge            more bytes of JSON than replay_edit_max_bytes
        │   ├── EditTooDeep             nested deeper than replay_edit_max_depth
        │   └── SecretMoved             a sealed secret put at another path than its own
        ├── QueueNotAllowed             the queue is not one the app declares or the settings allow
        ├── ReservedIdempotencyKey      the Idempotency-Key uses the bulk replay jobs' prefix
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
from error_handling.persistence import audit, dead_letters
from error_handling.persistence.db import transaction
from error_handling.persistence.models import DeadLetterRecord, DeadLetterStatus, utcnow
from error_handling.persistence.replay_jobs import IDEMPOTENCY_PREFIX
from error_handling.redaction import REDACTED, Redactor
from error_handling.sealing import (
    LITERAL_KEY,
    SEALED_KEY,
    Sealer,
    UnknownPlaceholderError,
    is_sealed,
    redacted_view,
    restore_redacted,
    unseal_secrets,
)
from function_runner.events import log_event
from function_runner.runtime import Runtime, runtime_for
from function_runner.settings import Settings
from function_runner.wrapper import headers as H

__all__ = [
    "EditTooDeep",
    "EditTooLarge",
    "InvalidReplayEdit",
    "QueueNotAllowed",
    "ReplayError",
    "ReplayMessage",
    "ReplayPreview",
    "ReplayPublishFailed",
    "ReplayResult",
    "ReservedIdempotencyKey",
    "SecretMoved",
    "build_message",
    "check_edits",
    "check_queue",
    "declared_queues",
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

    #: The stable code of the refusal (the API's ``error.code``).
    code = "invalid_edit"

    def __init__(self, message: str, *, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class EditTooLarge(InvalidReplayEdit):
    """An edit is larger than ``replay_edit_max_bytes`` as canonical JSON."""

    code = "edit_too_large"


class EditTooDeep(InvalidReplayEdit):
    """An edit nests lists and objects deeper than ``replay_edit_max_depth``."""

    code = "edit_too_deep"


class SecretMoved(InvalidReplayEdit):
    """An edit puts a sealed secret (its ``[REDACTED]`` placeholder or its sealed marker) at another path
    than the one it is stored at."""

    code = "secret_moved"


class QueueNotAllowed(ReplayError):
    """The replay's queue is not one the app declares, the dead letter's own, or one the settings allow."""

    def __init__(self, queue: str, allowed: set[str]) -> None:
        shown = ", ".join(sorted(allowed)[:20]) + (", ..." if len(allowed) > 20 else "")
        self.message = (
            f"queue {queue!r} is not declared by the app (allowed: {shown}); "
            "add it to FUNCTION_RUNNER_REPLAY_ALLOWED_QUEUES to replay to it"
        )
        super().__init__(self.message)
        self.queue = queue


class ReservedIdempotencyKey(ReplayError):
    """The ``Idempotency-Key`` starts with the prefix the bulk replay jobs use for their own replays."""

    def __init__(self) -> None:
        self.message = f"Idempotency-Key values starting with {IDEMPOTENCY_PREFIX!r} are reserved for bulk replay jobs"
        super().__init__(self.message)


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
    _check_secrets_in_place(param, edited, stored)
    try:
        return restore_redacted(edited, stored, sealer=sealer)
    except UnknownPlaceholderError as exc:
        raise InvalidReplayEdit(f"{param}: {exc}", param=param) from exc


def _where(param: str, path: tuple[str | int, ...]) -> str:
    return param + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in path)


def _sealed_paths(stored: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """Where ``stored`` holds sealed values (dict keys and list indexes from the top)."""
    if is_sealed(stored):
        return [path]
    if isinstance(stored, dict):
        inner = (
            stored[LITERAL_KEY] if set(stored) == {LITERAL_KEY} and isinstance(stored[LITERAL_KEY], dict) else stored
        )
        return [found for key, item in inner.items() for found in _sealed_paths(item, (*path, key))]
    if isinstance(stored, list):
        return [found for index, item in enumerate(stored) for found in _sealed_paths(item, (*path, index))]
    return []


def _check_secrets_in_place(param: str, edited: Any, stored: Any) -> None:
    """Refuse an edit that puts a sealed secret at another path than its own.

    A ``[REDACTED]`` placeholder stands for the secret stored at the same path (dicts by key, lists by
    position while they keep their length, as :func:`~error_handling.sealing.restore_redacted` matches
    them); a placeholder where no secret is stored, while the payload has secrets elsewhere, would move
    one. A sealed marker (``{"$sealed": ...}``) in an edit is refused unless the stored payload holds
    the task's own identical dict at that path.

    Raises:
        SecretMoved: the message names the path and where the payload's secrets are.
    """
    secrets = _sealed_paths(stored)
    if not secrets:
        return  # nothing sealed to move; restore_redacted refuses a stray placeholder itself

    def refuse(path: tuple[str | int, ...], what: str) -> SecretMoved:
        kept = ", ".join(_where(param, p) for p in secrets[:10])
        if path in secrets:  # the right path, but a list on the way changed length: positions moved
            return SecretMoved(
                f"{what} at {_where(param, path)}: a list holding it changed length, so which secret goes "
                "where is a guess; keep the list's length, or send the real value instead",
                param=param,
            )
        return SecretMoved(
            f"{what} at {_where(param, path)}, where no secret is stored: a secret can only be kept at its "
            f"own path ({kept}); send the real value instead",
            param=param,
        )

    def walk(new: Any, old: Any, path: tuple[str | int, ...]) -> None:
        own_dict = isinstance(old, dict) and set(old) == {LITERAL_KEY} and isinstance(old[LITERAL_KEY], dict)
        if own_dict:  # the task's own dict that has a "$sealed" or "$literal" key, escaped when stored
            old = old[LITERAL_KEY]
        if isinstance(new, str) and new == REDACTED:
            if not is_sealed(old) and old != REDACTED:
                raise refuse(path, REDACTED)
            return
        if is_sealed(new) and new[SEALED_KEY] != REDACTED:
            if not (own_dict and new == old):
                raise refuse(path, f"a sealed value ({{{SEALED_KEY!r}: ...}})")
            return
        if isinstance(new, dict):
            inner = old if isinstance(old, dict) and not is_sealed(old) else {}
            for key, item in new.items():
                walk(item, inner.get(key, _ABSENT), (*path, key))
        elif isinstance(new, list):
            same_shape = isinstance(old, list) and len(old) == len(new)
            for index, item in enumerate(new):
                walk(item, old[index] if same_shape else _ABSENT, (*path, index))

    walk(edited, stored, ())


_ABSENT: Any = object()


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether ``value`` nests lists and objects deeper than ``limit`` (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 1 if isinstance(value, dict | list) else 0)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def check_edits(*, args: Any = None, kwargs: Any = None, max_bytes: int, max_depth: int) -> None:
    """Refuse edits nested deeper than ``max_depth`` or larger than ``max_bytes`` of canonical JSON.

    Raises:
        EditTooDeep: args or kwargs nest deeper than ``max_depth`` levels.
        EditTooLarge: args or kwargs take more than ``max_bytes`` bytes as canonical JSON (UTF-8).
    """
    for param, value in (("args", args), ("kwargs", kwargs)):
        if value is None:
            continue
        if _depth_exceeds(value, max_depth):
            raise EditTooDeep(f"{param} nests lists and objects deeper than {max_depth} levels", param=param)
        try:
            size = len(audit.canonical_json(value).encode("utf-8"))
        except (TypeError, ValueError) as exc:
            raise InvalidReplayEdit(f"{param} is not JSON: {exc}", param=param) from None
        if size > max_bytes:
            raise EditTooLarge(f"{param} is {size} bytes of JSON; at most {max_bytes} are accepted", param=param)


def declared_queues(app: Celery, settings: Settings | None = None) -> set[str]:
    """The queues a replay may target: the app's default queue, its ``task_queues``, the queues named by
    its ``task_routes`` (dicts, or lists of dicts; a router function cannot be enumerated: list its queues
    in ``replay_allowed_queues``), and ``settings.replay_allowed_queues``."""
    conf = app.conf
    found: set[str] = {str(conf.task_default_queue or "celery")}
    for queue in conf.task_queues or ():
        name = getattr(queue, "name", queue)
        if isinstance(name, str) and name:
            found.add(name)
    routes = conf.task_routes
    routers = routes if isinstance(routes, list | tuple) else [routes] if routes else []
    for router in routers:
        if not isinstance(router, dict):
            continue
        for route in router.values():
            target = route.get("queue") if isinstance(route, dict) else route
            name = getattr(target, "name", target)
            if isinstance(name, str) and name:
                found.add(name)
    if settings is not None:
        found.update(settings.replay_allowed_queues)
    return found


def check_queue(queue: str | None, *, letter: DeadLetterRecord, app: Celery, settings: Settings) -> None:
    """Refuse a replay queue the app does not declare (see :func:`declared_queues`) other than the dead
    letter's own.

    Raises:
        QueueNotAllowed: with the allowed queues in its message.
    """
    if queue is None:
        return
    allowed = declared_queues(app, settings)
    if letter.queue:
        allowed.add(letter.queue)
    if queue not in allowed:
        raise QueueNotAllowed(queue, allowed)


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
    actor: str = audit.UNKNOWN_ACTOR,
    runtime: Runtime | None = None,
) -> ReplayResult:
    """Replay a dead letter in the caller's transaction: record the replay and its audit event
    (``actor``'s ``dead_letter.replay``), then publish.

    The caller commits after this returns (and rolls back if it raises): then a failed publish marks
    nothing. ``runtime`` (default: ``app``'s) gives the settings (queues, edit limits) and the redactor.

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
    runtime = runtime or runtime_for(app)
    settings = runtime.settings
    check_edits(
        args=args, kwargs=kwargs, max_bytes=settings.replay_edit_max_bytes, max_depth=settings.replay_edit_max_depth
    )
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
    check_queue(queue, letter=letter, app=app, settings=settings)
    message = build_message(letter, sealer=sealer, args=args, kwargs=kwargs, queue=queue)
    moment = now or utcnow()
    forced = letter.status is DeadLetterStatus.REPLAYED
    task_id = str(uuid.uuid4())
    edits = _audit_edits(letter, args=args, kwargs=kwargs, redactor=runtime.redactor)
    dead_letters.mark_replayed(
        session, letter=letter, task_id=task_id, now=moment, queue=queue, idempotency_key=idempotency_key
    )
    audit.record(
        session,
        actor=actor,
        action=audit.AuditAction.DEAD_LETTER_REPLAY,
        target_type=audit.AuditTarget.DEAD_LETTER,
        target_id=dead_letter_id,
        detail={
            "task_id": task_id,
            "task_name": message.task_name,
            "queue": message.queue,
            "forced": forced,
            **({"edits": edits} if edits is not None else {}),
        },
        now=moment,
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
    actor: str = audit.UNKNOWN_ACTOR,
) -> ReplayResult:
    """Replay a dead letter in a transaction of its own on ``runtime``'s database; publish through ``app``;
    audited as ``actor``'s.

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
            actor=actor,
            runtime=runtime,
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
    app: Celery | None = None,
    settings: Settings | None = None,
) -> ReplayPreview:
    """What :func:`replay_in_session` would publish, checked the same way, publishing nothing.

    Secrets are shown as ``[REDACTED]``. With ``app`` and ``settings`` the queue and the edit limits are
    checked too.

    Raises:
        The refusals of :func:`replay_in_session`, except ReplayPublishFailed.
    """
    if settings is not None:
        check_edits(
            args=args, kwargs=kwargs, max_bytes=settings.replay_edit_max_bytes, max_depth=settings.replay_edit_max_depth
        )
    letter = dead_letters.get_dead_letter(session, dead_letter_id=dead_letter_id)
    dead_letters.check_replayable(letter, force=force, edits_complete=args is not None and kwargs is not None)
    if app is not None and settings is not None:
        check_queue(queue, letter=letter, app=app, settings=settings)
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
