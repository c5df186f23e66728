"""Group commit: the failures that threads of one process record at the same time share one transaction.

A worker with a threads (or gevent, eventlet) pool runs many tasks in one process; when several of
them fail at once, each would otherwise wait for a transaction and a commit of its own. A
:class:`GroupCommit` lets them share: the first caller finding no batch under way becomes the
*leader* and runs its own item at once; callers arriving meanwhile queue up, and when the leader's
transaction ends it runs the next batch (everything queued, up to ``max_batch``) in one more
transaction, until its own item is done, then hands the lead to the oldest caller still waiting.
Every caller returns only after the transaction holding its item has committed, so a message is
still acknowledged only after its failure is durably recorded (invariant 1). A prefork child runs one
task at a time: its batches hold one item, and cost what a transaction of its own costs.

A batch that fails is retried item by item, each in its own transaction, so that one item that cannot
be recorded (a bug, a value the database refuses) fails alone; a batch that fails because the
database is unreachable fails every item of it at once (each gives its message back).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from error_handling.exceptions import StorageUnavailable

I = TypeVar("I")  # noqa: E741 - the item type
R = TypeVar("R")

#: The most items one transaction records.
MAX_BATCH = 200


class LeaderInterrupted(RuntimeError):
    """The thread recording this item's batch was interrupted (its message is given back)."""


class _Waiter(Generic[I, R]):
    """A caller's item. Its caller blocks on ``gate`` (a lock taken at creation), released once: when
    the item's batch has run (``done``), or when the caller is to lead (cheaper than an event)."""

    __slots__ = ("done", "error", "gate", "item", "result")

    def __init__(self, item: I) -> None:
        self.item = item
        self.gate = threading.Lock()
        self.gate.acquire()
        self.done = False
        self.result: R | None = None
        self.error: BaseException | None = None

    def wait(self) -> None:
        self.gate.acquire()

    def wake(self) -> None:
        self.gate.release()

    def finish(self, result: R | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True
        self.wake()

    def outcome(self) -> R:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


class GroupCommit(Generic[I, R]):
    """Runs ``run(items) -> results`` (one result per item, in order, in one transaction) for the items
    that callers of :meth:`submit` hand in concurrently.

    Args:
        run: records a batch; raises if it could not (nothing of the batch is then recorded).
        max_batch: the most items one call of ``run`` gets.
    """

    def __init__(self, run: Callable[[Sequence[I]], Sequence[R]], *, max_batch: int = MAX_BATCH) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._run = run
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: list[_Waiter[I, R]] = []
        self._leading = False

    def submit(self, item: I) -> R:
        """Record ``item`` with whatever else is being recorded; return its result once its transaction
        has committed, or raise what recording it raised."""
        waiter: _Waiter[I, R] = _Waiter(item)
        with self._lock:
            self._queue.append(waiter)
            if self._leading:
                lead = False
            else:
                self._leading = lead = True
        if not lead:
            waiter.wait()
            if waiter.done:
                return waiter.outcome()
        try:
            while not waiter.done:
                with self._lock:
                    batch = self._queue[: self._max_batch]
                    del self._queue[: self._max_batch]
                self._run_batch(batch)
        finally:
            self._hand_over()
        return waiter.outcome()

    def _hand_over(self) -> None:
        with self._lock:
            if self._queue:
                self._queue[0].wake()  # still queued, so not done: woken to lead
            else:
                self._leading = False

    def _run_batch(self, batch: list[_Waiter[I, R]]) -> None:
        try:
            results = self._run([w.item for w in batch])
        except StorageUnavailable as exc:
            for waiter in batch:
                waiter.finish(error=exc)
            return
        except Exception as exc:  # noqa: BLE001 - any error of one item must fail that item alone, never its batch
            if len(batch) == 1:
                batch[0].finish(error=exc)
                return
            for waiter in batch:  # one bad item must not fail the others: each alone
                self._run_batch([waiter])
            return
        except BaseException as exc:  # the leader's thread is being interrupted: nothing is recorded
            for waiter in batch:
                waiter.finish(error=LeaderInterrupted(f"recording interrupted: {type(exc).__name__}"))
            raise
        _hand_out(batch, results)


def _hand_out(batch: list[_Waiter[I, R]], results: Sequence[R]) -> None:
    """Give each waiter of ``batch`` its result (all of them an error if the counts differ)."""
    if len(results) != len(batch):
        error = RuntimeError(f"recorded {len(results)} results for {len(batch)} items")
        for waiter in batch:
            waiter.finish(error=error)
        return
    for waiter, result in zip(batch, results, strict=True):
        waiter.finish(result)
