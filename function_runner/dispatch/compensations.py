"""The compensation sweep role: publish again the compensation of sagas that seem forgotten.

A saga whose pending steps nobody touched for ``compensation_sweep_after`` seconds, or whose
compensator died mid-undo (its claim older than the claim lease), gets its compensation published again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from error_handling.persistence import compensation as compensation_steps
from error_handling.persistence.models import utcnow
from function_runner.dispatch.role import Role
from function_runner.events import log_event
from function_runner.services import InTransaction

__all__ = ["CompensationSweepRole"]


@dataclasses.dataclass(kw_only=True, eq=False)
class CompensationSweepRole(Role):
    """Republishes the compensations of quiet sagas.

    Args:
        in_transaction: runs work in a transaction of the database.
        publish: publishes the compensation of one saga.
        sweep_after: seconds without a touch after which a saga counts as forgotten.
        claim_lease: seconds after which a compensator's claim counts as dead.
    """

    name = "compensations"

    in_transaction: InTransaction
    publish: Callable[[str], Any]
    sweep_after: float
    claim_lease: float

    def __post_init__(self) -> None:
        self.interval = self.sweep_after / 2

    def run_once(self) -> bool:
        """One sweep; never busy."""
        swept = self.sweep(now=None)
        if swept:
            log_event("dispatcher.compensations_swept", sagas=swept)
        return False

    def sweep(self, *, now: dt.datetime | None = None) -> int:
        """Publish the compensation of the forgotten sagas; return how many.

        Raises:
            StorageUnavailable: if the database is unreachable.
        """
        moment = now or utcnow()
        quiet = moment - dt.timedelta(seconds=self.sweep_after)
        stale = moment - dt.timedelta(seconds=self.claim_lease)

        def lost(session: Session) -> list[str]:
            sagas = compensation_steps.sagas_to_sweep(session, quiet_since=quiet, stale_claims_since=stale)
            for saga_id in sagas:
                compensation_steps.touch_saga(session, saga_id=saga_id, now=moment)
            return sagas

        sagas = self.in_transaction(lost, patience=0)
        for saga_id in sagas:
            self.publish(saga_id)
        return len(sagas)
