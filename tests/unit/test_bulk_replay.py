"""Bulk replay jobs on SQLite and kombu's in-memory broker: batches, resumption after a crash without
publishing twice, dry runs, the rate limit. Every publish is read back from the broker."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from fastapi.testclient import TestClient
from kombu import Connection, Message
from kombu.simple import SimpleQueue

from api.celery_dep import close_celery
from api.main import API_PREFIX
from api.main import create_app as create_api
from error_handling.persistence import dead_letters, replay_batches, replay_jobs
from error_handling.persistence.db import transaction
from error_handling.persistence.models import (
    DeadLetterRecord,
    DeadLetterStatus,
    ReplayJobRecord,
    ReplayJobStatus,
    ReplayRequestRecord,
)
from error_handling.sealing import generate_key
from function_runner.app import create_app
from function_runner.dispatch.replay_jobs import BulkReplayer, batch_limit, next_batch_at
from function_runner.replay.single import replay_dead_letter
from function_runner.runtime import Runtime, runtime_for
from function_runner.settings import Settings
from function_runner.wrapper import headers as H
from tests.support.api_client import local_client
from tests.support.dead_letter_seed import seed_dead_letter

T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
SECRET = "pw-bulk-0123-secret-value"


class Crash(BaseException):
    """Stands for a dispatcher killed in the middle of a batch: no ``except Exception`` handler runs."""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'bulk.sqlite3'}",
        broker_url="memory://",
        encryption_key=generate_key(),
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[Celery]:
    from function_runner.migrate import upgrade

    upgrade(settings.effective_database_url)
    celery = create_app(settings, main="fr_unit_bulk_replay")
    yield celery
    runtime_for(celery).close()
    celery.close()


@pytest.fixture
def runtime(app: Celery) -> Runtime:
    return runtime_for(app)


@pytest.fixture
def queue(app: Celery) -> Iterator[SimpleQueue]:
    with app.connection_for_read() as connection:
        simple: SimpleQueue = Connection.SimpleQueue(connection, "celery")
        simple.clear()  # the memory transport is shared by the whole process
        yield simple
        simple.clear()
        simple.close()


def drain(queue: SimpleQueue) -> list[Message]:
    found = []
    while queue.qsize():
        message = queue.get(timeout=1)
        message.ack()
        found.append(message)
    return found


def seed_many(runtime: Runtime, count: int, *, task_name: str = "app.charge", start: int = 0) -> list[int]:
    return [
        seed_dead_letter(
            runtime.sessions,
            f"orig-{task_name}-{i}",
            sealer=runtime.sealer,
            at=T0 + dt.timedelta(seconds=i),
            task_name=task_name,
            args=[i],
            kwargs={"password": SECRET},
        )
        for i in range(start, start + count)
    ]


def new_job(runtime: Runtime, *, rate: float | None = None, **flt: Any) -> int:
    with transaction(runtime.sessions) as session:
        job = replay_jobs.create_job(
            session, flt=replay_jobs.DeadLetterFilter(**flt), rate_per_second=rate, now=T0 + dt.timedelta(hours=1)
        )
        return job.id


def job_row(runtime: Runtime, job_id: int) -> ReplayJobRecord:
    with runtime.sessions() as session:
        return replay_jobs.get_job(session, job_id=job_id)


def _replayer(app: Celery, runtime: Runtime, *, batch_size: int) -> BulkReplayer:
    return BulkReplayer(
        app,
        in_transaction=runtime.in_transaction,
        engine=lambda: runtime.engine,
        sealer=runtime.sealer,
        batch_size=batch_size,
        pass_interval=1.0,
    )


def run_to_completion(replayer: BulkReplayer, *, limit: int = 100) -> None:
    for _ in range(limit):
        batch = replayer.process_batch()
        if batch is None or batch.done:
            return
    raise AssertionError("the job did not finish")


def crash_after_publishing(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Make the dispatcher "die" after publishing ``count`` more messages (undo with ``monkeypatch.undo``)."""
    real_publish = BulkReplayer._publish
    calls = {"n": 0}

    def dies(self: BulkReplayer, message: Any, task_id: str, producer: Any) -> None:
        if calls["n"] == count:
            raise Crash("killed")
        calls["n"] += 1
        real_publish(self, message, task_id, producer)

    monkeypatch.setattr(BulkReplayer, "_publish", dies)


