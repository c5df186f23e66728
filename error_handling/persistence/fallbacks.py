"""Calls served by a fallback: one row of ``ai_fallback_events`` per call its first provider did not
answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy.orm import Session

from error_handling.persistence.models import FallbackEvent

__all__ = ["add_fallback_event"]


def add_fallback_event(
    session: Session,
    *,
    service: str,
    provider: str | None,
    passed_over: Sequence[tuple[str, str]],
    task_id: str | None,
    task_name: str | None,
    at: dt.datetime,
) -> None:
    """Add the row of a call answered by ``provider`` (None: by the degraded result) after the
    providers ``passed_over`` (name, why)."""
    session.add(
        FallbackEvent(
            service=service,
            provider=provider,
            degraded=provider is None,
            passed_over=[{"provider": name, "reason": why} for name, why in passed_over],
            task_id=task_id,
            task_name=task_name,
            at=at,
        )
    )
