"""Each recommendation rule, firing with its numbers and staying quiet; ``recommend`` over all inputs."""

from __future__ import annotations

import dataclasses
import datetime as dt

from error_handling.analytics import (
    AnalysisInputs,
    BreakerActivity,
    GateWaits,
    GroupSeries,
    Outcomes,
    RecommendationRule,
    TaskSeries,
    Window,
    breaker_window,
    gate_waits_timing_out,
    quota_dominates,
    recommend,
    retries_exhausted,
    unclassified_group,
    validation_after_deploy,
)

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
SINCE = dt.datetime(2025, 3, 10, 12, tzinfo=UTC)
WINDOW = Window(SINCE, SINCE + HOUR)


def group(fingerprint: str, count: int, **changes: object) -> GroupSeries:
    base = GroupSeries(
        fingerprint=fingerprint,
        category="transient",
        reason="timeout",
        count=count,
        history={},
        first_seen=SINCE - dt.timedelta(days=3),
        last_seen=SINCE + HOUR / 2,
        tasks={"chat.answer": count},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def quota(count: int, service: str = "openai:gpt-4o") -> GroupSeries:
    return group("q1", count, category="resource", reason="quota_exceeded", service=service)


def test_quota_errors_dominating_a_provider_name_the_fallback_setting() -> None:
    (found,) = quota_dominates([quota(30), group("t1", 10, service="openai:gpt-4o")], window=WINDOW)
    assert found.rule is RecommendationRule.QUOTA_DOMINATES and found.subject == "openai:gpt-4o"
    assert "FUNCTION_RUNNER_FALLBACKS" in found.action and "`fallbacks`" in found.action
    assert found.evidence["quota_errors"] == 30 and found.evidence["errors"] == 40 and found.evidence["share"] == 0.75
    assert "30 of its 40 errors (75.0%)" in found.title


def test_quota_errors_stay_quiet_when_few_or_not_dominant_or_without_a_service() -> None:
    assert quota_dominates([quota(19)], window=WINDOW) == []
    assert quota_dominates([quota(30), group("t1", 31, service="openai:gpt-4o")], window=WINDOW) == []
    assert quota_dominates([dataclasses.replace(quota(30), service=None)], window=WINDOW) == []
    # another provider's errors do not dilute it
    assert len(quota_dominates([quota(30), group("t1", 300, service="anthropic")], window=WINDOW)) == 1


def test_a_frequent_unclassified_group_gets_a_rule() -> None:
    unclassified = group(
        "u1", 25, category="transient", reason="unclassified", exc_type="acme.billing.GatewayHiccup", message="x"
    )
    found = unclassified_group(unclassified, window=WINDOW)
    assert found is not None and found.rule is RecommendationRule.UNCLASSIFIED_GROUP
    assert found.evidence["rule"] in found.action and found.evidence["rule"].startswith(
        'Rule(exception="acme.billing.GatewayHiccup"'
    )
    assert unclassified_group(dataclasses.replace(unclassified, count=19), window=WINDOW) is None
    assert unclassified_group(dataclasses.replace(unclassified, reason="timeout"), window=WINDOW) is None


def exhausted(fingerprint: str, dead: int, recovered: int, **changes: object) -> GroupSeries:
    return group(fingerprint, dead + recovered, outcomes=Outcomes(recovered=recovered, dead_lettered=dead), **changes)


def test_transient_retries_exhausted_for_one_reason_name_the_budget_and_a_breaker() -> None:
    found = retries_exhausted([exhausted("a", 8, 20), exhausted("b", 4, 10)], window=WINDOW)
    (advice,) = found
    assert advice.subject == "timeout" and advice.evidence["dead_lettered"] == 12 and advice.evidence["finished"] == 42
    assert "FUNCTION_RUNNER_TRANSIENT_MAX_ATTEMPTS" in advice.action and 'breaker="<service>"' in advice.action
    assert "chat.answer" in advice.action


def test_retries_exhausted_stays_quiet_when_few_rare_or_not_transient() -> None:
    assert retries_exhausted([exhausted("a", 9, 0)], window=WINDOW) == []
    assert retries_exhausted([exhausted("a", 10, 100)], window=WINDOW) == []  # 9 %
    assert retries_exhausted([exhausted("a", 50, 0, category="permanent")], window=WINDOW) == []


def versioned(started: dt.datetime | None) -> dict[str, TaskSeries]:
    task = TaskSeries(name="chat.answer", failures=0, history={}, version="2.4.0", version_first_seen=started)
    return {task.name: task}


def test_a_validation_group_right_after_a_new_version_points_at_the_producer() -> None:
    fresh = group("v1", 40, category="validation", reason="invalid_input", first_seen=SINCE + dt.timedelta(minutes=20))
    found = validation_after_deploy(fresh, versioned(SINCE), window=WINDOW)
    assert found is not None and "Check the producer of chat.answer" in found.action
    assert found.evidence["seconds_after"] == 1200 and found.evidence["version"] == "2.4.0"


def test_a_validation_group_stays_quiet_without_a_version_or_long_after_it() -> None:
    fresh = group("v1", 40, category="validation", reason="invalid_input", first_seen=SINCE + dt.timedelta(minutes=20))
    assert validation_after_deploy(fresh, versioned(None), window=WINDOW) is None
    assert validation_after_deploy(fresh, {}, window=WINDOW) is None
    assert validation_after_deploy(fresh, versioned(SINCE - dt.timedelta(hours=2)), window=WINDOW) is None
    assert validation_after_deploy(fresh, versioned(SINCE + HOUR), window=WINDOW) is None  # before the version
    transient = dataclasses.replace(fresh, category="transient")
    assert validation_after_deploy(transient, versioned(SINCE), window=WINDOW) is None


def test_a_gate_whose_waits_time_out_names_its_capacity_and_the_timeout() -> None:
    found = gate_waits_timing_out(
        GateWaits("gpu", started=30, timed_out=9, capacity=2, timeout_seconds=900), window=WINDOW
    )
    assert found is not None and 'Gate("gpu", capacity=...)' in found.action
    assert (
        "now 2" in found.action
        and "now 900 s" in found.action
        and "FUNCTION_RUNNER_RESOURCE_WAIT_TIMEOUT" in found.action
    )
    assert found.evidence["timed_out"] == 9
    assert gate_waits_timing_out(GateWaits("gpu", started=300, timed_out=9), window=WINDOW) is None


def test_a_flapping_breaker_names_its_window() -> None:
    found = breaker_window(BreakerActivity("openai", opens=8, closes=8, window_seconds=30), window=WINDOW)
    assert found is not None and "FUNCTION_RUNNER_BREAKER_WINDOW, now 30 s" in found.action
    assert found.evidence["opens"] == 8
    assert breaker_window(BreakerActivity("openai", opens=2, closes=2), window=WINDOW) is None


def test_recommend_runs_every_rule_and_a_quiet_window_gets_none() -> None:
    quiet = AnalysisInputs(window=WINDOW, groups=[group("t1", 3)], gates=[GateWaits("gpu", 10, 0)])
    assert recommend(quiet) == []
    busy = AnalysisInputs(
        window=WINDOW,
        groups=[quota(30), exhausted("a", 12, 10)],
        gates=[GateWaits("gpu", started=20, timed_out=10)],
        breakers=[BreakerActivity("openai", opens=5)],
    )
    assert [r.rule for r in recommend(busy)] == [
        RecommendationRule.QUOTA_DOMINATES,
        RecommendationRule.RETRIES_EXHAUSTED,
        RecommendationRule.GATE_WAITS_TIMING_OUT,
        RecommendationRule.BREAKER_FLAPPING,
    ]
