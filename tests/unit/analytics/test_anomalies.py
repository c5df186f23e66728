"""Each anomaly evaluator, firing and staying quiet, with its evidence; and ``detect`` reporting a group once."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from error_handling.analytics import (
    AnalysisConfig,
    AnalysisInputs,
    AnomalyKind,
    BreakerActivity,
    GateWaits,
    GroupSeries,
    GroupState,
    RecoveryCounts,
    RecoverySeries,
    Severity,
    TaskSeries,
    Window,
    breaker_flapping,
    detect,
    error_rate,
    group_spike,
    is_escalating,
    new_group,
    poisson_tail,
    recovery_failing,
    regression,
    task_spike,
    wait_timeouts,
)

UTC = dt.UTC
HOUR = dt.timedelta(hours=1)
T0 = dt.datetime(2025, 3, 3, tzinfo=UTC)
SINCE = T0 + dt.timedelta(days=7)
WINDOW = Window(SINCE, SINCE + HOUR)


def hourly(count: int, *, days: int = 7, peak: int | None = None) -> dict[dt.datetime, int]:
    """``days`` of history: ``count`` an hour, ``peak`` at 15:00 if given."""
    return {T0 + h * HOUR: (peak if peak is not None and h % 24 == 15 else count) for h in range(24 * days)}


def group(count: int, history: dict[dt.datetime, int], **changes: object) -> GroupSeries:
    base = GroupSeries(
        fingerprint="f00d",
        category="transient",
        reason="timeout",
        count=count,
        history=history,
        first_seen=T0 - dt.timedelta(days=30),
        last_seen=WINDOW.since + dt.timedelta(minutes=30),
        exc_type="httpx.ReadTimeout",
        tasks={"reports.build": count},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_group_spike_fires_with_its_evidence() -> None:
    anomaly = group_spike(group(60, hourly(2)), window=WINDOW)
    assert anomaly is not None
    assert (anomaly.kind, anomaly.subject, anomaly.severity) == (AnomalyKind.GROUP_SPIKE, "f00d", Severity.CRITICAL)
    evidence = anomaly.evidence
    assert evidence["count"] == 60 and evidence["tasks"] == {"reports.build": 60}
    assert evidence["baseline"]["kind"] == "seasonal_day" and evidence["baseline"]["expected"] == 2
    assert evidence["window"]["since"] == SINCE.isoformat()
    assert "60 errors" in anomaly.summary and "expected 2.0" in anomaly.summary
    json.dumps(evidence)  # JSON-able


@pytest.mark.parametrize(
    ("before", "now"),
    [(1, 3), (0, 3), (3, 9), (2, 8), (200, 260), (4, 13)],
    ids=[
        "1->3",
        "0->3",
        "3->9 under the minimum count",
        "2->8",
        "noise of a large group",
        "4->13 within a Poisson tail",
    ],
)
def test_small_or_noisy_rises_are_no_spike(before: int, now: int) -> None:
    assert group_spike(group(now, hourly(before)), window=WINDOW) is None


def test_the_poisson_condition_alone_keeps_a_sparse_rise_quiet() -> None:
    assert group_spike(group(13, hourly(4)), window=WINDOW) is None
    assert group_spike(group(13, hourly(4)), window=WINDOW, config=AnalysisConfig(spike_max_probability=1.0))


def test_the_daily_peak_hour_is_no_spike() -> None:
    peak_window = Window(SINCE + 15 * HOUR, SINCE + 16 * HOUR)
    anomaly = group_spike(group(50, hourly(2, peak=50)), window=peak_window)
    assert anomaly is None
    # the same count at a quiet hour is one
    assert group_spike(group(50, hourly(2, peak=50)), window=Window(SINCE + 3 * HOUR, SINCE + 4 * HOUR))


def test_a_flat_history_at_zero_needs_the_minimum_count() -> None:
    assert group_spike(group(9, hourly(0)), window=WINDOW) is None
    assert group_spike(group(10, hourly(0)), window=WINDOW) is not None


def test_too_little_history_is_no_spike() -> None:
    short = {SINCE - HOUR: 1, SINCE - 2 * HOUR: 1}  # two recent samples, three needed
    assert group_spike(group(100, short), window=WINDOW) is None


def test_an_ignored_group_and_a_new_group_are_no_spike() -> None:
    assert group_spike(group(60, hourly(2), state=GroupState.IGNORED), window=WINDOW) is None
    assert group_spike(group(60, hourly(2), first_seen=SINCE), window=WINDOW) is None


def test_escalating_is_the_spike_test() -> None:
    assert is_escalating(group(60, hourly(2)), window=WINDOW)
    assert not is_escalating(group(4, hourly(2)), window=WINDOW)


def test_a_task_spike_scales_its_baseline_by_its_traffic() -> None:
    task = TaskSeries(
        name="reports.build",
        failures=100,
        history=hourly(10),
        executions=10_000,
        executions_history=hourly(1000),
    )
    # ten times the traffic at the same error rate: no spike
    assert task_spike(task, window=WINDOW) is None
    anomaly = task_spike(dataclasses.replace(task, executions=1000), window=WINDOW)
    assert anomaly is not None and anomaly.evidence["traffic_ratio"] == 1.0
    # without executions: the failures alone
    assert task_spike(dataclasses.replace(task, executions=None), window=WINDOW) is not None


def test_a_new_group_fires_once_in_the_window_it_appeared() -> None:
    fresh = group(25, {}, first_seen=SINCE + dt.timedelta(minutes=5))
    anomaly = new_group(fresh, window=WINDOW)
    assert anomaly is not None and anomaly.kind is AnomalyKind.NEW_GROUP
    assert anomaly.evidence["first_seen"] == fresh.first_seen.isoformat()
    assert new_group(fresh, window=Window(WINDOW.until, WINDOW.until + HOUR)) is None
    assert new_group(group(25, hourly(2)), window=WINDOW) is None
    assert new_group(fresh, window=WINDOW, config=AnalysisConfig(new_group_min_count=30)) is None


def test_a_regression_fires_when_a_resolved_group_comes_back() -> None:
    resolved_at = SINCE - dt.timedelta(days=2)
    back = group(8, hourly(0), state=GroupState.REGRESSED, resolved_at=resolved_at, regressed_at=SINCE + HOUR / 4)
    anomaly = regression(back, window=WINDOW)
    assert anomaly is not None and anomaly.kind is AnomalyKind.REGRESSION
    assert anomaly.evidence["resolved_at"] == resolved_at.isoformat()
    assert regression(back, window=Window(WINDOW.until, WINDOW.until + HOUR)) is None  # reported once


def test_a_group_still_marked_resolved_that_errs_again_is_a_regression() -> None:
    still = group(3, hourly(0), state=GroupState.RESOLVED, resolved_at=SINCE - HOUR)
    assert regression(still, window=WINDOW) is not None
    quiet = group(0, hourly(0), state=GroupState.RESOLVED, resolved_at=SINCE - HOUR, last_seen=SINCE - 2 * HOUR)
    assert regression(quiet, window=WINDOW) is None
    assert regression(group(8, hourly(2)), window=WINDOW) is None  # never resolved


def test_the_error_rate_needs_the_threshold_and_enough_executions() -> None:
    anomaly = error_rate("reports.build", failures=30, executions=100, window=WINDOW)
    assert anomaly is not None and anomaly.severity is Severity.WARNING and anomaly.evidence["rate"] == 0.3
    critical = error_rate("reports.build", failures=60, executions=100, window=WINDOW)
    assert critical is not None and critical.severity is Severity.CRITICAL
    assert error_rate("reports.build", failures=20, executions=100, window=WINDOW) is None
    assert error_rate("reports.build", failures=10, executions=19, window=WINDOW) is None
    assert error_rate("reports.build", failures=10, executions=None, window=WINDOW) is None


def test_recovery_failing_needs_a_rise_past_the_floor() -> None:
    usual = [RecoveryCounts(100, 5)] * 6
    rising = RecoverySeries(RecoveryCounts(100, 30), usual)
    anomaly = recovery_failing(rising, window=WINDOW)
    assert anomaly is not None and anomaly.evidence["usual_share"] == 0.05 and anomaly.evidence["share"] == 0.3
    assert (
        recovery_failing(RecoverySeries(RecoveryCounts(100, 30), [RecoveryCounts(100, 28)] * 6), window=WINDOW) is None
    )
    assert recovery_failing(RecoverySeries(RecoveryCounts(100, 15), usual), window=WINDOW) is None  # under the floor
    assert recovery_failing(RecoverySeries(RecoveryCounts(10, 9), usual), window=WINDOW) is None  # too few
    assert recovery_failing(RecoverySeries(RecoveryCounts(100, 30)), window=WINDOW) is not None  # no history


def test_wait_timeouts_need_a_count_and_a_share() -> None:
    anomaly = wait_timeouts(GateWaits("gpu", started=40, timed_out=8, capacity=2), window=WINDOW)
    assert anomaly is not None and anomaly.subject == "gpu" and anomaly.evidence["capacity"] == 2
    assert wait_timeouts(GateWaits("gpu", started=400, timed_out=8), window=WINDOW) is None
    assert wait_timeouts(GateWaits("gpu", started=4, timed_out=4), window=WINDOW) is None


def test_a_breaker_flaps_at_enough_opens_per_hour() -> None:
    anomaly = breaker_flapping(BreakerActivity("openai", opens=6, closes=6), window=WINDOW)
    assert anomaly is not None and anomaly.evidence["opens_per_hour"] == 6
    assert breaker_flapping(BreakerActivity("openai", opens=3), window=WINDOW) is None  # 3 an hour
    five_minutes = Window(SINCE, SINCE + dt.timedelta(minutes=5))
    assert breaker_flapping(BreakerActivity("openai", opens=2), window=five_minutes) is None  # 24/h, but 2 opens
    assert breaker_flapping(BreakerActivity("openai", opens=3), window=five_minutes) is not None


def test_detect_reports_a_regressed_group_once_not_also_as_a_spike() -> None:
    back = group(60, hourly(0), state=GroupState.REGRESSED, resolved_at=T0, regressed_at=SINCE)
    assert group_spike(back, window=WINDOW) is not None  # its own evaluator alone would see a spike
    kinds = [anomaly.kind for anomaly in detect(AnalysisInputs(window=WINDOW, groups=[back]))]
    assert kinds == [AnomalyKind.REGRESSION]


def test_detect_puts_critical_first() -> None:
    inputs = AnalysisInputs(
        window=WINDOW,
        groups=[group(60, hourly(2))],
        breakers=[BreakerActivity("openai", opens=5)],
    )
    assert [(a.kind, a.severity) for a in detect(inputs)] == [
        (AnomalyKind.GROUP_SPIKE, Severity.CRITICAL),
        (AnomalyKind.BREAKER_FLAPPING, Severity.WARNING),
    ]


def test_the_poisson_tail() -> None:
    assert poisson_tail(0, 3) == 1.0
    assert poisson_tail(2, 3) == 1.0
    assert poisson_tail(10, 2) == pytest.approx(4.649e-5, rel=1e-3)
    assert poisson_tail(1, 0) == 0.0
    assert 0 < poisson_tail(1500, 1000) < 1e-40  # no underflow to nonsense, no overflow


def test_detect_drops_a_task_spike_its_reported_groups_explain() -> None:
    task = TaskSeries(name="reports.build", failures=62, history=hourly(2))
    spiking = group(60, hourly(0))
    assert task_spike(task, window=WINDOW) is not None  # alone, the task spikes too
    kinds = [a.kind for a in detect(AnalysisInputs(window=WINDOW, groups=[spiking], tasks=[task]))]
    assert kinds == [AnomalyKind.GROUP_SPIKE]
    # failures beyond the group's: the task's spike stays
    wider = dataclasses.replace(task, failures=160)
    kinds = [a.kind for a in detect(AnalysisInputs(window=WINDOW, groups=[spiking], tasks=[wider]))]
    assert sorted(kinds) == [AnomalyKind.GROUP_SPIKE, AnomalyKind.TASK_SPIKE]
