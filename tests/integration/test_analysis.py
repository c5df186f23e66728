"""The analysis read from a real Postgres: a generated week of traffic written through the failure path's own
writers (attempts, roll-up, groups) and the success counts' writer; the clean week reports no spike, new
group or regression; the same week with one of each injected reports each once, with its evidence; and the
window's totals and trend equal direct counts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from error_handling.analytics import AnomalyKind, GroupSeries, GroupState
from error_handling.categories import Category
from error_handling.persistence.bulk import insert_many
from error_handling.persistence.db import make_engine, make_sessionmaker
from error_handling.persistence.failure_rows import ATTEMPTS
from error_handling.persistence.groups import touch_groups
from error_handling.persistence.models import ErrorGroup, FailedAttempt
from error_handling.persistence.reads.analysis import analyse, window_totals
from error_handling.persistence.rollup import count_errors
from error_handling.persistence.task_counts import add_successes
from tests.unit.analytics.traffic import HOUR, Week, generate

NEW_PERIOD = dt.timedelta(hours=24)
SPIKED, FRESH, BACK = "g0001", "fresh-group", "g0002"


@pytest.fixture
def sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _attempt(group: GroupSeries, task: str, at: dt.datetime, n: int) -> dict[str, object]:
    return {
        "task_id": f"{group.fingerprint}-{at.isoformat()}-{n}",
        "attempt": 1,
        "task_name": task,
        "queue": "celery",
        "exc_type": group.exc_type,
        "message": group.message,
        "category": group.category,
        "reason": group.reason,
        "fingerprint": group.fingerprint,
        "decision": "retry",
        "failed_at": at,
    }


def _write(sessions: sessionmaker[Session], week: Week, *, resolve: dict[str, dt.datetime] | None = None) -> None:
    """Write the week as the failure path would: its attempts (spread over their hours), their roll-up rows
    and groups; the tasks' successes; groups resolved at the given times before the window's attempts."""
    rng = random.Random(3)
    history: list[dict[str, object]] = []
    current: list[dict[str, object]] = []
    for group in week.groups:
        (task,) = group.tasks or {"tasks.t0": 0}
        for hour, count in group.history.items():
            history += [_attempt(group, task, hour + rng.random() * HOUR, n) for n in range(count)]
        length = week.window.until - week.window.since
        current += [_attempt(group, task, week.window.since + rng.random() * length, n) for n in range(group.count)]
    successes: Counter[tuple[dt.datetime, str, str]] = Counter()
    for task in week.tasks:
        for hour, executions in (task.executions_history or {}).items():
            successes[(hour, task.name, "celery")] += executions - task.history.get(hour, 0)
    with sessions.begin() as session:
        for rows in (history, current):
            if rows is current and resolve:
                for fingerprint, at in resolve.items():
                    session.execute(
                        sa.update(ErrorGroup)
                        .where(ErrorGroup.fingerprint == fingerprint)
                        .values(state=GroupState.RESOLVED, resolved_at=at)
                    )
            insert_many(session, ATTEMPTS, rows)
            count_errors(session, rows)
            touch_groups(session, rows)
        add_successes(session, successes)


def _analyse(sessions: sessionmaker[Session], week: Week) -> list[tuple[AnomalyKind, str]]:
    with sessions() as session:
        found = analyse(session, since=week.window.since, until=week.window.until, new_period=NEW_PERIOD)
    return [(a.kind, a.subject) for a in found.anomalies]


def _lifecycle(found: list[tuple[AnomalyKind, str]]) -> list[tuple[AnomalyKind, str]]:
    kinds = {AnomalyKind.GROUP_SPIKE, AnomalyKind.NEW_GROUP, AnomalyKind.REGRESSION}
    return [(kind, subject) for kind, subject in found if kind in kinds]


def test_a_clean_week_reports_no_spike_new_group_or_regression(sessions: sessionmaker[Session]) -> None:
    week = generate(11, groups=60, hour_of_day=15)
    _write(sessions, week)
    assert _lifecycle(_analyse(sessions, week)) == []


def test_an_injected_spike_new_group_and_regression_are_each_reported_once(sessions: sessionmaker[Session]) -> None:
    week = generate(11, groups=60, hour_of_day=15)
    groups = {g.fingerprint: g for g in week.groups}
    spiked = groups[SPIKED]
    expected = max(sum(spiked.history.values()) / len(spiked.history), 1.0)
    groups[SPIKED] = dataclasses.replace(spiked, count=max(40, round(expected * 15)))
    back = groups[BACK]
    resolved_at = week.window.since - dt.timedelta(hours=30)
    groups[BACK] = dataclasses.replace(
        back, history={h: n for h, n in back.history.items() if h < resolved_at}, count=max(back.count, 3)
    )
    template = groups["g0003"]
    groups[FRESH] = dataclasses.replace(template, fingerprint=FRESH, history={}, count=25)
    injected = Week(week.window, list(groups.values()), week.tasks)
    _write(sessions, injected, resolve={BACK: resolved_at})

    found = _lifecycle(_analyse(sessions, injected))

    assert sorted(found) == sorted(
        [(AnomalyKind.GROUP_SPIKE, SPIKED), (AnomalyKind.NEW_GROUP, FRESH), (AnomalyKind.REGRESSION, BACK)]
    )
    with sessions() as session:
        analysis = analyse(session, since=week.window.since, until=week.window.until, new_period=NEW_PERIOD)
    spike = next(a for a in analysis.anomalies if a.kind is AnomalyKind.GROUP_SPIKE)
    assert spike.evidence["count"] == groups[SPIKED].count
    assert spike.evidence["baseline"]["samples"] >= 3


def test_the_window_totals_and_trend_equal_direct_counts(sessions: sessionmaker[Session]) -> None:
    week = generate(5, groups=20, hour_of_day=9)
    _write(sessions, week)
    since, until = week.window.since, week.window.until
    with sessions() as session:
        analysis = analyse(session, since=since, until=until, new_period=NEW_PERIOD)
        for name, offset in (
            ("previous", HOUR),
            ("day_ago", dt.timedelta(days=1)),
            ("week_ago", dt.timedelta(weeks=1)),
        ):
            totals = analysis.trend[name]
            direct = session.execute(
                sa.select(FailedAttempt.category, sa.func.count())
                .where(FailedAttempt.failed_at >= since - offset, FailedAttempt.failed_at < until - offset)
                .group_by(FailedAttempt.category)
            ).all()
            assert totals.total_errors == sum(n for _c, n in direct)
            assert totals.error_distribution == {c: n for c, n in direct}
            assert (totals.since, totals.until) == (since - offset, until - offset)
        assert analysis.window == window_totals(session, since=since, until=until)
    tasks = {t.name: t for t in week.tasks}
    successes_before = sum(
        (t.executions_history or {}).get(since - HOUR, 0) - t.history.get(since - HOUR, 0) for t in tasks.values()
    )
    previous = analysis.trend["previous"]
    assert previous.executions == previous.total_errors + successes_before
    assert previous.error_rate == pytest.approx(previous.total_errors / previous.executions)
    assert analysis.trend["week_ago"].total_errors > 0  # the history's first hours


def test_recommendations_come_from_what_was_recorded(sessions: sessionmaker[Session]) -> None:
    """30 quota errors of an OpenAI call and 25 unclassified errors in the window: the analysis advises a
    higher quota or a fallback for openai, and prints the rule that would classify the unknown error."""
    from error_handling.analytics import RecommendationRule
    from tests.support.failures import fail

    until = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
    for i in range(30):
        fail(
            sessions,
            f"quota-{i}",
            1,
            at=until - dt.timedelta(minutes=30, seconds=i),
            category=Category.RESOURCE,
            reason="quota_exceeded",
            exc_type="openai.RateLimitError",
            message="You exceeded your current quota",
            fingerprint="q" * 16,
        )
    for i in range(25):
        fail(
            sessions,
            f"odd-{i}",
            1,
            at=until - dt.timedelta(minutes=20, seconds=i),
            reason="unclassified",
            exc_type="myapp.clients.LegacyError",
            message="legacy backend said 17",
            fingerprint="u" * 16,
        )
    with sessions() as session:
        analysis = analyse(session, since=until - HOUR, until=until, new_period=NEW_PERIOD)
    rules = {(r.rule, r.subject): r for r in analysis.recommendations}
    quota = rules[(RecommendationRule.QUOTA_DOMINATES, "openai")]
    assert quota.evidence["quota_errors"] == 30
    assert "FUNCTION_RUNNER_FALLBACKS" in quota.action
    unknown = rules[(RecommendationRule.UNCLASSIFIED_GROUP, "u" * 16)]
    assert "Rule(" in unknown.action and "LegacyError" in unknown.action
