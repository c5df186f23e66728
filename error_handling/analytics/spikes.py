"""Spikes: a group's or a task's errors in the window far above its own baseline.

A count is a spike when (all of them, see :class:`~error_handling.analytics.config.AnalysisConfig`):
the baseline has at least ``min_baseline_samples`` samples; the count is at least ``spike_min_count``;
it is at least ``spike_min_multiplier`` times the expected count (1 when lower); and it exceeds the
expected count by more than ``spike_mad_k`` robust standard deviations (``1.4826 * MAD``); and it is at
most ``spike_max_probability`` likely under a Poisson law at the baseline's rate (the larger of its median
and mean). A group's
state ``escalating`` is the same test (:func:`is_escalating`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from error_handling.analytics.baseline import Baseline, baseline_for
from error_handling.analytics.config import DEFAULT_CONFIG, AnalysisConfig
from error_handling.analytics.findings import Anomaly, AnomalyKind, severity_of
from error_handling.analytics.inputs import GroupSeries, GroupState, Hourly, TaskSeries, Window
from error_handling.analytics.poisson import poisson_tail

#: The MAD of a normal distribution times this is its standard deviation.
MAD_TO_SIGMA = 1.4826
#: How many of a group's tasks its evidence names (the largest).
TOP_TASKS = 5


def spike_threshold(baseline: Baseline, config: AnalysisConfig = DEFAULT_CONFIG) -> float:
    """The lowest count that passes the count, multiplier and deviation conditions (the deviation is
    strict: a count must be above ``expected + k * 1.4826 * MAD``, this returns that bound). The Poisson
    condition is reported apart (``probability`` in the evidence)."""
    return max(
        float(config.spike_min_count),
        config.spike_min_multiplier * max(baseline.expected, 1.0),
        baseline.expected + config.spike_mad_k * MAD_TO_SIGMA * baseline.mad,
    )


def is_spike(count: float, baseline: Baseline, *, config: AnalysisConfig = DEFAULT_CONFIG) -> bool:
    """Whether ``count`` is a spike against ``baseline`` (the test in the module's docstring)."""
    return (
        baseline.samples >= config.min_baseline_samples
        and count >= config.spike_min_count
        and count >= config.spike_min_multiplier * max(baseline.expected, 1.0)
        and count > baseline.expected + config.spike_mad_k * MAD_TO_SIGMA * baseline.mad
        and poisson_tail(count, max(baseline.expected, baseline.mean)) <= config.spike_max_probability
    )


def is_escalating(
    group: GroupSeries,
    *,
    window: Window,
    observed_since: dt.datetime | None = None,
    config: AnalysisConfig = DEFAULT_CONFIG,
) -> bool:
    """Whether ``group``'s volume in ``window`` is well above its own baseline (the state ``escalating``)."""
    return is_spike(
        group.count,
        _baseline(group.history, window=window, observed_since=observed_since, config=config),
        config=config,
    )


def group_spike(
    group: GroupSeries,
    *,
    window: Window,
    observed_since: dt.datetime | None = None,
    config: AnalysisConfig = DEFAULT_CONFIG,
) -> Anomaly | None:
    """A :attr:`~AnomalyKind.GROUP_SPIKE` when ``group`` spikes in ``window``; None for an ignored group
    and a group first seen in the window (that is a new group, not a spike)."""
    if group.state is GroupState.IGNORED or group.first_seen >= window.since:
        return None
    baseline = _baseline(group.history, window=window, observed_since=observed_since, config=config)
    tasks = dict(sorted(group.tasks.items(), key=lambda item: (-item[1], item[0]))[:TOP_TASKS])
    facts = {"fingerprint": group.fingerprint, "category": group.category, "reason": group.reason}
    return _spike(
        AnomalyKind.GROUP_SPIKE,
        group.fingerprint,
        label=f"group {group.fingerprint} ({group.reason})",
        count=group.count,
        baseline=baseline,
        window=window,
        config=config,
        facts=facts | {"exc_type": group.exc_type, "tasks": tasks},
    )


def task_spike(
    task: TaskSeries,
    *,
    window: Window,
    observed_since: dt.datetime | None = None,
    config: AnalysisConfig = DEFAULT_CONFIG,
) -> Anomaly | None:
    """A :attr:`~AnomalyKind.TASK_SPIKE` when ``task``'s failures spike in ``window``.

    When its executions are known (in the window and per hour), the expected failures are scaled by
    the traffic's ratio to its own baseline: more traffic at the same error rate is no spike."""
    baseline = _baseline(task.history, window=window, observed_since=observed_since, config=config)
    traffic = None
    if task.executions is not None and task.executions_history is not None:
        usual = _baseline(task.executions_history, window=window, observed_since=observed_since, config=config)
        if usual.samples >= config.min_baseline_samples and usual.expected > 0:
            traffic = task.executions / usual.expected
            baseline = baseline.scaled(traffic)
    facts = {
        "task": task.name,
        "executions": task.executions,
        "traffic_ratio": None if traffic is None else round(traffic, 3),
    }
    return _spike(
        AnomalyKind.TASK_SPIKE,
        task.name,
        label=f"task {task.name}",
        count=task.failures,
        baseline=baseline,
        window=window,
        config=config,
        facts=facts,
    )


def _baseline(
    history: Hourly, *, window: Window, observed_since: dt.datetime | None, config: AnalysisConfig
) -> Baseline:
    return baseline_for(history, since=window.since, until=window.until, observed_since=observed_since, config=config)


def _spike(
    kind: AnomalyKind,
    subject: str,
    *,
    label: str,
    count: int,
    baseline: Baseline,
    window: Window,
    config: AnalysisConfig,
    facts: dict[str, Any],
) -> Anomaly | None:
    """The anomaly when ``count`` is a spike against ``baseline``, with its evidence; else None."""
    if not is_spike(count, baseline, config=config):
        return None
    evidence = {
        "count": count,
        "baseline": baseline.evidence(),
        "threshold": round(spike_threshold(baseline, config), 3),
        "probability": poisson_tail(count, max(baseline.expected, baseline.mean)),
        "window": window.evidence(),
    }
    return Anomaly(
        kind=kind,
        severity=severity_of(count >= config.critical_multiplier * max(baseline.expected, 1.0)),
        subject=subject,
        summary=f"{label}: {count} errors in {window.hours * 60:g} min, expected {baseline.expected:.1f} "
        f"({baseline.kind.value}, {baseline.samples} samples)",
        evidence=evidence | facts,
    )
