"""Start marks: which task each pool process of a prefork worker is running, in shared memory.

When a pool process dies before the worker's main process had read its acceptance of the job,
billiard gives the job to another pool process itself, without telling Celery and without a
redelivery. Each pool process marks the task it runs in a few bytes of memory shared by the worker's
processes (:class:`StartMarks`, made when the worker starts); the next execution of the same task finds
the mark of the dead process, and the wrapper records the lost delivery (see
:mod:`~function_runner.wrapper.deliveries`). A first delivery only writes and clears its mark (a few
microseconds).
"""

from __future__ import annotations

import hashlib
import logging
import mmap
import os
import struct
from typing import Any

from billiard.process import current_process
from celery import signals

from function_runner.events import log_event

__all__ = ["StartMarks", "end_mark", "marks", "start_mark"]


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


def start_mark(task_id: str, attempt: int) -> list[int]:
    """Mark the start of ``(task_id, attempt)`` in this worker's marks (if it has them); return the pids
    of dead pool processes that had started it (see :meth:`StartMarks.begin`)."""
    if marks is None:
        return []
    try:
        return marks.begin(task_id, attempt)
    except Exception as problem:  # noqa: BLE001 - the marks only help find lost deliveries: never the task's outcome
        log_event("delivery.mark_failed", level=logging.WARNING, task_id=task_id, error=type(problem).__name__)
        return []


def end_mark() -> None:
    """Clear this process's mark (the execution ended)."""
    if marks is not None:
        marks.end()


def _make_marks(sender: Any = None, **_: Any) -> None:
    """Make this worker's marks when it starts, before its pool processes are forked."""
    global marks
    sizes = [getattr(sender, "concurrency", None), getattr(sender, "max_concurrency", None), os.cpu_count()]
    processes = max([int(size) for size in sizes if isinstance(size, int)] + [16])
    marks = StartMarks(processes)


signals.worker_init.connect(_make_marks, weak=False, dispatch_uid="function_runner.start_marks")
