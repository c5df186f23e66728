"""The recovery of a bulk replay batch: which of its replays a dispatcher that died mid-batch already
published. Found in ``fr_tasks`` (a worker ran the copy and saw it fail) or waiting in the broker's queues
(Redis and the memory transport; other brokers cannot be inspected, and their batch publishes again:
at least once, never lost)."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis
from celery import Celery

from error_handling.persistence import task_records
from function_runner.events import log_event
from function_runner.replay.message import ReplayMessage
from function_runner.services import InTransaction

__all__ = ["already_published"]


def already_published(
    app: Celery, in_transaction: InTransaction, candidates: list[tuple[str, ReplayMessage | None]]
) -> set[str]:
    """Which of these task ids a previous attempt published: found in the broker or in ``fr_tasks``.

    Raises:
        StorageUnavailable: the database is unreachable.
        ConnectionError, kombu OperationalError: the broker's queues could not be read.
    """
    wanted = {task_id for task_id, _ in candidates}
    if not wanted:
        return set()
    found: set[str] = set()

    found |= in_transaction(lambda session: task_records.existing_task_ids(session, wanted), patience=0)
    queues = {_queue_of(app, message) for _, message in candidates if message is not None}
    found |= _in_broker_queues(app, queues, wanted)
    log_event("replay_job.recovery", candidates=len(wanted), found=len(found))
    return found


def _queue_of(app: Celery, message: ReplayMessage) -> str:
    options = message.options
    queue = options.get("queue") or options.get("routing_key") or message.queue
    return str(queue or app.conf.task_default_queue or "celery")


def _in_broker_queues(app: Celery, queues: set[str], wanted: set[str]) -> set[str]:
    """Task ids among ``wanted`` waiting in the broker's queues (Redis and memory; empty elsewhere)."""
    try:
        return _scan_broker_queues(app, queues, wanted)
    except redis.RedisError as exc:  # unsure what was published, so publish nothing now
        raise ConnectionError(f"cannot inspect the broker's queues: {type(exc).__name__}") from exc


def _scan_broker_queues(app: Celery, queues: set[str], wanted: set[str]) -> set[str]:
    found: set[str] = set()
    with app.connection_for_write() as connection:
        driver = connection.transport.driver_type
        channel: Any = connection.default_channel
        if driver == "redis":
            with channel.conn_or_acquire() as client:
                for queue in queues:
                    for key in {channel._q_for_pri(queue, pri) for pri in channel.priority_steps}:
                        found |= {t for raw in client.lrange(key, 0, -1) if (t := _task_id_of(raw)) in wanted}
        elif driver == "memory":
            for queue in queues:
                found |= {t for raw in list(channel._queue_for(queue).queue) if (t := _task_id_of(raw)) in wanted}
        else:
            log_event("replay_job.recovery_unchecked", level=logging.WARNING, transport=driver)
    return found


def _task_id_of(raw: Any) -> str | None:
    try:
        message = raw if isinstance(raw, dict) else json.loads(raw)
        headers = message.get("headers") or {}
        task_id = headers.get("id") or (message.get("properties") or {}).get("correlation_id")
    except (ValueError, AttributeError):
        return None
    return str(task_id) if task_id else None
