"""RabbitMQ: task queues that never drop a message silently, and the collection of what the broker
dead-letters itself.

RabbitMQ may give up on a message on its own: a quorum queue drops a message redelivered more than its
``x-delivery-limit`` times (20 by default since RabbitMQ 4.0; a database outage makes the wrapper requeue
messages that often), and any queue drops expired messages or those past a length limit, unless the
queue names a dead-letter exchange. Every queue declared through :func:`task_queue` (``create_app``
declares the default ``celery`` queue so) names function-runner's dead-letter exchange
(``function_runner.broker_dead``, fanout) which routes to one durable queue
(``function_runner.broker_dead_letters``). The dispatcher collects that queue into the dead-letter
queue of the system of record, as reason ``broker_dead_lettered`` with the full payload (secrets
sealed), and acks each message only after it is recorded; replay works as for any dead letter.

``FUNCTION_RUNNER_QUEUE_TYPE=quorum`` makes the queues quorum queues (replicated; Celery then disables
the global prefetch it cannot use), ``FUNCTION_RUNNER_BROKER_DELIVERY_LIMIT`` sets their delivery limit.
A queue that already exists with other arguments cannot be redeclared (RabbitMQ answers
``PRECONDITION_FAILED``): a user's own app that declared ``celery`` the plain Celery way, next to a
dispatcher or API built by ``create_app``. :func:`use_queues_as_found` (the dispatcher calls it at
start) checks each task queue of the app once and, for one that exists with other arguments, publishes
to it as it is (never declaring it again) and says so in one ``queue_as_found`` warning: the broker's
own drops from that queue are then not collected. To have them collected, declare the queue with
:func:`task_queue` (or delete the old one once drained and let ``create_app`` declare it).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Protocol

from kombu.connection import Connection
from kombu.entity import Exchange, Queue

from error_handling.categories import Category, Reason
from error_handling.classification import Classification
from error_handling.exceptions import ConfigurationError
from error_handling.fingerprint import fingerprint_parts
from error_handling.persistence import failure_recording, reports
from error_handling.persistence.models import utcnow
from error_handling.policy import DeadLetter
from error_handling.sealing import seal_secrets
from function_runner.events import log_event
from function_runner.services import Recording
from function_runner.wrapper import headers as H

if TYPE_CHECKING:
    from celery import Celery

    from function_runner.settings import Settings

__all__ = [
    "DEAD_EXCHANGE",
    "DEAD_QUEUE",
    "PRECONDITION_FAILED",
    "DeadLetterServices",
    "collect_dead_letters",
    "declare_dead_letter_queue",
    "is_amqp",
    "queue_arguments",
    "task_queue",
    "use_queues_as_found",
]

DEAD_EXCHANGE = "function_runner.broker_dead"
DEAD_QUEUE = "function_runner.broker_dead_letters"


def is_amqp(url: str) -> bool:
    """Whether a broker URL names RabbitMQ (AMQP)."""
    return url.startswith(("amqp://", "amqps://", "pyamqp://", "librabbitmq://"))


def queue_arguments(settings: Settings) -> dict[str, Any]:
    """The arguments of a task queue: function-runner's dead-letter exchange, and the queue type."""
    arguments: dict[str, Any] = {"x-dead-letter-exchange": DEAD_EXCHANGE}
    if settings.queue_type == "quorum":
        arguments["x-queue-type"] = "quorum"
        if settings.broker_delivery_limit is not None:
            arguments["x-delivery-limit"] = settings.broker_delivery_limit
    return arguments


def task_queue(name: str, settings: Settings) -> Queue:
    """A task queue (direct exchange of the same name, as Celery declares them) that dead-letters to
    function-runner's exchange: ``app.conf.task_queues = [task_queue("emails", settings), ...]``."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name, queue_arguments=queue_arguments(settings))


#: RabbitMQ's reply code when a queue exists with other arguments (PRECONDITION_FAILED).
PRECONDITION_FAILED = 406


def use_queues_as_found(app: Celery) -> list[str]:
    """RabbitMQ: declare each task queue of ``app`` that has arguments; one the broker already has with
    other arguments is kept as it is: the app publishes to it without declaring it (logged once as
    ``queue_as_found``). Returns the names of those queues; does nothing on other brokers.

    Raises:
        ConfigurationError: RabbitMQ refused a queue for another reason (e.g. access refused).
        kombu OperationalError / ConnectionError: the broker cannot be reached (call it again later).
    """
    if not is_amqp(str(app.conf.broker_url or "")):
        return []
    found: list[str] = []
    queues = app.amqp.queues
    with app.connection_for_write() as connection:
        for name, queue in list(queues.items()):
            if not queue.queue_arguments or queue.no_declare:
                continue
            channel = connection.channel()
            try:
                queue(channel).declare()
            except connection.channel_errors as exc:
                if getattr(exc, "code", None) != PRECONDITION_FAILED:
                    raise ConfigurationError(
                        f"RabbitMQ refused to declare the queue {name!r}: {exc}. Check the user's permissions "
                        "on the vhost, or declare the queue yourself with function_runner.broker.queues.task_queue()"
                    ) from exc
                queues[name] = Queue(name, queue.exchange, routing_key=queue.routing_key, no_declare=True)
                found.append(name)
                log_event(
                    "dispatcher.queue_as_found",
                    level=logging.WARNING,
                    queue=name,
                    detail=f"queue {name!r} exists without function-runner's arguments "
                    f"{queue.queue_arguments}: publishing to it as it is; what RabbitMQ drops from it is not "
                    "collected. Fix: declare it with function_runner.broker.queues.task_queue(), or delete it once drained",
                )
            finally:
                with contextlib.suppress(*connection.connection_errors, *connection.channel_errors):
                    channel.close()
    return found


def _dead_queue() -> Queue:
    return Queue(DEAD_QUEUE, Exchange(DEAD_EXCHANGE, type="fanout", durable=True), durable=True)


def declare_dead_letter_queue(connection: Connection) -> None:
    """Declare function-runner's dead-letter exchange and queue (idempotent)."""
    _dead_queue()(connection.default_channel).declare()


