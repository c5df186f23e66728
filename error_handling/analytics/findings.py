"""What the analysis reports: anomalies (something is wrong now, with its evidence) and their kinds."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any


class AnomalyKind(enum.StrEnum):
    """What kind of anomaly (see docs/analysis.md for when each fires)."""

    #: An error group's errors far above its own baseline.
    GROUP_SPIKE = "group_spike"
    #: A task's failures far above its own baseline (scaled by its traffic when executions are known).
    TASK_SPIKE = "task_spike"
    #: A group first seen in the window.
    NEW_GROUP = "new_group"
    #: A resolved group seen again.
    REGRESSION = "regression"
    #: A task's error rate over the threshold.
    ERROR_RATE = "error_rate"
    #: The share of retried tasks ending dead-lettered rising.
    RECOVERY_FAILING = "recovery_failing"
    #: Waits on a resource gate timing out.
    WAIT_TIMEOUTS = "wait_timeouts"
    #: A circuit breaker opening again and again.
    BREAKER_FLAPPING = "breaker_flapping"


class Severity(enum.StrEnum):
    """How urgent an anomaly is."""

    #: Worth a look.
    WARNING = "warning"
    #: Act now.
    CRITICAL = "critical"


@dataclasses.dataclass(frozen=True)
class Anomaly:
    """One anomaly with its evidence.

    Attributes:
        kind: what kind of anomaly.
        severity: warning or critical.
        subject: what it is about: a group's fingerprint, a task's name, a gate, a service, or ``recovery``.
        summary: one line with the numbers.
        evidence: JSON-able facts: counts, baseline, window, ids.
    """

    kind: AnomalyKind
    severity: Severity
    subject: str
    summary: str
    evidence: Mapping[str, Any]


def severity_of(critical: bool) -> Severity:
    """:attr:`Severity.CRITICAL` when ``critical``, else a warning."""
    return Severity.CRITICAL if critical else Severity.WARNING


def share_text(share: float) -> str:
    """A share as a percentage with one decimal (``0.125`` -> ``12.5%``)."""
    return f"{share * 100:.1f}%"


class RecommendationRule(enum.StrEnum):
    """The recommendation rules (see docs/analysis.md for when each fires and stays quiet)."""

    #: Quota errors dominate one provider's errors: raise the quota or add a fallback provider.
    QUOTA_DOMINATES = "quota_dominates"
    #: A frequent unclassified group: add a classification rule (printed ready to paste).
    UNCLASSIFIED_GROUP = "unclassified_group"
    #: Transient failures of one reason dead-lettered after their retries: raise the budget or add a breaker.
    RETRIES_EXHAUSTED = "retries_exhausted"
    #: A validation group that appeared right after a task's new version: check the producer.
    VALIDATION_AFTER_DEPLOY = "validation_after_deploy"
    #: Waits on a gate timing out: raise its capacity or the wait timeout.
    GATE_WAITS_TIMING_OUT = "gate_waits_timing_out"
    #: A breaker opening and closing repeatedly: widen its window.
    BREAKER_FLAPPING = "breaker_flapping"


@dataclasses.dataclass(frozen=True)
class Recommendation:
    """One recommendation with the numbers behind it.

    Attributes:
        rule: the rule that made it.
        subject: what it is about: a service, a group's fingerprint, a reason, a task, a gate.
        title: one line saying what was seen, with its numbers.
        action: what to do, naming the concrete setting, option or code.
        evidence: JSON-able facts: counts, shares, thresholds, window, ids.
    """

    rule: RecommendationRule
    subject: str
    title: str
    action: str
    evidence: Mapping[str, Any]
