"""The message a replay publishes, and the queues it may go to.

A replay publishes the dead letter's task under a NEW task id, with its original headers plus
``fr_replay_of: <dead letter id>`` and its original delivery options, or the queue the operator chose
(one the app declares, the dead letter's own, or one listed in ``replay_allowed_queues``). Secrets come
back from their sealed copies.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from celery import Celery

from error_handling.persistence.models import DeadLetterRecord
from error_handling.sealing import Sealer, unseal_secrets
from function_runner.broker.publish import send_task
from function_runner.replay.edits import merge_edit
from function_runner.replay.errors import QueueNotAllowed
from function_runner.settings import Settings
from function_runner.wrapper import headers as H

__all__ = ["ReplayMessage", "build_message", "check_queue", "declared_queues", "publish_message"]

#: Delivery options that route a message; a queue chosen by the operator replaces them.
_ROUTING_OPTIONS = ("exchange", "routing_key")
#: Headers a transport adds to a delivered message (kombu's Redis transport marks restored messages);
#: a replay is a new message, so they are not carried over.
_TRANSPORT_HEADERS = frozenset({"redelivered"})


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
    final_args = merge_edit("args", args, letter.args, sealer=sealer, kind=list)
    final_kwargs = merge_edit("kwargs", kwargs, letter.kwargs, sealer=sealer, kind=dict)
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


def publish_message(app: Celery, message: ReplayMessage, *, task_id: str, producer: Any = None) -> None:
    """Publish ``message`` through ``app`` as task ``task_id``.

    Raises:
        kombu OperationalError / ConnectionError: the broker did not take the message.
    """
    send_task(
        app,
        message.task_name,
        args=message.args,
        kwargs=message.kwargs,
        headers=message.headers,
        options=message.options,
        task_id=task_id,
        producer=producer,
    )
