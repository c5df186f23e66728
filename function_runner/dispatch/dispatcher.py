"""The dispatcher: one loop over a plain list of periodic roles.

::

    build_roles(app, runtime, name) ──►  [heartbeat, queue_check, due_runs, gates, compensations,
                                          unrecorded, broker_dead_letters, retention, groups, liveness,
                                          replay_jobs]
    Dispatcher.run_forever:  each pass runs every role that is due (run_role: failures logged there),
                             then sleeps ``dispatcher_interval`` unless a role said more work is waiting.

Each role lives in its own module of :mod:`function_runner.dispatch` and takes only what it uses; this
module is where they are built from a :class:`~function_runner.runtime.Runtime`. Any number of
dispatchers may run against one database.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import threading
import time
from typing import TypeVar

from celery import Celery

from function_runner import keys
from function_runner.broker import queues
from function_runner.compensation.publish import CLAIM_LEASE_SECONDS, publish_compensation
from function_runner.dispatch.broker_dead_letters import BrokerDeadLettersRole
from function_runner.dispatch.compensations import CompensationSweepRole
from function_runner.dispatch.due_runs import DueRunsRole, PassResult
from function_runner.dispatch.gate_monitor import GateMonitorRole
from function_runner.dispatch.groups import GroupsRole
from function_runner.dispatch.heartbeat import HeartbeatRole
from function_runner.dispatch.lapsed import LapsedConsumersRole
from function_runner.dispatch.queue_check import QueueCheckRole
from function_runner.dispatch.replay_jobs import BulkReplayer
from function_runner.dispatch.retention import RetentionRole
from function_runner.dispatch.role import Role, run_role
from function_runner.dispatch.stored import StoredPublisher
from function_runner.dispatch.unrecorded import UnrecordedRole
from function_runner.events import log_event
from function_runner.runtime import Runtime, runtime_for
from function_runner.wrapper import unrecorded

__all__ = ["Dispatcher", "build_roles"]

R = TypeVar("R", bound=Role)


@dataclasses.dataclass(frozen=True)
class _KeptFailures:
    """The kept failures of :mod:`function_runner.wrapper.unrecorded`, bound to a runtime's Redis."""

    runtime: Runtime

    def overdue(self, *, unseen_for: float, limit: int, now: float | None) -> list[unrecorded.Kept]:
        return unrecorded.overdue(self.runtime, unseen_for=unseen_for, limit=limit, now=now)

    def overdue_again(self, kept: list[unrecorded.Kept]) -> None:
        unrecorded.overdue_again(self.runtime, kept)

    def forget(self, task_id: str, attempt: int) -> None:
        unrecorded.forget(self.runtime, task_id, attempt)


def build_roles(app: Celery, runtime: Runtime, *, name: str) -> list[Role]:
    """The roles of a dispatcher named ``name``, in the order each pass runs them."""
    settings, in_transaction = runtime.settings, runtime.in_transaction
    publisher = StoredPublisher(app, runtime.sealer)
    roles: list[Role] = [
        HeartbeatRole(in_transaction=in_transaction, runner=name),
        QueueCheckRole(check=functools.partial(queues.use_queues_as_found, app)),
        DueRunsRole(
            in_transaction=in_transaction,
            publisher=publisher,
            batch_size=settings.dispatcher_batch_size,
            redispatch_after=settings.redispatch_after,
        ),
    ]
    if runtime.gates:
        roles.append(
            GateMonitorRole(
                gates=runtime.gates,
                lease_store=lambda: runtime.lease_store,
                in_transaction=in_transaction,
                tasks=app.tasks,
                reservation=settings.gate_reservation_seconds,
                interval=settings.gate_check_interval,
                monitor=name,
            )
        )
    roles += [
        CompensationSweepRole(
            in_transaction=in_transaction,
            publish=functools.partial(publish_compensation, app),
            sweep_after=settings.compensation_sweep_after,
            claim_lease=CLAIM_LEASE_SECONDS,
        ),
        UnrecordedRole(
            kept=_KeptFailures(runtime),
            in_transaction=in_transaction,
            publisher=publisher,
            redeliver_after=settings.unrecorded_redeliver_after,
            batch_size=settings.dispatcher_batch_size,
        ),
        BrokerDeadLettersRole(collect=functools.partial(queues.collect_dead_letters, app, runtime)),
        RetentionRole(in_transaction=in_transaction, settings=settings, runner=name),
        GroupsRole(in_transaction=in_transaction, settings=settings),
        LapsedConsumersRole(connections=app.pool, timeout=settings.liveness_timeout),
        BulkReplayer(
            app,
            in_transaction=in_transaction,
            engine=lambda: runtime.engine,  # built when first used: a bad URL is reported by the pass
            sealer=runtime.sealer,
            batch_size=settings.dispatcher_batch_size,
            pass_interval=settings.dispatcher_interval,
        ),
    ]
    return roles


class Dispatcher:
    """Runs the roles of one app's database and broker until stopped.

    Args:
        app: the Celery app to publish through (its broker and routing).
        runtime: the function-runner runtime (default: the app's).

    Raises:
        ConfigurationError: the sealing key is missing or malformed (checked before any work).
    """

    def __init__(self, app: Celery, runtime: Runtime | None = None) -> None:
        runtime = runtime or runtime_for(app)
        keys.check_key(runtime)  # a missing or malformed key stops it here, before any work
        self.interval = runtime.settings.dispatcher_interval
        #: This process's name in the heartbeats table.
        self.name = f"dispatcher@{socket.gethostname()}:{os.getpid()}"
        #: The roles, in the order each pass runs them.
        self.roles = build_roles(app, runtime, name=self.name)
        self._stop = threading.Event()

    def role(self, role_type: type[R]) -> R:
        """This dispatcher's role of type ``role_type``.

        Raises:
            LookupError: it has none (e.g. the gate monitor without declared gates).
        """
        for role in self.roles:
            if isinstance(role, role_type):
                return role
        raise LookupError(role_type.__name__)

    def run_once(self) -> PassResult:
        """One pass of the due-runs role (the ``--once`` path). Returns what it did.

        Raises:
            StorageUnavailable: if the database is unreachable.
            kombu OperationalError / ConnectionError: the broker failed (nothing was marked).
        """
        return self.role(DueRunsRole).publish_due()

    def check_queues(self) -> bool:
        """Run the queue check role; whether it is done (False: the broker did not answer)."""
        role = self.role(QueueCheckRole)
        run_role(role)
        return role.done

    def run_forever(self) -> None:
        """Run the roles until :meth:`stop` is called; survive database and broker outages."""
        log_event("dispatcher.started", interval=self.interval)
        next_run = dict.fromkeys(range(len(self.roles)), 0.0)
        while not self._stop.is_set():
            busy = False
            for index, role in enumerate(self.roles):
                if time.monotonic() < next_run[index]:
                    continue
                outcome = run_role(role)
                next_run[index] = time.monotonic() + role.interval
                if outcome is None and role.ends_pass_on_failure:
                    break
                busy = busy or bool(outcome)
            if not busy:
                self._stop.wait(self.interval)
        for role in self.roles:
            role.stop()
        log_event("dispatcher.stopped")

    def stop(self) -> None:
        """Ask :meth:`run_forever` to return after the current pass."""
        self._stop.set()
