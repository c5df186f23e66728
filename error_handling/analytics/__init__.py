"""The analysis of error traffic: baselines, anomalies and recommendations, as pure functions of plain
values (no I/O: the database layer builds the inputs from its roll-ups).

::

    inputs = AnalysisInputs(window=Window(since, until), groups=[GroupSeries(...)], tasks=[...])
    anomalies = detect(inputs)             # each with its evidence
    advice = recommend(inputs)             # each naming the setting or command, with its numbers

See docs/analysis.md for every anomaly kind and recommendation rule, and when each stays quiet.
"""

from __future__ import annotations

from error_handling.analytics.advice import (
    quota_dominates,
    retries_exhausted,
    unclassified_group,
    validation_after_deploy,
)
from error_handling.analytics.anomalies import detect
from error_handling.analytics.baseline import Baseline, BaselineKind, baseline_for, count_between, sample_spans
from error_handling.analytics.config import DEFAULT_CONFIG, AnalysisConfig
from error_handling.analytics.findings import Anomaly, AnomalyKind, Recommendation, RecommendationRule, Severity
from error_handling.analytics.health import breaker_flapping, error_rate, recovery_failing, wait_timeouts
from error_handling.analytics.inputs import (
    AnalysisInputs,
    BreakerActivity,
    GateWaits,
    GroupSeries,
    GroupState,
    Outcomes,
    RecoveryCounts,
    RecoverySeries,
    TaskSeries,
    Window,
)
from error_handling.analytics.lifecycle import new_group, regression
from error_handling.analytics.poisson import poisson_tail
from error_handling.analytics.providers import PROVIDER_PACKAGES, service_of
from error_handling.analytics.recommendations import breaker_window, gate_waits_timing_out, recommend
from error_handling.analytics.rule_suggestion import suggested_rule
from error_handling.analytics.spikes import group_spike, is_escalating, is_spike, spike_threshold, task_spike

__all__ = [
    "DEFAULT_CONFIG",
    "PROVIDER_PACKAGES",
    "AnalysisConfig",
    "AnalysisInputs",
    "Anomaly",
    "AnomalyKind",
    "Baseline",
    "BaselineKind",
    "BreakerActivity",
    "GateWaits",
    "GroupSeries",
    "GroupState",
    "Outcomes",
    "Recommendation",
    "RecommendationRule",
    "RecoveryCounts",
    "RecoverySeries",
    "Severity",
    "TaskSeries",
    "Window",
    "baseline_for",
    "breaker_flapping",
    "breaker_window",
    "count_between",
    "detect",
    "error_rate",
    "gate_waits_timing_out",
    "group_spike",
    "is_escalating",
    "is_spike",
    "new_group",
    "poisson_tail",
    "quota_dominates",
    "recommend",
    "recovery_failing",
    "regression",
    "retries_exhausted",
    "sample_spans",
    "service_of",
    "spike_threshold",
    "suggested_rule",
    "task_spike",
    "unclassified_group",
    "validation_after_deploy",
    "wait_timeouts",
]
