"""The groups role's state changes on a real Postgres: time settles ``new``, ``regressed`` and timed
ignores into ``ongoing``; a group far above its own baseline escalates (also when ignored until it
escalates), and calms down once its volume falls; operators' states are left alone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from error_handling.analytics import GroupState
from error_handling.persistence.bulk import insert_many
from error_handling.persistence.db import make_engine, make_sessionmaker
from error_handling.persistence.failure_rows import ATTEMPTS
from error_handling.persistence.group_escalation import escalate, settle
from error_handling.persistence.groups import touch_groups
from error_handling.persistence.models import ErrorGroup
from error_handling.persistence.rollup import count_errors

NOW = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
NEW_PERIOD = DAY


@pytest.fixture
def sessions(pg_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(pg_url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _fail(sessions: sessionmaker[Session], fingerprint: str, times: list[dt.datetime]) -> None:
    """Record attempts of ``fingerprint`` at ``times`` through the failure path's writers."""
    rows = [
        {
            "task_id": f"{fingerprint}-{i}-{at.timestamp()}",
            "attempt": 1,
            "task_name": "app.task",
            "queue": "celery",
            "exc_type": "TimeoutError",
            "message": "timed out",
            "category": "transient",
            "reason": "timeout",
            "fingerprint": fingerprint,
            "decision": "retry",
            "failed_at": at,
        }
        for i, at in enumerate(times)
    ]
    with sessions.begin() as session:
        insert_many(session, ATTEMPTS, rows)
        count_errors(session, rows)
        touch_groups(session, rows)


def _steady(sessions: sessionmaker[Session], fingerprint: str, *, per_hour: int, days: int = 14) -> None:
    """``per_hour`` attempts in each hour of the ``days`` before the last hour."""
    start = NOW - HOUR - days * DAY
    _fail(
        sessions,
        fingerprint,
        [start + h * HOUR + dt.timedelta(minutes=7 * k) for h in range(days * 24) for k in range(per_hour)],
    )


def _burst(sessions: sessionmaker[Session], fingerprint: str, count: int, *, end: dt.datetime = NOW) -> None:
    """``count`` attempts in the hour before ``end``."""
    _fail(sessions, fingerprint, [end - HOUR + dt.timedelta(seconds=(i * 3599) // count) for i in range(count)])


def _states(sessions: sessionmaker[Session]) -> dict[str, GroupState]:
    with sessions() as session:
        return {g.fingerprint: g.state for g in session.execute(sa.select(ErrorGroup)).scalars()}


def _set(sessions: sessionmaker[Session], fingerprint: str, **values: object) -> None:
    with sessions.begin() as session:
        session.execute(sa.update(ErrorGroup).where(ErrorGroup.fingerprint == fingerprint).values(**values))


def test_time_settles_new_regressed_and_timed_ignores(sessions: sessionmaker[Session]) -> None:
    _fail(sessions, "old-new", [NOW - 25 * HOUR])
    _fail(sessions, "young-new", [NOW - 23 * HOUR])
    _fail(sessions, "regressed", [NOW - 3 * DAY])
    _set(sessions, "regressed", state=GroupState.REGRESSED, state_changed_at=NOW - 2 * DAY)
    _fail(sessions, "ignored-until", [NOW - 3 * DAY])
    _set(sessions, "ignored-until", state=GroupState.IGNORED, ignore_until=NOW - HOUR)
    _fail(sessions, "ignored-forever", [NOW - 3 * DAY])
    _set(sessions, "ignored-forever", state=GroupState.IGNORED)
    _fail(sessions, "resolved", [NOW - 3 * DAY])
    _set(sessions, "resolved", state=GroupState.RESOLVED, resolved_at=NOW - 2 * DAY)

    with sessions.begin() as session:
        changed = settle(session, now=NOW, new_period=NEW_PERIOD)

    assert changed == 3
    assert _states(sessions) == {
        "old-new": GroupState.ONGOING,
        "young-new": GroupState.NEW,
        "regressed": GroupState.ONGOING,
        "ignored-until": GroupState.ONGOING,
        "ignored-forever": GroupState.IGNORED,
        "resolved": GroupState.RESOLVED,
    }
    with sessions() as session:
        assert session.get(ErrorGroup, "ignored-until").ignore_until is None  # type: ignore[union-attr]
    with sessions.begin() as session:  # settled: a second run changes nothing
        assert settle(session, now=NOW, new_period=NEW_PERIOD) == 0


def test_a_group_far_above_its_baseline_escalates_and_calms_down_again(sessions: sessionmaker[Session]) -> None:
    for fingerprint in ("spiking", "steady", "waiting", "muted"):
        _steady(sessions, fingerprint, per_hour=2)
    _set(sessions, "waiting", state=GroupState.IGNORED, ignore_until_escalating=True)
    _set(sessions, "muted", state=GroupState.IGNORED)
    _burst(sessions, "spiking", 60)
    _burst(sessions, "steady", 3)
    _burst(sessions, "waiting", 60)
    _burst(sessions, "muted", 60)

    with sessions.begin() as session:
        settle(session, now=NOW, new_period=NEW_PERIOD)
        changes = escalate(session, now=NOW, new_period=NEW_PERIOD)

    assert changes.escalated == ["spiking", "waiting"]
    states = _states(sessions)
    assert states == {
        "spiking": GroupState.ESCALATING,
        "steady": GroupState.ONGOING,
        "waiting": GroupState.ESCALATING,
        "muted": GroupState.IGNORED,
    }
    # the next hour: still high for one, back to normal for the other
    later = NOW + HOUR
    _burst(sessions, "spiking", 2, end=later)
    _burst(sessions, "waiting", 50, end=later)
    with sessions.begin() as session:
        changes = escalate(session, now=later, new_period=NEW_PERIOD)
    assert (changes.escalated, changes.calmed) == ([], ["spiking"])
    assert _states(sessions)["spiking"] is GroupState.ONGOING
    assert _states(sessions)["waiting"] is GroupState.ESCALATING


def test_a_few_errors_more_than_usual_do_not_escalate(sessions: sessionmaker[Session]) -> None:
    _steady(sessions, "sparse", per_hour=1)
    _burst(sessions, "sparse", 3)  # 1 -> 3: no alarm
    _fail(sessions, "brand-new", [NOW - 30 * dt.timedelta(minutes=1)] * 1)
    with sessions.begin() as session:
        changes = escalate(session, now=NOW, new_period=NEW_PERIOD)
    assert changes.escalated == []
    assert _states(sessions)["brand-new"] is GroupState.NEW
