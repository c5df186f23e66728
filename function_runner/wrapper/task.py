"""The error-classifying task wrapper: ``@app.task(base=RecoverableTask)`` or ``@function_runner.task``.

On success a first attempt costs nothing: no database round trip. On an exception the wrapper
classifies it, asks the policy for a decision and records the failed attempt together with the
decision's entry in ONE transaction, and only then lets Celery ack the message:

- retry or resource wait: a row the dispatcher publishes when due (never a broker ETA); the Celery
  state becomes ``RETRY``;
- fail fast or dead letter: terminal; the exception is re-raised so Celery stores ``FAILURE``.

If the database cannot be reached within ``storage_retry_timeout``, the message is rejected with
``requeue=True``: it goes back to the broker unacked and its failure is recorded once the database is
back (invariant 1).

No error of the wrapper's own bookkeeping reaches Celery as the task's outcome. Values the database
refuses are made storable where rows are written (:mod:`error_handling.persistence.sanitise`); what
is refused anyway (or a bookkeeping step that fails for any other reason than an outage) gives the
message back, counted (:func:`~function_runner.wrapper.deliveries.count_refusal`), and past
``max_unrecordable_requeues`` the task is dead-lettered with a minimal record, reason ``unrecordable``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import traceback
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, ClassVar, NoReturn

from celery import Task, shared_task
from celery.exceptions import Ignore, Reject, Retry

from error_handling.categories import Category, Reason
from error_handling.classification import Classification, Rule
from error_handling.exceptions import (
    ConfigurationError,
    FunctionRunnerError,
    ResourceError,
    StorageUnavailable,
    WorkerLost,
)
from error_handling.persistence import repository, sanitise
from error_handling.persistence.models import FailedAttempt, LostDelivery, utcnow
from error_handling.policy import DeadLetter, FailFast, RecoveryPolicy
from error_handling.policy import Retry as RetryDecision
from error_handling.policy import Wait as WaitDecision
from error_handling.sealing import SEALED_KEY, seal_secrets
from function_runner.compensation import Recorder, publish_compensation, recording
from function_runner.events import log_event
from function_runner.gates.leases import holder_of
from function_runner.runtime import Runtime, runtime_for
from function_runner.wrapper import deliveries, unrecorded
from function_runner.wrapper import headers as H
from function_runner.wrapper import logs as _logs  # noqa: F401  (redacts Celery's log lines in workers)
from function_runner.wrapper.failures import FailureToRecord
from function_runner.wrapper.redacted_errors import redacted_error

#: Exceptions that steer Celery itself; the wrapper never classifies them.
CONTROL_FLOW: tuple[type[BaseException], ...] = (Retry, Ignore, Reject)


class _Verdict(BaseException):
    """How a recorded failure ends the execution: ``error`` (Celery's ``Retry`` for a retry or a wait,
    the task's exception for a terminal decision), carried out to :meth:`RecoverableTask.__call__`,
    which raises it with ``traceback``. A BaseException, so no ``except Exception`` on the way
    catches it."""

    def __init__(self, error: BaseException, traceback: TracebackType | None) -> None:
        super().__init__(error)
        self.error = error
        self.traceback = traceback


#: Delivery options kept with a task so it can be published again the same way.
_KEPT_DELIVERY_INFO = ("exchange", "routing_key", "priority")


class RecoverableTask(Task):  # type: ignore[misc]
    """A Celery task whose failures are classified, recorded and routed.

    Class attributes (set them as task options: ``@app.task(base=RecoverableTask, recovery_policy=...)``):
        recovery_policy: a :class:`~error_handling.policy.RecoveryPolicy`, or a dict of overrides of the
            app's policy (``{"transient_max_attempts": 3}``).
        recovery_rules: classifier rules for this task, evaluated before the app's and the built-ins.
        breaker: a service name: the body runs through its circuit breaker (an open breaker schedules a
            retry at the time it may close, without running the body).
        retry_budget: a service name: transient failures draw on its cluster-wide retry budget, and
            are dead-lettered as ``retry_budget_exhausted`` when it is empty (default: ``breaker``).
        resources: units of the app's capacity gates the body needs (``{"gpu": 1}``): taken before it
            runs, or the task is parked on the gate (reason ``capacity_exhausted``).
        compensate_on: ``"terminal"`` (default): the recorded compensation steps are undone when the
            task (or a later task of its chain) fails for good; ``"every_failure"``: this task's steps
            are undone after every failed attempt too.
        max_lost_deliveries: after this many deliveries of one attempt ended without an outcome (its
            worker process died: a crash, a kill, an OOM kill, a hard time limit), the task is not run
            again but dead-lettered as ``worker_lost`` (default: the ``max_lost_deliveries`` setting, 3).
    """

    acks_late = True
    reject_on_worker_lost = True
    #: A hard time limit kills the pool process: the message goes back and the loss is counted like
    #: any other death of the process (Celery would ack it and lose the task).
    acks_on_timeout = False
    Request = "function_runner.wrapper.deliveries:RecoverableRequest"
    max_lost_deliveries: ClassVar[int | None] = None
    recovery_policy: ClassVar[RecoveryPolicy | dict[str, Any] | None] = None
    recovery_rules: ClassVar[Sequence[Rule]] = ()
    compensate_on: ClassVar[str] = "terminal"
    #: Units of capacity gates this task holds while it runs, e.g. ``{"gpu": 1}`` (see ``gates``).
    resources: ClassVar[dict[str, int]] = {}
    #: The service whose circuit breaker the whole body runs through, e.g. ``"openai"``.
    breaker: ClassVar[str | None] = None
    #: The service whose retry budget this task's retries draw on (default: ``breaker``).
    retry_budget: ClassVar[str | None] = None
    #: True only for function-runner's own compensate task (its failure never triggers a compensation).
    is_compensator: ClassVar[bool] = False

    @property
    def compensation(self) -> Recorder:
        """Records this execution's compensation steps: ``self.compensation.record_operation(...)``."""
        return Recorder(self, runtime_for(self.app))

    @property
    def attempt(self) -> int:
        """The attempt number of the current execution: 1 for the first, 2 for the first retry, ..."""
        value = _int_header(_custom_headers(self.request), H.ATTEMPT, default=1)
        return int(value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        request = self.request
        if request.called_directly:
            return self.run(*args, **kwargs)
        attempt = _int_header(_custom_headers(request), H.ATTEMPT, default=1)
        marks = deliveries.marks
        try:
            put_back = marks.begin(str(request.id), attempt) if marks is not None else []
        except Exception as problem:  # the marks only help find lost deliveries: never the task's outcome
            log_event("delivery.mark_failed", level=logging.WARNING, task_id=request.id, error=type(problem).__name__)
            put_back = []
        try:
            try:
                return self._execute(args, kwargs, attempt=attempt, put_back=put_back)
            except CONTROL_FLOW:
                raise
            except Exception as bug:  # the outermost boundary: a bug of the bookkeeping is not the outcome
                self._refused(runtime_for(self.app), bug, step="wrapper", attempt=attempt, args=args, kwargs=kwargs)
        except _Verdict as verdict:
            error, traceback_ = verdict.error, verdict.traceback
        finally:
            if marks is not None:
                marks.end()
        # raised here, out of every handler: Celery copies the traceback of what ends the execution
        # frame by frame (billiard's ExceptionInfo), so it gets this frame and the body's, not the
        # wrapper's; a terminal failure keeps its own context and cause. Celery stores, sends and
        # logs what it gets: a redacted copy of the same type
        raise redacted_error(error, runtime_for(self.app).redactor).with_traceback(traceback_)

    def _execute(self, args: tuple[Any, ...], kwargs: dict[str, Any], *, attempt: int, put_back: list[int]) -> Any:
        request = self.request
        runtime = runtime_for(self.app)
        custom = _custom_headers(request)
        run_id = _int_header(custom, H.RUN, default=None)
        token = custom.get(H.TOKEN)

        def guard(step: str) -> contextlib.AbstractContextManager[None]:
            return self._bookkeeping(runtime, step, attempt=attempt, args=args, kwargs=kwargs, run_id=run_id)

        if run_id is not None and token:
            with guard("claim"):
                self._claim(runtime, run_id=run_id, token=str(token), attempt=attempt)
        if _redelivered(request) or custom.get(H.KEPT):  # a redelivery, or the copy of a lost one
            kept = unrecorded.take(runtime, str(request.id), attempt)
            if kept is not None:  # it failed while the database was away: record that, don't run it again
                log_event("task.recording_kept_failure", task_id=request.id, task=self.name, attempt=attempt)
                with guard("record_kept_failure"):
                    self._conclude(
                        runtime, UnrecordedFailure.of(kept.classification), kept, args=args, kwargs=kwargs, kept=True
                    )
            with guard("duplicate_check"):
                duplicate = run_id is None and self._already_recorded(runtime, attempt)
            if duplicate:
                log_event("task.duplicate_skipped", task_id=request.id, task=self.name, attempt=attempt)
                raise Ignore()
        lost = 0
        if put_back or _redelivered(request):
            with guard("redelivery"):
                lost = self._after_lost_deliveries(
                    runtime, args=args, kwargs=kwargs, attempt=attempt, run_id=run_id, put_back=put_back
                )
        started_at = utcnow()
        try:
            with (
                recording(Recorder(self, runtime)),
                self._holding_gates(runtime, attempt),
                runtime.breakers.guard(self.breaker) if self.breaker else contextlib.nullcontext(),
            ):
                result = self.run(*args, **kwargs)
        except CONTROL_FLOW:
            raise
        except StorageUnavailable as db_exc:  # our own records (a compensation step, a gate) could not be written
            self._requeue(runtime, attempt, step="body", why=f"the task's records could not be written: {db_exc}")
        except Exception as exc:  # the outermost boundary: every failure of the body is classified here
            self._on_failure(
                runtime, exc, args=args, kwargs=kwargs, attempt=attempt, run_id=run_id, started_at=started_at
            )
            raise  # not reached: _on_failure always raises
        budget = self.retry_budget or self.breaker
        if budget:
            self._quietly(lambda: runtime.budgets.on_success(budget))
        if run_id is not None or lost:
            self._on_recovered(runtime, run_id=run_id, attempt=attempt)
        return result

    @contextlib.contextmanager
    def _bookkeeping(
        self,
        runtime: Runtime,
        step: str,
        *,
        attempt: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: int | None,
    ) -> Iterator[None]:
        """Run a bookkeeping step: an outage gives the message back (an outage requeue); any other
        error of the step is a refusal (:meth:`_refused`), never the task's outcome. Celery's control
        flow (``Ignore``, ``Reject``, ``Retry``) and verdicts pass."""
        try:
            yield
        except CONTROL_FLOW:
            raise
        except StorageUnavailable as exc:
            self._requeue(runtime, attempt, step=step, why=f"the task's records could not be written: {exc}")
        except Exception as error:
            self._refused(runtime, error, step=step, attempt=attempt, args=args, kwargs=kwargs, run_id=run_id)

    @staticmethod
    def _quietly(action: Any) -> None:
        try:
            action()
        except Exception as exc:
            log_event("budget.failed", level=logging.WARNING, error=type(exc).__name__)

    # -- steps ---------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _holding_gates(self, runtime: Runtime, attempt: int) -> Iterator[None]:
        """Hold the units of the capacity gates this task declares while the body runs (a unit the
        monitor reserved for this execution is taken over). A full gate parks the task: it raises
        ``ResourceError`` before the body runs."""
        if not self.resources:
            yield
            return
        holder = holder_of(str(self.request.id), attempt)
        store = runtime.lease_store
        held: list[str] = []
        try:
            for name, units in self.resources.items():
                gate = runtime.gates.get(name)
                if gate is None or gate.capacity is None:
                    continue
                ttl = runtime.settings.gate_lease_seconds
                if not store.acquire(name, holder, units=units, capacity=gate.capacity, ttl=ttl):
                    raise ResourceError(
                        f"resource gate {name!r} is at capacity ({gate.capacity})",
                        resource=name,
                        reason="capacity_exhausted",
                    )
                held.append(name)
                runtime.renewer.hold(name, holder)
            yield
        finally:
            for name in held:
                runtime.renewer.drop(name, holder)
                try:
                    store.release(name, holder)
                except Exception as exc:
                    log_event("gate.release_failed", level=logging.WARNING, gate=name, error=type(exc).__name__)

    def _claim(self, runtime: Runtime, *, run_id: int, token: str, attempt: int) -> None:
        now = utcnow()
        try:
            claimed = runtime.in_transaction(lambda s: repository.claim_run(s, run_id=run_id, token=token, now=now))
        except StorageUnavailable as exc:
            log_event("task.storage_unavailable", level=logging.WARNING, task_id=self.request.id, step="claim")
            raise Reject(str(exc), requeue=True) from None
        if not claimed:
            log_event("task.duplicate_skipped", task_id=self.request.id, task=self.name, attempt=attempt, run=run_id)
            raise Ignore()

    def _already_recorded(self, runtime: Runtime, attempt: int) -> bool:
        task_id = sanitise.task_key(str(self.request.id))

        def lookup(session: Any) -> bool:
            found = session.query(FailedAttempt.id).filter_by(task_id=task_id, attempt=attempt).first()
            return found is not None

        try:
            return runtime.in_transaction(lookup)
        except StorageUnavailable as exc:
            raise Reject(str(exc), requeue=True) from None

    def _after_lost_deliveries(
        self,
        runtime: Runtime,
        *,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        attempt: int,
        run_id: int | None,
        put_back: list[int],
    ) -> int:
        """On a redelivery, or an execution that found the marks of dead pool processes that had
        started this task (``put_back``): record the deliveries before it that ended without an
        outcome; past the task's limit, dead-letter it as ``worker_lost`` instead of running it
        (raises). Returns how many deliveries of this attempt were lost before this one."""
        request = self.request
        task_id = str(request.id)
        seen = deliveries.count_redelivery(runtime, task_id, attempt, request) if _redelivered(request) else 0
        payload = self._safe_payload(runtime, args, kwargs)
        now = utcnow()
        found = [
            repository.LossReport(cause="worker_lost", worker=request.hostname, pid=pid, detail=deliveries.PUT_BACK)
            for pid in put_back
        ]
        if found:
            log_event(
                "delivery.lost", level=logging.WARNING, task_id=task_id, task=self.name, attempt=attempt, pids=put_back
            )

        def record(session: Any) -> list[LostDelivery]:
            for report in found:
                repository.report_lost_delivery(
                    session, task_id=task_id, attempt=attempt, task_name=self.name, report=report, now=now
                )
            return repository.reconcile_lost_deliveries(
                session, task_id=task_id, attempt=attempt, payload=payload, at_least=seen + len(found), now=now
            )

        try:
            lost = runtime.in_transaction(record)
        except StorageUnavailable as exc:
            deliveries.count_requeue(runtime, task_id, attempt)
            log_event("task.storage_unavailable", level=logging.WARNING, task_id=task_id, step="redelivery")
            raise Reject(str(exc), requeue=True) from None
        if not lost:
            return 0
        limit = self.max_lost_deliveries or runtime.settings.max_lost_deliveries
        last = lost[-1]
        log_event(
            "task.redelivered",
            level=logging.WARNING,
            task_id=task_id,
            task=self.name,
            attempt=attempt,
            delivery=len(lost) + 1,
            lost=len(lost),
            limit=limit,
            cause=last.cause,
        )
        if len(lost) >= limit:
            how = ", ".join(
                part
                for part in (
                    f"last on {last.worker}" if last.worker else "",
                    f"pid {last.pid}" if last.pid else "",
                    last.signal or (f"exit code {last.exit_code}" if last.exit_code is not None else ""),
                    last.memory_limit or "",
                    last.detail if last.cause == "time_limit" else "",
                )
                if part
            )
            poison = WorkerLost(
                f"the worker process died on {len(lost)} deliveries of this task ({how or last.cause}); "
                f"not run again (limit {limit})"
            )
            self._on_failure(runtime, poison, args=args, kwargs=kwargs, attempt=attempt, run_id=run_id, started_at=None)
        return len(lost)

    def _on_recovered(self, runtime: Runtime, *, run_id: int | None, attempt: int) -> None:
        task_id = self.request.id
        now = utcnow()
        try:
            runtime.in_transaction(lambda s: repository.record_success(s, task_id=task_id, run_id=run_id, now=now))
        except StorageUnavailable as exc:
            log_event("task.storage_unavailable", level=logging.WARNING, task_id=task_id, step="success")
            raise Reject(str(exc), requeue=True) from None
        except Exception as error:  # the body succeeded: a refused record must not turn that into a loss
            log_event(
                "task.success_not_recorded",
                level=logging.ERROR,
                exc_info=True,
                task_id=task_id,
                task=self.name,
                attempt=attempt,
                error=type(error).__name__,
            )
            return
        log_event("task.recovered", task_id=task_id, task=self.name, attempt=attempt)

    def _on_failure(
        self,
        runtime: Runtime,
        exc: Exception,
        *,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        attempt: int,
        run_id: int | None,
        started_at: dt.datetime | None,
    ) -> None:
        try:
            report = self._report(
                runtime, exc, args=args, kwargs=kwargs, attempt=attempt, run_id=run_id, started_at=started_at
            )
        except Exception as bug:  # building the report failed: never ack a failure nobody recorded
            self._refused(
                runtime, bug, step="report", attempt=attempt, args=args, kwargs=kwargs, run_id=run_id, exc=exc
            )
        self._conclude(runtime, exc, report, args=args, kwargs=kwargs)

    def _requeue(self, runtime: Runtime, attempt: int, *, step: str, why: str) -> NoReturn:
        """The database is unreachable: give the message back to the broker, unacked (its wrapper's own
        requeue, not a lost delivery)."""
        request = self.request
        deliveries.count_requeue(runtime, str(request.id), attempt)
        log_event(
            "task.storage_unavailable",
            level=logging.ERROR,
            task_id=request.id,
            task=self.name,
            attempt=attempt,
            step=step,
        )
        raise Reject(f"{why}, message requeued", requeue=True) from None

    def _refused(
        self,
        runtime: Runtime,
        error: Exception,
        *,
        step: str,
        attempt: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: int | None = None,
        exc: Exception | None = None,
    ) -> NoReturn:
        """The database refused a record of this delivery, or a bookkeeping step failed for another
        reason than an outage (``error``): never ack a failure nobody recorded, never loop. The refusal
        is counted; up to ``max_unrecordable_requeues`` the message is given back, unacked; past it (or
        with nothing to count on) the task is dead-lettered with a minimal record (reason
        ``unrecordable``). ``exc``: the body's exception, if it failed. If even that fails for an
        unexpected reason, the message is given back, loudly (never acked unrecorded)."""
        try:
            self._dead_letter_past_limit(
                runtime, error, step=step, attempt=attempt, args=args, kwargs=kwargs, run_id=run_id, exc=exc
            )
        except CONTROL_FLOW:
            raise
        except Exception as bug:
            deliveries.count_requeue(runtime, str(self.request.id), attempt)
            log_event(
                "task.unrecordable_not_recorded",
                level=logging.CRITICAL,
                exc_info=True,
                task_id=self.request.id,
                task=self.name,
                attempt=attempt,
                step=step,
                error=type(bug).__name__,
            )
            raise Reject(f"{step} not recorded ({type(bug).__name__}), message requeued", requeue=True) from None

    def _dead_letter_past_limit(
        self,
        runtime: Runtime,
        error: Exception,
        *,
        step: str,
        attempt: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: int | None,
        exc: Exception | None,
    ) -> NoReturn:
        """:meth:`_refused`'s count, give-back, or minimal dead letter."""
        request = self.request
        task_id = str(request.id)
        refusals = deliveries.count_refusal(runtime, task_id, attempt)
        limit = runtime.settings.max_unrecordable_requeues
        log_event(
            "task.record_refused",
            level=logging.ERROR,
            exc_info=True,
            task_id=task_id,
            task=self.name,
            attempt=attempt,
            step=step,
            error=type(error).__name__,
            refusals=refusals,
            limit=limit,
        )
        if refusals is not None and refusals <= limit:
            raise Reject(f"{step} not recorded ({type(error).__name__}), message requeued", requeue=True) from None
        what = _refusal(error)
        failure = UnrecordableFailure(
            f"the database refused the record of this task {refusals or 1} time(s) at {step} ({what}); "
            f"dead-lettered with a minimal record (limit {limit})"
        )
        report = self._minimal_report(runtime, failure, attempt=attempt, args=args, kwargs=kwargs, run_id=run_id)
        self._conclude(runtime, exc or failure, report, args=args, kwargs=kwargs, minimal=True)

    def _minimal_report(
        self,
        runtime: Runtime,
        failure: UnrecordableFailure,
        *,
        attempt: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: int | None,
    ) -> repository.FailureReport:
        """A failure report built from values sure to store: the task's name, its id (stored under its
        key), its attempt number within an ``integer`` column, the message saying what was refused, and
        the payload as sealed blobs (no args in clear); not replayable when the payload cannot be sealed."""
        request = self.request
        sealer = runtime.sealer
        try:
            payload = repository.TaskPayload(
                task_name=self.name,
                args={SEALED_KEY: sealer.seal(list(args))},
                kwargs={SEALED_KEY: sealer.seal(dict(kwargs))},
                options={},
                headers={SEALED_KEY: sealer.seal(self._custom(request))},
                queue=(request.delivery_info or {}).get("routing_key"),
                replayable=_json_faithful(args, kwargs),
            )
        except Exception as problem:  # not even sealable: no payload
            log_event("task.payload_unsealable", level=logging.ERROR, task_id=request.id, error=type(problem).__name__)
            payload = repository.TaskPayload(
                task_name=self.name, args=[], kwargs={}, options={}, headers={}, replayable=False
            )
        classification = Classification(
            category=Category.PERMANENT,
            reason=Reason.UNRECORDABLE.value,
            fingerprint=hashlib.blake2b(f"{self.name}:unrecordable".encode(), digest_size=16).hexdigest(),
            exc_type=f"{UnrecordableFailure.__module__}.{UnrecordableFailure.__qualname__}",
            message=str(failure),
            user_message=runtime.user_messages.for_classification(
                Classification(category=Category.PERMANENT, reason=Reason.UNRECORDABLE.value)
            ),
            rule="unrecordable",
        )
        return repository.FailureReport(
            task_id=str(request.id),
            attempt=min(max(attempt, 0), sanitise.MAX_INTEGER),  # a forged attempt header may be anything
            payload=payload,
            classification=classification,
            traceback=None,
            failed_at=utcnow(),
            worker=request.hostname,
            run_id=run_id if run_id is not None and 0 < run_id < 2**63 else None,
        )

    def _conclude(
        self,
        runtime: Runtime,
        exc: Exception,
        report: repository.FailureReport,
        *,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        kept: bool = False,
        minimal: bool = False,
    ) -> NoReturn:
        """Record the failure with its decision and carry the decision out (always raises). If the
        database is unreachable, the report is kept in Redis (:mod:`function_runner.unrecorded`) and the
        message given back: its redelivery records the kept report instead of running the body again.
        If the database refuses it, see :meth:`_refused`. ``kept``: the report is such a kept one;
        ``minimal``: the report is :meth:`_refused`'s minimal record (refused too: the message is given
        back, loudly, as for an outage)."""
        request = self.request
        attempt = report.attempt
        policy = self._policy(runtime)
        try:
            saga_id = str(args[0]) if self.is_compensator and args else str(request.root_id or request.id)
            outcome = runtime.failures.submit(
                FailureToRecord(
                    report=report,
                    policy=policy,
                    saga_id=saga_id,
                    compensate_on=self.compensate_on,
                    is_compensator=self.is_compensator,
                    gates=runtime.gates,
                )
            )
            recorded, to_compensate = outcome.recorded, outcome.to_compensate
        except StorageUnavailable as db_exc:
            if not kept and not minimal:
                token = _custom_headers(request).get(H.TOKEN)
                unrecorded.keep(runtime, report, token=str(token) if token else None)
            self._requeue(runtime, attempt, step="record_failure", why=f"failure not recorded: {db_exc}")
        except Exception as bug:  # recording itself failed: never ack a failure nobody recorded
            if minimal:  # even the minimal record: say so loudly and give the message back
                deliveries.count_requeue(runtime, str(request.id), attempt)
                log_event(
                    "task.unrecordable_not_recorded",
                    level=logging.CRITICAL,
                    exc_info=True,
                    task_id=request.id,
                    task=self.name,
                    attempt=attempt,
                    error=type(bug).__name__,
                )
                raise Reject(f"minimal record refused ({type(bug).__name__}), message requeued", requeue=True) from None
            self._refused(
                runtime,
                bug,
                step="record_failure",
                attempt=attempt,
                args=args,
                kwargs=kwargs,
                run_id=report.run_id,
                exc=exc,
            )
        if kept or minimal:
            unrecorded.forget(runtime, str(request.id), attempt)
        if to_compensate:
            try:
                publish_compensation(self.app, saga_id)
            except Exception as problem:  # the steps are pending in the database: the dispatcher's sweep publishes them
                log_event(
                    "compensation.publish_failed", level=logging.WARNING, saga_id=saga_id, error=type(problem).__name__
                )
        classification = report.classification
        decision = recorded.decision
        log_event(
            "task.failed",
            level=logging.WARNING,
            task_id=request.id,
            task=self.name,
            attempt=attempt,
            of=repository.max_attempts(policy, classification),
            category=classification.category.value,
            reason=classification.reason,
            decision=type(decision).__name__,
            duplicate=recorded.duplicate,
        )
        if isinstance(decision, RetryDecision | WaitDecision):
            if isinstance(decision, RetryDecision):
                retry = Retry(f"retry scheduled in {decision.delay:.2f}s", exc=exc, when=decision.at)
            else:
                retry = Retry(f"waiting for resource {decision.resource!r}", exc=exc, when=decision.check_at)
            retry.__cause__ = exc
            raise _Verdict(retry, None)
        if isinstance(decision, FailFast | DeadLetter):
            # the body's frames, without the wrapper's frame that caught the exception
            tb = exc.__traceback__
            raise _Verdict(exc, tb.tb_next if tb is not None and tb.tb_next is not None else tb)
        raise AssertionError(f"unknown decision {decision!r}")  # pragma: no cover

    def _report(
        self,
        runtime: Runtime,
        exc: Exception,
        *,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        attempt: int,
        run_id: int | None,
        started_at: dt.datetime | None,
    ) -> repository.FailureReport:
        """Build what is recorded about a failure. Degrades rather than fails: a payload that cannot be
        sealed is kept redacted and marked not replayable."""
        request = self.request
        payload = self._safe_payload(runtime, args, kwargs)
        report = repository.FailureReport(
            task_id=request.id,
            attempt=attempt,
            payload=payload,
            classification=self._classify(runtime, exc),
            traceback=runtime.redactor.redact_text("".join(traceback.format_exception(exc))),
            failed_at=utcnow(),
            started_at=started_at,
            worker=request.hostname,
            run_id=run_id,
        )
        budget = self.retry_budget or self.breaker
        if budget and report.classification.category is Category.TRANSIENT:
            try:
                allowed = runtime.budgets.on_failure(budget)
            except Exception as exc:
                log_event("budget.failed", level=logging.WARNING, error=type(exc).__name__)
                allowed = True
            report = dataclasses.replace(report, retry_allowed=allowed)
        return report

    def _policy(self, runtime: Runtime) -> RecoveryPolicy:
        """The task's policy; one that is invalid is logged and the app's policy used."""
        try:
            return runtime.policy.merged(self.recovery_policy)
        except ConfigurationError as problem:
            log_event("task.invalid_policy", level=logging.ERROR, task=self.name, error=str(problem))
            return runtime.policy

    def _safe_payload(self, runtime: Runtime, args: tuple[Any, ...], kwargs: dict[str, Any]) -> repository.TaskPayload:
        """The payload to record; one that cannot be sealed is kept redacted and marked not replayable."""
        request = self.request
        try:
            return self._payload(runtime, args, kwargs)
        except (FunctionRunnerError, TypeError, ValueError) as problem:
            log_event("task.payload_unsealable", level=logging.ERROR, task_id=request.id, error=type(problem).__name__)
            return repository.TaskPayload(
                task_name=self.name,
                args=runtime.redactor.redact(list(args)),
                kwargs=runtime.redactor.redact(dict(kwargs)),
                options={},
                headers={},
                queue=(request.delivery_info or {}).get("routing_key"),
                replayable=False,
                root_id=request.root_id,
                parent_id=request.parent_id,
            )

    @staticmethod
    def _custom(request: Any) -> dict[str, Any]:
        """The message's own headers (function-runner's and the transport's left out)."""
        return {k: v for k, v in _custom_headers(request).items() if k not in H.ALL and k not in H.TRANSPORT}

    def _classify(self, runtime: Runtime, exc: BaseException) -> Classification:
        c = runtime.classifier.classify(exc, rules=self.recovery_rules)
        redact = runtime.redactor.redact_text
        return c.replace(message=redact(c.message), user_message=redact(runtime.user_messages.for_classification(c)))

    def _payload(self, runtime: Runtime, args: tuple[Any, ...], kwargs: dict[str, Any]) -> repository.TaskPayload:
        request = self.request
        delivery = request.delivery_info or {}
        options = {key: delivery[key] for key in _KEPT_DELIVERY_INFO if delivery.get(key) not in (None, "")}
        if request.timelimit and any(request.timelimit):
            options["time_limit"], options["soft_time_limit"] = request.timelimit
        custom = self._custom(request)

        def seal(value: Any) -> Any:
            return seal_secrets(value, redactor=runtime.redactor, sealer=runtime.sealer)

        replay_of = _int_header(_custom_headers(request), H.REPLAY_OF, default=None)
        sealed_args, sealed_kwargs, sealed_headers = seal(list(args)), seal(dict(kwargs)), seal(custom)
        faithful = True
        if sanitise.unstorable([args, kwargs, custom]):  # rare: NUL or lone surrogates, kept for replay
            faithful = _seal_unstorable(sealed_args, list(args), runtime)
            faithful = _seal_unstorable(sealed_kwargs, kwargs, runtime) and faithful
            faithful = _seal_unstorable(sealed_headers, custom, runtime) and faithful
        return repository.TaskPayload(
            task_name=self.name,
            args=sealed_args,
            kwargs=sealed_kwargs,
            options=options,
            headers=sealed_headers,
            queue=delivery.get("routing_key"),
            replayable=faithful and _json_faithful(args, kwargs),
            root_id=request.root_id,
            parent_id=request.parent_id,
            replay_of=replay_of,
        )


class UnrecordedFailure(Exception):
    """Stands for a failure that happened while the database was unreachable, on the delivery that
    records it (the original exception object is gone; its classification was kept)."""

    @classmethod
    def of(cls, classification: Classification) -> UnrecordedFailure:
        """The stand-in for the failure classified as ``classification``."""
        return cls(f"{classification.exc_type or 'error'}: {classification.message}")


class UnrecordableFailure(Exception):
    """Stands for a failure the database kept refusing to record, on the delivery that dead-letters
    its task with a minimal record (reason ``unrecordable``)."""


def _refusal(error: BaseException) -> str:
    """What refused a record, without the values: the error's type, and Postgres' SQLSTATE if any
    (the database's message may quote the refused value, which may hold anything)."""
    state = getattr(getattr(error, "orig", None), "sqlstate", None)
    name = type(error).__name__
    return f"{name}, SQLSTATE {state}" if isinstance(state, str) and state else name


def _seal_unstorable(stored: Any, original: Any, runtime: Runtime) -> bool:
    """In ``stored`` (``original`` with its secrets sealed, a list or a dict), seal whole each
    top-level item whose original holds a NUL or a lone surrogate (the database refuses them; a
    replay unseals the original). Returns False when something could not be kept faithfully (a key
    holding one, a value that cannot be sealed): the database gets it cleaned, and the task is not
    replayable."""
    if isinstance(stored, list) and isinstance(original, list) and len(stored) == len(original):
        pairs: list[tuple[Any, Any]] = list(enumerate(original))
    elif isinstance(stored, dict) and isinstance(original, dict):
        pairs = list(original.items())
        if any(isinstance(key, str) and sanitise.needs_cleaning(key) for key, _ in pairs):
            return False
    else:
        return not sanitise.unstorable(original)
    faithful = True
    for key, item in pairs:
        if not sanitise.unstorable(item):
            continue
        if isinstance(stored, dict) and key not in stored:
            faithful = False
            continue
        try:
            stored[key] = {SEALED_KEY: runtime.sealer.seal(item)}
        except (TypeError, ValueError) as problem:
            log_event("task.payload_unsealable", level=logging.WARNING, error=type(problem).__name__)
            faithful = False
    return faithful


def _custom_headers(request: Any) -> dict[str, Any]:
    headers = getattr(request, "headers", None)
    return dict(headers) if isinstance(headers, dict) else {}


def _int_header(headers: dict[str, Any], name: str, *, default: int | None) -> Any:
    value = headers.get(name)
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _redelivered(request: Any) -> bool:
    delivery = request.delivery_info or {}
    return bool(delivery.get("redelivered"))


def _json_faithful(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether args and kwargs survive a JSON round trip unchanged (tuples aside)."""
    try:
        json.dumps([args, kwargs], allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def task(*args: Any, **options: Any) -> Any:
    """Declare a recoverable task on the current app, like Celery's ``shared_task``.

    ``@function_runner.task`` or ``@function_runner.task(recovery_policy={...}, name=...)``. Any Celery
    task option works; ``base`` defaults to :class:`RecoverableTask`.
    """
    options.setdefault("base", RecoverableTask)
    return shared_task(*args, **options)
