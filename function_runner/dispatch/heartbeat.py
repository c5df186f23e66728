"""The heartbeat role: tell the health endpoint this dispatcher is alive (a row of ``fr_heartbeats``),
and forget the row when the dispatcher stops. Skipped while the database is down."""

from __future__ import annotations

import contextlib
import os
import socket

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence import heartbeats
from error_handling.persistence.models import utcnow
from function_runner.dispatch.role import Role
from function_runner.services import InTransaction

__all__ = ["HeartbeatRole"]


class HeartbeatRole(Role):
    """Beats for one dispatcher.

    Args:
        in_transaction: runs work in a transaction of the database.
        runner: the dispatcher's name in the heartbeats table.
    """

    name = "heartbeat"
    interval = heartbeats.HEARTBEAT_EVERY

    def __init__(self, *, in_transaction: InTransaction, runner: str) -> None:
        self.in_transaction = in_transaction
        self.runner = runner
        self.started_at = utcnow()

    def run_once(self) -> bool:
        """Beat once; never busy."""
        now = utcnow()
        with contextlib.suppress(StorageUnavailable):
            self.in_transaction(
                lambda s: heartbeats.beat(
                    s,
                    name=self.runner,
                    kind="dispatcher",
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=self.started_at,
                    now=now,
                ),
                patience=0,
            )
        return False

    def stop(self) -> None:
        """Forget this dispatcher's row."""
        with contextlib.suppress(StorageUnavailable):
            self.in_transaction(lambda s: heartbeats.forget(s, name=self.runner), patience=0)
