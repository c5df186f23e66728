"""The due-runs role: publish due scheduled retries and released resource waits; dead-letter expired waits.

Any number of dispatchers may run against one database. Each pass claims a batch of due rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` (on SQLite a write transaction), publishes them and marks them
dispatched in the same transaction; a copy published twice by two dispatchers runs once (``claim_run``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, ClassVar

from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.orm import Session

from error_handling.persistence import runs
from error_handling.persistence.models import utcnow
from function_runner.dispatch.role import Role
from function_runner.dispatch.stored import StoredPublisher
from function_runner.events import log_event
from function_runner.services import InTransaction
from function_runner.wrapper import headers as H

__all__ = ["DueRunsRole", "PassResult"]


@dataclasses.dataclass
class PassResult:
    """What one pass of the due-runs role did."""

    published: int = 0
    expired: int = 0


class DueRunsRole(Role):
    """Claims, publishes and marks batches of due runs.

    Args:
        in_transaction: runs work in a transaction of the database.
        publisher: publishes the runs.
        batch_size: rows claimed per pass.
        redispatch_after: seconds after which a run dispatched but never started is published again.
    """

    name = "due_runs"
    ends_pass_on_failure = True
    broker_errors: ClassVar[tuple[type[BaseException], ...]] = (BrokerError, ConnectionError)

    def __init__(
        self, *, in_transaction: InTransaction, publisher: StoredPublisher, batch_size: int, redispatch_after: float
    ) -> None:
        self.in_transaction = in_transaction
        self.publisher = publisher
        self.batch_size = batch_size
        self.redispatch_after = dt.timedelta(seconds=redispatch_after)

    def run_once(self) -> bool:
        """One pass; busy while whole batches come back."""
        result = self.publish_due()
        if result.published or result.expired:
            log_event("dispatcher.pass", published=result.published, expired=result.expired)
        return result.published >= self.batch_size

    def publish_due(self, *, now: dt.datetime | None = None) -> PassResult:
        """Claim, publish and mark one batch of due runs. Returns what it did.

        Raises:
            StorageUnavailable: if the database is unreachable.
            kombu OperationalError / ConnectionError: the broker failed (nothing was marked).
        """
        moment = now or utcnow()
        with self.publisher.producer() as producer:
            return self.in_transaction(lambda s: self._pass(s, producer, moment), patience=0)

    def _pass(self, session: Session, producer: Any, now: dt.datetime) -> PassResult:
        result = PassResult()
        dispatches, expired = runs.claim_due_runs(
            session, now=now, limit=self.batch_size, redispatch_after=self.redispatch_after
        )
        for run in expired:
            letter = runs.expire_wait(session, run=run, now=now)
            result.expired += 1
            log_event("dispatcher.wait_expired", task_id=run.task_id, resource=run.resource, dead_letter=letter)
        for dispatch in dispatches:
            self.publisher.send(
                dispatch.task_name,
                payload=(dispatch.args, dispatch.kwargs, dispatch.headers),
                ours={H.ATTEMPT: dispatch.attempt, H.RUN: dispatch.run_id, H.TOKEN: dispatch.token},
                task_id=dispatch.task_id,
                root_id=dispatch.root_id,
                parent_id=dispatch.parent_id,
                options=dispatch.options,
                producer=producer,
            )
            result.published += 1
        return result
