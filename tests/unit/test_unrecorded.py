"""Failures kept in Redis while the database is unreachable (:mod:`function_runner.wrapper.unrecorded`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
import redis as redis_lib
import sqlalchemy as sa
from celery import Celery

from error_handling.categories import Category
from error_handling.classification import Classification
from error_handling.exceptions import PermanentError
from error_handling.persistence.db import make_engine
from error_handling.persistence.reports import FailureReport, TaskPayload
from error_handling.redaction import Redactor
from error_handling.sealing import generate_key, seal_secrets
from function_runner.app import create_app
from function_runner.dispatch.dispatcher import Dispatcher
from function_runner.dispatch.unrecorded import UnrecordedRole
from function_runner.migrate import upgrade
from function_runner.runtime import runtime_for
from function_runner.settings import Settings
from function_runner.wrapper import unrecorded
from function_runner.wrapper.task import RecoverableTask

KEY = generate_key()

REPORT = FailureReport(
    task_id="t-1",
    attempt=2,
    payload=TaskPayload(
        task_name="app.charge",
        args=[1, {"sealed": "gAAAA..."}],
        kwargs={"order": "o-9"},
        options={"routing_key": "celery"},
        headers={},
        queue="celery",
        root_id="t-0",
    ),
    classification=Classification(
        Category.TRANSIENT, "rate_limited", retry_after=1.5, fingerprint="ab12", exc_type="httpx.HTTPStatusError"
    ),
    traceback="Traceback ...",
    failed_at=dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC),
    started_at=dt.datetime(2026, 11, 24, 11, 59, 59, tzinfo=dt.UTC),
    worker="w1@host",
    run_id=7,
    retry_allowed=False,
)


def runtime_with(client: Any) -> Any:
    def no_redis() -> Any:
        raise RuntimeError("no Redis")

    return SimpleNamespace(shared_redis=SimpleNamespace(require=(lambda: client) if client is not None else no_redis))


def test_a_report_survives_its_json_form_whole() -> None:
    assert unrecorded.decode(unrecorded.encode(REPORT)) == REPORT


def test_a_kept_failure_is_found_by_task_and_attempt_until_forgotten() -> None:
    client = fakeredis.FakeRedis()
    runtime = runtime_with(client)
    assert unrecorded.take(runtime, "t-1", 2) is None
    assert unrecorded.keep(runtime, REPORT)
    assert unrecorded.take(runtime, "t-1", 1) is None  # another attempt
    assert unrecorded.take(runtime, "t-1", 2) == REPORT
    assert 0 < client.ttl("fr:unrecorded:t-1:2") <= unrecorded.TTL
    unrecorded.forget(runtime, "t-1", 2)
    assert unrecorded.take(runtime, "t-1", 2) is None


def test_without_redis_nothing_is_kept_and_nothing_fails() -> None:
    runtime = runtime_with(None)
    assert not unrecorded.keep(runtime, REPORT)
    assert unrecorded.take(runtime, "t-1", 2) is None
    unrecorded.forget(runtime, "t-1", 2)


def test_an_unreadable_kept_failure_is_ignored() -> None:
    client = fakeredis.FakeRedis()
    client.set("fr:unrecorded:t-1:2", b"{not json")
    assert unrecorded.take(runtime_with(client), "t-1", 2) is None


def test_the_dispatch_token_of_a_run_is_kept_with_its_failure(redis_url: str) -> None:
    client = redis_lib.Redis.from_url(redis_url)
    runtime = runtime_with(client)
    assert unrecorded.keep(runtime, REPORT, token="tok-7")
    (found,) = unrecorded.overdue(runtime, unseen_for=0)
    assert found == unrecorded.Kept(REPORT, token="tok-7")
    assert unrecorded.take(runtime, "t-1", 2) == REPORT


def test_a_kept_failure_is_overdue_once_no_delivery_was_seen_for_the_delay(redis_url: str) -> None:
    client = redis_lib.Redis.from_url(redis_url)
    runtime = runtime_with(client)
    kept_at = time.time()
    assert unrecorded.keep(runtime, REPORT)
    assert client.zscore(unrecorded.SEEN, "t-1:2") == pytest.approx(kept_at, abs=5)
    assert unrecorded.overdue(runtime, unseen_for=60, now=kept_at + 30) == []

    client.zadd(unrecorded.SEEN, {"t-1:2": kept_at - 100})  # a redelivery seen it long ago...
    assert unrecorded.take(runtime, "t-1", 2) == REPORT  # ...and another one now
    assert client.zscore(unrecorded.SEEN, "t-1:2") >= kept_at
    assert unrecorded.overdue(runtime, unseen_for=60, now=kept_at + 30) == []

    later = kept_at + 120
    assert [k.report for k in unrecorded.overdue(runtime, unseen_for=60, now=later)] == [REPORT]
    # taken: marked seen now, so it is not overdue again until the delay passes once more
    assert unrecorded.overdue(runtime, unseen_for=60, now=later + 1) == []
    assert len(unrecorded.overdue(runtime, unseen_for=60, now=later + 61)) == 1


def test_only_one_of_two_racing_dispatchers_takes_an_overdue_failure(redis_url: str) -> None:
    runtimes = [runtime_with(redis_lib.Redis.from_url(redis_url)) for _ in range(8)]
    for attempt in range(1, 51):
        unrecorded.keep(runtimes[0], dataclasses.replace(REPORT, attempt=attempt))
    later = time.time() + 120
    with ThreadPoolExecutor(max_workers=8) as pool:
        taken = list(pool.map(lambda r: unrecorded.overdue(r, unseen_for=60, now=later, limit=10), runtimes * 2))
    attempts = [kept.report.attempt for batch in taken for kept in batch]
    assert sorted(attempts) == list(range(1, 51))  # each once, none left out


def test_forgotten_and_expired_failures_leave_the_index(redis_url: str) -> None:
    client = redis_lib.Redis.from_url(redis_url)
    runtime = runtime_with(client)
    unrecorded.keep(runtime, REPORT)
    unrecorded.forget(runtime, "t-1", 2)
    assert client.zcard(unrecorded.SEEN) == 0

    unrecorded.keep(runtime, REPORT)
    client.delete("fr:unrecorded:t-1:2")  # past its TTL
    assert unrecorded.overdue(runtime, unseen_for=0, now=time.time() + 1) == []
    assert client.zcard(unrecorded.SEEN) == 0


def test_a_failure_that_could_not_be_published_is_overdue_again_at_once(redis_url: str) -> None:
    runtime = runtime_with(redis_lib.Redis.from_url(redis_url))
    unrecorded.keep(runtime, REPORT)
    later = time.time() + 120
    taken = unrecorded.overdue(runtime, unseen_for=60, now=later)
    assert unrecorded.overdue(runtime, unseen_for=60, now=later) == []
    unrecorded.overdue_again(runtime, taken)
    assert unrecorded.overdue(runtime, unseen_for=60, now=later) == taken


def test_without_redis_nothing_is_overdue() -> None:
    runtime = runtime_with(None)
    assert unrecorded.overdue(runtime, unseen_for=0) == []
    unrecorded.overdue_again(runtime, [unrecorded.Kept(REPORT)])


# -- the copy of a lost message: published by the dispatcher, recorded by the wrapper --------------


@pytest.fixture
def app(tmp_path: Path, redis_url: str) -> Iterator[Celery]:
    """An app on a migrated SQLite database, the in-memory broker and the tests' Redis."""
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    upgrade(url)
    settings = Settings(
        database_url=url,
        broker_url="memory://",
        redis_url=redis_url,
        data_dir=tmp_path,
        encryption_key=KEY,
        storage_retry_timeout=0,
        unrecorded_redeliver_after=60,
    )
    app = create_app(settings, main="fr_unit_unrecorded")
    published(app)  # the in-memory broker is the process's: drop what an earlier test left in its queue
    yield app
    runtime_for(app).close()
    app.close()


