"""Reads of the resilience state the API shows: resource gates as their monitors last saw them, and
circuit breakers' recorded transitions."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import CircuitBreakerEvent, ResourceGate


def gates(session: Session) -> dict[str, ResourceGate]:
    """Every resource gate a monitor reported, by name."""
    return {row.name: row for row in session.execute(sa.select(ResourceGate)).scalars()}


def breaker_services(session: Session) -> list[str]:
    """Every service whose breaker ever changed state, by name."""
    query = sa.select(CircuitBreakerEvent.service).distinct().order_by(CircuitBreakerEvent.service)
    return list(session.execute(query).scalars())


def last_transition(session: Session, *, service: str) -> CircuitBreakerEvent | None:
    """The latest recorded transition of ``service``'s breaker, or None."""
    return session.execute(
        sa.select(CircuitBreakerEvent)
        .where(CircuitBreakerEvent.service == service)
        .order_by(CircuitBreakerEvent.at.desc(), CircuitBreakerEvent.id.desc())
        .limit(1)
    ).scalar_one_or_none()