def _death_reason(headers: dict[str, Any]) -> str:
    deaths = headers.get("x-death") or []
    first = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
    return str(first.get("reason") or "unknown")


def _x_death(headers: dict[str, Any]) -> str:
    deaths = headers.get("x-death") or []
    if not deaths or not isinstance(deaths, list):
        return "dead-lettered by the broker"
    first = deaths[0] if isinstance(deaths[0], dict) else {}
    return (
        f"RabbitMQ dead-lettered the message from queue {first.get('queue')!r} "
        f"(reason {first.get('reason')!r}, {first.get('count', 1)} time(s))"
    )


class DeadLetterServices(Recording, Protocol):
    """What collecting the broker's dead letters uses of the app's services (the runtime has them)."""


def _record(services: DeadLetterServices, body: Any, headers: dict[str, Any], delivery: dict[str, Any]) -> str:
    """Record one broker dead letter; returns its task id."""
    args, kwargs = (body[0], body[1]) if isinstance(body, list | tuple) and len(body) >= 2 else ([], {})
    task_id, task_name = str(headers.get("id") or ""), str(headers.get("task") or "")
    if not task_id or not task_name:
        raise ValueError("not a Celery task message (no id or task header)")
    custom = {
        k: v for k, v in headers.items() if not k.startswith("x-") and k not in _CELERY_HEADERS and k not in H.ALL
    }

    def seal(value: Any) -> Any:
        return seal_secrets(value, redactor=services.redactor, sealer=services.sealer)

    try:
        attempt = int(headers.get(H.ATTEMPT) or 1)
    except (TypeError, ValueError):
        attempt = 1
    message = _x_death(headers)
    classification = Classification(
        category=Category.PERMANENT,
        reason=Reason.BROKER_DEAD_LETTERED.value,
        fingerprint=fingerprint_parts(["function_runner.queues.BrokerDeadLetter", _death_reason(headers)]),
        user_message=services.user_messages.for_classification(
            Classification(category=Category.PERMANENT, reason=Reason.BROKER_DEAD_LETTERED.value)
        ),
        exc_type="function_runner.queues.BrokerDeadLetter",
        message=message,
        rule="broker dead-letter exchange",
    )
    payload = reports.TaskPayload(
        task_name=task_name,
        args=seal(list(args)),
        kwargs=seal(dict(kwargs)),
        options={"routing_key": delivery.get("routing_key")} if delivery.get("routing_key") else {},
        headers=seal(custom),
        queue=delivery.get("routing_key"),
        root_id=headers.get("root_id"),
        parent_id=headers.get("parent_id"),
    )
    report = reports.FailureReport(
        task_id=task_id,
        attempt=attempt,
        payload=payload,
        classification=classification,
        traceback=None,
        failed_at=utcnow(),
    )
    recorded = services.in_transaction(
        lambda s: failure_recording.record_failure(s, report=report, policy=services.policy), patience=0
    )
    if not recorded.duplicate and not isinstance(recorded.decision, DeadLetter):  # pragma: no cover
        raise AssertionError(f"a broker dead letter must be dead-lettered, not {recorded.decision!r}")
    return task_id


#: Celery's own message headers (protocol 2), not kept as the task's headers.
_CELERY_HEADERS = frozenset(
    {
        "lang",
        "task",
        "id",
        "shadow",
        "eta",
        "expires",
        "group",
        "group_index",
        "retries",
        "timelimit",
        "root_id",
        "parent_id",
        "argsrepr",
        "kwargsrepr",
        "origin",
        "ignore_result",
        "replaced_task_nesting",
        "stamped_headers",
        "stamps",
        "redelivered",
    }
)


def collect_dead_letters(app: Celery, services: DeadLetterServices, *, limit: int = 100) -> int:
    """Move what RabbitMQ dead-lettered into the dead-letter queue of the system of record (each
    message acked only once recorded; one that cannot be recorded stays for the next pass). Returns
    how many were recorded. Does nothing on other brokers."""
    if not is_amqp(services.settings.effective_broker_url):
        return 0
    moved = 0
    with app.connection_for_write() as connection:
        queue = _dead_queue()(connection.default_channel)
        queue.declare()
        for _ in range(limit):
            message = queue.get(no_ack=False, accept=["json"])
            if message is None:
                break
            try:
                task_id = _record(services, message.decode(), dict(message.headers or {}), dict(message.delivery_info))
            except ValueError as problem:  # not a task message: nothing to replay it as; said, then dropped
                log_event(
                    "broker_dead_letter.not_a_task",
                    level=logging.ERROR,
                    error=str(problem),
                    headers=sorted(message.headers or {}),
                )
                message.ack()
                continue
            except Exception:
                message.requeue()
                raise
            message.ack()
            moved += 1
            log_event("broker_dead_letter.recorded", level=logging.WARNING, task_id=task_id)
    return moved
