"""Statistics read the hourly roll-up for whole hours and the attempts for the ends of the window: the
figures equal a count over the attempts themselves, for any window, on Postgres and on SQLite."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from error_handling.categories import Category
from error_handling.persistence.db import make_engine, make_sessionmaker
from error_handling.persistence.reads.counts import error_stats
from function_runner.migrate import upgrade
from tests.support import services
from tests.support.failures import fail

BASE = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC)
#: The attempts fall in the 50 hours after BASE: two whole days are among them.
SPAN = 50 * 3600
#: Kinds of error: (task name, category, reason, fingerprint).
KINDS = [
    ("app.chat", Category.TRANSIENT, "rate_limited", "1" * 16),
    ("app.chat", Category.RESOURCE, "quota_exhausted", "2" * 16),
    ("app.embed", Category.TRANSIENT, "timeout", "3" * 16),
    ("app.embed", Category.PERMANENT, "auth_failed", "4" * 16),
    ("app.ocr", Category.VALIDATION, "invalid_input", "5" * 16),
]


@pytest.fixture(params=["postgresql", "sqlite"])
def sessions(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'stats.sqlite3'}"
        upgrade(url)
        engine = make_engine(url)
        yield make_sessionmaker(engine)
        engine.dispose()
        return
    services.require("PostgreSQL", services.PG_HOST, services.PG_PORT)
    with services.temporary_database() as url:
        upgrade(url)
        engine = make_engine(url)
        yield make_sessionmaker(engine)
        engine.dispose()


def test_stats_equal_a_count_over_the_attempts_for_any_window(sessions: sessionmaker[Session]) -> None:
    rng = random.Random(5)
    recorded: list[tuple[dt.datetime, int, tuple[str, Category, str, str]]] = []
    for i in range(240):  # over two days and a bit, some on the hour or the day exactly
        at = BASE + dt.timedelta(seconds=rng.choice([rng.randrange(SPAN), 3600 * rng.randrange(SPAN // 3600)]))
        kind = rng.choice(KINDS)
        fail(
            sessions,
            f"t{i}",
            1,
            at=at,
            task_name=kind[0],
            category=kind[1],
            reason=kind[2],
            fingerprint=kind[3],
            message=f"m{i}",
        )
        recorded.append((at, i, kind))

    windows = [
        (BASE, BASE + dt.timedelta(seconds=SPAN)),
        (BASE + dt.timedelta(minutes=30), BASE + dt.timedelta(hours=1)),
    ]
    for _ in range(60):
        a, b = sorted(BASE + dt.timedelta(seconds=rng.randrange(-600, SPAN + 600)) for _ in range(2))
        windows.append((a, b))
    windows.append((BASE + dt.timedelta(hours=1), BASE + dt.timedelta(hours=3)))  # whole hours only
    windows.append((BASE + dt.timedelta(hours=18), BASE + dt.timedelta(hours=42)))  # one whole day
    windows.append((BASE + dt.timedelta(hours=2), BASE + dt.timedelta(hours=2)))  # empty

    with sessions() as session:
        for since, until in windows:
            inside = [(at, i, kind) for at, i, kind in recorded if since <= at < until]
            stats = error_stats(session, since=since, until=until, top=3)
            assert stats.total == len(inside), (since, until)
            assert stats.by_category == _largest(Counter(k[1].value for _, _, k in inside))
            assert stats.by_reason == _largest(Counter(k[2] for _, _, k in inside))
            assert stats.by_task == _largest(Counter(k[0] for _, _, k in inside), 3)
            per_fp = Counter(k[3] for _, _, k in inside)
            expected_groups = list(_largest(per_fp, 3).items())
            assert [(g.fingerprint, g.count) for g in stats.top_fingerprints] == expected_groups
            for group in stats.top_fingerprints:
                mine = [(at, i) for at, i, k in inside if k[3] == group.fingerprint]
                assert group.first_seen == min(at for at, _ in mine)
                assert group.last_seen == max(at for at, _ in mine)
                assert group.message == f"m{_latest(mine)}"


def _latest(mine: list[tuple[dt.datetime, int]]) -> int:
    """The index of the group's latest attempt: the last to fail, the last recorded among equals."""
    return max(mine)[1]


def _largest(counts: Counter[str], limit: int | None = None) -> dict[str, int]:
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return dict(ordered[:limit] if limit is not None else ordered)
