"""All the anomalies of one window: :func:`detect` runs every evaluator over the inputs.

The evaluators (one per :class:`~error_handling.analytics.findings.AnomalyKind`) live in
:mod:`~error_handling.analytics.spikes`, :mod:`~error_handling.analytics.lifecycle` and
:mod:`~error_handling.analytics.health`; each is usable alone. A group is reported once: a group that is
new or regressed in the window is not also reported as a spike (its baseline is empty or stale).
"""

from __future__ import annotations

from error_handling.analytics.config import DEFAULT_CONFIG, AnalysisConfig
from error_handling.analytics.findings import Anomaly, AnomalyKind, Severity
from error_handling.analytics.health import breaker_flapping, error_rate, recovery_failing, wait_timeouts
from error_handling.analytics.inputs import AnalysisInputs, GroupSeries
from error_handling.analytics.lifecycle import new_group, regression
from error_handling.analytics.spikes import group_spike, task_spike

_KIND_ORDER = {kind: index for index, kind in enumerate(AnomalyKind)}


def detect(inputs: AnalysisInputs, config: AnalysisConfig = DEFAULT_CONFIG) -> list[Anomaly]:
    """Every anomaly of ``inputs``' window, critical first, then by kind and subject."""
    window = inputs.window
    found: list[Anomaly | None] = []
    for group in inputs.groups:
        found.append(_group_anomaly(group, inputs, config))
    for task in inputs.tasks:
        found.append(task_spike(task, window=window, observed_since=inputs.observed_since, config=config))
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


def _group_anomaly(group: GroupSeries, inputs: AnalysisInputs, config: AnalysisConfig) -> Anomaly | None:
    """The one anomaly of a group: new, else regressed, else a spike."""
    window = inputs.window
    return (
        new_group(group, window=window, config=config)
        or regression(group, window=window, config=config)
        or group_spike(group, window=window, observed_since=inputs.observed_since, config=config)
    )
