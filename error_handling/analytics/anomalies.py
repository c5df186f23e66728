"""All the anomalies of one window: :func:`detect` runs every evaluator over the inputs.

The evaluators (one per :class:`~error_handling.analytics.findings.AnomalyKind`) live in
:mod:`~error_handling.analytics.spikes`, :mod:`~error_handling.analytics.lifecycle` and
:mod:`~error_handling.analytics.health`; each is usable alone. :func:`detect` reports each incident once:

- a group that is new or regressed in the window is not also reported as a spike (its baseline is empty
  or stale);
- a task's spike is reported only when its failures spike without those of its groups reported above
  (a group's spike at night is also its task's: the group says more).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from error_handling.analytics.config import DEFAULT_CONFIG, AnalysisConfig
from error_handling.analytics.findings import Anomaly, AnomalyKind, Severity
from error_handling.analytics.health import breaker_flapping, error_rate, recovery_failing, wait_timeouts
from error_handling.analytics.inputs import AnalysisInputs, GroupSeries, TaskSeries
from error_handling.analytics.lifecycle import new_group, regression
from error_handling.analytics.spikes import group_spike, task_spike

_KIND_ORDER = {kind: index for index, kind in enumerate(AnomalyKind)}


def detect(inputs: AnalysisInputs, config: AnalysisConfig = DEFAULT_CONFIG) -> list[Anomaly]:
    """Every anomaly of ``inputs``' window, critical first, then by kind and subject."""
    window = inputs.window
    found: list[Anomaly | None] = []
    reported = []
    for group in inputs.groups:
        anomaly = _group_anomaly(group, inputs=inputs, config=config)
        if anomaly is not None:
            found.append(anomaly)
            reported.append(group)
    for task in inputs.tasks:
        found.append(_task_anomaly(task, reported, inputs=inputs, config=config))
        found.append(
            error_rate(task.name, failures=task.failures, executions=task.executions, window=window, config=config)
        )
    if inputs.recovery is not None:
        found.append(recovery_failing(inputs.recovery, window=window, config=config))
    found.extend(wait_timeouts(gate, window=window, config=config) for gate in inputs.gates)
    found.extend(breaker_flapping(breaker, window=window, config=config) for breaker in inputs.breakers)
    anomalies = [anomaly for anomaly in found if anomaly is not None]
    return sorted(
        anomalies,
        key=lambda a: (a.severity is not Severity.CRITICAL, _KIND_ORDER[a.kind], a.subject),
    )


def _group_anomaly(group: GroupSeries, *, inputs: AnalysisInputs, config: AnalysisConfig) -> Anomaly | None:
    """The one anomaly of a group: new, else regressed, else a spike."""
    window = inputs.window
    return (
        new_group(group, window=window, config=config)
        or regression(group, window=window, config=config)
        or group_spike(group, window=window, observed_since=inputs.observed_since, config=config)
    )


def _task_anomaly(
    task: TaskSeries, reported: Sequence[GroupSeries], *, inputs: AnalysisInputs, config: AnalysisConfig
) -> Anomaly | None:
    """A task's spike, unless its failures without those of the reported groups are no spike."""
    explained = sum(group.tasks.get(task.name, 0) for group in reported)
    rest = dataclasses.replace(task, failures=max(task.failures - explained, 0))
    if (
        explained
        and task_spike(rest, window=inputs.window, observed_since=inputs.observed_since, config=config) is None
    ):
        return None
    return task_spike(task, window=inputs.window, observed_since=inputs.observed_since, config=config)