def failing_task(app: Celery, ran: list[str]) -> Any:
    @app.task(base=RecoverableTask, bind=True, name="unit.charge", shared=False)  # not in later apps
    def charge(self: RecoverableTask, order: str, api_key: str = "") -> None:
        ran.append(self.request.id)
        raise PermanentError(f"card declined for {order}", reason="card_declined")

    return charge


def kept_report(app: Celery, *, task_id: str, attempt: int = 1, run_id: int | None = None) -> FailureReport:
    """The report the wrapper keeps for a failure of ``unit.charge`` while the database is away."""
    sealer = runtime_for(app).sealer
    return dataclasses.replace(
        REPORT,
        task_id=task_id,
        attempt=attempt,
        run_id=run_id,
        retry_allowed=True,
        payload=TaskPayload(
            task_name="unit.charge",
            args=["o-1"],
            kwargs=seal_secrets({"api_key": "sk-live-0123456789abcdef"}, redactor=Redactor(), sealer=sealer),
            options={"routing_key": "celery", "priority": 3},
            headers={"tenant": "acme"},
            queue="celery",
            root_id=task_id,
        ),
        classification=Classification(
            Category.PERMANENT, "card_declined", message="card declined for o-1", exc_type="PermanentError"
        ),
    )


def published(app: Celery) -> list[Any]:
    """The messages waiting in the in-memory broker's queue, taken off it."""
    messages = []
    with app.connection_for_read() as connection, connection.SimpleQueue("celery") as queue:
        while True:
            try:
                message = queue.get(block=False)
            except queue.Empty:
                return messages
            message.ack()
            messages.append(message)


