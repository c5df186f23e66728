"""Error groups on real Postgres: their counts, tasks, queues, trend, outcomes and states equal a direct
count over the attempts, for random timelines and random windows (seeded loops).

Each timeline records attempts through ``failure_recording.record_failure`` (as a worker does), in time
order, with operators resolving and ignoring groups in between and some tasks succeeding after failing.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from error_handling.categories import Category
from error_handling.persistence import failure_recording, group_states
from error_handling.persistence.db import make_engine, make_sessionmaker, transaction
from error_handling.persistence.models import DecisionKind, FailedAttempt, GroupState, TaskRecord, TaskState
from error_handling.persistence.reads import group_detail, groups
from error_handling.persistence.reads.window_counts import Resolution
from tests.support.failures import fail

NOW = dt.datetime(2026, 3, 15, 12, 0, tzinfo=dt.UTC)
START = NOW - dt.timedelta(days=14)
PERIOD = dt.timedelta(days=1)
FINGERPRINTS = [f"{i:x}" * 16 for i in range(10, 15)]
TASKS = ["app.a", "app.b", "app.c"]
QUEUES = ["celery", "slow", None]
KINDS = [(Category.TRANSIENT, "timeout"), (Category.VALIDATION, "invalid_input"), (Category.PERMANENT, "not_found")]


@pytest.fixture
def sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@dataclasses.dataclass
class Expected:
    """The state a group's timeline implies (the rules of GroupState, replayed in Python)."""

    state: GroupState = GroupState.NEW
    first_seen: dt.datetime | None = None
    changed: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    ignore_until: dt.datetime | None = None

    def attempt(self, at: dt.datetime) -> None:
        if self.first_seen is None:
            self.first_seen, self.changed = at, at
        elif self.state is GroupState.RESOLVED and self.resolved_at is not None and at > self.resolved_at:
            self.state, self.changed = GroupState.REGRESSED, at
        elif self.state is GroupState.IGNORED and self.ignore_until is not None and self.ignore_until <= at:
            self.state, self.changed, self.ignore_until = GroupState.ONGOING, at, None

    def at(self, now: dt.datetime, period: dt.timedelta = PERIOD) -> GroupState:
        over = now - period
        assert self.first_seen is not None and self.changed is not None
        if self.state is GroupState.NEW and self.first_seen < over:
            return GroupState.ONGOING
        if self.state is GroupState.REGRESSED and self.changed < over:
            return GroupState.ONGOING
        if self.state is GroupState.IGNORED and self.ignore_until is not None and self.ignore_until <= now:
            return GroupState.ONGOING
        return self.state


def _timeline(sessions: sessionmaker[Session], rng: random.Random, prefix: str = "t") -> dict[str, Expected]:
    """Record random attempts in time order, operators' changes in between; the expected states."""
    moments = sorted(START + dt.timedelta(seconds=rng.uniform(0, 14 * 86_400)) for _ in range(160))
    expected: dict[str, Expected] = {}
    for n, at in enumerate(moments):
        fingerprint = rng.choice(FINGERPRINTS)
        category, reason = rng.choice(KINDS)
        task_name, queue = rng.choice(TASKS), rng.choice(QUEUES)
        fail(
            sessions,
            f"{prefix}{n}",
            1,
            at=at,
            category=category,
            reason=reason,
            task_name=task_name,
            queue=queue,
            fingerprint=fingerprint,
            message=f"boom {fingerprint}",
        )
        expected.setdefault(fingerprint, Expected()).attempt(at)
        if category is Category.TRANSIENT and rng.random() < 0.3:  # it succeeds when retried
            with transaction(sessions) as session:
                failure_recording.record_success(session, task_id=f"{prefix}{n}", run_id=None, now=at)
        if rng.random() < 0.08:
            _operator(sessions, rng, expected, fingerprint, at + dt.timedelta(milliseconds=1))
    return expected


def _operator(
    sessions: sessionmaker[Session],
    rng: random.Random,
    expected: dict[str, Expected],
    fingerprint: str,
    at: dt.datetime,
) -> None:
    state = rng.choice([GroupState.RESOLVED, GroupState.IGNORED, GroupState.ONGOING])
    until = at + dt.timedelta(hours=rng.uniform(1, 400)) if state is GroupState.IGNORED and rng.random() < 0.7 else None
    change = group_states.GroupChange(state, ignore_until=until)
    with transaction(sessions) as session:
        group_states.change_group(session, fingerprint=fingerprint, change=change, now=at, new_period=PERIOD, actor="t")
    group = expected[fingerprint]
    group.state, group.changed, group.ignore_until = state, at, until
    if state is GroupState.RESOLVED:
        group.resolved_at = at


def _direct(session: Session, since: dt.datetime, until: dt.datetime, *conditions: object) -> int:
    query = sa.select(sa.func.count()).where(FailedAttempt.failed_at >= since, FailedAttempt.failed_at < until)
    return int(session.execute(query.where(*conditions)).scalar_one())  # type: ignore[arg-type]


