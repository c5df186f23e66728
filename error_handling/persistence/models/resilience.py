"""Tables of resilience state: resource gates and leases, breaker transitions, service health and
fallback events."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from error_handling.persistence.models.base import Base, BigId, Json


class ResourceGate(Base):
    """The last state a monitor saw of a resource gate (the API reads it; the gates live in code)."""

    __tablename__ = "fr_resource_gates"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    #: At most this many units held at once, cluster-wide (None: no capacity, a probe only).
    capacity: Mapped[int | None] = mapped_column(sa.Integer)
    #: What the probe checks, e.g. ``disk_free(/data) >= 10 GiB``.
    probe: Mapped[str | None] = mapped_column(sa.String(255))
    #: The probe's last verdict (None: no probe, or not evaluated yet).
    available: Mapped[bool | None] = mapped_column(sa.Boolean)
    #: What the probe read, e.g. ``12.5 GiB free``.
    detail: Mapped[str | None] = mapped_column(sa.Text)
    checked_at: Mapped[dt.datetime | None]
    #: The monitor that wrote this (``kind@host:pid``).
    monitor: Mapped[str | None] = mapped_column(sa.String(255))
    updated_at: Mapped[dt.datetime]


class ResourceLease(Base):
    """Units of a gate held by a task (or reserved for a released one), until ``expires_at``.

    Used where there is no Redis (the embedded default); with Redis the leases live there.
    """

    __tablename__ = "fr_resource_leases"
    __table_args__ = (sa.Index("ix_fr_resource_leases_gate_expires_at", "gate", "expires_at"),)

    gate: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    #: Who holds it: the task id (and attempt) it was acquired or reserved for.
    holder: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    units: Mapped[int] = mapped_column(sa.Integer)
    expires_at: Mapped[dt.datetime]


class CircuitBreakerEvent(Base):
    """A transition of a service's circuit breaker: opened, half-opened, closed, reset or forced open."""

    __tablename__ = "circuit_breaker_events"
    __table_args__ = (sa.Index("ix_circuit_breaker_events_service_at", "service", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(sa.String(128))
    from_state: Mapped[str] = mapped_column(sa.String(16))
    to_state: Mapped[str] = mapped_column(sa.String(16))
    #: ``failure_ratio`` (opened by the calls), ``probe`` (half-open probe outcome), ``timeout`` (the
    #: open period ended), ``reset`` / ``forced_open`` (an operator), ``local`` (a per-process breaker).
    cause: Mapped[str] = mapped_column(sa.String(32))
    #: Calls and failures in the window when it opened.
    calls: Mapped[int] = mapped_column(sa.Integer, default=0)
    failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: The process that saw it (``host:pid``), or the operator's API.
    actor: Mapped[str | None] = mapped_column(sa.String(255))
    at: Mapped[dt.datetime]


class ServiceHealth(Base):
    """Calls of one service seen by one process in one minute: counts and a latency histogram
    (``{"<upper bound ms>": count}``, mergeable across processes)."""

    __tablename__ = "ai_service_health"
    __table_args__ = (sa.Index("ix_ai_service_health_service_minute", "service", "minute"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(sa.String(128))
    #: The UTC minute the calls ended in.
    minute: Mapped[dt.datetime]
    #: The process that made them (``host:pid``).
    actor: Mapped[str] = mapped_column(sa.String(255))
    calls: Mapped[int] = mapped_column(sa.Integer)
    failures: Mapped[int] = mapped_column(sa.Integer)
    latency_histogram: Mapped[Any] = mapped_column(Json)


class ServiceError(Base):
    """A failed call of a service: its classification (message redacted)."""

    __tablename__ = "ai_service_errors"
    __table_args__ = (sa.Index("ix_ai_service_errors_service_at", "service", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(sa.String(128))
    category: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    message: Mapped[str] = mapped_column(sa.Text)
    latency_ms: Mapped[float | None] = mapped_column(sa.Float)
    at: Mapped[dt.datetime]


class FallbackEvent(Base):
    """A call of a fallback chain that was not answered by its first provider: served by a later
    provider, or by the degraded result (``degraded``), with the providers passed over and why."""

    __tablename__ = "ai_fallback_events"
    __table_args__ = (
        sa.Index("ix_ai_fallback_events_service_at", "service", "at"),
        sa.Index("ix_ai_fallback_events_task_id", "task_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The logical service of the chain (``chat``).
    service: Mapped[str] = mapped_column(sa.String(128))
    #: The provider that answered; None when the degraded result did.
    provider: Mapped[str | None] = mapped_column(sa.String(128))
    degraded: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: ``[{"provider": ..., "reason": ...}]``: the providers passed over, in chain order.
    passed_over: Mapped[Any] = mapped_column(Json)
    #: The task that made the call, when it was made inside one.
    task_id: Mapped[str | None] = mapped_column(sa.String(255))
    task_name: Mapped[str | None] = mapped_column(sa.String(255))
    at: Mapped[dt.datetime]
