"""The analysis of a window: totals, error rate and distribution, the trend against the previous window
and the same window a day and a week earlier, the anomalies and recommendations of
:mod:`error_handling.analytics`, and summaries of recovery and of the breakers (``GET /analysis``,
``function-runner analyze``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from typing import Final

from sqlalchemy.orm import Session

from error_handling.analytics import DEFAULT_CONFIG, AnalysisConfig, Anomaly, Recommendation, detect, recommend
from error_handling.persistence.reads.analysis_inputs import analysis_inputs
from error_handling.persistence.reads.counts import RecoveryStats, count_kinds, recovery_stats
from error_handling.persistence.reads.executions import success_counts

#: The windows a window is compared with, by name: how far back each starts (the previous window's
#: offset is the window's own length).
COMPARED: Final = {"day_ago": dt.timedelta(days=1), "week_ago": dt.timedelta(weeks=1)}


@dataclasses.dataclass(frozen=True)
class WindowTotals:
    """Failed attempts and executions in ``[since, until)``.

    Attributes:
        total_errors: failed attempts.
        executions: successes counted by the workers plus failed attempts.
        error_rate: ``total_errors / executions`` (None without executions).
        error_distribution: failed attempts per category, largest first.
    """

    since: dt.datetime
    until: dt.datetime
    total_errors: int
    executions: int
    error_rate: float | None
    error_distribution: dict[str, int]


@dataclasses.dataclass(frozen=True)
class BreakerSummary:
    """The breakers' transitions in the window: opens and closes per service."""

    opens: int
    closes: int
    by_service: dict[str, dict[str, int]]


@dataclasses.dataclass(frozen=True)
class Analysis:
    """What went wrong in a window, what changed, and what to do about it.

    Attributes:
        window: the window's totals.
        trend: the same totals for the previous window (``previous``) and the same window a day
            (``day_ago``) and a week (``week_ago``) earlier.
        anomalies: each with its evidence, critical first.
        recommendations: each with its evidence and the setting or command to change.
        recovery: what recovery did in the window.
        circuit_breakers: the breakers' transitions in the window.
    """

    window: WindowTotals
    trend: dict[str, WindowTotals]
    anomalies: list[Anomaly]
    recommendations: list[Recommendation]
    recovery: RecoveryStats
    circuit_breakers: BreakerSummary


def window_totals(session: Session, *, since: dt.datetime, until: dt.datetime) -> WindowTotals:
    """The failed attempts and executions of ``[since, until)``."""
    by_category: Counter[str] = Counter()
    for _task, category, _reason, _fingerprint, n in count_kinds(session, since, until):
        by_category[category] += n
    failures = sum(by_category.values())
    executions = failures + sum(success_counts(session, since=since, until=until).values())
    return WindowTotals(
        since=since,
        until=until,
        total_errors=failures,
        executions=executions,
        error_rate=failures / executions if executions else None,
        error_distribution=dict(sorted(by_category.items(), key=lambda item: (-item[1], item[0]))),
    )


def analyse(
    session: Session,
    *,
    since: dt.datetime,
    until: dt.datetime,
    new_period: dt.timedelta,
    config: AnalysisConfig = DEFAULT_CONFIG,
) -> Analysis:
    """Analyse the window ``[since, until)`` (``new_period``: how long a group stays new)."""
    length = until - since
    offsets = {"previous": length, **COMPARED}
    inputs = analysis_inputs(session, since=since, until=until, new_period=new_period, config=config)
    breakers = {b.service: {"opens": b.opens, "closes": b.closes} for b in inputs.breakers}
    return Analysis(
        window=window_totals(session, since=since, until=until),
        trend={
            name: window_totals(session, since=since - offset, until=until - offset) for name, offset in offsets.items()
        },
        anomalies=detect(inputs, config),
        recommendations=recommend(inputs, config),
        recovery=recovery_stats(session, since=since, until=until),
        circuit_breakers=BreakerSummary(
            opens=sum(b["opens"] for b in breakers.values()),
            closes=sum(b["closes"] for b in breakers.values()),
            by_service=breakers,
        ),
    )
