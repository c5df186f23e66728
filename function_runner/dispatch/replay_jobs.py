"""Bulk replay: the dispatcher processes replay jobs one batch at a time.

Each dead letter of a job is published under a task id derived from the job and the dead letter
(:func:`~error_handling.persistence.replay_jobs.replay_task_id`), with the headers of a single replay
(``fr_replay_of``). A batch is: select and record the in-flight bound (commit), publish, mark replayed
and advance (commit); see :mod:`error_handling.persistence.replay_jobs`.

Exactly once: while a dispatcher works on a job it holds a lock on it (a Postgres session-level advisory
lock, released by the server when the dispatcher dies; SQLite serialises its writers and runs one
dispatcher). The letters of a batch are claimed (``replaying``, with the job's id) in the transaction
that selects them, so a single replay, a discard or an overlapping job cannot take them while they are
published. A dispatcher that dies mid-batch leaves the in-flight bound and the claims: the next one
re-selects the letters the job claimed and asks the broker which of their task ids it already holds
(Redis: the queues' lists; and ``fr_tasks`` for copies a worker already ran and saw fail) and publishes
only the others. With a broker that cannot be inspected, or when a worker consumed a copy that then
succeeded, the recovery publishes again: at least once, never lost. A job that fails gives its claims
back (``pending``).

Rate limit: the job row holds ``next_batch_at``; after a batch of ``n`` messages it is ``start + n /
rate``, shared by every dispatcher, and a batch holds at most ``ceil(rate * interval)`` messages, so
the rate is never exceeded and no dispatcher sleeps while holding a lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import functools
import json
import logging
import math
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import redis
import sqlalchemy as sa
from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence import replay_jobs
from error_handling.persistence.models import ReplayJobStatus, TaskRecord, utcnow
from error_handling.sealing import SealedValueError, Sealer
from function_runner.dispatch.role import InTransaction, Role
from function_runner.events import log_event
from function_runner.replay.message import ReplayMessage, build_message, publish_message

__all__ = ["BatchResult", "BulkReplayer", "batch_limit", "next_batch_at"]

#: Advisory-lock namespace of replay jobs (Postgres ``pg_try_advisory_lock(namespace, job id)``).
_LOCK_NAMESPACE = 0x6652
#: The longest pause between two batches, in seconds (a day), however low the rate.
MAX_PACING = 86_400.0


class LetterAction(enum.Enum):
    """What a batch does with one dead letter of its job."""

    #: Publish its replay.
    PUBLISH = "publish"
    #: Count it skipped: its payload could not be stored faithfully, so it is not replayable as it is.
    SKIP = "skipped"
    #: Count it failed: its secrets cannot be opened with the configured keys.
    FAIL = "failed"


#: One dead letter of a batch: its id, its replay's task id, its message (to publish) and what to do.
_Item = tuple[int, str, "ReplayMessage | None", LetterAction]


@dataclasses.dataclass
class _Plan:
    """A batch as its first transaction claimed it."""

    recovering: bool
    rate: float | None
    exhausted: bool
    done: bool
    items: list[_Item] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class BatchResult:
    """What one batch did."""

    job_id: int
    published: int = 0
    skipped: int = 0
    failed: int = 0
    #: Letters found already published during a recovery (not published again).
    recovered: int = 0
    done: bool = False


def batch_limit(batch_size: int, rate_per_second: float | None, interval: float) -> int:
    """How many messages one batch may publish: ``batch_size``, fewer under a rate limit."""
    if rate_per_second is None:
        return max(1, batch_size)
    return max(1, min(batch_size, math.ceil(rate_per_second * interval)))


def next_batch_at(start: dt.datetime, published: int, rate_per_second: float | None) -> dt.datetime | None:
    """When the next batch may start so that ``published`` messages since ``start`` keep to the rate."""
    if rate_per_second is None or published <= 0:
        return None
    return start + dt.timedelta(seconds=min(published / rate_per_second, MAX_PACING))


class BulkReplayer(Role):
    """Processes replay jobs of one database, publishing through one Celery app (the replay jobs role).

    Args:
        app: publishes the replays (its broker and routing).
        in_transaction: runs work in a transaction of the database.
        engine: gives the database's engine when a job is locked (Postgres: session-level advisory locks).
        sealer: opens the dead letters' sealed secrets.
        batch_size: messages per batch at most.
        pass_interval: seconds between two passes of the dispatcher (a rate-limited batch holds at most
            ``ceil(rate * pass_interval)`` messages).
    """

    name = "replay_jobs"
    failed_event = "dispatcher.replay_failed"  # a job that cannot progress must not stop the due runs
    failed_level = logging.ERROR
    broker_errors: ClassVar[tuple[type[BaseException], ...]] = (BrokerError, ConnectionError)

    def __init__(
        self,
        app: Celery,
        *,
        in_transaction: InTransaction,
        engine: Callable[[], Engine],
        sealer: Sealer,
        batch_size: int,
        pass_interval: float,
    ) -> None:
        self.app = app
        self.in_transaction = in_transaction
        self.engine = engine
        self.sealer = sealer
        self.batch_size = batch_size
        self.pass_interval = pass_interval

    def run_once(self) -> bool:
        """One batch of one job; busy while the job has more."""
        batch = self.process_batch()
        return batch is not None and not batch.done

    def process_batch(self, *, now: dt.datetime | None = None) -> BatchResult | None:
        """Process one batch of the oldest due job this dispatcher can lock. None when there was none.

        A job whose batch fails with any other error becomes ``failed``, with the error recorded, so a
        job that cannot progress stops instead of failing at every pass; the letters of a batch in
        flight then stay ``pending`` (a new job takes them, and may publish again those that were).

        Raises:
            StorageUnavailable: the database is unreachable (the batch is resumed later).
            kombu OperationalError / ConnectionError: the broker failed (the batch is resumed later).
        """
        start = now or utcnow()
        candidates = self.in_transaction(lambda s: replay_jobs.due_job_ids(s, now=start), patience=0)
        for job_id in candidates:
            with self._job_lock(job_id) as held:
                if held:
                    try:
                        return self._batch(job_id, start)
                    except (StorageUnavailable, BrokerError, ConnectionError, OSError):
                        raise  # the batch is resumed once the database or the broker is back
                    except Exception as exc:
                        error = f"{type(exc).__name__}: {exc}"
                        self.in_transaction(
                            functools.partial(replay_jobs.fail_job, job_id=job_id, error=error, now=utcnow()),
                            patience=0,
                        )
                        log_event("replay_job.failed", level=logging.ERROR, job=job_id, error=error)
                        raise
        return None

    @contextlib.contextmanager
    def _job_lock(self, job_id: int) -> Iterator[bool]:
        engine = self.engine()
        if engine.dialect.name != "postgresql":
            yield True
            return
        connection = engine.connect()
        try:
            held = bool(
                connection.execute(
                    sa.text("SELECT pg_try_advisory_lock(:ns, :id)"), {"ns": _LOCK_NAMESPACE, "id": job_id}
                ).scalar_one()
            )
            connection.commit()
            try:
                yield held
            finally:
                if held:
                    connection.execute(
                        sa.text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": _LOCK_NAMESPACE, "id": job_id}
                    )
                    connection.commit()
        except BaseException:
            connection.invalidate()  # never give a connection that may hold the lock back to the pool
            raise
        finally:
            connection.close()

    def _plan(self, session: Session, job_id: int, start: dt.datetime) -> _Plan | None:
        """Lock the job and claim its next batch (the first transaction); None when it has no work."""
        job = replay_jobs.lock_job(session, job_id=job_id)
        if job is None or not replay_jobs.has_work(job):
            return None
        limit = batch_limit(self.batch_size, job.rate_per_second, self.pass_interval)
        claimed = replay_jobs.begin_batch(session, job=job, limit=limit, now=start)
        plan = _Plan(
            recovering=claimed.recovering,
            rate=job.rate_per_second,
            exhausted=not claimed.recovering and len(claimed.letters) < limit,  # this batch is the last one
            done=job.status is ReplayJobStatus.DONE,
        )
        if plan.done:
            log_event("replay_job.done", job=job.id, published=job.published, skipped=job.skipped)
        for letter in claimed.letters:
            task_id = replay_jobs.replay_task_id(job.id, letter.id)
            if not letter.replayable:
                plan.items.append((letter.id, task_id, None, LetterAction.SKIP))
                continue
            try:
                message = build_message(letter, sealer=self.sealer)
            except SealedValueError:
                plan.items.append((letter.id, task_id, None, LetterAction.FAIL))
                continue
            plan.items.append((letter.id, task_id, message, LetterAction.PUBLISH))
        return plan

    def _batch(self, job_id: int, start: dt.datetime) -> BatchResult | None:
        plan = self.in_transaction(lambda s: self._plan(s, job_id, start), patience=0)
        result = BatchResult(job_id=job_id)
        if plan is not None and plan.done:
            result.done = True
            return result
        if plan is None or (not plan.items and not plan.recovering):
            return None  # locked by another transaction, or no longer active
        published = self._publish_items(plan, result)

        def finish(session: Session) -> None:
            job = replay_jobs.lock_job(session, job_id=job_id, skip_locked=False)
            assert job is not None
            replay_jobs.finish_batch(
                session,
                job=job,
                published=published,
                skipped=result.skipped,
                failed=result.failed,
                next_batch_at=next_batch_at(start, len(plan.items), plan.rate),
                now=utcnow(),
                done=plan.exhausted,
            )
            if plan.exhausted:
                log_event("replay_job.done", job=job.id, published=job.published, skipped=job.skipped)

        self.in_transaction(finish, patience=0)
        result.done = plan.exhausted
        log_event(
            "replay_job.batch",
            job=job_id,
            published=result.published,
            skipped=result.skipped,
            failed=result.failed,
            recovered=result.recovered,
        )
        return result

    def _publish_items(self, plan: _Plan, result: BatchResult) -> dict[int, str]:
        """Publish the batch's replays (a recovery skips those already published); counts go to ``result``.
        Returns the task id of each letter published, by letter id."""
        to_publish = [(t, m) for _, t, m, action in plan.items if action is LetterAction.PUBLISH]
        already = self._already_published(to_publish) if plan.recovering else set()
        published: dict[int, str] = {}
        with self.app.producer_or_acquire() as producer:
            for letter_id, task_id, message, action in plan.items:
                if action is LetterAction.SKIP:
                    result.skipped += 1
                elif action is LetterAction.FAIL:
                    result.failed += 1
                elif task_id in already:
                    result.recovered += 1
                    published[letter_id] = task_id
                else:
                    assert message is not None
                    self._publish(message, task_id, producer)
                    published[letter_id] = task_id
        result.published = len(published)
        return published

    def _publish(self, message: ReplayMessage, task_id: str, producer: Any) -> None:
        publish_message(self.app, message, task_id=task_id, producer=producer)

    def _already_published(self, candidates: list[tuple[str, ReplayMessage | None]]) -> set[str]:
        """Which of these task ids a previous attempt published: found in the broker or in ``fr_tasks``."""
        wanted = {task_id for task_id, _ in candidates}
        if not wanted:
            return set()
        found: set[str] = set()

        def recorded(session: Session) -> set[str]:
            return set(session.execute(sa.select(TaskRecord.task_id).where(TaskRecord.task_id.in_(wanted))).scalars())

        found |= self.in_transaction(recorded, patience=0)
        queues = {self._queue_of(message) for _, message in candidates if message is not None}
        found |= self._in_broker_queues(queues, wanted)
        log_event("replay_job.recovery", candidates=len(wanted), found=len(found))
        return found

    def _queue_of(self, message: ReplayMessage) -> str:
        options = message.options
        queue = options.get("queue") or options.get("routing_key") or message.queue
        return str(queue or self.app.conf.task_default_queue or "celery")

    def _in_broker_queues(self, queues: set[str], wanted: set[str]) -> set[str]:
        """Task ids among ``wanted`` waiting in the broker's queues (Redis and memory; empty elsewhere)."""
        try:
            return self._scan_broker_queues(queues, wanted)
        except redis.RedisError as exc:  # unsure what was published, so publish nothing now
            raise ConnectionError(f"cannot inspect the broker's queues: {type(exc).__name__}") from exc

    def _scan_broker_queues(self, queues: set[str], wanted: set[str]) -> set[str]:
        found: set[str] = set()
        with self.app.connection_for_write() as connection:
            driver = connection.transport.driver_type
            channel: Any = connection.default_channel
            if driver == "redis":
                with channel.conn_or_acquire() as client:
                    for queue in queues:
                        for key in {channel._q_for_pri(queue, pri) for pri in channel.priority_steps}:
                            found |= {t for raw in client.lrange(key, 0, -1) if (t := _task_id_of(raw)) in wanted}
            elif driver == "memory":
                for queue in queues:
                    found |= {t for raw in list(channel._queue_for(queue).queue) if (t := _task_id_of(raw)) in wanted}
            else:
                log_event("replay_job.recovery_unchecked", level=logging.WARNING, transport=driver)
        return found


def _task_id_of(raw: Any) -> str | None:
    try:
        message = raw if isinstance(raw, dict) else json.loads(raw)
        headers = message.get("headers") or {}
        task_id = headers.get("id") or (message.get("properties") or {}).get("correlation_id")
    except (ValueError, AttributeError):
        return None
    return str(task_id) if task_id else None
