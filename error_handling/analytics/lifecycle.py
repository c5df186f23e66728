"""A group's life as anomalies: a group first seen in the window, a resolved group seen again."""

from __future__ import annotations

import datetime as dt
from typing import Any

from error_handling.analytics.config import DEFAULT_CONFIG, AnalysisConfig
from error_handling.analytics.findings import Anomaly, AnomalyKind, severity_of
from error_handling.analytics.inputs import GroupSeries, GroupState, Window


def new_group(group: GroupSeries, *, window: Window, config: AnalysisConfig = DEFAULT_CONFIG) -> Anomaly | None:
    """A :attr:`~AnomalyKind.NEW_GROUP` when ``group`` was first seen in ``window`` with at least
    ``new_group_min_count`` errors there (critical from ``new_group_critical_count``); None for an
    ignored group."""
    if group.state is GroupState.IGNORED or not window.contains(group.first_seen):
        return None
    if group.count < config.new_group_min_count:
        return None
    return Anomaly(
        kind=AnomalyKind.NEW_GROUP,
        severity=severity_of(group.count >= config.new_group_critical_count),
        subject=group.fingerprint,
        summary=f"new group {group.fingerprint} ({group.category}/{group.reason}, {group.exc_type or 'no type'}): "
        f"{group.count} errors since {group.first_seen.isoformat()}",
        evidence=_group_evidence(group, window) | {"first_seen": group.first_seen.isoformat()},
    )


def regression(group: GroupSeries, *, window: Window, config: AnalysisConfig = DEFAULT_CONFIG) -> Anomaly | None:
    """A :attr:`~AnomalyKind.REGRESSION` when a resolved ``group`` came back in ``window``: its
    ``regressed_at`` falls in the window, or it is still marked resolved and occurred in the window after
    ``resolved_at``. None otherwise (an ignored group, one never resolved, one that came back earlier).
    Critical from ``spike_min_count`` errors in the window."""
    moment = _returned_at(group, window)
    if moment is None or group.resolved_at is None:
        return None
    return Anomaly(
        kind=AnomalyKind.REGRESSION,
        severity=severity_of(group.count >= config.spike_min_count),
        subject=group.fingerprint,
        summary=f"group {group.fingerprint} ({group.reason}) resolved at {group.resolved_at.isoformat()} "
        f"is back: {group.count} errors in the window",
        evidence=_group_evidence(group, window)
        | {"resolved_at": group.resolved_at.isoformat(), "regressed_at": moment.isoformat()},
    )


def _returned_at(group: GroupSeries, window: Window) -> dt.datetime | None:
    if group.state is GroupState.IGNORED or group.resolved_at is None:
        return None
    if group.regressed_at is not None:
        return group.regressed_at if window.contains(group.regressed_at) else None
    came_back = group.state is GroupState.RESOLVED and group.last_seen > group.resolved_at
    if came_back and group.count > 0 and window.contains(group.last_seen):
        return max(group.resolved_at, window.since)
    return None


def _group_evidence(group: GroupSeries, window: Window) -> dict[str, Any]:
    return {
        "fingerprint": group.fingerprint,
        "category": group.category,
        "reason": group.reason,
        "exc_type": group.exc_type,
        "count": group.count,
        "tasks": dict(group.tasks),
        "window": window.evidence(),
    }
