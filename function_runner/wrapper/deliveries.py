"""Poison messages: deliveries that end without an outcome are counted, and a task whose worker died on
too many of them is dead-lettered (``worker_lost``) instead of being run again.

With ``acks_late`` and ``reject_on_worker_lost`` a task whose process dies (a segfault, ``os._exit``,
SIGKILL, the kernel's OOM killer, a hard time limit) goes back to the broker and is delivered again,
so nothing is lost; but a task that kills its worker every time would crash the next worker forever.
Two things see such a death:

- **the worker's main process**, when one of its pool processes dies while running a task: Celery
  hands it a ``WorkerLostError`` (or ``TimeLimitExceeded``); :class:`RecoverableRequest` records the
  lost delivery there and then, with the worker, the process, the signal or exit code, and whether the
  kernel's OOM killer acted in the worker's cgroup (and its memory limit), before the message goes back;
- **the next delivery**, which sees the broker's redelivered flag: it counts the redeliveries of its
  ``(task id, attempt)`` in Redis (an expiring counter; RabbitMQ's quorum queues count them too, in
  ``x-delivery-count``), so a delivery lost with its whole worker (nobody left to report it) is counted
  as well. The wrapper then records the lost deliveries nobody reported and, past the task's limit
  (``max_lost_deliveries``, default 3), dead-letters the task as ``worker_lost`` with its payload,
  without running it.

- **the next execution in the same worker**, when the pool process died before the worker's main
  process had read its acceptance of the job: billiard then gives the job to another pool process
  itself, without telling Celery and without a redelivery. Each pool process marks the task it runs in
  a few bytes of memory shared by the worker's processes (:mod:`~function_runner.wrapper.start_marks`); the next execution
  of the same task finds the mark of the dead process and records the lost delivery.

The success path costs no round trip: a first delivery only writes and clears its mark in shared
memory (a few microseconds), reads nothing from Redis or the database. Lost deliveries are
not attempts of the policy: they use no retry and no retry budget. The wrapper's own requeues (the
database was unreachable when a failure had to be recorded) are counted apart and not taken as losses.
"""

from __future__ import annotations

import enum
import functools
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from billiard.exceptions import WorkerLostError
from celery.exceptions import TimeLimitExceeded

from error_handling.persistence import lost_deliveries
from error_handling.persistence.models import utcnow
from function_runner.events import log_event
from function_runner.wrapper import headers as H
from function_runner.wrapper import start_marks
from function_runner.wrapper.celery_view import RedactingRequest

if TYPE_CHECKING:
    from function_runner.services import SharedState

__all__ = [
    "COUNTER_TTL",
    "PUT_BACK",
    "LossCause",
    "RecoverableRequest",
    "count_redelivery",
    "count_refusal",
    "count_requeue",
    "loss_report",
]


class LossCause(enum.StrEnum):
    """Why a delivery ended without an outcome (the ``cause`` of a lost delivery)."""

    #: The pool process running it died (a crash, a kill, an OOM kill, an exit).
    WORKER_LOST = "worker_lost"
    #: The pool process was killed at the task's hard time limit.
    TIME_LIMIT = "time_limit"
    #: The message came back with no report from the worker that had it (recorded by the repository).
    REDELIVERED = "redelivered"


#: How long the Redis counters of a delivery are kept after their last change (s).
COUNTER_TTL = 7 * 24 * 3600

_STATUS = re.compile(r"(?:signal (?P<signum>\d+)(?: \((?P<signame>\w+)\))?|exitcode (?P<code>-?\d+))")
_CGROUP = Path("/sys/fs/cgroup")


def _oom_kills() -> int | None:
    """How many times the kernel's OOM killer acted in this process's cgroup (v2), if readable."""
    try:
        for line in (_CGROUP / "memory.events").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill":
                return int(value)
    except (OSError, ValueError):
        return None
    return None


def _memory_max() -> str | None:
    try:
        return (_CGROUP / "memory.max").read_text().strip()
    except OSError:
        return None


_oom_seen: int | None = _oom_kills()


def _oom_detail() -> str | None:
    """Whether the OOM killer acted in this worker's cgroup since the last look, with the limit."""
    global _oom_seen
    now = _oom_kills()
    if now is None:
        return None
    before, _oom_seen = _oom_seen, now
    if before is not None and now > before:
        return f"OOM killer acted in the worker's cgroup (memory.max={_memory_max()})"
    return None


def _seconds(exc: BaseException) -> str:
    return str(exc.args[0]) if exc.args else "?"


def loss_report(exc: BaseException, *, worker: str | None, pid: int | None) -> lost_deliveries.LossReport:
    """What a pool process's death tells: the cause, the signal or exit code (billiard's message:
    ``Worker exited prematurely: signal 9 (SIGKILL)`` / ``exitcode 1``), the OOM killer."""
    process = functools.partial(lost_deliveries.LossReport, worker=worker, pid=pid, memory_limit=_oom_detail())
    if isinstance(exc, TimeLimitExceeded):
        return process(cause=LossCause.TIME_LIMIT, detail=f"killed at the hard time limit ({_seconds(exc)} s)")
    message = str(exc)
    found = _STATUS.search(message)
    signal = exit_code = None
    if found and found.group("signum"):
        signal = found.group("signame") or f"signal {found.group('signum')}"
    elif found and found.group("code"):
        exit_code = int(found.group("code"))
    return process(cause=LossCause.WORKER_LOST, signal=signal, exit_code=exit_code, detail=message[:2000])


