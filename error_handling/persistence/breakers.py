"""The breakers' history: each transition of a circuit breaker is one row of ``circuit_breaker_events``
(reads for the API live with the other reads)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from error_handling.breaker import BreakerCause, Transition
from error_handling.persistence.models import CircuitBreakerEvent

__all__ = ["add_transition"]


def add_transition(
    session: Session, transition: Transition, *, cause: BreakerCause, actor: str, at: dt.datetime
) -> None:
    """Add a transition's row to the session's transaction."""
    session.add(
        CircuitBreakerEvent(
            service=transition.service,
            from_state=str(transition.from_state),
            to_state=str(transition.to_state),
            cause=str(cause),
            calls=transition.calls,
            failures=transition.failures,
            actor=actor,
            at=at,
        )
    )
