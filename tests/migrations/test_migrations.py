"""Migrations go up and down on Postgres and SQLite, and the migrated schema equals the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from error_handling.persistence.db import VERSION_TABLE, make_engine
from error_handling.persistence.models import Base
from function_runner.migrate import downgrade, upgrade
from tests.support import services


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.sqlite3'}"
        return
    services.require("PostgreSQL", services.PG_HOST, services.PG_PORT)
    with services.temporary_database() as url:
        yield url


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_matches_the_models(database_url: str) -> None:
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": VERSION_TABLE})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    expected = set(Base.metadata.tables)
    upgrade(database_url)
    assert expected <= _tables(database_url)
    downgrade(database_url)
    assert not (expected & _tables(database_url))
    upgrade(database_url)
    assert expected <= _tables(database_url)


def test_0005_fills_the_roll_up_from_the_attempts_already_recorded(database_url: str) -> None:
    import datetime as dt

    from error_handling.persistence.db import make_sessionmaker
    from error_handling.persistence.models import ErrorCount
    from error_handling.persistence.reads.counts import error_stats
    from tests.support.failures import fail

    upgrade(database_url, "0004")
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        base = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
        spots = [base + dt.timedelta(minutes=m) for m in (0, 59, 60, 61, 179)]
        with engine.begin() as conn:  # at 0004 the roll-up does not exist: write the attempts as 0004 did
            for i, at in enumerate(spots):
                conn.execute(
                    sa.text(
                        "INSERT INTO fr_failed_attempts (task_id, attempt, task_name, message, category, reason,"
                        " fingerprint, decision, failed_at) VALUES (:t, 1, 'app.t', 'm', 'transient', 'timeout',"
                        " :fp, 'retry', :at)"
                    ),
                    {
                        "t": f"t{i}",
                        "fp": "a" * 16 if i < 3 else "b" * 16,
                        "at": at
                        if conn.dialect.name != "sqlite"
                        else at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"),
                    },
                )
        upgrade(database_url)
        with sessions() as session:
            buckets = sorted(
                (row.period, row.bucket, row.fingerprint, row.count) for row in session.query(ErrorCount).all()
            )
            day = base.replace(hour=0)
            assert buckets == [
                ("day", day, "a" * 16, 3),
                ("day", day, "b" * 16, 2),
                ("hour", base, "a" * 16, 2),
                ("hour", base + dt.timedelta(hours=1), "a" * 16, 1),
                ("hour", base + dt.timedelta(hours=1), "b" * 16, 1),
                ("hour", base + dt.timedelta(hours=2), "b" * 16, 1),
            ]
            stats = error_stats(session, since=base, until=base + dt.timedelta(hours=3))
            assert stats.total == 5
            assert [(g.fingerprint, g.count) for g in stats.top_fingerprints] == [("a" * 16, 3), ("b" * 16, 2)]
            assert stats.top_fingerprints[1].first_seen == spots[3]
        # and an attempt recorded after the migration is added to the same hour's and day's rows (the rows
        # counted before 0013 have the queue '', as has an attempt of no known queue)
        fail(
            sessions, "later", 1, at=base + dt.timedelta(minutes=5), fingerprint="a" * 16, task_name="app.t", queue=None
        )
        with sessions() as session:
            hour = session.get(ErrorCount, ("hour", base, "app.t", "", "transient", "timeout", "a" * 16))
            whole_day = session.get(ErrorCount, ("day", day, "app.t", "", "transient", "timeout", "a" * 16))
            assert hour is not None and hour.count == 3
            assert whole_day is not None and whole_day.count == 4
    finally:
        engine.dispose()


def test_0011_accepts_replaying_and_a_downgrade_gives_claimed_letters_back(database_url: str) -> None:
    upgrade(database_url, "0011")
    engine = make_engine(database_url)
    insert = sa.text(
        "INSERT INTO fr_dead_letters (task_id, task_name, reason, attempts, args, kwargs, options, headers,"
        " replayable, status, replay_job_id, created_at, updated_at)"
        " VALUES (:t, 'app.t', 'r', 1, '[]', '{}', '{}', '{}', :yes, :status, 7, :at, :at)"
    )
    at = "2026-12-07 10:00:00" if database_url.startswith("sqlite") else "2026-12-07T10:00:00+00:00"
    try:
        with engine.begin() as conn:
            conn.execute(insert, {"t": "claimed", "yes": True, "status": "replaying", "at": at})
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(insert, {"t": "bogus", "yes": True, "status": "replayingish", "at": at})
    finally:
        engine.dispose()
    downgrade(database_url, "0010")
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT status FROM fr_dead_letters")).scalars().all() == ["pending"]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.text("UPDATE fr_dead_letters SET status = 'replaying'"))
    finally:
        engine.dispose()


def test_0013_fills_the_groups_and_a_downgrade_merges_the_queues_back(database_url: str) -> None:
    import datetime as dt

    from error_handling.persistence.db import make_sessionmaker
    from error_handling.persistence.models import ErrorCount, ErrorGroup, GroupState
    from tests.support.failures import fail

    upgrade(database_url, "0012")
    engine = make_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        base = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
        with engine.begin() as conn:  # written as 0012 did: no queue in the roll-up, no groups
            for i, minute in enumerate((0, 7, 30)):
                at = base + dt.timedelta(minutes=minute)
                conn.execute(
                    sa.text(
                        "INSERT INTO fr_failed_attempts (task_id, attempt, task_name, queue, exc_type, message,"
                        " category, reason, fingerprint, decision, failed_at) VALUES (:t, 1, 'app.t', 'q', 'E',"
                        " 'm', 'transient', :reason, 'a', 'retry', :at)"
                    ),
                    {
                        "t": f"t{i}",
                        "reason": "timeout" if i < 2 else "connection",
                        "at": at
                        if conn.dialect.name != "sqlite"
                        else at.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f"),
                    },
                )
        upgrade(database_url, "0013")
        with sessions() as session:
            group = session.get(ErrorGroup, "a")
            assert group is not None
            assert (group.times_seen, group.first_seen, group.last_seen) == (3, base, base + dt.timedelta(minutes=30))
            assert (group.reason, group.title, group.state) == ("connection", "E: m", GroupState.NEW)
        # two queues of one kind: two rows at 0013, one row again after a downgrade
        fail(sessions, "other", 1, at=base, fingerprint="b", task_name="app.t", queue="q1")
        fail(sessions, "other2", 1, at=base, fingerprint="b", task_name="app.t", queue="q2")
        with sessions() as session:
            assert session.query(ErrorCount).filter_by(fingerprint="b", period="hour").count() == 2
        downgrade(database_url, "0012")
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT count FROM fr_error_counts WHERE fingerprint = 'b' AND period = 'hour'")
            ).all()
            assert [row[0] for row in rows] == [2]
    finally:
        engine.dispose()
