"""The acceptance of issue 20's anomalies: a generated week of hourly traffic with a daily pattern over
300 groups; the clean week reports no spike, new group or regression; the same week with an injected
spike, a new group and a regression reports each exactly once, with its evidence."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from error_handling.analytics import AnomalyKind, GroupSeries, GroupState, detect, recommend

from .traffic import START, Week, generate, resolved, with_groups

#: The kinds the acceptance is about.
GROUP_KINDS = {AnomalyKind.GROUP_SPIKE, AnomalyKind.TASK_SPIKE, AnomalyKind.NEW_GROUP, AnomalyKind.REGRESSION}


def group_anomalies(week: Week) -> list[tuple[AnomalyKind, str]]:
    return [(a.kind, a.subject) for a in detect(week.inputs()) if a.kind in GROUP_KINDS]


@pytest.mark.parametrize("hour_of_day", [3, 15, 21], ids=["night", "peak", "evening"])
def test_a_clean_week_reports_no_spike_new_group_or_regression(hour_of_day: int) -> None:
    assert group_anomalies(generate(7, hour_of_day=hour_of_day)) == []


@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), hour_of_day=st.integers(0, 23))
def test_any_clean_week_reports_none(seed: int, hour_of_day: int) -> None:
    assert group_anomalies(generate(seed, hour_of_day=hour_of_day)) == []


def injected(week: Week) -> tuple[Week, dict[str, GroupSeries]]:
    """The week with a spike (a group of ~2 errors an hour at 60), a new group and a regression."""
    groups = list(week.groups)
    usual = sorted((g for g in groups if 1 <= g.count <= 4), key=lambda g: g.fingerprint)
    spiking = dataclasses.replace(usual[0], count=60, tasks=dict.fromkeys(usual[0].tasks, 60))
    regressed = dataclasses.replace(
        resolved(usual[1], at=START + dt.timedelta(days=3)),
        state=GroupState.REGRESSED,
        count=8,
        regressed_at=week.window.since + dt.timedelta(minutes=10),
        last_seen=week.window.since + dt.timedelta(minutes=40),
    )
    fresh = GroupSeries(
        fingerprint="new0",
        category="validation",
        reason="invalid_input",
        count=25,
        history={},
        first_seen=week.window.since + dt.timedelta(minutes=5),
        last_seen=week.window.since + dt.timedelta(minutes=50),
        exc_type="pydantic.ValidationError",
        tasks={"tasks.t3": 25},
    )
    by_id = {g.fingerprint: g for g in groups} | {g.fingerprint: g for g in (spiking, regressed, fresh)}
    return with_groups(week, list(by_id.values())), {"spike": spiking, "regression": regressed, "new": fresh}


@pytest.mark.parametrize("hour_of_day", [3, 15], ids=["night", "peak"])
def test_a_spike_a_new_group_and_a_regression_are_each_reported_once(hour_of_day: int) -> None:
    week, changed = injected(generate(7, hour_of_day=hour_of_day))
    anomalies = {a.subject: a for a in detect(week.inputs()) if a.kind in GROUP_KINDS}
    assert sorted((a.kind, s) for s, a in anomalies.items()) == sorted(
        [
            (AnomalyKind.GROUP_SPIKE, changed["spike"].fingerprint),
            (AnomalyKind.NEW_GROUP, "new0"),
            (AnomalyKind.REGRESSION, changed["regression"].fingerprint),
        ]
    )
    spike = anomalies[changed["spike"].fingerprint].evidence
    assert spike["count"] == 60 and spike["baseline"]["kind"] == "seasonal_day" and spike["baseline"]["samples"] == 7
    assert spike["baseline"]["expected"] < 10 and spike["tasks"] == changed["spike"].tasks
    assert anomalies["new0"].evidence["count"] == 25 and anomalies["new0"].evidence["tasks"] == {"tasks.t3": 25}
    assert (
        anomalies[changed["regression"].fingerprint].evidence["regressed_at"]
        == (week.window.since + dt.timedelta(minutes=10)).isoformat()
    )


def test_every_finding_of_the_week_is_json_and_the_clean_week_gets_no_advice() -> None:
    clean = generate(11, hour_of_day=15)
    assert recommend(clean.inputs()) == []
    week, _ = injected(clean)
    findings = [a.evidence for a in detect(week.inputs())] + [r.evidence for r in recommend(week.inputs())]
    assert findings and json.loads(json.dumps(findings)) == findings
