"""The replay jobs role: bulk replay (and bulk discard), one batch of one job at a time.

A discard job's batch is one transaction (:mod:`error_handling.persistence.discard_batches`).

Each dead letter of a job is published under a task id derived from the job and the dead letter, with
the headers of a single replay. A batch claims its letters and records the in-flight bound (commit),
publishes, then marks them replayed (commit); a dispatcher holds a job's lock while it works on it
(:func:`~error_handling.persistence.replay_jobs.job_lock`), and one that died mid-batch is recovered by :mod:`.replay_recovery`. The job's
``next_batch_at`` keeps to its rate across dispatchers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import logging
import math
from collections.abc import Callable
from typing import Any, ClassVar

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence import discard_batches, replay_batches, replay_jobs
from error_handling.persistence.models import JobAction, ReplayJobStatus, utcnow
from error_handling.sealing import SealedValueError, Sealer
from function_runner.dispatch.replay_recovery import already_published
from function_runner.dispatch.role import Role
from function_runner.events import log_event
from function_runner.replay.message import ReplayMessage, build_message, publish_message
from function_runner.services import InTransaction

__all__ = ["BatchResult", "BulkReplayer", "batch_limit", "next_batch_at"]

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
    #: Letters a discard job discarded.
    discarded: int = 0
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


@dataclasses.dataclass(kw_only=True, eq=False)
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

    app: Celery = dataclasses.field(kw_only=False)
    in_transaction: InTransaction
    engine: Callable[[], Engine]
    sealer: Sealer
    batch_size: int
    pass_interval: float

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
            with replay_jobs.job_lock(self.engine(), job_id) as held:
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

    def _plan(self, session: Session, job_id: int, start: dt.datetime) -> _Plan | BatchResult | None:
        """Lock the job and claim its next batch (the first transaction); None when it has no work. A
        discard job's batch is done here, whole: its result."""
        job = replay_jobs.lock_job(session, job_id=job_id)
        if job is None or not replay_jobs.has_work(job):
            return None
        if job.action is JobAction.DISCARD:
            batch = discard_batches.discard_batch(session, job=job, limit=max(1, self.batch_size), now=start)
            log_event("replay_job.batch", job=job.id, action=job.action.value, discarded=batch.discarded)
            if batch.done:
                log_event("replay_job.done", job=job.id, discarded=job.discarded)
            return BatchResult(job_id=job.id, discarded=batch.discarded, done=batch.done)
        limit = batch_limit(self.batch_size, job.rate_per_second, self.pass_interval)
        claimed = replay_batches.begin_batch(session, job=job, limit=limit, now=start)
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
        if isinstance(plan, BatchResult):
            return plan
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
            replay_batches.finish_batch(
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
        already = already_published(self.app, self.in_transaction, to_publish) if plan.recovering else set()
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
