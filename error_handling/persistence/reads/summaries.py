"""How services' calls went in a window: health (rates, latency percentiles, errors) and the fallback
chains that were not answered by their first provider."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import (
    FallbackEvent,
    ServiceError,
    ServiceHealth,
)


@dataclasses.dataclass(frozen=True)
class ServiceHealthSummary:
    """How one service's calls went in a window, across every process.

    Attributes:
        success_rate: successful calls / calls (None without calls).
        p50_ms, p95_ms, p99_ms: latency percentiles, as the upper bound of their histogram bucket.
        errors_by_reason: failed calls kept in the window, by reason.
        last_error: the latest failed call: (reason, redacted message, when).
    """

    service: str
    calls: int
    failures: int
    success_rate: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    errors_by_reason: dict[str, int]
    last_error: tuple[str, str, dt.datetime] | None


def _percentile(histogram: Counter[int], total: int, q: float) -> float | None:
    if total <= 0:
        return None
    rank = q * total
    seen = 0
    for bound in sorted(histogram):
        seen += histogram[bound]
        if seen >= rank:
            return float(bound)
    return float(max(histogram))


def service_health(session: Session, *, since: dt.datetime) -> list[ServiceHealthSummary]:
    """Every service called since ``since``: counts, success rate, latency percentiles, errors."""

    merged: dict[str, list[Any]] = {}
    for row in session.execute(sa.select(ServiceHealth).where(ServiceHealth.minute >= since)).scalars():
        entry = merged.setdefault(row.service, [0, 0, Counter()])
        entry[0] += row.calls
        entry[1] += row.failures
        for bound, count in (row.latency_histogram or {}).items():
            entry[2][int(bound)] += int(count)
    reasons: dict[str, Counter[str]] = {}
    latest: dict[str, tuple[str, str, dt.datetime]] = {}
    for error in session.execute(
        sa.select(ServiceError).where(ServiceError.at >= since).order_by(ServiceError.at, ServiceError.id)
    ).scalars():
        reasons.setdefault(error.service, Counter())[error.reason] += 1
        latest[error.service] = (error.reason, error.message, error.at)
    result = []
    for service in sorted(set(merged) | set(reasons)):
        calls, failures, histogram = merged.get(service, [0, 0, Counter()])
        result.append(
            ServiceHealthSummary(
                service=service,
                calls=calls,
                failures=failures,
                success_rate=(calls - failures) / calls if calls else None,
                p50_ms=_percentile(histogram, calls, 0.50),
                p95_ms=_percentile(histogram, calls, 0.95),
                p99_ms=_percentile(histogram, calls, 0.99),
                errors_by_reason=dict(reasons.get(service, Counter())),
                last_error=latest.get(service),
            )
        )
    return result


@dataclasses.dataclass(frozen=True)
class FallbackSummary:
    """How one logical service's fallback chain served calls in a window.

    Attributes:
        served_by: calls answered by a later provider, by provider.
        degraded: calls answered by the degraded result.
        passed_over: providers passed over, by provider and reason (``{"openai": {"rate_limited": 3}}``).
        last_at: the latest such call.
    """

    service: str
    served_by: dict[str, int]
    degraded: int
    passed_over: dict[str, dict[str, int]]
    last_at: dt.datetime


def fallback_summary(session: Session, *, since: dt.datetime) -> list[FallbackSummary]:
    """Every logical service whose chain was not answered by its first provider since ``since``."""
    served: dict[str, Counter[str]] = {}
    degraded: Counter[str] = Counter()
    passed: dict[str, dict[str, Counter[str]]] = {}
    last: dict[str, dt.datetime] = {}
    rows = session.execute(
        sa.select(FallbackEvent.service, FallbackEvent.provider, FallbackEvent.passed_over, FallbackEvent.at)
        .where(FallbackEvent.at >= since)
        .order_by(FallbackEvent.at)
    )
    for service, provider, passed_over, at in rows:
        served.setdefault(service, Counter())
        if provider is None:
            degraded[service] += 1
        else:
            served[service][provider] += 1
        for item in passed_over or []:
            passed.setdefault(service, {}).setdefault(item["provider"], Counter())[item["reason"]] += 1
        last[service] = at
    return [
        FallbackSummary(
            service=service,
            served_by=dict(served[service]),
            degraded=degraded[service],
            passed_over={name: dict(reasons) for name, reasons in passed.get(service, {}).items()},
            last_at=last[service],
        )
        for service in sorted(served)
    ]
