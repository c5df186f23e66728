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
  a few bytes of memory shared by the worker's processes (:class:`StartMarks`); the next execution
  of the same task finds the mark of the dead process and records the lost delivery.

The success path costs no round trip: a first delivery only writes and clears its mark in shared
memory (a few microseconds), reads nothing from Redis or the database. Lost deliveries are
not attempts of the policy: they use no retry and no retry budget. The wrapper's own requeues (the
database was unreachable when a failure had to be recorded) are counted apart and not taken as losses.
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import re
import struct
from pathlib import Path
from typing import Any

from billiard.exceptions import WorkerLostError
from billiard.process import current_process
from celery import signals
from celery.exceptions import TimeLimitExceeded

from error_handling.persistence import repository
from error_handling.persistence.models import utcnow
from function_runner.events import log_event
from function_runner.runtime import Runtime, runtime_for
from function_runner.wrapper import headers as H
from function_runner.wrapper.celery_view import RedactingRequest

__all__ = [
    "COUNTER_TTL",
    "PUT_BACK",
    "RecoverableRequest",
    "StartMarks",
    "count_redelivery",
    "count_refusal",
    "count_requeue",
    "loss_report",
    "marks",
]

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


def loss_report(exc: BaseException, *, worker: str | None, pid: int | None) -> repository.LossReport:
    """What a pool process's death tells: the cause, the signal or exit code (billiard's message:
    ``Worker exited prematurely: signal 9 (SIGKILL)`` / ``exitcode 1``), the OOM killer."""
    message = str(exc)
    if isinstance(exc, TimeLimitExceeded):
        return repository.LossReport(
            cause="time_limit",
            worker=worker,
            pid=pid,
            detail=f"killed at the hard time limit ({_seconds(exc)} s)",
            memory_limit=_oom_detail(),
        )
    found = _STATUS.search(message)
    signal = exit_code = None
    if found and found.group("signum"):
        signal = found.group("signame") or f"signal {found.group('signum')}"
    elif found and found.group("code"):
        exit_code = int(found.group("code"))
    return repository.LossReport(
        cause="worker_lost",
        worker=worker,
        pid=pid,
        signal=signal,
        exit_code=exit_code,
        memory_limit=_oom_detail(),
        detail=message[:2000],
    )


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
            if marks is not None and self.worker_pid:
                marks.forget(self.worker_pid)  # reported here: not a loss for the next execution to find
            self._report_loss(exc)
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)

    def _report_loss(self, exc: BaseException) -> None:
        if isinstance(exc, SystemExit):
            code = exc.code if isinstance(exc.code, int) else 1
            exc = WorkerLostError(f"Worker exited prematurely: exitcode {code}.")
        report = loss_report(exc, worker=self.hostname, pid=self.worker_pid)
        task_id, attempt, name = self.id, _attempt_of(self.request_dict), self.name
        try:
            runtime = runtime_for(self.task.app)
            number = runtime.in_transaction(
                lambda s: repository.report_lost_delivery(
                    s, task_id=task_id, attempt=attempt, task_name=name, report=report, now=utcnow()
                ),
                patience=2,
            )
        except Exception as problem:  # the next delivery records it without the details
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


def _counter(runtime: Runtime) -> Any | None:
    try:
        return runtime.shared_redis.require()
    except RuntimeError:
        return None


def count_redelivery(runtime: Runtime, task_id: str, attempt: int, request: Any) -> int:
    """Count this redelivery; return how many deliveries of ``(task_id, attempt)`` before it ended
    without an outcome, as far as the broker's count tells (the wrapper's own requeues left out):
    Redis' counter on a Redis broker, ``x-delivery-count`` on RabbitMQ quorum queues, else 1."""
    client = _counter(runtime)
    if client is not None:
        key = f"fr:deliveries:{task_id}:{attempt}"
        try:
            pipe = client.pipeline()
            pipe.hincrby(key, "redelivered", 1)
            pipe.hget(key, "requeued")
            pipe.expire(key, COUNTER_TTL)
            redelivered, requeued, _ = pipe.execute()
            return max(0, int(redelivered) - int(requeued or 0))
        except Exception as problem:
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


def count_requeue(runtime: Runtime, task_id: str, attempt: int) -> None:
    """Note that the wrapper itself gives this delivery back (so its redelivery is not a loss)."""
    client = _counter(runtime)
    if client is None:
        return
    key = f"fr:deliveries:{task_id}:{attempt}"
    try:
        pipe = client.pipeline()
        pipe.hincrby(key, "requeued", 1)
        pipe.expire(key, COUNTER_TTL)
        pipe.execute()
    except Exception as problem:
        log_event("delivery.count_failed", level=logging.WARNING, task_id=task_id, error=type(problem).__name__)


