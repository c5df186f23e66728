"""Public schema of the analysis of a window (``GET /api/v1/errors/analysis``), built from
:class:`~error_handling.persistence.reads.analysis.Analysis` by :func:`analysis_public` (the API and the
CLI's ``analyze --json`` share it)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from error_handling.analytics import Anomaly, AnomalyKind, Recommendation, RecommendationRule, Severity
from error_handling.persistence.reads.analysis import Analysis, WindowTotals
from error_handling.persistence.reads.counts import RecoveryStats

__all__ = [
    "AnalysisPublic",
    "AnomalyPublic",
    "BreakerSummaryPublic",
    "RecommendationPublic",
    "WindowTotalsPublic",
    "analysis_public",
]


class WindowTotalsPublic(BaseModel):
    """Failed attempts and executions in ``[since, until)``, and the change from it to the analysed window."""

    since: dt.datetime
    until: dt.datetime
    total_errors: int = Field(description="Failed attempts.")
    executions: int = Field(description="Successes counted by the workers plus failed attempts.")
    error_rate: float | None = Field(description="total_errors / executions (null without executions).")
    error_distribution: dict[str, int] = Field(description="Failed attempts per category, largest first.")
    change: float | None = Field(
        default=None,
        description="For a compared window: (analysed window's errors - this window's) / this window's errors "
        "(null when this window has none).",
    )


class AnomalyPublic(BaseModel):
    """Something wrong now, with its evidence (docs: Analysis, for every kind)."""

    kind: AnomalyKind
    severity: Severity
    subject: str = Field(description="A group's fingerprint, a task's name, a gate, a service, or `recovery`.")
    summary: str = Field(description="One line with the numbers.")
    evidence: dict[str, Any] = Field(description="Counts, baseline, window, ids.")


class RecommendationPublic(BaseModel):
    """What to do, with the numbers behind it and the setting, option or code to change."""

    rule: RecommendationRule
    subject: str
    title: str
    action: str
    evidence: dict[str, Any]


class BreakerSummaryPublic(BaseModel):
    """The circuit breakers' transitions in the window."""

    opens: int
    closes: int
    by_service: dict[str, dict[str, int]] = Field(description="Per service: its opens and closes.")


class AnalysisPublic(BaseModel):
    """What went wrong in the window, what changed, and what to do about it."""

    since: dt.datetime
    until: dt.datetime
    window_minutes: int
    total_errors: int = Field(description="Failed attempts in the window.")
    executions: int = Field(description="Successes counted by the workers plus failed attempts.")
    error_rate: float | None = Field(description="total_errors / executions (null without executions).")
    error_distribution: dict[str, int] = Field(description="Failed attempts per category, largest first.")
    trend: dict[str, WindowTotalsPublic] = Field(
        description="The same totals for the `previous` window and the same window a day (`day_ago`) and a "
        "week (`week_ago`) earlier, each with its `change`."
    )
    anomalies: list[AnomalyPublic]
    recommendations: list[RecommendationPublic]
    circuit_breakers: BreakerSummaryPublic
    recovery: RecoveryStats
    self_healing: dict[str, Any] | None = Field(
        default=None, description="The self-healing summary (null: no self-healing recorded)."
    )


def _totals(totals: WindowTotals, *, compared_with: int | None = None) -> WindowTotalsPublic:
    change = None
    if compared_with is not None and totals.total_errors:
        change = (compared_with - totals.total_errors) / totals.total_errors
    return WindowTotalsPublic(
        since=totals.since,
        until=totals.until,
        total_errors=totals.total_errors,
        executions=totals.executions,
        error_rate=totals.error_rate,
        error_distribution=totals.error_distribution,
        change=change,
    )


def _anomaly(anomaly: Anomaly) -> AnomalyPublic:
    return AnomalyPublic(
        kind=anomaly.kind,
        severity=anomaly.severity,
        subject=anomaly.subject,
        summary=anomaly.summary,
        evidence=dict(anomaly.evidence),
    )


def _recommendation(found: Recommendation) -> RecommendationPublic:
    return RecommendationPublic(
        rule=found.rule, subject=found.subject, title=found.title, action=found.action, evidence=dict(found.evidence)
    )


def analysis_public(analysis: Analysis) -> AnalysisPublic:
    """The public document of an analysis."""
    window = analysis.window
    minutes = round((window.until - window.since).total_seconds() / 60)
    return AnalysisPublic(
        since=window.since,
        until=window.until,
        window_minutes=minutes,
        total_errors=window.total_errors,
        executions=window.executions,
        error_rate=window.error_rate,
        error_distribution=window.error_distribution,
        trend={name: _totals(totals, compared_with=window.total_errors) for name, totals in analysis.trend.items()},
        anomalies=[_anomaly(a) for a in analysis.anomalies],
        recommendations=[_recommendation(r) for r in analysis.recommendations],
        circuit_breakers=BreakerSummaryPublic(
            opens=analysis.circuit_breakers.opens,
            closes=analysis.circuit_breakers.closes,
            by_service=analysis.circuit_breakers.by_service,
        ),
        recovery=analysis.recovery,
    )