def _random_window(rng: random.Random) -> tuple[dt.datetime, dt.datetime]:
    a, b = sorted(START - dt.timedelta(hours=2) + dt.timedelta(seconds=rng.uniform(0, 15 * 86_400)) for _ in range(2))
    if rng.random() < 0.5:  # some short windows (hourly trends), some on hour bounds
        b = a + dt.timedelta(seconds=rng.uniform(60, 3 * 86_400))
    if rng.random() < 0.2:
        a = a.replace(minute=0, second=0, microsecond=0)
    return a, b


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_group_counts_and_states_equal_a_direct_count(sessions: sessionmaker[Session], seed: int) -> None:
    rng = random.Random(seed)
    expected = _timeline(sessions, rng)
    with sessions() as session:
        for _ in range(6):
            since, until = _random_window(rng)
            flt = groups.GroupFilter(since=since, until=until)
            page = groups.list_groups(session, flt, sort=groups.GroupSort.COUNT, limit=50, now=NOW, new_period=PERIOD)
            assert {item.fingerprint for item in page.items} == set(expected)
            assert [item.count for item in page.items] == sorted((item.count for item in page.items), reverse=True)
            before = (since - (until - since), since)
            for item in page.items:
                fp = FailedAttempt.fingerprint == item.fingerprint
                assert item.count == _direct(session, since, until, fp)
                assert item.previous_count == _direct(session, *before, fp)
                assert item.state is expected[item.fingerprint].at(NOW)
                detail = group_detail.get_group(
                    session, fingerprint=item.fingerprint, since=since, until=until, now=NOW, new_period=PERIOD
                )
                assert detail is not None
                for task_name in TASKS:
                    direct = _direct(session, since, until, fp, FailedAttempt.task_name == task_name)
                    assert detail.tasks.get(task_name, 0) == direct
                for queue in QUEUES:
                    where = FailedAttempt.queue.is_(None) if queue is None else FailedAttempt.queue == queue
                    assert detail.queues.get(queue or "", 0) == _direct(session, since, until, fp, where)
                step = dt.timedelta(hours=1) if detail.resolution is Resolution.HOUR else dt.timedelta(days=1)
                for start, count in detail.trend:
                    assert count == _direct(session, max(start, since), min(start + step, until), fp), start
                assert sum(count for _, count in detail.trend) == item.count


@pytest.mark.parametrize("seed", [2, 4])
def test_group_outcomes_and_totals_equal_a_direct_count(sessions: sessionmaker[Session], seed: int) -> None:
    rng = random.Random(seed)
    expected = _timeline(sessions, rng)
    with sessions() as session:
        page = groups.list_groups(
            session, groups.GroupFilter(), sort=groups.GroupSort.TIMES_SEEN, limit=50, now=NOW, new_period=PERIOD
        )
        assert {item.fingerprint for item in page.items} == set(expected)
        for item in page.items:
            fp = FailedAttempt.fingerprint == item.fingerprint
            everything = (START - dt.timedelta(days=1), NOW)
            assert item.times_seen == _direct(session, *everything, fp)
            assert item.failed_fast == _direct(
                session, *everything, fp, FailedAttempt.decision == DecisionKind.FAIL_FAST
            )
            assert item.dead_lettered == _direct(
                session, *everything, fp, FailedAttempt.decision == DecisionKind.DEAD_LETTER
            )
            recovered = session.execute(
                sa.select(sa.func.count())
                .select_from(TaskRecord)
                .join(
                    FailedAttempt,
                    sa.and_(FailedAttempt.task_id == TaskRecord.task_id, FailedAttempt.attempt == TaskRecord.attempts),
                )
                .where(TaskRecord.state == TaskState.SUCCEEDED, fp)
            ).scalar_one()
            assert item.recovered == recovered
            assert item.first_seen == expected[item.fingerprint].first_seen
            assert item.state is expected[item.fingerprint].at(NOW)
        for state in GroupState:
            only = groups.list_groups(session, groups.GroupFilter(state=state), limit=50, now=NOW, new_period=PERIOD)
            assert {i.fingerprint for i in only.items} == {fp for fp, e in expected.items() if e.at(NOW) is state}


def test_the_timelines_reach_every_state_an_operator_or_time_makes(sessions: sessionmaker[Session]) -> None:
    """The seeds above are not vacuous: between them, their timelines reach these states and outcomes."""
    reached: set[GroupState] = set()
    for seed in (1, 2, 3, 4):
        timeline = _timeline(sessions, random.Random(seed), prefix=f"s{seed}-").values()
        reached |= {e.at(NOW) for e in timeline} | {e.at(NOW, dt.timedelta(days=20)) for e in timeline}
    assert {GroupState.ONGOING, GroupState.RESOLVED, GroupState.IGNORED, GroupState.REGRESSED} <= reached
