"""The kept-failures role: publish again the messages of failures kept in Redis during a database outage.

A failure the database could not take is kept in Redis (:mod:`function_runner.wrapper.unrecorded`) and
its message given back to the broker. When no delivery has come back with it for
``unrecorded_redeliver_after`` seconds (the broker lost the message), this role publishes it again; the
copy records its kept failure and carries out its decision. A failure recorded meanwhile is only forgotten.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, ClassVar, Protocol

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence import failure_recording
from error_handling.sealing import SealedValueError
from function_runner.dispatch.role import Role
from function_runner.dispatch.stored import StoredPublisher
from function_runner.events import log_event
from function_runner.services import InTransaction
from function_runner.wrapper import headers as H
from function_runner.wrapper.unrecorded import Kept

__all__ = ["KeptFailures", "UnrecordedRole"]


class KeptFailures(Protocol):
    """The failures kept in Redis (:mod:`function_runner.wrapper.unrecorded`, bound to one client)."""

    def overdue(self, *, unseen_for: float, limit: int, now: float | None) -> list[Kept]:
        """Kept failures unseen for ``unseen_for`` seconds, marked seen now."""
        ...

    def overdue_again(self, kept: list[Kept]) -> None:
        """Make these overdue again at once (their messages could not be published)."""
        ...

    def forget(self, task_id: str, attempt: int) -> None:
        """Drop a kept failure that is recorded."""
        ...


@dataclasses.dataclass(kw_only=True, eq=False)
class UnrecordedRole(Role):
    """Publishes again the messages of kept failures that seem lost.

    Args:
        kept: the kept failures.
        in_transaction: runs work in a transaction of the database.
        publisher: publishes the messages.
        redeliver_after: seconds a kept failure's message may go unseen before it is published again.
        batch_size: kept failures handled per run.
    """

    name = "unrecorded"
    failed_event = "dispatcher.unrecorded_failed"
    broker_errors: ClassVar[tuple[type[BaseException], ...]] = ()  # Redis or the broker: tried again next time

    kept: KeptFailures
    in_transaction: InTransaction
    publisher: StoredPublisher
    redeliver_after: float
    batch_size: int

    def __post_init__(self) -> None:
        self.interval = min(self.redeliver_after / 2, 60.0)

    def run_once(self) -> bool:
        """One run; never busy."""
        published = self.redeliver(now=None)
        if published:
            log_event("dispatcher.unrecorded_redelivered", published=published)
        return False

    def redeliver(self, *, now: float | None = None) -> int:
        """Publish again the overdue kept failures' messages; returns how many were published.

        Raises:
            StorageUnavailable: if the database is unreachable (those failures are tried again later).
            redis.RedisError, kombu OperationalError: Redis or the broker failed.
        """
        found = self.kept.overdue(unseen_for=self.redeliver_after, limit=self.batch_size, now=now)
        if not found:
            return 0
        try:
            recorded = self.in_transaction(
                lambda s: failure_recording.recorded_attempts(s, [(k.report.task_id, k.report.attempt) for k in found]),
                patience=0,
            )
        except StorageUnavailable:
            self.kept.overdue_again(found)
            raise
        published = 0
        with self.publisher.producer() as producer:
            for index, kept in enumerate(found):
                if (kept.report.task_id, kept.report.attempt) in recorded:
                    self.kept.forget(kept.report.task_id, kept.report.attempt)
                    continue
                try:
                    published += self._publish(kept, producer)
                except Exception:
                    self.kept.overdue_again(found[index:])
                    raise
        return published

    def _publish(self, kept: Kept, producer: Any) -> int:
        """Publish one kept failure's message; 0 when its secrets cannot be opened (said), else 1."""
        report, payload = kept.report, kept.report.payload
        ours: dict[str, Any] = {H.ATTEMPT: report.attempt, H.KEPT: 1}
        if report.run_id is not None and kept.token:
            ours.update({H.RUN: report.run_id, H.TOKEN: kept.token})
        if payload.replay_of is not None:
            ours[H.REPLAY_OF] = payload.replay_of
        try:
            self.publisher.send(
                payload.task_name,
                payload=(payload.args, payload.kwargs, payload.headers),
                ours=ours,
                task_id=report.task_id,
                root_id=payload.root_id,
                parent_id=payload.parent_id,
                options=payload.options,
                producer=producer,
            )
        except SealedValueError as exc:  # its secrets cannot be opened with the configured keys
            log_event(
                "dispatcher.kept_failure_unpublishable",
                level=logging.ERROR,
                task_id=report.task_id,
                attempt=report.attempt,
                error=str(exc),
            )
            return 0
        log_event(
            "dispatcher.kept_failure_redelivered",
            level=logging.WARNING,
            task_id=report.task_id,
            task=payload.task_name,
            attempt=report.attempt,
        )
        return 1