def replayed_of(messages: list[Message]) -> Counter[int]:
    return Counter(int(m.headers[H.REPLAY_OF]) for m in messages)


def test_a_job_replays_every_matching_pending_letter_once_in_batches(
    app: Celery, runtime: Runtime, queue: SimpleQueue
) -> None:
    wanted = seed_many(runtime, 7)
    other = seed_many(runtime, 2, task_name="app.other", start=100)
    job_id = new_job(runtime, task_name="app.charge")
    assert job_row(runtime, job_id).total == 7

    replayer = _replayer(app, runtime, batch_size=3)
    first = replayer.process_batch()
    assert first is not None and (first.published, first.done) == (3, False)
    assert job_row(runtime, job_id).status is ReplayJobStatus.RUNNING
    run_to_completion(replayer)

    messages = drain(queue)
    assert replayed_of(messages) == Counter(wanted)  # each once, and nothing of the other task
    assert [m.payload[0] for m in messages] == [[i] for i in range(7)]  # oldest first
    assert all(m.payload[1] == {"password": SECRET} for m in messages)  # secrets unsealed
    job = job_row(runtime, job_id)
    assert (job.status, job.published, job.skipped, job.failed) == (ReplayJobStatus.DONE, 7, 0, 0)
    assert job.finished_at is not None and job.inflight_until_id is None
    with runtime.sessions() as s:
        letters = {dl.id: dl for dl in s.query(DeadLetterRecord)}
        requests = {r.dead_letter_id: r for r in s.query(ReplayRequestRecord)}
    for letter_id in wanted:
        assert letters[letter_id].status is DeadLetterStatus.REPLAYED
        assert requests[letter_id].idempotency_key == replay_jobs.idempotency_key(job_id, letter_id)
        assert letters[letter_id].replayed_task_id == requests[letter_id].task_id
    assert {m.headers["id"] for m in messages} == {requests[i].task_id for i in wanted}
    assert all(letters[i].status is DeadLetterStatus.PENDING for i in other)


