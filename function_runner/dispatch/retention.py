"""The retention role of the dispatcher: trims old rows and purges the secrets of settled dead letters.

Every dispatcher runs it (any number may: the batches skip rows another one holds). A run starts when
no run of any dispatcher started within ``retention_interval`` (the runs are rows of
``fr_retention_runs``, which the health endpoint reads), then visits the tables of
:data:`error_handling.persistence.retention.RULES` whose age is set, a batch of
``retention_batch_size`` rows per transaction, and finally purges the sealed secrets of dead letters
replayed or discarded more than ``retention_purge_replayed_after_days`` ago. Inside a dispatcher a run
goes on for at most :data:`STEP_SECONDS` per pass of its loop and resumes at the next pass, so
publishing due retries never waits long behind it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from typing import ClassVar

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence import retention
from error_handling.persistence.models import utcnow
from function_runner.dispatch.role import Role
from function_runner.events import log_event
from function_runner.services import InTransaction
from function_runner.settings import Settings

__all__ = ["STEP_SECONDS", "RetentionRole", "RunTotals"]

#: How long one step of a run may go on inside a dispatcher pass (s); the run resumes at the next pass.
STEP_SECONDS = 1.0
_DAY = 86_400.0


@dataclasses.dataclass
class RunTotals:
    """What a retention run did.

    Attributes:
        run_id: its row in ``fr_retention_runs``.
        deleted: rows deleted per table.
        purged: dead letters whose sealed secrets were purged.
        finished: whether every table was visited.
    """

    run_id: int
    deleted: dict[str, int] = dataclasses.field(default_factory=dict)
    purged: int = 0
    finished: bool = False


class RetentionRole(Role):
    """Runs retention for one dispatcher, a step at a time.

    Args:
        in_transaction: runs work in a transaction of the database.
        settings: the retention settings (ages, batch size, interval).
        runner: the dispatcher's name, recorded with each run.
    """

    name = "retention"
    failed_event = "dispatcher.retention_failed"
    failed_level = logging.ERROR
    broker_errors: ClassVar[tuple[type[BaseException], ...]] = ()  # it never stops the dispatching of due runs

    def __init__(self, *, in_transaction: InTransaction, settings: Settings, runner: str) -> None:
        self.in_transaction = in_transaction
        self.settings = settings
        self.runner = runner
        self._run: RunTotals | None = None
        self._rule = 0
        self._next_check = 0.0

    @property
    def enabled(self) -> bool:
        """Whether any age is set (otherwise the role does nothing)."""
        return self.settings.retention_purge_replayed_after_days is not None or any(
            self._days(rule) is not None for rule in retention.RULES if rule.setting is not None
        )

    def _days(self, rule: retention.Rule) -> float | None:
        if rule.setting is None:
            return rule.days
        days: float | None = getattr(self.settings, rule.setting)
        return days

    def step(self, *, now: dt.datetime | None = None, budget: float = STEP_SECONDS) -> RunTotals | None:
        """Start a run if one is due, and go on with the current one for about ``budget`` seconds.
        Returns the current run's totals (``finished`` once it is over), or None when none is under way.

        Raises:
            StorageUnavailable: the database is unreachable (the run resumes where it was).
            Exception: any other error of the database (the run is abandoned; the next one starts over
                once ``retention_interval`` has passed since it started).
        """
        moment = now or utcnow()
        if self._run is None:
            if not self.enabled or time.monotonic() < self._next_check:
                return None
            self._next_check = time.monotonic() + min(self.settings.retention_interval, 60.0)
            if not self._due(moment):
                return None
            run_id = self.in_transaction(lambda s: retention.start_run(s, runner=self.runner, now=moment), patience=0)
            self._run, self._rule = RunTotals(run_id=run_id), 0
            log_event("retention.started", run=run_id)
        run = self._run
        try:
            self._advance(run, moment, deadline=time.monotonic() + budget)
        except StorageUnavailable:
            raise  # the database is away: the run resumes where it was
        except Exception:
            self._run = None  # anything else is no reason to retry at every pass: the next run starts over
            raise
        return run

    def _advance(self, run: RunTotals, now: dt.datetime, *, deadline: float) -> None:
        while self._rule <= len(retention.RULES):
            more = self._batch(run, now)
            if not more:
                self._rule += 1
            if time.monotonic() >= deadline:
                break
        if self._rule > len(retention.RULES):
            self._finish(run)
        else:
            self.in_transaction(
                lambda s: retention.update_run(s, run_id=run.run_id, deleted=run.deleted, purged=run.purged),
                patience=0,
            )

    def run_once(self) -> bool:
        """A step of the current run (it resumes at the next pass); never busy."""
        self.step()
        return False

    def run(self, *, now: dt.datetime | None = None) -> RunTotals | None:
        """Do a whole run now if one is due (the ``--once`` path and the tests). Returns its totals.

        Raises:
            StorageUnavailable: the database is unreachable.
        """
        self._next_check = 0.0
        totals = self.step(now=now, budget=float("inf"))
        return totals

    def _due(self, now: dt.datetime) -> bool:
        last = self.in_transaction(retention.last_started_run, patience=0)
        interval = dt.timedelta(seconds=self.settings.retention_interval)
        return last is None or last.started_at <= now - interval

    def _batch(self, run: RunTotals, now: dt.datetime) -> bool:
        """One batch of the current table (or of the purge, after the last table); whether the table
        may have more."""
        limit = self.settings.retention_batch_size
        if self._rule == len(retention.RULES):
            days = self.settings.retention_purge_replayed_after_days
            if days is None:
                return False
            before = now - dt.timedelta(seconds=days * _DAY)
            count = self.in_transaction(
                lambda s: retention.purge_batch(s, replayed_before=before, limit=limit, now=now), patience=0
            )
            run.purged += count
            return count == limit
        rule = retention.RULES[self._rule]
        rule_days = self._days(rule)
        if rule_days is None:
            return False
        cutoff = now - dt.timedelta(seconds=rule_days * _DAY)
        count = self.in_transaction(
            lambda s: retention.delete_batch(s, rule=rule, cutoff=cutoff, limit=limit), patience=0
        )
        if count:
            run.deleted[rule.name] = run.deleted.get(rule.name, 0) + count
        return count == limit

    def _finish(self, run: RunTotals) -> None:
        end = utcnow()
        self.in_transaction(
            lambda s: retention.finish_run(s, run_id=run.run_id, deleted=run.deleted, purged=run.purged, now=end),
            patience=0,
        )
        run.finished = True
        self._run = None
        log_event("retention.finished", run=run.run_id, deleted=dict(run.deleted), purged=run.purged)
