"""The dispatcher: publishes due scheduled retries and released resource waits.

Any number of dispatchers may run against one database. Each pass claims a batch of due rows with
``SELECT ... FOR UPDATE SKIP LOCKED`` (on SQLite a write transaction, so one dispatcher at a time),
publishes them and marks them dispatched in the same transaction. If a dispatcher dies after
publishing but before committing, another publishes the run again; the copies carry different
dispatch tokens and only the first one to reach a worker runs (``claim_run``), so each
``(task_id, attempt)`` executes once.

Resource waits are released when their check interval comes round (the re-run is the check) and
dead-lettered as ``resource_wait_timeout`` once past their deadline. Waits on a declared resource gate
are released by the dispatcher's monitor role instead (:meth:`Dispatcher.check_gates`, see
:mod:`function_runner.gates`). The dispatcher also republishes compensations that seem lost.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import os
import socket
import threading
import time
from typing import Any

from celery import Celery
from kombu.exceptions import OperationalError as BrokerError
from sqlalchemy.orm import Session

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence import compensation as compensation_steps
from error_handling.persistence import heartbeats, repository
from error_handling.persistence.models import utcnow
from error_handling.sealing import unseal_secrets
from function_runner import compensation, gates, queues
from function_runner import headers as H
from function_runner.bulk_replay import BatchResult, BulkReplayer
from function_runner.events import log_event
from function_runner.runtime import Runtime, runtime_for

#: Seconds between two collections of the broker's own dead letters (RabbitMQ).
COLLECT_EVERY = 5.0


@dataclasses.dataclass
class PassResult:
    """What one dispatcher pass did."""

    published: int = 0
    expired: int = 0


class Dispatcher:
    """Publishes due runs of one app's database to its broker.

    Args:
        app: the Celery app to publish through (its broker and routing).
        runtime: the function-runner runtime (default: the app's).
    """

    def __init__(self, app: Celery, runtime: Runtime | None = None) -> None:
        self.app = app
        self.runtime = runtime or runtime_for(app)
        self.settings = self.runtime.settings
        self._stop = threading.Event()
        self._started_at = utcnow()
        #: This process's name in the heartbeats table.
        self.name = f"dispatcher@{socket.gethostname()}:{os.getpid()}"
        self.replayer = BulkReplayer(
            app,
            self.runtime,
            batch_size=self.settings.dispatcher_batch_size,
            interval=self.settings.dispatcher_interval,
        )

    def run_once(self, *, now: dt.datetime | None = None) -> PassResult:
        """Claim, publish and mark one batch of due runs. Returns what it did.

        Raises:
            StorageUnavailable: if the database is unreachable.
        """
        moment = now or utcnow()
        with self.app.producer_or_acquire() as producer:
            return self.runtime.in_transaction(lambda s: self._pass(s, producer, moment), patience=0)

    def replay_once(self, *, now: dt.datetime | None = None) -> BatchResult | None:
        """Process at most one batch of one bulk replay job (see :mod:`function_runner.bulk_replay`).

        Raises:
            StorageUnavailable: if the database is unreachable.
            kombu OperationalError / ConnectionError: if the broker failed (the batch resumes later).
        """
        return self.replayer.process_batch(now=now)

    def _pass(self, session: Session, producer: Any, now: dt.datetime) -> PassResult:
        result = PassResult()
        dispatches, expired = repository.claim_due_runs(
            session,
            now=now,
            limit=self.settings.dispatcher_batch_size,
            redispatch_after=dt.timedelta(seconds=self.settings.redispatch_after),
        )
        for run in expired:
            letter = repository.expire_wait(session, run=run, now=now)
            result.expired += 1
            log_event("dispatcher.wait_expired", task_id=run.task_id, resource=run.resource, dead_letter=letter)
        for dispatch in dispatches:
            self._publish(dispatch, producer)
            result.published += 1
        return result

    def _publish(self, dispatch: repository.Dispatch, producer: Any) -> None:
        sealer = self.runtime.sealer
        headers = dict(unseal_secrets(dispatch.headers, sealer=sealer) or {})
        headers.update({H.ATTEMPT: dispatch.attempt, H.RUN: dispatch.run_id, H.TOKEN: dispatch.token})
        options = dict(dispatch.options)
        time_limit = options.pop("time_limit", None)
        soft_time_limit = options.pop("soft_time_limit", None)
        self.app.send_task(
            dispatch.task_name,
            args=unseal_secrets(dispatch.args, sealer=sealer),
            kwargs=unseal_secrets(dispatch.kwargs, sealer=sealer),
            task_id=dispatch.task_id,
            headers=headers,
            root_id=dispatch.root_id,
            parent_id=dispatch.parent_id,
            producer=producer,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            **options,
        )

    def run_forever(self) -> None:
        """Dispatch until :meth:`stop` is called; survive database outages by waiting them out."""
        log_event("dispatcher.started", interval=self.settings.dispatcher_interval)
        next_beat = next_sweep = next_gate_check = next_collect = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_beat:
                self._beat()
                next_beat = time.monotonic() + heartbeats.HEARTBEAT_EVERY
            try:
                result = self.run_once()
            except StorageUnavailable:
                log_event("dispatcher.storage_unavailable", level=logging.WARNING)
                self._stop.wait(self.settings.dispatcher_interval)
                continue
            except (BrokerError, ConnectionError) as exc:  # nothing was marked: the batch stays due
                log_event("dispatcher.broker_unavailable", level=logging.WARNING, error=type(exc).__name__)
                self._stop.wait(self.settings.dispatcher_interval)
                continue
            if result.published or result.expired:
                log_event("dispatcher.pass", published=result.published, expired=result.expired)
            if self.runtime.gates and time.monotonic() >= next_gate_check:
                self._monitor_gates()
                next_gate_check = time.monotonic() + self.settings.gate_check_interval
            if time.monotonic() >= next_sweep:
                self._sweep_compensations()
                next_sweep = time.monotonic() + self.settings.compensation_sweep_after / 2
            if time.monotonic() >= next_collect:
                self._collect_broker_dead_letters()
                next_collect = time.monotonic() + COLLECT_EVERY
            replayed = self._replay_pass()
            if result.published < self.settings.dispatcher_batch_size and not replayed:
                self._stop.wait(self.settings.dispatcher_interval)
        self._forget()
        log_event("dispatcher.stopped")

    def _beat(self) -> None:
        """Tell the health endpoint this dispatcher is alive (skipped while the database is down)."""
        now = utcnow()
        with contextlib.suppress(StorageUnavailable):
            self.runtime.in_transaction(
                lambda s: heartbeats.beat(
                    s,
                    name=self.name,
                    kind="dispatcher",
                    hostname=socket.gethostname(),
                    pid=os.getpid(),
                    started_at=self._started_at,
                    now=now,
                ),
                patience=0,
            )

    def _forget(self) -> None:
        with contextlib.suppress(StorageUnavailable):
            self.runtime.in_transaction(lambda s: heartbeats.forget(s, name=self.name), patience=0)

    def check_gates(self, *, now: dt.datetime | None = None) -> int:
        """The monitor role: evaluate each declared gate, record its state, and release its waiting
        tasks oldest first, never more than its free capacity (reserving their units). Returns how many
        waits were released (the next dispatch pass publishes them).

        Raises:
            StorageUnavailable: if the database is unreachable.
        """
        moment = now or utcnow()
        released = 0
        for gate in self.runtime.gates.values():
            released += self._check_gate(gate, moment)
        return released

    def _check_gate(self, gate: gates.Gate, now: dt.datetime) -> int:
        result = gate.check()
        store = self.runtime.lease_store
        room = gate.release_batch if result is None or result.free is None else result.free
        if gate.capacity is not None:
            room = gate.capacity - store.used(gate.name)
            if result is not None and result.free is not None:
                room = min(room, result.free)
        if result is not None and not result.available:
            room = 0
        reservation = self.settings.gate_reservation_seconds

        def release(session: Session) -> int:
            runs = gates.release_waits(session, gate=gate.name, limit=room, now=now)
            names = repository.task_names(session, task_ids=[run.task_id for run in runs])
            count = 0
            for run in runs:
                if gate.capacity is not None:
                    declared = getattr(self.app.tasks.get(names.get(run.task_id, "")), "resources", None) or {}
                    units = int(declared.get(gate.name, 1))
                    holder = gates.holder_of(run.task_id, run.attempt)
                    if not store.acquire(gate.name, holder, units=units, capacity=gate.capacity, ttl=reservation):
                        break  # no room left for the oldest: do not let a younger one overtake it
                run.due_at = now
                run.updated_at = now
                count += 1
            gates.save_state(session, gate=gate, result=result, monitor=self.name, now=now)
            return count

        count = self.runtime.in_transaction(release, patience=0)
        if count:
            log_event("gate.released", gate=gate.name, released=count)
        return count

    def sweep_compensations(self, *, now: dt.datetime | None = None) -> int:
        """Publish the compensation of sagas whose pending steps nobody touched for
        ``compensation_sweep_after`` seconds, or whose compensator died mid-undo; return how many.

        Raises:
            StorageUnavailable: if the database is unreachable.
        """
        moment = now or utcnow()
        quiet = moment - dt.timedelta(seconds=self.settings.compensation_sweep_after)
        stale = moment - dt.timedelta(seconds=compensation.CLAIM_LEASE_SECONDS)

        def lost(session: Session) -> list[str]:
            sagas = compensation_steps.sagas_to_sweep(session, quiet_since=quiet, stale_claims_since=stale)
            for saga_id in sagas:
                compensation_steps.touch_saga(session, saga_id=saga_id, now=moment)
            return sagas

        sagas = self.runtime.in_transaction(lost, patience=0)
        for saga_id in sagas:
            compensation.publish_compensation(self.app, saga_id)
        return len(sagas)

    def _monitor_gates(self) -> None:
        try:
            self.check_gates()
        except StorageUnavailable:
            log_event("dispatcher.storage_unavailable", level=logging.WARNING, step="gates")
        except Exception as exc:  # e.g. Redis down: the gates are checked again next time
            log_event("dispatcher.gates_failed", level=logging.WARNING, error=f"{type(exc).__name__}: {exc}")

    def _sweep_compensations(self) -> None:
        try:
            swept = self.sweep_compensations()
        except StorageUnavailable:
            return
        if swept:
            log_event("dispatcher.compensations_swept", sagas=swept)

    def _collect_broker_dead_letters(self) -> None:
        """RabbitMQ: move what the broker dead-lettered into the dead-letter queue (see ``queues``)."""
        try:
            moved = queues.collect_dead_letters(self.app, self.runtime)
        except StorageUnavailable:
            log_event("dispatcher.storage_unavailable", level=logging.WARNING, step="broker_dead_letters")
            return
        except (BrokerError, ConnectionError, OSError) as exc:
            log_event("dispatcher.broker_unavailable", level=logging.WARNING, error=type(exc).__name__)
            return
        if moved:
            log_event("dispatcher.broker_dead_letters", recorded=moved)

    def _replay_pass(self) -> bool:
        """One bulk-replay batch; whether it did any work (then the loop does not wait)."""
        try:
            batch = self.replay_once()
        except StorageUnavailable:
            log_event("dispatcher.storage_unavailable", level=logging.WARNING)
            return False
        except (BrokerError, ConnectionError) as exc:  # the batch stays in flight and is resumed
            log_event("dispatcher.broker_unavailable", level=logging.WARNING, error=type(exc).__name__)
            return False
        except Exception as exc:  # a job that cannot progress must not stop the dispatching of due runs
            log_event("dispatcher.replay_failed", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")
            return False
        return batch is not None and not batch.done

    def stop(self) -> None:
        """Ask :meth:`run_forever` to return after the current pass."""
        self._stop.set()