def test_the_dispatcher_publishes_a_copy_of_a_lost_message_with_its_secrets_and_identity(app: Celery) -> None:
    runtime = runtime_for(app)
    report = kept_report(app, task_id="lost-1", attempt=2, run_id=41)
    unrecorded.keep(runtime, report, token="tok-41")
    dispatcher = Dispatcher(app)
    assert dispatcher.role(UnrecordedRole).redeliver(now=time.time() + 30) == 0  # seen recently: it may come back
    assert dispatcher.role(UnrecordedRole).redeliver(now=time.time() + 61) == 1

    (message,) = published(app)
    headers = message.headers
    assert (headers["task"], headers["id"], headers["root_id"]) == ("unit.charge", "lost-1", "lost-1")
    assert (headers["fr_kept"], headers["fr_attempt"], headers["fr_run"], headers["fr_token"]) == (1, 2, 41, "tok-41")
    assert headers["tenant"] == "acme"
    args, kwargs, _ = message.decode()
    assert (args, kwargs) == (["o-1"], {"api_key": "sk-live-0123456789abcdef"})  # unsealed for the task
    assert message.properties.get("priority") == 3
    assert dispatcher.role(UnrecordedRole).redeliver(now=time.time() + 62) == 0  # not again until unseen again


def test_a_kept_failure_recorded_meanwhile_is_forgotten_not_published(app: Celery) -> None:
    runtime = runtime_for(app)
    ran: list[str] = []
    charge = failing_task(app, ran)
    charge.apply(args=["o-1"], task_id="late-1")  # the redelivery came back and recorded it
    unrecorded.keep(runtime, kept_report(app, task_id="late-1"))
    assert Dispatcher(app).role(UnrecordedRole).redeliver(now=time.time() + 61) == 0
    assert published(app) == []
    assert unrecorded.take(runtime, "late-1", 1) is None


def test_the_copy_records_the_kept_failure_without_running_the_body(app: Celery, tmp_path: Path) -> None:
    runtime = runtime_for(app)
    ran: list[str] = []
    charge = failing_task(app, ran)
    unrecorded.keep(runtime, kept_report(app, task_id="copy-1"))

    result = charge.apply(args=["o-1"], task_id="copy-1", headers={"fr_kept": 1, "fr_attempt": 1})
    assert result.state == "FAILURE"
    assert ran == []
    engine = make_engine(f"sqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as conn:
        attempts = conn.execute(sa.text("SELECT attempt, reason, decision FROM fr_failed_attempts")).all()
        letters = conn.execute(sa.text("SELECT task_id FROM fr_dead_letters")).all()
    engine.dispose()
    assert [tuple(a) for a in attempts] == [(1, "card_declined", "dead_letter")]
    assert [tuple(d) for d in letters] == [("copy-1",)]
    assert unrecorded.take(runtime, "copy-1", 1) is None

    # the original redelivery, or a second copy, arriving after: a duplicate, skipped
    again = charge.apply(args=["o-1"], task_id="copy-1", headers={"fr_kept": 1, "fr_attempt": 1})
    assert again.state == "IGNORED"
    assert ran == []
