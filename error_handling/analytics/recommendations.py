"""All the recommendations of one window: :func:`recommend` runs every rule over the inputs.

The rules about groups are in :mod:`~error_handling.analytics.advice`; the two about resilience are
here: waits timing out on a gate and a flapping breaker. Those two fire exactly when the matching anomaly
does (they call its evaluator), so the anomaly and its remedy never disagree.
"""

from __future__ import annotations

from error_handling.analytics.advice import (
    quota_dominates,
    retries_exhausted,
    unclassified_group,
    validation_after_deploy,
)
from error_handling.analytics.config import DEFAULT_CONFIG, AnalysisConfig
from error_handling.analytics.findings import Recommendation, RecommendationRule
from error_handling.analytics.health import breaker_flapping, wait_timeouts
from error_handling.analytics.inputs import AnalysisInputs, BreakerActivity, GateWaits, Window

_RULE_ORDER = {rule: index for index, rule in enumerate(RecommendationRule)}


def gate_waits_timing_out(
    gate: GateWaits, *, window: Window, config: AnalysisConfig = DEFAULT_CONFIG
) -> Recommendation | None:
    """Raise a gate's capacity or the wait timeout, when the gate's waits time out (the
    :func:`~error_handling.analytics.health.wait_timeouts` anomaly)."""
    anomaly = wait_timeouts(gate, window=window, config=config)
    if anomaly is None:
        return None
    capacity = f"now {gate.capacity}" if gate.capacity is not None else "none declared"
    timeout = f"now {gate.timeout_seconds:g} s" if gate.timeout_seconds is not None else "default 3600 s"
    return Recommendation(
        rule=RecommendationRule.GATE_WAITS_TIMING_OUT,
        subject=gate.gate,
        title=anomaly.summary,
        action=f'Raise the gate\'s capacity (Gate("{gate.gate}", capacity=...) in create_app(gates=[...]), '
        f"{capacity}) if the resource can take more, or let tasks wait longer (setting "
        f"`resource_wait_timeout`, FUNCTION_RUNNER_RESOURCE_WAIT_TIMEOUT, {timeout}).",
        evidence=anomaly.evidence,
    )


def breaker_window(
    breaker: BreakerActivity, *, window: Window, config: AnalysisConfig = DEFAULT_CONFIG
) -> Recommendation | None:
    """Widen a breaker's window when it flaps (the
    :func:`~error_handling.analytics.health.breaker_flapping` anomaly): a short window opens it on a
    burst of failures that a longer one averages out."""
    anomaly = breaker_flapping(breaker, window=window, config=config)
    if anomaly is None:
        return None
    current = f"now {breaker.window_seconds:g} s" if breaker.window_seconds is not None else "default 30 s"
    return Recommendation(
        rule=RecommendationRule.BREAKER_FLAPPING,
        subject=breaker.service,
        title=anomaly.summary,
        action=f"Widen the breakers' window (setting `breaker_window`, FUNCTION_RUNNER_BREAKER_WINDOW, {current}) "
        "or raise `breaker_min_calls` (FUNCTION_RUNNER_BREAKER_MIN_CALLS), so that a short burst of failures "
        f"does not open the breaker of {breaker.service}.",
        evidence=anomaly.evidence,
    )


def recommend(inputs: AnalysisInputs, config: AnalysisConfig = DEFAULT_CONFIG) -> list[Recommendation]:
    """Every recommendation for ``inputs``' window, ordered by rule, then subject."""
    window = inputs.window
    tasks = {task.name: task for task in inputs.tasks}
    found: list[Recommendation | None] = [
        *quota_dominates(inputs.groups, window=window, config=config),
        *retries_exhausted(inputs.groups, window=window, config=config),
    ]
    for group in inputs.groups:
        found.append(unclassified_group(group, window=window, config=config))
        found.append(validation_after_deploy(group, tasks, window=window, config=config))
    found.extend(gate_waits_timing_out(gate, window=window, config=config) for gate in inputs.gates)
    found.extend(breaker_window(breaker, window=window, config=config) for breaker in inputs.breakers)
    kept = [recommendation for recommendation in found if recommendation is not None]
    return sorted(kept, key=lambda r: (_RULE_ORDER[r.rule], r.subject))
