"""Service health telemetry: calls per service, minute and process with a latency histogram
(``ai_service_health``), and the failed calls with their classification (``ai_service_errors``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping

from sqlalchemy.orm import Session

from error_handling.persistence.models import ServiceError, ServiceHealth

__all__ = ["CallCounts", "FailedCall", "add_health"]


@dataclasses.dataclass
class CallCounts:
    """The calls of one service in one minute, seen by one process."""

    calls: int = 0
    failures: int = 0
    #: Calls per latency bucket (its upper bound in ms, as text).
    histogram: dict[str, int] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class FailedCall:
    """A failed call of a service and its classification (the message already redacted)."""

    service: str
    category: str
    reason: str
    status_code: int | None
    message: str
    latency_ms: float
    at: dt.datetime


def add_health(
    session: Session,
    *,
    counts: Mapping[tuple[str, dt.datetime], CallCounts],
    errors: Iterable[FailedCall],
    actor: str,
) -> None:
    """Add the rows of what ``actor`` saw: its counts by (service, minute) and its failed calls."""
    session.add_all(
        ServiceHealth(
            service=service,
            minute=minute,
            actor=actor,
            calls=c.calls,
            failures=c.failures,
            latency_histogram=dict(c.histogram),
        )
        for (service, minute), c in counts.items()
    )
    session.add_all(ServiceError(**dataclasses.asdict(error)) for error in errors)
