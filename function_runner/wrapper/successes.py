"""The success step: every execution whose body succeeded is counted per task and delivery queue, in
memory, and each worker process writes its counts every ``success_flush_interval`` seconds from a
background thread (``fr_task_counts``: minute, hour and day rows, one upsert in one short transaction).

The success path stays a dict increment under a lock: no database round trip (invariant 7). A prefork
child gets a counter and a thread of its own (``per_process``): it never inherits its parent's counts.
A worker stopped gracefully writes what its processes counted (Celery's ``worker_process_shutdown`` in
a pool process, ``worker_shutdown`` in the main process of a solo, threads, gevent or eventlet pool); a
process killed loses what it counted since its last write, at most one interval. While the database is
away the counts are kept and added to the next write (at most :data:`MAX_PENDING_KEYS` minutes of a task
and queue; beyond that the oldest are dropped, logged).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import signals
from sqlalchemy.exc import SQLAlchemyError

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence.task_counts import SuccessKey, add_successes
from function_runner.events import log_event

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from function_runner.wrapper.execution import Execution
    from function_runner.wrapper.services import Services

__all__ = ["MAX_PENDING_KEYS", "SuccessCounter", "count_success", "counter_of", "flush_all"]

#: At most this many (minute, task, queue) counts are kept while the database cannot take them.
MAX_PENDING_KEYS = 100_000
#: The key of a process's counter among the runtime's per-process values.
_PER_PROCESS_KEY = "successes"
#: Every counter made in this process (and those inherited from a parent, which are left alone).
_COUNTERS: weakref.WeakSet[SuccessCounter] = weakref.WeakSet()

#: Runs work in one transaction, once (``Runtime.in_transaction(work, patience=0)``).
Write = Callable[[Callable[["Session"], int]], Any]


class SuccessCounter:
    """Counts one process's successes by minute, task and queue, and writes them from a daemon thread.

    Args:
        write: runs work in one transaction, once; raises ``StorageUnavailable`` when the database is away.
        interval: seconds between two writes (the ``success_flush_interval`` setting).
        clock: the wall clock, in seconds since the epoch (the minute a success is counted in).
    """

    def __init__(self, *, write: Write, interval: float, clock: Callable[[], float] = time.time) -> None:
        self.write = write
        self.interval = interval
        self.clock = clock
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, str, str], int] = {}
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False
        _COUNTERS.add(self)

    def count(self, task_name: str, queue: str) -> None:
        """Count one success of ``task_name`` delivered from ``queue`` (starts the writing thread once)."""
        key = (int(self.clock() // 60), task_name, queue)
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fr-success-counts", daemon=True)
                self._thread.start()

    def pending(self) -> dict[SuccessKey, int]:
        """What was counted and not written yet, by (minute start, task, queue)."""
        with self._lock:
            return _by_minute(self._counts)

    def flush(self) -> bool:
        """Write what was counted; whether it was written (or there was nothing to write).

        While the database is away the counts are kept for the next write (logged once per outage); a
        write the database refuses for another reason drops them (logged)."""
        with self._flushing:
            with self._lock:
                counts, self._counts = self._counts, {}
            if not counts:
                return True
            try:
                self.write(lambda session: add_successes(session, _by_minute(counts)))
            except StorageUnavailable as exc:
                self._keep(counts, exc)
                return False
            except SQLAlchemyError as exc:
                log_event("successes.refused", level=logging.ERROR, error=type(exc).__name__, dropped=len(counts))
                return False
            if self._failing:
                log_event("successes.written_again", kept=len(counts))
                self._failing = False
            return True

    def close(self) -> bool:
        """Stop the writing thread and write what is left (a process that stops); whether it was written."""
        self._stop.set()
        return self.flush()

    def _keep(self, counts: dict[tuple[int, str, str], int], exc: Exception) -> None:
        """Add counts that could not be written back, within :data:`MAX_PENDING_KEYS` (oldest dropped)."""
        with self._lock:
            for key, n in counts.items():
                self._counts[key] = self._counts.get(key, 0) + n
            excess = len(self._counts) - MAX_PENDING_KEYS
            dropped = sorted(self._counts)[:excess] if excess > 0 else []
            for key in dropped:
                del self._counts[key]
            kept = len(self._counts)
        if dropped:
            log_event("successes.dropped", level=logging.WARNING, dropped=len(dropped), kept=kept)
        if not self._failing:
            log_event("successes.not_written", level=logging.WARNING, error=type(exc).__name__, kept=kept)
            self._failing = True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - the writing thread must outlive any error of a write
                log_event("successes.flush_failed", level=logging.ERROR, exc_info=True, error=type(exc).__name__)


def _by_minute(counts: dict[tuple[int, str, str], int]) -> dict[SuccessKey, int]:
    """The counts keyed by the start of their minute (UTC) instead of its number since the epoch."""
    return {
        (dt.datetime.fromtimestamp(minute * 60, dt.UTC), task_name, queue): n
        for (minute, task_name, queue), n in counts.items()
    }


def counter_of(services: Services) -> SuccessCounter:
    """This process's success counter for ``services`` (a forked child makes its own, empty)."""

    def make() -> SuccessCounter:
        return SuccessCounter(
            write=lambda work: services.in_transaction(work, patience=0),
            interval=services.settings.success_flush_interval,
        )

    return services.per_process(_PER_PROCESS_KEY, make)


def count_success(execution: Execution) -> None:
    """Count the success of ``execution`` for its task and the queue it was delivered from ('' unknown).
    A count that fails (no thread could be started) is logged: a statistic is never the task's outcome."""
    try:
        counter_of(execution.services).count(execution.task_name, execution.queue or "")
    except Exception as exc:  # noqa: BLE001 - the task succeeded: counting it must not change that
        execution.log("successes.count_failed", level=logging.WARNING, error=type(exc).__name__)


def flush_all(**_: Any) -> None:
    """Stop and write every success counter of this process (connected to Celery's shutdown signals;
    one that cannot be written is logged and lost)."""
    pid = os.getpid()
    for counter in list(_COUNTERS):
        if counter.pid == pid:
            counter.close()


signals.worker_process_shutdown.connect(flush_all, weak=False, dispatch_uid="function_runner.successes.process")
signals.worker_shutdown.connect(flush_all, weak=False, dispatch_uid="function_runner.successes.worker")
