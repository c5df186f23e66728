"""How workers take, hold and give back messages: reliable fetch, liveness, redeliveries, queue types."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, NonNegativeInt, ValidationInfo, field_validator

from error_handling.exceptions import ConfigurationError
from function_runner.settings.group import AtLeastOne, Seconds, SecondsOrZero, SettingsGroup


class DeliverySettings(SettingsGroup):
    """Deliveries: what happens to a message between the broker, a worker and the database."""

    reliable_fetch: bool = True
    """On a redis:// broker, workers take a message and hold it as unacked in one atomic step
    (function_runner.broker.redis_transport), so a worker killed or a Redis restarted in between loses nothing;
    false: kombu's own transport."""
    unrecorded_redeliver_after: Seconds = 600.0
    """A failure kept in Redis during a database outage whose message no delivery has come back with for this
    long (s) is published again by the dispatcher, to be recorded (the broker lost the message the worker gave
    back); duplicates are harmless."""
    storage_retry_timeout: SecondsOrZero = 10.0
    """How long a worker keeps trying to record a failure before it gives the message back to the broker
    unacked (s)."""
    max_unrecordable_requeues: NonNegativeInt = 3
    """How many times a worker gives a message back when the database refuses what it records about it (not an
    outage: a value it will not store, a bug of the bookkeeping); the next refusal dead-letters the task with a
    minimal record, reason 'unrecordable'. Counted in the shared Redis; without it the first refusal
    dead-letters the task."""
    visibility_timeout: Seconds = 3600.0
    """Redis/SQS transports: seconds before an unacked message of a lost worker is delivered again. Keep it
    longer than your longest task."""
    liveness_interval: Seconds = 5.0
    """Reliable Redis transport: seconds between two heartbeats of a worker's consumer, sent from a thread of
    the worker's main process (a slow task does not delay them)."""
    liveness_timeout: SecondsOrZero = 15.0
    """Reliable Redis transport: a worker consumer whose heartbeat is older than this (s) has lapsed, and a
    dispatcher puts the messages it held back in their queues (redelivered), so a killed worker's tasks run
    again within about this plus 5 s instead of after visibility_timeout. 0: off. Keep it above twice
    liveness_interval."""

    @field_validator("liveness_timeout")
    @classmethod
    def _check_liveness_timeout(cls, value: float, info: ValidationInfo) -> float:
        interval = info.data.get("liveness_interval")
        if value and interval is not None and value <= interval:
            raise ConfigurationError(
                f"liveness_timeout must be 0 (off) or longer than liveness_interval ({interval} s)"
            )
        return value

    queue_type: Literal["classic", "quorum"] = "classic"
    """RabbitMQ: the type of the queues create_app declares (quorum queues are replicated). Either way they
    dead-letter to function-runner's exchange, never silently."""
    broker_delivery_limit: Annotated[int | None, Field(ge=1)] = None
    """RabbitMQ quorum queues: x-delivery-limit (unset: the broker's default, 20 on RabbitMQ 4). A message past
    it is dead-lettered by the broker and collected by the dispatcher."""
    max_lost_deliveries: AtLeastOne = 3
    """After this many deliveries of a task ended without an outcome (its worker process died), it is
    dead-lettered as worker_lost instead of being run again."""
