"""The groups role of the dispatcher: every ``groups_check_interval`` seconds it stores the error groups'
states that time changes and marks the groups escalating, or calm again
(:mod:`error_handling.persistence.group_escalation`).

Every dispatcher runs it; the updates are conditional on the state read, so many at once are harmless.
"""

from __future__ import annotations

import datetime as dt
import logging

from error_handling.persistence import group_escalation
from error_handling.persistence.models import utcnow
from function_runner.dispatch.role import Role
from function_runner.events import log_event
from function_runner.services import InTransaction
from function_runner.settings import Settings

__all__ = ["GroupsRole"]


class GroupsRole(Role):
    """Keeps the error groups' states current for one dispatcher.

    Args:
        in_transaction: runs work in a transaction of the database.
        settings: ``groups_new_period``, ``groups_check_interval`` and the analysis' thresholds.
    """

    name = "groups"
    failed_event = "dispatcher.groups_failed"
    failed_level = logging.WARNING

    def __init__(self, *, in_transaction: InTransaction, settings: Settings) -> None:
        self.in_transaction = in_transaction
        self.new_period = dt.timedelta(seconds=settings.groups_new_period)
        self.config = settings.analysis_config()
        self.interval = settings.groups_check_interval  # the dispatcher runs it this often

    def run_once(self) -> bool:
        """Settle the states time changes, then mark escalations (two short transactions)."""
        now = utcnow()
        settled = self.in_transaction(lambda s: group_escalation.settle(s, now=now, new_period=self.new_period))
        changes = self.in_transaction(
            lambda s: group_escalation.escalate(s, now=now, new_period=self.new_period, config=self.config)
        )
        for fingerprint in changes.escalated:
            log_event("group.escalating", level=logging.WARNING, fingerprint=fingerprint)
        for fingerprint in changes.calmed:
            log_event("group.calmed", fingerprint=fingerprint)
        if settled:
            log_event("group.states_settled", count=settled)
        return False