def count_refusal(runtime: Runtime, task_id: str, attempt: int) -> int | None:
    """Count a refusal: the database refused what the wrapper records about this delivery (or its
    bookkeeping failed), and the wrapper is about to give the message back. Returns how many refusals
    ``(task_id, attempt)`` has had, this one included, from the shared Redis (the give-back is counted
    as a requeue too, so its redelivery is not taken for a lost delivery); None without it: a broker's
    own delivery count cannot tell the wrapper's give-backs from lost deliveries, so nothing counts
    and the caller must not give the message back."""
    client = _counter(runtime)
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
    except Exception as problem:
        log_event("delivery.count_failed", level=logging.WARNING, task_id=task_id, error=type(problem).__name__)
        return None


#: Said of a lost delivery found through the marks of the pool processes.
PUT_BACK = (
    "the pool process died before the worker had registered the start of the task; the pool gave the "
    "task to another process"
)


class StartMarks:
    """Which task each pool process of this worker is running, in memory shared by the worker's
    processes (an anonymous shared mapping made by the main process before the pool starts).

    Each pool process owns ``per_process`` records at its pool index (a replacement process takes its
    dead predecessor's index, and leaves the predecessor's record alone until its task is found). A
    record is ``(pid, attempt, digest of the task id)``; only its owner writes it, except to clear it
    (the main process, for a death it reported; the next execution of the task, taking it over).
    """

    RECORD = struct.Struct("<qi4x16s")

    def __init__(self, processes: int, per_process: int = 4) -> None:
        self.processes, self.per_process = processes, per_process
        self.map = mmap.mmap(-1, processes * per_process * self.RECORD.size)
        self._own: int | None = None

    @staticmethod
    def digest(task_id: str) -> bytes:
        return hashlib.blake2b(task_id.encode(), digest_size=16).digest()

    def _records(self, index: int) -> range:
        size = self.RECORD.size
        return range(index * self.per_process * size, (index + 1) * self.per_process * size, size)

    def begin(self, task_id: str, attempt: int) -> list[int]:
        """Mark the start of ``(task_id, attempt)`` by this process; return the pids of dead pool
        processes that had started it and died unreported (their marks are taken over)."""
        index = getattr(current_process(), "index", None)
        if not isinstance(index, int) or not 0 <= index < self.processes:
            return []
        attempt = max(-(2**31), min(attempt, 2**31 - 1))  # a record holds a 32-bit attempt (headers are anything)
        digest, me, size = self.digest(task_id), os.getpid(), self.RECORD.size
        dead: list[int] = []
        found = self.map.find(digest)
        while found != -1:
            offset = found - 16
            if offset % size == 0:
                pid, marked_attempt, _ = self.RECORD.unpack_from(self.map, offset)
                if pid and pid != me and marked_attempt == attempt and not _alive(pid):
                    dead.append(pid)
                    self.RECORD.pack_into(self.map, offset, 0, 0, b"")
            found = self.map.find(digest, found + 1)
        slot = None
        for offset in self._records(index):
            pid = self.RECORD.unpack_from(self.map, offset)[0]
            if pid in (0, me):
                slot = offset
                break
        if slot is None:  # every record holds a dead predecessor's task: the oldest gives way
            slot = self._records(index)[0]
        self.RECORD.pack_into(self.map, slot, me, attempt, digest)
        self._own = slot
        return dead

    def end(self) -> None:
        """Clear this process's mark (the task ended: an outcome, or a recorded failure)."""
        if self._own is not None:
            self.RECORD.pack_into(self.map, self._own, 0, 0, b"")
            self._own = None

    def forget(self, pid: int) -> None:
        """Clear the marks of a dead pool process whose loss was reported (main process)."""
        size = self.RECORD.size
        for offset in range(0, len(self.map), size):
            if self.RECORD.unpack_from(self.map, offset)[0] == pid:
                self.RECORD.pack_into(self.map, offset, 0, 0, b"")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


#: This worker's marks (made when a prefork worker starts; None elsewhere: solo and thread pools, eager).
marks: StartMarks | None = None


def _make_marks(sender: Any = None, **_: Any) -> None:
    """Make this worker's marks when it starts, before its pool processes are forked."""
    global marks
    sizes = [getattr(sender, "concurrency", None), getattr(sender, "max_concurrency", None), os.cpu_count()]
    processes = max([int(size) for size in sizes if isinstance(size, int)] + [16])
    marks = StartMarks(processes)


signals.worker_init.connect(_make_marks, weak=False, dispatch_uid="function_runner.start_marks")
