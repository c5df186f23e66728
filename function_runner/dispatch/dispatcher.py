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
:mod:`function_runner.gates`). The dispatcher also republishes compensations that seem lost, runs
retention (:mod:`function_runner.retention`), and on a Redis broker gives back the messages of workers
whose liveness lapsed (:meth:`Dispatcher.restore_lapsed`, see :mod:`function_runner.liveness`).
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
from kombu.transport import redis as kombu_redis
from sqlalchemy.orm import Session

from error_handling.exceptions import StorageUnavailable
from error_handling.persistence import compensation as compensation_steps
from error_handling.persistence import failure_recording, heartbeats, runs
from error_handling.persistence.models import utcnow
from error_handling.sealing import SealedValueError, unseal_secrets
from function_runner import keys
from function_runner.broker import liveness, queues
from function_runner.compensation.publish import CLAIM_LEASE_SECONDS, publish_compensation
from function_runner.dispatch.replay_jobs import BatchResult, BulkReplayer
from function_runner.dispatch.retention import RetentionRole
from function_runner.events import log_event
from function_runner.gates.gate import Gate
from function_runner.gates.monitor import GateMonitor
from function_runner.runtime import Runtime, runtime_for
from function_runner.wrapper import headers as H
from function_runner.wrapper import unrecorded

