"""Rates and counters as anomalies: a task's error rate, recovery failing, waits timing out on a gate, a
breaker flapping. Each evaluator is a pure function of one input value (the alert thresholds reuse them)."""

from __future__ import annotations

import statistics

from error_handling.analytics.config import DEFAULT_CONFIG, AnalysisConfig
from error_handling.analytics.findings import Anomaly, AnomalyKind, severity_of, share_text
from error_handling.analytics.inputs import BreakerActivity, GateWaits, RecoverySeries, Window

#: The subject of a recovery anomaly.
RECOVERY_SUBJECT = "recovery"


def error_rate(
    subject: str,
    *,
    failures: int,
    executions: int | None,
    window: Window,
    config: AnalysisConfig = DEFAULT_CONFIG,
) -> Anomaly | None:
    """An :attr:`~AnomalyKind.ERROR_RATE` when ``failures / executions`` is over ``error_rate_threshold``
    with at least ``error_rate_min_executions`` executions (critical from ``error_rate_critical``).
    ``subject`` names what was counted (a task's name, or all tasks)."""
    if executions is None or executions < config.error_rate_min_executions:
        return None
    rate = min(failures / executions, 1.0)
    if rate <= config.error_rate_threshold:
        return None
    return Anomaly(
        kind=AnomalyKind.ERROR_RATE,
        severity=severity_of(rate >= config.error_rate_critical),
        subject=subject,
        summary=f"{subject}: error rate {share_text(rate)} ({failures} of {executions} executions), "
        f"threshold {share_text(config.error_rate_threshold)}",
        evidence={
            "failures": failures,
            "executions": executions,
            "rate": round(rate, 4),
            "threshold": config.error_rate_threshold,
            "window": window.evidence(),
        },
    )


def recovery_failing(
    recovery: RecoverySeries, *, window: Window, config: AnalysisConfig = DEFAULT_CONFIG
) -> Anomaly | None:
    """A :attr:`~AnomalyKind.RECOVERY_FAILING` when, over at least ``recovery_min_retried`` retried tasks,
    the share ending dead-lettered reaches ``recovery_dead_letter_floor`` and exceeds the median share
    of the previous windows (those with a retried task; 0 without any) by ``recovery_min_rise``.
    Critical when the share reaches twice the floor."""
    current = recovery.current
    if current.retried < config.recovery_min_retried:
        return None
    before = [counts.share for counts in recovery.previous if counts.retried]
    usual = statistics.median(before) if before else 0.0
    if current.share < config.recovery_dead_letter_floor or current.share - usual <= config.recovery_min_rise:
        return None
    return Anomaly(
        kind=AnomalyKind.RECOVERY_FAILING,
        severity=severity_of(current.share >= 2 * config.recovery_dead_letter_floor),
        subject=RECOVERY_SUBJECT,
        summary=f"{share_text(current.share)} of retried tasks dead-lettered ({current.dead_lettered} of "
        f"{current.retried}), usually {share_text(usual)}",
        evidence={
            "retried": current.retried,
            "dead_lettered": current.dead_lettered,
            "share": round(current.share, 4),
            "previous_shares": [round(share, 4) for share in before],
            "usual_share": round(usual, 4),
            "window": window.evidence(),
        },
    )


def wait_timeouts(gate: GateWaits, *, window: Window, config: AnalysisConfig = DEFAULT_CONFIG) -> Anomaly | None:
    """A :attr:`~AnomalyKind.WAIT_TIMEOUTS` when at least ``wait_timeout_min`` waits on ``gate`` timed
    out in the window and they are at least ``wait_timeout_share`` of its waits (the larger of those
    started and those timed out). Critical when half of them timed out."""
    share = gate.timed_out / max(gate.started, gate.timed_out, 1)
    if gate.timed_out < config.wait_timeout_min or share < config.wait_timeout_share:
        return None
    return Anomaly(
        kind=AnomalyKind.WAIT_TIMEOUTS,
        severity=severity_of(share >= 0.5),
        subject=gate.gate,
        summary=f"gate {gate.gate}: {gate.timed_out} waits timed out, {share_text(share)} of {gate.started} started",
        evidence={
            "gate": gate.gate,
            "started": gate.started,
            "timed_out": gate.timed_out,
            "share": round(share, 4),
            "capacity": gate.capacity,
            "timeout_seconds": gate.timeout_seconds,
            "window": window.evidence(),
        },
    )


def breaker_flapping(
    breaker: BreakerActivity, *, window: Window, config: AnalysisConfig = DEFAULT_CONFIG
) -> Anomaly | None:
    """A :attr:`~AnomalyKind.BREAKER_FLAPPING` when ``breaker`` opened at least ``flapping_min_opens``
    times in the window, at ``flapping_opens_per_hour`` or more. Critical at twice that pace."""
    per_hour = breaker.opens / window.hours
    if breaker.opens < config.flapping_min_opens or per_hour < config.flapping_opens_per_hour:
        return None
    return Anomaly(
        kind=AnomalyKind.BREAKER_FLAPPING,
        severity=severity_of(per_hour >= 2 * config.flapping_opens_per_hour),
        subject=breaker.service,
        summary=f"breaker {breaker.service}: opened {breaker.opens} times ({per_hour:.1f} per hour), "
        f"closed {breaker.closes} times",
        evidence={
            "service": breaker.service,
            "opens": breaker.opens,
            "closes": breaker.closes,
            "opens_per_hour": round(per_hour, 3),
            "window_seconds": breaker.window_seconds,
            "window": window.evidence(),
        },
    )