def _attempt_of(request_dict: dict[str, Any]) -> int:
    nested = request_dict.get("headers")
    value = request_dict.get(H.ATTEMPT) or (nested.get(H.ATTEMPT) if isinstance(nested, dict) else None)
    try:
        return int(value) if value is not None else 1
    except (TypeError, ValueError):
        return 1


class RecoverableRequest(RedactingRequest):
    """The worker-side request of a :class:`~function_runner.wrapper.task.RecoverableTask`: when the pool
    process running it dies, the lost delivery is recorded before the message goes back to the broker
    (see the module's documentation). What it shows of the task is redacted (``RedactingRequest``).
    Everything else is Celery's."""

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
        exc = getattr(exc_info, "exception", None)
        exc = getattr(exc, "exc", exc)  # ExceptionWithTraceback
        died = isinstance(exc, WorkerLostError | TimeLimitExceeded) or (
            isinstance(exc, SystemExit | KeyboardInterrupt) and not (self._already_cancelled or self._already_revoked)
        )
        if died and exc is not None:
            if start_marks.marks is not None and self.worker_pid:
                start_marks.marks.forget(self.worker_pid)  # reported here: not a loss for the next execution to find
            self._report_loss(exc)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    def _report_loss(self, exc: BaseException) -> None:
        if isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) else 1
            exc = WorkerLostError(f"Worker exited prematurely: exitcode {code}.")
        report = loss_report(exc, worker=self.hostname, pid=self.worker_pid)
        task_id, attempt, name = self.id, _attempt_of(self.request_dict), self.name
        try:
            number = self.task.services.in_transaction(
                lambda s: lost_deliveries.report_lost_delivery(
                    s, task_id=task_id, attempt=attempt, task_name=name, report=report, now=utcnow()
                ),
                patience=2,
            )
        except Exception as problem:  # noqa: BLE001 - the next delivery records it without the details
            log_event(
                "delivery.loss_not_recorded", level=logging.WARNING, task_id=task_id, error=type(problem).__name__
            )
            return
        log_event(
            "delivery.lost",
            level=logging.WARNING,
            task_id=task_id,
            task=name,
            attempt=attempt,
            delivery=number,
            cause=report.cause,
            signal=report.signal,
            exit_code=report.exit_code,
            memory=report.memory_limit,
        )


def _counter(shared: SharedState) -> Any | None:
    try:
        return shared.shared_redis.require()
    except RuntimeError:
        return None


def count_redelivery(shared: SharedState, task_id: str, attempt: int, request: Any) -> int:
    """Count this redelivery; return how many deliveries of ``(task_id, attempt)`` before it ended
    without an outcome, as far as the broker's count tells (the wrapper's own requeues left out):
    Redis' counter on a Redis broker, ``x-delivery-count`` on RabbitMQ quorum queues, else 1."""
    client = _counter(shared)
    if client is not None:
        key = f"fr:deliveries:{task_id}:{attempt}"
        try:
            pipe = client.pipeline()
            pipe.hincrby(key, "redelivered", 1)
            pipe.hget(key, "requeued")
            pipe.expire(key, COUNTER_TTL)
            redelivered, requeued, _ = pipe.execute()
            return max(0, int(redelivered) - int(requeued or 0))
        except redis.RedisError as problem:
            log_event("delivery.count_failed", level=logging.WARNING, task_id=task_id, error=type(problem).__name__)
    count = _broker_count(request)
    return count if count is not None else 1


def _broker_count(request: Any) -> int | None:
    """How many times the broker delivered this message before, if it says (``x-delivery-count``)."""
    headers = getattr(request, "headers", None) or {}
    count = headers.get("x-delivery-count") if isinstance(headers, dict) else None
    try:
        return int(count) if count is not None else None
    except (TypeError, ValueError):
        return None


def count_requeue(shared: SharedState, task_id: str, attempt: int) -> None:
    """Note that the wrapper itself gives this delivery back (so its redelivery is not a loss)."""
    client = _counter(shared)
    if client is None:
        return
    key = f"fr:deliveries:{task_id}:{attempt}"
    try:
        pipe = client.pipeline()
        pipe.hincrby(key, "requeued", 1)
        pipe.expire(key, COUNTER_TTL)
        pipe.execute()
    except redis.RedisError as problem:
        log_event("delivery.count_failed", level=logging.WARNING, task_id=task_id, error=type(problem).__name__)


def count_refusal(shared: SharedState, task_id: str, attempt: int) -> int | None:
    """Count a refusal: the database refused what the wrapper records about this delivery (or its
    bookkeeping failed), and the wrapper is about to give the message back. Returns how many refusals
    ``(task_id, attempt)`` has had, this one included, from the shared Redis (the give-back is counted
    as a requeue too, so its redelivery is not taken for a lost delivery); None without it: a broker's
    own delivery count cannot tell the wrapper's give-backs from lost deliveries, so nothing counts
    and the caller must not give the message back."""
    client = _counter(shared)
    if client is None:
        return None
    key = f"fr:deliveries:{task_id}:{attempt}"
    try:
        pipe = client.pipeline()
        pipe.hincrby(key, "refused", 1)
        pipe.hincrby(key, "requeued", 1)
        pipe.expire(key, COUNTER_TTL)
        refused, _, _ = pipe.execute()
        return int(refused)
    except redis.RedisError as problem:
        log_event("delivery.count_failed", level=logging.WARNING, task_id=task_id, error=type(problem).__name__)
        return None


#: Said of a lost delivery found through the marks of the pool processes.
PUT_BACK = (
    "the pool process died before the worker had registered the start of the task; the pool gave the "
    "task to another process"
)