#: Seconds between two collections of the broker's own dead letters (RabbitMQ).
COLLECT_EVERY = 5.0
#: Seconds between two looks for lapsed worker consumers (Redis; see :mod:`function_runner.liveness`).
LIVENESS_CHECK_EVERY = 1.0


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
        keys.check_key(self.runtime)  # a missing or malformed key stops it here, before any work
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
        #: The retention role (see :mod:`function_runner.retention`), a step per pass.
        self.retention = RetentionRole(self.runtime, runner=self.name)

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
        dispatches, expired = runs.claim_due_runs(
            session,
            now=now,
            limit=self.settings.dispatcher_batch_size,
            redispatch_after=dt.timedelta(seconds=self.settings.redispatch_after),
        )
        for run in expired:
            letter = runs.expire_wait(session, run=run, now=now)
            result.expired += 1
            log_event("dispatcher.wait_expired", task_id=run.task_id, resource=run.resource, dead_letter=letter)
        for dispatch in dispatches:
            self._publish(dispatch, producer)
            result.published += 1
        return result

    def _publish(self, dispatch: runs.Dispatch, producer: Any) -> None:
        self._send(
            dispatch.task_name,
            payload=(dispatch.args, dispatch.kwargs, dispatch.headers),
            ours={H.ATTEMPT: dispatch.attempt, H.RUN: dispatch.run_id, H.TOKEN: dispatch.token},
            task_id=dispatch.task_id,
            root_id=dispatch.root_id,
            parent_id=dispatch.parent_id,
            options=dispatch.options,
            producer=producer,
        )

    def _send(
        self,
        name: str,
        *,
        payload: tuple[Any, Any, Any],
        ours: dict[str, Any],
        task_id: str,
        root_id: str | None,
        parent_id: str | None,
        options: dict[str, Any],
        producer: Any,
    ) -> None:
        """Publish a task from its stored form: ``payload`` is its args, kwargs and headers with secrets
        sealed (unsealed here), ``ours`` the function-runner headers to add."""
        sealer = self.runtime.sealer
        args, kwargs, headers = (unseal_secrets(part, sealer=sealer) for part in payload)
        options = dict(options)
        time_limit = options.pop("time_limit", None)
        soft_time_limit = options.pop("soft_time_limit", None)
        self.app.send_task(
            name,
            args=args or [],
            kwargs=kwargs or {},
            task_id=task_id,
            headers={**(headers or {}), **ours},
            root_id=root_id,
            parent_id=parent_id,
            producer=producer,
            time_limit=time_limit,
            soft_time_limit=soft_time_limit,
            **options,
        )

    def redeliver_unrecorded(self, *, now: float | None = None) -> int:
        """Publish again the messages of failures kept in Redis during a database outage that no
        delivery has come back with for ``unrecorded_redeliver_after`` seconds (the broker lost the
        message the worker gave back); each copy records its kept failure and carries out its decision
        (see :mod:`function_runner.unrecorded`). A failure recorded meanwhile is only forgotten.
        Returns how many messages were published.

        Raises:
            StorageUnavailable: if the database is unreachable (those failures are tried again later).
            redis.RedisError, kombu OperationalError: Redis or the broker failed.
        """
        runtime = self.runtime
        found = unrecorded.overdue(
            runtime,
            unseen_for=self.settings.unrecorded_redeliver_after,
            limit=self.settings.dispatcher_batch_size,
            now=now,
        )
        if not found:
            return 0
        try:
            recorded = runtime.in_transaction(
                lambda s: failure_recording.recorded_attempts(s, [(k.report.task_id, k.report.attempt) for k in found]),
                patience=0,
            )
        except StorageUnavailable:
            unrecorded.overdue_again(runtime, found)
            raise
        published = 0
        with self.app.producer_or_acquire() as producer:
            for index, kept in enumerate(found):
                report = kept.report
                if (report.task_id, report.attempt) in recorded:
                    unrecorded.forget(runtime, report.task_id, report.attempt)
                    continue
                try:
                    self._publish_kept(kept, producer)
                except SealedValueError as exc:  # its secrets cannot be opened with the configured keys
                    log_event(
                        "dispatcher.kept_failure_unpublishable",
                        level=logging.ERROR,
                        task_id=report.task_id,
                        attempt=report.attempt,
                        error=str(exc),
                    )
                    continue
                except Exception:
                    unrecorded.overdue_again(runtime, found[index:])
                    raise
                published += 1
                log_event(
                    "dispatcher.kept_failure_redelivered",
                    level=logging.WARNING,
                    task_id=report.task_id,
                    task=report.payload.task_name,
                    attempt=report.attempt,
                )
        return published

    def _publish_kept(self, kept: unrecorded.Kept, producer: Any) -> None:
        report, payload = kept.report, kept.report.payload
        ours: dict[str, Any] = {H.ATTEMPT: report.attempt, H.KEPT: 1}
        if report.run_id is not None and kept.token:
            ours.update({H.RUN: report.run_id, H.TOKEN: kept.token})
        if payload.replay_of is not None:
            ours[H.REPLAY_OF] = payload.replay_of
        self._send(
            payload.task_name,
            payload=(payload.args, payload.kwargs, payload.headers),
            ours=ours,
            task_id=report.task_id,
            root_id=payload.root_id,
            parent_id=payload.parent_id,
            options=payload.options,
            producer=producer,
        )

    def run_forever(self) -> None:
        """Dispatch until :meth:`stop` is called; survive database outages by waiting them out."""
        log_event("dispatcher.started", interval=self.settings.dispatcher_interval)
        queues_checked = False
        next_beat = next_sweep = next_gate_check = next_collect = next_unrecorded = next_liveness = 0.0
        while not self._stop.is_set():
            if time.monotonic() >= next_beat:
                self._beat()
                next_beat = time.monotonic() + heartbeats.HEARTBEAT_EVERY
            if not queues_checked:
                queues_checked = self.check_queues()
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
            if time.monotonic() >= next_unrecorded:
                self._redeliver_unrecorded()
                next_unrecorded = time.monotonic() + min(self.settings.unrecorded_redeliver_after / 2, 60.0)
            if time.monotonic() >= next_collect:
                self._collect_broker_dead_letters()
                next_collect = time.monotonic() + COLLECT_EVERY
            self._retain()
            if time.monotonic() >= next_liveness:
                self._restore_lapsed()
                next_liveness = time.monotonic() + LIVENESS_CHECK_EVERY
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

    def _check_gate(self, gate: Gate, now: dt.datetime) -> int:
        monitor = GateMonitor(
            name=self.name,
            store=self.runtime.lease_store,
            in_transaction=lambda work: self.runtime.in_transaction(work, patience=0),
            resources_of=lambda task: getattr(self.app.tasks.get(task), "resources", None) or {},
            reservation=self.settings.gate_reservation_seconds,
        )
        return monitor.check(gate, now)

    def sweep_compensations(self, *, now: dt.datetime | None = None) -> int:
        """Publish the compensation of sagas whose pending steps nobody touched for
        ``compensation_sweep_after`` seconds, or whose compensator died mid-undo; return how many.

        Raises:
            StorageUnavailable: if the database is unreachable.
        """
        moment = now or utcnow()
        quiet = moment - dt.timedelta(seconds=self.settings.compensation_sweep_after)
        stale = moment - dt.timedelta(seconds=CLAIM_LEASE_SECONDS)

        def lost(session: Session) -> list[str]:
            sagas = compensation_steps.sagas_to_sweep(session, quiet_since=quiet, stale_claims_since=stale)
            for saga_id in sagas:
                compensation_steps.touch_saga(session, saga_id=saga_id, now=moment)
            return sagas

        sagas = self.runtime.in_transaction(lost, patience=0)
        for saga_id in sagas:
            publish_compensation(self.app, saga_id)
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

    def _redeliver_unrecorded(self) -> None:
        try:
            published = self.redeliver_unrecorded()
        except StorageUnavailable:
            log_event("dispatcher.storage_unavailable", level=logging.WARNING, step="unrecorded")
            return
        except Exception as exc:  # Redis or the broker failed: tried again next time
            log_event("dispatcher.unrecorded_failed", level=logging.WARNING, error=f"{type(exc).__name__}: {exc}")
            return
        if published:
            log_event("dispatcher.unrecorded_redelivered", published=published)

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

    def _retain(self) -> None:
        """A step of the retention role (a run resumes at the next pass)."""
        try:
            self.retention.step()
        except StorageUnavailable:
            log_event("dispatcher.storage_unavailable", level=logging.WARNING, step="retention")
        except Exception as exc:  # retention must never stop the dispatching of due runs
            log_event("dispatcher.retention_failed", level=logging.ERROR, error=f"{type(exc).__name__}: {exc}")

    def restore_lapsed(self) -> liveness.RestoreResult | None:
        """The liveness role: put back in their queues the messages held by worker consumers whose
        heartbeat lapsed (killed, OOM-killed, frozen), see :mod:`function_runner.liveness`. None when
        the broker is not Redis. Safe with any number of dispatchers.

        Raises:
            redis.RedisError, kombu OperationalError: the broker failed (tried again next time).
        """
        with self.app.pool.acquire(block=True) as connection:
            channel = connection.default_channel
            if not isinstance(channel, kombu_redis.Channel):
                return None
            timeout = float(getattr(channel, "liveness_timeout", self.settings.liveness_timeout))
            return liveness.restore_lapsed(channel, timeout=timeout or self.settings.liveness_timeout)

    def _restore_lapsed(self) -> None:
        try:
            result = self.restore_lapsed()
        except Exception as exc:  # Redis or the broker failed: the next look tries again
            log_event("dispatcher.liveness_failed", level=logging.WARNING, error=f"{type(exc).__name__}: {exc}")
            return
        if result is not None and result.lapsed:
            log_event("dispatcher.lapsed_restored", consumers=len(result.lapsed), restored=result.restored)

    def check_queues(self) -> bool:
        """RabbitMQ: publish to task queues that exist with other arguments as they are, instead of
        failing every publish on ``PRECONDITION_FAILED`` (see :func:`queues.use_queues_as_found`).
        Returns whether the check is done (False: the broker did not answer; call it again)."""
        try:
            queues.use_queues_as_found(self.app)
        except (BrokerError, ConnectionError, OSError) as exc:
            log_event("dispatcher.broker_unavailable", level=logging.WARNING, error=type(exc).__name__)
            return False
        return True

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