def test_a_batch_cut_short_is_resumed_without_publishing_any_letter_twice(
    app: Celery, runtime: Runtime, queue: SimpleQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = seed_many(runtime, 10)
    job_id = new_job(runtime)
    replayer = _replayer(app, runtime, batch_size=4)
    assert replayer.process_batch() is not None  # letters 0-3 published and recorded

    crash_after_publishing(monkeypatch, 2)
    with pytest.raises(Crash):
        replayer.process_batch()  # letters 4 and 5 published, 6 and 7 not; nothing recorded
    monkeypatch.undo()
    cut = job_row(runtime, job_id)
    assert cut.published == 4 and cut.inflight_until_id == wanted[7]  # the batch is still in flight
    assert claims(runtime) == {i: job_id for i in wanted[4:8]}  # claimed until the batch is finished
    for letter_id in (wanted[4], wanted[7]):  # published already, or not yet: nobody else may take it
        with pytest.raises(dead_letters.BeingReplayed, match=f"replay job {job_id}"):
            replay_dead_letter(app, runtime, dead_letter_id=letter_id, force=True)
        with pytest.raises(dead_letters.BeingReplayed), transaction(runtime.sessions) as s:
            dead_letters.discard(s, dead_letter_id=letter_id, reason="no", now=T0)
    other = new_job(runtime)  # an overlapping job skips the claimed letters
    with transaction(runtime.sessions) as s:
        job = replay_jobs.lock_job(s, job_id=other)
        assert job is not None
        plan = replay_batches.begin_batch(s, job=job, limit=100, now=T0 + dt.timedelta(hours=2))
    assert [letter.id for letter in plan.letters] == wanted[8:]
    with transaction(runtime.sessions) as s:  # (cancelled before it publishes: its claims go back)
        replay_jobs.fail_job(s, job_id=other, error="stopped by the test", now=T0 + dt.timedelta(hours=2))

    resumed = _replayer(app, runtime, batch_size=4)  # another dispatcher
    batch = resumed.process_batch()
    assert batch is not None and (batch.published, batch.recovered) == (4, 2)
    run_to_completion(resumed)

    assert replayed_of(drain(queue)) == Counter(wanted)  # each exactly once
    job = job_row(runtime, job_id)
    assert (job.status, job.published) == (ReplayJobStatus.DONE, 10)
    assert claims(runtime) == {}


def claims(runtime: Runtime) -> dict[int, int | None]:
    """The letters claimed by a job (``replaying``): ``{dead letter id: job id}``."""
    with runtime.sessions() as s:
        return {
            dl.id: dl.replay_job_id
            for dl in s.query(DeadLetterRecord).filter(DeadLetterRecord.status == DeadLetterStatus.REPLAYING)
        }


def test_a_job_that_fails_mid_batch_gives_its_claimed_letters_back(
    app: Celery, runtime: Runtime, queue: SimpleQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = seed_many(runtime, 4)
    job_id = new_job(runtime)
    real_publish = BulkReplayer._publish
    calls = {"n": 0}

    def breaks(self: BulkReplayer, message: Any, task_id: str, producer: Any) -> None:
        if calls["n"] == 2:
            raise KeyError("schema drift")  # not the database, not the broker: the job fails
        calls["n"] += 1
        real_publish(self, message, task_id, producer)

    monkeypatch.setattr(BulkReplayer, "_publish", breaks)
    with pytest.raises(KeyError):
        _replayer(app, runtime, batch_size=10).process_batch()
    job = job_row(runtime, job_id)
    assert job.status is ReplayJobStatus.FAILED and job.inflight_until_id is None
    assert claims(runtime) == {}  # no letter is stranded as replaying
    with runtime.sessions() as s:
        statuses = {dl.id: (dl.status, dl.replay_job_id) for dl in s.query(DeadLetterRecord)}
    assert statuses == {i: (DeadLetterStatus.PENDING, None) for i in wanted}
    assert len(drain(queue)) == 2  # what was published before the failure (at least once, never lost)


def test_letters_not_replayable_are_skipped_and_replayed_ones_are_left_alone(
    app: Celery, runtime: Runtime, queue: SimpleQueue
) -> None:
    (good,) = seed_many(runtime, 1)
    broken = seed_dead_letter(
        runtime.sessions, "broken", sealer=runtime.sealer, at=T0 + dt.timedelta(seconds=5), replayable=False
    )
    job_id = new_job(runtime)
    run_to_completion(_replayer(app, runtime, batch_size=10))
    assert replayed_of(drain(queue)) == Counter([good])
    job = job_row(runtime, job_id)
    assert (job.published, job.skipped, job.status) == (1, 1, ReplayJobStatus.DONE)
    with runtime.sessions() as s:
        assert s.get(DeadLetterRecord, broken).status is DeadLetterStatus.PENDING  # type: ignore[union-attr]

    second = new_job(runtime)  # only the broken one is pending now
    assert job_row(runtime, second).total == 1
    run_to_completion(_replayer(app, runtime, batch_size=10))
    assert drain(queue) == []


def test_the_rate_limit_bounds_batches_and_spaces_them() -> None:
    assert batch_limit(500, None, 1.0) == 500
    assert batch_limit(500, 20.0, 1.0) == 20
    assert batch_limit(500, 20.0, 0.2) == 4
    assert batch_limit(500, 0.1, 1.0) == 1
    assert batch_limit(10, 10_000.0, 1.0) == 10
    assert next_batch_at(T0, 20, None) is None
    assert next_batch_at(T0, 20, 10.0) == T0 + dt.timedelta(seconds=2)
    assert next_batch_at(T0, 0, 10.0) is None


def test_a_rate_limited_job_waits_for_its_next_batch(app: Celery, runtime: Runtime, queue: SimpleQueue) -> None:
    seed_many(runtime, 5)
    job_id = new_job(runtime, rate=2.0)
    replayer = _replayer(app, runtime, batch_size=100)
    start = dt.datetime.now(dt.UTC)
    first = replayer.process_batch(now=start)
    assert first is not None and first.published == 2  # ceil(2/s * 1 s)
    assert replayer.process_batch(now=start + dt.timedelta(seconds=0.5)) is None  # not due: 2 msgs at 2/s
    assert job_row(runtime, job_id).next_batch_at == start + dt.timedelta(seconds=1)
    second = replayer.process_batch(now=start + dt.timedelta(seconds=1))
    assert second is not None and second.published == 2
    assert len(drain(queue)) == 4


@pytest.fixture
def api(settings: Settings, app: Celery) -> Iterator[TestClient]:
    api_app = create_api(settings)
    with local_client(api_app) as client:
        yield client
    close_celery(api_app)
    api_app.state.engine.dispose()


def test_the_api_dry_run_publishes_nothing_and_a_job_shows_its_progress(
    api: TestClient, app: Celery, runtime: Runtime, queue: SimpleQueue
) -> None:
    letters = seed_many(runtime, 3)
    seed_many(runtime, 1, task_name="app.other", start=50)
    base = f"{API_PREFIX}/dead-letters"

    dry = api.post(f"{base}/replay", json={"task_name": "app.charge", "dry_run": True, "sample_size": 2})
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert (body["dry_run"], body["count"]) == (True, 3)
    assert [item["id"] for item in body["sample"]] == letters[:2]
    assert SECRET not in dry.text
    assert drain(queue) == []
    with runtime.sessions() as s:
        assert s.query(ReplayJobRecord).count() == 0

    created = api.post(f"{base}/replay", json={"task_name": "app.charge", "rate_per_second": 100})
    assert created.status_code == 202, created.text
    job = created.json()
    assert (job["status"], job["total"], job["published"], job["rate_per_second"]) == ("pending", 3, 0, 100.0)
    assert job["filter"] == {"task_name": "app.charge"}

    run_to_completion(_replayer(app, runtime, batch_size=10))
    progress = api.get(f"{base}/replays/{job['id']}")
    assert progress.status_code == 200
    assert (progress.json()["status"], progress.json()["published"]) == ("done", 3)
    assert replayed_of(drain(queue)) == Counter(letters)

    missing = api.get(f"{base}/replays/999")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "replay_job_not_found"
    for bad in ({"rate_per_second": 0}, {"rate_per_second": 10_001}, {"status": "replayed"}, {"since": "2026-01-01"}):
        refused = api.post(f"{base}/replay", json=bad)
        assert refused.status_code == 422, bad
        assert refused.json()["error"]["code"] == "validation_failed"


def test_a_cancelled_job_finishes_its_batch_in_flight_and_starts_no_other(
    api: TestClient, app: Celery, runtime: Runtime, queue: SimpleQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = seed_many(runtime, 10)
    job_id = new_job(runtime)
    replayer = _replayer(app, runtime, batch_size=4)
    assert replayer.process_batch() is not None  # letters 0-3

    crash_after_publishing(monkeypatch, 1)
    with pytest.raises(Crash):
        replayer.process_batch()  # letter 4 published, 5-7 not, the batch in flight
    monkeypatch.undo()

    cancelled = api.post(f"{API_PREFIX}/dead-letters/replays/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["status"], cancelled.json()["published"]) == ("cancelled", 4)

    batch = replayer.process_batch()  # only the batch in flight is finished
    assert batch is not None and (batch.published, batch.recovered) == (4, 1)
    assert replayer.process_batch() is None  # nothing more
    job = job_row(runtime, job_id)
    assert (job.status, job.published, job.inflight_until_id) == (ReplayJobStatus.CANCELLED, 8, None)
    assert replayed_of(drain(queue)) == Counter(wanted[:8])  # each once, and not the last two
    with runtime.sessions() as s:
        statuses = {dl.id: dl.status for dl in s.query(DeadLetterRecord)}
    assert [statuses[i] for i in wanted] == [DeadLetterStatus.REPLAYED] * 8 + [DeadLetterStatus.PENDING] * 2

    again = api.post(f"{API_PREFIX}/dead-letters/replays/{job_id}/cancel")
    assert again.status_code == 409 and again.json()["error"]["code"] == "replay_job_finished"
    missing = api.post(f"{API_PREFIX}/dead-letters/replays/999/cancel")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "replay_job_not_found"


def test_a_job_that_fails_for_an_unexpected_reason_stops_with_the_error(
    app: Celery, runtime: Runtime, queue: SimpleQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_many(runtime, 3)
    job_id = new_job(runtime)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise KeyError("schema drift")

    monkeypatch.setattr("function_runner.dispatch.replay_jobs.build_message", broken)
    replayer = _replayer(app, runtime, batch_size=10)
    with pytest.raises(KeyError):
        replayer.process_batch()
    job = job_row(runtime, job_id)
    assert job.status is ReplayJobStatus.FAILED and "KeyError" in (job.error or "")
    assert replayer.process_batch() is None  # it is not tried again at every pass
    assert drain(queue) == []


def test_finishing_a_batch_marks_the_letters_it_claimed_and_gives_the_unpublished_back(runtime: Runtime) -> None:
    first, second, third = seed_many(runtime, 3)
    job_id = new_job(runtime, task_name="app.charge")
    now = T0 + dt.timedelta(hours=2)
    with transaction(runtime.sessions) as s:
        job = replay_jobs.lock_job(s, job_id=job_id, skip_locked=False)
        assert job is not None
        plan = replay_batches.begin_batch(s, job=job, limit=10, now=now)
    assert [letter.id for letter in plan.letters] == [first, second, third]
    with runtime.sessions() as s:
        claimed = {dl.id: (dl.status, dl.replay_job_id) for dl in s.query(DeadLetterRecord)}
    assert claimed == {i: (DeadLetterStatus.REPLAYING, job_id) for i in (first, second, third)}
    published = {i: replay_jobs.replay_task_id(job_id, i) for i in (first, second)}  # the third failed to unseal
    with transaction(runtime.sessions) as s:
        job = replay_jobs.lock_job(s, job_id=job_id, skip_locked=False)
        assert job is not None
        replay_batches.finish_batch(s, job=job, published=published, skipped=0, failed=1, next_batch_at=None, now=now)
    with runtime.sessions() as s:
        letters = {dl.id: dl for dl in s.query(DeadLetterRecord)}
        requests = {r.dead_letter_id: r for r in s.query(ReplayRequestRecord)}
    for letter_id in (first, second):
        letter, request = letters[letter_id], requests[letter_id]
        assert (letter.status, letter.replayed_task_id, letter.replayed_at, letter.replay_job_id) == (
            DeadLetterStatus.REPLAYED,
            published[letter_id],
            now,
            job_id,
        )
        assert (request.task_id, request.forced) == (published[letter_id], False)
        assert request.idempotency_key == replay_jobs.idempotency_key(job_id, letter_id)
    assert (letters[third].status, letters[third].replay_job_id) == (DeadLetterStatus.PENDING, None)
    assert third not in requests
    assert (job_row(runtime, job_id).published, job_row(runtime, job_id).failed) == (2, 1)


def test_a_dispatcher_dying_between_claim_and_publish_leaves_no_letter_stranded(
    app: Celery, runtime: Runtime, queue: SimpleQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    wanted = seed_many(runtime, 3)
    job_id = new_job(runtime)
    crash_after_publishing(monkeypatch, 0)
    with pytest.raises(Crash):
        _replayer(app, runtime, batch_size=10).process_batch()  # claimed, nothing published
    monkeypatch.undo()
    assert claims(runtime) == {i: job_id for i in wanted} and drain(queue) == []

    run_to_completion(_replayer(app, runtime, batch_size=10))  # the next pass, any dispatcher
    assert replayed_of(drain(queue)) == Counter(wanted)
    assert claims(runtime) == {}
    assert job_row(runtime, job_id).status is ReplayJobStatus.DONE
